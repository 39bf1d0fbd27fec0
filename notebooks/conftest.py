"""nbval settings for the course notebooks (both editions).

Run as ``make test-notebooks`` does::

    COURSE_LIB_CI=1 pytest -p no:python --nbval-lax --nbval-current-env notebooks/*.ipynb notebooks/solutions/*.ipynb

With ``--nbval-lax`` only cells marked ``# NBVAL_CHECK_OUTPUT`` are compared with their
stored outputs. Here we make those comparisons robust:

* stderr is never compared (library warnings, tqdm bars and deprecation notices land
  there and differ between machines and versions);
* HTML, JavaScript and widget views are not compared (widget model ids are random);
* timings, memory addresses, temporary paths and version strings are sanitised.
"""
from __future__ import annotations

import os

# (regex, replacement) pairs applied to both the stored and the fresh output.
SANITIZE_PATTERNS: list[tuple[str, str]] = [
    (r"\d+(\.\d+)?\s*(s|ms|µs|us|ns|sec|seconds|min)\b", "<TIME>"),  # "took 1.23 s"
    (r"\d+(\.\d+)?\s*it/s", "<RATE>"),
    (r"0x[0-9a-fA-F]+", "<ADDRESS>"),  # <object at 0x7f...>
    (r"(/tmp|/var/folders|C:\\\\Users)[^\s'\"]*", "<TMPPATH>"),
    (r"<Figure size \d+x\d+ with \d+ Axes>", "<FIGURE>"),
]

SKIP_COMPARE = ("stderr", "text/html", "application/javascript", "application/vnd.jupyter.widget-view+json")


def pytest_collectstart(collector) -> None:
    """nbval builds one collector per notebook; extend its skip list and sanitise patterns."""
    path = getattr(collector, "path", None) or getattr(collector, "fspath", None)
    if path is None or not str(path).endswith(".ipynb"):
        return
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            key for key in SKIP_COMPARE if key not in collector.skip_compare)
    if hasattr(collector, "sanitize_patterns"):
        for regex, replacement in SANITIZE_PATTERNS:
            collector.sanitize_patterns[regex] = replacement


def pytest_configure(config) -> None:
    """Notebooks pick tiny sizes in CI (course_lib reads COURSE_LIB_CI); default it on under pytest."""
    os.environ.setdefault("COURSE_LIB_CI", "1")
