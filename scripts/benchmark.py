#!/usr/bin/env python
"""Benchmark course_lib: generator inference, contextual attention (batched vs per-image loop), a training step.

Usage::

    python scripts/benchmark.py                     # 256 and 512, 5 repeats, cuda if available
    python scripts/benchmark.py --quick             # 256 only, few repeats (< 1 min on 2 CPU cores)
    python scripts/benchmark.py --device cuda --batch 4 --json bench.json
    python scripts/benchmark.py --vs-reference --only-generator   # fast vs step-by-step ops

Prints a table (median / best ms, peak memory, ratios measured in the same run); the
measuring code lives in :mod:`course_lib.bench`, which documents every row. Speed targets
are read from this table, never asserted by timed tests.
"""
from __future__ import annotations

import sys
from typing import Optional

from course_lib.bench import main as bench_main


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark with ``argv`` (default: the command line); returns the exit status."""
    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
