"""Skipping the value checks that wait for the GPU, inside a trusted loop.

Checking that a mask is binary (``((mask == 0) | (mask == 1)).all()`` in an ``if``) reads a
value back from the device: the host waits until the GPU has finished everything queued
before it. The losses (:mod:`course_lib.losses`) and the contextual attention
(:mod:`course_lib.attention`) check their masks on every call, which in a training iteration
was a dozen such waits. The trainer checks its masks on its first iteration and then runs
its steps inside ``with mask_values_checked():`` (its samplers only make binary masks);
shapes, dtypes and devices are still checked everywhere (they need no device read).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

__all__ = ["mask_values_checked", "values_already_checked", "count_value_reads", "is_host_side", "HOST_SIDE_READS"]

_CHECKED = contextvars.ContextVar("course_lib_mask_values_checked", default=False)


@contextlib.contextmanager
def mask_values_checked(checked: bool = True) -> Iterator[None]:
    """Inside ``with mask_values_checked():`` the binary-mask checks of losses and attention are skipped."""
    token = _CHECKED.set(bool(checked))
    try:
        yield
    finally:
        _CHECKED.reset(token)


def values_already_checked() -> bool:
    """True inside :func:`mask_values_checked` (the caller vouches for its masks' values)."""
    return _CHECKED.get()


# ----------------------------------------------------------------------------- counting the reads

# aten ops that hand a tensor's value to the host: on a GPU each one waits for the device
_READ_OPS = frozenset({"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::equal",
                       "aten::is_nonzero", "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive",
                       "aten::repeat_interleave"})
_INTERNAL = ("torch/utils/_python_dispatch", "torch/_dynamo", "torch/_compile", "course_lib/value_checks.py")

# Where a read touches only tensors that live on the host by construction (never a GPU wait):
HOST_SIDE_READS = {
    "masks.py:_randint": "a hole's coordinates, drawn from the trainer's CPU torch.Generator",
    "masks.py:_uniform": "a hole's stroke parameters, drawn from the trainer's CPU torch.Generator",
    "ops.py:_is_pixel_repetition": "the nearest-resize index table, built on the CPU",
    "ops.py:_gather_axis": "the nearest-resize index table, built on the CPU",
    "ops.py:nonzero_window": "the hole's box for the gradient penalty, read only when training runs on the CPU",
    "train.py:_epoch_indices": "the epoch's permutation, drawn on the CPU",
    "torch:optim/optimizer.py:_get_value": "Adam's step counters, CPU tensors (not capturable, not fused)",
    "torch:utils/data/dataloader.py:__init__": "the DataLoader's base seed, drawn on the CPU at an epoch's start",
}
HOST_SIDE_FILES = ("toy.py", "data.py", "images.py")  # the data set: DataLoader workers on a GPU run


def _caller() -> str:
    """``file.py:function`` of the innermost course_lib frame, or ``torch:path:function`` when torch's own
    code (below course_lib) made the read."""
    import os
    import traceback
    frames = [fr for fr in traceback.extract_stack() if not any(p in fr.filename for p in _INTERNAL)]
    if frames and "/torch/" in frames[-1].filename:
        return "torch:" + frames[-1].filename.split("/torch/")[-1] + ":" + frames[-1].name
    for fr in reversed(frames):
        if "/course_lib/" in fr.filename:
            return f"{os.path.basename(fr.filename)}:{fr.name}"
    return "elsewhere"


def is_host_side(where: str) -> bool:
    """True when a read counted at ``where`` (:func:`count_value_reads`) touches host-only tensors."""
    return where in HOST_SIDE_READS or where.split(":")[0] in HOST_SIDE_FILES


@contextlib.contextmanager
def count_value_reads() -> Iterator[dict[tuple[str, str], int]]:
    """Count every read of a tensor's value by the host inside the block, by (op, where).

    A CPU-side stand-in for ``torch.cuda.set_sync_debug_mode`` (which only sees a GPU): a
    ``TorchDispatchMode`` counts the aten ops that return a value to Python or size their
    output by the data (``.item()``, ``bool(t)``, ``nonzero``, boolean indexing, ``equal``,
    ...), and ``Tensor.tolist`` / ``Tensor.numpy`` are wrapped (on the CPU they bypass the
    dispatcher). Each read is attributed to the innermost course_lib frame (or torch's, when
    torch's own code made it); :func:`is_host_side` says which of them read tensors that live
    on the host whatever the training device, so they never wait for a GPU. Yields the
    counter (a dict, filled as the block runs). Not thread-safe; for tests and the GPU check.
    """
    import collections

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: dict[tuple[str, str], int] = collections.Counter()

    class _Reads(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            name = func._schema.name
            bool_index = name in ("aten::index", "aten::index_put", "aten::index_put_") and len(args) > 1 and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)
            if name in _READ_OPS or bool_index:
                counts[(name, _caller())] += 1
            return func(*args, **(kwargs or {}))

    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

    def wrap(name: str, original):  # type: ignore[no-untyped-def]
        def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            counts[(name, _caller())] += 1
            return original(self, *args, **kwargs)
        return wrapper

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        with _Reads():
            yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
