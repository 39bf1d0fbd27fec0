"""Fast contextual attention: batched, restricted to the rows that matter, chunked.

A second implementation of :func:`course_lib.attention.contextual_attention` (paper
Section 4.1, release ``contextual_attention``), for inference on large images. The
step-by-step functions of :mod:`course_lib.attention` stay the reference (and what the
notebooks teach); ``tests/test_attention_fast.py`` checks this one against them.

What it changes, not what it computes:

* **one score matrix formula instead of conv + two fuse convs.** With ``S = F W^T`` the
  matching scores (``F`` the ``ksize x ksize`` foreground patches, ``W`` the normalised
  background patches, release step 6), attention propagation (step 7) is
  ``fused[p, q] = sum_{d2, d1} S[cm_f(p, d2) + d1, cm_b(q, d2) + d1]``: ``d1`` the shift along
  the row-major diagonal (first identity conv), ``d2`` the shift along the column-major one
  (second conv), ``cm`` the row-major index of the column-major neighbour, zero outside the
  matrix (TF 'SAME' zero padding), and the row-major wrap from one image row to the next
  kept, as in the release. Index tables (:func:`fuse_tables`) encode both shifts, so any row
  ``p`` of the fused matrix needs only the raw score rows of its ``fuse_k**2`` neighbours.
* **restricted rows.** ``need`` marks the output pixels that must be right (in the generator:
  those that can reach a hole pixel of the composited image,
  :meth:`course_lib.generator.RefineNetwork.hole_reach`); only the attention rows whose
  pasted ``2*rate`` patch covers one of them (:func:`needed_rows`) are computed. The others
  are zero, so ``y`` is exact on ``need`` and NOT elsewhere, and the flow shows zero offset
  there.
* **batched and chunked.** All images run together (per-image masks and row sets, padded to
  the batch's largest row count; no Python loop over the batch); the needed rows are taken
  in chunks of ``n`` rows, with ``n`` chosen so that the score tensors of a chunk stay within
  ``max_bytes`` (:func:`chunk_rows`; the bound is documented there and tested).

``stride`` is 1 (the generator's). ``y`` equals the dense layer on ``need`` up to float
rounding (sums taken in another order: ~1e-6 relative in float32), forward and backward.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
import torch.nn.functional as F

from .attention import (_check_inputs, downsample, extract_patches, flow_picture, normalize_patches,
                        offsets_of_index, valid_patches)
from .ops import same_padding

__all__ = [
    "DEFAULT_MAX_BYTES",
    "use_fast_attention",
    "fast_attention_settings",
    "fuse_tables",
    "needed_rows",
    "chunk_rows",
    "score_bytes_bound",
    "contextual_attention_fast",
    "contextual_attention_batched",
]

DEFAULT_MAX_BYTES = 512 * 2**20  # score tensors of one chunk: at most 512 MiB
_FAST: dict[str, object] = {"on": False, "max_bytes": DEFAULT_MAX_BYTES}


@contextlib.contextmanager
def use_fast_attention(enabled: bool = True, max_bytes: Optional[int] = None) -> Iterator[None]:
    """Within the block the generator runs :func:`contextual_attention_fast` restricted to the hole.

    Off by default: then :class:`course_lib.generator.Generator` runs the step-by-step layer
    and its ``x_stage2`` is right over the whole image (the trainer's losses read it
    outside the hole too). On, ``x_stage2`` is right only inside the hole, which is all that
    the composite ``x2 * mask + x * (1 - mask)`` reads (:func:`course_lib.inpaint` switches it
    on). ``max_bytes`` bounds the chunk's score tensors (default :data:`DEFAULT_MAX_BYTES`).
    Not thread-safe (a module-level switch, as :func:`course_lib.ops.use_reference_ops`).
    """
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")
    previous = dict(_FAST)
    _FAST["on"] = bool(enabled)
    if max_bytes is not None:
        _FAST["max_bytes"] = max_bytes
    try:
        yield
    finally:
        _FAST.update(previous)


def fast_attention_settings() -> tuple[bool, int]:
    """``(enabled, max_bytes)`` as set by :func:`use_fast_attention` (off, 512 MiB by default)."""
    return bool(_FAST["on"]), int(_FAST["max_bytes"])  # type: ignore[call-overload]


# ---------------------------------------------------------------------------- index tables

def _colmajor_neighbour(H: int, W: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major index of the position ``d`` steps further in column-major order, and its validity.

    Position ``p = i*W + j`` has column-major index ``t = j*H + i``; ``t + d`` outside
    ``[0, H*W)`` is the zero padding of the fuse conv (invalid).
    """
    p = torch.arange(H * W)
    t = (p % W) * H + p // W + d  # (H*W,)
    valid = (t >= 0) & (t < H * W)
    t = t.clamp(0, H * W - 1)
    return (t % H) * W + t // H, valid  # (H*W,), (H*W,)


