"""Checks for the contextual-attention exercises (notebooks 03-06, lessons 03-06).

Each check feeds the student's function small seeded inputs (non-square maps, several
images, a patch of norm 0, a hole that touches the border, a row whose patches are all
invalid ...) and compares the result with :mod:`course_lib.attention`. When the result is
wrong, the check also runs the planted mistakes on the same input: if one of them gives
the student's answer, the hint names that mistake; otherwise a generic hint is given.

Planted mistakes are registered with each exercise (``mistakes={"phrase": wrong_fn}``);
the test suite feeds each one to its check and expects a failure whose message contains
the phrase (nbgrader's ``--invert`` idea). The phrase is always part of the hint.

Exercises: ``extract_patches``, ``normalize_patches``, ``matching_scores`` (notebook 03);
``valid_patches``, ``masked_softmax``, ``fuse_scores`` (notebook 04); ``reconstruct``
(notebook 05); ``contextual_attention`` (notebook 06).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from course_lib import attention as A
from course_lib.flow import flow_to_color
from course_lib.ops import pad_same
from course_lib.seed import make_generator

from . import call, expect_tensor, fail, register

__all__ = ["MISTAKE_HINTS"]

NB03 = "03_patch_matching.ipynb"
NB04 = "04_softmax_attention.ipynb"
NB05 = "05_deconv_reconstruction.ipynb"
NB06 = "06_contextual_attention.ipynb"

# exercise -> mistake phrase -> the full hint (which contains the phrase)
MISTAKE_HINTS: dict[str, dict[str, str]] = {}


def _hints(name: str, hints: dict[str, str]) -> dict[str, str]:
    for phrase, text in hints.items():
        assert phrase.lower() in text.lower(), f"hint for {phrase!r} must contain the phrase"
    MISTAKE_HINTS[name] = hints
    return hints


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen)


def _compare(name: str, fn: Callable[..., Any], args: tuple, kwargs: dict, expected: torch.Tensor,
             mistakes: dict[str, Callable[..., Any]], generic: str, what: str = "the result",
             atol: float = 1e-4, rtol: float = 1e-4, allow_nonfinite: bool = False) -> torch.Tensor:
    """Run ``fn(*args, **kwargs)``; on a mismatch, name the planted mistake that gives the same."""
    actual = call(name, fn, *args, **kwargs)
    if not isinstance(actual, torch.Tensor):
        fail(name, f"{what} is a {type(actual).__name__}, expected a torch.Tensor",
             "return a torch tensor (not a list or a NumPy array)")
    if not actual.is_floating_point():
        fail(name, f"{what} has dtype {actual.dtype}, expected a floating-point tensor",
             "convert with .float() (a comparison gives a bool tensor, integer division truncates)")
    if tuple(actual.shape) == tuple(expected.shape) and \
            torch.allclose(actual.to(expected.dtype), expected, atol=atol, rtol=rtol):
        return actual
    # Wrong: find the mistake that explains it (evaluated on the same input).
    for phrase, wrong in mistakes.items():
        try:
            guess = wrong(*args, **kwargs)
        except Exception:
            continue
        if isinstance(guess, tuple):
            guess = guess[0]
        if tuple(guess.shape) == tuple(actual.shape) and \
                torch.allclose(actual.to(guess.dtype), guess, atol=atol, rtol=rtol, equal_nan=True):
            fail(name, _problem(actual, expected, what), MISTAKE_HINTS[name][phrase])
    if not allow_nonfinite and not torch.isfinite(actual).all():
        fail(name, f"{what} contains NaN or inf", generic)
    fail(name, _problem(actual, expected, what), generic)


def _problem(actual: torch.Tensor, expected: torch.Tensor, what: str) -> str:
    if tuple(actual.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    diff = (actual.to(expected.dtype) - expected).abs()
    diff = torch.nan_to_num(diff, nan=float("inf"))
    where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
    return (f"{what} differs from course_lib's by up to {diff.max().item():.3g} "
            f"(largest at index {where})")


# ====================================================================== notebook 03

# ---------------------------------------------------------------- extract_patches

def _patches_valid_padding(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    B, C = x.shape[:2]
    cols = F.unfold(x, kernel, stride=stride)  # (B, C*k*k, L) without any padding
    return cols.view(B, C, kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_symmetric_padding(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    B, C = x.shape[:2]
    cols = F.unfold(x, kernel, stride=stride, padding=kernel // 2)  # PyTorch's symmetric pad
    return cols.view(B, C, kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_view_not_permute(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    B, C = x.shape[:2]
    cols = F.unfold(pad_same(x, kernel, stride), kernel, stride=stride)  # (B, C*k*k, L)
    return cols.view(B, -1, C, kernel, kernel)  # wrong: L is the LAST axis of unfold


def _patches_channels_last(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    return A.extract_patches(x, kernel, stride).permute(0, 1, 3, 4, 2)  # TF's (k, k, C) order


_hints("extract_patches", {
    "'SAME' padding": "no 'SAME' padding: without padding you get fewer patches than positions. "
                      "Pad first with course_lib.ops.pad_same(x, kernel, stride), then unfold",
    "off-by-one padding": "off-by-one padding: PyTorch's symmetric padding=kernel//2 is not TF "
                          "'SAME' for a stride-2 conv on an even size (TF puts the extra pixel at "
                          "the bottom/right). Use course_lib.ops.pad_same(x, kernel, stride)",
    "permute": "the axes are scrambled: F.unfold returns (B, C*k*k, L) with L LAST; "
               ".view(B, C, k, k, L) and then permute L to dim 1 (a .view alone cannot move an axis)",
    "(C, k, k) order": "each patch must be in (C, k, k) order, channels first (PyTorch); "
                       "you returned TF's (k, k, C) order",
})


@register("extract_patches", reference=A.extract_patches, notebook=NB03,
          hint="extract_patches(x, kernel, stride) -> (B, L, C, k, k), TF 'SAME' zero padding",
          mistakes={"'SAME' padding": _patches_valid_padding,
                    "off-by-one padding": _patches_symmetric_padding,
                    "permute": _patches_view_not_permute,
                    "(C, k, k) order": _patches_channels_last})
def _check_extract_patches(fn: Callable[..., Any]) -> None:
    """extract_patches(x, kernel, stride) -> (B, L, C, k, k), TF 'SAME' zero padding."""
    gen = make_generator(3)
    mistakes = dict(zip(MISTAKE_HINTS["extract_patches"],
                        (_patches_valid_padding, _patches_symmetric_padding,
                         _patches_view_not_permute, _patches_channels_last)))
    x = torch.arange(2 * 6 * 8, dtype=torch.float32).view(1, 2, 6, 8) + 1.0  # (1, 2, 6, 8)
    out = _compare("extract_patches", fn, (x, 3, 1), {}, A.extract_patches(x, 3, 1), mistakes,
                   "patch l is centred at row l // W, column l % W; check the zero padding "
                   "and the (B, L, C, k, k) order", what="extract_patches(x, 3, 1) on a 1x2x6x8 ramp")
    if out[0, 0, 0, 0, 0] != 0:
        fail("extract_patches", "the top-left patch does not start with a zero",
             "'SAME' pads with zeros: the first 3x3 patch of a 6x8 map has a zero top row and left column")
    for kernel, stride, shape in ((3, 2, (2, 3, 6, 8)), (4, 2, (2, 3, 8, 6)), (3, 1, (2, 4, 5, 7))):
        x = _randn(gen, *shape)
        _compare("extract_patches", fn, (x, kernel, stride), {}, A.extract_patches(x, kernel, stride),
                 mistakes, "compare your patch l with x[..., rows, cols] around row (l // W_out) * stride "
                 "by hand; remember TF 'SAME' padding puts any odd pixel at the bottom/right",
                 what=f"extract_patches(x, {kernel}, {stride}) for x of shape {shape}")


# ---------------------------------------------------------------- normalize_patches

def _normalize_eps_added(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return w / (w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt() + eps)


def _normalize_per_channel(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return w / w.pow(2).sum(dim=(3, 4), keepdim=True).sqrt().clamp(min=eps)


def _normalize_no_floor(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return w / w.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt()


def _normalize_tiny_eps(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return F.normalize(w.flatten(2), dim=2).view_as(w)  # F.normalize's eps is 1e-12


def _normalize_squared(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return w / w.pow(2).sum(dim=(2, 3, 4), keepdim=True).clamp(min=eps)


_hints("normalize_patches", {
    "not added": "the floor is a max, not added: divide by max(norm, eps) "
                 "(norm.clamp(min=eps)), not by norm + eps",
    "wrong axis": "wrong axis: the norm is over the whole patch, dims (C, k, k) = (2, 3, 4), "
                  "one number per patch, not one per channel",
    "floor": "the floor on the norm is eps = 1e-4 (the release's value, and use the eps argument): "
             "a patch whose norm is below eps is divided by eps, not scaled to unit length",
    "square root": "missing square root: the L2 norm is sqrt(sum(w**2)) over (C, k, k)",
    "zero patch": "clamp the norm: divide by norm.clamp(min=eps), so that a zero patch stays "
                  "zero instead of becoming NaN (0 / 0)",
})

_NORMALIZE_MISTAKES = {"not added": _normalize_eps_added, "wrong axis": _normalize_per_channel,
                       "floor": _normalize_tiny_eps, "square root": _normalize_squared,
                       "zero patch": _normalize_no_floor}


@register("normalize_patches", reference=A.normalize_patches, notebook=NB03,
          hint="normalize_patches(w, eps=1e-4) -> w / max(||w||_2 over (C, k, k), eps)",
          mistakes=_NORMALIZE_MISTAKES)
def _check_normalize_patches(fn: Callable[..., Any]) -> None:
    """normalize_patches(w, eps=1e-4) -> w / max(||w||_2 over (C, k, k), eps)."""
    name = "normalize_patches"
    gen = make_generator(4)
    w = _randn(gen, 2, 5, 3, 3, 3)  # (B, L, C, k, k)
    w[0, 1] = 0.0  # an all-zero patch (zero padding, black region)
    w[0, 2] *= 5e-4 / w[0, 2].norm()  # norm between eps and a few eps
    w[1, 3] *= 1e-5 / w[1, 3].norm()  # norm below the floor
    zero = call(name, fn, w[:1, 1:2].clone())
    zero = expect_tensor(name, zero, shape=(1, 1, 3, 3, 3), what="the result for an all-zero patch",
                         hint="keep the shape (B, L, C, k, k): divide by a norm computed with keepdim=True")
    if not torch.isfinite(zero).all() or zero.abs().max() > 0:
        fail(name, "an all-zero patch did not stay all zero", MISTAKE_HINTS[name]["zero patch"])
    mistakes = _NORMALIZE_MISTAKES
    _compare(name, fn, (w,), {}, A.normalize_patches(w), mistakes,
             "divide each patch by max(sqrt(sum of its squares over (C, k, k)), eps)",
             what="normalize_patches(w)", rtol=1e-4, atol=1e-6)
    _compare(name, fn, (w,), {"eps": 1e-2}, A.normalize_patches(w, eps=1e-2), mistakes,
             "use the eps argument, do not hard-code 1e-4", what="normalize_patches(w, eps=1e-2)",
             rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- matching_scores

def _scores_valid(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.conv2d(f[i:i + 1], w_normed[i]) for i in range(f.shape[0])])


def _scores_first_image(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    k = w_normed.shape[-1]
    return F.conv2d(pad_same(f, k), w_normed[0])  # every image matched with image 0's patches


def _scores_flipped(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    return A.matching_scores(f, w_normed.flip(-1, -2))


def _scores_true_cosine(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    k = w_normed.shape[-1]
    ones = f.new_ones(1, f.shape[1], k, k)
    f_norm = F.conv2d(pad_same(f.pow(2), k), ones).sqrt().clamp(min=1e-4)  # (B, 1, Hf, Wf)
    return A.matching_scores(f, w_normed) / f_norm


_hints("matching_scores", {
    "'SAME'": "the score map must keep the foreground size: 'SAME' zero padding "
              "(course_lib.ops.pad_same(f, k)) before the convolution",
    "own patches": "each image must be matched against its own patches: loop over the batch "
                   "(conv2d(f[i:i+1], w_normed[i])) or use one grouped conv with groups=B",
    "flip": "do not flip the patches: F.conv2d is already a cross-correlation, i.e. the dot "
            "product <f window, patch> that the paper's similarity needs",
    "foreground": "the release does not normalise the foreground: scores are <f, b/||b||>, "
                  "not a true cosine (lesson 03)",
})


@register("matching_scores", reference=A.matching_scores, notebook=NB03,
          hint="matching_scores(f, w_normed) -> (B, L, Hf, Wf): conv of f with its image's patches, 'SAME'",
          mistakes={"'SAME'": _scores_valid, "own patches": _scores_first_image,
                    "flip": _scores_flipped, "foreground": _scores_true_cosine})
def _check_matching_scores(fn: Callable[..., Any]) -> None:
    """matching_scores(f, w_normed) -> (B, L, Hf, Wf): conv of f with its image's patches, 'SAME'."""
    gen = make_generator(5)
    mistakes = {"'SAME'": _scores_valid, "own patches": _scores_first_image,
                "flip": _scores_flipped, "foreground": _scores_true_cosine}
    for f_shape, b_shape in (((2, 4, 5, 6), (2, 4, 5, 6)), ((1, 3, 6, 4), (1, 3, 3, 5))):
        f = _randn(gen, *f_shape)
        w = A.normalize_patches(A.extract_patches(_randn(gen, *b_shape), 3, 1))  # (B, L, C, 3, 3)
        _compare("matching_scores", fn, (f, w), {}, A.matching_scores(f, w), mistakes,
                 "scores[b, l, y, x] = sum over (C, k, k) of f's window around (y, x) times patch l",
                 what=f"matching_scores for f {f_shape} and patches {tuple(w.shape)}")


