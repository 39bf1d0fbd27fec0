"""WGAN-GP on one dimension: what the gradient penalty does to a critic (notebook 08).

A critic ``f`` of a Wasserstein GAN (Arjovsky et al., 2017) maximises
``E[f(real)] - E[f(fake)]`` over 1-Lipschitz functions; the maximum is the Wasserstein-1
distance between the two distributions. WGAN-GP (Gulrajani et al., 2017), which DeepFill v1
uses ("improved WGAN", paper Sec. 3), keeps the critic near 1-Lipschitz with the penalty
``lambda * E[(|grad f(x_hat)| - 1)^2]`` at random points ``x_hat`` between real and fake
samples (:func:`course_lib.losses.gradient_penalty`). Without it, nothing bounds the
critic: its estimate grows for as long as you train it.

Here real and fake are two fixed sets of numbers, the critic is a small MLP, and the
training step is the release's (Adam, lr 1e-4 scaled up to 1e-3 for speed, betas
(0.5, 0.9); critic loss ``mean(f(fake)) - mean(f(real)) + lambda * penalty``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.losses import gradient_penalty, wgan_critic_loss
from course_lib.seed import make_generator

__all__ = ["MLPCritic", "CriticRun", "train_critic_1d", "critic_slope", "train_discriminator_1d",
           "generator_gradients_1d"]


class MLPCritic(nn.Module):
    """A critic for scalars: 1 -> hidden -> hidden -> 1 with leaky ReLU 0.2 (as DeepFill's critics),
    its output layer zero at the start.

    Accepts (N,), (N, 1) or (N, 1, 1, 1) (the image layout that
    :func:`course_lib.losses.gradient_penalty` works in) and returns scores (N, 1).
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        # Start from f = 0: the data, not the random init, then decides which side scores
        # high. A critic that starts with the wrong sign can stay stuck there, because
        # turning around means passing slope 0, where the penalty (|slope| - 1)^2 is largest.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, 1))  # (N, 1)


@dataclass
class CriticRun:
    """A trained 1-D critic and its history: ``estimate[k]`` = mean f(real) - mean f(fake) after step k."""

    critic: MLPCritic
    penalty: float
    estimate: list[float] = field(default_factory=list)


def train_critic_1d(real: torch.Tensor, fake: torch.Tensor, penalty: float = 10.0, steps: int = 300,
                    lr: float = 1e-3, seed: int = 0, hidden: int = 64) -> CriticRun:
    """Train an :class:`MLPCritic` to tell ``real`` (N,) from ``fake`` (M,) samples, WGAN(-GP) style.

    ``penalty`` is the release's ``WGAN_GP_LAMBDA`` (10); 0 trains a plain WGAN critic with
    no constraint at all. Each step uses every sample (full batch); the penalty's
    interpolates pair ``real[i]`` with ``fake[i]`` (so N = M is required when
    ``penalty > 0``), with one seeded ``alpha`` per pair.
    """
    if real.dim() != 1 or fake.dim() != 1:
        raise ValueError(f"real and fake must be 1-D sample tensors, got shapes {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    if penalty < 0 or steps < 1 or lr <= 0:
        raise ValueError(f"need penalty >= 0, steps >= 1 and lr > 0, got {penalty}, {steps}, {lr}")
    if penalty > 0 and real.numel() != fake.numel():
        raise ValueError(f"the gradient penalty pairs real and fake samples: give as many of each, "
                         f"got {real.numel()} and {fake.numel()}")
    torch.manual_seed(seed)
    critic = MLPCritic(hidden)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    alphas = make_generator(seed + 1)
    run = CriticRun(critic, penalty)
    r, f = real.float().view(-1, 1, 1, 1), fake.float().view(-1, 1, 1, 1)  # (N, 1, 1, 1) "images"
    for _ in range(steps):
        loss = wgan_critic_loss(critic(r), critic(f))  # mean(f(fake)) - mean(f(real))
        if penalty > 0:
            loss = loss + penalty * gradient_penalty(critic, r, f, None, generator=alphas)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            run.estimate.append(float(critic(r).mean() - critic(f).mean()))
    return run


def critic_slope(critic: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """``d critic / d t`` at the points ``t`` (N,), by autograd: (N,)."""
    t = t.detach().float().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(t).sum(), t)
    return grad  # (N,)


def train_discriminator_1d(real: torch.Tensor, fake: torch.Tensor, steps: int = 300, lr: float = 1e-3,
                           seed: int = 0, hidden: int = 64) -> MLPCritic:
    """The same MLP trained as a standard GAN discriminator (Goodfellow et al., 2014; DCGAN's loss).

    ``D`` outputs a logit; the loss is the sigmoid cross-entropy
    ``-mean(log sigmoid(D(real))) - mean(log(1 - sigmoid(D(fake))))``, with the optimiser of
    :func:`train_critic_1d`, so the two runs differ only in the loss.
    """
    if real.dim() != 1 or fake.dim() != 1:
        raise ValueError(f"real and fake must be 1-D sample tensors, got shapes {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    if steps < 1 or lr <= 0:
        raise ValueError(f"need steps >= 1 and lr > 0, got {steps}, {lr}")
    torch.manual_seed(seed)
    disc = MLPCritic(hidden)
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.9))
    r, f = real.float(), fake.float()
    for _ in range(steps):
        loss = F.softplus(-disc(r)).mean() + F.softplus(disc(f)).mean()  # -log s(D(r)) - log(1 - s(D(f)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return disc


def generator_gradients_1d(shifts: list[float], n: int = 256, spread: float = 0.3, steps: int = 300,
                           seed: int = 0) -> dict[str, list[float]]:
    """Why DeepFill trains with a Wasserstein critic: what each loss tells the generator, in 1-D.

    For each ``shift``, real samples ``N(0, spread)`` and fake ones ``N(-shift, spread)``;
    a discriminator (:func:`train_discriminator_1d`) and a WGAN-GP critic
    (:func:`train_critic_1d`, lambda 10) are trained on them, and the returned lists hold the
    mean ``|d loss_G / d x|`` over the fake samples for

    * ``"gan"``: the minimax generator loss ``log(1 - sigmoid(D(x)))``, whose gradient is
      ``-sigmoid(D(x)) D'(x)``: it vanishes once the discriminator is sure (the clouds apart);
    * ``"gan_nonsaturating"``: ``-log sigmoid(D(x))``, the usual fix, gradient ``-(1 - sigmoid(D(x))) D'(x)``;
    * ``"wgan_gp"``: ``-f(x)``, gradient ``-f'(x)``, about 1 in size at every shift.
    """
    g = torch.Generator().manual_seed(seed)
    noise_r, noise_f = torch.randn(n, generator=g), torch.randn(n, generator=g)  # (n,), (n,)
    out: dict[str, list[float]] = {"shift": [], "gan": [], "gan_nonsaturating": [], "wgan_gp": []}
    for shift in shifts:
        real, fake = spread * noise_r, spread * noise_f - float(shift)  # (n,), (n,)
        disc = train_discriminator_1d(real, fake, steps=steps, seed=seed)
        critic = train_critic_1d(real, fake, penalty=10.0, steps=steps, seed=seed).critic
        x = fake.clone().requires_grad_(True)  # (n,)
        logits = disc(x)  # (n, 1)
        (g_sat,) = torch.autograd.grad(-F.softplus(logits).sum(), x)  # log(1 - s(D)) = -softplus(D)
        (g_ns,) = torch.autograd.grad(F.softplus(-disc(x)).sum(), x)  # -log s(D) = softplus(-D)
        (g_w,) = torch.autograd.grad(-critic(x).sum(), x)
        out["shift"].append(float(shift))
        out["gan"].append(float(g_sat.abs().mean()))
        out["gan_nonsaturating"].append(float(g_ns.abs().mean()))
        out["wgan_gp"].append(float(g_w.abs().mean()))
    return out
