"""Inpainting your own photos with your own masks: conventions, warnings, modes, seams.

Every test makes its own small files under tmp_path; the model is the bundled toy one or a
constant-fill fake (so expected pixels can be worked out by hand).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from course_lib.__main__ import main as cli_main
from course_lib.inpaint_cli import read_mask, training_sizes
from course_lib.inpainting import feather_fill, inpaint, restore_mode

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "course_lib" / "weights" / "toy_cpu.pt"  # trained at 64 px with 32 px holes


class ConstantFill(nn.Module):
    """Stage 2 = a constant colour (per channel), so the hole's expected pixels are known."""

    def __init__(self, rgb=(0.5, -0.5, 0.0)) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.rgb = torch.tensor(rgb).view(1, 3, 1, 1)

    def forward(self, x, mask):
        x2 = self.rgb.to(x.dtype).expand_as(x).clone() * self.w
        return x, x2, torch.zeros(x.shape[0], 3, x.shape[2] // 4, x.shape[3] // 4)


def _photo(path, w=48, h=40, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    if mode == "L":
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    else:
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _box(w=48, h=40, top=12, left=16, bh=10, bw=12):
    m = np.zeros((h, w), bool)
    m[top:top + bh, left:left + bw] = True
    return m


def _cli(capsys, *args):
    capsys.readouterr()
    rc = cli_main(["inpaint", *(str(a) for a in args)])  # through the one error boundary
    out = capsys.readouterr()
    return rc, out.out, out.err


# ----------------------------------------------------------------------------- mask conventions

def test_zero_one_png_is_read_with_one_as_hole(tmp_path):
    hole = _box()
    Image.fromarray(hole.astype(np.uint8)).save(tmp_path / "m01.png")  # values 0 and 1
    mask, notes = read_mask(tmp_path / "m01.png")
    assert np.array_equal(mask[0, 0].numpy() > 0.5, hole) and notes == ["0/1 mask: 1 read as hole"]
    Image.fromarray(hole.astype(np.uint16)).save(tmp_path / "m16.png")  # 16-bit 0/1
    assert np.array_equal(read_mask(tmp_path / "m16.png")[0][0, 0].numpy() > 0.5, hole)
    Image.fromarray((hole * 255).astype(np.uint8)).save(tmp_path / "m255.png")  # the usual mask: no note
    mask, notes = read_mask(tmp_path / "m255.png")
    assert np.array_equal(mask[0, 0].numpy() > 0.5, hole) and notes == []
    mask, notes = read_mask(tmp_path / "m255.png", invert=True)
    assert np.array_equal(mask[0, 0].numpy() > 0.5, ~hole) and notes == ["inverted: black is the hole"]


def test_cli_zero_one_mask_fills_the_hole(tmp_path, capsys):
    src = _photo(tmp_path / "p.png")
    hole = _box()
    Image.fromarray(hole.astype(np.uint8)).save(tmp_path / "m.png")
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png")
    assert rc == 0, err
    assert "0/1 mask: 1 read as hole" in out
    res, inp = np.asarray(Image.open(tmp_path / "o.png")), np.asarray(Image.open(src))
    assert np.array_equal(res[~hole], inp[~hole]) and not np.array_equal(res[hole], inp[hole])


def test_cli_invert_mask_equals_the_white_hole_mask(tmp_path, capsys):
    src = _photo(tmp_path / "p.png")
    hole = _box()
    Image.fromarray((hole * 255).astype(np.uint8)).save(tmp_path / "white.png")
    Image.fromarray((~hole * 255).astype(np.uint8)).save(tmp_path / "black.png")
    assert _cli(capsys, "--image", src, "--mask", tmp_path / "white.png", "--checkpoint", TOY,
                "--output", tmp_path / "a.png")[0] == 0
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "black.png", "--checkpoint", TOY,
                        "--output", tmp_path / "b.png", "--invert-mask")
    assert rc == 0 and "inverted: black is the hole" in out
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))


