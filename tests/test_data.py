"""Datasets: flists, bad files, colour conversion, reproducible crops, CelebA / Places365 layouts."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.__main__ import main as cli_main
from course_lib.data import (
    CelebADataset,
    CelebAHQDataset,
    FlistDataset,
    ImageFolderDataset,
    ImageListDataset,
    Places365Dataset,
    load_rgb,
    make_dataset,
    read_flist,
    write_flist,
)

REPO = Path(__file__).resolve().parents[1]


def save_rgb(path: Path, h: int = 24, w: int = 32, seed: int = 0, fmt: str = "PNG") -> np.ndarray:
    """Write a random RGB image and return its pixels (H, W, 3) uint8."""
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGB").save(path, format=fmt)
    return a


def expected(a: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) in [-1, 1], written out independently of the code."""
    return torch.tensor(a.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0, dtype=torch.float32)


# ----------------------------------------------------------------------------- flists

def test_read_flist_comments_blank_lines_and_relative_paths(tmp_path):
    save_rgb(tmp_path / "imgs" / "a.png")
    save_rgb(tmp_path / "imgs" / "sub" / "b.png")
    other = tmp_path / "elsewhere" / "c.png"
    save_rgb(other)
    flist = tmp_path / "lists" / "train.flist"
    flist.parent.mkdir()
    flist.write_text(f"# a comment\n\n../imgs/a.png\n   ../imgs/sub/b.png  \n{other}\n# end\n")
    paths = read_flist(flist)
    assert paths == [str((tmp_path / "imgs" / "a.png").resolve()),
                     str((tmp_path / "imgs" / "sub" / "b.png").resolve()), str(other)]


def test_read_flist_missing_files_are_listed(tmp_path):
    save_rgb(tmp_path / "a.png")
    flist = tmp_path / "x.flist"
    flist.write_text("a.png\nmissing1.png\nmissing2.png\n")
    with pytest.raises(FileNotFoundError, match=r"(?s)2 of 3 paths .*missing1\.png.*missing2\.png") as info:
        read_flist(flist)
    assert "make-flist" in str(info.value)
    assert len(read_flist(flist, check_exists=False)) == 3


def test_read_flist_empty_or_absent(tmp_path):
    with pytest.raises(FileNotFoundError, match="make-flist"):
        read_flist(tmp_path / "nope.flist")
    (tmp_path / "empty.flist").write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="no image paths"):
        read_flist(tmp_path / "empty.flist")


