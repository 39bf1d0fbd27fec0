"""course_lib.receptive_field: hand-worked chains and a measurement by backpropagation."""
import pytest
import torch
import torch.nn as nn

from course_lib.generator import CoarseNetwork, Generator
from course_lib.receptive_field import ConvSpec, conv_specs, receptive_field


def test_hand_worked_chains():
    assert receptive_field([]) == []
    assert receptive_field([(3, 1, 1), (3, 1, 1)]) == [(3, 1), (5, 1)]
    assert receptive_field([(3, 2, 1), (3, 2, 1)]) == [(3, 2), (7, 4)]  # 1 + 2, then + 2 * 2; jumps 2, 4
    assert receptive_field([(3, 1, 2)]) == [(5, 1)]  # a dilated 3x3 spans 5 pixels
    assert receptive_field([(5, 1, 1), (3, 2, 1), (3, 1, 4)]) == [(5, 1), (7, 2), (23, 2)]  # 7 + 2 * 4 * 2


def measured_field(layers, size=97):
    """Side of the square of input pixels with a nonzero gradient for the centre output pixel."""
    convs = [nn.Conv2d(1, 1, k, stride=s, dilation=d, padding=(k - 1) * d // 2, bias=False)
             for k, s, d in layers]
    for conv in convs:
        nn.init.constant_(conv.weight, 1.0)  # positive weights: no gradient cancels out
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = nn.Sequential(*convs)(x)  # (1, 1, h, w)
    h, w = y.shape[-2:]
    y[0, 0, h // 2, w // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(dim=0)).flatten()
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1, "the field touches the border: use a larger size"
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("layers", [
    [(3, 1, 1), (3, 1, 1), (3, 1, 1)],
    [(5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)],
    [(3, 1, 2), (3, 2, 1), (3, 1, 3)],
    [(7, 1, 1), (3, 2, 1), (5, 1, 2)],
])
def test_formula_matches_the_gradient_support(layers):
    r, _ = receptive_field(layers)[-1]
    assert measured_field(layers, size=129) == (r, r)


def test_stage_one_sees_more_than_a_256_image_thanks_to_the_dilated_convs():
    specs = conv_specs(Generator(cnum=4).coarse, CoarseNetwork.LAYERS[:12])
    assert specs[0] == ConvSpec("conv1", 5, 1, 1) and specs[9] == ConvSpec("conv10_atrous", 3, 1, 16)
    fields = [r for r, _ in receptive_field([s[1:] for s in specs])]
    assert fields[5] == 31  # conv6: the encoder alone
    assert fields[-1] == 287  # conv12: 256 px and more
    without_dilation = receptive_field([(k, s, 1) for _, k, s, _ in specs])
    assert without_dilation[-1][0] == 31 + 6 * 2 * 4  # 6 more 3x3 convs at jump 4: 79


@pytest.mark.parametrize("layers, words", [
    ([(3, 0, 1)], "stride"),
    ([(3, 1)], "(kernel, stride, dilation)"),
    ([(3.0, 1, 1)], "kernel"),
    ([(3, 1, True)], "dilation"),
])
def test_bad_layers_say_what_to_pass(layers, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        receptive_field(layers)
    with pytest.raises(TypeError):
        receptive_field("conv1")


def test_conv_specs_refuses_layers_that_are_not_convs():
    coarse = Generator(cnum=4).coarse
    with pytest.raises(ValueError, match="GenDeconv"):
        conv_specs(coarse, ["conv13_upsample"])
    with pytest.raises(ValueError, match="missing"):
        conv_specs(coarse, ["conv99"])


def test_gradient_map_of_the_encoder_matches_the_formula():
    from course_lib.receptive_field import gradient_map, support_size
    coarse = Generator(cnum=4).coarse
    names = CoarseNetwork.LAYERS[:6]  # conv1 .. conv6, field 31 px
    grad = gradient_map([getattr(coarse, n) for n in names], in_channels=5, size=64)
    assert grad.shape == (64, 64)
    field = receptive_field([s[1:] for s in conv_specs(coarse, names)])[-1][0]
    assert support_size(grad) == (field, field) == (31, 31)
    assert support_size(torch.zeros(4, 4)) == (0, 0)
    with pytest.raises(ValueError, match="at least one layer"):
        gradient_map([], 5, 8)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        support_size(torch.zeros(1, 4, 4))
