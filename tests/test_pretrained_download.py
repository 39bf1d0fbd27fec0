"""course_lib.fetch and course_lib.pretrained.download against a local HTTP server on 127.0.0.1 (never the network).

The server (below) serves the TF fixture tests/fixtures/tf_small the way Google Drive names it
(checkpoint.txt), a quota page, a truncated transfer, a server that ignores Range, a wrong
file and a 403. gdown's folder listing is the one part replaced (by a fixed listing): it reads
drive.google.com, which tests never touch.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import hashlib
import json
import sys

import pytest
import torch

from course_lib import fetch as F
from course_lib import pretrained as P
from course_lib.__main__ import main as cli_main
from course_lib.convert import ConversionError

FIXTURE = Path(__file__).parent / "fixtures" / "tf_small"
# What the fixture converts to (read from its variables by hand: conv1 [5, 5, 5, 4], critics
# conv1 [5, 5, 3, 4], dense kernels for 32x32 and 64x64 inputs).
FIXTURE_ARCH = {"cnum": 4, "local_cnum": 4, "local_size": 32, "global_cnum": 4, "global_size": 64}
# How Google Drive lists a release folder: checkpoint as checkpoint.txt, plus the .meta graph.
LISTING = [("id-ckpt", "checkpoint.txt"), ("id-index", "snap-0.index"),
           ("id-data", "snap-0.data-00000-of-00001"), ("id-meta", "snap-0.meta")]

QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
              b"<p class=\"uc-error-subcaption\">Too many users have viewed or downloaded this file recently.</p>"
              b"</body></html>")


class FileServer:
    """``/file/<id>`` from ``files`` (with Range: 206 + Content-Range), each id in a ``modes`` behaviour:
    ok | no-range (ignores Range, 200) | wrong-range (206 with a Content-Range at another offset) | truncated (full Content-Length, half the bytes) | quota
    (Drive-like HTML page, 200) | confirm (an HTML form pointing at ``<id>-confirmed``) | forbidden (403).
    ``requests`` records (path, Range header) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, Optional[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                file_id = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
                mode = server.modes.get(file_id, "ok")
                if file_id.endswith("-confirmed"):
                    file_id, mode = file_id[: -len("-confirmed")], "ok"
                if file_id not in server.files:
                    self.send_error(404)
                    return
                data = server.files[file_id]
                if mode == "forbidden":
                    self.send_error(403)
                    return
                if mode in ("quota", "confirm"):
                    page = QUOTA_PAGE if mode == "quota" else (
                        f'<!DOCTYPE html><html><body><form id="download-form" action="http://127.0.0.1:{server.port}'
                        f'/file/{file_id}-confirmed" method="get"><input type="hidden" name="id" value="{file_id}">'
                        '<input type="hidden" name="confirm" value="t"></form></body></html>').encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                start = 0
                if rng and mode != "no-range" and rng.startswith("bytes="):
                    start = int(rng[6:].split("-", 1)[0])
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    first = 0 if mode == "wrong-range" else start  # wrong-range: claims another offset
                    self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if mode == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, file_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/file/{file_id}"

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/{{id}}"

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


BLOB = bytes(range(256)) * 4099  # 1,049,344 bytes: more than one 1 MiB read


# ----------------------------------------------------------------------------- fetch

def test_fetch_downloads_checks_and_renames_atomically(server, tmp_path):
    server.files["a"] = BLOB
    dest = tmp_path / "sub" / "a.bin"
    assert F.fetch(server.url("a"), dest, sha256=_sha(BLOB), size=len(BLOB)) == dest
    assert dest.read_bytes() == BLOB and not F.part_path(dest).exists()
    n = len(server.requests)
    F.fetch(server.url("a"), dest, sha256=_sha(BLOB))  # already there and right: no request
    assert len(server.requests) == n
    assert F.sha256_file(dest) == _sha(BLOB)


def test_an_interrupted_download_is_never_used_and_resumes_with_range(server, tmp_path):
    server.files["a"], server.modes["a"] = BLOB, "truncated"
    dest = tmp_path / "a.bin"
    with pytest.raises(F.FetchError, match=r"stopped at \d+ of 1049344 bytes.*resumes"):
        F.fetch(server.url("a"), dest, sha256=_sha(BLOB))
    assert not dest.exists()
    part = F.part_path(dest)
    assert part.stat().st_size == len(BLOB) // 2 and part.read_bytes() == BLOB[: len(BLOB) // 2]
    server.modes["a"] = "ok"
    F.fetch(server.url("a"), dest, sha256=_sha(BLOB))
    assert server.requests[-1][1] == f"bytes={len(BLOB) // 2}-"
    assert dest.read_bytes() == BLOB and not part.exists()


def test_a_server_that_ignores_range_restarts_the_part_instead_of_appending(server, tmp_path):
    server.files["a"], server.modes["a"] = BLOB, "no-range"
    dest = tmp_path / "a.bin"
    F.part_path(dest).write_bytes(BLOB[:1000])
    F.fetch(server.url("a"), dest, sha256=_sha(BLOB))
    assert server.requests[-1][1] == "bytes=1000-"  # asked, got a 200 with the whole file
    assert dest.read_bytes() == BLOB


def test_a_206_for_another_range_deletes_the_part_instead_of_appending(server, tmp_path):
    server.files["a"], server.modes["a"] = BLOB, "wrong-range"
    dest = tmp_path / "a.bin"
    F.part_path(dest).write_bytes(BLOB[:1000])
    with pytest.raises(F.FetchError, match=r"another byte range .*start it over"):
        F.fetch(server.url("a"), dest, sha256=_sha(BLOB))
    assert not dest.exists() and not F.part_path(dest).exists()
    server.modes["a"] = "ok"
    F.fetch(server.url("a"), dest, sha256=_sha(BLOB))
    assert dest.read_bytes() == BLOB


def test_a_complete_part_is_checked_and_used(server, tmp_path):
    server.files["a"] = BLOB
    dest = tmp_path / "a.bin"
    F.part_path(dest).write_bytes(BLOB)  # every byte arrived, the rename did not happen
    F.fetch(server.url("a"), dest, sha256=_sha(BLOB))  # 416 from the server: the part is checked
    assert dest.read_bytes() == BLOB


def test_a_wrong_file_is_deleted_and_reported(server, tmp_path):
    server.files["a"] = BLOB[::-1]
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old good file")
    with pytest.raises(F.ChecksumMismatch, match=r"has sha256 .* expected .*deleted, nothing was used"):
        F.fetch(server.url("a"), dest, sha256=_sha(b"old good file" + b"!"))
    assert dest.read_bytes() == b"old good file" and not F.part_path(dest).exists()
    with pytest.raises(F.ChecksumMismatch, match=r"offers a.bin with 1049344 bytes, but it must be 5"):
        F.fetch(server.url("a"), tmp_path / "b" / "a.bin", size=5)


def test_an_html_page_or_a_refusal_is_one_sentence_and_saves_nothing(server, tmp_path):
    server.files["a"], server.modes["a"] = BLOB, "quota"
    dest = tmp_path / "a.bin"
    with pytest.raises(F.SourceRefused, match=r"sent a web page instead of weights.*nothing was saved\. By hand") as info:
        F.fetch(server.url("a"), dest, what="weights", manual="By hand: do this.")
    assert "Quota exceeded" in info.value.page
    assert "\n" not in str(info.value)
    assert not dest.exists() and not F.part_path(dest).exists()
    server.modes["a"] = "forbidden"
    with pytest.raises(F.SourceRefused, match=r"refused access \(403"):
        F.fetch(server.url("a"), dest)
    with pytest.raises(F.SourceRefused, match=r"no such file \(404\)"):
        F.fetch(server.url("missing"), dest)
    with pytest.raises(F.FetchError, match=r"could not reach"):
        F.fetch("http://127.0.0.1:9/none", dest, timeout=5)  # port 9 (discard): nothing listens
    assert not dest.exists()


def test_looks_like_html():
    assert F.looks_like_html(b"  <!DOCTYPE html><html>") and F.looks_like_html(b"<HTML>")
    assert not F.looks_like_html(b"\x00\x01binary") and not F.looks_like_html(b"model_checkpoint_path")


# ----------------------------------------------------------------------------- the cache folder

def test_weights_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(P.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.weights_dir() == tmp_path / "home" / ".cache" / "course_lib" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert P.weights_dir() == tmp_path / "xdg" / "course_lib" / "weights"
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "env"))
    assert P.weights_dir() == tmp_path / "env"
    assert P.weights_dir(tmp_path / "arg") == tmp_path / "arg"


