"""Learning check (not a timed test): does the toy model learn to inpaint on a CPU?

Trains the ``toy_cpu`` config for a few minutes, then fills fixed box holes in held-out
toy images (the 'test' split: other seeds than training) and compares the PSNR inside the
holes with two non-learned fills (course_lib.evaluate.baseline_fill: harmonic
'diffusion' and the known pixels' 'mean' colour) and with the untrained network. The
model should beat the best baseline clearly (by ``--margin`` dB, default 1).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/learning_check.py --minutes 6

Exit code 0 when the model beats the best baseline by the margin, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from course_lib.config import load_config
from course_lib.data import make_dataset
from course_lib.evaluate import baseline_fill, complete, evaluation_masks
from course_lib.metrics import l1_error, psnr
from course_lib.train import Trainer


def hole_scores(x: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean hole PSNR (dB) and mean hole L1 (%) over the images."""
    return float(psnr(x, filled, mask, max_db=100.0).mean()), float(l1_error(x, filled, mask).mean())


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
    parser.add_argument("--out", default="runs/learning_check", help="run folder (fresh run: it is resumed if it exists)")
    parser.add_argument("--n-test", type=int, default=64, help="held-out test images (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--margin", type=float, default=1.0, help="dB the model must gain over the best baseline")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = load_config(args.config, ["progress=print", "val_images=0", "device=cpu", *args.overrides])
    size = config.image_size
    test = make_dataset("toy", split="test", size=size, seed=config.seed, n=args.n_test)
    x = torch.stack([test[i] for i in range(len(test))])  # (N, 3, S, S) held-out images
    mask = evaluation_masks(len(test), size, size, seed=123)  # (N, 1, S, S) fixed box holes

    trainer = Trainer(config, args.out, resume="auto")
    untrained = hole_scores(x, model_fill(trainer.generator, x, mask), mask) if trainer.step == 0 else None
    start = time.perf_counter()
    result = trainer.fit(max_minutes=args.minutes)
    minutes = (time.perf_counter() - start) / 60

    rows = [(f"DeepFill v1 toy_cpu, {result.step} steps", *hole_scores(x, model_fill(trainer.generator, x, mask), mask))]
    if untrained is not None:
        rows.append(("same network, untrained", *untrained))
    for method in ("diffusion", "mean"):
        rows.append((f"baseline: {method} fill", *hole_scores(x, baseline_fill(x, mask, method), mask)))
    print(f"\ntrained {result.step} steps in {minutes:.1f} min on {args.threads} CPU thread(s); "
          f"{len(test)} held-out toy images {size}x{size}, fixed box holes ({config.hole_size}px box)")
    print(f"{'method':<40} {'hole PSNR (dB)':>15} {'hole L1 (%)':>12}")
    for name, p, l1 in rows:
        print(f"{name:<40} {p:>15.2f} {l1:>12.2f}")
    best_baseline = max(p for name, p, _ in rows if name.startswith("baseline"))
    gain = rows[0][1] - best_baseline
    verdict = "PASS" if gain >= args.margin else "FAIL"
    print(f"{verdict}: model - best baseline = {gain:+.2f} dB (needs >= {args.margin:+.2f} dB)")
    return 0 if gain >= args.margin else 1


if __name__ == "__main__":
    sys.exit(main())
