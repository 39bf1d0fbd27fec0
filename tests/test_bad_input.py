"""Bad input, everywhere a user can give it: one table, one expected outcome per row.

Each row is something a user really does wrong (or unusually right) through the command line
(``python -m course_lib ...``) or the API. The expected outcome is either a clear error, one
message that names the problem and the fix and no traceback (exit code 2 on the command line),
or a correct result. ``markdown_table()`` renders the rows; README.md's "Bad input" section
holds that rendering, and ``test_readme_holds_the_table`` keeps the two in step.
"""
from __future__ import annotations

import errno
import io
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.__main__ import main as cli_main
from course_lib.checkpoint import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
TOY_WEIGHTS = REPO / "course_lib" / "weights" / "toy_cpu.pt"
TF_FIXTURE = REPO / "tests" / "fixtures" / "tf_small"

# The smallest training run the CLI accepts: two steps on 8 toy images of 32 px.
TINY_TRAIN = ["--set", "toy_size=8", "--set", "image_size=32", "--set", "hole_size=16", "--set", "max_delta=4",
              "--set", "cnum=4", "--set", "critic_cnum=4", "--set", "batch_size=2", "--set", "critic_steps=1",
              "--set", "max_iters=2", "--set", "progress=none", "--set", "tensorboard=false",
              "--set", "device=cpu", "--set", "val_images=0"]


# ----------------------------------------------------------------------------- helpers

def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run ``python -m course_lib ARGS`` in this process; (exit code, stderr)."""
    capsys.readouterr()
    rc = cli_main([str(a) for a in args])
    err = capsys.readouterr().err
    return rc, err


def expect_cli_error(capsys: pytest.CaptureFixture, pattern: str, *args: str) -> str:
    rc, err = run_cli(capsys, *args)
    assert rc == 2, f"exit code {rc} (expected 2, a user error); stderr:\n{err}"
    assert "Traceback" not in err, f"a user mistake must not print a traceback:\n{err}"
    assert re.search(pattern, err, re.S), f"the message does not say {pattern!r}:\n{err}"
    return err


def save_rgb(path: Path, h: int = 32, w: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def save_mask(path: Path, h: int = 32, w: int = 32, box: tuple[int, int, int, int] = (8, 8, 16, 16)) -> Path:
    m = np.zeros((h, w), np.uint8)
    top, left, bh, bw = box
    m[top:top + bh, left:left + bw] = 255
    Image.fromarray(m).save(path)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR that claim ``width x height`` RGB, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


class Payload:
    """Unpickling this runs ``exec``: it writes ``marker``. Loading a checkpoint must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: D105 - what a malicious checkpoint does
        return (exec, (f"open({self.marker!r}, 'w').write('the payload ran')",))


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into (chmod 555; as root, /sys), or skip."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return folder
    folder.chmod(0o755)
    probe = Path("/sys/course_lib_read_only_probe")
    try:
        probe.mkdir()
    except PermissionError:
        return Path("/sys")  # root, but sysfs refuses new entries
    except OSError:
        pass
    else:  # pragma: no cover - a writable /sys
        probe.rmdir()
    pytest.skip("no folder here is read-only for this user")


@pytest.fixture(scope="module")
def generator():
    from course_lib.inpaint_cli import load_generator
    return load_generator(TOY_WEIGHTS)


# ----------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Case:
    id: str
    where: str      # "CLI" or "API" (or both)
    given: str      # what the user gives
    expect: str     # the expected outcome, as the README states it
    run: Callable[..., None]


CASES: list[Case] = []


def case(id: str, where: str, given: str, expect: str):
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        CASES.append(Case(id, where, given, expect, fn))
        return fn
    return register


# --- image files -----------------------------------------------------------

@case("corrupt-image", "CLI", "an image file of random bytes", "error: cannot be read as an image (corrupt)")
def _(tmp_path, capsys, generator):
    bad = tmp_path / "photo.png"
    bad.write_bytes(os.urandom(2000))
    mask = save_mask(tmp_path / "mask.png")
    expect_cli_error(capsys, r"photo\.png.*cannot be read as an image.*corrupt", "inpaint", "--image", bad,
                     "--mask", mask, "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "out.png")


@case("truncated-image", "API", "a PNG cut in half (an interrupted copy)", "error: cannot be read (truncated)")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    whole = save_rgb(tmp_path / "whole.png", 64, 64).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.png.*cannot be read as an image \(truncated"):
        load_image(cut)


@case("zero-byte-image", "CLI", "a 0-byte image file", "error: an empty file (0 bytes)")
def _(tmp_path, capsys, generator):
    empty = tmp_path / "empty.jpg"
    empty.touch()
    expect_cli_error(capsys, r"empty\.jpg.*empty file \(0 bytes\)", "inpaint", "--image", empty, "--mask",
                     save_mask(tmp_path / "m.png"), "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "o.png")


@case("text-as-image", "API", "a text file named photo.jpg", "error: cannot be read as an image (not an image)")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    text = tmp_path / "photo.jpg"
    text.write_text("not a picture\n")
    with pytest.raises(ValueError, match=r"photo\.jpg.*cannot be read as an image.*not an image"):
        load_image(text)


@case("huge-png-header", "API", "a PNG header claiming 100000 x 100000 pixels",
      "error: claims more pixels than course_lib decodes; no memory is allocated")
def _(tmp_path, capsys, generator):
    import resource
    from course_lib.images import load_image
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ValueError, match=r"bomb\.png.*claims more pixels.*resize"):
        load_image(bomb)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"refusing the header grew the process by {grown_mib:.0f} MiB (3e10 bytes were claimed)"


@case("folder-as-image", "API", "a folder passed where an image file is expected", "error: is a folder, not an image file")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    with pytest.raises(IsADirectoryError, match="is a folder, not an image file"):
        load_image(tmp_path)


@case("grey-image", "API", "a greyscale (L) photo", "result: RGB with three equal channels")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "grey.png")
    rgb = np.asarray(load_image(tmp_path / "grey.png"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == np.arange(64).reshape(8, 8)).all() and (rgb[..., 0] == rgb[..., 2]).all()


@case("palette-image", "API", "a palette (P) GIF/PNG", "result: the palette's colours as RGB")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    img.save(tmp_path / "palette.png")
    rgb = np.asarray(load_image(tmp_path / "palette.png"))
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[0, 1].tolist() == [0, 0, 255]


@case("16-bit-image", "API", "a 16-bit greyscale PNG", "result: scaled to 8 bits (65535 -> 255, 32896 -> 128)")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.uint16)).save(tmp_path / "deep.png")
    rgb = np.asarray(load_image(tmp_path / "deep.png"))
    assert rgb[0, :, 0].tolist() == [255, 128, 0]


