"""A second, independent set of wrong student implementations and correct alternatives.

Written from the student notebooks' instructions (notebooks/NN_*.ipynb), not from the checks'
planted mistakes, and different from the set in tests/test_checks.py. For every exercise:

* each wrong implementation must FAIL the check with an AssertionError whose message names
  one of the phrases listed with it (a mistake it really makes, or "smallest input" where the
  check cannot tell which mistake it is), never crash the check, and never give a hint that
  names one of the exercise's known mistakes that it does not make;
* each correct alternative (written differently from course_lib) must PASS.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import course_lib.checks as checks
from course_lib import attention as A
from course_lib.checks import attention as checks_attention
from course_lib.checks import gan as checks_gan
from course_lib.checks import generator as checks_generator
from course_lib.checks import hands_on as checks_hands_on
from course_lib.checks import masks as checks_masks
from course_lib.checks import training as checks_training
from course_lib.checks import v2 as checks_v2
from course_lib.checks import check
from course_lib.flow import flow_to_color
from course_lib.generator import stage_input as lib_stage_input
from course_lib.losses import masked_slopes as lib_masked_slopes
from course_lib.ops import pad_same, same_conv2d

SMALLEST = "smallest input"  # the check could not tell which mistake: it shows the smallest differing input

# ====================================================================== the known hints of each exercise

KNOWN_HINTS: dict[str, list[str]] = {
    "to_signed_range": list(checks_masks._SIGNED_HINTS.values()),
    "box_mask": list(checks_masks._BOX_HINTS.values()),
    "psnr": list(checks_masks._PSNR_HINTS.values()),
    "spatial_discount": list(checks_masks._DISCOUNT_HINTS.values()),
    "stage_input": list(checks_generator._STAGE_INPUT_HINTS.values()),
    "receptive_field": list(checks_generator._RF_HINTS.values()),
    "compose_stages": list(checks_generator._COMPOSE_HINTS.values()),
    "coarse_stage": list(checks_generator._COARSE_HINTS.values()),
    "flatten_nhwc": list(checks_gan._FLATTEN_HINTS.values()),
    "wgan_critic_loss": list(checks_gan._WGAN_HINTS.values()),
    "masked_slopes": list(checks_gan._SLOPES_HINTS.values()),
    "gradient_penalty": list(checks_gan._GP_HINTS.values()),
    "unmasked_gradient_penalty": list(checks_gan._UGP_HINTS.values()),
    "compose_stages_detached": list(checks_generator._DETACHED_HINTS.values()),
    "atomic_save": list(checks_training._SAVE_HINTS.values()),
    "ema_update": list(checks_training._EMA_HINTS.values()),
    "attention_at": list(checks_hands_on._AT_HINTS.values()),
    "gated_conv2d": list(checks_v2._GATED_HINTS.values()),
    "hinge_d_loss": list(checks_v2._HINGE_D_HINTS.values()),
    "hinge_g_loss": list(checks_v2._HINGE_G_HINTS.values()),
}
KNOWN_HINTS.update({name: list(hints.values()) for name, hints in checks_attention.MISTAKE_HINTS.items()})
KNOWN_HINTS["contextual_attention"] += list(checks_attention._FLOW_HINTS.values())


# ====================================================================== 00-02

def _signed_centred(p):
    return (p.float() - 127.5) / 255  # [-0.5, 0.5]


def _signed_doubled(p):
    return p.float() * 2 / 255  # [0, 2]


def _signed_minmax(p):
    p = p.float()
    return (p - p.min()) / (p.max() - p.min()) * 2 - 1


def _signed_128(p):
    return p.float() / 128 - 1


def _signed_flattened(p):
    return p.float().flatten() / 127.5 - 1


def _signed_clamped(p):
    return (p.float() / 127.5 - 1).clamp(-1, 0.99)


def _signed_half(p):
    return p.to(torch.float16) / 127.5 - 1


def _signed_batch_only(p):  # written for a (B, C, H, W) batch only
    x = p.float() / 127.5 - 1
    return x.reshape(p.shape[0], -1, *p.shape[2:])


def _signed_flipped(p):
    return 1 - p.float() / 127.5


def _signed_rounded(p):
    return torch.round(p.float() / 127.5) - 1


def _alt_signed_a(p):
    return (p / 255.0) * 2 - 1


def _alt_signed_b(p):
    return p.float().mul(2.0 / 255.0).sub(1.0)


def _box_corners(bbox, height, width):
    top, left, bottom, right = bbox
    m = torch.zeros(1, 1, height, width)
    m[:, :, top:bottom, left:right] = 1
    return m


def _box_square(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width)
    m[:, :, top:top + h, left:left + h] = 1
    return m


def _box_canvas_wh(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, width, height)
    m[:, :, top:top + h, left:left + w] = 1
    return m


def _box_rows_inclusive(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width)
    m[:, :, top:top + h + 1, left:left + w] = 1
    return m


def _box_known_is_one(bbox, height, width):
    top, left, h, w = bbox
    m = torch.ones(1, 1, height, width)
    m[:, :, top:top + h, left:left + w] = 0
    return m


def _box_as_bool(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width, dtype=torch.bool)
    m[:, :, top:top + h, left:left + w] = True
    return m


def _box_2d(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(height, width)
    m[top:top + h, left:left + w] = 1
    return m


def _box_xy(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width)
    m[0, 0, left:left + w, top:top + h] = 1
    return m


def _box_long(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width, dtype=torch.long)
    m[:, :, top:top + h, left:left + w] = 1
    return m


def _box_double(bbox, height, width):
    top, left, h, w = bbox
    m = torch.zeros(1, 1, height, width, dtype=torch.float64)
    m[:, :, top:top + h, left:left + w] = 1
    return m


def _alt_box_a(bbox, height, width):
    top, left, h, w = bbox
    rows = ((torch.arange(height) >= top) & (torch.arange(height) < top + h)).float()
    cols = ((torch.arange(width) >= left) & (torch.arange(width) < left + w)).float()
    return (rows[:, None] * cols[None, :]).view(1, 1, height, width)


def _alt_box_b(bbox, height, width):
    top, left, h, w = bbox
    return F.pad(torch.ones(1, 1, h, w), (left, width - left - w, top, height - top - h))


def _mse01(x, y, dims=(1, 2, 3)):
    return (((x + 1) / 2 - (y + 1) / 2) ** 2).mean(dim=dims)


def _psnr_raw(x, y):
    return 10 * torch.log10(1 / ((x - y) ** 2).mean(dim=(1, 2, 3)))


def _psnr_channels(x, y):
    return (10 * torch.log10(1 / _mse01(x, y, (2, 3)))).mean(dim=1)


def _psnr_batch(x, y):
    return 10 * torch.log10(1 / _mse01(x, y, (0, 1, 2, 3)))


def _psnr_255(x, y):
    return 10 * torch.log10(255.0 ** 2 / _mse01(x, y))


def _psnr_mse_loss(x, y):
    return 10 * torch.log10(1 / F.mse_loss((x + 1) / 2, (y + 1) / 2))


def _psnr_half_mapped(x, y):
    return 10 * torch.log10(1 / (((x + 1) / 2 - y) ** 2).mean(dim=(1, 2, 3)))


def _psnr_negative(x, y):
    return 10 * torch.log10(_mse01(x, y))


def _psnr_list(x, y):
    return [10 * torch.log10(1 / m) for m in _mse01(x, y)]


def _psnr_ln(x, y):
    return 10 * torch.log(1 / _mse01(x, y))


def _alt_psnr_a(x, y):
    return 20 * torch.log10(1 / _mse01(x, y).sqrt())


def _alt_psnr_b(x, y):
    return 10 * torch.log10(4 / ((x - y) ** 2).mean(dim=(1, 2, 3)))  # peak 2 on [-1, 1]


def _discount_grid(height, width, gamma, fi, fj, combine=torch.maximum):
    i = torch.arange(height, dtype=torch.float64)[:, None]
    j = torch.arange(width, dtype=torch.float64)[None, :]
    return combine(gamma ** fi(i, height), gamma ** fj(j, width)).float()


def _sd_symmetric(height, width, gamma=0.9):
    d = lambda i, n: torch.minimum(i, n - 1 - i)  # noqa: E731
    return _discount_grid(height, width, gamma, d, d)


def _sd_min(height, width, gamma=0.9):
    d = lambda i, n: torch.minimum(i, n - i)  # noqa: E731
    return _discount_grid(height, width, gamma, d, d, torch.minimum)


def _sd_fixed(height, width, gamma=0.9):
    d = lambda i, n: torch.minimum(i, n - i)  # noqa: E731
    return _discount_grid(height, width, 0.9, d, d)


def _sd_paper_default(height, width, gamma=0.99):
    d = lambda i, n: torch.minimum(i, n - i)  # noqa: E731
    return _discount_grid(height, width, gamma, d, d)


def _sd_product(height, width, gamma=0.9):
    d = lambda i, n: torch.minimum(i, n - i)  # noqa: E731
    return _discount_grid(height, width, gamma, d, d, torch.mul)


def _sd_centre(height, width, gamma=0.9):
    d = lambda i, n: (i - n // 2).abs()  # noqa: E731
    return _discount_grid(height, width, gamma, d, d)


def _sd_lists(height, width, gamma=0.9):
    return [[max(gamma ** min(i, height - i), gamma ** min(j, width - j)) for j in range(width)]
            for i in range(height)]


def _sd_transposed(height, width, gamma=0.9):
    d = lambda i, n: torch.minimum(i, n - i)  # noqa: E731
    return _discount_grid(width, height, gamma, d, d)


def _sd_rows(height, width, gamma=0.9):
    i = torch.arange(height, dtype=torch.float64)[:, None]
    return (gamma ** torch.minimum(i, height - i)).expand(height, width).float()


def _alt_sd_a(height, width, gamma=0.9):
    out = torch.empty(height, width)
    for i in range(height):
        for j in range(width):
            out[i, j] = max(gamma ** min(i, height - i), gamma ** min(j, width - j))
    return out


def _alt_sd_b(height, width, gamma=0.9):
    ii, jj = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    li = torch.minimum(ii, height - ii)
    lj = torch.minimum(jj, width - jj)
    return torch.pow(torch.tensor(gamma, dtype=torch.float64), torch.minimum(li, lj)).float()


# ====================================================================== 03

def _unfold_patches(xp, kernel, stride):
    B, C = xp.shape[:2]
    cols = F.unfold(xp, kernel, stride=stride)  # (B, C*k*k, L)
    return cols.transpose(1, 2).reshape(B, cols.shape[-1], C, kernel, kernel)


def _ep_symmetric(x, kernel, stride=1):
    return _unfold_patches(F.pad(x, (kernel // 2,) * 4), kernel, stride)


def _ep_valid(x, kernel, stride=1):
    return _unfold_patches(x, kernel, stride)


def _ep_no_transpose(x, kernel, stride=1):
    B, C = x.shape[:2]
    cols = F.unfold(pad_same(x, kernel, stride), kernel, stride=stride)
    return cols.reshape(B, -1, C, kernel, kernel)


def _ep_unit_stride(x, kernel, stride=1):
    return _unfold_patches(pad_same(x, kernel, 1), kernel, 1)


def _ep_channels_last(x, kernel, stride=1):
    return _unfold_patches(pad_same(x, kernel, stride), kernel, stride).permute(0, 1, 3, 4, 2)


def _ep_replicate(x, kernel, stride=1):
    H, W = x.shape[-2:]
    p = pad_same(torch.ones(1, 1, H, W), kernel, stride)
    dh, dw = p.shape[-2] - H, p.shape[-1] - W
    return _unfold_patches(F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate"), kernel, stride)


def _ep_column_major(x, kernel, stride=1):
    xp = pad_same(x, kernel, stride)
    Ho, Wo = -(-x.shape[-2] // stride), -(-x.shape[-1] // stride)
    return torch.stack([xp[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
                        for j in range(Wo) for i in range(Ho)], dim=1)


def _ep_half_pad(x, kernel, stride=1):
    p = (kernel - 1) // 2
    return _unfold_patches(F.pad(x, (p, p, p, p)), kernel, stride)


def _ep_raw_unfold(x, kernel, stride=1):
    return F.unfold(pad_same(x, kernel, stride), kernel, stride=stride)


def _alt_ep_a(x, kernel, stride=1):
    return _unfold_patches(pad_same(x, kernel, stride), kernel, stride)


def _alt_ep_b(x, kernel, stride=1):
    xp = pad_same(x, kernel, stride)
    rows = xp.unfold(2, kernel, stride).unfold(3, kernel, stride)  # (B, C, Ho, Wo, k, k)
    B, C, Ho, Wo = rows.shape[:4]
    return rows.permute(0, 2, 3, 1, 4, 5).reshape(B, Ho * Wo, C, kernel, kernel)


def _np_plus(w, eps=1e-4):
    return w / (torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True) + eps)


def _np_sqrt(w, eps=1e-4):
    return w / w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt().clamp(min=eps)


def _np_channel(w, eps=1e-4):
    return F.normalize(w, dim=2, eps=eps)


def _np_spatial(w, eps=1e-4):
    return w / torch.linalg.vector_norm(w, dim=(3, 4), keepdim=True).clamp(min=eps)


def _np_fixed(w, eps=1e-4):
    n = torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True)
    return w / torch.maximum(n, torch.tensor(1e-4))


def _np_l1(w, eps=1e-4):
    return w / w.abs().sum(dim=(2, 3, 4), keepdim=True).clamp(min=eps)


def _np_zero_only(w, eps=1e-4):
    n = torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True)
    return w / torch.where(n == 0, torch.ones_like(n), n)


def _np_in_place(w, eps=1e-4):
    return w.div_(torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True).clamp(min=eps))


def _np_norms(w, eps=1e-4):
    return torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True).clamp(min=eps)


def _alt_np_a(w, eps=1e-4):
    n = torch.linalg.vector_norm(w, dim=(2, 3, 4), keepdim=True)
    return w / n.clamp(min=eps)


def _alt_np_b(w, eps=1e-4):
    B, L = w.shape[:2]
    n = w.reshape(B, L, -1).norm(dim=-1)
    return w / torch.maximum(n, torch.full_like(n, eps)).view(B, L, 1, 1, 1)


def _ms_symmetric(f, w):
    k = w.shape[-1]
    return torch.cat([F.conv2d(f[i:i + 1], w[i], padding=k // 2) for i in range(f.shape[0])])


def _ms_first(f, w):
    return F.conv2d(pad_same(f, w.shape[-1]), w[0])


def _ms_valid(f, w):
    return torch.cat([F.conv2d(f[i:i + 1], w[i]) for i in range(f.shape[0])])


def _ms_flip(f, w):
    k = w.shape[-1]
    return torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i].flip(-1, -2)) for i in range(f.shape[0])])


def _ms_cosine(f, w):
    k = w.shape[-1]
    out = torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i]) for i in range(f.shape[0])])
    norm = F.conv2d(pad_same(f.pow(2).sum(1, keepdim=True), k), torch.ones(1, 1, k, k)).sqrt()
    return out / norm.clamp(min=1e-4)


def _ms_no_groups(f, w):
    B, L, C, k, _ = w.shape
    return F.conv2d(pad_same(f, k), w.reshape(B * L, C, k, k))


def _ms_channels_last(f, w):
    k = w.shape[-1]
    return torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i]) for i in range(f.shape[0])]).permute(0, 2, 3, 1)


def _ms_transposed_patches(f, w):
    k = w.shape[-1]
    return torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i].transpose(-1, -2)) for i in range(f.shape[0])])


def _alt_ms_a(f, w):
    B, L, C, k, _ = w.shape
    H, W = f.shape[-2:]
    x = pad_same(f, k).reshape(1, B * C, H + k - 1, W + k - 1)
    return F.conv2d(x, w.reshape(B * L, C, k, k), groups=B).view(B, L, H, W)


def _alt_ms_b(f, w):
    B, L, C, k, _ = w.shape
    H, W = f.shape[-2:]
    cols = F.unfold(pad_same(f, k), k)  # (B, C*k*k, H*W)
    return torch.einsum("blc,bcp->blp", w.reshape(B, L, -1), cols).view(B, L, H, W)


# ---- the open variant: the true cosine

def _cos_squared_norms(f, w, eps=1e-4):  # sum of squares, no root, for both
    k = w.shape[-1]
    sq = F.conv2d(pad_same(f * f, k), torch.ones(1, f.shape[1], k, k))
    w2 = w / (w * w).sum(dim=(2, 3, 4), keepdim=True).clamp(min=eps)
    return A.matching_scores(f, w2) / sq.clamp(min=eps)


def _cos_plus_eps(f, w, eps=1e-4):
    k = w.shape[-1]
    cols = F.unfold(pad_same(f, k), k)  # (B, C*k*k, P)
    cols = cols / (cols.norm(dim=1, keepdim=True) + eps)
    flat = w.flatten(2)
    flat = flat / (flat.norm(dim=2, keepdim=True) + eps)
    return torch.bmm(flat, cols).view(w.shape[0], w.shape[1], *f.shape[-2:])


def _cos_release(f, w, eps=1e-4):
    return A.matching_scores(f, A.normalize_patches(w, eps))


def _cos_abs(f, w, eps=1e-4):  # |cos|: the sign thrown away
    return A.cosine_scores(f, w, eps).abs()


def _cos_mean_norm(f, w, eps=1e-4):  # an RMS instead of an L2 norm for the windows
    k = w.shape[-1]
    n = F.avg_pool2d(pad_same(f * f, k), k, stride=1).sum(1, keepdim=True).sqrt()
    return A.matching_scores(f, A.normalize_patches(w, eps)) / n.clamp(min=eps)


def _cos_per_channel_map(f, w, eps=1e-4):  # each channel of the map normalised over the whole image
    f_unit = f / f.norm(dim=(2, 3), keepdim=True).clamp(min=eps)
    return A.matching_scores(f_unit, A.normalize_patches(w, eps))


def _cos_no_floor_patches(f, w, eps=1e-4):  # windows floored, patches divided by their bare norm
    k = w.shape[-1]
    n = F.conv2d(pad_same(f * f, k), torch.ones(1, f.shape[1], k, k)).sqrt()
    return A.matching_scores(f, w / w.flatten(2).norm(dim=2)[:, :, None, None, None]) / n.clamp(min=eps)


def _cos_channels_last(f, w, eps=1e-4):
    return A.cosine_scores(f, w, eps).permute(0, 2, 3, 1)


def _alt_cos_a(f, w, eps=1e-4):
    k = w.shape[-1]
    windows = A.extract_patches(f, k, 1)  # (B, P, C, k, k)
    windows = windows / windows.flatten(2).norm(dim=2).clamp(min=eps)[:, :, None, None, None]
    patches = w / w.flatten(2).norm(dim=2).clamp(min=eps)[:, :, None, None, None]
    return torch.einsum("bpcij,blcij->blp", windows, patches).reshape(w.shape[0], w.shape[1], *f.shape[-2:])


def _alt_cos_b(f, w, eps=1e-4):
    k = w.shape[-1]
    scores = torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i]) for i in range(f.shape[0])])  # (B, L, Hf, Wf)
    f_sq = F.conv2d(pad_same(f.pow(2).sum(1, keepdim=True), k), torch.ones(1, 1, k, k))  # (B, 1, Hf, Wf)
    w_norm = w.pow(2).sum(dim=(2, 3, 4)).sqrt().clamp(min=eps)  # (B, L)
    return scores / w_norm[:, :, None, None] / torch.sqrt(torch.clamp(f_sq, min=eps * eps))


# ====================================================================== 04

def _vp_sym(mask, ksize):
    return (F.avg_pool2d(mask, ksize, 1, padding=ksize // 2).flatten(1) == 0).float()


def _vp_centre(mask, ksize):
    return (mask.flatten(1) == 0).float()


def _vp_majority(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, 1).flatten(1) < 0.5).float()


def _vp_bool(mask, ksize):
    return F.avg_pool2d(pad_same(mask, ksize), ksize, 1).flatten(1) == 0


def _vp_three(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, 3), 3, 1).flatten(1) == 0).float()


def _vp_inverted(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, 1).flatten(1) > 0).float()


def _vp_reversed(mask, ksize):
    t = ksize - 1
    return (F.avg_pool2d(F.pad(mask, (t - t // 2, t // 2, t - t // 2, t // 2)), ksize, 1).flatten(1) == 0).float()


def _vp_keepdim(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, 1).flatten(2) == 0).float()


def _vp_pool_stride(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize).flatten(1) == 0).float()  # stride defaults to ksize


def _vp_no_stride(mask, ksize):  # right at stride 1, but notebook 06 passes a stride
    return (F.max_pool2d(pad_same(mask, ksize), ksize, 1).flatten(1) == 0).to(mask.dtype)


def _vp_stride_pad(mask, ksize, stride=1):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, stride).flatten(1) == 0).to(mask.dtype)


def _alt_vp_a(mask, ksize, stride=1):
    return (F.max_pool2d(pad_same(mask, ksize, stride), ksize, stride).flatten(1) == 0).to(mask.dtype)


def _alt_vp_b(mask, ksize, stride=1):
    sums = F.conv2d(pad_same(mask, ksize, stride), torch.ones(1, 1, ksize, ksize, dtype=mask.dtype), stride=stride)
    return (sums.flatten(1) == 0).to(mask.dtype)


def _sm_inf(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax((scores * softmax_scale).masked_fill(m == 0, float("-inf")), dim=1)


def _sm_once(scores, mm, softmax_scale=10.0):
    return torch.softmax(scores * mm[:, :, None, None] * softmax_scale, dim=1)


def _sm_scale_outside(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m, dim=1) * softmax_scale * m


def _sm_last_axis(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m * softmax_scale, dim=-1) * m


def _sm_renorm(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    a = torch.softmax(scores * m * softmax_scale, dim=1) * m
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-9)


def _sm_renorm_unguarded(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    a = torch.softmax(scores * m * softmax_scale, dim=1) * m
    return a / a.sum(dim=1, keepdim=True)  # 0 / 0 where an image has no valid patch


def _sm_exp(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    e = torch.exp(scores * m * softmax_scale)
    return e / e.sum(dim=1, keepdim=True) * m


def _sm_flat_mm(scores, mm, softmax_scale=10.0):
    m = mm.reshape(1, -1, 1, 1)
    return torch.softmax(scores * m * softmax_scale, dim=1) * m


def _sm_ten(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m * 10.0, dim=1) * m


def _ni_plain(scores, mm, softmax_scale=10.0):
    z = torch.where(mm[:, :, None, None] > 0, scores * softmax_scale, torch.tensor(float("-inf")))
    return torch.softmax(z, dim=1)


def _ni_additive(scores, mm, softmax_scale=10.0):
    return torch.softmax(scores * softmax_scale + (1 - mm[:, :, None, None]) * float("-inf"), dim=1)


def _ni_in_place(scores, mm, softmax_scale=10.0):
    scores[(mm == 0)[:, :, None, None].expand_as(scores)] = float("-inf")
    return torch.nan_to_num(torch.softmax(scores * softmax_scale, dim=1))


def _ni_flat_mm(scores, mm, softmax_scale=10.0):
    valid = mm.reshape(1, -1, 1, 1) > 0  # (1, B*L, 1, 1): right only for one image
    z = (scores * softmax_scale).masked_fill(~valid, float("-inf"))
    return torch.nan_to_num(torch.softmax(z, dim=1))


def _ni_release(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m * softmax_scale, dim=1) * m


def _ni_min_fill(scores, mm, softmax_scale=10.0):
    z = (scores * softmax_scale).masked_fill(mm[:, :, None, None] == 0, torch.finfo(scores.dtype).min)
    return torch.softmax(z, dim=1)


def _ni_spatial(scores, mm, softmax_scale=10.0):
    z = (scores * softmax_scale).masked_fill(mm[:, :, None, None] == 0, float("-inf"))
    return torch.nan_to_num(torch.softmax(z.flatten(1), dim=1).view_as(z))


def _ni_keeps_valid_zero(scores, mm, softmax_scale=10.0):
    z = (scores * softmax_scale).masked_fill(mm[:, :, None, None] == 1, float("-inf"))
    return torch.nan_to_num(torch.softmax(z, dim=1))


def _ni_fixed(scores, mm, softmax_scale=10.0):
    z = (scores * 10.0).masked_fill(mm[:, :, None, None] == 0, float("-inf"))
    return torch.nan_to_num(torch.softmax(z, dim=1))


def _alt_ni_a(scores, mm, softmax_scale=10.0):
    z = (scores * softmax_scale).masked_fill(mm[:, :, None, None] == 0, float("-inf"))
    return torch.nan_to_num(torch.softmax(z, dim=1), nan=0.0)


def _ni_max_of_all(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    z = scores * softmax_scale
    e = torch.exp(z - z.max(dim=1, keepdim=True).values) * m  # the max of an INVALID patch can underflow the rest
    return e / e.sum(dim=1, keepdim=True).clamp(min=torch.finfo(e.dtype).tiny)


def _alt_ni_b(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    z = scores * softmax_scale
    top = z.masked_fill(m == 0, float("-inf")).amax(dim=1, keepdim=True)  # the best VALID score
    e = torch.exp(z - torch.where(torch.isfinite(top), top, torch.zeros_like(top))).masked_fill(m == 0, 0.0)
    return e / e.sum(dim=1, keepdim=True).clamp(min=torch.finfo(e.dtype).tiny)


def _alt_sm_a(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None] > 0
    z = scores.masked_fill(~m, 0.0) * softmax_scale
    return torch.exp(torch.log_softmax(z, dim=1)).masked_fill(~m, 0.0)


def _alt_sm_b(scores, mm, softmax_scale=10.0):
    m = mm.unsqueeze(-1).unsqueeze(-1)
    z = scores * m * softmax_scale
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True) * m


def _fuse_pass(m, k, pad=None, kernel=None):
    kernel = torch.eye(k, dtype=m.dtype).view(1, 1, k, k) if kernel is None else kernel
    return F.conv2d(pad_same(m, k) if pad is None else pad(m), kernel)


def _fuse_two(scores, fuse_k, pad=None, kernel=None, swap_back=True, second=True, first=True, crop=False):
    B, L, H, W = scores.shape

    def conv(m):
        out = _fuse_pass(m, fuse_k, pad, kernel)
        return out[..., :m.shape[-2], :m.shape[-1]] if crop else out

    m = scores.permute(0, 2, 3, 1).reshape(B, 1, H * W, L)
    if first:
        m = conv(m)
    if second:
        m = m.view(B, H, W, H, W).permute(0, 2, 1, 4, 3).reshape(B, 1, W * H, W * H)
        m = conv(m)
        if swap_back:
            m = m.view(B, W, H, W, H).permute(0, 2, 1, 4, 3)
    return m.reshape(B, H, W, L).permute(0, 3, 1, 2)


def _fs_one_pass(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k, second=False)


def _fs_symmetric(scores, fuse_k=3):
    p = fuse_k // 2
    return _fuse_two(scores, fuse_k, pad=lambda m: F.pad(m, (p, p, p, p)))


def _fs_symmetric_cropped(scores, fuse_k=3):
    p = fuse_k // 2
    return _fuse_two(scores, fuse_k, pad=lambda m: F.pad(m, (p, p, p, p)), crop=True)


def _fs_box(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k, kernel=torch.ones(1, 1, fuse_k, fuse_k))


def _fs_three(scores, fuse_k=3):
    return _fuse_two(scores, 3)


def _fs_anti(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k, kernel=torch.eye(fuse_k).flip(0).view(1, 1, fuse_k, fuse_k))


def _fs_no_swap_back(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k, swap_back=False)


def _fs_column_only(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k, first=False)


def _fs_foreground_swap(scores, fuse_k=3):
    B, L, H, W = scores.shape
    m = _fuse_pass(scores.permute(0, 2, 3, 1).reshape(B, 1, H * W, L), fuse_k)
    m = m.view(B, H, W, L).transpose(1, 2).reshape(B, 1, W * H, L)
    m = _fuse_pass(m, fuse_k).view(B, W, H, L).transpose(1, 2)
    return m.reshape(B, H, W, L).permute(0, 3, 1, 2)


def _alt_fs_a(scores, fuse_k=3):
    return _fuse_two(scores, fuse_k)


def _alt_fs_transposed(scores, fuse_k=3):
    """Both passes on the TRANSPOSED matrix [q, p]: the same, because torch.eye is symmetric (notebook 04)."""
    B, L, H, W = scores.shape
    eye = torch.eye(fuse_k, dtype=scores.dtype).view(1, 1, fuse_k, fuse_k)
    m = F.conv2d(pad_same(scores.reshape(B, 1, L, H * W), fuse_k), eye)  # (B, 1, q, p), both row-major
    m = m.view(B, H, W, H, W).transpose(1, 2).transpose(3, 4).reshape(B, 1, L, H * W)  # both column-major
    m = F.conv2d(pad_same(m, fuse_k), eye)
    return m.view(B, W, H, W, H).transpose(1, 2).transpose(3, 4).reshape(B, L, H, W)


def _alt_fs_b(scores, fuse_k=3):
    B, L, H, W = scores.shape
    lo, hi = (fuse_k - 1) // 2, fuse_k // 2

    def shifted_sum(m):  # (B, P, Q): sum over d of m[p + d, q + d]
        P, Q = m.shape[-2:]
        out = torch.zeros_like(m)
        for d in range(-lo, hi + 1):
            src = m[:, max(d, 0):P + min(d, 0), max(d, 0):Q + min(d, 0)]
            out[:, max(-d, 0):max(-d, 0) + src.shape[1], max(-d, 0):max(-d, 0) + src.shape[2]] += src
        return out

    m = shifted_sum(scores.flatten(2).transpose(1, 2))  # (B, H*W, L)
    m = m.reshape(B, H, W, H, W).permute(0, 2, 1, 4, 3).reshape(B, W * H, W * H)
    m = shifted_sum(m).reshape(B, W, H, W, H).permute(0, 2, 1, 4, 3).reshape(B, H * W, L)
    return m.transpose(1, 2).reshape(B, L, H, W)


# ====================================================================== 05

def _rc(attention, raw, rate, out_size, divide=4.0, top=None, left=None, stride=None, shared=False, crop=True,
        flip=False):
    H, W = out_size
    k = raw.shape[-1]
    h, w = attention.shape[-2:]
    t = max((h - 1) * rate + k - H, 0) // 2 if top is None else top
    lft = max((w - 1) * rate + k - W, 0) // 2 if left is None else left
    outs = []
    for i in range(attention.shape[0]):
        p = raw[0 if shared else i]
        p = p.transpose(-1, -2) if flip else p
        y = F.conv_transpose2d(attention[i:i + 1], p, stride=rate if stride is None else stride)
        outs.append(y[:, :, t:t + H, lft:lft + W] if crop else y)
    return torch.cat(outs) / divide


def _rc_no_div(a, r, rate, s):
    return _rc(a, r, rate, s, divide=1.0)


def _rc_rate_sq(a, r, rate, s):
    return _rc(a, r, rate, s, divide=rate ** 2)


def _rc_bottom(a, r, rate, s):
    return _rc(a, r, rate, s, top=0, left=0)


def _rc_fixed(a, r, rate, s):
    k = r.shape[-1]
    return _rc(a, r, rate, s, top=(k - rate) // 2, left=(k - rate) // 2)


def _rc_shared(a, r, rate, s):
    return _rc(a, r, rate, s, shared=True)


def _rc_stride1(a, r, rate, s):
    return _rc(a, r, rate, s, stride=1, top=0, left=0)


def _rc_uncropped(a, r, rate, s):
    return _rc(a, r, rate, s, crop=False)


def _rc_flipped(a, r, rate, s):
    return _rc(a, r, rate, s, flip=True)


def _rc_rows_for_cols(a, r, rate, s):
    H, W = s
    k = r.shape[-1]
    h = a.shape[-2]
    t = max((h - 1) * rate + k - H, 0) // 2
    return _rc(a, r, rate, s, top=t, left=t)


def _alt_rc_a(attention, raw, rate, out_size):
    B, L, h, w = attention.shape
    C, k = raw.shape[2], raw.shape[-1]
    H, W = out_size
    t = max((h - 1) * rate + k - H, 0) // 2
    lft = max((w - 1) * rate + k - W, 0) // 2
    y = F.conv_transpose2d(attention.reshape(1, B * L, h, w), raw.reshape(B * L, C, k, k), stride=rate, groups=B)
    return y.view(B, C, *y.shape[-2:])[:, :, t:t + H, lft:lft + W] / 4


def _alt_rc_b(attention, raw, rate, out_size):
    B, L, h, w = attention.shape
    C, k = raw.shape[2], raw.shape[-1]
    H, W = out_size
    t = max((h - 1) * rate + k - H, 0) // 2
    lft = max((w - 1) * rate + k - W, 0) // 2
    full = attention.new_zeros(B, C, (h - 1) * rate + k, (w - 1) * rate + k)
    pasted = torch.einsum("blij,blcpq->bcijpq", attention, raw)  # every paste, weighted
    for i in range(h):
        for j in range(w):
            full[:, :, i * rate:i * rate + k, j * rate:j * rate + k] += pasted[:, :, i, j]
    return full[:, :, t:t + H, lft:lft + W] / 4


# ====================================================================== 06

def _ca(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True, *,
        down=A.downsample, fuse_late=False, raw_small=False, flow_width=None, flow_mode="bilinear",
        corners=True, scale=None, crash_none=False, pair=True, paste_small=False):
    H, W = f.shape[-2:]
    f_s, b_s = down(f, rate), down(b, rate)
    raw = A.extract_patches(b_s, 2 * rate, stride) if raw_small else A.extract_patches(b, 2 * rate, rate * stride)
    raw = A.extract_patches(b_s, ksize, stride) if paste_small else raw
    if mask is None and not crash_none:
        mask = torch.zeros(1, 1, *b.shape[-2:])
    m_s = down(mask, rate)
    mm = A.valid_patches(m_s, ksize, stride)
    scores = A.matching_scores(f_s, A.normalize_patches(A.extract_patches(b_s, ksize, stride)))
    if fuse and not fuse_late:
        scores = A.fuse_scores(scores, fuse_k)
    att = A.masked_softmax(scores, mm, softmax_scale if scale is None else scale)
    if fuse and fuse_late:
        att = A.fuse_scores(att, fuse_k) * mm[:, :, None, None]
    y = A.reconstruct(att, raw, rate, (H, W))
    if not pair:
        return y
    color = flow_to_color(A.attention_offsets(att, flow_width or f_s.shape[-1]))
    if flow_mode == "nearest":
        flow = F.interpolate(color, size=(H, W), mode="nearest")
    else:
        flow = F.interpolate(color, size=(H, W), mode="bilinear", align_corners=corners)
    return y, flow


def _ca_with(**kw):
    def layer(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
        return _ca(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse, **kw)
    return layer


def _ca_wide_flow(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _ca(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse, flow_width=f.shape[-1])


def _alt_ca_a(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _ca(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)


def _alt_ca_b(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    H, W = f.shape[-2:]
    att = A.attention_weights(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)
    y = A.reconstruct(att, A.extract_patches(b, 2 * rate, rate * stride), rate, (H, W))
    idx = att.argmax(dim=1)  # (B, h, w)
    w_s = att.shape[-1]
    rows = torch.arange(att.shape[-2]).view(1, -1, 1)
    cols = torch.arange(w_s).view(1, 1, -1)
    offsets = torch.stack([idx // w_s - rows, idx % w_s - cols], dim=1)  # (B, 2, h, w)
    picture = flow_to_color(offsets)
    return y, F.interpolate(picture, size=(H, W), mode="bilinear", align_corners=True)


# ====================================================================== 07

def _si_order(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones * mask, ones], dim=1)


def _si_raw_mask(x, mask):
    return torch.cat([x, torch.ones_like(x[:, :1]), mask], dim=1)


def _si_known(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, ones * (1 - mask)], dim=1)


def _si_blank(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x * (1 - mask), ones, ones * mask], dim=1)


def _si_zeros(x, mask):
    return torch.cat([x, torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1]) * mask], dim=1)


def _si_four(x, mask):
    return torch.cat([x, torch.ones_like(x[:, :1]) * mask], dim=1)


def _si_double(x, mask):
    ones = torch.ones(x.shape[0], 1, *x.shape[-2:], dtype=torch.float64)
    return torch.cat([x, ones, ones * mask], dim=1)


def _si_detached(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x.detach(), ones, ones * mask], dim=1)


def _si_mask_times_x(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, x[:, :1] * mask], dim=1)


def _alt_si_a(x, mask):
    B, _, H, W = x.shape
    return torch.cat([x, x.new_ones(B, 1, H, W), mask.expand(B, 1, H, W)], dim=1)


def _alt_si_b(x, mask):
    out = torch.empty(x.shape[0], 5, *x.shape[-2:], dtype=x.dtype)
    out = torch.cat([x, torch.ones_like(out[:, :1]), torch.ones_like(out[:, :1]) * mask], dim=1)
    return out


def _rf_loop(layers, update_j_first=False, use_d=True, r0=1, jd=False, kfull=False, with_j=True):
    r, j, out = r0, 1, []
    for k, s, d in layers:
        if update_j_first:
            j *= s
        r += ((k if kfull else k - 1) * (d if use_d else 1) * (j if with_j else 1))
        if not update_j_first:
            j *= s * (d if jd else 1)
        out.append((r, j))
    return out


def _rf_generator(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
        yield (r, j)


def _alt_rf_a(layers):
    import itertools

    def step(state, layer):
        r, j = state
        k, s, d = layer
        return (r + (k - 1) * d * j, j * s)

    return list(itertools.accumulate(layers, step, initial=(1, 1)))[1:]


def _alt_rf_b(layers):
    out = []
    for n in range(1, len(layers) + 1):
        jumps = [1]
        for _, s, _ in layers[:n]:
            jumps.append(jumps[-1] * s)
        out.append((1 + sum((k - 1) * d * jumps[i] for i, (k, _, d) in enumerate(layers[:n])), jumps[-1]))
    return out


def _cs_in_place(x1, x_in, mask):
    m = mask.expand_as(x_in).bool()
    x_in[m] = x1[m]
    return x_in


def _alt_cs_a(x1, x_in, mask):
    return torch.where(mask.bool(), x1, x_in)


def _alt_cs_b(x1, x_in, mask):
    return x_in + mask * (x1 - x_in)


def _cc_run(net, h, names=None):
    for name in names or net.LAYERS:
        h = getattr(net, name)(h)
    return h


def _cc_reblank(net, x, mask):
    return _cc_run(net, lib_stage_input(x * (1 - mask), mask)).clamp(-1, 1)


def _cc_no_clip(net, x, mask):
    return _cc_run(net, lib_stage_input(x, mask))


def _cc_tanh(net, x, mask):
    return torch.tanh(_cc_run(net, lib_stage_input(x, mask)))


def _cc_sorted(net, x, mask):
    return _cc_run(net, lib_stage_input(x, mask), sorted(net.LAYERS)).clamp(-1, 1)


def _cc_unit(net, x, mask):
    return _cc_run(net, lib_stage_input(x, mask)).clamp(0, 1)


def _cc_skip_last(net, x, mask):
    return _cc_run(net, lib_stage_input(x, mask), net.LAYERS[:-1]).clamp(-1, 1)


def _cc_no_grad(net, x, mask):
    with torch.no_grad():
        return _cc_run(net, lib_stage_input(x, mask)).clamp(-1, 1)


def _cc_inverted_mask(net, x, mask):
    return _cc_run(net, lib_stage_input(x, 1 - mask)).clamp(-1, 1)


def _cc_sigmoid(net, x, mask):
    return torch.sigmoid(_cc_run(net, lib_stage_input(x, mask))) * 2 - 1


def _alt_cc_a(net, x, mask):
    h = lib_stage_input(x, mask)
    for layer in [getattr(net, n) for n in net.LAYERS]:
        h = layer(h)
    return torch.clip(h, -1.0, 1.0)


def _alt_cc_b(net, x, mask):
    h = torch.cat([x, torch.ones_like(x[:, :1]), torch.ones_like(x[:, :1]) * mask], dim=1)
    return torch.maximum(torch.minimum(_cc_run(net, h), torch.ones(())), -torch.ones(()))


# ====================================================================== 08

def _alt_flat_a(h):
    return torch.stack([h[:, :, i, j] for i in range(h.shape[2]) for j in range(h.shape[3])], dim=1).flatten(1)


def _alt_flat_b(h):
    return h.transpose(1, 2).transpose(2, 3).reshape(h.shape[0], -1)


def _slopes(grad, mask, eps=1e-12, sqrt=True, use_mask=True, mean=False, eps_out=False):
    sq = grad ** 2 * (mask if use_mask else 1)
    s = sq.mean(dim=(1, 2, 3)) if mean else sq.sum(dim=(1, 2, 3))
    if not sqrt:
        return s + eps
    return torch.sqrt(s) + eps if eps_out else torch.sqrt(s + eps)


def _alt_sl_a(grad, mask, eps=1e-12):
    return (grad.pow(2) * mask).flatten(1).sum(1).add(eps).sqrt()


def _alt_sl_b(grad, mask, eps=1e-12):
    return torch.sqrt(torch.einsum("bchw,bchw->b", grad, grad * mask.expand_as(grad)) + eps)


def _gp_student(critic, real, fake, mask, alpha, detach=True, paper_mask=False, graph=True, relu=False,
                at=None, mean_first=False, use_mask=True, reduce=torch.mean, my_alpha=False):
    a = torch.rand_like(alpha) if my_alpha else alpha
    x = real + a * (fake - real) if at is None else at(real, fake)
    x = x.detach().requires_grad_(True) if detach else x.requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=graph)
    m = (1 - mask) if paper_mask else (mask if use_mask else torch.ones_like(mask))
    slopes = torch.sqrt(torch.sum(grad ** 2 * m, dim=(1, 2, 3)) + 1e-12)
    if mean_first:
        return (slopes.mean() - 1) ** 2
    gap = torch.relu(slopes - 1) if relu else slopes - 1
    return reduce(gap ** 2)


def _gp_with(**kw):
    return lambda critic, real, fake, mask, alpha: _gp_student(critic, real, fake, mask, alpha, **kw)


def _alt_gp_a(critic, real, fake, mask, alpha):
    x_hat = torch.lerp(real.detach(), fake.detach(), alpha).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    return ((lib_masked_slopes(grad, mask) - 1) ** 2).mean()


def _alt_gp_b(critic, real, fake, mask, alpha):
    x_hat = (alpha * fake + (1 - alpha) * real).detach()
    x_hat.requires_grad = True
    grad = torch.autograd.grad(critic(x_hat).sum(), [x_hat], create_graph=True)[0]
    slopes = (grad.square() * mask).sum(dim=[1, 2, 3]).add(1e-12).sqrt()
    return torch.mean(torch.square(slopes - 1.0))


# ====================================================================== 09

def _as_core(obj, path, *, tmp_dir=None, fixed=None, mkdir=True, close=True, ret="path", catch=BaseException,
              reraise=True, use_replace=True):
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    if fixed:
        tmp = path.parent / fixed(path)
        fd = None
    else:
        fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, suffix=".tmp")
    try:
        if fd is not None and close:
            with os.fdopen(fd, "wb") as handle:
                torch.save(obj, handle)
        else:
            torch.save(obj, tmp)
        if use_replace:
            os.replace(tmp, path)
        else:
            shutil.copyfile(tmp, path)
            os.remove(tmp)
    except catch:
        if os.path.exists(tmp):
            os.remove(tmp)
        if reraise:
            raise
    return {"path": path, "none": None, "tmp": Path(tmp)}[ret]


def _as_with(**kw):
    return lambda obj, path: _as_core(obj, path, **kw)


def _as_direct(obj, path):
    torch.save(obj, path)
    return Path(path)


def _alt_as_a(obj, path):
    path = Path(path)
    os.makedirs(path.parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name, suffix=".partial")
    try:
        with open(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _alt_as_b(obj, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp")
    try:
        with handle:
            torch.save(obj, handle)
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
    return path


def _ema_core(average, weights, n, decay, *, ret="d", zip_keys=False, ints="copy", rebind=False, swap=False,
              warm=lambda n: (1 + n) / (10 + n), pick=min):
    d = pick(decay, warm(n))
    pairs = zip(average.items(), weights.values()) if zip_keys else ((kv, weights[kv[0]]) for kv in average.items())
    for (k, avg), w in pairs:
        if not avg.is_floating_point() and ints == "copy":
            avg.copy_(w)
            continue
        if rebind:
            average[k] = d * avg + (1 - d) * w
        elif swap:
            avg.mul_(1 - d).add_(w, alpha=d)
        else:
            avg.mul_(d).add_(w, alpha=1 - d)
    return {"d": d, "decay": decay, "none": None}[ret]


def _ema_data(average, weights, num_updates, decay):  # rebinds .data: the module keeps its old tensors
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for name, avg in average.items():
        if avg.is_floating_point():
            avg.data = d * avg + (1 - d) * weights[name]
        else:
            avg.copy_(weights[name])
    return d


def _ema_with(**kw):
    return lambda average, weights, num_updates, decay: _ema_core(average, weights, num_updates, decay, **kw)


def _alt_ema_a(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    with torch.no_grad():
        for name in average:
            if torch.is_floating_point(average[name]):
                average[name].lerp_(weights[name], 1 - d)
            else:
                average[name].copy_(weights[name])
    return d


def _alt_ema_b(average, weights, num_updates, decay):
    d = float(min(decay, (1.0 + num_updates) / (10.0 + num_updates)))
    for name, avg in average.items():
        new = weights[name]
        avg.copy_(d * avg + (1 - d) * new if avg.dtype.is_floating_point else new)
    return d


# ====================================================================== 10

def _at_isqrt(attention, grid, row, col, cell=8):
    L = attention.shape[1]
    s = math.isqrt(L)
    return attention[0, :, row // cell, col // cell].reshape(s, L // s)


def _at_swap(attention, grid, row, col, cell=8):
    return attention[0, :, col // cell, row // cell].reshape(grid)


def _at_renorm(attention, grid, row, col, cell=8):
    w = attention[0, :, row // cell, col // cell]
    return (w / w.sum()).reshape(grid)


def _at_last(attention, grid, row, col, cell=8):
    return attention[attention.shape[0] - 1, :, row // cell, col // cell].reshape(grid)


def _at_round(attention, grid, row, col, cell=8):
    i = min(int(row / cell + 0.5), attention.shape[-2] - 1)
    j = min(int(col / cell + 0.5), attention.shape[-1] - 1)
    return attention[0, :, i, j].reshape(grid)


def _at_eight(attention, grid, row, col, cell=8):
    return attention[0, :, row // 8, col // 8].reshape(grid)


def _at_transpose(attention, grid, row, col, cell=8):
    return attention[0, :, row // cell, col // cell].reshape(grid[1], grid[0]).T


def _at_pixels(attention, grid, row, col, cell=8):
    i, j = min(row, attention.shape[-2] - 1), min(col, attention.shape[-1] - 1)
    return attention[0, :, i, j].reshape(grid)


def _at_batch(attention, grid, row, col, cell=8):
    return attention[:, :, row // cell, col // cell].reshape(-1, *grid)


def _alt_at_a(attention, grid, row, col, cell=8):
    hc, wc = grid
    return attention[0].permute(1, 2, 0)[row // cell, col // cell].view(hc, wc)


def _alt_at_b(attention, grid, row, col, cell=8):
    cell_row, cell_col = divmod(row, cell)[0], divmod(col, cell)[0]
    return torch.stack([attention[0, l, cell_row, cell_col] for l in range(attention.shape[1])]).reshape(*grid)


# ====================================================================== 11

def _gc(x, weight, bias, stride=1, dilation=1, *, swap=False, act=F.elu, gate=torch.sigmoid, torch_pad=False,
        use_stride=True, use_dilation=True, interleave=False, after=False, use_bias=True):
    s = stride if use_stride else 1
    d = dilation if use_dilation else 1
    b = bias if use_bias else None
    if torch_pad:
        h = F.conv2d(x, weight, b, s, d * (weight.shape[-1] // 2), d)
    else:
        h = same_conv2d(x, weight, b, s, d)
    if interleave:
        feat, g = h[:, 0::2], h[:, 1::2]
    else:
        feat, g = torch.chunk(h, 2, dim=1)
    if swap:
        feat, g = g, feat
    return act(feat * gate(g)) if after else act(feat) * gate(g)


def _gc_with(**kw):
    return lambda x, weight, bias, stride=1, dilation=1: _gc(x, weight, bias, stride, dilation, **kw)


def _alt_gc_a(x, weight, bias, stride=1, dilation=1):
    h = same_conv2d(x, weight, bias, stride, dilation)
    c = h.shape[1] // 2
    return F.elu(h[:, :c]) * torch.sigmoid(h[:, c:])


def _alt_gc_b(x, weight, bias, stride=1, dilation=1):
    c = weight.shape[0] // 2
    wf, wg = weight.split(c, dim=0)
    bf, bg = bias.split(c)
    return F.elu(same_conv2d(x, wf, bf, stride, dilation)) * (1 / (1 + torch.exp(-same_conv2d(x, wg, bg, stride, dilation))))


# ====================================================================== the sets


def _ugp_student(detach=True, graph=True, relu=False, at=None, my_alpha=False, norm=None, reduce=torch.mean,
                 flip_alpha=False):
    """WGAN-GP's penalty as a student writes it from notebook 08, with one thing changed."""
    def penalty(critic, real, fake, alpha):
        a = torch.full_like(alpha, 0.3) if my_alpha else (1 - alpha if flip_alpha else alpha)
        x_hat = at(real, fake) if at else real + a * (fake - real)
        x_hat = x_hat.detach().requires_grad_(True) if detach else x_hat.requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=graph)
        slopes = norm(g) if norm else g.flatten(1).norm(dim=1)  # (B,)
        gap = F.relu(slopes - 1) if relu else slopes - 1
        return reduce(gap ** 2)
    return penalty


