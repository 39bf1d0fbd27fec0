"""course_lib.datasets_download (``download-data``) against a local HTTP server on 127.0.0.1, never the network.

The server is the one of test_pretrained_download (Range/206, truncated transfers, HTML quota
and Drive confirmation pages). The archives are made here: small real JPEGs in CelebA's and
Places365's layouts, so the data set loaders read the result. The md5 table is replaced by the
md5 of these archives (computed here with hashlib); the real table is checked for its form.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_lib import datasets_download as D
from course_lib.__main__ import main as cli_main
from course_lib.data import make_dataset
from course_lib.fetch import ChecksumMismatch, FetchError, SourceRefused, part_path
from test_pretrained_download import FileServer


def _jpeg(seed: int, size: tuple[int, int] = (40, 48)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


CELEBA = {
    "img_align_celeba.zip": _zip({f"img_align_celeba/{i:06d}.jpg": _jpeg(i) for i in range(1, 5)}),
    "list_eval_partition.txt": b"000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n",
}
PLACES_VAL = {
    "filelist_places365-standard.tar": _tar({
        "places365_val.txt": b"Places365_val_00000001.jpg 165\nPlaces365_val_00000002.jpg 3\n",
        "places365_train_standard.txt": b"/a/abbey/00000001.jpg 0\n"}),
    "val_256.tar": _tar({f"val_256/Places365_val_{i:08d}.jpg": _jpeg(10 + i, (64, 64)) for i in (1, 2)}),
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _use_md5_of(monkeypatch: pytest.MonkeyPatch, name: str, files: dict[str, bytes]) -> None:
    """Point the md5 table of ``name`` at the test's archives (same names, URLs and ids; sizes ~0 for the disk check)."""
    source = D.DATA_SOURCES[name]
    fixed = tuple(dataclasses.replace(f, md5=_md5(files[f.name]), approx_gb=1e-6) for f in source.files)
    monkeypatch.setitem(D.DATA_SOURCES, name, dataclasses.replace(source, files=fixed))


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _base(server: FileServer) -> str:
    return f"http://127.0.0.1:{server.port}/file"


def _serve_celeba_from_drive(server, monkeypatch, mode: str, names: tuple[str, ...] = ("img_align_celeba.zip",)) -> None:
    """The local server stands in for Drive: it serves ``names`` by their Drive ids, the zip in ``mode``."""
    ids = {f.name: f.drive_id for f in D.DATA_SOURCES["celeba"].files}
    for name in names:
        server.files[ids[name]] = CELEBA[name]
    server.modes[ids["img_align_celeba.zip"]] = mode
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    monkeypatch.setenv("COURSE_LIB_DRIVE_URL", server.template)


def test_the_source_table_holds_the_official_sources_and_md5s():
    for name, source in D.DATA_SOURCES.items():
        assert source.terms and source.page.startswith("http")
        for f in source.files:
            assert re.fullmatch(r"[0-9a-f]{32}", f.md5), (name, f.name)
            assert f.drive_id or f.url.startswith("http://data.csail.mit.edu/places/places365/")
    assert {f.name for f in D.DATA_SOURCES["celeba"].files} == {"img_align_celeba.zip", "list_eval_partition.txt"}
    assert {f.name for f in D.DATA_SOURCES["places2-val"].files} < {f.name for f in D.DATA_SOURCES["places2"].files}


