"""Checks for the generator exercises (notebook 07, lesson 07).

Exercises: ``stage_input`` (the 5-channel input of each stage), ``receptive_field`` (how
far the dilated convs let stage 1 see), ``compose_stages`` (stage 2's input image, with
gradients flowing back into stage 1), ``compose_stages_detached`` (the open variant: the
same input with the gradient into stage 1 stopped, for the detach ablation) and
``coarse_stage`` (stage 1 run layer by layer).
Each check compares the student's function with :mod:`course_lib.generator` /
:mod:`course_lib.receptive_field` on seeded inputs; on a mismatch it runs the planted
mistakes on the same input and names the one that gives the student's answer.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from course_lib import generator as G
from course_lib.receptive_field import receptive_field as rf_reference
from course_lib.seed import make_generator, seed_everything

from . import (Case, call, compare_cases, expect_close, expect_gradient, expect_tensor, fail,
               hinted_mistakes, register, require_phrases)

__all__ = ["coarse_stage_reference", "compose_stages_detached_reference"]

NB07 = "07_generator.ipynb"




# ---------------------------------------------------------------- stage_input

def _input_no_ones(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones * mask], dim=1)  # 4 channels: the ones channel is missing


def _input_swapped(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones * mask, ones], dim=1)


def _input_inverted(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, ones * (1.0 - mask)], dim=1)


def _input_unbroadcast(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones, mask], dim=1)  # fails for a shared (1, 1, H, W) mask and B > 1


def _input_hole_zeroed(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x * (1.0 - mask), ones, ones * mask], dim=1)  # x is changed


def _input_zeros_channel(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, torch.zeros_like(ones), ones * mask], dim=1)  # zeros where the ones go


_STAGE_INPUT_HINTS = {
    "all ones": "channel 3 must be all ones (torch.ones_like(x[:, :1])), not zeros: it marks the image "
                "inside the zero padding of every conv",
    "ones channel": "channel 3 is the ones channel: all ones, torch.ones_like(x[:, :1]); it marks "
                    "the image after zero padding (the release's stand-in for mirror padding)",
    "order": "the order is [x, ones, ones * mask]: 3 image channels, then the ones channel, then the mask",
    "1 = hole": "channel 4 is ones * mask with 1 = hole, as the mask comes in (do not invert it)",
    "shared mask": "a shared mask (1, 1, H, W) must become one per image: multiply ones (B, 1, H, W) "
                   "by the mask (broadcasting) instead of concatenating the mask itself",
    "as it comes": "channels 0-2 are x as it comes: do not multiply it by the mask (the caller has "
                   "already blanked the hole)",
}
_STAGE_INPUT_MISTAKES = {"ones channel": _input_no_ones, "order": _input_swapped,
                         "1 = hole": _input_inverted, "shared mask": _input_unbroadcast,
                         "as it comes": _input_hole_zeroed, "all ones": _input_zeros_channel}




require_phrases(_STAGE_INPUT_HINTS, _STAGE_INPUT_MISTAKES)


@register("stage_input", reference=G.stage_input, notebook=NB07,
          hint="stage_input(x, mask) -> (B, 5, H, W) = [x, ones, ones * mask]",
          mistakes=_STAGE_INPUT_MISTAKES)
def _check_stage_input(fn: Callable[..., Any]) -> None:
    """stage_input(x, mask) -> (B, 5, H, W) = [x, ones, ones * mask]."""
    name = "stage_input"
    gen = make_generator(7)
    x = torch.rand(2, 3, 8, 12, generator=gen) * 2 - 1  # (2, 3, 8, 12)
    per_image = (torch.rand(2, 1, 8, 12, generator=gen) > 0.5).float()  # (2, 1, 8, 12)
    variants = lambda case: hinted_mistakes(name, _STAGE_INPUT_HINTS, *case.args)  # noqa: E731
    compare_cases(name, fn, G.stage_input, [Case((x, per_image), {}, "stage_input(x, mask) with one mask per image")],
                  "compare your 5 channels with [x, ones, ones * mask] one by one", variants=variants)
    shared = per_image[:1]  # (1, 1, 8, 12), the release's one mask for the batch
    try:
        out = fn(x.clone(), shared.clone())
    except NotImplementedError:
        raise
    except Exception as err:
        fail(name, f"with a shared mask of shape (1, 1, 8, 12) and 2 images it raised "
                   f"{type(err).__name__}: {err}", _STAGE_INPUT_HINTS["shared mask"])
    expect_tensor(name, out, (2, 5, 8, 12), what="stage_input(x, shared mask)",
                  hint=_STAGE_INPUT_HINTS["shared mask"], dtype=torch.float32)
    small = (torch.rand(1, 3, 5, 7, generator=gen) * 2 - 1, (torch.rand(1, 1, 5, 7, generator=gen) > 0.5).float())
    compare_cases(name, fn, G.stage_input,
                  [Case((x, shared), {}, "stage_input(x, shared mask)"),
                   Case(small, {}, "stage_input on one 5x7 image")],
                  _STAGE_INPUT_HINTS["shared mask"], variants=variants)
    expect_gradient(name, fn, G.stage_input, Case((x, shared), {}, "stage_input(x, shared mask)"), wrt=(0,))


# ---------------------------------------------------------------- receptive_field

def _rf_no_dilation(layers):
    return rf_reference([(k, s, 1) for k, s, _ in layers])


def _rf_no_jump(layers):
    return [(r, 1) for r, _ in rf_reference([(k, 1, d) for k, _, d in layers])]


def _rf_from_zero(layers):
    return [(r - 1, j) for r, j in rf_reference(layers)]


def _rf_jump_after(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        j = j * s  # wrong: the jump of the layer's OUTPUT used for its own kernel
        r = r + (k - 1) * d * j
        out.append((r, j))
    return out


def _rf_dilation_in_jump(layers):
    r, j, out = 1, 1, []
    for k, s, d in layers:
        r = r + (k - 1) * d * j
        j = j * s * d  # wrong: the dilation does not change the spacing of the outputs
        out.append((r, j))
    return out


_RF_HINTS = {
    "dilation": "the dilation d widens a kernel to (k - 1) * d + 1 positions: add (k - 1) * d * j, "
                "not (k - 1) * j",
    "jump": "the jump j (input pixels between neighbouring positions) multiplies by the stride "
            "after each layer; later kernels step j pixels at a time",
    "start at r = 1": "start at r = 1 (before any layer, a pixel sees one input pixel: itself)",
    "before the update": "a layer's kernel steps by the jump of its input: use j from before the "
                         "update, and multiply j by the stride only after updating r",
    "stride only": "the jump multiplies by the stride only: a dilation spreads one kernel's taps, "
                   "it does not change how far apart the layer's outputs are",
}
_RF_MISTAKES = {"dilation": _rf_no_dilation, "jump": _rf_no_jump, "start at r = 1": _rf_from_zero,
                "before the update": _rf_jump_after, "stride only": _rf_dilation_in_jump}

_RF_CASES = (
    [(3, 1, 1), (3, 1, 1)],
    [(5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)],
    [(3, 1, 2), (3, 2, 1), (3, 1, 8)],
    [(7, 3, 1), (1, 1, 1), (3, 1, 3)],
)


require_phrases(_RF_HINTS, _RF_MISTAKES)


def _rf_pairs(name: str, layers: list, got: Any) -> list[tuple[int, int]]:
    """The student's result as a list of (r, j) ints, or a failure naming what it is instead."""
    shown = f"receptive_field({layers})"
    if got is None:
        fail(name, f"{shown} is None", "your function returns nothing: end it with `return out` "
             "(a function without a return statement gives None)")
    if not isinstance(got, list):
        kind = "a generator" if hasattr(got, "__next__") else f"a {type(got).__name__}"
        fail(name, f"{shown} is {kind}, expected a list",
             "return a list with one (r, j) pair per layer: append to a list instead of using "
             "yield or a generator expression, and do not return a tensor or a single pair")
    pairs = []
    for item in got:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            fail(name, f"{shown} holds {item!r}, expected (r, j) pairs",
                 "append one pair (r, j) per layer, the receptive field and the jump after that layer")
        r, j = item
        if isinstance(r, bool) or isinstance(j, bool) or not all(
                isinstance(v, int) or (isinstance(v, float) and v.is_integer()) or
                (isinstance(v, torch.Tensor) and v.numel() == 1) for v in (r, j)):
            fail(name, f"{shown} holds {item!r}, expected a pair of ints",
                 "r and j count pixels: keep them whole numbers (use // and *, not /)")
        pairs.append((int(r), int(j)))
    return pairs


