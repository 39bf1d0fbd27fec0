"""Low-level operations with the exact semantics of the official DeepFill v1 release.

Two details decide whether the official TensorFlow weights give the official outputs:

* TF ``'SAME'`` padding puts the odd extra pixel at the bottom/right. A stride-2, 3x3 conv
  on an even size pads (top, bottom) = (0, 1); PyTorch's symmetric ``padding=1`` pads
  (1, 1) and shifts every feature by half a pixel.  :func:`same_padding` and
  :class:`SameConv2d` reproduce TF.
* Every resize in the release is nearest neighbour with ``align_corners=True``: the source
  index is ``round(dst * (in - 1) / (out - 1))``.  For x2 upsampling that equals pixel
  repetition, for x1/2 downsampling it does NOT equal ``x[..., ::2, ::2]`` (64 -> 32 picks
  rows 0, 2, ..., 30, 33, 35, ..., 63).  :func:`resize_nearest` reproduces TF.

Used by every layer of the model; ``pad_same`` appears in notebooks 03-04, the resize
semantics in notebook 06 (the rate-2 downsampling).

The resize has two implementations, tested equal (``torch.equal``, values and gradients) in
``tests/test_ops.py``: the step-by-step :func:`resize_nearest_reference` (two
``index_select`` gathers), kept for teaching and as the reference, and the fast
:func:`resize_nearest` the model runs (strided slices / a broadcast repeat where the index
table is an arithmetic run or a x2 pixel repetition, ``index_select`` otherwise). The conv,
:func:`same_conv2d`, has one: folding the padding into the conv is not bit-exact on every CPU
(see its docstring).

:func:`use_reference_ops` switches the model back to the reference resize (for the
benchmark's old-vs-new rows and the equality tests); :func:`fold_same_padding` lets fast
inference fold the symmetric 'SAME' paddings into the convs (equal to about 1e-6, not bit for bit).
"""
from __future__ import annotations

import contextlib
import functools
import math
from typing import Callable, Iterator, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "same_padding",
    "pad_same",
    "same_conv2d",
    "nearest_indices",
    "resize_nearest_reference",
    "resize_nearest",
    "use_reference_ops",
    "fold_same_padding",
    "folded_same_conv2d",
    "same_conv2d_input_grad",
    "same_conv2d_reach",
    "same_conv2d_input_grad_window",
    "nonzero_window",
    "upsample_conv2d",
    "FAST_PATH_FLAGS",
    "use_fast_path",
    "tf_default_init_",
    "SameConv2d",
    "GenConv",
    "GenDeconv",
    "ACTIVATIONS",
]


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Padding ``(before, after)`` of TensorFlow's ``'SAME'`` mode along one axis.

    TF: ``out = ceil(size / stride)``; ``total = max((out - 1) * stride + k_eff - size, 0)``
    with ``k_eff = (kernel - 1) * dilation + 1``; ``before = total // 2`` and the rest
    (the extra pixel, if any) goes ``after`` (bottom/right).
    """
    if size < 1 or kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(
            f"same_padding needs positive size/kernel/stride/dilation, got "
            f"size={size}, kernel={kernel}, stride={stride}, dilation={dilation}"
        )
    k_eff = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    before = total // 2
    return before, total - before


def pad_same(x: torch.Tensor, kernel: int, stride: int = 1, dilation: int = 1,
             mode: str = "constant") -> torch.Tensor:
    """Pad an NCHW tensor as TF ``'SAME'`` does before a ``kernel`` x ``kernel`` conv."""
    top, bottom = same_padding(x.shape[-2], kernel, stride, dilation)
    left, right = same_padding(x.shape[-1], kernel, stride, dilation)
    return F.pad(x, (left, right, top, bottom), mode=mode)  # (B, C, H+t+b, W+l+r)


_REFERENCE = {"on": False}  # set by use_reference_ops()
_FOLD = {"on": False}  # set by fold_same_padding()


@contextlib.contextmanager
def _switched(state: dict[str, bool], enabled: bool) -> Iterator[None]:
    """Set the module-level switch ``state["on"]`` within the block, then restore it."""
    previous = state["on"]
    state["on"] = bool(enabled)
    try:
        yield
    finally:
        state["on"] = previous


def use_reference_ops(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within the block, :func:`resize_nearest` runs the step-by-step reference.

    For comparisons: ``with use_reference_ops(): generator(x, mask)`` is the model as it ran
    before the fast resize existed (``index_select`` gathers). Not thread-safe (a
    module-level switch).
    """
    return _switched(_REFERENCE, enabled)


