"""The fast training path (course_lib.ops.use_fast_path) against the step-by-step path the notebooks teach.

Generator: x_stage1, x_stage2 over the whole image (the trainer's losses read both everywhere) and
the gradients of a loss on them w.r.t. every weight; critics: the WGAN-GP critic loss (masked
gradient penalties, their double backward) and its gradients. Equal to 1e-5 of the largest
value in float32 (another summation order), here and, in subprocesses, under AVX2 and the
default (no-SIMD) kernels; to 1e-12 in float64.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator
from course_lib.losses import critic_loss, gradient_penalty
from course_lib.masks import random_box_mask
from course_lib.ops import (nonzero_window, same_conv2d, same_conv2d_input_grad_window, same_conv2d_reach,
                            use_fast_path)

HERE = Path(__file__).resolve()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max(1e-30, max |b|)."""
    return float((a.detach() - b.detach()).abs().max()) / max(float(b.detach().abs().max()), 1e-30)


def _rel_all(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    """:func:`_rel` of all the gradients as one vector: relative to the largest gradient of the model.

    (A single bias gradient is a sum over B x H x W terms that mostly cancel; in float32 its
    rounding is ~1e-5 of its own size but ~1e-7 of the model's largest gradient; in float64
    the two paths agree to ~1e-14, so it is rounding.)
    """
    return _rel(torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b]))


