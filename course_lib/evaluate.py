"""Evaluation: the paper's Table 1 measures on a data set with fixed, seeded holes.

``evaluate(generator, dataset, ...)`` fills the same holes in the same images on every
run (image ``i`` gets the mask drawn from a generator seeded by ``(seed, i)``, whatever
the batch size), composites the output as the release's ``test.py`` does
(``x_stage2 * mask + x * (1 - mask)``), and averages the per-image measures of
:mod:`course_lib.metrics` (L1 %, L2 %, PSNR, TV %, SSIM, plus the same over the hole
only). A non-learned baseline (:func:`baseline_fill`, a smooth diffusion fill) runs on the
same images and holes, so every number has something to be compared with.

Paper, Table 1 (Places2 validation, "reported only as reference" by the author):
PatchMatch L1 16.1 %, L2 3.9 %, PSNR 16.62, TV 25.0 %; contextual attention 8.6 %, 2.1 %,
18.91, 25.3 %. Its L1 and L2 are a relative l1 and a squared relative l2 error (the author,
release issue #146); ``evaluate`` computes absolute errors by default and the relative ones
with ``relative=True`` (``--relative``), and the table says which. Our definitions are in
:mod:`course_lib.metrics`; the paper's exact masks and value range are unknown, so compare
rows of one table, not with the paper.

Command line::

    python -m course_lib evaluate --checkpoint runs/toy/checkpoints --data toy --n 100 --csv eval.csv
    python -m course_lib evaluate --checkpoint places2 --data DIR --relative   # the paper's kind of L1 / L2

Also used for the CPU learning check (toy model vs the diffusion baseline).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from course_lib.metrics import all_metrics, psnr

__all__ = [
    "MASK_KINDS",
    "BASELINES",
    "evaluation_mask",
    "evaluation_masks",
    "baseline_fill",
    "complete",
    "evaluate",
    "format_table",
    "write_csv",
    "load_generator_and_config",
    "psnr_by_kind",
    "psnr_by_hole_size",
    "main",
]

MASK_KINDS: tuple[str, ...] = ("box", "strokes")
BASELINES: tuple[str, ...] = ("diffusion", "mean")
COLUMNS: tuple[str, ...] = ("l1", "l2", "psnr", "tv", "ssim", "hole_l1", "hole_psnr", "hole_ssim")
HEADERS: dict[str, str] = {"l1": "abs L1 %", "l2": "abs L2 %", "psnr": "PSNR dB", "tv": "TV %", "ssim": "SSIM",
                           "hole_l1": "hole abs L1 %", "hole_psnr": "hole PSNR", "hole_ssim": "hole SSIM"}
# What the L1 / L2 columns hold, by results["errors"] (see course_lib.metrics and release issue #146).
ERROR_NOTES: dict[str, str] = {
    "absolute": "abs L1 %, abs L2 %: absolute errors 100*mean|y-x|, 100*mean (y-x)^2 on [0, 1]; the paper's "
                "Table 1 has relative ones (release issue #146): relative=True, --relative",
    "relative": "rel L1 %, rel L2 %: the paper's relative l1 and squared relative l2 errors (release issue "
                "#146), 100*sum|y-x|/sum|x|, 100*sum (y-x)^2/sum x^2 on [0, 1]",
}


def _headers(errors: str) -> dict[str, str]:
    """Column headers for ``errors`` = "absolute" or "relative" (the L1 / L2 columns say which)."""
    if errors not in ERROR_NOTES:
        raise ValueError(f"results['errors'] must be 'absolute' or 'relative', got {errors!r}")
    short = "abs" if errors == "absolute" else "rel"
    return {c: h.replace("abs ", f"{short} ") for c, h in HEADERS.items()}


# ----------------------------------------------------------------------------- masks

def _image_generator(seed: int, index: int) -> torch.Generator:
    """A torch generator for image ``index`` of an evaluation run seeded with ``seed``."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def evaluation_mask(index: int, height: int, width: int, seed: int = 0, kind: str = "box",
                    box: Optional[int] = None) -> torch.Tensor:
    """The fixed hole of evaluation image ``index``: (1, 1, H, W), 1 = hole.

    ``'box'``: the release's training hole scaled to the image: a box of half the image
    side (128 at 256) at a random place, shrunk on each side by 0..side/16 (0..16 px at
    256), as :func:`course_lib.masks.random_box_mask`. ``box`` sets another box side (a
    config's ``hole_size``), shrunk by 0..box/8 per side in the same way. ``'strokes'``: DeepFill v2's
    free-form brush strokes (:func:`course_lib.masks.brush_stroke_mask`), widths scaled
    by ``H / 256``. The v1 models were trained on boxes only; expect worse strokes results.
    """
    from course_lib.masks import brush_stroke_mask, random_box_mask

    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    g = _image_generator(seed, index)
    if kind == "box":
        if box is not None and (not isinstance(box, int) or isinstance(box, bool)
                                or not 1 <= box <= min(height, width)):
            raise ValueError(f"box (the hole box side) must be an int in 1..{min(height, width)} for a "
                             f"{height}x{width} image, got {box!r}; None means half the image side")
        bh, bw = (height // 2, width // 2) if box is None else (box, box)
        mask, _ = random_box_mask(1, height, width, bh, bw, max_delta=(bh // 4, bw // 4), generator=g)
        return mask  # (1, 1, H, W)
    scale = min(height, width) / 256.0
    return brush_stroke_mask(height, width, generator=g, min_width=max(1.0, 12.0 * scale),
                             max_width=max(2.0, 40.0 * scale))  # (1, 1, H, W)


def evaluation_masks(n: int, height: int, width: int, seed: int = 0, kind: str = "box",
                     box: Optional[int] = None) -> torch.Tensor:
    """The holes of evaluation images ``0..n-1``: (n, 1, H, W); arguments as :func:`evaluation_mask`."""
    return torch.cat([evaluation_mask(i, height, width, seed, kind, box) for i in range(n)], dim=0)


# ----------------------------------------------------------------------------- baseline

def baseline_fill(x: torch.Tensor, mask: torch.Tensor, method: str = "diffusion") -> torch.Tensor:
    """A non-learned fill for comparison: known pixels kept, the hole filled. (B, C, H, W).

    ``'diffusion'``: :func:`course_lib.baselines.diffusion_fill`, harmonic inpainting (a
    smooth membrane that matches the hole's border colours, solved coarse to fine): no
    texture, but a fair stand-in for classic diffusion inpainting. ``'mean'``:
    :func:`course_lib.baselines.mean_fill`, the mean colour of the known pixels. Nothing
    inside the hole of ``x`` is read.
    """
    from course_lib.baselines import diffusion_fill, mean_fill

    if method not in BASELINES:
        raise ValueError(f"baseline method must be one of {BASELINES}, got {method!r}")
    mask = mask.to(x.dtype)
    return diffusion_fill(x, mask) if method == "diffusion" else mean_fill(x, mask)


# ----------------------------------------------------------------------------- model side

def complete(generator: Callable[..., Any], x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run the generator and composite as the release's ``test.py``: ``x2 * mask + x * (1 - mask)``."""
    out = generator(x * (1 - mask), mask)
    x_stage2 = out[1] if isinstance(out, (tuple, list)) else out  # (B, 3, H, W)
    return x_stage2 * mask + x * (1 - mask)


def _model_device(generator: Any) -> torch.device:
    if isinstance(generator, nn.Module):
        for p in generator.parameters():
            return p.device
    return torch.device("cpu")


def evaluate(generator: Optional[Callable[..., Any]], dataset: Any, n_images: int = 100, seed: int = 0,
             mask_kind: str = "box", batch_size: int = 8, baseline: str = "diffusion",
             progress: bool = False, relative: bool = False) -> dict[str, Any]:
    """Table-1 measures of ``generator`` and of :func:`baseline_fill` on ``n_images`` images.

    ``dataset[i]`` must give a (3, H, W) image in [-1, 1] with H, W multiples of 8; the
    first ``n_images`` items are used (``set_epoch(0)`` is called when the dataset has it,
    so random crops are the same every run). Image ``i`` always gets the hole
    :func:`evaluation_mask` ``(i, H, W, seed, mask_kind)``. ``generator=None`` evaluates
    the baseline only.

    Returns ``{"model": {metric: mean}, "baseline": {...}, "ground_truth": {"tv": mean},
    "n_images", "mask_kind", "seed", "baseline_method", "image_size", "errors"}`` (no
    "model" key without a generator). Metrics: see :mod:`course_lib.metrics` (PSNR capped
    at 100 dB). ``relative=False`` gives absolute L1 / L2 errors (``errors = "absolute"``),
    ``relative=True`` the paper's relative l1 and squared relative l2 errors (release issue
    #146; ``errors = "relative"``), which refuse an image whose ground truth is all black.
    """
    if not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"n_images (--n) must be a positive int, got {n_images!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if mask_kind not in MASK_KINDS:
        raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
    if len(dataset) < n_images:
        warnings.warn(f"the dataset has only {len(dataset)} images; evaluating on all of them "
                      f"instead of {n_images}", RuntimeWarning, stacklevel=2)
        n_images = len(dataset)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    device = _model_device(generator)
    was_training = isinstance(generator, nn.Module) and generator.training
    if isinstance(generator, nn.Module):
        generator.eval()
    sums: dict[str, dict[str, float]] = {"baseline": {}, "ground_truth": {}}
    if generator is not None:
        sums["model"] = {}
    size = None
    starts = range(0, n_images, batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="evaluate", unit="batch")
    try:
        with torch.no_grad():
            for start in starts:
                idx = list(range(start, min(start + batch_size, n_images)))
                x = torch.stack([dataset[i] for i in idx]).to(torch.float32)  # (B, 3, H, W)
                H, W = x.shape[-2:]
                size = (H, W)
                mask = torch.cat([evaluation_mask(i, H, W, seed, mask_kind) for i in idx])  # (B, 1, H, W)
                outputs = {"baseline": baseline_fill(x, mask, baseline)}
                if generator is not None:
                    outputs["model"] = complete(generator, x.to(device), mask.to(device)).float().cpu()
                for row, y in outputs.items():
                    for name, values in all_metrics(x, y, mask, relative=relative).items():
                        sums[row][name] = sums[row].get(name, 0.0) + float(values.double().sum())
                gt_tv = all_metrics(x, x)["tv"]
                sums["ground_truth"]["tv"] = sums["ground_truth"].get("tv", 0.0) + float(gt_tv.double().sum())
    finally:
        if was_training:
            generator.train()
    results: dict[str, Any] = {row: {k: v / n_images for k, v in values.items()} for row, values in sums.items()}
    results.update(n_images=n_images, mask_kind=mask_kind, seed=seed, baseline_method=baseline,
                   image_size=list(size) if size else None, errors="relative" if relative else "absolute")
    return results


def psnr_by_hole_size(generator: Callable[..., Any], x: torch.Tensor, sides: Sequence[int],
                      baseline: str = "diffusion") -> tuple[list[float], list[float]]:
    """Mean hole PSNR (dB) of ``generator`` and of :func:`baseline_fill` for centred square holes of each side.

    ``x`` (N, 3, S, S) in [-1, 1]; for each side one hole ``side x side`` at the centre
    (top-left ``(S - side) // 2``), the same for every image. Returns ``(model, baseline)``,
    one mean per side. Notebook 10's "large holes" failure case and lesson 10's figure.
    """
    from course_lib.masks import bbox_to_mask

    size = x.shape[-1]
    if x.dim() != 4 or x.shape[-2] != size:
        raise ValueError(f"x must be square images (N, 3, S, S), got {tuple(x.shape)}")
    model_db, baseline_db = [], []
    for side in sides:
        if not 0 < side < size:
            raise ValueError(f"a hole side must be between 1 and {size - 1} px for {size} px images, got {side}")
        top = (size - side) // 2
        hole = bbox_to_mask((top, top, side, side), size, size, max_delta=0)  # (1, 1, S, S)
        with torch.no_grad():
            model_db.append(psnr(x, complete(generator, x, hole), hole).mean().item())
        baseline_db.append(psnr(x, baseline_fill(x, hole, baseline), hole).mean().item())
    return model_db, baseline_db


def psnr_by_kind(x: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor,
                 kinds: Sequence[str]) -> dict[str, float]:
    """Mean hole PSNR (dB, capped at 100) of the images of each kind, in order of first appearance.

    ``x``, ``filled`` (N, 3, H, W), ``mask`` (N or 1, 1, H, W), ``kinds`` one label per
    image (e.g. ``ToyDataset.kind(i)``: stripes, checks, dots, bricks, faces).
    """
    if len(kinds) != x.shape[0]:
        raise ValueError(f"give one kind per image: {len(kinds)} kinds for {x.shape[0]} images")
    scores = psnr(x, filled, mask, max_db=100.0)  # (N,) one PSNR per image
    out: dict[str, float] = {}
    for kind in dict.fromkeys(kinds):
        pick = torch.tensor([k == kind for k in kinds])  # (N,) bool
        out[kind] = float(scores[pick].mean())
    return out


# ----------------------------------------------------------------------------- output

_ROWS = ("model", "baseline", "ground_truth")


def format_table(results: Mapping[str, Any]) -> str:
    """The results of :func:`evaluate` as a plain-text table (one row per method).

    The L1 / L2 headers and the last line say whether the errors are absolute or relative
    (``results["errors"]``, absolute when missing).
    """
    errors = results.get("errors", "absolute")
    headers = _headers(errors)
    widths = {c: max(len(headers[c]), 7) for c in COLUMNS}
    head = f"{'':<13}" + "  ".join(f"{headers[c]:>{widths[c]}}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for row in _ROWS:
        if row not in results:
            continue
        values = results[row]
        cells = []
        for c in COLUMNS:
            v = values.get(c)
            cells.append(f"{'':>{widths[c]}}" if v is None else f"{v:>{widths[c]}.{4 if 'ssim' in c else 2}f}")
        lines.append(f"{row.replace('_', ' '):<13}" + "  ".join(cells))
    size = results.get("image_size")
    lines.append(f"{results.get('n_images')} images{f' of {size[0]}x{size[1]}' if size else ''}, "
                 f"'{results.get('mask_kind')}' holes (seed {results.get('seed')}), "
                 f"baseline = {results.get('baseline_method')} fill; TV of the ground truth for reference")
    lines.append(ERROR_NOTES[errors])
    return "\n".join(lines)


def write_csv(results: Mapping[str, Any], path: Union[str, os.PathLike]) -> Path:
    """Write one CSV row per method: row, n_images, mask_kind, seed, errors and every metric.

    ``errors`` ("absolute" or "relative") says what the ``l1``, ``l2`` and ``hole_l1`` columns hold.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "n_images", "mask_kind", "seed", "errors", *COLUMNS])
        for row in _ROWS:
            if row in results:
                values = results[row]
                cells = ["" if values.get(c) is None else f"{values[c]:.6g}" for c in COLUMNS]
                writer.writerow([row, results.get("n_images"), results.get("mask_kind"), results.get("seed"),
                                 results.get("errors", "absolute"), *cells])
    return path


# ----------------------------------------------------------------------------- checkpoints

def load_generator_and_config(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu",
                              cnum: Optional[int] = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a Generator for evaluation; returns ``(generator, config)`` (eval mode).

    (:func:`course_lib.load_generator` returns just the generator.) Which weights a path or
    name gives is decided in one place, :func:`course_lib.pretrained.load_weights`: an
    official name (``places2``, cached by ``python -m course_lib download``), a trainer
    checkpoint or run folder (its newest; the **weight average** when the run keeps one,
    :mod:`course_lib.ema`, else the trained weights), exported generator weights (float16
    allowed), a converted official ``.pt`` or the TF checkpoint itself, or a bare generator
    state dict (``cnum`` read from the weights unless given).
    """
    from course_lib.pretrained import build_generator, load_weights

    weights = load_weights(path, "cpu")
    try:
        generator = build_generator(weights, cnum)
    except ValueError as err:
        raise ValueError(f"{err}; pass --cnum if the width was not detected right") from None
    return generator.to(device).eval(), dict(weights.config)


# ----------------------------------------------------------------------------- CLI

def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib evaluate --checkpoint CKPT --data DIR_OR_FLIST|toy --n 100 --csv out.csv``."""
    from course_lib.data import DATASET_NAMES, make_dataset

    parser = argparse.ArgumentParser(
        prog="python -m course_lib evaluate",
        description="Table-1 metrics (L1 %, L2 %, PSNR, TV %, SSIM) of a model and a non-learned baseline "
                    "on a data set with fixed, seeded holes. L1 and L2 are absolute errors unless --relative "
                    "is given (the paper's relative l1 and squared relative l2, release issue #146).",
    )
    parser.add_argument("--checkpoint", help="official model name (places2, celeba, celebahq, imagenet: after "
                                             "python -m course_lib download NAME), trainer checkpoint (.pt or run "
                                             "folder: the weight average when the run keeps one), generator weights; "
                                             "omit to evaluate the baseline only")
    parser.add_argument("--data", required=True, help="'toy', an image folder, an flist file, or a data-set root")
    parser.add_argument("--dataset", choices=DATASET_NAMES,
                        help="how to read --data (default: toy / folder / flist from what --data is)")
    parser.add_argument("--split", default="val", help="data-set split (default val)")
    parser.add_argument("--size", type=int, help="image size (default: the checkpoint's image_size, else 256; toy 64)")
    parser.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the holes and crops (default 0)")
    parser.add_argument("--mask", choices=MASK_KINDS, default="box", help="hole kind (default box)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--baseline", choices=BASELINES, default="diffusion")
    parser.add_argument("--cnum", type=int, help="generator width for a bare state dict (default: from the weights)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--csv", help="write the table to this CSV file")
    parser.add_argument("--relative", action="store_true",
                        help="L1 and L2 as the paper's relative l1 and squared relative l2 errors "
                             "(100*sum|y-x|/sum|x|, 100*sum (y-x)^2/sum x^2; release issue #146) instead of "
                             "absolute ones (100*mean|y-x|, 100*mean (y-x)^2)")
    args = parser.parse_args(argv)

    device = _pick_device(args.device)
    generator, config = (None, {})
    if args.checkpoint:
        generator, config = load_generator_and_config(args.checkpoint, device, args.cnum)
    name = args.dataset or ("toy" if args.data == "toy" else "flist" if os.path.isfile(args.data) else "folder")
    size = args.size or config.get("image_size") or (64 if name == "toy" else 256)
    with warnings.catch_warnings():
        if name in ("folder", "flist"):  # the user named the images: no "no val sub-folder" warning
            warnings.simplefilter("ignore", RuntimeWarning)
        dataset = make_dataset(name, None if name == "toy" else args.data, split=args.split,
                               size=int(size), seed=args.seed, n=max(args.n, 1))
    results = evaluate(generator, dataset, n_images=args.n, seed=args.seed, mask_kind=args.mask,
                       batch_size=args.batch_size, baseline=args.baseline, progress=sys.stderr.isatty(),
                       relative=args.relative)
    if generator is None:
        print("no --checkpoint given: baseline only")
    print(format_table(results))
    if args.csv:
        print(f"wrote {write_csv(results, args.csv)}")
    return 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("evaluate", main, sys.argv[1:]))
