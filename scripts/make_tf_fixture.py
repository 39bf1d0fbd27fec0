"""Write tests/fixtures/tf_small/: a small DeepFill v1 checkpoint made by TensorFlow itself.

Run ONCE, by hand, with a separate TensorFlow environment (never in CI, never in the
project's venv)::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python scripts/make_tf_fixture.py

The TF model below is written for this course from the facts in
``shared/reference/deepfill_v1.md`` (layer table, 'SAME' convs, align-corners nearest
resizes, contextual attention steps 1-10, critics). It consumes BGR images, as the release
does. Weights are random (seeded) with the official variable names, so course_lib's
converter must map them exactly as it maps the published checkpoints.

Outputs (NHWC, BGR, exactly as TensorFlow computed them):

* ``snap-0.index``, ``snap-0.data-00000-of-00001``, ``checkpoint``: the TF checkpoint, with
  a few optimizer-like extras (``global_step``, ``beta1_power``, Adam slots) that the
  converter must ignore, and ``fixture_dtypes/*`` tensors of other dtypes for the reader;
* ``outputs.npz``: inputs and outputs (see ``main`` for the keys).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

# (name, kernel, stride, dilation, out_channels as a multiple of cnum, activation)
# "up" marks a gen_deconv: nearest x2 (align_corners) then a 3x3 conv `<name>/<name>_conv`.
COARSE = [
    ("conv1", 5, 1, 1, 1, "elu"),
    ("conv2_downsample", 3, 2, 1, 2, "elu"),
    ("conv3", 3, 1, 1, 2, "elu"),
    ("conv4_downsample", 3, 2, 1, 4, "elu"),
    ("conv5", 3, 1, 1, 4, "elu"),
    ("conv6", 3, 1, 1, 4, "elu"),
    ("conv7_atrous", 3, 1, 2, 4, "elu"),
    ("conv8_atrous", 3, 1, 4, 4, "elu"),
    ("conv9_atrous", 3, 1, 8, 4, "elu"),
    ("conv10_atrous", 3, 1, 16, 4, "elu"),
    ("conv11", 3, 1, 1, 4, "elu"),
    ("conv12", 3, 1, 1, 4, "elu"),
    ("conv13_upsample", 3, "up", 1, 2, "elu"),
    ("conv14", 3, 1, 1, 2, "elu"),
    ("conv15_upsample", 3, "up", 1, 1, "elu"),
    ("conv16", 3, 1, 1, 0.5, "elu"),
    ("conv17", 3, 1, 1, None, "none"),  # None: 3 output channels
]
HALLU = [
    ("xconv1", 5, 1, 1, 1, "elu"),
    ("xconv2_downsample", 3, 2, 1, 1, "elu"),
    ("xconv3", 3, 1, 1, 2, "elu"),
    ("xconv4_downsample", 3, 2, 1, 2, "elu"),
    ("xconv5", 3, 1, 1, 4, "elu"),
    ("xconv6", 3, 1, 1, 4, "elu"),
    ("xconv7_atrous", 3, 1, 2, 4, "elu"),
    ("xconv8_atrous", 3, 1, 4, 4, "elu"),
    ("xconv9_atrous", 3, 1, 8, 4, "elu"),
    ("xconv10_atrous", 3, 1, 16, 4, "elu"),
]
ATTN_BRANCH = [
    ("pmconv1", 5, 1, 1, 1, "elu"),
    ("pmconv2_downsample", 3, 2, 1, 1, "elu"),
    ("pmconv3", 3, 1, 1, 2, "elu"),
    ("pmconv4_downsample", 3, 2, 1, 4, "elu"),
    ("pmconv5", 3, 1, 1, 4, "elu"),
    ("pmconv6", 3, 1, 1, 4, "relu"),
]
AFTER_ATTN = [
    ("pmconv9", 3, 1, 1, 4, "elu"),
    ("pmconv10", 3, 1, 1, 4, "elu"),
]
DECODER = [
    ("allconv11", 3, 1, 1, 4, "elu"),
    ("allconv12", 3, 1, 1, 4, "elu"),
    ("allconv13_upsample", 3, "up", 1, 2, "elu"),
    ("allconv14", 3, 1, 1, 2, "elu"),
    ("allconv15_upsample", 3, "up", 1, 1, "elu"),
    ("allconv16", 3, 1, 1, 0.5, "elu"),
    ("allconv17", 3, 1, 1, None, "none"),
]


def var_name(layer: str, up: bool) -> str:
    """Official variable prefix of a generator layer (deconvs nest their conv)."""
    return f"inpaint_net/{layer}/{layer}_conv" if up else f"inpaint_net/{layer}"


class Weights:
    """Seeded random weights, recorded under their official names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.values: dict[str, np.ndarray] = {}

    def conv(self, name: str, k: int, cin: int, cout: int, gain: float = 1.4) -> None:
        std = gain / np.sqrt(k * k * cin)
        self.values[name + "/kernel"] = (self.rng.standard_normal((k, k, cin, cout)) * std).astype(np.float32)
        self.values[name + "/bias"] = self.rng.uniform(-0.1, 0.1, cout).astype(np.float32)

    def dense(self, name: str, cin: int, cout: int) -> None:
        self.values[name + "/kernel"] = (self.rng.standard_normal((cin, cout)) / np.sqrt(cin)).astype(np.float32)
        self.values[name + "/bias"] = self.rng.uniform(-0.1, 0.1, cout).astype(np.float32)


