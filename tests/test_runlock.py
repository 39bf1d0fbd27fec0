"""course_lib.runlock: one writer per run folder, and a dead run never blocks the next."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from course_lib import runlock
from course_lib.runlock import RunLock, RunLockedError


def test_acquire_writes_the_owner_and_release_frees(tmp_path):
    lock = RunLock(tmp_path / "run").acquire()  # creates the folder
    owner = json.loads((tmp_path / "run" / "train.lock").read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert lock.held
    with pytest.raises(RunLockedError, match=rf"in use by another training run \(pid {os.getpid()}"):
        RunLock(tmp_path / "run").acquire()  # a second lock object: another writer
    with pytest.raises(RunLockedError):
        RunLock(tmp_path / "run").check()
    lock.release()
    assert not lock.held and (tmp_path / "run" / "train.lock").read_text() == ""
    with RunLock(tmp_path / "run"):  # free again
        pass
    lock.release()  # releasing twice is harmless


def test_check_takes_nothing_and_acquire_is_reentrant(tmp_path):
    RunLock(tmp_path).check()  # no lock file yet
    lock = RunLock(tmp_path)
    assert lock.acquire() is lock.acquire()
    lock.check()  # its own lock does not block it
    lock.release()
    probe = RunLock(tmp_path)
    probe.check()
    assert not probe.held
    RunLock(tmp_path).acquire().release()  # check() left no OS lock behind


def test_a_killed_holder_leaves_a_free_lock(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from course_lib.runlock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"pid {child.pid} on {socket.gethostname()}.*delete"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    assert json.loads((tmp_path / "train.lock").read_text())["pid"] == child.pid  # left behind
    RunLock(tmp_path).acquire().release()  # ... and not mistaken for a live run


def test_without_flock_the_pid_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "fcntl", None)  # Windows, or a mount without flock
    lock_file = tmp_path / "train.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "since": "x"}))
    RunLock(tmp_path).acquire().release()  # a dead pid on this host: stale
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        lock_file.write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(), "since": "x"}))
        with pytest.raises(RunLockedError, match=rf"pid {live.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        live.kill()
        live.wait()
    lock_file.write_text(json.dumps({"pid": 1, "host": "another-machine", "since": "x"}))
    with pytest.raises(RunLockedError, match="another-machine.*delete"):
        RunLock(tmp_path).check()  # another host: cannot tell, so refuse and say how to override
    lock_file.write_text("not json")
    RunLock(tmp_path).acquire().release()  # an unreadable owner is no owner


def test_trainer_refuses_a_folder_in_use(tmp_path):
    from course_lib.config import TrainConfig
    from course_lib.train import Trainer

    config = TrainConfig(toy_size=4, val_images=0, image_size=32, hole_size=16, max_delta=4, cnum=4,
                         critic_cnum=4, batch_size=2, critic_steps=1, max_iters=1, progress="none",
                         tensorboard=False, device="cpu")
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError):
            Trainer(config, tmp_path / "run")
    trainer = Trainer(config, tmp_path / "run")
    other = RunLock(tmp_path / "run").acquire()  # taken between construction and fit()
    try:
        with pytest.raises(RunLockedError):
            trainer.fit()
    finally:
        other.release()
    assert trainer.fit().status == "finished"
    RunLock(tmp_path / "run").acquire().release()  # fit() released it
