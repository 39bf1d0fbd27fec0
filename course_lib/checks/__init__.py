"""Exercise checks: the registry that the course notebooks call.

Each exercise in a notebook asks the student to write one function. After the exercise
cell, the notebook runs ``fn = check("exercise_name", fn)``:

* if ``fn`` is right, a one-line success message is printed and ``fn`` comes back;
* if ``fn`` still raises ``NotImplementedError`` (the student edition's stub), a loud
  message says so and course_lib's reference implementation comes back instead, so the
  rest of the notebook still runs;
* if ``fn`` is wrong, an ``AssertionError`` is raised whose message names the likely
  mistake in a sentence (wrong axis, missing normalisation, off-by-one, no gradient, an
  input changed in place, ...).

A check is a function ``_check(fn)`` that compares ``fn`` with the reference on edge cases,
non-default arguments and seeded random inputs; it is registered with :func:`register`,
together with planted mistakes (``mistakes={"expected hint phrase": wrong_fn}``) that the test
suite feeds to the check to prove it fails on them with that hint (nbgrader's ``--invert``
idea); the planted mistakes also name the student's mistake when one gives the same output.

The helpers below make every check robust in the same way: :func:`call` turns any exception
into a hint and fails when an input was changed in place; :func:`expect_tensor` /
:func:`expect_close` name a result of the wrong type (None, a Python float, a generator, a
NumPy array, a list), dtype or shape, each with its own hint; :func:`compare_cases` runs a
list of :class:`Case` inputs and names a planted mistake only when it gives the student's
result on every case (:func:`consistent_variants`: a mistake that merely coincides on one
input is not named); when none does, it shows the smallest case on which the two functions
differ; :func:`expect_gradient` compares the
gradient of a fixed random weighted sum of the output with the reference's (no gradient,
NaN/inf gradient, different gradient). :func:`check` itself turns an unexpected error of a
check into a failed check, so a wrong function never crashes it.

Checks of each notebook live in a submodule (``checks/masks.py`` for notebooks 00-02,
``checks/attention.py`` for notebooks 03-06, ``checks/generator.py`` for notebook 07,
``checks/gan.py`` for notebook 08, ``checks/training.py`` for notebook 09,
``checks/hands_on.py`` for notebook 10, ``checks/v2.py`` for notebook 11), imported
at the end of this file.
"""
from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence

import torch

__all__ = [
    "Exercise",
    "REGISTRY",
    "register",
    "check",
    "list_exercises",
    "get_exercise",
    "fail",
    "call",
    "expect_tensor",
    "expect_close",
    "expect_gradient",
    "compare_gradients",
    "compare_cases",
    "smallest_difference",
    "consistent_variants",
    "exception_hint",
    "Case",
    "diagnose",
    "run_mistakes",
    "hinted_mistakes",
    "require_phrases",
    "IMPORT_ERRORS",
]


@dataclass(frozen=True)
class Exercise:
    """One exercise: what the student writes, where, and how it is checked.

    Attributes:
        name: registry key, e.g. ``"spatial_discount"``.
        notebook: the notebook file that poses it, e.g. ``"02_spatial_discount.ipynb"``.
        reference: course_lib's implementation (what the stub falls back to).
        check: ``check(fn) -> None``; raises ``AssertionError`` with a hint when ``fn`` is wrong.
        hint: a one-line summary of what the exercise asks for.
        mistakes: planted wrong implementations, keyed by a phrase that the check's
            failure message must contain (case-insensitive) when given that mistake.
    """

    name: str
    notebook: str
    reference: Callable[..., Any]
    check: Callable[[Callable[..., Any]], None]
    hint: str = ""
    mistakes: Mapping[str, Callable[..., Any]] = field(default_factory=dict)


REGISTRY: dict[str, Exercise] = {}


