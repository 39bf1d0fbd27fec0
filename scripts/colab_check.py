#!/usr/bin/env python
"""The widget notebooks in an environment built the way Colab's is (`make test-colab`).

Colab keeps its own packages: the notebooks' install cell adds course_lib, tqdm and ipycanvas
with ``--no-deps`` (``COLAB_PACKAGES`` in ``scripts/make_editions.py``), so the widgets meet
Colab's ipywidgets 7.7.1, not the ipywidgets 8 of ``make install``. Run with the Python of the
second venv that ``make test-colab`` builds (``.venv-colab``: torch 2.13.0 CPU, ipywidgets
7.7.1 with Colab's IPython and ipykernel, nbval), this script

1. installs the working tree's course_lib the way the install cell does (``pip install -q
   --no-deps <course_lib> tqdm "ipycanvas..."``, a regular, not editable, install);
2. writes a stand-in ``google.colab`` package onto that venv's path only (a ``.pth`` file in
   its site-packages) and an IPython start-up file that imports it in every kernel, as Colab's
   kernel has it imported; the stand-in's ``output.enable_custom_widget_manager()`` installs a
   display hook as Colab's does (``display_pub.register_hook``, adding the custom widget
   manager's metadata to every widget view) and both record what they see, one JSON line per
   event, in the file named by ``$COLAB_STANDIN_LOG``;
3. runs the widget tests of ``tests/test_plots.py``, ``test_painter.py`` and
   ``test_explorer.py`` under ipywidgets 7, then each widget notebook (both editions) under
   nbval with ``COURSE_LIB_CI=1``, and after each notebook checks the stand-in's record:
   ``enable_custom_widget_manager`` called before the first widget view, every widget view
   sent by ipywidgets' own display path (text/plain and the view, nothing else) and marked by
   the hook, and one folded still-picture note per widget of the course
   (``course_lib.plots.display_widget``).

Exits 1 with a sentence per failure. ``python scripts/colab_check.py 02`` runs only the
notebooks whose names start so.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import site
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# The notebooks with widgets, and how many display_widget calls each makes (both editions);
# the DOM classes that the painter and the explorer put on their boxes must be among them.
WIDGET_NOTEBOOKS = {
    "02_spatial_discount.ipynb": (1, set()),
    "04_softmax_attention.ipynb": (1, set()),
    "10_inference_and_evaluation.ipynb": (2, {"course-painter", "course-explorer"}),
}
UNIT_TESTS = ("tests/test_plots.py", "tests/test_painter.py", "tests/test_explorer.py")

# The stand-in google.colab: google/colab/__init__.py and google/colab/output/__init__.py.
STANDIN_INIT = '''"""Stand-in for Colab's google.colab, written by scripts/colab_check.py (make test-colab)."""
from google.colab import output  # noqa: F401  (Colab's package has it imported too)
'''
STANDIN_OUTPUT = '''"""Stand-in for google.colab.output: the custom widget manager's switch and display hook.

As Colab's: enable_custom_widget_manager() registers a display_pub hook that adds
{"colab": {"custom_widget_manager": {"url": ...}}} to the metadata of every message carrying a
widget view. Unlike Colab's, it records each call and each display message it sees, one JSON
line per event, in the file named by $COLAB_STANDIN_LOG.
"""
import json
import os

import IPython

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
URL = "https://example.invalid/colab-cdn-widget-manager/manager.min.js"
_installed = None


def _record(event, **fields):
    path = os.environ.get("COLAB_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\\n")


def _widget_facts(model_id):
    """Class name and DOM classes of the widget with this model id (ipywidgets 7 or 8 registry)."""
    import ipywidgets
    from ipywidgets.widgets import widget as module

    registry = getattr(module, "_instances", None)  # ipywidgets 8
    if not isinstance(registry, dict):
        registry = ipywidgets.Widget.widgets  # ipywidgets 7
    widget = registry.get(model_id)
    return (type(widget).__name__ if widget is not None else None,
            list(getattr(widget, "_dom_classes", ()) or ()))


def _hook(msg):
    content = msg.get("content") or {}
    data = content.get("data") or {}
    if WIDGET_VIEW in data:
        marked = _installed is not None
        if marked:
            content.setdefault("metadata", {}).setdefault(WIDGET_VIEW, {})["colab"] = {
                "custom_widget_manager": {"url": _installed}}
        name, classes = _widget_facts(data[WIDGET_VIEW].get("model_id"))
        _record("widget_view", mimetypes=sorted(data), marked=marked, widget=name, dom_classes=classes)
    elif "course-widget-fallback" in str(data.get("text/html", "")):
        html = str(data["text/html"])
        _record("fallback_note", has_png="data:image/png;base64," in html, has_code="<code>" in html)
    return msg


def enable_custom_widget_manager(version="5.0.0a"):
    global _installed
    _record("enable_custom_widget_manager", version=version)
    if _installed is None:
        IPython.get_ipython().display_pub.register_hook(_hook)
    _installed = URL


def disable_custom_widget_manager():
    global _installed
    _record("disable_custom_widget_manager")
    _installed = None