# ----------------------------------------------------------------------------- download

def _serve_fixture(server: FileServer) -> None:
    server.files.update({"id-ckpt": (FIXTURE / "checkpoint").read_bytes(),
                         "id-index": (FIXTURE / "snap-0.index").read_bytes(),
                         "id-data": (FIXTURE / "snap-0.data-00000-of-00001").read_bytes(),
                         "id-meta": b"a graph the converter does not need"})


@pytest.fixture
def drive(server, tmp_path, monkeypatch):
    """The fixture served as Drive serves a release folder; the cache in tmp_path/cache."""
    _serve_fixture(server)
    monkeypatch.setenv(P.DRIVE_URL_ENV, server.template)
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(P, "list_drive_folder", lambda folder_id: list(LISTING))
    monkeypatch.setattr(P, "OFFICIAL_ARCHITECTURE", dict(FIXTURE_ARCH))
    return server


def test_download_fetches_renames_converts_records_and_reuses(drive, tmp_path, capsys):
    cache = tmp_path / "cache"
    pt = P.download("Places2")
    out = capsys.readouterr().out
    assert pt == cache / "places2.pt"
    assert "CC BY-NC 4.0" in out and "non-commercial" in out
    assert (cache / "places2" / "checkpoint").read_bytes() == (FIXTURE / "checkpoint").read_bytes()
    assert not (cache / "places2" / "checkpoint.txt").exists()
    assert not (cache / "places2" / "snap-0.meta").exists()  # not needed, not fetched
    assert not list(cache.rglob("*.part"))
    manifest = json.loads((cache / "places2.json").read_text())
    assert manifest["files"]["snap-0.index"]["sha256"] == _sha((FIXTURE / "snap-0.index").read_bytes())
    assert manifest["converted"]["sha256"] == F.sha256_file(pt)
    assert "CC BY-NC 4.0" in manifest["license"]
    # by name, everywhere: the same weights as the fixture converted directly
    direct = P.load_pretrained(FIXTURE)
    for loaded in (P.load_pretrained("places2"), P.build_generator(P.load_weights("places2"))):
        for k, v in direct.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v), k
    local, glob = P.load_pretrained_critics("places2")
    assert (local.size, glob.size) == (32, 64)
    n = len(drive.requests)
    assert P.download("places2") == pt and len(drive.requests) == n  # reused: no request
    assert "already downloaded" in capsys.readouterr().out