def test_cli_stops_on_a_mask_that_is_almost_all_hole(tmp_path, capsys):
    src = _photo(tmp_path / "p.png")
    black_hole = ~_box(bh=4, bw=4)  # white everywhere but a small box: 99 % "hole" when read as white = hole
    Image.fromarray((black_hole * 255).astype(np.uint8)).save(tmp_path / "m.png")
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png")
    assert rc == 2 and "Traceback" not in err
    assert "99 % of the 48x40 (WxH) image" in err and "--invert-mask" in err and "--allow-mostly-hole" in err
    assert not (tmp_path / "o.png").exists()
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png", "--invert-mask")
    assert rc == 0, err
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o2.png", "--allow-mostly-hole", "--no-hole-warning")
    assert rc == 0 and (tmp_path / "o2.png").is_file()


# ----------------------------------------------------------------------------- the model's training sizes

def test_training_sizes_fall_back_to_the_release():
    assert training_sizes({}) == {"train_size": 256, "train_hole": 128, "train_holes": "box"}
    assert training_sizes({"image_size": 64, "hole_size": 32, "hole_kind": "strokes"}) == {
        "train_size": 64, "train_hole": 32, "train_holes": "strokes"}


def test_cli_warns_with_the_checkpoints_sizes_and_names_the_flag(tmp_path, capsys):
    # toy model: 64 px images, 32 px holes. A 40x40 hole on a 128 px photo is within 128/256 of
    # the side (64 px, the release's limit) but more than the toy model's 32 px holes.
    src = _photo(tmp_path / "p.png", 128, 128)
    Image.fromarray((_box(128, 128, 40, 40, 40, 40) * 255).astype(np.uint8)).save(tmp_path / "m.png")
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png", "--mode", "exact")
    assert rc == 0
    assert "inpaint: warning:" in err and "40x40 px (WxH" in err and "32x32 px" in err
    assert "--no-hole-warning" in err and "64x64 images" in err
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png", "--mode", "exact", "--no-hole-warning")
    assert rc == 0 and "warning" not in err


def test_free_form_note_only_for_box_trained_models():
    image = np.zeros((64, 64, 3), np.uint8)
    stroke = np.zeros((64, 64), bool)
    stroke[10:14, 10:40] = True
    stroke[10:40, 36:40] = True  # an L: fills 14 % of its 30x30 bounding box
    with pytest.warns(UserWarning, match=r"free-form \(its hole fills 2\d % of its 30x30 px \(WxH\).*--holes box_or_strokes"):
        inpaint(ConstantFill(), image, stroke, train_size=256, train_hole=128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint(ConstantFill(), image, stroke, train_holes="strokes")
        inpaint(ConstantFill(), image, stroke, warn_large_hole=False)
        inpaint(ConstantFill(), image, _box(64, 64), train_size=256, train_hole=128)  # a rectangle


def test_all_hole_mask_warning_names_the_invert_flag():
    with pytest.warns(UserWarning, match=r"all hole on the 48x40 \(WxH\).*--invert-mask"):
        inpaint(ConstantFill(), np.zeros((40, 48, 3), np.uint8), np.ones((40, 48), bool))


def test_sizes_are_width_by_height_in_messages():
    with pytest.raises(ValueError, match=r"mask is 30x20 \(WxH\) but the image is 48x40"):
        inpaint(ConstantFill(), np.zeros((40, 48, 3), np.uint8), np.zeros((20, 30), bool))


# ----------------------------------------------------------------------------- photo modes

def test_grey_photo_comes_back_grey_with_its_known_pixels(tmp_path, capsys):
    src = _photo(tmp_path / "grey.png", mode="L")
    hole = _box()
    out = inpaint(ConstantFill(), Image.open(src), hole)
    assert out.mode == "L"
    grey, res = np.asarray(Image.open(src)), np.asarray(out)
    assert np.array_equal(res[~hole], grey[~hole])
    # the fill (0.5, -0.5, 0.0) -> pixels (191, 64, 128) (rounded), luma by ITU-R 601: 299/587/114
    expected = round((191 * 299 + 64 * 587 + 128 * 114) / 1000)
    assert np.abs(res[hole].astype(int) - expected).max() <= 1
    Image.fromarray((hole * 255).astype(np.uint8)).save(tmp_path / "m.png")
    rc, out_line, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                             "--output", tmp_path / "o.png")
    assert rc == 0 and Image.open(tmp_path / "o.png").mode == "L"


