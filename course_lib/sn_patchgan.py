"""The SN-PatchGAN critic and the hinge losses of DeepFill v2.

Paper: Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019
(arXiv 1806.03589), Sec. 3.2, Figure 3 and Eq. 3; release ``build_sn_patch_gan_discriminator``
in ``inpaint_model.py`` (master branch). Six 5x5 stride-2 'SAME' convs, spectral-normalised,
leaky ReLU (0.2), 64-128-256-256-256-256 channels, on ``[image, mask]``; the release flattens
the final map, so every entry is one score (a GAN on that entry's receptive field). The
losses are ``gan_hinge_loss`` (critic) and ``-mean(neg)`` (generator). Notebook 11, lesson 11.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from course_lib.ops import SameConv2d

__all__ = ["SNPatchGANCritic", "hinge_d_loss", "hinge_g_loss"]


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
    one below -1 cost nothing. The release's ``gan_hinge_loss`` (neuralgym,
    ``ops/gan_ops.py``) returns ``0.5 * hinge_pos + 0.5 * hinge_neg``: a paper-vs-release
    difference that only halves the critic's gradient. This function follows the paper.
    """
    pos, neg = _scores(pos, "pos"), _scores(neg, "neg")
    return torch.mean(F.relu(1.0 - pos)) + torch.mean(F.relu(1.0 + neg))


def hinge_g_loss(neg: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss with a hinge critic (v2 paper Eq. 3): ``-mean(neg)``, no hinge."""
    return -torch.mean(_scores(neg, "neg"))
