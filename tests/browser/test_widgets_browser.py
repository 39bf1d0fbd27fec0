"""The notebooks' widgets in a real browser: JupyterLab + headless Chromium (``make test-browser``).

Marked ``browser`` and deselected by ``make test`` / ``pytest tests`` (see pyproject's
pytest ``addopts``): it needs Chromium and takes a minute or two. For every notebook (both
editions) that creates a widget, in a temporary copy of ``notebooks/`` with the stored
outputs cleared, it:

1. starts JupyterLab on 127.0.0.1, a free port, a random token, with ``COURSE_LIB_CI=1``
   (tiny sizes, as in CI) and its settings in a temporary folder (no cell virtualisation,
   no news or update checks);
2. opens the notebook, runs Run > Run All Cells and waits until every code cell has run and
   the kernel is idle;
3. focuses each slider handle / dropdown, presses arrow keys and asserts that the picture
   (or text) in the widget's own output area changes; paints a stroke on each mask painter
   (mouse down, drag, up) and asserts that its coarse / refined / flow pictures change; clicks
   twice on each attention explorer and asserts that its figure changes;
4. saves the notebook and asserts that no cell stored an error output, that no output area
   shows a traceback, and that the browser logged no console error.

Console messages that are ignored (harmless, not from the course): none of type ``error``
are ignored except the ones matched by ``HARMLESS_CONSOLE_ERRORS`` below.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
WIDGET_CALL = re.compile(r"\b(widgets\.\w+\(|interact\w*\(|\w+_widget\(|display_widget\()")
# Console errors that say nothing about the course's notebooks: a missing favicon.
HARMLESS_CONSOLE_ERRORS = (
    re.compile(r"favicon"),
)
T = TypeVar("T")
RUN_TIMEOUT_S = 300  # all cells of one notebook under COURSE_LIB_CI=1 on 2 CPU cores
CHANGE_TIMEOUT_S = 60  # one widget redraw


def widget_notebooks() -> list[Path]:
    """Both editions of every notebook whose code creates or displays a widget."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # the Colab install cell mentions ipywidgets in a comment only
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))
        if WIDGET_CALL.search(code):
            found.append(path)
    return found


def chromium_path() -> str:
    """Chromium from $CHROMIUM or the PATH (Debian's ``chromium``); skip naming what to install."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("the browser test needs Chromium: `apt-get install -y chromium` (Debian/Ubuntu) "
                    "or set CHROMIUM=/path/to/chromium")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab_settings(folder: Path) -> None:
    """User settings: every cell in the DOM (no windowing), no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """A JupyterLab server on a temporary copy of notebooks/ (outputs cleared): (url, token, root)."""
    pytest.importorskip("playwright", reason="the browser test needs playwright: `make test-browser` installs it")
    chromium_path()
    base = tmp_path_factory.mktemp("lab")
    root = base / "course"
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    for path in (root / "notebooks").rglob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb["metadata"].pop("widgets", None)
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    write_lab_settings(base / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_LIB_CI": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "2"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "JUPYTER_CONFIG_DIR": str(base / "config")}
    log = open(base / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--ServerApp.open_browser=False"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI runs as root
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; its log:\n{(base / 'lab.log').read_text()}")
                time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab: tuple[str, str, Path]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def run_all_cells(page, timeout_s: float) -> None:
    """Run > Run All Cells, then wait until every code cell shows an execution count and the kernel is idle."""
    # the indicator says idle before a kernel is attached: wait for the kernel's name too
    page.wait_for_function("""() => {
        const name = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName');
        const dot = document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
        return name && /Python/.test(name.textContent) && dot;
    }""", timeout=120_000)
    page.get_by_role("menuitem", name=re.compile(r"^Run$")).first.click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).first.click()
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
    deadline = time.monotonic() + timeout_s
    while True:
        texts = prompts.all_inner_texts()
        done = texts and all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in texts)
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() == 1
        if done and idle:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook did not finish in {timeout_s} s; prompts: {texts}")
        time.sleep(1.0)


