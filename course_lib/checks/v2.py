"""Checks for the DeepFill v2 exercises (notebook 11, lesson 11).

Exercises: ``gated_conv2d`` (one 'SAME' conv to 2C channels, split into features and gate,
ELU(features) * sigmoid(gate)), ``hinge_d_loss`` (the SN-PatchGAN critic's hinge loss) and
``hinge_g_loss`` (the generator's adversarial loss against it). Each check compares the
student's function with :mod:`course_lib.gated` / :mod:`course_lib.sn_patchgan` on seeded
inputs and names the planted mistake that gives the student's answer.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from course_lib import gated, sn_patchgan
from course_lib.ops import same_conv2d
from course_lib.seed import make_generator

from . import Case, compare_cases, expect_gradient, hinted_mistakes, register, require_phrases

NB11 = "11_deepfill_v2.ipynb"


# ---------------------------------------------------------------- gated_conv2d

def _halves(x, weight, bias, stride=1, dilation=1):
    h = same_conv2d(x, weight, bias, stride, dilation)  # (B, 2C, H', W')
    return torch.chunk(h, 2, dim=1)


def _gated_halves_swapped(x, weight, bias, stride=1, dilation=1):
    gate, features = _halves(x, weight, bias, stride, dilation)
    return F.elu(features) * torch.sigmoid(gate)


def _gated_no_activation(x, weight, bias, stride=1, dilation=1):
    features, gate = _halves(x, weight, bias, stride, dilation)
    return features * torch.sigmoid(gate)


def _gated_tanh(x, weight, bias, stride=1, dilation=1):
    features, gate = _halves(x, weight, bias, stride, dilation)
    return F.elu(features) * torch.tanh(gate)


def _gated_elu_after(x, weight, bias, stride=1, dilation=1):
    features, gate = _halves(x, weight, bias, stride, dilation)
    return F.elu(features * torch.sigmoid(gate))


def _gated_relu(x, weight, bias, stride=1, dilation=1):
    features, gate = _halves(x, weight, bias, stride, dilation)
    return F.relu(features) * torch.sigmoid(gate)


def _gated_interleaved(x, weight, bias, stride=1, dilation=1):
    h = same_conv2d(x, weight, bias, stride, dilation)
    return F.elu(h[:, 0::2]) * torch.sigmoid(h[:, 1::2])


def _gated_torch_padding(x, weight, bias, stride=1, dilation=1):
    k = weight.shape[-1]
    h = F.conv2d(x, weight, bias, stride, dilation * (k // 2), dilation)
    features, gate = torch.chunk(h, 2, dim=1)
    return F.elu(features) * torch.sigmoid(gate)


def _gated_undilated_padding(x, weight, bias, stride=1, dilation=1):
    h = F.conv2d(x, weight, bias, stride, weight.shape[-1] // 2, dilation)  # k // 2, not dilation * (k // 2)
    features, gate = torch.chunk(h, 2, dim=1)
    return F.elu(features) * torch.sigmoid(gate)


def _gated_no_stride(x, weight, bias, stride=1, dilation=1):
    return gated.gated_conv2d(x, weight, bias, 1, dilation)


def _gated_no_dilation(x, weight, bias, stride=1, dilation=1):
    return gated.gated_conv2d(x, weight, bias, stride, 1)


_GATED_HINTS = {
    "first half": "the first half of the channels are the features, the second half the gate "
                  "(features, gate = torch.chunk(h, 2, dim=1)): yours has them the other way round, "
                  "so the sigmoid lands on the features",
    "ELU on the features": "put ELU on the features: out = elu(features) * sigmoid(gate); without it the "
                           "layer is linear where the gate is open",
    "sigmoid, not tanh": "the gate is a sigmoid, not tanh: a gate in [0, 1] lets a feature through or "
                         "stops it, tanh would flip its sign",
    "before the product": "apply ELU to the features before the product, elu(features) * sigmoid(gate), "
                          "not elu(features * sigmoid(gate)) after it",
    "ELU, not ReLU": "the release's feature activation is ELU, not ReLU (course_lib.ops uses F.elu everywhere)",
    "two halves": "split the channels into two halves, torch.chunk(h, 2, dim=1), not even and odd channels",
    "'SAME' padding": "use TF 'SAME' padding, same_conv2d(x, weight, bias, stride, dilation): PyTorch's "
                      "symmetric padding= differs for a stride-2 conv on an even size",
    "dilated conv": "use TF 'SAME' padding, same_conv2d(x, weight, bias, stride, dilation): PyTorch's "
                    "padding=k // 2 is too little for a dilated conv (it needs dilation * (k // 2)) and not "
                    "'SAME' for a stride-2 conv on an even size",
    "stride argument": "use the stride argument (pass it on to same_conv2d)",
    "dilation argument": "use the dilation argument (pass it on to same_conv2d)",
}
_GATED_MISTAKES = {"first half": _gated_halves_swapped, "ELU on the features": _gated_no_activation,
                   "sigmoid, not tanh": _gated_tanh, "before the product": _gated_elu_after,
                   "ELU, not ReLU": _gated_relu, "two halves": _gated_interleaved,
                   "'SAME' padding": _gated_torch_padding, "dilated conv": _gated_undilated_padding,
                   "stride argument": _gated_no_stride,
                   "dilation argument": _gated_no_dilation}
require_phrases(_GATED_HINTS, _GATED_MISTAKES)


@register("gated_conv2d", reference=gated.gated_conv2d, notebook=NB11,
          hint="gated_conv2d(x, weight, bias, stride=1, dilation=1): one 'SAME' conv to 2C channels, "
               "features, gate = the two halves, elu(features) * sigmoid(gate)",
          mistakes=_GATED_MISTAKES)
def _check_gated_conv2d(fn: Callable[..., Any]) -> None:
    """gated_conv2d(x, weight, bias, stride=1, dilation=1) = elu(first half) * sigmoid(second half)."""
    name = "gated_conv2d"
    gen = make_generator(111)
    cases = []
    for (b, c_in, c, size, k, kwargs) in ((1, 1, 1, 3, 1, {}), (2, 3, 2, 6, 3, {}),
                                         (1, 2, 3, 8, 3, {"stride": 2}), (2, 2, 2, 7, 3, {"dilation": 2}),
                                         (1, 3, 2, 8, 5, {"stride": 2})):
        x = torch.randn(b, c_in, size, size, generator=gen)  # (B, C_in, S, S)
        weight = torch.randn(2 * c, c_in, k, k, generator=gen)  # (2C, C_in, k, k)
        bias = torch.randn(2 * c, generator=gen)  # (2C,)
        cases.append(Case((x, weight, bias), kwargs,
                          f"gated_conv2d(x {tuple(x.shape)}, weight {tuple(weight.shape)}, bias, "
                          + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"))
    compare_cases(name, fn, gated.gated_conv2d, cases,
                  "h = same_conv2d(x, weight, bias, stride, dilation); features, gate = the first and "
                  "second half of h's channels; return elu(features) * sigmoid(gate)",
                  variants=lambda case: hinted_mistakes(name, _GATED_HINTS, *case.args, **case.kwargs),
                  shape_hint="the output has half the conv's channels (C of 2C) and ceil(H / stride) rows")
    expect_gradient(name, fn, gated.gated_conv2d, cases[2], wrt=(0, 1, 2))


# ---------------------------------------------------------------- hinge_d_loss

def _hinge_sign(pos, neg):
    return torch.mean(F.relu(1.0 + pos)) + torch.mean(F.relu(1.0 - neg))


def _hinge_no_relu(pos, neg):
    return torch.mean(1.0 - pos) + torch.mean(1.0 + neg)


def _hinge_sum(pos, neg):
    return torch.sum(F.relu(1.0 - pos)) + torch.sum(F.relu(1.0 + neg))


def _hinge_margin_zero(pos, neg):
    return torch.mean(F.relu(-pos)) + torch.mean(F.relu(neg))


def _hinge_wgan(pos, neg):
    return torch.mean(neg - pos)


def _hinge_halved(pos, neg):
    return 0.5 * torch.mean(F.relu(1.0 - pos)) + 0.5 * torch.mean(F.relu(1.0 + neg))


def _hinge_on_means(pos, neg):
    return F.relu(1.0 - pos.mean()) + F.relu(1.0 + neg.mean())


def _hinge_per_entry(pos, neg):
    return F.relu(1.0 - pos) + F.relu(1.0 + neg)


_HINGE_D_HINTS = {
    "sign": "the signs are flipped: real scores are pushed UP to +1, relu(1 - pos), fake ones DOWN to -1, "
            "relu(1 + neg)",
    "relu": "clip each term at zero with relu: a real score above +1 (or a fake one below -1) must cost "
            "nothing, that is the hinge",
    "mean": "use the mean over all scores, not the sum: the loss must not grow with the batch or the "
            "size of the PatchGAN map",
    "margin of 1": "the hinge has a margin of 1: relu(1 - pos) and relu(1 + neg), not relu(-pos) and relu(neg)",
    "WGAN critic loss": "that is the WGAN critic loss of notebook 08, not the hinge loss: "
                    "the critic's loss is mean(relu(1 - pos)) + mean(relu(1 + neg)), one number",
    "0.5": "add the two means as the paper's Eq. 3 does, without a factor 0.5 on each term",
    "each score": "apply the hinge to each score (each patch), then average; not to the mean score",
    "one number": "the loss is one number (shape ()): average each hinge over all its scores",
}
_HINGE_D_MISTAKES = {"sign": _hinge_sign, "relu": _hinge_no_relu, "mean": _hinge_sum,
                     "margin of 1": _hinge_margin_zero, "WGAN critic loss": _hinge_wgan, "0.5": _hinge_halved,
                     "each score": _hinge_on_means, "one number": _hinge_per_entry}
require_phrases(_HINGE_D_HINTS, _HINGE_D_MISTAKES)


def _score_cases(gen: torch.Generator, two: bool) -> list[Case]:
    # mean real score above +1 and mean fake one below -1, with single scores inside the margins
    pos = torch.tensor([2.5, 3.0, 0.2, 1.5])
    neg = torch.tensor([-2.5, 0.5, -3.0, -1.2])
    cases = [Case((pos, neg), {}, "hinge_d_loss(pos, neg) for 4 chosen scores") if two else
             Case((neg,), {}, "hinge_g_loss(neg) for 4 chosen scores")]
    for shape, what in (((5,), "5 scores"), ((2, 3, 2, 2), "PatchGAN maps (2, 3, 2, 2)"),
                        ((1, 1), "one score")):
        pos = torch.randn(shape, generator=gen) * 1.5 + 0.5  # real scores on both sides of +1
        neg = torch.randn(shape, generator=gen) * 1.5 - 0.5  # fake scores on both sides of -1
        if two:
            cases.append(Case((pos, neg), {}, f"hinge_d_loss(pos, neg) for {what}"))
        else:
            cases.append(Case((neg,), {}, f"hinge_g_loss(neg) for {what}"))
    return cases


@register("hinge_d_loss", reference=sn_patchgan.hinge_d_loss, notebook=NB11,
          hint="hinge_d_loss(pos, neg) = mean(relu(1 - pos)) + mean(relu(1 + neg)), one number",
          mistakes=_HINGE_D_MISTAKES)
def _check_hinge_d_loss(fn: Callable[..., Any]) -> None:
    """hinge_d_loss(pos, neg) = mean(relu(1 - pos)) + mean(relu(1 + neg)), one number."""
    name = "hinge_d_loss"
    cases = _score_cases(make_generator(112), two=True)
    compare_cases(name, fn, sn_patchgan.hinge_d_loss, cases,
                  "the critic's loss is mean(relu(1 - pos)) + mean(relu(1 + neg)), one number",
                  variants=lambda case: hinted_mistakes(name, _HINGE_D_HINTS, *case.args),
                  shape_hint=_HINGE_D_HINTS["one number"])
    expect_gradient(name, fn, sn_patchgan.hinge_d_loss, cases[1], wrt=(0, 1))


# ---------------------------------------------------------------- hinge_g_loss

def _g_sign(neg):
    return torch.mean(neg)


def _g_hinged(neg):
    return torch.mean(F.relu(1.0 - neg))


def _g_sum(neg):
    return -torch.sum(neg)


def _g_per_entry(neg):
    return -neg


def _g_log(neg):
    return F.softplus(-neg).mean()  # the non-saturating GAN loss


def _g_margin(neg):
    return 1.0 - torch.mean(neg)  # a constant 1 (the critic's margin) added


def _g_hinge_on_mean(neg):
    return F.relu(1.0 - neg.mean())


_HINGE_G_HINTS = {
    "constant": "the generator's loss is -mean(neg), with no 1 in it: 1 - mean(neg) adds a constant, "
                "which leaves the gradient alone but changes the number you log and compare",
    "mean score": "no hinge, not even on the mean score: the generator's loss is the plain -mean(neg), "
                  "relu(1 - mean(neg)) stops pushing once the mean fake score passes +1",
    "sign": "the sign is flipped: the generator wants its fake scores HIGH, so it minimises -mean(neg)",
    "no hinge": "the generator's loss has no hinge: -mean(neg), which keeps pushing even past +1 "
                "(the release's gan_hinge_loss)",
    "mean": "use the mean over all scores, not the sum",
    "one number": "the loss is one number (shape ()): -mean(neg) over every score of the map",
    "no log": "no log and no sigmoid: with a hinge critic the generator's loss is the plain -mean(neg)",
}
_HINGE_G_MISTAKES = {"sign": _g_sign, "no hinge": _g_hinged, "mean": _g_sum, "one number": _g_per_entry,
                     "no log": _g_log, "constant": _g_margin, "mean score": _g_hinge_on_mean}
require_phrases(_HINGE_G_HINTS, _HINGE_G_MISTAKES)


@register("hinge_g_loss", reference=sn_patchgan.hinge_g_loss, notebook=NB11,
          hint="hinge_g_loss(neg) = -mean(neg): the scores of the completed images, one number",
          mistakes=_HINGE_G_MISTAKES)
def _check_hinge_g_loss(fn: Callable[..., Any]) -> None:
    """hinge_g_loss(neg) = -mean(neg): the scores of the completed images, one number."""
    name = "hinge_g_loss"
    cases = _score_cases(make_generator(113), two=False)
    cases.append(Case((torch.tensor([[2.0, 1.5], [3.0, -0.5]]),), {},
                      "hinge_g_loss(neg) for fake scores whose mean is above +1"))
    compare_cases(name, fn, sn_patchgan.hinge_g_loss, cases,
                  "the generator's loss is minus the mean of every fake score, -mean(neg), one number",
                  variants=lambda case: hinted_mistakes(name, _HINGE_G_HINTS, *case.args),
                  shape_hint=_HINGE_G_HINTS["one number"])
    expect_gradient(name, fn, sn_patchgan.hinge_g_loss, cases[1], wrt=(0,))
