"""Figures of lesson 07 (the coarse-to-fine generator), drawn from course_lib.

Found and run by ``scripts/make_figures.py`` (``FIGURES`` below). Every function takes no
argument, is deterministic, and returns a new matplotlib ``Figure`` drawn by a
``course_lib.plots`` function from ``course_lib`` models (the stages figure uses the
bundled toy generator, ``course_lib/weights/toy_cpu.pt``).

    python scripts/make_figures.py 07_
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from course_lib import load_generator
from course_lib.data import make_dataset
from course_lib.evaluate import evaluation_masks
from course_lib.generator import CoarseNetwork, Generator
from course_lib.plots import gradient_maps_figure, ones_channel_figure, receptive_field_figure, stages_figure
from course_lib.receptive_field import conv_specs, gradient_map, support_size
from course_lib.samples import toy_weights
from course_lib.seed import seed_everything


def fig_07_ones_channel() -> Figure:
    return ones_channel_figure(size=16, kernel=5)


def fig_07_receptive_field() -> Figure:
    specs = conv_specs(Generator(cnum=4).coarse, CoarseNetwork.LAYERS[:12])  # conv1 .. conv12
    return receptive_field_figure(specs, image_size=256, hole=128)


def fig_07_gradient_maps() -> Figure:
    seed_everything(0)
    coarse = Generator(cnum=4).coarse  # random TF-style weights
    maps = {}
    for last in ("conv6", "conv10_atrous"):
        names = CoarseNetwork.LAYERS[:CoarseNetwork.LAYERS.index(last) + 1]
        grad = gradient_map([getattr(coarse, n) for n in names], in_channels=5, size=128)  # (128, 128)
        rows, cols = support_size(grad)
        maps[f"after {last}: {rows} x {cols} px"] = grad
    return gradient_maps_figure(maps)


def fig_07_stages() -> Figure:
    generator = load_generator(toy_weights())
    test = make_dataset("toy", split="test", size=64, seed=0, n=100)
    show = [0, 1, 3, 4]  # stripes, checks, bricks, faces
    x = torch.stack([test[i] for i in show])  # (4, 3, 64, 64)
    mask = evaluation_masks(100, 64, 64, seed=123, box=32)[show]  # (4, 1, 64, 64), as notebook 07
    with torch.no_grad():
        x_stage1, x_stage2, flow = generator(x, mask)
    return stages_figure(x, mask, x_stage1, x_stage2, flow)


FIGURES = {
    "07_ones_channel.png": fig_07_ones_channel,
    "07_receptive_field.png": fig_07_receptive_field,
    "07_gradient_maps.png": fig_07_gradient_maps,
    "07_stages.png": fig_07_stages,
}