def _alt_ugp_a(critic, real, fake, alpha):
    x_hat = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (torch.linalg.vector_norm(g, dim=(1, 2, 3)) - 1).pow(2).mean()


def _alt_ugp_b(critic, real, fake, alpha):
    x_hat = torch.lerp(real, fake, alpha).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat), x_hat, torch.ones(len(real), 1, dtype=real.dtype), create_graph=True)
    return ((g * g).sum(dim=(1, 2, 3)).add(1e-12).sqrt().sub(1).square()).sum() / len(real)


WRONG: dict[str, list[tuple[tuple[str, ...], object]]] = {
    "to_signed_range": [
        ((SMALLEST,), _signed_centred), (("subtract 1",), _signed_doubled), (("own minimum",), _signed_minmax),
        (("127.5",), _signed_128), (("shape",), _signed_flattened), ((SMALLEST,), _signed_clamped),
        (("float16",), _signed_half), (("shape",), _signed_batch_only), ((SMALLEST,), _signed_flipped),
        (("whole number",), _signed_rounded)],
    "box_mask": [
        (("sizes, not corners",), _box_corners), (("width of the box",), _box_square), (("canvas",), _box_canvas_wh),
        ((SMALLEST,), _box_rows_inclusive), (("1 = hole",), _box_known_is_one), (("floating-point",), _box_as_bool),
        (("(1, 1, H, W)",), _box_2d), (("rows and columns",), _box_xy), (("floating-point",), _box_long),
        (("float64",), _box_double)],
    "psnr": [
        (("[0, 1]",), _psnr_raw), ((SMALLEST,), _psnr_channels), (("per image",), _psnr_batch),
        (("peak",), _psnr_255), (("per image",), _psnr_mse_loss), ((SMALLEST,), _psnr_half_mapped),
        ((SMALLEST,), _psnr_negative), (("list",), _psnr_list), (("log10",), _psnr_ln)],
    "spatial_discount": [
        (("off-by-one",), _sd_symmetric), (("max of the two",), _sd_min), ((SMALLEST,), _sd_fixed),
        (("default gamma",), _sd_paper_default), (("not their product",), _sd_product), ((SMALLEST,), _sd_centre),
        (("list",), _sd_lists), (("wrong axis",), _sd_transposed), (("both axes",), _sd_rows)],
    "extract_patches": [
        (("padding",), _ep_symmetric), (("'SAME' padding",), _ep_valid), (("scrambled", "permute"), _ep_no_transpose),
        (("stride",), _ep_unit_stride), (("(C, k, k) order",), _ep_channels_last), (("zeros",), _ep_replicate),
        ((SMALLEST,), _ep_column_major), (("padding", SMALLEST, "shape"), _ep_half_pad), (("shape",), _ep_raw_unfold)],
    "normalize_patches": [
        (("not added",), _np_plus), (("all-zero patch",), _np_sqrt), (("wrong axis", SMALLEST), _np_channel),
        (("wrong axis",), _np_spatial), (("eps argument",), _np_fixed), ((SMALLEST,), _np_l1),
        (("floor",), _np_zero_only), (("in place",), _np_in_place), (("shape",), _np_norms)],
    "matching_scores": [
        (("even",), _ms_symmetric), (("own patches",), _ms_first), (("'SAME'",), _ms_valid), (("flip",), _ms_flip),
        (("foreground",), _ms_cosine), (("own patches", "shape"), _ms_no_groups), (("shape",), _ms_channels_last),
        ((SMALLEST,), _ms_transposed_patches)],
    "valid_patches": [
        (("even ksize",), _vp_sym), (("window",), _vp_centre), (("exactly 0",), _vp_majority),
        (("floating-point",), _vp_bool), (("ksize argument",), _vp_three), (("inverted",), _vp_inverted),
        (("bottom/right",), _vp_reversed), (("shape",), _vp_keepdim), (("shape", SMALLEST), _vp_pool_stride),
        (("third argument stride",), _vp_no_stride), (("pad_same(mask, ksize, stride)",), _vp_stride_pad)],
    "masked_softmax": [
        (("-inf",), _sm_inf), (("after the softmax",), _sm_once), ((SMALLEST,), _sm_scale_outside),
        (("axis",), _sm_last_axis), (("renormalise",), _sm_renorm), (("maximum",), _sm_exp),
        (("raised",), _sm_flat_mm), (("hard-code", "softmax_scale"), _sm_ten),
        (("no valid patch", "renormalise"), _sm_renorm_unguarded)],
    "masked_softmax_neg_inf": [
        (("every patch is invalid",), _ni_plain), (("0 * inf",), _ni_additive), (("in place",), _ni_in_place),
        (("raised", SMALLEST, "per image"), _ni_flat_mm), (("release",), _ni_release),
        (("large negative",), _ni_min_fill), (("axis", SMALLEST), _ni_spatial), (("inverted",), _ni_keeps_valid_zero),
        (("softmax_scale",), _ni_fixed), ((SMALLEST,), _ni_max_of_all)],
    "fuse_scores": [
        (("both orderings",), _fs_one_pass), (("even fuse_k",), _fs_symmetric), (("bottom/right",), _fs_symmetric_cropped),
        (("identity",), _fs_box), (("fuse_k argument",), _fs_three), (("main diagonal",), _fs_anti),
        ((SMALLEST,), _fs_no_swap_back), (("row-major pass",), _fs_column_only), (("both axes",), _fs_foreground_swap)],
    "reconstruct": [
        (("/4",), _rc_no_div), ((SMALLEST, "constant 4", "/4"), _rc_rate_sq), (("off-by-one",), _rc_bottom),
        (("fixed crop",), _rc_fixed), (("its own patches",), _rc_shared), (("stride",), _rc_stride1),
        (("shape",), _rc_uncropped), ((SMALLEST,), _rc_flipped), (("fixed crop", SMALLEST), _rc_rows_for_cols)],
    "contextual_attention": [
        (("x[..., ::2, ::2]", "align_corners=True"), _ca_with(down=lambda x, r: x[..., ::r, ::r])),
        (("before the softmax",), _ca_with(fuse_late=True)),
        (("full-resolution b",), _ca_with(paste_small=True)),
        (("full-resolution b",), _ca_with(raw_small=True)),
        (("small map",), _ca_wide_flow),
        (("nearest",), _ca_with(flow_mode="nearest")),
        (("align_corners=True",), _ca_with(corners=False)),
        (("mask=None",), _ca_with(crash_none=True)),
        (("softmax_scale",), _ca_with(scale=10.0)),
        (("pair",), _ca_with(pair=False))],
    "stage_input": [
        (("order",), _si_order), (("shared mask",), _si_raw_mask), (("1 = hole",), _si_known),
        (("as it comes",), _si_blank), (("all ones",), _si_zeros), (("ones channel", "shape"), _si_four),
        (("float64",), _si_double), (("no gradient",), _si_detached), ((SMALLEST,), _si_mask_times_x)],
    "receptive_field": [
        (("before the update",), lambda layers: _rf_loop(layers, update_j_first=True)),
        (("dilation",), lambda layers: _rf_loop(layers, use_d=False)),
        (("start at r = 1",), lambda layers: _rf_loop(layers, r0=0)),
        (("expected a list",), lambda layers: _rf_loop(layers)[-1] if layers else []),
        (("work the first two layers",), lambda layers: _rf_loop(layers, kfull=True)),
        (("stride only",), lambda layers: _rf_loop(layers, jd=True)),
        (("generator",), _rf_generator),
        (("work the first two layers", "jump"), lambda layers: _rf_loop(layers, with_j=False))],
    "compose_stages": [
        (("inverted",), lambda x1, xi, m: x1 * (1 - m) + xi * m),
        (("stop-gradient",), lambda x1, xi, m: x1.detach() * m + xi * (1 - m)),
        (("1 - mask",), lambda x1, xi, m: x1 * m + xi),
        ((SMALLEST,), lambda x1, xi, m: xi),
        (("in place",), _cs_in_place),
        ((SMALLEST,), lambda x1, xi, m: (x1 + xi) / 2),
        (("stop-gradient", "no gradient"), lambda x1, xi, m: x1.data * m + xi * (1 - m)),
        (("float64",), lambda x1, xi, m: x1 * m.double() + xi * (1 - m.double()))],
    "coarse_stage": [
        (("clip",), _cc_no_clip), (("tanh",), _cc_tanh), (("LAYERS order",), _cc_sorted),
        (("as it comes",), _cc_reblank), ((SMALLEST, "differs"), _cc_unit), (("every layer",), _cc_skip_last),
        (("no gradient",), _cc_no_grad), (("differs",), _cc_inverted_mask), (("differs",), _cc_sigmoid)],
    "flatten_nhwc": [
        (("NCHW",), lambda h: h.flatten(1)), (("rows before columns",), lambda h: h.permute(0, 3, 2, 1).flatten(1)),
        (("keep the batch dim", "shape"), lambda h: h.permute(0, 2, 3, 1).reshape(-1)),
        (("rows before columns",), lambda h: h.transpose(1, 3).flatten(1)),
        (("reshape",), lambda h: h.permute(0, 2, 3, 1).view(h.shape[0], -1)),
        ((SMALLEST,), lambda h: h.permute(0, 1, 3, 2).flatten(1)),
        (("NCHW",), lambda h: h.reshape(h.shape[0], -1)),
        (("NumPy",), lambda h: h.permute(0, 2, 3, 1).flatten(1).numpy())],
    "wgan_critic_loss": [
        (("sign",), lambda pos, neg: torch.mean(pos - neg)), (("mean",), lambda pos, neg: (neg - pos).sum()),
        (("one number",), lambda pos, neg: neg - pos),
        (("no log",), lambda pos, neg: F.softplus(-pos).mean() + F.softplus(neg).mean()),
        ((SMALLEST,), lambda pos, neg: (neg - pos).mean().abs()), ((SMALLEST,), lambda pos, neg: -neg.mean()),
        (("Python float",), lambda pos, neg: (neg - pos).mean().item()),
        (("no gradient",), lambda pos, neg: neg.mean() - pos.detach().mean())],
    "masked_slopes": [
        (("apply the mask",), lambda grad, mask, eps=1e-12: _slopes(grad, mask, eps, use_mask=False)),
        (("square root",), lambda grad, mask, eps=1e-12: _slopes(grad, mask, eps, sqrt=False)),
        (("do not average",), lambda grad, mask, eps=1e-12: _slopes(grad, mask, eps, mean=True)),
        (("wrong place",), lambda grad, mask, eps=1e-12: _slopes(grad, mask, eps, eps_out=True)),
        (("eps argument",), lambda grad, mask, eps=1e-12: _slopes(grad, mask, 1e-12)),
        (("one norm per sample",),
         lambda grad, mask, eps=1e-12: (torch.sqrt((grad ** 2).sum(1, keepdim=True) + eps) * mask).sum((1, 2, 3))),
        ((SMALLEST,), lambda grad, mask, eps=1e-12: grad.flatten(1).norm(dim=1) * mask.flatten(1).mean(1)),
        (("eps",), lambda grad, mask, eps=1e-12: torch.linalg.norm((grad * mask).flatten(1), dim=1))],
    "gradient_penalty": [
        (("detach",), _gp_with(detach=False)), (("(1 - mask)",), _gp_with(paper_mask=True)),
        (("create_graph",), _gp_with(graph=False)), (("two-sided",), _gp_with(relu=True)),
        (("interpolates",), _gp_with(at=lambda r, f: f)), (("alpha argument", "differs"), _gp_with(my_alpha=True)),
        (("each sample's gap",), _gp_with(mean_first=True)),
        (("alpha * (fake - real)",), lambda critic, real, fake, mask, alpha: _gp_student(critic, real, fake, mask,
                                                                                          1 - alpha)),
        (("over the hole",), _gp_with(use_mask=False)), (("not their sum",), _gp_with(reduce=torch.sum))],
    "atomic_save": [
        (("unique name",), _as_with(fixed=lambda p: p.name + ".tmp")),
        (("create the target's folder",), _as_with(mkdir=False)),
        (("descriptor",), _as_with(close=False)),
        (("return path",), _as_with(ret="none")),
        (("temporary file's",), _as_with(ret="tmp")),
        (("temporary file",), _as_direct),
        (("BaseException",), _as_with(catch=Exception)),
        (("raise again",), _as_with(reraise=False)),
        (("target's folder",), _as_with(tmp_dir=tempfile.gettempdir())),
        (("os.replace", "temporary file"), _as_with(use_replace=False))],
    "ema_update": [
        (("not the configured decay",), _ema_with(ret="decay")), (("return d",), _ema_with(ret="none")),
        (("by key",), _ema_with(zip_keys=True)), (("copy integer",), _ema_with(ints="average")),
        (("in place",), _ema_with(rebind=True)), (("swapped",), _ema_with(swap=True)),
        (("warm-up",), _ema_with(warm=lambda n: 1.0)), (("min(",), _ema_with(pick=max)),
        (("work one number by hand",), _ema_with(warm=lambda n: n / (10 + n))), (("in place",), _ema_data)],
    "attention_at": [
        ((SMALLEST, "shape", "grid"), _at_isqrt), (("rows and columns",), _at_swap),
        (("not renormalised",), _at_renorm), (("first image",), _at_last), (("floor",), _at_round),
        (("cell argument",), _at_eight), (("row-major",), _at_transpose), (("divide the pixel",), _at_pixels),
        (("shape", "first image", "grid"), _at_batch)],
    "gated_conv2d": [
        (("first half",), _gc_with(swap=True)), (("'SAME' padding",), _gc_with(torch_pad=True)),
        (("ELU, not ReLU",), _gc_with(act=F.relu)), (("sigmoid, not tanh",), _gc_with(gate=torch.tanh)),
        (("stride argument",), _gc_with(use_stride=False)), (("dilation argument",), _gc_with(use_dilation=False)),
        (("two halves",), _gc_with(interleave=True)), (("before the product",), _gc_with(after=True)),
        ((SMALLEST,), _gc_with(use_bias=False))],
    "hinge_d_loss": [
        (("sign",), lambda pos, neg: F.relu(1 + pos).mean() + F.relu(1 - neg).mean()),
        (("mean",), lambda pos, neg: F.relu(1 - pos).sum() + F.relu(1 + neg).sum()),
        (("relu",), lambda pos, neg: (1 - pos).mean() + (1 + neg).mean()),
        (("0.5",), lambda pos, neg: 0.5 * (F.relu(1 - pos).mean() + F.relu(1 + neg).mean())),
        (("each score",), lambda pos, neg: F.relu(1 - pos.mean()) + F.relu(1 + neg.mean())),
        (("one number",), lambda pos, neg: F.relu(1 - pos) + F.relu(1 + neg)),
        (("margin of 1",), lambda pos, neg: F.relu(-pos).mean() + F.relu(neg).mean()),
        ((SMALLEST,), lambda pos, neg: F.relu(1 - pos + neg).mean()),
        (("WGAN critic loss",), lambda pos, neg: (neg - pos).mean())],
    "hinge_g_loss": [
        (("constant",), lambda neg: 1 - neg.mean()), (("no hinge",), lambda neg: F.relu(1 - neg).mean()),
        (("sign",), lambda neg: neg.mean()), (("mean",), lambda neg: -neg.sum()),
        (("one number",), lambda neg: -neg), (("mean score",), lambda neg: F.relu(1 - neg.mean())),
        (("no log",), lambda neg: F.softplus(-neg).mean()), (("one number", "shape"), lambda neg: -neg.mean(dim=0)),
        (("no gradient",), lambda neg: -neg.mean().detach())],
    "compose_stages_detached": [
        (("x_stage1.detach()",), lambda x1, xi, m: x1 * m + xi * (1 - m)),
        (("x_stage1.detach()",), lambda x1, xi, m: x1 * m + (xi * (1 - m)).detach()),
        (("x_stage1.detach()",), lambda x1, xi, m: x1 * m.detach() + xi * (1 - m)),
        (("detach_()",), lambda x1, xi, m: x1.detach_() * m + xi * (1 - m)),
        (("inverted",), lambda x1, xi, m: x1.detach() * (1 - m) + xi * m),
        (("known pixels",), lambda x1, xi, m: x1.detach()),
        ((SMALLEST,), lambda x1, xi, m: x1.detach() * m + xi),
        (("float64",), lambda x1, xi, m: x1.detach().double() * m + xi.double() * (1 - m))],
    "unmasked_gradient_penalty": [
        (("detach",), _ugp_student(detach=False)), (("create_graph",), _ugp_student(graph=False)),
        (("two-sided",), _ugp_student(relu=True)), (("interpolates",), _ugp_student(at=lambda r, f: f)),
        (("alpha argument", "differs"), _ugp_student(my_alpha=True)),
        (("sum of the squares",), _ugp_student(norm=lambda g: g.pow(2).mean(dim=(1, 2, 3)).sqrt())),
        (("one slope per image",), _ugp_student(norm=lambda g: g.pow(2).sum().sqrt().expand(g.shape[0]))),
        (("not their sum",), _ugp_student(reduce=torch.sum)),
        (("alpha * (fake - real)",), _ugp_student(flip_alpha=True))],
}

