"""How long training takes on a Colab card: FLOPs counted per iteration, times ESTIMATED from published peaks.

:func:`count_iteration_flops` counts the floating-point operations of one release
iteration (5 critic steps + 1 generator step, :class:`course_lib.bench.TrainStep`) with
torch's own FLOP formulas (``torch.utils.flop_counter``, convolutions and matmuls, forward
and backward, the gradient penalty's double backward included), on the ``meta`` device:
shapes only, no arithmetic, a few seconds on any CPU. The data-dependent value checks
inside the layers cannot run on ``meta`` and are answered "valid" while counting.

:func:`estimate_minutes` turns a count into minutes per 1,000 iterations on a card from its
published peak throughput and an ASSUMED utilisation (:data:`UTILISATION`: 10-15 % of a
tensor-core peak, the range the issue-27 reading of the layer table implies; a small GAN with
32-128 channel convs and host syncs is far from a GEMM benchmark; 30-50 % of a T4's plain fp32
peak for the float32 gradient penalty and attention, which cannot use its tensor cores).
These are estimates until ``make gpu-check`` measures the card (its ``throughput`` section);
a measurement replaces them. ``python -m course_lib.schedule`` prints the README's two tables.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import torch

__all__ = ["Card", "CARDS", "UTILISATION", "count_iteration_flops", "estimate_minutes", "schedule_table", "batch_table"]


@dataclass(frozen=True)
class Card:
    """A GPU's published dense peak throughput (TFLOP/s) and the amp mode course_lib picks on it."""

    amp: str
    tensor_tflops: float   # fp16 (T4) or bf16 dense tensor-core peak, no sparsity
    fp32_tflops: float     # the float32 convs (gradient penalty, attention): TF32 tensor cores
                           # where cuDNN uses them by default (sm_80+), else plain fp32 cores
    fp32_on_tensor_cores: bool


# NVIDIA data sheets (dense, no sparsity): T4 65 fp16, 8.1 fp32 (no TF32); L4 121 bf16, 60 TF32;
# A100 312 bf16, 156 TF32. torch lets cuDNN run float32 convs in TF32 by default.
CARDS: dict[str, Card] = {
    "T4": Card("fp16", 65.0, 8.1, False),
    "L4": Card("bf16", 121.0, 60.0, True),
    "A100": Card("bf16", 312.0, 156.0, True),
}
UTILISATION = (0.10, 0.15)  # assumed share of a tensor-core peak reached (low, high): an ESTIMATE
FP32_CORE_UTILISATION = (0.30, 0.50)  # assumed share of plain fp32 peak (CUDA cores): an ESTIMATE


class _FlopCount(torch.utils._python_dispatch.TorchDispatchMode):  # type: ignore[misc]
    """Adds up torch.utils.flop_counter's formula of every op that has one."""

    def __init__(self) -> None:
        super().__init__()
        from torch.utils.flop_counter import flop_registry
        self.registry = flop_registry
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in self.registry:
            self.total += int(self.registry[packet](*args, **kwargs, out_val=out))
        return out


@contextlib.contextmanager
def _meta_values() -> Iterator[None]:
    """Let code with value checks run on ``meta`` tensors: truth tests say True, numbers read 1."""
    saved = torch.Tensor.__bool__, torch.Tensor.item, torch.Tensor.__float__, torch.autocast
    real_bool, real_item, real_float, real_autocast = saved
    torch.Tensor.__bool__ = lambda self: True if self.is_meta else real_bool(self)  # type: ignore[method-assign]
    torch.Tensor.item = lambda self: 1.0 if self.is_meta else real_item(self)  # type: ignore[method-assign]
    torch.Tensor.__float__ = lambda self: 1.0 if self.is_meta else real_float(self)  # type: ignore[method-assign]
    torch.autocast = (lambda device_type, *a, **k: contextlib.nullcontext()  # type: ignore[misc,assignment]
                      if device_type == "meta" else real_autocast(device_type, *a, **k))
    try:
        yield
    finally:
        torch.Tensor.__bool__, torch.Tensor.item, torch.Tensor.__float__, torch.autocast = saved  # type: ignore