@case("cmyk-image", "API", "a CMYK JPEG (print workflows)", "result: converted to RGB")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(tmp_path / "print.jpg", quality=100)  # magenta ink
    r, g, b = np.asarray(load_image(tmp_path / "print.jpg"))[4, 4].tolist()
    assert r > 240 and g < 15 and b > 240


@case("rgba-image", "API", "an RGBA PNG photo", "result: alpha dropped, colour kept")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_image
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 10  # nearly transparent: the colour is still the photo's
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    rgb = np.asarray(load_image(tmp_path / "rgba.png"))
    assert rgb.shape == (4, 4, 3) and (rgb[..., 1] == 200).all() and (rgb[..., 0] == 0).all()


@case("1x1-image", "API", "a 1 x 1 image with its pixel as the hole", "result: a 1 x 1 image (padded to the model's grid and cropped back)")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    img = Image.fromarray(np.full((1, 1, 3), 90, np.uint8))
    out = inpaint(generator, img, np.ones((1, 1), bool), warn_large_hole=False)
    assert out.size == (1, 1) and out.mode == "RGB"


@case("7x9-image", "CLI", "a 7 x 9 image (not a multiple of 8)", "result: a 7 x 9 image, known pixels unchanged")
def _(tmp_path, capsys, generator):
    src = save_rgb(tmp_path / "odd.png", 7, 9)
    mask = save_mask(tmp_path / "odd_mask.png", 7, 9, box=(2, 3, 3, 3))
    rc, err = run_cli(capsys, "inpaint", "--image", src, "--mask", mask, "--checkpoint", TOY_WEIGHTS,
                      "--output", tmp_path / "out.png")
    assert rc == 0, err
    out, inp = np.asarray(Image.open(tmp_path / "out.png")), np.asarray(Image.open(src))
    known = np.asarray(Image.open(mask)) == 0
    assert out.shape == (7, 9, 3) and (out[known] == inp[known]).all()


# --- masks ------------------------------------------------------------------

@case("mask-wrong-size", "CLI", "a mask of another size than the image", "error: mask is WxH but image is WxH; give a mask of the image's size")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"mask .* is 16x16 \(WxH\) but image .* is 32x32.*mask of the image's size",
                     "inpaint", "--image", save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png", 16, 16, (2, 2, 4, 4)),
                     "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "o.png")


@case("mask-empty", "API", "a mask with no hole", "result: the image unchanged")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    img = Image.open(save_rgb(tmp_path / "a.png"))
    out = inpaint(generator, img, np.zeros((32, 32), bool))
    assert (np.asarray(out) == np.asarray(img)).all()


@case("mask-full", "API", "a mask that is all hole", "result: a full-size fill, with a warning that nothing is known")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    img = Image.open(save_rgb(tmp_path / "a.png"))
    with pytest.warns(UserWarning, match=r"hole"):
        out = inpaint(generator, img, np.ones((32, 32), bool))
    assert out.size == (32, 32) and np.isfinite(np.asarray(out, dtype=float)).all()


@case("mask-non-binary", "API", "a soft (anti-aliased) grey mask", "result: hole where value > 127.5, as the release")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_mask
    Image.fromarray(np.array([[0, 100, 127, 128, 200, 255]], np.uint8)).save(tmp_path / "soft.png")
    assert load_mask(tmp_path / "soft.png").flatten().tolist() == [0, 0, 0, 1, 1, 1]


@case("mask-rgba", "API", "an RGBA mask painted on a transparent layer", "result: the hole read from the alpha channel")
def _(tmp_path, capsys, generator):
    from course_lib.images import load_mask
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # the same colour everywhere: only alpha says where the strokes are
    rgba[2:4, 2:6, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "strokes.png")
    m = load_mask(tmp_path / "strokes.png")[0, 0]
    expected = torch.zeros(8, 8)
    expected[2:4, 2:6] = 1
    assert torch.equal(m, expected)


