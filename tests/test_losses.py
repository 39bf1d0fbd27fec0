"""Tests for course_lib.losses against hand-worked values, loops and finite differences."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from course_lib.losses import (
    LossWeights,
    ae_loss,
    critic_loss,
    discounted_l1_loss,
    generator_loss,
    gradient_penalty,
    spatial_discount,
    wgan_critic_loss,
    wgan_generator_loss,
)


def _f(t) -> float:
    """A Python float from a number or a (possibly grad-tracking) scalar tensor."""
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def _discount_loop(height: int, width: int, gamma: float) -> torch.Tensor:
    """The release's double loop, written out."""
    rows = []
    for i in range(height):
        row = []
        for j in range(width):
            row.append(max(gamma ** min(i, height - i), gamma ** min(j, width - j)))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- spatial discount

def test_spatial_discount_hand_worked_4x4():
    # gamma 0.5: row factors gamma**min(i, 4 - i) = [1, .5, .25, .5], same for columns
    expected = torch.tensor([
        [1.0, 1.0, 1.0, 1.0],
        [1.0, 0.5, 0.5, 0.5],
        [1.0, 0.5, 0.25, 0.5],
        [1.0, 0.5, 0.5, 0.5],
    ])
    assert torch.equal(spatial_discount(4, 4, 0.5), expected)


def test_spatial_discount_hand_worked_5x3():
    # rows gamma**[0, 1, 2, 2, 1] = [1, .5, .25, .25, .5]; columns gamma**[0, 1, 1] = [1, .5, .5]
    expected = torch.tensor([
        [1.0, 1.0, 1.0],
        [1.0, 0.5, 0.5],
        [1.0, 0.5, 0.5],
        [1.0, 0.5, 0.5],
        [1.0, 0.5, 0.5],
    ])
    assert torch.equal(spatial_discount(5, 3, 0.5), expected)


@pytest.mark.parametrize("size,gamma", [((128, 128), 0.9), ((7, 12), 0.99), ((1, 1), 0.9), ((9, 2), 0.3)])
def test_spatial_discount_matches_double_loop(size, gamma):
    got = spatial_discount(*size, gamma=gamma, dtype=torch.float64)
    assert got.shape == size
    torch.testing.assert_close(got, _discount_loop(*size, gamma), rtol=1e-12, atol=0)


def test_spatial_discount_release_centre_value_and_gamma_one():
    w = spatial_discount(128, 128, 0.9)
    assert w.dtype == torch.float32
    assert math.isclose(_f(w[64, 64]), 0.9 ** 64, rel_tol=1e-5)  # ~1.2e-3
    assert _f(w[0, 64]) == 1.0 and _f(w[64, 0]) == 1.0
    assert torch.equal(spatial_discount(6, 5, 1.0), torch.ones(6, 5))


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.01])
def test_spatial_discount_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        spatial_discount(4, 4, gamma)


# ---------------------------------------------------------------- L1 losses

def test_discounted_l1_loss_hand_worked():
    gt = torch.zeros(1, 1, 2, 2)
    x1 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    x2 = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    w = torch.tensor([[1.0, 0.5], [0.25, 1.0]])
    # 1.2 * mean(1, 1, .75, 4) + mean(0, .5, 0, 1) = 1.2 * 1.6875 + 0.375
    assert math.isclose(_f(discounted_l1_loss(gt, x1, x2, w)), 2.4, rel_tol=1e-6)
    assert math.isclose(_f(discounted_l1_loss(gt, x1, None, w)), 2.025, rel_tol=1e-6)
    assert math.isclose(_f(discounted_l1_loss(gt, x1, x2, w, coarse_alpha=1.0)), 2.0625, rel_tol=1e-6)


def test_discounted_l1_loss_shape_mismatch():
    with pytest.raises(ValueError, match="local_patch"):
        discounted_l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5), None, torch.ones(4, 4))


