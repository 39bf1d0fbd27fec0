"""The DeepFill v1 generator: a coarse network and a refinement network with contextual attention.

Paper: Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR 2018,
Section 3 (coarse-to-fine network, Figure 2) and Section 4 (contextual attention,
Figure 3). Its contextual attention is built step by step in notebooks 03-06; the
generator itself is what notebook 90 (official weights) and the trainer run.

Everything follows the official release (``build_inpaint_net`` of branch v1.0.0), so that
converted official checkpoints give the official outputs:

* every conv is TF ``'SAME'`` with zero padding (:class:`course_lib.ops.GenConv`), ELU
  unless stated; the paper says mirror padding, the release does not use it;
* the input of each stage is ``[x, ones, ones * mask]`` (5 channels). The ones channel
  is the release's replacement for mirror padding: after zero padding, a conv sees 0 in
  that channel outside the image and 1 inside, so it can tell where the border is;
* the output convs ``conv17`` / ``allconv17`` have no activation; the output is clipped to
  [-1, 1] (no tanh);
* between the stages ``x = x_stage1 * mask + x_in * (1 - mask)``, without stop-gradient;
* ``pmconv6`` uses ReLU (not ELU) before contextual attention;
* attribute names equal the checkpoint names (scope ``inpaint_net/``), so a converted
  state dict maps key for key, e.g. ``inpaint_net/conv13_upsample/conv13_upsample_conv/kernel``
  -> ``coarse.conv13_upsample.conv.weight``.

Differences from the release, on purpose: the image is RGB (a converted official model
gets its BGR channels reversed at conversion time), masks may differ per sample
(``(B, 1, H, W)``) as well as be shared (``(1, 1, H, W)``, the release's only choice), and
the generator zeroes the hole itself (``x * (1 - mask)``), which does nothing to the
release's inputs but stops a caller from leaking the hole's content by passing the full
image.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.attention import contextual_attention
from course_lib.attention_fast import (contextual_attention_batched, contextual_attention_fast,
                                      fast_attention_settings)
from course_lib.ops import GenConv, GenDeconv, _is_channels_last, nearest_indices, resize_nearest
from course_lib.precision import autocast_on as _autocast_on

__all__ = [
    "Generator",
    "CoarseNetwork",
    "RefineNetwork",
    "stage_input",
    "compose_stages",
    "validate_inputs",
    "SIZE_MULTIPLE",
    "PARAMS_AT_CNUM_32",
]

SIZE_MULTIPLE = 8  # two stride-2 convs, then the x1/2 downsampling inside contextual attention
PARAMS_AT_CNUM_32 = 3_601_542  # parameters of the official generator (cnum = 32)


def stage_input(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The 5-channel input of each stage: ``[x, ones, ones * mask]`` (release ``build_inpaint_net``).

    The ones channel marks the image: zero ('SAME') padding puts 0 there outside the image,
    which tells the convs where the border is (the release's replacement for the paper's
    mirror padding). ``mask`` may be shared, ``(1, 1, H, W)``, or per sample, ``(B, 1, H, W)``.
    """
    ones = torch.ones_like(x[:, :1])  # (B, 1, H, W)
    h = torch.cat([x, ones, ones * mask], dim=1)  # (B, 5, H, W)
    if _is_channels_last(x):
        h = h.contiguous(memory_format=torch.channels_last)  # cat of 1-channel parts falls back to NCHW
    return h


