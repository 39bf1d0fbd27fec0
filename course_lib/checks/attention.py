"""Checks for the contextual-attention exercises (notebooks 03-06, lessons 03-06).

Each check feeds the student's function small seeded inputs (non-square maps, several
images, a patch of norm 0, a hole that touches the border, a row whose patches are all
invalid ...) and compares the result with :mod:`course_lib.attention`. When the result is
wrong, the check also runs the planted mistakes on the same input: if one of them gives
the student's answer, the hint names that mistake; otherwise a generic hint is given.

Planted mistakes are registered with each exercise (``mistakes={"phrase": wrong_fn}``);
the test suite feeds each one to its check and expects a failure whose message contains
the phrase (nbgrader's ``--invert`` idea). The phrase is always part of the hint.

Exercises: ``extract_patches``, ``normalize_patches``, ``matching_scores`` and the open variant
``cosine_scores`` (notebook 03); ``valid_patches``, ``masked_softmax``, ``masked_softmax_neg_inf``
(an open variant), ``fuse_scores`` (notebook 04); ``reconstruct`` (notebook 05);
``contextual_attention`` (notebook 06).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from course_lib import attention as A
from course_lib.flow import flow_to_color
from course_lib.ops import pad_same
from course_lib.seed import make_generator

from . import (Case, _clone_args, call, compare_cases, expect_gradient, expect_tensor, fail,
               register)

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


def _variants(name: str, mistakes: dict[str, Callable[..., Any]]) -> Callable[[Case], dict[str, Any]]:
    """``case -> {full hint: output}`` of the planted ``mistakes`` (each on its own copies)."""
    def only(case: Case, hints: Any = None) -> dict[str, Any]:
        outs: dict[str, Any] = {}
        for phrase, wrong in mistakes.items():
            if hints is not None and MISTAKE_HINTS[name][phrase] not in hints:
                continue
            try:
                out = wrong(*_clone_args(case.args), **_clone_args(case.kwargs))
            except Exception:
                continue
            outs[MISTAKE_HINTS[name][phrase]] = out[0] if isinstance(out, tuple) else out
        return outs

    def run(case: Case) -> dict[str, Any]:
        return only(case)
    run.only = only  # type: ignore[attr-defined]  # consistent_variants runs only the candidates
    return run


def _run(name: str, fn: Callable[..., Any], reference: Callable[..., Any], cases: list[Case],
         mistakes: dict[str, Callable[..., Any]], generic: str, atol: float = 1e-4, rtol: float = 1e-4,
         select: Callable[[Any], Any] = lambda out: out) -> list[Any]:
    return compare_cases(name, fn, reference, cases, generic, variants=_variants(name, mistakes),
                         atol=atol, rtol=rtol, select=select)


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


def _patches_ignore_stride(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    return A.extract_patches(x, kernel, 1)  # the stride argument is ignored


def _patches_replicate_padding(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    B, C, H, W = x.shape
    padded = pad_same(torch.ones(1, 1, H, W, dtype=x.dtype), kernel, stride)
    sizes = (padded.shape[-2] - H, padded.shape[-1] - W)
    top, left = sizes[0] // 2, sizes[1] // 2
    xp = F.pad(x, (left, sizes[1] - left, top, sizes[0] - top), mode="replicate")
    cols = F.unfold(xp, kernel, stride=stride)  # (B, C*k*k, L)
    return cols.view(B, C, kernel, kernel, -1).permute(0, 4, 1, 2, 3)


def _patches_half_padding(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
    B, C = x.shape[:2]
    cols = F.unfold(x, kernel, stride=stride, padding=(kernel - 1) // 2)  # symmetric, rounded down
    return cols.view(B, C, kernel, kernel, -1).permute(0, 4, 1, 2, 3)


_hints("extract_patches", {
    "k - 1 in total": "for an even kernel (or a stride that does not divide the size) TF 'SAME' pads more "
                      "than a symmetric padding=(k - 1) // 2 gives (k - 1 in total for stride 1, "
                      "(out - 1) * stride + k - H in general), half (rounded down) at the top/left, the rest "
                      "at the bottom/right. Use course_lib.ops.pad_same(x, kernel, stride)",
    "'SAME' padding": "no 'SAME' padding: without padding you get fewer patches than positions. "
                      "Pad first with course_lib.ops.pad_same(x, kernel, stride), then unfold",
    "off-by-one padding": "off-by-one padding: PyTorch's symmetric padding=kernel//2 is not TF "
                          "'SAME' for a stride-2 conv on an even size (TF puts the extra pixel at "
                          "the bottom/right). Use course_lib.ops.pad_same(x, kernel, stride)",
    "permute": "the axes are scrambled: F.unfold returns (B, C*k*k, L) with L LAST; "
               ".view(B, C, k, k, L) and then permute L to dim 1 (a .view alone cannot move an axis)",
    "(C, k, k) order": "each patch must be in (C, k, k) order, channels first (PyTorch); "
                       "you returned TF's (k, k, C) order",
    "stride": "use the stride argument: patch l starts stride * (l // W_out) rows down, and there "
              "are ceil(H / stride) * ceil(W / stride) patches",
    "zeros": "TF 'SAME' pads with zeros, not with copies of the border pixels: use "
             "course_lib.ops.pad_same (or F.pad with value 0)",
})


@register("extract_patches", reference=A.extract_patches, notebook=NB03,
          hint="extract_patches(x, kernel, stride) -> (B, L, C, k, k), TF 'SAME' zero padding",
          mistakes={"'SAME' padding": _patches_valid_padding,
                    "off-by-one padding": _patches_symmetric_padding,
                    "permute": _patches_view_not_permute,
                    "(C, k, k) order": _patches_channels_last,
                    "stride": _patches_ignore_stride, "zeros": _patches_replicate_padding,
                    "k - 1 in total": _patches_half_padding})
def _check_extract_patches(fn: Callable[..., Any]) -> None:
    """extract_patches(x, kernel, stride) -> (B, L, C, k, k), TF 'SAME' zero padding."""
    name = "extract_patches"
    gen = make_generator(3)
    mistakes = {"'SAME' padding": _patches_valid_padding, "off-by-one padding": _patches_symmetric_padding,
                "permute": _patches_view_not_permute, "(C, k, k) order": _patches_channels_last,
                "stride": _patches_ignore_stride, "zeros": _patches_replicate_padding,
                "k - 1 in total": _patches_half_padding}
    x = torch.arange(2 * 6 * 8, dtype=torch.float32).view(1, 2, 6, 8) + 1.0  # (1, 2, 6, 8)
    ramp = Case((x, 3, 1), {}, "extract_patches(x, 3, 1) on a 1x2x6x8 ramp")
    out = _run(name, fn, A.extract_patches, [ramp], mistakes,
               "patch l is centred at row l // W, column l % W; check the zero padding and the "
               "(B, L, C, k, k) order")[0]
    if out[0, 0, 0, 0, 0] != 0:
        fail(name, "the top-left patch does not start with a zero",
             "'SAME' pads with zeros: the first 3x3 patch of a 6x8 map has a zero top row and left column")
    cases = [Case((x[:, :1, :3, :3] + 1.0, 2, 1), {}, "extract_patches(x, 2, 1) for x of shape (1, 1, 3, 3)")]
    for kernel, stride, shape in ((3, 2, (2, 3, 6, 8)), (4, 2, (2, 3, 8, 6)), (3, 1, (2, 4, 5, 7)),
                                  (2, 1, (1, 2, 5, 3)), (3, 3, (3, 1, 7, 5))):
        cases.append(Case((_randn(gen, *shape) + 0.5, kernel, stride), {},
                          f"extract_patches(x, {kernel}, {stride}) for x of shape {shape}"))
    _run(name, fn, A.extract_patches, cases, mistakes,
         "compare your patch l with x[..., rows, cols] around row (l // W_out) * stride by hand; "
         "remember TF 'SAME' padding puts any odd pixel at the bottom/right")
    default = Case((cases[3].args[0],), {}, "extract_patches(x, 3) with the default stride")
    compare_cases(name, lambda x: fn(x, 3), lambda x: A.extract_patches(x, 3), [default],
                  "the default stride is 1: def extract_patches(x, kernel, stride=1)")
    expect_gradient(name, fn, A.extract_patches, cases[2], wrt=(0,))


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


def _normalize_fixed_eps(w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return A.normalize_patches(w, 1e-4)  # the eps argument is ignored


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
    "eps argument": "use the eps argument (norm.clamp(min=eps)), do not hard-code 1e-4",
})

_NORMALIZE_MISTAKES = {"not added": _normalize_eps_added, "wrong axis": _normalize_per_channel,
                       "floor": _normalize_tiny_eps, "square root": _normalize_squared,
                       "zero patch": _normalize_no_floor, "eps argument": _normalize_fixed_eps}


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
                         hint="keep the shape (B, L, C, k, k): divide by a norm computed with keepdim=True",
                         dtype=torch.float32, finite=False)
    if not torch.isfinite(zero).all():
        fail(name, "an all-zero patch became NaN or inf", MISTAKE_HINTS[name]["zero patch"])
    generic = "divide each patch by max(sqrt(sum of its squares over (C, k, k)), eps)"
    cases = [Case((w,), {}, "normalize_patches(w)"),
             Case((w,), {"eps": 1e-2}, "normalize_patches(w, eps=1e-2)"),
             Case((_randn(gen, 1, 3, 2, 4, 4) * 0.02,), {"eps": 0.05}, "normalize_patches(w, eps=0.05) for 4x4 patches"),
             Case((w[1:, 3:4, :1, :2, :2] * 1e3,), {}, "normalize_patches on one 1x2x2 patch")]
    _run(name, fn, A.normalize_patches, cases, _NORMALIZE_MISTAKES, generic, atol=1e-6)
    smooth = w.clone()
    smooth[0, 1] = 1e-3 * _randn(gen, 3, 3, 3)  # no exact zero
    expect_gradient(name, fn, A.normalize_patches, Case((smooth,), {}, "normalize_patches(w)"), wrt=(0,),
                    atol=1e-4, rtol=1e-4)
    # w itself holds an all-zero patch (zero padding, a blanked hole): course_lib's gradient is finite
    # there (zero), and one NaN would spread to every weight through the batch's shared conv weights.
    expect_gradient(name, fn, A.normalize_patches, Case((w,), {}, "normalize_patches(w) with an all-zero patch"),
                    wrt=(0,), atol=1e-4, rtol=1e-4,
                    hint="the gradient differs on the patches whose norm is at or below eps: divide by "
                         "norm.clamp(min=eps), so that such a patch's gradient is 1 / eps",
                    nan_hint="the gradient is NaN on an all-zero patch: sqrt(sum(w ** 2)) has an infinite "
                             "derivative at 0, and 0 * inf = NaN. Use w.flatten(2).norm(dim=2) (or "
                             "torch.linalg.vector_norm), whose gradient at 0 is 0, or take the root only "
                             "where the sum is positive (torch.where)")


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


def _scores_symmetric(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    k = w_normed.shape[-1]
    return torch.cat([F.conv2d(f[i:i + 1], w_normed[i], padding=k // 2) for i in range(f.shape[0])])


def _scores_transposed_conv(f: torch.Tensor, w_normed: torch.Tensor) -> torch.Tensor:
    k = w_normed.shape[-1]
    return torch.cat([F.conv_transpose2d(f[i:i + 1], w_normed[i].transpose(0, 1), padding=k // 2)
                      for i in range(f.shape[0])])


_hints("matching_scores", {
    "transposed convolution": "a transposed convolution flips the patches (and pads symmetrically): use "
                              "F.conv2d, a cross-correlation, and do not flip; pad with pad_same(f, k)",
    "'SAME'": "the score map must keep the foreground size: 'SAME' zero padding "
              "(course_lib.ops.pad_same(f, k)) before the convolution",
    "own patches": "each image must be matched against its own patches: loop over the batch "
                   "(conv2d(f[i:i+1], w_normed[i])) or use one grouped conv with groups=B",
    "flip": "do not flip the patches: F.conv2d is already a cross-correlation, i.e. the dot "
            "product <f window, patch> that the paper's similarity needs",
    "foreground": "the release does not normalise the foreground: scores are <f, b/||b||>, "
                  "not a true cosine (lesson 03)",
    "even": "padding=k // 2 is TF 'SAME' only for an odd k: for an even patch size the extra row and "
            "column go at the bottom/right, so pad with course_lib.ops.pad_same(f, k)",
})


@register("matching_scores", reference=A.matching_scores, notebook=NB03,
          hint="matching_scores(f, w_normed) -> (B, L, Hf, Wf): conv of f with its image's patches, 'SAME'",
          mistakes={"'SAME'": _scores_valid, "own patches": _scores_first_image,
                    "flip": _scores_flipped, "foreground": _scores_true_cosine, "even": _scores_symmetric,
                    "transposed convolution": _scores_transposed_conv})
def _check_matching_scores(fn: Callable[..., Any]) -> None:
    """matching_scores(f, w_normed) -> (B, L, Hf, Wf): conv of f with its image's patches, 'SAME'."""
    name = "matching_scores"
    gen = make_generator(5)
    mistakes = {"'SAME'": _scores_valid, "own patches": _scores_first_image,
                "flip": _scores_flipped, "foreground": _scores_true_cosine, "even": _scores_symmetric,
                "transposed convolution": _scores_transposed_conv}
    cases = []
    for f_shape, b_shape, k in (((2, 4, 5, 6), (2, 4, 5, 6), 3), ((1, 3, 6, 4), (1, 3, 3, 5), 3),
                                ((3, 2, 5, 7), (3, 2, 4, 4), 3), ((1, 2, 5, 7), (1, 2, 6, 5), 4),
                                ((1, 1, 3, 3), (1, 1, 2, 2), 2)):
        f = _randn(gen, *f_shape)
        w = A.normalize_patches(A.extract_patches(_randn(gen, *b_shape), k, 1))  # (B, L, C, k, k)
        cases.append(Case((f, w), {}, f"matching_scores for f {f_shape} and patches {tuple(w.shape)}"))
    _run(name, fn, A.matching_scores, cases, mistakes,
         "scores[b, l, y, x] = sum over (C, k, k) of f's window around (y, x) times patch l")
    expect_gradient(name, fn, A.matching_scores, cases[0], wrt=(0, 1))


