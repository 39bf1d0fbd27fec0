"""Speed and memory benchmarks: numbers printed by a script, never thresholds in tests.

Run ``python scripts/benchmark.py [--device cpu|cuda] [--size 256] [--batch 1]
[--repeats N] [--quick] [--json out.json]``. It prints one table:

* the generator's forward pass (``Generator(cnum=32)``, ``torch.inference_mode``) at
  ``size`` and ``2 * size`` (256 and 512 by default; ``--quick`` measures ``size`` only),
  as the median milliseconds per image over ``repeats`` timed calls after warm-up;
* with ``--vs-reference``: the same forward pass with the fast ops of :mod:`course_lib.ops`
  (view-based resizes) and with the step-by-step reference ops
  (:func:`course_lib.ops.use_reference_ops`: ``index_select`` resizes), the two timed
  alternately call by call so that other jobs' load hits both alike, their ratio, and whether the outputs are identical (``torch.equal``);
* the same number divided by the paper's runtime figures (0.2 s per 512x512 image
  on a GTX 1080 Ti, 1.5 s on an Intel Xeon E5-2697 v3 CPU). Those were measured by the
  authors on THEIR machines with TensorFlow: the ratio says how this machine and this code
  compare, not that one implementation is faster than the other;
* :func:`course_lib.attention.contextual_attention` at the release's feature size
  (``4 * cnum`` = 128 channels, ``size / 4`` = 64x64 features for a 256 image, a hole over
  the middle half) for batch 1 and 4: the batched implementation against a baseline that
  calls the same function once per image in a Python loop, forward and forward+backward,
  with the loop/batched ratio (the speed-up of batching), measured in the same run;
* training as the release does it: one critic update (:func:`course_lib.losses.critic_loss`,
  both critics, gradient penalty), one generator update
  (:func:`course_lib.losses.generator_loss`), and one whole step of 5 critic updates + 1
  generator update (Adam lr 1e-4, betas (0.5, 0.9)) at ``--batch`` (default 1). ``--quick``
  does not time the whole step (about 10 s on one CPU core at 256x256) but adds up its parts.

Every timed row also reports peak memory. On CUDA it is ``torch.cuda.max_memory_allocated``
since the row started (tensors allocated by torch: weights, activations, workspaces;
not the CUDA context). On the CPU there is no allocator counter, so it is the process's
peak resident set size from ``resource.getrusage`` -- coarse: it never goes down, so each
row shows the peak of the whole process so far, Python and torch included.

Timing: ``time.perf_counter`` around each call, with ``torch.cuda.synchronize`` before and
after on CUDA (kernels run asynchronously; without it one would time the launch only).
Inputs are seeded. ``torch.set_num_threads`` is left at the machine's default and printed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from course_lib.attention import contextual_attention
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator
from course_lib.losses import LossWeights, critic_loss, generator_loss
from course_lib.masks import random_box_mask
from course_lib.ops import use_reference_ops

__all__ = [
    "PAPER_SECONDS_512",
    "Row",
    "synchronize",
    "time_calls",
    "reset_peak_memory",
    "peak_memory_mb",
    "environment",
    "count_parameters",
    "bench_generator",
    "bench_generator_vs_reference",
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
    peak memory of the row (see the module docstring; None for ratios).
    """

    name: str
    median: float
    unit: str
    best: Optional[float] = None
    peak_mb: Optional[float] = None
    note: str = ""
    samples: list[float] = field(default_factory=list)


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
               note: str = "") -> Row:
    """Seconds per call -> a row in milliseconds per ``per`` items (images or calls)."""
    ms = [1000.0 * s / per for s in seconds]
    return Row(name, statistics.median(ms), unit, min(ms), peak_mb, note, ms)


def _ratio_row(name: str, numerator: float, denominator: float, note: str) -> Row:
    return Row(name, numerator / denominator, "x", None, None, note)