ALTERNATIVES = {
    "to_signed_range": [_alt_signed_a, _alt_signed_b],
    "box_mask": [_alt_box_a, _alt_box_b],
    "psnr": [_alt_psnr_a, _alt_psnr_b],
    "spatial_discount": [_alt_sd_a, _alt_sd_b],
    "extract_patches": [_alt_ep_a, _alt_ep_b],
    "normalize_patches": [_alt_np_a, _alt_np_b],
    "matching_scores": [_alt_ms_a, _alt_ms_b],
    "valid_patches": [_alt_vp_a, _alt_vp_b],
    "masked_softmax": [_alt_sm_a, _alt_sm_b],
    "masked_softmax_neg_inf": [_alt_ni_a, _alt_ni_b],
    "fuse_scores": [_alt_fs_a, _alt_fs_b, _alt_fs_transposed],
    "reconstruct": [_alt_rc_a, _alt_rc_b],
    "contextual_attention": [_alt_ca_a, _alt_ca_b],
    "stage_input": [_alt_si_a, _alt_si_b],
    "receptive_field": [_alt_rf_a, _alt_rf_b],
    "compose_stages": [_alt_cs_a, _alt_cs_b],
    "coarse_stage": [_alt_cc_a, _alt_cc_b],
    "flatten_nhwc": [_alt_flat_a, _alt_flat_b],
    "wgan_critic_loss": [lambda pos, neg: neg.mean() - pos.mean(), lambda pos, neg: (neg - pos).sum() / pos.numel()],
    "masked_slopes": [_alt_sl_a, _alt_sl_b],
    "gradient_penalty": [_alt_gp_a, _alt_gp_b],
    "atomic_save": [_alt_as_a, _alt_as_b],
    "ema_update": [_alt_ema_a, _alt_ema_b],
    "attention_at": [_alt_at_a, _alt_at_b],
    "gated_conv2d": [_alt_gc_a, _alt_gc_b],
    "hinge_d_loss": [lambda pos, neg: (1 - pos).clamp(min=0).mean() + (1 + neg).clamp(min=0).mean(),
                     lambda pos, neg: torch.maximum(1 - pos, torch.zeros(())).mean()
                     + torch.maximum(1 + neg, torch.zeros(())).mean()],
    "hinge_g_loss": [lambda neg: -(neg.sum() / neg.numel()), lambda neg: neg.mean().neg()],
    "compose_stages_detached": [lambda x1, xi, m: (x1 * m + xi * (1 - m)).detach(),
                                lambda x1, xi, m: x1.data * m + xi * (1 - m)],
    "unmasked_gradient_penalty": [_alt_ugp_a, _alt_ugp_b],
}