def test_files_copied_by_hand_into_the_cache_are_converted_without_drive(drive, tmp_path, monkeypatch):
    import shutil
    folder = tmp_path / "cache" / "celeba"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE / "checkpoint", folder / "checkpoint.txt")  # as a browser saves it from Drive
    for name in ("snap-0.index", "snap-0.data-00000-of-00001"):
        shutil.copy(FIXTURE / name, folder / name)

    def no_drive(folder_id):
        raise AssertionError("the folder was listed although every file was there")
    monkeypatch.setattr(P, "list_drive_folder", no_drive)
    pt = P.download("celeba", quiet=True)
    assert (folder / "checkpoint").is_file() and not (folder / "checkpoint.txt").exists()
    assert drive.requests == [] and P.cached_weights("celeba") == pt
    assert json.loads((tmp_path / "cache" / "celeba.json").read_text())["files"]["checkpoint"]["sha256"] == \
        _sha((FIXTURE / "checkpoint").read_bytes())


def test_download_checks_the_official_architecture(drive, monkeypatch):
    monkeypatch.setattr(P, "OFFICIAL_ARCHITECTURE", {"cnum": 32, "local_cnum": 64, "local_size": 128,
                                                    "global_cnum": 64, "global_size": 256})
    with pytest.raises(ConversionError, match=r"not to the official model: cnum 4 \(expected 32\)"):
        P.download("celeba", quiet=True)
    assert P.cached_weights("celeba") is None


def test_download_resumes_after_an_interruption(drive, tmp_path):
    drive.modes["id-data"] = "truncated"
    with pytest.raises(F.FetchError, match=r"stopped at .*resumes.*By hand: open https://drive.google.com/"
                                           r"drive/folders/1M3AFy7x9DqXaI-fINSynW7FJSXYROfv-"):
        P.download("places2", quiet=True)
    assert P.cached_weights("places2") is None and not (tmp_path / "cache" / "places2.pt").exists()
    drive.modes["id-data"] = "ok"
    P.download("places2", quiet=True)
    assert ("/file/id-data", f"bytes={(FIXTURE / 'snap-0.data-00000-of-00001').stat().st_size // 2}-") in drive.requests
    assert P.cached_weights("places2") is not None


def test_a_quota_page_is_one_sentence_with_the_manual_steps(drive, tmp_path):
    drive.modes["id-data"] = "quota"
    with pytest.raises(F.SourceRefused) as info:
        P.download("imagenet", quiet=True)
    message = str(info.value)
    assert "Google Drive did not send snap-0.data-00000-of-00001" in message and "quota" in message
    assert "136APWSdPRAF7-XoS8sMBTLV-X3f-ogE0" in message and "rename checkpoint.txt to checkpoint" in message
    assert "\n" not in message
    assert not (tmp_path / "cache" / "imagenet.pt").exists()


