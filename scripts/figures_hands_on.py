"""Figures of lesson 10 (inference and evaluation, hands-on), drawn from course_lib.

Registered in ``FIGURES`` for ``scripts/make_figures.py``; every figure is seeded and uses the
bundled toy model, so it can be redrawn anywhere.
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from course_lib.blind_spot import equal_psnr_fills, sharpness
from course_lib.data import make_dataset
from course_lib.evaluate import psnr_by_hole_size
from course_lib.explorer import attention_maps, explorer_figure
from course_lib.inpaint_cli import load_generator
from course_lib.masks import bbox_to_mask
from course_lib.plots import equal_psnr_figure, hole_size_figure
from course_lib.samples import toy_weights
from course_lib.seed import make_generator
from course_lib.toy import toy_image

SIDES = (8, 16, 24, 32, 40, 48)


def hole_sizes() -> Figure:
    """Hole PSNR of the toy model and the diffusion fill on 48 held-out images, six hole sizes."""
    toy = load_generator(toy_weights())
    test = make_dataset("toy", split="test", size=64, seed=0, n=48)
    images = torch.stack([test[i] for i in range(48)])  # (48, 3, 64, 64)
    model_db, smooth_db = psnr_by_hole_size(toy, images, SIDES)
    return hole_size_figure(SIDES, model_db, smooth_db, trained=(24, 32))


def attention_map() -> Figure:
    """The course's per-pixel attention view (the paper's Figure 4 shows only the argmax flow) for
    the toy model: where the centre of a box hole in a wall copies from."""
    toy = load_generator(toy_weights())
    x = toy_image("bricks", size=64, generator=make_generator(2))[None]  # (1, 3, 64, 64)
    maps = attention_maps(toy, x, bbox_to_mask((20, 20, 24, 24), 64, 64, max_delta=0))  # a centred 24 px hole
    return explorer_figure(maps, 36, 30)


def equal_psnr() -> Figure:
    """Two fills with the same hole PSNR: the stripes continued (shifted) and the diffusion blur."""
    pair = equal_psnr_fills(size=64, hole=24)
    sharp = [sharpness(f, pair.image, pair.mask).item() for f in (pair.plausible, pair.blurred)]
    return equal_psnr_figure(pair, *sharp)


def seam_blending() -> Figure:
    """Exact mode without and with seam blending (``feather``): the raw fill pasted, then faded into its surroundings."""
    from course_lib.inpainting import inpaint
    from course_lib.plots import show_images

    toy = load_generator(toy_weights())
    x = toy_image("faces", size=64, generator=make_generator(4))[None]  # (1, 3, 64, 64)
    mask = bbox_to_mask((18, 14, 26, 30), 64, 64, max_delta=0)  # (1, 1, 64, 64) a 30x26 (WxH) box
    raw = inpaint(toy, x, mask, mode="exact", warn_large_hole=False)  # (1, 3, 64, 64)
    blended = inpaint(toy, x, mask, mode="exact", feather=3, warn_large_hole=False)
    diff = ((blended - raw).abs().amax(dim=1, keepdim=True) * 4).clamp(0, 1)  # (1, 1, 64, 64) x4 to show it
    return show_images([x * (1 - mask) + mask, raw, blended, diff],
                       ["input (hole white)", "exact, raw fill (default)", "exact, --feather 3",
                        "|difference| x 4"])


FIGURES = {
    "10_seam_blending.png": seam_blending,
    "10_hole_sizes.png": hole_sizes,
    "10_attention_map.png": attention_map,
    "10_equal_psnr.png": equal_psnr,
}