@case("mask-folder-mismatch", "CLI", "an image folder whose masks are named differently", "error: no mask for X in FOLDER: name it X.png or X_mask.png")
def _(tmp_path, capsys, generator):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    save_rgb(tmp_path / "images" / "cat.png")
    save_mask(tmp_path / "masks" / "dog.png")
    expect_cli_error(capsys, r"no mask for cat\.png in .*masks.*cat\.png or cat_mask\.png", "inpaint",
                     "--image", tmp_path / "images", "--mask", tmp_path / "masks", "--checkpoint", TOY_WEIGHTS,
                     "--output", tmp_path / "out")


# --- checkpoints ---------------------------------------------------------------

@case("checkpoint-truncated", "CLI", "a checkpoint cut short (a full disk)", "error: truncated, corrupt or not a torch file; use an earlier checkpoint")
def _(tmp_path, capsys, generator):
    whole = TOY_WEIGHTS.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 3])
    expect_cli_error(capsys, r"cut\.pt.*truncated, corrupt or not a torch file.*earlier checkpoint", "inpaint",
                     "--image", save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png"),
                     "--checkpoint", cut, "--output", tmp_path / "o.png")


@case("checkpoint-random-bytes", "API", "a checkpoint of random bytes", "error: truncated, corrupt or not a torch file")
def _(tmp_path, capsys, generator):
    from course_lib.checkpoint import load_checkpoint
    junk = tmp_path / "step_00000010.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match=r"step_00000010\.pt.*truncated, corrupt or not a torch file"):
        load_checkpoint(junk)


@case("checkpoint-zero-bytes", "CLI", "a 0-byte checkpoint given to train --resume", "error: an empty file (0 bytes); use an earlier checkpoint")
def _(tmp_path, capsys, generator):
    empty = tmp_path / "step_00000002.pt"
    empty.touch()
    expect_cli_error(capsys, r"empty file \(0 bytes\).*earlier checkpoint", "train", "--out", tmp_path / "run",
                     "--resume", empty, *TINY_TRAIN)


@case("checkpoint-pickle-payload", "CLI + API", "a checkpoint whose pickle would run code (writes a marker file)",
      "error through every loader; the code is never run (no marker file)")
def _(tmp_path, capsys, generator):
    from course_lib.checkpoint import load_checkpoint, safe_torch_load
    from course_lib.evaluate import load_generator_and_config
    from course_lib.inpaint_cli import load_generator
    from course_lib.pretrained import load_converted, load_pretrained

    marker = tmp_path / "PAYLOAD_RAN"
    evil_zip = tmp_path / "evil.pt"  # torch's zip format
    torch.save({"kind": "course_lib.train", "generator": Payload(marker)}, evil_zip)
    evil_raw = tmp_path / "evil_raw.pt"  # a bare (legacy) pickle
    evil_raw.write_bytes(pickle.dumps({"generator": Payload(marker)}, protocol=2))
    # The payload is real: an unsafe load runs it.
    control = tmp_path / "control"
    torch.load(_write_payload_file(tmp_path / "control.pt", control), weights_only=False)
    assert control.exists(), "the payload does not work, so this test would prove nothing"

    loaders = {
        "safe_torch_load": safe_torch_load, "load_checkpoint": load_checkpoint, "load_converted": load_converted,
        "load_pretrained": load_pretrained, "load_generator": load_generator,
        "load_generator_and_config": load_generator_and_config,
    }
    evil_new = tmp_path / "evil_p5.pt"  # a bare pickle in a protocol torch does not read: refused as foreign
    evil_new.write_bytes(pickle.dumps({"generator": Payload(marker)}, protocol=5))
    for name, loader in loaders.items():
        with pytest.raises(ValueError, match=r"corrupt or not a torch file"):
            loader(evil_new)
    for evil in (evil_zip, evil_raw):
        for name, loader in loaders.items():
            with pytest.raises(ValueError, match=r"Python objects other than tensors.*NOT run"):
                loader(evil)
            assert not marker.exists(), f"{name} ran the payload of {evil.name}"
        ckpt_dir = tmp_path / "run" / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (ckpt_dir / "step_00000001.pt").write_bytes(evil.read_bytes())
        expect_cli_error(capsys, r"NOT run", "train", "--out", tmp_path / "run", "--resume", *TINY_TRAIN)
        expect_cli_error(capsys, r"NOT run", "inpaint", "--image", save_rgb(tmp_path / "a.png"), "--mask",
                         save_mask(tmp_path / "m.png"), "--checkpoint", evil, "--output", tmp_path / "o.png")
        expect_cli_error(capsys, r"NOT run", "evaluate", "--checkpoint", evil, "--data", "toy", "--n", "2")
        assert not marker.exists(), f"a command ran the payload of {evil.name}"


def _write_payload_file(path: Path, marker: Path) -> Path:
    torch.save({"generator": Payload(marker)}, path)
    return path