def test_celeba_is_fetched_checked_unpacked_once_and_readable(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    root = tmp_path / "celeba"
    assert D.download_data("celeba", root, base_url=_base(server), quiet=True) == root
    assert sorted(p.name for p in (root / "img_align_celeba").iterdir()) == [f"{i:06d}.jpg" for i in range(1, 5)]
    assert (root / "list_eval_partition.txt").read_bytes() == CELEBA["list_eval_partition.txt"]
    assert (root / ".img_align_celeba.zip.unpacked").is_file()
    assert not list(root.glob(".unpacking-*")) and not list(root.rglob("*.part"))
    train = make_dataset("celeba", root=root, split="train", size=32)
    assert len(train) == 2 and tuple(train[0].shape) == (3, 32, 32)
    # A second call unpacks nothing and fetches no archive (only the small list is re-checked locally).
    (root / "img_align_celeba" / "000001.jpg").write_bytes(b"edited")
    before = len(server.requests)
    D.download_data("celeba", root, base_url=_base(server), quiet=True)
    assert len(server.requests) == before
    assert (root / "img_align_celeba" / "000001.jpg").read_bytes() == b"edited"


def test_places2_val_from_the_environment_variable_is_readable(server, tmp_path, monkeypatch):
    server.files.update(PLACES_VAL)
    _use_md5_of(monkeypatch, "places2-val", PLACES_VAL)
    monkeypatch.setenv(D.DATA_URL_ENV, _base(server))
    root = D.download_data("places2-val", tmp_path / "places2", archives=tmp_path / "drive", keep_archives=False,
                           quiet=True)
    assert {p.name for p in (root / "val_256").iterdir()} == {"Places365_val_00000001.jpg", "Places365_val_00000002.jpg"}
    assert not list((tmp_path / "drive").iterdir())  # archives deleted after unpacking, as asked
    val = make_dataset("places2", root=root, split="val", size=64)
    assert len(val) == 2


def test_a_truncated_archive_is_never_unpacked_and_the_next_call_resumes(server, tmp_path, monkeypatch):
    server.files.update(PLACES_VAL)
    _use_md5_of(monkeypatch, "places2-val", PLACES_VAL)
    server.modes["val_256.tar"] = "truncated"
    root = tmp_path / "places2"
    with pytest.raises(FetchError, match="resumes from there"):
        D.download_data("places2-val", root, base_url=_base(server), quiet=True)
    server.modes["val_256.tar"] = "forbidden"  # the host refuses: the manual route names the page and its form
    with pytest.raises(SourceRefused, match=rf"refused access \(403.*By hand: download val_256.tar from "
                                            rf"{re.escape(D.PLACES_PAGE)} \(if the page asks you to request access"):
        D.download_data("places2-val", root, base_url=_base(server), quiet=True)
    part = part_path(root / "archives" / "val_256.tar")
    assert 0 < part.stat().st_size < len(PLACES_VAL["val_256.tar"])
    assert not (root / "val_256").exists() and not (root / ".val_256.tar.unpacked").exists()
    server.modes["val_256.tar"] = "ok"
    D.download_data("places2-val", root, base_url=_base(server), quiet=True)
    ranges = [rng for path, rng in server.requests if path.endswith("/val_256.tar")]
    assert ranges[-1] == f"bytes={part.stat().st_size if part.exists() else len(PLACES_VAL['val_256.tar']) // 2}-"
    assert (root / "val_256" / "Places365_val_00000002.jpg").is_file()
    assert (root / "archives" / "val_256.tar").read_bytes() == PLACES_VAL["val_256.tar"]


def test_a_wrong_checksum_deletes_the_archive_and_unpacks_nothing(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    server.files["img_align_celeba.zip"] = _zip({"img_align_celeba/999999.jpg": _jpeg(99)})  # another file
    root = tmp_path / "celeba"
    with pytest.raises(ChecksumMismatch, match=r"md5 .*By hand: download img_align_celeba.zip"):
        D.download_data("celeba", root, base_url=_base(server), quiet=True)
    assert not list((root / "archives").iterdir())
    assert not (root / "img_align_celeba").exists() and not (root / ".img_align_celeba.zip.unpacked").exists()


def test_an_html_page_is_one_sentence_with_the_manual_route(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    server.modes["img_align_celeba.zip"] = "quota"
    root = tmp_path / "celeba"
    with pytest.raises(SourceRefused) as info:
        D.download_data("celeba", root, base_url=_base(server), quiet=True)
    message = str(info.value)
    assert "web page instead of img_align_celeba.zip" in message and D.CELEBA_PAGE in message
    assert str(root / "archives") in message and "\n" not in message
    assert not list((root / "archives").iterdir()) and not (root / "img_align_celeba").exists()


def test_celeba_from_google_drive_follows_the_confirmation_page(server, tmp_path, monkeypatch):
    pytest.importorskip("gdown")
    _serve_celeba_from_drive(server, monkeypatch, "confirm", names=tuple(CELEBA))
    root = D.download_data("celeba", tmp_path / "celeba", quiet=True)
    assert (root / "img_align_celeba" / "000004.jpg").is_file()
    assert any(path.endswith("-confirmed") or "-confirmed?" in path for path, _ in server.requests)


def test_a_drive_quota_page_names_the_quota_and_the_manual_route(server, tmp_path, monkeypatch):
    _serve_celeba_from_drive(server, monkeypatch, "quota")
    with pytest.raises(SourceRefused, match="quota.*By hand.*Baidu"):
        D.download_data("celeba", tmp_path / "celeba", quiet=True)


def test_an_archive_put_in_by_hand_is_checked_and_unpacked_without_a_request(server, tmp_path, monkeypatch):
    server.files["list_eval_partition.txt"] = CELEBA["list_eval_partition.txt"]  # the archive is not served
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    archives = tmp_path / "MyDrive"
    archives.mkdir()
    (archives / "img_align_celeba.zip").write_bytes(CELEBA["img_align_celeba.zip"])
    root = D.download_data("celeba", tmp_path / "celeba", archives=archives, base_url=_base(server), quiet=True)
    assert (root / "img_align_celeba" / "000002.jpg").is_file()
    assert not any(path.endswith(".zip") for path, _ in server.requests)


def test_unpack_refuses_paths_that_leave_the_root(tmp_path):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar({"../outside.txt": b"x"}))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(FetchError, match="unsafe path"):
        D.unpack_archive(archive, root)
    assert not (tmp_path / "outside.txt").exists() and not (root / ".evil.tar.unpacked").exists()


def test_unpack_replaces_a_half_folder_and_writes_the_marker_last(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"imgs/1.jpg": b"1", "imgs/2.jpg": b"2"}))
    root = tmp_path / "root"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "stale.jpg").write_bytes(b"old")  # a half unpack by hand
    assert D.unpack_archive(archive, root) == ["imgs"]
    assert sorted(p.name for p in (root / "imgs").iterdir()) == ["1.jpg", "2.jpg"]
    assert D.unpack_archive(archive, root) == ["imgs"]  # marker: nothing done again


