"""Training checkpoints: atomic writes, keep-the-last-N, RNG capture, prefix stripping.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so that
``torch.load(path, weights_only=True)`` opens it (no pickled Python objects)::

    {"format_version": 1, "kind": "course_lib.train", "step": int,
     "config": {...JSON-able TrainConfig...},
     "generator": state_dict, "local_critic": state_dict, "global_critic": state_dict,
     "generator_ema": {"decay", "num_updates", "weights"},   # only when ema_decay > 0
     "opt_g": state_dict, "opt_d": state_dict, "scaler_g": {...}, "scaler_d": {...},
     "rng": {"python": ..., "numpy": ..., "torch": ByteTensor, "cuda": [ByteTensor],
             "masks": ByteTensor},
     "data": {"epoch": int, "index": int, "seed": int}}

Writes go to a temporary file in the same folder, then ``os.replace`` renames it over the
final name: a crash mid-write never leaves a truncated checkpoint (the rename is atomic on
POSIX and Windows within one file system). Keys are saved without the ``module.``
(DistributedDataParallel) and ``_orig_mod.`` (``torch.compile``) prefixes, so a checkpoint
loads into a bare model.

Used by :mod:`course_lib.train` (notebook 95, training on Colab).
"""
from __future__ import annotations

import errno
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

__all__ = [
    "FORMAT_VERSION",
    "CHECKPOINT_KIND",
    "strip_prefixes",
    "atomic_save",
    "to_cpu",
    "remove_stale_temporaries",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "capture_rng_state",
    "restore_rng_state",
    "safe_torch_load",
    "load_checkpoint",
    "generator_state_dict",
    "MIRROR_NAME",
    "mirror_checkpoint",
    "mirrored_checkpoint",
    "COLAB_DRIVE_MOUNT",
    "drive_run_folder_note",
]

FORMAT_VERSION = 1
CHECKPOINT_KIND = "course_lib.train"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
PathLike = Union[str, os.PathLike]


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``module.`` (DDP/DataParallel) and ``_orig_mod.`` (torch.compile) key prefixes.

    Both can nest (a compiled model inside DDP gives ``module._orig_mod.conv1.weight``);
    every leading occurrence is removed, in any order.
    """
    clean = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in ("module.", "_orig_mod."):
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        clean[key] = value
    return clean


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor inside dicts, lists and tuples moved to the CPU (CPU tensors are kept as they are).

    Trainer checkpoints are saved through it, so ``torch.load`` of a checkpoint written on a
    GPU works on a machine without one (optimizers move their state back on ``load_state_dict``).
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu() if obj.device.type != "cpu" else obj
    if isinstance(obj, dict):
        moved = {k: to_cpu(v) for k, v in obj.items()}
        return moved if type(obj) is dict else type(obj)(moved)  # OrderedDict stays an OrderedDict
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save`` to a temporary file in the target folder, then rename it into place.

    The temporary file lives in the same folder so the final ``os.replace`` is a rename
    on one file system (atomic), never a copy. On any error the temporary file is removed
    and the previous file at ``path`` (if any) is left untouched. A folder that cannot be
    written raises the ``OSError`` with ``path`` as its file name (not the temporary one);
    a full disk raises ``OSError(ENOSPC)`` with one sentence that says so (torch itself
    reports it as ``unexpected pos ...``, or not at all until the file is closed).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:  # read-only or foreign folder: name the file the user asked for
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # the rename itself survives a power cut, not only a crash
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, Exception) and _disk_full(err, path.parent, _tensor_bytes(obj)):
            free = shutil.disk_usage(path.parent).free
            raise OSError(errno.ENOSPC, (
                f"cannot save {path}: its disk is full or your quota is used up ({free / 1e6:,.1f} MB "
                f"free, the file needs about {_tensor_bytes(obj) / 1e6:,.1f} MB); free some space (or keep "
                "fewer checkpoints: --set keep_last=1) or write to another disk. The files already there "
                "are intact")) from err
        raise
    return path


def _tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors inside ``obj`` (nested dicts, lists, tuples): about its file size."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _disk_full(err: BaseException, folder: Path, needed: int) -> bool:
    """Did a write fail because the disk is full? An ENOSPC / EDQUOT anywhere in the chain of
    errors, or less free space left than the file needs (torch's own writer loses the errno)."""
    seen: Optional[BaseException] = err
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, OSError) and err.errno not in (None, *_DISK_FULL_ERRNOS):
        return False  # the system named another cause (permission, I/O error, ...)
    try:
        return shutil.disk_usage(folder).free < needed + 2**20
    except OSError:
        return False


