"""TrainConfig: release defaults, shipped JSON configs, --set overrides and their errors."""
import json

import pytest

from course_lib.config import TrainConfig, apply_overrides, available_configs, load_config, parse_override


def test_defaults_are_the_release_setup():
    c = TrainConfig()
    assert (c.lr, c.betas, c.critic_steps, c.batch_size, c.image_size) == (1e-4, (0.5, 0.9), 5, 16, 256)
    assert (c.hole_size, c.max_delta, c.margin, c.gamma) == (128, 32, 0, 0.9)
    assert (c.l1_loss_alpha, c.ae_loss_alpha, c.gan_loss_alpha) == (1.2, 1.2, 0.001)
    assert (c.wgan_gp_lambda, c.global_wgan_loss_alpha, c.cnum, c.critic_cnum) == (10.0, 1.0, 32, 64)
    assert c.amp == "off" and c.coarse_only is False and c.snapshot_every == 10_000


def test_shipped_configs_load_and_round_trip(tmp_path):
    assert {"toy_cpu", "celeba", "celebahq", "places2"} <= set(available_configs())
    for name in ("celeba", "celebahq", "places2"):
        c = load_config(name)
        assert c.data == name and c.batch_size == 16 and c.image_size == 256 and c.hole_size == 128
    toy = load_config("toy_cpu")
    assert toy.data == "toy" and toy.image_size == 64 and toy.hole_size == 32 and toy.cnum == 8
    toy.save(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["betas"] == [0.5, 0.9]
    assert load_config(tmp_path / "c.json") == toy


def test_overrides_are_type_checked():
    c = load_config("places2", ["batch_size=8", "lr=2e-4", "amp=bf16", "coarse_only=true", "betas=0.0,0.99"])
    assert (c.batch_size, c.lr, c.amp, c.coarse_only, c.betas) == (8, 2e-4, "bf16", True, (0.0, 0.99))
    assert c.ema_decay == 0.0  # the release evaluates the last step's weights
    assert load_config("toy_cpu", ["ema_decay=0.99"]).ema_decay == 0.99
    c2 = apply_overrides(c, {"max_iters": "1e3"})
    assert c2.max_iters == 1000 and isinstance(c2.max_iters, int) and c.max_iters == 1_000_000


@pytest.mark.parametrize("text, error, words", [
    ("batch_sise=8", KeyError, ["batch_sise", "batch_size", "valid keys"]),
    ("batch_size=eight", TypeError, ["batch_size", "integer"]),
    ("batch_size=2.5", TypeError, ["batch_size", "integer"]),
    ("lr=fast", TypeError, ["lr", "number"]),
    ("coarse_only=maybe", TypeError, ["coarse_only", "true or false"]),
    ("amp=fp8", ValueError, ["amp", "bf16"]),
    ("betas=0.5", TypeError, ["betas", "0.5,0.9"]),
    ("image_size=100", ValueError, ["multiple of 8"]),
    ("hole_size=300", ValueError, ["hole_size"]),
    ("batch_size", ValueError, ["KEY=VALUE"]),
    ("ema_decay=1", ValueError, ["ema_decay", "[0, 1)", "0.995"]),
    ("ema_decay=-0.5", ValueError, ["ema_decay", "0 turns"]),
    ("ema_decay=nan", ValueError, ["ema_decay"]),
])
def test_bad_overrides_say_what_and_how(text, error, words):
    with pytest.raises(error) as info:
        load_config("toy_cpu", [text])
    message = str(info.value)
    for word in words:
        assert word in message


def test_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="toy_cpu"):
        load_config("imagenet")
    with pytest.raises(KeyError, match="valid keys"):
        TrainConfig.from_dict({"batchsize": 3})
    assert parse_override("batch-size=4") == ("batch_size", "4")
