"""Checkpoint files: atomic writes, keep-last-N, prefix stripping, RNG capture (weights_only-safe)."""
import random

import numpy as np
import pytest
import torch

from course_lib import checkpoint as C


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "step_00000001.pt"
    C.atomic_save({"w": torch.ones(3)}, path)
    real_save = torch.save

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")  # a crash in the middle of writing
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        C.atomic_save({"w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["step_00000001.pt"]  # no temp file left


def test_keep_last_n_and_latest(tmp_path):
    for step in (5, 10, 15, 20, 100):
        C.atomic_save({"step": step}, C.checkpoint_path(tmp_path / "checkpoints", step))
    (tmp_path / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    deleted = C.prune_checkpoints(tmp_path / "checkpoints", keep_last=2)
    assert [p.name for p in deleted] == ["step_00000005.pt", "step_00000010.pt", "step_00000015.pt"]
    assert [p.name for p in C.list_checkpoints(tmp_path / "checkpoints")] == ["step_00000020.pt", "step_00000100.pt"]
    assert C.latest_checkpoint(tmp_path).name == "step_00000100.pt"  # run dir or its checkpoints/
    assert C.latest_checkpoint(tmp_path / "empty") is None
    with pytest.raises(ValueError, match="keep_last"):
        C.prune_checkpoints(tmp_path, 0)


def test_strip_prefixes_of_ddp_and_compile():
    sd = {"module._orig_mod.conv1.weight": 1, "_orig_mod.module.fc.bias": 2, "coarse.conv1.bias": 3}
    assert C.strip_prefixes(sd) == {"conv1.weight": 1, "fc.bias": 2, "coarse.conv1.bias": 3}


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    g = torch.Generator().manual_seed(7)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gauss_next in Python's state
    np.random.standard_normal()  # and a cached Gaussian in NumPy's
    C.atomic_save({"rng": C.capture_rng_state(g)}, tmp_path / "rng.pt")
    expected = (random.random(), random.gauss(0, 1), np.random.standard_normal(), np.random.rand(),
                torch.rand(2).tolist(), torch.rand(1, generator=g).item())
    random.seed(99), np.random.seed(99), torch.manual_seed(99), g.manual_seed(99)
    state = torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]
    C.restore_rng_state(state, g)
    again = (random.random(), random.gauss(0, 1), np.random.standard_normal(), np.random.rand(),
             torch.rand(2).tolist(), torch.rand(1, generator=g).item())
    assert again == expected


def test_load_checkpoint_rejects_foreign_files(tmp_path):
    torch.save({"weights": torch.ones(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a course_lib training checkpoint"):
        C.load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="no step_"):
        C.load_checkpoint(tmp_path)
    torch.save({"kind": C.CHECKPOINT_KIND, "format_version": 99}, tmp_path / "y.pt")
    with pytest.raises(ValueError, match="format 99"):
        C.load_checkpoint(tmp_path / "y.pt")
