"""Block diagrams for lessons 06 and 07: the contextual attention layer and the generator.

Drawn with matplotlib patches only (no data, no randomness), so they redraw to the same
bytes. The shapes and layer names are the release's (paper Figs. 2-3; ``inpaint_model.py``,
``inpaint_ops.py``); the numbers are those of a 256×256 input at ``cnum = 32``, as in
lesson 07's tables. Picked up by ``scripts/make_figures.py`` through ``FIGURES``.
"""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

# one colour per kind of block (colour-blind safe pairs from the Okabe-Ito palette)
COLOURS = {
    "data": "#E8E8E8",     # tensors the layer or network receives / returns
    "conv": "#BFD7EA",     # learned convolutions
    "attn": "#F6D8AE",     # contextual attention (no weights)
    "fixed": "#D9EAD3",    # fixed operations without weights (resize, paste, composite)
    "loss": "#F4CCCC",     # losses and critics
}


def _box(ax, x: float, y: float, w: float, h: float, text: str, kind: str, size: float = 8.0) -> None:
    """A rounded box with its lower-left corner at (x, y), in axis units."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLOURS[kind], edgecolor="#333333", linewidth=0.9))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, wrap=False)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "",
           offset: tuple[float, float] = (0.0, 0.12), style: str = "-|>") -> None:
    """An arrow from start to end, with an optional label near its middle."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color="#333333", lw=1.0, shrinkA=0, shrinkB=0))
    if text:
        mx, my = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=7, color="#333333")


def _legend(ax, x: float, y: float) -> None:
    names = {"data": "tensor", "conv": "learned convs", "attn": "contextual attention",
             "fixed": "fixed operation", "loss": "loss / critic"}
    for i, (kind, name) in enumerate(names.items()):
        _box(ax, x + i * 2.8, y, 0.35, 0.25, "", kind)
        ax.text(x + i * 2.8 + 0.45, y + 0.125, name, ha="left", va="center", fontsize=7)


def _canvas(width: float, height: float, xmax: float, ymax: float):
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, ymax)
    ax.axis("off")
    return fig, ax