def resize_nn(x: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The release's resize: nearest neighbour, align_corners=True (TF1 op)."""
    return tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=True)


ACT = {"elu": tf.nn.elu, "relu": tf.nn.relu, "none": lambda t: t}


def run_layers(x: tf.Tensor, layers: list, w: dict[str, np.ndarray]) -> tf.Tensor:
    """Apply a list of layer specs (TF 'SAME' convs, biases, activations) to NHWC ``x``."""
    for layer, k, stride, dilation, _, act in layers:
        up = stride == "up"
        if up:
            h, wd = int(x.shape[1]), int(x.shape[2])
            x = resize_nn(x, (2 * h, 2 * wd))
        name = var_name(layer, up)
        kernel = tf.constant(w[name + "/kernel"])
        s = 1 if up else stride
        x = tf.nn.conv2d(x, kernel, strides=s, padding="SAME", dilations=dilation)
        x = ACT[act](x + w[name + "/bias"])
    return x


def contextual_attention_tf(f: tf.Tensor, b: tf.Tensor, mask: tf.Tensor | None, ksize: int = 3,
                            stride: int = 1, rate: int = 2, fuse_k: int = 3,
                            softmax_scale: float = 10.0) -> tuple[tf.Tensor, tf.Tensor]:
    """Contextual attention, reference steps 1-10, per image; returns (y, offsets).

    ``f``, ``b`` NHWC; ``mask`` (1, Hb, Wb, 1) shared by the batch (1 = hole) or None.
    ``offsets`` (B, Hf, Wf, 2) int: (row, col) of the argmax patch minus own position.
    """
    B, H, W, C = (int(d) for d in f.shape)
    Hb, Wb = int(b.shape[1]), int(b.shape[2])
    kr = 2 * rate
    # 1. raw 2*rate patches of full-resolution b, stride rate*stride, 'SAME'
    raw = tf.image.extract_patches(b, [1, kr, kr, 1], [1, rate * stride, rate * stride, 1],
                                   [1, 1, 1, 1], "SAME")
    raw = tf.reshape(raw, [B, -1, kr, kr, C])
    raw = tf.transpose(raw, [0, 2, 3, 4, 1])  # (B, kr, kr, C, L)
    # 2. downsample f, b and the mask by 1/rate
    fs = resize_nn(f, (H // rate, W // rate))
    bs = resize_nn(b, (Hb // rate, Wb // rate))
    hf, wf = H // rate, W // rate
    hb, wb = Hb // rate, Wb // rate
    ms = tf.zeros([1, hb, wb, 1]) if mask is None else resize_nn(mask, (hb, wb))
    # 3. matching patches ksize x ksize of the small b
    wpat = tf.image.extract_patches(bs, [1, ksize, ksize, 1], [1, stride, stride, 1], [1, 1, 1, 1], "SAME")
    wpat = tf.transpose(tf.reshape(wpat, [B, -1, ksize, ksize, C]), [0, 2, 3, 4, 1])  # (B, k, k, C, L)
    # 4. a patch is valid when the mean of the mask over its window is exactly 0
    mpat = tf.image.extract_patches(ms, [1, ksize, ksize, 1], [1, stride, stride, 1], [1, 1, 1, 1], "SAME")
    mpat = tf.reshape(mpat, [1, -1, ksize * ksize])  # (1, L, k*k)
    mm = tf.cast(tf.equal(tf.reduce_mean(mpat, axis=2), 0.0), tf.float32)  # (1, L)
    mm = tf.reshape(mm, [1, 1, 1, -1])
    eye = tf.reshape(tf.eye(fuse_k), [fuse_k, fuse_k, 1, 1])
    ys, offs = [], []
    for i in range(B):
        wi = wpat[i]  # (k, k, C, L)
        # 5. unit L2 norm of the background patches, floor 1e-4
        norm = tf.sqrt(tf.reduce_sum(tf.square(wi), axis=[0, 1, 2]))
        wi_n = wi / tf.maximum(norm, 1e-4)
        # 6. scores of every foreground position against every patch
        yi = tf.nn.conv2d(fs[i:i + 1], wi_n, strides=1, padding="SAME")  # (1, hf, wf, L)
        # 7. fuse: identity-kernel conv on the [hf*wf, hb*wb] matrix, then column-major
        yi = tf.reshape(yi, [1, hf * wf, hb * wb, 1])
        yi = tf.nn.conv2d(yi, eye, strides=1, padding="SAME")
        yi = tf.transpose(tf.reshape(yi, [1, hf, wf, hb, wb]), [0, 2, 1, 4, 3])
        yi = tf.reshape(yi, [1, wf * hf, wb * hb, 1])
        yi = tf.nn.conv2d(yi, eye, strides=1, padding="SAME")
        yi = tf.transpose(tf.reshape(yi, [1, wf, hf, wb, hb]), [0, 2, 1, 4, 3])
        yi = tf.reshape(yi, [1, hf, wf, hb * wb])
        # 8. masked softmax (scores of invalid patches are 0, not -inf)
        yi = yi * mm
        yi = tf.nn.softmax(yi * softmax_scale, axis=3)
        yi = yi * mm
        # 9. offsets of the best patch (the release divides by the foreground width)
        idx = tf.argmax(yi, axis=3, output_type=tf.int32)  # (1, hf, wf)
        rows = tf.reshape(tf.range(hf), [1, hf, 1])
        cols = tf.reshape(tf.range(wf), [1, 1, wf])
        offs.append(tf.stack([idx // wf - rows, idx % wf - cols], axis=-1))
        # 10. paste the raw patches: transposed conv, stride rate, then / 4
        yi = tf.nn.conv2d_transpose(yi, raw[i], [1, H, W, C], strides=rate, padding="SAME") / 4.0
        ys.append(yi)
    return tf.concat(ys, 0), tf.concat(offs, 0)


def generator_tf(x: tf.Tensor, mask: tf.Tensor, w: dict[str, np.ndarray]) -> tuple[tf.Tensor, tf.Tensor]:
    """The inpainting network on an incomplete BGR batch ``x`` with a shared mask."""
    ones = tf.ones_like(x)[:, :, :, 0:1]
    x_in = x
    h = tf.concat([x, ones, ones * mask], axis=3)
    x1 = tf.clip_by_value(run_layers(h, COARSE, w), -1.0, 1.0)
    x = x1 * mask + x_in * (1.0 - mask)
    h = tf.concat([x, ones, ones * mask], axis=3)
    hallu = run_layers(h, HALLU, w)
    pm = run_layers(h, ATTN_BRANCH, w)
    mask_s = resize_nn(mask, (int(pm.shape[1]), int(pm.shape[2])))
    pm, _ = contextual_attention_tf(pm, pm, mask_s, 3, 1, rate=2)
    pm = run_layers(pm, AFTER_ATTN, w)
    h = tf.concat([hallu, pm], axis=3)
    x2 = tf.clip_by_value(run_layers(h, DECODER, w), -1.0, 1.0)
    return x1, x2


def critic_tf(x: tf.Tensor, scope: str, fc: str, w: dict[str, np.ndarray]) -> tf.Tensor:
    """Four 5x5 stride-2 'SAME' convs + leaky ReLU 0.2, NHWC flatten, dense -> (B, 1)."""
    for i in range(1, 5):
        name = f"discriminator/{scope}/conv{i}"
        x = tf.nn.conv2d(x, w[name + "/kernel"], strides=2, padding="SAME") + w[name + "/bias"]
        x = tf.nn.leaky_relu(x, 0.2)
    x = tf.reshape(x, [int(x.shape[0]), -1])
    return tf.matmul(x, w[f"discriminator/{fc}/kernel"]) + w[f"discriminator/{fc}/bias"]


OUT_GAIN = 0.5  # output convs: keep most pixels inside [-1, 1] so the clip does not hide errors


def make_weights(cnum: int, dcnum: int, local: int, size: int, seed: int) -> dict[str, np.ndarray]:
    w = Weights(seed)
    cin = 5
    for layer, k, stride, _, mult, _ in COARSE:
        cout = 3 if mult is None else int(mult * cnum)
        w.conv(var_name(layer, stride == "up"), k, cin, cout, gain=OUT_GAIN if mult is None else 1.4)
        cin = cout
    for branch in (HALLU, ATTN_BRANCH):
        cin = 5
        for layer, k, stride, _, mult, _ in branch:
            w.conv(var_name(layer, False), k, cin, int(mult * cnum))
            cin = int(mult * cnum)
    cin = 4 * cnum
    for layer, k, stride, _, mult, _ in AFTER_ATTN:
        w.conv(var_name(layer, False), k, cin, int(mult * cnum))
    cin = 8 * cnum
    for layer, k, stride, _, mult, _ in DECODER:
        cout = 3 if mult is None else int(mult * cnum)
        w.conv(var_name(layer, stride == "up"), k, cin, cout, gain=OUT_GAIN / 2 if mult is None else 1.4)
        cin = cout
    for scope, fc, widths, side in (("discriminator_local", "dout_local_fc", (1, 2, 4, 8), local),
                                    ("discriminator_global", "dout_global_fc", (1, 2, 4, 4), size)):
        cin = 3
        for i, m in enumerate(widths, 1):
            w.conv(f"discriminator/{scope}/conv{i}", 5, cin, m * dcnum, gain=1.4)
            cin = m * dcnum
        w.dense(f"discriminator/{fc}", (side // 16) ** 2 * cin, 1)
    return w.values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/tf_small")
    parser.add_argument("--cnum", type=int, default=4)
    parser.add_argument("--critic-cnum", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, local = args.size, args.size // 2
    w = make_weights(args.cnum, args.critic_cnum, local, size, args.seed)
    rng = np.random.default_rng(args.seed + 1)

    # Inputs: a smooth BGR picture plus noise, batch 2, one shared box mask (release style).
    yy, xx = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    base = np.stack([np.sin(3 * xx + 1), np.cos(2 * yy), xx * yy], axis=-1)  # (H, W, 3)
    image = np.clip(base[None] * [[[[0.8]]], [[[-0.6]]]] + 0.2 * rng.standard_normal((2, size, size, 3)), -1, 1)
    image = image.astype(np.float32)  # (2, H, W, 3) BGR
    mask = np.zeros((1, size, size, 1), np.float32)
    top, left = size // 4, size // 4 + 4
    mask[:, top:top + size // 2 - 8, left:left + size // 2 - 6] = 1.0
    x_incomplete = image * (1.0 - mask)
    x1, x2 = generator_tf(tf.constant(x_incomplete), tf.constant(mask), w)

    # Contextual attention on its own: f != b, a feature-sized hole.
    fh = size // 4
    attn_f = rng.standard_normal((2, fh, fh, 6)).astype(np.float32)
    attn_b = rng.standard_normal((2, fh, fh, 6)).astype(np.float32)
    attn_mask = np.zeros((1, fh, fh, 1), np.float32)
    attn_mask[:, 4:11, 3:9] = 1.0
    attn_y, attn_off = contextual_attention_tf(tf.constant(attn_f), tf.constant(attn_b), tf.constant(attn_mask))

    # Critics: the global one on the images, the local one on the box around the hole.
    local_in = image[:, top:top + local, left - 4:left - 4 + local]
    local_score = critic_tf(tf.constant(local_in), "discriminator_local", "dout_local_fc", w)
    global_score = critic_tf(tf.constant(image), "discriminator_global", "dout_global_fc", w)

    # Checkpoint: official names + optimizer-like extras + other dtypes for the reader.
    tensors = dict(w)
    tensors["global_step"] = np.array(123456, np.int64)
    tensors["beta1_power"] = np.array(0.5 ** 10, np.float32)
    tensors["beta2_power"] = np.array(0.9 ** 10, np.float32)
    for slot in ("Adam", "Adam_1"):
        tensors[f"inpaint_net/conv1/bias/{slot}"] = rng.standard_normal(args.cnum).astype(np.float32)
        tensors[f"discriminator/dout_local_fc/bias/{slot}"] = rng.standard_normal(1).astype(np.float32)
    dtypes = {
        "fixture_dtypes/double": np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0,
        "fixture_dtypes/half": np.array([0.5, -1.25, 65504.0], np.float16),
        "fixture_dtypes/int32": np.array([[-(2 ** 31), 0, 2 ** 31 - 1]], np.int32),
        "fixture_dtypes/int64": np.array([-(2 ** 62), 7], np.int64),
        "fixture_dtypes/bool": np.array([True, False, True, True]),
        "fixture_dtypes/empty": np.zeros((0, 3), np.float32),
    }
    tensors.update(dtypes)
    names = sorted(tensors)
    prefix = str(out / "snap-0")
    for old in out.glob("snap-0*"):
        old.unlink()
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    (out / "checkpoint").write_text('model_checkpoint_path: "snap-0"\nall_model_checkpoint_paths: "snap-0"\n')

    # What TF itself reads back, for the reader's tests.
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtype_map = reader.get_variable_to_dtype_map()
    assert sorted(shapes) == names, "TF lists other variables than were written"
    np.savez(
        out / "outputs.npz",
        image_bgr=image, mask=mask, stage1_bgr=x1.numpy(), stage2_bgr=x2.numpy(),
        attn_f=attn_f, attn_b=attn_b, attn_mask=attn_mask,
        attn_y=attn_y.numpy(), attn_offsets=attn_off.numpy(),
        local_input_bgr=local_in, local_score=local_score.numpy(),
        global_input_bgr=image, global_score=global_score.numpy(),
        variable_names=np.array(names),
        variable_dtypes=np.array([dtype_map[n].name for n in names]),
        variable_ranks=np.array([len(shapes[n]) for n in names]),
        **{"value:" + n: v for n, v in dtypes.items()},
        **{"value:" + n: tensors[n] for n in ("global_step", "inpaint_net/conv1/kernel")},
    )
    total = sum(p.stat().st_size for p in out.iterdir())
    stage1 = x1.numpy()
    print(f"wrote {out} ({total / 1e6:.2f} MB); {len(names)} variables; generator cnum {args.cnum}, "
          f"image {size}x{size}; stage-1 range [{stage1.min():.3f}, {stage1.max():.3f}], "
          f"{np.mean(np.abs(stage1) < 1):.0%} unclipped; stage-2 {np.mean(np.abs(x2.numpy()) < 1):.0%} "
          f"unclipped; scores local {local_score.numpy().ravel()}, global {global_score.numpy().ravel()}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
