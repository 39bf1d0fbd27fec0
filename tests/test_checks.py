"""The exercise checks, tested in both directions (nbgrader's --invert idea).

For EVERY registered exercise (notebooks 00-09 and 11, whoever wrote them): the reference passes
its own check; a stub raising NotImplementedError falls back to the reference with the
loud message; each planted mistake FAILS with an AssertionError whose message contains
the hint phrase it was registered with; and each exercise has at least two mistakes.

Below the tests of the machinery, every exercise also meets at least 8 wrong
implementations written here (independently of the checks' own planted mistakes) and one
correct alternative implementation that must pass.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import course_lib.checks as checks
from course_lib import attention as A
from course_lib import generator as G
from course_lib.checks import REGISTRY, check, list_exercises
from course_lib.flow import flow_to_color
from course_lib.ops import pad_same

NAMES = list_exercises()
MISTAKES = [(name, phrase) for name in NAMES for phrase in REGISTRY[name].mistakes]


def _stub(*args, **kwargs):
    raise NotImplementedError("Exercise: write this part yourself")


def test_submodules_import_cleanly():
    assert checks.IMPORT_ERRORS == {}, f"a checks submodule failed to import: {checks.IMPORT_ERRORS}"


def test_the_course_has_exercises():
    assert {"to_signed_range", "box_mask", "psnr", "spatial_discount"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_its_own_check(name, capsys):
    ex = REGISTRY[name]
    assert check(name, ex.reference) is ex.reference
    assert f"[ok] {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_stub_falls_back_to_the_reference_loudly(name, capsys):
    ex = REGISTRY[name]
    assert check(name, _stub) is ex.reference
    out = capsys.readouterr().out
    assert f"{name} is not implemented yet: using course_lib's reference" in out
    assert "so the rest of the notebook runs" in out


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_plants_at_least_two_mistakes(name):
    ex = REGISTRY[name]
    assert len(ex.mistakes) >= 2, f"{name} registers {len(ex.mistakes)} planted mistakes, need >= 2"
    assert ex.notebook.endswith(".ipynb") and ex.hint


@pytest.mark.parametrize("name,phrase", MISTAKES, ids=[f"{n}:{p}" for n, p in MISTAKES])
def test_planted_mistake_fails_with_its_hint(name, phrase):
    ex = REGISTRY[name]
    with pytest.raises(AssertionError) as info:
        check(name, ex.mistakes[phrase])
    message = str(info.value)
    assert phrase.lower() in message.lower(), f"expected the hint {phrase!r} in:\n{message}"
    assert message.startswith(f"{name}:") and "Hint:" in message


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="known exercises: .*spatial_discount"):
        check("spatial_discunt", _stub)


def test_check_rejects_a_result_instead_of_a_function():
    with pytest.raises(TypeError, match="not its result"):
        check("spatial_discount", torch.ones(2, 2))


def test_a_crashing_function_becomes_a_failed_check_with_the_call_shown():
    def broken(height, width, gamma=0.9):
        return torch.ones(height, width) @ torch.ones(3, 3)

    with pytest.raises(AssertionError, match=r"calling it with \(5, 8, 0.5\) raised RuntimeError"):
        check("spatial_discount", broken)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        checks.register("psnr", reference=_stub, notebook="x.ipynb")(lambda fn: None)


def test_a_numpy_answer_is_told_to_return_a_tensor():
    def as_numpy(height, width, gamma=0.9):
        return REGISTRY["spatial_discount"].reference(height, width, gamma).numpy()

    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        check("spatial_discount", as_numpy)


# ---- the references of notebooks 00-02 against values worked out by hand ----------------

def test_spatial_discount_reference_by_hand():
    # release: w[i, j] = max(g ** min(i, H - i), g ** min(j, W - j)); H = 3, W = 4, g = 0.5
    # rows: min(i, 3 - i) = 0, 1, 1 -> 1, .5, .5; cols: min(j, 4 - j) = 0, 1, 2, 1 -> 1, .5, .25, .5
    expected = torch.tensor([[1.0, 1.0, 1.0, 1.0],
                             [1.0, 0.5, 0.5, 0.5],
                             [1.0, 0.5, 0.5, 0.5]])
    assert torch.allclose(REGISTRY["spatial_discount"].reference(3, 4, 0.5), expected)
    centre = REGISTRY["spatial_discount"].reference(128, 128, 0.9)[64, 64].item()
    assert math.isclose(centre, 0.9 ** 64, rel_tol=1e-5) and 1.1e-3 < centre < 1.3e-3


def test_psnr_and_box_mask_references_by_hand():
    grey, white = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    # on [0, 1]: 0.5 vs 1.0 -> mse 0.25 -> 10 log10(4) = 6.0206 dB
    assert math.isclose(REGISTRY["psnr"].reference(grey, white).item(), 6.0206, abs_tol=1e-3)
    mask = REGISTRY["box_mask"].reference((1, 2, 2, 3), 4, 6)
    expected = torch.zeros(1, 1, 4, 6)
    for i in (1, 2):
        for j in (2, 3, 4):
            expected[0, 0, i, j] = 1.0
    assert torch.equal(mask, expected)
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(REGISTRY["to_signed_range"].reference(pixels), torch.tensor([-1.0, -0.6, 1.0]))


def test_hinted_mistakes_and_require_phrases():
    from course_lib.checks import hinted_mistakes, require_phrases
    hints = {"sign": "the sign is flipped: ...", "no log": "a WGAN critic has no log ...", "mean": "use the mean ...",
             "one number": "one number for the batch ..."}
    pos, neg = torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0], [0.0]])
    outs = hinted_mistakes("wgan_critic_loss", hints, pos, neg)
    assert set(outs) == set(hints.values())
    assert outs[hints["sign"]].item() == 2.5 and outs[hints["mean"]].item() == -5.0  # by hand
    assert outs[hints["one number"]].flatten().tolist() == [-1.0, -4.0]
    require_phrases(hints, {"sign": None, "mean": None})
    with pytest.raises(AssertionError, match="'sum'"):
        require_phrases(hints, {"sum": None})


# ---- planted wrong implementations written for the test suite (not the checks' own) -------
#
# For every exercise at least 8 wrong functions, drawn from the classes of mistakes students
# make (a wrong formula, an ignored non-default argument, a wrong type / dtype / shape, an
# input changed in place, a result without gradient or with a NaN gradient, a crash), each
# with a phrase its check's message must contain; and one correct ALTERNATIVE implementation
# (loops instead of vectorised code, another equivalent formula) that must pass.


ref = {name: REGISTRY[name].reference for name in NAMES}


def forgets_return(name):
    def wrong(*args, **kwargs):
        ref[name](*args, **kwargs)  # computed, but no return statement
    return wrong


def as_numpy(name):
    def wrong(*args, **kwargs):
        return ref[name](*args, **kwargs).detach().numpy()
    return wrong


def as_float64(name):
    def wrong(*args, **kwargs):
        return ref[name](*args, **kwargs).double()
    return wrong


def as_list(name):
    def wrong(*args, **kwargs):
        return ref[name](*args, **kwargs).tolist()
    return wrong


def as_generator(name):
    def wrong(*args, **kwargs):
        return (row for row in ref[name](*args, **kwargs))
    return wrong


def under_no_grad(name):
    def wrong(*args, **kwargs):
        with torch.no_grad():
            return ref[name](*args, **kwargs)
    return wrong


def detached(name):
    def wrong(*args, **kwargs):
        return ref[name](*args, **kwargs).detach()
    return wrong


def through_numpy(name):
    """Inputs converted to NumPy and back: the values are right, the gradient is cut."""
    def wrong(*args, **kwargs):
        plain = [torch.from_numpy(a.detach().numpy().copy()) if isinstance(a, torch.Tensor) else a for a in args]
        return ref[name](*plain, **kwargs)
    return wrong


def clobbers(name, index=0):
    """Right result, but the input at ``index`` is scaled in place afterwards."""
    def wrong(*args, **kwargs):
        out = ref[name](*args, **kwargs)
        with torch.no_grad():
            args[index].mul_(0.5)
        return out
    return wrong


# ---- notebook 00-02

def _signed_wrong_constant(pixels):
    return pixels.float() / 128.0 - 1.0


def _signed_centred_half(pixels):
    return (pixels.float() - 127.5) / 255.0


def _signed_divides_in_place(pixels):
    pixels = pixels.clone()
    pixels /= 127.5  # uint8 cannot hold the result: RuntimeError
    return pixels - 1


def _signed_uint8_arithmetic(pixels):
    return (pixels / 127).floor() - 1.0


def _signed_flat(pixels):
    return (pixels.float() / 127.5 - 1.0).flatten()


def _box_bottom_right(bbox, height, width):
    top, left, h, w = bbox  # read as (top, left, bottom, right)
    mask = torch.zeros(1, 1, height, width)
    mask[..., top:h, left:w] = 1.0
    return mask


def _box_bool(bbox, height, width):
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width, dtype=torch.bool)
    mask[..., top:top + h, left:left + w] = True
    return mask


def _box_transposed_canvas(bbox, height, width):
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, width, height)
    mask[..., left:left + w, top:top + h] = 1.0
    return mask


def _box_one_short(bbox, height, width):
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)
    mask[..., top:top + h - 1, left:left + w - 1] = 1.0
    return mask


def _box_numpy(bbox, height, width):
    top, left, h, w = bbox
    mask = np.zeros((1, 1, height, width), dtype=np.float32)
    mask[..., top:top + h, left:left + w] = 1.0
    return mask


def _psnr_sum(x, y):
    se = (((x + 1) / 2 - (y + 1) / 2) ** 2).sum(dim=(1, 2, 3))
    return 10 * torch.log10(1 / se)


def _psnr_mae(x, y):
    mae = ((x - y) / 2).abs().mean(dim=(1, 2, 3))
    return 20 * torch.log10(1 / mae)


def _psnr_per_channel(x, y):
    mse = (((x - y) / 2) ** 2).mean(dim=(2, 3))  # (B, C)
    return 10 * torch.log10(1 / mse)


def _psnr_data_peak(x, y):
    x01, y01 = (x + 1) / 2, (y + 1) / 2
    mse = ((x01 - y01) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(x01.amax(dim=(1, 2, 3)) ** 2 / mse)


def _psnr_ln(x, y):
    mse = (((x - y) / 2) ** 2).mean(dim=(1, 2, 3))
    return -10 * torch.log(mse)


def _psnr_in_place(x, y):
    x.add_(1).div_(2)  # rescales the caller's image
    y01 = (y + 1) / 2
    return 10 * torch.log10(1 / ((x - y01) ** 2).mean(dim=(1, 2, 3)))


def _psnr_items(x, y):
    return [10 * math.log10(1 / float((((a - b) / 2) ** 2).mean())) for a, b in zip(x, y)]


def _discount_float64(height, width, gamma=0.9):
    i = torch.arange(height, dtype=torch.float64)[:, None]
    j = torch.arange(width, dtype=torch.float64)[None, :]
    return torch.maximum(gamma ** torch.minimum(i, height - i), gamma ** torch.minimum(j, width - j))


def _discount_fixed_gamma(height, width, gamma=0.9):
    return REGISTRY["spatial_discount"].reference(height, width, 0.9)


def _discount_paper_default(height, width, gamma=0.99):
    return REGISTRY["spatial_discount"].reference(height, width, gamma)


def _discount_nested_list(height, width, gamma=0.9):
    return [[max(gamma ** min(i, height - i), gamma ** min(j, width - j)) for j in range(width)]
            for i in range(height)]


def _discount_product(height, width, gamma=0.9):
    i = torch.arange(height).float()[:, None]
    j = torch.arange(width).float()[None, :]
    return gamma ** torch.minimum(i, height - i) * gamma ** torch.minimum(j, width - j)


def _discount_symmetric_mine(height, width, gamma=0.9):
    i = torch.arange(height).float()[:, None]
    j = torch.arange(width).float()[None, :]
    return torch.maximum(gamma ** torch.minimum(i, height - 1 - i), gamma ** torch.minimum(j, width - 1 - j))


def _discount_transposed(height, width, gamma=0.9):
    return REGISTRY["spatial_discount"].reference(height, width, gamma).T.contiguous()


# ---- notebook 03-06

def _patches_loop_no_pad(x, kernel, stride=1):
    H, W = x.shape[-2:]
    return torch.stack([x[:, :, i:i + kernel, j:j + kernel] for i in range(0, H - kernel + 1, stride)
                        for j in range(0, W - kernel + 1, stride)], dim=1)


def _patches_unit_stride(x, kernel, stride=1):
    cols = F.unfold(pad_same(x, kernel, 1), kernel)
    return cols.view(x.shape[0], x.shape[1], kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_reflect(x, kernel, stride=1):
    B, C, H, W = x.shape
    total = [max((-(-n // stride) - 1) * stride + kernel - n, 0) for n in (H, W)]
    xp = F.pad(x, (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2),
               mode="replicate")
    cols = F.unfold(xp, kernel, stride=stride)
    return cols.view(B, C, kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_centre_pad(x, kernel, stride=1):
    cols = F.unfold(x, kernel, stride=stride, padding=(kernel - 1) // 2)
    return cols.view(x.shape[0], x.shape[1], kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_hwc(x, kernel, stride=1):
    return A.extract_patches(x, kernel, stride).permute(0, 1, 3, 4, 2)


def _patches_in_place_pad(x, kernel, stride=1):
    out = A.extract_patches(x, kernel, stride)
    x.clamp_(min=0)  # "cleans" the caller's map
    return out


def _normalize_plus_eps(w, eps=1e-4):
    return w / (w.flatten(2).norm(dim=2)[..., None, None, None] + eps)


def _normalize_channelwise(w, eps=1e-4):
    return w / w.norm(dim=(3, 4), keepdim=True).clamp(min=eps)


def _normalize_fixed_eps_mine(w, eps=1e-4):
    return w / w.flatten(2).norm(dim=2).clamp(min=1e-4)[..., None, None, None]


def _normalize_eps_inside(w, eps=1e-4):
    return w / (w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps ** 2).sqrt()


def _normalize_data_clamp(w, eps=1e-4):
    norm = w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt()
    norm.data.clamp_(min=eps)  # hidden from autograd
    return w / norm


def _normalize_no_clamp(w, eps=1e-4):
    return w / w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt()


def _normalize_in_place(w, eps=1e-4):
    w /= w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt().clamp(min=eps)
    return w


def _scores_batch_zero(f, w_normed):
    k = w_normed.shape[-1]
    return F.conv2d(pad_same(f, k), w_normed[0])


def _scores_symmetric_pad(f, w_normed):
    k = w_normed.shape[-1]
    return torch.cat([F.conv2d(f[i:i + 1], w_normed[i], padding=k // 2) for i in range(f.shape[0])])


def _scores_transposed(f, w_normed):
    k = w_normed.shape[-1]
    return torch.cat([F.conv_transpose2d(f[i:i + 1], w_normed[i].transpose(0, 1), padding=k // 2)
                      for i in range(f.shape[0])])


def _scores_cosine(f, w_normed):
    k = w_normed.shape[-1]
    s = A.matching_scores(f, w_normed)
    norms = F.conv2d(pad_same(f * f, k), f.new_ones(1, f.shape[1], k, k)).sqrt().clamp(min=1e-4)
    return s / norms


def _scores_no_pad(f, w_normed):
    return torch.cat([F.conv2d(f[i:i + 1], w_normed[i]) for i in range(f.shape[0])])


def _valid_centre(mask, ksize):
    return (mask.flatten(1) == 0).float()


def _valid_inverted_mine(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, stride=1).flatten(1) > 0).float()


def _valid_majority(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, stride=1).flatten(1) < 0.5).float()


def _valid_three(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, 3), 3, stride=1).flatten(1) == 0).float()


def _valid_bool(mask, ksize):
    return F.avg_pool2d(pad_same(mask, ksize), ksize, stride=1).flatten(1) == 0


def _valid_keepdims(mask, ksize):
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, stride=1) == 0).float()  # (B, 1, H, W)


def _valid_border_is_hole(mask, ksize):
    r = ksize // 2
    m = F.pad(mask, (r, r, r, r), value=1.0)
    return (F.avg_pool2d(m, ksize, stride=1).flatten(1) == 0).float()


def _softmax_exp(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    e = (scores * m * softmax_scale).exp()
    return e / e.sum(dim=1, keepdim=True) * m


def _softmax_minus_inf(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax((scores * softmax_scale).masked_fill(m == 0, float("-inf")), dim=1)


def _softmax_renorm(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    a = torch.softmax(scores * m * softmax_scale, dim=1) * m
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-8)


def _softmax_last_axis(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m * softmax_scale, dim=-1) * m


def _softmax_ten(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m * 10.0, dim=1) * m


def _softmax_scale_outside(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * m, dim=1) * m


def _softmax_in_place(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    scores.mul_(m)  # masks the caller's scores
    return torch.softmax(scores * softmax_scale, dim=1) * m


def _neg_inf_plain(scores, mm, softmax_scale=10.0):
    z = (scores * softmax_scale).masked_fill(mm[:, :, None, None] == 0, float("-inf"))
    return torch.softmax(z, dim=1)  # NaN in an image without a valid patch


def _neg_inf_in_place(scores, mm, softmax_scale=10.0):
    valid = mm[:, :, None, None] > 0
    scores.mul_(softmax_scale).masked_fill_(~valid, float("-inf"))  # overwrites the caller's scores
    return torch.nan_to_num(torch.softmax(scores, dim=1))


def _neg_inf_last_dims(scores, mm, softmax_scale=10.0):
    valid = mm[:, None, None, :] > 0  # (B, 1, 1, L): broadcast against the wrong dims
    z = (scores * softmax_scale).masked_fill(~valid[..., :scores.shape[-1]], float("-inf"))
    return torch.nan_to_num(torch.softmax(z, dim=1))


def _neg_inf_minus_big(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    return torch.softmax(scores * softmax_scale - 1e4 * (1 - m), dim=1)  # unmasked where nothing is valid


def _neg_inf_renorm_unguarded(scores, mm, softmax_scale=10.0):
    a = REGISTRY["masked_softmax"].reference(scores, mm, softmax_scale)
    return a / a.sum(dim=1, keepdim=True)  # 0 / 0 in an image without a valid patch


def _neg_inf_scale_after(scores, mm, softmax_scale=10.0):
    return ref["masked_softmax_neg_inf"](scores, mm, 1.0) * softmax_scale


def _alt_neg_inf(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    a = torch.softmax(scores * m * softmax_scale, dim=1) * m  # the release's, renormalised
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-30)


def _softmax_no_second_mask(scores, mm, softmax_scale=10.0):
    return torch.softmax(scores * mm[:, :, None, None] * softmax_scale, dim=1)


def _fuse_core(scores, fuse_k, kernel_fn, passes=2):
    B, L, H, W = scores.shape
    kernel = kernel_fn(fuse_k, scores.dtype).view(1, 1, fuse_k, fuse_k)
    m = scores.permute(0, 2, 3, 1).reshape(B, 1, H * W, L)
    m = F.conv2d(pad_same(m, fuse_k), kernel)
    if passes == 1:
        return m.view(B, H, W, L).permute(0, 3, 1, 2)
    m = m.view(B, H, W, H, W).permute(0, 2, 1, 4, 3).reshape(B, 1, W * H, W * H)
    m = F.conv2d(pad_same(m, fuse_k), kernel)
    m = m.view(B, W, H, W, H).permute(0, 2, 1, 4, 3).reshape(B, H * W, L)
    return m.permute(0, 2, 1).reshape(B, L, H, W)


def _fuse_one_pass(scores, fuse_k=3):
    return _fuse_core(scores, fuse_k, lambda k, dt: torch.eye(k, dtype=dt), passes=1)


def _fuse_ones(scores, fuse_k=3):
    return _fuse_core(scores, fuse_k, lambda k, dt: torch.ones(k, k, dtype=dt))


def _fuse_mirror(scores, fuse_k=3):
    return _fuse_core(scores, fuse_k, lambda k, dt: torch.eye(k, dtype=dt).flip(0))


def _fuse_three(scores, fuse_k=3):
    return _fuse_core(scores, 3, lambda k, dt: torch.eye(k, dtype=dt))


def _fuse_no_final_permute(scores, fuse_k=3):
    B, L, H, W = scores.shape
    m = _fuse_core(scores, fuse_k, lambda k, dt: torch.eye(k, dtype=dt))  # (B, L, H, W), right
    m = m.permute(0, 2, 3, 1).reshape(B, H * W, L)  # the (positions, patches) matrix again
    return m.reshape(B, L, H, W)  # forgot to move the patch axis back in front: a transposed matrix


# the reconstruct helpers

def _recon_core(attention, raw_patches, rate, out_size, divide=4.0, stride=None, top=None):
    H, W = out_size
    k = raw_patches.shape[-1]
    out = []
    for i in range(attention.shape[0]):
        y = F.conv_transpose2d(attention[i:i + 1], raw_patches[i], stride=stride or rate)
        t = (max((attention.shape[-2] - 1) * rate + k - H, 0) // 2) if top is None else top
        le = (max((attention.shape[-1] - 1) * rate + k - W, 0) // 2) if top is None else top
        out.append(y[:, :, t:t + H, le:le + W])
    return torch.cat(out) / divide


def _recon_no_division(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches, rate, out_size, divide=1.0)


def _recon_rate_squared(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches, rate, out_size, divide=float(rate * rate))


def _recon_bottom_crop(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches, rate, out_size, top=0)


def _recon_shared_patches(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches[:1].expand_as(raw_patches).contiguous(), rate, out_size)


def _recon_two(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches, 2, (2 * attention.shape[-2], 2 * attention.shape[-1]))


def _layer(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True, *,
           down=A.downsample, use_mask=True, use_b=True, always_fuse=False, scale=None, k_fixed=None,
           none_hole=False, flow=True):
    """A contextual attention layer assembled by the test, with switches for the mistakes."""
    src = b if use_b else f
    ks = k_fixed or ksize
    H, W = f.shape[-2:]
    raw = A.extract_patches(src, 2 * rate, rate * stride)
    f_s, b_s = down(f, rate), down(src, rate)
    if mask is None:
        mm = b_s.new_zeros(1, b_s.shape[-2] * b_s.shape[-1]) if none_hole else \
            b_s.new_ones(1, b_s.shape[-2] * b_s.shape[-1])
    elif use_mask:
        mm = A.valid_patches(down(mask, rate), ks, stride)
    else:
        mm = b_s.new_ones(1, b_s.shape[-2] * b_s.shape[-1])
    scores = A.matching_scores(f_s, A.normalize_patches(A.extract_patches(b_s, ks, stride)))
    if fuse or always_fuse:
        scores = A.fuse_scores(scores, fuse_k)
    att = A.masked_softmax(scores, mm, softmax_scale if scale is None else scale)
    y = A.reconstruct(att, raw, rate, (H, W))
    if not flow:
        return y
    picture = flow_to_color(A.attention_offsets(att, f_s.shape[-1]))
    return y, F.interpolate(picture, size=(H, W), mode="bilinear", align_corners=True)


def _layer_switch(**switches):
    def wrong(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
        return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse, **switches)
    return wrong


def _layer_ignores_stride(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _layer(f, b, mask, ksize, 1, rate, fuse_k, softmax_scale, fuse)


def _layer_mask_without_stride(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0,
                               fuse=True):
    """The valid-patch mask taken at stride 1 while the patches use ``stride``: L does not match."""
    if mask is None or stride == 1:
        return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)
    H, W = f.shape[-2:]
    raw = A.extract_patches(b, 2 * rate, rate * stride)
    f_s, b_s = A.downsample(f, rate), A.downsample(b, rate)
    mm = A.valid_patches(A.downsample(mask, rate), ksize)  # stride forgotten
    scores = A.matching_scores(f_s, A.normalize_patches(A.extract_patches(b_s, ksize, stride)))
    if fuse:
        scores = A.fuse_scores(scores, fuse_k)
    att = A.masked_softmax(scores, mm, softmax_scale)
    y = A.reconstruct(att, raw, rate, (H, W))
    picture = flow_to_color(A.attention_offsets(att, f_s.shape[-1]))
    return y, F.interpolate(picture, size=(H, W), mode="bilinear", align_corners=True)


def _recon_fixed_crop(attention, raw_patches, rate, out_size):
    return _recon_core(attention, raw_patches, rate, out_size, top=(raw_patches.shape[-1] - rate) // 2)


def _layer_crashes_without_mask(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    A.downsample(mask, rate)  # fails for mask=None
    return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)


def _layer_no_fuse_k(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _layer(f, b, mask, ksize, stride, rate, 3, softmax_scale, fuse)


def _layer_y_only(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse, flow=False)


def _layer_no_grad(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    with torch.no_grad():
        return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)


def _slice(x, rate):
    return x[..., ::rate, ::rate]


# ---- notebook 07

def _input_mask_only(x, mask):
    return torch.cat([x, mask.expand(x.shape[0], 1, *x.shape[-2:])], dim=1)


def _input_ones_last(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, mask * ones, ones], dim=1)


def _input_known_is_one(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, ones - ones * mask], dim=1)


def _input_cat_mask(x, mask):
    return torch.cat([x, torch.ones_like(x[:, :1]), mask], dim=1)


def _input_double_ones(x, mask):
    ones = torch.ones(x.shape[0], 1, *x.shape[-2:], dtype=torch.float64)
    return torch.cat([x.double(), ones, ones * mask], dim=1)


def _input_blanked(x, mask):
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x * (1 - mask), ones, ones * mask], dim=1)


def _input_in_place(x, mask):
    x.mul_(1 - mask)  # blanks the caller's image
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, ones * mask], dim=1)


def _rf_zero_start(layers):
    r, j, out = 0, 1, []
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
        out.append((r, j))
    return out


def _rf_no_dilation_mine(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        r += (k - 1) * j
        j *= s
        out.append((r, j))
    return out


def _rf_jump_first(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        j *= s
        r += (k - 1) * d * j
        out.append((r, j))
    return out


def _rf_generator(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
        yield (r, j)


def _rf_none(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
        out.append((r, j))


def _rf_last_only(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
    return [(r, j)] if layers else []


def _rf_pops(layers):
    r, j, out = 1, 1, []
    while layers:
        k, s, d = layers.pop(0)  # empties the caller's list
        r += (k - 1) * d * j
        j *= s
        out.append((r, j))
    return out


def _rf_true_division(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        r += (k - 1) * d * j / 2 * 2
        j *= s
        out.append((r + 0.5, j))
    return out


def _rf_dilated_jump(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s * d
        out.append((r, j))
    return out


def _compose_swapped(x1, x_in, mask):
    return x_in * mask + x1 * (1 - mask)


def _compose_no_grad(x1, x_in, mask):
    return x1.data * mask + x_in * (1 - mask)


def _compose_stage1_only(x1, x_in, mask):
    return x1 * 1.0


def _compose_plus(x1, x_in, mask):
    return x1 * mask + x_in


def _compose_in_place(x1, x_in, mask):
    x_in.mul_(1 - mask)
    return x_in.add(x1 * mask)


def _compose_detach_known(x1, x_in, mask):
    return (x1 * mask + x_in * (1 - mask)).detach()


def _coarse_run(net, h):
    for layer_name in net.LAYERS:
        h = getattr(net, layer_name)(h)
    return h


def _coarse_unclipped(net, x, mask):
    return _coarse_run(net, G.stage_input(x, mask))


def _coarse_tanh_mine(net, x, mask):
    return torch.tanh(_coarse_run(net, G.stage_input(x, mask)))


def _coarse_sigmoid(net, x, mask):
    return 2 * torch.sigmoid(_coarse_run(net, G.stage_input(x, mask))) - 1


def _coarse_four_channels(net, x, mask):
    return _coarse_run(net, torch.cat([x, mask.expand(x.shape[0], -1, -1, -1)], 1)).clamp(-1, 1)


def _coarse_unit_clip(net, x, mask):
    return _coarse_run(net, G.stage_input(x, mask)).clamp(0, 1)


def _coarse_alphabetical(net, x, mask):
    h = G.stage_input(x, mask)
    for layer_name in sorted(net.LAYERS):
        h = getattr(net, layer_name)(h)
    return h.clamp(-1, 1)


def _coarse_data_clamp(net, x, mask):
    h = _coarse_run(net, G.stage_input(x, mask))
    h.data.clamp_(-1, 1)  # the clip is hidden from autograd
    return h


def _coarse_no_grad(net, x, mask):
    with torch.no_grad():
        return _coarse_run(net, G.stage_input(x, mask)).clamp(-1, 1)


def _coarse_pair(net, x, mask):
    h = _coarse_run(net, G.stage_input(x, mask)).clamp(-1, 1)
    return h, mask


# ---- notebook 08

def _flat_nchw(h):
    return h.reshape(h.shape[0], -1)


def _flat_transpose(h):
    return h.transpose(1, 3).reshape(h.shape[0], -1)  # (B, W, H, C)


def _flat_view(h):
    return h.permute(0, 2, 3, 1).view(h.shape[0], -1)  # RuntimeError: not contiguous


def _flat_everything(h):
    return h.permute(0, 2, 3, 1).flatten()


def _flat_not_flattened(h):
    return h.permute(0, 2, 3, 1)


def _wgan_flipped(pos, neg):
    return (pos - neg).mean()


def _wgan_summed(pos, neg):
    return (neg - pos).sum()


def _wgan_bce(pos, neg):
    return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
        F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))


def _wgan_item(pos, neg):
    return (neg - pos).mean().item()


def _wgan_per_sample_mine(pos, neg):
    return neg - pos


def _wgan_rebuilt(pos, neg):
    return torch.tensor(float(neg.mean() - pos.mean()))


def _wgan_abs(pos, neg):
    return (neg - pos).mean().abs()


def _slopes_no_mask(grad, mask, eps=1e-12):
    return (grad.pow(2).sum(dim=(1, 2, 3)) + eps).sqrt()


def _slopes_no_sqrt(grad, mask, eps=1e-12):
    return (grad.pow(2) * mask).sum(dim=(1, 2, 3)) + eps


def _slopes_averaged(grad, mask, eps=1e-12):
    return ((grad.pow(2) * mask).mean(dim=(1, 2, 3)) + eps).sqrt()


def _slopes_without_eps(grad, mask, eps=1e-12):
    return (grad.pow(2) * mask).sum(dim=(1, 2, 3)).sqrt()


def _slopes_eps_after(grad, mask, eps=1e-12):
    return (grad.pow(2) * mask).sum(dim=(1, 2, 3)).sqrt() + eps


def _slopes_clamped_root(grad, mask, eps=1e-12):
    return (grad.pow(2) * mask).sum(dim=(1, 2, 3)).sqrt().clamp(min=eps ** 0.5)  # same values, NaN gradient at 0


def _slopes_hypot(grad, mask, eps=1e-12):
    root = (grad.pow(2) * mask).sum(dim=(1, 2, 3)).sqrt()  # the root first: its gradient at 0 is inf
    return torch.hypot(root, torch.full_like(root, eps ** 0.5))  # = sqrt(s + eps) in value


def _slopes_default_eps(grad, mask, eps=1e-12):
    return ((grad.pow(2) * mask).sum(dim=(1, 2, 3)) + 1e-12).sqrt()


def _slopes_keepdim(grad, mask, eps=1e-12):
    return ((grad.pow(2) * mask).sum(dim=(1, 2, 3), keepdim=True) + eps).sqrt()


def _slopes_in_place(grad, mask, eps=1e-12):
    grad.pow_(2)
    return ((grad * mask).sum(dim=(1, 2, 3)) + eps).sqrt()


def _slopes_pixel_norms(grad, mask, eps=1e-12):
    return ((grad.pow(2).sum(dim=1, keepdim=True) + eps).sqrt() * mask).sum(dim=(1, 2, 3))


def _gp_core(critic, real, fake, mask, alpha, at="mix", graph=True, relu=False, use_mask=True,
             reduce="mean"):
    x = {"mix": real + alpha * (fake - real), "fake": fake, "real": real,
         "half": (real + fake) / 2}[at].detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=graph)
    m = mask if use_mask else torch.ones_like(mask)
    slopes = ((g ** 2 * m).sum(dim=(1, 2, 3)) + 1e-12).sqrt()
    gap = torch.relu(slopes - 1) if relu else slopes - 1
    return gap.pow(2).mean() if reduce == "mean" else gap.pow(2).sum()


def _gp_switch(**switches):
    def wrong(critic, real, fake, mask, alpha):
        return _gp_core(critic, real, fake, mask, alpha, **switches)
    return wrong


def _gp_no_requires_grad(critic, real, fake, mask, alpha):
    x = real + alpha * (fake - real)
    (g,) = torch.autograd.grad(critic(x.detach()).sum(), x, create_graph=True)
    return (((g ** 2 * mask).sum(dim=(1, 2, 3)) + 1e-12).sqrt() - 1).pow(2).mean()


def _gp_item(critic, real, fake, mask, alpha):
    return _gp_core(critic, real, fake, mask, alpha).item()


# ---- notebook 09

def _save_plain(obj, path):
    torch.save(obj, path)
    return Path(path)


def _save_no_cleanup_mine(obj, path):
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def _save_system_tmp(obj, path):
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".pt")  # in /tmp
    try:
        with handle:
            torch.save(obj, handle)
        shutil.move(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.remove(handle.name)
        raise
    return Path(path)


def _save_except_exception(obj, path):
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _save_silent(obj, path):
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
    return path


def _save_delete_then_rename(obj, path):
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        path.unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _save_copy(obj, path):
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        shutil.copyfile(tmp, path)  # a copy truncates the old checkpoint first
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _save_pickle(obj, path):
    import pickle
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            pickle.dump(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _ema_plain(average, weights, num_updates, decay):
    for k, a in average.items():
        if a.is_floating_point():
            a.mul_(decay).add_(weights[k], alpha=1 - decay)
        else:
            a.copy_(weights[k])


def _ema_d_on_weights(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k, a in average.items():
        if a.is_floating_point():
            a.mul_(1 - d).add_(weights[k], alpha=d)
        else:
            a.copy_(weights[k])


def _ema_rebinds(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k in list(average):
        average[k] = d * average[k] + (1 - d) * weights[k] if average[k].is_floating_point() else weights[k].clone()


def _ema_counters_averaged(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k, a in average.items():
        a.copy_(d * a + (1 - d) * weights[k])


def _ema_fixed_decay_mine(average, weights, num_updates, decay):
    d = min(0.999, (1 + num_updates) / (10 + num_updates))
    for k, a in average.items():
        a.lerp_(weights[k], 1 - d) if a.is_floating_point() else a.copy_(weights[k])


def _ema_larger(average, weights, num_updates, decay):
    d = max(decay, (1 + num_updates) / (10 + num_updates))
    for k, a in average.items():
        a.lerp_(weights[k], 1 - d) if a.is_floating_point() else a.copy_(weights[k])


def _ema_moves_weights(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k, a in average.items():
        if a.is_floating_point():
            weights[k].mul_(1 - d)  # scales the model's own weights
            a.mul_(d).add_(weights[k])
        else:
            a.copy_(weights[k])


def _ema_wrong_warmup(average, weights, num_updates, decay):
    d = min(decay, num_updates / (10 + num_updates))
    for k, a in average.items():
        a.lerp_(weights[k], 1 - d) if a.is_floating_point() else a.copy_(weights[k])


def _ema_float64(average, weights, num_updates, decay):
    d = min(decay, (1 + num_updates) / (10 + num_updates))
    for k in list(average):
        if average[k].is_floating_point():
            average[k].data = (d * average[k].double() + (1 - d) * weights[k].double())
        else:
            average[k].copy_(weights[k])


# ---- correct alternative implementations (must pass) -----------------------------------

def _alt_signed(pixels):
    return (pixels.to(torch.float32) - 127.5) / 127.5


def _alt_box(bbox, height, width):
    top, left, h, w = bbox
    mask = torch.zeros(1, 1, height, width)
    for i in range(height):
        for j in range(width):
            if top <= i < top + h and left <= j < left + w:
                mask[0, 0, i, j] = 1.0
    return mask


def _alt_psnr(x, y):
    return torch.stack([-10 * torch.log10(((a - b) / 2).pow(2).mean()) for a, b in zip(x, y)])


def _alt_discount(height, width, gamma=0.9):
    rows = [[max(gamma ** min(i, height - i), gamma ** min(j, width - j)) for j in range(width)]
            for i in range(height)]
    return torch.tensor(rows, dtype=torch.float32)


def _alt_patches(x, kernel, stride=1):
    B, C, H, W = x.shape
    n_h, n_w = -(-H // stride), -(-W // stride)
    pad_h = max((n_h - 1) * stride + kernel - H, 0)
    pad_w = max((n_w - 1) * stride + kernel - W, 0)
    xp = x.new_zeros(B, C, H + pad_h, W + pad_w)
    xp[:, :, pad_h // 2:pad_h // 2 + H, pad_w // 2:pad_w // 2 + W] = x
    return torch.stack([xp[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
                        for i in range(n_h) for j in range(n_w)], dim=1)


def _alt_normalize(w, eps=1e-4):
    out = torch.empty_like(w)
    rows = []
    for b in range(w.shape[0]):
        rows.append(torch.stack([p / torch.clamp(p.norm(), min=eps) for p in w[b]]))
    return torch.stack(rows) if rows else out


def _alt_scores(f, w_normed):
    B, L, C, k, _ = w_normed.shape
    Hf, Wf = f.shape[-2:]
    windows = F.unfold(pad_same(f, k), k)  # (B, C*k*k, Hf*Wf)
    return torch.bmm(w_normed.reshape(B, L, C * k * k), windows).view(B, L, Hf, Wf)


def _alt_valid(mask, ksize, stride=1):
    return (F.max_pool2d(pad_same(mask, ksize, stride), ksize, stride=stride) == 0).flatten(1).to(mask.dtype)


def _valid_two_arguments(mask, ksize):  # right for stride 1, but notebook 06 passes a stride
    return (F.avg_pool2d(pad_same(mask, ksize), ksize, stride=1) == 0).flatten(1).to(mask.dtype)


def _valid_stride_ignored(mask, ksize, stride=1):
    return _valid_two_arguments(mask, ksize)


def _alt_softmax(scores, mm, softmax_scale=10.0):
    m = mm[:, :, None, None]
    s = scores * m * softmax_scale
    e = (s - s.max(dim=1, keepdim=True).values).exp()
    return e / e.sum(dim=1, keepdim=True) * m


def _alt_fuse(scores, fuse_k=3):
    B, L, H, W = scores.shape
    lo, hi = (fuse_k - 1) // 2, fuse_k // 2  # TF 'SAME': the extra offset goes down/right

    def diagonal_sum(m):  # m (B, P, Q): out[p, q] = sum_d m[p + d, q + d], zero outside
        P, Q = m.shape[-2:]
        mp = F.pad(m, (lo, hi, lo, hi))
        return sum(mp[:, lo + d:lo + d + P, lo + d:lo + d + Q] for d in range(-lo, hi + 1))

    m = diagonal_sum(scores.permute(0, 2, 3, 1).reshape(B, H * W, L))  # row-major
    m = m.view(B, H, W, H, W).transpose(1, 2).transpose(3, 4).reshape(B, W * H, W * H)
    m = diagonal_sum(m).view(B, W, H, W, H).transpose(1, 2).transpose(3, 4).reshape(B, H * W, L)
    return m.transpose(1, 2).reshape(B, L, H, W)


def _alt_reconstruct(attention, raw_patches, rate, out_size):
    B, L, h, w = attention.shape
    C, k = raw_patches.shape[2], raw_patches.shape[-1]
    H, W = out_size
    canvas = attention.new_zeros(B, C, (h - 1) * rate + k, (w - 1) * rate + k)
    pasted = torch.einsum("blij,blcpq->bijcpq", attention, raw_patches)  # (B, h, w, C, k, k)
    for i in range(h):
        for j in range(w):
            canvas[:, :, i * rate:i * rate + k, j * rate:j * rate + k] += pasted[:, i, j]
    top = max((h - 1) * rate + k - H, 0) // 2
    left = max((w - 1) * rate + k - W, 0) // 2
    return canvas[:, :, top:top + H, left:left + W] / 4.0


def _alt_layer(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return _layer(f, b, mask, ksize, stride, rate, fuse_k, softmax_scale, fuse)


def _alt_stage_input(x, mask):
    B, _, H, W = x.shape
    return torch.cat([x, x.new_ones(B, 1, H, W), mask.expand(B, 1, H, W).to(x.dtype)], dim=1)


def _alt_rf(layers):
    jumps = [1]
    for _, s, _ in layers:
        jumps.append(jumps[-1] * s)
    out, r = [], 1
    for (k, _, d), j_in, j_out in zip(layers, jumps, jumps[1:]):
        r += (k - 1) * d * j_in
        out.append((r, j_out))
    return out


def _alt_compose(x1, x_in, mask):
    return torch.where(mask > 0.5, x1, x_in)


def _alt_coarse(net, x, mask):
    h = torch.cat([x, torch.ones_like(x[:, :1]), torch.ones_like(x[:, :1]) * mask], dim=1)
    for layer in [getattr(net, n) for n in net.LAYERS]:
        h = layer(h)
    return torch.clip(h, -1.0, 1.0)


def _alt_flatten(h):
    return h.transpose(1, 2).transpose(2, 3).reshape(h.shape[0], -1)


def _alt_wgan(pos, neg):
    return neg.mean() - pos.mean()


def _alt_slopes(grad, mask, eps=1e-12):
    masks = mask.expand(grad.shape[0], 1, *grad.shape[-2:])
    return torch.stack([((g * g) * m).sum().add(eps).sqrt() for g, m in zip(grad, masks)])


def _alt_gp(critic, real, fake, mask, alpha):
    x_hat = torch.lerp(real, fake, alpha).detach().requires_grad_(True)
    scores = critic(x_hat)
    (g,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    slopes = torch.sqrt((g.pow(2) * mask).flatten(1).sum(dim=1) + 1e-12)
    return ((slopes - 1.0) ** 2).mean()


def _alt_save(obj, path):
    path = Path(path)
    os.makedirs(path.parent, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".ckpt-", delete=False)
    try:
        with handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.remove(handle.name)
    return path


def _alt_ema(average, weights, num_updates, decay):
    d = min(decay, (1.0 + num_updates) / (10.0 + num_updates))
    with torch.no_grad():
        for k, a in average.items():
            if a.is_floating_point():
                a.lerp_(weights[k].to(a.dtype), 1.0 - d)
            else:
                a.copy_(weights[k])
    return d


# ---- attention_at (notebook 10), written unlike the planted mistakes


def _at_cols_first(attention, grid, row, col, cell=8):
    i, j = divmod(col, cell)[0], divmod(row, cell)[0]
    return attention[0][:, i][:, j].reshape(grid)


def _at_transposed_grid(attention, grid, row, col, cell=8):
    hc, wc = grid
    return attention[0, :, row // cell, col // cell].view(wc, hc).transpose(0, 1)


def _at_no_cell(attention, grid, row, col, cell=8):
    return attention[0, :, row, col].view(*grid)


def _at_nearest_cell(attention, grid, row, col, cell=8):
    i = min(int(row / cell + 0.5), attention.shape[-2] - 1)
    j = min(int(col / cell + 0.5), attention.shape[-1] - 1)
    return attention[0, :, i, j].view(*grid)


def _at_batch_mean(attention, grid, row, col, cell=8):
    return attention.mean(0)[:, row // cell, col // cell].view(*grid)


def _at_sum_to_one(attention, grid, row, col, cell=8):
    w = attention[0, :, row // cell, col // cell].view(*grid)
    return w / w.sum()


def _at_eight(attention, grid, row, col, cell=8):
    return attention[0, :, row >> 3, col >> 3].view(*grid)


def _at_normalises_in_place(attention, grid, row, col, cell=8):
    attention /= attention.sum(dim=1, keepdim=True)
    return attention[0, :, row // cell, col // cell].reshape(grid)


def _alt_attention_at(attention, grid, row, col, cell=8):
    per_cell = attention[0].permute(1, 2, 0)  # (Hf, Wf, L)
    return per_cell[int(row // cell), int(col // cell)].reshape(grid[0], grid[1])


NO_GRAD, NAN_GRAD, GRAD_DIFFERS = "no gradient", "eps or a clamp is in the wrong place", "hidden from autograd"

WRONG: dict[str, list[tuple[str, object]]] = {
    "to_signed_range": [
        ("the range [0, 1]", lambda p: p.float() / 255), ("subtract 1", lambda p: p.float() / 127.5),
        ("differs from course_lib's", _signed_wrong_constant), ("differs from course_lib's", _signed_centred_half),
        ("whole number", _signed_uint8_arithmetic), ("float64", lambda p: p.double() / 127.5 - 1),
        ("is None", forgets_return("to_signed_range")), ("NumPy", as_numpy("to_signed_range")),
        ("list", as_list("to_signed_range")), ("shape", _signed_flat),
        ("an in-place operation on an integer tensor", _signed_divides_in_place)],
    "box_mask": [
        ("differs from course_lib's", _box_bottom_right), ("dtype bool", _box_bool),
        ("shape (1, 1, 9, 6)", _box_transposed_canvas), ("one row and one column too few", _box_one_short),
        ("NumPy", _box_numpy), ("is None", forgets_return("box_mask")), ("float64", as_float64("box_mask")),
        ("(1, 1, H, W)", lambda b, h, w: REGISTRY["box_mask"].reference(b, h, w)[0]),
        ("1 = hole", lambda b, h, w: 1 - REGISTRY["box_mask"].reference(b, h, w))],
    "psnr": [
        ("not its sum", _psnr_sum), ("not the mean absolute error", _psnr_mae),
        ("shape", _psnr_per_channel), ("own maximum", _psnr_data_peak), ("log10", _psnr_ln),
        ("in place", _psnr_in_place), ("list", _psnr_items), ("float64", as_float64("psnr")),
        (NO_GRAD, under_no_grad("psnr")), (NO_GRAD, through_numpy("psnr")), ("is None", forgets_return("psnr"))],
    "spatial_discount": [
        ("float64", _discount_float64), ("gamma you are given", _discount_fixed_gamma),
        ("default gamma is the release's 0.9", _discount_paper_default), ("list", _discount_nested_list),
        ("not their product", _discount_product), ("off-by-one", _discount_symmetric_mine),
        ("wrong axis", _discount_transposed), ("NumPy", as_numpy("spatial_discount")),
        ("is None", forgets_return("spatial_discount")), ("generator", as_generator("spatial_discount"))],
    "extract_patches": [
        ("'SAME' padding", _patches_loop_no_pad), ("use the stride argument", _patches_unit_stride),
        ("not with copies of the border pixels", _patches_reflect), ("k - 1) // 2 gives", _patches_centre_pad),
        ("(k, k, C) order", _patches_hwc), ("in place", _patches_in_place_pad),
        ("float64", as_float64("extract_patches")), (NO_GRAD, under_no_grad("extract_patches")),
        (NO_GRAD, through_numpy("extract_patches")), ("list", lambda x, k, s=1: list(A.extract_patches(x, k, s))),
        ("the default stride is 1", lambda x, kernel, stride=2: A.extract_patches(x, kernel, stride))],
    "normalize_patches": [
        ("not added", _normalize_plus_eps), ("wrong axis", _normalize_channelwise),
        ("use the eps argument", _normalize_fixed_eps_mine), ("smallest input", _normalize_eps_inside),
        (GRAD_DIFFERS, _normalize_data_clamp), ("zero patch", _normalize_no_clamp),
        ("in place", _normalize_in_place), (NO_GRAD, detached("normalize_patches")),
        ("float64", as_float64("normalize_patches")), ("is None", forgets_return("normalize_patches"))],
    "matching_scores": [
        ("own patches", _scores_batch_zero), ("for an even patch size", _scores_symmetric_pad),
        ("do not flip", _scores_transposed), ("does not normalise the foreground", _scores_cosine),
        ("'SAME'", _scores_no_pad), (NO_GRAD, under_no_grad("matching_scores")),
        (NO_GRAD, through_numpy("matching_scores")), ("in place", clobbers("matching_scores", 1)),
        ("float64", as_float64("matching_scores")), ("NumPy", as_numpy("matching_scores"))],
    "valid_patches": [
        ("not just at its centre", _valid_centre), ("inverted", _valid_inverted_mine),
        ("exactly 0", _valid_majority), ("do not hard-code 3", _valid_three), ("dtype bool", _valid_bool),
        ("shape", _valid_keepdims), ("use zero padding", _valid_border_is_hole),
        ("in place", clobbers("valid_patches")), ("is None", forgets_return("valid_patches")),
        ("NumPy", as_numpy("valid_patches")), ("third argument stride", _valid_two_arguments),
        ("use the stride argument", _valid_stride_ignored)],
    "masked_softmax": [
        ("subtract the maximum", _softmax_exp), ("not -inf", _softmax_minus_inf),
        ("do not renormalise", _softmax_renorm), ("wrong axis", _softmax_last_axis),
        ("do not hard-code 10", _softmax_ten), ("multiply the scores by softmax_scale", _softmax_scale_outside),
        ("in place", _softmax_in_place), ("multiply the attention by mm after the softmax", _softmax_no_second_mask),
        (NO_GRAD, under_no_grad("masked_softmax")), ("float64", as_float64("masked_softmax"))],
    "masked_softmax_neg_inf": [
        ("where every patch is invalid", _neg_inf_plain), ("in place", _neg_inf_in_place),
        ("differs from course_lib's", _neg_inf_last_dims), ("non-zero weights", _neg_inf_minus_big),
        ("where every patch is invalid", _neg_inf_renorm_unguarded), ("the release's masking",
                                                                       ref["masked_softmax"]),
        ("scores * softmax_scale", _neg_inf_scale_after), (NO_GRAD, under_no_grad("masked_softmax_neg_inf")),
        ("float64", as_float64("masked_softmax_neg_inf")), ("is None", forgets_return("masked_softmax_neg_inf"))],
    "fuse_scores": [
        ("fuse in both orderings", _fuse_one_pass), ("not a box of ones", _fuse_ones),
        ("not its mirror image", _fuse_mirror), ("do not hard-code 3", _fuse_three),
        ("smallest input", _fuse_no_final_permute), (NO_GRAD, under_no_grad("fuse_scores")),
        (NO_GRAD, through_numpy("fuse_scores")), ("in place", clobbers("fuse_scores")),
        ("float64", as_float64("fuse_scores")), ("is None", forgets_return("fuse_scores"))],
    "reconstruct": [
        ("missing /4", _recon_no_division), ("smallest input", _recon_rate_squared),
        ("off-by-one crop", _recon_bottom_crop), ("its own patches", _recon_shared_patches),
        ("a fixed crop of (k - rate) // 2", _recon_fixed_crop),
        ("use the rate argument", _recon_two), (NO_GRAD, under_no_grad("reconstruct")),
        (NO_GRAD, through_numpy("reconstruct")), ("in place", clobbers("reconstruct", 1)),
        ("float64", as_float64("reconstruct")), ("is None", forgets_return("reconstruct"))],
    "contextual_attention": [
        ("align_corners", _layer_switch(down=_slice)), ("the mask is ignored", _layer_switch(use_mask=False)),
        ("background b", _layer_switch(use_b=False)), ("fuse=False", _layer_switch(always_fuse=True)),
        ("softmax_scale", _layer_switch(scale=10.0)), ("mask=None means there is no hole", _layer_switch(none_hole=True)),
        ("mask=None", _layer_crashes_without_mask), ("smallest input", _layer_no_fuse_k),
        ("expected a pair", _layer_y_only), (NO_GRAD, _layer_no_grad), ("smallest input", _layer_switch(k_fixed=3)),
        ("pass the stride argument", _layer_ignores_stride), ("same ksize and stride", _layer_mask_without_stride)],
    "stage_input": [
        ("ones channel", _input_mask_only), ("the order is", _input_ones_last), ("1 = hole", _input_known_is_one),
        ("shared mask", _input_cat_mask), ("float64", _input_double_ones), ("as it comes", _input_blanked),
        ("in place", _input_in_place), (NO_GRAD, under_no_grad("stage_input")),
        (NO_GRAD, detached("stage_input")), ("is None", forgets_return("stage_input"))],
    "receptive_field": [
        ("start at r = 1", _rf_zero_start), ("dilation", _rf_no_dilation_mine), ("before the update", _rf_jump_first),
        ("generator", _rf_generator), ("is None", _rf_none), ("differ", _rf_last_only), ("in place", _rf_pops),
        ("pair of ints", _rf_true_division), ("stride only", _rf_dilated_jump),
        ("expected a list", lambda layers: tuple(REGISTRY["receptive_field"].reference(layers)))],
    "compose_stages": [
        ("inverted", _compose_swapped), ("stop-gradient", _compose_no_grad), ("known pixels", _compose_stage1_only),
        ("1 - mask", _compose_plus), ("in place", _compose_in_place), ("stop-gradient", _compose_detach_known),
        ("float64", as_float64("compose_stages")), ("NumPy", as_numpy("compose_stages")),
        ("is None", forgets_return("compose_stages"))],
    "coarse_stage": [
        ("clip", _coarse_unclipped), ("instead of a tanh", _coarse_tanh_mine), ("differs from course_lib's", _coarse_sigmoid),
        ("5-channel", _coarse_four_channels), ("differs from course_lib's", _coarse_unit_clip),
        ("LAYERS order", _coarse_alphabetical), (GRAD_DIFFERS, _coarse_data_clamp), (NO_GRAD, _coarse_no_grad),
        ("tuple", _coarse_pair), ("float64", as_float64("coarse_stage"))],
    "flatten_nhwc": [
        ("NCHW", _flat_nchw), ("rows before columns", _flat_transpose), ("not contiguous", _flat_view),
        ("keep the batch dim", _flat_everything), ("keep the batch dim", _flat_not_flattened),
        (NO_GRAD, under_no_grad("flatten_nhwc")), (NO_GRAD, through_numpy("flatten_nhwc")),
        ("float64", as_float64("flatten_nhwc")), ("NumPy", as_numpy("flatten_nhwc"))],
    "wgan_critic_loss": [
        ("sign is flipped", _wgan_flipped), ("not the sum", _wgan_summed), ("no log", _wgan_bce),
        ("Python float", _wgan_item), ("one number for the batch", _wgan_per_sample_mine),
        (NO_GRAD, _wgan_rebuilt), ("differs from course_lib's", _wgan_abs),
        (NO_GRAD, under_no_grad("wgan_critic_loss")), ("float64", as_float64("wgan_critic_loss")),
        ("is None", forgets_return("wgan_critic_loss"))],
    "masked_slopes": [
        ("apply the mask", _slopes_no_mask), ("take the square root", _slopes_no_sqrt),
        ("do not average", _slopes_averaged), ("use the eps argument", _slopes_without_eps), ("wrong place", _slopes_eps_after),
        ("smallest input", _slopes_clamped_root), (NAN_GRAD, _slopes_hypot),
        ("use the eps argument", _slopes_default_eps), ("shape", _slopes_keepdim), ("in place", _slopes_in_place),
        ("one norm per sample", _slopes_pixel_norms), (NO_GRAD, under_no_grad("masked_slopes"))],
    "gradient_penalty": [
        ("interpolates", _gp_switch(at="fake")), ("interpolates", _gp_switch(at="real")),
        ("alpha argument", _gp_switch(at="half")), ("create_graph", _gp_switch(graph=False)),
        ("two-sided", _gp_switch(relu=True)), ("over the hole", _gp_switch(use_mask=False)),
        ("differs from course_lib's", _gp_switch(reduce="sum")), ("requires_grad_(True)", _gp_no_requires_grad),
        ("Python float", _gp_item)],
    "atomic_save": [
        ("temporary file first", _save_plain), ("remove the temporary file", _save_no_cleanup_mine),
        ("target's folder", _save_system_tmp), ("BaseException", _save_except_exception),
        ("raise again", _save_silent), ("old checkpoint", _save_delete_then_rename),
        ("temporary file first", _save_copy), ("torch.save", _save_pickle)],
    "ema_update": [
        ("warm-up", _ema_plain), ("swapped", _ema_d_on_weights), ("in place", _ema_rebinds),
        ("copy integer", _ema_counters_averaged), ("decay argument", _ema_fixed_decay_mine), ("min(", _ema_larger),
        ("in place", _ema_moves_weights), ("work one number by hand", _ema_wrong_warmup),
        ("keeping their dtype", _ema_float64)],
    "attention_at": [
        ("rows and columns", _at_cols_first), ("row-major", _at_transposed_grid), ("divide the pixel", _at_no_cell),
        ("floor", _at_nearest_cell), ("first image", _at_batch_mean), ("not renormalised", _at_sum_to_one),
        ("cell argument", _at_eight), ("in place", _at_normalises_in_place), (NO_GRAD, under_no_grad("attention_at")),
        ("float64", as_float64("attention_at")), ("NumPy", as_numpy("attention_at")),
        ("is None", forgets_return("attention_at"))],
}

ALTERNATIVES = {
    "to_signed_range": _alt_signed, "box_mask": _alt_box, "psnr": _alt_psnr, "spatial_discount": _alt_discount,
    "extract_patches": _alt_patches, "normalize_patches": _alt_normalize, "matching_scores": _alt_scores,
    "valid_patches": _alt_valid, "masked_softmax": _alt_softmax, "masked_softmax_neg_inf": _alt_neg_inf,
    "fuse_scores": _alt_fuse,
    "reconstruct": _alt_reconstruct, "contextual_attention": _alt_layer, "stage_input": _alt_stage_input,
    "receptive_field": _alt_rf, "compose_stages": _alt_compose, "coarse_stage": _alt_coarse,
    "flatten_nhwc": _alt_flatten, "wgan_critic_loss": _alt_wgan, "masked_slopes": _alt_slopes,
    "gradient_penalty": _alt_gp, "atomic_save": _alt_save, "ema_update": _alt_ema,
    "attention_at": _alt_attention_at,
}
# ---- notebook 03's open variant: the true cosine (cosine_scores)

def _cos_windows_loop(f, w, eps=1e-4):
    """Windows by a loop over positions (the by-hand definition), patches as given."""
    k = w.shape[-1]
    windows = A.extract_patches(f, k, 1)  # (B, Hf*Wf, C, k, k)
    return windows, w


def _cos_release(f, w, eps=1e-4):  # the release's score: patches normalised, windows not
    k = w.shape[-1]
    w_unit = w / w.flatten(2).norm(dim=2).clamp(min=eps)[:, :, None, None, None]
    return torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w_unit[i]) for i in range(f.shape[0])])


def _cos_by_image_norm(f, w, eps=1e-4):  # one norm for the whole image
    return _cos_release(f / f.flatten(1).norm(dim=1).clamp(min=eps)[:, None, None, None], w, eps)


def _cos_by_pixel_norm(f, w, eps=1e-4):  # one norm per pixel (its C channels)
    return _cos_release(f / f.norm(dim=1, keepdim=True).clamp(min=eps), w, eps)


def _window_norm_map(f, k, padding=None):
    f2 = pad_same(f * f, k) if padding is None else F.pad(f * f, padding)
    return F.conv2d(f2, torch.ones(1, f.shape[1], k, k)).sqrt()  # (B, 1, Hf, Wf)


def _cos_unit_windows_raw_patches(f, w, eps=1e-4):
    k = w.shape[-1]
    raw = torch.cat([F.conv2d(pad_same(f[i:i + 1], k), w[i]) for i in range(f.shape[0])])
    return raw / _window_norm_map(f, k).clamp(min=eps)


def _cos_no_clamp(f, w, eps=1e-4):
    return _cos_release(f, w, eps) / _window_norm_map(f, w.shape[-1])


def _cos_hard_coded_eps(f, w, eps=1e-4):
    return _cos_release(f, w, 1e-4) / _window_norm_map(f, w.shape[-1]).clamp(min=1e-4)


def _cos_centred_pad(f, w, eps=1e-4):
    k = w.shape[-1]
    p = k // 2
    norms = _window_norm_map(f, k, (p, p, p, p))[..., :f.shape[-2], :f.shape[-1]]  # top/left gets the extra row
    return _cos_release(f, w, eps) / norms.clamp(min=eps)


def _alt_cosine(f, w, eps=1e-4):
    B, L, C, k, _ = w.shape
    windows = F.unfold(pad_same(f, k), k)  # (B, C*k*k, Hf*Wf)
    windows = windows / windows.norm(dim=1, keepdim=True).clamp(min=eps)
    patches = w.reshape(B, L, C * k * k)
    patches = patches / patches.norm(dim=2, keepdim=True).clamp(min=eps)
    return torch.bmm(patches, windows).view(B, L, *f.shape[-2:])


def test_cosine_scores_reference_by_hand():
    # a hand-worked 1-channel example: f = [[3, 4]] (1x2), one 1x1 patch w = [2]:
    # windows (1x1) have norms 3 and 4, so the cosines are 3*2/(3*2) = 1 and 1; with w = [-5] both -1
    f = torch.tensor([[[[3.0, 4.0]]]])  # (1, 1, 1, 2)
    assert torch.equal(A.cosine_scores(f, torch.tensor([2.0]).view(1, 1, 1, 1, 1)), torch.ones(1, 1, 1, 2))
    assert torch.equal(A.cosine_scores(f, torch.tensor([-5.0]).view(1, 1, 1, 1, 1)), -torch.ones(1, 1, 1, 2))
    # against a slow loop over every window and patch, with a blanked region and norms around eps
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 5, 6, generator=gen)
    f[0, :, 1:4, 1:4] = 0.0  # the window at (2, 2) is all zeros
    w = A.extract_patches(torch.randn(2, 3, 4, 4, generator=gen), 3, 1)  # (2, 16, 3, 3, 3)
    for eps in (1e-4, 0.7):
        got = A.cosine_scores(f, w, eps)
        windows, _ = _cos_windows_loop(f, w)
        for b in range(2):
            for l in range(w.shape[1]):
                for p in range(30):
                    a, c = windows[b, p], w[b, l]
                    want = float((a * c).sum()) / (max(float(a.norm()), eps) * max(float(c.norm()), eps))
                    assert got[b, l, p // 6, p % 6].item() == pytest.approx(want, abs=1e-5)
    assert torch.all(got[0, :, 2, 2] == 0)
    # scale invariance (a true cosine) and the release's score times the window norm
    assert torch.allclose(A.cosine_scores(7.0 * f[1:], 3.0 * w[1:]), A.cosine_scores(f[1:], w[1:]), atol=1e-6)
    # a finite gradient through the windows of zeros
    fg, wg = f.clone().requires_grad_(), w.clone().requires_grad_()
    A.cosine_scores(fg, wg).sum().backward()
    assert torch.isfinite(fg.grad).all() and torch.isfinite(wg.grad).all()


def test_cosine_scores_rejects_bad_input():
    with pytest.raises(ValueError):
        A.cosine_scores(torch.zeros(3, 5, 5), torch.zeros(1, 4, 3, 3, 3))
    with pytest.raises(ValueError):
        A.cosine_scores(torch.zeros(1, 3, 5, 5), torch.zeros(1, 4, 2, 3, 3))


WRONG["cosine_scores"] = [
    ("patches only", _cos_release), ("whole map", _cos_by_image_norm), ("one pixel", _cos_by_pixel_norm),
    ("as well", _cos_unit_windows_raw_patches), ("zero window", _cos_no_clamp),
    ("eps argument", _cos_hard_coded_eps), ("even", _cos_centred_pad),
    (NO_GRAD, under_no_grad("cosine_scores")), ("float64", as_float64("cosine_scores")),
    ("is None", forgets_return("cosine_scores")), ("in place", clobbers("cosine_scores", 0))]
ALTERNATIVES["cosine_scores"] = _alt_cosine

# ---- notebook 11 (DeepFill v2)

def _gc_split(x, weight, bias, stride=1, dilation=1):
    h = F.conv2d(pad_same(x, weight.shape[-1], stride, dilation), weight, bias, stride, 0, dilation)
    c = h.shape[1] // 2
    return h[:, :c], h[:, c:]  # features, gate


def _gc_sigmoid_on_features(x, weight, bias, stride=1, dilation=1):
    f, g = _gc_split(x, weight, bias, stride, dilation)
    return torch.sigmoid(f) * F.elu(g)


def _gc_linear_features(x, weight, bias, stride=1, dilation=1):
    f, g = _gc_split(x, weight, bias, stride, dilation)
    return f * torch.sigmoid(g)


def _gc_tanh_gate(x, weight, bias, stride=1, dilation=1):
    f, g = _gc_split(x, weight, bias, stride, dilation)
    return F.elu(f) * torch.tanh(g)


def _gc_gate_first(x, weight, bias, stride=1, dilation=1):
    f, g = _gc_split(x, weight, bias, stride, dilation)
    return F.elu(torch.sigmoid(g) * f)


def _gc_relu(x, weight, bias, stride=1, dilation=1):
    f, g = _gc_split(x, weight, bias, stride, dilation)
    return f.clamp(min=0) * torch.sigmoid(g)


def _gc_pairs(x, weight, bias, stride=1, dilation=1):
    h = F.conv2d(pad_same(x, weight.shape[-1], stride, dilation), weight, bias, stride, 0, dilation)
    b, c2, hh, ww = h.shape
    pairs = h.view(b, c2 // 2, 2, hh, ww)  # channels (0, 1), (2, 3), ... as (feature, gate)
    return F.elu(pairs[:, :, 0]) * torch.sigmoid(pairs[:, :, 1])


def _gc_torch_padding(x, weight, bias, stride=1, dilation=1):
    h = F.conv2d(x, weight, bias, stride, weight.shape[-1] // 2, dilation)
    f, g = h.chunk(2, dim=1)
    return F.elu(f) * torch.sigmoid(g)


def _gc_no_bias(x, weight, bias, stride=1, dilation=1):
    return REGISTRY["gated_conv2d"].reference(x, weight, None, stride, dilation)


def _alt_gated(x, weight, bias, stride=1, dilation=1):
    c = weight.shape[0] // 2  # two convs from the two halves of one weight: the same maths
    features = F.conv2d(pad_same(x, weight.shape[-1], stride, dilation), weight[:c], bias[:c], stride, 0, dilation)
    gate = F.conv2d(pad_same(x, weight.shape[-1], stride, dilation), weight[c:], bias[c:], stride, 0, dilation)
    return torch.where(features > 0, features, torch.expm1(features)) / (1 + torch.exp(-gate))


def _hd_flipped(pos, neg):
    return (1 + pos).clamp(min=0).mean() + (1 - neg).clamp(min=0).mean()


def _hd_unclipped(pos, neg):
    return (1 - pos).mean() + (1 + neg).mean()


def _hd_summed(pos, neg):
    return F.relu(1 - pos).sum() + F.relu(1 + neg).sum()


def _hd_no_margin(pos, neg):
    return F.relu(-pos).mean() + F.relu(neg).mean()


def _hd_wgan(pos, neg):
    return neg.mean() - pos.mean()


def _hd_averaged(pos, neg):
    return (F.relu(1 - pos).mean() + F.relu(1 + neg).mean()) / 2


def _hd_hinge_of_means(pos, neg):
    return F.relu(1 - pos.mean()) + F.relu(1 + neg.mean())


def _hd_per_patch(pos, neg):
    return F.relu(1 - pos) + F.relu(1 + neg)


def _hd_real_only(pos, neg):
    return F.relu(1 - pos).mean()


def _hd_item(pos, neg):
    return (F.relu(1 - pos).mean() + F.relu(1 + neg).mean()).item()


def _alt_hinge_d(pos, neg):
    return (1 - pos).clamp(min=0).sum() / pos.numel() + (1 + neg).clamp(min=0).sum() / neg.numel()


def _hg_item(neg):
    return -neg.mean().item()


def _alt_hinge_g(neg):
    return -neg.sum() / neg.numel()


WRONG.update({
    "gated_conv2d": [
        ("first half", _gc_sigmoid_on_features), ("ELU on the features", _gc_linear_features),
        ("sigmoid, not tanh", _gc_tanh_gate), ("before the product", _gc_gate_first),
        ("ELU, not ReLU", _gc_relu), ("two halves", _gc_pairs), ("'SAME' padding", _gc_torch_padding),
        ("differs from course_lib's", _gc_no_bias), ("float64", as_float64("gated_conv2d")),
        (NO_GRAD, under_no_grad("gated_conv2d")), ("is None", forgets_return("gated_conv2d")),
        ("in place", clobbers("gated_conv2d"))],
    "hinge_d_loss": [
        ("signs are flipped", _hd_flipped), ("clip each term", _hd_unclipped), ("not the sum", _hd_summed),
        ("margin of 1", _hd_no_margin), ("WGAN critic loss", _hd_wgan), ("0.5", _hd_averaged),
        ("each score", _hd_hinge_of_means), ("one number", _hd_per_patch),
        ("differs from course_lib's", _hd_real_only), ("Python float", _hd_item),
        (NO_GRAD, under_no_grad("hinge_d_loss")), ("float64", as_float64("hinge_d_loss"))],
    "hinge_g_loss": [
        ("sign is flipped", lambda neg: neg.mean()), ("no hinge", lambda neg: F.relu(1 - neg).mean()),
        ("not the sum", lambda neg: -neg.sum()), ("one number", lambda neg: -neg),
        ("no log", lambda neg: F.softplus(-neg).mean()), ("Python float", _hg_item),
        ("differs from course_lib's", lambda neg: -F.relu(neg).mean()),
        (NO_GRAD, under_no_grad("hinge_g_loss")), ("float64", as_float64("hinge_g_loss")),
        ("is None", forgets_return("hinge_g_loss"))],
})
ALTERNATIVES.update({"gated_conv2d": _alt_gated, "hinge_d_loss": _alt_hinge_d, "hinge_g_loss": _alt_hinge_g})


# ---- the open variants of notebooks 07 (a detach ablation) and 08 (an unmasked penalty)

def _csd_release(x1, x_in, mask):
    return x1 * mask + x_in * (1 - mask)  # nothing stopped: the release's composite


def _csd_known_detached(x1, x_in, mask):
    return x1 * mask + x_in.detach() * (1 - mask)


def _csd_mask_detached(x1, x_in, mask):
    return x1 * mask.detach() + x_in * (1 - mask)


def _csd_in_place_detach(x1, x_in, mask):
    return x1.detach_() * mask + x_in * (1 - mask)


def _csd_swapped(x1, x_in, mask):
    return x1.detach() * (1 - mask) + x_in * mask


def _csd_stage1_everywhere(x1, x_in, mask):
    return x1.detach()


def _alt_csd(x1, x_in, mask):
    return torch.where(mask.bool(), x1.detach(), x_in)  # binary masks: the same values


def _ugp_at(critic, real, fake, alpha, *, at="x_hat", graph=True, relu=False, norm="sum", reduce="mean"):
    x = {"x_hat": real + alpha * (fake - real), "fake": fake, "real": real}[at]
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=graph)
    if norm == "sum":
        slopes = torch.sqrt((g ** 2).sum(dim=(1, 2, 3)) + 1e-12)
    elif norm == "mean":
        slopes = torch.sqrt((g ** 2).mean(dim=(1, 2, 3)) + 1e-12)
    else:  # one norm for the batch
        slopes = torch.sqrt((g ** 2).sum() + 1e-12)
    gap = torch.relu(slopes - 1) if relu else slopes - 1
    return (gap ** 2).mean() if reduce == "mean" else (gap ** 2).sum()


def _ugp_with_hole(critic, real, fake, alpha):
    hole = (fake != real).any(dim=1, keepdim=True).to(real.dtype)  # (B, 1, H, W): where they differ
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((torch.sqrt((g ** 2 * hole).sum(dim=(1, 2, 3)) + 1e-12) - 1) ** 2).mean()  # the masked one after all


def _ugp_item(critic, real, fake, alpha):
    return _ugp_at(critic, real, fake, alpha).item()


def _alt_ugp(critic, real, fake, alpha):
    x = (real + alpha * (fake - real)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return torch.stack([(g[i].norm() - 1) ** 2 for i in range(len(g))]).mean()


WRONG.update({
    "compose_stages_detached": [
        ("x_stage1.detach()", _csd_release), ("x_stage1.detach()", _csd_known_detached),
        ("x_stage1.detach()", _csd_mask_detached), ("detach_()", _csd_in_place_detach),
        ("inverted", _csd_swapped), ("known pixels", _csd_stage1_everywhere),
        ("float64", as_float64("compose_stages_detached")), ("NumPy", as_numpy("compose_stages_detached")),
        ("is None", forgets_return("compose_stages_detached"))],
    "unmasked_gradient_penalty": [
        ("interpolates", lambda c, r, f, a: _ugp_at(c, r, f, a, at="fake")),
        ("at the real", lambda c, r, f, a: _ugp_at(c, r, f, a, at="real")),
        ("create_graph", lambda c, r, f, a: _ugp_at(c, r, f, a, graph=False)),
        ("two-sided", lambda c, r, f, a: _ugp_at(c, r, f, a, relu=True)),
        ("sum of the squares", lambda c, r, f, a: _ugp_at(c, r, f, a, norm="mean")),
        ("one slope per image", lambda c, r, f, a: _ugp_at(c, r, f, a, norm="batch")),
        ("not their sum", lambda c, r, f, a: _ugp_at(c, r, f, a, reduce="sum")),
        ("differs from course_lib's", _ugp_with_hole), ("Python float", _ugp_item)],
})
ALTERNATIVES.update({"compose_stages_detached": _alt_csd, "unmasked_gradient_penalty": _alt_ugp})
WRONG_CASES = [(name, i) for name in sorted(WRONG) for i in range(len(WRONG[name]))]


def test_every_exercise_has_eight_wrong_implementations_and_an_alternative():
    assert set(WRONG) == set(NAMES) == set(ALTERNATIVES)
    for name, wrongs in WRONG.items():
        assert len(wrongs) >= 8, f"{name}: {len(wrongs)} wrong implementations, need >= 8"


@pytest.mark.parametrize("name,index", WRONG_CASES, ids=[f"{n}:{i}:{WRONG[n][i][0]}" for n, i in WRONG_CASES])
def test_wrong_implementation_fails_with_a_hint_that_names_it(name, index):
    phrase, wrong = WRONG[name][index]
    with pytest.raises(AssertionError) as info:  # anything else would be the check crashing
        check(name, wrong)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\nHint: " in message
    assert "the check could not finish" not in message, message
    assert phrase.lower() in message.lower(), f"expected {phrase!r} in:\n{message}"
    hint = message.split("\nHint: ", 1)[1]
    assert len(hint.split()) >= 6, f"the hint must be a sentence, got {hint!r}"


@pytest.mark.parametrize("name", NAMES)
def test_a_correct_alternative_implementation_passes(name, capsys):
    assert check(name, ALTERNATIVES[name]) is ALTERNATIVES[name]
    assert f"[ok] {name}" in capsys.readouterr().out


def test_a_wrong_type_never_gets_a_shape_hint():
    with pytest.raises(AssertionError) as info:
        check("box_mask", lambda bbox, h, w: None)
    assert "return" in str(info.value) and "batch and channel dims" not in str(info.value)


def test_the_smallest_differing_input_is_shown_with_both_outputs():
    with pytest.raises(AssertionError) as info:
        check("fuse_scores", _fuse_no_final_permute)
    message = str(info.value)
    assert "smallest input" in message and "yours gives" in message and "course_lib's gives" in message
    # the smallest case of the check is the (1, 6, 2, 3) one: its values are printed
    assert "tensor of shape (1, 6, 2, 3)" in message


def test_a_check_that_crashes_itself_still_fails_with_a_hint():
    def crashing_check(fn):
        fn().shape  # an AttributeError inside the check, not in the student's function

    checks.register("_crashing_demo", reference=_stub, notebook="x.ipynb")(crashing_check)
    try:
        with pytest.raises(AssertionError, match="the check could not finish.*\nHint: "):
            check("_crashing_demo", lambda: 3)
    finally:
        del REGISTRY["_crashing_demo"]


def test_exception_hints_name_common_mistakes():
    from course_lib.checks import exception_hint
    err = RuntimeError("view size is not compatible with input tensor's size and stride")
    assert ".reshape" in exception_hint(err)
    assert "signature" in exception_hint(TypeError("f() got an unexpected keyword argument 'fuse_k'"))


def _solution_code_cells(stem: str) -> list[str]:
    import json
    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / f"{stem}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def test_notebook_06_passes_with_the_functions_written_in_notebooks_04_and_05(capsys):
    """Notebook 06 invites students to paste their own functions: its layer, built on notebook 04's
    valid_patches (with the stride 06 passes), masked_softmax, fuse_scores and notebook 05's
    reconstruct as the solution editions write them, must pass notebook 06's check."""
    ns: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom course_lib.ops import pad_same", ns)
    own = {"04_softmax_attention": ("def valid_patches(", "def masked_softmax(", "def fuse_scores("),
           "05_deconv_reconstruction": ("def reconstruct(",)}
    for stem, starts in own.items():
        sources = [s for s in _solution_code_cells(stem) if s.startswith(starts)]
        assert len(sources) == len(starts), f"{stem}: expected the cells {starts}"
        for source in sources:
            exec(source, ns)
    ns.update(extract_patches=A.extract_patches, normalize_patches=A.normalize_patches,
              matching_scores=A.matching_scores, downsample=A.downsample, attention_offsets=A.attention_offsets,
              flow_to_color=flow_to_color)
    layer = [s for s in _solution_code_cells("06_contextual_attention") if s.startswith("def contextual_attention(")]
    assert len(layer) == 1
    exec(layer[0], ns)
    for name in ("valid_patches", "masked_softmax", "fuse_scores", "reconstruct"):
        assert ns[name].__module__ != A.__name__, f"{name} should be the notebook's own function"
    assert check("contextual_attention", ns["contextual_attention"]) is ns["contextual_attention"]
    assert "[ok] contextual_attention" in capsys.readouterr().out