@case("tf-index-corrupt", "CLI", "an official TF checkpoint whose .index is damaged", "error: names the .index file and says to download it again")
def _(tmp_path, capsys, generator):
    import shutil
    folder = tmp_path / "tf"
    shutil.copytree(TF_FIXTURE, folder)
    index = folder / "snap-0.index"
    data = bytearray(index.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = os.urandom(64)
    index.write_bytes(bytes(data))
    err = expect_cli_error(capsys, r"snap-0\.index", "convert", folder, tmp_path / "out.pt")
    assert re.search(r"download|again|corrupt|damaged", err, re.I), err
    assert not (tmp_path / "out.pt").exists()


# --- configuration ---------------------------------------------------------------

@case("set-unknown-key", "CLI", "--set batchsize=8 (mistyped key)", "error: unknown config key; did you mean 'batch_size'")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"unknown config key.*did you mean 'batch_size'", "train", "--out", tmp_path / "r",
                     "--set", "batchsize=8")


@case("set-bad-value", "CLI", "--set batch_size=eight", "error: batch_size must be an integer")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"batch_size must be an integer, got 'eight'", "train", "--out", tmp_path / "r",
                     "--set", "batch_size=eight")


@case("set-no-equals", "CLI", "--set batch_size 8 (no '=')", "error: --set expects KEY=VALUE")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"--set expects KEY=VALUE", "train", "--out", tmp_path / "r", "--set", "batch_size")


@case("set-bad-bool", "CLI", "--set tensorboard=maybe", "error: tensorboard must be true or false")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"tensorboard must be true or false", "train", "--out", tmp_path / "r",
                     "--set", "tensorboard=maybe")


@case("negative-batch-size", "CLI + API", "batch_size = -4", "error: batch_size must be >= 1")
def _(tmp_path, capsys, generator):
    from course_lib.config import TrainConfig
    expect_cli_error(capsys, r"batch_size must be >= 1, got -4", "train", "--out", tmp_path / "r",
                     "--set", "batch_size=-4")
    with pytest.raises(ValueError, match=r"batch_size must be >= 1"):
        TrainConfig(batch_size=-4)


@case("evaluate-negative-n", "CLI", "evaluate --n -3", "error: --n must be >= 1")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"\(--n\) must be a positive int, got -3", "evaluate", "--data", "toy", "--n", "-3")


# --- folders and files ---------------------------------------------------------------

@case("output-folder-missing", "CLI", "inpaint --output into folders that do not exist yet", "result: the folders are created, the image written")
def _(tmp_path, capsys, generator):
    target = tmp_path / "new" / "deeper" / "out.png"
    rc, err = run_cli(capsys, "inpaint", "--image", save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png"),
                      "--checkpoint", TOY_WEIGHTS, "--output", target)
    assert rc == 0, err
    assert Image.open(target).size == (32, 32)


@case("output-folder-read-only", "CLI", "inpaint --output / train --out in a read-only folder", "error: permission denied, choose a folder you can write")
def _(tmp_path, capsys, generator):
    folder = unwritable_folder(tmp_path)
    try:
        expect_cli_error(capsys, r"(ermission denied|not permitted).*folder you can write", "inpaint",
                         "--image", save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png"),
                         "--checkpoint", TOY_WEIGHTS, "--output", folder / "out.png")
        expect_cli_error(capsys, r"(ermission denied|not permitted).*folder you can write", "train",
                         "--out", folder / "run", *TINY_TRAIN)
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o755)


@case("data-folder-empty", "CLI", "train --set data=folder on a folder with no images", "error: no images with extensions ... under FOLDER")
def _(tmp_path, capsys, generator):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("no pictures here")
    expect_cli_error(capsys, r"no images with extensions .* under .*photos", "train", "--out", tmp_path / "r",
                     *TINY_TRAIN, "--set", "data=folder", "--set", f"data_root={tmp_path / 'photos'}")


@case("data-folder-missing", "CLI", "evaluate --data on a folder that does not exist", "error: names the path")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"nowhere", "evaluate", "--data", tmp_path / "nowhere", "--n", "2")


@case("flist-missing-files", "CLI", "an flist whose lines name files that are gone", "error: names the missing file and the flist line")
def _(tmp_path, capsys, generator):
    save_rgb(tmp_path / "here.png")
    flist = tmp_path / "train.flist"
    flist.write_text(f"{tmp_path / 'here.png'}\n{tmp_path / 'gone.png'}\n")
    expect_cli_error(capsys, r"gone\.png", "train", "--out", tmp_path / "r", *TINY_TRAIN,
                     "--set", "data=flist", "--set", f"data_root={flist}")


@case("make-flist-no-folder", "CLI", "make-flist on a folder that does not exist", "error: image folder does not exist")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"does not exist", "make-flist", tmp_path / "nowhere", tmp_path / "x.flist")


@case("two-trainers-one-folder", "CLI", "a second train --out on a folder another live run trains into",
      "error: in use by another training run (pid, host); after that run dies (even kill -9) the folder is free")
def _(tmp_path, capsys, generator):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from course_lib.runlock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        expect_cli_error(capsys, rf"in use by another training run \(pid {holder.pid} on .*--out", "train",
                         "--out", run, *TINY_TRAIN)
        assert not (run / "checkpoints").exists(), "the refused run wrote into the folder"
    finally:
        holder.kill()  # as kill -9: the kernel frees the lock, the file stays behind
        holder.wait()
    assert (run / "train.lock").exists()
    rc, err = run_cli(capsys, "train", "--out", run, *TINY_TRAIN)
    assert rc == 0, err
    assert (run / "checkpoints" / "step_00000002.pt").is_file()


