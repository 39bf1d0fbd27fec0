"""Which background patches a hole pixel copies: the attention maps of a trained generator.

For a pixel in the hole, the contextual-attention weights over the background: the course's
own view (the paper's Figure 4 draws only the colour-coded flow of each pixel's best patch,
not these weights). :func:`attention_maps` runs a :class:`course_lib.generator.Generator` and keeps
those weights (:func:`course_lib.attention.attention_weights` on the refinement network's own
features); :func:`attention_at` picks the map of one image pixel, :func:`explorer_figure` draws
it, and :class:`AttentionExplorer` (notebook 10) redraws it wherever the student clicks.

Geometry (release): the attention features are at 1/4 of the image (two stride-2 convs),
matching runs at 1/``rate`` of that (``rate = 2``), so one foreground cell and one
background patch centre are ``CELL = 8`` image pixels apart; the matching patch is 3x3
cells (24 px), the pasted patch 4x4 feature pixels (16 px).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib.attention import attention_weights
from course_lib.generator import compose_stages, stage_input
from course_lib.inpainting import hole_bbox
from course_lib.painter import enlarged_uint8
from course_lib.plots import to_display

__all__ = ["CELL", "AttentionMaps", "attention_maps", "attention_at", "top_patches",
           "explorer_figure", "AttentionExplorer"]

CELL = 8  # image pixels per attention cell: feature stride 4 x matching rate 2


class AttentionMaps(NamedTuple):
    """What :func:`attention_maps` returns (one image or a batch).

    * ``weights`` ``(B, L, Hc, Wc)``: ``weights[n, l, i, j]`` = how much cell ``(i, j)`` copies
      background patch ``l = row * grid[1] + col``;
    * ``grid``: the background grid ``(Hc, Wc)`` (here the same as the foreground grid);
    * ``cell``: image pixels per cell (8);
    * ``result``: the completed image ``x2 * mask + x * (1 - mask)`` ``(B, 3, H, W)``;
    * ``mask``: the hole ``(B or 1, 1, H, W)``.
    """

    weights: torch.Tensor
    grid: tuple[int, int]
    cell: int
    result: torch.Tensor
    mask: torch.Tensor


def attention_maps(generator: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> AttentionMaps:
    """Run ``generator`` on ``x`` (B, 3, H, W) in [-1, 1] with hole ``mask``, keeping the attention weights.

    H and W must be multiples of 8 (as for the generator). Runs in eval mode without
    gradients; the weights are the ones the generator's own contextual attention uses
    (:meth:`course_lib.generator.RefineNetwork.attention_inputs`, then
    :func:`course_lib.attention.attention_weights` with the release's arguments: ksize 3,
    stride 1, rate 2, fuse on, softmax_scale 10).
    """
    for name in ("coarse", "refine", "_prepare"):
        if not hasattr(generator, name):
            raise TypeError(f"attention_maps needs a course_lib Generator (with .coarse and .refine), "
                            f"got {type(generator).__name__}")
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            x_in, m = generator._prepare(x, mask)  # (B, 3, H, W), (B or 1, 1, H, W)
            x1 = generator.coarse(x_in, m)  # (B, 3, H, W)
            x_mid = compose_stages(x1, x_in, m)  # (B, 3, H, W)
            x2, _ = generator.refine(x_mid, m)  # (B, 3, H, W)
            pm, mask_s = generator.refine.attention_inputs(stage_input(x_mid, m), m)  # (B, 4c, H/4, W/4)
            weights = attention_weights(pm, pm, mask_s, 3, 1, rate=2)  # (B, L, H/8, W/8)
            result = x2 * m + x * (1.0 - m)  # (B, 3, H, W)
    finally:
        generator.train(was_training)
    grid = (-(-pm.shape[-2] // 2), -(-pm.shape[-1] // 2))
    return AttentionMaps(weights, grid, CELL, result, m)


def attention_at(attention: torch.Tensor, grid: tuple[int, int], row: int, col: int,
                 cell: int = CELL) -> torch.Tensor:
    """The copy weights of image pixel ``(row, col)`` as a background map ``(Hc, Wc)`` (first image).

    ``attention`` ``(B, L, Hf, Wf)`` from :func:`attention_maps`; the pixel lies in
    foreground cell ``(row // cell, col // cell)``; patch ``l`` sits at background cell
    ``(l // Wc, l % Wc)`` with ``grid = (Hc, Wc)``. The weights are returned as they are
    (not renormalised: they sum to at most 1).
    """
    hf, wf = attention.shape[-2:]
    i, j = row // cell, col // cell
    if not (0 <= i < hf and 0 <= j < wf):
        raise ValueError(f"pixel ({row}, {col}) lies outside the image of {hf * cell}x{wf * cell} pixels")
    return attention[0, :, i, j].reshape(grid[0], grid[1])  # (Hc, Wc)


def top_patches(weights: torch.Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The ``k`` largest entries of a map ``(Hc, Wc)`` as ``(cell row, cell col, weight)``, largest first."""
    values, index = weights.flatten().topk(min(k, weights.numel()))
    wc = weights.shape[1]
    return [(int(l) // wc, int(l) % wc, float(v)) for v, l in zip(values, index)]


def explorer_figure(maps: AttentionMaps, row: int, col: int, top: int = 3) -> Figure:
    """Where pixel ``(row, col)`` copies from, beside the completed image (the course's own view).

    Left: the result with the hole outlined and the pixel marked. Right: the copy weights
    over the image (each cell's weight spread over its 8x8 pixels), with the ``top``
    strongest matching patches (3x3 cells) boxed and their weights written (those of at
    least 0.01).
    """
    weights = attention_at(maps.weights, maps.grid, row, col, maps.cell)  # (Hc, Wc)
    img = to_display(maps.result[0])  # (H, W, 3) in [0, 1]
    H, W = img.shape[:2]
    heat = np.kron(weights.float().cpu().numpy(), np.ones((maps.cell, maps.cell)))[:H, :W]  # (H, W)
    hole = maps.mask[0, 0].float().cpu().numpy()  # (H, W)
    fig = Figure(figsize=(7.0, 3.6))
    left, right = fig.subplots(1, 2)
    left.imshow(img, interpolation="nearest")
    left.contour(hole, levels=[0.5], colors="white", linewidths=1.0)
    left.plot([col], [row], marker="+", color="red", markersize=14, markeredgewidth=2)
    left.set_title(f"pixel (row {row}, col {col})", fontsize=9)
    right.imshow(img * 0.35, interpolation="nearest")
    shown = right.imshow(heat, cmap="magma", alpha=0.75, vmin=0.0, vmax=max(float(heat.max()), 1e-6),
                         interpolation="nearest")
    for i, j, w in (p for p in top_patches(weights, top) if p[2] >= 0.01):  # patches that matter
        y0, x0 = (i - 1) * maps.cell - 0.5, (j - 1) * maps.cell - 0.5  # the 3x3-cell matching patch
        right.add_patch(Rectangle((x0, y0), 3 * maps.cell, 3 * maps.cell, fill=False, edgecolor="cyan", lw=1.2))
        right.text(x0 + 1, y0 + 4, f"{w:.2f}", color="cyan", fontsize=7, va="top")
    right.plot([col], [row], marker="+", color="red", markersize=10, markeredgewidth=2)
    right.set_title(f"copies from (weights sum {float(weights.sum()):.2f})", fontsize=9)
    fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


class AttentionExplorer:
    """Click a hole pixel of the completed image: see the patches it copies (notebook 10).

    ``AttentionExplorer(maps, scale=4)``: the completed image drawn on an ``ipycanvas``
    canvas ``scale`` times enlarged; a click at canvas ``(x, y)`` selects image pixel
    ``(y // scale, x // scale)`` and redraws :func:`explorer_figure` in the Output beside it.
    :meth:`select` does the same from code (what the tests and the stored notebook use, and
    the fallback where the widget stays blank: it returns the figure).
    """

    def __init__(self, maps: AttentionMaps, scale: int = 4, start: Optional[tuple[int, int]] = None) -> None:
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int (canvas pixels per image pixel), got {scale!r}")
        self.maps, self.scale = maps, scale
        H, W = maps.result.shape[-2:]
        if start is None:  # the centre of the (first image's) hole's bounding box, or of the image
            box = hole_bbox(maps.mask[:1])  # (top, left, height, width) or None
            start = (box[0] + (box[2] - 1) // 2, box[1] + (box[3] - 1) // 2) if box else (H // 2, W // 2)
        self.pixel = start
        self._canvas: Any = None
        self._output: Any = None

    def select(self, row: int, col: int) -> Figure:
        """Select image pixel ``(row, col)`` and return its figure (redrawn in the widget when shown)."""
        H, W = self.maps.result.shape[-2:]
        self.pixel = (min(max(int(row), 0), H - 1), min(max(int(col), 0), W - 1))
        fig = explorer_figure(self.maps, *self.pixel)
        if self._output is not None:
            from IPython.display import display

            with self._output:
                self._output.clear_output(wait=True)
                display(fig)
            self._draw_canvas()
        return fig

    def _draw_canvas(self) -> None:
        self._canvas.put_image_data(enlarged_uint8(self.maps.result[0], self.scale), 0, 0)  # (sH, sW, 3)
        row, col = self.pixel
        self._canvas.stroke_style = "red"
        self._canvas.line_width = 2
        s = self.scale
        self._canvas.stroke_rect(col * s - 3, row * s - 3, s + 6, s + 6)

    def _on_click(self, x: float, y: float) -> None:
        self.select(int(y) // self.scale, int(x) // self.scale)

    def widget(self) -> Any:
        """The canvas (click on it) beside the Output with the figure of the selected pixel."""
        import ipywidgets as widgets
        from ipycanvas import Canvas

        H, W = self.maps.result.shape[-2:]
        self._canvas = Canvas(width=W * self.scale, height=H * self.scale)
        self._canvas.on_mouse_down(self._on_click)
        self._output = widgets.Output()
        box = widgets.VBox([widgets.HTML("<b>Click a pixel in the hole</b> (outlined on the right)"),
                            widgets.HBox([self._canvas, self._output])])
        box.add_class("course-explorer")
        self.select(*self.pixel)
        return box
