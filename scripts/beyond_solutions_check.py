#!/usr/bin/env python
"""Recompute every number that lessons/beyond_solutions.md quotes (the instructors' worked solutions).

Each entry of :func:`numbers` is one quoted value, computed here independently of the text,
under the key of its exercise (``"02.1 share g0.9"``); the value is the string as the
solutions file writes it. ``tests/test_beyond_solutions.py`` checks that every value appears in its
exercise's section, so a changed constant in course_lib or a typo in the text fails a test.

    python scripts/beyond_solutions_check.py          # prints every key and value (about 10 s)
    python scripts/beyond_solutions_check.py --fast   # without the 200 stroke masks (what the test runs)

Only quick computations live here (no training): the measurement and ablation exercises
are answered in the text with their method and what to expect.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.attention import fuse_scores
from course_lib.checks import get_exercise
from course_lib.gated import GatedCoarseNetwork
from course_lib.generator import CoarseNetwork, Generator, RefineNetwork
from course_lib.losses import spatial_discount
from course_lib.masks import brush_stroke_mask, random_box_mask
from course_lib.v2_toy import held_out_strokes, hole_scores, load_coarse, v2_weights
from course_lib.receptive_field import conv_specs, gradient_map, receptive_field, support_size

__all__ = ["numbers"]


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _lesson00() -> dict[str, str]:
    out = {}
    p = torch.arange(256)
    x = p.to(torch.float32) / 127.5 - 1.0  # float32, as to_signed_range
    exact = p.to(torch.float64) / 127.5 - 1.0
    out["00.1 max float32 error"] = f"{(x.double() - exact).abs().max().item():.1e}"
    back = torch.round((x + 1.0) * 127.5)
    assert torch.equal(back.long(), p), "the float32 round trip must be exact"
    out["00.1 half a level"] = f"{0.5 / 127.5:.2e}"
    out["00.2 mse"] = f"{1 / (12 * 255 ** 2):.3e}"
    out["00.2 psnr"] = f"{10 * math.log10(12 * 255 ** 2):.2f}"
    g = torch.Generator().manual_seed(0)
    cont = torch.rand(3, 256, 256, generator=g, dtype=torch.float64) * 255  # continuous "true" values
    quant = torch.round(cont)
    mse = (((quant - cont) / 255) ** 2).mean().item()
    out["00.2 measured psnr"] = f"{10 * math.log10(1 / mse):.1f}"
    by_128 = p.to(torch.float32) / 128 - 1.0
    out["00.3 error at 255"] = f"{(exact - by_128.double())[255].item():.4f}"
    out["00.3 error per level"] = f"{1 / 127.5 - 1 / 128:.2e}"
    half = (p.to(torch.float16) / 127.5 - 1.0).double()
    out["00.3 float16 max error"] = f"{(half - exact).abs().max().item():.1e}"
    check = get_exercise("to_signed_range").check
    for key, fn in (("00.3 check catches /128", lambda t: t.to(torch.float32) / 128.0 - 1.0),
                    ("00.3 check catches float16", lambda t: t.to(torch.float16) / 127.5 - 1.0)):
        try:
            check(fn)
            out[key] = "no"
        except AssertionError:
            out[key] = "yes"
    return out


def _lesson01(slow: bool = False) -> dict[str, str]:
    out = {"01.2 quarter": f"{-10 * math.log10(0.25):.2f}",
           "01.4 smallest fraction": f"{96 ** 2 / 256 ** 2:.4f}",
           "01.4 largest fraction": f"{128 ** 2 / 256 ** 2:.4f}"}
    boxes = torch.tensor([random_box_mask(1, 256, 256, generator=i)[0].mean().item() for i in range(1000)])
    out["01.4 box min"], out["01.4 box max"] = f"{boxes.min().item():.4f}", f"{boxes.max().item():.4f}"
    out["01.4 box mean"] = f"{boxes.mean().item():.3f}"
    if slow:  # about 6 s on one core: 200 stroke masks
        strokes = torch.tensor([brush_stroke_mask(256, 256, generator=i).mean().item() for i in range(200)])
        out["01.4 strokes min"], out["01.4 strokes max"] = f"{strokes.min().item():.3f}", f"{strokes.max().item():.3f}"
        out["01.4 strokes mean"] = f"{strokes.mean().item():.3f}"
        out["01.4 strokes below box min"] = f"{100 * (strokes < 96 ** 2 / 256 ** 2).float().mean().item():.0f}"
    return out


def _ring_share(gamma: float, margin: int, size: int = 128) -> float:
    """Hole share of the release's discounted weight by rings: min(a(i), a(j)) = d, a(i) = min(i, size - i)."""
    a = [min(i, size - i) for i in range(size)]
    hole = range(margin, size - margin)
    count = {}  # d -> (pixels in the box, pixels in the hole)
    for i in range(size):
        for j in range(size):
            d = min(a[i], a[j])
            box, inside = count.get(d, (0, 0))
            count[d] = (box + 1, inside + (i in hole and j in hole))
    total = sum(n * gamma ** d for d, (n, _) in count.items())
    return sum(m * gamma ** d for d, (_, m) in count.items()) / total


