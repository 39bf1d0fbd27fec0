"""Tests for course_lib.inpainting (course_lib.inpaint): padding, conversions, compositing, warnings."""
from __future__ import annotations

import warnings
from pathlib import Path

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
    with pytest.warns(UserWarning, match=r"10x40 px \(WxH"):  # more than 128/256 of a 64 px side
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


# ---------------------------------------------------------------- large photos: exact and crop modes

def test_crop_window_by_hand():
    from course_lib.inpainting import crop_window
    # a 20x30 hole at (100, 200) of a 1000x1500 image: side max(2*30, 256) = 256, centred on the hole
    assert crop_window((100, 200, 20, 30), (1000, 1500)) == (0, 87, 256, 256)  # top clamped to 0
    assert crop_window((500, 600, 300, 100), (1000, 1500)) == (650 - 300, 650 - 300, 600, 600)
    assert crop_window((900, 1400, 50, 50), (1000, 1500)) == (744, 1244, 256, 256)  # shifted inside
    assert crop_window((10, 10, 5, 5), (100, 40)) == (0, 0, 100, 40)  # smaller image: all of it


def test_modes_are_recorded_and_auto_picks_by_memory():
    image, mask = _image(64, 80), _mask(64, 80, 20, 30, 10, 12)
    res = inpaint(FakeGenerator(), image, mask, return_stages=True)
    assert (res.mode, res.window, res.scale) == ("exact", (0, 0, 64, 80), 1.0)
    assert res.describe() == "exact, whole 80x64 image"
    result, stage1, flow = res  # still a 3-tuple
    res = inpaint(FakeGenerator(), image, mask, return_stages=True, memory_budget=1)
    assert res.mode == "crop" and res.window == (0, 0, 64, 80)  # the image is smaller than 256
    res = inpaint(FakeGenerator(), image, mask, return_stages=True, crop_trigger=79)  # longer side 80
    assert res.mode == "crop"
    assert inpaint(FakeGenerator(), image, mask, return_stages=True, crop_trigger=80).mode == "exact"
    assert res.describe() == "crop, window 80x64 at (x=0, y=0), run at 80x64"


def test_crop_mode_sees_the_window_at_the_model_scale_and_keeps_known_pixels():
    image, mask = _image(700, 900, 3), _mask(700, 900, 300, 400, 200, 150)
    gen = FakeGenerator(fill=0.5)
    res = inpaint(gen, image, mask, mode="crop", return_stages=True, warn_large_hole=False)
    assert res.window == (200, 275, 400, 400) and res.scale == 256 / 400
    assert res.describe() == "crop, window 400x400 at (x=275, y=200), run at 256x256"
    seen = gen.seen[0]
    assert tuple(seen["x"].shape[-2:]) == (256, 256) and seen["grad"] is False
    hole_s = seen["mask"][0, 0].bool()
    assert hole_s.sum() >= (200 * 0.64) * (150 * 0.64)  # the hole, downscaled, all covered
    out = res.result
    known = mask == 0
    assert np.array_equal(out[known], image[known])  # exact outside the hole
    # deep in the hole the fill is the generator's constant 0.5 -> (0.5 + 1) * 127.5 = 191
    assert (np.abs(out[350:450, 430:520].astype(int) - 191) <= 1).all()
    assert res.flow.shape == (700, 900, 3) and (res.flow[:100] == 255).all()  # white outside the window


def test_feather_fill_by_hand():
    from course_lib.inpainting import feather_fill
    # 1 x 5 strip: known, known, hole, hole, hole; feather 1 -> 3-wide windows
    x = torch.tensor([0.4, 0.6, 0.0, 0.0, 0.0]).view(1, 1, 1, 5)
    mask = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]).view(1, 1, 1, 5)
    fill = torch.full((1, 1, 1, 5), -1.0)
    out = feather_fill(fill, x, mask, 1)
    # pixel 2: window 1..3 holds 1 known of 3 -> alpha 1 - 2/3 = 1/3, colour 0.6
    assert out[0, 0, 0, 2].item() == pytest.approx(1 / 3 * -1 + 2 / 3 * 0.6)
    assert out[0, 0, 0, 3].item() == -1.0 and out[0, 0, 0, 4].item() == -1.0  # no known pixel near
    assert torch.equal(feather_fill(fill, x, mask, 0), fill)