@register("receptive_field", reference=rf_reference, notebook=NB07,
          hint="receptive_field([(k, s, d), ...]) -> [(r, j), ...]: r += (k - 1) * d * j, then j *= s",
          mistakes=_RF_MISTAKES)
def _check_receptive_field(fn: Callable[..., Any]) -> None:
    """receptive_field([(k, s, d), ...]) -> [(r, j), ...]: r += (k - 1) * d * j, then j *= s."""
    name = "receptive_field"
    empty = call(name, fn, [])
    if _rf_pairs(name, [], empty) != []:
        fail(name, f"an empty chain gave {empty!r}", "no layer, no entry: return []")
    results = [(layers, _rf_pairs(name, layers, call(name, fn, [tuple(layer) for layer in layers])))
               for layers in _RF_CASES]
    for layers, got in results:
        want = rf_reference(layers)
        if got == want:
            continue
        for phrase, wrong in _RF_MISTAKES.items():  # named only when it explains every chain
            if all(mine == wrong(chain) for chain, mine in results):
                fail(name, f"receptive_field({layers}) gave {got}, expected {want}", _RF_HINTS[phrase])
        smallest = next(([layers[:n], got[:n], want[:n]] for n in range(1, len(layers) + 1)
                         if got[:n] != want[:n]), None)
        fail(name, f"receptive_field({layers}) gave {got}, expected {want}"
             + (f"; already the first {len(smallest[0])} layer(s) {smallest[0]} differ: yours give "
                f"{smallest[1]}, course_lib's {smallest[2]}" if smallest else ""),
             "work the first two layers by hand: r = 1 + (k1 - 1) * d1, then j = s1, "
             "then r += (k2 - 1) * d2 * j")


