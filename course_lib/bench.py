"""Speed and memory benchmarks: numbers printed by a script, never thresholds in tests.

Run ``python scripts/benchmark.py [--device cpu|cuda] [--sizes 256 512 1024 2048] [--quick]
[--json out.json]`` (``make bench`` runs ``--quick``). Every figure comes with what it is
compared against, measured in the same run:

* ``sgemm``: a float32 matrix product (2048 x 2048 x 2048) gives the machine's matmul rate
  (GFLOP/s); each row's ``gflop`` (the DENSE work: every conv and the full attention score
  matrix, :func:`dense_generator_gflop`) is turned into ``flop_ms``, the time that work takes
  at that rate -- a floor for the dense computation, which the restricted attention may beat;
* generator inference (``Generator(cnum)``, no gradients, a centred hole of 1/16 of the area)
  at each size: the fast path (what :func:`course_lib.inpaint` runs: the view-based resizes
  and :func:`course_lib.attention_fast.use_fast_attention`) against the step-by-step
  reference (:func:`course_lib.ops.use_reference_ops` + the dense layer of
  :mod:`course_lib.attention`), timed alternately call by call so that other jobs' load hits
  both alike, and their ratio; the reference is skipped above ``--reference-max`` (its dense
  score matrix grows with the square of the pixel count: 16 GiB at 2048);
* :func:`course_lib.inpaint` in crop mode on the largest size with a 10 % hole (no reference:
  the reference would run the whole image, the generator rows above);
* contextual attention forward + backward at batch ``--attention-batch`` (default 8) on
  ``4 * cnum`` channels at ``--attention-size`` (64 x 64: a 256 image), the middle half a hole:
  the per-image loop (the release's ``tf.split``, :func:`attention_per_image_loop`), the batched
  dense layer, the fast layer on all rows and restricted to what a generator's composite reads,
  timed alternately, with the loop / fast ratios;
* the two halves of a training iteration (:func:`bench_steps`, :func:`step_rows`): the
  generator step (forward, the release's losses, backward) at ``--step-size`` (128, B=4) and
  twice it (256, B=2), the critic step (WGAN + masked gradient penalties, local 128 + global
  256, B=8), and both at the ``--toy-config``'s own sizes (and ``places2``'s, 256 px B=16, on
  CUDA); each on the trainer's fast path, the notebooks' step-by-step path and the simplest
  per-image-loop port (:class:`PortGenerator`, :class:`PortCritic`: symmetric PyTorch padding,
  ``F.interpolate`` nearest, the attention once per image), timed alternately, with the
  port / path ratios and the counted conv and matmul work (:class:`_FlopCount`); skipped by
  ``--no-steps``, alone with ``--only-steps``;
* one training step (5 critic + 1 generator updates, Adam, the release's losses) at batch
  ``--train-batch`` (default 16) and ``--train-size`` (256): the trainer's fast path against the
  reference ops with the per-image attention loop; skipped by ``--quick``.

Peak memory (``peak_mb``): on CUDA ``torch.cuda.max_memory_allocated`` during the row's calls;
on the CPU the largest resident set size sampled every 2 ms during them
(:class:`RssSampler`; the process's own, Python and torch included, so it includes the
~0.3 GB baseline). Timing: ``time.perf_counter`` with ``torch.cuda.synchronize`` before and after on
CUDA; beside it the process CPU time (``cpu ms``, all threads), which other jobs on a shared
machine disturb much less. Inputs are seeded; ``torch.set_num_threads`` is left at the machine's
default (or set by ``--threads``) and printed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from course_lib.attention import contextual_attention
from course_lib.attention_fast import contextual_attention_fast, use_fast_attention
import course_lib.generator as generator_module
import torch.nn.functional as F

from course_lib.critics import Critic, GlobalCritic, LocalCritic, flatten_nhwc
from course_lib.generator import Generator, stage_input
from course_lib.losses import LossWeights, critic_loss, generator_loss
from course_lib.masks import random_box_mask
from course_lib.ops import ACTIVATIONS, GenDeconv, SameConv2d, fold_same_padding, use_fast_path, use_reference_ops

__all__ = [
    "PAPER_SECONDS_512",
    "Row",
    "synchronize",
    "time_calls",
    "time_alternating",
    "RssSampler",
    "reset_peak_memory",
    "peak_memory_mb",
    "environment",
    "count_parameters",
    "matmul_gflops",
    "conv_gflop",
    "dense_generator_gflop",
    "bench_generator",
    "attention_per_image_loop",
    "bench_attention",
    "TrainStep",
    "bench_train_step",
    "run_benchmarks",
    "format_table",
    "build_parser",
    "main",
]

# The paper's runtime figures (authors' machines, TensorFlow, one 512x512 image):
# kind of device -> (seconds per image, machine).
PAPER_SECONDS_512: dict[str, tuple[float, str]] = {
    "cuda": (0.2, "GPU GTX 1080 Ti"),
    "cpu": (1.5, "CPU Xeon E5-2697 v3"),
}
CRITIC_STEPS = 5  # the release's 5 critic updates per generator update


@dataclass
class Row:
    """One line of the table.

    ``median`` is the headline number in ``unit`` (``ms`` per image / per call / per step,
    or ``x`` for a ratio); ``best`` the fastest repeat (None for ratios); ``peak_mb`` the
    peak memory of the row (see the module docstring; None for ratios); ``gflop`` the dense
    work of one call and ``flop_ms`` its time at the run's sgemm rate (None where not counted);
    ``cpu_ms`` the median process CPU time per item in ms, all threads together (where
    measured: on a shared machine other jobs stretch the wall time, much less the CPU time);
    ``max_abs_diff`` the largest absolute difference of two paths' outputs (on a ratio row
    that compares a fast path with its reference; None elsewhere).
    """

    name: str
    median: float
    unit: str
    best: Optional[float] = None
    peak_mb: Optional[float] = None
    note: str = ""
    samples: list[float] = field(default_factory=list)
    gflop: Optional[float] = None
    flop_ms: Optional[float] = None
    cpu_ms: Optional[float] = None
    max_abs_diff: Optional[float] = None


# ----------------------------------------------------------------------------- measuring

def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (CUDA runs asynchronously); no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times; return the seconds of each timed call.

    The device is synchronised before and after every timed call, so a CUDA time is the
    kernels' time, not the launch time.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 (timed calls) and warmup >= 0 (untimed calls), "
                         f"got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def time_alternating(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int, device: torch.device,
                     memory: Optional[dict[str, float]] = None,
                     cpu: Optional[dict[str, list[float]]] = None) -> dict[str, list[float]]:
    """Time several functions call by call in turn (the order rotates each repeat); seconds per call.

    Alternating spreads a shared machine's load changes over all of them alike. ``memory``,
    when given, receives each function's peak memory in MiB over its calls (:class:`RssSampler`
    on the CPU, ``max_memory_allocated`` on CUDA). ``cpu``, when given, receives each
    function's process CPU seconds per timed call (``time.process_time``: every thread of
    this process, not other processes' load).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 (timed calls) and warmup >= 0 (untimed calls), "
                         f"got repeats={repeats}, warmup={warmup}")
    names = list(fns)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, float] = {name: 0.0 for name in names}
    for i in range(warmup + repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            reset_peak_memory(device)
            with RssSampler(device) as sampler:
                synchronize(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                fns[name]()
                synchronize(device)
                elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            peaks[name] = max(peaks[name], sampler.peak_mb)
            if i >= warmup:
                seconds[name].append(elapsed)
                cpu_seconds[name].append(elapsed_cpu)
    if memory is not None:
        memory.update(peaks)
    if cpu is not None:
        cpu.update(cpu_seconds)
    return seconds


class RssSampler:
    """Peak memory (MiB) during a ``with`` block: CUDA ``max_memory_allocated``, else sampled RSS.

    On the CPU a thread reads the resident set size (``/proc/self/statm``) every
    ``interval`` seconds; the peak is the largest value seen (a spike shorter than the
    interval can be missed). Where ``/proc`` is missing, it falls back to the process's
    peak RSS so far (:func:`peak_memory_mb`).
    """

    def __init__(self, device: torch.device, interval: float = 0.002) -> None:
        self.device, self.interval = device, interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @staticmethod
    def _rss_mb() -> Optional[float]:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, AttributeError):
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss_mb()
            if rss is not None:
                self.peak_mb = max(self.peak_mb, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._rss_mb() is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb() or 0.0)
        else:
            self.peak_mb = peak_memory_mb(self.device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak-memory window (the CPU's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA ``max_memory_allocated`` since the last reset, else the process's peak RSS.

    The CPU figure is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux, bytes on
    macOS): the whole process's high-water mark so far, so it is coarse and never decreases.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows has no resource module
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def count_parameters(module: torch.nn.Module) -> int:
    """Number of scalars in the module's parameters."""
    return sum(p.numel() for p in module.parameters())


def environment(device: torch.device, cnum: int, critic_cnum: int, size: int) -> dict[str, Any]:
    """Header facts: versions, device, threads, parameter counts of the benchmarked models."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name,
        "cpu_name": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS", ""),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        # other processes' load when the run starts: > 0 on a shared machine means noisy CPU numbers
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "params_generator": count_parameters(Generator(cnum)),
        "params_local_critic": count_parameters(LocalCritic(critic_cnum, size=size // 2)),
        "params_global_critic": count_parameters(GlobalCritic(critic_cnum, size=size)),
        "cnum": cnum,
        "critic_cnum": critic_cnum,
    }


def _timed_row(name: str, seconds: Sequence[float], per: int, unit: str, peak_mb: float,
               note: str = "", gflop: Optional[float] = None, gflops_rate: Optional[float] = None,
               cpu_seconds: Optional[Sequence[float]] = None) -> Row:
    """Seconds per call -> a row in milliseconds per ``per`` items (images or calls).

    ``gflop`` is the dense work of one call; with ``gflops_rate`` (the sgemm rate) the row
    also gets ``flop_ms``, that work's time per item at the rate; with ``cpu_seconds`` (the
    process CPU time of each call) ``cpu_ms``, their median per item.
    """
    ms = [1000.0 * s / per for s in seconds]
    flop_ms = None if gflop is None or not gflops_rate else 1000.0 * gflop / gflops_rate / per
    cpu_ms = None if not cpu_seconds else 1000.0 * statistics.median(cpu_seconds) / per
    return Row(name, statistics.median(ms), unit, min(ms), peak_mb, note, ms, gflop, flop_ms, cpu_ms)


def _ratio_row(name: str, numerator: float, denominator: float, note: str) -> Row:
    return Row(name, numerator / denominator, "x", None, None, note)


def _box_mask(size: int, side: Optional[int] = None) -> torch.Tensor:
    """A (1, 1, size, size) mask with a centred ``side`` box hole (default ``size // 2``: 128 of 256)."""
    side = size // 2 if side is None else side
    top = (size - side) // 2
    mask = torch.zeros(1, 1, size, size)  # (1, 1, H, W)
    mask[..., top: top + side, top: top + side] = 1.0
    return mask


def _images(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Seeded stand-in images in [-1, 1] (B, 3, size, size): the run time does not depend on content."""
    return torch.rand(batch, 3, size, size, generator=generator) * 2.0 - 1.0  # (B, 3, H, W)


# ----------------------------------------------------------------------------- dense work

def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 3) -> tuple[float, list[float]]:
    """The machine's float32 matmul rate: median GFLOP/s of ``(n x n) @ (n x n)`` (``2 n^3`` FLOPs), and the seconds."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    seconds = time_calls(lambda: a @ b, repeats, 1, device)
    return 2.0 * n**3 / statistics.median(seconds) / 1e9, seconds


def conv_gflop(module: torch.nn.Module, run: Callable[[], Any]) -> float:
    """GFLOP of every ``nn.Conv2d`` call during ``run()`` (``2 * out elements * in/groups * k * k``), by hooks."""
    total = [0.0]

    def hook(layer: torch.nn.Conv2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        k = layer.kernel_size[0] * layer.kernel_size[1]
        total[0] += 2.0 * out.numel() * (layer.in_channels // layer.groups) * k

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return total[0] / 1e9


def attention_gflop(batch: int, channels: int, h: int, w: int, ksize: int = 3, rate: int = 2,
                    fuse_k: int = 3) -> float:
    """Dense contextual attention's GFLOP on ``(batch, channels, h, w)`` features, f = b.

    With ``N = L = (h/rate)(w/rate)``: matching ``2 N L C k^2``, the two fuse convs
    ``2 * 2 N L fuse_k^2``, pasting (transposed conv) ``2 N L C (2 rate)^2``, per image.
    """
    n = (h // rate) * (w // rate)
    return batch * (2.0 * n * n * channels * ksize**2 + 4.0 * n * n * fuse_k**2
                    + 2.0 * n * n * channels * (2 * rate) ** 2) / 1e9


def dense_generator_gflop(cnum: int, size: int, batch: int = 1) -> dict[str, float]:
    """The dense work of one generator forward at ``size`` x ``size``: ``{"convs", "attention", "total"}`` GFLOP.

    Conv work is counted by hooks on a 64 x 64 run and scaled by the area (every layer's map
    is a fixed fraction of the image); attention by :func:`attention_gflop` on the
    ``4 * cnum`` x ``size / 4`` features (at 512 and cnum 32: convs ~176, matching ~39,
    pasting ~69).
    """
    g = Generator(cnum).eval()
    x = torch.zeros(1, 3, 64, 64)
    mask = _box_mask(64)

    def run() -> None:
        with torch.no_grad():
            g(x, mask)

    convs = conv_gflop(g, run) * (size / 64) ** 2 * batch
    attention = attention_gflop(batch, 4 * cnum, size // 4, size // 4)
    return {"convs": convs, "attention": attention, "total": convs + attention}


# ----------------------------------------------------------------------------- benchmarks

def bench_generator(cnum: int, size: int, device: torch.device, repeats: int, warmup: int,
                    gflops_rate: float, reference: bool = True, seed: int = 0) -> list[Row]:
    """Generator inference at ``size`` (1/16-area hole): fast path, reference path (optional), ratio.

    Fast: :func:`course_lib.attention_fast.use_fast_attention` and
    :func:`course_lib.ops.fold_same_padding` (what :func:`course_lib.inpaint` runs). Reference:
    :func:`course_lib.ops.use_reference_ops` and the dense layer. The ratio's note gives the
    largest difference of the composites ``x2 * mask + x * (1 - mask)``.
    """
    torch.manual_seed(seed)
    generator = Generator(cnum).to(device).eval()
    g = torch.Generator().manual_seed(seed)
    x = _images(1, size, g).to(device)  # (1, 3, H, W)
    mask = _box_mask(size, size // 4).to(device)  # (1, 1, H, W): 1/16 of the area
    outputs: dict[str, torch.Tensor] = {}

    def run(fast: bool) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad(), use_reference_ops(not fast), use_fast_attention(fast), fold_same_padding(fast):
                _, x2, _ = generator(x, mask)
            outputs["fast" if fast else "reference"] = x2 * mask + x * (1 - mask)
        return call

    fns = {"fast": run(True)}
    if reference:
        fns["reference"] = run(False)
    peaks: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    seconds = time_alternating(fns, repeats, warmup, device, peaks, cpu)
    work = dense_generator_gflop(cnum, size)
    where = f"cnum={cnum}, hole {size // 4}x{size // 4}, median of {repeats}"
    rows = [_timed_row(f"generator {size}x{size} fast", seconds["fast"], 1, "ms/image", peaks["fast"],
                       where + ("; alternating with the reference" if reference else ""), work["total"],
                       gflops_rate, cpu["fast"])]
    convs_ms = 1000.0 * work["convs"] / gflops_rate
    rows[0].note += (f"; its convs alone: {work['convs']:.1f} GFLOP = {convs_ms:.0f} ms at the sgemm rate "
                     f"(fast / that = {rows[0].median / convs_ms:.2f})")
    conv_ratio = _ratio_row(f"generator {size}x{size} fast / its convs' flop time", rows[0].median, convs_ms,
                            f"the dense convs' {work['convs']:.1f} GFLOP at this run's sgemm rate; 1 = every "
                            "conv at matmul speed and the rest free (target <= 1.5 at 512)")
    if not reference:
        gib = ((size // 8) ** 4) * 4 / 2**30
        rows[0].note += f"; reference not run (its dense score matrix alone is {gib:.1f} GiB)"
        return rows + [conv_ratio]
    rows.append(_timed_row(f"generator {size}x{size} reference", seconds["reference"], 1, "ms/image",
                           peaks["reference"], "use_reference_ops + dense attention, " + where,
                           work["total"], gflops_rate, cpu["reference"]))
    diff = float((outputs["fast"] - outputs["reference"]).abs().max())
    rows.append(_ratio_row(f"generator {size}x{size} reference / fast", rows[1].median, rows[0].median,
                           f">1: fast is faster; composites differ by at most {diff:.1e}"))
    rows[-1].max_abs_diff = diff
    return rows + [conv_ratio]


def bench_inpaint_crop(cnum: int, size: int, device: torch.device, repeats: int, warmup: int,
                       seed: int = 0) -> Row:
    """:func:`course_lib.inpaint` in crop mode on a ``size`` x ``size`` image with a centred 10 % hole.

    The window (twice the hole's side) is downscaled to 256 px, inpainted and pasted back; the
    time includes the resizes and the paste. The note gives the window and its model size.
    """
    from course_lib.inpainting import inpaint

    torch.manual_seed(seed)
    generator = Generator(cnum).to(device).eval()
    g = torch.Generator().manual_seed(seed)
    x = _images(1, size, g).to(device)  # (1, 3, H, W)
    side = int(round(size * 0.1 ** 0.5))
    mask = _box_mask(size, side).to(device)  # (1, 1, H, W): 10 % of the area
    described: list[str] = []

    def call() -> None:
        res = inpaint(generator, x, mask, mode="crop", return_stages=True, warn_large_hole=False)
        described[:] = [res.describe()]

    peaks: dict[str, float] = {}
    seconds = time_alternating({"crop": call}, repeats, warmup, device, peaks)
    return _timed_row(f"inpaint crop mode {size}x{size}, 10% hole", seconds["crop"], 1, "ms/image",
                      peaks["crop"], f"cnum={cnum}, {described[0]}, median of {repeats}")


def attention_per_image_loop(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor], *args: Any,
                             **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: :func:`contextual_attention` once per image in a Python loop, outputs concatenated.

    This is how the release runs the layer (``tf.split`` over the batch, one image at a
    time). ``mask`` is shared ``(1, 1, H, W)`` or per image ``(B, 1, H, W)``; further
    arguments go to :func:`contextual_attention`.
    """
    ys, flows = [], []
    for i in range(f.shape[0]):
        m = None if mask is None else mask[i: i + 1] if mask.shape[0] > 1 else mask
        y, flow = contextual_attention(f[i: i + 1], b[i: i + 1], m, *args, **kwargs)  # (1, C, H, W), (1, 3, H, W)
        ys.append(y)
        flows.append(flow)
    return torch.cat(ys, dim=0), torch.cat(flows, dim=0)  # (B, C, H, W), (B, 3, H, W)


def bench_attention(channels: int, feature_size: int, batch: int, device: torch.device,
                    repeats: int, warmup: int, gflops_rate: float, seed: int = 0) -> list[Row]:
    """Contextual attention forward + backward of ``(y * w).sum()``: four implementations, two ratios.

    Features ``f = b`` (B, channels, s, s) with the middle half masked (a 128 hole of a 256
    image). ``fast, hole rows`` computes only the rows a generator's composite reads
    (:meth:`course_lib.generator.RefineNetwork.hole_reach` of the image-size hole) and is
    weighted by them, as the generator's loss would be.
    """
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(batch, channels, feature_size, feature_size, generator=g).to(device)  # (B, C, s, s)
    weight = torch.randn(batch, channels, feature_size, feature_size, generator=g).to(device)
    mask = _box_mask(feature_size).to(device)  # (1, 1, s, s)
    image_mask = _box_mask(4 * feature_size)  # (1, 1, 4s, 4s): the image's hole
    need = Generator(2).refine.hole_reach(image_mask, (feature_size, feature_size)).to(device)  # (1, 1, s, s)

    def step(run: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor) -> Callable[[], None]:
        def call() -> None:
            leaf = feat.detach().requires_grad_(True)  # (B, C, s, s)
            (run(leaf) * w).sum().backward()
        return call

    fns = {
        "per-image loop": step(lambda t: attention_per_image_loop(t, t, mask)[0], weight),
        "batched dense": step(lambda t: contextual_attention(t, t, mask)[0], weight),
        "fast, all rows": step(lambda t: contextual_attention_fast(t, t, mask)[0], weight),
        "fast, hole rows": step(lambda t: contextual_attention_fast(t, t, mask, need=need)[0], weight * need),
    }
    peaks: dict[str, float] = {}
    seconds = time_alternating(fns, repeats, warmup, device, peaks)
    work = 3.0 * attention_gflop(batch, channels, feature_size, feature_size)  # backward ~ 2x forward
    where = f"{channels} ch, {feature_size}x{feature_size}, median of {repeats}, alternating"
    rows = [_timed_row(f"attention fwd+bwd {name}, B={batch}", seconds[name], 1, "ms/call", peaks[name],
                       where, work, gflops_rate) for name in fns]
    for name in ("fast, all rows", "fast, hole rows"):
        rows.append(_ratio_row(f"attention fwd+bwd per-image loop / {name}, B={batch}", rows[0].median,
                               rows[list(fns).index(name)].median, ">1: fast is faster"))
    return rows


# ----------------------------------------------------------------------------- the simplest port

def _port_conv(conv: SameConv2d, x: torch.Tensor) -> torch.Tensor:
    """The simplest port's conv: PyTorch's symmetric padding ``(k - 1) * d // 2`` on every side, stride 2 too.

    Not TF 'SAME' (a stride-2 conv on an even size reads half a pixel earlier): the port's
    semantics, kept for its speed only; the weights are ``conv``'s own.
    """
    k, d = conv.kernel_size[0], conv.dilation[0]
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, (k - 1) * d // 2, conv.dilation)


class PortGenerator(torch.nn.Module):
    """The per-image-loop port of the generator, for the benchmark's training rows (written here, from the paper).

    The same layers and weights as ``generator`` (it holds it), run the way the simplest
    PyTorch port runs them: every conv with PyTorch's symmetric padding (:func:`_port_conv`),
    the x2 upsampling and the mask resize by ``F.interpolate(mode="nearest")``, and the
    contextual attention once per image (:func:`attention_per_image_loop`: per image, a plain
    conv for the matching, a 1-channel conv twice for the fuse, a transposed conv for the
    pasting). ``forward(x, mask) -> (x_stage1, x_stage2, None)``; not the release's values.
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    @staticmethod
    def _layers(net: torch.nn.Module, h: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        for name in names:
            layer = getattr(net, name)
            if isinstance(layer, GenDeconv):
                h, layer = F.interpolate(h, scale_factor=2, mode="nearest"), layer.conv  # (B, C, 2H, 2W)
            h = ACTIVATIONS[layer.activation](_port_conv(layer, h))
        return h

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        coarse, refine = self.generator.coarse, self.generator.refine
        x_in = x * (1.0 - mask)  # (B, 3, H, W)
        x1 = self._layers(coarse, stage_input(x_in, mask), coarse.LAYERS).clamp(-1.0, 1.0)  # (B, 3, H, W)
        x_mid = x1 * mask + x_in * (1.0 - mask)
        h_in = stage_input(x_mid, mask)  # (B, 5, H, W)
        x_hallu = self._layers(refine, h_in, ("xconv1", "xconv2_downsample", "xconv3", "xconv4_downsample",
                                              "xconv5", "xconv6", "xconv7_atrous", "xconv8_atrous",
                                              "xconv9_atrous", "xconv10_atrous"))  # (B, 4c, H/4, W/4)
        pm = self._layers(refine, h_in, ("pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample",
                                         "pmconv5", "pmconv6"))  # (B, 4c, H/4, W/4)
        mask_s = F.interpolate(mask, size=pm.shape[-2:], mode="nearest")  # (B or 1, 1, H/4, W/4)
        pm, _ = attention_per_image_loop(pm, pm, mask_s, 3, 1, rate=2)  # (B, 4c, H/4, W/4)
        pm = self._layers(refine, pm, refine.AFTER_ATTENTION[:2])
        h = self._layers(refine, torch.cat([x_hallu, pm], dim=1), refine.AFTER_ATTENTION[2:])  # (B, 3, H, W)
        return x1, h.clamp(-1.0, 1.0), None


class PortCritic(torch.nn.Module):
    """The simplest port's critic: ``critic``'s layers and weights with symmetric padding (:func:`_port_conv`)."""

    def __init__(self, critic: Critic) -> None:
        super().__init__()
        self.critic = critic

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, 1)
        c = self.critic
        for conv in (c.conv1, c.conv2, c.conv3, c.conv4):
            x = F.leaky_relu(_port_conv(conv, x), 0.2)  # (B, C_k, S/2, S/2)
        return c.fc(flatten_nhwc(x))


# ----------------------------------------------------------------------------- generator and critic steps

class _FlopCount:
    """Count the FLOPs of the convs and matmuls (forward and backward) run inside the ``with`` block.

    A dispatch mode with ``torch.utils.flop_counter``'s formulas and without its module hooks
    (which do not allow the gradient penalty's ``autograd.grad``). ``gflop`` after the block.
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                formula = flop_registry.get(func._overloadpacket)
                if formula is not None:
                    counter.flops += formula(*args, **kwargs, out_val=out)
                return out

        self.flops = 0
        self._mode = Mode()

    @property
    def gflop(self) -> float:
        return self.flops / 1e9

    def __enter__(self) -> "_FlopCount":
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


STEP_PATHS = ("fast", "step-by-step", "port")  # the training path, the notebooks' path, the simplest port


def _step_models(path: str, cnum: int, critic_cnum: int, size: int, hole: int, device: torch.device,
                 seed: int) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """The generator and the two critics (seeded: every path gets the same weights) run by ``path``."""
    torch.manual_seed(seed)
    generator = Generator(cnum).to(device).train()
    local, global_ = LocalCritic(critic_cnum, size=hole).to(device), GlobalCritic(critic_cnum, size=size).to(device)
    if path == "fast":
        use_fast_path(generator, local, global_)
    if path == "port":
        return PortGenerator(generator), PortCritic(local), PortCritic(global_)
    return generator, local, global_


def bench_steps(cnum: int, critic_cnum: int, size: int, batch: int, device: torch.device, repeats: int,
                gflops_rate: float, which: Sequence[str] = ("generator", "critic"), hole: Optional[int] = None,
                label: str = "", seed: int = 0) -> list[Row]:
    """The two halves of a training iteration, each on :data:`STEP_PATHS`, timed alternately; ratios to the port.

    * generator step: forward on ``batch`` images of ``size`` with one ``hole`` box
      (default ``size // 2``), the release's losses (:func:`course_lib.losses.generator_loss`,
      critics frozen) and the backward to every generator weight;
    * critic step: :func:`course_lib.losses.critic_loss` (WGAN on ``batch`` real + ``batch``
      completed images, local critic on the ``hole`` box and global on the image, and both
      masked gradient penalties) and its backward (the generator's output is computed
      once, before the timing).

    ``fast`` is what the trainer runs (:func:`course_lib.ops.use_fast_path`), ``step-by-step``
    the notebooks' default path, ``port`` the per-image-loop port (:class:`PortGenerator`,
    :class:`PortCritic`). ``gflop``: the convs' and matmuls' work of one step, forward and
    backward, counted (:class:`_FlopCount`) on the fast path's first call (which is
    also the warm-up).
    """
    hole = size // 2 if hole is None else hole
    g = torch.Generator().manual_seed(seed)
    x = _images(batch, size, g).to(device)  # (B, 3, H, W)
    mask, boxes = random_box_mask(batch, size, size, hole, hole, max_delta=hole // 4, generator=g)
    mask, bbox = mask.to(device), boxes[0]  # (1, 1, H, W)
    models = {path: _step_models(path, cnum, critic_cnum, size, hole, device, seed) for path in STEP_PATHS}
    with torch.no_grad():
        x2 = models["step-by-step"][0](x * (1.0 - mask), mask)[1]  # (B, 3, H, W): the critics' fake images
    rows: list[Row] = []
    for kind in which:
        width = f"cnum {cnum}" if kind == "generator" else f"critic cnum {critic_cnum}"
        where = f"{size}x{size}, B={batch}, {width}" + (f", {label}" if label else "")
        def make(path: str) -> Callable[[], None]:
            gen, local, global_ = models[path]

            def generator_step() -> None:
                for p in list(local.parameters()) + list(global_.parameters()):
                    p.requires_grad_(False)
                x1, x2_, _ = gen(x * (1.0 - mask), mask)
                loss = generator_loss(x, x1, x2_, mask, bbox, local, global_)["total"]
                gen.zero_grad(set_to_none=True)
                loss.backward()

            def critic_step() -> None:
                for p in list(local.parameters()) + list(global_.parameters()):
                    p.requires_grad_(True)
                loss = critic_loss(x, x2, mask, bbox, local, global_, generator=seed)["total"]
                local.zero_grad(set_to_none=True), global_.zero_grad(set_to_none=True)
                loss.backward()
            return generator_step if kind == "generator" else critic_step

        fns = {path: make(path) for path in STEP_PATHS}
        with _FlopCount() as counter:
            fns["fast"]()  # the count, and the warm-up of the fast path
        gflop = counter.gflop
        for path in STEP_PATHS[1:]:
            fns[path]()  # warm-up
        peaks: dict[str, float] = {}
        cpu: dict[str, list[float]] = {}
        seconds = time_alternating(fns, repeats, 0, device, peaks, cpu)
        name = f"{kind} step {where}"
        what = ("fwd + losses + bwd" if kind == "generator" else
                f"WGAN + masked GP, local {hole} + global {size}, critic cnum {critic_cnum}")
        timed = {path: _timed_row(f"{name}: {path}", seconds[path], 1, "ms/step", peaks[path],
                                  f"{what}; median of {repeats}, alternating", gflop, gflops_rate, cpu[path])
                 for path in STEP_PATHS}
        rows += list(timed.values())
        for path in ("fast", "step-by-step"):
            cpu_ratio = timed["port"].cpu_ms / timed[path].cpu_ms if timed[path].cpu_ms else float("nan")
            rows.append(_ratio_row(f"{name}: port / {path}", timed["port"].median, timed[path].median,
                                   f">1: faster than the per-image-loop port; in process CPU time {cpu_ratio:.2f}x; "
                                   f"{path} / flop_ms = {timed[path].median / timed[path].flop_ms:.2f}"))
    return rows


@contextlib.contextmanager
def _per_image_attention_in_the_generator() -> Iterator[None]:
    """Within the block, the generator's dense attention runs once per image (the release's loop)."""
    original = generator_module.contextual_attention
    generator_module.contextual_attention = attention_per_image_loop
    try:
        yield
    finally:
        generator_module.contextual_attention = original


class TrainStep:
    """One release training iteration on fixed seeded batches: 5 critic updates, then 1 generator update.

    Mirrors :meth:`course_lib.train.Trainer.train_step` without data loading: each critic
    update takes a batch and a hole (one box per batch), runs the generator without
    gradients, and steps Adam on :func:`course_lib.losses.critic_loss`; the generator
    update runs the generator with gradients, freezes the critics and steps Adam on
    :func:`course_lib.losses.generator_loss`. Adam: lr 1e-4, betas (0.5, 0.9) (release).
    The 6 batches are made once, so the timing holds only the model's work. ``fast``: the
    trainer's fast path (:func:`course_lib.ops.use_fast_path`); off for the reference.
    """

    def __init__(self, cnum: int, critic_cnum: int, size: int, batch: int, device: torch.device,
                 seed: int = 0, fast: bool = True) -> None:
        torch.manual_seed(seed)
        self.device = device
        self.generator = Generator(cnum).to(device).train()
        self.local_critic = LocalCritic(critic_cnum, size=size // 2).to(device).train()
        self.global_critic = GlobalCritic(critic_cnum, size=size).to(device).train()
        if fast:  # what the trainer runs
            use_fast_path(self.generator, self.local_critic, self.global_critic)
        critic_params = list(self.local_critic.parameters()) + list(self.global_critic.parameters())
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=1e-4, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(critic_params, lr=1e-4, betas=(0.5, 0.9))
        self.weights = LossWeights()
        self.rng = torch.Generator().manual_seed(seed)
        self.batches = []
        for _ in range(CRITIC_STEPS + 1):
            x = _images(batch, size, self.rng).to(device)  # (B, 3, H, W)
            mask, bboxes = random_box_mask(batch, size, size, size // 2, size // 2,
                                           max_delta=size // 8, generator=self.rng)  # (1, 1, H, W)
            self.batches.append((x, mask.to(device), bboxes[0]))
        self.last: dict[str, float] = {}  # the latest losses, to flag non-finite values

    def _set_critics_trainable(self, flag: bool) -> None:
        for p in list(self.local_critic.parameters()) + list(self.global_critic.parameters()):
            p.requires_grad_(flag)

    def critic_update(self, index: int = 0) -> None:
        """One critic update on batch ``index`` (< 5): generator without gradients, Adam on ``critic_loss``."""
        x, mask, bbox = self.batches[index]
        with torch.no_grad():
            _, x2, _ = self.generator(x * (1.0 - mask), mask)  # (B, 3, H, W)
        d = critic_loss(x, x2, mask, bbox, self.local_critic, self.global_critic,
                        weights=self.weights, generator=self.rng)
        self.opt_d.zero_grad(set_to_none=True)
        d["total"].backward()
        self.opt_d.step()
        self.last["d_total"] = float(d["total"].detach())

    def generator_update(self) -> None:
        """One generator update (critics frozen): Adam on ``generator_loss``."""
        x, mask, bbox = self.batches[CRITIC_STEPS]
        self._set_critics_trainable(False)
        try:
            x1, x2, _ = self.generator(x * (1.0 - mask), mask)  # (B, 3, H, W) each
            g = generator_loss(x, x1, x2, mask, bbox, self.local_critic, self.global_critic,
                               weights=self.weights)
            self.opt_g.zero_grad(set_to_none=True)
            g["total"].backward()
            self.opt_g.step()
        finally:
            self._set_critics_trainable(True)
        self.last["g_total"] = float(g["total"].detach())

    def __call__(self) -> None:
        """The release's iteration: :meth:`critic_update` on batches 0..4, then :meth:`generator_update`."""
        for index in range(CRITIC_STEPS):
            self.critic_update(index)
        self.generator_update()


def bench_train_step(cnum: int, critic_cnum: int, size: int, batch: int, device: torch.device,
                     repeats: int, warmup: int, gflops_rate: float, seed: int = 0) -> list[Row]:
    """One whole training step (5 critic + 1 generator updates): current path, reference, ratio.

    Current: the trainer's fast path (:func:`course_lib.ops.use_fast_path`). Reference:
    :func:`course_lib.ops.use_reference_ops` and the attention once per image (the release's loop). Training always runs the dense attention (its losses read
    ``x_stage2`` outside the hole too). ``gflop`` counts the generator only: 8 dense forwards
    (5 in the critic updates, 1 + a backward of ~2 in the generator update); the critics'
    work is not counted.
    """
    current = TrainStep(cnum, critic_cnum, size, batch, device, seed, fast=True)
    reference = TrainStep(cnum, critic_cnum, size, batch, device, seed, fast=False)

    def run_reference() -> None:
        with use_reference_ops(), _per_image_attention_in_the_generator():
            reference()

    peaks: dict[str, float] = {}
    seconds = time_alternating({"current": current, "reference": run_reference}, repeats, warmup, device, peaks)
    work = 8.0 * dense_generator_gflop(cnum, size, batch)["total"]
    where = f"{size}x{size}, B={batch}"
    note = f"median of {repeats}, alternating; gflop: the generator's 8 forward-equivalents only"
    rows = [_timed_row(f"train step ({CRITIC_STEPS} critic + 1 generator), {where}", seconds["current"], 1,
                       "ms/step", peaks["current"], note, work, gflops_rate),
            _timed_row(f"train step reference, {where}", seconds["reference"], 1, "ms/step",
                       peaks["reference"], "use_reference_ops + per-image attention loop; " + note, work,
                       gflops_rate)]
    rows.append(_ratio_row(f"train step reference / current, {where}", rows[1].median, rows[0].median,
                           ">1: the current path is faster"))
    if not all(math.isfinite(v) for v in list(current.last.values()) + list(reference.last.values())):
        rows[0].note += "; WARNING: non-finite loss"
    return rows


# ----------------------------------------------------------------------------- the run

def _resolve_device(name: Optional[str]) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch.cuda.is_available() is False; "
                         "install a CUDA build of torch on a GPU machine, or use --device cpu")
    return torch.device(name)


def run_benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    """Run every benchmark for the parsed command line; return ``{"environment", "settings", "matmul_gflops", "rows"}``."""
    if args.threads is None:
        return _run_benchmarks(args)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run_benchmarks(args)
    finally:
        torch.set_num_threads(previous)


def _run_benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`run_benchmarks` at the current thread count."""
    device = _resolve_device(args.device)
    sizes = args.sizes or ([256, 512] if args.quick else [256, 512, 1024, 2048])
    for size in sizes + [args.train_size]:
        if size % 8 or size < 32:
            raise ValueError(f"sizes must be multiples of 8 and at least 32 (the critics need it), got {size}")
    for flag in ("repeats", "train_repeats", "step_repeats", "cnum", "critic_cnum", "attention_batch", "train_batch",
                 "attention_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.attention_size % 2:
        raise ValueError(f"--attention-size must be even (rate-2 matching), got {args.attention_size}")
    if args.warmup is not None and args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0 (0 = no untimed call), got {args.warmup}")
    repeats = args.repeats or (2 if args.quick else 3)
    train_repeats = args.train_repeats or 1
    warmup = 1 if args.warmup is None else args.warmup
    heavy_warmup = 0 if args.quick and args.warmup is None and device.type == "cpu" else warmup
    train = not (args.quick or args.no_train or args.only_generator or args.only_steps)
    steps = not (args.no_steps or args.only_generator)
    step_repeats = args.step_repeats or (2 if args.quick else 3)
    if args.step_size % 8 or args.step_size < 16:
        raise ValueError(f"--step-size must be a multiple of 8 and at least 16, got {args.step_size}")
    settings = {"sizes": sizes, "repeats": repeats, "train_repeats": train_repeats, "warmup": warmup,
                "heavy_warmup": heavy_warmup, "quick": bool(args.quick), "seed": args.seed,
                "reference_max": args.reference_max, "attention_batch": args.attention_batch,
                "attention_size": args.attention_size, "train_batch": args.train_batch,
                "train_size": args.train_size, "train": train, "only_generator": bool(args.only_generator),
                "steps": steps, "step_size": args.step_size, "step_repeats": step_repeats,
                "toy_config": args.toy_config}
    env = environment(device, args.cnum, args.critic_cnum, args.train_size)
    rate, sgemm_seconds = matmul_gflops(device)
    rows: list[Row] = [_timed_row("sgemm 2048x2048x2048 float32", sgemm_seconds, 1, "ms/call",
                                  peak_memory_mb(device), f"{rate:.1f} GFLOP/s: the rate of every flop_ms",
                                  2 * 2048**3 / 1e9, rate)]
    for size in ([] if args.only_steps else sizes):
        rows += bench_generator(args.cnum, size, device, repeats if size <= 512 else 1,
                                warmup if size <= 512 else 0, rate, size <= args.reference_max, args.seed)
    if not args.only_steps:
        rows.append(bench_inpaint_crop(args.cnum, max(sizes), device, repeats, warmup, args.seed))
    by_name = {r.name: r for r in rows}
    if "generator 512x512 fast" in by_name:
        for paper_kind in ("cpu", "cuda"):
            seconds, machine = PAPER_SECONDS_512[paper_kind]
            rows.append(_ratio_row(
                f"generator 512 fast / paper 512, {machine} {seconds:g} s", by_name["generator 512x512 fast"].median,
                1000.0 * seconds, "DIFFERENT machine and framework (authors' TF figure); "
                + ("same kind of device" if paper_kind == device.type else "other kind of device")))
    if not (args.only_generator or args.only_steps):
        rows += bench_attention(4 * args.cnum, args.attention_size, args.attention_batch, device,
                                1 if args.quick else repeats, heavy_warmup, rate, args.seed)
    if steps:
        rows += step_rows(args, device, step_repeats, rate)
    if train:
        rows += bench_train_step(args.cnum, args.critic_cnum, args.train_size, args.train_batch, device,
                                 train_repeats, heavy_warmup, rate, args.seed)
    return {"environment": env, "settings": settings, "matmul_gflops": rate, "rows": [asdict(r) for r in rows]}


def step_rows(args: argparse.Namespace, device: torch.device, repeats: int, rate: float) -> list[Row]:
    """The step rows of a run: the issue's sizes, the toy config's own, and on CUDA the release's (256 px, B=16).

    Generator step at ``--step-size`` (B=4) and twice it (B=2), critic step at twice it with
    the local box ``--step-size`` (B=8), all at ``--cnum`` / ``--critic-cnum``; then both steps
    at ``--toy-config``'s image size, hole, widths and batch; on CUDA both at ``places2``'s.
    """
    from course_lib.config import load_config

    s = args.step_size
    rows = bench_steps(args.cnum, args.critic_cnum, s, 4, device, repeats, rate, ("generator",), seed=args.seed)
    rows += bench_steps(args.cnum, args.critic_cnum, 2 * s, 2, device, repeats, rate, ("generator",),
                        seed=args.seed)
    rows += bench_steps(args.cnum, args.critic_cnum, 2 * s, 8, device, repeats, rate, ("critic",), hole=s,
                        seed=args.seed)
    configs = [] if args.toy_config == "none" else [args.toy_config]
    if device.type == "cuda":
        configs.append("places2")
    for name in configs:
        c = load_config(name)
        rows += bench_steps(c.cnum, c.critic_cnum, c.image_size, c.batch_size, device, repeats, rate,
                            hole=c.hole_size, label=f"config {name}", seed=args.seed)
    return rows


def _fmt(value: Optional[float], unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "x":
        return f"{value:.3g}x"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def format_table(result: dict[str, Any]) -> str:
    """The printed report: a header (environment, settings) and one aligned line per row."""
    env, settings = result["environment"], result["settings"]
    mem = ("CUDA max_memory_allocated of the row" if env["device"].startswith("cuda")
           else "largest resident set size sampled during the row (process total)")
    lines = [
        f"course_lib benchmark -- torch {env['torch']}, Python {env['python']}",
        f"device: {env['device']} ({env['device_name']}); CPU: {env['cpu_name']}, "
        f"{env['cpu_count']} cores, torch threads {env['torch_threads']} "
        f"(interop {env['torch_interop_threads']}, OMP_NUM_THREADS={env['omp_num_threads_env'] or 'unset'}); "
        f"load average at start {env['load_average_1min'] if env['load_average_1min'] is not None else 'n/a'}",
        f"parameters: generator(cnum={env['cnum']}) {env['params_generator']:,}; "
        f"local critic(cnum={env['critic_cnum']}) {env['params_local_critic']:,}; "
        f"global critic {env['params_global_critic']:,}",
        f"settings: sizes {settings['sizes']}, repeats {settings['repeats']} (1 above 512), warm-up "
        f"{settings['warmup']}, attention B={settings['attention_batch']} at {settings['attention_size']} px, "
        f"train step {'B=%d at %d px' % (settings['train_batch'], settings['train_size']) if settings['train'] else 'skipped'}, "
        f"seed {settings['seed']}",
        f"matmul rate (sgemm, this run): {result['matmul_gflops']:.1f} GFLOP/s; flop_ms = dense GFLOP at that rate",
        f"peak MB: {mem}; cpu ms: median process CPU time per item, all threads (less sensitive than the "
        "wall time to other processes' load)",
    ]
    load, cores = env["load_average_1min"], env["cpu_count"] or 1
    if load is not None and load > 0.5 * cores:
        lines.append(f"WARNING: load average {load:.1f} on {cores} cores before the run: other processes "
                     "compete for the CPU, so times are noisy (a multi-threaded run suffers most; "
                     "compare ratios, which were measured alternately)")
    lines.append("")
    header = ("measurement", "median", "best", "unit", "cpu ms", "GFLOP", "flop_ms", "peak MB", "note")
    table = [header] + [
        (r["name"], _fmt(r["median"], r["unit"]), _fmt(r["best"]), r["unit"], _fmt(r.get("cpu_ms")),
         _fmt(r.get("gflop")), _fmt(r.get("flop_ms")),
         "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}", r["note"])
        for r in result["rows"]
    ]
    widths = [max(len(row[i]) for row in table) for i in range(8)]
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:8], widths[1:])]
        lines.append("  ".join(cells + [row[8]]).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python scripts/benchmark.py",
        description="Time the DeepFill v1 generator (fast vs reference), contextual attention (fast vs the "
                    "per-image loop) and a training step; each with its dense work at the run's matmul rate.")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available, else cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="generator image sides (default 256 512 1024 2048; --quick: 256 512)")
    p.add_argument("--reference-max", type=int, default=512,
                   help="largest size at which the dense reference generator runs (default 512)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per row up to 512 px (default 3, --quick 2)")
    p.add_argument("--train-repeats", type=int, default=None, help="timed train steps (default 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before each row (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="256 and 512 only, 2 repeats, attention once, no train step (about 2 min on 2 CPU cores)")
    p.add_argument("--only-generator", action="store_true", help="only the generator rows")
    p.add_argument("--no-train", action="store_true", help="skip the training step")
    p.add_argument("--attention-batch", type=int, default=8, help="batch of the attention rows (default 8)")
    p.add_argument("--attention-size", type=int, default=64, help="attention feature side (default 64)")
    p.add_argument("--train-batch", type=int, default=16, help="batch of the train step (default 16)")
    p.add_argument("--train-size", type=int, default=256, help="image side of the train step (default 256)")
    p.add_argument("--no-steps", action="store_true", help="skip the generator-step and critic-step rows")
    p.add_argument("--only-steps", action="store_true", help="only the generator-step and critic-step rows")
    p.add_argument("--step-size", type=int, default=128,
                   help="generator step at this side (B=4) and twice it (B=2); critic step at twice it with a "
                        "local box of this side (B=8) (default 128)")
    p.add_argument("--step-repeats", type=int, default=None, help="timed calls per step row (default 3, --quick 2)")
    p.add_argument("--toy-config", default="toy_cpu",
                   help="config whose own sizes get a generator-step and a critic-step row ('none': skip)")
    p.add_argument("--cnum", type=int, default=32, help="generator width (release 32; small values for tests)")
    p.add_argument("--critic-cnum", type=int, default=64, help="critic width (release 64)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for the run (default: the machine's default, printed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the numbers as JSON")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """Command line entry: parse, run, print the table, optionally write JSON. Returns 0."""
    args = build_parser().parse_args(argv)
    try:
        result = run_benchmarks(args)
    except ValueError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    print(format_table(result), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")
    return 0
