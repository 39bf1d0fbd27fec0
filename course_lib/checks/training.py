"""Checks for the training exercises (notebook 09, lesson 09).

Exercises: ``atomic_save`` (a checkpoint write that a crash cannot corrupt) and
``ema_update`` (one update of the generator's weight average, with TensorFlow's warm-up
rule). The references are :func:`course_lib.checkpoint.atomic_save` and
:func:`course_lib.ema.ema_update_`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from course_lib.checkpoint import atomic_save
from course_lib.ema import ema_update_

from . import call, fail, register, require_phrases

__all__ = ["CrashesWhenSaved"]

NB09 = "09_training.ipynb"




# ---------------------------------------------------------------- atomic_save

class CrashesWhenSaved:
    """An object whose pickling fails: ``torch.save`` of a dict holding it stops half-way."""

    def __reduce__(self):
        raise RuntimeError("simulated crash while writing the checkpoint")


def _save_direct(obj: Any, path) -> Path:
    path = Path(path)
    torch.save(obj, path)  # truncates the old file first
    return path


def _save_no_cleanup(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        torch.save(obj, handle)
    os.replace(tmp, path)
    return path


_SAVE_HINTS = {
    "temporary file": "write to a temporary file first (tempfile.mkstemp(dir=path.parent)), then "
                      "os.replace(tmp, path): torch.save(obj, path) empties the old checkpoint before "
                      "it writes the new one, so a crash in between leaves neither",
    "remove": "on an error, remove the temporary file (try/except BaseException: os.remove(tmp); "
              "raise), so failed saves do not pile up half-written files",
}
_SAVE_MISTAKES = {"temporary file": _save_direct, "remove": _save_no_cleanup}
require_phrases(_SAVE_HINTS, _SAVE_MISTAKES)


@register("atomic_save", reference=atomic_save, notebook=NB09,
          hint="atomic_save(obj, path): torch.save to a temporary file in path's folder, then os.replace",
          mistakes=_SAVE_MISTAKES)
def _check_atomic_save(fn: Callable[..., Any]) -> None:
    """atomic_save(obj, path): torch.save to a temporary file in path's folder, then os.replace."""
    name = "atomic_save"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "step_00000002.pt"
        call(name, fn, {"step": 1, "w": torch.ones(3)}, path)
        if not path.is_file():
            fail(name, f"nothing was written at {path.name}", "write the file at the path you are given")
        first = torch.load(path, weights_only=True)
        if first.get("step") != 1 or not torch.equal(first.get("w"), torch.ones(3)):
            fail(name, "the file does not load back as the saved dict", "save the object itself with torch.save")
        call(name, fn, {"step": 2, "w": torch.zeros(3)}, path)
        if torch.load(path, weights_only=True).get("step") != 2:
            fail(name, "a second save did not replace the first", "os.replace(tmp, path) overwrites the old file")
        crashed = False
        try:
            fn({"step": 3, "w": torch.full((1000,), 3.0), "bad": CrashesWhenSaved()}, path)
        except NotImplementedError:
            raise
        except Exception:
            crashed = True
        if not crashed:
            fail(name, "saving an object that cannot be pickled did not raise",
                 "let the error propagate after cleaning up (raise again in the except block)")
        try:
            survived = torch.load(path, weights_only=True)
        except Exception:
            survived = None
        if survived is None or survived.get("step") != 2:
            fail(name, "after a crash while saving, the previous checkpoint is gone or unreadable",
                 _SAVE_HINTS["temporary file"])
        extra = sorted(p.name for p in Path(folder).iterdir() if p != path)
        if extra:
            fail(name, f"after a crash while saving, the folder still holds {extra}", _SAVE_HINTS["remove"])


# ---------------------------------------------------------------- ema_update

def _ema_no_warmup(average, weights, num_updates, decay):
    for k, avg in average.items():
        if avg.is_floating_point():
            avg.mul_(decay).add_(weights[k].detach(), alpha=1 - decay)
        else:
            avg.copy_(weights[k])


def _ema_swapped(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k, avg in average.items():
        if avg.is_floating_point():
            avg.copy_((1 - d) * avg + d * weights[k].detach())
        else:
            avg.copy_(weights[k])


def _ema_not_in_place(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    return {k: (d * a + (1 - d) * weights[k]) if a.is_floating_point() else weights[k].clone()
            for k, a in average.items()}


def _ema_averages_counters(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k, avg in average.items():
        avg.copy_(d * avg + (1 - d) * weights[k])  # an int buffer truncates the average


_EMA_HINTS = {
    "warm-up": "use the warm-up rule d = min(decay, (1 + n) / (10 + n)) for update number n: early "
               "on the average must follow the weights instead of remembering the random init",
    "swapped": "d and 1 - d are swapped: d weighs the OLD average: average = d * average + (1 - d) * weights (with d close to 1 "
               "the average moves slowly)",
    "in place": "update the tensors of `average` in place (avg.mul_(d).add_(w, alpha=1 - d), or "
                "avg.lerp_(w, 1 - d)): the caller's module shares them",
    "copy integer": "copy integer entries (counters such as BatchNorm's num_batches_tracked) instead "
                    "of averaging them",
}
_EMA_MISTAKES = {"warm-up": _ema_no_warmup, "swapped": _ema_swapped, "in place": _ema_not_in_place,
                 "copy integer": _ema_averages_counters}
require_phrases(_EMA_HINTS, _EMA_MISTAKES)


def _ema_case() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(41)
    average = {"conv.weight": torch.randn(4, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
               "count": torch.tensor(5)}
    weights = {"conv.weight": torch.randn(4, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
               "count": torch.tensor(8)}
    return average, weights


@register("ema_update", reference=ema_update_, notebook=NB09,
          hint="ema_update(average, weights, n, decay): in place, d = min(decay, (1 + n) / (10 + n)), "
               "avg = d * avg + (1 - d) * w",
          mistakes=_EMA_MISTAKES)
def _check_ema_update(fn: Callable[..., Any]) -> None:
    """ema_update(average, weights, n, decay): in place, d = min(decay, (1 + n) / (10 + n)), avg = d * avg + (1 - d) * w."""
    name = "ema_update"
    for n, decay in ((1, 0.995), (40, 0.9), (5000, 0.995)):
        average, weights = _ema_case()
        expected, _ = _ema_case()
        ema_update_(expected, weights, n, decay)
        call(name, fn, average, weights, n, decay)
        before, _ = _ema_case()
        if all(torch.equal(average[k], before[k]) for k in average):
            fail(name, f"update {n}: `average` did not change", _EMA_HINTS["in place"])
        if average["count"].item() != 8 or average["count"].is_floating_point():
            fail(name, f"the integer entry 'count' became {average['count']!r}, expected tensor(8)",
                 _EMA_HINTS["copy integer"])
        ok = all(torch.allclose(average[k], expected[k], atol=1e-6) for k in ("conv.weight", "conv.bias"))
        if ok:
            continue
        for phrase in ("warm-up", "swapped"):
            guess, _ = _ema_case()
            _EMA_MISTAKES[phrase](guess, weights, n, decay)
            if all(torch.allclose(average[k], guess[k], atol=1e-6) for k in ("conv.weight", "conv.bias")):
                fail(name, f"update number {n} with decay {decay} gave another average", _EMA_HINTS[phrase])
        fail(name, f"update number {n} with decay {decay} gave another average",
             "work one number by hand: d = min(decay, (1 + n) / (10 + n)); new = d * old + (1 - d) * w")
