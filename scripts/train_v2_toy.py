"""Train the two toy coarse networks of notebook 11: v1's vanilla convs vs DeepFill v2's gated convs.

Both see the same data, the same free-form stroke holes, the same seed, optimiser and
number of steps; they differ in the convolution alone (course_lib.gated.GatedCoarseNetwork is
v1's CoarseNetwork with every conv gated). The loss is the v2 release's reconstruction loss
for a stage, the plain L1 over the whole image (``mean |x - x_stage1|``); no GAN, so that the
comparison does not depend on a critic's luck on a few CPU minutes.

    python scripts/train_v2_toy.py                      # both networks, writes course_lib/weights/
    python scripts/train_v2_toy.py --kind gated --steps 200 --out /tmp/w   # one, shorter

Deterministic: the same command on the same machine and thread count gives the same bits
(``--threads``, default 1). Each file holds ``{"format_version", "kind", "cnum", "steps",
"seed", "lr", "batch", "size", "weights"}`` and loads with ``torch.load(weights_only=True)``
(:func:`course_lib.v2_toy.load_coarse`). After training it prints hole PSNR / L1 on 40 held-out
toy images with fixed stroke holes (:func:`course_lib.v2_toy.held_out_strokes`, :func:`course_lib.v2_toy.hole_scores`).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from course_lib.data import make_dataset
from course_lib.generator import CoarseNetwork
from course_lib.seed import make_generator, seed_everything
from course_lib.bench import count_parameters
from course_lib.gated import GatedCoarseNetwork
from course_lib.masks import stroke_masks
from course_lib.v2_toy import V2_WEIGHTS, held_out_strokes, hole_scores

ROOT = Path(__file__).resolve().parents[1]
SIZE, CNUM, BATCH = 64, 8, 16


def build(kind: str, cnum: int = CNUM, gate_bias: float = 0.0) -> torch.nn.Module:
    """A fresh coarse network of ``kind`` 'v1' or 'gated' (TF-default initialisation)."""
    return CoarseNetwork(cnum) if kind == "v1" else GatedCoarseNetwork(cnum, gate_bias=gate_bias)


def batch_at(step: int, batch: int = BATCH, size: int = SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and stroke holes of training step ``step``: the same for both networks."""
    data = make_dataset("toy", split="train", size=size, seed=seed, n=100_000)
    x = torch.stack([data[(step * batch + i) % len(data)] for i in range(batch)])  # (B, 3, S, S)
    mask = stroke_masks(batch, size, make_generator(10_000 + step))  # (B, 1, S, S)
    return x, mask


def train(kind: str, steps: int, lr: float = 4e-4, seed: int = 0, log_every: int = 100,
          gate_bias: float = 0.0) -> torch.nn.Module:
    """Train one network; Adam with the release's betas (0.5, 0.9)."""
    seed_everything(seed)
    net = build(kind, gate_bias=gate_bias)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.9))
    start = time.time()
    for step in range(steps):
        x, mask = batch_at(step, seed=seed)
        loss = (x - net(x * (1 - mask), mask)).abs().mean()  # v2's ae_loss for one stage
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % log_every == 0:
            print(f"{kind:>5} step {step + 1:5d}  L1 {loss.item():.4f}  {time.time() - start:6.0f} s", flush=True)
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("v1", "gated", "both"), default="both")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gate-bias", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=ROOT / "course_lib" / "weights")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    x, mask = held_out_strokes()
    for kind in (("v1", "gated") if args.kind == "both" else (args.kind,)):
        net = train(kind, args.steps, lr=args.lr, gate_bias=args.gate_bias)
        path = args.out / V2_WEIGHTS[kind]
        torch.save({"format_version": 1, "kind": kind, "cnum": CNUM, "steps": args.steps, "seed": 0,
                    "lr": args.lr, "batch": BATCH, "size": SIZE,
                    "weights": {k: v.detach().clone() for k, v in net.state_dict().items()}}, path)
        _, m = hole_scores(net, x, mask)
        print(f"{kind:>5}: {count_parameters(net):,} parameters -> {path} ({path.stat().st_size / 1e6:.2f} MB); "
              f"40 held-out stroke holes: PSNR {m['psnr'].mean():.2f} dB, absolute L1 {m['l1'].mean():.2f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
