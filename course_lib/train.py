"""Train DeepFill v1 as the official release does: 5 critic steps, then 1 generator step.

Paper: Yu et al., CVPR 2018, Sec. 3.1 (coarse-to-fine generator, spatially discounted L1,
global and local WGAN-GP critics). Release: ``train.py`` + ``inpaint_model.py`` of branch
v1.0.0, hyper-parameters from ``inpaint.yml`` (see :mod:`course_lib.config`).

One training *step* (what ``max_iters`` and every interval count) is the release's
iteration:

1. ``critic_steps`` (5) times: a fresh batch and a fresh hole (one box per batch), the
   generator's output without gradients, completed = ``x2 * mask + x * (1 - mask)``; the
   critics score [real, completed] (global: the image; local: the 128x128 box) and take
   an Adam step on ``d_loss + 10 * (gp_local + gp_global)``;
2. one generator step on a fresh batch: ``0.001 * g_loss + 1.2 * l1_loss + 1.2 * ae_loss``
   (:func:`course_lib.losses.generator_loss`).

Not in the release: with ``ema_decay > 0`` (the ``toy_cpu`` config) an exponential moving
average of the generator's weights (:mod:`course_lib.ema`) follows every generator step and
is what validation and ``--export`` use (:attr:`Trainer.eval_generator`); the critics and
the training losses still see the trained generator.

Command line::

    python -m course_lib train --config toy_cpu --out runs/toy
    python -m course_lib train --config places2 --set data_root=/data/places2 --set amp=bf16 --out runs/p2
    python -m course_lib train --out runs/p2 --resume            # continue the newest checkpoint
    torchrun --nproc_per_node 4 -m course_lib train --config places2 --out runs/p2   # 4 GPUs

Everything a run writes lives in ``--out``: ``config.json``, ``checkpoints/step_*.pt``
(atomic, the last ``keep_last`` kept), ``log.csv`` (every loss, every step), ``images/``
(input | coarse | refined | flow | real grids), ``val.csv`` (validation metrics) and
``tb/`` (TensorBoard events, when tensorboard is installed). With ``--mirror DIR`` (``mirror_dir``)
the newest checkpoint is also copied to ``DIR/latest.pt`` (with ``log.csv`` and ``val.csv``), from
which ``--resume`` continues when ``--out`` is empty (a fresh Colab VM).

Taught in notebook 95 (training on Colab).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset

from course_lib import checkpoint as ckpt_io
from course_lib.config import TrainConfig, load_config, apply_overrides
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.distributed import (DistInfo, all_gather_objects, all_reduce_flag, all_reduce_flags,
                                    cleanup_distributed, init_distributed, max_replica_difference)
from course_lib.determinism import explain_nondeterministic_error, set_deterministic
from course_lib.ema import WeightEMA
from course_lib.flow import flow_pictures
from course_lib.generator import Generator
from course_lib.losses import LossWeights, critic_loss, generator_loss, mask_values_checked
from course_lib.masks import MaskFolder, random_box_mask, training_holes
from course_lib.ops import use_fast_path
from course_lib.precision import resolve_amp
from course_lib.runlock import RunLock
from course_lib.seed import make_generator, seed_everything

__all__ = [
    "Trainer",
    "TrainResult",
    "NonFiniteLossError",
    "TrainOutOfMemoryError",
    "out_of_memory_advice",
    "estimate_train_memory",
    "memory_table",
    "BatchStream",
    "LOG_COLUMNS",
    "image_grid",
    "save_image_grid",
    "rewind_csv",
    "build_models",
    "loss_weights",
    "train",
    "main",
]

# Columns of log.csv, one row per step. Critic values are the mean over the step's
# critic_steps critic updates; generator values come from the step's generator update.
CRITIC_KEYS = ("d_loss", "d_loss_local", "d_loss_global", "gp_loss", "gp_local", "gp_global", "d_total")
GENERATOR_KEYS = ("g_loss", "g_loss_local", "g_loss_global", "l1_loss", "ae_loss", "g_total")
LOG_COLUMNS = ("step", "epoch", *CRITIC_KEYS, *GENERATOR_KEYS, "lr", "seconds")


FP16_SKIP_LIMIT = 5  # fp16: non-finite updates in a row (skipped by the scaler) before the run stops


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; training stopped and nothing was written for that step."""

    exit_code = 1  # of ``python -m course_lib train`` (course_lib.__main__.run_command)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did: ``status`` is 'finished', 'interrupted', 'stopped' or 'time_limit'.

    ``signal`` is the signal that stopped the run (``signal.SIGINT`` for Ctrl-C, ``signal.SIGTERM``),
    else None; the command line exits with ``128 + signal`` (130, 143).
    """

    status: str
    step: int
    checkpoint: Optional[Path]
    last_losses: dict[str, float]
    signal: Optional[int] = None


# ----------------------------------------------------------------------------- data order

class BatchStream:
    """Endless batches in a reproducible order, with a position that a checkpoint can store.

    Each epoch is one permutation of the data set (``torch.randperm`` seeded with
    ``seed + epoch``, as ``DistributedSampler`` draws it), read in global batches of
    ``batch_size * world_size`` samples: rank ``r`` takes the ``r``-th ``batch_size`` slice of
    each. ``global_index`` counts the samples all ranks together have consumed in the current
    epoch, so ``(epoch, global_index)`` is the exact data position whatever the number of
    processes: a run resumed on another number of GPUs continues at the same sample of the same
    permutation (``index`` is this rank's own count). With one process this is the plain
    permutation in batches. Global batches are full (the last partial one of an epoch is
    dropped, as a fixed-shape TF pipeline). The dataset's ``set_epoch`` (when it has one) is
    called too, so random crops repeat.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, pin_memory: bool = False,
                 epoch: int = 0, index: int = 0) -> None:
        if len(dataset) < batch_size * world_size:
            raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch "
                             f"({batch_size} x {world_size} processes); lower batch_size or add images")
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.epoch, self.index = epoch, index
        self.global_index = index * world_size
        self._it: Optional[Iterator] = None

    def _epoch_indices(self) -> list[int]:
        """This rank's samples for the rest of the epoch, from ``global_index`` on."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)  # DistributedSampler's seed for this epoch
        perm = torch.randperm(len(self.dataset), generator=g).tolist()
        step, b = self.batch_size * self.world_size, self.batch_size
        mine: list[int] = []
        for start in range(self.global_index, len(perm) - step + 1, step):  # full global batches
            mine.extend(perm[start + self.rank * b:start + (self.rank + 1) * b])
        return mine

    def _start(self) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        remaining = self._epoch_indices()
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=remaining, drop_last=True,
                            num_workers=self.num_workers, pin_memory=self.pin_memory,
                            persistent_workers=False, worker_init_fn=_worker_ignores_ctrl_c)
        self._it = iter(loader)

    def next(self) -> torch.Tensor:
        """The next batch (B, 3, H, W); rolls over to a new epoch when this one runs out."""
        for _ in range(2):
            if self._it is None:
                self._start()
            try:
                batch = next(self._it)
            except StopIteration:
                self.epoch, self.index, self.global_index, self._it = self.epoch + 1, 0, 0, None
                continue
            self.index += self.batch_size
            self.global_index += self.batch_size * self.world_size
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            elif isinstance(batch, dict):
                batch = batch["image"]
            return batch
        raise RuntimeError("the data stream produced no batch in a whole epoch")  # pragma: no cover

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.epoch), "index": int(self.index), "global_index": int(self.global_index),
                "world_size": int(self.world_size), "seed": int(self.seed)}

    def load_state_dict(self, state: dict[str, int], world_size: int = 1) -> None:
        """Continue at a saved position; ``world_size`` is the saving run's, for checkpoints that
        predate ``global_index`` (they counted ``index`` per rank)."""
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self.global_index = int(state.get("global_index", int(state["index"]) * int(world_size)))
        self.index = self.global_index // self.world_size
        self._it = None


def _worker_ignores_ctrl_c(worker_id: int) -> None:
    """A DataLoader worker ignores SIGINT: Ctrl-C reaches the whole process group, and the
    trainer (main process) finishes its step with the workers' batches before it stops.

    SIGTERM keeps torch's handling (the worker ends, and multiprocessing ends its workers with
    SIGTERM when the program exits); :meth:`Trainer.fit` then abandons the step and saves.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ----------------------------------------------------------------------------- pieces

