"""Checks for the training exercises (notebook 09, lesson 09).

Exercises: ``atomic_save`` (a checkpoint write that a crash cannot corrupt) and
``ema_update`` (one update of the generator's weight average, with TensorFlow's warm-up
rule). The references are :func:`course_lib.checkpoint.atomic_save` and
:func:`course_lib.ema.ema_update_`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from course_lib.checkpoint import atomic_save
from course_lib.ema import ema_update_

from . import IN_PLACE_HINT, call, fail, register, require_phrases

__all__ = ["CrashesWhenSaved", "InterruptedWhenSaved"]

NB09 = "09_training.ipynb"




# ---------------------------------------------------------------- atomic_save

class CrashesWhenSaved:
    """An object whose pickling fails: ``torch.save`` of a dict holding it stops half-way."""

    def __reduce__(self):
        raise RuntimeError("simulated crash while writing the checkpoint")


class InterruptedWhenSaved:
    """An object whose pickling raises ``KeyboardInterrupt``: Ctrl-C in the middle of a save."""

    def __reduce__(self):
        raise KeyboardInterrupt("simulated Ctrl-C while writing the checkpoint")


class SavesWhilePickled:
    """An object whose pickling runs another save first: two saves in flight at once.

    Stands for a Ctrl-C handler (or a second run in the same folder) saving while a periodic
    save is half-way. Unpickles as an empty dict.
    """

    def __init__(self, save: Callable[..., Any], obj: Any, path: Path) -> None:
        self.save, self.obj, self.path, self.error = save, obj, path, None

    def __reduce__(self):
        try:
            self.save(self.obj, self.path)
        except Exception as err:  # noqa: BLE001 - reported by the check, not through torch.save
            self.error = err
        return (dict, ())


def _open_fds() -> Optional[int]:
    """How many file descriptors this process holds (None where /proc/self/fd does not exist)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


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


