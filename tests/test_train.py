"""The trainer: exact resume, NaN stop, Ctrl-C save, CSV log, AMP-safe gradient penalty."""
import csv
import os
import signal

import pytest
import torch

from course_lib import checkpoint as C
from course_lib.config import TrainConfig
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.losses import LossWeights, critic_loss
from course_lib.train import LOG_COLUMNS, NonFiniteLossError, Trainer


def tiny(**overrides) -> TrainConfig:
    values = dict(data="toy", toy_size=24, val_images=0, image_size=32, hole_size=16, max_delta=4,
                  cnum=4, critic_cnum=4, batch_size=2, critic_steps=2, max_iters=6, snapshot_every=100,
                  keep_last=5, image_every=1000, val_every=1000, log_every=1000, progress="none",
                  tensorboard=False, device="cpu", seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def all_state(trainer):
    state = {}
    if trainer.ema is not None:
        state.update({f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()})
        state["ema.num_updates"] = torch.tensor(trainer.ema.num_updates)
    for name in ("generator", "local_critic", "global_critic"):
        state.update({f"{name}.{k}": v for k, v in getattr(trainer, name).state_dict().items()})
    for name in ("opt_g", "opt_d"):
        for pid, s in getattr(trainer, name).state_dict()["state"].items():
            state.update({f"{name}.{pid}.{k}": v for k, v in s.items()})
    return state


def read_log(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_three_steps_resume_three_steps_is_bit_identical_to_six(tmp_path, ema_decay):
    straight = Trainer(tiny(ema_decay=ema_decay), tmp_path / "a")
    assert straight.fit().status == "finished"

    first = Trainer(tiny(max_iters=3, ema_decay=ema_decay), tmp_path / "b")
    first.fit()
    assert C.latest_checkpoint(tmp_path / "b").name == "step_00000003.pt"
    resumed = Trainer(tiny(ema_decay=ema_decay), tmp_path / "b", resume=True)
    assert resumed.step == 3 and resumed.stream.state_dict()["index"] > 0
    result = resumed.fit()
    assert result.step == 6

    a, b = all_state(straight), all_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The CSV log has every step once, with the same losses as the straight run.
    rows_a, rows_b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [r["step"] for r in rows_b] == ["1", "2", "3", "4", "5", "6"]
    for ra, rb in zip(rows_a, rows_b):
        assert {k: ra[k] for k in ra if k != "seconds"} == {k: rb[k] for k in rb if k != "seconds"}


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    Trainer(tiny(max_iters=2, snapshot_every=1, keep_last=1), tmp_path).fit()
    files = C.list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in files] == ["step_00000002.pt"]  # keep_last = 1
    ckpt = torch.load(files[0], weights_only=True)
    assert ckpt["format_version"] == C.FORMAT_VERSION and ckpt["step"] == 2
    for key in ("generator", "local_critic", "global_critic", "opt_g", "opt_d", "rng", "data", "config"):
        assert key in ckpt
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch", "cuda", "masks"}
    assert set(ckpt["data"]) == {"epoch", "index", "global_index", "world_size", "seed"}
    assert TrainConfig.from_dict(ckpt["config"]).cnum == 4
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["generator"])