def test_a_drive_confirmation_page_is_followed(drive):
    pytest.importorskip("gdown")  # the page is read by gdown's parser
    drive.modes["id-data"] = "confirm"
    P.download("celebahq", quiet=True)
    assert any(path.startswith("/file/id-data-confirmed") for path, _ in drive.requests)


def test_a_changed_file_is_refused_against_the_recorded_sha256(drive, tmp_path):
    pt = P.download("places2", quiet=True)
    data_file = tmp_path / "cache" / "places2" / "snap-0.data-00000-of-00001"
    original = data_file.read_bytes()
    data_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # damaged on disk
    drive.files["id-data"] = original[:-1] + bytes([original[-1] ^ 2])  # and Drive now serves another file
    with pytest.raises(F.ChecksumMismatch, match="has sha256 .* expected"):
        P.download("places2", force=True, quiet=True)
    assert P.cached_weights("places2") == pt  # the converted file made from the good files stays
    drive.files["id-data"] = original
    assert P.download("places2", force=True, quiet=True) == pt  # repaired: fetched again, same sha256
    assert data_file.read_bytes() == original
    damaged = pt.read_bytes()
    pt.write_bytes(damaged[:100] + bytes([damaged[100] ^ 1]) + damaged[101:])  # the converted file changed afterwards
    with pytest.raises(ValueError, match="differs from the file recorded"):
        P.load_pretrained("places2")


def test_a_name_not_downloaded_says_which_command(tmp_path, monkeypatch):
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"not downloaded yet .*python -m course_lib download celeba"):
        P.load_pretrained("celeba")
    with pytest.raises(ValueError, match="unknown official model 'places3'"):
        P.download("places3")


def test_without_gdown_the_message_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(ImportError, match=r"pip install gdown"):
        P.list_drive_folder("1M3AFy7x9DqXaI-fINSynW7FJSXYROfv-")


def test_cli_download_inpaint_and_evaluate_by_name(drive, tmp_path, capsys):
    from PIL import Image
    assert cli_main(["download", "places2", "--dir", str(tmp_path / "other")]) == 0
    assert (tmp_path / "other" / "places2.pt").is_file()
    capsys.readouterr()
    assert cli_main(["download", "celeba"]) == 0  # into $COURSE_LIB_WEIGHTS
    assert capsys.readouterr().out.strip().endswith(str(tmp_path / "cache" / "celeba.pt"))
    image, mask = tmp_path / "a.png", tmp_path / "m.png"
    Image.new("RGB", (40, 32), (200, 100, 50)).save(image)
    m = Image.new("L", (40, 32), 0)
    m.paste(255, (8, 8, 24, 24))
    m.save(mask)
    assert cli_main(["inpaint", "--image", str(image), "--mask", str(mask), "--checkpoint", "celeba",
                     "--output", str(tmp_path / "o.png"), "--device", "cpu"]) == 0
    assert Image.open(tmp_path / "o.png").size == (40, 32)
    assert cli_main(["evaluate", "--checkpoint", "celeba", "--data", "toy", "--n", "2", "--size", "32",
                     "--device", "cpu"]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", "--checkpoint", "imagenet", "--data", "toy", "--n", "2"]) == 2
    assert "python -m course_lib download imagenet" in capsys.readouterr().err
    drive.modes["id-index"] = "quota"
    assert cli_main(["download", "celebahq"]) == 2
    err = capsys.readouterr().err
    assert "download: error: Google Drive did not send snap-0.index" in err and "Traceback" not in err


def test_make_demo_labels_the_model_and_names_the_command_for_real_weights(tmp_path, monkeypatch, capsys):
    import importlib.util
    from PIL import Image
    spec = importlib.util.spec_from_file_location("demo", Path(__file__).parents[1] / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "empty"))
    assert demo.main(["--output", str(tmp_path / "toy.png"), "--toy", "1"]) == 0
    out = capsys.readouterr().out
    assert "This is the bundled toy model (cnum 8, trained on a CPU on 64 px procedural textures" in out
    assert "python -m course_lib download places2" in out and "DeepFill v1 toy (64 px textures)" in out
    from course_lib.convert import convert_checkpoint
    convert_checkpoint(FIXTURE, tmp_path / "cache" / "places2.pt")  # the fixture stands in for Places2
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "cache"))
    assert demo.main(["--output", str(tmp_path / "official.png"), "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "columns: input (hole white) | DeepFill v1, official Places2 | diffusion" in out
    assert "toy" not in out
    grid = Image.open(tmp_path / "official.png")
    assert grid.width == 4 * (64 * 3 + 2) + 2 and grid.height == 5 * (64 * 3 + 2) + 2 + 14  # 5 photos, a label strip


def test_the_architecture_check_reads_the_critics_only_when_the_checkpoint_has_them():
    official = {"cnum": 32, "local_cnum": 64, "local_size": 128, "global_cnum": 64, "global_size": 256}
    P._check_architecture({"config": {"cnum": 32}, "generator": {}}, "places2", official)  # generator only: fine
    with pytest.raises(ConversionError, match=r"local_size 64 \(expected 128\)"):
        P._check_architecture({"config": {**official, "local_size": 64}, "local_critic": {}}, "places2", official)
    with pytest.raises(ConversionError, match=r"cnum 16 \(expected 32\)"):
        P._check_architecture({"config": {"cnum": 16}}, "places2", official)


def test_notebook_model_uses_the_cache_downloads_when_asked_and_otherwise_notes_the_toy_model(drive, tmp_path,
                                                                                               monkeypatch, capsys):
    repo_weights = Path(__file__).parents[1] / "data" / "weights"
    if any((repo_weights / n).exists() for n in ("places2.pt", "places2", "celeba.pt", "celeba")):
        pytest.skip("official weights in this checkout's data/weights/ (found before the cache)")
    toy = P.official_or_toy("places2")  # nothing cached, not on Colab: the toy model and one note
    out = capsys.readouterr().out
    assert toy.size == 64 and drive.requests == []
    assert out.count("\n") == 1 and "python -m course_lib download places2" in out
    fetched = P.official_or_toy("places2", download_now=True, quiet=True)  # asked: downloads
    assert fetched.size == 256 and "official Places2" in fetched.name and drive.requests
    capsys.readouterr()
    n = len(drive.requests)
    assert P.official_or_toy("places2").size == 256 and len(drive.requests) == n  # cached: reused
    monkeypatch.setenv("COURSE_LIB_CI", "1")  # nbval: never the cache, so outputs do not depend on a machine
    assert P.official_or_toy("places2").size == 64
    monkeypatch.delenv("COURSE_LIB_CI")
    drive.modes["id-data"] = "quota"
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path / "fresh"))
    assert P.official_or_toy("celeba", download_now=True, quiet=True).size == 64  # refused: the toy model
    out = capsys.readouterr().out
    assert "the download failed (Google Drive did not send" in out and "using the toy model" in out