# ---------------------------------------------------------------- compose_stages

def _compose_inverted(x1, x_in, mask):
    return x1 * (1.0 - mask) + x_in * mask


def _compose_detached(x1, x_in, mask):
    return x1.detach() * mask + x_in * (1.0 - mask)


def _compose_forgot(x1, x_in, mask):
    return x1


def _compose_soft(x1, x_in, mask):
    return x1 * mask + x_in  # the known pixels added in the hole as well


_COMPOSE_HINTS = {
    "inverted": "the mask is inverted: stage 1's pixels go where mask == 1 (the hole), the known "
                "pixels where mask == 0",
    "stop-gradient": "no stop-gradient (no .detach()): the release lets stage 2's losses train "
                     "stage 1 through the hole pixels",
    "known pixels": "put the known pixels back: outside the hole stage 2 must see x_incomplete, "
                    "not stage 1's (blurry) reconstruction",
    "1 - mask": "weigh x_incomplete by (1 - mask): inside the hole only stage 1's pixels count",
}
_COMPOSE_MISTAKES = {"inverted": _compose_inverted, "stop-gradient": _compose_detached,
                     "known pixels": _compose_forgot, "1 - mask": _compose_soft}


require_phrases(_COMPOSE_HINTS, _COMPOSE_MISTAKES)


@register("compose_stages", reference=G.compose_stages, notebook=NB07,
          hint="compose_stages(x_stage1, x_incomplete, mask) = x_stage1 * mask + x_incomplete * (1 - mask)",
          mistakes=_COMPOSE_MISTAKES)
