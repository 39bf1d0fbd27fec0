"""Checks for the WGAN-GP exercises (notebook 08, lesson 08).

Exercises: ``flatten_nhwc`` (the critics' TF-order flatten), ``wgan_critic_loss`` (the
release's ``gan_wgan_loss``), ``masked_slopes`` (the gradient norm over the hole) and
``gradient_penalty`` (the whole masked penalty, with a given ``alpha``); the open variant
``unmasked_gradient_penalty`` (WGAN-GP's penalty over the whole image, to compare with it). Each check
compares the student's function with :mod:`course_lib.critics` / :mod:`course_lib.losses`
on seeded inputs and names the planted mistake that gives the student's answer.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from course_lib import losses as L
from course_lib.critics import Critic, flatten_nhwc
from course_lib.seed import make_generator, seed_everything

from . import (Case, call, compare_cases, compare_gradients, expect_close, expect_gradient, fail,
               hinted_mistakes, register, require_phrases)

__all__ = ["gradient_penalty_reference", "unmasked_gradient_penalty_reference"]

NB08 = "08_wgan_gp.ipynb"






# ---------------------------------------------------------------- flatten_nhwc

def _flatten_nchw(h):
    return h.flatten(1)


def _flatten_hw_swapped(h):
    return h.permute(0, 3, 2, 1).flatten(1)


_FLATTEN_HINTS = {
    "NCHW": "that is PyTorch's NCHW order (c, h, w); TensorFlow's dense kernel expects (h, w, c): "
            "move the channels last with h.permute(0, 2, 3, 1) before flattening",
    "rows before columns": "rows before columns: the TF order is (h, w, c), so permute to "
                           "(B, H, W, C) = h.permute(0, 2, 3, 1), not (B, W, H, C)",
}
_FLATTEN_MISTAKES = {"NCHW": _flatten_nchw, "rows before columns": _flatten_hw_swapped}
require_phrases(_FLATTEN_HINTS, _FLATTEN_MISTAKES)


@register("flatten_nhwc", reference=flatten_nhwc, notebook=NB08,
          hint="flatten_nhwc(h): (B, C, H, W) -> (B, H*W*C) in TensorFlow's (h, w, c) order",
          mistakes=_FLATTEN_MISTAKES)
def _check_flatten_nhwc(fn: Callable[..., Any]) -> None:
    """flatten_nhwc(h): (B, C, H, W) -> (B, H*W*C) in TensorFlow's (h, w, c) order."""
    name = "flatten_nhwc"
    cases = []
    for shape in ((2, 3, 4, 5), (1, 8, 2, 2), (3, 1, 3, 2), (1, 2, 1, 3)):
        h = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).view(shape)  # every value tells where it was
        cases.append(Case((h,), {}, f"flatten_nhwc(h) for h of shape {shape}"))
    compare_cases(name, fn, flatten_nhwc, cases, "entry (h * W + w) * C + c of a row must be channel c at (h, w)",
                  variants=lambda case: hinted_mistakes(name, _FLATTEN_HINTS, *case.args), atol=0, rtol=0,
                  shape_hint="keep the batch dim: (B, C, H, W) -> (B, H*W*C), flatten from dim 1 on")
    expect_gradient(name, fn, flatten_nhwc, cases[0], wrt=(0,))


# ---------------------------------------------------------------- wgan_critic_loss

def _wgan_sign(pos, neg):
    return torch.mean(pos - neg)


def _wgan_log(pos, neg):
    return F.softplus(-pos).mean() + F.softplus(neg).mean()  # the original GAN's cross-entropy


def _wgan_sum(pos, neg):
    return torch.sum(neg - pos)


def _wgan_per_sample(pos, neg):
    return neg - pos  # (B, 1): one loss per sample


_WGAN_HINTS = {
    "sign": "the sign is flipped: the critic MINIMISES mean(neg - pos), which raises the real "
            "scores (pos) and lowers the fake ones (neg)",
    "no log": "a WGAN critic has no log and no sigmoid: its loss is the plain difference of mean "
              "scores, mean(neg - pos)",
    "mean": "use the mean over the batch (tf.reduce_mean), not the sum: the loss must not grow "
            "with the batch size",
    "one number": "the loss is one number for the batch (shape ()): average neg - pos over the batch",
}
_WGAN_MISTAKES = {"sign": _wgan_sign, "no log": _wgan_log, "mean": _wgan_sum, "one number": _wgan_per_sample}
require_phrases(_WGAN_HINTS, _WGAN_MISTAKES)