def test_list_drive_folder_reads_gdowns_listing(monkeypatch):
    import collections
    import types
    entry = collections.namedtuple("GoogleDriveFileToDownload", ("id", "path", "local_path"))
    calls = []

    def listing(**kwargs):
        calls.append(kwargs)
        return [entry("f1", "places2/checkpoint.txt", "/x/places2/checkpoint.txt"),
                entry("f2", "places2/snap-0.index", "/x/places2/snap-0.index")]
    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download_folder=listing, __version__="6"))
    assert P.list_drive_folder("abc") == [("f1", "checkpoint.txt"), ("f2", "snap-0.index")]
    assert calls == [{"id": "abc", "skip_download": True, "quiet": True}]

    def old_gdown(id, quiet=False):  # noqa: A002 (gdown's name) - gdown < 5.1: no skip_download
        raise AssertionError("not reached")
    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download_folder=old_gdown, __version__="4.7"))
    with pytest.raises(ImportError, match=r"gdown \(4.7\) cannot list a folder.*gdown>=5.1"):
        P.list_drive_folder("abc")

    def refused(**kwargs):
        raise RuntimeError("Cannot retrieve the folder information from the link.\nmore")
    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download_folder=refused))
    with pytest.raises(F.SourceRefused, match=r"did not list the folder abc \(RuntimeError: Cannot retrieve"):
        P.list_drive_folder("abc")


def test_the_installed_gdown_has_the_api_course_lib_calls():
    """Where gdown is installed: download_folder takes id, skip_download and quiet (no network)."""
    import inspect
    gdown = pytest.importorskip("gdown")
    params = inspect.signature(gdown.download_folder).parameters
    assert {"id", "skip_download", "quiet"} <= set(params)
    from gdown.download import get_url_from_gdrive_confirmation  # follows Drive's confirmation page
    page = ('<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="hidden" name="id" value="F"><input type="hidden" name="confirm" value="t"></form>')
    url = get_url_from_gdrive_confirmation(page)
    assert url.startswith("https://drive.usercontent.google.com/download?") and "id=F" in url and "confirm=t" in url