def _check_compose_stages(fn: Callable[..., Any]) -> None:
    """compose_stages(x_stage1, x_incomplete, mask) = x_stage1 * mask + x_incomplete * (1 - mask)."""
    name = "compose_stages"
    gen = make_generator(11)
    x_in = torch.rand(2, 3, 6, 10, generator=gen) * 2 - 1  # (2, 3, 6, 10), not blanked: the hole holds values
    mask = torch.zeros(1, 1, 6, 10)  # (1, 1, 6, 10), shared, a box hole
    mask[..., 1:4, 2:7] = 1.0
    x1 = torch.rand(2, 3, 6, 10, generator=gen) * 2 - 1  # (2, 3, 6, 10)
    per_image = (torch.rand(2, 1, 6, 10, generator=gen) > 0.5).float()
    cases = [Case((x1, x_in, mask), {}, "compose_stages(x_stage1, x_incomplete, shared mask)"),
             Case((x1, x_in, per_image), {}, "compose_stages(x_stage1, x_incomplete, one mask per image)"),
             Case((x1[:1, :1, :2, :3], x_in[:1, :1, :2, :3], mask[..., 1:3, 1:4]), {}, "compose_stages on 2x3 pixels")]
    compare_cases(name, fn, G.compose_stages, cases, "inside the hole take x_stage1, outside x_incomplete",
                  variants=lambda case: hinted_mistakes(name, _COMPOSE_HINTS, *case.args))
    leaf = x1.clone().requires_grad_(True)
    out = call(name, fn, leaf, x_in, mask)
    if not out.requires_grad:
        fail(name, "the result carries no gradient back to x_stage1", _COMPOSE_HINTS["stop-gradient"])
    expect_gradient(name, fn, G.compose_stages, cases[0], wrt=(0, 1))


# ---------------------------------------------------------------- compose_stages_detached

def compose_stages_detached_reference(x_stage1: torch.Tensor, x_incomplete: torch.Tensor,
                                      mask: torch.Tensor) -> torch.Tensor:
    """The ablation of notebook 07: stage 2's input with the gradient into stage 1 stopped.

    Same values as :func:`course_lib.generator.compose_stages`; stage 2's losses then train
    stage 2 only (the release does NOT do this: ``build_inpaint_net`` has no stop-gradient).
    """
    return x_stage1.detach() * mask + x_incomplete * (1.0 - mask)  # (B, 3, H, W)


def _detached_not(x1, x_in, mask):
    return x1 * mask + x_in * (1.0 - mask)  # the release's composite: nothing stopped


def _detached_wrong_input(x1, x_in, mask):
    return x1 * mask + x_in.detach() * (1.0 - mask)  # stops the gradient of the known pixels instead


def _detached_inverted(x1, x_in, mask):
    return x1.detach() * (1.0 - mask) + x_in * mask


def _detached_forgot(x1, x_in, mask):
    return x1.detach()  # stage 1's pixels everywhere


_DETACHED_HINTS = {
    "x_stage1.detach()": "stop the gradient of x_stage1 itself (x_stage1.detach()), not of the mask or of "
                     "x_incomplete: stage 2's losses must not reach stage 1's output",
    "inverted": "the mask is inverted: stage 1's pixels go where mask == 1 (the hole), the known "
                "pixels where mask == 0",
    "known pixels": "put the known pixels back: outside the hole stage 2 must see x_incomplete, "
                    "not stage 1's (blurry) reconstruction",
}
_DETACHED_MISTAKES = {"x_stage1.detach()": _detached_not, "inverted": _detached_inverted,
                      "known pixels": _detached_forgot}
require_phrases(_DETACHED_HINTS, _DETACHED_MISTAKES)


@register("compose_stages_detached", reference=compose_stages_detached_reference, notebook=NB07,
          hint="compose_stages_detached(x_stage1, x_incomplete, mask): compose_stages's values, no "
               "gradient into x_stage1",
          mistakes=_DETACHED_MISTAKES)
