"""Exercise checks: the registry that the course notebooks call.

Each exercise in a notebook asks the student to write one function. After the exercise
cell, the notebook runs ``fn = check("exercise_name", fn)``:

* if ``fn`` is right, a one-line success message is printed and ``fn`` comes back;
* if ``fn`` still raises ``NotImplementedError`` (the student edition's stub), a loud
  message says so and course_lib's reference implementation comes back instead, so the
  rest of the notebook still runs;
* if ``fn`` is wrong, an ``AssertionError`` is raised whose message names the likely
  mistake (wrong axis, missing normalisation, off-by-one, ...).

A check is a function ``_check(fn)`` that compares ``fn`` with the reference on edge cases
and seeded random inputs; it is registered with :func:`register`, together with planted
mistakes (``mistakes={"expected hint phrase": wrong_fn}``) that the test suite feeds to the
check to prove it fails on them with that hint (nbgrader's ``--invert`` idea).

Checks of each notebook live in a submodule (``checks/masks.py`` for notebooks 00-02,
``checks/attention.py`` for notebooks 03-06, ``checks/generator.py`` for notebook 07,
``checks/gan.py`` for notebook 08, ``checks/training.py`` for notebook 09), imported
at the end of this file.
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NoReturn, Optional

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
    except NotImplementedError:
        print(_banner([
            f"{name} is not implemented yet: using course_lib's reference",
            "so the rest of the notebook runs.",
            f"Exercise: {exercise.hint}" if exercise.hint else "Fill in the exercise cell above and re-run it.",
        ]))
        return exercise.reference
    print(f"[ok] {name}: your function passes every check.")
    return fn


# --------------------------------------------------------------------------------------
# Helpers for writing checks (used by the submodules; handy in notebooks too).
# --------------------------------------------------------------------------------------

def fail(name: str, problem: str, hint: str) -> NoReturn:
    """Raise the uniform failure: ``"<name>: <problem>\\nHint: <hint>"``."""
    raise AssertionError(f"{name}: {problem}\nHint: {hint}")


def call(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; ``NotImplementedError`` passes through, any other error
    becomes an ``AssertionError`` that shows the call that failed."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's bug, reported as a failed check
        shown = ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
        fail(name, f"calling it with ({shown}) raised {type(err).__name__}: {err}",
             "read the traceback above this message; run your function on that input by hand")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    return repr(value)


def expect_tensor(name: str, out: Any, shape: Optional[tuple[int, ...]] = None,
                  what: str = "the result", hint: str = "") -> torch.Tensor:
    """Fail unless ``out`` is a floating-point tensor (of ``shape`` when given, no NaN/inf)."""
    if not isinstance(out, torch.Tensor):
        fail(name, f"{what} is a {type(out).__name__}, expected a torch.Tensor",
             hint or "return a torch tensor (torch.as_tensor / torch.from_numpy convert arrays)")
    if shape is not None and tuple(out.shape) != tuple(shape):
        fail(name, f"{what} has shape {tuple(out.shape)}, expected {tuple(shape)}",
             hint or "check which axis you reduce over or build along (dims are B, C, H, W)")
    if not out.is_floating_point():
        fail(name, f"{what} has dtype {out.dtype}, expected a floating-point tensor",
             "convert with .float() (integer arithmetic truncates)")
    if not torch.isfinite(out).all():
        fail(name, f"{what} contains NaN or inf", "look for a division by zero or a log of 0")
    return out


def diagnose(actual: torch.Tensor, variants: Mapping[str, Any], atol: float = 1e-5,
             rtol: float = 1e-4) -> Optional[str]:
    """The key of the first variant whose value matches ``actual`` (shapes must agree), else None.

    ``variants`` maps a hint to the output a known wrong implementation gives on the same
    input (a tensor or a float); values that are None are skipped.
    """
    for hint, value in variants.items():
        if value is None:
            continue
        value = torch.as_tensor(value, dtype=actual.dtype)
        if value.shape == actual.shape and torch.allclose(actual, value, atol=atol, rtol=rtol):
            return hint
    return None


def expect_close(name: str, actual: Any, expected: torch.Tensor, what: str, hint: str,
                 variants: Optional[Mapping[str, Any]] = None, atol: float = 1e-5,
                 rtol: float = 1e-4) -> None:
    """Fail unless ``actual`` matches ``expected`` (shape and values).

    On a mismatch, ``variants`` (hint -> output of a known mistake) names the mistake when
    one of them matches; otherwise ``hint`` is used, with the largest difference shown.
    """
    expected = torch.as_tensor(expected)
    actual = expect_tensor(name, actual, what=what) if not isinstance(actual, (int, float)) \
        else torch.tensor(float(actual))
    actual = actual.to(expected.dtype) if expected.is_floating_point() else actual
    known = diagnose(actual, variants or {}, atol=atol, rtol=rtol) if variants else None
    if tuple(actual.shape) != tuple(expected.shape):
        fail(name, f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}", known or hint)
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol):
        diff = (actual - expected).abs()
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0]) if diff.dim() else ()
        fail(name, f"{what} differs from the reference by up to {diff.max().item():.3g}"
             + (f" (largest at index {where})" if where else ""), known or hint)


def run_mistakes(exercise: Exercise, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Outputs of the exercise's planted mistakes on one input (None where a mistake errors)."""
    outs: dict[str, Any] = {}
    for hint, wrong in exercise.mistakes.items():
        try:
            outs[hint] = wrong(*args, **kwargs)
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
_SUBMODULES = ("masks", "attention", "generator", "gan", "training")
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