@case("unknown-command", "CLI", "python -m course_lib trian", "error: unknown command, with the list of commands")
def _(tmp_path, capsys, generator):
    rc, err = run_cli(capsys, "trian")
    assert rc == 2 and "unknown command 'trian'" in err and "train" in err and "Traceback" not in err


@case("cuda-without-gpu", "CLI", "--set device=cuda on a machine without a GPU", "error: asked for CUDA but this torch sees no GPU; use device=cpu")
def _(tmp_path, capsys, generator):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    expect_cli_error(capsys, r"no GPU.*device=cpu", "train", "--out", tmp_path / "r", *TINY_TRAIN, "--set", "device=cuda")


# --- large photos: inpaint modes ---------------------------------------------------

@case("inpaint-unknown-mode", "API", "inpaint(..., mode='fast')", "error: unknown mode; choose one of auto, exact, crop")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    with pytest.raises(ValueError, match=r"unknown mode 'fast'; choose one of auto, exact, crop"):
        inpaint(generator, Image.open(save_rgb(tmp_path / "a.png")), np.ones((32, 32), bool), mode="fast")


@case("crop-empty-mask", "CLI", "inpaint --mode crop with a mask that has no hole", "error: crop mode needs a hole; use --mode auto or exact")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"crop mode needs a hole.*mask is empty.*'auto' or 'exact'", "inpaint", "--image",
                     save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png", 32, 32, (0, 0, 0, 0)),
                     "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "o.png", "--mode", "crop")


@case("crop-window-too-large", "API", "inpaint(..., mode='crop', window=) larger than the image", "error: window is larger than or outside the image; give one inside it")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    with pytest.raises(ValueError, match=r"window \(0, 0, 40, 32\).*larger than or outside the 32x32 image"):
        inpaint(generator, Image.open(save_rgb(tmp_path / "a.png")), mask, mode="crop", window=(0, 0, 40, 32))


# --- settings, disks and data sets that fail later (issue 26) --------------------------

@case("set-not-finite", "CLI + API", "--set lr=nan (or inf, for any number)", "error: lr must be a finite number")
def _(tmp_path, capsys, generator):
    from course_lib.config import TrainConfig
    expect_cli_error(capsys, r"lr must be a finite number, got 'nan'.*--set lr=", "train", "--out", tmp_path / "r",
                     "--set", "lr=nan")
    expect_cli_error(capsys, r"betas must be a finite number, got 'inf'", "train", "--out", tmp_path / "r",
                     "--set", "betas=0.5,inf")
    with pytest.raises(ValueError, match=r"gamma must be a finite number"):
        TrainConfig(gamma=float("nan"))
    assert not (tmp_path / "r").exists()


@case("resume-changes-model-size", "CLI", "train --resume --set cnum=8 on a run trained with cnum 4",
      "error: cnum cannot change on resume; drop the override or start a new run folder")
def _(tmp_path, capsys, generator):
    run = tmp_path / "run"
    rc, err = run_cli(capsys, "train", "--out", run, *TINY_TRAIN)
    assert rc == 0, err
    expect_cli_error(capsys, r"cannot resume: cnum 4 \(checkpoint\) vs 8 \(config\).*cannot change on resume.*"
                     r"new run folder", "train", "--out", run, "--resume", "--set", "cnum=8")
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000002.pt"]


class FullDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left: writes fill it, then fail with ENOSPC as the kernel's do."""

    room = 20_000

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        left = self.room - self.tell()
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data[:left])


class Proxy(types.SimpleNamespace):
    """A stand-in for a module inside one course_lib module: the given attributes, else the module's."""

    def __init__(self, module, **replaced) -> None:
        super().__init__(**replaced)
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)


