"""Tests for course_lib.images: conversions, mask reading rules, files."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.images import (
    image_info,
    image_to_tensor,
    load_image,
    load_mask,
    mask_to_image,
    mask_to_tensor,
    save_image,
    tensor_to_image,
    to_uint8,
)


def _rgb(h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


# ---------------------------------------------------------------- images

def test_image_to_tensor_values_and_layout():
    a = np.zeros((2, 3, 3), np.uint8)
    a[0, 1] = (0, 255, 51)  # row 0, col 1: R=0, G=255, B=51
    x = image_to_tensor(a)
    assert x.shape == (1, 3, 2, 3) and x.dtype == torch.float32
    assert x[0, :, 0, 1].tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])
    assert torch.equal(image_to_tensor(Image.fromarray(a)), x)


def test_every_uint8_value_round_trips_exactly():
    a = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    back = tensor_to_image(image_to_tensor(a), "array")
    assert back.dtype == np.uint8 and np.array_equal(back, a)
    pil = tensor_to_image(image_to_tensor(Image.fromarray(a)), "pil")
    assert pil.mode == "RGB" and np.array_equal(np.asarray(pil), a)


def test_to_uint8_saturates():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]  # 127.5 rounds half to even -> 128


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "I;16"])
def test_any_pil_mode_becomes_rgb(mode):
    base = Image.fromarray(_rgb(6, 4))
    if mode == "I;16":
        image = Image.fromarray((np.arange(24).reshape(6, 4) * 2570).astype(np.uint16))
    else:
        image = base.convert(mode)
    x = image_to_tensor(image)
    assert x.shape == (1, 3, 6, 4)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    if mode == "I;16":  # 16-bit grey scaled to 8 bits: value v * 2570 -> v * 10
        assert float(x[0, 0, 0, 1]) == pytest.approx(10 / 127.5 - 1)


def test_rgba_drops_alpha_keeping_colour():
    a = np.zeros((2, 2, 4), np.uint8)
    a[..., :3] = (10, 20, 30)
    a[..., 3] = 0  # fully transparent: the stored colour is kept
    x = image_to_tensor(Image.fromarray(a))
    assert to_uint8(x)[0, :, 0, 0].tolist() == [10, 20, 30]


def test_tensor_inputs_keep_form():
    x = torch.rand(3, 4, 5, dtype=torch.float64) * 2 - 1
    assert image_info(x).batched is False
    t = image_to_tensor(x)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float64
    back = tensor_to_image(t, image_info(x))
    assert back.shape == (3, 4, 5) and back.dtype == torch.float64 and torch.equal(back, x)
    u = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    back = tensor_to_image(image_to_tensor(u), image_info(u))
    assert back.dtype == torch.uint8 and torch.equal(back, u)


def test_bad_images_raise_clear_errors():
    with pytest.raises(TypeError, match="uint8"):
        image_to_tensor(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image_to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="127.5"):
        image_to_tensor(torch.full((1, 3, 4, 4), 200.0))
    with pytest.raises(ValueError, match="RGB"):
        image_to_tensor(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        image_to_tensor(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(TypeError, match="PIL image"):
        image_to_tensor([[0, 1]])
    with pytest.raises(ValueError, match="batch of 2"):
        tensor_to_image(torch.zeros(2, 3, 4, 4), "pil")


def test_files_round_trip(tmp_path):
    a = _rgb(9, 11, seed=3)
    save_image(a, tmp_path / "a.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "a.png")), a)
    save_image(image_to_tensor(a), tmp_path / "b.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "b.png")), a)
    Image.fromarray(a).convert("L").save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").mode == "RGB"
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------- masks

def test_mask_uint8_threshold_edge():
    a = np.array([[0, 127, 128, 255]], np.uint8)
    expected = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
    assert torch.equal(mask_to_tensor(a), expected)
    assert torch.equal(mask_to_tensor(Image.fromarray(a)), expected)  # mode L
    assert torch.equal(mask_to_tensor(torch.from_numpy(a)), expected)


def test_mask_float_and_bool():
    f = np.array([[0.0, 0.5, 0.51, 1.0]], np.float32)
    assert mask_to_tensor(f).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert mask_to_tensor(torch.from_numpy(f)).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    b = np.array([[True, False]])
    assert mask_to_tensor(b).flatten().tolist() == [1.0, 0.0]
    binary = Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1")
    assert mask_to_tensor(binary).flatten().tolist() == [0, 1]
    assert mask_to_tensor(np.array([[0, 1]], np.int64)).flatten().tolist() == [0.0, 1.0]


def test_mask_rgb_any_channel():
    a = np.zeros((1, 4, 3), np.uint8)
    a[0, 1] = (255, 255, 255)
    a[0, 2] = (255, 0, 0)  # a red stroke: a hole (the release's first channel is blue in BGR)
    a[0, 3] = (100, 100, 100)
    assert mask_to_tensor(a).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    assert mask_to_tensor(Image.fromarray(a)).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]


def test_mask_rgba_alpha_when_colour_constant():
    a = np.zeros((2, 3, 4), np.uint8)  # black everywhere, the hole painted in alpha
    a[0, 1, 3] = 255
    a[1, 2, 3] = 200
    a[1, 0, 3] = 100
    expected = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert mask_to_tensor(Image.fromarray(a))[0, 0].tolist() == expected
    assert mask_to_tensor(a)[0, 0].tolist() == expected
    white = a.copy()
    white[..., :3] = 255  # white strokes, transparent elsewhere, stored as white too
    assert mask_to_tensor(white)[0, 0].tolist() == expected


def test_mask_rgba_colour_when_colour_varies():
    a = np.zeros((1, 3, 4), np.uint8)
    a[..., 3] = (0, 255, 255)  # alpha varies, but the colour carries the hole
    a[0, 2, :3] = 255
    assert mask_to_tensor(a).flatten().tolist() == [0.0, 0.0, 1.0]
    opaque = np.full((1, 2, 4), 255, np.uint8)  # constant colour AND constant alpha: colour rule
    assert mask_to_tensor(opaque).flatten().tolist() == [1.0, 1.0]


def test_mask_tensor_shapes_and_errors():
    assert mask_to_tensor(torch.zeros(4, 5)).shape == (1, 1, 4, 5)
    assert mask_to_tensor(torch.zeros(1, 4, 5)).shape == (1, 1, 4, 5)
    assert mask_to_tensor(torch.zeros(3, 1, 4, 5)).shape == (3, 1, 4, 5)
    with pytest.raises(ValueError, match="amax"):
        mask_to_tensor(torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_to_tensor(torch.full((4, 4), 255.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_to_tensor(np.full((4, 4), 255.0))
    with pytest.raises(TypeError, match="0 and 1"):
        mask_to_tensor(np.full((4, 4), 7, np.int32))
    with pytest.raises(ValueError, match="C in 1..4"):
        mask_to_tensor(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="PIL image"):
        mask_to_tensor("mask.png")


def test_mask_zero_one_uint8_warns():
    with pytest.warns(UserWarning, match="NO hole"):
        m = mask_to_tensor(np.array([[0, 1]], np.uint8))
    assert m.sum() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask_to_tensor(np.array([[0, 255]], np.uint8))  # a normal mask: no warning


def test_mask_files_and_image(tmp_path):
    a = np.zeros((6, 8), np.uint8)
    a[2:4, 3:7] = 255
    Image.fromarray(a).save(tmp_path / "m.png")
    m = load_mask(tmp_path / "m.png")
    assert m.shape == (1, 1, 6, 8) and m.sum() == 8
    assert np.array_equal(np.asarray(mask_to_image(m)), a)