def build_models(config: TrainConfig) -> tuple[Generator, LocalCritic, GlobalCritic]:
    """The generator and the two critics at the config's sizes (local critic = hole box size)."""
    return (Generator(config.cnum),
            LocalCritic(config.critic_cnum, size=config.hole_size),
            GlobalCritic(config.critic_cnum, size=config.image_size))


def loss_weights(config: TrainConfig) -> LossWeights:
    """The config's loss weights as :class:`course_lib.losses.LossWeights`."""
    return LossWeights(coarse_l1_alpha=config.coarse_alpha, l1_loss_alpha=config.l1_loss_alpha,
                       ae_loss_alpha=config.ae_loss_alpha, gan_loss_alpha=config.gan_loss_alpha,
                       global_wgan_loss_alpha=config.global_wgan_loss_alpha,
                       wgan_gp_lambda=config.wgan_gp_lambda, spatial_discounting_gamma=config.gamma,
                       pretrain_coarse_network=config.coarse_only)


def image_grid(columns: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows = samples, columns = the given (B, 3, H, W) tensors in [-1, 1] -> (H', W', 3) uint8.

    A column with a different spatial size (e.g. the attention flow) is resized
    (nearest) to the first column's size. White padding of ``pad`` px between tiles.
    """
    H, W = columns[0].shape[-2:]
    tiles = []
    for col in columns:
        col = col.detach().float().cpu()
        if col.shape[1] == 1:
            col = col.expand(-1, 3, -1, -1)  # (B, 3, h, w)
        if tuple(col.shape[-2:]) != (H, W):
            col = torch.nn.functional.interpolate(col, size=(H, W), mode="nearest")  # (B, 3, H, W)
        tiles.append(col)
    B = tiles[0].shape[0]
    grid = torch.ones(3, B * (H + pad) + pad, len(tiles) * (W + pad) + pad)  # (3, H', W') white
    for i in range(B):
        for j, col in enumerate(tiles):
            top, left = pad + i * (H + pad), pad + j * (W + pad)
            grid[:, top:top + H, left:left + W] = col[i]
    pixels = ((grid.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)  # (3, H', W')
    return pixels.permute(1, 2, 0).numpy()  # (H', W', 3)


def save_image_grid(columns: list[torch.Tensor], path: Union[str, os.PathLike]) -> Path:
    """:func:`image_grid` written as a PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(columns)).save(path)
    return path


