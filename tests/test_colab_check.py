"""scripts/colab_check.py (`make test-colab`): its stand-in google.colab and what it requires of a notebook.

The job itself runs in its own venv (ipywidgets 7.7.1); these tests check, in the main one,
that the stand-in behaves as Colab's ``google.colab.output`` does and that the record check
fails on each thing it is there to catch.
"""
from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _load_script():
    spec = importlib.util.spec_from_file_location("colab_check", ROOT / "scripts" / "colab_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cc = _load_script()


def _view(widget="VBox", mimetypes=(WIDGET_VIEW, "text/plain"), marked=True, classes=()):
    return {"event": "widget_view", "mimetypes": sorted(mimetypes), "marked": marked, "widget": widget,
            "dom_classes": list(classes)}


ENABLE = {"event": "enable_custom_widget_manager", "version": "5.0.0a"}
NOTE = {"event": "fallback_note", "has_png": True, "has_code": True}


def test_a_notebook_that_does_what_colab_expects_passes():
    assert cc.check_record([ENABLE, _view(), NOTE], 1, set()) == []
    events = [ENABLE, _view(classes=["course-painter"]), NOTE, ENABLE, _view(classes=["course-explorer"]), NOTE]
    assert cc.check_record(events, 2, {"course-painter", "course-explorer"}) == []


@pytest.mark.parametrize("events, expected, classes, phrase", [
    ([_view(), NOTE], 1, set(), "never called"),
    ([_view(), ENABLE, NOTE], 1, set(), "before enable_custom_widget_manager"),
    ([ENABLE, NOTE], 1, set(), "no widget view"),
    # a raw bundle with the still PNG beside the view (what display_widget sent before issue 22)
    ([ENABLE, _view(mimetypes=(WIDGET_VIEW, "text/plain", "image/png")), NOTE], 1, set(), "own display path"),
    ([ENABLE, _view(marked=False), NOTE], 1, set(), "not marked"),
    ([ENABLE, _view()], 1, set(), "0 still-picture notes for 1"),
    ([ENABLE, _view(), {**NOTE, "has_png": False}], 1, set(), "lacks its PNG"),
    ([ENABLE, _view(), NOTE, _view(), NOTE], 2, {"course-painter"}, "'course-painter'"),
])
def test_the_record_check_catches(events, expected, classes, phrase):
    problems = cc.check_record(events, expected, classes)
    assert any(phrase in p for p in problems), problems


def _standin_output(monkeypatch, tmp_path):
    """The stand-in google.colab.output, loaded with a fake IPython shell; returns (module, hooks, log)."""
    import IPython

    hooks = []
    shell = types.SimpleNamespace(display_pub=types.SimpleNamespace(register_hook=hooks.append))
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    log = tmp_path / "standin.jsonl"
    monkeypatch.setenv("COLAB_STANDIN_LOG", str(log))
    module = types.ModuleType("standin_output")
    exec(compile(cc.STANDIN_OUTPUT, "google/colab/output/__init__.py", "exec"), module.__dict__)
    return module, hooks, log


def test_the_standin_marks_widget_views_as_colabs_hook_does(monkeypatch, tmp_path):
    widgets = pytest.importorskip("ipywidgets")
    output, hooks, log = _standin_output(monkeypatch, tmp_path)
    output.enable_custom_widget_manager()
    output.enable_custom_widget_manager()  # a second call registers no second hook
    assert len(hooks) == 1
    box = widgets.VBox()
    box.add_class("course-painter")
    msg = {"msg_type": "display_data", "content": {"data": {"text/plain": "VBox()", WIDGET_VIEW: {
        "version_major": 2, "version_minor": 0, "model_id": box.model_id}}, "metadata": {}}}
    assert hooks[0](msg) is msg
    assert msg["content"]["metadata"][WIDGET_VIEW]["colab"]["custom_widget_manager"]["url"] == output.URL
    plain = {"msg_type": "display_data", "content": {"data": {"text/plain": "1"}, "metadata": {}}}
    assert hooks[0](plain)["content"]["metadata"] == {}  # only widget views are marked
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["enable_custom_widget_manager"] * 2 + ["widget_view"]
    assert events[2]["widget"] == "VBox" and events[2]["dom_classes"] == ["course-painter"] and events[2]["marked"]


def test_the_standin_stops_marking_once_disabled(monkeypatch, tmp_path):
    output, hooks, log = _standin_output(monkeypatch, tmp_path)
    output.enable_custom_widget_manager()
    output.disable_custom_widget_manager()
    msg = {"content": {"data": {WIDGET_VIEW: {"model_id": "not-a-widget"}}, "metadata": {}}}
    assert hooks[0](msg)["content"]["metadata"] == {}
    assert json.loads(log.read_text().splitlines()[-1])["marked"] is False


def test_the_job_installs_what_the_install_cell_installs():
    spec = importlib.util.spec_from_file_location("make_editions", ROOT / "scripts" / "make_editions.py")
    me = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(me)
    cell = me.install_source(me.CourseRepository("jdoe/deepfill-course", "v0.1.0"))
    assert '"--no-deps", url, ' + ", ".join(json.dumps(p) for p in me.COLAB_PACKAGES) + "]" in cell
    assert any(p.startswith("ipycanvas") for p in me.COLAB_PACKAGES)
    makefile = (ROOT / "Makefile").read_text()
    assert "ipywidgets==7.7.1" in makefile and "test-colab" in (ROOT / ".ci" / "run").read_text()
