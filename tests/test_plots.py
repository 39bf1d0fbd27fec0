"""Figures, widget callbacks, baselines and sample images of notebooks 00-02 (no browser needed)."""
from __future__ import annotations

import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch
from matplotlib.figure import Figure

from course_lib import baselines, plots, samples


def test_paper_discount_by_hand():
    # a 3x3 hole in a 5x5 image: ring pixels are 1 px from a known pixel, the centre 2 px
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 1:4, 1:4] = 1.0
    w = plots.paper_discount(mask, gamma=0.5)
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = 0.5
    expected[2, 2] = 0.25
    assert torch.equal(w, expected)


def test_paper_discount_image_border_is_not_a_known_pixel():
    mask = torch.zeros(4, 4)
    mask[:, :2] = 1.0  # hole on the left half, touching the image border
    w = plots.paper_discount(mask, gamma=0.5)
    # column 1 touches the known column 2 (l = 1); column 0 is 2 px away (the border does not count)
    assert torch.equal(w[:, 1], torch.full((4,), 0.5)) and torch.equal(w[:, 0], torch.full((4,), 0.25))
    with pytest.raises(ValueError, match="all hole"):
        plots.paper_discount(torch.ones(3, 3))
    with pytest.raises(ValueError, match="gamma"):
        plots.paper_discount(mask, gamma=1.5)


def test_discount_figure_shows_the_release_weights():
    fig = plots.discount_figure(gamma=0.9, box=16, delta=2)
    assert isinstance(fig, Figure)
    image = fig.axes[0].images[0].get_array()
    # release weight at row 8, col 8 of a 16 box: max(0.9 ** 8, 0.9 ** 8)
    assert abs(float(image[8, 8]) - 0.9 ** 8) < 1e-6 and abs(float(image[0, 5]) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="delta"):
        plots.discount_figure(box=8, delta=4)


def test_widget_callback_draws_into_an_output_and_replaces_it():
    widgets = pytest.importorskip("ipywidgets")
    out = widgets.Output()
    fig = plots.draw_discount(out, 0.95, box=16, delta=2)
    assert isinstance(fig, Figure) and "gamma=0.95" in fig.axes[0].get_title()
    box = plots.discount_widget(gamma=0.9, box=16, delta=2)
    slider, output = box.children
    assert slider.value == 0.9 and isinstance(output, widgets.Output)
    slider.value = 0.85  # the observer redraws without error


def test_figure_widget_redraws_on_each_change():
    widgets = pytest.importorskip("ipywidgets")
    drawn = []

    def figure_for(value):
        drawn.append(value)
        fig = Figure(figsize=(2, 1))
        fig.subplots().set_title(f"value {value}")
        return fig

    slider = widgets.IntSlider(value=3, min=0, max=9)
    box = plots.figure_widget(slider, figure_for)
    assert box.children[0] is slider and isinstance(box.children[1], widgets.Output)
    slider.value = 5
    slider.value = 7
    assert drawn == [3, 5, 7]  # the initial value at once, then one redraw per change
    with pytest.raises(TypeError, match="value widget"):
        plots.figure_widget(object(), figure_for)


def _own_display_data(widget) -> dict:
    """What ipywidgets itself sends to show ``widget``: 8 returns it, 7 publishes it through display()."""
    if callable(getattr(widget, "_repr_mimebundle_", None)):  # ipywidgets 8
        return widget._repr_mimebundle_()
    from ipywidgets.widgets import widget as module  # ipywidgets 7: _ipython_display_ -> display(data, raw=True)

    sent = []
    original = module.display
    module.display = lambda data, raw=False: sent.append(data)
    try:
        widget._ipython_display_()
    finally:
        module.display = original
    assert len(sent) == 1
    return sent[0]


def _small_figure() -> Figure:
    fig = Figure(figsize=(4, 2))
    fig.subplots().plot([0, 1], [0, 1])
    return fig


def _png_size(b64: str) -> tuple[int, int]:
    import base64
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    return image.size


def test_widget_view_is_what_ipywidgets_itself_sends():
    widgets = pytest.importorskip("ipywidgets")
    for widget in (widgets.FloatSlider(value=0.5), widgets.VBox([widgets.IntSlider(), widgets.Output()])):
        own = _own_display_data(widget)
        assert plots.widget_view(widget) == own[plots.WIDGET_VIEW]
        assert own[plots.WIDGET_VIEW] == {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}


def test_widget_view_refuses_what_cannot_be_shown():
    widgets = pytest.importorskip("ipywidgets")
    with pytest.raises(TypeError, match="ipywidgets widget with a view.*got object"):
        plots.widget_view(object())
    with pytest.raises(TypeError, match="with a view.*got Widget"):
        plots.widget_view(widgets.Widget())  # a bare model: no view to show
    slider = widgets.IntSlider()
    slider.close()
    with pytest.raises(TypeError, match="was closed"):
        plots.widget_view(slider)