@register("wgan_critic_loss", reference=L.wgan_critic_loss, notebook=NB08,
          hint="wgan_critic_loss(pos, neg) = mean(neg - pos): pos = scores of real, neg = of fake",
          mistakes=_WGAN_MISTAKES)
def _check_wgan_critic_loss(fn: Callable[..., Any]) -> None:
    """wgan_critic_loss(pos, neg) = mean(neg - pos): pos = scores of real, neg = of fake."""
    name = "wgan_critic_loss"
    gen = make_generator(21)
    cases = []
    for batch in (4, 7, 1):
        pos = torch.randn(batch, 1, generator=gen) * 3 + 1  # (B, 1) scores of real images
        neg = torch.randn(batch, 1, generator=gen) * 3 - 1  # (B, 1) scores of completed images
        cases.append(Case((pos, neg), {}, f"wgan_critic_loss(pos, neg) for a batch of {batch}"))
    compare_cases(name, fn, L.wgan_critic_loss, cases, "the critic's loss is mean(neg) - mean(pos), one number",
                  variants=lambda case: hinted_mistakes(name, _WGAN_HINTS, *case.args),
                  shape_hint=_WGAN_HINTS["one number"])
    expect_gradient(name, fn, L.wgan_critic_loss, cases[0], wrt=(0, 1))


# ---------------------------------------------------------------- masked_slopes

def _slopes_unmasked(grad, mask):
    return torch.sqrt(torch.sum(grad ** 2, dim=(1, 2, 3)) + 1e-12)


def _slopes_squared(grad, mask):
    return torch.sum(grad ** 2 * mask, dim=(1, 2, 3))


def _slopes_mean(grad, mask):
    return torch.sqrt(torch.mean(grad ** 2 * mask, dim=(1, 2, 3)) + 1e-12)


def _slopes_per_pixel(grad, mask):
    return torch.sum(torch.sqrt(torch.sum(grad ** 2, dim=1, keepdim=True) + 1e-12) * mask, dim=(1, 2, 3))


def _slopes_eps_outside(grad, mask, eps=1e-12):
    return torch.sqrt(torch.sum(grad ** 2 * mask, dim=(1, 2, 3))) + eps  # eps outside the root


def _slopes_fixed_eps(grad, mask, eps=1e-12):
    return L.masked_slopes(grad, mask)  # the eps argument is ignored


_SLOPES_HINTS = {
    "mask": "apply the mask: only the hole's pixels count, sum(grad**2 * mask) with the mask "
            "broadcast over the channels",
    "square root": "take the square root: the slope is the L2 norm sqrt(sum(grad**2 * mask))",
    "sum": "sum over (C, H, W), do not average: a norm does not divide by the number of pixels",
    "one norm per sample": "one norm per sample over all of (C, H, W): sum the squares first, "
                           "then one square root (not a norm per pixel, then summed)",
    "wrong place": "the eps goes inside the square root, sqrt(sum + eps): outside it, a sample whose "
                   "masked gradient is zero gets a NaN gradient (an eps in the wrong place)",
    "eps argument": "use the eps argument inside the square root, do not hard-code 1e-12",
}
_SLOPES_MISTAKES = {"mask": _slopes_unmasked, "square root": _slopes_squared, "sum": _slopes_mean,
                    "one norm per sample": _slopes_per_pixel, "wrong place": _slopes_eps_outside,
                    "eps argument": _slopes_fixed_eps}
require_phrases(_SLOPES_HINTS, _SLOPES_MISTAKES)


@register("masked_slopes", reference=L.masked_slopes, notebook=NB08,
          hint="masked_slopes(grad, mask) = sqrt(sum over C, H, W of grad**2 * mask + 1e-12), one per sample",
          mistakes=_SLOPES_MISTAKES)
