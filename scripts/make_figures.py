#!/usr/bin/env python
"""Draw the lessons' figures from course_lib into lessons/figures/ (none are hand-drawn).

Figures are registered in ``FIGURES`` dicts, ``{"file_name.png": make_figure}``, where
``make_figure()`` takes no argument and returns a matplotlib ``Figure``:

* this file's ``FIGURES`` (lessons 00-02; lesson 00's from :mod:`course_lib.tour`, which
  notebook 00 draws too);
* the ``FIGURES`` of every ``scripts/figures_*.py`` module (e.g. ``figures_attention.py``
  for lessons 03-06), found and imported automatically; such a module needs nothing from
  this one.

Usage::

    python scripts/make_figures.py            # draw every figure
    python scripts/make_figures.py 02_        # only figures whose file name starts with 02_
    python scripts/make_figures.py --list     # list the registered figures

Everything is seeded, and PNGs are written without a timestamp or version string so that
re-drawing an unchanged figure gives the same bytes (clean diffs).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "lessons" / "figures"
DPI = 100

FigureFn = Callable[[], Figure]


# ----------------------------------------------------------------------------- lessons 00-02

def _sample_image(size: int = 256) -> torch.Tensor:
    """A (1, 3, size, size) image in [-1, 1]: the astronaut photo of data/samples/, else a toy image."""
    from course_lib.samples import course_image

    return course_image("astronaut", size=size)


def fig_00_architecture() -> Figure:
    """Lesson 00: the model as boxes, each labelled with the notebook that builds it."""
    from course_lib.tour import architecture_figure

    return architecture_figure()


def fig_00_whole_game() -> Figure:
    """Lesson 00: the whole game, drawn with the bundled toy model (notebook 00 uses the official one when cached)."""
    from course_lib.painter import HandsOnModel
    from course_lib.pretrained import load_pretrained
    from course_lib.samples import toy_weights
    from course_lib.tour import whole_game, whole_game_figure

    toy = HandsOnModel(load_pretrained(toy_weights()).eval(), 64, "toy")
    return whole_game_figure(whole_game(toy))


def fig_01_masks() -> Figure:
    """Lesson 01: an image, the release's box with its hole and known ring, a free-form hole, the inputs."""
    from matplotlib.patches import Patch, Rectangle

    from course_lib import masks
    from course_lib.plots import show_images

    x = _sample_image(256)  # (1, 3, 256, 256)
    box_mask, (bbox,) = masks.random_box_mask(1, 256, 256, generator=0)  # (1, 1, 256, 256)
    top, left, h, w = bbox
    box = masks.bbox_to_mask(bbox, 256, 256, max_delta=0)  # (1, 1, 256, 256), the whole 128x128 box
    ring = box * (1 - box_mask)  # known pixels inside the box
    # box panel: hole white, known ring orange, the rest of the image black
    panel = torch.cat([box_mask + ring, box_mask + 0.55 * ring, box_mask], dim=1) * 2 - 1  # (1, 3, 256, 256)
    stroke_mask = masks.brush_stroke_mask(256, 256, generator=3)  # (1, 1, 256, 256)
    fig = show_images([x, panel, x * (1 - box_mask), stroke_mask, x * (1 - stroke_mask)],
                      ["x in [-1, 1]", "release box: hole + known ring", "x * (1 - mask)", "free-form mask",
                       "x * (1 - mask)"])
    for ax in fig.axes[1:3]:  # the box's outline on the box panel and on the incomplete image
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, edgecolor="#E69F00", lw=1.4))
    fig.axes[1].legend(handles=[Patch(facecolor="white", edgecolor="#333333", label="hole (mask 1)"),
                                Patch(facecolor="#FF8C00", label="known ring (mask 0)")],
                       loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=7, ncol=2, frameon=False)
    return fig


def fig_01_baseline() -> Figure:
    """Lesson 01: the non-learned baselines filling a box hole, with their PSNR."""
    from course_lib import masks
    from course_lib.plots import baseline_figure

    x = _sample_image(256)  # (1, 3, 256, 256)
    mask = masks.bbox_to_mask((64, 64, 128, 128), 256, 256, max_delta=0)  # (1, 1, 256, 256)
    return baseline_figure(x, mask)


def fig_02_discount_release() -> Figure:
    """Lesson 02: release (gamma 0.9, box edge) vs paper (nearest known pixel), same gamma."""
    from course_lib.plots import discount_figure

    return discount_figure(gamma=0.9, box=128, delta=16)


def fig_02_discount_paper() -> Figure:
    """Lesson 02: the paper's gamma 0.99 (both distances), for comparison with 0.9."""
    from course_lib.plots import discount_figure

    return discount_figure(gamma=0.99, box=128, delta=16)


FIGURES: dict[str, FigureFn] = {
    "00_architecture.png": fig_00_architecture,
    "00_whole_game.png": fig_00_whole_game,
    "01_masks.png": fig_01_masks,
    "01_baseline.png": fig_01_baseline,
    "02_discount_gamma_0.9.png": fig_02_discount_release,
    "02_discount_gamma_0.99.png": fig_02_discount_paper,
}


# ----------------------------------------------------------------------------- discovery

def discover() -> dict[str, FigureFn]:
    """This file's figures plus those of every ``scripts/figures_*.py`` (sorted by file name)."""
    found: dict[str, FigureFn] = dict(FIGURES)
    for path in sorted(Path(__file__).resolve().parent.glob("figures_*.py")):
        spec = importlib.util.spec_from_file_location(f"course_figures_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        extra = getattr(module, "FIGURES", None)
        if not isinstance(extra, dict):
            raise TypeError(f"{path.name} must define FIGURES = {{'name.png': function}}")
        clash = set(extra) & set(found)
        if clash:
            raise ValueError(f"{path.name} registers figure names already taken: {sorted(clash)}")
        found.update(extra)
    return dict(sorted(found.items()))


def save(fig: Figure, path: Path) -> None:
    """Write a PNG without metadata that changes between runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the lessons' figures into lessons/figures/.")
    parser.add_argument("prefixes", nargs="*", help="only figures whose file name starts with these")
    parser.add_argument("--list", action="store_true", help="list the registered figures and exit")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default lessons/figures)")
    args = parser.parse_args(argv)

    figures = discover()
    if args.prefixes:
        figures = {k: v for k, v in figures.items() if any(k.startswith(p) for p in args.prefixes)}
    if args.list:
        for name, fn in figures.items():
            print(f"{name:<40} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
        return 0
    if not figures:
        print(f"no figure matches {args.prefixes}", file=sys.stderr)
        return 1
    from course_lib.seed import seed_everything

    for name, fn in figures.items():
        seed_everything(0)
        fig = fn()
        if not isinstance(fig, Figure):
            print(f"error: {name}: its function returned {type(fig).__name__}, not a matplotlib Figure",
                  file=sys.stderr)
            return 1
        save(fig, args.out / name)
        print(f"wrote {(args.out / name).relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
