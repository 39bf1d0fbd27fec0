"""Gated convolution (DeepFill v2) and v1's coarse network rebuilt with it.

Paper: Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019
(arXiv 1806.03589), Sec. 3.1 and Eq. 1. Taught in notebook 11 and lesson 11, a bonus
chapter after the DeepFill v1 course.

What follows the v2 release (``gen_conv`` / ``gen_deconv`` of its ``inpaint_ops.py``, read in
copies of that file that agree with one another): ``gen_conv`` is ONE conv whose output
channels are split in two halves along the channels, the first half the features, the
second the gate; ``out = ELU(features) * sigmoid(gate)``; the output conv (3 channels) is a
plain conv. The release asks ``gen_conv(x, cnum)`` for ``cnum`` conv channels and returns
``cnum / 2``; here :class:`GatedConv2d` ``(in, out)`` returns ``out`` channels from a conv of
``2 * out``.

Difference on purpose: :class:`GatedCoarseNetwork` keeps v1's layer table, 5-channel input
and output clip (v2 ends in tanh; ``output="tanh"`` gives that), so that it differs from
:class:`course_lib.generator.CoarseNetwork` in the convolution alone.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.generator import CoarseNetwork, stage_input
from course_lib.ops import ACTIVATIONS, GenConv, GenDeconv, SameConv2d, resize_nearest, same_conv2d

__all__ = ["gated_conv2d", "GatedConv2d", "GatedDeconv", "GatedCoarseNetwork"]


def gated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Gated convolution (v2 paper Eq. 1; release ``gen_conv``): ELU(features) * sigmoid(gate).

    ``x`` (B, C_in, H, W); ``weight`` (2C, C_in, k, k) and ``bias`` (2C,) of ONE 'SAME'
    conv (:func:`course_lib.ops.same_conv2d`); its first C output channels are the
    features, the last C the gate. Returns (B, C, ceil(H/s), ceil(W/s)).
    """
    if weight.dim() != 4 or weight.shape[0] % 2:
        raise ValueError(f"a gated conv needs a weight (2C, C_in, k, k) with an even number of output "
                         f"channels (C features + C gates), got shape {tuple(weight.shape)}")
    h = same_conv2d(x, weight, bias, stride, dilation)  # (B, 2C, H', W')
    features, gate = torch.chunk(h, 2, dim=1)  # (B, C, H', W') each: first half, second half
    return F.elu(features) * torch.sigmoid(gate)  # (B, C, H', W')


class GatedConv2d(SameConv2d):
    """A v2 ``gen_conv``: one 'SAME' conv to ``2 * out_channels``, split, ELU(features) * sigmoid(gate).

    ``activation`` acts on the feature half (``'elu'`` as the release, or ``'relu'``,
    ``'leaky_relu'``, ``'none'``); the gate is always a sigmoid. Weights start as TF's
    defaults (Glorot uniform, zero bias), as every course_lib conv and the release;
    ``gate_bias`` > 0 (ours, not the release's) starts the gate biases there instead, so that
    the gates start open (sigmoid(2) = 0.88) rather than half open.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, activation: str = "elu", gate_bias: float = 0.0) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
        super().__init__(in_channels, 2 * out_channels, kernel_size, stride=stride, dilation=dilation)
        self.activation = activation
        with torch.no_grad():  # 0 = the release's zero bias: every gate starts half open
            self.bias[out_channels:] = gate_bias

    def features_and_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two halves before the activations: (B, C, H', W') each."""
        h = same_conv2d(x, self.weight, self.bias, self.stride[0], self.dilation[0])  # (B, 2C, H', W')
        features, gate = torch.chunk(h, 2, dim=1)
        return features, gate

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(gate) in [0, 1], (B, C, H', W'): how much of each feature passes."""
        return torch.sigmoid(self.features_and_gate(x)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C, H', W')
        features, gate = self.features_and_gate(x)
        return ACTIVATIONS[self.activation](features) * torch.sigmoid(gate)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", gated: {self.out_channels // 2} out, activation={self.activation}"


class GatedDeconv(nn.Module):
    """The v2 ``gen_deconv``: nearest x2 upsampling (align_corners) then a 3x3 gated conv."""

    def __init__(self, in_channels: int, out_channels: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3, gate_bias=gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C_out, 2H, 2W)
        h, w = x.shape[-2:]
        return self.conv(resize_nearest(x, (2 * h, 2 * w)))


def _gated_like(layer: nn.Module, gate_bias: float = 0.0) -> nn.Module:
    """The gated twin of one v1 layer (same channels, kernel, stride, dilation)."""
    if isinstance(layer, GenDeconv):
        return GatedDeconv(layer.conv.in_channels, layer.conv.out_channels, gate_bias=gate_bias)
    if isinstance(layer, GenConv) and layer.activation == "none":  # the output conv stays plain
        return SameConv2d(layer.in_channels, layer.out_channels, layer.kernel_size[0],
                          stride=layer.stride[0], dilation=layer.dilation[0])
    if isinstance(layer, GenConv):
        return GatedConv2d(layer.in_channels, layer.out_channels, layer.kernel_size[0],
                           stride=layer.stride[0], dilation=layer.dilation[0], activation=layer.activation,
                           gate_bias=gate_bias)
    raise TypeError(f"no gated twin for a {type(layer).__name__}")


class GatedCoarseNetwork(nn.Module):
    """v1's coarse network (:class:`course_lib.generator.CoarseNetwork`) with every conv gated.

    Built from v1's own layer table (``CoarseNetwork.LAYERS``), layer for layer: each
    ``GenConv`` becomes a :class:`GatedConv2d` with the same output channels, each
    ``GenDeconv`` a :class:`GatedDeconv`, the output conv ``conv17`` stays a plain conv. So
    it has about twice the parameters (every conv computes its gate too). Input and output
    as v1: ``x`` (B, 3, H, W), ``mask`` (B or 1, 1, H, W) -> (B, 3, H, W), clipped to
    [-1, 1] (``output="tanh"``: the v2 release's tanh instead). Give it the incomplete
    image ``x * (1 - mask)``, as :class:`CoarseNetwork`.
    """

    LAYERS = CoarseNetwork.LAYERS

    def __init__(self, cnum: int = 32, output: str = "clip", gate_bias: float = 0.0) -> None:
        super().__init__()
        if output not in ("clip", "tanh"):
            raise ValueError(f"output must be 'clip' (v1's) or 'tanh' (the v2 release's), got {output!r}")
        self.output = output
        v1 = CoarseNetwork(cnum)
        for name in self.LAYERS:
            setattr(self, name, _gated_like(getattr(v1, name), gate_bias))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = stage_input(x, mask)  # (B, 5, H, W); x is the incomplete image, as for v1's CoarseNetwork
        for name in self.LAYERS:
            h = getattr(self, name)(h)  # ends at (B, 3, H, W)
        return torch.tanh(h) if self.output == "tanh" else h.clamp(-1.0, 1.0)