def fill_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint write (course_lib.checkpoint.atomic_save) now meets a full disk."""
    from course_lib import checkpoint
    opener = lambda fd, mode="wb": io.BufferedWriter(FullDisk(fd, mode))  # noqa: E731
    monkeypatch.setattr(checkpoint, "os", Proxy(os, fdopen=opener))


@case("disk-full-checkpoint", "CLI + API", "a full disk while a checkpoint is saved (simulated ENOSPC, and torch's "
      "'unexpected pos' with no errno)", "error: the disk is full, free MB vs needed MB; the checkpoints already there intact, no half file")
def _(tmp_path, capsys, generator):
    from course_lib import checkpoint
    run = tmp_path / "run"
    rc, err = run_cli(capsys, "train", "--out", run, *TINY_TRAIN)
    assert rc == 0, err
    saved = (run / "checkpoints" / "step_00000002.pt").read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        fill_disk(mp)
        expect_cli_error(capsys, r"cannot save .*step_00000003\.pt: its disk is full.*MB free.*needs about .*MB"
                         r".*free some space.*intact", "train", "--out", run, "--resume", "--set", "max_iters=3")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt"]  # no temporary file
    assert (run / "checkpoints" / "step_00000002.pt").read_bytes() == saved
    # torch's own writer may report the full disk as "unexpected pos" with no errno: the free space decides
    target = tmp_path / "model.pt"
    target.write_bytes(b"the previous file")

    def torch_save_fails(obj, handle):
        handle.write(b"x" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "torch", Proxy(torch, save=torch_save_fails))
        mp.setattr(checkpoint, "shutil", Proxy(shutil, disk_usage=lambda p: types.SimpleNamespace(free=4096)))
        with pytest.raises(OSError, match=r"model\.pt: its disk is full .*0\.0 MB free, the file needs about 0\.4 MB") as info:
            checkpoint.atomic_save({"w": torch.zeros(100_000)}, target)
        assert info.value.errno == errno.ENOSPC
        mp.setattr(checkpoint, "shutil", Proxy(shutil, disk_usage=lambda p: types.SimpleNamespace(free=10**12)))
        with pytest.raises(RuntimeError, match="unexpected pos"):  # plenty of space: not the disk, the error as it is
            checkpoint.atomic_save({"w": torch.zeros(100_000)}, target)
    assert target.read_bytes() == b"the previous file" and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "run"]


@case("convert-read-only-folder", "CLI", "convert into a read-only folder", "error: permission denied, choose a folder you can write; no file written")
def _(tmp_path, capsys, generator):
    folder = unwritable_folder(tmp_path)
    try:
        expect_cli_error(capsys, r"(ermission denied|read-only file system): cannot write or read .*out\.pt; "
                         r"choose a file or folder you can write", "convert", TF_FIXTURE, folder / "out.pt")
        assert not (folder / "out.pt").exists()
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o755)


def corrupt_folder(tmp_path: Path, n: int = 4) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(n):
        (folder / f"img{i}.png").write_bytes(os.urandom(300))
    return folder


@case("train-all-images-corrupt", "CLI", "train on a folder where every image is corrupt",
      "error: none of the N image files could be read: corrupt or not images")
def _(tmp_path, capsys, generator):
    folder = corrupt_folder(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipping unreadable image"):
        expect_cli_error(capsys, r"none of the 4 image files .* could be read .*img0\.png.*corrupt or not images",
                         "train", "--out", tmp_path / "r", *TINY_TRAIN, "--set", "data=folder",
                         "--set", f"data_root={folder}")
    assert not list((tmp_path / "r" / "checkpoints").glob("*.pt"))


@case("evaluate-all-images-corrupt", "CLI", "evaluate --data on a folder where every image is corrupt",
      "error: none of the N image files could be read: corrupt or not images")
def _(tmp_path, capsys, generator):
    folder = corrupt_folder(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipping unreadable image"):
        expect_cli_error(capsys, r"none of the 4 image files .* could be read .*corrupt or not images", "evaluate",
                         "--data", folder, "--n", "2")


@case("inpaint-0x0-image", "API", "inpaint() on a 0 x 0 image and mask (PIL, array or tensor)",
      "error: the image is 0x0 pixels: nothing to inpaint")
def _(tmp_path, capsys, generator):
    from course_lib.inpainting import inpaint
    with pytest.raises(ValueError, match=r"the image is 0x0 pixels \(WxH\): it has no pixels"):
        inpaint(generator, Image.new("RGB", (0, 0)), np.zeros((0, 0), bool))
    with pytest.raises(ValueError, match=r"the image is an array of shape \(0, 5, 3\)"):
        inpaint(generator, np.zeros((0, 5, 3), np.uint8), np.zeros((0, 5), bool))
    with pytest.raises(ValueError, match=r"the image is a tensor of shape \(3, 4, 0\)"):
        inpaint(generator, torch.zeros(3, 4, 0), torch.zeros(4, 0))
    with pytest.raises(ValueError, match=r"the mask is 0x0 pixels"):
        inpaint(generator, Image.new("RGB", (4, 4)), Image.new("L", (0, 0)))
# --- your own photos, masks and training data ----------------------------------

def _photo_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_rgb(folder / f"p{i}.png", 40, 40, seed=i)
    return folder


@case("mask-zero-one", "CLI", "a PNG mask holding only 0 and 1 (a NumPy 0/1 array saved as is)",
      "result: read as 1 = hole, and the output line says so")
def _(tmp_path, capsys, generator):
    m = np.zeros((32, 32), np.uint8)
    m[8:20, 8:20] = 1
    Image.fromarray(m).save(tmp_path / "m01.png")
    capsys.readouterr()
    rc = cli_main(["inpaint", "--image", str(save_rgb(tmp_path / "a.png")), "--mask", str(tmp_path / "m01.png"),
                   "--checkpoint", str(TOY_WEIGHTS), "--output", str(tmp_path / "o.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "0/1 mask: 1 read as hole" in out
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "o.png"))[8:20, 8:20],
                              np.asarray(Image.open(tmp_path / "a.png"))[8:20, 8:20])


@case("mask-inverted", "CLI", "a black-is-hole mask (97 % of a 200 x 150 photo read as hole)",
      "error: the mask makes 97 % of the 200x150 (WxH) image a hole; add --invert-mask (or --allow-mostly-hole)")
def _(tmp_path, capsys, generator):
    m = np.full((150, 200), 255, np.uint8)
    m[60:90, 80:110] = 0  # the user's hole, painted black
    Image.fromarray(m).save(tmp_path / "m.png")
    expect_cli_error(capsys, r"makes 97 % of the 200x150 \(WxH\) image.*--invert-mask.*--allow-mostly-hole",
                     "inpaint", "--image", save_rgb(tmp_path / "a.png", 150, 200), "--mask", tmp_path / "m.png",
                     "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "o.png")


@case("grey-photo-inpaint", "CLI", "a greyscale (L) photo to inpaint", "result: a greyscale (L) image, known pixels unchanged")
def _(tmp_path, capsys, generator):
    grey = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    rc, err = run_cli(capsys, "inpaint", "--image", tmp_path / "g.png", "--mask", save_mask(tmp_path / "m.png"),
                      "--checkpoint", TOY_WEIGHTS, "--output", tmp_path / "o.png")
    out = Image.open(tmp_path / "o.png")
    known = np.asarray(Image.open(tmp_path / "m.png")) == 0
    assert rc == 0 and out.mode == "L" and np.array_equal(np.asarray(out)[known], grey[known])


@case("hole-larger-than-trained", "CLI", "a hole larger than the checkpoint's training holes (toy model: 32 px holes in 64 px images)",
      "result: a warning line with the model's own sizes, naming --no-hole-warning")
def _(tmp_path, capsys, generator):
    rc, err = run_cli(capsys, "inpaint", "--image", save_rgb(tmp_path / "a.png", 128, 128), "--mask",
                      save_mask(tmp_path / "m.png", 128, 128, (40, 40, 40, 40)), "--checkpoint", TOY_WEIGHTS,
                      "--output", tmp_path / "o.png", "--mode", "exact")
    assert rc == 0 and "inpaint: warning:" in err and "64x64 images" in err and "--no-hole-warning" in err


@case("feather-negative", "CLI", "inpaint --feather -2", "error: --feather must be 0 or more pixels")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"--feather must be 0 or more pixels, got -2", "inpaint", "--image",
                     save_rgb(tmp_path / "a.png"), "--mask", save_mask(tmp_path / "m.png"), "--checkpoint",
                     TOY_WEIGHTS, "--output", tmp_path / "o.png", "--feather", "-2")


@case("validation-is-training", "CLI", "train --set data=flist on a list with no held-out *_val.flist next to it",
      "result: a loud WARNING that the validation images are training images, naming make-flist --val-fraction")
def _(tmp_path, capsys, generator):
    from course_lib.data import write_flist
    write_flist(_photo_folder(tmp_path / "photos", 4), tmp_path / "all.flist")
    with pytest.warns(RuntimeWarning):
        rc, err = run_cli(capsys, "train", "--out", tmp_path / "r", *TINY_TRAIN, "--set", "data=flist",
                          "--set", f"data_root={tmp_path / 'all.flist'}", "--set", "val_images=2", "--set", "max_iters=1")
    assert rc == 0 and "WARNING: 2 of the 2 validation images are TRAINING images" in err and "--val-fraction" in err


@case("val-flist-missing", "CLI", "train --val-flist naming a file that does not exist", "error: val_flist ... does not exist; write one with make-flist")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"val_flist .*nope\.flist.*does not exist.*make-flist", "train", "--out", tmp_path / "r",
                     *TINY_TRAIN, "--set", "val_images=2", "--val-flist", tmp_path / "nope.flist")


@case("hole-kind-unknown", "CLI", "--set hole_kind=circles", "error: hole_kind must be one of box, strokes, box_or_strokes, folder, border")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"hole_kind must be one of .*'box', 'strokes'", "train", "--out", tmp_path / "r",
                     "--set", "hole_kind=circles")


@case("mask-folder-not-given", "CLI", "train --holes folder without --mask-folder", "error: hole_kind=folder needs your masks: --set mask_folder=PATH")
def _(tmp_path, capsys, generator):
    expect_cli_error(capsys, r"hole_kind=folder needs your masks.*mask_folder=PATH", "train", "--out", tmp_path / "r",
                     "--holes", "folder")


@case("mask-folder-inverted", "CLI", "train --mask-folder DIR whose masks mark the hole black",
      "error: the masks are on average N % hole; train --invert-masks")
def _(tmp_path, capsys, generator):
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(3):
        save_mask(folder / f"m{i}.png", 32, 32, (4 * i, 4, 10, 10))
        Image.fromarray(255 - np.asarray(Image.open(folder / f"m{i}.png"))).save(folder / f"m{i}.png")
    expect_cli_error(capsys, r"on average \d+ % hole.*--invert-masks", "train", "--out", tmp_path / "r", *TINY_TRAIN,
                     "--mask-folder", folder)


@case("train-out-of-memory", "CLI", "a training step that runs out of GPU memory",
      "error: out of memory at batch_size B; try --set batch_size=B/2, amp=bf16 or a smaller image_size")
def _(tmp_path, capsys, generator):
    from course_lib.train import Trainer

    def out_of_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
    original = Trainer.train_step
    Trainer.train_step = out_of_memory
    try:
        expect_cli_error(capsys, r"out of cpu memory at batch_size 2.*--set batch_size=1.*--resume", "train",
                         "--out", tmp_path / "r", *TINY_TRAIN)
    finally:
        Trainer.train_step = original


@case("tiny-dataset", "CLI", "train on a folder of 4 photos", "result: a WARNING that the set is tiny (under 500 images), suggesting flip=true")
def _(tmp_path, capsys, generator):
    rc, err = run_cli(capsys, "train", "--out", tmp_path / "r", *TINY_TRAIN, "--set", "data=folder",
                      "--set", f"data_root={_photo_folder(tmp_path / 'photos', 4)}", "--set", "max_iters=1")
    assert rc == 0 and "only 4 training images (fewer than 500)" in err and "flip=true" in err


@pytest.mark.parametrize("row", CASES, ids=[c.id for c in CASES])
def test_bad_input(row: Case, tmp_path: Path, capsys: pytest.CaptureFixture, generator) -> None:
    row.run(tmp_path, capsys, generator)


def test_the_table_is_large_and_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


# ----------------------------------------------------------------------------- the one error boundary

def _raising(err: BaseException):
    def command(argv: list[str]) -> int:
        raise err
    return command


def _worker_error() -> Exception:
    """What torch re-raises in the main process when a DataLoader worker fails."""
    from course_lib.data import UnreadableImagesError
    return UnreadableImagesError(
        "Caught UnreadableImagesError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
        "last):\n  File \"data.py\", line 1, in _load\ncourse_lib.data.UnreadableImagesError: none of the 3 "
        "image files of this dataset could be read")


BOUNDARY = [  # (error, exit code, the one line it must become)
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/out.pt"), 2,
     r"read-only file system: cannot write or read /mnt/ro/out\.pt; choose a file or folder you can write"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/root/out.png"), 2,
     r"permission denied: cannot write or read /root/out\.png"),
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/log.csv"), 2,
     r"the disk is full \(No space left on device\) while writing /runs/x/log\.csv; free some space"),
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2,  # a flush that fails names no file
     r"error: the disk is full \(No space left on device\) while writing; free some space"),
    (FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/nowhere/a.png"), 2,
     r"No such file or directory: /nowhere/a\.png"),
    (FileNotFoundError("--image a.png does not exist"), 2, r"error: --image a\.png does not exist\n"),
    (MemoryError(), 2, r"out of memory .*lower batch_size"),
    (KeyError("unknown config key(s) ['x']"), 2, r"error: unknown config key\(s\) \['x'\]\n"),
    (_worker_error(), 2, r"error: none of the 3 image files of this dataset could be read\n"),
    (RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. "), 2,
     r"error: DataLoader worker \(pid 4242\) is killed by signal: Killed: the system ended a data-loading "
     r"process .*lower --set num_workers"),
]


@pytest.mark.parametrize("err, code, pattern", BOUNDARY, ids=[type(e).__name__ + str(i) for i, (e, _, _) in enumerate(BOUNDARY)])
def test_the_boundary_turns_each_fault_into_one_line_and_its_exit_code(err, code, pattern, capsys, monkeypatch):
    from course_lib.__main__ import run_command
    assert run_command("cmd", _raising(err), []) == code
    out = capsys.readouterr().err
    assert re.search(pattern, out), out
    assert out.startswith("cmd: error: ") and "Traceback" not in out and out.count("\n") == 2
    monkeypatch.setenv("COURSE_LIB_DEBUG", "1")  # the debug switch: the exception itself, with its traceback
    with pytest.raises(type(err)):
        run_command("cmd", _raising(err), [])


def test_the_boundary_exit_codes_for_nan_ctrl_c_and_bugs(capsys, monkeypatch):
    from course_lib.__main__ import EXIT_CODES, run_command, usage
    from course_lib.train import NonFiniteLossError
    assert run_command("train", _raising(NonFiniteLossError("non-finite generator loss at step 4")), []) == 1
    assert "train: error: non-finite generator loss at step 4" in capsys.readouterr().err
    assert run_command("inpaint", _raising(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err == "inpaint: interrupted (Ctrl-C)\n"
    # Not a user mistake: a bug. Its traceback is shown, with a line that says so, and exit code 3.
    assert run_command("evaluate", _raising(ZeroDivisionError("division by zero")), []) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("evaluate: internal error (a bug in course_lib")
    monkeypatch.setenv("COURSE_LIB_DEBUG", "1")
    with pytest.raises(KeyboardInterrupt):
        run_command("inpaint", _raising(KeyboardInterrupt()), [])
    text = usage()
    for code, meaning in EXIT_CODES.items():
        assert f"  {code:<11} {meaning}" in text
    readme = (REPO / "README.md").read_text()
    assert all(f"\n| {code} | " in readme for code in EXIT_CODES), "README's exit-code table misses a code"


def markdown_table() -> str:
    lines = ["| # | case | via | input | expected outcome |", "|---|---|---|---|---|"]
    lines += [f"| {n} | `{c.id}` | {c.where} | {c.given} | {c.expect} |" for n, c in enumerate(CASES, 1)]
    return "\n".join(lines)


def test_readme_holds_the_table() -> None:
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, (
        "README.md's 'Bad input' table is out of step with tests/test_bad_input.py; paste the output of "
        "`python tests/test_bad_input.py` into it")


if __name__ == "__main__":
    print(markdown_table())
