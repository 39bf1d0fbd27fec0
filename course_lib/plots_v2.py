"""Figures of notebook 11 and lesson 11 (DeepFill v2): holes, partial-conv masks, gates, fills.

Every function is pure (numbers and tensors in, a new matplotlib ``Figure`` out), so the same
code draws the notebook's plots and the lesson's figures (``scripts/figures_v2.py``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.figure import Figure

from course_lib.plots import to_display
from course_lib.gated import GatedConv2d
from course_lib.masks import partial_conv_mask_updates

__all__ = ["holes_figure", "gate_maps_figure", "side_by_side_figure"]


def holes_figure(box: torch.Tensor, strokes: torch.Tensor, steps: int = 2) -> Figure:
    """A box hole and a stroke hole (each (1, 1, H, W), 1 = hole) and what partial convs make of them.

    Row per hole: the hole, then the hole left after 1..``steps`` 3x3 partial-conv layers
    (:func:`course_lib.masks.partial_conv_mask_updates`): a thin stroke is declared "valid"
    after a layer or two, whatever its pixels saw.
    """
    fig = Figure(figsize=(2.2 * (steps + 1), 4.6))
    for row, (name, mask) in enumerate((("box", box), ("strokes", strokes))):
        after = partial_conv_mask_updates(mask, 3, steps)
        for col, m in enumerate([mask] + after):
            ax = fig.add_subplot(2, steps + 1, row * (steps + 1) + col + 1)
            ax.imshow(m[0, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_axis_off()
            title = f"{name} hole ({m.mean().item():.0%})" if col == 0 else \
                f"after {col} partial conv{'s' if col > 1 else ''} ({m.mean().item():.0%})"
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def gate_maps_figure(layer: GatedConv2d, h: torch.Tensor, mask: torch.Tensor, image: torch.Tensor,
                     channels: Sequence[int] = (0, 1, 2)) -> Figure:
    """The gates of one gated layer: sigmoid(gate) of a few channels next to the masked image.

    ``layer`` gets ``h`` (1, C_in, H, W); ``mask`` (1, 1, H, W) and ``image`` (1, 3, H, W) are
    shown for reference. Dark = the gate closes (the feature does not pass), bright = it opens.
    """
    gate = layer.gate(h)[0]  # (C, H', W')
    n = 2 + len(channels)
    fig = Figure(figsize=(2.2 * n, 2.6))
    ax = fig.add_subplot(1, n, 1)
    ax.imshow(to_display(image * (1 - mask)), interpolation="nearest")
    ax.set_title("input (hole = 0, grey)", fontsize=8)
    ax.set_axis_off()
    ax = fig.add_subplot(1, n, 2)
    ax.imshow(gate.mean(0).numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("mean gate", fontsize=8)
    ax.set_axis_off()
    for k, c in enumerate(channels):
        ax = fig.add_subplot(1, n, 3 + k)
        ax.imshow(gate[c].numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"gate, channel {c}", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def side_by_side_figure(x: torch.Tensor, mask: torch.Tensor, fills: dict[str, torch.Tensor]) -> Figure:
    """Rows of images: original, input with the hole, then each completed fill (name -> (B, 3, H, W))."""
    n = x.shape[0]
    cols = 2 + len(fills)
    fig = Figure(figsize=(1.9 * cols, 1.9 * n + 0.3))
    for i in range(n):
        row = [("original", x[i:i + 1]), ("input", x[i:i + 1] * (1 - mask[i:i + 1]))]
        row += [(name, out[i:i + 1] * mask[i:i + 1] + x[i:i + 1] * (1 - mask[i:i + 1]))
                for name, out in fills.items()]
        for j, (title, img) in enumerate(row):
            ax = fig.add_subplot(n, cols, i * cols + j + 1)
            ax.imshow(to_display(img), interpolation="nearest")
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