# ====================================================================== notebook 04

# ---------------------------------------------------------------- valid_patches

def _valid_centre_only(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    return (1.0 - mask).flatten(1)  # (B, H*W): only the centre pixel counts


def _valid_inverted(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    return 1.0 - A.valid_patches(mask, ksize)


def _valid_half(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    m = A.extract_patches(mask, ksize, 1)  # (B, L, 1, k, k)
    return (m.mean(dim=(2, 3, 4)) < 0.5).float()


_hints("valid_patches", {
    "window": "a patch is valid only if no hole pixel lies anywhere in its k x k window "
              "(mean of the mask over the window == 0), not just at its centre",
    "inverted": "inverted: mm is 1 for the patches you may copy (no hole pixel) and 0 for "
                "patches that touch the hole",
    "exactly 0": "the release keeps a patch only if the mean of the mask over its window is "
                 "exactly 0; a patch that is partly hole is invalid",
})


@register("valid_patches", reference=lambda mask, ksize: A.valid_patches(mask, ksize), notebook=NB04,
          hint="valid_patches(mask, ksize) -> (B, L): 1.0 where the ksize window holds no hole pixel",
          mistakes={"window": _valid_centre_only, "inverted": _valid_inverted,
                    "exactly 0": _valid_half})
def _check_valid_patches(fn: Callable[..., Any]) -> None:
    """valid_patches(mask, ksize) -> (B, L): 1.0 where the ksize window holds no hole pixel."""
    mistakes = {"window": _valid_centre_only, "inverted": _valid_inverted, "exactly 0": _valid_half}
    mask = torch.zeros(2, 1, 6, 7)
    mask[0, :, 1:4, 2:5] = 1.0  # a hole inside
    mask[1, :, 0:2, 4:7] = 1.0  # a hole at the top-right border
    mask[1, :, 5, 0] = 1.0  # one hole pixel in a corner
    for ksize in (3, 5):
        _compare("valid_patches", fn, (mask, ksize), {}, A.valid_patches(mask, ksize), mistakes,
                 "pad the mask with zeros ('SAME'), take the mean over each ksize x ksize window "
                 "and return (mean == 0) as a float, one value per patch in row-major order",
                 what=f"valid_patches(mask, {ksize})", atol=0, rtol=0)


# ---------------------------------------------------------------- masked_softmax

def _softmax_neg_inf(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    mm4 = mm[:, :, None, None]  # (B or 1, L, 1, 1)
    masked = (scores * softmax_scale).masked_fill(mm4 == 0, float("-inf"))
    return F.softmax(masked, dim=1)


def _softmax_unmasked(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return F.softmax(scores * softmax_scale, dim=1)


def _softmax_mask_after_only(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return F.softmax(scores * softmax_scale, dim=1) * mm[:, :, None, None]


def _softmax_mask_before_only(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return F.softmax(scores * mm[:, :, None, None] * softmax_scale, dim=1)


def _softmax_renormalised(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    a = A.masked_softmax(scores, mm, softmax_scale)
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-12)


def _softmax_no_scale(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return A.masked_softmax(scores, mm, 1.0)


def _softmax_wrong_axis(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    mm4 = mm[:, :, None, None]
    return F.softmax(scores * mm4 * softmax_scale, dim=-1) * mm4


_hints("masked_softmax", {
    "-inf": "the release gives invalid patches a score of 0, not -inf, before the softmax: "
            "they still take a share exp(0) of the denominator and the kept weights sum to < 1 "
            "(and -inf makes NaN where every patch is invalid)",
    "unmasked": "unmasked softmax: multiply the scores by mm before the softmax and the "
                "attention by mm after it",
    "before the softmax": "mask the scores before the softmax too (scores * mm): an invalid "
                          "patch must enter the softmax with score 0",
    "after the softmax": "multiply the attention by mm after the softmax too, so that invalid "
                         "patches get weight exactly 0",
    "renormalise": "do not renormalise after masking: the release keeps the weights as they "
                   "are (they sum to less than 1 where invalid patches took a share)",
    "softmax_scale": "multiply the scores by softmax_scale (the inverse temperature, 10 in the "
                     "release) inside the softmax, and use the argument, do not hard-code it",
    "axis": "wrong axis: the softmax runs over the L background patches, dim=1 of (B, L, Hf, Wf)",
})

_SOFTMAX_MISTAKES = {"-inf": _softmax_neg_inf, "unmasked": _softmax_unmasked,
                     "before the softmax": _softmax_mask_after_only,
                     "after the softmax": _softmax_mask_before_only,
                     "renormalise": _softmax_renormalised, "softmax_scale": _softmax_no_scale,
                     "axis": _softmax_wrong_axis}


@register("masked_softmax", reference=A.masked_softmax, notebook=NB04,
          hint="masked_softmax(scores, mm, softmax_scale=10.0): scores*mm, softmax over L of "
               "scores*scale, *mm again",
          mistakes=_SOFTMAX_MISTAKES)
def _check_masked_softmax(fn: Callable[..., Any]) -> None:
    """masked_softmax(scores, mm, softmax_scale=10.0): scores*mm, softmax over L of scores*scale, *mm."""
    name = "masked_softmax"
    gen = make_generator(6)
    scores = 0.3 * _randn(gen, 2, 6, 3, 4)  # (B, L, Hf, Wf)
    mm = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])  # (1, L), shared by the batch
    generic = ("scores * mm, then softmax over dim 1 of (that * softmax_scale), then * mm; "
               "no renormalisation")
    # One image with no valid patch at all: the release gives 0 everywhere, never NaN.
    mm2 = torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6])  # (B, L)
    out = call(name, fn, scores, mm2, softmax_scale=10.0)
    if isinstance(out, torch.Tensor) and out.shape == scores.shape and torch.isnan(out).any():
        fail(name, "NaN where every patch of an image is invalid", MISTAKE_HINTS[name]["-inf"])
    _compare(name, fn, (scores, mm2), {"softmax_scale": 10.0}, A.masked_softmax(scores, mm2, 10.0),
             _SOFTMAX_MISTAKES, generic + " (mm may have one row per image)",
             what="masked_softmax with a per-image mm (image 1 has no valid patch)", atol=1e-6)
    for scale in (10.0, 3.0):
        _compare(name, fn, (scores, mm), {"softmax_scale": scale}, A.masked_softmax(scores, mm, scale),
                 _SOFTMAX_MISTAKES, generic, what=f"masked_softmax(scores, mm, {scale})", atol=1e-6)


# ---------------------------------------------------------------- fuse_scores

def _fuse_row_major_only(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    B, L, Hf, Wf = scores.shape
    y = scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L)  # (B, 1, Hf*Wf, L)
    y = A._identity_conv(y, fuse_k)
    return y.view(B, Hf, Wf, L).permute(0, 3, 1, 2)


def _fuse_column_major_only(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    B, L, Hf, Wf = scores.shape
    y = scores.view(B, Hf, Wf, Hf, Wf).permute(0, 4, 3, 2, 1)  # (B, Wf, Hf, Wb, Hb)
    y = A._identity_conv(y.reshape(B, 1, Wf * Hf, L), fuse_k)  # column-major both axes
    y = y.view(B, Wf, Hf, Wf, Hf).permute(0, 4, 3, 2, 1)  # (B, Hb, Wb, Hf, Wf)
    return y.reshape(B, L, Hf, Wf)


def _fuse_box_kernel(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    B, L, Hf, Wf = scores.shape
    ones = scores.new_ones(1, 1, fuse_k, fuse_k)

    def box(m: torch.Tensor) -> torch.Tensor:
        return F.conv2d(pad_same(m, fuse_k), ones)

    y = box(scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L))
    y = y.view(B, Hf, Wf, Hf, Wf).permute(0, 2, 1, 4, 3).reshape(B, 1, Wf * Hf, L)
    y = box(y).view(B, Wf, Hf, Wf, Hf).permute(0, 2, 1, 4, 3)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)


def _fuse_swap_foreground_only(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    B, L, Hf, Wf = scores.shape
    y = A._identity_conv(scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L), fuse_k)
    y = y.view(B, Hf, Wf, L).permute(0, 2, 1, 3).reshape(B, 1, Wf * Hf, L)  # fg swapped, bg not
    y = A._identity_conv(y, fuse_k).view(B, Wf, Hf, L).permute(0, 2, 1, 3)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)


_hints("fuse_scores", {
    "both orderings": "fuse in both orderings: one identity-kernel conv with both axes in "
                      "row-major order (left-right), then one with both in column-major order "
                      "(top-down), then back to row-major",
    "identity": "the fuse kernel is the fuse_k x fuse_k identity matrix (torch.eye), not a box "
                "of ones: it sums along the diagonal, (p+d, q+d)",
    "both axes": "re-order both axes to column-major: the foreground positions (rows of the "
                 "matrix) AND the background patches (its columns) swap H and W",
    "row-major pass": "the row-major pass is missing: fuse in both orderings, first with both "
                      "axes row-major (left-right), then column-major (top-down)",
})

_FUSE_MISTAKES = {"both orderings": _fuse_row_major_only, "identity": _fuse_box_kernel,
                  "both axes": _fuse_swap_foreground_only, "row-major pass": _fuse_column_major_only}


@register("fuse_scores", reference=lambda scores, fuse_k=3: A.fuse_scores(scores, fuse_k), notebook=NB04,
          hint="fuse_scores(scores, fuse_k=3): identity-kernel conv of the [Hf*Wf, Hb*Wb] matrix, "
               "row-major then column-major",
          mistakes=_FUSE_MISTAKES)
def _check_fuse_scores(fn: Callable[..., Any]) -> None:
    """fuse_scores(scores, fuse_k=3): identity-kernel conv of the score matrix, both orderings."""
    gen = make_generator(7)
    mistakes = _FUSE_MISTAKES
    generic = ("view scores (B, L, Hf, Wf) as the matrix (B, 1, Hf*Wf, L), conv with torch.eye(fuse_k) "
               "('SAME'), swap H and W of both axes, conv again, swap back")
    for shape, fuse_k in (((2, 20, 4, 5), 3), ((1, 12, 3, 4), 3)):
        scores = _randn(gen, *shape)
        _compare("fuse_scores", fn, (scores,), {"fuse_k": fuse_k}, A.fuse_scores(scores, fuse_k),
                 mistakes, generic, what=f"fuse_scores on scores of shape {shape}")


# ====================================================================== notebook 05

def _reconstruct_no_quarter(attention, raw_patches, rate, out_size):
    return A.reconstruct(attention, raw_patches, rate, out_size) * 4.0


def _reconstruct_true_average(attention, raw_patches, rate, out_size):
    B, L, h, w = attention.shape
    k = raw_patches.shape[-1]
    y = A.reconstruct(attention, raw_patches, rate, out_size) * 4.0
    ones = torch.ones(1, L, 1, 1, 1).expand(1, L, 1, k, k)  # patches of ones
    count = A.reconstruct(torch.ones(1, L, h, w) / L, ones.contiguous(), rate, out_size) * 4.0
    return y / count


def _reconstruct_no_crop(attention, raw_patches, rate, out_size):
    B, L, h, w = attention.shape
    C, k = raw_patches.shape[2], raw_patches.shape[-1]
    outs = [F.conv_transpose2d(attention[i:i + 1], raw_patches[i], stride=rate) for i in range(B)]
    return torch.cat(outs)[:, :, :out_size[0], :out_size[1]] / 4.0  # crops at the bottom/right only


def _reconstruct_stride_one(attention, raw_patches, rate, out_size):
    outs = [F.conv_transpose2d(attention[i:i + 1], raw_patches[i], stride=1, padding=1)
            for i in range(attention.shape[0])]
    return torch.cat(outs) / 4.0


_hints("reconstruct", {
    "/4": "missing /4: with 4x4 patches at stride 2 every pixel is covered by 4 patches, so the "
          "release divides the sum by 4",
    "constant 4": "the release divides by the constant 4 everywhere, also on the border where "
                  "fewer patches overlap; do not divide by the true coverage count",
    "off-by-one": "off-by-one crop: TF 'SAME' drops (k - rate) // 2 = 1 row/column at the "
                  "top/left (padding=1 in conv_transpose2d), not at the bottom/right only",
    "stride": "wrong stride: the transposed conv steps by rate (2) in the output, one attention "
              "position per rate x rate pixels",
})

_RECON_MISTAKES = {"/4": _reconstruct_no_quarter, "constant 4": _reconstruct_true_average,
                   "off-by-one": _reconstruct_no_crop, "stride": _reconstruct_stride_one}


@register("reconstruct", reference=A.reconstruct, notebook=NB05,
          hint="reconstruct(attention, raw_patches, rate, out_size): conv_transpose2d with the raw "
               "patches, stride rate, 'SAME' output size, / 4",
          mistakes=_RECON_MISTAKES)
def _check_reconstruct(fn: Callable[..., Any]) -> None:
    """reconstruct(attention, raw_patches, rate, out_size): transposed conv, stride rate, / 4."""
    name = "reconstruct"
    gen = make_generator(8)
    generic = ("F.conv_transpose2d(attention[i:i+1], raw_patches[i], stride=rate, padding=1) per "
               "image i (in = L channels, out = C), then divide by 4")
    # 1. one-hot attention on its own patches: the interior comes back exactly
    x = _randn(gen, 1, 3, 8, 10)
    raw = A.extract_patches(x, 4, 2)  # (1, 20, 3, 4, 4)
    eye = torch.eye(20).view(1, 20, 4, 5)  # position (i, j) attends to its own patch
    out = _compare(name, fn, (eye, raw, 2, (8, 10)), {}, A.reconstruct(eye, raw, 2, (8, 10)),
                   _RECON_MISTAKES, generic, what="reconstruct(one-hot attention, own patches)")
    if not torch.allclose(out[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-5):
        fail(name, "pasting an image's own patches does not give the image back inside",
             generic)
    # 2. soft attention, two images, non-square
    for shape in ((2, 3, 8, 6), (1, 2, 6, 8)):
        b = _randn(gen, *shape)
        raw = A.extract_patches(b, 4, 2)  # (B, L, C, 4, 4)
        L, h, w = raw.shape[1], shape[2] // 2, shape[3] // 2
        attention = F.softmax(_randn(gen, shape[0], L, h, w), dim=1)
        _compare(name, fn, (attention, raw, 2, shape[2:]), {},
                 A.reconstruct(attention, raw, 2, shape[2:]), _RECON_MISTAKES, generic,
                 what=f"reconstruct for a background of shape {shape}")


# ====================================================================== notebook 06

def _layer_with(downsample: Optional[Callable] = None, skip_fuse: bool = False,
                ignore_mask: bool = False) -> Callable[..., Any]:
    """A contextual attention layer with one planted mistake (built from course_lib's steps)."""

    def layer(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
        do_fuse = fuse and not skip_fuse
        down = downsample or A.downsample
        H, W = f.shape[-2:]
        raw = A.extract_patches(b, 2 * rate, rate * stride)  # (B, L, C, 2r, 2r)
        f_s, b_s = down(f, rate), down(b, rate)  # (B, C, H/r, W/r)
        if mask is None or ignore_mask:
            mm = b_s.new_ones(1, b_s.shape[-2] * b_s.shape[-1])  # (1, L)
        else:
            mm = A.valid_patches(down(mask.to(b.dtype), rate), ksize, stride)  # (1 or B, L)
        scores = A.matching_scores(f_s, A.normalize_patches(A.extract_patches(b_s, ksize, stride)))
        if do_fuse:
            scores = A.fuse_scores(scores, fuse_k)
        att = A.masked_softmax(scores, mm, softmax_scale)  # (B, L, h, w)
        y = A.reconstruct(att, raw, rate, (H, W))  # (B, C, H, W)
        flow = flow_to_color(A.attention_offsets(att, f_s.shape[-1]))
        return y, F.interpolate(flow, size=(H, W), mode="bilinear", align_corners=True)

    return layer


def _slice_downsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    return x[..., ::rate, ::rate]


_layer_no_fuse = _layer_with(skip_fuse=True)
_layer_sliced = _layer_with(downsample=_slice_downsample)
_layer_no_mask = _layer_with(ignore_mask=True)

_hints("contextual_attention", {
    "align_corners": "downsample with the release's nearest resize (align_corners=True): "
                     "course_lib.attention.downsample / ops.resize_nearest, not x[..., ::2, ::2]",
    "fuse": "the fuse step is missing: fuse the scores (fuse_scores) before the masked softmax "
            "when fuse=True",
    "mask": "the mask is ignored: downsample it like f and b, compute mm = valid_patches(mask_small, "
            "ksize) and pass mm to masked_softmax",
})

_LAYER_MISTAKES = {"align_corners": _layer_sliced, "fuse": _layer_no_fuse, "mask": _layer_no_mask}


def _layer_reference(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
    return A.contextual_attention(f, b, mask, ksize=ksize, stride=stride, rate=rate, fuse_k=fuse_k,
                                  softmax_scale=softmax_scale, fuse=fuse)


@register("contextual_attention", reference=_layer_reference, notebook=NB06,
          hint="contextual_attention(f, b, mask) -> (y, flow), assembled from the steps of notebooks 03-05",
          mistakes=_LAYER_MISTAKES)
def _check_contextual_attention(fn: Callable[..., Any]) -> None:
    """contextual_attention(f, b, mask) -> (y, flow), assembled from the steps of notebooks 03-05."""
    name = "contextual_attention"
    gen = make_generator(9)
    generic = ("follow the release's order: raw 4x4 patches of b (stride 2); downsample f, b, "
               "mask; 3x3 patches of small b; mm; normalise; scores; fuse; masked softmax; "
               "reconstruct")
    f = _randn(gen, 1, 4, 16, 12)
    mask = torch.zeros(1, 1, 16, 12)
    mask[..., 4:10, 3:9] = 1.0
    out = call(name, fn, f, f, mask)
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(name, f"it returned {type(out).__name__}, expected a pair (y, flow)",
             "return y, flow where flow = flow_to_color(attention_offsets(attention, w_small))")
    y_ref, flow_ref = A.contextual_attention(f, f, mask)
    expect_tensor(name, out[0], shape=tuple(y_ref.shape), what="y",
                      hint="y has the shape of f: reconstruct with out_size = f.shape[-2:]")
    expect_tensor(name, out[1], shape=tuple(flow_ref.shape), what="flow",
                  hint="upsample the flow picture to f's size (x rate)")
    _compare(name, lambda *a, **k: fn(*a, **k)[0], (f, f, mask), {}, y_ref, _LAYER_MISTAKES, generic,
             what="y for f = b and a 6x6 hole", atol=1e-4)
    b = _randn(gen, 2, 3, 8, 8)
    mask2 = torch.zeros(1, 1, 8, 8)
    mask2[..., 2:6, 2:6] = 1.0
    _compare(name, lambda *a, **k: fn(*a, **k)[0], (b, b, mask2), {"softmax_scale": 3.0},
             A.contextual_attention(b, b, mask2, softmax_scale=3.0)[0], _LAYER_MISTAKES,
             generic + "; pass softmax_scale on", what="y for two images with softmax_scale=3", atol=1e-4)