def fig_07_architecture() -> Figure:
    """Lesson 07: the two-stage generator, its input and the losses and critics around it."""
    fig, ax = _canvas(13.0, 6.2, 26.0, 12.4)
    ax.text(0.2, 12.0, "DeepFill v1 generator (release, 256×256 input, cnum 32; shapes C×H×W)",
            fontsize=10, weight="bold", va="top")

    # input
    _box(ax, 0.2, 7.6, 2.6, 1.6, "input\nx·(1−m), ones, m\n5×256×256", "data")
    # stage 1
    ax.text(3.3, 10.9, "stage 1: coarse network (1,448,227 parameters)", fontsize=8.5, style="italic")
    _box(ax, 3.3, 7.6, 2.6, 1.6, "conv1 … conv6\n5×5 then 3×3,\ntwo stride 2\n→ 128×64×64", "conv")
    _box(ax, 6.5, 7.6, 2.6, 1.6, "conv7 … conv10\natrous 3×3\ndilation 2, 4, 8, 16\n128×64×64", "conv")
    _box(ax, 9.7, 7.6, 2.6, 1.6, "conv11 … conv17\n2 × (nearest ×2,\n3×3 conv), no act.\n→ 3×256×256", "conv")
    _box(ax, 12.9, 7.6, 2.0, 1.6, "clip to\n[−1, 1]\nx_stage1", "data")
    _arrow(ax, (2.8, 8.4), (3.3, 8.4))
    _arrow(ax, (5.9, 8.4), (6.5, 8.4))
    _arrow(ax, (9.1, 8.4), (9.7, 8.4))
    _arrow(ax, (12.3, 8.4), (12.9, 8.4))
    # composite
    _box(ax, 15.5, 7.6, 2.8, 1.6, "x_mid =\nx_stage1·m + x·(1−m)\n(+ ones, m)", "fixed")
    _arrow(ax, (14.9, 8.4), (15.5, 8.4))

    # stage 2
    ax.text(3.3, 6.7, "stage 2: refinement network (2,153,315 parameters)", fontsize=8.5, style="italic")
    _box(ax, 3.3, 4.4, 4.4, 1.7, "dilated branch  xconv1 … xconv10_atrous\n(like stage 1's encoder)\n"
         "→ 128×64×64", "conv")
    _box(ax, 3.3, 1.9, 2.6, 1.7, "pmconv1 … pmconv6\n(last: ReLU)\n→ 128×64×64", "conv")
    _box(ax, 6.5, 1.9, 2.6, 1.7, "contextual\nattention\nf = b, rate 2,\nλ = 10", "attn")
    _box(ax, 9.7, 1.9, 2.0, 1.7, "pmconv9,\npmconv10\n128×64×64", "conv")
    _box(ax, 6.5, 0.2, 2.6, 1.1, "flow picture\n(argmax offsets)", "data")
    _arrow(ax, (17.0, 7.6), (17.0, 6.9), style="-")
    _arrow(ax, (17.0, 6.9), (2.0, 6.9), style="-")
    _arrow(ax, (2.0, 6.9), (2.0, 2.75), style="-")
    _arrow(ax, (2.0, 5.25), (3.3, 5.25))
    _arrow(ax, (2.0, 2.75), (3.3, 2.75))
    _arrow(ax, (5.9, 2.75), (6.5, 2.75))
    _arrow(ax, (9.1, 2.75), (9.7, 2.75))
    _arrow(ax, (7.8, 1.9), (7.8, 1.3))
    _box(ax, 12.4, 2.9, 2.2, 1.8, "concat\n256×64×64", "fixed")
    _arrow(ax, (7.7, 5.25), (13.5, 5.25), style="-")
    _arrow(ax, (13.5, 5.25), (13.5, 4.7))
    _arrow(ax, (11.7, 2.75), (13.5, 2.75), style="-")
    _arrow(ax, (13.5, 2.75), (13.5, 2.9))
    _box(ax, 15.2, 2.9, 2.8, 1.8, "allconv11 … allconv17\nlike stage 1's decoder\n→ 3×256×256, clip\nx_stage2",
         "conv")
    _arrow(ax, (14.6, 3.8), (15.2, 3.8))

    # losses and critics
    _box(ax, 19.2, 2.9, 2.6, 1.8, "completed\nx_stage2·m\n+ x·(1−m)", "fixed")
    _arrow(ax, (18.0, 3.8), (19.2, 3.8))
    _box(ax, 22.6, 4.3, 3.2, 1.3, "local critic (box 128×128)\nWGAN-GP, penalty on hole", "loss")
    _box(ax, 22.6, 2.6, 3.2, 1.3, "global critic (256×256)\nWGAN-GP, penalty on hole", "loss")
    _arrow(ax, (21.8, 4.1), (22.6, 4.9))
    _arrow(ax, (21.8, 3.5), (22.6, 3.2))
    _box(ax, 19.0, 7.6, 6.8, 1.6, "reconstruction losses on x_stage1 and x_stage2:\n"
         "discounted L1 on the box (lesson 02),\nAE L1 on the known pixels;\n"
         "generator: 0.001·adv + 1.2·L1 + 1.2·AE", "loss", 7.0)
    _arrow(ax, (13.9, 9.2), (13.9, 9.9), style="-")
    _arrow(ax, (13.9, 9.9), (22.4, 9.9), style="-", text="x_stage1")
    _arrow(ax, (22.4, 9.9), (22.4, 9.2))
    _arrow(ax, (17.6, 4.7), (17.6, 6.4), style="-")
    _arrow(ax, (17.6, 6.4), (20.0, 6.4), style="-", text="x_stage2")
    _arrow(ax, (20.0, 6.4), (20.0, 7.6))
    _legend(ax, 10.0, 0.3)
    return fig


