"""Figures and widgets for the notebooks and lessons (notebooks 00-02 and 07-09).

Every ``*_figure`` function is pure: it takes numbers and tensors and returns a new
matplotlib ``Figure`` (nothing global, nothing shown), so the same code draws the lesson
figures (``scripts/make_figures.py``), the notebook plots, and the widgets' callbacks, and
is unit-tested without a browser. Widgets are core ipywidgets plus matplotlib drawn into
an ``ipywidgets.Output`` (works in Jupyter, VS Code and Colab), shown by :func:`display_widget`
with ipywidgets 7 (Colab's) or 8.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from matplotlib import colors, patches
from matplotlib.figure import Figure

from course_lib.losses import spatial_discount

__all__ = [
    "to_display",
    "show_images",
    "baseline_figure",
    "generator_gradients_figure",
    "paper_discount",
    "discount_figure",
    "draw_discount",
    "discount_widget",
    "figure_widget",
    "WIDGET_VIEW",
    "on_colab",
    "widget_view",
    "widget_bundle",
    "enable_colab_widgets",
    "colab_fallback_html",
    "display_widget",
    "ones_channel_figure",
    "receptive_field_figure",
    "gradient_maps_figure",
    "stages_figure",
    "wgan_1d_figure",
    "ema_trajectory_figure",
    "per_kind_figure",
]


def to_display(x: torch.Tensor) -> np.ndarray:
    """An image tensor in [-1, 1] -> an (H, W, 3) (or (H, W) for one channel) array in [0, 1] for imshow.

    Accepts (1, C, H, W), (C, H, W) or (H, W); C is 1 or 3.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"to_display expects a torch tensor in [-1, 1], got {type(x).__name__}")
    t = x.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_display shows one image, got a batch of {t.shape[0]}; pass x[i:i+1]")
        t = t[0]  # (C, H, W)
    if t.dim() == 3:
        if t.shape[0] not in (1, 3):
            raise ValueError(f"to_display expects 1 or 3 channels first (C, H, W), got shape {tuple(t.shape)}")
        t = t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)  # (H, W) or (H, W, 3)
    return ((t.clamp(-1, 1) + 1) / 2).numpy()


