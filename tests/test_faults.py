"""``kill -9`` during training, 10 times: nothing is corrupt, nothing saved is lost, and the end is exact.

A training run (``python -m course_lib train --resume``, a checkpoint after every step) is
killed with SIGKILL ten times: five times at a random moment a few steps after its newest
checkpoint, five times the instant a checkpoint's temporary file appears (inside
:func:`course_lib.checkpoint.atomic_save`, between ``torch.save`` and the rename). After each
kill every ``step_*.pt`` must load, and the newest step must not go back. Then the run is
resumed to the end, and its weights must equal, bit for bit, those of a run that was never
interrupted (same process kind, one thread, so the same CPU kernels).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from course_lib.checkpoint import list_checkpoints, load_checkpoint, remove_stale_temporaries

MAX_ITERS = 40
SETTINGS = {
    "toy_size": 8, "image_size": 32, "hole_size": 16, "max_delta": 4, "cnum": 4, "critic_cnum": 4,
    "batch_size": 2, "critic_steps": 1, "max_iters": MAX_ITERS, "progress": "none", "tensorboard": "false",
    "device": "cpu", "val_images": 0, "snapshot_every": 1, "keep_last": 3, "image_every": 100000,
    "val_every": 100000, "log_every": 100000, "seed": 3,
}


def _command(out: Path) -> list[str]:
    sets = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "course_lib", "train", "--out", str(out), "--resume", *sets]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_LIB_", "OMP_", "MKL_"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _newest_step(folder: Path) -> int:
    found = list_checkpoints(folder)
    return int(found[-1].name[5:13]) if found else 0


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")] if folder.is_dir() else []


def _wait(proc: subprocess.Popen, condition, what: str, timeout: float = 120.0) -> bool:
    """Poll every millisecond until ``condition()``; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)
    return True


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == MAX_ITERS
    return {name: ckpt[name] for name in ("generator", "local_critic", "global_critic")}


def test_remove_stale_temporaries_only_removes_temporary_files(tmp_path):
    (tmp_path / "step_00000001.pt").write_bytes(b"x")
    (tmp_path / ".step_00000002.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_bytes(b"not ours: no leading dot")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".step_00000002.pt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "step_00000001.pt"]
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_ten_kill_9s_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = subprocess.run(_command(tmp_path / "reference"), env=_env(), capture_output=True, text=True,
                               timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    run = tmp_path / "killed"
    ckpts = run / "checkpoints"
    rng = random.Random(20181)
    newest, mid_save_kills, log = 0, 0, []
    for kill in range(10):
        proc = subprocess.Popen(_command(run), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        if kill % 2:  # the instant a checkpoint is being written
            alive = _wait(proc, lambda: bool(_temporaries(ckpts)), "a checkpoint being written")
        else:  # a random moment one to three steps after the newest checkpoint
            target = newest + rng.randint(1, 3)
            alive = _wait(proc, lambda: _newest_step(ckpts) >= target, f"step {target}")
            if alive:
                time.sleep(rng.uniform(0.0, 0.12))
        if alive and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (-signal.SIGKILL, 0), f"kill {kill}: the run failed by itself:\n{err[-3000:]}"
        assert proc.returncode == -signal.SIGKILL, f"kill {kill}: the run finished before it could be killed"
        if kill % 2 and _temporaries(ckpts):
            mid_save_kills += 1
        # No checkpoint is ever corrupt, and nothing that was saved is lost.
        for path in list_checkpoints(ckpts):
            ckpt = load_checkpoint(path)
            assert ckpt["step"] == int(path.name[5:13]), f"{path.name} holds step {ckpt['step']}"
        after = _newest_step(ckpts)
        assert after >= newest, f"kill {kill}: the newest checkpoint went back from step {newest} to {after}"
        log.append((kill, newest, after))
        newest = after
        assert newest < MAX_ITERS, f"the run reached the end after {kill + 1} kills; raise MAX_ITERS"
    assert mid_save_kills >= 1, f"no kill landed inside a checkpoint save ({log})"

    final = subprocess.run(_command(run), env=_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert not _temporaries(ckpts), "the resumed run left the killed runs' temporary files"
    ours, theirs = _weights(run), _weights(tmp_path / "reference")
    for name in theirs:
        for key, value in theirs[name].items():
            assert torch.equal(ours[name][key], value), (
                f"{name}.{key} differs from the uninterrupted run after 10 kills (newest steps per kill: {log})")
