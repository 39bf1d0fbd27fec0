"""Issue 27, point 4, the CPU-side checks of the GPU training loop: reads of device values per
iteration, the flow picture drawn only when shown, the critics' dense layer in float32 under
autocast, channels_last through the upsample and the stage input, the deterministic switch, the
checkpoint mirror, and the data position of a resume on another number of processes."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from course_lib import checkpoint as ckpt_io
from course_lib import flow as flow_mod
from course_lib.config import load_config
from course_lib.critics import GlobalCritic, LocalCritic, flatten_nhwc
from course_lib.determinism import explain_nondeterministic_error, set_deterministic
from course_lib.generator import Generator, stage_input
from course_lib.ops import resize_nearest, resize_nearest_reference, same_conv2d, upsample_conv2d, use_fast_path
from course_lib.train import BatchStream, Trainer, _data_overrides, build_parser
from course_lib.value_checks import count_value_reads, is_host_side


def _toy(**extra):
    values = dict(progress="none", tensorboard=False, toy_size=8, batch_size=2, val_images=2,
                  image_every=10**6, val_every=10**6, log_every=10**6, snapshot_every=10**6, device="cpu")
    values.update(extra)
    return load_config("toy_cpu", overrides=values)


# ----------------------------------------------------------------------------- reads of device values

def test_one_release_iteration_reads_a_device_value_once(tmp_path):
    """5 critic + 1 generator updates: one read (all losses together); main had 53 on this config."""
    trainer = Trainer(_toy(critic_steps=5), tmp_path / "run")
    trainer.train_step()  # the first iteration also checks the masks' values
    with count_value_reads() as reads:
        trainer.train_step()
    device_reads = {k: v for k, v in reads.items() if not is_host_side(k[1])}
    assert device_reads == {("tolist", "train.py:_loss_rows"): 1}
    # the counter sees reads at all: the host-side ones (CPU RNG draws for the holes, Adam's step counters)
    assert reads[("aten::_local_scalar_dense", "masks.py:_randint")] == 6 * 4  # top, left, two deltas per hole
    assert reads[("aten::_local_scalar_dense", "torch:optim/optimizer.py:_get_value")] > 0


def test_the_counter_sees_the_reads_it_claims_to():
    x = torch.tensor([1.0, 0.0])
    with count_value_reads() as reads:
        x.tolist()
        bool(x[0])
        x[x > 0.5]
        torch.equal(x, x)
    names = sorted(name for name, _ in reads)
    assert names == ["aten::_local_scalar_dense", "aten::equal", "aten::index", "aten::nonzero", "tolist"] or \
        names == ["aten::_local_scalar_dense", "aten::equal", "aten::index", "tolist"]
    assert torch.Tensor.tolist is not None and x.tolist() == [1.0, 0.0]  # put back


def test_the_first_iteration_still_checks_that_the_masks_are_binary(tmp_path):
    trainer = Trainer(_toy(), tmp_path / "run")
    real = trainer.sample_hole
    trainer.sample_hole = lambda batch: ((lambda m, b: (m * 255.0, b))(*real(batch)))  # a 0..255 mask
    with pytest.raises(ValueError, match=r"mask (must be binary|values must be exactly 0)"):
        trainer.train_step()


def test_the_spatial_discount_is_made_once_per_size_and_device():
    from course_lib.losses import _discount_on, spatial_discount
    a = _discount_on(8, 8, 0.9, torch.float32, torch.device("cpu"))
    assert a is _discount_on(8, 8, 0.9, torch.float32, torch.device("cpu"))
    i = torch.arange(8.0)
    hand = torch.maximum(0.9 ** torch.minimum(i, 8 - i)[:, None], 0.9 ** torch.minimum(i, 8 - i)[None, :])
    assert torch.allclose(a, hand) and torch.equal(a, spatial_discount(8, 8, 0.9))


def test_box_masks_are_made_on_the_requested_device_from_the_same_draws():
    from course_lib.masks import random_box_mask
    cpu, boxes = random_box_mask(2, 64, 64, 32, 32, max_delta=8, generator=7)
    meta, boxes_meta = random_box_mask(2, 64, 64, 32, 32, max_delta=8, generator=7, device=torch.device("meta"))
    assert meta.device.type == "meta" and meta.shape == cpu.shape and boxes == boxes_meta


# ----------------------------------------------------------------------------- the flow picture

def test_the_flow_picture_is_drawn_only_for_the_images_that_show_it(tmp_path, monkeypatch):
    calls = []
    real = flow_mod.flow_to_color
    import course_lib.attention as attention_mod
    monkeypatch.setattr(attention_mod, "flow_to_color", lambda *a, **k: calls.append(1) or real(*a, **k))
    trainer = Trainer(_toy(critic_steps=2), tmp_path / "run")
    trainer.train_step()
    assert calls == []  # 2 critic forwards + 1 generator forward: no picture
    path = trainer.save_images()
    assert len(calls) == 1
    from PIL import Image
    size = trainer.config.image_size
    assert Image.open(path).size[0] == 5 * (size + 2) + 2  # input | coarse | refined | flow | real
    with flow_mod.flow_pictures(False):
        assert not flow_mod.pictures_enabled()
    assert flow_mod.pictures_enabled()


def test_flow_to_color_without_boolean_indexing_matches_the_release_rule():
    offsets = torch.tensor([[[[0.0, 3.0], [2e7, -1.0]], [[0.0, 0.0], [5.0, float("nan")]]]])  # (1, 2, 2, 2)
    img = flow_mod.flow_to_color(offsets)
    assert torch.allclose(img[0, :, 0, 0], torch.ones(3))  # zero offset: white
    assert torch.allclose(img[0, :, 1, 0], torch.ones(3))  # |u| > 1e7: unknown, drawn as zero flow
    assert torch.allclose(img[0, :, 1, 1], -torch.ones(3))  # NaN: black
    # down (+row) at full radius is red (255, 0, 0): the first colour of the wheel
    assert torch.allclose(img[0, :, 0, 1], torch.tensor([1.0, -1.0, -1.0]))


# ----------------------------------------------------------------------------- critics in float32

@pytest.mark.parametrize("cls, size", [(LocalCritic, 16), (GlobalCritic, 32)])
def test_the_critics_dense_layer_runs_in_float32_under_bf16_autocast(cls, size):
    torch.manual_seed(0)
    critic = cls(4, size=size)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = critic.features(x)
        out = critic(x)
    assert feats.dtype == torch.bfloat16  # autocast is really on for the convs
    assert out.dtype == torch.float32
    by_hand = flatten_nhwc(feats).float() @ critic.fc.weight.t() + critic.fc.bias  # float32 dense layer
    assert torch.allclose(out, by_hand, rtol=1e-6, atol=1e-6)
    assert critic(x).dtype == torch.float32  # and without autocast as before


# ----------------------------------------------------------------------------- channels_last

def _nhwc(x):
    return x.contiguous(memory_format=torch.channels_last)


def test_the_x2_upsample_keeps_channels_last_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 7)
    y_ref = resize_nearest_reference(x, (12, 14))
    xc = _nhwc(x).requires_grad_(True)
    y = resize_nearest(xc, (12, 14))
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, y_ref)
    g = torch.randn_like(y_ref)
    (y * g).sum().backward()
    by_hand = g.view(2, 5, 6, 2, 7, 2).sum(dim=(3, 5))  # each input pixel feeds a 2x2 block
    assert torch.allclose(xc.grad, by_hand, atol=1e-6)


def test_the_fast_upsample_conv_keeps_channels_last():
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 6, 5, 4), torch.randn(3, 6, 3, 3), torch.randn(3)
    reference = same_conv2d(resize_nearest_reference(x, (10, 8)), w, b)  # the release's gen_deconv
    out = upsample_conv2d(_nhwc(x), _nhwc(w), b)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, reference, atol=1e-5)
    assert torch.allclose(upsample_conv2d(x, w, b), reference, atol=1e-5)


def test_the_stage_input_keeps_channels_last():
    x = _nhwc(torch.rand(2, 3, 8, 8))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:5, 3:6] = 1
    h = stage_input(x, mask)
    assert h.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(h[:, :3], x) and torch.equal(h[:, 3], torch.ones(2, 8, 8))
    assert torch.equal(h[:, 4:], mask.expand(2, 1, 8, 8))


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast-path"])
def test_every_generator_layer_stays_channels_last(fast):
    torch.manual_seed(0)
    g = Generator(4)
    use_fast_path(g, enabled=fast)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:22] = 1
    expected = g(x, mask)
    g = g.to(memory_format=torch.channels_last)
    lost = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: lost.append(n) if not
                                     o.is_contiguous(memory_format=torch.channels_last) else None)
             for n, m in g.named_modules() if n.count(".") == 1]  # coarse.conv1 .. refine.allconv17
    got = g(_nhwc(x), mask)
    for h in hooks:
        h.remove()
    assert len(hooks) > 30 and lost == []
    for a, b in zip(expected[:2], got[:2]):
        assert torch.allclose(a, b, atol=1e-5)  # another conv kernel: float rounding only


# ----------------------------------------------------------------------------- deterministic switch

def test_the_deterministic_switch_sets_and_restores_every_flag(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = set_deterministic(True)
    try:
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        before.restore()
    assert torch.are_deterministic_algorithms_enabled() == before.algorithms
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_a_missing_deterministic_kernel_is_one_sentence():
    err = RuntimeError("adaptive_max_pool2d_backward_cuda does not have a deterministic implementation, but you "
                       "set 'torch.use_deterministic_algorithms(True)'. ...")
    text = explain_nondeterministic_error(err)
    assert "adaptive_max_pool2d_backward_cuda" in text and "--deterministic" in text
    assert explain_nondeterministic_error(RuntimeError("something else")) is None
    assert explain_nondeterministic_error(ValueError("does not have a deterministic implementation")) is None


def test_training_with_the_deterministic_switch_on_the_cpu_gives_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    plain = Trainer(_toy(critic_steps=1), tmp_path / "plain")
    plain.train_step()
    state = set_deterministic(False)
    try:
        det = Trainer(_toy(critic_steps=1, deterministic=True), tmp_path / "det")
        assert torch.are_deterministic_algorithms_enabled()
        det.train_step()
    finally:
        state.restore()
    for a, b in zip(plain.generator.parameters(), det.generator.parameters()):
        assert torch.equal(a, b)


def test_the_command_line_switches_map_to_config_keys():
    args = build_parser().parse_args(["--out", "runs/x", "--deterministic", "--mirror", "/drive/runs/x"])
    assert _data_overrides(args) == ["mirror_dir=/drive/runs/x", "deterministic=true"]


# ----------------------------------------------------------------------------- checkpoint mirror

def test_mirror_checkpoint_replaces_one_file_atomically(tmp_path, monkeypatch):
    src = tmp_path / "step_00000001.pt"
    src.write_bytes(b"first" * 1000)
    mirror = tmp_path / "drive"
    target = ckpt_io.mirror_checkpoint(src, mirror)
    assert target == mirror / "latest.pt" and target.read_bytes() == src.read_bytes()
    src2 = tmp_path / "step_00000002.pt"
    src2.write_bytes(b"second" * 1000)

    def cut_short(a, b, length=0):
        b.write(a.read(10))
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ckpt_io.shutil, "copyfileobj", cut_short)
    with pytest.raises(OSError):
        ckpt_io.mirror_checkpoint(src2, mirror)
    assert target.read_bytes() == src.read_bytes()  # the previous copy is whole
    assert sorted(p.name for p in mirror.iterdir()) == ["latest.pt"]  # no temporary file left
    monkeypatch.undo()
    ckpt_io.mirror_checkpoint(src2, mirror)
    assert target.read_bytes() == src2.read_bytes() and ckpt_io.mirrored_checkpoint(mirror) == target
    assert ckpt_io.mirrored_checkpoint(tmp_path / "nothing") is None


def test_a_fresh_machine_resumes_from_the_mirror(tmp_path):
    local, drive = tmp_path / "local" / "run", tmp_path / "drive" / "run"
    config = _toy(critic_steps=1, snapshot_every=1, keep_last=1, mirror_dir=str(drive))
    first = Trainer(config, local)
    first.fit(max_iters=3)
    assert sorted(p.name for p in drive.iterdir()) == ["latest.pt", "log.csv"]  # one checkpoint, never pruned
    newest = ckpt_io.latest_checkpoint(local)
    assert newest.name == "step_00000003.pt"
    assert (drive / "latest.pt").read_bytes() == newest.read_bytes()
    shutil.rmtree(tmp_path / "local")  # a new Colab VM: the local disk is empty
    again = Trainer(config, local, resume="auto")
    assert again.step == 3 and again.resumed_from == drive / "latest.pt"
    assert len((local / "log.csv").read_text().splitlines()) == 1 + 3  # the log came back with it
    for a, b in zip(first.generator.parameters(), again.generator.parameters()):
        assert torch.equal(a, b)


def test_a_failed_mirror_copy_is_a_warning_and_training_goes_on(tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the mirror folder should be")
    config = _toy(critic_steps=1, snapshot_every=1, mirror_dir=str(blocker), progress="print")
    result = Trainer(config, tmp_path / "run").fit(max_iters=1)
    assert result.status == "finished" and result.checkpoint.is_file()
    assert "could not copy step_00000001.pt to the mirror" in capsys.readouterr().out


# ----------------------------------------------------------------------------- data position across GPU counts

class _Numbers(torch.utils.data.Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        return torch.full((3, 8, 8), float(i))


def _ids(batch):
    return [int(v) for v in batch[:, 0, 0, 0]]


def test_the_data_position_is_counted_over_all_processes():
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(5 + 0)).tolist()  # seed + epoch
    one = BatchStream(_Numbers(), 3, seed=5)
    assert _ids(one.next()) == perm[0:3] and _ids(one.next()) == perm[3:6]  # one process: the permutation
    ranks = [BatchStream(_Numbers(), 3, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(2):  # two global batches of 2 x 3 samples
        got = [_ids(s.next()) for s in ranks]
    assert got == [perm[6:9], perm[9:12]]
    state = ranks[0].state_dict()
    assert state["global_index"] == 12 and state["index"] == 6 and state["world_size"] == 2
    resumed = BatchStream(_Numbers(), 3, seed=5)  # the same run resumed on one GPU
    resumed.load_state_dict(state, world_size=2)
    assert _ids(resumed.next()) == perm[12:15]  # the next unseen samples, none skipped or repeated
    three = [BatchStream(_Numbers(), 2, seed=5, rank=r, world_size=3) for r in range(3)]
    for s in three:
        s.load_state_dict(state, world_size=2)
    assert [_ids(s.next()) for s in three] == [perm[12:14], perm[14:16], perm[16:18]]


def test_an_old_checkpoint_position_counted_per_rank_is_converted():
    stream = BatchStream(_Numbers(), 2, seed=0)
    stream.load_state_dict({"epoch": 1, "index": 4, "seed": 0}, world_size=2)  # 4 per rank, 2 ranks
    assert (stream.epoch, stream.global_index) == (1, 8)


# ----------------------------------------------------------------------------- messages and small helpers

ROOT = Path(__file__).resolve().parents[1]


def test_the_out_of_memory_message_points_at_the_readme_table_labelled_estimate():
    from course_lib.train import out_of_memory_advice
    heading = "Throughput and memory per batch size on a GPU"
    text = out_of_memory_advice(load_config("places2"), "cuda")
    assert heading in text and "estimate" in text and "--set batch_size=8" in text
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"### {heading}")[1].split("\n## ")[0].split("\n### ")[0]
    assert "Nothing below is measured yet" in section and "ESTIMATE" in section
    assert all(f"| {b} |" in section for b in (8, 16, 32, 64))


def test_a_missing_deterministic_kernel_during_training_is_a_value_error(tmp_path, monkeypatch):
    trainer = Trainer(_toy(), tmp_path / "run")

    def no_kernel():
        raise RuntimeError("upsample_bilinear2d_backward_out_cuda does not have a deterministic implementation")
    monkeypatch.setattr(trainer, "train_step", no_kernel)
    with pytest.raises(ValueError, match="deterministic=true, but the operation upsample_bilinear2d_backward"):
        trainer.fit(max_iters=1)


def test_several_flags_are_reduced_together_in_one_process():
    from course_lib.distributed import DistInfo, all_reduce_flags
    assert all_reduce_flags([True, False, True], DistInfo()) == [True, False, True]