def _check_masked_slopes(fn: Callable[..., Any]) -> None:
    """masked_slopes(grad, mask) = sqrt(sum over C, H, W of grad**2 * mask + 1e-12), one per sample."""
    name = "masked_slopes"
    gen = make_generator(23)
    grad = torch.randn(3, 3, 6, 8, generator=gen)  # (3, 3, 6, 8)
    mask = torch.zeros(1, 1, 6, 8)  # (1, 1, 6, 8), shared
    mask[..., 1:5, 2:6] = 1.0
    per_sample = (torch.rand(3, 1, 6, 8, generator=gen) > 0.5).float()  # (3, 1, 6, 8)
    zero_in_hole = grad.clone()
    zero_in_hole[1] *= 1.0 - mask[0]  # sample 1: the gradient is zero over the whole hole
    variants = lambda case: hinted_mistakes(name, _SLOPES_HINTS, *case.args, **case.kwargs)  # noqa: E731
    cases = [Case((grad, mask), {}, "masked_slopes(grad, shared mask)"),
             Case((grad, per_sample), {}, "masked_slopes(grad, one mask per sample)"),
             Case((zero_in_hole, mask), {"eps": 1e-2}, "masked_slopes(grad, mask, eps=1e-2), sample 1 zero in the hole"),
             Case((grad[:1, :1, :2, :2], mask[..., 1:3, 1:3]), {}, "masked_slopes on one 1x2x2 gradient")]
    compare_cases(name, fn, L.masked_slopes, cases,
                  "one number per sample: the L2 norm of the gradient over the hole's pixels, "
                  "sqrt(sum(grad**2 * mask) + eps)", variants=variants)
    expect_gradient(name, fn, L.masked_slopes,
                    Case((zero_in_hole, mask), {}, "masked_slopes(grad, mask), sample 1 zero in the hole"), wrt=(0,))


# ---------------------------------------------------------------- gradient_penalty

def gradient_penalty_reference(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                               fake: torch.Tensor, mask: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """course_lib's :func:`course_lib.losses.gradient_penalty` with a given ``alpha`` (B, 1, 1, 1)."""
    return L.gradient_penalty(critic, real, fake, mask, alpha=alpha)


def _gp(critic, real, fake, mask, alpha, *, at: Optional[str] = None, create_graph: bool = True,
        one_sided: bool = False):
    x = real + alpha * (fake - real) if at is None else (fake if at == "fake" else real)
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=create_graph)
    slopes = L.masked_slopes(grad, mask)
    gap = torch.relu(slopes - 1.0) if one_sided else slopes - 1.0
    return torch.mean(gap ** 2)


def _gp_at_fake(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, alpha, at="fake")


def _gp_at_real(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, alpha, at="real")


def _gp_one_sided(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, alpha, one_sided=True)


def _gp_no_graph(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, alpha, create_graph=False)


def _gp_fixed_alpha(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, torch.full_like(alpha, 0.5))


def _gp_unmasked(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, torch.ones_like(mask), alpha)


def _gp_paper_mask(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, 1.0 - mask, alpha)


def _gp_mean_of_slopes(critic, real, fake, mask, alpha):
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (torch.mean(L.masked_slopes(grad, mask)) - 1.0) ** 2


def _gp_summed(critic, real, fake, mask, alpha):
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return torch.sum((L.masked_slopes(grad, mask) - 1.0) ** 2)


def _gp_alpha_swapped(critic, real, fake, mask, alpha):
    return _gp(critic, real, fake, mask, 1.0 - alpha)


_GP_HINTS = {
    "(1 - mask)": "use the course's mask as it is (1 = hole): the paper's (1 - m) is written for a mask that "
                  "is 0 on the hole: (1 - mask) with the course's mask measures the gradient OUTSIDE the hole",
    "each sample's gap": "square each sample's gap first, then average: mean((slopes - 1) ** 2), not "
                       "(mean(slopes) - 1) ** 2",
    "not their sum": "average the squared gaps over the batch, torch.mean, not their sum",
    "alpha * (fake - real)": "x_hat = real + alpha * (fake - real): alpha weighs the step from the real image "
                             "towards the fake one (yours uses 1 - alpha)",
    "interpolates": "evaluate the gradient at the interpolates real + alpha * (fake - real), one alpha "
                    "per sample, not at the real or the fake images themselves",
    "at the real": "evaluate the gradient at the interpolates real + alpha * (fake - real), not at the real "
                   "images themselves",
    "two-sided": "the release's penalty is two-sided, (slopes - 1)**2: slopes below 1 are "
                 "penalised too (no relu)",
    "create_graph": "call torch.autograd.grad(..., create_graph=True): the penalty must be "
                    "differentiable with respect to the critic's weights, or it cannot train them",
    "alpha argument": "use the alpha argument you are given (one per sample, shape (B, 1, 1, 1)), do not draw "
                      "or fix your own",
    "over the hole": "pass the mask on to masked_slopes: the release's penalty only measures the "
                     "gradient over the hole",
}
_GP_MISTAKES = {"interpolates": _gp_at_fake, "at the real": _gp_at_real, "two-sided": _gp_one_sided, "create_graph": _gp_no_graph,
                "alpha argument": _gp_fixed_alpha, "over the hole": _gp_unmasked, "(1 - mask)": _gp_paper_mask,
                "each sample's gap": _gp_mean_of_slopes, "not their sum": _gp_summed,
                "alpha * (fake - real)": _gp_alpha_swapped}