def rewind_csv(path: Union[str, os.PathLike], step: int) -> int:
    """Drop the rows of a per-step CSV log (first column ``step``) after ``step``; return how many.

    A resumed run continues from its checkpoint's step, so the rows a killed run wrote after
    it would otherwise appear twice. The kept rows go to a temporary file that is renamed over
    the log, so a kill during the rewind leaves the old or the new log, whole.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0] != "step":
        return 0
    body = rows[1:]
    kept = [r for r in body if r and r[0].isdigit() and int(r[0]) <= step]
    if len(kept) == len(body):
        return 0
    tmp = path.with_name(f".{path.name}.rewind.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *kept])
    os.replace(tmp, path)
    return len(body) - len(kept)


def _loss_rows(rows: list[dict[str, torch.Tensor]], dist_info: DistInfo) -> tuple[list[dict[str, float]], list[bool]]:
    """The float values of an iteration's losses, and per row whether any rank saw a non-finite one.

    ``rows``: one dict of scalar tensors per update (the critic updates, then the generator's).
    One device sync for all of them (a single ``tolist``); under DDP the per-row "non-finite"
    flags are all-reduced (MAX) on the device first, so every rank stops, or skips, together.
    """
    per_row = [torch.stack([v.detach().float().reshape(()) for v in row.values()]) for row in rows]
    values = torch.cat(per_row)  # (sum of the rows' lengths,)
    bad = torch.stack([(~torch.isfinite(r)).any() for r in per_row]).float()  # (rows,) 1 = a non-finite loss
    if dist_info.distributed:
        import torch.distributed as tdist
        tdist.all_reduce(bad, op=tdist.ReduceOp.MAX)
    numbers = torch.cat([values.flatten(), bad]).tolist()  # the iteration's one sync
    n = values.numel()
    floats, k = [], 0
    for row in rows:
        floats.append(dict(zip(row, numbers[k:k + len(row)])))
        k += len(row)
    return floats, [flag > 0 for flag in numbers[n:]]


_TENSORBOARD_NOTED = False


def _tensorboard_missing_once() -> None:
    """One line on stderr, the first time a run asks for TensorBoard events that cannot be written."""
    global _TENSORBOARD_NOTED
    if _TENSORBOARD_NOTED:
        return
    _TENSORBOARD_NOTED = True
    print("note: tensorboard is not installed, so no TensorBoard events are written (log.csv and val.csv "
          "hold every number); install it with pip install tensorboard (or the extra: pip install -e "
          "'.[tensorboard]'), or --set tensorboard=false to silence this", file=sys.stderr, flush=True)


class TrainOutOfMemoryError(ValueError):
    """The run needs more memory than the device has; the message says which sizes to try.

    A ValueError, so the command line prints it as one line (exit code 2) like other settings
    that do not fit; nothing is written for the step that ran out (the last checkpoint stays).
    """


def _is_out_of_memory(err: BaseException) -> bool:
    """A CUDA (or MPS) out-of-memory error, or the CPU allocator's 'can't allocate memory'."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    if isinstance(err, oom):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def out_of_memory_advice(config: TrainConfig, device: Union[str, torch.device] = "cuda") -> str:
    """What to try when a training step runs out of memory: smaller batches, then smaller images.

    The activations grow with ``batch_size * image_size ** 2`` (README "Throughput and memory per
    batch size on a GPU", an estimate from :func:`estimate_train_memory`), so halving the batch halves most of it;
    ``amp=bf16`` roughly halves it again on a GPU that has bf16.
    """
    c = config
    tips = []
    if c.batch_size > 1:
        tips.append(f"--set batch_size={max(1, c.batch_size // 2)}")
    if c.amp == "off" and torch.device(device).type == "cuda":
        tips.append("--set amp=bf16")
    if c.image_size >= 128:
        half = c.image_size // 2
        tips.append(f"--set image_size={half - half % 8} --set hole_size={max(8, c.hole_size // 2)}")
    where = f"{torch.device(device).type} memory"
    return (f"out of {where} at batch_size {c.batch_size}, image_size {c.image_size} (cnum {c.cnum}); try "
            + " or ".join(tips) + " (README 'Throughput and memory per batch size on a GPU' has the memory per batch "
            "size at 256 px: an estimate until scripts/gpu_check.py measures it); "
            "the last checkpoint is untouched, so --resume continues from it")


def estimate_train_memory(config: TrainConfig, batch_size: Optional[int] = None) -> dict[str, int]:
    """Estimated bytes of one training step at the config's sizes, counted from the activations.

    Runs one critic step and one generator step of the release on CPU at batch 1 and batch 2
    (float32, random images, a release box) and sums the bytes of every tensor that autograd
    saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``); the per-image
    part is the difference of the two, so ``activations = fixed + per_image * batch_size``.
    Weights, gradients and Adam's two moments are ``4 x`` the parameters' bytes. Returns
    ``{"parameters", "activations_per_image", "activations_fixed", "total"}`` for
    ``batch_size`` (default: the config's). An estimate: the allocator's caching, cuDNN's
    workspaces and the temporaries of the backward pass come on top (README "Throughput and memory
    per batch size on a GPU").
    """
    from course_lib.losses import critic_loss, generator_loss
    c = config
    batch = c.batch_size if batch_size is None else int(batch_size)
    generator, local_critic, global_critic = build_models(c)
    weights = loss_weights(c)
    params = sum(p.numel() * p.element_size() for m in (generator, local_critic, global_critic)
                 for p in m.parameters())

    def saved_bytes(b: int) -> int:
        g = make_generator(c.seed)
        x = torch.rand(b, 3, c.image_size, c.image_size, generator=g) * 2 - 1  # (b, 3, H, W)
        mask, boxes = random_box_mask(b, c.image_size, c.image_size, c.hole_size, c.hole_size,
                                      margin=c.margin, max_delta=c.max_delta, generator=g)
        peak = 0
        for phase in ("critic", "generator"):
            total = [0]
            seen: set[int] = set()

            def pack(t: torch.Tensor) -> torch.Tensor:
                key = t.untyped_storage().data_ptr()
                if key not in seen:  # a tensor saved twice costs its memory once
                    seen.add(key)
                    total[0] += t.untyped_storage().nbytes()
                return t
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                if phase == "critic":
                    with torch.no_grad():
                        _, x2, _ = generator(x * (1.0 - mask), mask)
                    critic_loss(x, x2, mask, boxes[0], local_critic, global_critic, weights=weights, generator=g)
                else:
                    x1, x2, _ = generator(x * (1.0 - mask), mask)
                    generator_loss(x, x1, x2, mask, boxes[0], local_critic, global_critic, weights=weights)
            peak = max(peak, total[0])
        return peak

    one, two = saved_bytes(1), saved_bytes(2)
    per_image = max(two - one, 0)
    fixed = max(one - per_image, 0)
    return {"parameters": 4 * params, "activations_per_image": per_image, "activations_fixed": fixed,
            "total": 4 * params + fixed + per_image * batch}


def memory_table(config: Union[TrainConfig, str] = "places2", batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> str:
    """README's "Throughput and memory per batch size on a GPU" memory table: :func:`estimate_train_memory`
    for each batch size, in GiB."""
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    est = estimate_train_memory(config, 1)
    rows = ["| batch_size | estimated GiB (float32) |", "|---|---|"]
    for b in batch_sizes:
        total = est["parameters"] + est["activations_fixed"] + est["activations_per_image"] * b
        rows.append(f"| {b} | {total / 2**30:.1f} |")
    return "\n".join(rows)


def _in_ci() -> bool:
    return os.environ.get("COURSE_LIB_CI", "") not in ("", "0") or os.environ.get("CI", "") not in ("", "0", "false")


# ----------------------------------------------------------------------------- trainer

class Trainer:
    """The release's training loop with checkpoints, logs, AMP and DDP.

    ``Trainer(config, out_dir, resume=None)``; ``resume`` is ``None`` (fresh run),
    ``"auto"`` (the newest checkpoint in ``out_dir`` if there is one, else fresh),
    ``True`` (the newest checkpoint, which must exist) or a path to a checkpoint file or
    run folder. Settings may change on resume (``lr`` and ``betas`` go into the restored
    optimisers) except :attr:`FIXED_ON_RESUME`; what changed is said when :meth:`fit` starts.
    Resuming restores weights, both optimisers, the AMP scalers, the step,
    every RNG (python, numpy, torch CPU/CUDA, the hole sampler) and the data position, so
    on CPU "3 steps + resume + 3 steps" gives bit-identical weights to "6 steps". This
    holds with DataLoader workers too, because course_lib's data sets draw their crops
    from ``(seed, epoch, index)`` rather than from a worker's RNG; on a GPU, cuDNN's
    autotuned kernels (``cudnn_benchmark``) and atomics may differ in the last bits between
    runs unless ``deterministic=true`` (:mod:`course_lib.determinism`; not yet verified on a GPU).

    ``dataset`` / ``val_dataset`` replace the config's data sets (e.g. in a notebook).
    ``init`` starts a NEW run from other weights (``train --init``: an official name, a
    converted or TF checkpoint, a run, an exported generator; see
    :func:`course_lib.pretrained.init_models`) with fresh optimisers at step 0;
    ``fresh_critics`` keeps the critics random.
    """

    def __init__(self, config: TrainConfig, out_dir: Union[str, os.PathLike],
                 resume: Union[None, bool, str, os.PathLike] = None,
                 dataset: Optional[Dataset] = None, val_dataset: Optional[Dataset] = None,
                 init: Union[None, str, os.PathLike] = None, fresh_critics: bool = False) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        if config.deterministic:  # before the first CUDA call: cuBLAS reads CUBLAS_WORKSPACE_CONFIG at start
            set_deterministic(True)  # process-wide (course_lib.determinism)
        self.dist: DistInfo = init_distributed(config.device)
        self.device = self.dist.device
        # One writer per run folder: refuse now if another live run trains into it (fit() holds it).
        self._lock: Optional[RunLock] = RunLock(self.out_dir) if self.dist.is_main else None
        if self._lock is not None:
            self._lock.check()
            if (note := ckpt_io.drive_run_folder_note(self.out_dir)) is not None:  # pruning fills Drive's trash
                print(note, file=sys.stderr, flush=True)
        resume_path = self._resolve_resume(resume)
        saved = ckpt_io.load_checkpoint(resume_path) if resume_path is not None else None
        changed = self._check_compatible(TrainConfig.from_dict(saved["config"])) if saved is not None else {}

        seed_everything(config.seed)  # identical initial weights on every rank
        self.generator, self.local_critic, self.global_critic = (
            m.to(self.device) for m in build_models(config))
        if config.channels_last:
            for m in self.models:
                m.to(memory_format=torch.channels_last)
        use_fast_path(*self.models)  # the fast training path: the same maths to float rounding (course_lib.ops)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = config.cudnn_benchmark and not config.deterministic
        betas = tuple(config.betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(list(self.local_critic.parameters())
                                      + list(self.global_critic.parameters()), lr=config.lr, betas=betas)
        self.amp = resolve_amp(config.amp, self.device)  # "auto": bf16 from sm_80, fp16 below, off on CPU
        fp16 = self.amp == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        self.weights = loss_weights(config)
        # Not in the release: an average of the generator's weights, read only for
        # validation and export (course_lib.ema); None when ema_decay = 0.
        self.ema: Optional[WeightEMA] = WeightEMA(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        # Holes and gradient-penalty alphas come from their own generator (one per rank).
        self.mask_rng = make_generator(config.seed + 1_000_003 * (self.dist.rank + 1))
        # hole_kind = "folder": the user's masks (checked now, so a wrong folder fails before step 1)
        self.mask_folder: Optional[MaskFolder] = (
            MaskFolder(config.mask_folder, config.image_size, invert=config.mask_invert)
            if config.hole_kind == "folder" else None)
        self.step = 0
        self.skipped_updates = 0  # fp16 updates the scaler skipped (non-finite loss), this process
        self._nonfinite_in_a_row = {"critic": 0, "generator": 0}  # per phase: a good generator update
        # does not hide critics that never recover

        self.dataset = dataset if dataset is not None else self._make_dataset(config.split, config.toy_size)
        self.stream = BatchStream(self.dataset, config.batch_size, seed=config.seed, rank=self.dist.rank,
                                  world_size=self.dist.world_size, num_workers=config.num_workers,
                                  pin_memory=self.device.type == "cuda")
        self._val_dataset = val_dataset
        self._val_batch: Optional[tuple[torch.Tensor, torch.Tensor]] = None

        self._notes: list[str] = []  # said when fit() starts
        if changed:
            self._notes.append("resumed with changed settings: " + ", ".join(
                f"{k} {a} -> {b}" for k, (a, b) in changed.items()) + (
                " (set into the restored optimisers)" if {"lr", "betas"} & set(changed) else ""))
        if val_dataset is None and config.val_images > 0:
            self._val_dataset = self._make_val_dataset()
        if self.dist.is_main:
            self._warn_about_data()
        if init is not None and (saved is not None or ckpt_io.latest_checkpoint(self.out_dir) is not None):
            raise ValueError(f"--init starts a new run, but {self.out_dir} already holds checkpoints; choose a "
                             "new --out, or continue that run with --resume")
        if saved is not None:
            self._load_state(saved)
            if self.dist.is_main and self.config.mirror_dir and Path(saved["path"]).parent == Path(self.config.mirror_dir):
                self._restore_mirrored_logs()
        elif init is not None:  # train --init: weights only; fresh optimisers, step 0
            from course_lib.pretrained import init_models
            self._notes.append("initialised " + init_models(init, config, self.generator, self.local_critic,
                                                            self.global_critic, fresh_critics))
            if self.ema is not None:
                self.ema.reset(self.generator)
        # DDP wraps after loading (DDP broadcasts rank 0's weights at construction).
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DDP(self.generator, device_ids=ids, find_unused_parameters=config.coarse_only)
            self.d_local_train = DDP(self.local_critic, device_ids=ids)
            self.d_global_train = DDP(self.global_critic, device_ids=ids)
        else:
            self.g_train, self.d_local_train, self.d_global_train = (
                self.generator, self.local_critic, self.global_critic)

        self._stop_requested = False
        self._saved_step = self.step if saved is not None else -1
        self._bar = None
        self._csv_file = None
        self._csv = None
        self._tb = None
        self.last_checkpoint: Optional[Path] = Path(saved["path"]) if saved is not None else None
        self.resumed_from = self.last_checkpoint
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            config.save(self.out_dir / "config.json")

    # -- setup helpers
    @property
    def models(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.generator, self.local_critic, self.global_critic

    @property
    def eval_generator(self) -> nn.Module:
        """The generator to evaluate: the weight average when ``ema_decay > 0``, else the trained one."""
        return self.ema.module if self.ema is not None else self.generator

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def _resolve_resume(self, resume: Union[None, bool, str, os.PathLike]) -> Optional[Path]:
        if resume is None or resume is False:
            return None
        if resume is True or resume == "auto" or resume == "latest":
            found = ckpt_io.latest_checkpoint(self.out_dir)
            if found is None and self.config.mirror_dir:  # a fresh machine: the local disk is empty
                found = ckpt_io.mirrored_checkpoint(self.config.mirror_dir)
            if found is None and resume is True:
                raise FileNotFoundError(f"--resume: no checkpoint in {self.checkpoint_dir}; start "
                                        "without --resume, or pass the path of a checkpoint")
            return found
        path = Path(resume)
        if path.is_dir():
            found = ckpt_io.latest_checkpoint(path)
            if found is None:
                raise FileNotFoundError(f"--resume {path}: no step_*.pt checkpoint there")
            return found
        if not path.is_file():
            raise FileNotFoundError(f"--resume {path}: no such checkpoint file")
        return path

    # Keys a resumed run cannot change: the models' shapes (the weights would not fit) and the
    # seed (the data order and every random state continue from the checkpoint's).
    FIXED_ON_RESUME = ("cnum", "critic_cnum", "image_size", "hole_size", "seed")

    def _check_compatible(self, saved: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Refuse a change of :attr:`FIXED_ON_RESUME`; return every other changed key as ``{key: (old, new)}``.

        Everything else may change on resume and takes effect: the step reads the config, and
        ``lr`` / ``betas`` are set into the restored optimisers (:meth:`_load_state`), which
        keep their moment estimates.
        """
        diff = {k: (getattr(saved, k), getattr(self.config, k)) for k in self.FIXED_ON_RESUME
                if getattr(saved, k) != getattr(self.config, k)}
        if diff:
            raise ValueError("cannot resume: " + ", ".join(f"{k} {a} (checkpoint) vs {b} (config)"
                                                           for k, (a, b) in diff.items())
                             + f"; {', '.join(self.FIXED_ON_RESUME)} cannot change on resume, so drop those "
                             "--set overrides (or --config) or start a new run folder")
        old, new = saved.to_dict(), self.config.to_dict()
        return {k: (old[k], new[k]) for k in new if old.get(k) != new[k]}

    def _make_dataset(self, split: str, n: int) -> Dataset:
        from course_lib.data import make_dataset
        c = self.config
        return make_dataset(c.data, root=c.data_root or None, split=split, size=c.image_size,
                            seed=c.seed, n=n, flip=c.flip and split == c.split)

    def _make_val_dataset(self) -> Optional[Dataset]:
        """The validation images: ``val_flist`` (an flist file or a folder) when set, else the data
        set's ``val_split`` (for ``data=flist`` the ``*_val.flist`` that make-flist wrote next to
        ``data_root``). When they cannot be read, validation is turned off with one line on stderr."""
        from course_lib.data import FlistDataset, ImageFolderDataset
        c = self.config
        try:
            if c.val_flist:
                path = Path(c.val_flist).expanduser()
                if path.is_dir():
                    return ImageFolderDataset(path, size=c.image_size, mode="center_crop", seed=c.seed)
                return FlistDataset(path, size=c.image_size, mode="center_crop", seed=c.seed)
            return self._make_dataset(c.val_split, max(c.val_images, 1))
        except (ValueError, FileNotFoundError, OSError) as err:
            if c.val_flist:  # the user named this list: a wrong path is a mistake, not a default
                raise ValueError(f"val_flist {c.val_flist!r}: {err}") from None
            if self.dist.is_main:
                print(f"validation disabled: {err}", file=sys.stderr)
            c.val_images = 0
            return None

    def _warn_about_data(self) -> None:
        """Loud warnings before training: validation images that are training images, a tiny data set."""
        from course_lib.data import TINY_DATASET, shared_images
        train_paths = getattr(self.dataset, "paths", None)
        val_paths = getattr(self._val_dataset, "paths", None)
        if train_paths is not None and val_paths is not None and self.config.val_images > 0:
            shared = shared_images(train_paths, val_paths[:self.config.val_images])
            if shared:
                print(f"WARNING: {len(shared)} of the {min(len(val_paths), self.config.val_images)} validation "
                      f"images are TRAINING images (first: {shared[0]}): val.csv will measure how well the "
                      "model remembers them, not how it fills photos it never saw. Hold some out: `python -m "
                      "course_lib make-flist FOLDER data/train.flist --val-fraction 0.1` writes "
                      "data/train_val.flist, which train reads by default, or pass --val-flist LIST",
                      file=sys.stderr, flush=True)
        if train_paths is not None and len(train_paths) < TINY_DATASET:
            advice = "" if self.config.flip else "; --set flip=true mirrors them at random (twice the variety)"
            print(f"WARNING: only {len(train_paths)} training images (fewer than {TINY_DATASET}): the model "
                  "will learn them by heart and fill new photos poorly; expect the validation numbers to stop "
                  f"improving early. Add photos (thousands; README 'Training on your own photos'){advice}",
                  file=sys.stderr, flush=True)

    def autocast(self) -> Any:
        """The mixed-precision context of this run (a no-op when ``amp = 'off'``)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # -- one step
    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float()  # (B, 3, H, W)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def sample_hole(self, batch: int) -> tuple[torch.Tensor, Any]:
        """The step's holes: one box for the whole batch (release, mask (1, 1, H, W)), or, for the other
        ``hole_kind`` values (:func:`course_lib.masks.training_holes`), one hole and one local box per
        image (mask (B, 1, H, W))."""
        c = self.config
        if c.hole_kind == "box" and not c.hole_per_sample:
            mask, bboxes = random_box_mask(batch, c.image_size, c.image_size, c.hole_size, c.hole_size,
                                           margin=c.margin, max_delta=c.max_delta, generator=self.mask_rng,
                                           device=self.device)  # drawn on the CPU RNG, made on the device
            return mask, bboxes[0]
        mask, bboxes = training_holes(c.hole_kind, batch, c.image_size, c.hole_size, c.max_delta, c.margin,
                                      generator=self.mask_rng, per_sample=c.hole_per_sample,
                                      folder=self.mask_folder)
        if self.device.type == "cuda":  # strokes and folder masks are drawn on the CPU: copy from pinned memory
            mask = mask.pin_memory()
        return mask.to(self.device, non_blocking=True), bboxes

    def _generate(self, x_incomplete: torch.Tensor, mask: torch.Tensor, train: bool,
                  generator: Optional[nn.Module] = None) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """(x1, x2, flow) in float32; ``coarse_only`` gives x2 = x1 (release: batch_predicted = x1).

        ``generator`` (only with ``train=False``) replaces the trained generator, e.g. by
        :attr:`eval_generator` for validation.
        """
        unwrapped = generator if generator is not None else self.generator
        if self.config.coarse_only and not (train and self.dist.distributed):
            x1 = unwrapped.forward_coarse(x_incomplete, mask)  # (B, 3, H, W)
            return x1.float(), x1.float(), None
        model = self.g_train if train else unwrapped
        x1, x2, flow = model(x_incomplete, mask)
        if self.config.coarse_only:
            x2, flow = x1, None
        return x1.float(), x2.float(), flow

    def _critic_losses(self, x: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor,
                       bbox: Any) -> dict[str, torch.Tensor]:
        out = critic_loss(x, x2, mask, bbox, self.d_local_train, self.d_global_train,
                          weights=self.weights, generator=self.mask_rng,
                          gp_local_critic=self.local_critic, gp_global_critic=self.global_critic,
                          autocast=self.autocast)
        out["d_total"] = out.pop("total")
        return out

    def _generator_losses(self, x: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor,
                          bbox: Any) -> dict[str, torch.Tensor]:
        with self.autocast():
            out = generator_loss(x, x1, x2, mask, bbox, self.local_critic, self.global_critic,
                                 weights=self.weights)
        out = {k: v.float() for k, v in out.items()}
        out["g_total"] = out.pop("total")
        return out

    def _check_iteration(self, rows: list[dict[str, torch.Tensor]]) -> list[dict[str, float]]:
        """Check an iteration's losses once, after its updates (one device sync); return their floats.

        ``rows``: the critic updates' losses, then the generator's. A non-finite loss stops the
        run (:class:`NonFiniteLossError`) before anything is logged or saved, on every rank at
        once (the flags are all-reduced). Under fp16 the scaler has already skipped such an
        update: it is counted (:attr:`skipped_updates`) and the run stops only after
        :data:`FP16_SKIP_LIMIT` non-finite updates in a row of one phase.
        """
        floats, bad = _loss_rows(rows, self.dist)
        phases = ["critic"] * (len(rows) - 1) + ["generator"]
        for phase, values, nonfinite in zip(phases, floats, bad):
            if not nonfinite:
                self._nonfinite_in_a_row[phase] = 0
                continue
            # fp16: the scaler skips an update whose gradients are not finite and lowers its scale;
            # count it (skipped_updates) and stop only after FP16_SKIP_LIMIT in a row.
            if self.amp == "fp16" and self._nonfinite_in_a_row[phase] + 1 < FP16_SKIP_LIMIT:
                self._nonfinite_in_a_row[phase] += 1
                self.skipped_updates += 1
                continue
            shown = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v)) or "on another rank"
            where = (f"the last good checkpoint is {self.last_checkpoint} (resume with --resume)"
                     if self.last_checkpoint else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"non-finite {phase} loss at step {self.step + 1}: {shown}. Training stopped without "
                f"saving this step; {where}. Try a lower lr (--set lr=...), amp=off, or check the "
                "data for broken images" + (f" ({FP16_SKIP_LIMIT} non-finite {phase} updates in a row under fp16)"
                                            if self.amp == "fp16" else ""))
        return floats

    def _set_critics_trainable(self, flag: bool) -> None:
        for m in (self.local_critic, self.global_critic):
            for p in m.parameters():
                p.requires_grad_(flag)

    def train_step(self) -> dict[str, float]:
        """One release iteration: ``critic_steps`` critic updates, then one generator update.

        Nothing in it waits for the GPU but one read of all its losses at the end
        (:meth:`_check_iteration`; fp16's GradScaler adds one per update): holes are drawn on
        the device, the masks' values are checked on the first iteration only (the trainer's
        samplers make binary masks), and the flow picture is not drawn (:meth:`save_images`
        draws it for the images it shows). ``tests/test_gpu_loop.py`` counts the reads.
        """
        c = self.config
        self.generator.train(), self.local_critic.train(), self.global_critic.train()
        checked = getattr(self, "_values_checked", False)  # the first iteration of this process checks
        with mask_values_checked(checked), flow_pictures(False):
            rows = []
            for _ in range(c.critic_steps):
                x = self._to_device(self.stream.next())  # (B, 3, H, W)
                mask, bbox = self.sample_hole(x.shape[0])  # (1, 1, H, W)
                with torch.no_grad(), self.autocast():
                    _, x2, _ = self._generate(x * (1.0 - mask), mask, train=False)
                losses = self._critic_losses(x, x2, mask, bbox)
                self.opt_d.zero_grad(set_to_none=True)
                self.scaler_d.scale(losses["d_total"]).backward()
                self.scaler_d.step(self.opt_d)
                self.scaler_d.update()
                rows.append({k: losses[k] for k in CRITIC_KEYS})

            x = self._to_device(self.stream.next())  # (B, 3, H, W)
            mask, bbox = self.sample_hole(x.shape[0])
            self._set_critics_trainable(False)  # the generator step must not touch the critics
            try:
                with self.autocast():
                    x1, x2, _ = self._generate(x * (1.0 - mask), mask, train=True)
                losses = self._generator_losses(x, x1, x2, mask, bbox)
                self.opt_g.zero_grad(set_to_none=True)
                self.scaler_g.scale(losses["g_total"]).backward()
                self.scaler_g.step(self.opt_g)
                self.scaler_g.update()
                if self.ema is not None:
                    self.ema.update(self.generator)
            finally:
                self._set_critics_trainable(True)
            rows.append({k: losses[k] for k in GENERATOR_KEYS})
        floats = self._check_iteration(rows)
        self._values_checked = True
        self.step += 1
        self._last_batch = (x.detach(), mask, x1.detach(), x2.detach())
        critic_means: dict[str, float] = {k: 0.0 for k in CRITIC_KEYS}
        for row in floats[:-1]:
            for k in CRITIC_KEYS:
                critic_means[k] += row[k] / c.critic_steps
        return {**critic_means, **floats[-1]}

    # -- state
    def state_dict(self, gather_rng: bool = True) -> dict[str, Any]:
        """The checkpoint dict of :mod:`course_lib.checkpoint` (weights_only-loadable)."""
        rng = ckpt_io.capture_rng_state(self.mask_rng)
        per_rank = all_gather_objects(rng, self.dist) if gather_rng else [rng]
        return {
            "format_version": ckpt_io.FORMAT_VERSION,
            "kind": ckpt_io.CHECKPOINT_KIND,
            "step": int(self.step),
            "config": self.config.to_dict(),
            "generator": ckpt_io.strip_prefixes(self.generator.state_dict()),
            **({"generator_ema": self.ema.state_dict()} if self.ema is not None else {}),
            "local_critic": ckpt_io.strip_prefixes(self.local_critic.state_dict()),
            "global_critic": ckpt_io.strip_prefixes(self.global_critic.state_dict()),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "rng": rng,
            "rng_per_rank": per_rank,
            "world_size": int(self.dist.world_size),
            "data": self.stream.state_dict(),
        }

    def _load_state(self, saved: dict[str, Any]) -> None:
        self.generator.load_state_dict(ckpt_io.strip_prefixes(saved["generator"]))
        self.local_critic.load_state_dict(ckpt_io.strip_prefixes(saved["local_critic"]))
        self.global_critic.load_state_dict(ckpt_io.strip_prefixes(saved["global_critic"]))
        if self.ema is not None:
            if isinstance(saved.get("generator_ema"), dict):
                self.ema.load_state_dict(saved["generator_ema"])
            else:  # a checkpoint from a run without the average: start it from these weights
                self.ema.reset(self.generator)
                self._notes.append(f"the checkpoint holds no weight average (ema_decay was 0); "
                                   f"the average starts from its weights at step {saved['step']}")
        self.opt_g.load_state_dict(saved["opt_g"])
        self.opt_d.load_state_dict(saved["opt_d"])
        for opt in (self.opt_g, self.opt_d):  # --set lr / betas on resume: the config's values, not the saved ones
            for group in opt.param_groups:
                group["lr"], group["betas"] = self.config.lr, tuple(self.config.betas)
        if saved.get("scaler_g"):
            self.scaler_g.load_state_dict(saved["scaler_g"])
        if saved.get("scaler_d"):
            self.scaler_d.load_state_dict(saved["scaler_d"])
        self.step = int(saved["step"])
        self.stream.load_state_dict(saved["data"], world_size=int(saved.get("world_size", 1)))
        per_rank = saved.get("rng_per_rank") or [saved["rng"]]
        same_world = int(saved.get("world_size", 1)) == self.dist.world_size and len(per_rank) > self.dist.rank
        rng = per_rank[self.dist.rank] if same_world else saved["rng"]
        ckpt_io.restore_rng_state(rng, self.mask_rng)
        if not same_world:  # another number of processes: keep the ranks' hole streams apart
            self.mask_rng.manual_seed(self.config.seed + 1_000_003 * (self.dist.rank + 1) + self.step)
            self._notes.append(f"resumed on {self.dist.world_size} process(es) from a checkpoint of "
                               f"{int(saved.get('world_size', 1))}: the data continues at sample "
                               f"{self.stream.global_index} of epoch {self.stream.epoch} (counted over all "
                               "processes); the holes follow new random streams")

    def save_checkpoint(self, gather_rng: bool = True) -> Optional[Path]:
        """Write ``checkpoints/step_N.pt`` atomically (rank 0), prune to ``keep_last``; return its path.

        Refuses (NonFiniteLossError) to write weights that contain NaN/Inf, so the last
        good checkpoint always survives.
        """
        state = ckpt_io.to_cpu(self.state_dict(gather_rng=gather_rng))  # a CPU machine can torch.load it
        self._saved_step = self.step  # on every rank, so all ranks take the same save decisions
        bad = [f"{name}.{k}" for name in ("generator", "local_critic", "global_critic")
               for k, v in state[name].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        # every rank decides together (gather_rng=False: an interrupted rank saves alone, no collective)
        any_bad = all_reduce_flag(bool(bad), self.dist) if gather_rng else bool(bad)
        if any_bad:
            raise NonFiniteLossError(f"weights {bad[:3] or '(on another rank)'} are not finite at step {self.step}; "
                                     f"not saving. The last good checkpoint is {self.last_checkpoint}")
        if not self.dist.is_main:
            return None
        path = ckpt_io.atomic_save(state, ckpt_io.checkpoint_path(self.checkpoint_dir, self.step))
        ckpt_io.prune_checkpoints(self.checkpoint_dir, self.config.keep_last)
        self.last_checkpoint = path
        self._mirror(path)
        return path

    def _restore_mirrored_logs(self) -> None:
        """Resumed from the mirror (a fresh machine): bring its CSV logs back into the empty run folder."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in self.MIRRORED_LOGS:
            src, dst = Path(self.config.mirror_dir) / name, self.out_dir / name
            if src.is_file() and not dst.exists():
                shutil.copyfile(src, dst)
        self._notes.append(f"resumed from the mirror {self.config.mirror_dir} (no checkpoint in {self.out_dir})")

    MIRRORED_LOGS = ("log.csv", "val.csv")  # copied beside the checkpoint; images and tb/ are not

    def _mirror(self, path: Path) -> None:
        """Copy the new checkpoint to ``mirror_dir/latest.pt`` and the CSV logs beside it (each one file,
        replaced atomically); a failed copy is a warning (the local files are intact), so a Drive
        hiccup does not stop training."""
        if not self.config.mirror_dir:
            return
        try:
            ckpt_io.mirror_checkpoint(path, self.config.mirror_dir)
            for name in self.MIRRORED_LOGS:
                if (self.out_dir / name).is_file():
                    ckpt_io.mirror_checkpoint(self.out_dir / name, self.config.mirror_dir, name=name)
        except OSError as err:
            self._say(f"warning: could not copy {path.name} to the mirror {self.config.mirror_dir} ({err}); "
                      "the local checkpoint is intact, the mirror keeps its previous copy")

    def export_generator(self, path: Union[str, os.PathLike], half: bool = False) -> Path:
        """Generator-only weights ``{"generator": state_dict, "config": {...}}`` (for inference/demo).

        With ``ema_decay > 0`` these are the averaged weights (:attr:`eval_generator`).
        """
        sd = ckpt_io.strip_prefixes(self.eval_generator.state_dict())
        if half:
            sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
        return ckpt_io.atomic_save({"format_version": ckpt_io.FORMAT_VERSION, "kind": "course_lib.generator",
                                    "step": int(self.step), "config": self.config.to_dict(),
                                    "generator": sd}, path)

    # -- logging
    def _open_logs(self) -> None:
        if not self.dist.is_main:
            return
        path = self.out_dir / "log.csv"
        rows: list[dict[str, str]] = []
        if path.is_file() and self.step > 0:
            # A resumed run rewrites the log up to its checkpoint's step, so steps never repeat.
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        self._csv_file = open(path, "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=list(LOG_COLUMNS), extrasaction="ignore")
        self._csv.writeheader()
        self._csv.writerows(rows)
        self._csv_file.flush()
        rewind_csv(self.out_dir / "val.csv", self.step)  # every log restarts at the checkpoint's step
        for grid in (self.out_dir / "images").glob("step_*.png"):
            if grid.stem[5:].isdigit() and int(grid.stem[5:]) > self.step:
                grid.unlink(missing_ok=True)
        if self.config.tensorboard and self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=self.step + 1)
            except ImportError:  # tensorboard is optional: say so once per process
                self._tb = None
                _tensorboard_missing_once()

    def _close_logs(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = self._csv = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _log(self, row: dict[str, float], seconds: float) -> None:
        if not self.dist.is_main or self._csv is None:
            return
        full = {"step": self.step, "epoch": self.stream.epoch, **row,
                "lr": self.opt_g.param_groups[0]["lr"], "seconds": round(seconds, 4)}
        self._csv.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in full.items()})
        self._csv_file.flush()
        if self._tb is not None:
            for k, v in row.items():
                self._tb.add_scalar(f"{'critic' if k in CRITIC_KEYS else 'generator'}/{k}", v, self.step)

    def save_images(self) -> Optional[Path]:
        """Grid of the last generator batch: input | coarse | refined | flow | real (rank 0)."""
        if not self.dist.is_main or not hasattr(self, "_last_batch"):
            return None
        x, mask, x1, x2 = (t[:4] for t in self._last_batch)
        x_in = x * (1.0 - mask)
        flow = self._flow_picture(x_in, mask[:4])
        cols = [x_in + mask, x1 * mask + x_in, x2 * mask + x_in]  # hole shown white in the input
        if flow is not None:
            cols.append(flow)
        cols.append(x)
        path = save_image_grid(cols, self.out_dir / "images" / f"step_{self.step:08d}.png")
        if self._tb is not None:
            self._tb.add_image("samples", image_grid(cols), self.step, dataformats="HWC")
        return path

    @torch.no_grad()
    def _flow_picture(self, x_incomplete: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        """The attention's flow picture (B, 3, h, w) for the shown images: drawn here only, not in the
        training steps, which never look at it (None for ``coarse_only``)."""
        if self.config.coarse_only:
            return None
        generator = self.generator
        was_training = generator.training
        generator.eval()
        try:
            with flow_pictures(True), self.autocast():
                _, _, flow = generator(x_incomplete, mask)
        finally:
            generator.train(was_training)
        return None if flow is None else flow.float()

    # -- validation
    def _validation_batch(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        if self._val_batch is None:
            c = self.config
            ds = self._val_dataset if self._val_dataset is not None else self._make_val_dataset()
            if ds is None:
                return None
            n = min(len(ds), c.val_images)
            if n == 0:
                return None
            x = torch.stack([ds[i] for i in range(n)])  # (N, 3, H, W)
            # fixed seeded holes of the training kind, one per image (box: as before this option)
            mask, _ = training_holes(c.hole_kind, n, c.image_size, c.hole_size, c.max_delta, c.margin,
                                     generator=make_generator(c.seed + 4242), per_sample=True,
                                     folder=self.mask_folder)  # (N, 1, H, W)
            self._val_batch = (x, mask)
        return self._val_batch

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Metrics of the completed validation images (fixed images, fixed seeded holes)."""
        batch = self._validation_batch() if self.config.val_images > 0 else None
        if batch is None:
            return {}
        x, mask = (t.to(self.device) for t in batch)
        generator = self.eval_generator  # the weight average when ema_decay > 0
        was_training = generator.training
        generator.eval()
        outs = []
        for i in range(0, x.shape[0], self.config.batch_size):
            xi, mi = x[i:i + self.config.batch_size], mask[i:i + self.config.batch_size]
            with self.autocast(), flow_pictures(False):  # validation never looks at the flow picture
                _, x2, _ = self._generate(xi * (1.0 - mi), mi, train=False, generator=generator)
            outs.append(x2.float() * mi + xi * (1.0 - mi))  # (b, 3, H, W) completed
        generator.train(was_training)
        completed = torch.cat(outs)  # (N, 3, H, W)
        return validation_metrics(x, completed, mask)

    def _log_validation(self) -> None:
        if not self.dist.is_main:  # rank 0 alone: the others go on to the next collective and wait there
            return
        metrics = self.validate()
        if not metrics:
            return
        path = self.out_dir / "val.csv"
        new = not path.is_file()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", *metrics])
            writer.writerow([self.step, *(f"{v:.6g}" for v in metrics.values())])
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(f"val/{k}", v, self.step)
        # l1, l2, hole_l1 are absolute errors in % (metrics.l1_error), not the paper's relative ones (release #146)
        self._say(f"validation at step {self.step} (absolute l1/l2 %): "
                  + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    # -- progress
    def _say(self, text: str) -> None:
        if self.dist.is_main and self.config.progress != "none":
            if self._bar is not None:
                self._bar.write(text)
            else:
                print(text, flush=True)

    def _use_bar(self) -> bool:
        mode = self.config.progress
        if mode == "bar":
            return True
        if mode != "auto":
            return False
        return sys.stderr.isatty() and not _in_ci()

    # -- Ctrl-C and SIGTERM
    STOP_SIGNALS = ("SIGINT", "SIGTERM")  # SIGTERM: what Colab, SLURM, Docker and systemd send before SIGKILL

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return from :meth:`fit`."""
        self._stop_requested = True

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: finish this step and save; a second one abandons the step (still saving).

        The message goes straight to the stderr file descriptor: a handler must not print
        through Python's buffered streams, which the interrupted code may be writing.
        """
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self._stop_signal = signum
        if self._stop_requested:  # the second one: stop right now (a checkpoint is still written)
            raise KeyboardInterrupt
        self._stop_requested = True
        if self.dist.is_main:
            os.write(2, f"\n{name}: finishing this step, then saving a checkpoint ({name} again to stop "
                        "at once)\n".encode())

    # -- the loop
    def fit(self, max_iters: Optional[int] = None, max_minutes: Optional[float] = None) -> TrainResult:
        """Train until step ``max_iters`` (default: the config's), Ctrl-C, SIGTERM or a non-finite loss.

        Ctrl-C and SIGTERM (in the main thread) finish the step and save a checkpoint; a second
        one abandons the step and still saves (:attr:`TrainResult.signal` says which signal).

        ``max_minutes`` stops (with a checkpoint) after that much wall time, e.g. before a
        Colab session ends; the status is then 'time_limit'.

        Returns a :class:`TrainResult`; raises :class:`NonFiniteLossError` on NaN/Inf (the
        last good checkpoint stays as it was).
        """
        c = self.config
        total = c.max_iters if max_iters is None else int(max_iters)
        if self._lock is not None:
            self._lock.acquire()  # RunLockedError when another run trains into out_dir
            stale = ckpt_io.remove_stale_temporaries(self.checkpoint_dir)
            if self.config.mirror_dir:  # a copy cut short by a killed VM
                stale += ckpt_io.remove_stale_temporaries(self.config.mirror_dir)
            if stale:
                self._notes.append(f"removed {len(stale)} unfinished checkpoint file(s) of a run that was killed")
        try:
            return self._fit(total, max_minutes)
        except RuntimeError as err:
            if _is_out_of_memory(err):
                raise TrainOutOfMemoryError(out_of_memory_advice(self.config, self.device)) from err
            explained = explain_nondeterministic_error(err)
            if explained is not None:  # deterministic=true met an op without a deterministic kernel
                raise ValueError(explained) from err
            raise
        finally:
            if self._lock is not None:
                self._lock.release()

    def _fit(self, total: int, max_minutes: Optional[float]) -> TrainResult:
        c = self.config
        self._bar = None
        self._open_logs()
        old_handlers: dict[int, Any] = {}
        self._stop_signal: Optional[int] = None
        if threading.current_thread() is threading.main_thread():
            for name in self.STOP_SIGNALS:
                signum = getattr(signal, name)
                old_handlers[signum] = signal.signal(signum, self._on_stop_signal)
        if self.dist.is_main and self._use_bar():
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, initial=self.step, desc="train", dynamic_ncols=True)
        if self.resumed_from is not None:
            self._say(f"resumed from {self.resumed_from} at step {self.step}")
        for note in self._notes:
            self._say(note)
        self._notes.clear()
        status, row = "finished", {}
        t_last, steps_since = time.perf_counter(), 0
        deadline = None if max_minutes is None else time.perf_counter() + 60.0 * max_minutes
        last_snapshot = time.perf_counter()  # snapshot_minutes: a checkpoint every N minutes too
        try:
            while self.step < total:
                t0 = time.perf_counter()
                row = self.train_step()
                self._log(row, time.perf_counter() - t0)
                steps_since += 1
                if self._bar is not None:
                    self._bar.update(1)
                    self._bar.set_postfix(d=f"{row['d_total']:.3g}", l1=f"{row['l1_loss']:.3g}",
                                          ae=f"{row['ae_loss']:.3g}", refresh=False)
                elif self.step % c.log_every == 0 or self.step == total:
                    now = time.perf_counter()
                    rate = (now - t_last) / max(steps_since, 1)
                    self._say(f"step {self.step}/{total} | d {row['d_loss']:.4g} gp {row['gp_loss']:.4g} | "
                              f"g adv {row['g_loss']:.4g} l1 {row['l1_loss']:.4g} ae {row['ae_loss']:.4g} | "
                              f"{rate:.2f} s/step, eta {rate * (total - self.step) / 60:.1f} min")
                    t_last, steps_since = now, 0
                if self.step % c.image_every == 0:
                    self.save_images()
                if self.step % c.val_every == 0:
                    self._log_validation()
                out_of_time = deadline is not None and time.perf_counter() > deadline
                due = c.snapshot_minutes > 0 and time.perf_counter() - last_snapshot >= 60.0 * c.snapshot_minutes
                stop, timed = all_reduce_flags([self._stop_requested or out_of_time, due], self.dist)  # one all-reduce
                if self.step % c.snapshot_every == 0 or self.step == total or stop or timed:
                    self.save_checkpoint()
                    last_snapshot = time.perf_counter()
                    if self.dist.distributed:
                        diff = max_replica_difference(self.generator, self.dist)
                        if diff > 0:
                            self._say(f"warning: generator replicas differ by {diff:.3g} at step {self.step}")
                if stop:
                    status = "stopped" if self._stop_requested else "time_limit"
                    by = f" by {signal.Signals(self._stop_signal).name}" if self._stop_signal else ""
                    self._say(f"{status.replace('_', ' ')}{by}: step {self.step}; checkpoint {self.last_checkpoint}")
                    break
            else:
                if self._saved_step != self.step:
                    self.save_checkpoint()
        except (KeyboardInterrupt, RuntimeError) as err:
            # Interrupted inside a step: save what we have (the step counter is that of the
            # last completed step; the critics may have taken a few extra updates). Also when
            # a SIGTERM sent to every process of the run (kill -- -PGID, systemd, SLURM) ended
            # the DataLoader workers, which torch reports as a RuntimeError.
            worker_stopped = isinstance(err, RuntimeError) and "DataLoader worker" in str(err) and (
                self._stop_requested or "Terminated" in str(err))
            if isinstance(err, RuntimeError) and not worker_stopped:
                raise
            status = "interrupted"
            self._stop_signal = self._stop_signal or (signal.SIGTERM if worker_stopped else signal.SIGINT)
            path = self.save_checkpoint(gather_rng=False)
            why = " (the signal also ended the data loader's workers)" if worker_stopped else ""
            self._say(f"interrupted at step {self.step}{why}; saved {path}; continue with --resume")
        finally:
            for signum, handler in old_handlers.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self._close_logs()
            self._stop_requested = False
        return TrainResult(status, self.step, self.last_checkpoint, row,
                           signal=self._stop_signal if status in ("stopped", "interrupted") else None)

    def close(self) -> None:
        """Leave the process group of a distributed run (safe to call twice; a no-op for one process).

        The DDP wrappers hold the gloo/NCCL process group and its C++ worker threads. Left to
        the interpreter's shutdown, they are destroyed after Python is half torn down, and a
        gloo rank then aborts at exit ("terminate called without an active exception", seen in
        about one run in seven of ``tests/test_distributed.py``). So the wrappers are dropped and
        collected while Python is whole, then the group is destroyed.
        """
        if not self.dist.distributed:
            return
        self.g_train, self.d_local_train, self.d_global_train = (
            self.generator, self.local_critic, self.global_critic)
        gc.collect()  # the DDP reducers (and their references to the group) go now
        cleanup_distributed()
        gc.collect()


def validation_metrics(x: torch.Tensor, completed: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Validation numbers of completed images against the real ones (both (N, 3, H, W) in [-1, 1]).

    The means over the images of :func:`course_lib.metrics.all_metrics`: the paper's
    Table 1 measures (l1, l2, psnr, tv) plus ssim, and the same inside the hole
    (``hole_l1``, ``hole_psnr``, ``hole_ssim``), where a completion can differ from the truth.
    """
    out: dict[str, float] = {}
    try:
        from course_lib.metrics import all_metrics
    except ImportError:  # pragma: no cover - metrics is part of course_lib
        all_metrics = None
    if all_metrics is not None:
        values = all_metrics(x.float(), completed.float(), mask.float())  # {name: (N,)}
        out.update({k: float(v.float().mean()) for k, v in values.items()})
    else:
        a, b = (completed.float() + 1) / 2, (x.float() + 1) / 2  # pixels in [0, 1]
        m = mask.float().expand_as(a)  # (N, 3, H, W)
        mse = ((a - b) ** 2 * m).sum() / m.sum().clamp_min(1)
        out["hole_psnr"] = float(10 * torch.log10(1.0 / mse.clamp_min(1e-10)))
    return out


# ----------------------------------------------------------------------------- API + CLI

def train(config: Union[TrainConfig, str, None] = "toy_cpu", out_dir: Union[str, os.PathLike] = "runs/toy",
          overrides: Optional[Union[dict, list[str]]] = None,
          resume: Union[None, bool, str, os.PathLike] = "auto", **kwargs: Any) -> TrainResult:
    """Notebook entry point: build a :class:`Trainer` and run it (resumes by default).

    ``train("toy_cpu", "runs/toy", {"max_iters": 200})`` trains the tiny CPU config for
    200 steps, or continues it if ``runs/toy`` already holds checkpoints.
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    if overrides:
        config = apply_overrides(config, overrides)
    trainer = Trainer(config, out_dir, resume=resume, **kwargs)
    return trainer.fit()


def build_parser() -> argparse.ArgumentParser:
    from course_lib.config import available_configs
    parser = argparse.ArgumentParser(
        prog="python -m course_lib train",
        description="Train DeepFill v1 (release schedule: 5 critic steps per generator step).",
        epilog="examples:\n"
               "  python -m course_lib train --config toy_cpu --out runs/toy\n"
               "  python -m course_lib train --config places2 --set data_root=/data/places2 --set amp=bf16 --out runs/p2\n"
               "  python -m course_lib train --out runs/p2 --resume\n"
               "  torchrun --nproc_per_node 4 -m course_lib train --config places2 --out runs/p2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help=f"a shipped config ({', '.join(available_configs())}) or a .json file; "
                             "default: toy_cpu, or the checkpoint's config with --resume")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value (repeatable), e.g. --set batch_size=8")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, images)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                        help="continue from a checkpoint file/folder; without a value: the newest "
                             "checkpoint in --out (a fresh start when there is none)")
    parser.add_argument("--init", default=None, metavar="WEIGHTS",
                        help="start a new run from these weights (fine-tuning): an official name (places2, celeba, "
                             "celebahq, imagenet; after python -m course_lib download NAME), a converted/TF checkpoint, "
                             "a run folder or an exported generator; fresh optimisers, step 0. Without --config: "
                             "places2's config for official weights, else the file's own config")
    parser.add_argument("--fresh-critics", action="store_true",
                        help="with --init: start both critics from random weights (needed for generator-only files)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop (with a checkpoint) after this many minutes of training")
    parser.add_argument("--export", default=None, metavar="PATH",
                        help="after training, also write generator-only weights to PATH")
    parser.add_argument("--export-half", action="store_true", help="store the exported weights as float16")
    parser.add_argument("--mirror", default=None, metavar="DIR",
                        help="copy the newest checkpoint to DIR/latest.pt after each save (e.g. a Google Drive "
                             "folder; mirror_dir); --resume reads it when --out holds no checkpoint (a fresh VM)")
    parser.add_argument("--deterministic", action="store_true",
                        help="bit-identical runs on CUDA too: deterministic kernels, no cuDNN autotuning "
                             "(deterministic=true; slower)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    _add_data_options(parser)
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """Options for training on your own photos and masks; each is a shorthand for a --set KEY=VALUE."""
    from course_lib.config import HOLE_KINDS
    group = parser.add_argument_group("your own photos and masks (shorthands for --set)")
    group.add_argument("--val-flist", default=None, metavar="LIST",
                       help="validation images: an flist or a folder (val_flist); default for data=flist: "
                            "the <name>_val.flist that make-flist --val-fraction wrote next to data_root")
    group.add_argument("--holes", default=None, choices=HOLE_KINDS, metavar="KIND",
                       help="training holes (hole_kind): box (release, default), strokes (DeepFill v2), "
                            "box_or_strokes (v2's training), folder (your masks, --mask-folder), border "
                            "(a box touching the image's edge)")
    group.add_argument("--mask-folder", default=None, metavar="DIR",
                       help="with --holes folder: your mask images, white = hole (mask_folder)")
    group.add_argument("--invert-masks", action="store_true",
                       help="with --holes folder: black is the hole in those masks (mask_invert)")


def _data_overrides(args: argparse.Namespace) -> list[str]:
    """The --set strings that the shorthand options stand for (explicit --set values come after them)."""
    out = []
    if args.val_flist is not None:
        out.append(f"val_flist={args.val_flist}")
    if args.holes is not None:
        out.append(f"hole_kind={args.holes}")
    if args.mask_folder is not None:
        out.append(f"mask_folder={args.mask_folder}")
        if args.holes is None:
            out.append("hole_kind=folder")
    if args.invert_masks:
        out.append("mask_invert=true")
    if getattr(args, "mirror", None) is not None:
        out.append(f"mirror_dir={args.mirror}")
    if getattr(args, "deterministic", False):
        out.append("deterministic=true")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib train ...``; exit code 0 done, 1 non-finite loss, 2 bad input, 130 Ctrl-C, 143 SIGTERM.

    Ctrl-C and SIGTERM finish the step and save a checkpoint before the exit (130 = 128 +
    SIGINT, 143 = 128 + SIGTERM), so ``train && evaluate`` runs evaluate only after a finished
    run. Errors are reported by the one boundary of every command,
    :func:`course_lib.__main__.run_command`.
    """
    import json
    args = build_parser().parse_args(argv)
    args.overrides = _data_overrides(args) + args.overrides
    if args.config is None and args.resume is not None:
        found = (ckpt_io.latest_checkpoint(args.out) if args.resume == "auto" else Path(args.resume))
        if found is None and args.mirror:  # a fresh VM: the run's settings come from the mirror's copy
            found = ckpt_io.mirrored_checkpoint(args.mirror)
        if found is not None and Path(found).is_dir():
            found = ckpt_io.latest_checkpoint(found)
        base = (TrainConfig.from_dict(ckpt_io.load_checkpoint(found)["config"]) if found is not None
                else load_config("toy_cpu"))
    elif args.config is None and args.init is not None:  # the init file's own config, or the release's
        from course_lib.pretrained import load_weights
        saved = load_weights(args.init).config
        base = TrainConfig.from_dict(saved) if "image_size" in saved else load_config("places2")
    else:
        base = load_config(args.config or "toy_cpu")
    config = apply_overrides(base, args.overrides) if args.overrides else base
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    trainer = Trainer(config, args.out, resume=args.resume, init=args.init, fresh_critics=args.fresh_critics)
    try:
        result = trainer.fit(max_minutes=args.max_minutes)
    finally:
        trainer.close()
    if args.export and trainer.dist.is_main:
        if result.signal is None:
            path = trainer.export_generator(args.export, half=args.export_half)
            print(f"generator weights: {path} ({path.stat().st_size / 1e6:.2f} MB)")
        else:
            print(f"not exporting {args.export}: the run was stopped; --resume finishes it")
    if trainer.dist.is_main:
        print(f"{result.status} at step {result.step}; checkpoint {result.checkpoint}")
    return 128 + int(result.signal) if result.signal is not None else 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("train", main, sys.argv[1:]))
