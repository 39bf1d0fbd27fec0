"""Middlebury colour wheel and flow_to_color against hand-worked colours."""
from __future__ import annotations

import pytest
import torch

from course_lib.flow import compute_color, flow_to_color, make_color_wheel


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float image back to its 0..255 integer values."""
    return torch.round((img + 1.0) * 127.5).long()


def single_offset(d_row: float, d_col: float) -> torch.Tensor:
    """A 1x1 offset map (1, 2, 1, 1)."""
    return torch.tensor([d_row, d_col], dtype=torch.float64).view(1, 2, 1, 1)


# Hand-written from the segment rules RY 15, YG 6, GC 4, CB 11, BM 13, MR 6 with
# ramp floor(255 * i / n): index -> RGB.
WHEEL_TABLE = {
    0: (255, 0, 0),      # RY start: red
    1: (255, 17, 0),     # floor(255/15) = 17
    14: (255, 238, 0),   # floor(255*14/15) = 238
    15: (255, 255, 0),   # YG start: yellow
    16: (213, 255, 0),   # 255 - floor(255/6) = 213
    20: (43, 255, 0),    # 255 - floor(255*5/6) = 43
    21: (0, 255, 0),     # GC start: green
    22: (0, 255, 63),    # floor(255/4) = 63
    25: (0, 255, 255),   # CB start: cyan
    27: (0, 209, 255),   # 255 - floor(255*2/11) = 209
    36: (0, 0, 255),     # BM start: blue
    37: (19, 0, 255),    # floor(255/13) = 19
    49: (255, 0, 255),   # MR start: magenta
    54: (255, 0, 43),    # 255 - floor(255*5/6) = 43
}


def test_color_wheel_table() -> None:
    wheel = make_color_wheel()
    assert wheel.shape == (55, 3)
    for index, rgb in WHEEL_TABLE.items():
        assert tuple(int(c) for c in wheel[index]) == rgb, f"colour {index}"
    assert float(wheel.min()) == 0.0 and float(wheel.max()) == 255.0
    assert torch.equal(wheel, torch.floor(wheel)), "the wheel holds integer values"


def test_zero_flow_is_white() -> None:
    img = flow_to_color(torch.zeros(2, 2, 3, 4, dtype=torch.long))
    assert img.shape == (2, 3, 3, 4) and img.dtype == torch.float32
    assert torch.equal(img, torch.ones_like(img))


@pytest.mark.parametrize(
    "d_row, d_col, expected",
    [
        (1, 0, (255, 0, 0)),     # down: atan2(-0, -1) = -pi -> wheel[0], red
        (-1, 0, (0, 209, 255)),  # up: atan2(-0, 1) = -0 -> fk = 28 (1-based) -> wheel[27]
        (0, 1, (255, 229, 0)),   # right: a = -1/2 -> halfway wheel[13] (221) and wheel[14] (238)
    ],
)
def test_pure_directions_give_expected_hue(d_row: int, d_col: int, expected: tuple) -> None:
    rgb = to_uint8(flow_to_color(single_offset(d_row, d_col))).view(3)
    assert tuple(rgb.tolist()) == expected


def test_left_is_violet() -> None:
    # left: a = 1/2 -> fk = 41.5 (1-based) -> halfway between wheel[40] = (78, 0, 255) and
    # wheel[41] = (98, 0, 255): R = 88 up to the floor of a value computed in floats.
    rgb = to_uint8(flow_to_color(single_offset(0, -1))).view(3).tolist()
    assert rgb[0] in (87, 88) and rgb[1:] == [0, 255]


def test_integer_and_float_offsets_agree_and_integers_accepted() -> None:
    offsets = torch.tensor([[[[1, -2], [0, 3]], [[0, 1], [-1, 2]]]])  # (1, 2, 2, 2) int64
    assert torch.equal(flow_to_color(offsets), flow_to_color(offsets.double()))


def test_radius_fades_to_white_and_each_image_has_its_own_scale() -> None:
    # pixel 0 points down by 2 (the largest radius -> full red), pixel 1 down by 1:
    # rad 0.5 -> col = 1 - 0.5 * (1 - (1, 0, 0)) = (1, .5, .5) -> floor(127.5) = 127
    offsets = torch.tensor([[2.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    rgb = to_uint8(flow_to_color(offsets))[0, :, 0]  # (3, 2)
    assert rgb[:, 0].tolist() == [255, 0, 0]
    assert rgb[:, 1].tolist() == [255, 127, 127]
    # Two images: radius 4 then radius 1; each normalised by its own maximum -> both red.
    batch = torch.tensor([[4.0, 0.0], [1.0, 0.0]]).view(2, 2, 1, 1)
    rgb = to_uint8(flow_to_color(batch)).view(2, 3)
    assert rgb.tolist() == [[255, 0, 0], [255, 0, 0]]


def test_unknown_flow_is_zero_and_nan_is_black() -> None:
    offsets = torch.tensor([[2e7, 1.0, float("nan")], [0.0, 0.0, 0.0]]).view(1, 2, 1, 3)
    rgb = to_uint8(flow_to_color(offsets))[0, :, 0]  # (3, 3)
    assert rgb[:, 0].tolist() == [255, 255, 255]  # unknown -> zero flow -> white
    assert rgb[:, 1].tolist() == [255, 0, 0]  # the only real flow: down, full red
    assert rgb[:, 2].tolist() == [0, 0, 0]  # NaN -> black


def test_output_range_and_dtype() -> None:
    g = torch.Generator().manual_seed(0)
    offsets = torch.randint(-5, 6, (3, 2, 6, 7), generator=g)
    img = flow_to_color(offsets, dtype=torch.float64)
    assert img.shape == (3, 3, 6, 7) and img.dtype == torch.float64
    assert float(img.min()) >= -1.0 and float(img.max()) <= 1.0
    values = (img + 1.0) * 127.5
    assert torch.allclose(values, torch.round(values)), "colours are whole 0..255 values"


@pytest.mark.parametrize(
    "bad, error",
    [
        ([[0, 1]], TypeError),
        (torch.zeros(2, 4, 4), ValueError),
        (torch.zeros(1, 3, 4, 4), ValueError),
        (torch.zeros(1, 2, 4, 4, dtype=torch.bool), TypeError),
    ],
)
def test_bad_inputs_raise(bad: object, error: type) -> None:
    with pytest.raises(error):
        flow_to_color(bad)  # type: ignore[arg-type]


def test_compute_color_beyond_radius_one_is_darkened() -> None:
    # radius 2 pointing down: wheel[0] = (1, 0, 0) * 0.75 -> floor(191.25) = 191
    rgb = compute_color(torch.tensor([2.0]), torch.tensor([0.0]))
    assert rgb.tolist() == [[191.0, 0.0, 0.0]]
    # radius 1 and 0.5 pointing down, and a NaN vector
    rgb = compute_color(torch.tensor([1.0, 0.5, float("nan")]), torch.tensor([0.0, 0.0, 0.0]))
    assert rgb.tolist() == [[255.0, 0.0, 0.0], [255.0, 127.0, 127.0], [0.0, 0.0, 0.0]]


def test_angle_pi_lands_on_the_last_colour() -> None:
    # u = 1, v = -0.0: atan2(+0, -1) = +pi -> 1-based fk = 55 -> wheel[54], weight 0 on the
    # wrapped neighbour wheel[0].
    rgb = compute_color(torch.tensor([1.0]), torch.tensor([-0.0]))
    assert rgb.tolist() == [[255.0, 0.0, 43.0]]
