"""python -m course_lib inpaint: one image, a folder, any size, several checkpoint kinds."""
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.__main__ import main as cli_main
from course_lib.config import TrainConfig
from course_lib.generator import Generator
from course_lib.inpaint_cli import find_mask, load_generator, main
from course_lib.train import Trainer


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    config = TrainConfig(data="toy", toy_size=8, val_images=0, image_size=32, hole_size=16, max_delta=4, cnum=4,
                         critic_cnum=4, batch_size=2, critic_steps=1, max_iters=1, progress="none",
                         tensorboard=False, device="cpu")
    trainer = Trainer(config, root / "run")
    trainer.fit()
    trainer.export_generator(root / "g.pt")
    return root


def _write_pair(img_dir, mask_dir, name, size, box, mask_name=None, seed=0):
    """A random RGB image ``img_dir/name.png`` and its box mask ``mask_dir/<mask_name>.png``."""
    rng = np.random.default_rng(seed)
    w, h = size
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img_dir / f"{name}.png")
    m = np.zeros((h, w), np.uint8)
    top, left, bh, bw = box
    m[top:top + bh, left:left + bw] = 255
    Image.fromarray(m).save(mask_dir / f"{mask_name or name}.png")


def test_single_image_of_any_size(weights, tmp_path, capsys):
    (tmp_path / "in").mkdir(), (tmp_path / "masks").mkdir()
    _write_pair(tmp_path / "in", tmp_path / "masks", "odd", (45, 37), (10, 12, 9, 14))
    out = tmp_path / "out.png"
    code = main(["--image", str(tmp_path / "in" / "odd.png"), "--mask", str(tmp_path / "masks" / "odd.png"),
                 "--checkpoint", str(weights / "run"), "--output", str(out)])
    assert code == 0 and out.is_file()
    src = np.asarray(Image.open(tmp_path / "in" / "odd.png"))
    res = np.asarray(Image.open(out))
    assert res.shape == src.shape == (37, 45, 3)
    known = np.ones((37, 45), bool)
    known[10:19, 12:26] = False
    assert np.array_equal(res[known], src[known])  # only the hole changes
    assert not np.array_equal(res[~known], src[~known])
    assert "->" in capsys.readouterr().out


def test_folder_mode_matches_mask_names(weights, tmp_path):
    for d in ("imgs", "masks"):
        (tmp_path / d).mkdir()
    _write_pair(tmp_path / "imgs", tmp_path / "masks", "a", (40, 32), (4, 4, 10, 10))
    _write_pair(tmp_path / "imgs", tmp_path / "masks", "b", (64, 48), (20, 30, 12, 8), mask_name="b_mask", seed=1)
    assert find_mask(tmp_path / "imgs" / "b.png", tmp_path / "masks").name == "b_mask.png"
    code = main(["--image", str(tmp_path / "imgs"), "--mask", str(tmp_path / "masks"),
                 "--checkpoint", str(weights / "g.pt"), "--output", str(tmp_path / "out")])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "out" / "b.png").size == (64, 48)


def test_missing_mask_is_a_clear_error(weights, tmp_path, capsys):
    (tmp_path / "imgs").mkdir(), (tmp_path / "masks").mkdir()
    _write_pair(tmp_path / "imgs", tmp_path, "c", (16, 16), (2, 2, 4, 4))
    code = cli_main(["inpaint", "--image", str(tmp_path / "imgs"), "--mask", str(tmp_path / "masks"),
                     "--checkpoint", str(weights / "g.pt"), "--output", str(tmp_path / "out")])
    assert code == 2
    assert "no mask for c.png" in capsys.readouterr().err


def test_load_generator_reads_trainer_and_exported_weights_alike(weights):
    a = load_generator(weights / "run" / "checkpoints" / "step_00000001.pt")
    b = load_generator(weights / "g.pt")
    assert isinstance(a, Generator) and a.cnum == 4 and not a.training
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(weights / "nope.pt")


def test_load_generator_reads_official_tf_checkpoints_and_converted_files(tmp_path):
    from pathlib import Path

    from course_lib.convert import main as convert_main
    from course_lib.tf_checkpoint import read_checkpoint

    fixture = Path(__file__).parent / "fixtures" / "tf_small"
    official = read_checkpoint(fixture)
    from_folder = load_generator(fixture)
    from_prefix = load_generator(fixture / "snap-0")
    assert convert_main([str(fixture), str(tmp_path / "small.pt")]) == 0
    from_converted = load_generator(tmp_path / "small.pt")
    # conv1's kernel, HWIO in TF -> OIHW here, with the image channels reversed (BGR -> RGB)
    expected = torch.from_numpy(official["inpaint_net/conv1/kernel"]).permute(3, 2, 0, 1)  # (O, I, k, k)
    expected = torch.cat([expected[:, :3].flip(1), expected[:, 3:]], dim=1)
    for g in (from_folder, from_prefix, from_converted):
        assert isinstance(g, Generator) and not g.training
        torch.testing.assert_close(g.coarse.conv1.weight, expected)


def test_the_bundled_toy_weights_are_found_and_load():
    from course_lib.samples import toy_weights
    path = toy_weights()
    assert path.name == "toy_cpu.pt" and path.is_file()
    assert load_generator(path).cnum == 8


def test_mode_is_chosen_and_printed(weights, tmp_path, capsys):
    (tmp_path / "in").mkdir(), (tmp_path / "masks").mkdir()
    _write_pair(tmp_path / "in", tmp_path / "masks", "big", (400, 300), (100, 150, 40, 60))
    args = ["--image", str(tmp_path / "in" / "big.png"), "--mask", str(tmp_path / "masks" / "big.png"),
            "--checkpoint", str(weights / "g.pt")]
    assert main([*args, "--output", str(tmp_path / "a.png")]) == 0
    assert "(exact, whole 400x300 image)" in capsys.readouterr().out
    assert main([*args, "--output", str(tmp_path / "c.png"), "--mode", "crop"]) == 0
    # crop mode works at the model's training size, read from its checkpoint (32 px here; 256 for the official weights)
    assert "(crop, window 120x120 at (x=120, y=60), run at 32x32)" in capsys.readouterr().out
    assert main([*args, "--output", str(tmp_path / "t.png"), "--memory-gb", "0.0001"]) == 0  # auto: too big
    assert "(crop, window" in capsys.readouterr().out
    src, out = np.asarray(Image.open(tmp_path / "in" / "big.png")), np.asarray(Image.open(tmp_path / "c.png"))
    known = np.ones((300, 400), bool)
    known[100:140, 150:210] = False
    assert np.array_equal(out[known], src[known])
    assert cli_main(["inpaint", *args, "--output", str(tmp_path / "x.png"), "--memory-gb", "0"]) == 2
    assert "--memory-gb must be positive" in capsys.readouterr().err
