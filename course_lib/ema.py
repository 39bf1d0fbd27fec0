"""An exponential moving average (EMA) of the generator's weights, for evaluation.

Not part of the DeepFill v1 release: its generator is evaluated with the weights of the
last step. Averaging the weights of the last few hundred steps (Polyak averaging; for
GANs see Karras et al., ICLR 2018, "Progressive Growing of GANs", and Yazici et al., ICLR
2019, "The Unusual Effectiveness of Averaging in GAN Training") removes most of the
step-to-step noise of Adam at a high learning rate. The training itself is unchanged:
the critics see the raw generator, the EMA copy is only read for validation, export,
``inpaint`` and ``evaluate``. ``TrainConfig.ema_decay = 0`` (the release configs) turns
it off; the toy CPU config uses it because it gains about 0.4 dB of hole PSNR after 8
CPU minutes (README, "the learning check").

After update number ``n`` (1, 2, ...) every floating-point weight ``w`` of the copy is

    w_ema <- d_n * w_ema + (1 - d_n) * w,    d_n = min(decay, (1 + n) / (10 + n))

the warm-up rule of TensorFlow's ``tf.train.ExponentialMovingAverage(decay,
num_updates)``: early on ``d_n`` is small, so the copy follows the fast-changing
weights instead of remembering the random initialisation (d_1 = 2/11, d_90 = 0.91).
Integer buffers are copied, not averaged.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Mapping

import torch
import torch.nn as nn

__all__ = ["WeightEMA", "ema_decay_at", "ema_update_"]


def ema_decay_at(num_updates: int, decay: float) -> float:
    """The decay used by update number ``num_updates`` (>= 1): ``min(decay, (1 + n) / (10 + n))``."""
    if not isinstance(num_updates, int) or isinstance(num_updates, bool) or num_updates < 1:
        raise ValueError(f"num_updates counts the updates from 1, got {num_updates!r}")
    _check_decay(decay)
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


def _check_decay(decay: float) -> None:
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not math.isfinite(decay) \
            or not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be a number in (0, 1), e.g. 0.995 (an average over about "
                         f"1 / (1 - decay) = 200 steps); got {decay!r}")


@torch.no_grad()
def ema_update_(average: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                num_updates: int, decay: float) -> float:
    """Update number ``num_updates`` (>= 1) of an average, in place; returns the decay used.

    ``average`` and ``weights`` are state dicts with the same keys (e.g.
    ``module.state_dict()``, whose tensors share memory with the module). Floating-point
    entries become ``d * average + (1 - d) * weights`` with ``d = ema_decay_at(num_updates,
    decay)``; integer entries (counters) are copied.
    """
    if average.keys() != weights.keys():
        missing = sorted(set(average) ^ set(weights))[:3]
        raise ValueError(f"EMA update: the model's weights do not match the average's ({missing} ...); "
                         "update with the module the EMA was built from")
    d = ema_decay_at(num_updates, decay)
    for name, avg in average.items():
        new = weights[name].detach()
        if avg.is_floating_point():
            avg.lerp_(new.to(avg.dtype), 1.0 - d)  # avg + (1 - d) * (new - avg)
        else:
            avg.copy_(new)
    return d


class WeightEMA:
    """A frozen copy of ``model`` whose weights follow an exponential moving average.

    ``ema = WeightEMA(generator, decay=0.995)``; after each optimiser step call
    ``ema.update(generator)``; evaluate with ``ema.module`` (always in eval mode, no
    gradients). ``state_dict()`` / ``load_state_dict()`` hold the averaged weights and
    the update count, so a resumed run continues the same average.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        _check_decay(decay)
        self.decay = float(decay)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Move the average towards ``model``'s current weights; returns the decay used."""
        d = ema_update_(self.module.state_dict(), model.state_dict(), self.num_updates + 1, self.decay)
        self.num_updates += 1
        return d

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Start the average again from ``model``'s weights (update count 0)."""
        self.module.load_state_dict(model.state_dict())
        self.num_updates = 0

    def state_dict(self) -> dict[str, Any]:
        """``{"decay", "num_updates", "weights"}`` (weights_only-loadable)."""
        return {"decay": self.decay, "num_updates": self.num_updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the averaged weights and the update count (the decay stays this object's)."""
        if not isinstance(state, Mapping) or "weights" not in state or "num_updates" not in state:
            raise ValueError("an EMA state must be the dict that WeightEMA.state_dict() returns "
                             "(keys 'decay', 'num_updates', 'weights')")
        self.module.load_state_dict(state["weights"])
        self.num_updates = int(state["num_updates"])
