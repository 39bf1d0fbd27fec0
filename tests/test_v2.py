"""DeepFill v2 (notebook 11): course_lib.gated, course_lib.sn_patchgan, the v2 mask helpers of course_lib.masks, course_lib.v2_toy."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.generator import CoarseNetwork
from course_lib.bench import count_parameters
from course_lib.gated import GatedCoarseNetwork, GatedConv2d, gated_conv2d
from course_lib.masks import hole_boundary_fraction, partial_conv_mask_updates, stroke_masks
from course_lib.sn_patchgan import SNPatchGANCritic, hinge_d_loss, hinge_g_loss
from course_lib.v2_toy import fill_scores, load_coarse, v2_weights


def _elu(v: float) -> float:
    return v if v > 0 else math.exp(v) - 1.0


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# ---- gated convolution, worked by hand

def test_a_1x1_gated_conv_by_hand():
    # one input channel, two output channels of a 1x1 conv: channel 0 = feature, channel 1 = gate
    weight = torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)  # (2C=2, C_in=1, 1, 1)
    bias = torch.tensor([-1.0, 0.5])
    x = torch.tensor([[[[0.0, 1.0, -2.0]]]])  # (1, 1, 1, 3)
    out = gated_conv2d(x, weight, bias)
    # feature f = 2x - 1, gate g = -x + 0.5
    expected = [_elu(2 * v - 1) * _sigmoid(-v + 0.5) for v in (0.0, 1.0, -2.0)]
    # x = 0: elu(-1) * sigmoid(0.5) = -0.632121 * 0.622459 = -0.393469
    assert expected[0] == pytest.approx(-0.393469, abs=1e-6)
    assert out.shape == (1, 1, 1, 3)
    assert out.flatten().tolist() == pytest.approx(expected, abs=1e-6)


def test_the_first_half_is_features_the_second_the_gate():
    # 2 output channels (C = 1): a big negative gate bias closes the gate whatever the features
    weight = torch.ones(2, 3, 1, 1)
    bias = torch.tensor([0.0, -50.0])
    x = torch.rand(2, 3, 4, 4)
    assert gated_conv2d(x, weight, bias).abs().max() < 1e-12
    bias = torch.tensor([-50.0, 50.0])  # features very negative -> elu = -1, gate open -> -1
    assert torch.allclose(gated_conv2d(x, weight, bias), torch.full((2, 1, 4, 4), -1.0))


def test_gated_conv_3x3_stride_2_against_a_slow_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 6, 6, generator=g)
    weight = torch.randn(4, 2, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    out = gated_conv2d(x, weight, bias, stride=2)  # (1, 2, 3, 3); TF 'SAME' pads (0, 1) for stride 2
    padded = F.pad(x, (0, 1, 0, 1))
    for c in range(2):
        for i in range(3):
            for j in range(3):
                window = padded[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                f = float((window * weight[c]).sum() + bias[c])
                gate = float((window * weight[c + 2]).sum() + bias[c + 2])
                assert out[0, c, i, j].item() == pytest.approx(_elu(f) * _sigmoid(gate), abs=1e-5)


def test_gated_conv_rejects_an_odd_number_of_channels():
    with pytest.raises(ValueError, match="even number of output channels"):
        gated_conv2d(torch.zeros(1, 1, 3, 3), torch.zeros(3, 1, 1, 1), None)


def test_the_module_matches_the_function_and_has_gradients():
    torch.manual_seed(0)
    layer = GatedConv2d(3, 5, 3, stride=2)
    assert layer.weight.shape == (10, 3, 3, 3) and (layer.bias == 0).all()  # TF default init
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 5, 4, 4)
    assert torch.allclose(out, gated_conv2d(x, layer.weight, layer.bias, stride=2))
    gate = layer.gate(x)
    assert gate.shape == (2, 5, 4, 4) and 0 <= gate.min() and gate.max() <= 1
    out.sum().backward()
    assert x.grad is not None and layer.weight.grad.abs().sum() > 0


def test_gate_bias_starts_only_the_gate_half():
    layer = GatedConv2d(3, 4, gate_bias=2.0)
    assert layer.bias[:4].tolist() == [0.0] * 4 and layer.bias[4:].tolist() == [2.0] * 4
    net = GatedCoarseNetwork(4, gate_bias=2.0)
    assert net.conv13_upsample.conv.bias[8:].eq(2.0).all()  # the deconv's gates too (8 features, 8 gates)
    assert net.conv17.bias.eq(0).all()  # the plain output conv has no gate


def test_gated_conv_module_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation"):
        GatedConv2d(3, 4, activation="gelu")
    with pytest.raises(ValueError, match="positive int"):
        GatedConv2d(3, 0)


# ---- the gated coarse network

def test_gated_coarse_network_follows_the_v1_layer_table():
    v1, gated = CoarseNetwork(8), GatedCoarseNetwork(8)
    for name in CoarseNetwork.LAYERS[:-1]:
        a, b = getattr(v1, name), getattr(gated, name)
        a = getattr(a, "conv", a)
        b = getattr(b, "conv", b)
        assert b.out_channels == 2 * a.out_channels and b.in_channels == a.in_channels
        assert (b.kernel_size, b.stride, b.dilation) == (a.kernel_size, a.stride, a.dilation)
    assert gated.conv17.out_channels == 3 and not isinstance(gated.conv17, GatedConv2d)
    # about twice the parameters: every conv but the output one doubles
    assert count_parameters(gated) == 2 * count_parameters(v1) - sum(
        p.numel() for p in v1.conv17.parameters())


def test_gated_coarse_network_shapes_range_and_gradient():
    torch.manual_seed(0)
    net = GatedCoarseNetwork(4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = stroke_masks(2, 32, torch.Generator().manual_seed(1))
    out = net(x * (1 - mask), mask)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    tanh = GatedCoarseNetwork(4, output="tanh")
    assert tanh(x, mask).abs().max() < 1
    with pytest.raises(ValueError, match="'clip'"):
        GatedCoarseNetwork(4, output="sigmoid")


# ---- SN-PatchGAN and the hinge losses

def test_sn_patchgan_output_is_a_map_of_patch_scores():
    torch.manual_seed(0)
    critic = SNPatchGANCritic(cnum=4)
    scores = critic(torch.zeros(3, 3, 256, 256), torch.zeros(1, 1, 256, 256))
    assert scores.shape == (3, 16, 4, 4)  # 256 / 2**6 = 4; 4 * cnum channels
    small = SNPatchGANCritic(cnum=4, layers=3)
    assert small(torch.zeros(2, 3, 64, 64), torch.ones(2, 1, 64, 64)).shape == (2, 16, 8, 8)
    with pytest.raises(ValueError, match="1..6"):
        SNPatchGANCritic(layers=7)


def test_spectral_norm_makes_each_kernel_matrix_about_1():
    torch.manual_seed(0)
    critic = SNPatchGANCritic(cnum=4, layers=2)
    x, m = torch.randn(2, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    for _ in range(30):  # one power iteration per training forward
        critic(x, m)
    for conv in critic.convs:
        w = conv.weight  # the normalised weight
        sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)


def test_hinge_losses_by_hand():
    pos = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - pos) = 0, 0.5, 2   -> mean 5/6
    neg = torch.tensor([-3.0, 0.0])  # relu(1 + neg) = 0, 1          -> mean 1/2
    assert hinge_d_loss(pos, neg).item() == pytest.approx(5 / 6 + 1 / 2)
    assert hinge_g_loss(neg).item() == pytest.approx(1.5)
    # any shape: a PatchGAN's whole map counts, each entry once
    maps = torch.full((2, 4, 3, 3), 0.25)
    assert hinge_d_loss(maps, -maps).item() == pytest.approx(0.75 + 0.75)


def test_hinge_gradients():
    pos = torch.tensor([2.0, 0.5], requires_grad=True)
    neg = torch.tensor([-3.0, 0.0], requires_grad=True)
    hinge_d_loss(pos, neg).backward()
    assert pos.grad.tolist() == [0.0, -0.5]  # saturated above +1: no gradient
    assert neg.grad.tolist() == [0.0, 0.5]
    neg.grad = None
    hinge_g_loss(neg).backward()
    assert neg.grad.tolist() == [-0.5, -0.5]  # never saturates


def test_hinge_bad_input():
    with pytest.raises(TypeError, match="float tensor"):
        hinge_d_loss([1.0], torch.zeros(1))
    with pytest.raises(TypeError, match="float tensor"):
        hinge_g_loss(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        hinge_g_loss(torch.zeros(0))


# ---- masks

def test_stroke_masks_are_binary_per_image_and_seeded():
    a = stroke_masks(3, 64, torch.Generator().manual_seed(5))
    b = stroke_masks(3, 64, torch.Generator().manual_seed(5))
    assert a.shape == (3, 1, 64, 64) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a[0], a[1])
    assert 0 < a.mean() < 0.6
    with pytest.raises(ValueError, match="batch >= 1"):
        stroke_masks(0, 64)


def test_partial_conv_mask_update_by_hand():
    mask = torch.zeros(1, 1, 1, 7)
    mask[..., 1:6] = 1.0  # a 5-pixel hole in a row: 0 1 1 1 1 1 0
    after = partial_conv_mask_updates(mask, kernel=3, steps=3)
    assert after[0].flatten().tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert after[1].flatten().tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert after[2].sum() == 0
    with pytest.raises(ValueError, match="odd"):
        partial_conv_mask_updates(mask, kernel=2)


def test_hole_boundary_fraction_by_hand():
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 1:4, 1:4] = 1.0  # a 3x3 hole: 8 ring pixels see known ones, the centre does not
    assert hole_boundary_fraction(mask, 3) == pytest.approx(8 / 9)
    assert hole_boundary_fraction(mask, 5) == 1.0
    assert hole_boundary_fraction(torch.zeros(1, 1, 4, 4)) == 0.0
    assert hole_boundary_fraction(torch.ones(1, 1, 4, 4)) == 0.0  # nothing known anywhere
    with pytest.raises(ValueError, match="odd"):
        hole_boundary_fraction(mask, 4)


def test_fill_scores_cap_an_exact_fill():
    x = torch.zeros(2, 3, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    scores = fill_scores(x, x.clone(), mask)
    assert scores["psnr"].tolist() == [50.0, 50.0] and scores["l1"].tolist() == [0.0, 0.0]
    y = x.clone()
    y[1] = 1.0  # off by 1 in [-1, 1] = 0.5 on [0, 1]: PSNR 10 log10(1 / 0.25), L1 50 %
    scores = fill_scores(x, y, mask)
    assert scores["psnr"][1].item() == pytest.approx(10 * math.log10(4)) and scores["l1"][1].item() == pytest.approx(50)


# ---- bundled weights

@pytest.mark.parametrize("kind,cls", [("v1", CoarseNetwork), ("gated", GatedCoarseNetwork)])
def test_bundled_toy_weights_load_small_and_fill(kind, cls):
    path = v2_weights(kind)
    assert path.stat().st_size < 1_000_000
    state = torch.load(path, weights_only=True)
    assert state["kind"] == kind and state["steps"] >= 1000
    net = load_coarse(path)
    assert isinstance(net, cls) and not net.training
    x = torch.zeros(1, 3, 64, 64)
    assert net(x, torch.ones(1, 1, 64, 64)).shape == (1, 3, 64, 64)


def test_bad_weight_names_and_files(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        v2_weights("v3")
    bad = tmp_path / "other.pt"
    torch.save({"kind": "something"}, bad)
    with pytest.raises(ValueError, match="train_v2_toy"):
        load_coarse(bad)