def test_bad_names_and_the_command_line(server, tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; choose one of celeba"):
        D.download_data("imagenet", tmp_path)
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    root = tmp_path / "c"
    assert cli_main(["download-data", "celeba", "--root", str(root), "--base-url", _base(server), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(root)
    server.modes["list_eval_partition.txt"] = "forbidden"
    (root / "list_eval_partition.txt").unlink()
    assert cli_main(["download-data", "celeba", "--root", str(root), "--base-url", _base(server), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("download-data: error: the server refused access (403") and err.count("\n") == 1


def test_too_little_free_disk_is_refused_before_any_download(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    source = D.DATA_SOURCES["celeba"]
    huge = tuple(dataclasses.replace(f, approx_gb=1e9) for f in source.files)  # an exabyte
    monkeypatch.setitem(D.DATA_SOURCES, "celeba", dataclasses.replace(source, files=huge))
    with pytest.raises(FetchError, match=r"needs about .* GB free under .* free some space"):
        D.download_data("celeba", tmp_path / "c", base_url=_base(server), quiet=True)
    assert server.requests == []


def test_archives_on_another_disk_are_checked_for_their_own_share(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    source = D.DATA_SOURCES["celeba"]
    sized = tuple(dataclasses.replace(f, approx_gb=1.4 if f.unpack else 0.0) for f in source.files)
    monkeypatch.setitem(D.DATA_SOURCES, "celeba", dataclasses.replace(source, files=sized))
    root, drive = tmp_path / "local", tmp_path / "MyDrive"
    free = {root: 100e9, drive: 1e9}  # a full Drive: 1 GB free for a 1.4 GB archive
    monkeypatch.setattr(D, "_same_disk", lambda a, b: False)
    monkeypatch.setattr(D.shutil, "disk_usage", lambda p: type("U", (), {"free": free[Path(p)]})())
    with pytest.raises(FetchError, match=rf"celeba needs about 1.4 GB free under {re.escape(str(drive))} \(archives\), "
                                         r"but only 1.0 GB are free; free some space or choose another --archives\."):
        D.download_data("celeba", root, archives=drive, base_url=_base(server), quiet=True)
    assert server.requests == []
    free.update({root: 1e9, drive: 100e9})  # now the local disk is the short one: 1.4 GB of images
    with pytest.raises(FetchError, match=r"needs about 1.4 GB free under .*local \(images\), but only 1.0 GB are free; .* another --root\."):
        D.download_data("celeba", root, archives=drive, base_url=_base(server), quiet=True)
    free.update({root: 2e9, drive: 2e9})  # enough on each disk, though not 2.8 GB on either: it goes on
    assert D.download_data("celeba", root, archives=drive, base_url=_base(server), quiet=True) == root
    assert (root / "img_align_celeba" / "000001.jpg").is_file() and (drive / "img_align_celeba.zip").is_file()


def test_one_disk_needs_the_archive_and_its_images_together(tmp_path, monkeypatch):
    source = D.DataSource((D.DataFile("a.tar", "0" * 32, url="http://127.0.0.1:9/a.tar", unpack=True, approx_gb=3.0),
                           D.DataFile("l.txt", "0" * 32, url="http://127.0.0.1:9/l.txt", approx_gb=0.5)), "x", "http://p", "t")
    root = tmp_path / "r"
    (root / "archives").mkdir(parents=True)
    monkeypatch.setattr(D.shutil, "disk_usage", lambda p: type("U", (), {"free": 6.0e9})())
    with pytest.raises(FetchError, match=r"needs about 6.5 GB free under .* \(archives and images\), but only 6.0 GB"):
        D._check_free_disk("x", source, root, root / "archives")  # 3 + 3 + 0.5 = 6.5 GB > 6.0 GB
    (root / "archives" / "a.tar").write_bytes(b"")  # the archive is there: 3 + 0.5 GB
    (root / "l.txt").write_bytes(b"")  # and the list: 3 GB
    monkeypatch.setattr(D.shutil, "disk_usage", lambda p: type("U", (), {"free": 3.1e9})())
    D._check_free_disk("x", source, root, root / "archives")


def test_a_drive_confirmation_page_without_gdown_says_to_install_it(server, tmp_path, monkeypatch):
    _serve_celeba_from_drive(server, monkeypatch, "confirm")
    monkeypatch.setitem(sys.modules, "gdown", None)  # as if gdown were not installed
    monkeypatch.setitem(sys.modules, "gdown.download", None)
    with pytest.raises(SourceRefused) as info:
        D.download_data("celeba", tmp_path / "celeba", quiet=True)
    message = str(info.value)
    assert "large-file confirmation page, which course_lib follows with gdown (not installed: pip install gdown" in message
    assert "By hand: download img_align_celeba.zip" in message and "\n" not in message


def test_a_wrong_archive_put_in_by_hand_is_named_when_the_source_refuses(server, tmp_path, monkeypatch):
    server.files.update(CELEBA)
    _use_md5_of(monkeypatch, "celeba", CELEBA)
    server.modes["img_align_celeba.zip"] = "forbidden"
    archives = tmp_path / "MyDrive"
    archives.mkdir()
    other = _zip({"img_align_celeba/000001.jpg": _jpeg(7)})  # e.g. a copy from an unofficial mirror
    (archives / "img_align_celeba.zip").write_bytes(other)
    root = tmp_path / "celeba"
    with pytest.raises(SourceRefused, match=r"refused access \(403.*The img_align_celeba.zip already in "
                                            rf"{re.escape(str(archives))} does not have the published md5 "
                                            rf"{_md5(CELEBA['img_align_celeba.zip'])}: a different or damaged copy"):
        D.download_data("celeba", root, archives=archives, base_url=_base(server), quiet=True)
    assert (archives / "img_align_celeba.zip").read_bytes() == other  # left as it was, and not unpacked
    assert not (root / "img_align_celeba").exists()
    server.modes["img_align_celeba.zip"] = "ok"  # the source answers again: a good download replaces it
    D.download_data("celeba", root, archives=archives, base_url=_base(server), quiet=True)
    assert (archives / "img_align_celeba.zip").read_bytes() == CELEBA["img_align_celeba.zip"]