def count_iteration_flops(cnum: int = 32, critic_cnum: int = 64, size: int = 256, batch: int = 16) -> dict[str, float]:
    """FLOPs of one release iteration: ``{"critic_step", "generator_step", "gradient_penalty", "attention", "total"}``.

    ``gradient_penalty``: of the 5 critic steps together (the count of a critic step minus
    that of the same step with the penalty replaced by 0). ``attention``: the dense
    contextual attention of the 8 generator forward-equivalents of an iteration
    (:func:`course_lib.bench.attention_gflop`). Both run in float32 under autocast.
    """
    from course_lib import bench, losses

    step = bench.TrainStep(cnum, critic_cnum, size, batch, torch.device("meta"))
    counts = []
    with _meta_values():
        for phase in ("critic", "critic_no_gp", "generator"):
            patch = (contextlib.nullcontext() if phase != "critic_no_gp" else
                     _patched(losses, "gradient_penalty", lambda *a, **k: torch.zeros((), device="meta")))
            with patch, _FlopCount() as counter:
                step.critic_update(0) if phase != "generator" else step.generator_update()
            counts.append(float(counter.total))
    critic, critic_no_gp, generator = counts
    attention = 8 * bench.attention_gflop(batch, 4 * cnum, size // 4, size // 4) * 1e9
    total = bench.CRITIC_STEPS * critic + generator
    return {"critic_step": critic, "generator_step": generator,
            "gradient_penalty": bench.CRITIC_STEPS * (critic - critic_no_gp), "attention": attention, "total": total}


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def estimate_minutes(flops: dict[str, float], card: Card) -> tuple[float, float]:
    """ESTIMATED minutes per 1,000 iterations on ``card`` (fast, slow): fp32 part at the fp32 peak, the rest at the tensor peak."""
    fp32 = flops["gradient_penalty"] + flops["attention"]
    rest = flops["total"] - fp32
    fp32_use = UTILISATION if card.fp32_on_tensor_cores else FP32_CORE_UTILISATION
    seconds = [rest / (card.tensor_tflops * 1e12 * u) + fp32 / (card.fp32_tflops * 1e12 * v)
               for u, v in zip(UTILISATION, fp32_use)]
    return 1000 * min(seconds) / 60, 1000 * max(seconds) / 60


def _thousands(n: float) -> str:
    """``1537`` -> ``"1.5k"``, ``28000`` -> ``"28k"``: one decimal below 10k, so a range never reads "2k-2k"."""
    return f"{n / 1000:.1f}k" if n < 10_000 else f"{n / 1000:.0f}k"


def schedule_table(setups: dict[str, tuple[int, int]]) -> str:
    """Markdown rows: setup, TFLOP/iteration, and per card minutes/1,000 iterations and iterations in 1/4/12 h."""
    lines = ["| setup | TFLOP / iteration (counted) | card | min / 1,000 it. (estimate) | iterations in 1 h / 4 h / 12 h (estimate) |",
             "|---|---|---|---|---|"]
    for name, (size, batch) in setups.items():
        flops = count_iteration_flops(size=size, batch=batch)
        for card_name, card in CARDS.items():
            fast, slow = estimate_minutes(flops, card)
            per_h = [int(60 / slow * 1000), int(60 / fast * 1000)]
            its = " / ".join(f"{_thousands(h * per_h[0])}-{_thousands(h * per_h[1])}" for h in (1, 4, 12))
            lines.append(f"| {name} ({size} px, batch {batch}) | {flops['total'] / 1e12:.2f} | {card_name} ({card.amp}) "
                         f"| {fast:.0f}-{slow:.0f} | {its} |")
    return "\n".join(lines)


def batch_table(size: int = 256, batches: tuple[int, ...] = (8, 16, 32, 64)) -> str:
    """Markdown rows: per batch size at ``size`` px, the counted TFLOP and each card's ESTIMATED minutes per 1,000 it.

    The README's "Throughput and memory per batch size on a GPU" table, which the trainer's
    out-of-memory message points to, until ``make gpu-check`` measures it.
    """
    heads = " | ".join(f"{name} {card.amp}{', min / 1,000 it.' if i == 0 else ''} (ESTIMATE)"
                       for i, (name, card) in enumerate(CARDS.items()))
    lines = [f"| batch_size | TFLOP / iteration (counted) | {heads} |", "|---" * (2 + len(CARDS)) + "|"]
    for batch in batches:
        flops = count_iteration_flops(size=size, batch=batch)
        cells = " | ".join("{:.0f}-{:.0f}".format(*estimate_minutes(flops, card)) for card in CARDS.values())
        lines.append(f"| {batch} | {flops['total'] / 1e12:.2f} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(schedule_table({"celeba_128_session": (128, 16), "celeba_256_instructor": (256, 16)}))
    print()
    print(batch_table())