def test_csv_log_has_every_loss_every_step(tmp_path):
    Trainer(tiny(max_iters=2, image_every=2), tmp_path).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == LOG_COLUMNS
    rows = read_log(tmp_path)
    assert len(rows) == 2
    for key in ("d_loss", "gp_loss", "g_loss", "l1_loss", "ae_loss", "g_total", "d_total"):
        assert all(float(r[key]) == float(r[key]) for r in rows)  # present and not NaN
    assert (tmp_path / "images" / "step_00000002.png").is_file()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Trainer(tiny(snapshot_every=2), tmp_path)
    real = trainer._generator_losses

    def poisoned(*args):
        losses = real(*args)
        if trainer.step == 3:  # during step 4
            losses["l1_loss"] = losses["l1_loss"] * float("nan")
        return losses

    trainer._generator_losses = poisoned
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    assert "l1_loss=nan" in message and "step 4" in message and "step_00000002.pt" in message
    assert [p.name for p in C.list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002.pt"]
    good = C.load_checkpoint(tmp_path)
    assert good["step"] == 2
    assert all(torch.isfinite(v).all() for v in good["generator"].values())
    assert [r["step"] for r in read_log(tmp_path)] == ["1", "2", "3"]


def test_keyboard_interrupt_inside_a_step_saves_a_checkpoint(tmp_path):
    trainer = Trainer(tiny(), tmp_path)
    real = trainer._critic_losses

    def interrupted(*args):
        if trainer.step == 1:
            raise KeyboardInterrupt
        return real(*args)

    trainer._critic_losses = interrupted
    result = trainer.fit()
    assert result.status == "interrupted" and result.step == 1
    assert C.load_checkpoint(tmp_path)["step"] == 1


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_sigint_finishes_the_step_then_saves(tmp_path, inherited):
    # The suite may run with SIGINT ignored (nohup, a background job, some CI runners): the
    # trainer must restore whatever handler it found, not Python's default one.
    before = signal.signal(signal.SIGINT, signal.default_int_handler if inherited == "default" else signal.SIG_IGN)
    try:
        _sigint_run(tmp_path)
    finally:
        signal.signal(signal.SIGINT, before)


def _sigint_run(tmp_path):
    found = signal.getsignal(signal.SIGINT)
    trainer = Trainer(tiny(), tmp_path)
    real = trainer._critic_losses
    pressed = []

    def ctrl_c(*args):
        if trainer.step == 1 and not pressed:
            pressed.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # one Ctrl-C: the handler only sets a flag
        return real(*args)

    trainer._critic_losses = ctrl_c
    result = trainer.fit()
    assert result.status == "stopped" and result.step == 2
    assert C.load_checkpoint(tmp_path)["step"] == 2
    assert signal.getsignal(signal.SIGINT) is found  # the handler it found is restored


def test_bf16_autocast_gradient_penalty_is_finite_and_close_to_fp32():
    torch.manual_seed(1)
    local, glob = LocalCritic(4, size=16), GlobalCritic(4, size=32)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    x2 = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 4:20, 10:26] = 1
    bbox = (4, 10, 16, 16)

    def run(amp):
        for p in list(local.parameters()) + list(glob.parameters()):
            p.grad = None
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else None
        kwargs = {"autocast": ctx} if amp else {}
        out = critic_loss(x, x2, mask, bbox, local, glob, weights=LossWeights(),
                          generator=torch.Generator().manual_seed(2), **kwargs)
        out["total"].backward()  # the penalty's double backward
        grads = torch.cat([p.grad.flatten() for p in list(local.parameters()) + list(glob.parameters())])
        return out, grads

    fp32, g32 = run(False)
    bf16, g16 = run(True)
    for key in ("gp_local", "gp_global", "d_loss", "total"):
        assert torch.isfinite(bf16[key]) and bf16[key].dtype == torch.float32
    torch.testing.assert_close(bf16["gp_loss"], fp32["gp_loss"], rtol=1e-5, atol=1e-6)  # GP itself in fp32
    torch.testing.assert_close(bf16["total"], fp32["total"], rtol=2e-2, atol=2e-2)
    assert torch.isfinite(g16).all()
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


def test_bf16_training_step_and_coarse_only_on_cpu(tmp_path):
    t = Trainer(tiny(max_iters=1, amp="bf16", critic_steps=1), tmp_path / "amp")
    row = t.train_step()
    assert all(v == v and abs(v) != float("inf") for v in row.values())

    t = Trainer(tiny(max_iters=1, coarse_only=True, critic_steps=1), tmp_path / "coarse")
    before = {k: v.clone() for k, v in t.generator.refine.state_dict().items()}
    coarse_before = t.generator.coarse.conv1.weight.clone()
    t.train_step()
    assert all(torch.equal(before[k], v) for k, v in t.generator.refine.state_dict().items())
    assert not torch.equal(coarse_before, t.generator.coarse.conv1.weight)


