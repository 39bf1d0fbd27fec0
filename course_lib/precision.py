"""Which mixed precision a device should train in: one function, by CUDA compute capability.

``torch.cuda.is_bf16_supported()`` is true on a T4 (sm_75) with recent torch, where bf16 is
emulated: every convolution leaves cuDNN's tensor-core kernels and runs several times
slower than fp16. The tensor cores compute bf16 from Ampere (sm_80: A100, A10, L4 is sm_89,
H100 sm_90) on; below that fp16 with a gradient scaler (``torch.amp.GradScaler``) is the
fast path. On a CPU mixed precision is off (the course's CPU runs are float32).
"""
from __future__ import annotations

import contextlib
from typing import Any, Optional, Union

import torch

__all__ = ["choose_amp", "resolve_amp", "autocast_on", "float32_under_autocast", "BF16_FROM_CAPABILITY"]

BF16_FROM_CAPABILITY = (8, 0)  # Ampere: the first tensor cores with bf16


def choose_amp(device: Union[str, torch.device, None] = None,
               capability: Optional[tuple[int, int]] = None) -> str:
    """``"bf16"`` on CUDA from sm_80, ``"fp16"`` (with the scaler) on older CUDA GPUs, ``"off"`` elsewhere.

    ``device``: default ``cuda`` when available, else ``cpu``. ``capability``: the
    ``(major, minor)`` compute capability, read from the device when None (pass it to plan
    for a card that is not here, e.g. ``(7, 5)`` for a T4).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda":
        return "off"
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    if not (isinstance(capability, tuple) and len(capability) == 2 and all(isinstance(v, int) for v in capability)):
        raise ValueError(f"capability must be a (major, minor) pair of ints such as (7, 5), got {capability!r}")
    return "bf16" if capability >= BF16_FROM_CAPABILITY else "fp16"


def resolve_amp(amp: str, device: Union[str, torch.device]) -> str:
    """A config's ``amp`` with ``"auto"`` replaced by :func:`choose_amp` of ``device``; others unchanged."""
    return choose_amp(device) if amp == "auto" else amp


def autocast_on(device_type: str) -> bool:
    """True inside ``torch.autocast`` for ``device_type`` (the per-device query of torch >= 2.4, else the old ones)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4
        return bool(torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled())
    except RuntimeError:  # a device without autocast (e.g. "meta", used to count FLOPs)
        return False


def float32_under_autocast(device_type: str) -> Any:
    """A context that turns autocast off for ``device_type`` when it is on (else does nothing).

    For the few layers that must run in float32 inside a mixed-precision step: the contextual
    attention's logits and the critics' last dense layer (their inputs are cast with ``.float()``).
    """
    if autocast_on(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()