def _check_compose_stages_detached(fn: Callable[..., Any]) -> None:
    """compose_stages_detached(x_stage1, x_incomplete, mask): compose_stages's values, no gradient into x_stage1."""
    name = "compose_stages_detached"
    gen = make_generator(17)
    x_in = torch.rand(2, 3, 6, 10, generator=gen) * 2 - 1  # (2, 3, 6, 10)
    mask = torch.zeros(1, 1, 6, 10)  # (1, 1, 6, 10), a shared box hole
    mask[..., 1:4, 2:7] = 1.0
    x1 = torch.rand(2, 3, 6, 10, generator=gen) * 2 - 1  # (2, 3, 6, 10)
    per_image = (torch.rand(2, 1, 6, 10, generator=gen) > 0.5).float()  # (2, 1, 6, 10)
    cases = [Case((x1, x_in, mask), {}, "compose_stages_detached(x_stage1, x_incomplete, shared mask)"),
             Case((x1, x_in, per_image), {}, "compose_stages_detached(x_stage1, x_incomplete, one mask per image)"),
             Case((x1[:1, :1, :2, :3].clone(), x_in[:1, :1, :2, :3].clone(), mask[..., 1:3, 1:4].clone()), {},
                  "compose_stages_detached on 2x3 pixels")]  # clones, not views: a detach_() is told apart below
    compare_cases(name, fn, compose_stages_detached_reference, cases,
                  "the values are compose_stages's: inside the hole x_stage1, outside x_incomplete",
                  variants=lambda case: hinted_mistakes(name, _DETACHED_HINTS, *case.args))
    # x_stage1 as stage 1 gives it: a non-leaf with a graph back to stage 1's weights
    weights = torch.linspace(0.5, 1.5, x1.numel()).view_as(x1)
    for m, what in ((mask, "a shared mask"), (per_image, "one mask per image")):
        source = x1.clone().requires_grad_(True)  # stands for stage 1's weights
        live = source * weights  # (2, 3, 6, 10), non-leaf, like stage 1's output
        known = x_in.clone().requires_grad_(True)
        with torch.enable_grad():
            out = call(name, fn, live, known, m)
            expect_tensor(name, out, tuple(x1.shape), "the result")
            if not live.requires_grad:
                fail(name, "it switched off the gradient of the caller's x_stage1 (an in-place detach_())",
                     "use x_stage1.detach(), which returns a new tensor, not x_stage1.detach_(), which "
                     "cuts the caller's own graph and with it stage 1's own losses")
            if out.requires_grad:
                try:
                    (out * _weight_for(out)).sum().backward()
                except Exception as err:  # noqa: BLE001 - the student's bug, reported with a hint
                    fail(name, f"backward through your result raised {type(err).__name__}", _DETACHED_HINTS["x_stage1.detach()"])
        leaked = source.grad is not None and bool((source.grad != 0).any())
        if leaked:
            share = "the hole" if bool((source.grad * (1.0 - m) == 0).all()) else "the image"
            fail(name, f"with {what}, the gradient of your result still reaches x_stage1 (in {share})",
                 _DETACHED_HINTS["x_stage1.detach()"])


def _weight_for(out: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2018)  # a fixed weighted sum: no cancellation by accident
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)


# ---------------------------------------------------------------- coarse_stage