def test_ae_loss_hand_worked():
    x = torch.zeros(1, 2, 1, 2)
    x1 = torch.full((1, 2, 1, 2), 2.0)
    x2 = torch.tensor([[[[5.0, 3.0]], [[7.0, 1.0]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])  # left pixel hole, right pixel known
    # numerators: 1.2 * mean(0, 2, 0, 2) + mean(0, 3, 0, 1) = 1.2 + 1.0; mean(1 - mask) = 0.5
    assert math.isclose(_f(ae_loss(x, x1, x2, mask)), 4.4, rel_tol=1e-6)
    assert math.isclose(_f(ae_loss(x, x1, None, mask)), 2.4, rel_tol=1e-6)


def test_ae_loss_shared_mask_equals_expanded_mask():
    g = torch.Generator().manual_seed(0)
    x, x1, x2 = (torch.randn(3, 3, 6, 5, generator=g) for _ in range(3))
    mask = (torch.rand(1, 1, 6, 5, generator=g) > 0.6).float()
    shared = ae_loss(x, x1, x2, mask)
    expanded = ae_loss(x, x1, x2, mask.expand(3, 1, 6, 5))
    torch.testing.assert_close(shared, expanded)
    # per known pixel and channel: (1.2 * |x - x1| + |x - x2|) averaged over the known entries
    known = (mask.expand(3, 3, 6, 5) == 0)
    per_pixel = 1.2 * (x - x1).abs() + (x - x2).abs()
    torch.testing.assert_close(shared, per_pixel[known].mean())


def test_ae_loss_bad_mask():
    with pytest.raises(ValueError, match="mask"):
        ae_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), None, torch.zeros(1, 3, 4, 4))


# ---------------------------------------------------------------- WGAN

def test_wgan_losses_hand_worked():
    pos = torch.tensor([[1.0], [2.0]])
    neg = torch.tensor([[3.0], [5.0]])
    assert _f(wgan_critic_loss(pos, neg)) == 2.5
    assert _f(wgan_generator_loss(neg)) == -4.0


class LinearCritic(nn.Module):
    """score(z) = sum(w * z) + b per sample: its input gradient is w everywhere."""

    def __init__(self, shape: tuple[int, int, int], seed: int, dtype=torch.float32) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(*shape, generator=g, dtype=dtype) * 0.3)
        self.b = nn.Parameter(torch.tensor(0.1, dtype=dtype))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z * self.w).sum(dim=(1, 2, 3)).unsqueeze(1) + self.b  # (B, 1)


def _masked_norm_loop(w: torch.Tensor, mask_hw: torch.Tensor) -> float:
    total = 0.0
    C, H, W = w.shape
    for c in range(C):
        for i in range(H):
            for j in range(W):
                total += _f(w[c, i, j]) ** 2 * _f(mask_hw[i, j])
    return math.sqrt(total)


def test_gradient_penalty_linear_critic_value():
    critic = LinearCritic((2, 3, 4), seed=0, dtype=torch.float64)
    real = torch.randn(3, 2, 3, 4, dtype=torch.float64)
    fake = torch.randn(3, 2, 3, 4, dtype=torch.float64)
    mask = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    mask[..., 1:3, 0:2] = 1
    slope = _masked_norm_loop(critic.w.detach(), mask[0, 0])
    got = gradient_penalty(critic, real, fake, mask, generator=0)
    assert math.isclose(_f(got), (slope - 1.0) ** 2, rel_tol=1e-9)
    no_mask = _masked_norm_loop(critic.w.detach(), torch.ones(3, 4))
    assert math.isclose(_f(gradient_penalty(critic, real, fake, None, generator=0)),
                        (no_mask - 1.0) ** 2, rel_tol=1e-9)
    assert math.isclose(_f(gradient_penalty(critic, real, fake, mask, norm=0.5, generator=0)),
                        (slope - 0.5) ** 2, rel_tol=1e-9)