def fast_path_differences(dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Largest relative differences, fast path vs step-by-step: generator outputs and gradients, critic loss and gradients."""
    torch.manual_seed(0)
    B, S = 3, 64
    gen = Generator(4).to(dtype).train()
    local, glob = LocalCritic(4, size=S // 2).to(dtype), GlobalCritic(4, size=S).to(dtype)
    fast = [copy.deepcopy(m) for m in (gen, local, glob)]
    use_fast_path(*fast)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(B, 3, S, S, generator=g) * 2 - 1).to(dtype)  # (B, 3, H, W)
    mask, boxes = random_box_mask(B, S, S, S // 2, S // 2, max_delta=S // 8, generator=g)
    mask = mask.to(dtype)
    weight = torch.randn(B, 3, S, S, generator=g).to(dtype)  # a loss that reads every pixel

    def generator_run(model: Generator) -> tuple[torch.Tensor, ...]:
        x1, x2, _ = model(x * (1 - mask), mask)
        loss = (x1 * weight).sum() + (x2 * weight).square().sum()
        return (x1, x2, *torch.autograd.grad(loss, list(model.parameters())))

    def critic_run(lc: LocalCritic, gc: GlobalCritic, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:
        total = critic_loss(x, x2, mask, boxes[0], lc, gc, generator=7)["total"]
        return (total, *torch.autograd.grad(total, list(lc.parameters()) + list(gc.parameters())))

    ref, got = generator_run(gen), generator_run(fast[0])
    out = {"x_stage1": _rel(got[0], ref[0]), "x_stage2": _rel(got[1], ref[1]),
           "generator_grads": _rel_all(got[2:], ref[2:])}
    x2 = ref[1].detach()
    ref, got = critic_run(local, glob, x2), critic_run(fast[1], fast[2], x2)
    out.update(critic_loss=_rel(got[0], ref[0]), critic_grads=_rel_all(got[1:], ref[1:]))
    return out


def test_fast_path_equals_the_step_by_step_path():
    diffs = fast_path_differences()
    assert all(v <= 1e-5 for v in diffs.values()), diffs


@pytest.mark.slow
def test_fast_path_is_exact_in_float64():
    diffs = fast_path_differences(torch.float64)
    assert all(v <= 1e-12 for v in diffs.values()), diffs


@pytest.mark.slow
@pytest.mark.parametrize("capability, isa", [("avx2", "AVX2"), ("default", "SSE41")])
def test_fast_path_equals_the_step_by_step_path_under_other_kernels(capability, isa):
    """The same check in a fresh process with ATen's AVX2 / no-SIMD kernels and oneDNN limited to that ISA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEN_", "ONEDNN_", "OMP_", "MKL_"))}
    env.update(ATEN_CPU_CAPABILITY=capability, ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    code = ("import json, runpy, sys; m = runpy.run_path(sys.argv[1]); "
            "print(json.dumps(m['fast_path_differences']()))")
    proc = subprocess.run([sys.executable, "-c", code, str(HERE)], env=env, cwd=HERE.parent, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diffs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(diffs) == {"x_stage1", "x_stage2", "generator_grads", "critic_loss", "critic_grads"}
    assert all(v <= 1e-5 for v in diffs.values()), (capability, diffs)


# ----------------------------------------------------------------------------- the gradient penalty's window

def _reach_by_loop(start: int, stop: int, size: int, kernel: int, stride: int, dilation: int) -> list[int]:
    """The output rows whose TF 'SAME' windows read an input row in [start, stop), by listing every tap."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    before = total // 2
    return [i for i in range(-(-size // stride))
            if any(start <= stride * i - before + t * dilation < stop for t in range(kernel))]


def test_same_conv2d_reach_by_hand_and_by_loop():
    # 8 rows, 5x5 stride 2: TF pads (1, 2); output row i reads input rows 2i - 1 .. 2i + 3
    assert same_conv2d_reach(3, 5, 8, 5, 2) == (0, 3)
    assert same_conv2d_reach(7, 8, 8, 5, 2) == (2, 4)
    assert same_conv2d_reach(0, 0, 8, 5, 2) == (0, 0)
    for size, kernel, stride, dilation in [(8, 5, 2, 1), (9, 3, 2, 1), (16, 3, 1, 4), (7, 5, 2, 1), (12, 3, 1, 1)]:
        for start in range(size):
            for stop in range(start + 1, size + 1):
                rows = _reach_by_loop(start, stop, size, kernel, stride, dilation)
                i0, i1 = same_conv2d_reach(start, stop, size, kernel, stride, dilation)
                if dilation == 1:  # the smallest run
                    assert (i0, i1) == (rows[0], rows[-1] + 1)
                else:  # a run holding them all
                    assert i0 <= rows[0] and rows[-1] < i1 <= -(-size // stride)
    with pytest.raises(ValueError, match="start <= stop"):
        same_conv2d_reach(5, 3, 8, 5, 2)


def test_nonzero_window_by_hand():
    mask = torch.zeros(2, 1, 6, 7)
    assert nonzero_window(mask) is None  # no hole: nothing to restrict to
    mask[0, 0, 1, 2] = 1
    mask[1, 0, 3, 5] = 1
    assert nonzero_window(mask) == ((1, 4), (2, 6))  # the union over the batch
    assert nonzero_window(torch.ones(1, 1, 6, 7)) is None  # the whole map: nothing to crop
    with pytest.raises(ValueError, match="H, W"):
        nonzero_window(torch.ones(5))


@pytest.mark.parametrize("size, kernel, stride, dilation", [((10, 9), 5, 2, 1), ((8, 8), 3, 2, 1), ((9, 7), 3, 1, 2)])
def test_input_grad_window_equals_a_crop_of_autograd(size, kernel, stride, dilation):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, *size, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, kernel, kernel, generator=g, dtype=torch.float64)
    y = same_conv2d(x, w, None, stride, dilation)  # the step-by-step conv (pad a copy, then conv)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    (full,) = torch.autograd.grad(y, x, gy)  # (2, 3, H, W)
    for window in [((2, 5), (1, 4)), ((0, size[0]), (3, size[1])), ((size[0] - 1, size[0]), (0, 1))]:
        reach = [same_conv2d_reach(*window[a], size[a], kernel, stride, dilation) for a in (0, 1)]
        part = gy[..., reach[0][0]:reach[0][1], reach[1][0]:reach[1][1]]
        got = same_conv2d_input_grad_window(part, w, (reach[0][0], reach[1][0]), window, size, stride, dilation)
        expected = full[..., window[0][0]:window[0][1], window[1][0]:window[1][1]]
        assert got.shape == expected.shape
        assert _rel(got, expected) <= 1e-12


@pytest.mark.parametrize("cls, size", [(LocalCritic, 32), (GlobalCritic, 40)])
def test_critic_window_gradient_equals_a_crop_of_autograd_and_trains_alike(cls, size):
    """The window's input gradient and a penalty-like loss's weight gradients against autograd's double backward."""
    torch.manual_seed(4)
    critic = cls(4, size=size).double()
    x = torch.randn(3, 3, size, size, dtype=torch.float64, requires_grad=True)
    window = ((5, 19), (11, 30))
    (full,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)  # (3, 3, S, S)
    expected = full[..., 5:19, 11:30]
    got = critic.input_gradient(x.detach(), window)  # (3, 3, 14, 19)
    assert got.shape == expected.shape and _rel(got, expected) <= 1e-12
    params = [p for name, p in critic.named_parameters() if name.endswith("weight")]  # biases: no part in it
    ref = torch.autograd.grad((expected ** 2).sum(), params)
    new = torch.autograd.grad((got ** 2).sum(), params)
    assert _rel_all(new, ref) <= 1e-12
    with pytest.raises(ValueError, match="empty"):
        critic.input_gradient(x.detach(), ((4, 4), (0, 3)))


def test_gradient_penalty_on_the_window_equals_the_full_image():
    """The fast path's penalty (the hole's box only) against the step-by-step one, for per-sample and shared masks."""
    torch.manual_seed(5)
    critic = GlobalCritic(4, size=32)
    fast = copy.deepcopy(critic)
    use_fast_path(fast)
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    for mask in (random_box_mask(1, 32, 32, 12, 12, max_delta=4, generator=torch.Generator().manual_seed(6))[0], torch.zeros(2, 1, 32, 32), torch.ones(1, 1, 32, 32)):
        if not mask.any() and mask.shape[0] == 2:
            mask[0, :, 3:9, 20:30] = 1  # one sample's hole only
        alpha = torch.tensor([0.3, 0.8]).view(2, 1, 1, 1)
        ref = gradient_penalty(critic, real, fake, mask, alpha=alpha)
        got = gradient_penalty(fast, real, fake, mask, alpha=alpha)
        grads = [torch.autograd.grad(p, [w for n, w in m.named_parameters() if n.endswith("weight")])
                 for p, m in ((ref, critic), (got, fast))]  # biases: no part in a gradient penalty
        assert _rel(got, ref) <= 1e-5 and _rel_all(grads[1], grads[0]) <= 1e-5