def _lesson02() -> dict[str, str]:
    out = {}
    for gamma in (0.9, 0.99):
        w = spatial_discount(128, 128, gamma, dtype=torch.float64)
        share = (w[16:112, 16:112].sum() / w.sum()).item()
        assert abs(share - _ring_share(gamma, 16)) < 1e-12, "the ring sum and the map must agree"
        out[f"02.1 share g{gamma}"] = f"{100 * share:.1f}"
        i = torch.arange(128, dtype=torch.float64)
        d = torch.minimum(i, 128 - i)
        rows, cols = gamma ** d.view(128, 1), gamma ** d.view(1, 128)
        for name, m in (("product", rows * cols), ("minimum", torch.minimum(rows, cols))):
            out[f"02.4 {name} share g{gamma}"] = f"{100 * (m[16:112, 16:112].sum() / m.sum()).item():.1f}"
    out["02.1 largest d"] = str(max(min(i, 128 - i) for i in range(128)))
    return out


def _fuse_1d(scores: list[list[float]], q: int, k: int) -> float:
    """Identity-kernel fusion in 1-D: the sum of scores[q + t][k + t] for t = -1, 0, 1 (zero outside)."""
    return sum(scores[q + t][k + t] for t in (-1, 0, 1)
               if 0 <= q + t < len(scores) and 0 <= k + t < len(scores[0]))


def _lesson03() -> dict[str, str]:
    # foreground features (one 2-D feature per position, patches of size 1) and background features
    f = [(0.0, 10.0), (1.0, 0.0), (1.0, 0.0)]  # positions q-1, q, q+1: a loud first neighbour
    b = [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0)]  # A at 1, B at 5
    dot = lambda u, v: u[0] * v[0] + u[1] * v[1]
    norm = lambda u: max(math.hypot(*u), 1e-4)
    release = [[dot(fq, bk) / norm(bk) for bk in b] for fq in f]  # only b normalised
    cosine = [[dot(fq, bk) / (norm(bk) * norm(fq)) for bk in b] for fq in f]
    out = {}
    for name, s in (("release", release), ("cosine", cosine)):
        a_score, b_score = _fuse_1d(s, 1, 1), _fuse_1d(s, 1, 5)
        out[f"03.1 {name} A"], out[f"03.1 {name} B"] = f"{a_score:g}", f"{b_score:g}"
    assert float(out["03.1 release B"]) > float(out["03.1 release A"])
    assert float(out["03.1 cosine A"]) > float(out["03.1 cosine B"])
    for side in (16, 32, 64):  # the (B, L, h, w) score tensor of one image, float32
        out[f"03.4 scores MiB {side}"] = f"{(side * side) ** 2 * 4 / 2 ** 20:g}"
    return out


def _fuse_release(s: torch.Tensor) -> torch.Tensor:
    """One fusion pass on a flattened (L, L) score matrix: add the diagonal neighbours (t = -1, 0, 1)."""
    out = s.clone()
    out[1:, 1:] += s[:-1, :-1]
    out[:-1, :-1] += s[1:, 1:]
    return out