def test_crop_of_the_whole_image_equals_exact_with_the_real_generator():
    from course_lib.generator import Generator
    torch.manual_seed(0)
    gen = Generator(cnum=4)
    image, mask = _image(48, 64, 5), _mask(48, 64, 10, 20, 16, 16)
    exact = inpaint(gen, image, mask, mode="exact")
    crop = inpaint(gen, image, mask, mode="crop", window=(0, 0, 48, 64), feather=0)
    assert np.array_equal(exact, crop)


def test_exact_mode_equals_the_dense_generator():
    """inpaint's fast, hole-restricted attention against the generator with the dense layer."""
    from course_lib.generator import Generator
    torch.manual_seed(0)
    gen = Generator(cnum=4).eval()
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    m = torch.zeros(2, 1, 40, 48)
    m[0, :, 5:20, 6:30] = 1
    m[1, :, 30:, 40:] = 1  # touches the border
    out = inpaint(gen, x, m, mode="exact")
    with torch.no_grad():
        _, x2, _ = gen(x * (1 - m), m)
    dense = x2 * m + x * (1 - m)
    torch.testing.assert_close(out, dense, atol=1e-5, rtol=0)
    assert torch.equal(inpaint(gen, x, m, mode="exact", fast_attention=False), dense)  # switched off


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc/self/statm")
def test_exact_mode_memory_stays_within_the_stated_bound(tmp_path):
    """Peak resident memory of one exact run (fresh process) minus the resident memory before it
    <= exact_memory_bytes (the README's 512-2048 px measurements check the same bound)."""
    import subprocess
    import sys
    code = (
        "import resource, torch\n"
        "from course_lib.generator import Generator\n"
        "from course_lib.inpainting import inpaint, exact_memory_bytes\n"
        "torch.manual_seed(0); torch.set_num_threads(1)\n"
        "g = Generator(32).eval(); x = torch.rand(1, 3, 384, 384) * 2 - 1\n"
        "m = torch.zeros(1, 1, 384, 384); m[..., 128:248, 128:248] = 1\n"
        "base = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()\n"
        "inpaint(g, x, m, mode='exact')\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(peak - base, exact_memory_bytes(1, 384, 384, 32))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    used, bound = map(int, out.split())
    assert 0 < used <= bound


def test_bad_mode_arguments():
    image, mask = _image(32, 32), _mask(32, 32, 8, 8, 8, 8)
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        inpaint(FakeGenerator(), image, mask, mode="fast")
    with pytest.raises(ValueError, match="crop mode needs a hole"):
        inpaint(FakeGenerator(), image, np.zeros((32, 32), np.uint8), mode="crop")
    with pytest.raises(ValueError, match="larger than or outside the 32x32 image"):
        inpaint(FakeGenerator(), image, mask, mode="crop", window=(-1, 0, 8, 8))
    with pytest.raises(ValueError, match="does not contain the hole"):
        inpaint(FakeGenerator(), image, mask, mode="crop", window=(0, 0, 10, 10))
    with pytest.raises(ValueError, match="window= is for mode='crop'"):
        inpaint(FakeGenerator(), image, mask, window=(0, 0, 32, 32))
    with pytest.raises(ValueError, match=r"window must be \(top, left, height, width\)"):
        inpaint(FakeGenerator(), image, mask, mode="crop", window=(0, 0, 32))
    with pytest.raises(ValueError, match="feather must be a non-negative int"):
        inpaint(FakeGenerator(), image, mask, mode="crop", feather=-2)
    with pytest.raises(ValueError, match="crop_trigger must be a positive int"):
        inpaint(FakeGenerator(), image, mask, crop_trigger=0)
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        inpaint(FakeGenerator(), image, mask, memory_budget=0)