WRONG["cosine_scores"] = [
    ((SMALLEST,), _cos_squared_norms), (("not added",), _cos_plus_eps), (("patches only",), _cos_release),
    ((SMALLEST,), _cos_abs), ((SMALLEST,), _cos_mean_norm), ((SMALLEST, "whole map"), _cos_per_channel_map),
    ((SMALLEST,), _cos_no_floor_patches), (("shape",), _cos_channels_last)]
ALTERNATIVES["cosine_scores"] = [_alt_cos_a, _alt_cos_b]

CASES = [(name, i) for name in sorted(WRONG) for i in range(len(WRONG[name]))]
ALT_CASES = [(name, i) for name in sorted(ALTERNATIVES) for i in range(len(ALTERNATIVES[name]))]


def test_the_sets_cover_every_exercise():
    assert set(WRONG) == set(checks.list_exercises()) == set(ALTERNATIVES)
    for name in WRONG:
        assert len(WRONG[name]) >= 8, f"{name}: {len(WRONG[name])} wrong implementations"
        assert len(ALTERNATIVES[name]) >= 2, name


def _named_mistakes(name: str, hint: str) -> list[str]:
    """The known hints of exercise ``name`` that the failure's hint line gives."""
    return [known for known in KNOWN_HINTS.get(name, []) if known.rstrip(".") in hint]


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}:{i}" for n, i in CASES])
def test_a_wrong_implementation_fails_with_a_hint_that_names_its_mistake(name, index):
    phrases, wrong = WRONG[name][index]
    with pytest.raises(AssertionError) as info:  # anything else: the check crashed
        check(name, wrong)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\nHint: " in message, message
    assert "the check could not finish" not in message, message
    assert any(p.lower() in message.lower() for p in phrases), f"expected one of {phrases} in:\n{message}"
    hint = message.split("\nHint: ", 1)[1]
    for known in _named_mistakes(name, hint):  # a named mistake must be one this function makes
        assert any(p.lower() in known.lower() or p.lower() in message.split("\nHint: ")[0].lower()
                   for p in phrases), f"the hint names a mistake it did not make:\n{message}"


@pytest.mark.parametrize("name,index", ALT_CASES, ids=[f"{n}:{i}" for n, i in ALT_CASES])
def test_a_correct_alternative_passes(name, index, capsys):
    fn = ALTERNATIVES[name][index]
    assert check(name, fn) is fn
    assert f"[ok] {name}" in capsys.readouterr().out
