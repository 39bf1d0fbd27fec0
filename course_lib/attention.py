"""Contextual attention (paper Section 4.1, Figure 3), with the release's semantics.

The refinement network's attention branch fills a hole by copying feature patches from
the known background: each foreground position scores every background patch (cosine-like
similarity), the scores are "fused" so that neighbours agree (attention
propagation), a masked softmax turns them into weights, and the output is the
weighted sum of background patches, pasted back with a transposed convolution.

Each step is one public function so that the notebooks can build and check them one at a
time: notebook 03 (extract_patches, normalize_patches, matching_scores), 04 (valid_patches,
masked_softmax, fuse_scores), 05 (reconstruct) and 06 (downsample, attention_offsets, the
whole layer), with lessons/03-06; :func:`contextual_attention` chains them exactly as the release's
``contextual_attention`` in ``inpaint_ops.py`` (steps 1-10 of the reference):

1. :func:`extract_patches` of size ``2*rate`` from full-resolution ``b`` (stride ``rate``)
   -- the "raw" patches used for pasting;
2. :func:`downsample` ``f``, ``b`` and ``mask`` by ``1/rate`` (nearest, align_corners);
3. :func:`extract_patches` ``ksize x ksize`` from the downsampled ``b`` -- the matching filters;
4. :func:`valid_patches`: a patch may be copied only if no hole pixel lies in its window;
5. :func:`normalize_patches`: unit L2 norm (floor 1e-4) on the background side only;
6. :func:`matching_scores`: convolution of ``f`` with the normalised patches;
7. :func:`fuse_scores`: identity-kernel convolution of the score matrix, twice (attention propagation);
8. :func:`masked_softmax`: scaled softmax over patches, invalid patches zeroed;
9. :func:`attention_offsets` + :func:`course_lib.flow.flow_to_color`: the flow picture;
10. :func:`reconstruct`: transposed convolution with the raw patches, divided by 4.

Release behaviours kept on purpose (they matter for the official weights): matching runs
at half resolution (``rate=2``) while pasting uses full-resolution 4x4 patches; invalid
patches get a score of 0 (not -inf) before the softmax and the weights are not
renormalised; offsets divide the argmax index by the *foreground* width.
Difference: the release uses one mask per batch; here ``mask`` may also be per sample.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .flow import flow_to_color, pictures_enabled
from .value_checks import values_already_checked
from .ops import pad_same, resize_nearest, same_padding

__all__ = [
    "extract_patches",
    "downsample",
    "valid_patches",
    "normalize_patches",
    "matching_scores",
    "cosine_scores",
    "fuse_scores",
    "masked_softmax",
    "reconstruct",
    "attention_offsets",
    "offsets_of_index",
    "flow_picture",
    "attention_weights",
    "contextual_attention",
]


# ---------------------------------------------------------------------------- checks

def _check_nchw(name: str, x: object, floating: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be 4-D (B, C, H, W), got shape {tuple(x.shape)}; "
            f"add a batch dimension with {name}[None] if it is a single (C, H, W) map"
        )
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}; use {name}.float()")
    return x


def _check_positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_patches(name: str, w: object) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 5:
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(
            f"{name} must be a (B, L, C, k, k) tensor of patches as returned by "
            f"extract_patches, got {shape}"
        )
    return w


# ---------------------------------------------------------------------------- steps

def extract_patches(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    """All ``kernel x kernel`` patches of ``x`` with TF 'SAME' zero padding.

    Release: ``tf.extract_image_patches(x, [1,k,k,1], [1,s,s,1], [1,1,1,1], 'SAME')``
    (steps 1 and 3). Returns ``(B, L, C, kernel, kernel)`` with
    ``L = ceil(H/stride) * ceil(W/stride)`` in row-major order of the patch positions;
    patch ``l`` at grid position (i, j) covers padded rows ``i*stride .. i*stride+kernel-1``,
    where TF 'SAME' puts the odd extra padding pixel at the bottom/right.
    """
    _check_nchw("x", x, floating=False)
    _check_positive_int("kernel", kernel)
    _check_positive_int("stride", stride)
    B, C = x.shape[:2]
    windows = pad_same(x, kernel, stride).unfold(2, kernel, stride).unfold(3, kernel, stride)
    # windows: (B, C, nH, nW, k, k), nH = ceil(H/stride), nW = ceil(W/stride)
    patches = windows.permute(0, 2, 3, 1, 4, 5)  # (B, nH, nW, C, k, k)
    return patches.reshape(B, -1, C, kernel, kernel)  # (B, L, C, k, k), L = nH*nW row-major


def downsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    """Resize ``x`` to ``(H // rate, W // rate)``, nearest neighbour with align_corners.

    Release step 2: ``resize(x, scale=1/rate, func=resize_nearest_neighbor)`` with
    ``align_corners=True``. Note 64 -> 32 picks rows 0, 2, ..., 30, 33, 35, ..., 63, which
    is NOT ``x[..., ::2, ::2]`` (see :func:`course_lib.ops.resize_nearest`).
    """
    _check_nchw("x", x, floating=False)
    _check_positive_int("rate", rate)
    H, W = x.shape[-2:]
    return resize_nearest(x, (H // rate, W // rate))  # (B, C, H//rate, W//rate)


def valid_patches(mask: torch.Tensor, ksize: int, stride: int = 1) -> torch.Tensor:
    """``mm``: 1.0 for a background patch that contains no hole pixel, else 0.0.

    Release step 4: the mean of the (downsampled) mask over the patch's ``ksize x ksize``
    window, 'SAME' zero padding, must be exactly 0. Input ``(B, 1, H, W)``, 1 = hole;
    output ``(B, L)`` in the row-major order of :func:`extract_patches`.
    """
    _check_nchw("mask", mask, floating=False)
    if mask.shape[1] != 1:
        raise ValueError(f"mask must have one channel (B, 1, H, W), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not values_already_checked() and not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must be binary (values in {0, 1}, 1 = hole); "
                         "binarise it with (mask > 0.5).float()")
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    m = extract_patches(mask.to(dtype), ksize, stride)  # (B, L, 1, k, k)
    return (m.mean(dim=(2, 3, 4)) == 0).to(dtype)  # (B, L)


def normalize_patches(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Divide each patch by its L2 norm over (C, k, k), the norm clamped below at ``eps``.

    Release step 5 (``wi / max(sqrt(sum(wi^2)), 1e-4)``): only the background side is
    normalised, so the paper's cosine scores are ``<f, b/||b||>``, not a true cosine.
    """
    _check_patches("w", w)
    sq = w.pow(2).sum(dim=(2, 3, 4), keepdim=True)  # (B, L, 1, 1, 1)
    # sqrt(0) has an infinite derivative, and 0 * inf = NaN would reach every patch through the
    # batch's shared weights: take the root only where the sum is positive (the values are the
    # release's exactly; an all-zero patch, e.g. inside a zeroed hole, gets a zero gradient).
    positive = sq > 0
    norm = torch.where(positive, sq, torch.ones_like(sq)).sqrt() * positive  # (B, L, 1, 1, 1)
    return w / norm.clamp(min=eps)


def matching_scores(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    """Score of every foreground position against every background patch (the paper's cosine similarity).

    Release step 6: ``conv2d(f, w_normed, stride 1, 'SAME')`` per image. ``f`` is
    ``(B, C, Hf, Wf)``, ``w_normed`` ``(B, L, C, k, k)``; returns ``(B, L, Hf, Wf)``.
    All images run in one grouped convolution (group i = image i with its own patches).
    """
    _check_nchw("f", f)
    _check_patches("w_normed", w_normed)
    B, C, Hf, Wf = f.shape
    if w_normed.shape[0] != B or w_normed.shape[2] != C:
        raise ValueError(
            f"f {tuple(f.shape)} and patches {tuple(w_normed.shape)} must agree on the "
            f"batch size and the channels (patches are (B, L, C, k, k))"
        )
    L, k = w_normed.shape[1], w_normed.shape[-1]
    x = pad_same(f, k).reshape(1, B * C, Hf + k - 1, Wf + k - 1)  # (1, B*C, Hf+pad, Wf+pad)
    weight = w_normed.reshape(B * L, C, k, k)  # (B*L, C, k, k)
    scores = F.conv2d(x, weight, groups=B)  # (1, B*L, Hf, Wf)
    return scores.view(B, L, Hf, Wf)  # (B, L, Hf, Wf)


def cosine_scores(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """The paper's true cosine similarity (Sec. 4.1, Eq. 1): foreground windows AND patches normalised.

    ``s[b, l, y, x] = <f_{y,x}, w_l> / (max(||f_{y,x}||, eps) * max(||w_l||, eps))`` with
    ``f_{y,x}`` the k x k window of ``f`` around ``(y, x)`` ('SAME' zero padding, as
    :func:`matching_scores`) and norms over ``(C, k, k)``. ``f`` is ``(B, C, Hf, Wf)``, ``w``
    the raw patches ``(B, L, C, k, k)``; returns ``(B, L, Hf, Wf)`` in [-1, 1].

    Not the release: its score (:func:`matching_scores` on :func:`normalize_patches`) leaves
    the foreground unnormalised, i.e. this times ``||f_{y,x}||``; notebook 03's open exercise
    and lesson 03 compare the two. The window norms come from one convolution of ``f**2``
    with ones; the floor is taken on the squared norm so that a window of zeros (the blanked
    hole) has score 0 and a finite gradient.
    """
    _check_nchw("f", f)
    _check_patches("w", w)
    k = w.shape[-1]
    scores = matching_scores(f, normalize_patches(w, eps))  # (B, L, Hf, Wf)
    ones = f.new_ones(1, f.shape[1], k, k)  # (1, C, k, k)
    window_sq = F.conv2d(pad_same(f * f, k), ones)  # (B, 1, Hf, Wf): ||f_{y,x}||^2
    return scores / window_sq.clamp(min=eps * eps).sqrt()  # (B, L, Hf, Wf)


def _identity_conv(matrix: torch.Tensor, fuse_k: int) -> torch.Tensor:
    """'SAME' conv of a (B, 1, R, S) matrix with the fuse_k x fuse_k identity kernel."""
    kernel = torch.eye(fuse_k, dtype=matrix.dtype, device=matrix.device).view(1, 1, fuse_k, fuse_k)
    return F.conv2d(pad_same(matrix, fuse_k), kernel)  # (B, 1, R, S)


def fuse_scores(scores: torch.Tensor, fuse_k: int = 3,
                bg_size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Attention propagation (paper Section 4.1): neighbouring pixels should copy neighbouring patches.

    Release step 7. View the scores as the matrix ``[Hf*Wf, Hb*Wb]`` (rows: foreground
    positions, columns: background patches, both row-major) and convolve it with a
    ``fuse_k x fuse_k`` identity kernel ('SAME'): entry (p, q) becomes the sum of
    (p+d, q+d), i.e. of the left/right neighbours of the pixel paired with the same
    neighbours of the patch. Then reorder both axes column-major (swap H and W of the
    foreground and of the background), convolve again (this sums up/down neighbours)
    and reorder back. Note the row-major diagonal also wraps from the end of one image
    row to the start of the next, as in the release.

    ``scores``: ``(B, L, Hf, Wf)`` with ``L = Hb*Wb``. ``bg_size = (Hb, Wb)`` defaults to
    ``(Hf, Wf)`` (``f`` and ``b`` of the same size, as in the generator).
    """
    _check_nchw("scores", scores)
    _check_positive_int("fuse_k", fuse_k)
    B, L, Hf, Wf = scores.shape
    Hb, Wb = (Hf, Wf) if bg_size is None else (int(bg_size[0]), int(bg_size[1]))
    if Hb * Wb != L:
        raise ValueError(
            f"scores have L={L} patches but the background grid is {Hb}x{Wb}={Hb * Wb}; "
            f"pass bg_size=(Hb, Wb) when f and b differ in size"
        )
    y = scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L)  # (B, 1, Hf*Wf, Hb*Wb)
    y = _identity_conv(y, fuse_k)  # (B, 1, Hf*Wf, Hb*Wb)
    y = y.view(B, Hf, Wf, Hb, Wb).permute(0, 2, 1, 4, 3)  # (B, Wf, Hf, Wb, Hb)
    y = y.reshape(B, 1, Wf * Hf, Wb * Hb)  # (B, 1, Wf*Hf, Wb*Hb) column-major
    y = _identity_conv(y, fuse_k)  # (B, 1, Wf*Hf, Wb*Hb)
    y = y.view(B, Wf, Hf, Wb, Hb).permute(0, 2, 1, 4, 3)  # (B, Hf, Wf, Hb, Wb)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)  # (B, L, Hf, Wf)


def masked_softmax(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    """Attention weights: softmax over the L patches, invalid patches zeroed.

    Release step 8: ``scores *= mm; softmax(scores * scale, over L); *= mm``. An invalid
    patch enters the softmax with score 0 (not -inf), so it still takes some weight from
    the valid ones, and the valid weights are NOT renormalised afterwards (the author:
    "not important"). ``scores`` ``(B, L, Hf, Wf)``; ``mm`` ``(B or 1, L)``.
    """
    _check_nchw("scores", scores)
    if not isinstance(mm, torch.Tensor) or mm.dim() != 2 or mm.shape[1] != scores.shape[1] \
            or mm.shape[0] not in (1, scores.shape[0]):
        shape = tuple(mm.shape) if isinstance(mm, torch.Tensor) else type(mm).__name__
        raise ValueError(
            f"mm must be (B or 1, L) = ({scores.shape[0]} or 1, {scores.shape[1]}) as "
            f"returned by valid_patches, got {shape}; take mm with the same ksize and stride as "
            f"the patches that were scored"
        )
    mm = mm.to(scores.dtype)[:, :, None, None]  # (B or 1, L, 1, 1)
    attention = F.softmax(scores * mm * softmax_scale, dim=1)  # (B, L, Hf, Wf)
    return attention * mm


def reconstruct(attention: torch.Tensor, raw_patches: torch.Tensor, rate: int,
                out_size: tuple[int, int]) -> torch.Tensor:
    """Paste the full-resolution patches weighted by the attention (Fig. 3, "deconv").

    Release step 10: ``conv2d_transpose(attention, raw_patches, output_shape, stride
    rate) / 4``. Position (i, j) of the attention map pastes
    ``sum_l attention[l, i, j] * raw_patches[l]`` (``2*rate`` square) at full-resolution
    rows ``i*rate - top ..``; with rate 2 every output pixel is covered by 4 patches,
    hence the division by 4. TF 'SAME' output: a padding-free transposed conv, then crop
    ``same_padding(out, 2*rate, rate)[0]`` rows/columns at the top/left.

    ``attention`` ``(B, L, h, w)``, ``raw_patches`` ``(B, L, C, 2*rate, 2*rate)``,
    ``out_size = (H, W)`` with ``ceil(H/rate) == h``; returns ``(B, C, H, W)``.
    """
    _check_nchw("attention", attention)
    _check_patches("raw_patches", raw_patches)
    _check_positive_int("rate", rate)
    B, L, h, w = attention.shape
    C, k = raw_patches.shape[2], raw_patches.shape[-1]
    if raw_patches.shape[:2] != (B, L):
        raise ValueError(
            f"attention {tuple(attention.shape)} and raw_patches {tuple(raw_patches.shape)} "
            f"must agree on (B, L)"
        )
    H, W = int(out_size[0]), int(out_size[1])
    if -(-H // rate) != h or -(-W // rate) != w:
        raise ValueError(
            f"out_size {(H, W)} does not match the attention map {h}x{w} at stride {rate}: "
            f"need ceil(H/rate) = h and ceil(W/rate) = w"
        )
    x = attention.reshape(1, B * L, h, w)  # (1, B*L, h, w)
    weight = raw_patches.reshape(B * L, C, k, k)  # (B*L, C, k, k): in = L, out = C per image
    y = F.conv_transpose2d(x, weight, stride=rate, groups=B)  # (1, B*C, (h-1)*rate+k, ...)
    top = same_padding(H, k, rate)[0]
    left = same_padding(W, k, rate)[0]
    y = y[:, :, top:top + H, left:left + W]  # (1, B*C, H, W)
    return y.reshape(B, C, H, W) / 4.0  # (B, C, H, W)


def attention_offsets(attention: torch.Tensor, f_width: int) -> torch.Tensor:
    """Where each position copies from: ``(B, 2, Hf, Wf)`` int64 (row, col) offsets.

    Release step 9: ``idx = argmax over L``; ``(idx // Wf, idx % Wf)`` minus the
    position's own (row, col). The release divides by the foreground width ``Wf``
    although ``idx`` indexes the background grid (identical when f and b have the
    same size, as in the generator). Not differentiable (argmax); ties pick the first.
    """
    _check_nchw("attention", attention)
    _check_positive_int("f_width", f_width)
    return offsets_of_index(attention.argmax(dim=1), f_width)  # (B, 2, Hf, Wf)


def offsets_of_index(idx: torch.Tensor, f_width: int) -> torch.Tensor:
    """Step 9 from the best patch's index ``idx`` ``(B, Hf, Wf)``.

    ``(idx // f_width, idx % f_width)`` minus the position's own (row, col): ``(B, 2, Hf, Wf)``.
    """
    Hf, Wf = idx.shape[-2:]
    rows = torch.arange(Hf, device=idx.device).view(1, Hf, 1)  # (1, Hf, 1)
    cols = torch.arange(Wf, device=idx.device).view(1, 1, Wf)  # (1, 1, Wf)
    d_row = idx // f_width - rows  # (B, Hf, Wf)
    d_col = idx % f_width - cols  # (B, Hf, Wf)
    return torch.stack([d_row, d_col], dim=1)  # (B, 2, Hf, Wf)


def flow_picture(offsets: torch.Tensor, size: tuple[int, int], rate: int,
                 dtype: torch.dtype) -> Optional[torch.Tensor]:
    """The layer's flow output: :func:`course_lib.flow.flow_to_color` of ``offsets`` (B, 2, Hf, Wf), x``rate`` bilinear.

    ``(B, 3, H, W)`` with ``size = (H, W)`` (align_corners=True; the grid's own size when ``rate`` is 1).
    """
    if not pictures_enabled():  # inside course_lib.flow.flow_pictures(False): the trainer's steps
        return None
    flow = flow_to_color(offsets, dtype=dtype).to(offsets.device)  # (B, 3, Hf, Wf)
    if rate != 1:
        flow = F.interpolate(flow, size=size, mode="bilinear", align_corners=True)  # (B, 3, H, W)
    return flow


# ---------------------------------------------------------------------------- the layer

def _check_inputs(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor], rate: int) -> None:
    _check_nchw("f", f)
    _check_nchw("b", b)
    if f.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"f {tuple(f.shape)} and b {tuple(b.shape)} must have the same batch size and "
            f"channels (B, C); in the generator both are the pmconv6 features"
        )
    if f.dtype != b.dtype:
        raise TypeError(f"f ({f.dtype}) and b ({b.dtype}) must have the same dtype")
    for name, t in (("f", f), ("b", b)):
        H, W = t.shape[-2:]
        if H % rate or W % rate or H < rate or W < rate:
            raise ValueError(
                f"{name} is {H}x{W}, which is not a positive multiple of rate={rate}; "
                f"crop or pad the image so that H and W are multiples of {rate * 4} "
                f"(the generator needs multiples of 8)"
            )
    if mask is None:
        return
    _check_nchw("mask", mask, floating=False)
    if mask.shape[1] != 1 or mask.shape[0] not in (1, b.shape[0]) or mask.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"mask must be (1 or B, 1, H, W) = (1 or {b.shape[0]}, 1, {b.shape[2]}, {b.shape[3]}) "
            f"to match b, got {tuple(mask.shape)}; resize it to the feature size with "
            f"course_lib.ops.resize_nearest"
        )
    if not values_already_checked() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(
            "mask values must be exactly 0 (known) or 1 (hole); binarise it with "
            "(mask > 0.5).float()"
        )


def attention_weights(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None,
                      ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                      softmax_scale: float = 10.0, fuse: bool = True) -> torch.Tensor:
    """Steps 2-8 of :func:`contextual_attention`: how much each foreground position copies of each patch.

    Same arguments as :func:`contextual_attention`. Returns ``attention`` ``(B, L, Hf, Wf)``:
    ``attention[n, l, i, j]`` is the weight with which foreground cell ``(i, j)`` of the
    ``1/rate`` grid (image pixels ``rate`` times the feature stride wide) copies background patch
    ``l``, numbered row-major over the background grid ``(ceil(Hb/rate/stride), ceil(Wb/rate/stride))``
    (``l = row * grid_width + col``). Patches touching the hole get weight 0, and the weights
    of a cell sum to at most 1 (the release does not renormalise after masking). This is the
    map notebook 10's attention explorer shows (the course's own view: the paper's Figure 4
    draws only the colour-coded flow of each position's argmax).
    """
    _check_positive_int("ksize", ksize)
    _check_positive_int("stride", stride)
    _check_positive_int("rate", rate)
    _check_positive_int("fuse_k", fuse_k)
    _check_inputs(f, b, mask, rate)
    f_small = downsample(f, rate)  # (B, C, H/r, W/r)
    b_small = downsample(b, rate)  # (B, C, Hb/r, Wb/r)
    if mask is None:
        mask_small = b_small.new_zeros(1, 1, *b_small.shape[-2:])  # (1, 1, Hb/r, Wb/r)
    else:
        mask_small = downsample(mask.to(b.dtype), rate)  # (1 or B, 1, Hb/r, Wb/r)
    w = extract_patches(b_small, ksize, stride)  # (B, L, C, k, k)
    mm = valid_patches(mask_small, ksize, stride)  # (1 or B, L)

    scores = matching_scores(f_small, normalize_patches(w))  # (B, L, Hf, Wf)
    if fuse:
        bg_grid = (-(-b_small.shape[-2] // stride), -(-b_small.shape[-1] // stride))
        scores = fuse_scores(scores, fuse_k, bg_size=bg_grid)  # (B, L, Hf, Wf)
    return masked_softmax(scores, mm, softmax_scale)  # (B, L, Hf, Wf)


def contextual_attention(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None,
                         ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                         softmax_scale: float = 10.0, fuse: bool = True,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Contextual attention layer (paper Section 4.1; release ``contextual_attention``).

    Reconstructs the foreground features ``f`` from patches of the background features
    ``b``: match at ``1/rate`` resolution with ``ksize x ksize`` patches, paste
    ``2*rate x 2*rate`` full-resolution patches.

    Args:
        f: foreground features ``(B, C, H, W)`` (the generator passes f = b).
        b: background features ``(B, C, Hb, Wb)``; H, W, Hb, Wb multiples of ``rate``.
        mask: ``(1 or B, 1, Hb, Wb)``, 1 = hole (patches touching it are not copied);
            None = nothing is masked. The release shares one mask over the batch.
        ksize, stride: matching patch size and stride (at the downsampled size).
        rate: downsampling factor for matching (release default in the generator: 2).
        fuse_k: size of the identity kernel of :func:`fuse_scores`; ``fuse`` switches it.
        softmax_scale: the softmax temperature's inverse (10 in the release).

    Returns:
        ``y`` ``(B, C, H, W)`` like ``f``, differentiable in ``f`` and ``b``; and ``flow``
        ``(B, 3, H, W)`` in [-1, 1]: the offsets of the best patch colour-coded by
        :func:`course_lib.flow.flow_to_color`, upsampled x``rate`` bilinearly
        (align_corners=True). ``flow`` carries no gradient. The v1.0.0 release upsamples
        this picture by nearest neighbour instead (DeepFill v2's code: bilinear); only the
        visualisation differs, ``y`` does not depend on it.
    """
    H, W = f.shape[-2:]
    attention = attention_weights(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)  # (B, L, Hf, Wf)
    raw_w = extract_patches(b, 2 * rate, rate * stride)  # (B, L, C, 2r, 2r)
    y = reconstruct(attention, raw_w, rate, (H, W))  # (B, C, H, W)
    with torch.no_grad():
        offsets = attention_offsets(attention, attention.shape[-1])  # (B, 2, Hf, Wf)
        flow = flow_picture(offsets, (H, W), rate, f.dtype)  # (B, 3, H, W)
    return y, flow
