"""ops.py against hand-worked TF tables (padding and nearest-resize index tables)."""
import pytest
import torch
import torch.nn.functional as F

from course_lib.ops import (GenConv, GenDeconv, SameConv2d, nearest_indices, pad_same, tf_default_init_,
                            resize_nearest, same_padding)


@pytest.mark.parametrize("size,kernel,stride,dilation,expected", [
    (256, 3, 2, 1, (0, 1)),   # stride-2 3x3 on an even size: extra pixel bottom/right
    (256, 5, 2, 1, (1, 2)),   # stride-2 5x5 on an even size
    (255, 3, 2, 1, (1, 1)),   # odd size: symmetric
    (64, 3, 1, 1, (1, 1)),    # stride 1: symmetric, like PyTorch padding=1
    (64, 5, 1, 1, (2, 2)),
    (64, 3, 1, 16, (16, 16)),  # dilated: k_eff = 33
    (128, 4, 2, 1, (1, 1)),   # raw 4x4 attention patches at stride 2
    (1, 3, 2, 1, (1, 1)),
])
def test_same_padding_table(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


@pytest.mark.parametrize("bad", [(0, 3, 1, 1), (8, 0, 1, 1), (8, 3, 0, 1), (8, 3, 1, 0)])
def test_same_padding_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="positive"):
        same_padding(*bad)


def test_nearest_downsample_64_to_32_matches_reference_table():
    # deepfill_v1.md: 64 -> 32 picks 0, 2, ..., 30, 33, 35, ..., 61, 63
    expected = list(range(0, 31, 2)) + list(range(33, 64, 2))
    assert nearest_indices(64, 32).tolist() == expected


def test_nearest_upsample_x2_is_pixel_repetition():
    for n in (1, 2, 5, 16, 33):
        got = nearest_indices(n, 2 * n).tolist()
        assert got == [i // 2 for i in range(2 * n)], n


def test_nearest_round_half_away_from_zero():
    # in=6, out=3: scale 2.5, dst 1 -> 2.5 -> TF roundf gives 3 (torch.round would give 2)
    assert nearest_indices(6, 3).tolist() == [0, 3, 5]
    # in=4, out=3: scale 1.5 -> [0, 1.5->2, 3]
    assert nearest_indices(4, 3).tolist() == [0, 2, 3]


def test_nearest_without_align_corners_floors():
    # scale = in/out = 2 -> floor(dst*2)
    assert nearest_indices(8, 4, align_corners=False).tolist() == [0, 2, 4, 6]


def test_nearest_single_output_pixel():
    assert nearest_indices(7, 1).tolist() == [0]


def test_resize_nearest_differs_from_strided_slicing():
    x = torch.arange(64.0).view(1, 1, 64, 1).expand(1, 1, 64, 64)
    y = resize_nearest(x, (32, 32))
    assert y.shape == (1, 1, 32, 32)
    assert y[0, 0, :, 0].tolist() == [float(i) for i in nearest_indices(64, 32).tolist()]
    assert not torch.equal(y, x[..., ::2, ::2])


def test_resize_nearest_rejects_non_4d():
    with pytest.raises(ValueError, match="NCHW"):
        resize_nearest(torch.zeros(3, 8, 8), (4, 4))


def test_pad_same_puts_extra_pixel_bottom_right():
    x = torch.ones(1, 1, 4, 4)
    y = pad_same(x, kernel=3, stride=2)
    assert y.shape == (1, 1, 5, 5)
    assert y[0, 0, :4, :4].eq(1).all() and y[0, 0, 4, :].eq(0).all() and y[0, 0, :, 4].eq(0).all()


def test_same_conv_stride2_hand_worked():
    # 4x4 input 0..15, 3x3 kernel of ones, stride 2: TF pads (0, 1), so the windows start at
    # rows/cols 0 and 2; the second window overlaps the zero row/col at index 4.
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.arange(16.0).view(1, 1, 4, 4)
    rows = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]

    def window(r, c):
        return sum(rows[i][j] for i in range(r, r + 3) for j in range(c, c + 3) if i < 4 and j < 4)

    expected = torch.tensor([[window(0, 0), window(0, 2)], [window(2, 0), window(2, 2)]], dtype=torch.float32)
    assert torch.equal(conv(x)[0, 0], expected)
    # PyTorch's symmetric padding=1 gives a different (shifted) answer
    assert not torch.equal(F.conv2d(x, conv.weight, padding=1, stride=2)[0, 0], expected)


def test_same_conv_stride1_equals_symmetric_padding():
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 3, dilation=2)
    x = torch.randn(1, 2, 9, 7)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=2, dilation=2)
    torch.testing.assert_close(conv(x), ref)


def test_gen_conv_activations():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 5, 5)
    for act, fn in [("elu", F.elu), ("relu", F.relu), ("none", lambda t: t)]:
        conv = GenConv(1, 2, 3, activation=act)
        ref = fn(F.conv2d(x, conv.weight, conv.bias, padding=1))
        torch.testing.assert_close(conv(x), ref)
    with pytest.raises(ValueError, match="unknown activation"):
        GenConv(1, 1, activation="tanh")


def test_gen_deconv_is_repeat_then_conv():
    torch.manual_seed(0)
    layer = GenDeconv(2, 3)
    x = torch.randn(1, 2, 4, 5)
    up = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # (1, 2, 8, 10)
    ref = F.elu(F.conv2d(up, layer.conv.weight, layer.conv.bias, padding=1))
    torch.testing.assert_close(layer(x), ref)


def test_nearest_rounds_like_c_roundf_just_below_a_half():
    # 2 -> 83: scale = float32(1/82); dst 41 gives 0.49999997 in float32, which roundf
    # rounds to 0 (floor(x + 0.5) would give 1 because x + 0.5 rounds up to 1.0 in float32)
    idx = nearest_indices(2, 83).tolist()
    assert idx[41] == 0 and idx[42] == 1
    assert idx == [0] * 42 + [1] * 41


def test_tf_default_init_is_glorot_uniform_with_zero_bias():
    torch.manual_seed(0)
    conv = SameConv2d(32, 64, 3)
    # TF glorot_uniform: limit sqrt(6 / (fan_in + fan_out)), fans = channels * k * k
    limit = (6.0 / (32 * 9 + 64 * 9)) ** 0.5
    w = conv.weight.detach()
    assert w.abs().max() <= limit
    assert w.abs().max() > 0.95 * limit  # the whole range is used (18,432 draws)
    assert abs(w.var().item() - limit ** 2 / 3) < 0.05 * limit ** 2 / 3  # U(-a, a) variance a^2/3
    assert torch.count_nonzero(conv.bias) == 0


def test_tf_default_init_dense_and_generator_layers():
    torch.manual_seed(0)
    dense = tf_default_init_(torch.nn.Linear(256, 1))
    limit = (6.0 / (256 + 1)) ** 0.5
    assert dense.weight.abs().max() <= limit and torch.count_nonzero(dense.bias) == 0
    g = GenConv(8, 8, 5, dilation=2)  # every generator conv goes through SameConv2d
    assert g.weight.abs().max() <= (6.0 / (8 * 25 + 8 * 25)) ** 0.5
    assert torch.count_nonzero(g.bias) == 0


def test_tf_default_init_rejects_other_modules():
    with pytest.raises(TypeError, match="nn.Conv2d or nn.Linear"):
        tf_default_init_(torch.nn.ReLU())