_DISK_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some network file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that a process killed inside :func:`atomic_save` left behind.

    Only safe while no other process writes ``folder`` (the trainer holds the run lock).
    The finished files are never touched: a temporary file is not a checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def checkpoint_path(folder: PathLike, step: int) -> Path:
    """``folder/step_00001234.pt``: zero padded so names sort by step."""
    return Path(folder) / f"step_{int(step):08d}.pt"


def list_checkpoints(folder: PathLike) -> list[Path]:
    """The ``step_*.pt`` checkpoints in ``folder``, oldest (smallest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: PathLike) -> Optional[Path]:
    """The newest checkpoint of a run: ``folder`` may be the run dir or its ``checkpoints/``."""
    folder = Path(folder)
    for candidate in (folder / "checkpoints", folder):
        found = list_checkpoints(candidate)
        if found:
            return found[-1]
    return None


def prune_checkpoints(folder: PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; return the deleted paths."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 (the newest checkpoint is always kept), got {keep_last}")
    found = list_checkpoints(folder)
    doomed = found[:-keep_last]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


MIRROR_NAME = "latest.pt"  # the one file of a mirror folder (train --mirror DIR)


COLAB_DRIVE_MOUNT = "/content/drive"  # where google.colab.drive.mount puts Google Drive (notebook 95)


def drive_run_folder_note(out_dir: PathLike) -> Optional[str]:
    """A one-line warning when a run folder lies on Colab's Google Drive mount, else None.

    The trainer prunes its rolling checkpoints (``keep_last``); on a Drive mount every pruned
    file goes to Drive's trash and keeps using the quota (about 10 GB over a full run, issue 27).
    The fix is the mirror: ``--out`` on the VM's disk, ``--mirror DIR`` on Drive.
    """
    folder = os.path.abspath(os.fspath(out_dir))
    mount = os.path.abspath(COLAB_DRIVE_MOUNT)
    if folder != mount and not folder.startswith(mount.rstrip(os.sep) + os.sep):
        return None
    return (f"warning: the run folder {folder} is on Google Drive, where every pruned checkpoint goes to Drive's "
            "trash and keeps using your quota; train into a folder on the VM's disk (e.g. /content/runs/NAME) "
            f"with --mirror {folder} (the newest checkpoint, copied to Drive after each save) instead")


def mirror_checkpoint(path: PathLike, mirror_dir: PathLike, name: str = MIRROR_NAME) -> Path:
    """Copy checkpoint ``path`` to ``mirror_dir/latest.pt`` (or ``name``) atomically; return the copy's path.

    For a run whose rolling checkpoints live on a local disk (fast, and pruning them costs
    nothing) with one copy on a mounted cloud folder such as Google Drive, where every pruned
    file would go to the trash and keep using the quota (about 10 GB over a full run).
    The copy is written to a temporary file in ``mirror_dir`` and renamed over ``latest.pt``,
    so a VM killed mid-copy leaves the previous copy whole; the mirror never holds more than
    one checkpoint and this function deletes nothing but its own temporary file.
    """
    mirror_dir = Path(mirror_dir)
    mirror_dir.mkdir(parents=True, exist_ok=True)
    target = mirror_dir / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=mirror_dir)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 16 * 2**20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_folder(mirror_dir)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return target


def mirrored_checkpoint(mirror_dir: PathLike) -> Optional[Path]:
    """``mirror_dir/latest.pt`` when it exists (what a fresh machine resumes from), else None."""
    path = Path(mirror_dir) / MIRROR_NAME
    return path if path.is_file() else None


def capture_rng_state(mask_generator: Optional[torch.Generator] = None) -> dict[str, Any]:
    """Every RNG a training step reads, as tensors and plain numbers (weights_only-safe).

    Python's ``random`` state (version, 625 words, gauss_next) becomes a list of ints;
    NumPy's legacy MT19937 state becomes its key as an int64 tensor plus position and the
    cached Gaussian; torch's CPU and CUDA states are already ByteTensors.
    """
    version, words, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(words, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    if mask_generator is not None:
        state["masks"] = mask_generator.get_state()
    return state


def restore_rng_state(state: Mapping[str, Any], mask_generator: Optional[torch.Generator] = None) -> None:
    """Undo :func:`capture_rng_state`: set python, numpy, torch (CPU, CUDA) and the mask RNG."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        count = min(len(cuda_states), torch.cuda.device_count())
        for device in range(count):
            torch.cuda.set_rng_state(cuda_states[device], device)
    if mask_generator is not None and "masks" in state:
        mask_generator.set_state(state["masks"])