def test_alpha_is_kept_and_other_modes_give_rgb():
    rgba = np.zeros((40, 48, 4), np.uint8)
    rgba[..., 3] = np.arange(48, dtype=np.uint8)[None, :] * 5
    out = inpaint(ConstantFill(), Image.fromarray(rgba), _box())
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert inpaint(ConstantFill(), la, _box()).mode == "LA"
    assert inpaint(ConstantFill(), Image.new("P", (48, 40)), _box()).mode == "RGB"
    sixteen = Image.fromarray(np.full((40, 48), 65535, np.uint16))
    assert restore_mode(Image.new("RGB", (48, 40), (255, 255, 255)), sixteen).mode == "L"


# ----------------------------------------------------------------------------- seams in exact mode

def test_exact_mode_feather_is_off_by_default_and_blends_when_asked():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    hole = _box(top=8, left=8, bh=24, bw=30)
    t = torch.from_numpy(hole.astype(np.float32)).view(1, 1, 40, 48)
    raw = np.asarray(inpaint(ConstantFill(), image, hole, mode="exact", warn_large_hole=False))
    assert (raw[hole] == raw[hole][0]).all()  # the raw constant fill, no blending (release)
    blended = inpaint(ConstantFill(), image, hole, mode="exact", feather=3, warn_large_hole=False)
    blended = np.asarray(blended)
    assert np.array_equal(blended[~hole], image[~hole])  # known pixels exact
    assert not np.array_equal(blended[hole], raw[hole])
    assert np.array_equal(blended[20, 20], raw[20, 20])  # deep in the hole: the fill itself
    # by hand: at the hole's edge pixel (8, 20) half of the 7x7 window's... the library's feather_fill
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1
    fill = torch.tensor([0.5, -0.5, 0.0]).view(1, 3, 1, 1).expand_as(x)
    ref = feather_fill(fill, x, t, 3)
    ref_pixels = ((ref * t + x * (1 - t) + 1) * 127.5).round().clamp(0, 255).byte()[0].permute(1, 2, 0).numpy()
    assert np.array_equal(blended, ref_pixels)
    # edge pixel (row 8, col 20): the 7x7 window holds 3 known rows of 7 (21 of 49): k = 3/7,
    # alpha = 1 - 2k = 1/7; colour = the mean of those known pixels
    known = image[5:8, 17:24].reshape(-1, 3).astype(np.float64) / 127.5 - 1
    value = (1 / 7) * np.array([0.5, -0.5, 0.0]) + (6 / 7) * known.mean(axis=0)
    assert np.abs(blended[8, 20].astype(float) - np.round((value + 1) * 127.5)).max() <= 1


def test_cli_feather(tmp_path, capsys):
    src = _photo(tmp_path / "p.png")
    Image.fromarray((_box() * 255).astype(np.uint8)).save(tmp_path / "m.png")
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png", "--feather", "2")
    assert rc == 0 and "exact" in out
    rc, out, err = _cli(capsys, "--image", src, "--mask", tmp_path / "m.png", "--checkpoint", TOY,
                        "--output", tmp_path / "o.png", "--feather", "-2")
    assert rc == 2 and "--feather must be 0 or more pixels, got -2" in err


def test_mostly_hole_mask_warns_in_the_api():
    mask = np.ones((40, 48), bool)
    mask[:10, :10] = False  # 94.8 % hole
    with pytest.warns(UserWarning, match=r"makes 95 % of the 48x40 \(WxH\) image a hole.*--invert-mask"):
        inpaint(ConstantFill(), np.zeros((40, 48, 3), np.uint8), mask)


def test_the_api_reads_the_sizes_load_generator_found():
    from course_lib.inpaint_cli import load_generator
    toy = load_generator(TOY)
    assert toy.training_sizes == {"train_size": 64, "train_hole": 32, "train_holes": "box"}
    assert "training_sizes" not in str(list(toy.state_dict()))
    image = np.zeros((128, 128, 3), np.uint8)
    hole = _box(128, 128, 40, 40, 40, 40)  # 40 px: over the toy model's 32, under the release's 64 at 128 px
    with pytest.warns(UserWarning, match=r"40x40 px \(WxH.*64x64 images"):
        inpaint(toy, image, hole, mode="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint(toy, image, hole, mode="exact", train_size=256, train_hole=128)  # explicit sizes win