def _box_mask(size: int) -> torch.Tensor:
    """A (1, 1, size, size) mask with the middle half a hole (a 128 box on a 256 image)."""
    mask = torch.zeros(1, 1, size, size)  # (1, 1, H, W)
    mask[..., size // 4: size // 4 + size // 2, size // 4: size // 4 + size // 2] = 1.0
    return mask


def _images(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Seeded stand-in images in [-1, 1] (B, 3, size, size): the run time does not depend on content."""
    return torch.rand(batch, 3, size, size, generator=generator) * 2.0 - 1.0  # (B, 3, H, W)


# ----------------------------------------------------------------------------- benchmarks

def bench_generator(generator: Generator, size: int, batch: int, device: torch.device,
                    repeats: int, warmup: int, seed: int = 0) -> Row:
    """Median ms per image of ``generator(x, mask)`` in inference mode at ``size`` x ``size``."""
    g = torch.Generator().manual_seed(seed)
    x = _images(batch, size, g).to(device)  # (B, 3, H, W)
    mask = _box_mask(size).to(device)  # (1, 1, H, W), shared as in the release
    generator.eval()

    def forward() -> None:
        with torch.inference_mode():
            generator(x, mask)

    reset_peak_memory(device)
    seconds = time_calls(forward, repeats, warmup, device)
    return _timed_row(f"generator {size}x{size} inference, B={batch}", seconds, batch, "ms/image",
                      peak_memory_mb(device), f"cnum={generator.cnum}, median of {repeats}")


def bench_generator_vs_reference(generator: Generator, size: int, batch: int, device: torch.device,
                                 repeats: int, warmup: int, seed: int = 0) -> list[Row]:
    """Fast ops vs the reference ops in one run: 3 rows (reference, fast, reference / fast).

    Each repeat times one call with :func:`course_lib.ops.use_reference_ops` and one without,
    alternating (which goes first alternates too), so a load change on a shared machine
    hits both; medians over ``repeats``. The ratio row's note says whether the two outputs
    are identical (``torch.equal`` on x_stage1, x_stage2 and flow).
    """
    g = torch.Generator().manual_seed(seed)
    x = _images(batch, size, g).to(device)  # (B, 3, H, W)
    mask = _box_mask(size).to(device)  # (1, 1, H, W)
    generator.eval()

    def run(reference: bool) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), use_reference_ops(reference):
            return generator(x, mask)

    same = all(torch.equal(a, b) for a, b in zip(run(False), run(True)))
    for _ in range(warmup):
        run(True)
        run(False)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats):
        for reference in ((True, False) if i % 2 == 0 else (False, True)):
            synchronize(device)
            start = time.perf_counter()
            run(reference)
            synchronize(device)
            seconds[reference].append(time.perf_counter() - start)
    peak = peak_memory_mb(device)
    note = f"cnum={generator.cnum}, median of {repeats}, timed alternately"
    ref_row = _timed_row(f"generator {size}x{size} inference, reference ops, B={batch}", seconds[True],
                         batch, "ms/image", peak, note + "; index_select resizes")
    fast_row = _timed_row(f"generator {size}x{size} inference, fast ops, B={batch}", seconds[False],
                          batch, "ms/image", peak, note)
    ratio = _ratio_row(f"generator {size}x{size} reference / fast ops", ref_row.median, fast_row.median,
                       ">1: the fast ops are faster; outputs torch.equal: " + ("yes" if same else "NO"))
    return [ref_row, fast_row, ratio]


def attention_per_image_loop(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor]
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: :func:`contextual_attention` once per image in a Python loop, outputs concatenated.

    This is how the release runs the layer (``tf.split`` over the batch, one image at a
    time). ``mask`` is shared ``(1, 1, H, W)`` or per image ``(B, 1, H, W)``.
    """
    ys, flows = [], []
    for i in range(f.shape[0]):
        m = None if mask is None else mask[i: i + 1] if mask.shape[0] > 1 else mask
        y, flow = contextual_attention(f[i: i + 1], b[i: i + 1], m)  # (1, C, H, W), (1, 3, H, W)
        ys.append(y)
        flows.append(flow)
    return torch.cat(ys, dim=0), torch.cat(flows, dim=0)  # (B, C, H, W), (B, 3, H, W)


def bench_attention(channels: int, feature_size: int, batch: int, device: torch.device,
                    repeats: int, warmup: int, seed: int = 0) -> list[Row]:
    """Batched contextual attention vs the per-image loop, forward and forward+backward.

    Features ``f = b`` (B, channels, feature_size, feature_size), as in the generator, with
    the middle half masked. Returns 6 rows: batched, loop and loop/batched, for the
    forward (inference mode) and for forward + backward of ``y.sum()``.
    """
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(batch, channels, feature_size, feature_size, generator=g).to(device)  # (B, C, H, W)
    mask = _box_mask(feature_size).to(device)  # (1, 1, H, W)
    where = f"{channels} ch, {feature_size}x{feature_size}"

    def batched_forward() -> None:
        with torch.inference_mode():
            contextual_attention(feat, feat, mask)

    def loop_forward() -> None:
        with torch.inference_mode():
            attention_per_image_loop(feat, feat, mask)

    def backward_of(run: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
        def step() -> None:
            leaf = feat.detach().requires_grad_(True)  # (B, C, H, W)
            y, _ = run(leaf, leaf, mask)
            y.sum().backward()
        return step

    rows = []
    for label, batched, loop in (
        ("fwd", batched_forward, loop_forward),
        ("fwd+bwd", backward_of(contextual_attention), backward_of(attention_per_image_loop)),
    ):
        timed = []
        for impl, fn in (("batched", batched), ("per-image loop", loop)):
            reset_peak_memory(device)
            seconds = time_calls(fn, repeats, warmup, device)
            timed.append(_timed_row(f"attention {label} {impl}, B={batch}", seconds, 1, "ms/call",
                                    peak_memory_mb(device), where))
        rows += timed
        rows.append(_ratio_row(f"attention {label} loop / batched, B={batch}", timed[1].median,
                               timed[0].median, "speed-up of batching (>1: batched is faster)"))
    return rows


class TrainStep:
    """One release training iteration on fixed seeded batches: 5 critic updates, then 1 generator update.

    Mirrors :meth:`course_lib.train.Trainer.train_step` without data loading: each critic
    update takes a batch and a hole (one box per batch), runs the generator without
    gradients, and steps Adam on :func:`course_lib.losses.critic_loss`; the generator
    update runs the generator with gradients, freezes the critics and steps Adam on
    :func:`course_lib.losses.generator_loss`. Adam: lr 1e-4, betas (0.5, 0.9) (release).
    The 6 batches are made once, so the timing holds only the model's work.
    """

    def __init__(self, cnum: int, critic_cnum: int, size: int, batch: int, device: torch.device,
                 seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.device = device
        self.generator = Generator(cnum).to(device).train()
        self.local_critic = LocalCritic(critic_cnum, size=size // 2).to(device).train()
        self.global_critic = GlobalCritic(critic_cnum, size=size).to(device).train()
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
                     repeats: int, warmup: int, seed: int = 0, whole_step: bool = True) -> list[Row]:
    """Rows for training: one critic update, one generator update, and the whole step.

    The whole step (5 critic + 1 generator updates) is timed directly when ``whole_step``;
    otherwise (``--quick``) it is computed as ``5 * critic + generator`` from the medians of
    the two update rows, and says so in its note.
    """
    step = TrainStep(cnum, critic_cnum, size, batch, device, seed)
    where = f"{size}x{size}, B={batch}"
    rows = []
    for name, fn in (("critic update", step.critic_update), ("generator update", step.generator_update)):
        reset_peak_memory(device)
        seconds = time_calls(fn, repeats, warmup, device)
        rows.append(_timed_row(f"train {name}, {where}", seconds, 1, "ms/update",
                               peak_memory_mb(device), f"median of {repeats}"))
    name = f"train step ({CRITIC_STEPS} critic + 1 generator), {where}"
    if whole_step:
        reset_peak_memory(device)
        seconds = time_calls(step, repeats, warmup, device)
        rows.append(_timed_row(name, seconds, 1, "ms/step", peak_memory_mb(device),
                               f"timed as a whole, median of {repeats}"))
    else:
        estimate = CRITIC_STEPS * rows[0].median + rows[1].median
        rows.append(Row(name, estimate, "ms/step", None, max(r.peak_mb for r in rows),
                        f"--quick: {CRITIC_STEPS} x critic + generator rows above, not timed as a whole"))
    if not all(math.isfinite(v) for v in step.last.values()):
        rows[-1].note += "; WARNING: non-finite loss"
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
    """Run every benchmark for the parsed command line; return ``{"environment", "settings", "rows"}``."""
    device = _resolve_device(args.device)
    if args.size % 8 or args.size < 32:
        raise ValueError(f"--size must be a multiple of 8 and at least 32 (the hole box is size/2 and the "
                         f"critics need it), got {args.size}")
    for flag in ("batch", "repeats", "train_repeats", "cnum", "critic_cnum"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0 (0 = no untimed call), got {args.warmup}")
    repeats = args.repeats or (2 if args.quick else 5)
    train_repeats = args.train_repeats or (1 if args.quick else 3)
    warmup = 1 if args.warmup is None else args.warmup
    # --quick: the heavy rows (attention B=4, training) run once, on the CPU without warm-up
    # (the rows before them have warmed the same kernels; a CUDA run keeps its warm-up, as
    # the first backward there pays one-off library initialisation), and the whole train
    # step is not timed.
    heavy_warmup = 0 if args.quick and args.warmup is None and device.type == "cpu" else warmup
    sizes = [args.size] if args.quick else [args.size, 2 * args.size]
    settings = {"sizes": sizes, "batch": args.batch, "repeats": repeats, "train_repeats": train_repeats,
                "warmup": warmup, "heavy_warmup": heavy_warmup, "quick": bool(args.quick), "seed": args.seed,
                "vs_reference": bool(args.vs_reference), "only_generator": bool(args.only_generator)}
    env = environment(device, args.cnum, args.critic_cnum, args.size)
    rows: list[Row] = []

    torch.manual_seed(args.seed)
    generator = Generator(args.cnum).to(device).eval()
    for size in sizes:
        rows.append(bench_generator(generator, size, args.batch, device, repeats, warmup, args.seed))
    largest = rows[-1]
    kind = device.type
    for paper_kind in (kind, "cpu" if kind == "cuda" else "cuda"):
        seconds, machine = PAPER_SECONDS_512[paper_kind]
        rows.append(_ratio_row(
            f"generator {sizes[-1]} / paper 512, {machine} {seconds:g} s",
            largest.median, 1000.0 * seconds,
            "DIFFERENT machine and framework (authors' TF figure); "
            + ("same kind of device" if paper_kind == kind else "other kind of device")
            + ("" if sizes[-1] == 512 else f"; NOT like for like: ours at {sizes[-1]}, paper at 512")))
    if args.vs_reference:
        for size in sizes:
            rows += bench_generator_vs_reference(generator, size, args.batch, device, repeats, warmup,
                                                 args.seed)
    del generator
    if args.only_generator:
        return {"environment": env, "settings": settings, "rows": [asdict(r) for r in rows]}

    for batch in (1, 4):
        heavy = batch > 1 and args.quick
        rows += bench_attention(4 * args.cnum, args.size // 4, batch, device, 1 if heavy else repeats,
                                heavy_warmup if heavy else warmup, args.seed)
    rows += bench_train_step(args.cnum, args.critic_cnum, args.size, args.batch, device,
                             train_repeats, heavy_warmup, args.seed, whole_step=not args.quick)
    return {"environment": env, "settings": settings, "rows": [asdict(r) for r in rows]}


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
           else "process peak RSS so far (coarse, never decreases)")
    lines = [
        f"course_lib benchmark -- torch {env['torch']}, Python {env['python']}",
        f"device: {env['device']} ({env['device_name']}); CPU: {env['cpu_name']}, "
        f"{env['cpu_count']} cores, torch threads {env['torch_threads']} "
        f"(interop {env['torch_interop_threads']}, OMP_NUM_THREADS={env['omp_num_threads_env'] or 'unset'}); "
        f"load average at start {env['load_average_1min'] if env['load_average_1min'] is not None else 'n/a'}",
        f"parameters: generator(cnum={env['cnum']}) {env['params_generator']:,}; "
        f"local critic(cnum={env['critic_cnum']}) {env['params_local_critic']:,}; "
        f"global critic {env['params_global_critic']:,}",
        f"settings: sizes {settings['sizes']}, batch {settings['batch']}, repeats {settings['repeats']} "
        f"(train step {settings['train_repeats']}), warm-up {settings['warmup']}"
        f"{' (heavy rows: 0, --quick)' if settings['heavy_warmup'] != settings['warmup'] else ''}, "
        f"seed {settings['seed']}",
        f"peak MB: {mem}",
    ]
    load, cores = env["load_average_1min"], env["cpu_count"] or 1
    if load is not None and load > 0.5 * cores:
        lines.append(f"WARNING: load average {load:.1f} on {cores} cores before the run: other processes "
                     "compete for the CPU, so times are noisy (a multi-threaded run suffers most; "
                     "compare with OMP_NUM_THREADS=1, or use a quiet machine)")
    lines.append("")
    header = ("measurement", "median", "best", "unit", "peak MB", "note")
    table = [header] + [
        (r["name"], _fmt(r["median"], r["unit"]), _fmt(r["best"]), r["unit"],
         "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}", r["note"])
        for r in result["rows"]
    ]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:5], widths[1:])]
        lines.append("  ".join(cells + [row[5]]).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python scripts/benchmark.py",
        description="Time the DeepFill v1 generator, contextual attention (batched vs per-image loop) "
                    "and one training step; print a table with ratios measured in the same run.")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available, else cpu")
    p.add_argument("--size", type=int, default=256, help="image side (also 2*size unless --quick); default 256")
    p.add_argument("--batch", type=int, default=1, help="batch of the generator rows and the train step")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 5, --quick 2)")
    p.add_argument("--train-repeats", type=int, default=None, help="timed train steps (default 3, --quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before each row (default 1)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, `size` only (under a minute on 2 CPU cores)")
    p.add_argument("--vs-reference", action="store_true",
                   help="also time the generator with the step-by-step reference ops, alternating with "
                        "the fast ops, and print their ratio")
    p.add_argument("--only-generator", action="store_true",
                   help="only the generator rows (skip attention and training)")
    p.add_argument("--cnum", type=int, default=32, help="generator width (release 32; small values for tests)")
    p.add_argument("--critic-cnum", type=int, default=64, help="critic width (release 64)")
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