def test_widget_bundle_holds_the_view_and_a_png_of_the_still():
    widgets = pytest.importorskip("ipywidgets")
    slider = widgets.FloatSlider(value=0.5)
    bundle = plots.widget_bundle(slider, _small_figure(), dpi=50)
    assert set(bundle) == {"text/plain", plots.WIDGET_VIEW, "image/png"}
    assert bundle[plots.WIDGET_VIEW]["model_id"] == slider.model_id
    assert bundle["text/plain"] == _own_display_data(slider)["text/plain"] and "FloatSlider" in bundle["text/plain"]
    width, height = _png_size(bundle["image/png"])
    # bbox_inches="tight" trims the margins: at most 4 x 2 inches at 50 dpi, and not tiny
    assert 100 < width <= 200 and 50 < height <= 100
    with pytest.raises(TypeError, match="widget"):
        plots.widget_bundle(object(), _small_figure())
    with pytest.raises(TypeError, match=r"still must be a matplotlib Figure .*got str"):
        plots.widget_bundle(slider, "picture.png")


class _Display:
    """Stands in for IPython.display.display: records (object, raw) per call."""

    def __init__(self, log: list):
        self.log = log

    def __call__(self, obj, raw=False):
        self.log.append(("display", obj, raw))


def _fake_colab(monkeypatch, log: list) -> None:
    import types

    colab, output = types.ModuleType("google.colab"), types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: log.append(("enable_custom_widget_manager",))
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)