def test_validation_metrics_on_fixed_images(tmp_path):
    t = Trainer(tiny(val_images=3), tmp_path)
    first, second = t.validate(), t.validate()
    assert {"psnr", "hole_psnr", "l1", "ssim"} <= set(first)
    assert first == second  # same images, same masks, same weights


def test_resume_refuses_a_different_model_size(tmp_path):
    Trainer(tiny(max_iters=1), tmp_path).fit()
    with pytest.raises(ValueError, match="cnum 4 \\(checkpoint\\) vs 8"):
        Trainer(tiny(cnum=8), tmp_path, resume=True)


def test_weight_average_follows_the_generator_step_by_step(tmp_path):
    t = Trainer(tiny(ema_decay=0.6), tmp_path)
    average = {k: v.clone().double() for k, v in t.generator.state_dict().items()}  # the initial weights
    for n in range(1, 4):
        t.train_step()
        d = min(0.6, (1 + n) / (10 + n))  # TF's warm-up rule, worked out here independently
        for k, w in t.generator.state_dict().items():
            average[k] = d * average[k] + (1 - d) * w.double()
    assert t.ema.num_updates == 3
    for k, v in t.ema.module.state_dict().items():
        torch.testing.assert_close(v.double(), average[k], rtol=0, atol=1e-6)
    weights = t.generator.state_dict()
    assert any(not torch.equal(v, weights[k]) for k, v in t.ema.module.state_dict().items())
    assert t.eval_generator is t.ema.module


def test_without_ema_the_trained_generator_is_evaluated(tmp_path):
    t = Trainer(tiny(), tmp_path)
    assert t.ema is None and t.eval_generator is t.generator
    t.fit(max_iters=1)
    assert "generator_ema" not in torch.load(C.latest_checkpoint(tmp_path), weights_only=True)


def test_validation_and_export_use_the_weight_average(tmp_path):
    t = Trainer(tiny(ema_decay=0.5, val_images=3, max_iters=2), tmp_path / "ema")
    t.fit()
    # A run without an average whose generator holds the averaged weights must score the same.
    plain = Trainer(tiny(val_images=3), tmp_path / "plain")
    plain.generator.load_state_dict(t.ema.module.state_dict())
    assert t.validate() == plain.validate()
    assert t.generator.training  # validation leaves the trained generator in train mode

    path = t.export_generator(tmp_path / "g.pt")
    exported = torch.load(path, weights_only=True)["generator"]
    for k, v in t.ema.module.state_dict().items():
        assert torch.equal(exported[k], v), k
    ckpt = torch.load(C.latest_checkpoint(tmp_path / "ema"), weights_only=True)
    assert ckpt["generator_ema"]["num_updates"] == 2
    averaged, raw = C.generator_state_dict(ckpt), C.generator_state_dict(ckpt, ema=False)
    key = "coarse.conv1.weight"
    assert torch.equal(averaged[key], t.ema.module.state_dict()[key])
    assert torch.equal(raw[key], t.generator.state_dict()[key])
    assert not torch.equal(averaged[key], raw[key])
    from course_lib.evaluate import load_generator_and_config  # what `evaluate` loads from a run folder
    loaded, _ = load_generator_and_config(tmp_path / "ema")
    assert torch.equal(loaded.state_dict()[key], averaged[key])


def test_resuming_a_run_without_average_starts_it_from_the_checkpoint(tmp_path, capsys):
    Trainer(tiny(max_iters=2), tmp_path).fit()
    t = Trainer(tiny(max_iters=3, ema_decay=0.9, progress="print"), tmp_path, resume=True)
    assert t.ema.num_updates == 0
    for k, v in t.ema.module.state_dict().items():
        assert torch.equal(v, t.generator.state_dict()[k]), k
    t.fit()
    assert "holds no weight average" in capsys.readouterr().out
    assert t.ema.num_updates == 1