def test_gradient_penalty_weight_gradient_matches_finite_differences():
    critic = LinearCritic((1, 3, 3), seed=1, dtype=torch.float64)
    real = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    fake = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    mask = torch.tensor([[[[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]], dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake, mask, generator=3)
    (grad_w,) = torch.autograd.grad(penalty, critic.w)  # needs create_graph=True inside
    h = 1e-6
    fd = torch.zeros_like(grad_w)
    with torch.no_grad():
        for idx in range(grad_w.numel()):
            w0 = critic.w.view(-1)[idx].item()
            values = []
            for sign in (1, -1):
                critic.w.view(-1)[idx] = w0 + sign * h
                with torch.enable_grad():
                    values.append(_f(gradient_penalty(critic, real, fake, mask, generator=3)))
            critic.w.view(-1)[idx] = w0
            fd.view(-1)[idx] = (values[0] - values[1]) / (2 * h)
    torch.testing.assert_close(grad_w, fd, rtol=1e-6, atol=1e-9)
    # analytic: 2 (s - 1) * w * mask / s
    w = critic.w.detach()
    s = torch.sqrt((w ** 2 * mask[0]).sum())
    torch.testing.assert_close(grad_w, 2 * (s - 1) * w * mask[0] / s, rtol=1e-6, atol=1e-12)


def test_gradient_penalty_nonlinear_critic_uses_interpolates():
    # score = 0.5 * sum(z**2): the gradient is z = alpha * fake (real = 0), so each sample's
    # slope is alpha_b * ||fake_b|| and alpha_b = slope_b / ||fake_b|| must lie in [0, 1]
    class Square(nn.Module):
        def forward(self, z):
            return 0.5 * (z ** 2).sum(dim=(1, 2, 3)).unsqueeze(1)

    real = torch.zeros(4, 1, 2, 2, dtype=torch.float64)
    fake = torch.ones(4, 1, 2, 2, dtype=torch.float64)  # ||fake_b|| = 2
    # with real == fake the interpolate is fake whatever alpha is: slope 2, penalty 1
    assert math.isclose(_f(gradient_penalty(Square(), fake, fake, generator=0)), 1.0, rel_tol=1e-9)
    penalty = _f(gradient_penalty(Square(), real, fake, generator=5))
    # penalty = mean((2 alpha - 1)**2) lies in [0, 1], and differs from the constant-alpha cases
    assert 0.0 <= penalty <= 1.0
    g = torch.Generator().manual_seed(5)
    a = gradient_penalty(Square(), real, fake, generator=g)
    b = gradient_penalty(Square(), real, fake, generator=g)
    assert _f(a) != _f(b)  # fresh alphas from one generator
    assert _f(gradient_penalty(Square(), real, fake, generator=5)) == penalty  # seed repeats


def test_gradient_penalty_zero_masked_gradient_is_finite():
    critic = LinearCritic((3, 4, 4), seed=2)
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake, torch.zeros(1, 1, 4, 4))
    assert math.isclose(_f(penalty), 1.0, rel_tol=1e-4)
    penalty.backward()
    assert torch.isfinite(critic.w.grad).all()


def test_gradient_penalty_does_not_reach_inputs():
    critic = LinearCritic((3, 4, 4), seed=2)
    fake = torch.randn(2, 3, 4, 4, requires_grad=True)
    gradient_penalty(critic, torch.randn(2, 3, 4, 4), fake).backward()
    assert fake.grad is None


# ---------------------------------------------------------------- assembled totals

def _setup(per_sample: bool = False):
    g = torch.Generator().manual_seed(0)
    B, H, W = 2, 8, 8
    x = torch.rand(B, 3, H, W, generator=g) * 2 - 1
    x1 = torch.rand(B, 3, H, W, generator=g) * 2 - 1
    x2 = torch.rand(B, 3, H, W, generator=g) * 2 - 1
    if per_sample:
        bbox = [(1, 2, 4, 4), (3, 0, 4, 4)]
        mask = torch.zeros(B, 1, H, W)
        mask[0, :, 2:4, 3:5] = 1
        mask[1, :, 3:7, 0:4] = 1
    else:
        bbox = (1, 2, 4, 4)
        mask = torch.zeros(1, 1, H, W)
        mask[..., 2:4, 3:5] = 1
    boxes = bbox if per_sample else [bbox] * B
    def crop(t, boxes_):
        return torch.stack([t[i % t.shape[0], :, r:r + 4, c:c + 4] for i, (r, c, _, _) in enumerate(boxes_)])

    return x, x1, x2, mask, bbox, boxes, crop


def test_generator_loss_release_total():
    x, x1, x2, mask, bbox, boxes, crop = _setup()
    local_critic, global_critic = LinearCritic((3, 4, 4), 10), LinearCritic((3, 8, 8), 11)
    out = generator_loss(x, x1, x2, mask, bbox, local_critic, global_critic)
    w = _discount_loop(4, 4, 0.9).float()
    lx, lx1, lx2 = crop(x, boxes), crop(x1, boxes), crop(x2, boxes)
    l1 = 1.2 * ((lx - lx1).abs() * w).mean() + ((lx - lx2).abs() * w).mean()
    known = 1 - mask
    ae = (1.2 * ((x - x1).abs() * known).mean() + ((x - x2).abs() * known).mean()) / known.mean()
    complete = x2 * mask + x * (1 - mask)
    g_local = -local_critic(crop(complete, boxes)).mean()
    g_global = -global_critic(complete).mean()
    torch.testing.assert_close(out["l1_loss"], l1)
    torch.testing.assert_close(out["ae_loss"], ae)
    torch.testing.assert_close(out["g_loss"], g_local + g_global)
    torch.testing.assert_close(out["total"], 0.001 * (g_local + g_global) + 1.2 * l1 + 1.2 * ae)
    assert set(out) >= {"l1_loss", "ae_loss", "g_loss", "total"}


def test_generator_loss_weights_and_pretrain_switch():
    x, x1, x2, mask, bbox, boxes, crop = _setup()
    critics = LinearCritic((3, 4, 4), 10), LinearCritic((3, 8, 8), 11)
    weights = LossWeights(discounted_mask=False, pretrain_coarse_network=True, gan_loss_alpha=0.5,
                          global_wgan_loss_alpha=2.0)
    out = generator_loss(x, x1, x2, mask, bbox, *critics, weights=weights)
    lx, lx1 = crop(x, boxes), crop(x1, boxes)
    torch.testing.assert_close(out["l1_loss"], 1.2 * (lx - lx1).abs().mean())
    known = 1 - mask
    torch.testing.assert_close(out["ae_loss"], 1.2 * ((x - x1).abs() * known).mean() / known.mean())
    torch.testing.assert_close(out["g_loss"], out["g_loss_local"] + 2.0 * out["g_loss_global"])
    # release: PRETRAIN_COARSE_NETWORK sets the adversarial part to 0 and the critics see x1's composite
    l1 = 1.2 * (lx - lx1).abs().mean()
    ae = 1.2 * ((x - x1).abs() * known).mean() / known.mean()
    torch.testing.assert_close(out["total"], 1.2 * l1 + 1.2 * ae)
    complete1 = x1 * mask + x * (1 - mask)
    torch.testing.assert_close(out["g_loss_global"], -critics[1](complete1).mean())


def test_generator_loss_trains_the_generator_outputs():
    x, x1, x2, mask, bbox, _, _ = _setup()
    x1.requires_grad_(True)
    x2.requires_grad_(True)
    out = generator_loss(x, x1, x2, mask, bbox, LinearCritic((3, 4, 4), 1), LinearCritic((3, 8, 8), 2))
    out["total"].backward()
    assert x1.grad is not None and x2.grad is not None and x2.grad.abs().sum() > 0


@pytest.mark.parametrize("per_sample", [False, True])
def test_critic_loss_release_total(per_sample):
    x, _, x2, mask, bbox, boxes, crop = _setup(per_sample)
    x2.requires_grad_(True)
    local_critic, global_critic = LinearCritic((3, 4, 4), 20), LinearCritic((3, 8, 8), 21)
    out = critic_loss(x, x2, mask, bbox, local_critic, global_critic, generator=0)
    complete = x2.detach() * mask + x * (1 - mask)
    d_local = (local_critic(crop(complete, boxes)) - local_critic(crop(x, boxes))).mean()
    d_global = (global_critic(complete) - global_critic(x)).mean()
    # linear critics: slope_b = ||w * mask_b|| (the local mask is the box's crop of the mask)
    local_masks = crop(mask, boxes)
    gp_local = sum((_masked_norm_loop(local_critic.w.detach(), local_masks[b, 0]) - 1) ** 2
                   for b in range(2)) / 2
    gp_global = sum((_masked_norm_loop(global_critic.w.detach(), mask[b % mask.shape[0], 0]) - 1) ** 2
                    for b in range(2)) / 2
    torch.testing.assert_close(out["d_loss"], d_local + d_global)
    assert math.isclose(_f(out["gp_local"]), gp_local, rel_tol=1e-4)
    assert math.isclose(_f(out["gp_global"]), gp_global, rel_tol=1e-4)
    assert math.isclose(_f(out["gp_loss"]), 10 * (gp_local + gp_global), rel_tol=1e-4)
    assert math.isclose(_f(out["total"]), _f(d_local + d_global) + 10 * (gp_local + gp_global),
                        rel_tol=1e-4)
    out["total"].backward()
    assert x2.grad is None  # the critic step does not train the generator
    assert local_critic.w.grad is not None and global_critic.w.grad is not None


@pytest.mark.parametrize("bad_mask", ["scaled", "bool"])
def test_losses_check_the_mask_values(bad_mask):
    x, x1, x2, mask, bbox, boxes, crop = _setup()
    critics = LinearCritic((3, 4, 4), 10), LinearCritic((3, 8, 8), 11)
    if bad_mask == "scaled":
        with pytest.raises(ValueError, match=r"mask > 0.5"):
            generator_loss(x, x1, x2, mask * 255, bbox, *critics)
        with pytest.raises(ValueError, match=r"binary"):
            ae_loss(x, x1, x2, mask * 255)
    else:  # a bool mask is accepted and gives the same losses as the float one
        a = generator_loss(x, x1, x2, mask.bool(), bbox, *critics)
        b = generator_loss(x, x1, x2, mask, bbox, *critics)
        torch.testing.assert_close(a["total"], b["total"])


def test_masked_slopes_by_hand():
    from course_lib.losses import masked_slopes
    grad = torch.zeros(2, 3, 2, 2)  # (2, 3, 2, 2)
    grad[0, :, 0, 0] = torch.tensor([1.0, 2.0, 2.0])  # norm 3 at a hole pixel
    grad[0, 0, 1, 1] = 4.0  # outside the hole: ignored
    grad[1, 1, 0, 0] = 0.5
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # (1, 1, 2, 2), shared
    slopes = masked_slopes(grad, mask, eps=0.0)
    assert slopes.tolist() == [3.0, 0.5]
    assert masked_slopes(grad, torch.ones(1, 1, 2, 2), eps=0.0)[0].item() == 5.0  # sqrt(9 + 16)
    with pytest.raises(ValueError, match="masked_slopes"):
        masked_slopes(grad, torch.ones(1, 3, 2, 2))


def test_gradient_penalty_with_a_given_alpha_by_hand():
    # A linear critic f(x) = sum(w * x): the gradient is w everywhere, whatever alpha is.
    w = torch.zeros(1, 1, 2, 2)
    w[..., 0, 0] = 3.0
    critic = lambda x: (x * w).flatten(1).sum(dim=1, keepdim=True)  # noqa: E731
    real, fake = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    mask = torch.ones(1, 1, 2, 2)
    alpha = torch.tensor([0.2, 0.9]).view(2, 1, 1, 1)
    assert gradient_penalty(critic, real, fake, mask, alpha=alpha, eps=0.0).item() == pytest.approx(4.0)  # (3 - 1)^2
    with pytest.raises(ValueError, match="one per sample"):
        gradient_penalty(critic, real, fake, mask, alpha=torch.rand(2))
