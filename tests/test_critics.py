"""Tests of course_lib.critics: the local and global WGAN-GP critics of DeepFill v1.

Expected values come from the release's layer table written out below and from a slow
reference forward pass (explicit padding, explicit NHWC loop), not from the code under test.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.critics import GlobalCritic, LocalCritic


def critic_table(kind: str, cnum: int) -> list[tuple[int, int]]:
    """(in, out) channels of conv1..conv4 in the release."""
    widths = [cnum, 2 * cnum, 4 * cnum, 8 * cnum if kind == "local" else 4 * cnum]
    return list(zip([3] + widths[:3], widths))


def table_count(kind: str, cnum: int, size: int) -> int:
    convs = sum(5 * 5 * cin * cout + cout for cin, cout in critic_table(kind, cnum))
    side = size
    for _ in range(4):
        side = -(-side // 2)  # TF 'SAME', stride 2: ceil
    c4 = critic_table(kind, cnum)[-1][1]
    return convs + side * side * c4 + 1  # dense kernel [h*w*c4, 1] + bias


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reference_forward(critic, x: torch.Tensor) -> torch.Tensor:
    """Slow independent forward for even sizes: TF 'SAME' 5x5 stride 2 pads (top/left, bottom/right) = (1, 2)."""
    h = x
    for name in ("conv1", "conv2", "conv3", "conv4"):
        conv = getattr(critic, name)
        assert h.shape[-1] % 2 == 0 and h.shape[-2] % 2 == 0
        h = F.conv2d(F.pad(h, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2)
        h = torch.where(h > 0, h, 0.2 * h)  # leaky ReLU, slope 0.2
    B, C, Hf, Wf = h.shape
    w = critic.fc.weight[0]
    out = torch.empty(B, 1, dtype=x.dtype)
    for b in range(B):
        total = critic.fc.bias[0].clone()
        for i in range(Hf):
            for j in range(Wf):
                for c in range(C):
                    total = total + h[b, c, i, j] * w[(i * Wf + j) * C + c]  # TF flattens (h, w, c)
        out[b, 0] = total
    return out


def test_official_parameter_counts():
    local, glob = LocalCritic(), GlobalCritic()  # cnum 64, sizes 128 and 256; no forward pass
    assert n_params(local) == table_count("local", 64, 128)
    assert n_params(glob) == table_count("global", 64, 256)
    assert local.fc.in_features == 8 * 8 * 512 and glob.fc.in_features == 16 * 16 * 256


@pytest.mark.parametrize("cls, kind", [(LocalCritic, "local"), (GlobalCritic, "global")])
@pytest.mark.parametrize("cnum, size", [(4, 32), (6, 40)])
def test_structure_matches_table(cls, kind, cnum, size):
    critic = cls(cnum=cnum, size=size)
    assert n_params(critic) == table_count(kind, cnum, size)
    state = critic.state_dict()
    assert set(state) == {f"conv{i}.{p}" for i in range(1, 5) for p in ("weight", "bias")} | {"fc.weight", "fc.bias"}
    for i, (cin, cout) in enumerate(critic_table(kind, cnum), start=1):
        conv = getattr(critic, f"conv{i}")
        assert conv.weight.shape == (cout, cin, 5, 5)
        assert conv.stride == (2, 2)


@pytest.mark.parametrize("cls", [LocalCritic, GlobalCritic])
def test_forward_matches_slow_reference_nhwc(cls):
    torch.manual_seed(0)
    critic = cls(cnum=4, size=32).double()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(critic(x), reference_forward(critic, x))


def test_nchw_flatten_would_differ():
    """The test above can tell NHWC from NCHW order: the two flattenings disagree here."""
    torch.manual_seed(0)
    critic = LocalCritic(cnum=4, size=32).double()
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        h = critic.features(x)  # (1, 32, 2, 2)
        nchw = critic.fc(h.flatten(1))
    assert not torch.allclose(nchw, critic(x))


@pytest.mark.parametrize("B", [1, 16])
def test_batch_sizes(B):
    torch.manual_seed(0)
    for critic in (LocalCritic(cnum=4, size=32), GlobalCritic(cnum=4, size=64)):
        out = critic(torch.rand(B, 3, critic.size, critic.size) * 2 - 1)
        assert out.shape == (B, 1)
        assert torch.isfinite(out).all()


def test_odd_size_rounds_up_like_tf():
    critic = GlobalCritic(cnum=4, size=40)  # 40 -> 20 -> 10 -> 5 -> 3
    assert critic.fc.in_features == 3 * 3 * 16
    assert critic(torch.zeros(2, 3, 40, 40)).shape == (2, 1)


def test_gradient_penalty_double_backward():
    """WGAN-GP differentiates the critic's input gradient: double backward must work."""
    torch.manual_seed(0)
    critic = LocalCritic(cnum=4, size=32)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    # the input gradient of a piecewise-linear net depends on the weights only, not the biases
    for name, p in critic.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_size_says_which_size():
    critic = LocalCritic(cnum=4, size=32)
    with pytest.raises(ValueError, match=r"built for 32x32.*local_patch.*LocalCritic\(size=64\)"):
        critic(torch.zeros(1, 3, 64, 64))
    glob = GlobalCritic(cnum=4, size=64)
    with pytest.raises(ValueError, match=r"built for 64x64"):
        glob(torch.zeros(1, 3, 64, 32))


