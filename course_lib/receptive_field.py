"""Receptive fields of conv stacks: how far each output pixel of a network can "see".

Used in notebook 07 (the coarse-to-fine generator) to show why DeepFill v1's stage 1
needs its four dilated ("atrous") convs (paper Sec. 3.1, Figure 2; release
``conv7_atrous..conv10_atrous``, dilation 2, 4, 8, 16): without them an output pixel at
the centre of a 128x128 hole would see no known pixel at all.

For a chain of convs, with ``r`` the receptive field (in input pixels) and ``j`` the
*jump* (the input distance between two neighbouring positions of the current map),
starting from ``r = 1, j = 1``, each layer with kernel ``k``, stride ``s`` and dilation
``d`` gives

    r <- r + (k - 1) * d * j,        j <- j * s

(a dilated kernel spans ``(k - 1) * d + 1`` positions of its input map, each ``j`` input
pixels apart). Padding does not change ``r``; it only decides where the field is clipped
by the image border.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

__all__ = ["ConvSpec", "receptive_field", "conv_specs", "gradient_map", "support_size"]


class ConvSpec(NamedTuple):
    """One conv layer as the receptive-field formula sees it."""

    name: str
    kernel: int
    stride: int
    dilation: int


def _positive_int(value: object, what: str, index: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"layer {index}: {what} must be a positive int, got {value!r}; "
                         "give each layer as (kernel, stride, dilation), e.g. (3, 2, 1)")
    return value


def receptive_field(layers: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """``(receptive field, jump)`` after each layer of a conv chain.

    ``layers`` is a sequence of ``(kernel, stride, dilation)`` (a :class:`ConvSpec`'s last
    three fields work too: pass ``[s[1:] for s in specs]``). Returns one ``(r, j)`` per
    layer: ``r`` the side of the square of input pixels an output pixel depends on, ``j``
    the input distance between neighbouring outputs. An empty chain gives ``[]``.
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a sequence of (kernel, stride, dilation), got {type(layers).__name__}")
    r, j = 1, 1
    out: list[tuple[int, int]] = []
    for i, layer in enumerate(layers):
        if len(layer) != 3:
            raise ValueError(f"layer {i}: expected (kernel, stride, dilation), got {layer!r}")
        k, s, d = (_positive_int(v, w, i) for v, w in zip(layer, ("kernel", "stride", "dilation")))
        r = r + (k - 1) * d * j
        j = j * s
        out.append((r, j))
    return out


def conv_specs(network: nn.Module, names: Sequence[str]) -> list[ConvSpec]:
    """The ``(name, kernel, stride, dilation)`` of ``network``'s conv layers ``names``, in that order.

    Each name must be an ``nn.Conv2d`` (such as :class:`course_lib.ops.GenConv`) with
    square kernels, strides and dilations; e.g. ``conv_specs(generator.coarse,
    CoarseNetwork.LAYERS[:12])`` (the encoder and the dilated convs of stage 1).
    """
    specs = []
    for name in names:
        layer = getattr(network, name, None)
        if not isinstance(layer, nn.Conv2d):
            kind = "missing" if layer is None else type(layer).__name__
            raise ValueError(f"{name!r} is not a conv layer of {type(network).__name__} ({kind}); "
                             "pass the names of its Conv2d layers (an upsampling GenDeconv has no single "
                             "stride: list the layers before it)")
        k, s, d = layer.kernel_size, layer.stride, layer.dilation
        if k[0] != k[1] or s[0] != s[1] or d[0] != d[1]:
            raise ValueError(f"{name!r} is not square (kernel {k}, stride {s}, dilation {d})")
        specs.append(ConvSpec(name, k[0], s[0], d[0]))
    return specs


def gradient_map(layers: Sequence[nn.Module], in_channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """How strongly the centre output pixel of a layer chain depends on each input pixel.

    Runs ``layers`` in order on a seeded random ``(1, in_channels, size, size)`` input and
    backpropagates the sum over channels of the output at the centre of the last map.
    Returns ``|d out / d x|`` summed over the input channels, ``(size, size)``: its nonzero
    area is the measured receptive field (clipped by the image border), to compare with
    :func:`receptive_field`. The layers' weights are used as they are (random or trained).
    """
    if not layers:
        raise ValueError("gradient_map needs at least one layer")
    if not isinstance(size, int) or size < 1 or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"size and in_channels must be positive ints, got {size!r}, {in_channels!r}")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, in_channels, size, size, generator=g).requires_grad_(True)  # (1, C, S, S)
    h = x
    for layer in layers:
        h = layer(h)  # (1, C', h, w)
    rows, cols = h.shape[-2:]
    h[0, :, rows // 2, cols // 2].sum().backward()
    return x.grad[0].abs().sum(dim=0)  # (S, S)


def support_size(grad: torch.Tensor, rel_tol: float = 0.0) -> tuple[int, int]:
    """Height and width of the bounding box of ``grad``'s entries above ``rel_tol * grad.max()``."""
    if grad.dim() != 2:
        raise ValueError(f"expected an (H, W) map such as gradient_map's, got shape {tuple(grad.shape)}")
    hit = grad > rel_tol * grad.max()  # (H, W) bool
    if not hit.any():
        return 0, 0
    rows = torch.nonzero(hit.any(dim=1)).flatten()
    cols = torch.nonzero(hit.any(dim=0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