def fuse_tables(f_grid: tuple[int, int], b_grid: tuple[int, int], fuse_k: int, fuse: bool = True
                ) -> tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """Index tables of attention propagation (release step 7) as a sum of shifted score entries.

    Returns ``(combos, rows, cols)``: ``combos`` the ``(d2, d1)`` pairs (``fuse_k**2`` of them,
    ``[(0, 0)]`` without fusion); ``rows`` ``(N, K)`` long, the raw score row of combo ``k``
    for fused row ``p`` (``cm_f(p, d2) + d1``), -1 where it falls in the zero padding;
    ``cols`` ``(D2, L)`` long, the column ``cm_b(q, d2)`` (before the ``d1`` shift) for each
    ``d2``, -1 in the padding. ``N = Hf*Wf`` and ``L = Hb*Wb``; the shifts ``d`` run over
    ``-(fuse_k-1)//2 .. fuse_k//2`` (TF 'SAME': the odd extra tap at the end).
    """
    before = (fuse_k - 1) // 2
    shifts = [i - before for i in range(fuse_k)] if fuse else [0]
    Hf, Wf = f_grid
    Hb, Wb = b_grid
    N = Hf * Wf
    combos, row_cols = [], []
    cols = []
    for d2 in shifts:
        fp, fvalid = _colmajor_neighbour(Hf, Wf, d2)  # (N,)
        bq, bvalid = _colmajor_neighbour(Hb, Wb, d2)  # (L,)
        cols.append(torch.where(bvalid, bq, -1))
        for d1 in shifts:
            r = fp + d1
            ok = fvalid & (r >= 0) & (r < N)
            combos.append((d2, d1))
            row_cols.append(torch.where(ok, r, -1))
    return combos, torch.stack(row_cols, dim=1), torch.stack(cols, dim=0)  # (N, K), (D2, L)


def needed_rows(need: torch.Tensor, rate: int) -> torch.Tensor:
    """Attention rows (positions of the 1/``rate`` grid) whose pasted patch covers a needed pixel.

    Release step 10 pastes the ``2*rate`` patch of grid position ``i`` at output rows
    ``i*rate - top .. i*rate - top + 2*rate - 1`` (``top`` = TF 'SAME' padding of the
    transposed conv); so row ``i`` is needed when that window holds a pixel of ``need``.
    ``need`` ``(B, 1, H, W)`` bool -> ``(B, 1, H/rate, W/rate)`` bool.
    """
    H, W = need.shape[-2:]
    k = 2 * rate
    top, left = same_padding(H, k, rate)[0], same_padding(W, k, rate)[0]
    h, w = H // rate, W // rate
    padded = F.pad(need.float(), (left, (w - 1) * rate + k - W - left, top, (h - 1) * rate + k - H - top))
    return F.max_pool2d(padded, k, rate) > 0  # (B, 1, h, w)