def fold_same_padding(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within the block, :func:`same_conv2d` folds a symmetric 'SAME' padding into ``F.conv2d``.

    For inference only (``course_lib.inpaint`` turns it on with the fast attention): no padded
    copy of the input for the stride-1 convs (every conv of the generator but the two stride-2
    ones, whose TF padding is asymmetric and keeps its one ``F.pad``), channels-last inputs on
    the CPU, and each ``gen_deconv`` as one sub-pixel 2x2 conv (:func:`upsample_conv2d`). The result is the same
    convolution summed in another order by oneDNN: equal to the default path to about 1e-6,
    not bit for bit on every CPU (see :func:`same_conv2d`). Not thread-safe (a module-level switch).
    """
    return _switched(_FOLD, enabled)


def folded_same_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                       stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """TF ``'SAME'`` conv with the padding folded into ``F.conv2d`` (the fast training path).

    Per axis, TF pads ``(before, after)`` (:func:`same_padding`); the symmetric part
    ``min(before, after)`` becomes the conv's own zero padding (no padded copy) and only the
    rest, TF's odd extra pixel at the bottom/right of a stride-2 conv on an even size, is
    padded by hand (one ``F.pad``). For a stride-2 conv that pad adds one more zero row
    (column) when the padded size would be odd: the conv never reads it (the output size
    does not change) and oneDNN runs even sizes faster. Same output as
    :func:`same_conv2d`'s default path up to float rounding (another summation order:
    about 1e-6 relative), values and gradients (``tests/test_ops.py``).
    """
    kh, kw = weight.shape[-2:]
    pads, sym = [], []
    for n, k in ((x.shape[-1], kw), (x.shape[-2], kh)):  # F.pad order: the last axis first
        before, after = same_padding(n, k, stride, dilation)
        common = min(before, after)
        extra_after = after - common
        if stride == 2 and extra_after and (n + before + after) % 2:
            extra_after += 1  # an unread zero row: an even padded size
        pads += [before - common, extra_after]
        sym.append(common)
    x = _cpu_channels_last(x)
    if any(pads):
        x = F.pad(x, pads)  # (B, C_in, H + extra, W + extra): the asymmetric remainder only
    return F.conv2d(x, weight, bias, stride, (sym[1], sym[0]), dilation)


CPU_CHANNELS_LAST = True  # the fast path's CPU convs take channels-last (NHWC) inputs


def _cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory (the same (B, C, H, W) tensor, NHWC strides) on the CPU; else ``x``.

    oneDNN runs its convolutions on NHWC-blocked data: an NCHW input is reordered on every
    call (forward and both backward halves), an NHWC one mostly is not, and the output
    comes back NHWC, so a chain of convs and elementwise activations stays NHWC. Measured
    on this project's CPU (1 thread): a 128-channel 3x3 conv with dilation 16 on a 32x32
    map, forward + backward, 46 ms NCHW against 26 ms NHWC; the whole 128 px generator step
    about 5 % faster. Values: the same sums in another order (float rounding). A no-op when
    :data:`CPU_CHANNELS_LAST` is False or on other devices (the GPU path sets its own layout).
    """
    if CPU_CHANNELS_LAST and x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


_PARITY_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))  # A_0, A_1 (2 x 3)


