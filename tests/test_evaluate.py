"""Evaluation: fixed masks, the non-learned baseline, the model/baseline table, the CLI."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from course_lib.__main__ import main as cli_main
from course_lib.evaluate import baseline_fill, evaluate, evaluation_mask, evaluation_masks, format_table, main
from course_lib.generator import Generator
from course_lib.toy import ToyDataset

REPO = Path(__file__).resolve().parents[1]


def test_evaluation_masks_are_fixed_and_box_shaped():
    a = evaluation_masks(5, 64, 64, seed=3)
    b = evaluation_masks(5, 64, 64, seed=3)
    assert a.shape == (5, 1, 64, 64) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, evaluation_masks(5, 64, 64, seed=4))
    assert torch.equal(a[2:3], evaluation_mask(2, 64, 64, seed=3))  # independent of batching
    for m in a:
        rows = torch.nonzero(m[0].any(dim=1)).flatten()
        cols = torch.nonzero(m[0].any(dim=0)).flatten()
        h, w = len(rows), len(cols)
        assert 24 <= h <= 32 and 24 <= w <= 32  # half the side, shrunk by 0..side/16 per side
        assert m.sum() == h * w  # a filled rectangle
    # another box side (a config's hole_size): 16 px shrunk by 0..2 per side -> 12..16 px
    for m in evaluation_masks(8, 64, 64, seed=3, box=16):
        rows = torch.nonzero(m[0].any(dim=1)).flatten()
        cols = torch.nonzero(m[0].any(dim=0)).flatten()
        assert 12 <= len(rows) <= 16 and 12 <= len(cols) <= 16 and m.sum() == len(rows) * len(cols)
    assert torch.equal(evaluation_masks(3, 64, 64, seed=3, box=32), a[:3])  # box=32 is the default
    for bad in (0, 65, 2.5, True):
        with pytest.raises(ValueError, match="box"):
            evaluation_mask(0, 64, 64, box=bad)
    s = evaluation_mask(0, 64, 64, seed=0, kind="strokes")
    assert s.shape == (1, 1, 64, 64) and 0 < s.mean() < 1
    with pytest.raises(ValueError, match="mask kind"):
        evaluation_mask(0, 64, 64, kind="circle")


def test_baseline_fill_keeps_known_pixels_and_ignores_the_hole():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:20, 6:30] = 1
    mask[1, :, 10:31, 0:12] = 1
    for method in ("diffusion", "mean"):
        y = baseline_fill(x, mask, method)
        assert torch.equal(y * (1 - mask), x * (1 - mask))
        x2 = x + 5 * mask  # other values inside the hole change nothing
        assert torch.allclose(baseline_fill(x2, mask, method), y)
    # mean fill: the hole gets each channel's mean over the known pixels
    y = baseline_fill(x, mask, "mean")
    known = 1 - mask[0, 0]
    want = (x[0] * known).sum(dim=(1, 2)) / known.sum()
    assert torch.allclose(y[0, :, 10, 10], want, atol=1e-6)


def test_diffusion_fill_reproduces_smooth_images():
    H, W = 40, 40
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    ramp = (0.02 * xx - 0.01 * yy - 0.2).expand(1, 3, H, W)  # harmonic: the exact answer is itself
    mask = torch.zeros(1, 1, H, W)
    mask[..., 10:30, 8:33] = 1
    assert (baseline_fill(ramp, mask) - ramp).abs().max() < 0.01
    const = torch.full((1, 3, H, W), 0.3)
    assert torch.allclose(baseline_fill(const, mask), const, atol=1e-6)


def test_evaluate_tiny_model_gives_finite_model_and_baseline_rows():
    torch.manual_seed(0)
    generator = Generator(cnum=4)
    ds = ToyDataset(n=6, size=32, seed=1)
    r = evaluate(generator, ds, n_images=5, seed=0, batch_size=2)
    assert set(r) >= {"model", "baseline", "ground_truth", "n_images", "mask_kind"}
    assert r["n_images"] == 5 and r["image_size"] == [32, 32]
    for row in ("model", "baseline"):
        for name in ("l1", "l2", "psnr", "tv", "ssim", "hole_l1", "hole_psnr", "hole_ssim"):
            assert math.isfinite(r[row][name]), (row, name)
    r2 = evaluate(generator, ds, n_images=5, seed=0, batch_size=4)  # same masks, any batch size
    for name, value in r["model"].items():
        assert r2["model"][name] == pytest.approx(value, rel=1e-4, abs=1e-5)
    table = format_table(r)
    assert "model" in table and "baseline" in table and "PSNR" in table


def test_evaluate_composites_the_output_like_the_release():
    ds = ToyDataset(n=3, size=32, seed=2)

    def zeros(x, mask):  # a "model" that paints every hole pixel 0 (mid-grey)
        z = torch.zeros_like(x)
        return z, z, z

    r = evaluate(zeros, ds, n_images=3, seed=5, batch_size=3)
    # independently: the hole L1 of a grey fill is mean |x| / 2 over the hole, in percent
    want = []
    for i in range(3):
        x, m = ds[i], evaluation_mask(i, 32, 32, seed=5)[0]
        want.append(100 * ((x * m).abs().sum() / (2 * 3 * m.sum())).item())
    assert r["model"]["hole_l1"] == pytest.approx(sum(want) / 3, rel=1e-5)
    ratio = [evaluation_mask(i, 32, 32, seed=5).mean().item() for i in range(3)]
    assert r["model"]["l1"] == pytest.approx(sum(w * q for w, q in zip(want, ratio)) / 3, rel=1e-5)


def test_relative_errors_and_their_labels():
    """relative=True: the paper's relative l1 / squared relative l2 (release issue #146), labelled as such."""
    ds = ToyDataset(n=3, size=32, seed=2)

    def zeros(x, mask):  # paints every hole pixel 0 in [-1, 1], i.e. 0.5 in [0, 1]
        z = torch.zeros_like(x)
        return z, z, z

    r = evaluate(zeros, ds, n_images=3, seed=5, batch_size=2, relative=True)
    assert r["errors"] == "relative"
    hole_l1, l1, l2 = [], [], []
    for i in range(3):  # independently, on [0, 1]: only the hole differs from the ground truth
        x, m = (ds[i] + 1) / 2, evaluation_mask(i, 32, 32, seed=5)[0]  # (3, 32, 32), (1, 32, 32)
        diff = (x - 0.5) * m
        hole_l1.append(100 * (diff.abs().sum() / (x * m).sum()).item())
        l1.append(100 * (diff.abs().sum() / x.sum()).item())
        l2.append(100 * ((diff**2).sum() / (x**2).sum()).item())
    assert r["model"]["hole_l1"] == pytest.approx(sum(hole_l1) / 3, rel=1e-5)
    assert r["model"]["l1"] == pytest.approx(sum(l1) / 3, rel=1e-5)
    assert r["model"]["l2"] == pytest.approx(sum(l2) / 3, rel=1e-5)
    absolute = evaluate(zeros, ds, n_images=3, seed=5, batch_size=2)
    assert absolute["errors"] == "absolute"
    assert absolute["model"]["psnr"] == pytest.approx(r["model"]["psnr"])  # only L1 / L2 change
    assert absolute["model"]["l1"] != pytest.approx(r["model"]["l1"])
    table, table_abs = format_table(r), format_table(absolute)
    assert "rel L1 %" in table and "hole rel L1 %" in table and "abs L1" not in table and "#146" in table
    assert "abs L1 %" in table_abs and "abs L2 %" in table_abs and "rel L1" not in table_abs
    assert "absolute errors" in table_abs and "--relative" in table_abs
    with pytest.raises(ValueError, match="'absolute' or 'relative'"):
        format_table({**r, "errors": "percent"})