def show_images(images: Sequence[torch.Tensor], titles: Optional[Sequence[str]] = None,
                ncols: Optional[int] = None, size: float = 2.6, masks_grey: bool = True) -> Figure:
    """A row (or grid) of images in [-1, 1]; one-channel tensors (masks in {0, 1}) are drawn grey.

    Masks (values in [0, 1], one channel) are shown as they are (white = hole).
    """
    n = len(images)
    if n == 0:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(size * ncols, size * nrows + (0.3 if titles else 0)))
    for k, img in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        t = img.detach().float().cpu()
        one_channel = (t.dim() == 2) or (t.dim() >= 3 and t.shape[-3] == 1)
        if one_channel and masks_grey:
            arr = t.reshape(t.shape[-2], t.shape[-1]).numpy()  # (H, W) in [0, 1]
            ax.imshow(arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(to_display(t), interpolation="nearest")
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig


def baseline_figure(x: torch.Tensor, mask: torch.Tensor) -> Figure:
    """The non-learned fills of notebook 01 side by side, titled with their PSNR in the hole.

    ``x`` (1, 3, H, W) in [-1, 1], ``mask`` (1, 1, H, W), 1 = hole. Panels: the input,
    :func:`course_lib.baselines.mean_fill`, :func:`course_lib.baselines.diffusion_fill`, a
    sharp but wrong "copy" (the image rolled by half its width) and the ground truth.
    """
    from course_lib.baselines import diffusion_fill, mean_fill
    from course_lib.metrics import psnr

    copy = torch.roll(x, shifts=x.shape[-1] // 2, dims=-1)  # (1, 3, H, W)
    fills = {"mean fill": mean_fill(x, mask), "diffusion fill": diffusion_fill(x, mask),
             "copy from elsewhere": x * (1 - mask) + copy * mask}
    titles = ["input"] + [f"{k}\nhole PSNR {psnr(x, v, mask=mask).item():.1f} dB" for k, v in fills.items()]
    return show_images([x * (1 - mask), *fills.values(), x], titles + ["ground truth"])


def paper_discount(mask: torch.Tensor, gamma: float = 0.99) -> torch.Tensor:
    """The PAPER's weights: ``gamma ** l`` inside the hole, ``l`` = distance to the nearest known pixel.

    Paper Section 3: "the weight of each pixel in the mask is computed as gamma^l, where l is
    the distance of the pixel to the nearest known pixel" (gamma = 0.99). The distance is
    the chessboard distance (found by eroding the hole one 3x3 step at a time): a hole
    pixel next to a known pixel has l = 1. For box holes it equals the Euclidean distance
    along the nearer axis. Known pixels get weight 0 (they are not part of the hole).

    The release does NOT do this: see :func:`course_lib.losses.spatial_discount` (distance
    to the edge of the 128x128 box, gamma 0.9). Taught in notebook 02.

    ``mask``: (H, W) or (1, 1, H, W), 1 = hole. Returns (H, W) float32.
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1] (paper 0.99, release 0.9), got {gamma}")
    m = mask.detach().float().cpu()
    if m.dim() == 4 and m.shape[:2] == (1, 1):
        m = m[0, 0]  # (H, W)
    if m.dim() != 2:
        raise ValueError(f"paper_discount expects a mask (H, W) or (1, 1, H, W), got shape {tuple(mask.shape)}")
    hole = (m > 0.5).float()[None, None]  # (1, 1, H, W)
    if bool(hole.all()):
        raise ValueError("paper_discount: the mask is all hole, so no pixel has a known neighbour; "
                         "pass a mask with some 0 (known) pixels")
    distance = torch.zeros_like(hole)  # (1, 1, H, W)
    while hole.any():
        distance += hole  # l = the number of erosions a pixel survives
        # a pixel stays after the erosion when its whole 3x3 neighbourhood is hole
        # (outside the image counts as hole: the image border is not a known pixel)
        hole = -torch.nn.functional.max_pool2d(-torch.nn.functional.pad(hole, (1, 1, 1, 1), value=1.0), 3, 1)
    weights = torch.where(distance > 0, gamma ** distance, torch.zeros_like(distance))  # (1, 1, H, W)
    return weights[0, 0].to(torch.float32)  # (H, W)


def discount_figure(gamma: float = 0.9, box: int = 128, delta: int = 16,
                    paper_gamma: Optional[float] = None) -> Figure:
    """Heat maps and a profile of the spatially discounted weights (notebook 02, lesson 02).

    Left: the release's weights over a ``box`` x ``box`` local patch at ``gamma`` with the
    hole (the box shrunk by ``delta`` on each side) outlined. Middle: the paper's weights
    (``paper_gamma``, default = ``gamma``) over the same hole. Right: both along the middle
    row, on a log scale, with the box-centre value printed.
    """
    if box < 2 or not 0 <= 2 * delta < box:
        raise ValueError(f"need box >= 2 and 0 <= delta < box / 2, got box={box}, delta={delta}")
    paper_gamma = gamma if paper_gamma is None else paper_gamma
    release = spatial_discount(box, box, gamma)  # (box, box)
    hole = torch.zeros(box, box)  # (box, box)
    hole[delta:box - delta, delta:box - delta] = 1.0
    paper = paper_discount(hole, paper_gamma)  # (box, box)

    fig = Figure(figsize=(11.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    norm = colors.LogNorm(vmin=max(1e-4, float(release.min())), vmax=1.0)
    for ax, weights, title in ((axes[0], release, f"release: to box edge, gamma={gamma:g}"),
                               (axes[1], paper, f"paper: to known pixel, gamma={paper_gamma:g}")):
        shown = np.ma.masked_where(weights.numpy() <= 0, weights.numpy())
        image = ax.imshow(shown, cmap="magma", norm=norm, interpolation="nearest")
        ax.add_patch(patches.Rectangle((delta - 0.5, delta - 0.5), box - 2 * delta, box - 2 * delta,
                                                  fill=False, edgecolor="cyan", linewidth=1.0, linestyle="--"))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([0, box // 2, box - 1])
        ax.set_yticks([0, box // 2, box - 1])
    fig.colorbar(image, ax=axes[1], fraction=0.05, pad=0.03, label="weight (log scale)")
    row = box // 2
    cols = np.arange(box)
    axes[2].semilogy(cols, release[row].numpy(), label=f"release (gamma={gamma:g})")
    paper_row = paper[row].numpy()
    axes[2].semilogy(cols[paper_row > 0], paper_row[paper_row > 0], label=f"paper (gamma={paper_gamma:g})")
    axes[2].axvspan(delta - 0.5, box - delta - 0.5, color="cyan", alpha=0.08, label="hole")
    centre = float(release[row, box // 2])
    axes[2].annotate(f"box centre {centre:.2g}", (box // 2, centre), textcoords="offset points",
                     xytext=(0, 12), ha="center", fontsize=8)
    axes[2].set_ylim(max(1e-4, 0.5 * min(centre, float(paper_row[paper_row > 0].min()))), 8.0)
    axes[2].set_xlabel("column (middle row)")
    axes[2].set_ylabel("weight")
    axes[2].legend(fontsize=7, loc="upper center")
    axes[2].set_title("one row through the centre", fontsize=9)
    return fig


def draw_discount(output: Any, gamma: float, **kwargs: Any) -> Figure:
    """Widget callback: draw :func:`discount_figure` for ``gamma`` into an ``ipywidgets.Output``.

    Replaces what ``output`` showed before (no accumulating redraws). Returns the figure.
    """
    from IPython.display import display

    fig = discount_figure(gamma, **kwargs)
    with output:
        output.clear_output(wait=True)
        display(fig)
    return fig


def discount_widget(gamma: float = 0.9, box: int = 128, delta: int = 16) -> Any:
    """A gamma slider (0.80 .. 1.00) redrawing the discount heat maps: core ipywidgets only.

    The callback is :func:`draw_discount`; the widget draws its default state at once.
    """
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=gamma, min=0.80, max=1.0, step=0.005, readout_format=".3f",
                                 description="gamma", continuous_update=False)
    output = widgets.Output()
    slider.observe(lambda change: draw_discount(output, change["new"], box=box, delta=delta), names="value")
    draw_discount(output, gamma, box=box, delta=delta)
    return widgets.VBox([slider, output])


def figure_widget(control: Any, figure_for: Callable[[Any], Figure]) -> Any:
    """``control`` (a slider, dropdown: any ipywidgets value widget) above an ``Output`` showing ``figure_for(value)``.

    Each change of ``control.value`` replaces the figure (no accumulating redraws); the
    current value is drawn at once. ``figure_for`` should be a pure function returning a new
    matplotlib ``Figure``, so the same function draws the still picture of
    :func:`display_widget`.
    """
    import ipywidgets as widgets
    from IPython.display import display

    if not hasattr(control, "value") or not hasattr(control, "observe"):
        raise TypeError(f"figure_widget needs an ipywidgets value widget (IntSlider, Dropdown, ...), "
                        f"got {type(control).__name__}")
    output = widgets.Output()

    def draw(value: Any) -> None:
        fig = figure_for(value)
        with output:
            output.clear_output(wait=True)
            display(fig)

    control.observe(lambda change: draw(change["new"]), names="value")
    draw(control.value)
    return widgets.VBox([control, output])


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def on_colab() -> bool:
    """True inside a Google Colab kernel (which imports ``google.colab`` at start-up)."""
    return "google.colab" in sys.modules


def widget_view(widget: Any) -> dict[str, Any]:
    """The ``application/vnd.jupyter.widget-view+json`` data that shows ``widget``: the same in ipywidgets 7 and 8.

    Both versions display a widget with ``{"version_major": 2, "version_minor": 0, "model_id": ...}``
    (ipywidgets 7 from ``_ipython_display_``, 8 from ``_repr_mimebundle_``) and both have
    ``get_view_spec()``, which returns exactly that; so this reads it there instead of relying
    on either display method. Raises ``TypeError`` for anything that is not a live widget
    with a view (a plain object, a closed widget, a model-only widget).
    """
    get_view_spec = getattr(widget, "get_view_spec", None)
    if not callable(get_view_spec) or getattr(widget, "_view_name", None) is None:
        raise TypeError(f"display_widget needs an ipywidgets widget with a view (a slider, a VBox, a Canvas, ...), "
                        f"got {type(widget).__name__}")
    if getattr(widget, "comm", None) is None:
        raise TypeError(f"this {type(widget).__name__} was closed (widget.close()); make a new one to display it")
    return dict(get_view_spec())


def _png_base64(still: Figure, dpi: int) -> str:
    import base64
    import io

    if not isinstance(still, Figure):
        raise TypeError(f"still must be a matplotlib Figure (the widget's starting picture), got {type(still).__name__}")
    buffer = io.BytesIO()
    still.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def widget_bundle(widget: Any, still: Figure, dpi: int = 72) -> dict[str, Any]:
    """One display's data: the live ``widget`` plus ``still`` as a PNG, for where there is no kernel.

    A front end shows the richest type it can render: JupyterLab and VS Code the widget view
    (``application/vnd.jupyter.widget-view+json``), GitHub and nbviewer, which cannot run
    widgets, the PNG instead of the widget's ``text/plain`` repr. So the stored notebook reads
    well without a kernel, and a live one shows no duplicate figure. Works with ipywidgets 7
    and 8 (:func:`widget_view`).
    """
    view = widget_view(widget)
    plaintext = repr(widget)
    plaintext = plaintext[:110] + "…" if len(plaintext) > 110 else plaintext  # as ipywidgets shortens it
    return {"text/plain": plaintext, WIDGET_VIEW: view, "image/png": _png_base64(still, dpi)}


def enable_colab_widgets() -> bool:
    """On Colab, turn on its custom widget manager, which third-party widgets (ipycanvas) need there.

    ``google.colab.output.enable_custom_widget_manager()`` installs Colab's display hook, which
    marks every later widget display for that manager; calling it again does no harm. Returns
    True on Colab, False elsewhere (where it does nothing).
    """
    if not on_colab():
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def colab_fallback_html(still: Figure, redraw: Optional[str] = None, dpi: int = 72) -> str:
    """The folded note shown under a widget on Colab: the still picture and a call that draws without the widget.

    ``redraw`` is code that draws the same picture without any widget (e.g.
    ``"discount_figure(0.95)"``); without it the note names the ``still=`` argument.
    """
    import html

    how = (f"run <code>{html.escape(redraw)}</code> in a new cell (change its numbers to see another setting)"
           if redraw else "run the call that drew the picture (this cell's <code>still=</code> argument) in a "
                          "new cell, with other numbers")
    return ("<details class=\"course-widget-fallback\"><summary>Widget blank? Its picture, and how to draw "
            "without it</summary>"
            f"<p>The picture of the widget's starting state is below. To see another setting without the widget, "
            f"{how}.</p><img src=\"data:image/png;base64,{_png_base64(still, dpi)}\"/></details>")


def display_widget(widget: Any, still: Figure, dpi: int = 72, redraw: Optional[str] = None) -> None:
    """Display ``widget`` live, with ``still`` (a Figure of its starting state) for where it cannot run.

    Outside Colab (JupyterLab, VS Code, classic Notebook): one output holding the widget view
    and ``still`` as a PNG (:func:`widget_bundle`), which GitHub and nbviewer show instead.

    On Colab: the widget through Colab's normal path, ``display(widget)`` after
    :func:`enable_colab_widgets`, so the display message is exactly the one ipywidgets sends
    and Colab's display hook marks it for the custom widget manager (no raw bundle, no PNG
    riding along that Colab could show in the widget's place); below it a folded note with
    ``still`` and ``redraw``, the code that draws the same picture without the widget, for
    when the widget stays blank. Works with ipywidgets 7 and 8.
    """
    from IPython.display import HTML, display

    if redraw is not None and not isinstance(redraw, str):
        raise TypeError(f"redraw must be a line of code as a str (e.g. \"discount_figure(0.95)\"), "
                        f"got {type(redraw).__name__}")
    if on_colab():
        widget_view(widget)  # the same clear TypeError as elsewhere
        fallback = colab_fallback_html(still, redraw, dpi)
        enable_colab_widgets()
        display(widget)
        display(HTML(fallback))
        return
    display(widget_bundle(widget, still, dpi=dpi), raw=True)
    handle_displayed = getattr(widget, "_handle_displayed", None)  # ipywidgets 7's on_displayed callbacks
    if callable(handle_displayed):
        handle_displayed()


# ----------------------------------------------------------------------------- notebook 07

def ones_channel_figure(size: int = 16, kernel: int = 5) -> Figure:
    """Why the generator's input has a ones channel (release ``build_inpaint_net``).

    Left: the ones channel after a ``kernel x kernel`` mean filter with TF 'SAME' zero
    padding: the value falls towards the border, so a conv knows where the image ends.
    Right: an image channel inside a hole (zeroed) after the same filter: all zeros, like the padding.
    """
    from course_lib.ops import pad_same
    if size < kernel:
        raise ValueError(f"size {size} must be at least the kernel {kernel}")
    weight = torch.full((1, 1, kernel, kernel), 1.0 / kernel ** 2)  # (1, 1, k, k) mean filter
    panels = {"the ones channel": torch.ones(1, 1, size, size),
              "an image channel in a hole (zeros)": torch.zeros(1, 1, size, size)}
    fig = Figure(figsize=(8.4, 3.9))
    fig.suptitle(f"after a {kernel}x{kernel} mean filter with zero ('SAME') padding", fontsize=10)
    for k, (title, channel) in enumerate(panels.items()):
        out = torch.nn.functional.conv2d(pad_same(channel, kernel, 1), weight)[0, 0]  # (size, size)
        ax = fig.add_subplot(1, 2, k + 1)
        im = ax.imshow(out.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        for (i, j) in ((0, 0), (0, size // 2), (size // 2, size // 2)):
            ax.text(j, i, f"{out[i, j].item():.2f}", ha="center", va="center", fontsize=7,
                    color="white" if out[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=fig.axes, shrink=0.8)
    return fig


def receptive_field_figure(specs: Sequence[Any], image_size: int = 256, hole: int = 128) -> Figure:
    """Receptive field after each conv of a chain, with its dilations and with all set to 1.

    ``specs`` are :class:`course_lib.receptive_field.ConvSpec` (``conv_specs(...)``); the
    dashed lines mark the training image and the release's hole box.
    """
    from course_lib.receptive_field import receptive_field
    if not specs:
        raise ValueError("receptive_field_figure needs at least one ConvSpec")
    names = [s.name for s in specs]
    dilated = [r for r, _ in receptive_field([(s.kernel, s.stride, s.dilation) for s in specs])]
    plain = [r for r, _ in receptive_field([(s.kernel, s.stride, 1) for s in specs])]
    fig = Figure(figsize=(8.5, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(range(len(names)), dilated, "o-", label="as built (dilation 2, 4, 8, 16)")
    ax.plot(range(len(names)), plain, "s--", label="the same convs without dilation")
    for value, text in ((image_size, f"training image {image_size} px"), (hole, f"hole box {hole} px")):
        ax.axhline(value, color="grey", lw=0.8, ls=":")
        ax.text((len(names) - 1) / 2, value + 0.02 * max(dilated), text, fontsize=8, color="grey", ha="center")
    for i, r in enumerate(dilated):
        ax.annotate(str(r), (i, r), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("receptive field (input px)")
    ax.set_title("How far one feature of stage 1 sees", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def gradient_maps_figure(maps: dict[str, torch.Tensor]) -> Figure:
    """``{title: (H, W) gradient magnitude}`` side by side on a log scale (black = exactly 0)."""
    if not maps:
        raise ValueError("gradient_maps_figure needs at least one map")
    fig = Figure(figsize=(3.2 * len(maps), 3.4))
    for k, (title, grad) in enumerate(maps.items()):
        ax = fig.add_subplot(1, len(maps), k + 1)
        g = grad.detach().float().cpu()
        shown = torch.where(g > 0, g.clamp_min(1e-12).log10(), torch.tensor(float("nan")))
        ax.imshow(shown.numpy(), cmap="magma", interpolation="nearest")  # NaN (zero gradient) stays transparent
        ax.set_facecolor("black")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def stages_figure(x: torch.Tensor, mask: torch.Tensor, x_stage1: torch.Tensor, x_stage2: torch.Tensor,
                  flow: torch.Tensor, size: float = 1.9) -> Figure:
    """One row per image: input | stage 1 | stage 2 | attention flow | ground truth.

    ``x`` (B, 3, H, W) real images, ``mask`` (B or 1, 1, H, W), the raw stage outputs
    (B, 3, H, W) (composited with the known pixels here) and ``flow`` (B, 3, h, w), shown
    at image size (nearest).
    """
    if x.dim() != 4 or x_stage1.shape != x.shape or x_stage2.shape != x.shape:
        raise ValueError(f"x, x_stage1 and x_stage2 must all be (B, 3, H, W), got {tuple(x.shape)}, "
                         f"{tuple(x_stage1.shape)}, {tuple(x_stage2.shape)}")
    m = mask.expand(x.shape[0], 1, *x.shape[-2:]).float()  # (B, 1, H, W)
    x_in = x * (1 - m)
    flow_big = torch.nn.functional.interpolate(flow.float(), size=x.shape[-2:], mode="nearest")  # (B, 3, H, W)
    columns = {"input": x_in + m, "stage 1 (coarse)": x_stage1 * m + x_in,
               "stage 2 (refined)": x_stage2 * m + x_in, "attention flow": flow_big, "ground truth": x}
    rows, cols = x.shape[0], len(columns)
    fig = Figure(figsize=(size * cols, size * rows + 0.3))
    for i in range(rows):
        for j, (title, imgs) in enumerate(columns.items()):
            ax = fig.add_subplot(rows, cols, i * cols + j + 1)
            ax.imshow(to_display(imgs[i]), interpolation="nearest")
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- notebook 08

def generator_gradients_figure(result: dict) -> Figure:
    """Mean ``|d loss_G / d x|`` at the fake samples against the shift between the clouds
    (:func:`course_lib.wgan_toy.generator_gradients_1d`), log scale, one line per loss."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    labels = {"gan": "GAN, minimax  log(1 - D(x))", "gan_nonsaturating": "GAN, non-saturating  -log D(x)",
              "wgan_gp": "WGAN-GP critic  -f(x)"}
    for key, label in labels.items():
        ax.plot(result["shift"], result[key], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(result["shift"], [f"{v:g}" for v in result["shift"]])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("distance between the real and the fake cloud")
    ax.set_ylabel("mean |gradient| the generator gets")
    ax.set_title("What each loss tells the generator (1-D, trained 300 steps)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def wgan_1d_figure(real: torch.Tensor, fake: torch.Tensor, runs: Sequence[Any]) -> Figure:
    """Critics trained on 1-D samples (:func:`course_lib.wgan_toy.train_critic_1d`), side by side.

    Left: the samples and each critic ``f(t)`` (its own scale on the right axis when it has
    no penalty). Middle: the estimate ``mean f(real) - mean f(fake)`` per step. Right: the
    slope ``|f'(t)|`` (log scale) between and around the samples.
    """
    from course_lib.wgan_toy import critic_slope
    if not runs:
        raise ValueError("wgan_1d_figure needs at least one CriticRun")
    lo = float(min(real.min(), fake.min())) - 1.0
    hi = float(max(real.max(), fake.max())) + 1.0
    t = torch.linspace(lo, hi, 200)  # (200,)
    fig = Figure(figsize=(12.5, 3.6))
    ax_f, ax_w, ax_s = (fig.add_subplot(1, 3, k) for k in (1, 2, 3))
    bins = np.linspace(lo, hi, 40)
    ax_f.hist(real.numpy(), bins=bins, alpha=0.35, color="tab:green", label="real", density=True)
    ax_f.hist(fake.numpy(), bins=bins, alpha=0.35, color="tab:red", label="fake", density=True)
    ax_f.set_xlabel("t")
    ax_f.set_ylabel("sample density")
    twin = ax_f.twinx()
    for run, style in zip(runs, ("-", "--", ":")):
        name = f"lambda = {run.penalty:g}" if run.penalty > 0 else "no penalty"
        with torch.no_grad():
            values = run.critic(t).flatten()
        values = values - values.mean()  # a critic is defined up to a constant
        scale = float(values.abs().max()) or 1.0
        shown = values / scale if run.penalty == 0 else values
        label = f"f(t), {name}" + (f" (divided by {scale:.0f})" if run.penalty == 0 else "")
        twin.plot(t.numpy(), shown.numpy(), style, color="black", label=label)
        ax_w.plot(range(1, len(run.estimate) + 1), run.estimate, style, color="black", label=name)
        ax_s.semilogy(t.numpy(), critic_slope(run.critic, t).abs().clamp_min(1e-4).numpy(), style,
                      color="black", label=name)
    twin.set_ylabel("critic f(t)")
    twin.legend(fontsize=8, loc="upper left")
    ax_f.legend(fontsize=8, loc="lower right")
    ax_w.set_xlabel("critic step")
    ax_w.set_ylabel("mean f(real) - mean f(fake)")
    ax_w.set_yscale("symlog", linthresh=10)
    ax_w.legend(fontsize=8)
    ax_s.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax_s.set_xlabel("t")
    ax_s.set_ylabel("|f'(t)|")
    ax_s.legend(fontsize=8)
    ax_f.set_title("samples and critic", fontsize=10)
    ax_w.set_title("the critic's estimate of the distance", fontsize=10)
    ax_s.set_title("the critic's slope", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- notebook 09

def ema_trajectory_figure(raw: Sequence[float], averaged: Sequence[float], label: str = "a weight") -> Figure:
    """One weight of a network per training step, and its exponential moving average."""
    if len(raw) == 0 or len(raw) != len(averaged):
        raise ValueError(f"raw and averaged need the same, non-zero length, got {len(raw)} and {len(averaged)}")
    steps = np.arange(1, len(raw) + 1)
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, raw, color="tab:grey", lw=0.9, label="the trained weight, step by step")
    ax.plot(steps, averaged, color="black", lw=2.0, label="its moving average (what is evaluated)")
    ax.set_xlabel("training step")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def per_kind_figure(scores: dict[str, dict[str, float]], ylabel: str = "hole PSNR (dB)") -> Figure:
    """Grouped bars: ``{method: {kind: value}}``, one group per kind, one bar per method."""
    if not scores:
        raise ValueError("per_kind_figure needs at least one method")
    kinds = list(next(iter(scores.values())))
    if any(list(v) != kinds for v in scores.values()):
        raise ValueError("every method needs the same kinds in the same order")
    width = 0.8 / len(scores)
    fig = Figure(figsize=(8.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    for k, (method, values) in enumerate(scores.items()):
        xs = np.arange(len(kinds)) + (k - (len(scores) - 1) / 2) * width
        ax.bar(xs, [values[kind] for kind in kinds], width, label=method)
    ax.set_xticks(np.arange(len(kinds)))
    ax.set_xticklabels(kinds)
    ax.set_ylabel(ylabel)
    low = min(min(v.values()) for v in scores.values())
    ax.set_ylim(max(0.0, low - 3), None)
    ax.legend(fontsize=8, ncol=len(scores))
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- notebook 10

def hole_size_figure(sides: Sequence[int], model_db: Sequence[float], baseline_db: Sequence[float],
                     trained: Optional[tuple[int, int]] = None, image_size: int = 64) -> Figure:
    """Hole PSNR against the side of a centred square hole, model vs the diffusion fill.

    ``trained``: the range of hole sides the model saw in training, shaded.
    """
    fig = Figure(figsize=(5.0, 3.2))
    ax = fig.subplots()
    if trained is not None:
        ax.axvspan(trained[0], trained[1], color="0.9", label="hole sides seen in training")
    ax.plot(sides, model_db, "o-", label="toy model")
    ax.plot(sides, baseline_db, "s--", label="diffusion fill (no learning)")
    ax.set_xlabel(f"side of the square hole (pixels of {image_size})")
    ax.set_ylabel("hole PSNR (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def equal_psnr_figure(pair: Any, sharp_plausible: float, sharp_blurred: float) -> Figure:
    """The ground truth and two fills of :func:`course_lib.blind_spot.equal_psnr_fills`, with their numbers."""
    fig = Figure(figsize=(8.0, 3.0))
    panels = ((pair.image, "ground truth"),
              (pair.image * (1 - pair.mask) + pair.mask, "the hole"),
              (pair.plausible, f"plausible: {pair.psnr_plausible:.2f} dB\nsharpness {sharp_plausible:.2f}"),
              (pair.blurred, f"blurred: {pair.psnr_blurred:.2f} dB\nsharpness {sharp_blurred:.2f}"))
    for ax, (img, title) in zip(fig.subplots(1, 4), panels):
        ax.imshow(to_display(img[0]), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
