"""Checks for the exercises of notebooks 00-02 (setup, masks and metrics, spatial discount).

Each check compares the student's function with course_lib's reference on edge cases and
seeded random inputs, and names the likely mistake when they differ. The planted mistakes
registered with each exercise are the wrong versions the test suite feeds to the check.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from course_lib import losses, masks, metrics
from course_lib.checks import (REGISTRY, Case, call, expect_close, expect_gradient, expect_tensor, fail,
                               compare_cases, hinted_mistakes, register, require_phrases)

# --------------------------------------------------------------------------------------
# 00 Setup and tour: a warm-up exercise that shows how checks work.
# --------------------------------------------------------------------------------------


def to_signed_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1]: ``x = pixels / 127.5 - 1``.

    The release reads every image this way (``x/127.5 - 1``); course_lib's image helpers do
    the same. Reference of the warm-up exercise of notebook 00.
    """
    return pixels.to(torch.float32) / 127.5 - 1.0


def _to_unit_range(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: [0, 1]
    return pixels.to(torch.float32) / 255.0


def _forgot_shift(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: [0, 2]
    return pixels.to(torch.float32) / 127.5


def _integer_division(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: floor division
    return (pixels // 127.5).to(torch.float32) - 1.0


def _own_min_max(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: min-max rescaling
    p = pixels.to(torch.float32)
    return (p - p.min()) / (p.max() - p.min()) * 2.0 - 1.0


def _divide_by_128(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: 128 instead of 127.5
    return pixels.to(torch.float32) / 128.0 - 1.0


def _subtract_first(pixels: torch.Tensor) -> torch.Tensor:  # planted mistake: (p - 1) / 127.5
    return (pixels.to(torch.float32) - 1.0) / 127.5


_SIGNED_HINTS = {
    "[0, 1]": "the course (and the release) uses [-1, 1], not [0, 1]: divide by 127.5, then subtract 1.",
    "subtract 1": "you forgot to subtract 1 after dividing by 127.5, so the values run from 0 to 2.",
    "integer": "integer (floor) division drops the fraction: convert to float first (pixels.float()).",
    "own minimum": "use the fixed range 0..255 (pixels / 127.5 - 1), not the image's own minimum and "
                   "maximum: a dark image must stay dark (and a one-colour image divides 0 by 0).",
    "127.5": "divide by 127.5 = 255 / 2, not by 128: 255 must map to exactly 1.",
    "order": "the order is divide, then subtract: pixels / 127.5 - 1, not (pixels - 1) / 127.5.",
}
_SIGNED_MISTAKES = {"[0, 1]": _to_unit_range, "subtract 1": _forgot_shift, "integer": _integer_division,
                    "own minimum": _own_min_max, "127.5": _divide_by_128, "order": _subtract_first}
require_phrases(_SIGNED_HINTS, _SIGNED_MISTAKES)


@register("to_signed_range", reference=to_signed_range, notebook="00_setup_and_tour.ipynb",
          hint="turn uint8 pixels 0..255 into floats in [-1, 1]: x = pixels / 127.5 - 1",
          mistakes=_SIGNED_MISTAKES)
def _check_to_signed_range(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Turn uint8 pixels 0..255 into floats in [-1, 1]: x = pixels / 127.5 - 1."""
    name = "to_signed_range"
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (2, 3, 5, 7), generator=g, dtype=torch.uint8)  # (B, C, H, W)
    ends = torch.tensor([0, 255], dtype=torch.uint8)
    out = expect_tensor(name, call(name, fn, ends), shape=(2,), what="to_signed_range([0, 255])",
                        hint="keep the input's shape: convert each pixel on its own", dtype=torch.float32)
    lo, hi = out.tolist()
    if math.isclose(lo, 0.0, abs_tol=1e-6) and math.isclose(hi, 1.0, abs_tol=1e-6):
        try:
            unit = bool(torch.allclose(fn(pixels.clone()), _to_unit_range(pixels), atol=1e-6))
        except Exception:
            unit = False
        if unit:
            fail(name, "0 -> 0 and 255 -> 1: that is the range [0, 1]",
                 "the course (and the release) uses [-1, 1]: divide by 127.5, then subtract 1")
    dark = torch.randint(10, 90, (6, 5, 3), generator=g, dtype=torch.uint8)  # (H, W, C): an HWC image
    flat = torch.tensor([7, 7, 7], dtype=torch.uint8)  # one colour
    cases = [Case((pixels,), {}, "the result on a random (2, 3, 5, 7) image"),
             Case((dark,), {}, "the result on a dark (6, 5, 3) HWC image (values 10..89)"),
             Case((pixels[0, 0],), {}, "the result on a (5, 7) grey image"),
             Case((torch.arange(256, dtype=torch.uint8),), {}, "the result on every value 0..255"),
             Case((flat,), {}, "the result on 3 pixels of one colour (7)"),
             Case((torch.tensor(100, dtype=torch.uint8),), {}, "the result on one pixel 100 (a 0-D tensor)")]
    try:
        rounded = fn(pixels.clone())
        whole = isinstance(rounded, torch.Tensor) and rounded.shape == pixels.shape and \
            rounded.is_floating_point() and bool((rounded == rounded.round()).all())
    except Exception:
        whole = False  # the comparison below reports the error
    if whole:
        fail(name, "every value of the result on a random image is a whole number",
             "the fraction is lost: integer (floor) division, rounding or an integer dtype; compute "
             "pixels.float() / 127.5 - 1 in float32")
    compare_cases(name, fn, to_signed_range, cases,
                  "x = pixels / 127.5 - 1, computed in float32 (the result keeps the input's shape)",
                  variants=lambda case: hinted_mistakes(name, _SIGNED_HINTS, *case.args),
                  shape_hint="keep the input's shape, whatever it is (HWC, CHW, a batch or one pixel): "
                             "convert each pixel on its own")


# --------------------------------------------------------------------------------------
# 01 The inpainting problem: a box hole as a mask.
# --------------------------------------------------------------------------------------


def box_mask(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    """The mask of a ``(top, left, height, width)`` box: (1, 1, H, W), 1 inside the box.

    course_lib's :func:`course_lib.masks.bbox_to_mask` without the release's random shrink
    (``max_delta=0``). Reference of the exercise of notebook 01.
    """
    return masks.bbox_to_mask(bbox, height, width, max_delta=0)


def _box_off_by_one(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top:top + h + 1, left:left + w + 1] = 1.0
    return mask


def _box_axes_swapped(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., left:left + w, top:top + h] = 1.0
    return mask


def _box_inverted(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    return 1.0 - box_mask(bbox, height, width)


def _box_no_batch_dims(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    return box_mask(bbox, height, width)[0, 0]  # (H, W)


def _box_corners(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:  # (top, left, bottom, right)
    top, left, bottom, right = bbox
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top:bottom, left:right] = 1.0
    return mask


def _box_height_for_width(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top:top + h, left:left + h] = 1.0
    return mask


def _box_one_short(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top:top + h - 1, left:left + w - 1] = 1.0
    return mask


def _box_canvas_swapped(bbox: Sequence[int], height: int, width: int) -> torch.Tensor:
    return box_mask(bbox, width, height)  # (1, 1, W, H)


_BOX_HINTS = {
    "off-by-one": "off-by-one: rows top .. top + height - 1 are the hole; the slice top:top + height "
                  "already stops before top + height, so do not add or subtract 1.",
    "rows and columns": "rows and columns are swapped: top/height index the H axis (dim 2), "
                        "left/width the W axis (dim 3).",
    "1 = hole": "the course's convention is 1 = hole (the box), 0 = known pixels: do not invert the mask.",
    "(1, 1, H, W)": "a mask has shape (1, 1, H, W): add the batch and channel dims with "
                    "torch.zeros(1, 1, height, width).",
    "sizes, not corners": "the box is (top, left, height, width): its last two numbers are sizes, not "
                          "corners, so the rows are top:top + height and the columns left:left + width.",
    "width of the box": "use the width of the box for the columns (left:left + width) and its height for "
                        "the rows: yours uses the height for both.",
    "too few": "off-by-one: the slice top:top + height already includes row top and has height rows; "
                   "do not subtract 1 (yours has one row and one column too few).",
    "canvas": "the canvas is torch.zeros(1, 1, height, width): height rows (dim 2), width columns (dim 3); "
              "yours has them the other way round.",
}
_BOX_MISTAKES = {"off-by-one": _box_off_by_one, "rows and columns": _box_axes_swapped,
                 "1 = hole": _box_inverted, "(1, 1, H, W)": _box_no_batch_dims,
                 "sizes, not corners": _box_corners, "width of the box": _box_height_for_width,
                 "too few": _box_one_short, "canvas": _box_canvas_swapped}
require_phrases(_BOX_HINTS, _BOX_MISTAKES)


@register("box_mask", reference=box_mask, notebook="01_inpainting_problem.ipynb",
          hint="return a (1, 1, H, W) float mask with 1 inside the (top, left, height, width) box",
          mistakes=_BOX_MISTAKES)
def _check_box_mask(fn: Callable[..., torch.Tensor]) -> None:
    """Return a (1, 1, H, W) float mask with 1 inside the (top, left, height, width) box."""
    name = "box_mask"
    H, W = 6, 9
    out = call(name, fn, (1, 2, 3, 4), H, W)
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel() and \
            set(out.unique().tolist()) - {0.0, 1.0}:
        fail(name, f"the mask holds values {sorted(out.unique().tolist())[:5]}", "a mask holds only 0.0 and 1.0")
    cases: list[tuple[tuple[int, int, int, int], int, int]] = [
        ((1, 2, 3, 4), 6, 9),
        ((0, 0, 1, 1), 1, 1),  # the whole 1x1 image
        ((0, 0, 4, 5), 4, 5),  # the whole image
        ((3, 4, 1, 1), 4, 5),  # the last pixel
        ((2, 1, 3, 2), 5, 8),
        ((1, 3, 2, 5), 7, 9),  # a wide box, far from square
        ((4, 0, 3, 1), 8, 3),  # a tall box in a tall image
    ]
    g = torch.Generator().manual_seed(1)
    for _ in range(6):  # seeded random boxes
        H, W = (int(v) for v in torch.randint(1, 20, (2,), generator=g))
        h, w = int(torch.randint(1, H + 1, (1,), generator=g)), int(torch.randint(1, W + 1, (1,), generator=g))
        top, left = int(torch.randint(0, H - h + 1, (1,), generator=g)), int(torch.randint(0, W - w + 1, (1,), generator=g))
        cases.append(((top, left, h, w), H, W))
    compare_cases(name, fn, box_mask, [Case((bbox, H, W), {}, f"box_mask({bbox}, {H}, {W})")
                                       for bbox, H, W in cases],
                  "rows top:top + height and columns left:left + width of a (1, 1, H, W) zero tensor are 1.",
                  variants=lambda case: hinted_mistakes(name, _BOX_HINTS, *case.args), atol=0, rtol=0,
                  shape_hint="a mask has shape (1, 1, H, W): torch.zeros(1, 1, height, width), height rows "
                             "and width columns")


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of two (B, C, H, W) batches in [-1, 1]: course_lib.metrics.psnr.

    ``10 * log10(1 / mse)`` with both images mapped to [0, 1] (peak 1). Reference of the
    second exercise of notebook 01.
    """
    return metrics.psnr(x, y)


def _psnr_no_rescale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # mse on [-1, 1], peak 1
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))  # (B,)
    return 10 * torch.log10(1 / mse)


def _psnr_whole_batch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # one number for the batch
    mse = (((x + 1) / 2 - (y + 1) / 2) ** 2).mean()  # ()
    return 10 * torch.log10(1 / mse)


def _psnr_natural_log(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = (((x + 1) / 2 - (y + 1) / 2) ** 2).mean(dim=(1, 2, 3))  # (B,)
    return 10 * torch.log(1 / mse)


def _psnr_twenty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # 20 log10 of the MSE
    mse = (((x + 1) / 2 - (y + 1) / 2) ** 2).mean(dim=(1, 2, 3))  # (B,)
    return 20 * torch.log10(1 / mse)


def _psnr_peak_255(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = (((x + 1) / 2 - (y + 1) / 2) ** 2).mean(dim=(1, 2, 3))  # (B,)
    return 10 * torch.log10(255 ** 2 / mse)


def _psnr_own_peak(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # peak = the image's own maximum
    x01, y01 = (x + 1) / 2, (y + 1) / 2
    mse = ((x01 - y01) ** 2).mean(dim=(1, 2, 3))  # (B,)
    peak = x01.flatten(1).max(dim=1).values  # (B,)
    return 10 * torch.log10(peak ** 2 / mse)


def _psnr_summed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # sum of squares, not the mean
    se = (((x + 1) / 2 - (y + 1) / 2) ** 2).sum(dim=(1, 2, 3))  # (B,)
    return 10 * torch.log10(1 / se)


def _psnr_absolute(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # mean absolute error
    mae = ((x + 1) / 2 - (y + 1) / 2).abs().mean(dim=(1, 2, 3))  # (B,)
    return 20 * torch.log10(1 / mae)


_PSNR_HINTS = {
    "[0, 1]": "map the images from [-1, 1] to [0, 1] first ((x + 1) / 2), so that the peak value is 1.",
    "per image": "compute the PSNR per image: average the squared error over dims (1, 2, 3) only, giving (B,).",
    "log10": "use torch.log10, not the natural log torch.log.",
    "squared": "PSNR = 10 * log10(1 / mse) with mse the mean SQUARED error (20 * log10 goes with the RMSE).",
    "peak": "the images are in [0, 1] after the mapping, so the peak is 1, not 255.",
    "own maximum": "the peak is the fixed value 1 of the [0, 1] range, not the image's own maximum: on a "
                  "dark image whose maximum is below 1 the two differ.",
    "not its sum": "the MSE is the mean of the squared error over (C, H, W), not its sum.",
    "absolute": "PSNR uses the mean SQUARED error, not the mean absolute error (and then 10 * log10).",
}
_PSNR_MISTAKES = {"[0, 1]": _psnr_no_rescale, "per image": _psnr_whole_batch, "log10": _psnr_natural_log,
                  "squared": _psnr_twenty, "peak": _psnr_peak_255, "own maximum": _psnr_own_peak,
                  "not its sum": _psnr_summed, "absolute": _psnr_absolute}
require_phrases(_PSNR_HINTS, _PSNR_MISTAKES)


@register("psnr", reference=psnr, notebook="01_inpainting_problem.ipynb",
          hint="PSNR in dB per image: 10 * log10(1 / mse) with x, y mapped from [-1, 1] to [0, 1]",
          mistakes=_PSNR_MISTAKES)
def _check_psnr(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """PSNR in dB per image: 10 * log10(1 / mse) with x, y mapped from [-1, 1] to [0, 1]."""
    name = "psnr"
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 8, 10, generator=g) * 2 - 1  # (B, C, H, W) in [-1, 1]
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)  # (B, C, H, W)
    y[1] = (x[1] + 0.05 * torch.randn(x[1].shape, generator=g)).clamp(-1, 1)  # a better image
    out = call(name, fn, x, y)
    if isinstance(out, torch.Tensor) and out.dim() == 0 and out.is_floating_point():
        fail(name, "psnr returned one number for a batch of 3 images",
             "compute the PSNR per image: average the squared error over dims (1, 2, 3) only, giving (B,)")
    expect_tensor(name, out, shape=(3,), what="psnr(x, y) for a batch of 3", dtype=torch.float32,
                  hint="return one PSNR per image, shape (B,): reduce over dims (1, 2, 3)", finite=False)
    dark_x = x * 0.3 - 0.5  # (B, C, H, W) in [-0.8, -0.2]: the image's maximum is below 1 on [0, 1]
    dark_y = (dark_x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    wide_x = torch.rand(2, 1, 3, 17, generator=g) * 2 - 1  # one channel, a wide image
    wide_y = (wide_x + 0.3 * torch.randn(wide_x.shape, generator=g)).clamp(-1, 1)
    cases = [Case((x, y), {}, "psnr(x, y) on a random batch of 3"),
             Case((dark_x, dark_y), {}, "psnr on a dark batch (maximum below 1 on [0, 1])"),
             Case((wide_x, wide_y), {}, "psnr on two 1x3x17 images"),
             Case((dark_x[:1, :1, :2, :2], dark_y[:1, :1, :2, :2]), {}, "psnr on one dark 1x2x2 image"),
             Case((torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)), {},
                  "psnr(grey, white): 0.5 apart on [0, 1], mse 0.25, 6.02 dB")]
    compare_cases(name, fn, psnr, cases, REGISTRY[name].hint,
                  variants=lambda case: hinted_mistakes(name, _PSNR_HINTS, *case.args), atol=1e-3, rtol=1e-4,
                  shape_hint="return one PSNR per image, shape (B,): reduce over dims (1, 2, 3)")
    expect_gradient(name, fn, psnr, cases[0], wrt=(0, 1), atol=1e-4, rtol=1e-3)
    same = call(name, fn, x[:1], x[:1].clone())
    if not isinstance(same, torch.Tensor) or tuple(same.shape) != (1,):
        fail(name, f"psnr(x, x) for one image returned {same!r}", "return a (B,) tensor, here shape (1,)")
    value = same.item()
    if not (value > 60 or (math.isinf(value) and value > 0)):
        fail(name, f"psnr(x, x) = {value}, expected +inf (or a very large number)",
             "identical images have mse 0: 10 * log10(1 / 0) = +inf")


# --------------------------------------------------------------------------------------
# 02 Spatially discounted reconstruction weights.
# --------------------------------------------------------------------------------------


def _discount_symmetric(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:  # min(i, H-1-i)
    i, j = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    rows = gamma ** torch.minimum(i, height - 1 - i)  # (H,)
    cols = gamma ** torch.minimum(j, width - 1 - j)  # (W,)
    return torch.maximum(rows[:, None], cols[None, :]).float()  # (H, W)


def _discount_min_of_axes(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:
    i, j = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    rows = gamma ** torch.minimum(i, height - i)  # (H,)
    cols = gamma ** torch.minimum(j, width - j)  # (W,)
    return torch.minimum(rows[:, None], cols[None, :]).float()  # (H, W)


def _discount_power_swapped(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:
    i, j = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    rows = torch.minimum(i, height - i) ** gamma  # (H,)
    cols = torch.minimum(j, width - j) ** gamma  # (W,)
    return torch.maximum(rows[:, None], cols[None, :]).float()  # (H, W)


def _discount_axes_swapped(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:
    return losses.spatial_discount(width, height, gamma)  # (W, H)


def _discount_row_only(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:
    i = torch.arange(height, dtype=torch.float64)
    rows = gamma ** torch.minimum(i, height - i)  # (H,)
    return rows[:, None].expand(height, width).float()  # (H, W)


def _discount_product(height: int, width: int, gamma: float = 0.9) -> torch.Tensor:
    i, j = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    rows = gamma ** torch.minimum(i, height - i)  # (H,)
    cols = gamma ** torch.minimum(j, width - j)  # (W,)
    return (rows[:, None] * cols[None, :]).float()  # (H, W)


_DISCOUNT_HINTS = {
    "not their product": "combine the two axes with the max of their weights (the nearer edge wins), "
                         "not their product (which is gamma ** (row distance + column distance)).",
    "off-by-one": "off-by-one: the release uses min(i, H - i), so the last row has distance 1 and the "
                  "weights are not symmetric.",
    "max of the two": "take the max of the two axes' weights (the nearer edge wins), not the min.",
    "gamma ** l": "the weight is gamma ** l, not l ** gamma: the edge (l = 0) must weigh gamma ** 0 = 1.",
    "wrong axis": "wrong axis: rows (the first dim) run over the height, columns over the width.",
    "both axes": "use both axes: the weight is the max of a row term and a column term.",
}
_DISCOUNT_MISTAKES = {"off-by-one": _discount_symmetric, "max of the two": _discount_min_of_axes,
                      "gamma ** l": _discount_power_swapped, "wrong axis": _discount_axes_swapped,
                      "both axes": _discount_row_only, "not their product": _discount_product}
require_phrases(_DISCOUNT_HINTS, _DISCOUNT_MISTAKES)


@register("spatial_discount", reference=losses.spatial_discount, notebook="02_spatial_discount.ipynb",
          hint="w[i, j] = max(gamma ** min(i, H - i), gamma ** min(j, W - j)) as an (H, W) tensor",
          mistakes=_DISCOUNT_MISTAKES)
def _check_spatial_discount(fn: Callable[..., torch.Tensor]) -> None:
    """w[i, j] = max(gamma ** min(i, H - i), gamma ** min(j, W - j)) as an (H, W) tensor."""
    name = "spatial_discount"
    ex = REGISTRY[name]
    H, W, gamma = 5, 8, 0.5
    out = call(name, fn, H, W, gamma)
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (W, H):
        fail(name, f"spatial_discount({H}, {W}) has shape {(W, H)}, expected {(H, W)}",
             "wrong axis: rows (the first dim) run over the height, columns over the width")
    expect_tensor(name, out, shape=(H, W), what=f"spatial_discount({H}, {W}, {gamma})",
                  hint="return an (H, W) tensor: one weight per pixel of the box", dtype=torch.float32,
                  finite=False)
    cases = [(5, 8, 0.5), (1, 1, 0.9), (2, 3, 0.9), (4, 4, 1.0), (7, 3, 0.99), (6, 9, 0.7), (128, 128, 0.9)]
    g = torch.Generator().manual_seed(2)
    for _ in range(4):  # seeded random sizes and gammas
        h, w = (int(v) for v in torch.randint(1, 40, (2,), generator=g))
        cases.append((h, w, round(0.5 + 0.5 * float(torch.rand((), generator=g)), 4)))
    compare_cases(name, fn, ex.reference,
                  [Case((h, w, gm), {}, f"spatial_discount({h}, {w}, gamma={gm})") for h, w, gm in cases],
                  "w[i, j] = max(gamma ** min(i, H - i), gamma ** min(j, W - j)), with the gamma you are given.",
                  variants=lambda case: hinted_mistakes(name, _DISCOUNT_HINTS, *case.args), atol=1e-6, rtol=1e-5)
    default = expect_tensor(name, call(name, fn, 16, 16), shape=(16, 16), what="spatial_discount(16, 16)",
                            dtype=torch.float32)
    if abs(default[8, 8].item() - 0.9 ** 8) > 1e-6:
        fail(name, f"with the default gamma the centre of a 16x16 box weighs {default[8, 8].item():.4g}, "
             f"expected 0.9 ** 8 = {0.9 ** 8:.4g}", "the default gamma is the release's 0.9 (the paper says 0.99)")
