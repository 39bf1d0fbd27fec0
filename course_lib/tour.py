"""The whole game first: notebook 00's and lesson 00's inpainting, and the course's map of the model.

Notebook 00 ends with a real inpainting before any piece is built (fastbook's "whole game"
first): :func:`whole_game` runs a DeepFill v1 generator once on a photo with a box hole and
:func:`whole_game_figure` shows the input, stage 1 (the coarse network's fill), stage 2 (the
refined fill) and the attention flow (paper Fig. 2's two stages; Fig. 4's colour-coded flow).
The model is the one :func:`course_lib.pretrained.official_or_toy` picks: the official
Places2 weights when they are cached, the bundled toy model otherwise (64x64 toy images).

:func:`architecture_figure` draws the generator, its losses and its critics as boxes, each
labelled with the notebook that builds it (lesson 00's figure ``00_architecture.png``, drawn by
``scripts/make_figures.py``, and notebook 00's map). The layer names follow the release
(``inpaint_model.py``); lesson 07's ``07_architecture.png`` has the shapes.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from course_lib.masks import bbox_to_mask
from course_lib.metrics import psnr
from course_lib.plots import stages_figure

__all__ = ["WholeGame", "whole_game", "whole_game_figure", "architecture_figure", "NOTEBOOK_BOXES"]


class WholeGame(NamedTuple):
    """One run of the generator: images ``(B, 3, H, W)`` in [-1, 1], ``mask`` ``(1, 1, H, W)``, 1 = hole.

    ``stage1`` and ``stage2`` are the raw outputs of the two stages, ``flow`` the attention
    flow picture ``(B, 3, h, w)``; ``psnr1`` and ``psnr2`` the hole PSNR (dB) of each stage
    against the truth, one per image.
    """

    x: torch.Tensor
    mask: torch.Tensor
    stage1: torch.Tensor
    stage2: torch.Tensor
    flow: torch.Tensor
    psnr1: torch.Tensor
    psnr2: torch.Tensor


def default_inputs(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and the box hole notebook 00 uses for a model of ``size`` pixels.

    256 (the official weights): the brick and astronaut sample photos (toy images without
    them) with a 96x96 hole, the smallest hole of the release's 128x128 training box. 64 (the
    toy model): two toy pictures (bricks, stripes) with a 24x24 hole, inside the 32x32 box the
    toy model was trained with. Returns ``(x (B, 3, size, size), mask (1, 1, size, size))``.
    """
    from course_lib.samples import course_image
    from course_lib.seed import make_generator
    from course_lib.toy import toy_image

    if size >= 128:
        x = torch.cat([course_image("brick", size=size), course_image("astronaut", size=size)])  # (2, 3, S, S)
        side = 96 * size // 256
    else:
        x = torch.stack([toy_image(kind, size=size, generator=make_generator(1)) for kind in ("bricks", "stripes")])
        side = 24 * size // 64  # (2, 3, S, S)
    top = (size - side) // 2
    return x, bbox_to_mask((top, top, side, side), size, size, max_delta=0)  # (1, 1, S, S)


def whole_game(model: Any, x: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None) -> WholeGame:
    """Run ``model`` once: ``x`` with the hole ``mask`` blanked -> stage 1, stage 2, flow.

    ``model``: a :class:`course_lib.painter.HandsOnModel` (``official_or_toy``) or any object
    with ``generator`` (``(x_incomplete, mask) -> (x1, x2, flow)``) and ``size``. ``x`` and
    ``mask`` default to :func:`default_inputs` for the model's size. The generator only ever
    sees ``x * (1 - mask)`` and the mask (notebook 07's input).
    """
    generator, size = getattr(model, "generator", None), getattr(model, "size", None)
    if generator is None or not isinstance(size, int):
        raise TypeError("whole_game(model): pass what course_lib.pretrained.official_or_toy() returns "
                        f"(a model with .generator and .size), got {type(model).__name__}")
    if x is None or mask is None:
        x, mask = default_inputs(size)
    if x.dim() != 4 or x.shape[1] != 3 or mask.dim() != 4 or mask.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"x must be (B, 3, H, W) and mask (1 or B, 1, H, W) of the same H, W; got "
                         f"{tuple(x.shape)} and {tuple(mask.shape)}")
    if isinstance(generator, torch.nn.Module):
        generator.eval()
    with torch.no_grad():
        x1, x2, flow = generator(x * (1 - mask), mask)  # (B, 3, H, W) x2, (B, 3, h, w) flow
    return WholeGame(x, mask, x1, x2, flow, psnr(x, x1 * mask + x * (1 - mask), mask=mask),
                     psnr(x, x2 * mask + x * (1 - mask), mask=mask))


def whole_game_figure(game: WholeGame) -> Figure:
    """One row per image: input (hole white) | stage 1 | stage 2 | attention flow | ground truth."""
    return stages_figure(game.x, game.mask, game.stage1, game.stage2, game.flow, size=2.2)


# ----------------------------------------------------------------------------- the course's map of the model

# box label -> notebooks that build it (the course map's "You build" column, in one place)
NOTEBOOK_BOXES: dict[str, str] = {
    "input": "00, 01",
    "coarse": "07",
    "paste": "07",
    "dilated": "07",
    "attention": "03–06",
    "decoder": "07",
    "losses": "02",
    "critics": "08",
    "training": "09",
    "use": "10, 90, 95",
    "v2": "11",
}