def safe_torch_load(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with an error that says what is wrong with the file.

    ``weights_only=True`` unpickles only tensors, numbers, strings and containers: a file
    that holds any other Python object (which a full unpickle could use to run code) is
    refused, never executed. Every loader of course_lib goes through here. Raises
    ``ValueError`` for an empty, truncated, foreign or unsafe file.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{str(path)!r} is an empty file (0 bytes): a save was cut short or the copy "
                         "failed; use an earlier checkpoint (training keeps several) or copy it again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        text = f"{type(err).__name__}: {err}"
        if "Unsupported global" in text:  # a pickled class or function: the way code gets run
            why = ("it holds Python objects other than tensors and numbers, which loading would have to "
                   "run; it was NOT run. Load only files from a source you trust (a course_lib "
                   "checkpoint, or an official model converted with python -m course_lib convert)")
        else:
            why = (f"it is truncated, corrupt or not a torch file ({size} bytes); use an earlier "
                   "checkpoint or copy the file again")
        detail = re.search(r"Unsupported (global|operand)[^.\n]*", text)
        raise ValueError(f"cannot load {str(path)!r}: {why}. "
                         f"[{detail.group(0) if detail else text.splitlines()[0][:160]}]") from None


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    """Load a trainer checkpoint with ``weights_only=True`` and check its format.

    ``path`` may be a file or a run folder (its newest checkpoint is used).
    """
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no step_*.pt checkpoint in {path} or {path / 'checkpoints'}; "
                                    "train first or pass the path of a .pt file")
        path = found
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = safe_torch_load(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path} is not a course_lib training checkpoint (no kind={CHECKPOINT_KIND!r}); "
                         "for generator-only weights use course_lib.inpaint_cli.load_generator")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format {version}, this course_lib reads format "
                         f"{FORMAT_VERSION}; use the course_lib version that wrote it")
    ckpt["path"] = str(path)
    return ckpt


def generator_state_dict(ckpt_or_state: Mapping[str, Any], ema: bool = True) -> dict[str, torch.Tensor]:
    """The generator's weights from a trainer checkpoint, a ``{"generator": ...}`` file or a bare state dict.

    A checkpoint of a run with ``ema_decay > 0`` also holds the weight average
    (``"generator_ema"``, :mod:`course_lib.ema`); it is returned unless ``ema=False``.
    """
    average = ckpt_or_state.get("generator_ema") if ema else None
    if isinstance(average, Mapping) and isinstance(average.get("weights"), Mapping):
        return strip_prefixes(average["weights"])
    if "generator" in ckpt_or_state and isinstance(ckpt_or_state["generator"], Mapping):
        return strip_prefixes(ckpt_or_state["generator"])
    return strip_prefixes(ckpt_or_state)
