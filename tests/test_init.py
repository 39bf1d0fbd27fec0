"""train --init (fine-tuning from other weights) and the one loader that decides which weights a path gives."""
import pytest
import torch

from course_lib import checkpoint as C
from course_lib.__main__ import main as cli_main
from course_lib.config import TrainConfig
from course_lib.pretrained import load_pretrained, load_pretrained_critics, load_weights
from course_lib.train import Trainer

from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "tf_small"  # official layout: cnum 4, critics 4 on 32 / 64 px


def tiny(**overrides) -> TrainConfig:
    """The fixture's sizes: generator cnum 4, critics cnum 4, 32x32 hole box, 64x64 images."""
    values = dict(data="toy", toy_size=16, val_images=0, image_size=64, hole_size=32, max_delta=4,
                  cnum=4, critic_cnum=4, batch_size=2, critic_steps=1, max_iters=2, snapshot_every=100,
                  keep_last=5, image_every=1000, val_every=1000, log_every=1000, progress="none",
                  tensorboard=False, device="cpu", seed=3, ema_decay=0.0)
    values.update(overrides)
    return TrainConfig(**values)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_initialised_from_the_fixture_starts_from_exactly_its_weights_and_trains(tmp_path, capsys):
    official = load_pretrained(FIXTURE)
    local, glob = load_pretrained_critics(FIXTURE)
    t = Trainer(tiny(progress="print", ema_decay=0.9), tmp_path / "run", init=FIXTURE)
    assert _same(t.generator, official) and _same(t.local_critic, local) and _same(t.global_critic, glob)
    assert _same(t.ema.module, official)  # the average starts from the same weights
    assert t.step == 0 and not t.opt_g.state and not t.opt_d.state  # fresh optimisers
    result = t.fit()
    assert result.step == 2 and "initialised generator from the official weights" in capsys.readouterr().out
    assert not _same(t.generator, official) and not _same(t.local_critic, local)  # it trained
    assert all(torch.isfinite(p).all() for p in t.generator.parameters())
    ckpt = C.load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 2 and ckpt["opt_g"]["state"]  # a normal run from here: --resume works


def test_init_refuses_an_architecture_mismatch_in_one_sentence(tmp_path):
    with pytest.raises(ValueError, match=r"generator has cnum 4 but the run's config has cnum 8; use --set cnum=4"):
        Trainer(tiny(cnum=8), tmp_path / "a", init=FIXTURE)
    with pytest.raises(ValueError, match=r"local critic has cnum 4 .* critic_cnum 8"):
        Trainer(tiny(critic_cnum=8), tmp_path / "b", init=FIXTURE)
    with pytest.raises(ValueError, match=r"local critic was trained on 32x32 inputs but the run's hole_size is 16"):
        Trainer(tiny(hole_size=16), tmp_path / "c", init=FIXTURE)
    with pytest.raises(ValueError, match=r"global critic was trained on 64x64 inputs but the run's image_size is 128"):
        Trainer(tiny(image_size=128), tmp_path / "d", init=FIXTURE)
    v2 = Path(__file__).parents[1] / "course_lib" / "weights" / "toy_coarse_gated_strokes.pt"
    with pytest.raises(ValueError, match=r"DeepFill v2, gated.*not a full DeepFill v1 generator"):
        Trainer(tiny(), tmp_path / "e", init=v2)
    # with --fresh-critics, other sizes are fine: only the generator is copied
    t = Trainer(tiny(image_size=128, hole_size=64), tmp_path / "f", init=FIXTURE, fresh_critics=True)
    assert _same(t.generator, load_pretrained(FIXTURE))


