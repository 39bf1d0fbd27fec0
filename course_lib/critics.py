"""The two WGAN-GP critics of DeepFill v1: a local one on the hole's box, a global one on the image.

Paper: Yu et al., CVPR 2018, Section 3 ("global and local Wasserstein GANs") and the
supplementary's critic architecture. Taught in notebook 08 (WGAN-GP with the two critics);
run by the trainer.

Release (``build_wgan_local_discriminator`` / ``build_wgan_global_discriminator`` plus the
dense layers ``dout_local_fc`` / ``dout_global_fc``):

* four ``dis_conv`` layers: 5x5, stride 2, TF ``'SAME'`` zero padding, bias, leaky ReLU
  with slope 0.2 (:class:`course_lib.ops.SameConv2d`);
* local critic on the 128x128 box around the hole: ``cnum, 2cnum, 4cnum, 8cnum`` channels;
  global critic on the 256x256 image: ``cnum, 2cnum, 4cnum, 4cnum``;
* the features are flattened in **NHWC** order (TensorFlow's layout) before the dense layer
  to one score. The official dense kernel is ``[H*W*C, 1]`` indexed ``(h, w, c)``, so the
  features are permuted to (B, H, W, C) before flattening; PyTorch's plain NCHW flatten
  would scramble the converted weights.

No sigmoid: a WGAN critic outputs an unbounded score.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.ops import (SameConv2d, same_conv2d_input_grad, same_conv2d_input_grad_window,
                            same_conv2d_reach, tf_default_init_)
from course_lib.precision import autocast_on, float32_under_autocast

__all__ = ["Critic", "LocalCritic", "GlobalCritic", "flatten_nhwc"]


def flatten_nhwc(h: torch.Tensor) -> torch.Tensor:
    """Flatten (B, C, H, W) features in TensorFlow's (h, w, c) order: -> (B, H*W*C).

    The release's dense layer (``tf.layers.flatten`` on NHWC features) has a kernel whose
    row ``(h * W + w) * C + c`` belongs to channel ``c`` at ``(h, w)``; a converted kernel
    only fits features flattened in this order, not PyTorch's ``h.flatten(1)`` (c, h, w).
    """
    if h.dim() != 4:
        raise ValueError(f"flatten_nhwc expects (B, C, H, W) features, got shape {tuple(h.shape)}")
    return h.permute(0, 2, 3, 1).flatten(1)  # (B, H*W*C), index (h * W + w) * C + c


class Critic(nn.Module):
    """Four 5x5 stride-2 'SAME' convs with leaky ReLU 0.2, NHWC flatten, dense ``fc`` -> 1 score.

    ``channels`` are the four conv widths; ``size`` is the (square) input size the dense
    layer is built for. Input (B, 3, size, size) in [-1, 1] -> (B, 1).
    """

    def __init__(self, channels: tuple[int, int, int, int], size: int) -> None:
        super().__init__()
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int (the square input side), got {size!r}")
        if len(channels) != 4 or any((not isinstance(c, int)) or c < 1 for c in channels):
            raise ValueError(f"channels must be four positive ints, got {channels!r}")
        self.size = size
        self.conv1 = SameConv2d(3, channels[0], 5, stride=2)
        self.conv2 = SameConv2d(channels[0], channels[1], 5, stride=2)
        self.conv3 = SameConv2d(channels[1], channels[2], 5, stride=2)
        self.conv4 = SameConv2d(channels[2], channels[3], 5, stride=2)
        self.feature_size = self._feature_side(size)  # TF 'SAME': ceil(size / 2) four times
        self.fc = tf_default_init_(nn.Linear(self.feature_size ** 2 * channels[3], 1))  # as tf.layers.dense

    @staticmethod
    def _feature_side(size: int) -> int:
        for _ in range(4):
            size = math.ceil(size / 2)
        return size

    def _check(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{name} expects a (B, 3, {self.size}, {self.size}) image batch, got {shape}; "
                "add a batch axis with x[None], move channels first with x.permute(0, 3, 1, 2)")
        if tuple(x.shape[-2:]) != (self.size, self.size):
            hint = ("crop the box around the hole with course_lib.masks.local_patch"
                    if isinstance(self, LocalCritic) else "crop or resize the images")
            raise ValueError(
                f"{name} was built for {self.size}x{self.size} inputs, got "
                f"{x.shape[-2]}x{x.shape[-1]}; {hint}, or build {name}(size={x.shape[-2]}) "
                "for square inputs of another size")
        if x.dtype != self.fc.weight.dtype:
            raise TypeError(
                f"x has dtype {x.dtype} but the critic's parameters are {self.fc.weight.dtype}; "
                f"convert the model with critic.to(x.dtype) or the input with x.to({self.fc.weight.dtype})")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv features before the dense layer: (B, C4, size/16, size/16) (rounded up)."""
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.leaky_relu(conv(x), 0.2)  # (B, C_k, ceil(H/2), ceil(W/2))
        return x

    explicit_input_gradient = False  # set by course_lib.ops.use_fast_path(): gradient_penalty uses input_gradient

    def input_gradient(self, x: torch.Tensor,
                       window: Optional[tuple[tuple[int, int], tuple[int, int]]] = None) -> torch.Tensor:
        """``d sum(self(x)) / d x`` (B, 3, size, size), by the chain rule written out; differentiable in the weights.

        Back from the dense layer: ``g = fc.weight`` (as NHWC features), then per conv, last
        first, ``g = g * leaky'(z)`` (1 where the conv's output ``z > 0``, else 0.2, as
        ``leaky_relu``'s backward) and ``g =`` the conv's input gradient
        (:func:`course_lib.ops.same_conv2d_input_grad`, a transposed conv). The forward runs
        without a graph (only the signs of ``z`` are needed: ``leaky'`` is piecewise
        constant, so its own derivative is 0, as in autograd's double backward). The
        gradient penalty (:func:`course_lib.losses.gradient_penalty`) then needs first-order
        kernels only, where ``autograd.grad(..., create_graph=True)`` differentiates each
        conv's backward by a slow double-backward path. Equal to autograd's gradient to
        float rounding (``tests/test_critics.py``).

        ``window = ((r0, r1), (c0, c1))``: the gradient on those input rows and columns only,
        (B, 3, r1 - r0, c1 - c0), with each layer's backward run on the part of its map that
        reaches the window (:func:`course_lib.ops.same_conv2d_reach`): the same numbers as
        cropping the full gradient, for a fraction of the work when the gradient penalty's
        mask covers part of the image.
        """
        self._check(x)
        convs = (self.conv1, self.conv2, self.conv3, self.conv4)
        slopes, sizes = [], []
        with torch.no_grad():
            h = x
            for conv in convs:
                sizes.append(tuple(h.shape[-2:]))
                z = conv(h)  # (B, C_k, ceil(H/2), ceil(W/2))
                slopes.append(torch.where(z > 0, z.new_tensor(1.0), z.new_tensor(0.2)))  # leaky_relu's derivative, z's dtype
                h = F.leaky_relu(z, 0.2)
        side, c4 = self.feature_size, self.conv4.out_channels
        fc = self.fc.weight.view(1, side, side, c4).permute(0, 3, 1, 2)  # (1, C4, h, w), NHWC rows
        if window is None:
            g = fc * slopes[3]  # (B, C4, h, w)
            for k in (3, 2, 1, 0):
                conv = convs[k]
                g = same_conv2d_input_grad(g, conv.weight, sizes[k], conv.stride[0], conv.dilation[0])
                if k:
                    g = g * slopes[k - 1]  # (B, C_k, H_k, W_k)
            return g  # (B, 3, size, size)
        windows = [window]  # per layer input, the rows/columns that reach the window
        for k, conv in enumerate(convs):
            windows.append(tuple(same_conv2d_reach(*windows[k][a], sizes[k][a], conv.kernel_size[a], conv.stride[a],
                                                   conv.dilation[a]) for a in (0, 1)))
        if any(lo >= hi for w in windows for lo, hi in w):
            raise ValueError(f"window {window} is empty or outside the {self.size}x{self.size} input")
        (r0, r1), (c0, c1) = windows[4]
        g = fc[..., r0:r1, c0:c1] * slopes[3][..., r0:r1, c0:c1]  # (B, C4, r1 - r0, c1 - c0)
        for k in (3, 2, 1, 0):
            conv = convs[k]
            start = (windows[k + 1][0][0], windows[k + 1][1][0])
            g = same_conv2d_input_grad_window(g, conv.weight, start, windows[k], sizes[k], conv.stride[0],
                                              conv.dilation[0])  # (B, C_k-1, window of layer k's input)
            if k:
                (r0, r1), (c0, c1) = windows[k]
                g = g * slopes[k - 1][..., r0:r1, c0:c1]
        return g  # (B, 3, window rows, window columns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, size, size) -> scores (B, 1)."""
        self._check(x)
        h = self.features(x)  # (B, C4, h, w)
        h = flatten_nhwc(h)  # (B, h*w*C4) in NHWC order, as TF flattens
        if autocast_on(h.device.type):  # the score in float32: a sum over h*w*C4 products in bf16/fp16
            with float32_under_autocast(h.device.type):  # loses digits and can overflow (fp16)
                return self.fc(h.float())  # (B, 1) float32
        return self.fc(h)  # (B, 1)


class LocalCritic(Critic):
    """Local critic on the hole's box (release ``discriminator_local`` + ``dout_local_fc``).

    Channels ``cnum, 2cnum, 4cnum, 8cnum`` (64..512 in the release); 128x128 input.
    """

    def __init__(self, cnum: int = 64, size: int = 128) -> None:
        super().__init__((cnum, 2 * cnum, 4 * cnum, 8 * cnum), size)
        self.cnum = cnum


class GlobalCritic(Critic):
    """Global critic on the whole image (release ``discriminator_global`` + ``dout_global_fc``).

    Channels ``cnum, 2cnum, 4cnum, 4cnum`` (64, 128, 256, 256 in the release); 256x256 input.
    """

    def __init__(self, cnum: int = 64, size: int = 256) -> None:
        super().__init__((cnum, 2 * cnum, 4 * cnum, 4 * cnum), size)
        self.cnum = cnum
