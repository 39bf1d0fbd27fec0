"""Paint a hole with the mouse and watch DeepFill fill it: the mask painter of notebook 10.

:class:`MaskPainter` keeps the image, the strokes painted so far and the hole mask they
make (:func:`course_lib.masks.strokes_to_mask`, a disk swept along each stroke), and after
each stroke runs the generator once and shows the coarse result (stage 1, pasted into the
hole), the refined result (stage 2, the final image) and the attention flow. All of it is
plain Python that the tests drive without a browser (:meth:`MaskPainter.paint`,
:meth:`MaskPainter.fill`, or both and the figure in one call, :meth:`MaskPainter.draw`, the
fallback where the widget stays blank); :meth:`MaskPainter.widget` adds the ``ipycanvas``
canvas whose mouse events call the same methods.

:func:`hands_on_model` picks the model: the official Places2 weights when they are in
``data/weights/`` (256x256 photos, about a second per fill on a laptop CPU), else the bundled
toy model (64x64 toy images, milliseconds). The canvas shows the image ``scale`` times
enlarged, so both are painted on a 256-pixel canvas.
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from PIL import Image

from course_lib.images import to_uint8
from course_lib.masks import strokes_to_mask
from course_lib.plots import to_display

__all__ = ["HandsOnModel", "hands_on_model", "PainterResult", "MaskPainter", "enlarged_uint8", "png_bytes"]

Point = tuple[float, float]


class HandsOnModel(NamedTuple):
    """The model notebook 10 uses: ``generator`` (eval mode), its image ``size``, a ``name`` to print."""

    generator: nn.Module
    size: int
    name: str


def hands_on_model(weights_dir: Union[str, Path, None] = None) -> HandsOnModel:
    """The official Places2 generator if ``weights_dir`` holds it (``places2.pt`` or ``places2/``), else the toy one.

    ``weights_dir`` defaults to the repository's ``data/weights``. The official weights are
    CC BY-NC 4.0 and not shipped (notebook 90 says where to get them); the toy model
    (``course_lib/weights/toy_cpu.pt``, cnum 8) was trained on 64x64 toy images on a CPU.
    """
    from course_lib.inpaint_cli import load_generator
    from course_lib.samples import toy_weights

    folder = Path(weights_dir) if weights_dir is not None else Path(__file__).resolve().parents[1] / "data" / "weights"
    for candidate in (folder / "places2.pt", folder / "places2"):
        if candidate.exists():
            return HandsOnModel(load_generator(candidate).eval(), 256, f"official Places2 weights ({candidate.name})")
    return HandsOnModel(load_generator(toy_weights()).eval(), 64, "the bundled toy model (cnum 8, 64x64 toy images)")


class PainterResult(NamedTuple):
    """One fill: every image ``(3, H, W)`` in [-1, 1]; ``seconds`` the generator's wall time."""

    masked: torch.Tensor
    coarse: torch.Tensor
    refined: torch.Tensor
    flow: torch.Tensor
    seconds: float


def enlarged_uint8(x: torch.Tensor, scale: int = 1) -> np.ndarray:
    """A (3, H, W) image in [-1, 1] as a (scale*H, scale*W, 3) uint8 array, each pixel a ``scale`` x ``scale`` block.

    Pixels as :func:`course_lib.images.to_uint8` (the release's mapping, rounded); for the
    canvas (``put_image_data``) and :func:`png_bytes`.
    """
    arr = to_uint8(x.clamp(-1, 1)).permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    return arr.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else arr  # (sH, sW, 3)


def png_bytes(x: torch.Tensor, scale: int = 1) -> bytes:
    """A (3, H, W) image in [-1, 1] as PNG bytes, enlarged ``scale`` times (nearest)."""
    buffer = io.BytesIO()
    Image.fromarray(enlarged_uint8(x, scale)).save(buffer, format="PNG")
    return buffer.getvalue()