def test_init_from_an_exported_generator_needs_fresh_critics_and_a_new_folder(tmp_path):
    source = Trainer(tiny(ema_decay=0.5), tmp_path / "src")
    source.fit()
    exported = source.export_generator(tmp_path / "g.pt")
    with pytest.raises(ValueError, match=r"holds no critics .*pass --fresh-critics"):
        Trainer(tiny(), tmp_path / "new", init=exported)
    t = Trainer(tiny(), tmp_path / "new", init=exported, fresh_critics=True)
    assert _same(t.generator, source.ema.module)  # the exported weights are the average
    assert _same(Trainer(tiny(), tmp_path / "new2", init=exported, fresh_critics=True).local_critic,
                 Trainer(tiny(), tmp_path / "new3").local_critic)  # the seeded fresh critics
    # no critics needed when the run has no adversarial term
    Trainer(tiny(gan_loss_alpha=0.0), tmp_path / "new4", init=exported)
    with pytest.raises(ValueError, match=r"already holds checkpoints.*--resume"):
        Trainer(tiny(), tmp_path / "src", init=FIXTURE)


def test_cli_init(tmp_path, capsys):
    sizes = ["--set", "cnum=4", "--set", "critic_cnum=4", "--set", "image_size=64", "--set", "hole_size=32",
             "--set", "toy_size=8", "--set", "batch_size=2", "--set", "max_iters=1", "--set", "val_images=0",
             "--set", "progress=none", "--set", "tensorboard=false"]
    assert cli_main(["train", "--config", "toy_cpu", *sizes, "--init", str(FIXTURE), "--out", str(tmp_path / "r")]) == 0
    assert C.load_checkpoint(tmp_path / "r")["step"] == 1
    capsys.readouterr()
    assert cli_main(["train", "--config", "toy_cpu", "--init", str(FIXTURE), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "cnum 4 but the run's config has cnum 8" in err and "Traceback" not in err
    # without --config: the release's sizes for official weights, the run's own config for a run
    assert cli_main(["train", "--init", str(FIXTURE), "--out", str(tmp_path / "r3"), "--print-config"]) == 0
    assert '"cnum": 32' in capsys.readouterr().out
    assert cli_main(["train", "--init", str(tmp_path / "r"), "--out", str(tmp_path / "r4"), "--print-config"]) == 0
    assert '"cnum": 4' in capsys.readouterr().out


def test_one_loader_gives_the_same_weights_to_every_command(tmp_path):
    """A run folder, its step file, load_pretrained, inpaint, evaluate and --export: the weight average."""
    from course_lib.evaluate import load_generator_and_config
    from course_lib.inpaint_cli import load_generator
    t = Trainer(tiny(ema_decay=0.5, image_size=32, hole_size=16), tmp_path / "run")
    t.fit()
    step_file = C.latest_checkpoint(tmp_path / "run")
    ckpt = torch.load(step_file, weights_only=True)
    average, raw = ckpt["generator_ema"]["weights"], ckpt["generator"]
    key = "refine.allconv17.weight"
    assert not torch.equal(average[key], raw[key])  # the two candidates differ, so the test can tell
    exported = torch.load(t.export_generator(tmp_path / "g.pt"), weights_only=True)["generator"]
    models = {"load_pretrained(run)": load_pretrained(tmp_path / "run"),
              "load_pretrained(step)": load_pretrained(step_file),
              "inpaint": load_generator(tmp_path / "run"),
              "evaluate": load_generator_and_config(step_file)[0],
              "export file": load_pretrained(tmp_path / "g.pt")}
    for name, model in models.items():
        for k, v in model.state_dict().items():
            assert torch.equal(v, average[k]), (name, k)
            assert torch.equal(exported[k], average[k]), k
    assert "weight average" in load_weights(tmp_path / "run").which
    plain = Trainer(tiny(image_size=32, hole_size=16), tmp_path / "plain")
    plain.fit()
    w = load_weights(tmp_path / "plain")
    assert "no weight average" in w.which and torch.equal(w.generator[key], plain.generator.state_dict()[key])
    assert w.local_critic is not None and torch.equal(w.local_critic["conv1.weight"],
                                                      plain.local_critic.state_dict()["conv1.weight"])
    with pytest.raises(FileNotFoundError, match="holds no step_.*pt checkpoint and no TF checkpoint"):
        load_weights(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)
