"""DeepFill v2 pieces: gated convolution, a gated coarse network, the SN-PatchGAN critic, hinge losses.

Paper: Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019
(arXiv 1806.03589), Sec. 3.1 (gated convolution), Sec. 3.2 (SN-PatchGAN), Sec. 3.3
(free-form masks; :func:`course_lib.masks.brush_stroke_mask`). Taught in notebook 11 and
lesson 11, a bonus chapter after the DeepFill v1 course.

What follows the v2 release (``inpaint_model.py`` of the official repository's master
branch, read for this module; ``gen_conv`` / ``dis_conv`` of its ``inpaint_ops.py`` read in
copies of that file that agree with one another):

* ``gen_conv`` is ONE conv whose output channels are split in two halves along the
  channels: the first half are the features, the second the gate;
  ``out = ELU(features) * sigmoid(gate)``. The output conv (3 channels) is a plain conv.
  The release asks ``gen_conv(x, cnum)`` for ``cnum`` conv channels and returns ``cnum / 2``;
  here :class:`GatedConv2d` ``(in, out)`` returns ``out`` channels from a conv of ``2 * out``;
* the SN-PatchGAN critic is six 5x5 stride-2 'SAME' convs, spectral-normalised, leaky ReLU
  (0.2), 64-128-256-256-256-256 channels, on ``[image, mask]``; the release flattens the
  final map, so every entry is one score (a GAN on that entry's receptive field);
* the losses are ``gan_hinge_loss`` and a plain L1 over the whole image for both stages.

Differences on purpose: :class:`GatedCoarseNetwork` keeps v1's layer table, 5-channel input
and output clip (v2 ends in tanh; ``output="tanh"`` gives that), so that it differs from
:class:`course_lib.generator.CoarseNetwork` in the convolution alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from course_lib.data import make_dataset
from course_lib.generator import CoarseNetwork, stage_input
from course_lib.masks import brush_stroke_mask
from course_lib.metrics import l1_error, psnr
from course_lib.ops import ACTIVATIONS, GenConv, GenDeconv, SameConv2d, resize_nearest, same_conv2d

__all__ = [
    "gated_conv2d",
    "GatedConv2d",
    "GatedDeconv",
    "GatedCoarseNetwork",
    "SNPatchGANCritic",
    "hinge_d_loss",
    "hinge_g_loss",
    "stroke_masks",
    "partial_conv_mask_updates",
    "hole_boundary_fraction",
    "v2_weights",
    "load_coarse",
    "count_parameters",
    "held_out_strokes",
    "hole_scores",
    "fill_scores",
    "V2_WEIGHTS",
]

# bundled toy weights, trained by scripts/train_v2_toy.py
V2_WEIGHTS = {"v1": "toy_coarse_v1_strokes.pt", "gated": "toy_coarse_gated_strokes.pt"}


# ----------------------------------------------------------------------------- gated conv

def gated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Gated convolution (v2 paper Eq. 1; release ``gen_conv``): ELU(features) * sigmoid(gate).

    ``x`` (B, C_in, H, W); ``weight`` (2C, C_in, k, k) and ``bias`` (2C,) of ONE 'SAME'
    conv (:func:`course_lib.ops.same_conv2d`); its first C output channels are the
    features, the last C the gate. Returns (B, C, ceil(H/s), ceil(W/s)).
    """
    if weight.dim() != 4 or weight.shape[0] % 2:
        raise ValueError(f"a gated conv needs a weight (2C, C_in, k, k) with an even number of output "
                         f"channels (C features + C gates), got shape {tuple(weight.shape)}")
    h = same_conv2d(x, weight, bias, stride, dilation)  # (B, 2C, H', W')
    features, gate = torch.chunk(h, 2, dim=1)  # (B, C, H', W') each: first half, second half
    return F.elu(features) * torch.sigmoid(gate)  # (B, C, H', W')