def _save_in_tmp(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".tmp")  # in /tmp: another folder, maybe another file system
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        shutil.move(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _save_catches_exception(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except Exception:  # KeyboardInterrupt is not an Exception: Ctrl-C leaves the temp file
        os.remove(tmp)
        raise
    return path


def _save_swallows(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)  # and no raise: the caller believes the save worked
    return path


def _save_removes_old_first(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        if path.exists():
            os.remove(path)  # a crash before the rename now loses the old checkpoint
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


_SAVE_HINTS = {
    "temporary file": "write to a temporary file first (tempfile.mkstemp(dir=path.parent)), then "
                      "os.replace(tmp, path): torch.save(obj, path) empties the old checkpoint before "
                      "it writes the new one, so a crash in between leaves neither",
    "remove": "on an error, remove the temporary file (try/except BaseException: os.remove(tmp); "
              "raise), so failed saves do not pile up half-written files",
    "target's folder": "create the temporary file in the target's folder (tempfile.mkstemp(dir=path.parent)): "
                       "os.replace is an atomic rename only within one file system, and from /tmp to "
                       "Google Drive it becomes a copy (or fails)",
    "BaseException": "clean up on every exception, also KeyboardInterrupt (Ctrl-C): catch BaseException "
                     "(or use try/finally), not Exception, then remove the temporary file and raise again",
    "raise again": "let the error propagate after cleaning up (raise again in the except block): a failed "
                   "save must not look like a successful one",
    "old checkpoint": "do not remove the old checkpoint before the rename: os.replace(tmp, path) replaces "
                      "it in one step, so until then the old file stays valid",
}
_SAVE_MISTAKES = {"temporary file": _save_direct, "remove": _save_no_cleanup,
                  "target's folder": _save_in_tmp, "BaseException": _save_catches_exception,
                  "raise again": _save_swallows, "old checkpoint": _save_removes_old_first}
require_phrases(_SAVE_HINTS, _SAVE_MISTAKES)


@contextlib.contextmanager
def _patched_os(renames: list, fail_rename: bool = False, fail_fsync: bool = False) -> Iterator[dict]:
    """Record os.replace / os.rename calls; optionally make them (or os.fsync) raise OSError."""
    real = {"replace": os.replace, "rename": os.rename, "fsync": os.fsync}
    seen = {"fsync": 0}

    def renamer(kind: str) -> Callable[..., Any]:
        def rename(src, dst, *args, **kwargs):
            renames.append((Path(src), Path(dst)))
            if fail_rename:
                raise OSError(f"simulated failure of os.{kind} (a disconnected Drive)")
            return real[kind](src, dst, *args, **kwargs)
        return rename

    def fsync(fd):
        seen["fsync"] += 1
        if fail_fsync:
            raise OSError("simulated failure of os.fsync (a full disk)")
        return real["fsync"](fd)

    os.replace, os.rename, os.fsync = renamer("replace"), renamer("rename"), fsync
    try:
        yield seen
    finally:
        os.replace, os.rename, os.fsync = real["replace"], real["rename"], real["fsync"]


def _attempt(fn: Callable[..., Any], obj: Any, path: Path) -> Optional[BaseException]:
    """Run the student's save; return what it raised (None when it returned)."""
    try:
        fn(obj, path)
    except NotImplementedError:
        raise
    except BaseException as err:  # noqa: BLE001 - KeyboardInterrupt is injected on purpose
        return err
    return None


def _step_of(path: Path, plain: bool = False) -> Optional[int]:
    """The saved dict's "step" (None when the file is missing or unreadable); ``plain`` allows any pickle."""
    try:
        return torch.load(path, weights_only=not plain).get("step")
    except Exception:
        return None


@register("atomic_save", reference=atomic_save, notebook=NB09,
          hint="atomic_save(obj, path): torch.save to a temporary file in path's folder, then os.replace",
          mistakes=_SAVE_MISTAKES)
def _check_atomic_save(fn: Callable[..., Any]) -> None:
    """atomic_save(obj, path): torch.save to a temporary file in path's folder, then os.replace."""
    name = "atomic_save"
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "drive" / "run"  # stands for the run's folder on Google Drive
        folder.mkdir(parents=True)
        path = folder / "step_00000002.pt"

        def litter() -> list[str]:
            return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file() and p != path)

        renames: list = []
        with _patched_os(renames):
            call(name, fn, {"step": 1, "w": torch.ones(3)}, path)
        if not path.is_file():
            fail(name, f"nothing was written at {path.name}", "write the file at the path you are given")
        try:
            first = torch.load(path, weights_only=True)
        except Exception as err:
            fail(name, f"the file does not load with torch.load ({type(err).__name__})",
                 "save the object itself with torch.save (not pickle or a text format)")
        if not isinstance(first, dict) or first.get("step") != 1 or not torch.equal(first.get("w"), torch.ones(3)):
            fail(name, "the file does not load back as the saved dict", "save the object itself with torch.save")
        into_place = [src for src, dst in renames if dst == path]
        if not into_place:
            fail(name, "the checkpoint was not renamed into place with os.replace", _SAVE_HINTS["temporary file"])
        if into_place[-1].parent.resolve() != folder.resolve():
            fail(name, f"the temporary file was in {into_place[-1].parent}, not in the target's folder",
                 _SAVE_HINTS["target's folder"])
        if litter():
            fail(name, f"a successful save left {litter()} behind",
                 "the temporary file must become the checkpoint: os.replace(tmp, path) moves it")
        _check_saves_again(name, fn, path, folder, litter)
        faults = (("an object that cannot be pickled", {}, {"step": 3, "w": torch.full((1000,), 3.0),
                                                            "bad": CrashesWhenSaved()}),
                  ("os.replace failing (a disconnected Drive)", {"fail_rename": True}, {"step": 3}),
                  ("os.fsync failing (a full disk)", {"fail_fsync": True}, {"step": 3}),
                  ("a KeyboardInterrupt (Ctrl-C) while writing", {}, {"step": 3, "w": torch.full((1000,), 3.0),
                                                                       "stop": InterruptedWhenSaved()}))
        for what, patch, obj in faults:
            with _patched_os([], **patch) as seen:
                err = _attempt(fn, obj, path)
            if patch.get("fail_fsync") and seen["fsync"] == 0 and err is None:
                if _step_of(path) != 3 or litter():
                    fail(name, "a save without os.fsync did not replace the checkpoint cleanly",
                         _SAVE_HINTS["temporary file"])
                call(name, fn, {"step": 2, "w": torch.zeros(3)}, path)  # back to the state the next fault expects
                continue
            if err is None:
                fail(name, f"saving with {what} did not raise", _SAVE_HINTS["raise again"])
            if what.startswith("a KeyboardInterrupt") and not isinstance(err, KeyboardInterrupt):
                fail(name, f"a KeyboardInterrupt while saving came out as {type(err).__name__}",
                     "raise the error again unchanged (a bare `raise`), so that Ctrl-C still stops the program")
            if _step_of(path) != 2:
                hint = _SAVE_HINTS["old checkpoint"] if what.startswith("os.replace") and not path.exists() \
                    else _SAVE_HINTS["temporary file"]
                fail(name, f"after {what}, the previous checkpoint is gone or unreadable", hint)
            if litter():
                hint = _SAVE_HINTS["BaseException"] if what.startswith("a KeyboardInterrupt") else _SAVE_HINTS["remove"]
                fail(name, f"after {what}, the folder still holds {litter()}", hint)
        _check_two_saves(name, fn, path, folder, litter)
        _check_new_folder(name, fn, folder)


_FIXED_NAME_HINT = ("give the temporary file a unique name, tempfile.mkstemp(dir=path.parent), not a fixed "
                    "one: two saves in flight at once (a Ctrl-C save during a periodic one, two runs in one "
                    "folder) write into the same temporary file and one of them renames the other's away")


def _check_saves_again(name: str, fn: Callable[..., Any], path: Path, folder: Path,
                       litter: Callable[[], list]) -> None:
    """A second save: it replaces the first, closes its descriptors, returns the path, takes a str."""
    fds = _open_fds()
    returned = call(name, fn, {"step": 2, "w": torch.zeros(3)}, path)
    after = _open_fds()
    if _step_of(path) != 2:
        fail(name, "a second save did not replace the first", "os.replace(tmp, path) overwrites the old file")
    if fds is not None and after is not None and after > fds:
        fail(name, f"one save left {after - fds} file descriptor(s) open",
             "close the descriptor that tempfile.mkstemp returns: write through it with "
             "`with os.fdopen(fd, 'wb') as handle: torch.save(obj, handle)` (or os.close(fd) before "
             "saving to the temporary name); leaked descriptors run out after a few thousand saves")
    if returned is None:
        fail(name, "it returned None, expected the checkpoint's path",
             "end with `return path` (the Path of the checkpoint): the trainer logs and keeps it")
    if not isinstance(returned, (str, os.PathLike)):
        fail(name, f"it returned a {type(returned).__name__}, expected the checkpoint's path",
             "return the path of the checkpoint (a pathlib.Path), not what torch.save or os.replace returns")
    if Path(returned).resolve() != path.resolve():
        gone = "" if Path(returned).exists() else ", which no longer exists"
        fail(name, f"it returned {Path(returned).name}{gone}, expected the checkpoint's path {path.name}",
             "return the final path (the target of os.replace), not the temporary file's")
    as_text = folder / "step_text.pt"
    call(name, fn, {"step": 4}, str(as_text))  # a str path, as os.path.join gives
    if _step_of(as_text) != 4:
        fail(name, "saving to a path given as a str did not write it",
             "accept a str as well as a Path: path = Path(path) at the start")
    as_text.unlink()


def _check_two_saves(name: str, fn: Callable[..., Any], path: Path, folder: Path,
                     litter: Callable[[], list]) -> None:
    """Two saves in flight at once: a fixed temporary name makes them collide."""
    # two saves in flight: the outer one's pickling runs an inner save (same folder, then same file)
    for target, what in ((folder / "step_00000003.pt", "another checkpoint in the same folder"),
                         (path, "the same checkpoint")):
        inner = SavesWhilePickled(fn, {"step": 6, "w": torch.full((50,), 6.0)}, target)
        outer = {"step": 5, "w": torch.full((5000,), 5.0), "inner": inner}
        err = _attempt(fn, outer, path)
        if err is not None or inner.error is not None:
            bad = err or inner.error
            fail(name, f"a save that starts while another is writing ({what}) raised "
                       f"{type(bad).__name__}: {bad}", _FIXED_NAME_HINT)
        outer_ok = _step_of(path, plain=True) == 5
        inner_ok = target == path or _step_of(target, plain=True) == 6
        if not (outer_ok and inner_ok):
            fail(name, f"with a second save starting while the first writes ({what}), a checkpoint came out "
                       f"wrong", _FIXED_NAME_HINT)
        if target != path:
            target.unlink()
        if litter():
            fail(name, f"two saves in flight left {litter()} behind", _FIXED_NAME_HINT)


def _check_new_folder(name: str, fn: Callable[..., Any], folder: Path) -> None:
    """A save into a folder that does not exist yet (a new run's first checkpoint)."""
    fresh = folder / "new_run" / "checkpoints" / "step_00000001.pt"
    try:
        fn({"step": 1}, fresh)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - the folder does not exist yet
        fail(name, f"saving into a folder that does not exist yet raised {type(err).__name__}: {err}",
             "create the target's folder first, path.parent.mkdir(parents=True, exist_ok=True): a new run's "
             "checkpoint folder does not exist before its first save")
    if _step_of(fresh) != 1:
        fail(name, "saving into a new folder did not write the checkpoint", "write the file at the path you are given")
    shutil.rmtree(folder / "new_run")


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


def _ema_fixed_decay(average, weights, num_updates, decay):
    ema_update_(average, weights, num_updates, 0.999)  # the decay argument is ignored


def _ema_max(average, weights, num_updates, decay):
    d = max(decay, (1 + num_updates) / (10 + num_updates))
    for k, avg in average.items():
        if avg.is_floating_point():
            avg.mul_(d).add_(weights[k], alpha=1 - d)
        else:
            avg.copy_(weights[k])


_EMA_HINTS = {
    "warm-up": "use the warm-up rule d = min(decay, (1 + n) / (10 + n)) for update number n: early "
               "on the average must follow the weights instead of remembering the random init",
    "swapped": "d and 1 - d are swapped: d weighs the OLD average: average = d * average + (1 - d) * weights (with d close to 1 "
               "the average moves slowly)",
    "in place": "update the tensors of `average` in place (avg.mul_(d).add_(w, alpha=1 - d), or "
                "avg.lerp_(w, 1 - d)): the caller's module shares them",
    "copy integer": "copy integer entries (counters such as BatchNorm's num_batches_tracked) instead "
                    "of averaging them",
    "decay argument": "use the decay argument you are given, do not hard-code it",
    "min(": "the warm-up takes the smaller of the two, d = min(decay, (1 + n) / (10 + n)): early on "
            "(1 + n) / (10 + n) is small and the average follows the weights",
}
_EMA_MISTAKES = {"warm-up": _ema_no_warmup, "swapped": _ema_swapped, "in place": _ema_not_in_place,
                 "copy integer": _ema_averages_counters, "decay argument": _ema_fixed_decay,
                 "min(": _ema_max}
require_phrases(_EMA_HINTS, _EMA_MISTAKES)


class _AveragedNet(torch.nn.Module):
    """The average module of a run: ``state_dict()`` shares its tensors with the module."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, count: Optional[torch.Tensor]) -> None:
        super().__init__()
        self.conv = torch.nn.Linear(3, 4)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)
        if count is not None:
            self.register_buffer("count", count)


def _ema_case(with_int: bool = True, reverse: bool = False, module: bool = False) -> tuple[dict, dict]:
    """A state dict pair; ``reverse`` lists the weights' keys in the other order (same keys);
    ``module``: ``average`` is a module's state_dict() (whose tensors are the module's own)."""
    g = torch.Generator().manual_seed(41)
    average = {"conv.weight": torch.randn(4, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
               "count": torch.tensor(5)}
    weights = {"conv.weight": torch.randn(4, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
               "count": torch.tensor(8)}
    if not with_int:
        del average["count"], weights["count"]
    if module:
        net = _AveragedNet(average["conv.weight"], average["conv.bias"], average.get("count"))
        average = net.state_dict()  # its own key order: buffers of the net, then conv's parameters
        average.module = net  # type: ignore[attr-defined]  # to look at the module afterwards
    weights = {k: weights[k] for k in average}  # the same key order as the average ...
    if reverse:
        weights = dict(reversed(list(weights.items())))  # ... or the other one
    return average, weights


_EMA_KEYS = ("conv.weight", "conv.bias")
# (update number n, decay, with an integer entry, weights' keys in the other order)
_EMA_RUNS = ((1, 0.995, False, False), (40, 0.9, False, False), (1, 0.995, True, False), (40, 0.9, True, False),
             (5000, 0.995, True, False), (200, 0.5, True, False), (3, 0.999, True, True), (5000, 0.995, True, True))
_EMA_BY_KEY = ("look the weights up by key (weights[name]), do not pair the two dicts by position (zip): "
               "state dicts with the same keys may list them in different orders")


@register("ema_update", reference=ema_update_, notebook=NB09,
          hint="ema_update(average, weights, n, decay): in place, d = min(decay, (1 + n) / (10 + n)), "
               "avg = d * avg + (1 - d) * w; returns d",
          mistakes=_EMA_MISTAKES)
def _check_ema_update(fn: Callable[..., Any]) -> None:
    """ema_update(average, weights, n, decay): in place, d = min(decay, (1 + n) / (10 + n)), avg = d * avg + (1 - d) * w."""
    name = "ema_update"
    results = []  # (n, decay, with_int, reverse, the student's averages, course_lib's, returned value, d)
    for run, (n, decay, with_int, reverse) in enumerate(_EMA_RUNS):
        module = run >= 2  # the later updates average a module's state_dict(), as WeightEMA does
        average, weights = _ema_case(with_int, reverse, module)
        caller = dict(average)  # the tensors the caller's module holds
        expected, _ = _ema_case(with_int)
        d = ema_update_(expected, weights, n, decay)
        what = f"update number {n} with decay {decay}" + (" and an integer entry 'count'" if with_int else "") + \
            (", the weights' keys in another order" if reverse else "")
        if with_int or reverse:
            try:
                returned = fn(average, weights, n, decay)
            except NotImplementedError:
                raise
            except Exception as err:  # noqa: BLE001 - the float-only updates worked
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                fail(name, f"{what} raised {type(err).__name__}: {first}",
                     _EMA_BY_KEY if reverse else _EMA_HINTS["copy integer"])
        else:
            returned = call(name, fn, average, weights, n, decay, _mutable=(0,))
        before, _ = _ema_case(with_int)
        if not isinstance(average, dict) or set(average) != set(before):
            fail(name, f"{what}: `average` lost or gained entries", _EMA_HINTS["in place"])
        if all(torch.equal(caller[k], before[k]) for k in _EMA_KEYS):
            fail(name, f"{what}: the tensors of `average` did not change", _EMA_HINTS["in place"])
        if any(average[k] is not caller[k] for k in average):
            fail(name, f"{what}: `average` holds new tensors instead of the updated old ones", _EMA_HINTS["in place"])
        if module:
            own = average.module.state_dict()
            if any(not torch.equal(own[k], average[k]) for k in _EMA_KEYS):
                fail(name, f"{what}: the module whose state_dict() is `average` kept its old weights",
                     "change the tensors themselves in place (avg.mul_(d).add_(w, alpha=1 - d) or avg.copy_(...)); "
                     "assigning avg.data = ... or average[key] = ... gives the dict new tensors that the "
                     "module does not see")
        _, untouched = _ema_case(with_int, reverse)
        if any(not torch.equal(weights[k], untouched[k]) for k in weights):
            fail(name, f"{what} changed the model's weights", IN_PLACE_HINT.format(arg="`weights`"))
        if with_int:
            count = average["count"]
            if count.is_floating_point() or count.item() != 8:
                fail(name, f"{what}: the integer entry 'count' became {count!r}, expected tensor(8)",
                     _EMA_HINTS["copy integer"])
        if any(average[k].dtype != expected[k].dtype for k in _EMA_KEYS):
            fail(name, f"{what}: an average changed its dtype", "update the tensors in place, keeping "
                 "their dtype (avg.mul_(d).add_(w, alpha=1 - d))")
        results.append((n, decay, with_int, reverse, {k: average[k].clone() for k in _EMA_KEYS},
                        {k: expected[k] for k in _EMA_KEYS}, returned, d))
    wrong = [r for r in results if not all(torch.allclose(r[4][k], r[5][k], atol=1e-6) for k in _EMA_KEYS)]
    if wrong:
        if all(r[3] for r in wrong):
            n, decay = wrong[0][:2]
            fail(name, f"update number {n} with decay {decay} gave another average when the weights' keys "
                       f"come in another order", _EMA_BY_KEY)
        for phrase in ("warm-up", "swapped", "decay argument", "min("):
            explains = True
            for n, decay, with_int, reverse, got, _, _, _ in results:
                guess, weights = _ema_case(with_int, reverse)
                _EMA_MISTAKES[phrase](guess, weights, n, decay)
                explains = explains and all(torch.allclose(got[k], guess[k], atol=1e-6) for k in _EMA_KEYS)
            if explains:
                n, decay = wrong[0][:2]
                fail(name, f"update number {n} with decay {decay} gave another average", _EMA_HINTS[phrase])
        n, decay, _, _, got, want, _, _ = wrong[0]
        before, weights = _ema_case()
        fail(name, f"update number {n} with decay {decay} gave another average (conv.bias[0]: yours "
                   f"{got['conv.bias'][0].item():.6g}, course_lib's {want['conv.bias'][0].item():.6g}, from old "
                   f"{before['conv.bias'][0].item():.6g} and weight {weights['conv.bias'][0].item():.6g})",
             "work one number by hand: d = min(decay, (1 + n) / (10 + n)); new = d * old + (1 - d) * w")
    for n, decay, _, _, _, _, returned, d in results:
        value = returned.item() if isinstance(returned, torch.Tensor) and returned.numel() == 1 else returned
        if value is None:
            fail(name, f"update number {n} returned None, expected the decay used, {d:.6g}",
                 "end with `return d`: the caller logs the decay actually used after the warm-up")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(name, f"update number {n} returned {_short(value)}, expected the decay used, {d:.6g}",
                 "return d, the decay used, as a number (a Python float)")
        if abs(value - d) > 1e-9:
            hint = ("return d, the decay used after the warm-up (min(decay, (1 + n) / (10 + n))), not the "
                    "configured decay" if abs(value - decay) <= 1e-12 else
                    "return d = min(decay, (1 + n) / (10 + n)), the decay you used for this update")
            fail(name, f"update number {n} with decay {decay} returned {value!r}, expected {d!r}", hint)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
