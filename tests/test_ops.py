"""ops.py against hand-worked TF tables (padding and nearest-resize index tables)."""
import copy

import pytest
import torch
import torch.nn.functional as F

import course_lib.ops as ops
from course_lib.ops import (GenConv, GenDeconv, SameConv2d, nearest_indices, pad_same, tf_default_init_,
                            resize_nearest, resize_nearest_reference, same_conv2d,
                            same_padding, use_reference_ops, fold_same_padding, folded_same_conv2d,
                            same_conv2d_input_grad, upsample_conv2d, use_fast_path)


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


# ------------------------------------------------------- fast paths == step-by-step references

SIZES = [(15, 15), (16, 16), (16, 12), (33, 20)]  # odd, even, non-square, odd x even
CONV_CASES = [(s, d, k) for k in (3, 5) for s, d in
              [(1, 1), (1, 2), (1, 4), (1, 8), (1, 16), (2, 1), (2, 2)]]


def _explicit_same_conv(x, weight, bias, stride, dilation):
    """TF 'SAME' written out once more: pad (top, bottom, left, right) by the TF formula, then conv."""
    k_eff = (weight.shape[-1] - 1) * dilation + 1
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad order: last axis first
        total = max((-(-n // stride) - 1) * stride + k_eff - n, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), weight, bias, stride, 0, dilation)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stride,dilation,kernel", CONV_CASES)
def test_same_conv2d_equals_the_tf_formula_written_out(size, stride, dilation, kernel):
    g = torch.Generator().manual_seed(hash((size, stride, dilation, kernel)) % 2**31)
    for batch, c_in, c_out in ((1, 5, 8), (2, 32, 16)):
        x = torch.randn(batch, c_in, *size, generator=g)  # (B, C_in, H, W)
        w = torch.randn(c_out, c_in, kernel, kernel, generator=g)
        b = torch.randn(c_out, generator=g)
        out = same_conv2d(x, w, b, stride, dilation)
        assert out.shape == (batch, c_out, -(-size[0] // stride), -(-size[1] // stride))
        assert torch.equal(out, _explicit_same_conv(x, w, b, stride, dilation))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stride,dilation,kernel", CONV_CASES)
def test_folded_padding_equals_the_tf_formula_to_float_rounding(size, stride, dilation, kernel):
    g = torch.Generator().manual_seed(hash((size, stride, dilation, kernel, "fold")) % 2**31)
    x = torch.randn(2, 6, *size, generator=g, requires_grad=True)  # (B, C_in, H, W)
    w = torch.randn(4, 6, kernel, kernel, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g)
    expected = _explicit_same_conv(x, w, b, stride, dilation)
    gx, gw = torch.autograd.grad(expected.square().sum(), (x, w))
    with fold_same_padding():
        out = same_conv2d(x, w, b, stride, dilation)
    scale = float(expected.abs().max())
    assert torch.allclose(out, expected, atol=1e-5 * scale, rtol=0)
    fx, fw = torch.autograd.grad(out.square().sum(), (x, w))
    assert torch.allclose(fx, gx, atol=1e-5 * float(gx.abs().max()), rtol=0)
    assert torch.allclose(fw, gw, atol=1e-5 * float(gw.abs().max()), rtol=0)


def test_fold_same_padding_skips_asymmetric_paddings_and_restores_the_switch():
    x = torch.randn(1, 2, 8, 8)
    w = torch.randn(3, 2, 3, 3)
    with fold_same_padding():
        assert ops._FOLD["on"]
        # stride 2 on an even size pads (0, 1): kept as one explicit pad, so the bits are the default's
        assert torch.equal(same_conv2d(x, w, None, 2), _explicit_same_conv(x, w, None, 2, 1))
        with fold_same_padding(False):
            assert not ops._FOLD["on"]
        assert ops._FOLD["on"]
    assert not ops._FOLD["on"]


def test_use_reference_ops_restores_the_switch():
    assert not ops._REFERENCE["on"]
    with use_reference_ops():
        assert ops._REFERENCE["on"]
        with use_reference_ops(False):
            assert not ops._REFERENCE["on"]
        assert ops._REFERENCE["on"]
    assert not ops._REFERENCE["on"]


def test_index_runs_table():
    assert ops._index_runs([0, 2, 4, 7, 9]) == [(0, 2, 3), (7, 2, 2)]
    assert ops._index_runs([3]) == [(3, 1, 1)]
    assert ops._index_runs(list(range(0, 31, 2)) + list(range(33, 64, 2))) == [(0, 2, 16), (33, 2, 16)]
    assert ops._index_runs([0, 0, 1, 1]) is None  # repeats: not a slice
    assert ops._index_runs([i * i for i in range(20)]) is None  # 10 runs of two: too many


@pytest.mark.parametrize("in_size,out_size", [
    ((64, 64), (32, 32)),     # the x1/2 attention downsampling: two arithmetic runs
    ((16, 12), (32, 24)),     # x2 upsampling (gen_deconv): pixel repetition
    ((7, 5), (14, 10)),       # odd x2 upsampling
    ((256, 192), (64, 48)),   # mask to feature size: four runs per axis
    ((9, 9), (5, 5)),         # (in-1)/(out-1) = 2: one slice x[::2]
    ((8, 6), (8, 6)),         # identity: must still be a copy
    ((5, 7), (1, 1)),
    ((6, 6), (3, 3)),         # round half away from zero: 0, 3, 5
    ((2, 2), (83, 83)),       # many repeats: index_select fallback
    ((10, 10), (7, 13)),      # mixed down/up
])
def test_resize_nearest_fast_equals_reference_forward_and_backward(in_size, out_size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *in_size, generator=g).requires_grad_()  # (B, C, H, W)
    y_fast = resize_nearest(x, out_size)
    y_ref = resize_nearest_reference(x, out_size)
    rows, cols = nearest_indices(in_size[0], out_size[0]), nearest_indices(in_size[1], out_size[1])
    assert torch.equal(y_ref, x[:, :, rows][:, :, :, cols])  # plain advanced indexing
    assert torch.equal(y_fast, y_ref)
    gy = torch.randn(y_ref.shape, generator=g)
    (g_fast,) = torch.autograd.grad(y_fast, x, gy)
    (g_ref,) = torch.autograd.grad(y_ref, x, gy)
    assert torch.equal(g_fast, g_ref)
    with torch.no_grad():  # the result never aliases the input
        before = x.clone()
        resize_nearest(x, out_size).add_(1.0)
        assert torch.equal(x, before)


def test_resize_nearest_reference_switch_and_bool():
    x = torch.rand(1, 1, 64, 48) > 0.5
    with use_reference_ops():
        ref = resize_nearest(x, (16, 12))
    assert torch.equal(resize_nearest(x, (16, 12)), ref)
    assert ref.dtype == torch.bool


# ------------------------------------------------------- the training path's folded conv

@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stride,dilation,kernel", CONV_CASES)
def test_folded_same_conv2d_equals_the_tf_formula_every_stride(size, stride, dilation, kernel):
    """Stride 2 included: the symmetric part in the conv, TF's odd extra pixel as one small pad."""
    g = torch.Generator().manual_seed(hash((size, stride, dilation, kernel, "train")) % 2**31)
    x = torch.randn(2, 6, *size, generator=g, requires_grad=True)  # (B, C_in, H, W)
    w = torch.randn(4, 6, kernel, kernel, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g, requires_grad=True)
    expected = _explicit_same_conv(x, w, b, stride, dilation)
    grads = torch.autograd.grad(expected.square().sum(), (x, w, b))
    out = folded_same_conv2d(x, w, b, stride, dilation)
    assert out.shape == expected.shape
    assert torch.equal(same_conv2d(x, w, b, stride, dilation, fold=True), out)
    assert torch.allclose(out, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)
    for got, want in zip(torch.autograd.grad(out.square().sum(), (x, w, b)), grads):
        assert torch.allclose(got, want, atol=1e-5 * float(want.abs().max()), rtol=0)


def test_folded_same_conv2d_pads_only_the_odd_pixel():
    """A 5x5 stride-2 conv on 8x8: TF pads (1, 2); the fold pads nothing at the top and keeps the values."""
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0] = 1.0  # only the top-left pixel: TF output (0, 0) reads it with tap (1, 1)
    w = torch.arange(25.0).view(1, 1, 5, 5)
    out = folded_same_conv2d(x, w, None, 2)
    assert out.shape == (1, 1, 4, 4)
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 0, 0] = w[0, 0, 1, 1]  # padded row 1 = image row 0
    assert torch.equal(out, expected)


def test_use_fast_path_sets_the_flags_and_back():
    from course_lib.critics import GlobalCritic
    from course_lib.generator import Generator

    gen, critic = Generator(2), GlobalCritic(2, size=32)
    convs = [m for m in (*gen.modules(), *critic.modules()) if isinstance(m, SameConv2d)]
    assert convs and not any(c.fold_padding for c in convs) and not gen.refine.batched_attention
    keys = set(gen.state_dict())
    use_fast_path(gen, critic)
    assert all(c.fold_padding for c in convs) and gen.refine.batched_attention
    assert set(gen.state_dict()) == keys  # nothing new in a checkpoint
    assert copy.deepcopy(gen).refine.batched_attention  # an EMA copy keeps it
    use_fast_path(gen, critic, enabled=False)
    assert not any(c.fold_padding for c in convs) and not gen.refine.batched_attention
    with pytest.raises(TypeError, match="nn.Module"):
        use_fast_path(gen.state_dict())


@pytest.mark.parametrize("size", [(8, 8), (7, 5), (1, 3)])
def test_upsample_conv2d_equals_resize_then_conv(size):
    """The sub-pixel form of gen_deconv against the x2 resize + 3x3 'SAME' conv, values and gradients."""
    g = torch.Generator().manual_seed(size[0] * 10 + size[1])
    x = torch.randn(2, 6, *size, generator=g, requires_grad=True)  # (B, C_in, H, W)
    w = torch.randn(4, 6, 3, 3, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g, requires_grad=True)
    expected = same_conv2d(resize_nearest(x, (2 * size[0], 2 * size[1])), w, b)
    out = upsample_conv2d(x, w, b)
    assert out.shape == expected.shape == (2, 4, 2 * size[0], 2 * size[1])
    assert torch.allclose(out, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)
    gy = torch.randn(expected.shape, generator=g)
    for got, want in zip(torch.autograd.grad(out, (x, w, b), gy), torch.autograd.grad(expected, (x, w, b), gy)):
        assert torch.allclose(got, want, atol=1e-5 * float(want.abs().max()), rtol=0)


def test_gen_deconv_fast_path_equals_the_default():
    torch.manual_seed(0)
    layer = GenDeconv(6, 4)
    x = torch.randn(2, 6, 5, 8)
    expected = layer(x)
    use_fast_path(layer)
    out = layer(x)
    assert torch.allclose(out, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stride,dilation,kernel", CONV_CASES)
def test_same_conv2d_input_grad_equals_autograd(size, stride, dilation, kernel):
    g = torch.Generator().manual_seed(hash((size, stride, dilation, kernel, "grad")) % 2**31)
    x = torch.randn(2, 3, *size, generator=g, requires_grad=True)  # (B, C_in, H, W)
    w = torch.randn(5, 3, kernel, kernel, generator=g)
    y = _explicit_same_conv(x, w, None, stride, dilation)
    gy = torch.randn(y.shape, generator=g)
    (expected,) = torch.autograd.grad(y, x, gy)
    out = same_conv2d_input_grad(gy, w, size, stride, dilation)
    assert out.shape == x.shape
    assert torch.allclose(out, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)