@pytest.mark.parametrize("shape, fix", [((1, 1, 32, 32), r"\(B, 3, 32, 32\)"), ((3, 32, 32), r"x\[None\]")])
def test_wrong_shape_raises(shape, fix):
    with pytest.raises(ValueError, match=fix):
        LocalCritic(cnum=4, size=32)(torch.zeros(shape))


def test_wrong_dtype_names_the_fix():
    with pytest.raises(TypeError, match=r"critic\.to\(x\.dtype\)"):
        LocalCritic(cnum=4, size=32)(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="size"):
        LocalCritic(cnum=4, size=0)
    with pytest.raises(ValueError, match="channels"):
        GlobalCritic(cnum=0)


@pytest.mark.parametrize("cls", [LocalCritic, GlobalCritic])
def test_init_is_tf_layers_default(cls):
    # tf.layers.conv2d / tf.layers.dense without an initializer: Glorot uniform, zero bias
    torch.manual_seed(0)
    critic = cls(cnum=8, size=32)
    for layer in (critic.conv1, critic.conv2, critic.conv3, critic.conv4, critic.fc):
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * (layer.weight[0, 0].numel() if layer.weight.dim() == 4 else 1)
        assert layer.weight.abs().max() <= (6.0 / (fan_in + fan_out)) ** 0.5
        assert torch.count_nonzero(layer.bias) == 0


def test_flatten_nhwc_order_by_hand():
    from course_lib.critics import flatten_nhwc
    h = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)  # (B, C, H, W), value = ((b*C + c)*H + y)*W + x
    flat = flatten_nhwc(h)  # (2, 12)
    # element (h=0, w=1, c=2) sits at (0 * 2 + 1) * 3 + 2 = 5 and holds c*4 + 0*2 + 1 = 9
    assert flat.shape == (2, 12) and flat[0, 5].item() == 9.0
    assert flat[0, :3].tolist() == [0.0, 4.0, 8.0]  # the three channels at (0, 0) first
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        flatten_nhwc(torch.zeros(2, 3, 4))


@pytest.mark.parametrize("cls, size", [(LocalCritic, 32), (GlobalCritic, 48), (GlobalCritic, 20)])
def test_input_gradient_equals_autograd(cls, size):
    """The chain rule written out (the fast path's gradient penalty) against autograd, and its weight gradients."""
    from course_lib.losses import gradient_penalty
    from course_lib.ops import use_fast_path

    torch.manual_seed(0)
    critic = cls(4, size=size)
    x = torch.randn(3, 3, size, size, requires_grad=True)
    (expected,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    got = critic.input_gradient(x)
    assert torch.allclose(got, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)
    g = torch.Generator().manual_seed(1)
    real, fake = torch.rand(3, 3, size, size, generator=g), torch.rand(3, 3, size, size, generator=g)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 2: size // 2, 3: size - 2] = 1.0
    ref = gradient_penalty(critic, real, fake, mask, generator=5)
    params = list(critic.parameters())
    ref_grads = [torch.zeros_like(p) if d is None else d
                 for p, d in zip(params, torch.autograd.grad(ref, params, allow_unused=True))]
    use_fast_path(critic)
    fast = gradient_penalty(critic, real, fake, mask, generator=5)
    assert torch.allclose(fast, ref, atol=1e-5 * float(ref.abs()), rtol=0)
    # the biases do not change the input gradient (leaky_relu' is piecewise constant): no gradient, or zero
    for a, b in zip(torch.autograd.grad(fast, params, allow_unused=True), ref_grads):
        a = torch.zeros_like(b) if a is None else a
        assert torch.allclose(a, b, atol=1e-5 * max(float(b.abs().max()), 1e-12), rtol=0)