'''
STARTUP = ('# Written by scripts/colab_check.py: a Colab kernel has google.colab imported from the start.\n'
           'import google.colab  # noqa: F401\n')


def _load_make_editions():
    spec = importlib.util.spec_from_file_location("make_editions", ROOT / "scripts" / "make_editions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(command: Sequence[str], **kwargs) -> int:
    print("+", " ".join(command), flush=True)
    return subprocess.run(list(command), **kwargs).returncode


def install_like_colab() -> None:
    """pip-install the working tree's course_lib as the install cell installs it on Colab."""
    packages = _load_make_editions().COLAB_PACKAGES
    if run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)]):
        raise SystemExit("colab check: pip could not install course_lib from the working tree (see above)")
    if run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *packages]):
        raise SystemExit(f"colab check: pip could not install {' '.join(packages)} (see above)")


def write_standin(venv: Path) -> Path:
    """The stand-in google.colab under ``venv`` and the start-up file; returns the IPYTHONDIR to use."""
    package = venv / "colab-standin" / "google" / "colab"
    (package / "output").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(STANDIN_INIT, encoding="utf-8")
    (package / "output" / "__init__.py").write_text(STANDIN_OUTPUT, encoding="utf-8")
    (Path(site.getsitepackages()[0]) / "colab_standin.pth").write_text(str(venv / "colab-standin") + "\n")
    ipython_dir = venv / "colab-ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-google-colab.py").write_text(STARTUP, encoding="utf-8")
    return ipython_dir


def check_record(events: list[dict], expected: int, classes: set[str]) -> list[str]:
    """What went wrong in one notebook's stand-in record (empty: nothing)."""
    problems = []
    enables = [i for i, e in enumerate(events) if e["event"] == "enable_custom_widget_manager"]
    views = [i for i, e in enumerate(events) if e["event"] == "widget_view"]
    notes = [e for e in events if e["event"] == "fallback_note"]
    if not enables:
        problems.append("enable_custom_widget_manager() was never called")
    if not views:
        problems.append("no widget view was displayed")
    elif enables and enables[0] > views[0]:
        problems.append("a widget was displayed before enable_custom_widget_manager() was called")
    for i in views:
        e = events[i]
        if e["mimetypes"] != ["application/vnd.jupyter.widget-view+json", "text/plain"]:
            problems.append(f"a {e['widget']} was displayed with {e['mimetypes']}, not by ipywidgets' own display "
                            f"path (text/plain and the widget view only)")
        if not e["marked"]:
            problems.append(f"a {e['widget']} view was not marked by the custom widget manager's hook")
    if len(notes) != expected:
        problems.append(f"{len(notes)} still-picture notes for {expected} display_widget call(s)")
    problems += [f"a still-picture note lacks its {what}" for n in notes
                 for what, ok in (("PNG", n["has_png"]), ("code to run", n["has_code"])) if not ok]
    seen = {c for i in views for c in events[i]["dom_classes"]}
    problems += [f"no widget with the DOM class {c!r} was displayed" for c in sorted(classes - seen)]
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only notebooks whose file name starts with these (e.g. 10)")
    args = parser.parse_args(argv)

    import ipywidgets

    if not ipywidgets.__version__.startswith("7."):
        print(f"colab check: run this with the Python of `make test-colab`'s venv, which has Colab's ipywidgets "
              f"7.7.1; {sys.executable} has ipywidgets {ipywidgets.__version__}", file=sys.stderr)
        return 1
    venv = Path(sys.prefix)
    install_like_colab()
    ipython_dir = write_standin(venv)

    failures = []
    env = {**os.environ, "COURSE_LIB_CI": "1", "IPYTHONDIR": str(ipython_dir),
           "COURSE_LIB_SAMPLES": str(ROOT / "data" / "samples" / "images")}
    env.pop("COLAB_STANDIN_LOG", None)
    if run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "widget or colab or draw",
            *[str(ROOT / t) for t in UNIT_TESTS]], cwd=ROOT, env=env):
        failures.append(f"the widget tests fail under ipywidgets {ipywidgets.__version__} (see above)")

    notebooks = [ROOT / "notebooks" / edition / name for name in WIDGET_NOTEBOOKS for edition in ("", "solutions")
                 if not args.names or any(name.startswith(n) for n in args.names)]
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        for notebook in notebooks:
            where = notebook.relative_to(ROOT)
            log = Path(tmp) / f"{notebook.parent.name}-{notebook.stem}.jsonl"
            code = run([sys.executable, "-m", "pytest", "-q", "-p", "no:python", "-p", "no:cacheprovider",
                        "--nbval-lax", "--nbval-current-env", str(notebook)],
                       cwd=ROOT, env={**env, "COLAB_STANDIN_LOG": str(log)})
            if code:
                failures.append(f"{where} fails under nbval in the Colab-like environment (see above)")
            events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            expected, classes = WIDGET_NOTEBOOKS[notebook.name]
            problems = check_record(events, expected, classes)
            failures += [f"{where}: {p}" for p in problems]
            views = sum(e["event"] == "widget_view" for e in events)
            print(f"{where}: {views} widget view(s) through the stand-in's display hook, "
                  f"{'ok' if not problems else f'{len(problems)} problem(s)'}", flush=True)
    for line in failures:
        print(f"colab check: {line}", file=sys.stderr)
    if failures:
        return 1
    print(f"colab check: {len(notebooks)} notebook(s) pass with ipywidgets {ipywidgets.__version__} and a "
          f"stand-in google.colab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
