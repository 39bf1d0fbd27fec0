"""Tests of course_lib.convert and course_lib.pretrained against outputs computed by TensorFlow.

tests/fixtures/tf_small was written by scripts/make_tf_fixture.py with tensorflow-cpu: a
DeepFill v1 generator (cnum 4, 64x64) and both critics (cnum 4; inputs 32 and 64) with
random weights under the official variable names, consuming BGR images like the release,
and TF's outputs on fixed inputs. Through the converter, course_lib (fed the same images
as RGB) must reproduce them to 1e-4.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import attention as A
from course_lib.__main__ import main as cli_main
from course_lib.convert import (
    ConversionError,
    convert_checkpoint,
    convert_variables,
    generator_name_map,
    is_ignored_variable,
    main,
    save_converted,
)
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator
from course_lib.pretrained import OFFICIAL_WEIGHTS, load_pretrained, load_pretrained_critics
from course_lib.tf_checkpoint import CheckpointError, read_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "tf_small"
TOL = 1e-4


@pytest.fixture(scope="module")
def tf_out():
    return np.load(FIXTURE / "outputs.npz")


@pytest.fixture(scope="module")
def converted():
    return convert_checkpoint(FIXTURE)


@pytest.fixture(scope="module")
def tf_vars():
    return read_checkpoint(FIXTURE)


def nchw(a: np.ndarray, reverse_channels: bool = False) -> torch.Tensor:
    """NHWC numpy -> NCHW torch; ``reverse_channels`` turns BGR into RGB."""
    if reverse_channels:
        a = a[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def build_generator(converted: dict) -> Generator:
    g = Generator(converted["config"]["cnum"])
    g.load_state_dict(converted["generator"])
    return g.eval()


def run_generator(g: Generator, tf_out, rgb: bool = True):
    x = nchw(tf_out["image_bgr"], reverse_channels=rgb)  # (2, 3, 64, 64)
    mask = nchw(tf_out["mask"])  # (1, 1, 64, 64)
    with torch.no_grad():
        return g(x * (1 - mask), mask)


def test_generator_reproduces_tensorflow(converted, tf_out):
    x1, x2, flow = run_generator(build_generator(converted), tf_out)
    stage1 = nchw(tf_out["stage1_bgr"], reverse_channels=True)
    stage2 = nchw(tf_out["stage2_bgr"], reverse_channels=True)
    assert stage1.abs().max() > 0.5 and (stage2.abs() < 1).float().mean() > 0.5  # not all clipped
    torch.testing.assert_close(x1, stage1, atol=TOL, rtol=0)
    torch.testing.assert_close(x2, stage2, atol=TOL, rtol=0)
    assert flow.shape[0] == 2 and flow.shape[1] == 3


def test_bgr_flip_is_exact_and_needed(converted, tf_vars, tf_out):
    bgr = build_generator(convert_variables(tf_vars, bgr_to_rgb=False))
    x1, x2, _ = run_generator(bgr, tf_out, rgb=False)  # BGR in, BGR out: TF's own convention
    torch.testing.assert_close(x2, nchw(tf_out["stage2_bgr"]), atol=TOL, rtol=0)
    rgb_model = build_generator(converted)
    wrong, _, _ = run_generator(rgb_model, tf_out, rgb=False)  # BGR fed to the RGB model
    assert (wrong - nchw(tf_out["stage1_bgr"])).abs().max() > 1e-2


def test_contextual_attention_reproduces_tensorflow(tf_out):
    f, b, mask = nchw(tf_out["attn_f"]), nchw(tf_out["attn_b"]), nchw(tf_out["attn_mask"])
    y, _ = A.contextual_attention(f, b, mask, ksize=3, stride=1, rate=2)
    torch.testing.assert_close(y, nchw(tf_out["attn_y"]), atol=TOL, rtol=0)
    # the offsets behind the flow picture: the public steps chained by hand
    fs, bs, ms = A.downsample(f, 2), A.downsample(b, 2), A.downsample(mask, 2)
    scores = A.fuse_scores(A.matching_scores(fs, A.normalize_patches(A.extract_patches(bs, 3, 1))), 3)
    attention = A.masked_softmax(scores, A.valid_patches(ms, 3), 10.0)
    offsets = A.attention_offsets(attention, fs.shape[-1])  # (2, 2, 8, 8)
    assert torch.equal(offsets, torch.from_numpy(tf_out["attn_offsets"]).permute(0, 3, 1, 2).long())


def test_critics_reproduce_tensorflow(converted, tf_out):
    cfg = converted["config"]
    assert (cfg["local_cnum"], cfg["local_size"], cfg["global_cnum"], cfg["global_size"]) == (4, 32, 4, 64)
    local = LocalCritic(cfg["local_cnum"], cfg["local_size"])
    local.load_state_dict(converted["local_critic"])
    glob = GlobalCritic(cfg["global_cnum"], cfg["global_size"])
    glob.load_state_dict(converted["global_critic"])
    with torch.no_grad():
        s_local = local(nchw(tf_out["local_input_bgr"], reverse_channels=True))
        s_global = glob(nchw(tf_out["global_input_bgr"], reverse_channels=True))
    torch.testing.assert_close(s_local, torch.from_numpy(tf_out["local_score"]), atol=TOL, rtol=0)
    torch.testing.assert_close(s_global, torch.from_numpy(tf_out["global_score"]), atol=TOL, rtol=0)


def test_layouts_by_hand(converted, tf_vars):
    g = converted["generator"]
    k = tf_vars["inpaint_net/conv2_downsample/kernel"]  # HWIO (3, 3, 4, 8)
    assert g["coarse.conv2_downsample.weight"][5, 1, 2, 0].item() == k[2, 0, 1, 5]
    deconv = tf_vars["inpaint_net/allconv13_upsample/allconv13_upsample_conv/kernel"]
    assert g["refine.allconv13_upsample.conv.weight"][3, 7, 0, 2].item() == deconv[0, 2, 7, 3]
    conv1 = tf_vars["inpaint_net/conv1/kernel"]  # (5, 5, 5, 4): inputs B, G, R, ones, mask
    w1 = g["coarse.conv1.weight"]  # (4, 5, 5, 5): inputs R, G, B, ones, mask
    assert w1[1, 0, 3, 4].item() == conv1[3, 4, 2, 1]  # R <- TF channel 2
    assert w1[1, 2, 3, 4].item() == conv1[3, 4, 0, 1]  # B <- TF channel 0
    assert w1[1, 4, 3, 4].item() == conv1[3, 4, 4, 1]  # mask channel untouched
    out = tf_vars["inpaint_net/allconv17/bias"]
    assert g["refine.allconv17.bias"].tolist() == [out[2], out[1], out[0]]
    fc = tf_vars["discriminator/dout_global_fc/kernel"]  # (4*4*16, 1) over (h, w, c)
    assert converted["global_critic"]["fc.weight"][0, (2 * 4 + 1) * 16 + 5].item() == fc[(2 * 4 + 1) * 16 + 5, 0]


def test_name_map_and_ignored_variables(converted):
    names = generator_name_map(Generator(4))
    assert names["coarse.conv1.weight"] == "inpaint_net/conv1/kernel"
    assert names["coarse.conv13_upsample.conv.weight"] == \
        "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"
    assert names["refine.xconv10_atrous.bias"] == "inpaint_net/xconv10_atrous/bias"
    assert len(names) == 2 * (17 + 10 + 8 + 7)  # kernel + bias of every generator conv
    ignored = ["global_step", "beta1_power", "beta2_power", "inpaint_net/conv1/bias/Adam",
               "inpaint_net/conv1/bias/Adam_1", "discriminator/dout_local_fc/bias/Adam",
               "discriminator/dout_local_fc/bias/Adam_1", "fixture_dtypes/double"]
    assert all(is_ignored_variable(n) for n in ignored)
    assert not is_ignored_variable("inpaint_net/conv1/kernel")
    assert not is_ignored_variable("discriminator/discriminator_local/conv1/kernel")
    assert converted["config"]["ignored_variables"] == 7 + 6  # 7 above + 6 fixture_dtypes/*
    assert converted["config"]["global_step"] == 123456


def test_missing_extra_misshaped_reported_by_name(tf_vars):
    bad = dict(tf_vars)
    del bad["inpaint_net/pmconv9/bias"]
    bad["inpaint_net/conv99/kernel"] = np.zeros((3, 3, 4, 4), np.float32)
    bad["discriminator/discriminator_global/conv5/kernel"] = np.zeros((5, 5, 4, 4), np.float32)
    bad["inpaint_net/xconv3/kernel"] = np.zeros((3, 3, 4, 9), np.float32)
    with pytest.raises(ConversionError) as info:
        convert_variables(bad, source="bad-ckpt")
    message = str(info.value)
    assert "missing inpaint_net/pmconv9/bias" in message
    assert "extra inpaint_net/conv99/kernel" in message
    assert "extra discriminator/discriminator_global/conv5/kernel" in message
    assert "mis-shaped inpaint_net/xconv3/kernel" in message
    assert "bad-ckpt" in message and "4 problem(s)" in message
    no_conv1 = {k: v for k, v in tf_vars.items() if k != "inpaint_net/conv1/kernel"}
    with pytest.raises(ConversionError, match="inpaint_net/conv1/kernel"):
        convert_variables(no_conv1)


def test_generator_only_checkpoint(tf_vars):
    gen_only = {k: v for k, v in tf_vars.items() if not k.startswith("discriminator/")}
    out = convert_variables(gen_only)
    assert "local_critic" not in out and "global_critic" not in out
    with pytest.raises(ConversionError, match="discriminator_local"):
        convert_variables(gen_only, critics=True)
    assert "local_critic" not in convert_variables(tf_vars, critics=False)


def test_converted_file_round_trip(converted, tf_out, tmp_path):
    path = save_converted(converted, tmp_path / "w" / "small.pt")
    data = torch.load(path, weights_only=True)
    assert data["format_version"] == 1 and data["config"]["colour"] == "RGB"
    for key in ("generator", "local_critic", "global_critic"):
        assert data[key].keys() == converted[key].keys()
        assert all(torch.equal(data[key][k], converted[key][k]) for k in data[key])
    from_pt = load_pretrained(path)
    from_tf = load_pretrained(FIXTURE)
    assert not from_pt.training and from_pt.cnum == 4
    x1_pt, x2_pt, _ = run_generator(from_pt, tf_out)
    x1_tf, x2_tf, _ = run_generator(from_tf, tf_out)
    assert torch.equal(x2_pt, x2_tf)
    local, glob = load_pretrained_critics(path)
    assert isinstance(local, LocalCritic) and isinstance(glob, GlobalCritic) and not glob.training
    assert load_pretrained_critics(FIXTURE / "snap-0")[0].size == 32
    assert load_pretrained(FIXTURE / "checkpoint").cnum == 4  # the state file itself
    no_critics = {k: v for k, v in converted.items() if not k.endswith("critic")}
    save_converted(no_critics, tmp_path / "gen.pt")
    with pytest.raises(ValueError, match="no-critics"):
        load_pretrained_critics(tmp_path / "gen.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="course_lib convert"):
        load_pretrained(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError):
        load_pretrained(tmp_path / "nothing-here")


def test_cli(tmp_path, capsys):
    out = tmp_path / "small.pt"
    assert main([str(FIXTURE), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cnum 4" in printed and "local critic: cnum 4, input 32x32" in printed
    assert "ignored: 13" in printed and str(out) in printed
    assert load_pretrained(out).cnum == 4
    assert cli_main(["convert", str(FIXTURE / "snap-0"), str(tmp_path / "g.pt"), "--no-critics"]) == 0
    assert "local_critic" not in torch.load(tmp_path / "g.pt", weights_only=True)
    assert cli_main(["convert", str(tmp_path / "missing"), str(tmp_path / "x.pt")]) == 2
    assert "not a checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_official_weights_table():
    assert sorted(v["name"] for v in OFFICIAL_WEIGHTS.values()) == ["CelebA", "CelebA-HQ", "ImageNet", "Places2"]
    for entry in OFFICIAL_WEIGHTS.values():
        assert "CC BY-NC 4.0" in entry["license"]
        assert "JiahuiYu/generative_inpainting" in entry["published"] and "v1.0.0" in entry["published"]
