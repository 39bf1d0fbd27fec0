"""Learning check (not a timed test): does the toy model learn to inpaint on a CPU?

Trains the ``toy_cpu`` config for a few minutes, then fills fixed box holes in held-out
toy images (the 'test' split: other seeds than training) and compares the PSNR inside the
holes of the model (the config's weight average, ``ema_decay``, when it has one; the
last step's weights get their own row) with two non-learned fills
(course_lib.evaluate.baseline_fill: harmonic 'diffusion' and the known pixels' 'mean'
colour) and with the untrained network. The
model should beat the best baseline clearly (by ``--margin`` dB, default 1). A second
table breaks the hole PSNR down by toy kind (stripes, checks, dots, bricks, faces); a
last line counts the images the model wins on and gives a bootstrap interval of the mean
gain (how much of it could be the luck of the test images).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/learning_check.py --minutes 8

``--out`` (default runs/learning_check) is resumed when it already holds a run, so the
minutes add up over calls; delete it (or pass a new folder) for a fresh check.

Exit code 0 when the model beats the best baseline by the margin, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from course_lib.config import load_config
from course_lib.data import make_dataset
from course_lib.evaluate import baseline_fill, complete, evaluation_masks, psnr_by_kind
from course_lib.metrics import l1_error, psnr
from course_lib.train import Trainer


def hole_scores(x: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean hole PSNR (dB) and mean hole L1 (%, the absolute error of course_lib.metrics) over the images."""
    return float(psnr(x, filled, mask, max_db=100.0).mean()), float(l1_error(x, filled, mask).mean())


per_kind_psnr = psnr_by_kind  # mean hole PSNR (dB) of each toy kind (course_lib.evaluate)


def paired_gain(model: torch.Tensor, baseline: torch.Tensor, n_boot: int = 2000,
                seed: int = 0) -> tuple[float, float, float, int]:
    """Per-image hole PSNR gains of the model over a baseline, both (N,).

    Returns ``(mean gain, 2.5 % and 97.5 % bootstrap quantiles of the mean gain, number
    of images where the model wins)``: the interval says how much of the gain could be
    the luck of these N test images (resampled ``n_boot`` times with a seeded generator).
    """
    diff = (model - baseline).double()  # (N,)
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(diff.numel(), (n_boot, diff.numel()), generator=g)  # (n_boot, N)
    means = diff[picks].mean(dim=1)  # (n_boot,)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(diff.mean()), low, high, int((diff > 0).sum())


@torch.no_grad()
def model_fill(generator: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, batch: int = 16) -> torch.Tensor:
    generator.eval()
    out = [complete(generator, x[i:i + batch], mask[i:i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat(out)  # (N, 3, H, W)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0, help="training time budget (default 6)")
    parser.add_argument("--config", default="toy_cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="runs/learning_check", help="run folder (default runs/learning_check; resumed if it already holds a run)")
    parser.add_argument("--n-test", type=int, default=200, help="held-out test images (default 200, 40 per toy kind)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--margin", type=float, default=1.0, help="dB the model must gain over the best baseline")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = load_config(args.config, ["progress=print", "val_images=0", "device=cpu", *args.overrides])
    size = config.image_size
    test = make_dataset("toy", split="test", size=size, seed=config.seed, n=args.n_test)
    x = torch.stack([test[i] for i in range(len(test))])  # (N, 3, S, S) held-out images
    mask = evaluation_masks(len(test), size, size, seed=123, box=config.hole_size)  # (N, 1, S, S) fixed box holes

    kinds = [test.kind(i) for i in range(len(test))]

    trainer = Trainer(config, args.out, resume="auto")
    fills: dict[str, torch.Tensor] = {}
    first_step = trainer.step  # > 0 when --out held a run: training continues from it
    untrained = model_fill(trainer.generator, x, mask) if first_step == 0 else None
    start = time.perf_counter()
    result = trainer.fit(max_minutes=args.minutes)
    minutes = (time.perf_counter() - start) / 60

    averaged = " (weight average)" if trainer.ema is not None else ""
    fills[f"DeepFill v1 {args.config}, {result.step} steps{averaged}"] = model_fill(trainer.eval_generator, x, mask)
    if trainer.ema is not None:  # the weights of the last step, for comparison
        fills["same run, last step's weights"] = model_fill(trainer.generator, x, mask)
    if untrained is not None:
        fills["same network, untrained"] = untrained
    for method in ("diffusion", "mean"):
        fills[f"baseline: {method} fill"] = baseline_fill(x, mask, method)
    rows = [(name, *hole_scores(x, filled, mask)) for name, filled in fills.items()]
    resumed = f" (resumed at step {first_step}: delete {args.out} for a fresh run)" if first_step else ""
    print(f"\ntrained to step {result.step} in {minutes:.1f} min on {args.threads} CPU thread(s){resumed}; "
          f"{len(test)} held-out toy images {size}x{size}, fixed box holes ({config.hole_size}px box)")
    print(f"{'method':<50} {'hole PSNR (dB)':>15} {'hole abs L1 (%)':>16}")
    for name, p, l1 in rows:
        print(f"{name:<50} {p:>15.2f} {l1:>16.2f}")
    by_kind = {name: per_kind_psnr(x, filled, mask, kinds) for name, filled in fills.items()}
    names = list(dict.fromkeys(kinds))
    print(f"\nhole PSNR (dB) per kind ({len(test) // len(names)}+ images each)")
    print(f"{'method':<50} " + " ".join(f"{k:>8}" for k in names))
    for name, scores in by_kind.items():
        print(f"{name:<50} " + " ".join(f"{scores[k]:>8.2f}" for k in names))
    best_name, best_baseline = max(((name, p) for name, p, _ in rows if name.startswith("baseline")),
                                   key=lambda t: t[1])
    gain = rows[0][1] - best_baseline
    model_name = next(iter(fills))
    _, low, high, wins = paired_gain(psnr(x, fills[model_name], mask, max_db=100.0),
                                     psnr(x, fills[best_name], mask, max_db=100.0))
    print(f"\nper image, model vs {best_name}: wins on {wins}/{len(test)} images; "
          f"95% bootstrap interval of the mean gain [{low:+.2f}, {high:+.2f}] dB")
    verdict = "PASS" if gain >= args.margin else "FAIL"
    print(f"{verdict}: model - best baseline = {gain:+.2f} dB (needs >= {args.margin:+.2f} dB)")
    return 0 if gain >= args.margin else 1


if __name__ == "__main__":
    sys.exit(main())