def coarse_stage_reference(net: G.CoarseNetwork, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stage 1 as the release runs it (course_lib's :class:`CoarseNetwork`)."""
    return net(x, mask)


def _coarse_no_clip(net, x, mask):
    h = G.stage_input(x, mask)
    for name in net.LAYERS:
        h = getattr(net, name)(h)
    return h


def _coarse_tanh(net, x, mask):
    return torch.tanh(_coarse_no_clip(net, x, mask))


def _coarse_raw_input(net, x, mask):
    h = torch.cat([x, mask.expand(x.shape[0], 1, *x.shape[-2:])], dim=1)  # 4 channels: conv1 wants 5
    for name in net.LAYERS:
        h = getattr(net, name)(h)
    return h.clamp(-1, 1)


def _coarse_sorted(net, x, mask):
    h = G.stage_input(x, mask)
    for name in sorted(net.LAYERS):  # alphabetical: conv1, conv10_atrous, conv11, ... (wrong)
        h = getattr(net, name)(h)
    return h.clamp(-1, 1)


def _coarse_reblanked(net, x, mask):
    h = G.stage_input(x * (1.0 - mask), mask)  # the hole blanked once more
    for name in net.LAYERS:
        h = getattr(net, name)(h)
    return h.clamp(-1, 1)


_COARSE_HINTS = {
    "as it comes": "pass x on as it comes: stage_input(x, mask) does not blank the hole again (x * (1 - mask)); "
                   "the caller blanks it, and blanking it twice hides the hole's pixels from the gradient",
    "clip": "the output conv17 has no activation and the release clips it to [-1, 1] "
            "(h.clamp(-1, 1)); without the clip values leave the image range",
    "tanh": "the release clips (h.clamp(-1, 1)) instead of a tanh: tanh squashes values that "
            "are already inside [-1, 1]",
    "5-channel": "conv1 expects the 5-channel stage_input(x, mask), and the layers must run in "
                 "CoarseNetwork.LAYERS order (not sorted: 'conv10' sorts before 'conv2')",
}
_COARSE_MISTAKES = {"clip": _coarse_no_clip, "tanh": _coarse_tanh, "5-channel": _coarse_raw_input,
                    "LAYERS order": _coarse_sorted, "as it comes": _coarse_reblanked}
_COARSE_HINTS["LAYERS order"] = _COARSE_HINTS["5-channel"]


require_phrases(_COARSE_HINTS, _COARSE_MISTAKES)


@register("coarse_stage", reference=coarse_stage_reference, notebook=NB07,
          hint="coarse_stage(net, x, mask): stage_input, then net's layers in LAYERS order, then clip to [-1, 1]",
          mistakes=_COARSE_MISTAKES)
def _check_coarse_stage(fn: Callable[..., Any]) -> None:
    """coarse_stage(net, x, mask): stage_input, then net's layers in LAYERS order, then clip to [-1, 1]."""
    name = "coarse_stage"
    seed_everything(5)
    net = G.CoarseNetwork(cnum=4).eval()
    with torch.no_grad():  # push the raw output of the last conv out of [-1, 1] in places
        net.conv17.weight.mul_(8.0)
        net.conv17.bias.copy_(torch.tensor([1.5, -1.5, 0.0]))
    gen = make_generator(13)
    x = torch.rand(2, 3, 16, 24, generator=gen) * 2 - 1  # (2, 3, 16, 24)
    mask = torch.zeros(1, 1, 16, 24)  # (1, 1, 16, 24)
    mask[..., 4:12, 6:18] = 1.0
    # x is NOT blanked here: coarse_stage must pass it on as it comes (stage_input does not blank)
    with torch.no_grad():
        expected = net(x, mask)  # (2, 3, 16, 24)
        try:
            out = call(name, fn, net, x, mask)
        except AssertionError as err:
            if "channels" in str(err) or "expected input" in str(err):
                fail(name, f"running it on a CoarseNetwork(cnum=4) failed: {str(err).splitlines()[0]}",
                     _COARSE_HINTS["5-channel"])
            raise
        expect_close(name, out, expected, "coarse_stage(net, x, mask)",
                     "run stage_input(x, mask), then every layer of net.LAYERS in order, then clamp",
                     variants=hinted_mistakes(name, _COARSE_HINTS, net, x, mask))  # the crashing ones drop out
    expect_gradient(name, fn, coarse_stage_reference, Case((net, x, mask), {}, "coarse_stage(net, x, mask)"),
                    wrt=(1, 0), atol=1e-5, rtol=1e-3)