require_phrases(_GP_HINTS, _GP_MISTAKES)


@register("gradient_penalty", reference=gradient_penalty_reference, notebook=NB08,
          hint="gradient_penalty(critic, real, fake, mask, alpha) = mean((masked_slopes(d critic / d x_hat) - 1)**2)",
          mistakes=_GP_MISTAKES)
def _check_gradient_penalty(fn: Callable[..., Any]) -> None:
    """gradient_penalty(critic, real, fake, mask, alpha) = mean((masked_slopes(d critic / d x_hat) - 1)**2)."""
    _check_a_penalty("gradient_penalty", fn, masked=True, hints=_GP_HINTS)


def _check_a_penalty(name: str, fn: Callable[..., Any], masked: bool, hints: dict[str, str]) -> None:
    """The gradient-penalty check, for the masked penalty (the release) or the unmasked one (WGAN-GP)."""
    def args(critic, real, fake, mask, alpha):  # the exercise's own signature
        return (critic, real, fake, mask, alpha) if masked else (critic, real, fake, alpha)

    signature = f"{name}(critic, real, fake, {'mask, ' if masked else ''}alpha)"
    seed_everything(29)
    critic = Critic((4, 4, 8, 8), size=16).double()  # small DeepFill-style critic, float64
    gen = make_generator(31)
    real = torch.rand(3, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1  # (3, 3, 16, 16)
    fake = torch.rand(3, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.float64)  # (1, 1, 16, 16)
    mask[..., 4:12, 3:11] = 1.0
    fake = fake * mask + real * (1 - mask)  # a completed image differs from the real one in the hole only
    alpha = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).view(3, 1, 1, 1)
    critic.zero_grad(set_to_none=True)
    expected = gradient_penalty_reference(critic, real, fake, mask if masked else torch.ones_like(mask), alpha)
    expected.backward()
    # the fc bias does not change d critic / d x: its gradient stays None (zero)
    want = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in critic.parameters()]
    critic.zero_grad(set_to_none=True)
    out = call(name, fn, *args(critic, real, fake, mask, alpha))
    expect_close(name, out, expected.detach(), signature,
                 "interpolate with alpha, take d sum(critic(x_hat)) / d x_hat, "
                 + ("masked_slopes" if masked else "its norm over C, H, W for each image")
                 + ", then mean((slopes - 1)**2)",
                 variants=hinted_mistakes(name, hints, *args(critic, real, fake, mask, alpha)), atol=1e-8, rtol=1e-6)
    if not out.requires_grad:
        fail(name, "the penalty has no gradient with respect to the critic's weights", hints["create_graph"])
    try:
        out.backward()
    except Exception as err:
        fail(name, f"backward through your penalty raised {type(err).__name__}: {err}", hints["create_graph"])
    got = [p.grad for p in critic.parameters()]
    compare_gradients(name, signature, got, want,
                      [f"the critic's {n}" for n, _ in critic.named_parameters()], atol=1e-8, rtol=1e-5,
                      hint=hints["create_graph"])
    # In training `fake` comes out of the generator and requires grad: the penalty is a critic loss, so
    # x_hat must be detached, or its backward also trains the generator (and costs a second graph).
    critic.zero_grad(set_to_none=True)
    weights = torch.linspace(-1.0, 1.0, fake.numel(), dtype=fake.dtype).view_as(fake)
    source = fake.detach().clone().requires_grad_(True)  # a leaf standing for the generator's output
    live_fake = source * 1.0 + weights * 0.0  # (3, 3, 16, 16), non-leaf with a graph, like the generator's output
    live_real = real.detach().clone().requires_grad_(True)
    try:
        out = fn(*args(critic, live_real, live_fake, mask, alpha))
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - the student's bug, reported with a hint
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        fail(name, f"with a fake batch that requires grad (as the generator's output does) it raised "
                   f"{type(err).__name__}: {first}",
             "detach the interpolates before asking for their gradient: x_hat = (real + alpha * (fake - real))"
             ".detach().requires_grad_(True)")
    expect_close(name, out, expected.detach(), f"{name} with real and fake that require grad",
                 "the value must not depend on whether real and fake require grad: detach x_hat",
                 atol=1e-8, rtol=1e-6)
    out.backward()
    # the critic is piecewise linear, so a leaked gradient is often exactly zero: any gradient
    # tensor at all (even zeros) shows that the penalty's graph reaches the generator's output
    leaked = [label for label, t in (("fake", source), ("real", live_real)) if t.grad is not None]
    if leaked:
        fail(name, f"the penalty's gradient reaches the {' and the '.join(leaked)} images",
             "detach the interpolates: x_hat = (real + alpha * (fake - real)).detach().requires_grad_(True); "
             "the penalty is a critic loss and must not train the generator through fake")