def _fuse_rows(s: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The same pass, but a neighbour counts only inside the row of the query and of the key."""
    out = s.clone()
    col = torch.arange(h * w) % w
    for t in (-1, 1):
        ok_q = (col + t >= 0) & (col + t < w)  # (L,): q + t stays in q's row
        for q in range(h * w):
            for k in range(h * w):
                if ok_q[q] and ok_q[k]:
                    out[q, k] += s[q + t, k + t]
    return out


def _to_column_major(s: torch.Tensor, h: int, w: int) -> torch.Tensor:
    order = torch.arange(h * w).view(h, w).t().flatten()  # column-major position order
    return s[order][:, order]


def _lesson04_fuse(h: int = 6, w: int = 6) -> dict[str, str]:
    g = torch.Generator().manual_seed(1)
    s = torch.rand(h * w, h * w, generator=g, dtype=torch.float64)
    release = _to_column_major(_fuse_release(_to_column_major(_fuse_release(s), h, w)), w, h)
    library = fuse_scores(s.t().reshape(1, h * w, h, w)).reshape(h * w, h * w).t()  # (L_q, L_k) again
    assert torch.allclose(release, library), "the two-pass diagonal sum must be course_lib's fuse_scores"
    rows = _fuse_rows(s, h, w)
    aware = _to_column_major(_fuse_rows(_to_column_major(rows, h, w), w, h), w, h)
    differ = int((~torch.isclose(release, aware)).sum())
    return {"04.5 map": f"{h}x{w}", "04.5 entries": f"{(h * w) ** 2:,}", "04.5 differ": f"{differ:,}"}


def _entropy(s: torch.Tensor, lam: float) -> float:
    p = torch.softmax(lam * s, dim=0)
    return float(-(p * p.log()).sum())


def _lesson04() -> dict[str, str]:
    out = {}
    g = torch.Generator().manual_seed(0)
    s = torch.randn(50, generator=g, dtype=torch.float64)
    lam, h = 3.0, 1e-5
    numeric = (_entropy(s, lam + h) - _entropy(s, lam - h)) / (2 * h)
    p = torch.softmax(lam * s, dim=0)
    var = float((p * s ** 2).sum() - (p * s).sum() ** 2)
    assert abs(numeric - (-lam * var)) < 1e-6, (numeric, -lam * var)
    out["04.1 derivative check"] = f"{numeric:.4f}"
    scores = torch.full((1000,), 0.8, dtype=torch.float64)
    scores[0] = 1.0
    p = torch.softmax(10 * scores, dim=0)
    out["04.2 top weight"] = f"{p[0].item():.4f}"
    out["04.2 effective patches"] = f"{math.exp(_entropy(scores, 10)):.0f}"
    for c in (1, 2, 5, 10):  # the same gap, scaled by c: effective number at lambda = 10
        out[f"04.2 effective c{c}"] = f"{math.exp(_entropy(c * scores, 10)):.1f}"
    lo, hi = 1.0, 10.0  # the scale c at which exp H = 10: bisection
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.exp(_entropy(mid * scores, 10)) > 10 else (lo, mid)
    out["04.2 sharp from c"] = f"{hi:.2f}"
    return out


def _lesson05() -> dict[str, str]:
    out = {}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 9, 9, generator=g, dtype=torch.float64)
    w = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    y = F.conv2d(x, w, stride=2)
    a = torch.randn_like(y)
    lhs = (y * a).sum().item()
    rhs = (x * F.conv_transpose2d(a, w, stride=2, output_padding=1)).sum().item()
    out["05.1 adjoint gap"] = f"{abs(lhs - rhs):.0e}"
    for k in (3, 4, 6):
        ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
        cover = F.conv_transpose2d(ones, torch.ones(1, 1, k, k, dtype=torch.float64), stride=2)
        inner = cover[0, 0, k:-k, k:-k]
        out[f"05.3 coverage K{k}"] = "/".join(str(int(v)) for v in sorted(set(inner.flatten().tolist())))
    # the paste's coverage with the release's 'SAME' 4x4 patches at stride 2 (padding 1 each side)
    cover = F.conv_transpose2d(torch.ones(1, 1, 8, 8, dtype=torch.float64),
                               torch.ones(1, 1, 4, 4, dtype=torch.float64), stride=2, padding=1)[0, 0]  # (16, 16)
    out["05.2 interior"], out["05.2 edge"], out["05.2 corner"] = (str(int(cover[5, 5])), str(int(cover[0, 5])),
                                                                  str(int(cover[0, 0])))
    L = 32 * 32
    out["05.4 matching"] = f"{L * 32 * 32 * 128 * 9 / 1e9:.2f}"
    out["05.4 paste"] = f"{L * 32 * 32 * 128 * 16 / 1e9:.2f}"
    return out


def _lesson06() -> dict[str, str]:
    h = w = 64  # 512 input -> pmconv6 at 128 x 128 (stride 4), matched at rate 2 -> 64 x 64
    C, L = 128, 64 * 64
    out = {"06.1 L": f"{L:,}",
           "06.1 matching macs": f"{L * h * w * C * 9 / 1e9:.1f}",
           "06.1 paste macs": f"{L * h * w * C * 16 / 1e9:.1f}",
           "06.1 score MiB": f"{L * h * w * 4 / 2 ** 20:.0f}",
           "06.1 raw patches MiB": f"{L * C * 16 * 4 / 2 ** 20:.0f}",
           "06.1 features MiB": f"{C * 128 * 128 * 4 / 2 ** 20:.0f}"}
    return out


def _lesson07() -> dict[str, str]:
    out = {"07.1 conv1": f"{5 * 5 * 5 * 32 + 32:,}", "07.1 conv7": f"{3 * 3 * 128 * 128 + 128:,}"}
    out["07.1 stage 1"] = f"{_params(CoarseNetwork(cnum=32)):,}"
    out["07.1 generator"] = f"{_params(Generator(cnum=32)):,}"
    refine = RefineNetwork(cnum=32)
    names = ["pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5", "pmconv6"]
    r, j = receptive_field([s[1:] for s in conv_specs(refine, names)])[-1]
    out["07.2 field"], out["07.2 jump"] = str(r), str(j)
    torch.manual_seed(0)  # the random weights of the measurement
    side, _ = support_size(gradient_map([getattr(refine, n) for n in names], in_channels=5, size=96))
    assert side <= r, (side, r)
    out["07.2 gradient side"] = str(side)
    return out


def _lesson09() -> dict[str, str]:
    d = 0.995
    out = {"09.1 lag": f"{d / (1 - d):.0f}", "09.1 variance ratio": f"{(1 - d) / (1 + d):.5f}"}
    ema, v = 0.0, 1.0
    for t in range(20_000):  # w_t = v t: the average trails by d / (1 - d) steps
        ema = d * ema + (1 - d) * v * t
    out["09.1 simulated lag"] = f"{(v * (20_000 - 1) - ema) / v:.1f}"
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(400_000, generator=g, dtype=torch.float64)
    ema, values = 0.0, []
    for t, e in enumerate(noise.tolist()):
        ema = d * ema + (1 - d) * e
        if t > 5_000:
            values.append(ema)
    out["09.1 simulated ratio"] = f"{torch.tensor(values).var().item():.5f}"
    return out


def _lesson10() -> dict[str, str]:
    u = torch.linspace(0, 1, 100_001, dtype=torch.float64)[:-1]  # one period, P = 1, A = 1
    delta = math.pi / 3
    mse = ((torch.sin(2 * math.pi * u) - torch.sin(2 * math.pi * u + delta)) ** 2).mean().item()
    mean_fill = (torch.sin(2 * math.pi * u) ** 2).mean().item()
    assert abs(mse - (1 - math.cos(delta))) < 1e-9 and abs(mse - mean_fill) < 1e-9
    return {"10.2 delta degrees": f"{math.degrees(delta):.0f}", "10.2 mse": f"{mse:.3f}"}


def _lesson11() -> dict[str, str]:
    x, strokes = held_out_strokes()  # (40, 3, 64, 64), (40, 1, 64, 64)
    boxes, _ = random_box_mask(40, 64, 64, 32, 32, max_delta=(8, 8), per_sample=True, generator=11)
    out = {}
    for kind in ("v1", "gated"):
        net = load_coarse(v2_weights(kind))
        for name, mask in (("strokes", strokes), ("boxes", boxes)):
            _, scores = hole_scores(net, x, mask)
            out[f"11.5 {kind} {name}"] = f"{scores['psnr'].mean().item():.2f}"
    out["11.2 gated6"] = f"{_params(GatedCoarseNetwork(6)):,}"
    out["11.2 v1 8"] = f"{_params(CoarseNetwork(cnum=8)):,}"
    out["11.2 gated8"] = f"{_params(GatedCoarseNetwork(8)):,}"
    return out


def numbers(slow: bool = False) -> dict[str, str]:
    """Every quoted number, ``{"NN.k what": "as written"}``; ``slow`` adds the stroke-mask statistics."""
    torch.manual_seed(0)
    out: dict[str, str] = _lesson01(slow)
    for part in (_lesson00, _lesson02, _lesson03, _lesson04, _lesson04_fuse, _lesson05, _lesson06, _lesson07, _lesson09,
                 _lesson10, _lesson11):
        out.update(part())
    return out


if __name__ == "__main__":
    import sys

    for key, value in numbers(slow="--fast" not in sys.argv[1:]).items():
        print(f"{key:<32} {value}")