def output_state(widget_box) -> str:
    """What a widget's own Output shows: the src of its pictures, else its text."""
    output = widget_box.locator(".widget-output").first
    images = output.locator("img")
    srcs = [images.nth(i).get_attribute("src") or "" for i in range(images.count())]
    return "|".join(srcs) if srcs else output.inner_text()


def poll(read: Callable[[], T], done: Callable[[T], bool], failure: str) -> T:
    """``read()`` every 0.25 s until ``done(value)``; after CHANGE_TIMEOUT_S fail with ``failure`` and the last value."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} within {CHANGE_TIMEOUT_S} s (last seen: {str(value)[:200]!r})")
        time.sleep(0.25)


def wait_for_change(widget_box, before: str, what: str) -> str:
    return poll(lambda: output_state(widget_box), lambda now: bool(now) and now != before,
                f"{what}: the widget's output did not change")


def pictures(box) -> str:
    """The src of every picture in a widget box (ipywidgets.Image and Output pictures alike)."""
    images = box.locator("img")
    return "|".join(images.nth(i).get_attribute("src") or "" for i in range(images.count()))


def wait_for_pictures(box, before: str, what: str) -> str:
    return poll(lambda: pictures(box), lambda now: bool(now) and now != before, f"{what}: no picture changed")


def paint_a_stroke(painter, what: str) -> None:
    """Press, drag across the canvas and release, as a student does; the three results must be redrawn."""
    canvas = painter.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box and box["width"] > 50, f"{what}: the canvas is not rendered"
    before = pictures(painter)
    assert before.count("|") >= 2, f"{what}: the coarse, refined and flow pictures are missing"
    status = painter.locator(".painter-status").first

    def stroke(fy: float) -> None:
        mouse = painter.page.mouse
        x0, y0 = box["x"] + 0.2 * box["width"], box["y"] + fy * box["height"]
        mouse.move(x0, y0)
        mouse.down()
        for k in range(1, 11):
            mouse.move(x0 + 0.06 * k * box["width"], y0 - 0.04 * k * box["height"])
        mouse.up()

    def strokes_and_hole() -> tuple[int, float]:
        text = status.inner_text()
        found = re.search(r"(\d+) stroke\(s\), hole ([\d.]+) %.*filled in", text)
        assert found, f"{what}: the status line says {text!r}"
        return int(found.group(1)), float(found.group(2))

    def wait_for_strokes(n: int, doing: str) -> tuple[int, float]:
        poll(status.inner_text, lambda text: re.search(rf"\b{n} stroke\(s\)", text) is not None,
             f"{what}: {doing}: the status did not count {n} strokes")
        return strokes_and_hole()

    n0, hole0 = strokes_and_hole()  # the notebook paints one stroke before it shows the painter
    stroke(0.7)  # from (0.2, 0.7) to (0.8, 0.3) of the canvas
    n1, hole1 = wait_for_strokes(n0 + 1, "painted a stroke")
    before = wait_for_pictures(painter, before, f"{what}: painted a stroke")
    assert hole1 > hole0, f"{what}: a stroke did not grow the hole ({hole0} -> {hole1} %)"
    brush = painter.locator(".widget-slider .noUi-handle").first  # the brush size: wider for the next stroke
    readout = painter.locator(".widget-slider .widget-readout").first
    width_before = float(readout.inner_text())
    brush.focus()
    for _ in range(6):
        brush.press("ArrowRight")
    poll(lambda: float(readout.inner_text()), lambda width: width > width_before, f"{what}: the brush slider did not move")
    stroke(0.95)  # a second stroke, parallel to the first and clear of it
    n2, hole2 = wait_for_strokes(n1 + 1, "painted a second stroke with a wider brush")
    wait_for_pictures(painter, before, f"{what}: painted a second stroke with a wider brush")
    assert hole2 - hole1 > hole1 - hole0, f"{what}: a parallel stroke with a wider brush should add more hole " \
        f"({hole0} -> {hole1} -> {hole2} %)"
    painter.get_by_role("button", name="Clear").click()
    poll(status.inner_text, lambda text: "paint a stroke" in text, f"{what}: Clear did not reset the painter")


def click_a_pixel(explorer, what: str) -> None:
    """Click two places on the explorer's canvas; its figure must be redrawn each time."""
    canvas = explorer.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box and box["width"] > 50, f"{what}: the canvas is not rendered"
    output = explorer.locator(".widget-output").first
    before = pictures(output)
    for fx, fy in ((0.3, 0.4), (0.6, 0.5)):
        explorer.page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        before = wait_for_pictures(output, before, f"{what}: clicked at ({fx}, {fy}) of the canvas")