def compose_stages(x_stage1: torch.Tensor, x_incomplete: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stage 2's image: stage 1's pixels in the hole, the known pixels elsewhere.

    ``x_stage1 * mask + x_incomplete * (1 - mask)`` (release ``build_inpaint_net``),
    all (B, 3, H, W) with ``mask`` (B or 1, 1, H, W), 1 = hole. There is no stop-gradient:
    the refinement's losses also train stage 1 through the hole pixels.
    """
    return x_stage1 * mask + x_incomplete * (1.0 - mask)  # (B, 3, H, W)


class CoarseNetwork(nn.Module):
    """Stage 1 (paper Figure 2, top; release scope ``inpaint_net/conv1..conv17``).

    A dilated encoder-decoder: two stride-2 downsamplings, four atrous convs (dilation
    2, 4, 8, 16) at 1/4 resolution, two x2 upsamplings (:class:`GenDeconv`), and a
    3-channel output conv without activation, clipped to [-1, 1].
    """

    LAYERS = ("conv1", "conv2_downsample", "conv3", "conv4_downsample", "conv5", "conv6",
              "conv7_atrous", "conv8_atrous", "conv9_atrous", "conv10_atrous", "conv11", "conv12",
              "conv13_upsample", "conv14", "conv15_upsample", "conv16", "conv17")

    def __init__(self, cnum: int = 32) -> None:
        super().__init__()
        c = cnum
        self.conv1 = GenConv(5, c, 5)
        self.conv2_downsample = GenConv(c, 2 * c, 3, stride=2)
        self.conv3 = GenConv(2 * c, 2 * c, 3)
        self.conv4_downsample = GenConv(2 * c, 4 * c, 3, stride=2)
        self.conv5 = GenConv(4 * c, 4 * c, 3)
        self.conv6 = GenConv(4 * c, 4 * c, 3)
        self.conv7_atrous = GenConv(4 * c, 4 * c, 3, dilation=2)
        self.conv8_atrous = GenConv(4 * c, 4 * c, 3, dilation=4)
        self.conv9_atrous = GenConv(4 * c, 4 * c, 3, dilation=8)
        self.conv10_atrous = GenConv(4 * c, 4 * c, 3, dilation=16)
        self.conv11 = GenConv(4 * c, 4 * c, 3)
        self.conv12 = GenConv(4 * c, 4 * c, 3)
        self.conv13_upsample = GenDeconv(4 * c, 2 * c)
        self.conv14 = GenConv(2 * c, 2 * c, 3)
        self.conv15_upsample = GenDeconv(2 * c, c)
        self.conv16 = GenConv(c, c // 2, 3)
        self.conv17 = GenConv(c // 2, 3, 3, activation="none")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W) incomplete image, ``mask`` (B or 1, 1, H, W) -> x_stage1 (B, 3, H, W)."""
        h = stage_input(x, mask)  # (B, 5, H, W)
        for name in self.LAYERS:  # the release's layer order
            h = getattr(self, name)(h)  # ends at (B, 3, H, W)
        return h.clamp(-1.0, 1.0)


class RefineNetwork(nn.Module):
    """Stage 2 (paper Figure 2, bottom, and Figure 4; release scope ``inpaint_net/xconv*, pmconv*, allconv*``).

    Two encoders read the same 5-channel input: a dilated ("hallucination") branch
    ``xconv1..xconv10_atrous`` and an attention branch ``pmconv1..pmconv6`` (ReLU at
    ``pmconv6``), followed by contextual attention on its own features (f = b) and
    ``pmconv9``, ``pmconv10``. The two are concatenated (dilated first) and decoded by
    ``allconv11..allconv17`` (no activation at the end, clipped to [-1, 1]).
    """

    def __init__(self, cnum: int = 32) -> None:
        super().__init__()
        c = cnum
        # dilated ("hallucination") branch
        self.xconv1 = GenConv(5, c, 5)
        self.xconv2_downsample = GenConv(c, c, 3, stride=2)
        self.xconv3 = GenConv(c, 2 * c, 3)
        self.xconv4_downsample = GenConv(2 * c, 2 * c, 3, stride=2)
        self.xconv5 = GenConv(2 * c, 4 * c, 3)
        self.xconv6 = GenConv(4 * c, 4 * c, 3)
        self.xconv7_atrous = GenConv(4 * c, 4 * c, 3, dilation=2)
        self.xconv8_atrous = GenConv(4 * c, 4 * c, 3, dilation=4)
        self.xconv9_atrous = GenConv(4 * c, 4 * c, 3, dilation=8)
        self.xconv10_atrous = GenConv(4 * c, 4 * c, 3, dilation=16)
        # attention branch
        self.pmconv1 = GenConv(5, c, 5)
        self.pmconv2_downsample = GenConv(c, c, 3, stride=2)
        self.pmconv3 = GenConv(c, 2 * c, 3)
        self.pmconv4_downsample = GenConv(2 * c, 4 * c, 3, stride=2)
        self.pmconv5 = GenConv(4 * c, 4 * c, 3)
        self.pmconv6 = GenConv(4 * c, 4 * c, 3, activation="relu")
        self.pmconv9 = GenConv(4 * c, 4 * c, 3)
        self.pmconv10 = GenConv(4 * c, 4 * c, 3)
        # decoder on the concatenation of both branches
        self.allconv11 = GenConv(8 * c, 4 * c, 3)
        self.allconv12 = GenConv(4 * c, 4 * c, 3)
        self.allconv13_upsample = GenDeconv(4 * c, 2 * c)
        self.allconv14 = GenConv(2 * c, 2 * c, 3)
        self.allconv15_upsample = GenDeconv(2 * c, c)
        self.allconv16 = GenConv(c, c // 2, 3)
        self.allconv17 = GenConv(c // 2, 3, 3, activation="none")

    batched_attention = False  # set by course_lib.ops.use_fast_path(): the training path's attention

    # the layers after contextual attention, in order, up to the output (forward and hole_reach run them)
    AFTER_ATTENTION = ("pmconv9", "pmconv10", "allconv11", "allconv12", "allconv13_upsample", "allconv14",
                       "allconv15_upsample", "allconv16", "allconv17")

    def _run(self, h: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
        for name in names:
            h = getattr(self, name)(h)
        return h

    def attention_inputs(self, h_in: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention branch up to the layer: ``h_in`` (B, 5, H, W) -> features (B, 4c, H/4, W/4) and their mask.

        ``pmconv1 .. pmconv6`` on the stage input, and the hole mask resized (nearest,
        align_corners) to the feature grid: what :func:`course_lib.attention.contextual_attention`
        receives (as both ``f`` and ``b``) in :meth:`forward`.
        """
        pm = self._run(h_in, (
            "pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5", "pmconv6",
        ))  # (B, 4c, H/4, W/4)
        return pm, resize_nearest(mask, tuple(pm.shape[-2:]))  # (B or 1, 1, H/4, W/4)

    def hole_reach(self, mask: torch.Tensor, feature_size: tuple[int, int]) -> torch.Tensor:
        """The attention-output pixels that can change a hole pixel of the output: ``(B or 1, 1, h, w)`` bool.

        Walks :attr:`AFTER_ATTENTION` backwards from the hole (``mask`` (B or 1, 1, H, W) at
        image size): a 'SAME' conv with kernel ``k`` and dilation ``d`` reads its input within
        ``(k - 1) * d / 2`` of each output pixel (a max-pool with that reach dilates the set),
        and the x2 nearest upsampling of :class:`GenDeconv` reads input row
        :func:`course_lib.ops.nearest_indices` ``[i]`` for output row ``i`` (the set is mapped
        through that table). For the release's layers (all 3x3, stride 1, no dilation) this is
        the hole dilated by 3 px at image size, halved, dilated by 2, halved, dilated by 4 px
        at attention size (``feature_size = (H/4, W/4)``): a reach of about 4 + 2/2 + 3/4 feature
        px, give or take one for the align-corners tables (``tests/test_attention_fast.py``
        works one pixel through by hand and checks the whole set against the composite's
        gradient). The composite ``x2 * mask + x * (1 - mask)`` reads nothing else of the
        attention output, so :func:`course_lib.attention_fast.contextual_attention_fast` may
        leave the rest wrong.
        """
        reach = mask > 0.5  # (B or 1, 1, H, W) bool
        for name in reversed(self.AFTER_ATTENTION):
            layer = getattr(self, name)
            conv = layer.conv if isinstance(layer, GenDeconv) else layer
            k, d = conv.kernel_size[0], conv.dilation[0]
            if conv.stride[0] != 1 or k % 2 == 0:
                raise ValueError(f"{name}: hole_reach handles odd kernels at stride 1, got {conv}")
            r = (k - 1) * d // 2
            reach = F.max_pool2d(reach.float(), 2 * r + 1, 1, padding=r) > 0  # the conv's input that matters
            if isinstance(layer, GenDeconv):  # the upsampled map's row i is input row table[i]
                n_in = (reach.shape[-2] // 2, reach.shape[-1] // 2)
                for dim, n in ((2, n_in[0]), (3, n_in[1])):
                    table = nearest_indices(n, reach.shape[dim], device=reach.device)
                    shape = list(reach.shape)
                    shape[dim] = n
                    reach = torch.zeros(shape, device=reach.device).index_add_(dim, table, reach.float()) > 0
        if tuple(reach.shape[-2:]) != tuple(feature_size):
            raise ValueError(f"hole_reach ended at {tuple(reach.shape[-2:])}, expected the feature size "
                             f"{tuple(feature_size)}")
        return reach  # (B or 1, 1, h, w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, 3, H, W) coarse composite, ``mask`` (B or 1, 1, H, W) -> (x_stage2, flow).

        ``flow`` is the colour-coded attention offset image returned by
        :func:`course_lib.attention.contextual_attention`.
        """
        h_in = stage_input(x, mask)  # (B, 5, H, W)
        x_hallu = self._run(h_in, (
            "xconv1", "xconv2_downsample", "xconv3", "xconv4_downsample", "xconv5", "xconv6",
            "xconv7_atrous", "xconv8_atrous", "xconv9_atrous", "xconv10_atrous",
        ))  # (B, 4c, H/4, W/4)
        pm, mask_s = self.attention_inputs(h_in, mask)  # (B, 4c, H/4, W/4), (B or 1, 1, H/4, W/4)
        fast, max_bytes = fast_attention_settings()
        # Under autocast the attention runs in float32 (about 5 % of the FLOPs): its logits
        # (scores * scale) rounded to bf16 change the chosen patch, and in fp16 they can overflow.
        amp = _autocast_on(pm.device.type)
        with torch.autocast(device_type=pm.device.type, enabled=False) if amp else contextlib.nullcontext():
            if amp:
                pm, mask_s = pm.float(), mask_s.float()
            if fast:  # right only where the hole can see it (course_lib.attention_fast.use_fast_attention)
                need = self.hole_reach(mask, tuple(pm.shape[-2:]))  # (B or 1, 1, H/4, W/4)
                pm, flow = contextual_attention_fast(pm, pm, mask_s, need, 3, rate=2, max_bytes=max_bytes)
            elif self.batched_attention:  # the same dense layer in batched matmuls (course_lib.ops.use_fast_path)
                pm, flow = contextual_attention_batched(pm, pm, mask_s, 3, rate=2)  # (B, 4c, H/4, W/4)
            else:
                pm, flow = contextual_attention(pm, pm, mask_s, 3, 1, rate=2)  # (B, 4c, H/4, W/4)
        pm = self._run(pm, self.AFTER_ATTENTION[:2])  # pmconv9, pmconv10: (B, 4c, H/4, W/4)
        h = torch.cat([x_hallu, pm], dim=1)  # (B, 8c, H/4, W/4)
        h = self._run(h, self.AFTER_ATTENTION[2:])  # allconv11 .. allconv17: (B, 3, H, W)
        return h.clamp(-1.0, 1.0), flow


def validate_inputs(x: torch.Tensor, mask: torch.Tensor, like: torch.Tensor,
                    check_values: bool = True) -> torch.Tensor:
    """Check a generator's inputs; return the mask in ``x``'s dtype.

    ``like`` is one of the model's parameters (for its dtype and device). Every error says
    what was wrong and how to fix it. ``check_values`` also checks the values (binary mask,
    known pixels finite and in [-1, 1]); each of those checks waits for the device, so the
    generator skips them in training mode, where the trainer builds its own inputs.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"x and mask must be torch tensors, got {type(x).__name__} and {type(mask).__name__}; "
            "convert images with torch.as_tensor(...) (course_lib.images does it for files)")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"x must be a (B, 3, H, W) RGB image batch, got shape {tuple(x.shape)}; "
            "add a batch axis with x[None] for one image, move channels first with "
            "x.permute(0, 3, 1, 2) for NHWC, and drop an alpha channel with x[:, :3]")
    B, _, H, W = x.shape
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(
            f"mask must be (B, 1, H, W) or (1, 1, H, W) with 1 = hole, got shape {tuple(mask.shape)}; "
            "for an (H, W) mask use mask[None, None]; for (B, H, W) use mask[:, None]")
    if mask.shape[0] not in (1, B) or tuple(mask.shape[-2:]) != (H, W):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not fit x of shape {tuple(x.shape)}: the mask "
            f"needs batch 1 (shared) or {B} (one per image) and the same H, W = ({H}, {W}); "
            "resize or crop the mask to the image (nearest neighbour keeps it binary)")
    if H % SIZE_MULTIPLE or W % SIZE_MULTIPLE:
        raise ValueError(
            f"H and W must be multiples of {SIZE_MULTIPLE}, got H={H}, W={W}; crop the image and "
            f"mask to ({H - H % SIZE_MULTIPLE}, {W - W % SIZE_MULTIPLE}) as the release's test.py does, "
            "or use course_lib.inpaint, which pads and crops back for you")
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point image in [-1, 1], got dtype {x.dtype}; for uint8 pixels "
            "use x.float() / 127.5 - 1")
    if x.dtype != like.dtype:
        raise TypeError(
            f"x has dtype {x.dtype} but the generator's parameters are {like.dtype}; either "
            f"convert the model with generator.to(x.dtype) or the input with x.to({like.dtype}) "
            "(x.float() for the default float32 model)")
    if x.device != like.device or mask.device != like.device:
        raise ValueError(
            f"x is on {x.device}, mask on {mask.device}, the generator on {like.device}; "
            "move them together, e.g. x.to(device), mask.to(device), generator.to(device)")
    if not check_values:
        return mask.to(x.dtype)
    if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
        raise ValueError(
            "mask must be binary (values in {0, 1}, 1 = hole), got values "
            f"in [{mask.min().item():g}, {mask.max().item():g}]; threshold it with "
            "mask = (mask > 0.5).float() (the release counts a pixel as hole where it is > 127.5 of 255)")
    known = x.masked_select(~mask.bool().expand_as(x))  # the known pixels, (N,)
    if known.numel() and (not torch.isfinite(known).all() or known.abs().max() > 1 + 1e-3):
        raise ValueError(
            f"the known pixels of x must be finite and in [-1, 1], got values in "
            f"[{known.min().item():g}, {known.max().item():g}]; scale uint8 pixels with "
            "x / 127.5 - 1 (and [0, 1] images with x * 2 - 1), or use course_lib.image_to_tensor")
    return mask.to(x.dtype)


def _is_missing_kernel(err: RuntimeError, dtype: torch.dtype) -> bool:
    """True for torch's "... not implemented for 'Half'" errors (no low-precision kernel here)."""
    return dtype in (torch.float16, torch.bfloat16) and "not implemented for" in str(err)


def _low_precision_error(err: RuntimeError, dtype: torch.dtype) -> TypeError:
    return TypeError(
        f"this torch build cannot run the generator in {dtype} on this device ({err}); "
        "use generator.float() and x.float(), or torch.bfloat16 on CPU")


class Generator(nn.Module):
    """DeepFill v1 generator (release ``build_inpaint_net``): coarse stage, then refinement.

    ``Generator(cnum=32)`` is the official architecture, 3,601,542 parameters; smaller
    ``cnum`` (e.g. 4 or 8) gives the same network, thinner, for CPU lessons and tests.

    ``forward(x, mask) -> (x_stage1, x_stage2, flow)``:

    * ``x`` (B, 3, H, W) float in [-1, 1], RGB; H and W multiples of 8. The hole is zeroed
      here (``x * (1 - mask)``), so passing the full image leaks nothing; for the release's
      inputs (already incomplete) this changes nothing.
    * ``mask`` (B, 1, H, W) per image or (1, 1, H, W) shared, 1 = hole, binary.
    * ``x_stage1``, ``x_stage2`` (B, 3, H, W) in [-1, 1]: the raw outputs of both stages
      over the whole image (compose ``x_stage2 * mask + x * (1 - mask)`` for the final image).
    * ``flow`` (B, 3, H/4, W/4) in [-1, 1]: the attention offsets as a colour image, at the
      size of the attention features (the release's summaries upscale it x4 to image size).
    """

    def __init__(self, cnum: int = 32) -> None:
        super().__init__()
        if not isinstance(cnum, int) or isinstance(cnum, bool) or cnum < 2 or cnum % 2:
            raise ValueError(
                f"cnum must be an even int >= 2 (the release uses 32; conv16 has cnum // 2 "
                f"channels), got {cnum!r}")
        self.cnum = cnum
        self.coarse = CoarseNetwork(cnum)
        self.refine = RefineNetwork(cnum)

    def _prepare(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = validate_inputs(x, mask, next(self.parameters()), check_values=not self.training)
        # where(), not x * (1 - mask): a NaN or inf marking the hole must not spread
        x_incomplete = torch.where(mask.bool(), torch.zeros_like(x), x)  # (B, 3, H, W)
        return x_incomplete, mask

    def forward_coarse(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run stage 1 only: ``x``, ``mask`` as in :meth:`forward` -> x_stage1 (B, 3, H, W)."""
        x_in, mask = self._prepare(x, mask)
        try:
            return self.coarse(x_in, mask)
        except RuntimeError as err:
            if _is_missing_kernel(err, x.dtype):
                raise _low_precision_error(err, x.dtype) from err
            raise

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (B, 3, H, W), ``mask`` (B or 1, 1, H, W) -> (x_stage1, x_stage2, flow)."""
        x_in, mask = self._prepare(x, mask)
        try:
            x_stage1 = self.coarse(x_in, mask)  # (B, 3, H, W)
            x_mid = compose_stages(x_stage1, x_in, mask)  # (B, 3, H, W), no stop-gradient
            x_stage2, flow = self.refine(x_mid, mask)  # (B, 3, H, W), (B, 3, H/4, W/4)
        except RuntimeError as err:
            if _is_missing_kernel(err, x.dtype):
                raise _low_precision_error(err, x.dtype) from err
            raise
        return x_stage1, x_stage2, flow
