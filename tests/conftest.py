"""Every test starts from the same process state, whatever the shell that started pytest.

A test must not pass on one machine and fail on another because of what it inherited: the
current folder (`cd tests && pytest` or a CI runner that starts elsewhere), the umask (077 on
hardened machines), the SIGINT handler (ignored under `nohup` and in background jobs), or
environment variables that course_lib reads (``CI``, ``COURSE_LIB_*``, the ``torchrun``
variables, ``MPLBACKEND``). The autouse fixture below pins each of them for the length of one
test and restores what it found afterwards; tests that need another value set it themselves
(``monkeypatch.setenv``, ``monkeypatch.chdir``). ``tests/test_hygiene.py`` runs a few test
files under a deliberately hostile state to prove it.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

# Variables that change what course_lib or its dependencies do. Removed for every test.
COURSE_ENV = (
    "CI", "COURSE_LIB_CI", "COURSE_LIB_SAMPLES", "COURSE_LIB_DEBUG", "COURSE_LIB_WEIGHTS", "COURSE_LIB_DRIVE_URL",
    "COURSE_LIB_DATA_URL",
    "WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
    "PYTHONHASHSEED",
)


@pytest.fixture(autouse=True)
def fixed_process_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """cwd: a fresh empty folder; umask 022; SIGINT: Python's default; SIGTERM: the system's; no course variables."""
    for name in COURSE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # no display in CI, and no GUI window from a test
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # a test that reads "data/..." must fail here too
    umask = os.umask(0o022)
    handler = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    term_handler = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler if handler is not None else signal.SIG_DFL)
        signal.signal(signal.SIGTERM, term_handler if term_handler is not None else signal.SIG_DFL)
        os.umask(umask)