_COLOURS = {"data": "#E8E8E8", "conv": "#BFD7EA", "attn": "#F6D8AE", "fixed": "#D9EAD3", "loss": "#F4CCCC",
            "course": "#FFFFFF"}


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, kind: str, notebook: str = "",
         size: float = 8.0) -> None:
    """A rounded box (lower-left corner at x, y) with its text and, below it, "notebook N builds this box"."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.1",
                                facecolor=_COLOURS[kind], edgecolor="#333333", linewidth=0.9))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)
    if notebook:
        plural = "–" in notebook or "," in notebook
        label = f"notebook{'s' if plural else ''} {notebook} build{'' if plural else 's'} this box"
        ax.text(x + w / 2, y - 0.12, label, ha="center", va="top", fontsize=6.8, color="#B03A2E", weight="bold")


def _arrow(ax: Any, start: Sequence[float], end: Sequence[float], style: str = "-|>") -> None:
    ax.annotate("", xy=tuple(end), xytext=tuple(start),
                arrowprops=dict(arrowstyle=style, color="#333333", lw=1.0, shrinkA=0, shrinkB=0))


def architecture_figure() -> Figure:
    """DeepFill v1 as the course builds it: every box labelled with the notebook that builds it.

    Stage 1 (coarse network) and stage 2 (a dilated-conv branch beside the contextual
    attention branch, paper Fig. 3) as in the release's ``inpaint_model.py``; below them the
    losses and critics used in training (paper Sec. 3-4) and the notebooks that train, use and
    extend the model. No data, no randomness: it redraws to the same picture.
    """
    fig = Figure(figsize=(12.0, 5.6))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 24)
    ax.set_ylim(0, 11.2)
    ax.axis("off")
    ax.text(0.1, 10.9, "DeepFill v1 as this course builds it (each box: the notebook that builds it)",
            fontsize=10.5, weight="bold", va="top")
    nb = NOTEBOOK_BOXES

    # stage 1
    _box(ax, 0.1, 7.6, 3.0, 1.6, "input\nx·(1−m), ones, m\n(x in [−1, 1], m = 1 on the hole)", "data", nb["input"], 7.5)
    _box(ax, 4.0, 7.6, 3.6, 1.6, "stage 1: coarse network\nconvolutions, a dilated\nmiddle: a first guess", "conv",
         nb["coarse"], 7.5)
    _box(ax, 8.5, 7.6, 3.0, 1.6, "paste stage 1\ninto the hole\nx_stage1·m + x·(1−m)", "fixed", nb["paste"], 7.5)
    _arrow(ax, (3.1, 8.4), (4.0, 8.4))
    _arrow(ax, (7.6, 8.4), (8.5, 8.4))

    # stage 2: two branches
    ax.text(12.4, 10.0, "stage 2: refinement network", fontsize=8.5, style="italic")
    _box(ax, 12.4, 7.9, 3.8, 1.5, "dilated-conv branch\n(like stage 1's encoder)", "conv", nb["dilated"], 7.5)
    _box(ax, 12.4, 4.9, 3.8, 2.2, "contextual attention branch\n03 match patches (≈ cosine)\n"
         "04 softmax, fuse, mask\n05 paste patches back\n06 the whole layer", "attn", nb["attention"], 7.2)
    _arrow(ax, (11.5, 8.4), (12.4, 8.6))
    _arrow(ax, (11.5, 8.2), (12.4, 6.0))
    _box(ax, 17.2, 6.6, 3.0, 1.8, "concat +\ndecoder\n→ x_stage2", "conv", nb["decoder"], 7.5)
    _arrow(ax, (16.2, 8.6), (17.2, 7.8))
    _arrow(ax, (16.2, 6.0), (17.2, 7.2))
    _box(ax, 21.0, 6.6, 2.8, 1.8, "output\nx_stage2·m\n+ x·(1−m)\n+ flow picture", "data", "", 7.5)
    _arrow(ax, (20.2, 7.5), (21.0, 7.5))

    # training: losses and critics
    ax.text(0.1, 3.75, "training", fontsize=8.5, style="italic")
    _box(ax, 0.1, 1.8, 4.6, 1.6, "spatially discounted L1\non both stages (γ = 0.9,\nrelease weights on the box)",
         "loss", nb["losses"], 7.5)
    _box(ax, 5.5, 1.8, 4.6, 1.6, "WGAN-GP: a local critic (box)\nand a global critic (image),\n"
         "penalty on the hole", "loss", nb["critics"], 7.5)
    _box(ax, 10.9, 1.8, 4.2, 1.6, "the training loop:\ncheckpoints, resume,\nweight average, evaluation", "fixed",
         nb["training"], 7.5)

    # using and extending the model
    ax.text(16.0, 3.75, "using and extending it", fontsize=8.5, style="italic")
    _box(ax, 16.0, 1.8, 3.6, 1.6, "inference by hand,\nofficial weights,\ntraining on a GPU", "course", nb["use"], 7.5)
    _box(ax, 20.3, 1.8, 3.5, 1.6, "DeepFill v2 (bonus):\ngated convolution,\nSN-PatchGAN", "course", nb["v2"], 7.5)
    ax.text(0.1, 0.35, "Notebook 00 (this tour) runs the whole model first; the boxes are built in the order "
            "01 → 11. Colours: grey tensors, blue learned convolutions, orange attention (no weights), "
            "green fixed operations, red losses and critics.", fontsize=7, color="#333333")
    return fig