class MaskPainter:
    """Strokes -> hole mask -> generator -> coarse, refined, flow (see the module docstring).

    Args:
        generator: a :class:`course_lib.generator.Generator` (or any ``(x, mask) -> (x1, x2, flow)``);
            a module is put in eval mode.
        image: ``(3, H, W)`` or ``(1, 3, H, W)`` in [-1, 1], H and W multiples of 8.
        scale: canvas pixels per image pixel (strokes are given in canvas pixels).
        brush: brush diameter in image pixels.
    """

    def __init__(self, generator: Any, image: torch.Tensor, scale: int = 4, brush: float = 6.0) -> None:
        if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise ValueError(f"image must be a (3, H, W) or (1, 3, H, W) tensor in [-1, 1], got "
                             f"{getattr(image, 'shape', type(image).__name__)}")
        image = image[0] if image.dim() == 4 else image
        H, W = image.shape[-2:]
        if H % 8 or W % 8:
            raise ValueError(f"image is {H}x{W}; the generator needs multiples of 8: crop or resize it first")
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int (canvas pixels per image pixel), got {scale!r}")
        if not brush > 0:
            raise ValueError(f"brush must be a positive diameter in image pixels, got {brush!r}")
        if isinstance(generator, nn.Module):
            generator.eval()  # inference: the fill must not depend on batch statistics or dropout
        self.generator, self.image, self.scale, self.brush = generator, image.float(), scale, float(brush)
        self.strokes: list[list[Point]] = []
        self.widths: list[float] = []
        self.last: Optional[PainterResult] = None
        self._current: Optional[list[Point]] = None
        self._views: dict[str, Any] = {}

    # -------------------------------------------------------------- painting (no browser)

    @property
    def mask(self) -> torch.Tensor:
        """The hole of all strokes so far, ``(1, 1, H, W)``, 1 = hole."""
        H, W = self.image.shape[-2:]
        return strokes_to_mask(self.strokes, H, W, self.widths) if self.strokes else torch.zeros(1, 1, H, W)

    def paint(self, points: Sequence[Point], brush: Optional[float] = None) -> None:
        """Add one stroke through ``points`` = [(x, y), ...] in CANVAS pixels (image pixel = canvas // scale)."""
        if len(points) == 0:
            raise ValueError("a stroke needs at least one (x, y) point")
        s = self.scale
        self.strokes.append([((float(x) + 0.5) / s - 0.5, (float(y) + 0.5) / s - 0.5) for x, y in points])
        self.widths.append(self.brush if brush is None else float(brush))

    def clear(self) -> None:
        """Forget every stroke (an empty hole)."""
        self.strokes, self.widths, self.last = [], [], None
        self._refresh()

    def fill(self) -> PainterResult:
        """Run the generator on the image with the current hole; the stages pasted into the hole."""
        m = self.mask  # (1, 1, H, W)
        x = self.image[None]  # (1, 3, H, W)
        started = time.perf_counter()
        with torch.no_grad():
            x1, x2, flow = self.generator(x * (1.0 - m), m)  # (1, 3, H, W) x2, (1, 3, h, w) flow
        seconds = time.perf_counter() - started
        flow = torch.nn.functional.interpolate(flow.float(), size=x.shape[-2:], mode="nearest")  # (1, 3, H, W)
        masked = torch.where(m.bool(), torch.ones_like(x), x)  # the hole shown white, (1, 3, H, W)
        self.last = PainterResult(masked[0], (x1 * m + x * (1 - m))[0], (x2 * m + x * (1 - m))[0], flow[0], seconds)
        self._refresh()
        return self.last

    def figure(self) -> Figure:
        """The last fill as four panels (input with the hole, coarse, refined, flow): the still picture."""
        result = self.last or self.fill()
        fig = Figure(figsize=(9.0, 2.6))
        titles = ("your hole", "coarse (stage 1)", "refined (stage 2)", "attention flow")
        for ax, img, title in zip(fig.subplots(1, 4), result[:4], titles):
            ax.imshow(to_display(img), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"filled in {result.seconds * 1000:.0f} ms", fontsize=9)
        fig.tight_layout()
        return fig

    def draw(self, points: Sequence[Point], brush: Optional[float] = None) -> Figure:
        """Paint one stroke through ``points`` (canvas pixels), fill, and return :meth:`figure`.

        The painter without its canvas, in one call: what to run where the widget stays blank
        (e.g. on Colab without its custom widget manager); the strokes add up as on the canvas.
        """
        self.paint(points, brush)
        self.fill()
        return self.figure()

    # -------------------------------------------------------------- the widget

    def _on_down(self, x: float, y: float) -> None:
        self._current = [(x, y)]
        self._dot(x, y)

    def _on_move(self, x: float, y: float) -> None:
        if self._current is None:
            return
        x0, y0 = self._current[-1]
        self._current.append((x, y))
        canvas = self._views.get("canvas")
        if canvas is not None:
            canvas.stroke_line(x0, y0, x, y)

    def _on_up(self, x: float, y: float) -> None:
        if self._current is None:
            return
        points, self._current = self._current + [(x, y)], None
        self.paint(points)
        self.fill()

    def _dot(self, x: float, y: float) -> None:
        canvas = self._views.get("canvas")
        if canvas is not None:
            canvas.fill_circle(x, y, self.brush * self.scale / 2)

    def _refresh(self) -> None:
        """Redraw the canvas (image, hole tinted red) and the three result pictures."""
        if not self._views:
            return
        m = self.mask[0]  # (1, H, W)
        red = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1)
        tinted = torch.where(m.bool(), 0.4 * self.image + 0.6 * red, self.image)  # (3, H, W)
        canvas = self._views["canvas"]
        canvas.put_image_data(enlarged_uint8(tinted, self.scale), 0, 0)
        canvas.fill_style = canvas.stroke_style = "rgba(255, 0, 0, 0.6)"
        canvas.line_width = self.brush * self.scale
        canvas.line_cap = "round"
        blank = torch.zeros_like(self.image)
        last = self.last
        for key, img in zip(("coarse", "refined", "flow"),
                            (last.coarse, last.refined, last.flow) if last else (blank, blank, blank)):
            self._views[key].value = png_bytes(img, self.scale)
        self._views["status"].value = (f"{len(self.strokes)} stroke(s), hole {float(self.mask.mean()) * 100:.1f} % "
                                       f"of the image; filled in {last.seconds * 1000:.0f} ms" if last else
                                       "paint a stroke on the image (press, drag, release)")

    def _set_brush(self, change: dict) -> None:
        self.brush = float(change["new"])
        if "canvas" in self._views:
            self._views["canvas"].line_width = self.brush * self.scale

    def widget(self) -> Any:
        """The canvas to paint on, a brush-size slider, a Clear button and the three results."""
        import ipywidgets as widgets
        from ipycanvas import Canvas

        H, W = self.image.shape[-2:]
        size = f"{W * self.scale}px"
        canvas = Canvas(width=W * self.scale, height=H * self.scale)
        canvas.on_mouse_down(self._on_down)
        canvas.on_mouse_move(self._on_move)
        canvas.on_mouse_up(self._on_up)
        canvas.on_mouse_out(self._on_up)  # a stroke dragged off the canvas ends there (its mouse-up is lost)
        views: dict[str, Any] = {"canvas": canvas}
        columns = [widgets.VBox([widgets.HTML("<b>paint here</b>"), canvas])]
        for key, title in (("coarse", "coarse (stage 1)"), ("refined", "refined (stage 2)"), ("flow", "attention flow")):
            views[key] = widgets.Image(format="png", layout=widgets.Layout(width=size, height=size))
            columns.append(widgets.VBox([widgets.HTML(f"<b>{title}</b>"), views[key]]))
        views["status"] = widgets.Label()
        views["status"].add_class("painter-status")
        brush = widgets.FloatSlider(value=self.brush, min=1.0, max=float(max(24, round(4 * self.brush))), step=1.0,
                                    description="brush (px)")  # in image pixels, up to 4x the start
        brush.observe(self._set_brush, names="value")
        clear = widgets.Button(description="Clear")
        clear.on_click(lambda _: self.clear())
        self._views = views
        self._refresh()
        box = widgets.VBox([widgets.HBox(columns), widgets.HBox([brush, clear, views["status"]])])
        box.add_class("course-painter")
        return box
