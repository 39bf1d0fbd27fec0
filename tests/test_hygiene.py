"""The suite passes whatever process state it inherits (cwd, umask, SIGINT, SIGTERM, environment).

``tests/conftest.py`` pins that state for every test. This test proves it: it runs test files
that touch files, signals, plots and environment variables in a child pytest started from
``/`` with umask 077, SIGINT and SIGTERM ignored (as under ``nohup``) and course variables set to values
that would change behaviour, and requires them to pass.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Files that write checkpoints (umask, cwd), install a SIGINT handler, draw figures (MPLBACKEND)
# and read COURSE_LIB_SAMPLES, chosen to be quick.
HOSTILE_FILES = ("test_checkpoint.py", "test_plots.py", "test_config.py", "test_seed.py")


def _hostile_child() -> None:  # runs in the child before exec
    os.umask(0o077)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_suite_passes_under_a_hostile_process_state() -> None:
    env = dict(os.environ)
    env.update({
        "CI": "true", "COURSE_LIB_CI": "1", "COURSE_LIB_SAMPLES": "/nonexistent/photos", "COURSE_LIB_DEBUG": "1",
        "MPLBACKEND": "TkAgg", "WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "3",
        "PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "1",
    })
    files = [str(TESTS / name) for name in HOSTILE_FILES]
    files.append(str(TESTS / "test_train.py") + "::test_sigint_finishes_the_step_then_saves")
    files.append(str(TESTS / "test_faults.py") + "::test_a_second_sigterm_abandons_the_step_and_still_saves")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(TESTS.parent), *files],
        cwd="/", env=env, preexec_fn=_hostile_child, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, (
        "tests fail when started from / with umask 077, SIGINT and SIGTERM ignored and CI/COURSE_LIB_* set:\n"
        + proc.stdout[-4000:] + proc.stderr[-2000:])
    assert " passed" in proc.stdout
