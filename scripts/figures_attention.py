"""Figures of lessons 03-06 (contextual attention), drawn from course_lib.

Found and run by ``scripts/make_figures.py`` (``FIGURES`` below). Every function takes no
argument, is deterministic, and returns a new matplotlib ``Figure``; nothing is hand-drawn:
each picture is the output of a ``course_lib.attention`` / ``course_lib.flow`` function.

    python scripts/make_figures.py 03_ 04_ 05_ 06_
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib import patches
from matplotlib.figure import Figure

from course_lib import attention as A
from course_lib.baselines import diffusion_fill
from course_lib.flow import flow_to_color, make_color_wheel
from course_lib.plots import to_display
from course_lib.samples import course_image


def _photo(name: str, size: int) -> torch.Tensor:
    """(1, 3, size, size) in [-1, 1]: the sample photo ``name`` (toy bricks without samples)."""
    return course_image(name, size=size)


def _box(size: int, top: int, left: int, h: int, w: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)  # (1, 1, S, S)
    mask[..., top:top + h, left:left + w] = 1.0
    return mask


def _square(ax, row: int, col: int, k: int, colour: str, lw: float = 1.5) -> None:
    """Outline the k x k window centred at (row, col) on an imshow axis."""
    ax.add_patch(patches.Rectangle((col - k / 2, row - k / 2), k, k, fill=False,
                                   edgecolor=colour, linewidth=lw))


# ----------------------------------------------------------------------------- lesson 03

def fig_03_patches() -> Figure:
    """Lesson 03: 3x3 'SAME' patches of a 16x16 image, some patches, and the patch norms."""
    x = _photo("chelsea", 16)  # (1, 3, 16, 16)
    w = A.extract_patches(x + 1.0, 3, 1)  # (1, 256, 3, 3, 3), shifted to [0, 2] so zero = black
    norms = w.flatten(2).norm(dim=2).view(16, 16)  # (16, 16)
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1.1]})
    axes[0].imshow(to_display(x), interpolation="nearest")
    for (r, c), colour in (((0, 0), "red"), ((7, 9), "cyan"), ((15, 4), "yellow")):
        _square(axes[0], r, c, 3, colour)
    axes[0].set_title("16x16 image, three 3x3 windows", fontsize=9)
    axes[0].set_axis_off()
    inner = axes[1].inset_axes([0, 0, 1, 1])
    axes[1].set_axis_off()
    inner.set_axis_off()
    shown = [(0, 0, "red"), (7, 9, "cyan"), (15, 4, "yellow")]
    tiles = []
    for r, c, _ in shown:
        patch = w[0, r * 16 + c]  # (3, 3, 3) in [0, 2]
        tiles.append(F.pad(patch, (0, 1), value=2.0))  # (3, 3, 4): white gap
    strip = torch.cat(tiles, dim=-1) - 1.0  # (3, 3, 12) back to [-1, 1]
    inner.imshow(to_display(strip), interpolation="nearest")
    inner.set_title("patches l = 0, 7*16+9, 15*16+4\n(padding = zeros, shown black)", fontsize=9)
    im = axes[2].imshow(norms.numpy(), cmap="viridis", interpolation="nearest")
    axes[2].set_title("L2 norm of each patch (image in [0, 2])", fontsize=9)
    axes[2].set_axis_off()
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    return fig


def fig_03_scores() -> Figure:
    """Lesson 03: one hole-border patch scored against every background patch; release vs true cosine."""
    S = 64
    x = _photo("brick", S)  # (1, 3, 64, 64)
    mask = _box(S, 22, 22, 20, 20)  # (1, 1, 64, 64)
    x_incomplete = x * (1 - mask)
    w = A.normalize_patches(A.extract_patches(x_incomplete, 3, 1))  # (1, L, 3, 3, 3)
    mm = A.valid_patches(mask, 3)[0].view(S, S)  # (S, S)
    r, c = 22, 30  # a foreground position on the hole's top edge
    scores = A.matching_scores(x_incomplete, w)[0, :, r, c].view(S, S)  # (S, S)
    f_patch = A.extract_patches(x_incomplete, 3, 1)[0, r * S + c]  # (3, 3, 3)
    cosine = scores / f_patch.norm().clamp(min=1e-4)  # (S, S)
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(to_display(x_incomplete), interpolation="nearest")
    _square(axes[0], r, c, 3, "red")
    axes[0].set_title("x_incomplete, foreground patch (red)", fontsize=9)
    for ax, s, title in ((axes[1], scores, "release: <f, b/|b|>"), (axes[2], cosine, "true cosine")):
        shown = torch.where(mm > 0, s, torch.full_like(s, float("nan")))
        im = ax.imshow(shown.numpy(), cmap="magma", interpolation="nearest")
        best = int(torch.nan_to_num(shown, nan=-1e9).argmax())
        _square(ax, best // S, best % S, 3, "cyan")
        _square(axes[0], best // S, best % S, 3, "cyan")
        ax.set_title(f"{title}: range [{float(s[mm > 0].min()):.2f}, {float(s[mm > 0].max()):.2f}]",
                     fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    return fig


# ----------------------------------------------------------------------------- lesson 04

def _attention_setup(S: int = 32, name: str = "brick") -> dict[str, torch.Tensor]:
    x = _photo(name, S)  # (1, 3, S, S)
    mask = _box(S, S // 3, S // 3, S // 3, S // 3)  # (1, 1, S, S)
    x_incomplete = x * (1 - mask)
    w = A.normalize_patches(A.extract_patches(x_incomplete, 3, 1))  # (1, L, 3, 3, 3)
    scores = A.matching_scores(x_incomplete, w)  # (1, L, S, S)
    return {"x": x, "mask": mask, "x_incomplete": x_incomplete, "scores": scores,
            "mm": A.valid_patches(mask, 3)}


def fig_04_temperature() -> Figure:
    """Lesson 04: the attention of one position over all patches at softmax_scale 1, 10, 50."""
    S = 32
    d = _attention_setup(S)
    r, c = S // 3, S // 2  # on the hole's top edge
    fig = Figure(figsize=(12, 3.2), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(to_display(d["x_incomplete"]), interpolation="nearest")
    _square(axes[0], r, c, 3, "red")
    axes[0].set_title("position (red)", fontsize=9)
    for ax, scale in zip(axes[1:], (1.0, 10.0, 50.0)):
        att = A.masked_softmax(d["scores"], d["mm"], scale)[0, :, r, c].view(S, S)  # (S, S)
        im = ax.imshow(att.numpy(), cmap="viridis", interpolation="nearest")
        top = att.flatten().sort(descending=True).values
        ax.set_title(f"softmax_scale={scale:g}\nmax weight {float(top[0]):.3f}, "
                     f"top-10 mass {float(top[:10].sum()):.2f}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    return fig


def fig_04_masking() -> Figure:
    """Lesson 04: the valid patches, and the attention mass kept per position (release masking)."""
    S = 32
    d = _attention_setup(S)
    mass = A.masked_softmax(d["scores"], d["mm"], 10.0).sum(dim=1)[0]  # (S, S)
    weak = A.masked_softmax(d["scores"] * 0.1, d["mm"], 10.0).sum(dim=1)[0]  # (S, S)
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(d["mm"][0].view(S, S).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"valid patches mm (white): {int(d['mm'].sum())} of {S * S}", fontsize=9)
    for ax, m, title in ((axes[1], mass, "sum of weights over l, image features"),
                         (axes[2], weak, "same, features x 0.1 (weak)")):
        im = ax.imshow(m.numpy(), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{title}\nmin {float(m.min()):.3f}, median {float(m.median()):.3f}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    return fig


def _one_pass(scores: torch.Tensor, fuse_k: int = 3) -> torch.Tensor:
    """Only the first (row-major) identity-kernel pass of the release's fuse, for the figure."""
    B, L, H, W = scores.shape
    m = scores.permute(0, 2, 3, 1).reshape(B, 1, H * W, L)  # (B, 1, H*W, L)
    eye = torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k)
    m = F.conv2d(F.pad(m, [fuse_k // 2] * 4), eye)  # (B, 1, H*W, L)
    return m.view(B, H, W, L).permute(0, 3, 1, 2)  # (B, L, H, W)


def fig_04_fuse() -> Figure:
    """Lesson 04: impulses in a [Hf*Wf, Hb*Wb] score matrix, after one pass and after the fuse."""
    H = W = 5
    L = H * W
    scores = torch.zeros(1, L, H, W)  # (1, L, H, W)
    for (fr, fc), (br, bc) in (((1, 1), (3, 2)), ((3, 3), (1, 1))):
        scores[0, br * W + bc, fr, fc] = 1.0
    stages = [scores, _one_pass(scores), A.fuse_scores(scores, 3)]
    titles = ["before", "row-major pass (left-right)", "both passes (release)"]
    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, s, title in zip(axes, stages, titles):
        matrix = s[0].permute(1, 2, 0).reshape(H * W, L)  # (Hf*Wf, Hb*Wb)
        ax.imshow(matrix.numpy(), cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("background patch q = row*W + col")
        ax.set_ylabel("foreground position p")
        ax.set_xticks(range(0, L, W))
        ax.set_yticks(range(0, L, W))
    return fig


def _shift_patches(score_map: torch.Tensor, d: int) -> torch.Tensor:
    """``out[q] = score_map[q - d]`` over the row-major patch index ``q`` (zeros shifted in), as a map."""
    flat = score_map.flatten()  # (L,)
    out = torch.zeros_like(flat)
    if d >= 0:
        out[d:] = flat[:flat.numel() - d]
    else:
        out[:d] = flat[-d:]
    return out.view_as(score_map)


def fig_04_fuse_images() -> Figure:
    """Lesson 04: the fuse step on score maps, as images: a toy and a photo, one pass and both."""
    rows = []
    # Toy: three neighbouring positions whose best patches are three neighbouring patches.
    H = W = 7
    toy = torch.zeros(1, H * W, H, W)  # (1, L, H, W): scores[q, p]
    r, c = 3, 3
    for d in (-1, 0, 1):
        toy[0, 2 * W + (4 + d), r, c + d] = 1.0  # position (3, 3 + d) prefers patch (2, 4 + d)
    toy[0, 5 * W + 1, r, c] = 1.0  # p also likes patch (5, 1) as much, but its neighbours do not
    rows.append(("toy", toy, r, c, H, W))
    # Photo: the scores of a 16 x 16 brick crop with a hole, at a position on the hole's edge.
    S = 16
    x = _photo("brick", S)
    mask = _box(S, 5, 5, 6, 6)
    x_incomplete = x * (1 - mask)
    scores = A.matching_scores(x_incomplete, A.normalize_patches(A.extract_patches(x_incomplete, 3, 1)))
    rows.append(("photo", scores, 5, 8, S, S))
    fig = Figure(figsize=(13, 5.6), layout="constrained")
    axes = fig.subplots(2, 5)
    for ax_row, (name, sc, r, c, h, w) in zip(axes, rows):
        maps = [sc[0, :, r, c + d].view(h, w) for d in (-1, 0, 1)]  # (h, w) maps over the patches q
        left, own, right = _shift_patches(maps[0], 1), maps[1], _shift_patches(maps[2], -1)
        one = _one_pass(sc)[0, :, r, c].view(h, w)  # the release's first (row-major) pass at p
        assert torch.allclose(left + own + right, one, atol=1e-6)
        both = A.fuse_scores(sc, 3)[0, :, r, c].view(h, w)
        panels = [(maps[0], f"S[p-1, q], p-1 = ({r}, {c - 1})"),
                  (maps[1], f"S[p, q], p = ({r}, {c})"),
                  (maps[2], f"S[p+1, q], p+1 = ({r}, {c + 1})"),
                  (one, "row-major pass at p:\nS[p-1, q-1] + S[p, q] + S[p+1, q+1]"),
                  (both, "both passes (release):\n+ the column-major pass (top-down)")]
        vmax = float(max(m.abs().max() for m, _ in panels))
        for ax, (m, title) in zip(ax_row, panels):
            ax.imshow(m.numpy(), cmap="magma" if name == "toy" else "viridis", interpolation="nearest",
                      vmin=0 if name == "toy" else None, vmax=vmax if name == "toy" else None)
            ax.set_title(f"{name}: {title}" + (f"\nmax {float(m.max()):g}" if name == "toy" else ""), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


# ----------------------------------------------------------------------------- lesson 05

def fig_05_overlap() -> Figure:
    """Lesson 05: how many 4x4 stride-2 patches cover each pixel of a 12x12 output."""
    H = W = 12
    attention = torch.ones(1, 1, H // 2, W // 2)  # (1, L=1, h, w): paste at every position
    ones_patch = torch.ones(1, 1, 1, 4, 4)  # (1, L=1, C=1, 4, 4)
    count = A.reconstruct(attention, ones_patch, 2, (H, W))[0, 0] * 4.0  # (H, W), undo the /4
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.imshow(count.numpy(), cmap="Blues", vmin=0, vmax=4.5, interpolation="nearest")
    for i in range(H):
        for j in range(W):
            ax.text(j, i, f"{int(round(float(count[i, j])))}", ha="center", va="center", fontsize=8)
    ax.set_title("patches covering each pixel (4x4, stride 2, 'SAME')", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def fig_05_identity() -> Figure:
    """Lesson 05: an image rebuilt from its own 4x4 patches with one-hot attention, and the error."""
    S = 64
    x = _photo("chelsea", S)  # (1, 3, 64, 64)
    raw = A.extract_patches(x, 4, 2)  # (1, 1024, 3, 4, 4)
    eye = torch.eye(raw.shape[1]).view(1, -1, S // 2, S // 2)  # (1, L, 32, 32): own patch
    y = A.reconstruct(eye, raw, 2, (S, S))  # (1, 3, 64, 64)
    err = (y - x).abs().amax(dim=1)[0]  # (64, 64)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(to_display(x), interpolation="nearest")
    axes[0].set_title("x", fontsize=9)
    axes[1].imshow(to_display(y), interpolation="nearest")
    axes[1].set_title("reconstruct(one-hot, own patches)", fontsize=9)
    im = axes[2].imshow(err.numpy(), cmap="magma", interpolation="nearest")
    axes[2].set_title(f"|difference|: interior max {float(err[1:-1, 1:-1].max()):.1e}, "
                      f"border max {float(err.max()):.2f}", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    return fig


# ----------------------------------------------------------------------------- lesson 06

def fig_06_color_wheel() -> Figure:
    """Lesson 06: the flow colour code: offsets on a disc, and the 55 colours of the wheel."""
    n = 41
    r = torch.arange(n) - n // 2
    rows, cols = torch.meshgrid(r, r, indexing="ij")  # (n, n) each
    offsets = torch.stack([rows, cols])[None].float()  # (1, 2, n, n): (row, col) offset
    inside = (rows**2 + cols**2) <= (n // 2) ** 2  # (n, n)
    offsets = torch.where(inside, offsets, torch.full_like(offsets, float("nan")))
    disc = flow_to_color(offsets)  # (1, 3, n, n), NaN -> black
    wheel = make_color_wheel() / 127.5 - 1.0  # (55, 3) in [-1, 1]
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    axes[0].imshow(to_display(disc), extent=(-n // 2, n // 2, n // 2, -n // 2))
    axes[0].set_xlabel("column offset (right +)")
    axes[0].set_ylabel("row offset (down +)")
    axes[0].set_title("flow_to_color: colour of an offset", fontsize=9)
    axes[1].imshow(to_display(wheel.T[:, None, :].expand(3, 6, 55)), aspect="auto")
    axes[1].set_yticks([])
    axes[1].set_xticks([0, 15, 21, 25, 36, 49, 54])
    axes[1].set_title("make_color_wheel(): RY 15, YG 6, GC 4, CB 11, BM 13, MR 6", fontsize=9)
    return fig


def attention_fill(x: torch.Tensor, mask: torch.Tensor, passes: int = 3,
                   softmax_scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fill a hole with contextual attention alone (as notebook 06 does): diffusion, then passes.

    Returns (diffusion start, attention fill, flow of the last pass).
    """
    start = diffusion_fill(x, mask)  # (1, 3, H, W)
    filled, flow = start, None
    for _ in range(passes):
        y, flow = A.contextual_attention(filled, filled, mask, softmax_scale=softmax_scale)
        filled = x * (1 - mask) + y * mask
    return start, filled, flow


def fig_06_fill() -> Figure:
    """Lesson 06: filling a hole in a photo with attention alone (no learning), two temperatures."""
    S = 64
    x = _photo("brick", S)  # (1, 3, 64, 64)
    mask = _box(S, 20, 22, 20, 20)  # (1, 1, 64, 64)
    start, fill10, flow10 = attention_fill(x, mask, 3, 10.0)
    _, fill50, flow50 = attention_fill(x, mask, 3, 50.0)
    images = [x * (1 - mask), start, fill10, flow10, fill50, flow50]
    titles = ["x_incomplete", "diffusion start", "attention, scale 10", "flow, scale 10",
              "attention, scale 50", "flow, scale 50"]
    fig = Figure(figsize=(13, 2.6), layout="constrained")
    axes = fig.subplots(1, 6)
    for ax, img, title in zip(axes, images, titles):
        ax.imshow(to_display(img), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return fig


FIGURES = {
    "03_patches.png": fig_03_patches,
    "03_scores.png": fig_03_scores,
    "04_temperature.png": fig_04_temperature,
    "04_masking.png": fig_04_masking,
    "04_fuse.png": fig_04_fuse,
    "04_fuse_images.png": fig_04_fuse_images,
    "05_overlap.png": fig_05_overlap,
    "05_identity.png": fig_05_identity,
    "06_color_wheel.png": fig_06_color_wheel,
    "06_fill.png": fig_06_fill,
}