def test_cli_with_checkpoint_csv_and_baseline_only(tmp_path, capsys):
    torch.manual_seed(0)
    generator = Generator(cnum=4)
    ckpt = tmp_path / "step_1.pt"
    torch.save({"generator": generator.state_dict(), "config": {"cnum": 4, "image_size": 32}}, ckpt)
    out = tmp_path / "eval.csv"
    assert main(["--checkpoint", str(ckpt), "--data", "toy", "--n", "4", "--batch-size", "2", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model" in printed and "baseline" in printed and "4 images of 32x32" in printed
    rows = {r["row"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"model", "baseline", "ground_truth"}
    assert math.isfinite(float(rows["model"]["psnr"])) and rows["ground_truth"]["psnr"] == ""
    assert rows["model"]["errors"] == "absolute" and "abs L1 %" in printed
    assert main(["--data", "toy", "--n", "2", "--size", "32", "--relative", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rel L1 %" in printed and "relative l1" in printed
    assert {r["row"]: r for r in csv.DictReader(out.open())}["baseline"]["errors"] == "relative"
    # a trainer checkpoint in a run folder: the newest step_*.pt is used
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    torch.save({"kind": "course_lib.train", "format_version": 1, "step": 3, "generator": generator.state_dict(),
                "config": {"cnum": 4, "image_size": 32}}, run / "step_00000003.pt")
    assert main(["--checkpoint", str(tmp_path / "run"), "--data", "toy", "--n", "2"]) == 0
    assert "2 images of 32x32" in capsys.readouterr().out
    # exported generator weights in float16 (the trainer's --export-half)
    half = tmp_path / "toy_half.pt"
    torch.save({"kind": "course_lib.generator", "format_version": 1, "config": {"cnum": 4, "image_size": 32},
                "generator": {k: v.half() for k, v in generator.state_dict().items()}}, half)
    assert main(["--checkpoint", str(half), "--data", "toy", "--n", "2"]) == 0
    capsys.readouterr()
    # a bare state dict: cnum is read from the weights
    bare = tmp_path / "bare.pt"
    torch.save(generator.state_dict(), bare)
    assert main(["--checkpoint", str(bare), "--data", "toy", "--size", "32", "--n", "2"]) == 0
    capsys.readouterr()
    # no checkpoint: the baseline alone, on the bundled sample photos
    assert main(["--data", str(REPO / "data" / "samples" / "images"), "--n", "2", "--mask", "strokes"]) == 0
    printed = capsys.readouterr().out
    assert "baseline only" in printed and "2 images of 256x256" in printed
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", "toy"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_psnr_by_kind_by_hand():
    from course_lib.evaluate import psnr_by_kind
    x = torch.zeros(3, 3, 4, 4)
    filled = x.clone()
    filled[0] += 0.2  # error 0.1 on [0, 1]: 20 dB
    filled[1] += 0.02  # 0.01: 40 dB
    filled[2] += 0.002  # 0.001: 60 dB
    mask = torch.ones(1, 1, 4, 4)
    scores = psnr_by_kind(x, filled, mask, ["a", "b", "a"])
    assert list(scores) == ["a", "b"]
    assert scores["a"] == pytest.approx(40.0, abs=1e-3) and scores["b"] == pytest.approx(40.0, abs=1e-3)
    with pytest.raises(ValueError, match="one kind per image"):
        psnr_by_kind(x, filled, mask, ["a"])


def test_psnr_by_hole_size_by_hand():
    from course_lib.evaluate import psnr_by_hole_size

    x = torch.full((2, 3, 16, 16), 0.5)  # 0.75 in [0, 1]

    def zeros(x_in, mask):  # fills every hole with 0 (0.5 in [0, 1]): error 0.25 per pixel
        z = torch.zeros_like(x_in)
        return z, z, z

    model, smooth = psnr_by_hole_size(zeros, x, [2, 8])
    assert model == pytest.approx([10 * math.log10(16)] * 2, abs=1e-4)  # mse 0.0625 -> 12.04 dB
    assert all(v > 60 for v in smooth)  # a smooth fill of a flat image is (nearly) exact
    with pytest.raises(ValueError, match="between 1 and 15"):
        psnr_by_hole_size(zeros, x, [16])
    with pytest.raises(ValueError, match="square images"):
        psnr_by_hole_size(zeros, torch.zeros(1, 3, 8, 16), [2])