def register(
    name: str,
    reference: Callable[..., Any],
    notebook: str,
    hint: str = "",
    mistakes: Optional[Mapping[str, Callable[..., Any]]] = None,
) -> Callable[[Callable[[Callable[..., Any]], None]], Callable[[Callable[..., Any]], None]]:
    """Decorator that registers a check function under ``name``.

    Example::

        @register("psnr", reference=metrics.psnr, notebook="01_inpainting_problem.ipynb",
                  mistakes={"[0, 255]": psnr_with_peak_255})
        def _check(fn):
            ...  # raise AssertionError("... hint ...") when fn is wrong

    Registering the same name twice raises ``ValueError`` (two notebooks must not share
    an exercise name by accident).
    """
    if not isinstance(name, str) or not name:
        raise TypeError("register(name, ...): name must be a non-empty string such as 'spatial_discount'")
    if not callable(reference):
        raise TypeError(f"register({name!r}, reference=...): reference must be a function, "
                        f"got {type(reference).__name__}")
    mistakes = dict(mistakes or {})
    for phrase, wrong in mistakes.items():
        if not isinstance(phrase, str) or not phrase or not callable(wrong):
            raise TypeError(f"register({name!r}, mistakes=...): use {{'hint phrase': wrong_function}}, "
                            f"got {phrase!r}: {type(wrong).__name__}")

    def decorator(check_fn: Callable[[Callable[..., Any]], None]) -> Callable[[Callable[..., Any]], None]:
        if name in REGISTRY:
            raise ValueError(f"exercise {name!r} is already registered (by {REGISTRY[name].notebook}); "
                             "pick another name")
        doc = (check_fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Exercise(name=name, notebook=notebook, reference=reference, check=check_fn,
                                  hint=hint or (doc[0] if doc else ""), mistakes=mistakes)
        return check_fn

    return decorator


def get_exercise(name: str) -> Exercise:
    """The registered exercise ``name``; a ``KeyError`` lists the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "(none registered)"
        raise KeyError(f"no exercise named {name!r}; known exercises: {known}") from None


def list_exercises(notebook: Optional[str] = None) -> list[str]:
    """Names of the registered exercises (of one notebook when ``notebook`` is given), sorted."""
    return sorted(n for n, ex in REGISTRY.items() if notebook is None or ex.notebook == notebook)


def _banner(lines: list[str]) -> str:
    width = max(len(line) for line in lines) + 4
    rule = "!" * width
    return "\n".join([rule] + [f"! {line:<{width - 4}} !" for line in lines] + [rule])


def check(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check the student's ``fn`` for exercise ``name``; return the function to use from now on.

    Returns ``fn`` when it passes; returns the reference (with a loud message) when ``fn``
    raises ``NotImplementedError``; lets the check's ``AssertionError`` (with its hint)
    propagate when ``fn`` is wrong.
    """
    exercise = get_exercise(name)
    if not callable(fn):
        raise TypeError(f"check({name!r}, fn): fn must be the function you wrote, got {type(fn).__name__}; "
                        f"pass the function itself, not its result (no parentheses)")
    try:
        exercise.check(fn)
    except AssertionError:
        raise
    except NotImplementedError:
        print(_banner([
            f"{name} is not implemented yet: using course_lib's reference",
            "so the rest of the notebook runs.",
            f"Exercise: {exercise.hint}" if exercise.hint else "Fill in the exercise cell above and re-run it.",
        ]))
        return exercise.reference
    except Exception as err:  # a check must never crash on a wrong function
        raise AssertionError(
            f"{name}: the check could not finish with your function ({type(err).__name__}: {err})\n"
            f"Hint: your function returned something the exercise does not ask for; compare its "
            f"result's type, dtype and shape with the exercise ({exercise.hint})") from err
    print(f"[ok] {name}: your function passes every check.")
    return fn


# --------------------------------------------------------------------------------------
# Helpers for writing checks (used by the submodules; handy in notebooks too).
#
# A check must never crash on a wrong function: every exception, every result of the
# wrong type, dtype or shape, every input changed in place and every gradient that does not
# reach the inputs becomes an ``AssertionError`` "<name>: <problem>\nHint: <sentence>".
# --------------------------------------------------------------------------------------

NO_GRADIENT_HINT = ("No gradient flows back through your result: did you compute under "
                    "torch.no_grad(), through NumPy, with .data or with .detach()? Use torch "
                    "operations on the input tensors themselves so that autograd can follow them.")
NAN_GRADIENT_HINT = ("The gradient is NaN or inf where course_lib's is finite: an eps or a clamp is in "
                     "the wrong place (for example sqrt(s) + eps instead of sqrt(s + eps), or a "
                     "division by a norm before it is clamped).")
GRADIENT_DIFFERS_HINT = ("The gradient differs from course_lib's although the values agree: part of "
                         "the computation is hidden from autograd (an in-place change through .data, "
                         "a .detach() on one term, or a value rebuilt with torch.tensor(...)).")
IN_PLACE_HINT = ("Your function must not modify its inputs: an in-place operation (x += ..., "
                 "x.mul_(...), x[...] = ..., a change through .data, or list.append/.pop on an "
                 "argument) overwrote {arg}, which the caller still needs; compute a new value "
                 "(x = x * ...) or work on a copy (x.clone(), list(layers)).")


@dataclass
class Case:
    """One input of a check: ``fn(*args, **kwargs)``, described as ``what`` in messages."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    what: str = ""


def fail(name: str, problem: str, hint: str) -> NoReturn:
    """Raise the uniform failure: ``"<name>: <problem>\\nHint: <hint>"``."""
    raise AssertionError(f"{name}: {problem}\nHint: {hint}")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, torch.nn.Module):
        return f"a {type(value).__name__}"
    if isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values()):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _shown(args: tuple, kwargs: Mapping[str, Any]) -> str:
    return ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])


_SIGNATURE_HINT = ("keep the exercise's signature: every argument it names, in that order, with its "
                   "default; the check passes the optional ones too")
_EXCEPTION_HINTS: tuple[tuple[str, str], ...] = (
    ("leaf variable that requires grad is being used in an in-place",
     "an in-place operation (x += ..., x.clamp_(...), x[...] = ...) changes an input that needs a "
     "gradient: compute a new tensor instead (x = x + ..., x.clamp(...))"),
    ("modified by an inplace operation",
     "an in-place operation overwrote a tensor that autograd still needs: use the out-of-place "
     "version (x = x * m instead of x *= m, x.clamp(...) instead of x.clamp_(...))"),
    ("numpy() on tensor that requires grad",
     "you convert a tensor to NumPy: stay with torch operations, which keep the gradient (NumPy cannot)"),
    ("view size is not compatible",
     "after a permute or transpose the tensor is not contiguous: use .reshape(...) (or "
     ".contiguous().view(...)) instead of .view(...)"),
    ("unexpected keyword argument", _SIGNATURE_HINT),
    ("positional argument", _SIGNATURE_HINT),
    ("does not require grad and does not have a grad_fn",
     "the tensor you differentiate with respect to must require a gradient: build x_hat, then "
     "x_hat = x_hat.detach().requires_grad_(True), and differentiate the critic's output on x_hat"),
    ("one of the differentiated tensors",
     "differentiate with respect to the tensor the critic was called on (x_hat itself, with "
     "requires_grad_(True)), not a copy or another tensor"),
    ("grad can be implicitly created only for scalar outputs",
     "torch.autograd.grad needs a scalar: differentiate critic(x_hat).sum() (or pass "
     "grad_outputs=torch.ones_like(scores))"),
    ("backward through the graph a second time",
     "call torch.autograd.grad(..., create_graph=True) so that the penalty can be differentiated again"),
    ("sizes of tensors must match",
     "in torch.cat every piece must have the same size except along the concatenated dim: give "
     "each piece the batch size of x (a shared (1, ...) mask must first be broadcast, e.g. ones * mask)"),
    ("must match the size",
     "two tensors' shapes do not fit together: print the shapes of your intermediate tensors and "
     "compare them with the exercise's shape comments"),
    ("can't be cast to the desired output type",
     "an in-place operation on an integer tensor (pixels /= 127.5 on uint8) cannot hold the "
     "fraction: convert first with x = x.float(), then compute out of place"),
    ("'nonetype' object",
     "a value is None: a helper returns nothing (a missing return statement), or an optional "
     "argument such as mask=None is used without handling the None case"),
    ("got nonetype",
     "a value is None: a helper returns nothing (a missing return statement), or an optional "
     "argument such as mask=None is used without handling the None case"),
    ("not implemented for 'bool'", "bool tensors do not support arithmetic: convert with .float() first"),
    ("not implemented for 'byte'", "uint8 tensors do not support this operation: convert with .float() first"),
    ("shape", "a shape does not fit: print the shapes of your intermediate tensors and compare them "
              "with the exercise's shape comments"),
    ("expected scalar type",
     "two tensors of different dtypes meet: create new tensors with the input's dtype "
     "(dtype=x.dtype, x.new_ones(...), torch.ones_like(x))"),
    ("dtype", "two tensors of different dtypes meet: create new tensors with the input's dtype "
              "(dtype=x.dtype, x.new_ones(...), torch.ones_like(x))"),
)


def exception_hint(err: BaseException) -> str:
    """One sentence that names the likely mistake behind an exception raised by a student's function."""
    text = str(err).lower()
    for key, hint in _EXCEPTION_HINTS:
        if key in text:
            return hint
    if isinstance(err, ZeroDivisionError):
        return "a division by zero: guard the denominator (clamp it, or handle the empty case first)"
    if isinstance(err, IndexError):
        return "an index runs past the end of a tensor or list: check your ranges, the padding and the batch dim"
    if isinstance(err, RecursionError):
        return "your function calls itself without end: call the course_lib or torch function, not your own name"
    if isinstance(err, NameError):
        return "a name is not defined: run the cells above (imports, earlier exercises) or fix the typo"
    return "read the traceback above this message and run your function on that input by hand"


_UNCHECKED = object()


def _snapshot(value: Any) -> Any:
    """A copy of ``value`` to compare with after a call (tensors, modules, containers, plain data)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return {k: v.detach().clone() for k, v in value.state_dict().items()}
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value)] + [_snapshot(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    return _UNCHECKED


def _unchanged(before: Any, value: Any) -> bool:
    if before is _UNCHECKED:
        return True
    if isinstance(value, torch.Tensor):
        if not isinstance(before, torch.Tensor) or value.shape != before.shape or value.dtype != before.dtype:
            return False
        now = value.detach()
        return bool(((now == before) | (now.isnan() & before.isnan()) if now.is_floating_point()
                     else (now == before)).all())
    if isinstance(value, torch.nn.Module):
        return _unchanged(before, {k: v for k, v in value.state_dict().items()})
    if isinstance(value, dict):
        return isinstance(before, dict) and before.keys() == value.keys() and \
            all(_unchanged(before[k], v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return isinstance(before, list) and before[0] is type(value) and len(before) == len(value) + 1 and \
            all(_unchanged(b, v) for b, v in zip(before[1:], value))
    try:
        return bool(before == value)
    except Exception:
        return True


def _arg_names(fn: Callable[..., Any], n_args: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [f"`{names[i]}`" if i < len(names) else f"argument {i + 1}" for i in range(n_args)]


def call(name: str, fn: Callable[..., Any], *args: Any, _mutable: Sequence[Any] = (), **kwargs: Any) -> Any:
    """Call the student's function and return its result.

    ``NotImplementedError`` passes through (the stub); any other error becomes a failed check
    that shows the call and names the likely mistake (:func:`exception_hint`). Inputs changed
    in place also fail the check, except the positions / keyword names listed in ``_mutable``.
    """
    before = [_snapshot(a) for a in args]
    before_kw = {k: _snapshot(v) for k, v in kwargs.items()}
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's bug, reported as a failed check
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        fail(name, f"calling it with ({_shown(args, kwargs)}) raised {type(err).__name__}: {first}",
             exception_hint(err))
    names = _arg_names(fn, len(args))
    for i, (b, a) in enumerate(zip(before, args)):
        if i not in _mutable and not _unchanged(b, a):
            fail(name, f"calling it with ({_shown(args, kwargs)}) changed its input {names[i]} in place",
                 IN_PLACE_HINT.format(arg=names[i]))
    for k, b in before_kw.items():
        if k not in _mutable and not _unchanged(b, kwargs[k]):
            fail(name, f"calling it with ({_shown(args, kwargs)}) changed its input `{k}` in place",
                 IN_PLACE_HINT.format(arg=f"`{k}`"))
    return out


def _type_problem(out: Any, what: str) -> Optional[tuple[str, str]]:
    """(problem, hint) when ``out`` is not a tensor, naming what it is instead."""
    if isinstance(out, torch.Tensor):
        return None
    if out is None:
        return (f"{what} is None", "your function returns nothing: end it with `return result` "
                "(a function without a return statement gives None)")
    if isinstance(out, (bool, int, float)):
        return (f"{what} is a Python {type(out).__name__} ({out!r}), expected a torch.Tensor",
                "keep the result a tensor: do not convert it with .item(), float() or the math "
                "module, which also cut the gradient")
    if inspect.isgenerator(out) or type(out).__name__ in ("map", "filter", "zip"):
        return (f"{what} is a {type(out).__name__}, expected a torch.Tensor",
                "a generator expression (... for ...) or a yield gives a generator, not a tensor: "
                "collect the pieces with torch.stack([...]) or torch.cat([...])")
    if type(out).__module__ == "numpy":
        return (f"{what} is a NumPy {type(out).__name__}, expected a torch.Tensor",
                "compute with torch operations instead of NumPy: NumPy cuts the gradient and "
                "torch.from_numpy would still leave it cut")
    if isinstance(out, (list, tuple)):
        return (f"{what} is a {type(out).__name__} of {len(out)} items, expected one torch.Tensor",
                "combine the pieces into one tensor with torch.stack([...]) or torch.cat([...])")
    return (f"{what} is a {type(out).__name__}, expected a torch.Tensor",
            "return a torch tensor, as the exercise's docstring says")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def expect_tensor(name: str, out: Any, shape: Optional[tuple[int, ...]] = None,
                  what: str = "the result", hint: str = "", dtype: Optional[torch.dtype] = None,
                  finite: bool = True) -> torch.Tensor:
    """Fail unless ``out`` is a floating-point tensor (of ``dtype`` and ``shape`` when given, finite).

    ``hint`` is used for a wrong shape only: a result of the wrong type or dtype gets a hint
    that names that mistake.
    """
    problem = _type_problem(out, what)
    if problem:
        fail(name, *problem)
    if not out.is_floating_point():
        fail(name, f"{what} has dtype {_dtype_name(out.dtype)}, expected a floating-point tensor"
             + (f" ({_dtype_name(dtype)})" if dtype is not None else ""),
             "convert with .float() (a comparison gives a bool tensor, integer division truncates)")
    if dtype is not None and out.dtype != dtype:
        if out.dtype == torch.float64:
            fix = ("float64 comes from torch.arange/torch.tensor with dtype=torch.float64, from "
                   "NumPy or from .double(): convert the result with .float() (or .to(x.dtype))")
        else:
            fix = (f"keep the inputs' dtype ({_dtype_name(dtype)}): create new tensors with "
                   "dtype=x.dtype, x.new_ones(...) or torch.ones_like(x), not with a fixed dtype")
        fail(name, f"{what} has dtype {_dtype_name(out.dtype)}, expected {_dtype_name(dtype)}", fix)
    if shape is not None and tuple(out.shape) != tuple(shape):
        fail(name, f"{what} has shape {tuple(out.shape)}, expected {tuple(shape)}",
             hint or "check which axis you reduce over or build along (dims are B, C, H, W)")
    if finite and not torch.isfinite(out).all():
        fail(name, f"{what} contains NaN or inf", "look for a division by zero, a log of 0 or an "
             "exp that overflows")
    return out


def diagnose(actual: torch.Tensor, variants: Mapping[str, Any], atol: float = 1e-5,
             rtol: float = 1e-4) -> Optional[str]:
    """The key of the first variant whose value matches ``actual`` (shapes must agree), else None.

    ``variants`` maps a hint to the output a known wrong implementation gives on the same
    input (a tensor or a float); values that are None (or not numbers) are skipped.
    """
    for hint, value in variants.items():
        if value is None:
            continue
        if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
            value = value[0]
        try:
            value = torch.as_tensor(value).detach().to(actual.dtype)
        except Exception:
            continue
        if value.shape == actual.shape and torch.allclose(actual.detach(), value, atol=atol, rtol=rtol,
                                                          equal_nan=True):
            return hint
    return None


def _format_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        head = f"tensor of shape {tuple(t.shape)}"
        if t.numel() <= 48:
            vals = t.double().round(decimals=4).tolist() if t.is_floating_point() else t.tolist()
            return f"{head} {vals}"
        flat = t.flatten()[:8]
        vals = flat.double().round(decimals=4).tolist() if t.is_floating_point() else flat.tolist()
        return f"{head} starting {vals} ..."
    return _describe(value)


def _size(case: Case) -> int:
    total = 0
    for value in list(case.args) + list(case.kwargs.values()):
        if isinstance(value, torch.Tensor):
            total += value.numel()
        elif isinstance(value, (list, tuple)):
            total += len(value)
    return total


def _clone_args(values: Any) -> Any:
    if isinstance(values, torch.Tensor):
        return values.detach().clone()
    if isinstance(values, tuple):
        return tuple(_clone_args(v) for v in values)
    if isinstance(values, list):
        return [_clone_args(v) for v in values]
    if isinstance(values, dict):
        return {k: _clone_args(v) for k, v in values.items()}
    return values


def _differs(out: Any, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(expected.shape):
        return True
    return not torch.allclose(out.detach().to(expected.dtype), expected, atol=atol, rtol=rtol)


def smallest_difference(fn: Callable[..., Any], reference: Callable[..., Any], cases: Sequence[Case],
                        select: Callable[[Any], Any] = lambda out: out, atol: float = 1e-5,
                        rtol: float = 1e-4) -> str:
    """Text showing the smallest case on which ``fn`` and ``reference`` differ, with both outputs."""
    for case in sorted(cases, key=_size):
        try:
            expected = select(reference(*_clone_args(case.args), **_clone_args(case.kwargs)))
            out = select(fn(*_clone_args(case.args), **_clone_args(case.kwargs)))
        except BaseException:  # noqa: BLE001 - only looking for a difference to show
            continue
        if isinstance(expected, torch.Tensor) and _differs(out, expected, atol, rtol):
            inputs = "; ".join(_format_value(a) for a in case.args)
            if case.kwargs:
                inputs += "; " + ", ".join(f"{k}={_format_value(v)}" for k, v in case.kwargs.items())
            return (f". The smallest input on which yours and course_lib's differ is {case.what or 'this one'}"
                    f" (inputs: {inputs}); yours gives {_format_value(out)}, course_lib's gives "
                    f"{_format_value(expected)}")
    return ""


def _value_problem(actual: torch.Tensor, expected: torch.Tensor, what: str) -> str:
    diff = torch.nan_to_num((actual.detach().to(expected.dtype) - expected).abs(), nan=float("inf"))
    where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0]) if diff.dim() else ()
    return (f"{what} differs from course_lib's by up to {diff.max().item():.3g}"
            + (f" (largest at index {where})" if where else ""))


def expect_close(name: str, actual: Any, expected: torch.Tensor, what: str, hint: str,
                 variants: Optional[Mapping[str, Any]] = None, atol: float = 1e-5,
                 rtol: float = 1e-4, shape_hint: str = "", show: str = "",
                 allow_nonfinite: bool = False) -> torch.Tensor:
    """Fail unless ``actual`` is a tensor of ``expected``'s dtype, shape and values.

    On a mismatch, ``variants`` (hint -> output of a known mistake) names the mistake when
    one of them matches; otherwise ``hint`` is used (``shape_hint`` for a wrong shape), with
    the largest difference and ``show`` (e.g. :func:`smallest_difference`'s text) added.
    """
    expected = torch.as_tensor(expected).detach()
    problem = _type_problem(actual, what)
    if problem:
        fail(name, *problem)
    dtype = expected.dtype if expected.is_floating_point() else None
    expect_tensor(name, actual, what=what, dtype=dtype, finite=False)
    known = diagnose(actual, variants or {}, atol=atol, rtol=rtol) if variants else None
    if tuple(actual.shape) != tuple(expected.shape):
        fail(name, f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
             + ("" if known else show), known or shape_hint or hint)
    same = torch.allclose(actual.detach().to(expected.dtype), expected, atol=atol, rtol=rtol,
                          equal_nan=allow_nonfinite)
    if same:
        return actual
    if known:
        fail(name, _value_problem(actual, expected, what), known)
    if not torch.isfinite(actual).all() and torch.isfinite(expected).all():
        fail(name, f"{what} contains NaN or inf where course_lib's is finite" + show,
             "look for a division by zero, a log of 0, or an exp that overflows (subtract the "
             "maximum before exp, or use torch.softmax)")
    fail(name, _value_problem(actual, expected, what) + show, hint)


def compare_cases(name: str, fn: Callable[..., Any], reference: Callable[..., Any],
                  cases: Sequence[Case], hint: str,
                  variants: Optional[Callable[[Case], Mapping[str, Any]]] = None,
                  select: Callable[[Any], Any] = lambda out: out, atol: float = 1e-5,
                  rtol: float = 1e-4, shape_hint: str = "", mutable: Sequence[Any] = ()) -> list[Any]:
    """Run ``fn`` on every case and compare with ``reference`` (each on its own copies).

    ``variants(case)`` gives ``{full hint: output}`` of the planted mistakes on that case
    (see :func:`hinted_mistakes`); when none explains a wrong result, the message shows the
    smallest case on which the two functions differ. Returns the student's outputs.
    """
    outs = []
    for case in cases:
        expected = select(reference(*_clone_args(case.args), **_clone_args(case.kwargs)))
        out = call(name, fn, *case.args, _mutable=mutable, **case.kwargs)
        picked = select(out) if isinstance(out, tuple) else out
        try:
            same = not _differs(picked, expected, atol, rtol)
        except Exception:
            same = False
        if same and isinstance(picked, torch.Tensor) and picked.dtype == expected.dtype:
            outs.append(out)
            continue
        problem = _type_problem(picked, case.what)
        if problem:
            fail(name, *problem)
        known = consistent_variants(fn, case, cases, variants, picked, select, atol, rtol) if variants else None
        show = "" if (known and diagnose(picked, known, atol, rtol)) else \
            smallest_difference(fn, reference, cases, select, atol, rtol)
        expect_close(name, picked, expected, case.what, hint, variants=known, atol=atol, rtol=rtol,
                     shape_hint=shape_hint, show=show)
        outs.append(out)
    return outs


def _same_output(a: Any, b: Any, atol: float, rtol: float) -> bool:
    """Whether two outputs agree (tensors within tolerance, NaN equal to NaN; None with None)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, tuple) and a and isinstance(a[0], torch.Tensor):
        a = a[0]
    if isinstance(b, tuple) and b and isinstance(b[0], torch.Tensor):
        b = b[0]
    try:
        a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
        if a.shape != b.shape:
            return False
        return bool(torch.allclose(a.to(torch.float64), b.to(torch.float64), atol=atol, rtol=rtol,
                                   equal_nan=True))
    except Exception:
        return False


def consistent_variants(fn: Callable[..., Any], case: Case, cases: Sequence[Case],
                        variants: Callable[[Case], Mapping[str, Any]], picked: Any,
                        select: Callable[[Any], Any] = lambda out: out, atol: float = 1e-5,
                        rtol: float = 1e-4) -> dict[str, Any]:
    """The planted mistakes of ``variants(case)`` that explain ``fn`` on EVERY case, not only on ``case``.

    A mistake whose output happens to equal the student's on one input (a hinge that is
    inactive there, a transpose of a symmetric box) must not be named: it is kept only
    when it gives the student's output on each of ``cases`` (a case on which either of them
    raises is no evidence). Returns ``{hint: output on case}`` for the mistakes kept.
    """
    here = {hint: out for hint, out in variants(case).items() if _same_output(picked, out, atol, rtol)}
    if not here:
        return {}
    for other in sorted(cases, key=_size):  # the small cases first: a mismatch is found cheaply
        if other is case or not here:
            continue
        try:
            mine = fn(*_clone_args(other.args), **_clone_args(other.kwargs))
            mine = select(mine) if isinstance(mine, tuple) else mine
        except BaseException:  # noqa: BLE001 - a crash is compared like an output
            mine = None
        subset = getattr(variants, "only", None)
        theirs = subset(other, set(here)) if subset is not None else variants(other)
        if mine is None:
            continue  # a crash on another case is no evidence either way (it is reported on its own)
        here = {hint: out for hint, out in here.items()
                if theirs.get(hint) is None or _same_output(mine, theirs.get(hint), atol, rtol)}
    return here


def _weight_like(out: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(20180618)  # fixed: the same weighted sum for both functions
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)


def _grads(tensors: Sequence[torch.Tensor]) -> list[Optional[torch.Tensor]]:
    return [None if t.grad is None else t.grad.detach().clone() for t in tensors]


def compare_gradients(name: str, what: str, got: Sequence[Optional[torch.Tensor]],
                      want: Sequence[Optional[torch.Tensor]], labels: Sequence[str],
                      atol: float = 1e-5, rtol: float = 1e-4, hint: str = "", nan_hint: str = "") -> None:
    """Fail with the gradient hints unless every ``got`` matches ``want`` (None counts as zeros)."""
    for g, w, label in zip(got, want, labels):
        if w is None or not bool((w != 0).any()):
            continue  # no gradient expected here
        if g is None or not bool((g != 0).any()):
            fail(name, f"{what}: no gradient reaches {label}", NO_GRADIENT_HINT)
        if not torch.isfinite(g).all() and torch.isfinite(w).all():
            fail(name, f"{what}: the gradient with respect to {label} contains NaN or inf",
                 nan_hint or NAN_GRADIENT_HINT)
        if not torch.allclose(g.to(w.dtype), w, atol=atol, rtol=rtol, equal_nan=True):
            diff = torch.nan_to_num((g.to(w.dtype) - w).abs(), nan=float("inf")).max().item()
            fail(name, f"{what}: the gradient with respect to {label} differs from course_lib's by up "
                       f"to {diff:.3g}", hint or GRADIENT_DIFFERS_HINT)


def expect_gradient(name: str, fn: Callable[..., Any], reference: Callable[..., Any], case: Case,
                    wrt: Sequence[Any], select: Callable[[Any], Any] = lambda out: out,
                    atol: float = 1e-5, rtol: float = 1e-4, hint: str = "", nan_hint: str = "") -> None:
    """Compare the gradient of a fixed random weighted sum of the output with the reference's.

    ``wrt`` lists the positions (ints) or keyword names of the tensor inputs to differentiate
    with respect to; :class:`torch.nn.Module` inputs there contribute their parameters.
    Call it after the values were checked (the gradient hints assume they agree).
    """
    def prepared() -> tuple[tuple, dict, list[torch.Tensor], list[str]]:
        args, kwargs = list(_clone_args(case.args)), dict(_clone_args(case.kwargs))
        leaves, labels = [], []
        names = _arg_names(reference, len(args))
        for key in wrt:
            holder, label = (args, names[key]) if isinstance(key, int) else (kwargs, f"`{key}`")
            value = holder[key]
            if isinstance(value, torch.nn.Module):
                value.zero_grad(set_to_none=True)
                for pname, p in value.named_parameters():
                    leaves.append(p)
                    labels.append(f"the parameter {pname}")
            else:
                holder[key] = value.detach().clone().requires_grad_(True)
                leaves.append(holder[key])
                labels.append(label)
        return tuple(args), kwargs, leaves, labels

    args, kwargs, leaves, labels = prepared()
    with torch.enable_grad():
        expected = select(reference(*args, **kwargs))
        (expected * _weight_like(expected)).sum().backward()
    want = _grads(leaves)
    args, kwargs, leaves, labels = prepared()
    with torch.enable_grad():
        out = call(name, fn, *args, **kwargs)
        out = select(out) if isinstance(out, tuple) else out
        problem = _type_problem(out, case.what)
        if problem:
            fail(name, *problem)
        if not out.requires_grad:
            fail(name, f"{case.what}: the result carries no gradient", NO_GRADIENT_HINT)
        try:
            (out * _weight_like(out)).sum().backward()
        except Exception as err:
            fail(name, f"{case.what}: backward through your result raised {type(err).__name__}: "
                       f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}", exception_hint(err))
    compare_gradients(name, case.what, _grads(leaves), want, labels, atol=atol, rtol=rtol, hint=hint,
                      nan_hint=nan_hint)
    for leaf in leaves:
        leaf.grad = None


def run_mistakes(exercise: Exercise, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Outputs of the exercise's planted mistakes on one input (None where a mistake errors)."""
    outs: dict[str, Any] = {}
    for hint, wrong in exercise.mistakes.items():
        try:
            outs[hint] = wrong(*_clone_args(args), **_clone_args(kwargs))
        except Exception:
            outs[hint] = None
    return outs


def hinted_mistakes(name: str, hints: Mapping[str, str], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``{full hint: output}`` of exercise ``name``'s planted mistakes on one input.

    For :func:`expect_close`'s ``variants``: ``hints`` maps each mistake's phrase to the
    hint the student should read; mistakes that raise on this input are left out.
    """
    outs = run_mistakes(get_exercise(name), *args, **kwargs)
    return {hints[phrase]: out for phrase, out in outs.items() if out is not None}


def require_phrases(hints: Mapping[str, str], mistakes: Mapping[str, Any]) -> None:
    """Raise unless every planted mistake's phrase appears in its hint (the test suite looks for it)."""
    for phrase in mistakes:
        if phrase not in hints or phrase.lower() not in hints[phrase].lower():
            raise AssertionError(f"the hint for the planted mistake {phrase!r} must contain the phrase")


# Submodules register their exercises on import. A half-written submodule must not hide
# the others while the course is being written, so an import error becomes a warning.
_SUBMODULES = ("masks", "attention", "generator", "gan", "training", "hands_on", "v2")
IMPORT_ERRORS: dict[str, str] = {}
for _sub in _SUBMODULES:
    try:
        importlib.import_module(f"{__name__}.{_sub}")
    except ModuleNotFoundError as _err:  # not written yet: nothing to register
        if _err.name != f"{__name__}.{_sub}":
            IMPORT_ERRORS[_sub] = f"{type(_err).__name__}: {_err}"
            warnings.warn(f"course_lib.checks.{_sub} failed to import ({IMPORT_ERRORS[_sub]}); "
                          f"its exercises are not registered", RuntimeWarning, stacklevel=2)
    except Exception as _err:  # pragma: no cover - only while a submodule is broken
        IMPORT_ERRORS[_sub] = f"{type(_err).__name__}: {_err}"
        warnings.warn(f"course_lib.checks.{_sub} failed to import ({IMPORT_ERRORS[_sub]}); "
                      f"its exercises are not registered", RuntimeWarning, stacklevel=2)
del _sub
