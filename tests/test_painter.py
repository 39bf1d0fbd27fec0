"""course_lib.painter: the mask painter of notebook 10, driven without a browser."""
from __future__ import annotations

import pytest
import torch

from course_lib import Generator
from course_lib.masks import strokes_to_mask
from course_lib.painter import MaskPainter, enlarged_uint8, hands_on_model, png_bytes
from course_lib.toy import toy_image


@pytest.fixture(scope="module")
def model():
    return hands_on_model(weights_dir="/nonexistent-folder")


def _image() -> torch.Tensor:
    return toy_image("dots", 64, generator=torch.Generator().manual_seed(5))  # (3, 64, 64)


def test_hands_on_model_falls_back_to_the_toy_model(model):
    assert model.size == 64 and "toy" in model.name and model.generator.cnum == 8
    assert not model.generator.training


def test_hands_on_model_prefers_official_weights_when_present(tmp_path):
    torch.save(Generator(cnum=4).state_dict(), tmp_path / "places2.pt")  # stands in for the converted release
    found = hands_on_model(tmp_path)
    assert found.size == 256 and "official" in found.name and found.generator.cnum == 4


def test_canvas_points_become_image_pixels(model):
    painter = MaskPainter(model.generator, _image(), scale=4, brush=3.0)
    painter.paint([(4 * 10 + 1.5, 4 * 20 + 1.5)])  # the centre of image pixel (row 20, col 10)
    expected = strokes_to_mask([[(10.0, 20.0)]], 64, 64, 3.0)
    assert torch.equal(painter.mask, expected)
    assert painter.mask[0, 0, 20, 10] == 1 and painter.mask.sum() == 9  # diameter 3: the centre, 4 neighbours, 4 diagonals (1.41 < 1.5)
    with pytest.raises(ValueError, match="at least one"):
        painter.paint([])


def test_fill_keeps_known_pixels_and_matches_the_generator(model):
    x = _image()
    painter = MaskPainter(model.generator, x, scale=4)
    painter.paint([(40, 40), (120, 90), (200, 100)], brush=8.0)
    result = painter.fill()
    m = painter.mask
    with torch.no_grad():
        x1, x2, _ = model.generator(x[None] * (1 - m), m)
    assert torch.equal(result.refined * (1 - m[0]), x * (1 - m[0]))
    assert torch.allclose(result.refined, (x2 * m + x[None] * (1 - m))[0], atol=1e-6)
    assert torch.allclose(result.coarse, (x1 * m + x[None] * (1 - m))[0], atol=1e-6)
    assert result.flow.shape == (3, 64, 64) and result.seconds > 0
    assert torch.all(result.masked[:, m[0, 0].bool()] == 1)
    assert len(painter.figure().axes) == 4


def test_an_empty_hole_gives_the_image_back(model):
    x = _image()
    result = MaskPainter(model.generator, x).fill()
    assert torch.equal(result.refined, x)


def test_the_widget_redraws_after_a_stroke_and_clears(model):
    painter = MaskPainter(model.generator, _image(), scale=4)
    box = painter.widget()
    assert "course-painter" in box._dom_classes
    before = painter._views["refined"].value
    painter._on_move(10, 10)  # a move without a press paints nothing
    assert painter.strokes == []
    painter._on_down(100, 100)
    painter._on_move(130, 120)
    painter._on_up(150, 140)
    assert len(painter.strokes) == 1 and painter.mask.sum() > 0
    assert painter._views["refined"].value != before
    assert "1 stroke(s)" in painter._views["status"].value
    painter._on_down(20, 20)
    painter._on_move(0, 0)
    painter._on_up(-3, -3)  # what mouse-out sends when the drag leaves the canvas
    assert len(painter.strokes) == 2
    painter._on_up(5, 5)  # a second end (mouse-out, then mouse-up outside) adds nothing
    assert len(painter.strokes) == 2
    painter.clear()
    assert painter.strokes == [] and painter.mask.sum() == 0 and "paint a stroke" in painter._views["status"].value


