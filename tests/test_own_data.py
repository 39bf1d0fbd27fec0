"""Training on your own photos and masks: hole kinds, mask folders, validation lists, warnings.

Every test makes its own small files (a few 32-64 px PNGs) under tmp_path.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import masks as M
from course_lib.config import HOLE_KINDS, TrainConfig, load_config
from course_lib.data import FlistDataset, make_dataset, shared_images, val_flist_for, write_flist
from course_lib.train import Trainer, TrainOutOfMemoryError, estimate_train_memory, main as train_main

TINY = dict(data="toy", toy_size=8, val_images=0, image_size=32, hole_size=16, max_delta=4, cnum=4, critic_cnum=4,
            batch_size=2, critic_steps=1, max_iters=1, progress="none", tensorboard=False, device="cpu", seed=0)


def _photos(folder, n, size=40, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(folder / f"p{i:02d}.png")
    return folder


def _mask_png(path, hole, value=255):
    """``hole``: (H, W) bool; written as an L PNG with ``value`` where the hole is, 0 elsewhere."""
    Image.fromarray(np.where(hole, value, 0).astype(np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- hole kinds

def test_config_and_masks_agree_on_the_hole_kinds():
    assert HOLE_KINDS == M.HOLE_KINDS
    assert set(M.FREE_FORM_KINDS) < set(HOLE_KINDS)


@pytest.mark.parametrize("kind", ["strokes", "box_or_strokes", "border"])
def test_training_holes_one_per_image(kind):
    mask, boxes = M.training_holes(kind, 4, 64, hole_size=32, max_delta=8, generator=3)
    assert mask.shape == (4, 1, 64, 64) and len(boxes) == 4
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert all(b.height == b.width == 32 and 0 <= b.top <= 32 and 0 <= b.left <= 32 for b in boxes)
    assert all(mask[i].sum() > 0 for i in range(4))
    assert len({mask[i].numpy().tobytes() for i in range(4)}) > 1  # per image, not one per batch
    again, _ = M.training_holes(kind, 4, 64, hole_size=32, max_delta=8, generator=3)
    assert torch.equal(mask, again)  # seeded


def test_box_kind_keeps_the_release_one_box_per_batch():
    mask, boxes = M.training_holes("box", 4, 64, 32, 8, generator=5)
    ref, ref_boxes = M.random_box_mask(4, 64, 64, 32, 32, max_delta=8, generator=5)
    assert mask.shape == (1, 1, 64, 64) and torch.equal(mask, ref) and boxes == ref_boxes
    per, boxes = M.training_holes("box", 4, 64, 32, 8, generator=5, per_sample=True)
    assert per.shape == (4, 1, 64, 64) and len(boxes) == 4


def test_box_or_strokes_holds_the_whole_inner_box():
    # a box shrinks by at most max_delta // 2 = 4 px per side: its inner 24 x 24 is always hole
    mask, boxes = M.training_holes("box_or_strokes", 6, 64, 32, 8, generator=11)
    for i, (t, l_, h, w) in enumerate(boxes):
        assert bool((mask[i, 0, t + 4:t + h - 4, l_ + 4:l_ + w - 4] == 1).all())
    # and strokes add holes outside the box in some image (the OR), seeded
    outside = [float(mask[i, 0].sum()) - float(mask[i, 0, t:t + h, l_:l_ + w].sum())
               for i, (t, l_, h, w) in enumerate(boxes)]
    assert max(outside) > 0


def test_border_holes_touch_the_edge_and_stay_in_their_box():
    for seed in range(20):
        mask, box = M.border_box_mask(48, 48, 16, max_delta=8, generator=seed)
        m = mask[0, 0]
        assert bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
        t, l_, h, w = box
        inside = torch.zeros_like(m)
        inside[t:t + h, l_:l_ + w] = 1
        assert float((m * (1 - inside)).sum()) == 0 and m.sum() >= 8 * 8


def test_local_box_around_a_hand_made_hole():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:20, 40:50] = 1  # bounding box centre (15, 45)
    assert M.local_box_around(mask, 16) == M.BBox(7, 37, 16, 16)
    corner = torch.zeros(1, 1, 64, 64)
    corner[..., 60:64, 0:3] = 1  # clamped inside the image
    assert M.local_box_around(corner, 16) == M.BBox(48, 0, 16, 16)
    ring = torch.zeros(1, 1, 64, 64)
    ring[..., 0:2, :] = 1
    ring[..., 62:64, :] = 1  # centre (32, 32) is far from any hole pixel
    t, l_, h, w = M.local_box_around(ring, 16)
    assert ring[0, 0, t:t + h, l_:l_ + w].sum() > 0
    assert M.local_box_around(torch.zeros(1, 1, 32, 32), 16) == M.BBox(8, 8, 16, 16)


def test_unknown_kind_and_missing_folder_are_clear_errors():
    with pytest.raises(ValueError, match="unknown hole kind 'circles'; choose one of box, strokes"):
        M.training_holes("circles", 2, 32, 16, 4)
    with pytest.raises(ValueError, match="mask_folder"):
        M.training_holes("folder", 2, 32, 16, 4)
    with pytest.raises(ValueError, match="hole_kind must be one of"):
        TrainConfig(hole_kind="circles")
    with pytest.raises(ValueError, match="--set mask_folder=PATH"):
        TrainConfig(hole_kind="folder")


# ----------------------------------------------------------------------------- your own masks

def _mask_folder(tmp_path, inverted=False):
    folder = tmp_path / "my_masks"
    folder.mkdir()
    a = np.zeros((20, 30), bool)
    a[2:8, 3:12] = True  # off-centre: its four flips are four different masks
    b = np.zeros((20, 30), bool)
    b[10:18, 20:28] = True
    for name, hole in (("a", a), ("b", b)):
        _mask_png(folder / f"{name}.png", ~hole if inverted else hole)
    return folder, {"a": a, "b": b}


def _resized(hole, size):
    pil = Image.fromarray(hole.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(pil) > 127


def test_mask_folder_draws_the_users_masks_flipped(tmp_path):
    folder, holes = _mask_folder(tmp_path)
    source = M.MaskFolder(folder, 16)
    allowed = []
    for hole in holes.values():
        r = _resized(hole, 16)
        allowed += [r, r[:, ::-1], r[::-1], r[::-1, ::-1]]
    g = torch.Generator().manual_seed(0)
    drawn = [source.draw(g)[0, 0].numpy() > 0.5 for _ in range(60)]
    for d in drawn:
        assert any(np.array_equal(d, a) for a in allowed)
    assert len({d.tobytes() for d in drawn}) == 8  # both masks, all four flips
    mask, boxes = M.training_holes("folder", 3, 16, 8, 2, generator=1, folder=source)
    assert mask.shape == (3, 1, 16, 16) and all(b.height == 8 for b in boxes)


def test_mask_folder_inverted_masks(tmp_path):
    folder, holes = _mask_folder(tmp_path, inverted=True)
    with pytest.raises(ValueError, match=r"on average \d+ % hole.*mask_invert=true.*--invert-masks"):
        M.MaskFolder(folder, 16)
    source = M.MaskFolder(folder, 16, invert=True)
    assert np.array_equal(source.load(0).numpy(), _resized(holes["a"], 16))


def test_mask_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        M.MaskFolder(tmp_path / "empty", 16)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        M.MaskFolder(tmp_path / "nowhere", 16)
    (tmp_path / "full").mkdir()
    _mask_png(tmp_path / "full" / "ok.png", np.pad(np.ones((4, 4), bool), 6))
    _mask_png(tmp_path / "full" / "zz_all.png", np.ones((16, 16), bool))
    with pytest.raises(ValueError, match=r"zz_all\.png.*all hole"):
        M.MaskFolder(tmp_path / "full", 16)


# ----------------------------------------------------------------------------- the trainer

@pytest.mark.parametrize("kind", ["strokes", "box_or_strokes", "border", "folder", "box_per_sample"])
def test_trainer_trains_on_every_hole_kind(kind, tmp_path):
    extra = {"hole_kind": kind}
    if kind == "folder":
        extra["mask_folder"] = str(_mask_folder(tmp_path)[0])
    if kind == "box_per_sample":
        extra = {"hole_kind": "box", "hole_per_sample": True}
    trainer = Trainer(TrainConfig(**{**TINY, **extra, "val_images": 2, "val_every": 1}), tmp_path / "run")
    mask, boxes = trainer.sample_hole(2)
    assert mask.shape == (2, 1, 32, 32) and len(boxes) == 2
    result = trainer.fit()
    assert result.status == "finished" and all(np.isfinite(v) for v in result.last_losses.values())
    assert (tmp_path / "run" / "val.csv").is_file()


def test_validation_list_from_make_flist(tmp_path, capsys):
    _photos(tmp_path / "photos", 10)
    write_flist(tmp_path / "photos", tmp_path / "train.flist", shuffle=True, val_fraction=0.2)
    assert val_flist_for(tmp_path / "train.flist") == tmp_path / "train_val.flist"
    val = make_dataset("flist", root=tmp_path / "train.flist", split="val", size=32)
    train = make_dataset("flist", root=tmp_path / "train.flist", split="train", size=32)
    assert len(val) == 2 and len(train) == 8 and not shared_images(train.paths, val.paths)
    config = TrainConfig(**{**TINY, "data": "flist", "data_root": str(tmp_path / "train.flist"), "val_images": 4})
    trainer = Trainer(config, tmp_path / "run")
    assert trainer._val_dataset.paths == val.paths
    err = capsys.readouterr().err
    assert "TRAINING images" not in err
    assert "only 8 training images (fewer than 500)" in err and "flip=true" in err  # tiny data set


def test_loud_warning_when_validation_images_are_training_images(tmp_path, capsys):
    _photos(tmp_path / "photos", 6)
    write_flist(tmp_path / "photos", tmp_path / "all.flist")  # no --val-fraction: no held-out list
    with pytest.warns(RuntimeWarning, match="uses the TRAINING images"):
        make_dataset("flist", root=tmp_path / "all.flist", split="val", size=32)
    config = TrainConfig(**{**TINY, "data": "flist", "data_root": str(tmp_path / "all.flist"), "val_images": 3})
    with pytest.warns(RuntimeWarning):
        Trainer(config, tmp_path / "run")
    err = capsys.readouterr().err
    assert "WARNING: 3 of the 3 validation images are TRAINING images" in err and "--val-fraction" in err
    # an explicit held-out folder silences it
    _photos(tmp_path / "held_out", 3, seed=9)
    Trainer(TrainConfig(**{**config.to_dict(), "val_flist": str(tmp_path / "held_out")}), tmp_path / "run2")
    assert "TRAINING images" not in capsys.readouterr().err


def test_flip_mirrors_some_items_and_keeps_the_crops(tmp_path):
    _photos(tmp_path / "photos", 10)
    write_flist(tmp_path / "photos", tmp_path / "train.flist")
    plain = FlistDataset(tmp_path / "train.flist", size=32)
    flipped = FlistDataset(tmp_path / "train.flist", size=32, flip=True)
    kinds = []
    for i in range(10):
        a, b = plain[i], flipped[i]
        kinds.append("same" if torch.equal(a, b) else "mirrored" if torch.equal(a.flip(-1), b) else "other")
    assert "other" not in kinds and "same" in kinds and "mirrored" in kinds


def test_tensorboard_missing_is_said_once(tmp_path, capsys, monkeypatch):
    import course_lib.train as train_module
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    monkeypatch.setattr(train_module, "_TENSORBOARD_NOTED", False)
    for run in ("a", "b"):
        Trainer(TrainConfig(**{**TINY, "tensorboard": True}), tmp_path / run).fit()
    err = capsys.readouterr().err
    assert err.count("tensorboard is not installed") == 1 and ".[tensorboard]" in err


def test_out_of_memory_names_smaller_sizes(tmp_path, monkeypatch, capsys):
    def explode(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(Trainer, "train_step", explode)
    config = TrainConfig(**{**TINY, "batch_size": 8, "image_size": 256, "hole_size": 128, "max_delta": 32})
    trainer = Trainer(config, tmp_path / "run")
    with pytest.raises(TrainOutOfMemoryError, match=r"batch_size=4.*image_size=128 --set hole_size=64"):
        trainer.fit()
    from course_lib.__main__ import main as cli
    capsys.readouterr()
    rc = cli(["train", "--out", str(tmp_path / "cli"), "--set", "toy_size=8", "--set", "image_size=32",
              "--set", "hole_size=16", "--set", "max_delta=4", "--set", "cnum=4", "--set", "critic_cnum=4",
              "--set", "batch_size=2", "--set", "progress=none", "--set", "tensorboard=false",
              "--set", "device=cpu", "--set", "val_images=0"])
    err = capsys.readouterr().err
    assert rc == 2 and "out of cpu memory" in err and "batch_size=1" in err and "Traceback" not in err


def test_memory_estimate_counts_weights_and_grows_with_the_batch():
    config = TrainConfig(**TINY)
    est2 = estimate_train_memory(config, 2)
    est6 = estimate_train_memory(config, 6)
    from course_lib.critics import GlobalCritic, LocalCritic
    from course_lib.generator import Generator
    n = sum(p.numel() for m in (Generator(4), LocalCritic(4, size=16), GlobalCritic(4, size=32)) for p in m.parameters())
    assert est2["parameters"] == 4 * 4 * n  # float32 weights, gradients, Adam's two moments
    assert est2["activations_per_image"] > 0
    # the images alone that the critic step saves: real + fake at both critics, float32
    assert est2["activations_per_image"] > 2 * 3 * 32 * 32 * 4
    assert est6["total"] - est2["total"] == 4 * est2["activations_per_image"]


def test_train_cli_shorthands(tmp_path, capsys):
    folder = _mask_folder(tmp_path)[0]
    assert train_main(["--out", str(tmp_path / "r"), "--print-config", "--holes", "strokes",
                       "--val-flist", "v.flist"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hole_kind"] == "strokes" and printed["val_flist"] == "v.flist"
    assert train_main(["--out", str(tmp_path / "r"), "--print-config", "--mask-folder", str(folder),
                       "--invert-masks"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["hole_kind"], printed["mask_folder"], printed["mask_invert"]) == ("folder", str(folder), True)
    # an explicit --set wins over a shorthand
    assert train_main(["--out", str(tmp_path / "r"), "--print-config", "--holes", "strokes",
                       "--set", "hole_kind=border"]) == 0
    assert json.loads(capsys.readouterr().out)["hole_kind"] == "border"


def test_shipped_configs_keep_the_release_holes():
    for name in ("toy_cpu", "places2", "celeba", "celebahq"):
        config = load_config(name)
        assert (config.hole_kind, config.hole_per_sample, config.flip, config.val_flist) == ("box", False, False, "")


def test_memory_table_rows_follow_the_estimate():
    from course_lib.train import memory_table
    config = TrainConfig(**TINY)
    est = estimate_train_memory(config, 1)
    table = memory_table(config, (1, 3))
    lines = table.splitlines()
    assert lines[0] == "| batch_size | estimated GiB (float32) |" and len(lines) == 4
    for line, b in zip(lines[2:], (1, 3)):
        gib = (est["parameters"] + est["activations_fixed"] + b * est["activations_per_image"]) / 2**30
        assert line == f"| {b} | {gib:.1f} |"


def test_train_cli_runs_on_your_photos_and_inverted_masks(tmp_path, capsys):
    """The whole workflow from the command line: make-flist with a held-out share, your masks
    (black = hole), flips; one step, validated on the held-out list."""
    from course_lib.__main__ import main as cli
    _photos(tmp_path / "photos", 10)
    folder, _ = _mask_folder(tmp_path, inverted=True)
    assert cli(["make-flist", str(tmp_path / "photos"), str(tmp_path / "train.flist"), "--val-fraction", "0.2"]) == 0
    rc = cli(["train", "--out", str(tmp_path / "run"), "--mask-folder", str(folder), "--invert-masks",
              "--set", "data=flist", "--set", f"data_root={tmp_path / 'train.flist'}", "--set", "flip=true",
              "--set", "image_size=32", "--set", "hole_size=16", "--set", "max_delta=4", "--set", "cnum=4",
              "--set", "critic_cnum=4", "--set", "batch_size=2", "--set", "critic_steps=1", "--set", "max_iters=1",
              "--set", "progress=none", "--set", "tensorboard=false", "--set", "device=cpu",
              "--set", "val_images=2", "--set", "val_every=1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "TRAINING images" not in err and "only 8 training images" in err and "flip=true" not in err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["hole_kind"], saved["mask_invert"], saved["flip"]) == ("folder", True, True)
    assert (tmp_path / "run" / "val.csv").read_text().count("\n") == 2  # header + step 1