@pytest.mark.parametrize("notebook", widget_notebooks(), ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_widgets_redraw_in_jupyterlab(notebook: Path, lab: tuple[str, str, Path], browser) -> None:
    url, token, root = lab
    rel = notebook.relative_to(NOTEBOOKS).as_posix()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
    started = time.monotonic()
    # a workspace of its own per notebook: the default one would reopen the notebooks before it
    workspace = re.sub(r"\W", "-", rel)
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/notebooks/{rel}?token={token}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    run_all_cells(page, RUN_TIMEOUT_S)
    ran = time.monotonic() - started

    all_controls = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle, .jp-OutputArea-output .widget-dropdown select")
    # the painter's and the explorer's own controls are driven by their own steps below
    controls = [all_controls.nth(i) for i in range(all_controls.count())
                if not all_controls.nth(i).evaluate("e => !!e.closest('.course-painter, .course-explorer')")]
    canvases = page.locator(".course-painter, .course-explorer")
    assert controls or canvases.count(), f"{rel} creates a widget but no slider, dropdown or canvas was rendered"
    for i, control in enumerate(controls):
        # the VBox([control, Output]) that figure_widget / discount_widget build
        box = control.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][.//div[contains(@class, 'widget-output')]][1]")
        assert box.count() == 1, f"{rel}: control {i} has no output area of its own"
        before = output_state(box)
        assert before, f"{rel}: control {i}'s output area is empty before any change"
        is_select = control.evaluate("e => e.tagName") == "SELECT"
        readout = box.locator(".widget-readout").first
        for key, way in (("ArrowDown" if is_select else "ArrowRight", "up"), ("ArrowUp" if is_select else "ArrowLeft", "down")):
            shown_value = readout.inner_text() if readout.count() else ""
            control.focus()
            control.press(key)
            before = wait_for_change(box, before, f"{rel} control {i} moved {way} (readout was {shown_value!r}, "
                                                  f"now {readout.inner_text() if readout.count() else ''!r})")

    for i in range(page.locator(".course-painter").count()):
        paint_a_stroke(page.locator(".course-painter").nth(i), f"{rel} painter {i}")
    for i in range(page.locator(".course-explorer").count()):
        click_a_pixel(page.locator(".course-explorer").nth(i), f"{rel} explorer {i}")

    shown = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "Traceback" not in shown, f"{rel}: an output area shows a traceback:\n{shown[:3000]}"
    # a focused widget (a canvas after a click) keeps JupyterLab's shortcuts from firing: let go of it
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+s")
    saved_path = root / "notebooks" / rel
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        if all(c.get("execution_count") for c in saved["cells"] if c["cell_type"] == "code"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{rel}: saving the run notebook did not store its outputs")
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(saved["cells"]) if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{rel}: cells with an error output (index, name, message): {errors}"
    real = [e for e in console_errors if not any(p.search(e) for p in HARMLESS_CONSOLE_ERRORS)]
    assert not real, f"{rel}: browser console errors: {real}"
    print(f"{rel}: ran all cells in {ran:.1f} s, widgets checked in {time.monotonic() - started - ran:.1f} s")
    page.close()
