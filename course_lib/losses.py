"""DeepFill v1 losses: spatially discounted L1, the known-region "ae" loss and WGAN-GP.

Paper: Yu et al., CVPR 2018, Section 3 (spatially discounted reconstruction loss,
"improved WGAN" with a local and a global critic, gradient penalty restricted to the hole).
Every default below is the official release's (``inpaint.yml``/``inpaint_model.py``), not
the paper's where they differ (gamma 0.9 vs 0.99, distance to the box edge vs to the nearest
known pixel).

Totals of the release:

* generator: ``0.001 * (g_local + 1.0 * g_global) + 1.2 * l1_loss + 1.2 * ae_loss``
* critics:   ``d_local + d_global + 10 * (gp_local + gp_global)``

Taught in notebook 02 (spatially discounted loss) and notebook 08 (WGAN-GP with the two
critics); the trainer calls :func:`generator_loss` and :func:`critic_loss`.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch

from course_lib.masks import local_patch
from course_lib.ops import nonzero_window
from course_lib.seed import make_generator
from course_lib.value_checks import mask_values_checked, values_already_checked

__all__ = [
    "LossWeights",
    "spatial_discount",
    "discounted_l1_loss",
    "ae_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "masked_slopes",
    "gradient_penalty",
    "generator_loss",
    "critic_loss",
    "mask_values_checked",
]

Critic = Callable[[torch.Tensor], torch.Tensor]
BoxLike = Union[Sequence[int], Sequence[Sequence[int]]]


@dataclass(frozen=True)
class LossWeights:
    """Loss weights and switches, defaults = the release's ``inpaint.yml``.

    Field names follow the release's config keys in lower case.
    """

    coarse_l1_alpha: float = 1.2  # COARSE_L1_ALPHA: stage-1 terms inside l1_loss and ae_loss
    l1_loss_alpha: float = 1.2  # L1_LOSS_ALPHA
    ae_loss_alpha: float = 1.2  # AE_LOSS_ALPHA
    gan_loss_alpha: float = 0.001  # GAN_LOSS_ALPHA
    global_wgan_loss_alpha: float = 1.0  # GLOBAL_WGAN_LOSS_ALPHA
    wgan_gp_lambda: float = 10.0  # WGAN_GP_LAMBDA
    spatial_discounting_gamma: float = 0.9  # SPATIAL_DISCOUNTING_GAMMA (paper: 0.99)
    discounted_mask: bool = True  # DISCOUNTED_MASK; False -> plain L1 on the local box
    pretrain_coarse_network: bool = False  # PRETRAIN_COARSE_NETWORK: drop the stage-2 terms


def spatial_discount(height: int, width: int, gamma: float = 0.9,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Weights of the spatially discounted L1 loss over the local box (paper Section 3).

    Release (``spatial_discounting_mask``), for the pixel at row ``i``, column ``j`` of the
    ``height`` x ``width`` box::

        w[i, j] = max(gamma ** min(i, height - i), gamma ** min(j, width - j))

    i.e. the distance to the nearest box edge along each axis, taking the nearer axis
    (note ``min(i, height - i)``: the first row has distance 0, the last row distance 1).

    Differences from the paper, stated because they matter: the paper weighs by
    ``gamma ** l`` with ``l`` the distance to the nearest KNOWN pixel and gamma = 0.99;
    the release measures to the edge of the 128x128 BOX (which is up to 16 px larger than
    the hole on each side) with gamma = 0.9, so the box centre weighs 0.9**64 ~ 1.2e-3 and
    the middle of the hole is trained almost only by the adversarial losses.

    Returns an (H, W) tensor; ``gamma = 1`` gives all ones.
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1] (release 0.9, paper 0.99), got {gamma}")
    if height < 1 or width < 1:
        raise ValueError(f"spatial_discount needs a positive size, got {height}x{width}")
    i = torch.arange(height, dtype=torch.float64)
    j = torch.arange(width, dtype=torch.float64)
    w_rows = gamma ** torch.minimum(i, height - i)  # (H,)
    w_cols = gamma ** torch.minimum(j, width - j)  # (W,)
    return torch.maximum(w_rows.view(height, 1), w_cols.view(1, width)).to(dtype)  # (H, W)


def discounted_l1_loss(local_gt: torch.Tensor, local_x1: torch.Tensor, local_x2: Optional[torch.Tensor],
                       weight: torch.Tensor, coarse_alpha: float = 1.2) -> torch.Tensor:
    """The release's ``l1_loss`` on the local box: coarse and refined outputs vs the truth.

    ``coarse_alpha * mean(|gt - x1| * w) + mean(|gt - x2| * w)``, means over every
    element (TF ``reduce_mean``); ``weight`` is :func:`spatial_discount` (H, W) (or anything
    that broadcasts to the patches). ``local_x2 = None`` drops the stage-2 term (the
    release's PRETRAIN_COARSE_NETWORK). Patches are (B, C, h, w), raw network outputs
    (not pasted onto the input).
    """
    if local_gt.shape != local_x1.shape or (local_x2 is not None and local_x2.shape != local_gt.shape):
        raise ValueError(
            f"discounted_l1_loss: patches differ in shape: gt {tuple(local_gt.shape)}, x1 "
            f"{tuple(local_x1.shape)}, x2 {None if local_x2 is None else tuple(local_x2.shape)}; "
            "crop all three with the same local_patch(., bbox)")
    weight = weight.to(device=local_gt.device, dtype=local_gt.dtype)
    loss = coarse_alpha * torch.mean(torch.abs(local_gt - local_x1) * weight)
    if local_x2 is not None:
        loss = loss + torch.mean(torch.abs(local_gt - local_x2) * weight)
    return loss


def ae_loss(x: torch.Tensor, x1: torch.Tensor, x2: Optional[torch.Tensor], mask: torch.Tensor,
            coarse_alpha: float = 1.2) -> torch.Tensor:
    """The release's ``ae_loss``: L1 on the KNOWN pixels (auto-encoding), normalised.

    ``(coarse_alpha * mean(|x - x1| * (1 - mask)) + mean(|x - x2| * (1 - mask))) / mean(1 - mask)``

    Each ``mean`` is over all elements of its own tensor (TF ``reduce_mean``): the numerators
    average over (B, C, H, W) of the images, the denominator over the mask's own
    (B or 1, 1, H, W) elements, so the quotient is the mean L1 per known pixel and channel.
    ``x2 = None`` drops the stage-2 term (PRETRAIN_COARSE_NETWORK).
    """
    if x.shape != x1.shape or (x2 is not None and x2.shape != x.shape):
        raise ValueError(f"ae_loss: x {tuple(x.shape)}, x1 {tuple(x1.shape)} and x2 "
                         f"{None if x2 is None else tuple(x2.shape)} must have one shape")
    known = 1.0 - _check_mask(mask, x)  # (B or 1, 1, H, W)
    loss = coarse_alpha * torch.mean(torch.abs(x - x1) * known)
    if x2 is not None:
        loss = loss + torch.mean(torch.abs(x - x2) * known)
    return loss / torch.mean(known)


def wgan_critic_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss of the release (``gan_wgan_loss``): ``mean(neg - pos)``.

    ``pos`` = critic scores of real images, ``neg`` = of completed images; the critic
    minimises it (pushes real scores up and fake scores down).
    """
    return torch.mean(neg - pos)


def wgan_generator_loss(neg: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss of the release: ``-mean(neg)`` (raise the completed images' scores)."""
    return -torch.mean(neg)


def masked_slopes(grad: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-sample gradient norm over the hole: ``sqrt(sum over C, H, W of grad**2 * mask + eps)``.

    ``grad`` (B, C, H, W), ``mask`` (B or 1, 1, H, W) broadcast over the channels -> (B,).
    The release's ``gradients_penalty`` (``slopes``), with ``eps`` inside the root so that
    the gradient stays finite for a sample whose masked gradient is exactly zero.
    """
    if grad.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"masked_slopes needs grad (B, C, H, W) and mask (B or 1, 1, H, W), got "
                         f"{tuple(grad.shape)} and {tuple(mask.shape)}")
    return torch.sqrt(torch.sum(grad ** 2 * mask.to(grad.dtype), dim=(1, 2, 3)) + eps)  # (B,)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     mask: Optional[torch.Tensor] = None,
                     generator: Optional[Union[int, torch.Generator]] = None,
                     norm: float = 1.0, eps: float = 1e-12,
                     alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """WGAN-GP gradient penalty restricted to the hole (paper Section 3, release ``gradients_penalty``).

    1. one ``alpha ~ U(0, 1)`` per sample; ``interp = real + alpha * (fake - real)``;
    2. ``grad = d sum(critic(interp)) / d interp`` (``create_graph=True`` so the penalty
       trains the critic);
    3. ``slopes = sqrt(sum over C, H, W of grad**2 * mask)``: only the hole's pixels count
       (the paper's masked penalty); ``mask`` (B or 1, 1, H, W) broadcasts over channels,
       ``None`` means no masking;
    4. ``penalty = mean((slopes - norm)**2)``.

    ``eps`` is added inside the square root so that its gradient stays finite when a
    sample's masked gradient is exactly zero (sqrt'(0) is infinite and would make the
    critic's gradients NaN); 1e-12 changes a slope of order 1 by ~5e-13.

    ``real`` and ``fake`` are detached: the penalty is a critic loss. ``generator`` seeds
    alpha (int or ``torch.Generator``; ``None`` = torch's global RNG); or pass ``alpha``
    itself, (B, 1, 1, 1) in [0, 1] (then ``generator`` is not used).
    """
    if real.shape != fake.shape or real.dim() != 4:
        raise ValueError(f"gradient_penalty needs real and fake of one (B, C, H, W) shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if mask is None:
        mask = torch.ones_like(real[:, :1])  # (B, 1, H, W)
    mask = _check_mask(mask, real)
    B = real.shape[0]
    if alpha is not None:
        if alpha.shape != (B, 1, 1, 1):
            raise ValueError(f"alpha must be (B, 1, 1, 1) = ({B}, 1, 1, 1), one per sample, got {tuple(alpha.shape)}")
        alpha = alpha.to(device=real.device, dtype=real.dtype)
    elif generator is None:
        alpha = torch.rand(B, 1, 1, 1, device=real.device, dtype=real.dtype)  # (B, 1, 1, 1)
    else:
        alpha = torch.rand(B, 1, 1, 1, generator=make_generator(generator), dtype=real.dtype)
        if real.device.type == "cuda":  # from pinned memory: the copy does not wait for the GPU
            alpha = alpha.pin_memory()
        alpha = alpha.to(real.device, non_blocking=True)  # (B, 1, 1, 1)
    real, fake = real.detach(), fake.detach()
    interp = (real + alpha * (fake - real)).requires_grad_(True)  # (B, C, H, W)
    if getattr(critic, "explicit_input_gradient", False):  # the fast path: the same gradient, first-order kernels
        window = nonzero_window(mask) if interp.device.type == "cpu" else None  # the hole's box (no GPU sync)
        if window is not None:  # the slopes read the hole only: its box's gradient, the same sum
            (r0, r1), (c0, c1) = window
            grad, mask = critic.input_gradient(interp, window), mask[..., r0:r1, c0:c1]  # (B, C, h, w), (B|1, 1, h, w)
        else:
            grad = critic.input_gradient(interp)  # (B, C, H, W)
    else:
        scores = critic(interp)
        (grad,) = torch.autograd.grad(scores.sum(), interp, create_graph=True)  # (B, C, H, W)
    slopes = masked_slopes(grad, mask, eps)  # (B,)
    return torch.mean((slopes - norm) ** 2)


@functools.lru_cache(maxsize=16)
def _discount_on(height: int, width: int, gamma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`spatial_discount` made once per size, dtype and device (a copy to the GPU per step would wait)."""
    return spatial_discount(height, width, gamma, dtype=dtype).to(device)  # (H, W), never written to


def _check_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Check that ``mask`` is a binary (B or 1, 1, H, W) mask for ``x``; return it in ``x``'s dtype.

    A 0..255 mask would otherwise give a silently wrong loss, and a bool mask cannot be
    subtracted from 1.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch tensor, got {type(mask).__name__}")
    if (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:]
            or mask.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"mask must be (B or 1, 1, H, W) = (1 or {x.shape[0]}, 1, {x.shape[-2]}, "
                         f"{x.shape[-1]}) to match the images, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not values_already_checked() and not ((mask == 0) | (mask == 1)).all():
        raise ValueError(
            "mask must be binary (values in {0, 1}, 1 = hole), got values in "
            f"[{mask.min().item():g}, {mask.max().item():g}]; threshold it with (mask > 0.5).float()")
    return mask.to(x.dtype)


def _completed(x: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The release's ``batch_complete = x2 * mask + x_incomplete * (1 - mask)``."""
    return x2 * mask + x * (1.0 - mask)  # (B, C, H, W)


def generator_loss(x: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor,
                   bbox: BoxLike, local_critic: Critic, global_critic: Critic, *,
                   weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """The generator's losses for one step, assembled as in the release.

    ``x`` real images (B, 3, H, W); ``x1``, ``x2`` the raw stage-1 and stage-2 outputs;
    ``mask`` (B or 1, 1, H, W); ``bbox`` the local box(es) (:func:`course_lib.masks.local_patch`).
    The critics score the completed image ``x2 * mask + x * (1 - mask)`` (and its local
    box); their parameters receive gradients too, so step only the generator's optimiser
    (or freeze the critics) with this loss.

    Returns a dict of scalars:

    * ``l1_loss``: :func:`discounted_l1_loss` on the local box (weights :func:`spatial_discount`);
    * ``ae_loss``: :func:`ae_loss` on the whole image;
    * ``g_loss_local``, ``g_loss_global``: :func:`wgan_generator_loss` of each critic;
    * ``g_loss``: ``g_loss_local + global_wgan_loss_alpha * g_loss_global`` (adversarial part);
    * ``total``: ``gan_loss_alpha * g_loss + l1_loss_alpha * l1_loss + ae_loss_alpha * ae_loss``
      (the release's final ``g_loss``; minimise this).
    """
    w = weights
    mask = _check_mask(mask, x)
    # release: with PRETRAIN_COARSE_NETWORK the prediction is x1, the x2 terms are dropped
    # and the adversarial part of g_loss is set to 0 (only l1 + ae train the coarse net).
    x2_terms = None if w.pretrain_coarse_network else x2
    local_x = local_patch(x, bbox)  # (B, C, h, w)
    local_x1 = local_patch(x1, bbox)
    local_x2 = None if x2_terms is None else local_patch(x2, bbox)
    h, wd = local_x.shape[-2:]
    gamma = w.spatial_discounting_gamma if w.discounted_mask else 1.0
    weight = _discount_on(h, wd, float(gamma), x.dtype, x.device)  # (h, w), cached
    l1 = discounted_l1_loss(local_x, local_x1, local_x2, weight, w.coarse_l1_alpha)
    ae = ae_loss(x, x1, x2_terms, mask, w.coarse_l1_alpha)
    predicted = x1 if w.pretrain_coarse_network else x2
    complete = _completed(x, predicted, mask)  # (B, C, H, W)
    g_local = wgan_generator_loss(local_critic(local_patch(complete, bbox)))
    g_global = wgan_generator_loss(global_critic(complete))
    g_adv = g_local + w.global_wgan_loss_alpha * g_global
    adversarial = 0.0 if w.pretrain_coarse_network else w.gan_loss_alpha * g_adv
    total = adversarial + w.l1_loss_alpha * l1 + w.ae_loss_alpha * ae
    return {"l1_loss": l1, "ae_loss": ae, "g_loss_local": g_local, "g_loss_global": g_global,
            "g_loss": g_adv, "total": total}


def critic_loss(x: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor, bbox: BoxLike,
                local_critic: Critic, global_critic: Critic, *,
                weights: LossWeights = LossWeights(),
                generator: Optional[Union[int, torch.Generator]] = None,
                gp_local_critic: Optional[Critic] = None, gp_global_critic: Optional[Critic] = None,
                autocast: Callable[[], Any] = contextlib.nullcontext) -> dict[str, torch.Tensor]:
    """The critics' losses for one step, assembled as in the release.

    Real = ``x``; fake = the completed image ``x2 * mask + x * (1 - mask)``, DETACHED (the
    critic step must not train the generator). Each critic scores real and fake in one
    batch (the release concatenates them). The local critic sees the box
    :func:`course_lib.masks.local_patch` of both, and its gradient penalty is masked by the
    box's crop of the mask; the global one by the full mask.

    Returns a dict of scalars:

    * ``d_loss_local``, ``d_loss_global``: :func:`wgan_critic_loss` of each critic;
    * ``d_loss``: their sum (the WGAN part);
    * ``gp_local``, ``gp_global``: :func:`gradient_penalty` of each critic (unweighted);
    * ``gp_loss``: ``wgan_gp_lambda * (gp_local + gp_global)``;
    * ``total``: ``d_loss + gp_loss`` (the release's final ``d_loss``; minimise this).

    Two controls for the trainer (defaults: plain single-device full precision):

    * ``autocast``: a context manager for the critics' scores (mixed precision). The gradient
      penalty ALWAYS runs with autocast disabled, in the images' dtype: it needs
      d critic / d input (``create_graph=True``) and then the backward of that; in float16
      those inner gradients can underflow or overflow, and a GradScaler scales only the
      final loss, not the inner ``autograd.grad``.
    * ``gp_local_critic`` / ``gp_global_critic``: the modules used for the penalty. Under
      DistributedDataParallel the scores use the DDP wrappers (which average gradients) and
      the penalty the bare modules: DDP's hooks do not support ``autograd.grad``, and the
      penalty's parameter gradients still reach DDP's all-reduce in the same backward.
    """
    w = weights
    mask = _check_mask(mask, x)
    g = None if generator is None else make_generator(generator)
    real = x.detach()
    fake = _completed(real, x2.detach().to(real.dtype), mask)  # (B, C, H, W)
    B = real.shape[0]
    local_real, local_fake = local_patch(real, bbox), local_patch(fake, bbox)  # (B, C, h, w)
    local_mask = local_patch(mask, bbox)  # (B or 1, 1, h, w)
    with autocast():
        scores_local = local_critic(torch.cat([local_real, local_fake], dim=0))  # (2B, 1)
        scores_global = global_critic(torch.cat([real, fake], dim=0))  # (2B, 1)
    scores_local, scores_global = scores_local.to(real.dtype), scores_global.to(real.dtype)
    d_local = wgan_critic_loss(scores_local[:B], scores_local[B:])
    d_global = wgan_critic_loss(scores_global[:B], scores_global[B:])
    with torch.autocast(device_type=real.device.type, enabled=False):
        gp_local = gradient_penalty(gp_local_critic or local_critic, local_real, local_fake,
                                    local_mask, generator=g)
        gp_global = gradient_penalty(gp_global_critic or global_critic, real, fake, mask, generator=g)
    d_adv = d_local + d_global
    gp = w.wgan_gp_lambda * (gp_local + gp_global)
    return {"d_loss_local": d_local, "d_loss_global": d_global, "d_loss": d_adv,
            "gp_local": gp_local, "gp_global": gp_global, "gp_loss": gp, "total": d_adv + gp}
