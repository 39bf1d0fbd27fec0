"""Figures of lessons 07 (the generator), 08 (WGAN-GP) and 09 (training), drawn from course_lib.

Found and run by ``scripts/make_figures.py`` (``FIGURES`` below). Every function takes no
argument, is deterministic, and returns a new matplotlib ``Figure`` drawn by a
``course_lib.plots`` function from ``course_lib`` models (the stages figure uses the
bundled toy generator, ``course_lib/weights/toy_cpu.pt``).

    python scripts/make_figures.py 07_ 08_ 09_
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from course_lib import load_generator
from course_lib.data import make_dataset
from course_lib.evaluate import evaluation_masks
from course_lib.generator import CoarseNetwork, Generator
from course_lib.plots import gradient_maps_figure, ones_channel_figure, receptive_field_figure, stages_figure
from course_lib.receptive_field import conv_specs, gradient_map, support_size
from course_lib.samples import toy_weights
from course_lib.seed import seed_everything


def fig_07_ones_channel() -> Figure:
    return ones_channel_figure(size=16, kernel=5)


def fig_07_receptive_field() -> Figure:
    specs = conv_specs(Generator(cnum=4).coarse, CoarseNetwork.LAYERS[:12])  # conv1 .. conv12
    return receptive_field_figure(specs, image_size=256, hole=128)


def fig_07_gradient_maps() -> Figure:
    seed_everything(0)
    coarse = Generator(cnum=4).coarse  # random TF-style weights
    maps = {}
    for last in ("conv6", "conv10_atrous"):
        names = CoarseNetwork.LAYERS[:CoarseNetwork.LAYERS.index(last) + 1]
        grad = gradient_map([getattr(coarse, n) for n in names], in_channels=5, size=128)  # (128, 128)
        rows, cols = support_size(grad)
        maps[f"after {last}: {rows} x {cols} px"] = grad
    return gradient_maps_figure(maps)


def fig_07_stages() -> Figure:
    generator = load_generator(toy_weights())
    test = make_dataset("toy", split="test", size=64, seed=0, n=100)
    show = [0, 1, 3, 4]  # stripes, checks, bricks, faces
    x = torch.stack([test[i] for i in show])  # (4, 3, 64, 64)
    mask = evaluation_masks(100, 64, 64, seed=123, box=32)[show]  # (4, 1, 64, 64), as notebook 07
    with torch.no_grad():
        x_stage1, x_stage2, flow = generator(x, mask)
    return stages_figure(x, mask, x_stage1, x_stage2, flow)


FIGURES = {
    "07_ones_channel.png": fig_07_ones_channel,
    "07_receptive_field.png": fig_07_receptive_field,
    "07_gradient_maps.png": fig_07_gradient_maps,
    "07_stages.png": fig_07_stages,
}


# ----------------------------------------------------------------------------- lesson 08

def fig_08_wgan_1d() -> Figure:
    from course_lib.plots import wgan_1d_figure
    from course_lib.seed import make_generator
    from course_lib.wgan_toy import train_critic_1d
    g = make_generator(0)
    real = 1.5 + 0.3 * torch.randn(256, generator=g)  # (256,), as notebook 08
    fake = -1.0 + 0.3 * torch.randn(256, generator=g)
    runs = [train_critic_1d(real, fake, penalty=10.0, steps=300), train_critic_1d(real, fake, penalty=0.0, steps=300)]
    return wgan_1d_figure(real, fake, runs)


def fig_08_gan_vs_wgan_1d() -> Figure:
    from course_lib.plots import generator_gradients_figure
    from course_lib.wgan_toy import generator_gradients_1d
    return generator_gradients_figure(generator_gradients_1d([0.25, 0.5, 1.0, 2.0, 4.0, 8.0]))


def fig_08_masked_gradient() -> Figure:
    from course_lib.critics import GlobalCritic
    from course_lib.masks import random_box_mask
    from course_lib.seed import make_generator
    seed_everything(1)
    critic = GlobalCritic(cnum=8, size=64)  # random TF-style weights, as notebook 08
    x = make_dataset("toy", split="test", size=64, seed=0, n=5)[3][None].requires_grad_(True)  # (1, 3, 64, 64)
    mask, _ = random_box_mask(1, 64, 64, 32, 32, max_delta=8, generator=make_generator(2))  # (1, 1, 64, 64)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)  # (1, 3, 64, 64)
    magnitude = grad[0].abs().sum(0)  # (64, 64)
    return gradient_maps_figure({"|d critic / d x|, whole image": magnitude,
                                 "the part the masked penalty sees": magnitude * mask[0, 0]})


FIGURES.update({
    "08_wgan_1d.png": fig_08_wgan_1d,
    "08_gan_vs_wgan_1d.png": fig_08_gan_vs_wgan_1d,
    "08_masked_gradient.png": fig_08_masked_gradient,
})


# ----------------------------------------------------------------------------- lesson 09

def fig_09_ema() -> Figure:
    import tempfile
    from course_lib.config import load_config
    from course_lib.plots import ema_trajectory_figure
    from course_lib.train import Trainer
    tiny = ["image_size=32", "hole_size=16", "max_delta=4", "cnum=4", "critic_cnum=4", "batch_size=4",
            "critic_steps=2", "val_images=0", "progress=none", "tensorboard=false", "device=cpu",
            "snapshot_every=1000", "image_every=1000", "val_every=1000", "log_every=1000", "ema_decay=0.9"]
    with tempfile.TemporaryDirectory() as run:  # as notebook 09
        trainer = Trainer(load_config("toy_cpu", tiny), run)
        raw, averaged = [], []
        for _ in range(80):
            trainer.train_step()
            raw.append(trainer.generator.coarse.conv17.bias[0].item())
            averaged.append(trainer.ema.module.coarse.conv17.bias[0].item())
    return ema_trajectory_figure(raw, averaged, label="coarse.conv17.bias[0]")


def fig_09_per_kind() -> Figure:
    from course_lib.evaluate import baseline_fill, complete, psnr_by_kind
    from course_lib.plots import per_kind_figure
    generator = load_generator(toy_weights())
    test = make_dataset("toy", split="test", size=64, seed=0, n=200)
    x = torch.stack([test[i] for i in range(len(test))])  # (200, 3, 64, 64)
    kinds = [test.kind(i) for i in range(len(test))]
    mask = evaluation_masks(len(test), 64, 64, seed=123, box=32)  # the learning check's holes
    with torch.no_grad():
        fills = {"DeepFill v1 (toy model)": complete(generator, x, mask),
                 "diffusion fill": baseline_fill(x, mask, "diffusion"),
                 "mean-colour fill": baseline_fill(x, mask, "mean")}
    return per_kind_figure({name: psnr_by_kind(x, f, mask, kinds) for name, f in fills.items()})


FIGURES.update({
    "09_ema.png": fig_09_ema,
    "09_per_kind.png": fig_09_per_kind,
})