def score_bytes_bound(batch: int, rows: int, L: int, K: int, element_size: int = 4) -> int:
    """Bytes of a chunk's score tensors: ``batch * (K + 6) * rows * L * element_size``.

    A chunk of ``rows`` fused rows holds the raw scores of at most ``K * rows`` distinct rows (+ a zero row)
    (each fused row needs ``K = fuse_k**2`` raw ones; neighbours are shared, so in practice
    a little more than ``rows``), and at most six ``(batch, rows, L)`` tensors alive with them
    (a gathered term, its shifted copy, the two running sums, the scaled scores, the softmax).
    """
    return batch * (K + 6) * rows * L * element_size


def chunk_rows(batch: int, L: int, K: int, max_bytes: int, element_size: int = 4) -> int:
    """The largest chunk (fused rows per image) whose :func:`score_bytes_bound` is within ``max_bytes`` (at least 1)."""
    return max(1, max_bytes // score_bytes_bound(batch, 1, L, K, element_size))


# ---------------------------------------------------------------------------- the layer

def _unique_rows(T: torch.Tensor, valid: torch.Tensor, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the distinct raw rows of a chunk's table, and where each table entry finds its row.

    ``T`` (B, n, K) row indices, ``valid`` (B, n, K). Returns ``U`` (B, Umax) row indices in
    increasing order (padded with 0) and ``local`` (B, n, K) positions into ``U``; invalid
    entries point at position ``Umax``, where the caller puts a zero row. A (B, N) table of
    used rows and its running count replace a sort.
    """
    B = T.shape[0]
    flat = torch.where(valid, T, N).view(B, -1)  # (B, n*K); N = "no row"
    used = torch.zeros(B, N + 1, dtype=torch.bool, device=T.device)
    used.scatter_(1, flat, True)
    used = used[:, :N]  # (B, N)
    rank = torch.cumsum(used, dim=1) - 1  # (B, N): place of each used row in U
    Umax = max(int(used.sum(dim=1).max()), 1)
    U = T.new_zeros(B, Umax + 1)
    U.scatter_(1, torch.where(used, rank, Umax), torch.arange(N, device=T.device).expand(B, N))
    local = torch.where(valid, rank.gather(1, flat.clamp(max=N - 1)).view_as(T), Umax)  # (B, n, K)
    return U[:, :Umax], local


def contextual_attention_fast(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None,
                              need: Optional[torch.Tensor] = None, ksize: int = 3, rate: int = 2,
                              fuse_k: int = 3, softmax_scale: float = 10.0, fuse: bool = True,
                              max_bytes: int = DEFAULT_MAX_BYTES, stats: Optional[dict] = None,
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Contextual attention (release semantics, stride 1), exact on the pixels of ``need``.

    Arguments as :func:`course_lib.attention.contextual_attention`, plus:

    * ``need``: ``(1 or B, 1, H, W)`` bool (or {0, 1}) at ``f``'s size, the output pixels that
      must be right; None = all of them (then ``y`` equals the dense layer everywhere);
    * ``max_bytes``: bound on one chunk's score tensors (:func:`score_bytes_bound`);
    * ``stats``: a dict that receives ``rows`` (needed rows per image), ``chunks``,
      ``chunk_rows`` and ``score_numel_max`` (the largest score tensor's element count).

    Returns ``(y, flow)`` like the dense layer; outside ``need`` ``y`` is partial and the flow
    shows zero offset where no row was computed.
    """
    _check_inputs(f, b, mask, rate)
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")
    B, C, H, W = f.shape
    raw = extract_patches(b, 2 * rate, rate)  # (B, L, C, 2r, 2r)
    f_small, b_small = downsample(f, rate), downsample(b, rate)  # (B, C, H/r, W/r), (B, C, Hb/r, Wb/r)
    hf, wf = f_small.shape[-2:]
    hb, wb = b_small.shape[-2:]
    N, L = hf * wf, hb * wb
    if mask is None:
        mm = f.new_ones(1, L)  # (1, L)
    else:
        mm = valid_patches(downsample(mask.to(b.dtype), rate), ksize, 1)  # (1 or B, L)
    mm = mm.to(f.dtype)[:, None, :]  # (1 or B, 1, L)
    Wn = normalize_patches(extract_patches(b_small, ksize, 1)).reshape(B, L, -1)  # (B, L, C*k*k)
    Fp = extract_patches(f_small, ksize, 1).reshape(B, N, -1)  # (B, N, C*k*k)
    raw_flat = raw.reshape(B, L, -1)  # (B, L, C*(2r)^2)

    if need is None:
        rows_needed = torch.ones(B, N, dtype=torch.bool, device=f.device)
    else:
        if need.dim() != 4 or need.shape[1] != 1 or need.shape[0] not in (1, B) or need.shape[2:] != f.shape[2:]:
            raise ValueError(f"need must be (1 or B, 1, H, W) = (1 or {B}, 1, {H}, {W}) like f, "
                             f"got {tuple(need.shape)}")
        rows_needed = needed_rows(need.bool(), rate).reshape(need.shape[0], N).expand(B, N)  # (B, N)
    counts = rows_needed.sum(dim=1)  # (B,)
    max_count = int(counts.max()) if B else 0
    rank = torch.cumsum(rows_needed, dim=1) - 1  # (B, N): the needed rows' places, in row-major order
    order = torch.zeros(B, max_count + 1, dtype=torch.long, device=f.device)
    order.scatter_(1, torch.where(rows_needed, rank, max_count), torch.arange(N, device=f.device).expand(B, N))
    order = order[:, :max_count]  # (B, R): row indices, padded with 0
    order_valid = torch.arange(max_count, device=f.device)[None, :] < counts[:, None]  # (B, R)

    combos, row_table, col_table = fuse_tables((hf, wf), (hb, wb), fuse_k, fuse)
    row_table, col_table = row_table.to(f.device), col_table.to(f.device)
    shifts = sorted({d for d, _ in combos})
    K = len(combos)
    n = chunk_rows(B, L, K, max_bytes, f.element_size())
    Wt = Wn.transpose(1, 2)  # (B, C*k*k, L)
    image_id = torch.arange(B, device=f.device)
    patches, best = [], []
    score_numel_max = 0
    for start in range(0, max_count, n):
        P = order[:, start:start + n]  # (B, n)
        pv = order_valid[:, start:start + n]  # (B, n)
        T = row_table[P]  # (B, n, K)
        tv = (T >= 0) & pv[..., None]  # (B, n, K)
        U, local = _unique_rows(T, tv, N)  # (B, Umax), (B, n, K)
        Umax = U.shape[1]
        FU = Fp.reshape(B * N, -1).index_select(0, (U + image_id[:, None] * N).flatten())  # (B*Umax, C*k*k)
        FU = torch.cat([FU.view(B, Umax, -1), FU.new_zeros(B, 1, FU.shape[-1])], dim=1)  # row Umax: zeros
        S = torch.bmm(FU, Wt)  # (B, Umax + 1, L): raw scores of the rows this chunk needs
        m = P.shape[1]
        S_rows = S.view(B * (Umax + 1), L)  # whole rows are gathered: index_select, index_add backward
        row_base = image_id[:, None] * (Umax + 1)  # (B, 1)
        score_numel_max = max(score_numel_max, S.numel())
        fused: Optional[torch.Tensor] = None
        for d2 in shifts:
            part: Optional[torch.Tensor] = None  # sum over d1 of S[cm(p, d2) + d1, q' + d1], (B, n, L)
            for k, (c2, d1) in enumerate(combos):
                if c2 != d2:
                    continue
                term = S_rows.index_select(0, (local[:, :, k] + row_base).flatten()).view(B, m, L)  # (B, n, L)
                if d1 == 0:
                    part = term if part is None else part + term
                    continue
                if part is None:
                    part = torch.zeros_like(term)
                if d1 > 0:  # part[..., q'] += term[..., q' + d1], nothing past the end
                    part[..., :L - d1] += term[..., d1:]
                else:
                    part[..., -d1:] += term[..., :L + d1]
            cols = col_table[shifts.index(d2)]  # (L,)
            if not bool((cols == torch.arange(L, device=cols.device)).all()):  # column-major shift of q
                part = part.index_select(2, cols.clamp(min=0)) * (cols >= 0).to(S.dtype)
            fused = part if fused is None else fused + part
        score_numel_max = max(score_numel_max, fused.numel())
        attention = F.softmax(fused * mm * softmax_scale, dim=2) * mm  # (B, n, L)
        patches.append(torch.bmm(attention, raw_flat))  # (B, n, C*(2r)^2)
        best.append(attention.detach().argmax(dim=2))  # (B, n)

    k = 2 * rate
    cols_buf = f.new_zeros(B, N + 1, raw_flat.shape[-1])  # row N takes the padding entries
    if patches:
        target = torch.where(order_valid, order, N)  # (B, R)
        batch_idx = torch.arange(B, device=f.device)[:, None].expand_as(target)
        cols_buf = cols_buf.index_put((batch_idx, target), torch.cat(patches, dim=1))
    y = F.fold(cols_buf[:, :N].transpose(1, 2), ((hf - 1) * rate + k, (wf - 1) * rate + k),
               kernel_size=k, stride=rate)  # (B, C, (hf-1)*r + 2r, ...)
    top, left = same_padding(H, k, rate)[0], same_padding(W, k, rate)[0]
    y = y[:, :, top:top + H, left:left + W] / 4.0  # (B, C, H, W), as reconstruct()

    with torch.no_grad():
        idx = torch.zeros(B, N + 1, dtype=torch.long, device=f.device)
        p_all = torch.arange(N, device=f.device).expand(B, N)
        idx[:, :N] = p_all  # no row computed: offset 0
        if best:
            idx = idx.index_put((batch_idx, target), torch.cat(best, dim=1))
        offsets = offsets_of_index(idx[:, :N].view(B, hf, wf), wf)  # (B, 2, hf, wf)
        flow = flow_picture(offsets, (H, W), rate, f.dtype)  # (B, 3, H, W)
    if stats is not None:
        stats.update(rows=counts.tolist(), chunks=-(-max_count // n), chunk_rows=n,
                     score_numel_max=score_numel_max)
    return y, flow


# ---------------------------------------------------------------------------- the training path

def _diagonal_sum(m: torch.Tensor, fuse_k: int) -> torch.Tensor:
    """Release step 7's identity-kernel 'SAME' conv of a (B, R, S) matrix, without a conv.

    ``out[p, q] = sum over d of m[p + d, q + d]`` for ``d = -(fuse_k-1)//2 .. fuse_k//2``, zero
    outside the matrix (TF 'SAME' puts the odd extra tap at the end): the matrix padded once,
    then ``fuse_k`` shifted views added (a 1-channel conv runs far below the matmul rate).
    """
    before = (fuse_k - 1) // 2
    after = fuse_k - 1 - before
    R, S = m.shape[-2:]
    padded = F.pad(m, (before, after, before, after))  # (B, R + k - 1, S + k - 1)
    out = padded[:, :R, :S]
    for i in range(1, fuse_k):
        out = out + padded[:, i:i + R, i:i + S]  # (B, R, S)
    return out


def contextual_attention_batched(f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None,
                                 ksize: int = 3, rate: int = 2, fuse_k: int = 3, softmax_scale: float = 10.0,
                                 fuse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense contextual attention (stride 1) for training: every row, all images in a few matmuls.

    The same maths as :func:`course_lib.attention.contextual_attention` (release steps 1-10,
    per-image masks) everywhere in the image, so the trainer's losses, which read
    ``x_stage2`` outside the hole too, see the same values (up to float rounding, ~1e-6
    relative in float32; ``tests/test_attention_fast.py`` checks values and gradients). What
    changes is how, not what:

    * patches by ``F.unfold`` with the 'SAME' padding folded in (``ksize`` odd: symmetric; the
      ``2*rate`` pasting patches at stride ``rate`` on sizes that are multiples of ``rate``:
      symmetric too), in the ``(B, C*k*k, L)`` layout that a matmul reads without copies;
    * matching (step 6) as one batched matmul ``S = F^T W`` (B, N, L) instead of a grouped conv;
    * attention propagation (step 7) as shifted views of the padded score matrix
      (:func:`_diagonal_sum`) instead of a 1-channel conv, the column-major pass on a
      permuted copy as in :func:`course_lib.attention.fuse_scores`;
    * pasting (step 10) as a batched matmul of the raw patches with the attention and
      ``F.fold`` (col2im, its 'SAME' crop as fold's padding), instead of a grouped
      transposed conv.

    Arguments and returns as :func:`course_lib.attention.contextual_attention` with
    ``stride=1``: ``y`` (B, C, H, W) and the flow picture (B, 3, H, W), no gradient.
    """
    _check_inputs(f, b, mask, rate)
    for name, value in (("ksize", ksize), ("fuse_k", fuse_k)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if ksize % 2 == 0:
        raise ValueError(f"contextual_attention_batched needs an odd ksize (symmetric 'SAME' padding), got "
                         f"{ksize}; use course_lib.attention.contextual_attention for even ones")
    B, C, H, W = f.shape
    Hb, Wb = b.shape[-2:]
    k = 2 * rate
    # step 1: the raw 2r x 2r patches of b at stride r; 'SAME' pads (r/2 .. ) symmetrically on multiples of r
    raw_pad = same_padding(Hb, k, rate)[0], same_padding(Wb, k, rate)[0]
    raw = F.unfold(b, k, padding=raw_pad, stride=rate)  # (B, C*k*k, L)
    f_small, b_small = downsample(f, rate), downsample(b, rate)  # (B, C, hf, wf), (B, C, hb, wb)
    hf, wf = f_small.shape[-2:]
    hb, wb = b_small.shape[-2:]
    N, L = hf * wf, hb * wb
    pad = (ksize - 1) // 2
    Fp = F.unfold(f_small, ksize, padding=pad)  # (B, C*ks*ks, N)
    Wp = F.unfold(b_small, ksize, padding=pad)  # (B, C*ks*ks, L)
    # step 5 as normalize_patches: the root only where the sum is positive, floor 1e-4
    sq = Wp.pow(2).sum(dim=1, keepdim=True)  # (B, 1, L)
    positive = sq > 0
    norm = torch.where(positive, sq, torch.ones_like(sq)).sqrt() * positive  # (B, 1, L)
    Wn = Wp / norm.clamp(min=1e-4)  # (B, C*ks*ks, L)
    scores = torch.bmm(Fp.transpose(1, 2), Wn)  # (B, N, L): row p = foreground cell, column q = patch
    if fuse:
        scores = _diagonal_sum(scores, fuse_k)  # row-major diagonals
        cm = scores.view(B, hf, wf, hb, wb).permute(0, 2, 1, 4, 3).reshape(B, N, L)  # column-major order
        cm = _diagonal_sum(cm, fuse_k)
        scores = cm.view(B, wf, hf, wb, hb).permute(0, 2, 1, 4, 3).reshape(B, N, L)  # row-major again
    if mask is None:
        mm = scores.new_ones(1, 1, L)  # (1, 1, L)
    else:
        mm = valid_patches(downsample(mask.to(b.dtype), rate), ksize, 1).to(scores.dtype)[:, None, :]
    attention = F.softmax(scores * mm * softmax_scale, dim=2) * mm  # (B, N, L), step 8
    cols = torch.bmm(raw, attention.transpose(1, 2))  # (B, C*k*k, N): each cell's weighted patch
    out_pad = same_padding(H, k, rate)[0], same_padding(W, k, rate)[0]
    y = F.fold(cols, (H, W), k, padding=out_pad, stride=rate) / 4.0  # (B, C, H, W), as reconstruct()
    with torch.no_grad():
        offsets = offsets_of_index(attention.argmax(dim=2).view(B, hf, wf), wf)  # (B, 2, hf, wf)
        flow = flow_picture(offsets, (H, W), rate, f.dtype)  # (B, 3, H, W)
    return y, flow
