"""Figures of lesson 11 (DeepFill v2), drawn from course_lib.

Found and run by ``scripts/make_figures.py`` (``FIGURES`` below). Every function takes no
argument, is deterministic, and returns a new matplotlib ``Figure`` drawn by a
``course_lib.plots_v2`` function; the gate maps and the side by side use the bundled toy
coarse networks (``course_lib/weights/toy_coarse_*_strokes.pt``, ``scripts/train_v2_toy.py``).

    python scripts/make_figures.py 11_
"""
from __future__ import annotations

from matplotlib.figure import Figure

from course_lib import v2_toy
from course_lib.masks import stroke_masks
from course_lib.baselines import diffusion_fill
from course_lib.generator import stage_input
from course_lib.masks import random_box_mask
from course_lib.plots_v2 import gate_maps_figure, holes_figure, side_by_side_figure
from course_lib.seed import make_generator


def fig_11_holes() -> Figure:
    box, _ = random_box_mask(1, 64, 64, 32, 32, max_delta=8, generator=make_generator(2))  # (1, 1, 64, 64)
    return holes_figure(box, stroke_masks(1, 64, make_generator(3)), steps=2)


def fig_11_gates() -> Figure:
    x, mask = v2_toy.held_out_strokes(40)
    net = v2_toy.load_coarse(v2_toy.v2_weights("gated"))
    i = 3
    h = stage_input(x[i:i + 1] * (1 - mask[i:i + 1]), mask[i:i + 1])  # (1, 5, 64, 64)
    return gate_maps_figure(net.conv1, h, mask[i:i + 1], x[i:i + 1], channels=(0, 1, 2, 3))


def fig_11_side_by_side() -> Figure:
    x, mask = v2_toy.held_out_strokes(40)
    fills = {}
    for kind, title in (("v1", "v1 (vanilla)"), ("gated", "gated")):
        fills[title], _ = v2_toy.hole_scores(v2_toy.load_coarse(v2_toy.v2_weights(kind)), x[:5], mask[:5])
    fills["diffusion"] = diffusion_fill(x[:5], mask[:5])
    return side_by_side_figure(x[:5], mask[:5], fills)


FIGURES = {
    "11_holes.png": fig_11_holes,
    "11_gates.png": fig_11_gates,
    "11_side_by_side.png": fig_11_side_by_side,
}
