#!/usr/bin/env python
"""Benchmark course_lib: generator inference, contextual attention, generator and critic steps, a training step, each against its reference.

Usage::

    python scripts/benchmark.py                     # 256..2048, attention B=8, train step B=16; cuda if available
    python scripts/benchmark.py --quick             # 256 and 512, the step rows, no full train step
    python scripts/benchmark.py --only-steps        # generator / critic steps against the per-image-loop port
    python scripts/benchmark.py --quick --threads 1 # the same rows on one thread
    python scripts/benchmark.py --device cuda --json bench.json
    python scripts/benchmark.py --only-generator --sizes 512   # fast vs step-by-step generator only

Prints a table (median / best ms, process CPU ms, dense GFLOP and their time at the run's sgemm
rate, peak memory, ratios measured alternately in the same run); the
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