# ---------------------------------------------------------------- cosine_scores (the open variant)

def _window_norms(f: torch.Tensor, k: int, pad: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """||f's k x k window|| at every position, (B, 1, Hf, Wf), with the padding ``pad``."""
    return F.conv2d(pad(f * f, k), f.new_ones(1, f.shape[1], k, k)).clamp(min=0).sqrt()


def _cos_patches_only(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return A.matching_scores(f, A.normalize_patches(w, eps))  # the release's score


def _cos_whole_map(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    f_unit = f / f.flatten(1).norm(dim=1).clamp(min=eps)[:, None, None, None]
    return A.matching_scores(f_unit, A.normalize_patches(w, eps))


def _cos_one_pixel(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    f_unit = f / f.norm(dim=1, keepdim=True).clamp(min=eps)  # each pixel's C channels only
    return A.matching_scores(f_unit, A.normalize_patches(w, eps))


def _cos_raw_patches(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return A.matching_scores(f, w) / _window_norms(f, w.shape[-1], pad_same).clamp(min=eps)


def _cos_no_root(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return _cos_patches_only(f, w, eps) / _window_norms(f, w.shape[-1], pad_same).pow(2).clamp(min=eps)


def _cos_symmetric(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    k = w.shape[-1]
    norms = F.conv2d(f * f, f.new_ones(1, f.shape[1], k, k), padding=k // 2).sqrt()
    return _cos_patches_only(f, w, eps) / norms[..., :f.shape[-2], :f.shape[-1]].clamp(min=eps)


def _cos_added(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    w_unit = w / (w.flatten(2).norm(dim=2)[:, :, None, None, None] + eps)
    return A.matching_scores(f, w_unit) / (_window_norms(f, w.shape[-1], pad_same) + eps)


def _cos_no_floor(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return _cos_patches_only(f, w, eps) / _window_norms(f, w.shape[-1], pad_same)


def _cos_fixed_eps(f: torch.Tensor, w: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return A.cosine_scores(f, w, 1e-4)  # the eps argument is ignored


_hints("cosine_scores", {
    "patches only": "you normalised the patches only (the release's score, ||f|| times the cosine): divide each "
                    "score by the norm of f's k x k window at (y, x) too, floored at eps",
    "whole map": "normalise each k x k window of f on its own, not the whole map at once: every "
                 "position (y, x) has its own norm",
    "one pixel": "the window's norm runs over all C*k*k numbers of f's k x k window around (y, x), not over "
                 "the C channels of one pixel",
    "as well": "normalise the patches as well: divide each patch w_l by max(||w_l||, eps) (normalize_patches), "
               "not only f's windows",
    "square root": "missing square root: a window's L2 norm is sqrt(sum of its squares over (C, k, k))",
    "even": "the window norms must sit where the scores sit: compute them with the same 'SAME' padding "
            "(pad_same(f * f, k)); for an even k padding=k // 2 puts the extra row and column on the wrong side",
    "not added": "the floor is a max, not added: divide by max(norm, eps) for the windows and the patches, "
                 "not by norm + eps",
    "zero window": "a zero window (all zeros, inside the blanked hole) gives 0 / 0 = NaN: floor its norm, "
                   "max(norm, eps), so that its scores are 0",
    "eps argument": "use the eps argument for both floors (max(norm, eps)), do not hard-code 1e-4",
})

_COSINE_MISTAKES = {"patches only": _cos_patches_only, "whole map": _cos_whole_map, "one pixel": _cos_one_pixel,
                    "as well": _cos_raw_patches, "square root": _cos_no_root, "even": _cos_symmetric,
                    "not added": _cos_added, "zero window": _cos_no_floor, "eps argument": _cos_fixed_eps}


@register("cosine_scores", reference=A.cosine_scores, notebook=NB03,
          hint="cosine_scores(f, w, eps=1e-4) -> (B, L, Hf, Wf): the true cosine of each window of f and each patch",
          mistakes=_COSINE_MISTAKES)
def _check_cosine_scores(fn: Callable[..., Any]) -> None:
    """cosine_scores(f, w, eps=1e-4) -> (B, L, Hf, Wf): the true cosine of each window of f and each patch."""
    name = "cosine_scores"
    gen = make_generator(6)
    cases = []
    for f_shape, b_shape, k in (((2, 4, 5, 6), (2, 4, 5, 6), 3), ((3, 2, 5, 7), (3, 2, 4, 4), 3),
                                ((1, 2, 5, 7), (1, 2, 6, 5), 4), ((1, 1, 3, 3), (1, 1, 2, 2), 2)):
        f = _randn(gen, *f_shape) * (0.5 + 3 * torch.rand(f_shape[0], 1, 1, 1, generator=gen))  # one scale per image
        w = A.extract_patches(_randn(gen, *b_shape), k, 1)  # (B, L, C, k, k), raw
        w = w * (0.3 + 3 * torch.rand(*w.shape[:2], 1, 1, 1, generator=gen))  # one norm per patch
        cases.append(Case((f, w), {}, f"cosine_scores for f {f_shape} and patches {tuple(w.shape)}"))
    holed = _randn(gen, 1, 3, 8, 7)
    holed[..., 2:6, 2:6] = 0.0  # a blanked hole: the windows around (3, 3) .. (4, 4) are all zeros
    w_holed = A.extract_patches(_randn(gen, 1, 3, 5, 5), 3, 1)  # (1, 25, 3, 3, 3)
    zero = call(name, fn, holed.clone(), w_holed.clone())
    zero = expect_tensor(name, zero, shape=(1, 25, 8, 7), what="the scores of a map with a blanked hole",
                         hint="return (B, L, Hf, Wf): one score per patch l and foreground position (y, x)",
                         dtype=torch.float32, finite=False)
    if not torch.isfinite(zero).all():
        fail(name, "a window of zeros got a NaN or inf score", MISTAKE_HINTS[name]["zero window"])
    cases.append(Case((holed, w_holed), {}, "cosine_scores for a map with a blanked hole (windows of zeros)"))
    small_f = _randn(gen, 1, 2, 4, 5) * 0.05  # window norms below eps = 0.5
    small_f[..., :2, :] *= 40.0  # and above it
    small_w = A.extract_patches(_randn(gen, 1, 2, 3, 3), 3, 1) * 0.1  # (1, 9, 2, 3, 3)
    small_w[:, ::2] *= 20.0
    cases.append(Case((small_f, small_w), {"eps": 0.5}, "cosine_scores(f, w, eps=0.5) with norms below and above eps"))
    _run(name, fn, A.cosine_scores, cases, _COSINE_MISTAKES,
         "scores[b, l, y, x] = <f's k x k window at (y, x), w_l> / (max(||window||, eps) * max(||w_l||, eps))")
    expect_gradient(name, fn, A.cosine_scores, cases[0], wrt=(0, 1))


# ====================================================================== notebook 04

# ---------------------------------------------------------------- valid_patches

def _valid_centre_only(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    return (1.0 - mask).flatten(1)  # (B, H*W): only the centre pixel counts


def _valid_inverted(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    return 1.0 - A.valid_patches(mask, ksize)


def _valid_half(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    m = A.extract_patches(mask, ksize, 1)  # (B, L, 1, k, k)
    return (m.mean(dim=(2, 3, 4)) < 0.5).float()


def _valid_fixed_ksize(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    return A.valid_patches(mask, 3)  # the ksize argument is ignored


def _valid_one_padding(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    B, _, H, W = mask.shape
    padded = pad_same(torch.ones(1, 1, H, W, dtype=mask.dtype), ksize)
    rows, cols = padded.shape[-2] - H, padded.shape[-1] - W
    m = F.pad(mask, (cols // 2, cols - cols // 2, rows // 2, rows - rows // 2), value=1.0)
    return (F.avg_pool2d(m, ksize, stride=1).flatten(1) == 0).to(mask.dtype)  # (B, L)


def _valid_symmetric_padding(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    # PyTorch's symmetric padding=k//2: 'SAME' for an odd k; one window too many per axis for an even k
    means = F.avg_pool2d(mask, ksize, stride=1, padding=ksize // 2)  # (B, 1, H (+1), W (+1))
    return (means.flatten(1) == 0).to(mask.dtype)


def _pad_reversed(x: torch.Tensor, k: int) -> torch.Tensor:
    """TF 'SAME' (stride 1) with the odd pixel on the wrong side: more at the top/left."""
    total = k - 1
    return F.pad(x, (total - total // 2, total // 2, total - total // 2, total // 2))


def _valid_reversed_same(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    means = F.avg_pool2d(_pad_reversed(mask, ksize), ksize, stride=1)  # (B, 1, H, W)
    return (means.flatten(1) == 0).to(mask.dtype)


def _valid_symmetric_cropped(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    H, W = mask.shape[-2:]
    means = F.avg_pool2d(mask, ksize, stride=1, padding=ksize // 2)[..., :H, :W]  # (B, 1, H, W)
    return (means.flatten(1) == 0).to(mask.dtype)


_hints("valid_patches", {
    "window": "a patch is valid only if no hole pixel lies anywhere in its k x k window "
              "(mean of the mask over the window == 0), not just at its centre",
    "inverted": "inverted: mm is 1 for the patches you may copy (no hole pixel) and 0 for "
                "patches that touch the hole",
    "exactly 0": "the release keeps a patch only if the mean of the mask over its window is "
                 "exactly 0; a patch that is partly hole is invalid",
    "ksize argument": "use the ksize argument for the window size, do not hard-code 3",
    "zero padding": "use zero padding ('SAME', course_lib.ops.pad_same) for the mask: outside the image "
                    "is not hole, so patches on the border can be valid",
    "even ksize": "PyTorch's symmetric padding=ksize // 2 is TF 'SAME' only for an odd ksize: for an even "
                  "ksize it gives one window too many per axis. Pad with course_lib.ops.pad_same(mask, ksize) "
                  "(the extra row/column at the bottom/right)",
    "bottom/right": "for an even ksize TF 'SAME' puts the extra padding row/column at the bottom/right, not "
                    "at the top/left: pad with course_lib.ops.pad_same(mask, ksize)",
})

_VALID_MISTAKES = {"window": _valid_centre_only, "inverted": _valid_inverted, "exactly 0": _valid_half,
                   "ksize argument": _valid_fixed_ksize, "zero padding": _valid_one_padding,
                   "even ksize": _valid_symmetric_padding, "bottom/right": _valid_reversed_same,
                   "extra padding row": _valid_symmetric_cropped}
MISTAKE_HINTS["valid_patches"]["extra padding row"] = MISTAKE_HINTS["valid_patches"]["bottom/right"]


def _valid_ignores_stride(mask: torch.Tensor, ksize: int, stride: int = 1) -> torch.Tensor:
    return A.valid_patches(mask, ksize)  # the stride argument is ignored: one window per pixel


def _valid_stride_one_padding(mask: torch.Tensor, ksize: int, stride: int = 1) -> torch.Tensor:
    means = F.avg_pool2d(pad_same(mask, ksize), ksize, stride=stride)  # padded as for stride 1
    return (means.flatten(1) == 0).to(mask.dtype)


_VALID_STRIDE_HINTS = {
    "stride argument": "use the stride argument: one window every stride pixels (avg_pool2d(..., stride=stride)), "
                       "L = ceil(H / stride) * ceil(W / stride) patches as extract_patches(x, ksize, stride) gives",
    "pad_same(mask, ksize, stride)": "with a stride TF 'SAME' pads less than for stride 1: pad with "
                                     "pad_same(mask, ksize, stride), the padding of extract_patches(x, ksize, stride)",
}
MISTAKE_HINTS["valid_patches"].update(_VALID_STRIDE_HINTS)
_VALID_STRIDE_MISTAKES = {"stride argument": _valid_ignores_stride,
                          "pad_same(mask, ksize, stride)": _valid_stride_one_padding}


@register("valid_patches", reference=lambda mask, ksize, stride=1: A.valid_patches(mask, ksize, stride),
          notebook=NB04,
          hint="valid_patches(mask, ksize, stride=1) -> (B, L): 1.0 where the ksize window holds no hole pixel",
          mistakes={**_VALID_MISTAKES, **_VALID_STRIDE_MISTAKES})
def _check_valid_patches(fn: Callable[..., Any]) -> None:
    """valid_patches(mask, ksize, stride=1) -> (B, L): 1.0 where the ksize window holds no hole pixel."""
    name = "valid_patches"
    mask = torch.zeros(2, 1, 6, 7)
    mask[0, :, 1:4, 2:5] = 1.0  # a hole inside
    mask[1, :, 0:2, 4:7] = 1.0  # a hole at the top-right border
    mask[1, :, 5, 0] = 1.0  # one hole pixel in a corner
    shared = torch.zeros(1, 1, 9, 5)  # one mask for the batch, odd and non-square
    shared[..., 4, 2] = 1.0
    tiny = torch.zeros(1, 1, 3, 4)
    tiny[..., 0, 0] = 1.0
    corner = torch.zeros(1, 1, 5, 6)  # hole pixels in the first and the last row and column
    corner[..., 0, 2] = corner[..., 4, 5] = corner[..., 2, 0] = 1.0
    cases = [Case((mask, ksize), {}, f"valid_patches(mask, {ksize}) for a (2, 1, 6, 7) mask") for ksize in (3, 5)]
    cases += [Case((shared, 3), {}, "valid_patches(mask, 3) for a shared (1, 1, 9, 5) mask"),
              Case((tiny, 3), {}, "valid_patches(mask, 3) for a (1, 1, 3, 4) mask with one hole pixel"),
              Case((tiny, 1), {}, "valid_patches(mask, 1): a 1x1 window is the pixel itself")]
    even = [Case((corner, 2), {}, "valid_patches(mask, 2) for a (1, 1, 5, 6) mask with hole pixels on the border"),
            Case((mask, 4), {}, "valid_patches(mask, 4) for a (2, 1, 6, 7) mask"),
            Case((tiny, 2), {}, "valid_patches(mask, 2) for a (1, 1, 3, 4) mask with one hole pixel")]
    generic = ("pad the mask with zeros ('SAME', pad_same: any extra row/column at the bottom/right), take the "
               "mean over each ksize x ksize window and return (mean == 0) as a float, one value per patch in "
               "row-major order")
    reference = lambda m, k: A.valid_patches(m, k)  # noqa: E731
    _run(name, fn, reference, cases, _VALID_MISTAKES, generic, atol=0, rtol=0)
    _run_even(name, fn, reference, even, cases + even, _VALID_MISTAKES, generic, "ksize", atol=0, rtol=0)
    # The stride (notebook 06 calls valid_patches(mask_small, ksize, stride)), after stride 1 passed.
    try:
        fn(mask.clone(), 3, 2)
    except NotImplementedError:
        raise
    except TypeError as err:
        fail(name, f"valid_patches(mask, 3, 2) raised TypeError: {str(err).strip().splitlines()[0]}",
             "give valid_patches a third argument stride: int = 1 (the release's default) and use it: notebook 06 "
             "calls valid_patches(mask_small, ksize, stride)")
    strided = [Case((mask, 3, 2), {}, "valid_patches(mask, 3, 2) for a (2, 1, 6, 7) mask: stride 2"),
               Case((shared, 3, 3), {}, "valid_patches(mask, 3, 3) for a shared (1, 1, 9, 5) mask: stride 3"),
               Case((corner, 2, 2), {}, "valid_patches(mask, 2, 2) for a (1, 1, 5, 6) mask: ksize 2, stride 2"),
               Case((mask, 3), {"stride": 1}, "valid_patches(mask, 3, stride=1)")]
    generic_stride = ("with a stride, take one window every stride pixels after TF 'SAME' padding for that stride: "
                      "F.avg_pool2d(pad_same(mask, ksize, stride), ksize, stride=stride), then (mean == 0)")
    _run(name, fn, A.valid_patches, strided, {**_VALID_MISTAKES, **_VALID_STRIDE_MISTAKES}, generic_stride,
         atol=0, rtol=0)


def _run_even(name: str, fn: Callable[..., Any], reference: Callable[..., Any], even: list[Case],
              all_cases: list[Case], mistakes: dict[str, Callable[..., Any]], generic: str, what: str,
              atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Compare on the even-size cases, after the odd ones passed: a crash there names the padding rule."""
    for case in even:
        try:
            fn(*_clone_args(case.args), **_clone_args(case.kwargs))
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - the odd sizes work, so the even rule is the likely cause
            fail(name, f"{case.what} raised {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                 f" (the odd sizes worked)",
                 f"an even {what} needs TF 'SAME' padding: (k - 1) // 2 before and the rest (one more) after, "
                 f"i.e. course_lib.ops.pad_same(x, k); PyTorch's symmetric padding=k // 2 adds one row and "
                 f"column too many for an even k")
    compare_cases(name, fn, reference, even, generic, variants=_variants(name, mistakes), atol=atol, rtol=rtol)


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


def _softmax_no_max_shift(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    mm4 = mm[:, :, None, None]
    e = torch.exp(scores * mm4 * softmax_scale)  # overflows to inf for large scores
    return e / e.sum(dim=1, keepdim=True) * mm4


def _softmax_fixed_scale(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return A.masked_softmax(scores, mm, 10.0)  # the softmax_scale argument is ignored


_hints("masked_softmax", {
    "-inf": "the release gives invalid patches a score of 0, not -inf, before the softmax, and does not "
            "renormalise after it: they still take a share exp(0) of the denominator and the kept weights "
            "sum to < 1 (-inf, or a renormalisation, makes NaN where every patch is invalid)",
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
    "maximum": "subtract the maximum score before exp (or use torch.softmax): with softmax_scale 10 a "
               "score of 10 gives exp(100), which overflows float32 to inf, and inf / inf is NaN",
    "hard-code": "use the softmax_scale argument, do not hard-code 10: the notebook also runs with 50",
})

_SOFTMAX_MISTAKES = {"-inf": _softmax_neg_inf, "unmasked": _softmax_unmasked,
                     "before the softmax": _softmax_mask_after_only,
                     "after the softmax": _softmax_mask_before_only,
                     "renormalise": _softmax_renormalised, "softmax_scale": _softmax_no_scale,
                     "axis": _softmax_wrong_axis, "maximum": _softmax_no_max_shift,
                     "hard-code": _softmax_fixed_scale}


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
    out = call(name, fn, scores.clone(), mm2.clone(), softmax_scale=10.0)
    if isinstance(out, torch.Tensor) and out.shape == scores.shape and torch.isnan(out).any():
        minus_inf = _softmax_neg_inf(scores.clone(), mm2.clone(), 10.0)
        if torch.allclose(out.detach().double(), minus_inf.double(), atol=1e-6, equal_nan=True):
            fail(name, "NaN where every patch of an image is invalid", MISTAKE_HINTS[name]["-inf"])
        fail(name, "NaN where every patch of an image is invalid (image 1 of the batch)",
             "an image may have no valid patch at all (its mm is all 0): the release's softmax then gives "
             "0 everywhere, never NaN; look for a division by a sum that is 0 there, or a -inf")
    large = 12.0 * _randn(gen, 1, 6, 2, 3)  # scores * 10 reach a few hundred: exp overflows float32
    cases = [Case((scores, mm2), {"softmax_scale": 10.0},
                  "masked_softmax with a per-image mm (image 1 has no valid patch)"),
             Case((scores, mm), {"softmax_scale": 10.0}, "masked_softmax(scores, mm, 10.0)"),
             Case((scores, mm), {"softmax_scale": 3.0}, "masked_softmax(scores, mm, 3.0)"),
             Case((scores, mm), {}, "masked_softmax(scores, mm) with the default softmax_scale"),
             Case((large, mm), {"softmax_scale": 10.0}, "masked_softmax on large scores (up to about 40)"),
             Case((scores[:1, :3, :1, :2], mm[:, :3]), {"softmax_scale": 50.0},
                  "masked_softmax on 3 patches and 2 positions with softmax_scale=50")]
    _run(name, fn, A.masked_softmax, cases, _SOFTMAX_MISTAKES, generic, atol=1e-6)
    expect_gradient(name, fn, A.masked_softmax, cases[0], wrt=(0,))


# ---------------------------------------------------------------- masked_softmax_neg_inf (open variant)

def masked_softmax_neg_inf(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    """The textbook masked softmax, notebook 04's open variant (not the release's, see ``masked_softmax``).

    Invalid patches (``mm == 0``) get the score ``-inf``, so the weights of the valid patches sum
    to exactly 1 at every position; an image with no valid patch at all gets 0 everywhere
    (a plain softmax of ``-inf`` scores would give 0 / 0 = NaN there). ``scores``
    ``(B, L, Hf, Wf)``, ``mm`` ``(B or 1, L)``; returns ``(B, L, Hf, Wf)``.
    """
    valid = mm[:, :, None, None] > 0  # (B or 1, L, 1, 1)
    z = (scores * softmax_scale).masked_fill(~valid, float("-inf"))  # (B, L, Hf, Wf)
    z = z.masked_fill(~valid.any(dim=1, keepdim=True), 0.0)  # images with no valid patch: no -inf left
    return F.softmax(z, dim=1) * valid.to(scores.dtype)  # (B, L, Hf, Wf)


def _inf_unguarded(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return _softmax_neg_inf(scores, mm, softmax_scale)  # NaN where an image has no valid patch


def _inf_release(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return A.masked_softmax(scores, mm, softmax_scale)


def _inf_large_negative(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return F.softmax((scores * softmax_scale).masked_fill(mm[:, :, None, None] == 0, -1e9), dim=1)


def _inf_times_zero(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return F.softmax(scores * softmax_scale + (1 - mm[:, :, None, None]) * float("-inf"), dim=1)


def _inf_inverted(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return masked_softmax_neg_inf(scores, 1 - mm, softmax_scale)


def _inf_wrong_axis(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    valid = mm[:, :, None, None] > 0
    z = (scores * softmax_scale).masked_fill(~valid, float("-inf"))
    z = z.masked_fill(~valid.any(dim=1, keepdim=True), 0.0)
    return torch.nan_to_num(F.softmax(z, dim=-1)) * valid


def _inf_no_scale(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return masked_softmax_neg_inf(scores, mm, 1.0)


def _inf_first_mask(scores: torch.Tensor, mm: torch.Tensor, softmax_scale: float = 10.0) -> torch.Tensor:
    return masked_softmax_neg_inf(scores, mm[:1], softmax_scale)  # image 0's mm for every image


_hints("masked_softmax_neg_inf", {
    "NaN": "an image with no valid patch has only -inf scores and softmax gives 0 / 0 = NaN there: return "
           "weights 0 for it (e.g. put 0 instead of -inf in such an image before the softmax and multiply by mm "
           "after, or torch.nan_to_num the result)",
    "release": "that is the release's masking (invalid scores 0, weights not renormalised): here invalid patches "
               "get -inf, so the valid weights sum to exactly 1 wherever an image has a valid patch",
    "large negative": "a large negative number instead of -inf leaves weight on the patches of an image with no "
                      "valid patch (1/L each, or the unmasked softmax): the weights there must be 0 (multiply by "
                      "mm after the softmax)",
    "0 * inf": "(1 - mm) * -inf is NaN where mm is 1, because 0 * inf = NaN: put -inf only where mm == 0, with "
               "masked_fill or torch.where",
    "inverted": "inverted: mm is 1 for the patches you may copy, so -inf goes where mm == 0",
    "axis": "wrong axis: the softmax runs over the L background patches, dim=1 of (B, L, Hf, Wf)",
    "softmax_scale": "multiply the scores by the softmax_scale argument inside the softmax",
    "per image": "mm is (B or 1, L), one row of valid patches per image: index it as mm[:, :, None, None] "
                 "so it broadcasts over the positions, not mm[0] for every image",
})

_INF_MISTAKES = {"NaN": _inf_unguarded, "release": _inf_release, "large negative": _inf_large_negative,
                 "0 * inf": _inf_times_zero, "inverted": _inf_inverted, "axis": _inf_wrong_axis,
                 "softmax_scale": _inf_no_scale, "per image": _inf_first_mask}


@register("masked_softmax_neg_inf", reference=masked_softmax_neg_inf, notebook=NB04,
          hint="masked_softmax_neg_inf(scores, mm, softmax_scale=10.0): -inf for invalid patches, the valid "
               "weights sum to 1, 0 (not NaN) where an image has no valid patch",
          mistakes=_INF_MISTAKES)
def _check_masked_softmax_neg_inf(fn: Callable[..., Any]) -> None:
    """masked_softmax_neg_inf(scores, mm, softmax_scale=10.0): -inf masking, valid weights sum to 1."""
    name = "masked_softmax_neg_inf"
    gen = make_generator(16)
    scores = 0.3 * _randn(gen, 2, 6, 3, 4)  # (B, L, Hf, Wf)
    mm = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])  # (1, L), shared by the batch
    mm2 = torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6])  # (B, L): image 1 has no valid patch
    generic = ("softmax over dim 1 of scores * softmax_scale with -inf where mm == 0 (masked_fill or torch.where), "
               "and weights 0 (not NaN) in an image whose mm is all 0")
    out = call(name, fn, scores.clone(), mm2.clone(), softmax_scale=10.0)
    if isinstance(out, torch.Tensor) and out.shape == scores.shape and torch.isnan(out).any():
        if torch.isnan(out[0]).any():  # image 0 has valid patches
            fail(name, "NaN in image 0, which has valid patches", MISTAKE_HINTS[name]["0 * inf"])
        fail(name, "NaN in image 1, where every patch is invalid (its mm is all 0)", MISTAKE_HINTS[name]["NaN"])
    if isinstance(out, torch.Tensor) and out.shape == scores.shape and out[1].abs().sum() > 0:
        want = masked_softmax_neg_inf(scores, mm2, 10.0)
        image_0_mask = masked_softmax_neg_inf(scores[1:], mm2[:1], 10.0)[0]
        if torch.allclose(out[1].detach().to(want.dtype), image_0_mask, atol=1e-6):
            fail(name, "image 1 got the weights of image 0's mm", MISTAKE_HINTS[name]["per image"])
        if torch.allclose(out[0].detach().to(want.dtype), want[0], atol=1e-6):  # right wherever a patch is valid
            fail(name, "image 1 has no valid patch (its mm is all 0) but gets non-zero weights",
                 MISTAKE_HINTS[name]["large negative"])
    large = 12.0 * _randn(gen, 1, 6, 2, 3)  # scores * 10 reach a few hundred: exp overflows float32
    cases = [Case((scores, mm), {"softmax_scale": 10.0}, "masked_softmax_neg_inf(scores, mm, 10.0)"),
             Case((scores, mm2), {"softmax_scale": 10.0},
                  "masked_softmax_neg_inf with a per-image mm (image 1 has no valid patch)"),
             Case((scores, mm2[:1].expand(2, 6).contiguous()), {"softmax_scale": 10.0},
                  "masked_softmax_neg_inf with a (2, L) mm, both images alike"),
             Case((scores, mm), {"softmax_scale": 3.0}, "masked_softmax_neg_inf(scores, mm, 3.0)"),
             Case((scores, mm), {}, "masked_softmax_neg_inf(scores, mm) with the default softmax_scale"),
             Case((large, mm), {"softmax_scale": 10.0}, "masked_softmax_neg_inf on large scores (up to about 40)"),
             Case((scores[:1, :3, :1, :2], mm[:, :3]), {"softmax_scale": 50.0},
                  "masked_softmax_neg_inf on 3 patches and 2 positions with softmax_scale=50")]
    _run(name, fn, masked_softmax_neg_inf, cases, _INF_MISTAKES, generic, atol=1e-6)
    expect_gradient(name, fn, masked_softmax_neg_inf, cases[0], wrt=(0,))


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


def _fuse_both_passes_with(scores: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The release's two fuse passes, each a 'SAME' conv with ``kernel`` (1, 1, k, k) instead of
    the identity: the shared body of the wrong-kernel mistakes below."""
    B, L, Hf, Wf = scores.shape
    k = kernel.shape[-1]

    def conv(m: torch.Tensor) -> torch.Tensor:
        return F.conv2d(pad_same(m, k), kernel)

    y = conv(scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L))
    y = y.view(B, Hf, Wf, Hf, Wf).permute(0, 2, 1, 4, 3).reshape(B, 1, Wf * Hf, L)
    y = conv(y).view(B, Wf, Hf, Wf, Hf).permute(0, 2, 1, 4, 3)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)


def _fuse_box_kernel(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    return _fuse_both_passes_with(scores, scores.new_ones(1, 1, fuse_k, fuse_k))


def _fuse_swap_foreground_only(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    B, L, Hf, Wf = scores.shape
    y = A._identity_conv(scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L), fuse_k)
    y = y.view(B, Hf, Wf, L).permute(0, 2, 1, 3).reshape(B, 1, Wf * Hf, L)  # fg swapped, bg not
    y = A._identity_conv(y, fuse_k).view(B, Wf, Hf, L).permute(0, 2, 1, 3)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)


def _fuse_fixed_k(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    return A.fuse_scores(scores, 3)  # the fuse_k argument is ignored


def _fuse_anti_diagonal(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    kernel = torch.eye(fuse_k, dtype=scores.dtype).flip(-1).view(1, 1, fuse_k, fuse_k)
    return _fuse_both_passes_with(scores, kernel)


def _fuse_with_padding(scores: torch.Tensor, fuse_k: int, pad: Callable[[torch.Tensor], torch.Tensor],
                      crop: bool = False) -> torch.Tensor:
    """The release's two passes with another padding rule (crop: keep the first rows/columns)."""
    B, L, Hf, Wf = scores.shape
    eye = torch.eye(fuse_k, dtype=scores.dtype).view(1, 1, fuse_k, fuse_k)

    def conv(m: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(pad(m), eye)
        return out[..., :m.shape[-2], :m.shape[-1]] if crop else out

    y = conv(scores.permute(0, 2, 3, 1).reshape(B, 1, Hf * Wf, L))
    y = y.view(B, Hf, Wf, Hf, Wf).permute(0, 2, 1, 4, 3).reshape(B, 1, Wf * Hf, L)
    y = conv(y).view(B, Wf, Hf, Wf, Hf).permute(0, 2, 1, 4, 3)
    return y.reshape(B, Hf, Wf, L).permute(0, 3, 1, 2)


def _fuse_symmetric_cropped(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    p = fuse_k // 2
    return _fuse_with_padding(scores, fuse_k, lambda m: F.pad(m, (p, p, p, p)), crop=True)


def _fuse_reversed_same(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    return _fuse_with_padding(scores, fuse_k, lambda m: _pad_reversed(m, fuse_k))


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
    "fuse_k argument": "use the fuse_k argument for the size of the identity kernel, do not hard-code 3",
    "main diagonal": "the identity kernel sums along the main diagonal, (p+d, q+d): torch.eye(fuse_k), "
                     "not its mirror image",
    "bottom/right": "for an even fuse_k TF 'SAME' puts the extra padding row/column at the bottom/right "
                    "(pad_same(m, fuse_k)); PyTorch's symmetric padding=fuse_k // 2 (cropped back) or a "
                    "reversed rule puts it at the top/left",
})
MISTAKE_HINTS["fuse_scores"]["extra padding row"] = MISTAKE_HINTS["fuse_scores"]["bottom/right"]

_FUSE_MISTAKES = {"both orderings": _fuse_row_major_only, "identity": _fuse_box_kernel,
                  "both axes": _fuse_swap_foreground_only, "row-major pass": _fuse_column_major_only,
                  "fuse_k argument": _fuse_fixed_k, "main diagonal": _fuse_anti_diagonal,
                  "bottom/right": _fuse_reversed_same, "extra padding row": _fuse_symmetric_cropped}


@register("fuse_scores", reference=lambda scores, fuse_k=3: A.fuse_scores(scores, fuse_k), notebook=NB04,
          hint="fuse_scores(scores, fuse_k=3): identity-kernel conv of the [Hf*Wf, Hb*Wb] matrix, "
               "row-major then column-major",
          mistakes=_FUSE_MISTAKES)
def _check_fuse_scores(fn: Callable[..., Any]) -> None:
    """fuse_scores(scores, fuse_k=3): identity-kernel conv of the score matrix, both orderings."""
    name = "fuse_scores"
    gen = make_generator(7)
    generic = ("view scores (B, L, Hf, Wf) as the matrix (B, 1, Hf*Wf, L), conv with torch.eye(fuse_k) "
               "('SAME'), swap H and W of both axes, conv again, swap back")
    cases = [Case((_randn(gen, *shape),), {"fuse_k": fuse_k}, f"fuse_scores(scores, fuse_k={fuse_k}) on "
                  f"scores of shape {shape}")
             for shape, fuse_k in (((2, 20, 4, 5), 3), ((1, 12, 3, 4), 3), ((1, 12, 3, 4), 5),
                                   ((1, 15, 5, 3), 1), ((1, 6, 2, 3), 3))]
    cases.append(Case((cases[1].args[0],), {}, "fuse_scores(scores) with the default fuse_k"))
    reference = lambda scores, fuse_k=3: A.fuse_scores(scores, fuse_k)  # noqa: E731
    _run(name, fn, reference, cases, _FUSE_MISTAKES, generic)
    even = [Case((_randn(gen, *shape),), {"fuse_k": fuse_k}, f"fuse_scores(scores, fuse_k={fuse_k}) on "
                 f"scores of shape {shape}")
            for shape, fuse_k in (((1, 6, 2, 3), 2), ((1, 12, 3, 4), 4), ((2, 20, 5, 4), 2))]
    _run_even(name, fn, reference, even, cases + even, _FUSE_MISTAKES, generic, "fuse_k")
    expect_gradient(name, fn, lambda scores, fuse_k=3: A.fuse_scores(scores, fuse_k), cases[0], wrt=(0,))


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


def _reconstruct_fixed_crop(attention, raw_patches, rate, out_size):
    k = raw_patches.shape[-1]
    top = (k - rate) // 2  # right only when rate divides both sides of out_size
    outs = [F.conv_transpose2d(attention[i:i + 1], raw_patches[i], stride=rate) for i in range(attention.shape[0])]
    return torch.cat(outs)[:, :, top:top + out_size[0], top:top + out_size[1]] / 4.0


def _reconstruct_stride_one(attention, raw_patches, rate, out_size):
    outs = [F.conv_transpose2d(attention[i:i + 1], raw_patches[i], stride=1, padding=1)
            for i in range(attention.shape[0])]
    return torch.cat(outs) / 4.0


def _reconstruct_fixed_rate(attention, raw_patches, rate, out_size):
    return A.reconstruct(attention, raw_patches, 2, (2 * attention.shape[-2], 2 * attention.shape[-1]))


def _reconstruct_first_image(attention, raw_patches, rate, out_size):
    first = raw_patches[:1].expand_as(raw_patches)  # every image pastes image 0's patches
    return A.reconstruct(attention, first.contiguous(), rate, out_size)


_hints("reconstruct", {
    "/4": "missing /4: with 4x4 patches at stride 2 every pixel is covered by 4 patches, so the "
          "release divides the sum by 4",
    "constant 4": "the release divides by the constant 4 everywhere, also on the border where "
                  "fewer patches overlap; do not divide by the true coverage count",
    "off-by-one": "off-by-one crop: TF 'SAME' drops (k - rate) // 2 = 1 row/column at the "
                  "top/left (padding=1 in conv_transpose2d), not at the bottom/right only",
    "fixed crop": "a fixed crop of (k - rate) // 2 holds only when rate divides the output size: TF 'SAME' "
                  "drops half of the surplus ((h - 1) * rate + k - H) at the top, and the columns "
                  "need their own ((w - 1) * rate + k - W) // 2",
    "stride": "wrong stride: the transposed conv steps by rate (2) in the output, one attention "
              "position per rate x rate pixels",
    "rate argument": "use the rate argument (stride=rate, patches of 2 * rate) and the out_size you are "
                     "given, do not hard-code 2",
    "its own patches": "each image pastes its own patches: loop over the batch "
                       "(conv_transpose2d(attention[i:i+1], raw_patches[i], ...)) or use groups=B",
})

_RECON_MISTAKES = {"/4": _reconstruct_no_quarter, "constant 4": _reconstruct_true_average,
                   "off-by-one": _reconstruct_no_crop, "fixed crop": _reconstruct_fixed_crop,
                   "stride": _reconstruct_stride_one,
                   "rate argument": _reconstruct_fixed_rate, "its own patches": _reconstruct_first_image}


@register("reconstruct", reference=A.reconstruct, notebook=NB05,
          hint="reconstruct(attention, raw_patches, rate, out_size): conv_transpose2d with the raw "
               "patches, stride rate, 'SAME' output size, / 4",
          mistakes=_RECON_MISTAKES)
def _check_reconstruct(fn: Callable[..., Any]) -> None:
    """reconstruct(attention, raw_patches, rate, out_size): transposed conv, stride rate, / 4."""
    name = "reconstruct"
    gen = make_generator(8)
    generic = ("F.conv_transpose2d(attention[i:i+1], raw_patches[i], stride=rate) per image i (in = L "
               "channels, out = C), crop TF 'SAME' (half the surplus ((h - 1) * rate + k - H) // 2 at the top, the same "
               "for the columns; (k - rate) // 2 when rate divides H), then divide by 4")
    # 1. one-hot attention on its own patches: the interior comes back exactly
    x = _randn(gen, 1, 3, 8, 10)
    raw = A.extract_patches(x, 4, 2)  # (1, 20, 3, 4, 4)
    eye = torch.eye(20).view(1, 20, 4, 5)  # position (i, j) attends to its own patch
    out = _run(name, fn, A.reconstruct, [Case((eye, raw, 2, (8, 10)), {}, "reconstruct(one-hot attention, "
                                               "own patches)")], _RECON_MISTAKES, generic, atol=1e-5)[0]
    if not torch.allclose(out[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-5):
        fail(name, "pasting an image's own patches does not give the image back inside", generic)
    # 2. soft attention, several images, non-square, another rate
    cases = []
    for shape, rate in (((2, 3, 8, 6), 2), ((1, 2, 6, 8), 2), ((1, 2, 9, 6), 3), ((2, 1, 4, 2), 2),
                        ((1, 2, 10, 7), 3), ((1, 1, 7, 9), 3)):
        # sizes that rate 3 does not divide: for 7 x 9 the crop drops 2 rows at the top but 1 column at the left
        b = _randn(gen, *shape)
        raw = A.extract_patches(b, 2 * rate, rate)  # (B, L, C, 2r, 2r)
        L, h, w = raw.shape[1], -(-shape[2] // rate), -(-shape[3] // rate)
        attention = F.softmax(_randn(gen, shape[0], L, h, w), dim=1)
        cases.append(Case((attention, raw, rate, shape[2:]), {},
                          f"reconstruct for a background of shape {shape} at rate {rate}"))
    _run(name, fn, A.reconstruct, cases, _RECON_MISTAKES, generic, atol=1e-5)
    expect_gradient(name, fn, A.reconstruct, cases[0], wrt=(0, 1))


# ====================================================================== notebook 06

def _layer_with(downsample: Optional[Callable] = None, skip_fuse: bool = False,
                ignore_mask: bool = False, always_fuse: bool = False, fixed_scale: bool = False,
                patches_of_f: bool = False, none_is_hole: bool = False, mask_downsample: Optional[Callable] = None,
                fuse_after_softmax: bool = False, raw_from_small: bool = False,
                ignore_stride: bool = False, remask: bool = False,
                paste_matching_patches: bool = False) -> Callable[..., Any]:
    """A contextual attention layer with one planted mistake (built from course_lib's steps)."""

    def layer(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True):
        do_fuse = (fuse or always_fuse) and not skip_fuse
        softmax_scale = 10.0 if fixed_scale else softmax_scale
        stride = 1 if ignore_stride else stride
        b = f if patches_of_f else b
        down = downsample or A.downsample
        down_mask = mask_downsample or down
        H, W = f.shape[-2:]
        f_s, b_s = down(f, rate), down(b, rate)  # (B, C, H/r, W/r)
        raw = A.extract_patches(b_s if raw_from_small else b, 2 * rate,
                                stride if raw_from_small else rate * stride)  # (B, L, C, 2r, 2r)
        if paste_matching_patches:
            raw = A.extract_patches(b_s, ksize, stride)  # (B, L, C, k, k): the small map's matching patches
        if mask is None and none_is_hole:
            mm = b_s.new_zeros(1, A.extract_patches(b_s[:1, :1], ksize, stride).shape[1])  # every patch invalid
        elif mask is None or ignore_mask:
            mm = b_s.new_ones(1, A.extract_patches(b_s[:1, :1], ksize, stride).shape[1])  # (1, L)
        else:
            mm = A.valid_patches(down_mask(mask.to(b.dtype), rate), ksize, stride)  # (1 or B, L)
        scores = A.matching_scores(f_s, A.normalize_patches(A.extract_patches(b_s, ksize, stride)))
        if do_fuse and not fuse_after_softmax:
            scores = A.fuse_scores(scores, fuse_k)
        att = A.masked_softmax(scores, mm, softmax_scale)  # (B, L, h, w)
        if do_fuse and fuse_after_softmax:
            att = A.fuse_scores(att, fuse_k)
            if remask:
                att = att * mm.to(att.dtype)[:, :, None, None]
        y = A.reconstruct(att, raw, rate, (H, W))  # (B, C, H, W)
        flow = flow_to_color(A.attention_offsets(att, f_s.shape[-1]))
        return y, F.interpolate(flow, size=(H, W), mode="bilinear", align_corners=True)

    return layer


def _slice_downsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    return x[..., ::rate, ::rate]


def _avg_downsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    return F.avg_pool2d(x, rate)


def _bilinear_downsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    return F.interpolate(x, size=(x.shape[-2] // rate, x.shape[-1] // rate), mode="bilinear", align_corners=True)


_layer_no_fuse = _layer_with(skip_fuse=True)
_layer_sliced = _layer_with(downsample=_slice_downsample)
_layer_sliced_features = _layer_with(downsample=_slice_downsample, mask_downsample=A.downsample)
_layer_sliced_mask = _layer_with(mask_downsample=_slice_downsample)
_layer_pooled = _layer_with(downsample=_avg_downsample, mask_downsample=A.downsample)
_layer_bilinear = _layer_with(downsample=_bilinear_downsample, mask_downsample=A.downsample)
_layer_no_mask = _layer_with(ignore_mask=True)
_layer_always_fused = _layer_with(always_fuse=True)
_layer_fixed_scale = _layer_with(fixed_scale=True)
_layer_patches_of_f = _layer_with(patches_of_f=True)
_layer_none_is_hole = _layer_with(none_is_hole=True)
_layer_fused_after = _layer_with(fuse_after_softmax=True)
_layer_raw_small = _layer_with(raw_from_small=True)
_layer_ignores_stride = _layer_with(ignore_stride=True)
_layer_fused_after_remasked = _layer_with(fuse_after_softmax=True, remask=True)
_layer_pastes_matching = _layer_with(paste_matching_patches=True)

_DOWNSAMPLE_HINT = ("downsample f, b and the mask with the release's nearest resize with align_corners=True "
                    "(course_lib.attention.downsample): x[..., ::2, ::2] (or F.interpolate's nearest, which "
                    "picks the same rows) takes rows 0, 2, 4, ... but the release's 64 -> 32 takes 0, 2, ..., 30, "
                    "33, 35, ..., 63")
_hints("contextual_attention", {
    "align_corners": _DOWNSAMPLE_HINT,
    "x[..., ::2, ::2]": "downsample f and b with course_lib.attention.downsample (the release's nearest resize "
                        "with align_corners=True), not x[..., ::2, ::2]: for 64 -> 32 the release takes rows 0, 2, "
                        "..., 30, 33, 35, ..., 63",
    "the mask too": "downsample the mask too, like f and b, with course_lib.attention.downsample (the release's "
                    "nearest resize with align_corners=True), not x[..., ::2, ::2]",
    "nearest resize": "the release downsamples by a nearest resize (align_corners=True, "
                      "course_lib.attention.downsample), it does not average: features keep their values",
    "not interpolate": "the release downsamples by a nearest resize (align_corners=True, "
                       "course_lib.attention.downsample), it does not interpolate bilinearly: features keep "
                       "their values",
    "fuse": "the fuse step is missing: fuse the scores (fuse_scores) before the masked softmax "
            "when fuse=True",
    "mask": "the mask is ignored: downsample it like f and b, compute mm = valid_patches(mask_small, "
            "ksize, stride) and pass mm to masked_softmax",
    "fuse=False": "with fuse=False skip the fuse step: pass the fuse argument on instead of always fusing",
    "softmax_scale": "pass the softmax_scale argument on to masked_softmax, do not hard-code 10",
    "background b": "take the patches (raw and small) from the background b and match them against "
                    "the foreground f: with f != b, patches of f give another result",
    "mask=None": "mask=None means there is no hole: every patch is valid (mm all ones), not all invalid",
    "before the softmax": "the release fuses the raw scores before the softmax (scores -> fuse -> masked "
                          "softmax), not the attention after it as the paper writes it (lesson 04)",
    "full-resolution b": "cut the raw patches (2*rate x 2*rate, stride rate*stride) from the full-resolution b, "
                         "not from the downsampled map: the small map is only for matching",
    "stride argument": "pass the stride argument on: raw patches at stride rate * stride, matching patches and "
                       "mm at stride",
    "fused attention": "fuse the raw scores before the softmax (scores -> fuse -> masked softmax) as the release "
                       "does, not the fused attention after it (the paper's order), even if you mask it again",
    "matching patches": "paste raw 2*rate x 2*rate patches cut from the full-resolution b (stride rate * stride), "
                        "not the small map's matching patches",
})

_LAYER_MISTAKES = {"align_corners": _layer_sliced, "x[..., ::2, ::2]": _layer_sliced_features,
                   "the mask too": _layer_sliced_mask, "nearest resize": _layer_pooled,
                   "not interpolate": _layer_bilinear,
                   "fuse": _layer_no_fuse, "mask": _layer_no_mask,
                   "fuse=False": _layer_always_fused, "softmax_scale": _layer_fixed_scale,
                   "background b": _layer_patches_of_f, "mask=None": _layer_none_is_hole,
                   "before the softmax": _layer_fused_after, "full-resolution b": _layer_raw_small,
                   "stride argument": _layer_ignores_stride, "fused attention": _layer_fused_after_remasked,
                   "matching patches": _layer_pastes_matching}
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
               "reconstruct; and pass every argument (stride, rate, ksize, fuse_k, softmax_scale, fuse) on")
    f = _randn(gen, 1, 4, 16, 12)
    mask = torch.zeros(1, 1, 16, 12)
    mask[..., 4:10, 3:9] = 1.0
    out = call(name, fn, f, f, mask)
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(name, f"it returned {type(out).__name__}, expected a pair (y, flow)",
             "return y, flow where flow = flow_to_color(attention_offsets(attention, w_small))")
    y_ref, flow_ref = A.contextual_attention(f, f, mask)
    expect_tensor(name, out[0], shape=tuple(y_ref.shape), what="y", dtype=y_ref.dtype,
                  hint="y has the shape of f: reconstruct with out_size = f.shape[-2:]")
    expect_tensor(name, out[1], shape=tuple(flow_ref.shape), what="flow", dtype=flow_ref.dtype,
                  hint="upsample the flow picture to f's size (x rate)")
    b2 = _randn(gen, 2, 3, 8, 8)
    mask2 = torch.zeros(1, 1, 8, 8)
    mask2[..., 2:6, 2:6] = 1.0
    f3, b3 = _randn(gen, 2, 3, 8, 12), _randn(gen, 2, 3, 8, 12)  # f != b
    per_image = torch.zeros(2, 1, 8, 12)  # one hole per image, valid patches left in both
    per_image[0, :, 2:6, 3:7] = 1.0
    per_image[1, :, 0:4, 6:12] = 1.0
    f4 = _randn(gen, 1, 2, 16, 16)
    cases = [Case((f, f, mask), {}, "y for f = b and a 6x6 hole"),
             Case((b2, b2, mask2), {"softmax_scale": 3.0}, "y for two images with softmax_scale=3"),
             Case((f3, b3, per_image), {}, "y for f != b and one hole per image"),
             Case((f3, b3), {}, "y for f != b with mask=None"),
             Case((f3, b3, per_image), {"fuse": False}, "y with fuse=False"),
             Case((f4, f4.flip(-1)), {"ksize": 5, "fuse_k": 5}, "y with ksize=5 and fuse_k=5"),
             Case((f4, f4.flip(-2)), {"rate": 4}, "y with rate=4"),
             # The release fuses only at stride 1 (its fuse reshapes assume one patch per position).
             Case((f3, b3, per_image), {"stride": 2, "fuse": False}, "y with stride=2 and fuse=False"),
             Case((f4[..., :8, :8], f4[..., :8, :8].flip(-2)), {"fuse_k": 1, "softmax_scale": 50.0},
                  "y with fuse_k=1 and softmax_scale=50")]
    _run(name, fn, _layer_reference, cases, _LAYER_MISTAKES, generic, select=lambda out: out[0])
    expect_gradient(name, fn, _layer_reference, cases[2], wrt=(0, 1), select=lambda out: out[0])
    flow_cases = [cases[2], cases[1], cases[3], cases[6]]
    compare_cases(name, fn, _layer_reference, flow_cases,
                  "flow = flow_to_color(attention_offsets(attention, f_small.shape[-1])), upsampled to f's "
                  "H x W with F.interpolate(..., mode='bilinear', align_corners=True)",
                  variants=_flow_variants, select=lambda out: out[1], atol=1e-4, rtol=1e-4,
                  shape_hint="the flow picture is (B, 3, H, W): flow_to_color of the (B, 2, h, w) offsets, "
                             "upsampled to f's H x W")


_FLOW_HINTS = {
    "width": "attention_offsets needs the width of the SMALL map (f_small.shape[-1], where the attention "
             "lives), not f's full-resolution width: patch l sits at (l // w_small, l % w_small)",
    "nearest": "upsample the flow picture bilinearly (mode='bilinear', align_corners=True) as course_lib "
               "does; nearest neighbour is the v1.0.0 release's picture, not the course's",
    "align_corners=False": "upsample the flow picture with align_corners=True (mode='bilinear'), as course_lib "
                           "does: align_corners=False shifts the picture by half a pixel",
}


def _flow_variants(case: Case) -> dict[str, Any]:
    """``{hint: flow}`` of the flow mistakes on one input (from course_lib's attention)."""
    f, b = case.args[:2]
    mask = case.args[2] if len(case.args) > 2 else None
    kw = dict(case.kwargs)
    rate = kw.get("rate", 2)
    H, W = f.shape[-2:]
    att = A.attention_weights(f, b, mask, **kw)  # (B, L, h, w)
    color = flow_to_color(A.attention_offsets(att, att.shape[-1]))  # (B, 3, h, w)
    wide = flow_to_color(A.attention_offsets(att, W))
    if rate == 1:
        return {}
    return {
        _FLOW_HINTS["width"]: F.interpolate(wide, size=(H, W), mode="bilinear", align_corners=True),
        _FLOW_HINTS["nearest"]: F.interpolate(color, size=(H, W), mode="nearest"),
        _FLOW_HINTS["align_corners=False"]: F.interpolate(color, size=(H, W), mode="bilinear", align_corners=False),
    }