class GatedConv2d(SameConv2d):
    """A v2 ``gen_conv``: one 'SAME' conv to ``2 * out_channels``, split, ELU(features) * sigmoid(gate).

    ``activation`` acts on the feature half (``'elu'`` as the release, or ``'relu'``,
    ``'leaky_relu'``, ``'none'``); the gate is always a sigmoid. Weights start as TF's
    defaults (Glorot uniform, zero bias), as every course_lib conv and the release;
    ``gate_bias`` > 0 (ours, not the release's) starts the gate biases there instead, so that
    the gates start open (sigmoid(2) = 0.88) rather than half open.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, activation: str = "elu", gate_bias: float = 0.0) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
        super().__init__(in_channels, 2 * out_channels, kernel_size, stride=stride, dilation=dilation)
        self.activation = activation
        with torch.no_grad():  # 0 = the release's zero bias: every gate starts half open
            self.bias[out_channels:] = gate_bias

    def features_and_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two halves before the activations: (B, C, H', W') each."""
        h = same_conv2d(x, self.weight, self.bias, self.stride[0], self.dilation[0])  # (B, 2C, H', W')
        features, gate = torch.chunk(h, 2, dim=1)
        return features, gate

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(gate) in [0, 1], (B, C, H', W'): how much of each feature passes."""
        return torch.sigmoid(self.features_and_gate(x)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C, H', W')
        features, gate = self.features_and_gate(x)
        return ACTIVATIONS[self.activation](features) * torch.sigmoid(gate)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", gated: {self.out_channels // 2} out, activation={self.activation}"


class GatedDeconv(nn.Module):
    """The v2 ``gen_deconv``: nearest x2 upsampling (align_corners) then a 3x3 gated conv."""

    def __init__(self, in_channels: int, out_channels: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3, gate_bias=gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C_out, 2H, 2W)
        h, w = x.shape[-2:]
        return self.conv(resize_nearest(x, (2 * h, 2 * w)))


def _gated_like(layer: nn.Module, gate_bias: float = 0.0) -> nn.Module:
    """The gated twin of one v1 layer (same channels, kernel, stride, dilation)."""
    if isinstance(layer, GenDeconv):
        return GatedDeconv(layer.conv.in_channels, layer.conv.out_channels, gate_bias=gate_bias)
    if isinstance(layer, GenConv) and layer.activation == "none":  # the output conv stays plain
        return SameConv2d(layer.in_channels, layer.out_channels, layer.kernel_size[0],
                          stride=layer.stride[0], dilation=layer.dilation[0])
    if isinstance(layer, GenConv):
        return GatedConv2d(layer.in_channels, layer.out_channels, layer.kernel_size[0],
                           stride=layer.stride[0], dilation=layer.dilation[0], activation=layer.activation,
                           gate_bias=gate_bias)
    raise TypeError(f"no gated twin for a {type(layer).__name__}")


class GatedCoarseNetwork(nn.Module):
    """v1's coarse network (:class:`course_lib.generator.CoarseNetwork`) with every conv gated.

    Built from v1's own layer table (``CoarseNetwork.LAYERS``), layer for layer: each
    ``GenConv`` becomes a :class:`GatedConv2d` with the same output channels, each
    ``GenDeconv`` a :class:`GatedDeconv`, the output conv ``conv17`` stays a plain conv. So
    it has about twice the parameters (every conv computes its gate too). Input and output
    as v1: ``x`` (B, 3, H, W), ``mask`` (B or 1, 1, H, W) -> (B, 3, H, W), clipped to
    [-1, 1] (``output="tanh"``: the v2 release's tanh instead). Give it the incomplete
    image ``x * (1 - mask)``, as :class:`CoarseNetwork`.
    """

    LAYERS = CoarseNetwork.LAYERS

    def __init__(self, cnum: int = 32, output: str = "clip", gate_bias: float = 0.0) -> None:
        super().__init__()
        if output not in ("clip", "tanh"):
            raise ValueError(f"output must be 'clip' (v1's) or 'tanh' (the v2 release's), got {output!r}")
        self.output = output
        v1 = CoarseNetwork(cnum)
        for name in self.LAYERS:
            setattr(self, name, _gated_like(getattr(v1, name), gate_bias))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = stage_input(x, mask)  # (B, 5, H, W); x is the incomplete image, as for v1's CoarseNetwork
        for name in self.LAYERS:
            h = getattr(self, name)(h)  # ends at (B, 3, H, W)
        return torch.tanh(h) if self.output == "tanh" else h.clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------- SN-PatchGAN

class SNPatchGANCritic(nn.Module):
    """The SN-PatchGAN critic (v2 paper Sec. 3.2, Figure 3; release ``build_sn_patch_gan_discriminator``).

    Six 5x5 stride-2 'SAME' convs, each spectral-normalised (one power iteration per
    training forward, as the release's ``kernel_spectral_norm``) and followed by leaky ReLU
    0.2; channels ``cnum * (1, 2, 4, 4, 4, 4)`` (release: cnum 64). Input: the image and the
    mask, (B, 4, H, W) (release ``gan_with_mask``); output: a map of scores
    (B, 4 cnum, H/64, W/64) rounded up, each entry a real/fake score for one patch of the
    input. ``layers`` < 6 keeps more, smaller-receptive-field scores for small toy images.
    """

    def __init__(self, in_channels: int = 4, cnum: int = 64, layers: int = 6) -> None:
        super().__init__()
        if not 1 <= layers <= 6:
            raise ValueError(f"layers must be 1..6 (the release has 6), got {layers!r}")
        widths = [cnum * m for m in (1, 2, 4, 4, 4, 4)][:layers]
        convs, c_in = [], in_channels
        for c_out in widths:
            convs.append(spectral_norm(SameConv2d(c_in, c_out, 5, stride=2)))
            c_in = c_out
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W), ``mask`` (B or 1, 1, H, W) -> scores (B, C, H/2^L, W/2^L)."""
        h = torch.cat([x, mask.expand(x.shape[0], 1, *x.shape[-2:])], dim=1)  # (B, 4, H, W)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)  # halves H and W
        return h


def _scores(t: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{what} must be a float tensor of critic scores, got "
                        f"{type(t).__name__ if not isinstance(t, torch.Tensor) else t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{what} is empty: pass the critic's scores for at least one image")
    return t


def hinge_d_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The critic's hinge loss (v2 paper Eq. 3): ``mean(relu(1 - pos)) + mean(relu(1 + neg))``.

    ``pos`` = scores of real images, ``neg`` = of completed ones, any shape (for SN-PatchGAN
    the whole score map: every entry is one patch's GAN). A real score above +1 and a fake
    one below -1 cost nothing. The release's ``gan_hinge_loss`` comes from neuralgym;
    ports of it weigh each term by 0.5 (not checked against neuralgym itself), which only
    scales the critic's gradient.
    """
    pos, neg = _scores(pos, "pos"), _scores(neg, "neg")
    return torch.mean(F.relu(1.0 - pos)) + torch.mean(F.relu(1.0 + neg))


def hinge_g_loss(neg: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss with a hinge critic (v2 paper Eq. 3): ``-mean(neg)``, no hinge."""
    return -torch.mean(_scores(neg, "neg"))


# ----------------------------------------------------------------------------- masks

def stroke_masks(batch: int, size: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``batch`` free-form masks (B, 1, size, size): v2's brush strokes scaled from 256 px to ``size``.

    :func:`course_lib.masks.brush_stroke_mask` with brush widths 12-40 px times
    ``size / 256`` (3-10 px at 64 px), one mask per image.
    """
    if not isinstance(batch, int) or batch < 1 or not isinstance(size, int) or size < 8:
        raise ValueError(f"stroke_masks needs batch >= 1 and size >= 8 (ints), got {batch!r}, {size!r}")
    scale = size / 256.0
    masks = [brush_stroke_mask(size, size, generator, min_width=12.0 * scale, max_width=40.0 * scale)
             for _ in range(batch)]
    return torch.cat(masks, dim=0)  # (B, 1, size, size)


def partial_conv_mask_updates(mask: torch.Tensor, kernel: int = 3, steps: int = 4) -> list[torch.Tensor]:
    """The hole after each of ``steps`` partial-conv layers (Liu et al. 2018, the rule v2 replaces).

    A partial conv marks an output pixel valid as soon as ONE input pixel of its
    ``kernel x kernel`` window is valid, however few: the hole (``mask``, 1 = hole,
    (B, 1, H, W)) shrinks by ``kernel // 2`` pixels per layer, a hard 0/1 rule that cannot
    tell a pixel that saw one known neighbour from one that saw nine. Stride 1, 'SAME'
    windows (the padding counts as hole). Returns ``steps`` masks, the first after one layer.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
    out, valid = [], 1.0 - mask
    for _ in range(steps):
        valid = F.max_pool2d(valid, kernel, stride=1, padding=kernel // 2)  # any valid pixel in the window
        out.append(1.0 - valid)
    return out


def hole_boundary_fraction(mask: torch.Tensor, kernel: int = 3) -> float:
    """Fraction of the hole's pixels whose ``kernel x kernel`` window also holds known pixels.

    ``mask`` (B, 1, H, W), 1 = hole. At such a pixel a vanilla conv mixes known values with the
    hole's zeros; outside the image nothing counts (the padding is neither). 0 for an empty hole.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
    known = 1.0 - mask
    sees_known = F.max_pool2d(known, kernel, stride=1, padding=kernel // 2)  # (B, 1, H, W): 1 if any known
    holes = mask.sum()
    return float((sees_known * mask).sum() / holes) if holes > 0 else 0.0


# ----------------------------------------------------------------------------- bundled toy weights

def v2_weights(kind: str) -> Path:
    """Path of a bundled toy coarse network: ``kind`` ``'v1'`` (vanilla convs) or ``'gated'``."""
    if kind not in V2_WEIGHTS:
        raise ValueError(f"kind must be one of {sorted(V2_WEIGHTS)}, got {kind!r}")
    path = Path(__file__).resolve().parent / "weights" / V2_WEIGHTS[kind]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall course_lib (pip install -e .) or train it "
                                "with python scripts/train_v2_toy.py")
    return path


def load_coarse(path: Union[Path, str]) -> nn.Module:
    """Build the coarse network a ``scripts/train_v2_toy.py`` file holds, in eval mode (loaded weights_only)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("kind") not in ("v1", "gated"):
        raise ValueError(f"{path} is not a coarse network written by scripts/train_v2_toy.py")
    net = CoarseNetwork(state["cnum"]) if state["kind"] == "v1" else GatedCoarseNetwork(state["cnum"])
    net.load_state_dict({k: v.float() for k, v in state["weights"].items()})
    return net.eval()


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def held_out_strokes(n: int = 40, size: int = 64, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` held-out toy images (the 'test' split, all five kinds in turn) and fixed stroke holes.

    Returns ``x`` (n, 3, size, size) in [-1, 1] and ``mask`` (n, 1, size, size), the same on
    every call: the side by side of notebook 11 and ``scripts/train_v2_toy.py`` use them.
    """
    data = make_dataset("toy", split="test", size=size, seed=0, n=n)
    x = torch.stack([data[i] for i in range(n)])  # (n, 3, S, S)
    return x, stroke_masks(n, size, torch.Generator().manual_seed(seed))


def fill_scores(x: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor,
                max_db: float = 50.0) -> dict[str, torch.Tensor]:
    """Hole PSNR (dB, capped at ``max_db``) and hole L1 (%) per image, (B,) each (:mod:`course_lib.metrics`).

    The cap keeps averages finite when a fill is exact (a flat patch under a stroke: infinite PSNR).
    """
    return {"psnr": psnr(x, filled, mask, max_db=max_db), "l1": l1_error(x, filled, mask)}


@torch.no_grad()
def hole_scores(net: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run a coarse network on ``x * (1 - mask)``; return the completed images and :func:`fill_scores`.

    Completed = the network's pixels in the hole, the known ones elsewhere, (B, 3, H, W).
    """
    out = net(x * (1 - mask), mask)  # (B, 3, H, W)
    done = out * mask + x * (1 - mask)
    return done, fill_scores(x, done, mask)
