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

import torch.nn as nn

__all__ = ["ConvSpec", "receptive_field", "conv_specs"]


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
