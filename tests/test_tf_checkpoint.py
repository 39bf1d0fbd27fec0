"""Tests of course_lib.tf_checkpoint: the TF tensor-bundle reader (no TensorFlow needed).

Three kinds of evidence, none of them the reader checking itself:
* the fixture tests/fixtures/tf_small was written by TensorFlow (scripts/make_tf_fixture.py),
  which also recorded the names, dtypes and ranks TF itself reads back;
* checkpoints written here byte by byte from the format description (a tiny independent
  writer below, with a bit-by-bit CRC32C);
* fuzzing: truncated, bit-flipped and random files must raise CheckpointError only.
"""
from __future__ import annotations

import random
import shutil
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from course_lib.tf_checkpoint import (
    CheckpointError,
    crc32c,
    decode_varint,
    list_variables,
    masked_crc32c,
    parse_bundle_entry,
    parse_bundle_header,
    parse_message,
    read_checkpoint,
    read_index,
    resolve_checkpoint_prefix,
    unmask_crc32c,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tf_small"


# --------------------------------------------------------------- an independent writer
def slow_crc32c(data: bytes) -> int:
    """Bit-by-bit CRC32C (reflected Castagnoli polynomial), no table."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def slow_mask(data: bytes) -> int:
    crc = slow_crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative ints as two's complement, 10 bytes
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def f_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def f_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value)


def entry_proto(dtype: int, shape, offset: int, size: int, crc=None, shard: int = 0) -> bytes:
    dims = b"".join(f_bytes(2, f_varint(1, d)) for d in shape)
    out = f_varint(1, dtype) + f_bytes(2, dims)
    if shard:
        out += f_varint(3, shard)
    if offset:
        out += f_varint(4, offset)
    out += f_varint(5, size)
    if crc is not None:
        out += f_fixed32(6, crc)
    return out


def header_proto(num_shards: int = 1, endianness: int = 0) -> bytes:
    out = f_varint(1, num_shards)
    if endianness:
        out += f_varint(2, endianness)
    return out + f_bytes(3, f_varint(1, 1))


def block(pairs, restart_interval: int = 2) -> bytes:
    out, restarts, last = bytearray(), [], b""
    for i, (key, value) in enumerate(pairs):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(last)) and key[shared] == last[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        last = key
    if not restarts:
        restarts = [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def with_trailer(contents: bytes, kind: int = 0) -> bytes:
    return contents + bytes([kind]) + struct.pack("<I", slow_mask(contents + bytes([kind])))


def table(pairs, per_block: int = 3, kind: int = 0) -> bytes:
    """An SSTable: data blocks of ``per_block`` entries, empty metaindex, index, footer."""
    out, index = bytearray(), []
    for start in range(0, len(pairs), per_block):
        chunk = pairs[start:start + per_block]
        contents = block(chunk)
        index.append((chunk[-1][0], varint(len(out)) + varint(len(contents))))
        out += with_trailer(contents, kind)
    meta = block([])
    meta_handle = varint(len(out)) + varint(len(meta))
    out += with_trailer(meta)
    index_contents = block(index, restart_interval=1)
    index_handle = varint(len(out)) + varint(len(index_contents))
    out += with_trailer(index_contents)
    handles = meta_handle + index_handle
    return bytes(out) + handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", 0xDB4775248B80FB57)


def write_checkpoint(directory: Path, tensors: dict, prefix: str = "model", endianness: int = 0,
                     overrides: dict | None = None) -> Path:
    """Write ``tensors`` ({name: array}) as a TF bundle; ``overrides`` replaces entry protos."""
    data, pairs = bytearray(), [(b"", header_proto(1, endianness))]
    dtypes = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3,
              np.dtype("int64"): 9, np.dtype("bool"): 10, np.dtype("float16"): 19}
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder(">" if endianness else "<")).tobytes()
        proto = entry_proto(dtypes[arr.dtype], arr.shape, len(data), len(raw), slow_mask(raw))
        pairs.append((name.encode(), (overrides or {}).get(name, proto)))
        data += raw
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{prefix}.index").write_bytes(table(pairs))
    (directory / f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    return directory / prefix


SMALL = {
    "a/kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3,
    "a/bias": np.array([1.5, -2.0], np.float32),
    "b/step": np.array(2 ** 40 + 3, np.int64),
    "b/flags": np.array([True, False, True]),
    "c/half": np.array([[0.25, -8.0]], np.float16),
    "c/ints": np.array([-5, 7, 2 ** 31 - 1], np.int32),
    "c/double": np.array([np.pi], np.float64),
}


# ------------------------------------------------------------------------------ CRC32C
def test_crc32c_known_vectors():
    # RFC 3720 (iSCSI) appendix B.4 and the classic check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc32c(b"") == 0


def test_crc32c_large_inputs_match_bitwise_reference():
    rng = np.random.default_rng(0)
    for size in (16384, 50_001):  # the vectorised path, with a remainder
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c(data) == slow_crc32c(data)
        assert crc32c(np.frombuffer(data, np.uint8)) == slow_crc32c(data)
    assert crc32c(b"456789", crc32c(b"123")) == 0xE3069283  # extension


def test_crc_mask_by_hand():
    crc = 0xE3069283
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == (rotated + 0xA282EAD8) & 0xFFFFFFFF
    for value in (0, 1, 0xFFFFFFFF, 0xE3069283, 0x12345678):
        masked = ((((value >> 15) | (value << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
        assert unmask_crc32c(masked) == value


# ------------------------------------------------------------------ varints and protos
def test_decode_varint_hand_built():
    assert decode_varint(b"\x00", 0) == (0, 1)
    assert decode_varint(b"\x96\x01", 0) == (150, 2)
    assert decode_varint(b"xx\xac\x02", 2) == (300, 4)
    assert decode_varint(b"\xff" * 9 + b"\x01", 0) == (2 ** 64 - 1, 10)
    assert decode_varint(b"\xff\xff\xff\xff\x0f", 0, 32) == (2 ** 32 - 1, 5)
    for bad, bits in [(b"\xff" * 9 + b"\x02", 64), (b"\xff" * 11, 64), (b"\x80", 64), (b"", 64),
                      (b"\xff\xff\xff\xff\x1f", 32), (b"\x80\x80\x80\x80\x80\x01", 32)]:
        with pytest.raises(CheckpointError, match="varint"):
            decode_varint(bad, 0, bits)


def test_parse_message_wire_types():
    buf = b"\x08\x96\x01" + b"\x12\x03abc" + b"\x1d\x01\x00\x00\x80" + b"\x21" + bytes(range(8)) + b"\x08\x05"
    fields = parse_message(buf)
    assert fields[1] == [(0, 150), (0, 5)]
    assert fields[2] == [(2, b"abc")]
    assert fields[3] == [(5, 0x80000001)]
    assert fields[4] == [(1, int.from_bytes(bytes(range(8)), "little"))]
    for bad in (b"\x12\x05abc", b"\x1d\x01\x00", b"\x0b", b"\x00\x01", b"\x21\x00"):
        with pytest.raises(CheckpointError):
            parse_message(bad)


def test_parse_bundle_entry_and_header_hand_built():
    # dtype 1 (float), shape [2, 3], shard 0, offset 8, size 24, crc fixed32
    buf = (b"\x08\x01" + b"\x12\x08" + b"\x12\x02\x08\x02" + b"\x12\x02\x08\x03"
           + b"\x20\x08" + b"\x28\x18" + b"\x35\x78\x56\x34\x12")
    entry = parse_bundle_entry(buf)
    assert (entry.dtype, entry.shape, entry.shard_id, entry.offset, entry.size, entry.crc32c) == \
        (1, (2, 3), 0, 8, 24, 0x12345678)
    assert entry.dtype_name == "DT_FLOAT"
    assert parse_bundle_entry(b"\x08\x09\x12\x00\x28\x08").shape == ()  # scalar int64, no crc
    assert parse_bundle_entry(b"\x08\x09\x12\x00\x28\x08").crc32c is None
    with pytest.raises(CheckpointError, match="negative"):
        parse_bundle_entry(b"\x08\x01" + f_varint(4, -8))
    with pytest.raises(CheckpointError, match="dimension"):
        parse_bundle_entry(b"\x08\x01" + f_bytes(2, f_bytes(2, f_varint(1, -1))))
    with pytest.raises(CheckpointError, match="partitioned"):
        parse_bundle_entry(b"\x08\x01" + f_bytes(7, b""))
    with pytest.raises(CheckpointError, match="wire type"):
        parse_bundle_entry(b"\x0d\x01\x00\x00\x00")  # dtype as fixed32
    header = parse_bundle_header(b"\x08\x01\x1a\x02\x08\x01")
    assert (header.num_shards, header.endianness, header.producer) == (1, 0, 1)
    with pytest.raises(CheckpointError, match="shards"):
        parse_bundle_header(b"\x08\x00")
    with pytest.raises(CheckpointError, match="version"):
        parse_bundle_header(b"\x08\x01\x1a\x02\x10\x05")  # min_consumer 5


# ---------------------------------------------------------------- the TF-made fixture
def test_fixture_names_dtypes_shapes_as_tensorflow_reads_them():
    expected = np.load(FIXTURE / "outputs.npz")
    listing = list_variables(FIXTURE)
    names = [str(n) for n in expected["variable_names"]]
    assert sorted(listing) == names
    for name, tf_dtype, rank in zip(names, expected["variable_dtypes"], expected["variable_ranks"]):
        dtype, shape = listing[name]
        assert dtype == np.dtype(str(tf_dtype)), name
        assert len(shape) == int(rank), name
    assert listing["inpaint_net/conv1/kernel"] == (np.dtype(np.float32), (5, 5, 5, 4))
    assert listing["inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"][1] == (3, 3, 16, 8)
    assert listing["global_step"] == (np.dtype(np.int64), ())


def test_fixture_values_all_dtypes():
    expected = np.load(FIXTURE / "outputs.npz")
    values = read_checkpoint(FIXTURE)
    checked = 0
    for key in expected.files:
        if key.startswith("value:"):
            name = key[len("value:"):]
            assert values[name].dtype == expected[key].dtype, name
            np.testing.assert_array_equal(values[name], expected[key])
            checked += 1
    assert checked == 8  # double, half, int32, int64, bool, empty, global_step, conv1 kernel
    assert values["global_step"].shape == () and int(values["global_step"]) == 123456


def test_path_forms(tmp_path):
    prefix = FIXTURE / "snap-0"
    for form in (FIXTURE, prefix, str(prefix) + ".index", str(prefix) + ".data-00000-of-00001"):
        assert resolve_checkpoint_prefix(form) == prefix
    # a folder without a 'checkpoint' file but exactly one .index
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in FIXTURE.glob("snap-0*"):
        shutil.copy(f, copy / f.name)
    assert resolve_checkpoint_prefix(copy) == copy / "snap-0"
    # the 'checkpoint' file of another machine, with an absolute path
    (copy / "checkpoint").write_text('model_checkpoint_path: "/home/someone/model_logs/snap-0"\n')
    assert resolve_checkpoint_prefix(copy) == copy / "snap-0"
    (copy / "checkpoint").write_text('model_checkpoint_path: "C:\\\\logs\\\\snap-0"\n')  # Windows trainer
    assert resolve_checkpoint_prefix(copy / "checkpoint") == copy / "snap-0"
    some = read_checkpoint(copy, names=["global_step"])
    assert list(some) == ["global_step"]
    with pytest.raises(CheckpointError, match="no variable"):
        read_checkpoint(copy, names=["nope"])


def test_drive_checkpoint_txt_hint(tmp_path):
    folder = tmp_path / "places2"
    folder.mkdir()
    for name in ("a", "b"):
        write_checkpoint(folder, SMALL, prefix=name)
    (folder / "checkpoint.txt").write_text('model_checkpoint_path: "a"\n')
    with pytest.raises(CheckpointError, match="rename it to 'checkpoint'"):
        read_checkpoint(folder)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_checkpoint(tmp_path / "missing")
    (folder / "checkpoint").write_text('model_checkpoint_path: "zzz"\n')
    with pytest.raises(CheckpointError, match="zzz"):
        read_checkpoint(folder)


# --------------------------------------------------------------- hand-written bundles
def test_hand_written_checkpoint_round_trip(tmp_path):
    prefix = write_checkpoint(tmp_path, SMALL)
    values = read_checkpoint(prefix)
    assert list(values) == sorted(SMALL)
    for name, arr in SMALL.items():
        assert values[name].dtype == arr.dtype
        np.testing.assert_array_equal(values[name], arr)
    _, header, entries = read_index(prefix)
    assert header.num_shards == 1 and len(entries) == len(SMALL)


def test_big_endian_bundle(tmp_path):
    prefix = write_checkpoint(tmp_path, SMALL, endianness=1)
    values = read_checkpoint(prefix)
    for name, arr in SMALL.items():
        np.testing.assert_array_equal(values[name], arr)
        assert values[name].dtype.isnative


@pytest.mark.parametrize("proto, message", [
    (entry_proto(1, [2 ** 60], 0, 2 ** 62), "needs"),  # huge, consistent: beyond the file
    (entry_proto(1, [2 ** 40, 2 ** 40], 0, 2 ** 62), "needs"),
    (entry_proto(1, [3], 0, 2 ** 63 - 1), "declares"),  # size vs shape
    (entry_proto(1, [2], 2 ** 62, 8), "needs"),  # offset far beyond the file
    (entry_proto(1, [2], 0, 8, shard=3), "shard"),
    (entry_proto(7, [2], 0, 8), "DT_STRING"),
    (entry_proto(99, [2], 0, 8), "dtype enum 99"),
    (entry_proto(1, [2], 0, 8, crc=12345), "CRC32C"),
    (entry_proto(1, [2], 0, 9), "declares"),
])
def test_bad_entries_are_refused_without_allocating(tmp_path, proto, message):
    prefix = write_checkpoint(tmp_path, SMALL, overrides={"a/bias": proto})
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=message) as info:
            read_checkpoint(prefix)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2 ** 20, f"reading a bad entry allocated {peak} bytes"
    assert "a/bias" in str(info.value)
    assert str(tmp_path) in str(info.value)  # the message names the file


def test_snappy_and_bad_magic_and_missing_data(tmp_path):
    pairs = [(b"", header_proto()), (b"x", entry_proto(1, [1], 0, 4))]
    (tmp_path / "s.index").write_bytes(table(pairs, kind=1))
    with pytest.raises(CheckpointError, match="snappy"):
        read_checkpoint(tmp_path / "s")
    good = table(pairs)
    (tmp_path / "m.index").write_bytes(good[:-1] + b"\x00")
    with pytest.raises(CheckpointError, match="magic"):
        read_checkpoint(tmp_path / "m")
    (tmp_path / "d.index").write_bytes(good)
    with pytest.raises(CheckpointError, match="data shard"):
        read_checkpoint(tmp_path / "d")
    (tmp_path / "h.index").write_bytes(table([(b"x", entry_proto(1, [1], 0, 4))]))
    with pytest.raises(CheckpointError, match="header"):
        list_variables(tmp_path / "h")


# ---------------------------------------------------------------------------- fuzzing
def _read(prefix: Path):
    """The reader's result, or None for a CheckpointError; any other exception fails."""
    try:
        return read_checkpoint(prefix)
    except CheckpointError as exc:
        assert str(exc)
        return None


def _same(a, b) -> bool:
    return a is not None and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_fuzz_truncated_files(tmp_path):
    prefix = write_checkpoint(tmp_path / "w", SMALL)
    index = Path(str(prefix) + ".index").read_bytes()
    data = Path(str(prefix) + ".data-00000-of-00001").read_bytes()
    target = tmp_path / "t"
    target.mkdir()
    shutil.copy(Path(str(prefix) + ".data-00000-of-00001"), target / "model.data-00000-of-00001")
    for cut in range(len(index)):  # every truncation of the index
        (target / "model.index").write_bytes(index[:cut])
        assert _read(target / "model") is None, cut
    (target / "model.index").write_bytes(index)
    for cut in range(0, len(data), 3):  # truncations of the data file
        (target / "model.data-00000-of-00001").write_bytes(data[:cut])
        assert _read(target / "model") is None, cut
    # the TF-made fixture, sampled
    tf_index = (FIXTURE / "snap-0.index").read_bytes()
    shutil.copy(FIXTURE / "snap-0.data-00000-of-00001", target / "snap-0.data-00000-of-00001")
    for cut in random.Random(1).sample(range(len(tf_index)), 40):
        (target / "snap-0.index").write_bytes(tf_index[:cut])
        with pytest.raises(CheckpointError):
            list_variables(target / "snap-0")


def test_fuzz_bit_flips(tmp_path):
    """A flipped bit gives CheckpointError, or (in unchecked padding) the very same tensors."""
    rng = random.Random(2)
    for source in (write_checkpoint(tmp_path / "w", SMALL), FIXTURE / "snap-0"):
        original = read_checkpoint(source)
        target = tmp_path / f"flip_{source.name}"
        target.mkdir()
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copy(str(source) + suffix, str(target / source.name) + suffix)
        for suffix, count in ((".index", 150), (".data-00000-of-00001", 40)):
            path = Path(str(target / source.name) + suffix)
            clean = Path(str(source) + suffix).read_bytes()
            for _ in range(count):
                pos = rng.randrange(len(clean))
                flipped = bytearray(clean)
                flipped[pos] ^= 1 << rng.randrange(8)
                path.write_bytes(bytes(flipped))
                result = _read(target / source.name)
                assert result is None or _same(result, original), (suffix, pos)
            path.write_bytes(clean)


def test_fuzz_random_files_and_random_entries(tmp_path):
    rng = random.Random(3)
    target = tmp_path / "r"
    target.mkdir()
    magic = struct.pack("<Q", 0xDB4775248B80FB57)
    for i in range(150):
        size = rng.choice([0, 1, 47, 48, 49, 100, 1000])
        junk = bytes(rng.randrange(256) for _ in range(size))
        if i % 2:
            junk = junk[:-8] + magic if len(junk) >= 48 else junk  # plausible footer
        (target / "x.index").write_bytes(junk)
        assert _read(target / "x") is None
    # valid tables (good CRCs) whose protos and keys are random or mutated
    raw = np.arange(4, dtype=np.float32).tobytes()
    (target / "y.data-00000-of-00001").write_bytes(raw)
    good_entry = entry_proto(1, [4], 0, 16, slow_mask(raw))
    for i in range(200):
        if i % 3 == 0:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            mutated = bytearray(good_entry)
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            value = bytes(mutated)
        header = header_proto() if i % 5 else bytes(rng.randrange(256) for _ in range(6))
        (target / "y.index").write_bytes(table([(b"", header), (b"v", value)]))
        result = _read(target / "y")
        assert result is None or set(result) == {"v"}
    # random block contents behind a valid trailer and footer
    for _ in range(100):
        contents = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        body = with_trailer(contents)
        meta = with_trailer(block([]))
        handles = varint(len(body)) + varint(len(meta) - 5) + varint(0) + varint(len(contents))
        (target / "z.index").write_bytes(body + meta + handles + b"\0" * (40 - len(handles)) + magic)
        assert _read(target / "z") is None