def upsample_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """A 3x3 TF ``'SAME'`` conv of the x2 pixel-repetition upsampling of ``x``, without upsampling (sub-pixel form).

    ``x`` (B, C_in, H, W), ``weight`` (C_out, C_in, 3, 3) -> (B, C_out, 2H, 2W): equal to
    ``same_conv2d(resize_nearest(x, (2H, 2W)), weight, bias)`` (the release's ``gen_deconv``;
    its x2 align-corners resize repeats each pixel) up to float rounding. Output row ``2I + u``
    reads upsampled rows ``2I + u - 1 .. 2I + u + 1``, i.e. input rows ``I - 1, I, I`` (u = 0) or
    ``I, I, I + 1`` (u = 1): a 2x2 kernel whose taps are sums of the 3x3 kernel's rows
    (``A_u W A_v^T``). The four parities run as one 2x2 conv with ``4 C_out`` outputs
    on ``x`` (padding 1: the zero border of the upsampled image), 4 multiply-adds per
    output instead of 9 on a map a quarter the size, then are interleaved.
    """
    B, _, H, W = x.shape
    c_out = weight.shape[0]
    taps = _parity_taps(weight.dtype, weight.device)  # (2, 2, 3): A_u
    kernels = torch.einsum("uak,oikl,vbl->uvoiab", taps, weight, taps)  # (2, 2, C_out, C_in, 2, 2)
    kernels = kernels.reshape(4 * c_out, weight.shape[1], 2, 2)  # (u, v, C_out) outputs
    b4 = None if bias is None else bias.repeat(4)
    x = _cpu_channels_last(x)
    y = F.conv2d(x, kernels, b4, 1, 1).view(B, 2, 2, c_out, H + 1, W + 1)  # window start I + u
    parts = [y[:, u, v, :, u:u + H, v:v + W] for u in (0, 1) for v in (0, 1)]  # each (B, C_out, H, W)
    if _is_channels_last(x):  # NHWC: one interleaving copy
        out = y.new_empty(B, H, 2, W, 2, c_out)  # NHWC memory of the (B, 2H, 2W, C_out) result
        for k, part in enumerate(parts):
            out[:, :, k // 2, :, k % 2, :] = part.permute(0, 2, 3, 1)  # rows 2I + u, columns 2J + v
        return out.view(B, 2 * H, 2 * W, c_out).permute(0, 3, 1, 2)  # (B, C_out, 2H, 2W), NHWC strides
    out = torch.stack(parts, dim=-1).view(B, c_out, H, W, 2, 2)  # (.., I, J, u, v)
    return out.permute(0, 1, 2, 4, 3, 5).reshape(B, c_out, 2 * H, 2 * W)  # (B, C_out, 2H, 2W)


@functools.lru_cache(maxsize=None)
def _parity_taps(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``_PARITY_TAPS`` as a (2, 2, 3) tensor, made once per dtype and device (a copy per call would wait for the GPU)."""
    return torch.tensor(_PARITY_TAPS, dtype=dtype, device=device)  # never written to


def _is_channels_last(x: torch.Tensor) -> bool:
    """A 4-d tensor stored NHWC (``channels_last``) and not also plain contiguous (C or H*W of 1)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _is_pixel_repetition(n: int) -> bool:
    """True when TF's x2 align-corners resize of ``n`` rows repeats each row (index table ``i // 2``)."""
    return bool(torch.equal(nearest_indices(n, 2 * n), torch.arange(2 * n) // 2))


def same_conv2d_input_grad(grad: torch.Tensor, weight: torch.Tensor, input_size: tuple[int, int],
                           stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """The gradient of a TF ``'SAME'`` conv's output w.r.t. its input, as a differentiable transposed conv.

    ``grad`` (B, C_out, H', W') = d loss / d :func:`same_conv2d` output; returns
    (B, C_in, H, W) with ``input_size = (H, W)``: the transposed conv of ``grad`` with
    ``weight`` (the symmetric part of the padding as its ``padding``), the rows and columns
    that fell on TF's extra padding cropped. The chain rule written out, for
    :meth:`course_lib.critics.Critic.input_gradient`: a gradient penalty built on it is
    differentiated by first-order kernels (a transposed conv's weight gradient) instead of
    autograd's double backward of a conv.
    """
    kh, kw = weight.shape[-2:]
    pads, crop = [], []
    for axis, (n, k) in enumerate(((input_size[0], kh), (input_size[1], kw))):
        before, after = same_padding(n, k, stride, dilation)
        common = min(before, after)
        target = n + before + after - 2 * common  # the conv's input after the hand-made pad
        base = (grad.shape[2 + axis] - 1) * stride - 2 * common + dilation * (k - 1) + 1
        pads.append((common, target - base))
        crop.append(before - common)
    g = F.conv_transpose2d(grad, weight, None, stride, (pads[0][0], pads[1][0]),
                           (pads[0][1], pads[1][1]), 1, dilation)  # (B, C_in, H + extra, W + extra)
    return g[:, :, crop[0]:crop[0] + input_size[0], crop[1]:crop[1] + input_size[1]]  # (B, C_in, H, W)


def same_conv2d_reach(start: int, stop: int, size: int, kernel: int, stride: int = 1,
                      dilation: int = 1) -> tuple[int, int]:
    """The output rows ``[i0, i1)`` of a TF ``'SAME'`` conv whose windows read input rows ``[start, stop)``.

    Along one axis of ``size`` input rows: output row ``i`` reads the input rows
    ``stride * i - before + t * dilation`` for the taps ``t = 0 .. kernel - 1`` (``before``
    from :func:`same_padding`), so the input gradient on ``[start, stop)`` depends on the
    output gradient on these rows only: the smallest run holding every output row that
    reads the input run when ``dilation`` is 1; with a dilation, a run that holds them all
    (the rows between the taps read nothing there, and add zeros). Empty when ``start == stop``.
    """
    if not 0 <= start <= stop <= size:
        raise ValueError(f"need 0 <= start <= stop <= size, got start={start}, stop={stop}, size={size}")
    before, _ = same_padding(size, kernel, stride, dilation)
    n_out = math.ceil(size / stride)
    if start == stop:
        return 0, 0
    i0 = max(0, -((-(start + before - dilation * (kernel - 1))) // stride))  # ceil division
    i1 = min(n_out, (stop - 1 + before) // stride + 1)
    return i0, max(i0, i1)


def same_conv2d_input_grad_window(grad: torch.Tensor, weight: torch.Tensor, out_start: tuple[int, int],
                                  window: tuple[tuple[int, int], tuple[int, int]], input_size: tuple[int, int],
                                  stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """:func:`same_conv2d_input_grad` on a window of the input only, from a window of the output gradient.

    ``grad`` (B, C_out, h', w') is the output gradient on the output rows/columns starting at
    ``out_start = (i0, j0)``; it must hold every output row and column that reads the input
    ``window = ((r0, r1), (c0, c1))`` (:func:`same_conv2d_reach`), the rest of the output
    gradient being irrelevant there. Returns the input gradient on the window,
    (B, C_in, r1 - r0, c1 - c0): a padding-free transposed conv of ``grad``, whose output
    starts at input row ``stride * i0 - before``, then cropped (or zero-extended where no
    output row reads an input row) to the window. The same numbers as cropping
    :func:`same_conv2d_input_grad`'s full result, with the work of the window only
    (the gradient penalty's hole: :meth:`course_lib.critics.Critic.input_gradient`).
    """
    kh, kw = weight.shape[-2:]
    pads = []
    for axis, (n, k) in enumerate(((input_size[0], kh), (input_size[1], kw))):
        before, _ = same_padding(n, k, stride, dilation)
        first = stride * out_start[axis] - before  # input row of the transposed conv's first output row
        length = (grad.shape[2 + axis] - 1) * stride + dilation * (k - 1) + 1
        lo, hi = window[axis]
        pads.append((first - lo, hi - (first + length)))  # > 0: zero rows added, < 0: rows cropped
    g = F.conv_transpose2d(grad, weight, None, stride, 0, 0, 1, dilation)  # (B, C_in, length_h, length_w)
    return F.pad(g, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))  # (B, C_in, r1 - r0, c1 - c0)


def nonzero_window(mask: torch.Tensor) -> Optional[tuple[tuple[int, int], tuple[int, int]]]:
    """The smallest window ``((r0, r1), (c0, c1))`` holding every nonzero of a (.., H, W) mask, or None.

    None when the mask is all zero or the window is the whole map (nothing to crop).
    Reads the mask on the host (a device sync on a GPU).
    """
    if mask.dim() < 2:
        raise ValueError(f"nonzero_window expects a (.., H, W) mask, got shape {tuple(mask.shape)}")
    hit = (mask != 0).flatten(0, -3).any(dim=0)  # (H, W)
    rows = torch.nonzero(hit.any(dim=1)).flatten().tolist()
    cols = torch.nonzero(hit.any(dim=0)).flatten().tolist()
    if not rows:
        return None
    window = ((rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1))
    return None if window == ((0, hit.shape[0]), (0, hit.shape[1])) else window


def same_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                stride: int = 1, dilation: int = 1, fold: bool = False) -> torch.Tensor:
    """TF ``'SAME'`` conv: pad a copy with :func:`pad_same`, then a padding-free conv.

    ``x`` (B, C_in, H, W), ``weight`` (C_out, C_in, k, k) -> (B, C_out, ceil(H/s), ceil(W/s)).

    Folding a symmetric padding into ``F.conv2d`` (no copy) is not the default: on this
    project's AVX-512 machine it gave the same bits for paddings up to 4 in inference, but
    under AVX2 kernels (``ONEDNN_MAX_CPU_ISA=AVX2``, as on CI) oneDNN sums in another order
    and the outputs differ in the last bits, so stored notebook numbers and the official
    weights' outputs would depend on the CPU; weight gradients differ (~1e-5) on every CPU.
    Inside :func:`fold_same_padding` (fast inference) a stride-1 conv with an odd kernel,
    whose 'SAME' padding ``(k - 1) * dilation / 2`` is the same on every side, is folded
    (on a channels-last input on the CPU, :func:`_cpu_channels_last`).
    ``fold=True`` (the fast training path, :func:`use_fast_path`) folds every conv, the
    stride-2 ones included (:func:`folded_same_conv2d`).
    """
    if fold:
        return folded_same_conv2d(x, weight, bias, stride, dilation)
    k = weight.shape[-1]
    if _FOLD["on"] and stride == 1 and k % 2 == 1 and weight.shape[-2] == k:
        return F.conv2d(_cpu_channels_last(x), weight, bias, 1, (k - 1) * dilation // 2, dilation)
    return F.conv2d(pad_same(x, k, stride, dilation), weight, bias, stride, 0, dilation)


FAST_PATH_FLAGS = ("fold_padding", "batched_attention", "explicit_input_gradient")  # set by use_fast_path()


def use_fast_path(*modules: nn.Module, enabled: bool = True) -> None:
    """Switch ``modules`` (and their children) onto the fast training path, or back; in place.

    Sets every flag of :data:`FAST_PATH_FLAGS` that a child has: every :class:`SameConv2d`
    folds its padding (``fold_padding``, :func:`folded_same_conv2d`),
    :class:`course_lib.generator.RefineNetwork` runs the batched dense contextual attention
    (``batched_attention``, :func:`course_lib.attention_fast.contextual_attention_batched`) and
    the critics give :func:`course_lib.losses.gradient_penalty` their input gradient by the
    chain rule written out (``explicit_input_gradient``,
    :meth:`course_lib.critics.Critic.input_gradient`). All are second
    implementations equal to the step-by-step path to float rounding (~1e-6 relative), values
    and gradients, everywhere in the image, so the trainer's losses are unchanged but for
    the last bits. A per-module flag, not a global switch: it travels with the module (a
    ``copy.deepcopy``, e.g. an EMA copy, keeps it) and is not saved in the state dict.
    """
    for module in modules:
        if not isinstance(module, nn.Module):
            raise TypeError(f"use_fast_path expects nn.Module arguments, got {type(module).__name__}")
        for child in module.modules():
            for flag in FAST_PATH_FLAGS:
                if hasattr(child, flag):
                    setattr(child, flag, bool(enabled))


def nearest_indices(in_size: int, out_size: int, align_corners: bool = True,
                    device: Optional[torch.device] = None) -> torch.Tensor:
    """Source indices of TF's ``resize_nearest_neighbor`` along one axis.

    TF (legacy, ``half_pixel_centers=False``) computes the scale in float32,
    ``scale = (in - 1) / (out - 1)`` when ``align_corners`` (and ``out > 1``), else
    ``in / out``; the source index is ``roundf(dst * scale)`` (round half away from zero)
    with ``align_corners``, ``floorf(dst * scale)`` without, clamped to ``in - 1``.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be positive, got in={in_size}, out={out_size}")
    if align_corners and out_size > 1:
        scale = torch.tensor((in_size - 1) / (out_size - 1), dtype=torch.float32)
    else:
        scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    dst = torch.arange(out_size, dtype=torch.float32)
    src = dst * scale  # float32 as in TF
    if align_corners:  # C roundf: half away from zero (floor(src + 0.5) misrounds 0.49999997)
        fl = torch.floor(src)
        src = fl + (src - fl >= 0.5).to(src.dtype)
    else:
        src = torch.floor(src)
    return src.clamp_(max=in_size - 1).to(dtype=torch.long, device=device)


def resize_nearest_reference(x: torch.Tensor, size: tuple[int, int], align_corners: bool = True) -> torch.Tensor:
    """Nearest-neighbour resize of an NCHW tensor to ``size = (H_out, W_out)``, TF semantics, step by step.

    Gathers the rows of :func:`nearest_indices`, then the columns (two ``index_select``).
    """
    if x.dim() != 4:
        raise ValueError(f"resize_nearest expects an NCHW tensor, got shape {tuple(x.shape)}")
    h_out, w_out = int(size[0]), int(size[1])
    rows = nearest_indices(x.shape[-2], h_out, align_corners, x.device)  # (H_out,)
    cols = nearest_indices(x.shape[-1], w_out, align_corners, x.device)  # (W_out,)
    return x.index_select(-2, rows).index_select(-1, cols)  # (B, C, H_out, W_out)


_MAX_RUNS = 8  # more arithmetic runs than this: one index_select is cheaper than many slices


def _index_runs(idx: list[int]) -> Optional[list[tuple[int, int, int]]]:
    """Split a strictly increasing index table into maximal arithmetic runs ``(start, step, count)``.

    ``[0, 2, 4, 7, 9]`` -> ``[(0, 2, 3), (7, 2, 2)]``. None if the table repeats an index
    (a slice cannot) or needs more than ``_MAX_RUNS`` runs.
    """
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(idx):
        if i + 1 == len(idx):
            runs.append((idx[i], 1, 1))
            break
        step = idx[i + 1] - idx[i]
        if step < 1:
            return None
        j = i + 1
        while j + 1 < len(idx) and idx[j + 1] - idx[j] == step:
            j += 1
        runs.append((idx[i], step, j - i + 1))
        i = j + 1
        if len(runs) > _MAX_RUNS:
            return None
    return runs


def _gather_axis(x: torch.Tensor, dim: int, idx: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``x.index_select(dim, idx)`` with the same values and gradients, by views where the table allows.

    Returns ``(y, copied)``; ``copied`` is False when ``y`` is a view of ``x``.

    * ``idx[i] = i // 2`` (x2 nearest upsampling): a broadcast repeat (one copy); its
      gradient adds the two copies, as ``index_select``'s backward does (a sum of two
      floats does not depend on the order);
    * a few arithmetic runs (e.g. ``0, 2, .., 30, 33, .., 63`` for 64 -> 32): strided
      slices, concatenated when there are several; distinct indices, so the gradient is
      placed, never summed, as in ``index_select``'s backward;
    * anything else: ``index_select``.
    """
    n_in, table = x.shape[dim], idx.tolist()
    if len(table) == 2 * n_in and table == [i // 2 for i in range(2 * n_in)]:
        if dim in (2, 3) and _is_channels_last(x):  # repeat in NHWC: the copy stays channels_last
            nhwc = x.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous
            shape = list(nhwc.shape)
            shape.insert(dim, 2)
            rep = nhwc.unsqueeze(dim).expand(shape).flatten(dim - 1, dim)  # (B, 2H, W, C) or (B, H, 2W, C)
            return rep.permute(0, 3, 1, 2), True
        shape = list(x.shape)
        shape.insert(dim + 1, 2)
        rep = x.unsqueeze(dim + 1).expand(shape)  # a view: (.., n, 2, ..)
        return rep.flatten(dim, dim + 1), True  # (.., 2n, ..), the one copy
    runs = _index_runs(table)
    if runs is None:
        return x.index_select(dim, idx.to(x.device)), True
    parts = [x.narrow(dim, start, (count - 1) * step + 1)[(slice(None),) * dim + (slice(None, None, step),)]
             for start, step, count in runs]  # views
    return (parts[0], False) if len(parts) == 1 else (torch.cat(parts, dim=dim), True)


def resize_nearest(x: torch.Tensor, size: tuple[int, int], align_corners: bool = True) -> torch.Tensor:
    """Nearest-neighbour resize of an NCHW tensor to ``size = (H_out, W_out)``, TF semantics.

    Release: ``resize(x, scale, to_shape, align_corners=True)`` with
    ``tf.image.resize_nearest_neighbor``; used for the x2 upsampling of ``gen_deconv``,
    the mask resize to feature size and the x1/rate downsampling in contextual attention.
    The same values and gradients as :func:`resize_nearest_reference` (``torch.equal``),
    computed with slices and broadcast views where the index table allows
    (:func:`_gather_axis`); rows first, then columns, as the reference. The result never
    shares memory with ``x`` (as ``index_select``'s), so writing into it is safe.
    """
    if x.dim() != 4:
        raise ValueError(f"resize_nearest expects an NCHW tensor, got shape {tuple(x.shape)}")
    if _REFERENCE["on"]:
        return resize_nearest_reference(x, size, align_corners)
    h_out, w_out = int(size[0]), int(size[1])
    rows = nearest_indices(x.shape[-2], h_out, align_corners)  # (H_out,), CPU: the tables are read
    cols = nearest_indices(x.shape[-1], w_out, align_corners)  # (W_out,)
    y, copied_rows = _gather_axis(x, 2, rows)  # (B, C, H_out, W)
    y, copied_cols = _gather_axis(y, 3, cols)  # (B, C, H_out, W_out)
    if not (copied_rows or copied_cols):  # only slices: a view of x, copy it once
        y = y.clone(memory_format=torch.contiguous_format)
    return y


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu": F.elu,
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
    "none": lambda t: t,
}


def tf_default_init_(layer: nn.Module) -> nn.Module:
    """Initialise a conv or dense layer as TF1's ``tf.layers`` does by default, in place.

    The release builds every layer with ``tf.layers.conv2d`` / ``tf.layers.dense`` and no
    initializer, so TF's defaults apply: Glorot (Xavier) uniform kernels,
    ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))`` and ``fan = channels * k * k``,
    and zero biases. PyTorch's own default (``kaiming_uniform_(a=sqrt(5))``, variance
    ``1 / (3 fan_in)``, random biases) is about 3x smaller in variance for a square 3x3
    conv: through the generator's 17 ELU layers the signal shrinks and training from scratch
    is much slower. Returns ``layer``.
    """
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"tf_default_init_ expects an nn.Conv2d or nn.Linear, got {type(layer).__name__}")
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``'SAME'`` zero padding (asymmetric when it must be).

    Stride-1 and dilated convs pad symmetrically (identical to PyTorch's ``padding=``);
    stride-2 convs on even sizes pad one more pixel at the bottom/right, as TF does.
    Weights start as TF's defaults (:func:`tf_default_init_`), as the release's layers do.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, dilation: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=0, dilation=dilation, bias=bias)

    def reset_parameters(self) -> None:
        """Called by ``nn.Conv2d.__init__``: TF's default init instead of PyTorch's."""
        tf_default_init_(self)

    fold_padding = False  # set by use_fast_path(): fold the padding into the conv (folded_same_conv2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        return same_conv2d(x, self.weight, self.bias, self.stride[0], self.dilation[0], self.fold_padding)


class GenConv(SameConv2d):
    """The release's ``gen_conv``: 'SAME' conv with bias, then an activation.

    ``activation`` is ``'elu'`` (default, every generator conv), ``'relu'`` (``pmconv6``)
    or ``'none'`` (the output convs ``conv17``/``allconv17``, which the generator then clips
    to [-1, 1] instead of using tanh).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, activation: str = "elu") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](super().forward(x))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", activation={self.activation}"


class GenDeconv(nn.Module):
    """The release's ``gen_deconv``: nearest x2 upsampling (align_corners) then a 3x3 GenConv.

    The conv lives in ``self.conv`` so that the checkpoint name
    ``convN_upsample/convN_upsample_conv`` maps to ``convN_upsample.conv``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = GenConv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C_out, 2H, 2W)
        h, w = x.shape[-2:]
        conv = self.conv
        if ((conv.fold_padding or _FOLD["on"]) and conv.kernel_size == (3, 3) and conv.dilation == (1, 1)
                and _is_pixel_repetition(h) and _is_pixel_repetition(w)):  # the fast training / inference paths
            return ACTIVATIONS[conv.activation](upsample_conv2d(x, conv.weight, conv.bias))
        return conv(resize_nearest(x, (2 * h, 2 * w)))