# ---------------------------------------------------------------- unmasked_gradient_penalty

def unmasked_gradient_penalty_reference(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                                        alpha: torch.Tensor) -> torch.Tensor:
    """The original WGAN-GP penalty (Gulrajani et al. 2017): the gradient's norm over the whole image.

    The open variant of notebook 08, beside the release's masked penalty
    (``gradients_penalty(..., mask=...)`` in ``inpaint_ops.py``, :func:`gradient_penalty_reference`).
    """
    ones = torch.ones_like(real[:, :1])  # (B, 1, H, W): every pixel counts
    return gradient_penalty_reference(critic, real, fake, ones, alpha)


def _ugp(critic, real, fake, alpha, **kwargs):
    return _gp(critic, real, fake, torch.ones_like(real[:, :1]), alpha, **kwargs)


def _ugp_mean_over_pixels(critic, real, fake, alpha):
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    slopes = torch.sqrt(torch.mean(grad ** 2, dim=(1, 2, 3)) + 1e-12)  # a mean: the norm shrinks by sqrt(C*H*W)
    return torch.mean((slopes - 1.0) ** 2)


def _ugp_one_norm(critic, real, fake, alpha):
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (torch.sqrt(torch.sum(grad ** 2) + 1e-12) - 1.0) ** 2  # one norm for the whole batch


_UGP_HINTS = {
    "sum of the squares": "the slope is the gradient's Euclidean norm per image: the square root of the sum "
                          "of the squares over C, H and W, not of their mean",
    "one slope per image": "take one slope per image (the norm summed over dims 1, 2, 3), then average the squared gaps "
                           "over the batch; a single norm over the whole batch mixes the images",
    "interpolates": _GP_HINTS["interpolates"],
    "at the real": _GP_HINTS["at the real"],
    "two-sided": _GP_HINTS["two-sided"],
    "create_graph": _GP_HINTS["create_graph"],
    "alpha argument": _GP_HINTS["alpha argument"],
    "each sample's gap": _GP_HINTS["each sample's gap"],
    "not their sum": _GP_HINTS["not their sum"],
    "alpha * (fake - real)": _GP_HINTS["alpha * (fake - real)"],
}
_UGP_MISTAKES = {
    "sum of the squares": _ugp_mean_over_pixels,
    "one slope per image": _ugp_one_norm,
    "interpolates": lambda critic, real, fake, alpha: _ugp(critic, real, fake, alpha, at="fake"),
    "at the real": lambda critic, real, fake, alpha: _ugp(critic, real, fake, alpha, at="real"),
    "two-sided": lambda critic, real, fake, alpha: _ugp(critic, real, fake, alpha, one_sided=True),
    "create_graph": lambda critic, real, fake, alpha: _ugp(critic, real, fake, alpha, create_graph=False),
    "alpha argument": lambda critic, real, fake, alpha: _ugp(critic, real, fake, torch.full_like(alpha, 0.5)),
    "alpha * (fake - real)": lambda critic, real, fake, alpha: _ugp(critic, real, fake, 1.0 - alpha),
    "each sample's gap": lambda critic, real, fake, alpha: _gp_mean_of_slopes(critic, real, fake,
                                                                               torch.ones_like(real[:, :1]), alpha),
    "not their sum": lambda critic, real, fake, alpha: _gp_summed(critic, real, fake, torch.ones_like(real[:, :1]),
                                                                   alpha),
}
require_phrases(_UGP_HINTS, _UGP_MISTAKES)


@register("unmasked_gradient_penalty", reference=unmasked_gradient_penalty_reference, notebook=NB08,
          hint="unmasked_gradient_penalty(critic, real, fake, alpha) = mean((||d critic / d x_hat|| - 1)**2), "
               "the norm over the whole image",
          mistakes=_UGP_MISTAKES)
def _check_unmasked_gradient_penalty(fn: Callable[..., Any]) -> None:
    """unmasked_gradient_penalty(critic, real, fake, alpha): WGAN-GP's penalty, the norm over the whole image."""
    _check_a_penalty("unmasked_gradient_penalty", fn, masked=False, hints=_UGP_HINTS)