def test_write_flist_sorted_shuffled_and_split(tmp_path):
    names = ["b.png", "a.jpg", "c/d.JPEG", "c/e.png", "notes.txt", ".hidden.png"]
    for n in names:
        p = tmp_path / "imgs" / n
        if n.endswith("txt"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("not an image")
        else:
            save_rgb(p)
    out = tmp_path / "train.flist"
    counts = write_flist(tmp_path / "imgs", out)
    lines = out.read_text().splitlines()
    root = (tmp_path / "imgs").resolve()
    assert lines == [str(root / r) for r in ["a.jpg", "b.png", "c/d.JPEG", "c/e.png"]]
    assert counts == {str(out): 4}
    write_flist(tmp_path / "imgs", tmp_path / "s1.flist", shuffle=True, seed=3)
    write_flist(tmp_path / "imgs", tmp_path / "s2.flist", shuffle=True, seed=3)
    assert (tmp_path / "s1.flist").read_text() == (tmp_path / "s2.flist").read_text()
    assert sorted((tmp_path / "s1.flist").read_text().splitlines()) == lines
    counts = write_flist(tmp_path / "imgs", tmp_path / "t.flist", shuffle=True, seed=1, val_fraction=0.25)
    train = (tmp_path / "t.flist").read_text().splitlines()
    val = (tmp_path / "t_val.flist").read_text().splitlines()
    assert len(train) == 3 and len(val) == 1 and sorted(train + val) == lines
    write_flist(tmp_path / "imgs", tmp_path / "rel.flist", relative=True)
    assert (tmp_path / "rel.flist").read_text().splitlines()[0] == "imgs/a.jpg"
    assert read_flist(tmp_path / "rel.flist") == lines


def test_make_flist_cli_in_process(tmp_path, capsys):
    save_rgb(tmp_path / "imgs" / "x.png")
    save_rgb(tmp_path / "imgs" / "y.png")
    out = tmp_path / "out" / "all.flist"
    assert cli_main(["make-flist", str(tmp_path / "imgs"), str(out), "--shuffle", "--seed", "5"]) == 0
    assert "wrote 2 paths" in capsys.readouterr().out
    assert len(read_flist(out)) == 2
    assert cli_main(["make-flist", str(tmp_path / "nothing"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad files

def make_bad_files(folder: Path) -> list[Path]:
    """[good, text-named-.jpg, truncated JPEG, good]."""
    good0 = folder / "0.png"
    save_rgb(good0, seed=1)
    text = folder / "1.jpg"
    text.write_text("this is not an image")
    trunc = folder / "2.jpg"
    save_rgb(trunc, 40, 40, seed=2, fmt="JPEG")
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    good1 = folder / "3.png"
    save_rgb(good1, seed=3)
    return [good0, text, trunc, good1]


def test_corrupt_files_are_skipped_counted_and_reported(tmp_path):
    paths = make_bad_files(tmp_path)
    ds = ImageListDataset(paths, size=16, mode="resize")
    with pytest.warns(RuntimeWarning, match="skipping unreadable image") as rec:
        x1 = ds[1]
    assert len([w for w in rec if "skipping" in str(w.message)]) == 1  # warned once, not per file
    assert ds.skipped == 2
    assert torch.equal(x1, ds[3])  # the next readable file, deterministically
    assert torch.equal(ds[2], ds[3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no new warning for files already known bad
        ds[1]
    assert set(ds.skipped_files) == {str(paths[1]), str(paths[2])}
    assert "skipped 2 unreadable of 4" in ds.summary()
    with pytest.warns(RuntimeWarning, match="skipped 2 unreadable"):
        ds.set_epoch(1)  # the epoch summary
    assert torch.equal(ds[0], ds[0]) and ds[0].shape == (3, 16, 16)


def test_bad_files_wrap_around_and_all_bad_is_a_clear_error(tmp_path):
    paths = make_bad_files(tmp_path)
    ds = ImageListDataset([paths[1], paths[0]], size=8, mode="resize")
    with pytest.warns(RuntimeWarning):
        assert torch.equal(ds[0], ds[1])
    all_bad = ImageListDataset([paths[1], paths[2]], size=8)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="none of the 2 image files"):
        all_bad[0]


def test_skipped_count_is_shared_with_dataloader_workers(tmp_path):
    paths = make_bad_files(tmp_path)
    ds = ImageListDataset(paths, size=8, mode="resize")
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(loader)
    assert sum(b.shape[0] for b in batches) == 4
    assert ds.skipped == 2


# ----------------------------------------------------------------------------- conversions

def test_grey_palette_rgba_and_16bit_become_rgb(tmp_path):
    Image.new("L", (10, 12), 100).save(tmp_path / "grey.png")
    rgba = Image.new("RGBA", (10, 12), (10, 200, 30, 0))  # fully transparent: colour kept
    rgba.save(tmp_path / "rgba.png")
    pal = Image.new("P", (10, 12), 0)
    pal.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    pal.save(tmp_path / "pal.png")
    Image.fromarray(np.full((12, 10), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.new("LA", (10, 12), (50, 128)).save(tmp_path / "la.png")
    want = {"grey.png": (100, 100, 100), "rgba.png": (10, 200, 30), "pal.png": (255, 0, 0),
            "deep.png": (255, 255, 255), "la.png": (50, 50, 50)}
    for name, rgb in want.items():
        img = load_rgb(tmp_path / name)
        assert img.mode == "RGB" and img.size == (10, 12), name
        assert tuple(np.asarray(img)[3, 4]) == rgb, name
    ds = ImageListDataset([tmp_path / "grey.png"], size=8, mode="center_crop")
    x = ds[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full((3, 8, 8), 100 / 127.5 - 1))


# ----------------------------------------------------------------------------- crops

def find_window(big: torch.Tensor, crop: torch.Tensor) -> tuple[int, int]:
    """Top-left of the window of ``big`` equal to ``crop`` (brute force)."""
    s = crop.shape[-1]
    for top in range(big.shape[1] - s + 1):
        for left in range(big.shape[2] - s + 1):
            if torch.allclose(big[:, top:top + s, left:left + s], crop, atol=1e-6):
                return top, left
    raise AssertionError("the crop is not a window of the image")


def test_random_crops_are_reproducible_per_epoch_and_index(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    pixels = [save_rgb(p, 40, 48, seed=i) for i, p in enumerate(paths)]
    ds = ImageListDataset(paths, size=16, mode="random_crop", seed=7)
    first = [ds[i] for i in range(3)]
    for i in range(3):
        find_window(expected(pixels[i]), first[i])  # a true crop of the image
    again = ImageListDataset(paths, size=16, mode="random_crop", seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, [again[i] for i in range(3)]))
    ds.set_epoch(1)
    epoch1 = [ds[i] for i in range(3)]
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch1))
    ds.set_epoch(0)  # a resumed run that restores the epoch sees the same crops
    assert all(torch.equal(a, ds[i]) for i, a in enumerate(first))
    other_seed = ImageListDataset(paths, size=16, mode="random_crop", seed=8)
    assert not all(torch.equal(a, other_seed[i]) for i, a in enumerate(first))
    # the crops cover different places over many epochs
    corners = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        corners.add(find_window(expected(pixels[0]), ds[0]))
    assert len(corners) > 6


def test_small_images_are_resized_up_and_modes(tmp_path):
    a = save_rgb(tmp_path / "small.png", 20, 30)
    for mode in ("random_crop", "center_crop", "resize"):
        x = ImageListDataset([tmp_path / "small.png"], size=32, mode=mode)[0]
        assert x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1
    save_rgb(tmp_path / "big.png", 40, 50, seed=4)
    big = expected(np.asarray(Image.open(tmp_path / "big.png")))
    centre = ImageListDataset([tmp_path / "big.png"], size=16, mode="center_crop")[0]
    assert torch.allclose(centre, big[:, 12:28, 17:33], atol=1e-6)
    with pytest.raises(ValueError, match="mode must be one of"):
        ImageListDataset([tmp_path / "big.png"], mode="crop")
    assert a.shape == (20, 30, 3)


# ----------------------------------------------------------------------------- layouts

def test_celeba_partition_on_a_fake_tree(tmp_path):
    root = tmp_path / "celeba"
    for i in range(1, 7):
        save_rgb(root / "img_align_celeba" / f"{i:06d}.jpg", 22, 18, seed=i, fmt="JPEG")
    (root / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n000006.jpg 1\n")
    names = {s: [Path(p).name for p in CelebADataset(root, s, size=16).paths] for s in ("train", "val", "test")}
    assert names == {"train": ["000001.jpg", "000002.jpg", "000005.jpg"],
                     "val": ["000003.jpg", "000006.jpg"], "test": ["000004.jpg"]}
    train = CelebADataset(root, "train", size=32)
    assert train.mode == "random_crop" and train[0].shape == (3, 32, 32)  # 18x22 faces resized up
    assert CelebADataset(root, "val", size=16).mode == "center_crop"
    with pytest.raises(ValueError, match="split must be one of"):
        CelebADataset(root, "validation")
    with pytest.raises(FileNotFoundError, match="img_align_celeba"):
        CelebADataset(tmp_path, "train")


def test_celeba_kaggle_layout_with_csv(tmp_path):
    root = tmp_path / "kaggle"
    for i in (1, 2):
        save_rgb(root / "img_align_celeba" / "img_align_celeba" / f"{i:06d}.jpg", fmt="JPEG")
    (root / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n000002.jpg,2\n")
    ds = CelebADataset(root, "test", size=8)
    assert [Path(p).name for p in ds.paths] == ["000002.jpg"] and ds[0].shape == (3, 8, 8)


def test_places365_lists_on_a_fake_tree(tmp_path):
    root = tmp_path / "places"
    save_rgb(root / "data_256" / "a" / "abbey" / "00000001.jpg", 32, 32, fmt="JPEG")
    save_rgb(root / "data_256" / "a" / "abbey" / "00000002.jpg", 32, 32, fmt="JPEG")
    save_rgb(root / "data_256" / "b" / "bakery" / "shop" / "00000001.jpg", 32, 32, fmt="JPEG")
    save_rgb(root / "val_256" / "Places365_val_00000001.jpg", 32, 32, fmt="JPEG")
    lists = root / "filelist_places365-standard"
    lists.mkdir()
    (lists / "places365_train_standard.txt").write_text(
        "/a/abbey/00000001.jpg 0\n/a/abbey/00000002.jpg 0\n/b/bakery/shop/00000001.jpg 42\n")
    (lists / "places365_val.txt").write_text("Places365_val_00000001.jpg 165\n")
    train = Places365Dataset(root, "train", size=16)
    assert train.paths == [str(root / "data_256" / r) for r in
                           ["a/abbey/00000001.jpg", "a/abbey/00000002.jpg", "b/bakery/shop/00000001.jpg"]]
    assert train.resolution == "256" and train.mode == "random_crop"
    val = Places365Dataset(root, "val", size=16)
    assert val.paths == [str(root / "val_256" / "Places365_val_00000001.jpg")] and val[0].shape == (3, 16, 16)
    with pytest.raises(FileNotFoundError, match="data_large"):
        Places365Dataset(root, "train", resolution="large")
    with pytest.raises(ValueError, match="split must be one of"):
        Places365Dataset(root, "test")


def test_make_dataset_by_name(tmp_path):
    for i in range(3):
        save_rgb(tmp_path / "imgs" / f"{i}.png", 24, 24, seed=i)
    save_rgb(tmp_path / "imgs" / "val" / "v.png", 24, 24)
    write_flist(tmp_path / "imgs", tmp_path / "all.flist")
    assert isinstance(make_dataset("flist", tmp_path / "all.flist", size=16), FlistDataset)
    folder = make_dataset("folder", tmp_path / "imgs", split="val", size=16)
    assert isinstance(folder, ImageFolderDataset) and len(folder) == 1 and folder.mode == "center_crop"
    hq = make_dataset("celebahq", tmp_path / "imgs", split="train", size=16)
    assert isinstance(hq, CelebAHQDataset) and hq.mode == "resize" and len(hq) == 4
    toy_train = make_dataset("toy", split="train", size=16, n=4)
    toy_val = make_dataset("toy", split="val", size=16, n=4)
    assert toy_train[0].shape == (3, 16, 16) and not torch.equal(toy_train[0], toy_val[0])
    with pytest.raises(ValueError, match="unknown dataset"):
        make_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="needs root"):
        make_dataset("folder")


# ----------------------------------------------------------------------------- bundled samples

def test_bundled_samples_are_small_documented_and_well_formed():
    samples = REPO / "data" / "samples"
    sources = (samples / "SOURCES.md").read_text()
    images = sorted((samples / "images").glob("*.jpg"))
    assert 4 <= len(images) <= 6
    total = sum(p.stat().st_size for p in samples.rglob("*") if p.is_file())
    assert total < 400_000
    for img in images:
        assert f"images/{img.name}" in sources
        assert re.search(rf"images/{re.escape(img.name)}.*(public domain|CC0)", sources)
        assert Image.open(img).size == (256, 256)
        for kind in ("box", "strokes"):
            m = np.asarray(Image.open(samples / "masks" / kind / f"{img.stem}.png"))
            assert m.shape == (256, 256) and set(np.unique(m)) == {0, 255}
            assert 0.02 < (m == 255).mean() < 0.5
    ds = ImageFolderDataset(samples / "images", size=256, mode="resize")
    assert len(ds) == len(images) and ds[0].shape == (3, 256, 256)
