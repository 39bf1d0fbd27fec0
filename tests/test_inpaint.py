"""Tests for course_lib.inpainting (course_lib.inpaint): padding, conversions, compositing, warnings."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from course_lib.inpainting import InpaintResult, hole_bbox, inpaint, pad_to_multiple


class FakeGenerator(nn.Module):
    """Stage 1 = its input, stage 2 = a constant; flow at 1/4 size. Records what it saw."""

    def __init__(self, fill: float = 0.25, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=dtype))
        self.fill = fill
        self.seen: list[dict] = []

    def forward(self, x, mask):
        self.seen.append({"x": x.clone(), "mask": mask.clone(), "training": self.training,
                          "grad": torch.is_grad_enabled()})
        B, _, H, W = x.shape
        assert H % 8 == 0 and W % 8 == 0
        x2 = torch.full_like(x, self.fill) * self.scale
        flow = torch.linspace(-1, 1, 3 * (H // 4) * (W // 4), dtype=x.dtype).view(1, 3, H // 4, W // 4)
        return x, x2, flow.expand(B, -1, -1, -1)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


def _mask(h: int, w: int, top: int, left: int, bh: int, bw: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[top:top + bh, left:left + bw] = 255
    return m


def test_pad_to_multiple_replicates_edges():
    t = torch.arange(15.0).view(1, 1, 3, 5)
    p = pad_to_multiple(t, 4)
    assert p.shape == (1, 1, 4, 8)
    assert torch.equal(p[..., :3, :5], t)
    assert torch.equal(p[0, 0, 3, :5], t[0, 0, 2])  # last row repeated
    assert p[0, 0, 0, 5:].tolist() == [4.0, 4.0, 4.0]  # last column repeated
    assert pad_to_multiple(torch.zeros(1, 1, 8, 16)).shape == (1, 1, 8, 16)


def test_hole_bbox():
    m = torch.zeros(2, 1, 10, 12)
    m[0, 0, 2:4, 3:5] = 1
    m[1, 0, 6, 9] = 1
    assert hole_bbox(m) == (2, 3, 5, 7)
    assert hole_bbox(torch.zeros(1, 1, 4, 4)) is None


def test_odd_size_array_keeps_known_pixels_and_fills_hole():
    image, mask = _image(37, 53), _mask(37, 53, 30, 40, 7, 13)  # the hole touches the bottom/right
    gen = FakeGenerator()
    out = inpaint(gen, image, mask)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (37, 53, 3)
    known = mask == 0
    assert np.array_equal(out[known], image[known])
    assert (out[~known] == round((0.25 + 1) * 127.5)).all()  # 159.375 -> 159
    seen = gen.seen[0]
    assert seen["x"].shape == (1, 3, 40, 56) and seen["mask"].shape == (1, 1, 40, 56)
    assert seen["training"] is False and seen["grad"] is False
    # the generator sees the incomplete image: zeros in the hole (also where it is replicated)
    assert float(seen["x"][0, :, 30:, 40:].abs().max()) == 0.0
    # padding replicates the image and the mask
    assert torch.equal(seen["x"][..., 37:, :53], seen["x"][..., 36:37, :53].expand(-1, -1, 3, -1))
    assert torch.equal(seen["mask"][..., 37:, :], seen["mask"][..., 36:37, :].expand(-1, -1, 3, -1))
    assert float(seen["mask"][0, 0, 39, 55]) == 1.0 and float(seen["mask"][0, 0, 39, 0]) == 0.0


def test_pil_in_pil_out_and_stages():
    image, mask = Image.fromarray(_image(21, 30, 1)), Image.fromarray(_mask(21, 30, 5, 6, 8, 9))
    res = inpaint(FakeGenerator(), image, mask, return_stages=True)
    assert isinstance(res, InpaintResult)
    for part in res:
        assert isinstance(part, Image.Image) and part.size == (30, 21) and part.mode == "RGB"
    a, out, m = np.asarray(image), np.asarray(res.result), np.asarray(mask) > 0
    assert np.array_equal(out[~m], a[~m])
    # the fake stage 1 returns its input, the incomplete image: 0 -> 127.5 -> 128 in the hole
    assert (np.asarray(res.stage1)[m] == 128).all()


def test_tensor_inputs_keep_shape_dtype_and_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 13, 19, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(13, 19)
    mask[4:9, 2:7] = 1
    out = inpaint(FakeGenerator(), x, mask)
    assert out.shape == (3, 13, 19) and out.dtype == torch.float64
    known = mask == 0
    assert torch.equal(out[:, known], x[:, known])
    assert torch.allclose(out[:, ~known], torch.full_like(out[:, ~known], 0.25))
    # a batch with one mask per image
    xb = torch.rand(2, 3, 10, 12, generator=g) * 2 - 1
    mb = torch.zeros(2, 1, 10, 12)
    mb[0, :, 1:3, 1:3] = 1
    mb[1, :, 5:9, 6:10] = 1
    outb = inpaint(FakeGenerator(), xb, mb)
    assert outb.shape == (2, 3, 10, 12)
    assert torch.equal(outb * (1 - mb), xb * (1 - mb))
    res = inpaint(FakeGenerator(), xb, mb, return_stages=True)
    assert res.flow.shape == (2, 3, 10, 12) and res.stage1.shape == (2, 3, 10, 12)


def test_empty_mask_returns_input_exactly():
    image = _image(9, 14, 2)
    empty = np.zeros((9, 14), np.uint8)
    assert np.array_equal(inpaint(FakeGenerator(), image, empty), image)
    pil = Image.fromarray(image)
    assert np.array_equal(np.asarray(inpaint(FakeGenerator(), pil, empty)), image)
    x = torch.rand(1, 3, 9, 14) * 2 - 1
    assert torch.equal(inpaint(FakeGenerator(), x, torch.zeros(1, 1, 9, 14)), x)


def test_generator_device_dtype_and_mode_restored():
    gen = FakeGenerator(dtype=torch.float64)
    gen.train()
    inpaint(gen, _image(8, 8), _mask(8, 8, 2, 2, 2, 2))
    assert gen.seen[0]["x"].dtype == torch.float64
    assert gen.seen[0]["training"] is False
    assert gen.training  # put back in training mode afterwards


def test_plain_callable_generator():
    def fn(x, mask):
        return x, torch.zeros_like(x), torch.zeros(x.shape[0], 3, x.shape[2] // 4, x.shape[3] // 4)

    out = inpaint(fn, _image(11, 11), _mask(11, 11, 3, 3, 4, 4))
    assert out.shape == (11, 11, 3) and (out[3:7, 3:7] == 128).all()


def test_large_hole_warning():
    image = _image(256, 256)
    with pytest.warns(UserWarning, match="free-form"):
        inpaint(FakeGenerator(), image, _mask(256, 256, 10, 10, 140, 60))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint(FakeGenerator(), image, _mask(256, 256, 10, 10, 128, 128))  # training size: fine
        inpaint(FakeGenerator(), image, _mask(256, 256, 10, 10, 140, 60), warn_large_hole=False)
    small = _image(64, 64)
    with pytest.warns(UserWarning, match="40x10"):  # more than 128/256 of a 64 px side
        inpaint(FakeGenerator(), small, _mask(64, 64, 0, 0, 40, 10))
    with pytest.warns(UserWarning, match="trained"):  # more than 128 px, even on a large image
        inpaint(FakeGenerator(), _image(600, 600), _mask(600, 600, 0, 0, 200, 20))


def test_bad_inputs_raise_clear_errors():
    gen = FakeGenerator()
    with pytest.raises(ValueError, match="resize the mask"):
        inpaint(gen, _image(10, 10), np.zeros((10, 12), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        inpaint(gen, np.zeros((10, 10, 3), np.float64), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="one per image"):
        inpaint(gen, torch.zeros(2, 3, 8, 8), torch.zeros(3, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        inpaint(gen, torch.full((3, 8, 8), 100.0), torch.zeros(8, 8))


def test_real_generator_tiny():
    from course_lib.generator import Generator

    torch.manual_seed(0)
    gen = Generator(cnum=4)
    image, mask = _image(37, 53, 4), _mask(37, 53, 8, 20, 16, 12)
    res = inpaint(gen, Image.fromarray(image), Image.fromarray(mask), return_stages=True)
    out = np.asarray(res.result)
    assert out.shape == (37, 53, 3)
    known = mask == 0
    assert np.array_equal(out[known], image[known])
    assert res.flow.size == (53, 37)