def test_display_widget_off_colab_sends_one_bundle(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    import IPython.display

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    log: list = []
    monkeypatch.setattr(IPython.display, "display", _Display(log))
    slider = widgets.FloatSlider(value=0.5)
    displayed = []
    if hasattr(slider, "on_displayed"):  # ipywidgets 7: its on_displayed callbacks still fire
        slider.on_displayed(lambda w, **kwargs: displayed.append(w))
    assert not plots.on_colab() and plots.enable_colab_widgets() is False
    plots.display_widget(slider, _small_figure(), dpi=40, redraw="f(1)")
    assert displayed == ([slider] if hasattr(slider, "on_displayed") else [])
    assert len(log) == 1
    _, bundle, raw = log[0]
    assert raw is True and set(bundle) == {"text/plain", plots.WIDGET_VIEW, "image/png"}
    assert bundle[plots.WIDGET_VIEW] == _own_display_data(slider)[plots.WIDGET_VIEW]


def test_display_widget_on_colab_uses_its_display_path_after_the_widget_manager(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    import IPython.display

    log: list = []
    _fake_colab(monkeypatch, log)
    monkeypatch.setattr(IPython.display, "display", _Display(log))
    box = widgets.VBox([widgets.FloatSlider(value=0.5)])
    assert plots.on_colab()
    plots.display_widget(box, _small_figure(), dpi=40, redraw="discount_figure(0.95, box=128)")
    assert [entry[0] for entry in log] == ["enable_custom_widget_manager", "display", "display"]
    assert log[1][1] is box and log[1][2] is False  # the widget itself, through IPython's display, not raw
    note = log[2][1]
    assert isinstance(note, IPython.display.HTML) and log[2][2] is False
    assert "<code>discount_figure(0.95, box=128)</code>" in note.data and "course-widget-fallback" in note.data
    png = note.data.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert _png_size(png)[0] > 50
    # a second widget: the manager is asked again (harmless on Colab), the widget shown again
    plots.display_widget(box, _small_figure())
    assert [entry[0] for entry in log[3:]] == ["enable_custom_widget_manager", "display", "display"]
    assert "still=" in log[5][1].data  # without redraw the note names the cell's still= argument


def test_display_widget_refuses_bad_input_before_showing_anything(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    import IPython.display

    for on_colab in (False, True):
        log: list = []
        if on_colab:
            _fake_colab(monkeypatch, log)
        else:
            monkeypatch.delitem(sys.modules, "google.colab", raising=False)
        monkeypatch.setattr(IPython.display, "display", _Display(log))
        with pytest.raises(TypeError, match="ipywidgets widget with a view"):
            plots.display_widget(_small_figure(), _small_figure())  # the figure passed as the widget
        with pytest.raises(TypeError, match="still must be a matplotlib Figure"):
            plots.display_widget(widgets.IntSlider(), None)
        with pytest.raises(TypeError, match="redraw must be a line of code"):
            plots.display_widget(widgets.IntSlider(), _small_figure(), redraw=["f(1)"])
        assert log == [], on_colab


def test_colab_fallback_html_escapes_the_code():
    html = plots.colab_fallback_html(_small_figure(), "painter.draw([(1, 2)]) if a < b else None")
    assert "<code>painter.draw([(1, 2)]) if a &lt; b else None</code>" in html
    assert html.startswith("<details") and html.endswith("</details>")


def test_show_images_and_to_display():
    x = torch.linspace(-1, 1, 3 * 4 * 5).view(1, 3, 4, 5)
    arr = plots.to_display(x)
    assert arr.shape == (4, 5, 3) and arr.min() == 0.0 and arr.max() == 1.0
    fig = plots.show_images([x, torch.ones(1, 1, 4, 5)], ["x", "mask"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="batch of 2"):
        plots.to_display(torch.zeros(2, 3, 4, 4))


def test_mean_fill_by_hand_and_known_pixels_kept():
    x = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])  # (1, 1, 2, 2)
    mask = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
    y = baselines.mean_fill(x, mask)
    assert torch.allclose(y, torch.tensor([[[[1.0, -1.0], [0.5, 0.5 / 3]]]]))


def test_diffusion_fill_is_harmonic_on_a_linear_ramp():
    # a linear ramp is harmonic: the diffusion fill must reproduce it inside the hole
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1.0
    y = baselines.diffusion_fill(ramp, mask, iterations=400)
    assert torch.equal(y * (1 - mask), ramp * (1 - mask))
    assert (y - ramp).abs().max() < 0.02
    with pytest.raises(ValueError, match="mask must be"):
        baselines.diffusion_fill(ramp, mask[0])


def test_course_image_photo_and_toy_fallback(tmp_path, monkeypatch):
    x = samples.course_image(0, size=64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    monkeypatch.setenv("COURSE_LIB_SAMPLES", str(tmp_path / "none"))
    assert samples.sample_paths() == []
    toy = samples.course_image("astronaut", size=32)  # no photos: a deterministic toy image
    assert toy.shape == (1, 3, 32, 32) and torch.equal(toy, samples.course_image(0, size=32))


def test_notebook_07_figures_draw_and_refuse_bad_input():
    from course_lib.generator import CoarseNetwork, Generator
    from course_lib.plots import gradient_maps_figure, ones_channel_figure, receptive_field_figure, stages_figure
    from course_lib.receptive_field import conv_specs

    fig = ones_channel_figure(size=12, kernel=5)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[0] == f"{9 / 25:.2f}" and texts[-1] == "1.00"  # corner sees 3x3 of 5x5 ones; the centre all
    assert all(t.get_text() == "0.00" for t in fig.axes[1].texts)
    with pytest.raises(ValueError, match="at least the kernel"):
        ones_channel_figure(size=3, kernel=5)

    specs = conv_specs(Generator(cnum=4).coarse, CoarseNetwork.LAYERS[:12])
    fig = receptive_field_figure(specs)
    first, second = fig.axes[0].lines[:2]
    assert list(first.get_ydata())[-1] == 287 and list(second.get_ydata())[-1] == 79
    with pytest.raises(ValueError):
        receptive_field_figure([])

    assert len(gradient_maps_figure({"a": torch.rand(8, 8), "b": torch.zeros(8, 8)}).axes) == 2
    with pytest.raises(ValueError):
        gradient_maps_figure({})

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    fig = stages_figure(x, mask, x, x, torch.zeros(2, 3, 4, 4))
    assert len(fig.axes) == 10 and fig.axes[0].get_title() == "input"
    with pytest.raises(ValueError, match="must all be"):
        stages_figure(x, mask, x[:1], x, torch.zeros(2, 3, 4, 4))


def test_wgan_1d_figure_draws_both_runs():
    from course_lib.plots import wgan_1d_figure
    from course_lib.wgan_toy import train_critic_1d
    real, fake = torch.linspace(1, 2, 16), torch.linspace(-1, 0, 16)
    runs = [train_critic_1d(real, fake, penalty=10.0, steps=5), train_critic_1d(real, fake, penalty=0.0, steps=5)]
    fig = wgan_1d_figure(real, fake, runs)
    assert len(fig.axes) == 4  # three panels and the critic's twin axis
    assert len(fig.axes[1].lines) == 2 and fig.axes[1].lines[0].get_ydata()[-1] == runs[0].estimate[-1]
    with pytest.raises(ValueError):
        wgan_1d_figure(real, fake, [])


def test_notebook_09_figures():
    from course_lib.plots import ema_trajectory_figure, per_kind_figure
    fig = ema_trajectory_figure([1.0, 2.0, 0.0], [1.0, 1.5, 1.0])
    assert list(fig.axes[0].lines[1].get_ydata()) == [1.0, 1.5, 1.0]
    with pytest.raises(ValueError):
        ema_trajectory_figure([1.0], [])
    fig = per_kind_figure({"model": {"a": 17.0, "b": 16.0}, "diffusion": {"a": 15.0, "b": 16.5}})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [17.0, 16.0, 15.0, 16.5]
    with pytest.raises(ValueError, match="same kinds"):
        per_kind_figure({"m": {"a": 1.0}, "n": {"b": 1.0}})


def test_generator_gradients_figure_draws_one_line_per_loss():
    from course_lib.plots import generator_gradients_figure
    result = {"shift": [0.5, 1.0, 4.0], "gan": [1.0, 0.5, 1e-7], "gan_nonsaturating": [2.0, 5.0, 3.0],
              "wgan_gp": [1.0, 1.1, 1.2]}
    fig = generator_gradients_figure(result)
    (ax,) = fig.axes
    assert [line.get_ydata().tolist() for line in ax.get_lines()] == [result["gan"], result["gan_nonsaturating"],
                                                                      result["wgan_gp"]]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
