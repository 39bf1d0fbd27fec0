"""Checks for notebook 10 (inference and evaluation, hands-on).

Exercise: ``attention_at`` (the copy weights of one image pixel, as a background map: the
index bookkeeping behind the paper's Figure 4 and the attention explorer). The check
compares the student's function with :func:`course_lib.explorer.attention_at` on a batch of
random attention weights with a non-square background grid, pixels on cell borders and a
non-default cell size, and names the planted mistake that gives the student's answer.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from course_lib.explorer import attention_at as attention_at_reference
from course_lib.seed import make_generator

from . import Case, compare_cases, expect_gradient, hinted_mistakes, register, require_phrases

NB10 = "10_inference_and_evaluation.ipynb"


def _at_swapped(attention, grid, row, col, cell=8):
    return attention[0, :, col // cell, row // cell].reshape(grid[0], grid[1])


def _at_column_major(attention, grid, row, col, cell=8):
    return attention[0, :, row // cell, col // cell].reshape(grid[1], grid[0]).t()


def _at_pixels(attention, grid, row, col, cell=8):
    return attention[0, :, row, col].reshape(grid[0], grid[1])


def _at_rounded(attention, grid, row, col, cell=8):
    i, j = min(round(row / cell), attention.shape[-2] - 1), min(round(col / cell), attention.shape[-1] - 1)
    return attention[0, :, i, j].reshape(grid[0], grid[1])


def _at_last_image(attention, grid, row, col, cell=8):
    return attention[-1, :, row // cell, col // cell].reshape(grid[0], grid[1])


def _at_batch_mean(attention, grid, row, col, cell=8):
    return attention.mean(dim=0)[:, row // cell, col // cell].reshape(grid[0], grid[1])


def _at_renormalised(attention, grid, row, col, cell=8):
    w = attention[0, :, row // cell, col // cell]
    return (w / w.sum()).reshape(grid[0], grid[1])


def _at_fixed_cell(attention, grid, row, col, cell=8):
    return attention[0, :, row // 8, col // 8].reshape(grid[0], grid[1])


def _at_one_hot(attention, grid, row, col, cell=8):
    w = attention[0, :, row // cell, col // cell]
    return torch.zeros_like(w).scatter(0, w.argmax().view(1), 1.0).reshape(grid[0], grid[1])


def _at_feature_stride(attention, grid, row, col, cell=8):
    i, j = min(row // 4, attention.shape[-2] - 1), min(col // 4, attention.shape[-1] - 1)
    return attention[0, :, i, j].reshape(grid[0], grid[1])


_AT_HINTS = {
    "rows and columns": "rows and columns are swapped: the foreground cell is attention[0, :, row // cell, "
                        "col // cell] (row first, as in (B, L, H, W))",
    "row-major": "patch l is numbered row-major over the background grid, l = row * Wc + col, so "
                 "reshape(Hc, Wc) directly (no transpose)",
    "divide the pixel": "divide the pixel by the cell size first: (row, col) are image pixels, the "
                        "attention grid has one entry per cell of `cell` x `cell` pixels",
    "floor": "a pixel belongs to cell floor(row / cell): use row // cell, not round(row / cell)",
    "first image": "take the first image of the batch, attention[0], not the last or a mix",
    "batch mean": "a batch mean mixes the maps of different images: take the first image of the batch, attention[0]",
    "not renormalised": "return the weights as they are, not renormalised: the release does not rescale them after "
                        "masking, so a cell's weights sum to at most 1",
    "cell argument": "use the cell argument: 8 is only the default (feature stride 4 x matching rate 2)",
    "all the weights": "return all the weights, not only the best patch: the map shows how the copy is "
                       "spread over the background",
    "matching rate": "cells are `cell` pixels wide, the feature stride (4) times the matching rate (2): "
                     "dividing by 4 lands in the wrong cell",
}
_AT_MISTAKES = {"rows and columns": _at_swapped, "row-major": _at_column_major, "divide the pixel": _at_pixels,
                "floor": _at_rounded, "first image": _at_last_image, "batch mean": _at_batch_mean,
                "not renormalised": _at_renormalised,
                "cell argument": _at_fixed_cell, "all the weights": _at_one_hot, "matching rate": _at_feature_stride}
require_phrases(_AT_HINTS, _AT_MISTAKES)


@register("attention_at", reference=attention_at_reference, notebook=NB10,
          hint="attention_at(attention, grid, row, col, cell=8): the (Hc, Wc) copy weights of image pixel (row, col)",
          mistakes=_AT_MISTAKES)
def _check_attention_at(fn: Callable[..., Any]) -> None:
    """attention_at(attention, grid, row, col, cell=8) = attention[0, :, row // cell, col // cell].reshape(grid)."""
    name = "attention_at"
    gen = make_generator(10)
    grid = (3, 5)  # non-square: a transposed reshape cannot pass
    attention = torch.rand(2, 15, 4, 6, generator=gen)  # (B, L = 3 * 5, Hf, Wf)
    attention = attention / attention.sum(dim=1, keepdim=True) * 0.8  # weights summing to 0.8 per cell
    attention[0, 4, 1, 2] = 0.0  # a masked patch
    cases = [Case((attention, grid, 2, 3), {}, "attention_at(attention, grid=(3, 5), row=2, col=3): the first cell"),
             Case((attention, grid, 13, 21), {}, "attention_at(..., row=13, col=21)"),
             Case((attention, grid, 7, 31), {}, "attention_at(..., row=7, col=31): the last pixel of cells"),
             Case((attention, grid, 5, 9), {"cell": 4}, "attention_at(..., row=5, col=9, cell=4)"),
             Case((attention, grid, 11, 4), {"cell": 3}, "attention_at(..., row=11, col=4, cell=3)")]
    for other, (hf, wf), (row, col) in (((5, 3), (3, 4), (17, 30)), ((2, 8), (3, 2), (23, 9)),
                                         ((6, 4), (2, 5), (12, 39)), ((1, 7), (2, 2), (3, 12))):
        weights = torch.rand(2, other[0] * other[1], hf, wf, generator=gen)  # (B, L, Hf, Wf)
        weights = weights / weights.sum(dim=1, keepdim=True) * 0.9
        cases.append(Case((weights, other, row, col), {},
                          f"attention_at(attention of shape {tuple(weights.shape)}, grid={other}, row={row}, col={col})"))
    compare_cases(name, fn, attention_at_reference, cases,
                  "take attention[0, :, row // cell, col // cell] and reshape it to the background grid",
                  variants=lambda case: hinted_mistakes(name, _AT_HINTS, *case.args, **case.kwargs),
                  shape_hint="the result is the background grid, shape grid = (Hc, Wc)")
    expect_gradient(name, fn, attention_at_reference, cases[0], wrt=(0,))