def test_draw_is_the_painter_without_its_canvas(model):
    """draw(points) = paint + fill + figure: the non-interactive call named where the widget stays blank."""
    x = _image()
    painter = MaskPainter(model.generator, x, scale=4, brush=3.0)
    fig = painter.draw([(40, 40), (120, 90)])
    assert len(fig.axes) == 4 and fig.axes[2].get_title() == "refined (stage 2)"
    expected = strokes_to_mask([[(9.625, 9.625), (29.625, 22.125)]], 64, 64, 3.0)  # (canvas + 0.5) / 4 - 0.5
    assert torch.equal(painter.mask, expected)
    with torch.no_grad():
        _, x2, _ = model.generator(x[None] * (1 - expected), expected)
    assert torch.allclose(painter.last.refined, (x2 * expected + x[None] * (1 - expected))[0], atol=1e-6)
    painter.draw([(200, 200)], brush=8.0)  # strokes add up, each with its own brush
    assert len(painter.strokes) == 2 and painter.widths == [3.0, 8.0]
    assert torch.equal(painter.mask, strokes_to_mask(painter.strokes, 64, 64, [3.0, 8.0]))
    with pytest.raises(ValueError, match="at least one"):
        painter.draw([])


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(3, 60, 64), "multiples of 8"), (torch.zeros(1, 64, 64), r"\(3, H, W\)"), ("an image", r"\(3, H, W\)"),
])
def test_bad_images_are_refused(model, bad, match):
    with pytest.raises(ValueError, match=match):
        MaskPainter(model.generator, bad)


def test_bad_scale_and_brush_are_refused(model):
    with pytest.raises(ValueError, match="scale"):
        MaskPainter(model.generator, _image(), scale=0)
    with pytest.raises(ValueError, match="brush"):
        MaskPainter(model.generator, _image(), brush=0)


def test_enlarged_uint8_by_hand():
    x = torch.tensor([[[-1.0, 1.0]], [[0.0, 2.0]], [[-3.0, 0.5]]])  # (3, 1, 2): out-of-range values saturate
    got = enlarged_uint8(x, scale=2)
    assert got.shape == (2, 4, 3) and got.dtype.name == "uint8"
    assert got[:, :2].tolist() == [[[0, 128, 0]] * 2] * 2  # (0 + 1) * 127.5 = 127.5 rounds to 128
    assert got[:, 2:].tolist() == [[[255, 255, 191]] * 2] * 2  # (0.5 + 1) * 127.5 = 191.25


def test_png_bytes_enlarges():
    from io import BytesIO
    from PIL import Image

    img = Image.open(BytesIO(png_bytes(torch.zeros(3, 8, 16), scale=3)))
    assert img.size == (48, 24) and img.getpixel((0, 0)) == (128, 128, 128)


def test_the_official_weights_path_paints_a_256_photo_at_scale_1(tmp_path):
    # what notebook 10 does when data/weights/ holds places2.pt (a small stand-in here)
    from course_lib.explorer import AttentionExplorer, attention_maps
    from course_lib.samples import course_image

    torch.save(Generator(cnum=4).state_dict(), tmp_path / "places2.pt")
    model = hands_on_model(tmp_path)
    image = course_image(0, size=model.size)[0]  # (3, 256, 256)
    painter = MaskPainter(model.generator, image, scale=256 // model.size, brush=24.0)
    painter.paint([(70, 90), (120, 120), (170, 130)])
    result = painter.fill()
    assert result.refined.shape == (3, 256, 256) and painter.mask.sum() > 0
    maps = attention_maps(model.generator, image[None], painter.mask)
    assert maps.weights.shape == (1, 32 * 32, 32, 32)
    assert len(AttentionExplorer(maps, scale=1).select(100, 120).axes) >= 2