def fig_06_attention_layer() -> Figure:
    """Lesson 06: the contextual attention layer as query/key/value attention, step by step."""
    fig, ax = _canvas(13.0, 5.4, 26.0, 10.8)
    ax.text(0.2, 10.5, "Contextual attention (release): shapes for C×64×64 features, rate 2, "
            "h = w = 32, L = h·w = 1024", fontsize=10, weight="bold", va="top")

    # inputs
    _box(ax, 0.2, 6.6, 2.4, 1.4, "foreground f\nC×64×64", "data")
    _box(ax, 0.2, 3.6, 2.4, 1.4, "background b\nC×64×64\n(= f in DeepFill)", "data")
    _box(ax, 0.2, 0.6, 2.4, 1.4, "mask\n1×64×64", "data")

    # downsample
    _box(ax, 3.4, 6.6, 2.4, 1.4, "nearest ×½\n(align_corners)\nC×32×32", "fixed")
    _box(ax, 3.4, 3.6, 2.4, 1.4, "nearest ×½\nC×32×32", "fixed")
    _box(ax, 3.4, 0.6, 2.4, 1.4, "nearest ×½\n1×32×32", "fixed")
    for y in (7.3, 4.3, 1.3):
        _arrow(ax, (2.6, y), (3.4, y))

    # queries / keys / validity
    _box(ax, 6.6, 6.6, 2.8, 1.4, "QUERIES: 3×3 patches\nof f (not normalised)", "attn", 7.5)
    _box(ax, 6.6, 3.6, 2.8, 1.4, "KEYS: 3×3 patches,\n/ max(‖·‖, 1e-4)\nL×C×3×3", "attn", 7.5)
    _box(ax, 6.6, 0.6, 2.8, 1.4, "valid patch mm:\nno hole pixel in\nits 3×3 window (L)", "attn", 7.5)
    for y in (7.3, 4.3, 1.3):
        _arrow(ax, (5.8, y), (6.6, y))

    # scores, fuse, softmax
    _box(ax, 10.2, 5.1, 2.6, 1.6, "scores = conv2d(f, keys)\nL×32×32\n(‖f‖·cos)", "attn", 7.5)
    _arrow(ax, (9.4, 7.3), (11.5, 6.7))
    _arrow(ax, (9.4, 4.3), (11.5, 5.1))
    _box(ax, 13.6, 5.1, 2.6, 1.6, "fuse: 3×3 identity\nkernel on the\n[h·w, L] matrix,\nrow- then column-major",
         "attn", 7)
    _arrow(ax, (12.8, 5.9), (13.6, 5.9))
    _box(ax, 17.0, 5.1, 2.6, 1.6, "masked softmax\n·mm, softmax(10·s)\nover L, ·mm\nattention L×32×32",
         "attn", 7)
    _arrow(ax, (16.2, 5.9), (17.0, 5.9))
    _arrow(ax, (9.4, 1.3), (18.3, 1.3), style="-")
    _arrow(ax, (18.3, 1.3), (18.3, 5.1))

    # values and paste
    _box(ax, 10.2, 2.3, 2.6, 1.6, "VALUES: raw 4×4 patches\nof full-size b,\nstride 2: L×C×4×4",
         "attn", 7.5)
    _arrow(ax, (2.6, 4.0), (3.1, 4.0), style="-")
    _arrow(ax, (3.1, 4.0), (3.1, 3.1), style="-")
    _arrow(ax, (3.1, 3.1), (10.2, 3.1))
    _box(ax, 20.6, 2.3, 2.8, 1.6, "paste: conv_transpose2d\n(attention, values),\nstride 2, / 4", "fixed", 7.5)
    _arrow(ax, (12.8, 3.1), (20.6, 3.1))
    _arrow(ax, (19.6, 5.9), (22.0, 5.9), style="-")
    _arrow(ax, (22.0, 5.9), (22.0, 3.9))
    _box(ax, 24.1, 2.3, 1.7, 1.6, "y\nC×64×64", "data")
    _arrow(ax, (23.4, 3.1), (24.1, 3.1))

    _box(ax, 20.6, 7.6, 2.8, 1.5, "argmax over L →\noffsets → colour wheel\n→ ×2 → flow", "fixed", 7.5)
    _arrow(ax, (18.3, 6.7), (21.0, 7.6))
    ax.text(13.0, 8.7, "softmax(Q Kᵀ · λ) V without learned projections:\n"
            "Q, K, V all come from the same pmconv6 features", fontsize=8, ha="center", style="italic")
    _legend(ax, 0.3, 9.3)
    return fig


FIGURES = {
    "06_attention_layer.png": fig_06_attention_layer,
    "07_architecture.png": fig_07_architecture,
}
