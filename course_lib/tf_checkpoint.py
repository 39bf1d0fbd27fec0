"""Read TensorFlow checkpoints (the "tensor bundle" format) with plain Python + NumPy.

The official DeepFill v1 weights are TF checkpoints: a text file ``checkpoint`` naming
the prefix, ``<prefix>.index`` and ``<prefix>.data-00000-of-00001``. This module reads
them without TensorFlow so that course_lib can load them (notebook 90, official weights).

Format, as far as this reader needs it:

* ``<prefix>.index`` is a LevelDB-style sorted table (SSTable). It ends with a 48-byte
  footer: two block handles (varint offset + varint size: the metaindex and the index
  block), zero padding, then the 8-byte magic ``0xdb4775248b80fb57`` (little endian).
  Every block is followed by a 5-byte trailer: a compression byte (0 = none; 1 = snappy,
  refused here) and the masked CRC32C of the block contents plus that byte. A block holds
  entries ``varint shared, varint non_shared, varint value_len, key_delta, value`` (keys are
  prefix-compressed against the previous key), then ``uint32`` restart offsets and their
  count. The index block maps a separator key to the handle of each data block.
* The empty key ``""`` holds a ``BundleHeaderProto`` (num_shards, endianness, version);
  every other key is a variable name whose value is a ``BundleEntryProto`` (dtype, shape,
  shard_id, offset, size, crc32c = masked CRC32C of the raw tensor bytes).
* The raw little-endian tensor bytes live in ``<prefix>.data-%05d-of-%05d``.

Everything read is validated (magic, handles and blocks within the file, key lengths,
varint overflow, dims x itemsize == size, offset + size within the shard, CRCs); any
problem raises :class:`CheckpointError` naming the file and what is wrong. No buffer is
allocated from a size that was not first checked against the real file size.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

__all__ = [
    "CheckpointError",
    "crc32c",
    "masked_crc32c",
    "unmask_crc32c",
    "decode_varint",
    "parse_message",
    "BundleHeader",
    "BundleEntry",
    "parse_bundle_header",
    "parse_bundle_entry",
    "resolve_checkpoint_prefix",
    "read_index",
    "list_variables",
    "read_checkpoint",
    "TABLE_MAGIC",
]

PathLike = Union[str, "os.PathLike[str]"]

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # 2 block handles (<= 20 bytes each) padded to 40, + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c
CRC_MASK_DELTA = 0xA282EAD8


class CheckpointError(ValueError):
    """A TensorFlow checkpoint that cannot be found, is malformed, truncated or unsupported."""


# ----------------------------------------------------------------------------- CRC32C
def _make_crc_table() -> list[int]:
    """Byte table of CRC32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)
_VECTOR_MIN = 1 << 14  # below this many bytes the plain loop is fast enough


def _crc_register_loop(register: int, data: Union[bytes, bytearray, memoryview]) -> int:
    """Advance the (un-inverted) CRC register over ``data``, one table lookup per byte."""
    table = _CRC_TABLE
    for byte in bytes(data):
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _crc_register_vector(register: int, data: np.ndarray) -> int:
    """Same as :func:`_crc_register_loop`, vectorised with NumPy for large inputs.

    The register update is linear over GF(2): running ``n`` bytes from register ``r``
    gives ``Z_n(r) ^ run(0, bytes)``, where ``Z_n`` is the effect of ``n`` zero bytes. So
    the data is cut into ``k`` chunks of ``n`` bytes whose registers from 0 are computed
    side by side (one NumPy step per byte column), together with ``Z_n`` of the 32 unit
    registers; the chunks are then chained in Python with ``Z_n``.
    """
    size = data.size
    n = max(64, int(size ** 0.5))
    k = size // n
    body = data[: k * n].reshape(k, n).T  # (n, k): column j holds byte j of every chunk
    body = np.ascontiguousarray(body)
    regs = np.zeros(k + 32, dtype=np.uint32)  # k chunk registers + 32 unit registers
    regs[k:] = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    zeros32 = np.zeros(32, dtype=np.uint8)
    table = _CRC_TABLE_NP
    for j in range(n):
        column = np.concatenate([body[j], zeros32]).astype(np.uint32)  # (k + 32,)
        regs = table[(regs ^ column) & 0xFF] ^ (regs >> np.uint32(8))
    chunk_regs = [int(v) for v in regs[:k]]
    basis = [int(v) for v in regs[k:]]  # Z_n applied to bit i, i = 0..31

    def advance_zeros(r: int) -> int:
        out = 0
        i = 0
        while r:
            if r & 1:
                out ^= basis[i]
            r >>= 1
            i += 1
        return out

    for chunk in chunk_regs:
        register = advance_zeros(register) ^ chunk
    return _crc_register_loop(register, data[k * n:].tobytes())


def crc32c(data: Union[bytes, bytearray, memoryview, np.ndarray], crc: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``; pass a previous result as ``crc`` to extend it.

    Table-driven; inputs of 16 KiB or more use a NumPy-vectorised version of the same
    table (a 100 MB shard takes about a second instead of a minute).
    ``crc32c(b"123456789") == 0xE3069283``.
    """
    register = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    if isinstance(data, np.ndarray):
        arr = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        arr = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if arr.size >= _VECTOR_MIN:
        register = _crc_register_vector(register, arr)
    else:
        register = _crc_register_loop(register, arr.tobytes())
    return register ^ 0xFFFFFFFF


def masked_crc32c(data: Union[bytes, bytearray, memoryview, np.ndarray]) -> int:
    """TF's masked CRC (``crc32c::Mask``): ``((crc >> 15) | (crc << 17)) + 0xa282ead8``, 32-bit."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


def unmask_crc32c(masked: int) -> int:
    """Inverse of the mask: ``rot = masked - 0xa282ead8; crc = (rot >> 17) | (rot << 15)``."""
    rot = (masked - CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ------------------------------------------------------------------- protobuf wire format
def decode_varint(buf: Union[bytes, memoryview], pos: int, max_bits: int = 64) -> tuple[int, int]:
    """Decode a base-128 varint at ``buf[pos]``; returns ``(value, new_pos)``.

    Raises :class:`CheckpointError` when the varint runs past the end of ``buf`` or does
    not fit in ``max_bits`` bits (64 for protobuf/handles, 32 for block entry headers).
    """
    result = 0
    shift = 0
    end = len(buf)
    max_bytes = (max_bits + 6) // 7
    for _ in range(max_bytes):
        if pos >= end:
            raise CheckpointError("truncated varint (ran past the end of its buffer)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> max_bits:
                raise CheckpointError(f"varint overflows {max_bits} bits")
            return result, pos
        shift += 7
    raise CheckpointError(f"varint longer than {max_bytes} bytes (overflows {max_bits} bits)")


def parse_message(buf: Union[bytes, memoryview]) -> dict[int, list[tuple[int, Union[int, bytes]]]]:
    """Split a serialized protobuf message into ``{field_number: [(wire_type, value), ...]}``.

    Wire types: 0 varint -> int (unsigned 64-bit), 1 fixed64 -> int, 2 length-delimited ->
    bytes, 5 fixed32 -> int. Groups (3, 4), field number 0 and out-of-bounds lengths raise
    :class:`CheckpointError`.
    """
    fields: dict[int, list[tuple[int, Union[int, bytes]]]] = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = decode_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > (1 << 29) - 1:
            raise CheckpointError(f"invalid protobuf field number {number}")
        value: Union[int, bytes]
        if wire == 0:
            value, pos = decode_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise CheckpointError("truncated fixed64 protobuf field")
            value = int.from_bytes(bytes(buf[pos:pos + 8]), "little")
            pos += 8
        elif wire == 2:
            length, pos = decode_varint(buf, pos)
            if length > end - pos:
                raise CheckpointError(
                    f"protobuf field {number} declares {length} bytes but only {end - pos} remain")
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise CheckpointError("truncated fixed32 protobuf field")
            value = int.from_bytes(bytes(buf[pos:pos + 4]), "little")
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} (field {number})")
        fields.setdefault(number, []).append((wire, value))
    return fields


def _signed(value: int, bits: int, what: str) -> int:
    """Two's-complement int64 from a varint; check that it fits ``bits`` (32 or 64)."""
    if value >= 1 << 63:
        value -= 1 << 64
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise CheckpointError(f"{what} = {value} does not fit in int{bits}")
    return value


def _scalar(fields: dict, number: int, wire: int, what: str, default: int = 0) -> int:
    """Last occurrence of a scalar field (protobuf semantics), checking its wire type."""
    values = fields.get(number)
    if not values:
        return default
    got_wire, value = values[-1]
    if got_wire != wire:
        raise CheckpointError(f"{what}: wrong protobuf wire type {got_wire} (expected {wire})")
    return int(value)  # type: ignore[arg-type]


def _messages(fields: dict, number: int, what: str) -> list[bytes]:
    out = []
    for got_wire, value in fields.get(number, []):
        if got_wire != 2:
            raise CheckpointError(f"{what}: wrong protobuf wire type {got_wire} (expected 2)")
        out.append(value)
    return out


# TF DataType enum (types.proto) -> NumPy dtype (little endian). bfloat16 is widened.
_DTYPES: dict[int, tuple[str, np.dtype]] = {
    1: ("DT_FLOAT", np.dtype("<f4")),
    2: ("DT_DOUBLE", np.dtype("<f8")),
    3: ("DT_INT32", np.dtype("<i4")),
    4: ("DT_UINT8", np.dtype("u1")),
    5: ("DT_INT16", np.dtype("<i2")),
    6: ("DT_INT8", np.dtype("i1")),
    9: ("DT_INT64", np.dtype("<i8")),
    10: ("DT_BOOL", np.dtype("?")),
    14: ("DT_BFLOAT16", np.dtype("<u2")),
    17: ("DT_UINT16", np.dtype("<u2")),
    19: ("DT_HALF", np.dtype("<f2")),
    22: ("DT_UINT32", np.dtype("<u4")),
    23: ("DT_UINT64", np.dtype("<u8")),
}
_UNSUPPORTED_DTYPES = {7: "DT_STRING", 8: "DT_COMPLEX64", 18: "DT_COMPLEX128",
                       20: "DT_RESOURCE", 21: "DT_VARIANT"}


@dataclass(frozen=True)
class BundleHeader:
    """``BundleHeaderProto``: number of data shards, byte order, format version."""

    num_shards: int
    endianness: int  # 0 little, 1 big
    producer: int
    min_consumer: int


@dataclass(frozen=True)
class BundleEntry:
    """``BundleEntryProto``: where one tensor lives and what it is."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: Optional[int]  # masked CRC32C of the raw bytes; None when absent

    @property
    def dtype_name(self) -> str:
        if self.dtype in _DTYPES:
            return _DTYPES[self.dtype][0]
        return _UNSUPPORTED_DTYPES.get(self.dtype, f"dtype enum {self.dtype}")


_READER_VERSION = 1  # tensor-bundle format version this reader understands (TF writes 1)


def parse_bundle_header(buf: bytes) -> BundleHeader:
    """Decode a ``BundleHeaderProto`` (1 num_shards int32, 2 endianness enum, 3 VersionDef)."""
    fields = parse_message(buf)
    num_shards = _signed(_scalar(fields, 1, 0, "num_shards"), 32, "num_shards")
    endianness = _scalar(fields, 2, 0, "endianness")
    producer = min_consumer = 0
    bad: list[int] = []
    for version in _messages(fields, 3, "version"):
        vf = parse_message(version)
        producer = _signed(_scalar(vf, 1, 0, "version.producer"), 32, "version.producer")
        min_consumer = _signed(_scalar(vf, 2, 0, "version.min_consumer"), 32, "version.min_consumer")
        for wire, value in vf.get(3, []):
            if wire == 0:
                bad.append(_signed(int(value), 32, "bad_consumers"))
            elif wire == 2:  # packed repeated int32
                pos = 0
                while pos < len(value):  # type: ignore[arg-type]
                    v, pos = decode_varint(value, pos)  # type: ignore[arg-type]
                    bad.append(_signed(v, 32, "bad_consumers"))
            else:
                raise CheckpointError(f"version.bad_consumers: wrong wire type {wire}")
    if not 1 <= num_shards <= 99999:
        raise CheckpointError(f"header declares {num_shards} data shards (expected 1..99999)")
    if endianness not in (0, 1):
        raise CheckpointError(f"header has unknown endianness {endianness} (0 little, 1 big)")
    if min_consumer > _READER_VERSION or _READER_VERSION in bad:
        raise CheckpointError(
            f"checkpoint format version needs a reader >= {min_consumer} (this reader is "
            f"version {_READER_VERSION}); re-save it with an older TensorFlow")
    return BundleHeader(num_shards, endianness, producer, min_consumer)


def parse_bundle_entry(buf: bytes) -> BundleEntry:
    """Decode a ``BundleEntryProto``: 1 dtype, 2 shape (TensorShapeProto), 3 shard_id,
    4 offset, 5 size, 6 crc32c (fixed32), 7 slices (partitioned variables: refused)."""
    fields = parse_message(buf)
    if fields.get(7):
        raise CheckpointError("partitioned (sliced) variables are not supported")
    dtype = _scalar(fields, 1, 0, "dtype")
    dims: list[int] = []
    shapes = _messages(fields, 2, "shape")
    for shape in shapes[-1:]:
        sf = parse_message(shape)
        if _scalar(sf, 3, 0, "shape.unknown_rank"):
            raise CheckpointError("tensor shape has unknown rank")
        for dim in _messages(sf, 2, "shape.dim"):
            size = _signed(_scalar(parse_message(dim), 1, 0, "dim.size"), 64, "dim.size")
            if size < 0:
                raise CheckpointError(f"tensor shape has a negative/unknown dimension {size}")
            dims.append(size)
    shard_id = _signed(_scalar(fields, 3, 0, "shard_id"), 32, "shard_id")
    offset = _signed(_scalar(fields, 4, 0, "offset"), 64, "offset")
    size = _signed(_scalar(fields, 5, 0, "size"), 64, "size")
    crc = _scalar(fields, 6, 5, "crc32c") if fields.get(6) else None
    if shard_id < 0 or offset < 0 or size < 0:
        raise CheckpointError(f"negative shard_id/offset/size ({shard_id}, {offset}, {size})")
    return BundleEntry(dtype, tuple(dims), shard_id, offset, size, crc)


# ------------------------------------------------------------------------------ SSTable
def _decode_handle(buf: Union[bytes, memoryview], pos: int) -> tuple[int, int, int]:
    """BlockHandle: varint64 offset, varint64 size -> ``(offset, size, new_pos)``."""
    offset, pos = decode_varint(buf, pos)
    size, pos = decode_varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, limit: int, what: str) -> memoryview:
    """Contents of the block at ``(offset, size)``, after checking bounds, type and CRC."""
    if offset + size + BLOCK_TRAILER_SIZE > limit:
        raise CheckpointError(
            f"{what} block (offset {offset}, size {size}) runs past the end of the table "
            f"({limit} bytes before the footer); the file is truncated or corrupt")
    view = memoryview(data)
    contents = view[offset:offset + size]
    kind = data[offset + size]
    if kind == 1:
        raise CheckpointError(
            f"{what} block is snappy-compressed, which this reader does not support; "
            "re-save the checkpoint with TensorFlow (tensor bundles are written uncompressed)")
    if kind != 0:
        raise CheckpointError(f"{what} block has unknown compression type {kind}")
    stored = int.from_bytes(data[offset + size + 1:offset + size + 5], "little")
    actual = crc32c(view[offset:offset + size + 1])
    if unmask_crc32c(stored) != actual:
        raise CheckpointError(f"{what} block fails its CRC32C check (corrupt file): download or "
                              "copy the checkpoint again (compare its size with the original)")
    return contents


def _block_entries(block: memoryview, what: str) -> list[tuple[bytes, bytes]]:
    """Decode the (key, value) entries of one block, validating restarts and key lengths."""
    size = len(block)
    if size < 4:
        raise CheckpointError(f"{what} block is too small ({size} bytes) to hold its restart count")
    num_restarts = int.from_bytes(bytes(block[size - 4:]), "little")
    if num_restarts > (size - 4) // 4:
        raise CheckpointError(f"{what} block declares {num_restarts} restart points, more than fit")
    restarts_start = size - 4 * (num_restarts + 1)
    restarts = [int.from_bytes(bytes(block[restarts_start + 4 * i:restarts_start + 4 * i + 4]), "little")
                for i in range(num_restarts)]
    entries: list[tuple[bytes, bytes]] = []
    starts: dict[int, int] = {}  # entry offset -> shared length
    key = b""
    pos = 0
    while pos < restarts_start:
        entry_pos = pos
        shared, pos = decode_varint(block[:restarts_start], pos, 32)
        non_shared, pos = decode_varint(block[:restarts_start], pos, 32)
        value_len, pos = decode_varint(block[:restarts_start], pos, 32)
        if shared > len(key):
            raise CheckpointError(
                f"{what} block entry shares {shared} key bytes but the previous key has {len(key)}")
        if non_shared + value_len > restarts_start - pos:
            raise CheckpointError(
                f"{what} block entry (key {non_shared} + value {value_len} bytes) runs past its block")
        key = key[:shared] + bytes(block[pos:pos + non_shared])
        pos += non_shared
        entries.append((key, bytes(block[pos:pos + value_len])))
        pos += value_len
        starts[entry_pos] = shared
    if entries and (not restarts or restarts[0] != 0):
        raise CheckpointError(f"{what} block has entries but no restart point at offset 0")
    previous = -1
    for r in restarts:
        if r <= previous or starts.get(r, -1) != 0:
            raise CheckpointError(f"{what} block has an invalid restart point {r}")
        previous = r
    return entries


def _read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable held in ``data``, in order, validated."""
    if len(data) < FOOTER_SIZE:
        raise CheckpointError(
            f"file is {len(data)} bytes, shorter than the {FOOTER_SIZE}-byte table footer "
            "(truncated, or not a TensorFlow .index file)")
    footer = data[len(data) - FOOTER_SIZE:]
    magic = int.from_bytes(footer[40:48], "little")
    if magic != TABLE_MAGIC:
        raise CheckpointError(
            f"bad magic number 0x{magic:016x} (expected 0x{TABLE_MAGIC:016x}): truncated, "
            "or not a TensorFlow .index file")
    limit = len(data) - FOOTER_SIZE
    meta_off, meta_size, pos = _decode_handle(footer[:40], 0)
    index_off, index_size, pos = _decode_handle(footer[:40], pos)
    _read_block(data, meta_off, meta_size, limit, "metaindex")
    index_entries = _block_entries(_read_block(data, index_off, index_size, limit, "index"), "index")
    pairs: list[tuple[bytes, bytes]] = []
    last_key: Optional[bytes] = None
    for separator, handle in index_entries:
        off, size, end = _decode_handle(handle, 0)
        if end != len(handle):
            raise CheckpointError("index block entry has trailing bytes after its block handle")
        for key, value in _block_entries(_read_block(data, off, size, limit, "data"), "data"):
            if last_key is not None and key <= last_key:
                raise CheckpointError(f"keys are not strictly increasing at {key!r}")
            if key > separator:
                raise CheckpointError(f"key {key!r} is beyond its index separator {separator!r}")
            pairs.append((key, value))
            last_key = key
    return pairs


# ----------------------------------------------------------------------------- locating
def _index_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.index") if p.is_file())


def resolve_checkpoint_prefix(path: PathLike) -> Path:
    """Turn a checkpoint directory, prefix, ``.index``, ``.data-*`` or ``checkpoint`` path into a prefix.

    A directory is resolved through its ``checkpoint`` text file
    (``model_checkpoint_path: "snap-0"``, relative to the directory; an absolute path from
    the machine that trained it falls back to its base name here), else through its only
    ``*.index`` file.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.name in ("checkpoint", "checkpoint.txt"):
        p = p.parent  # the state file itself was given: use its folder
    if p.is_dir():
        state = p / "checkpoint"
        if state.is_file():
            text = state.read_text(encoding="utf-8", errors="replace")
            match = re.search(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
            if not match:
                raise CheckpointError(
                    f"{state}: no 'model_checkpoint_path: \"...\"' line; it should name the "
                    "prefix of the .index/.data files, e.g. model_checkpoint_path: \"snap-0\"")
            written = re.sub(r"\\(.)", r"\1", match.group(1))  # undo text-proto escapes
            named = Path(written)
            base = re.split(r"[\\/]", written)[-1]  # also for a Windows path from the trainer
            for candidate in ([named] if named.is_absolute() else []) + [p / named, p / base]:
                if Path(str(candidate) + ".index").is_file():
                    return candidate
            raise CheckpointError(
                f"{state} names {written!r} but {p / base}.index does not exist; "
                "copy the .index and .data-* files next to it")
        indexes = _index_files(p)
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        hint = ""
        if (p / "checkpoint.txt").is_file():
            hint = (" The folder has 'checkpoint.txt': Google Drive adds '.txt' when the "
                    "official weights are downloaded; rename it to 'checkpoint' (no extension).")
        found = ", ".join(i.name for i in indexes) if indexes else "none"
        raise CheckpointError(
            f"{p}: cannot tell which checkpoint to read: no 'checkpoint' file and "
            f"{len(indexes)} *.index files ({found}); pass the prefix (path without "
            f".index) instead.{hint}")
    name = p.name
    if name.endswith(".index"):
        p = p.with_name(name[: -len(".index")])
    else:
        m = re.match(r"^(.*)\.data-\d{5,}-of-\d{5,}$", name)
        if m:
            p = p.with_name(m.group(1))
    if not Path(str(p) + ".index").is_file():
        raise CheckpointError(
            f"{path}: not a checkpoint: expected a folder with a 'checkpoint' file, or a "
            f"prefix such that {p}.index exists")
    return p


def read_index(path: PathLike) -> tuple[Path, BundleHeader, dict[str, BundleEntry]]:
    """Parse ``<prefix>.index``; returns ``(prefix, header, {name: entry})``."""
    prefix = resolve_checkpoint_prefix(path)
    index_path = Path(str(prefix) + ".index")
    try:
        data = index_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{index_path}: cannot read: {exc}") from None
    try:
        pairs = _read_table(data)
        if not pairs or pairs[0][0] != b"":
            raise CheckpointError("no bundle header (empty key); not a TF2/V2 tensor-bundle index")
        header = parse_bundle_header(pairs[0][1])
        entries: dict[str, BundleEntry] = {}
        for key, value in pairs[1:]:
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"variable name {key!r} is not valid UTF-8") from None
            try:
                entry = parse_bundle_entry(value)
            except CheckpointError as exc:
                raise CheckpointError(f"variable {name!r}: {exc}") from None
            _check_entry(name, entry, header)
            entries[name] = entry
    except CheckpointError as exc:
        raise CheckpointError(f"{index_path}: {exc}") from None
    return prefix, header, entries


def _check_entry(name: str, entry: BundleEntry, header: BundleHeader) -> None:
    """dtype known, shard in range, and prod(shape) * itemsize == size."""
    if entry.dtype in _UNSUPPORTED_DTYPES:
        raise CheckpointError(f"variable {name!r} has unsupported dtype {_UNSUPPORTED_DTYPES[entry.dtype]}")
    if entry.dtype not in _DTYPES:
        raise CheckpointError(f"variable {name!r} has unknown dtype enum {entry.dtype}")
    if entry.shard_id >= header.num_shards:
        raise CheckpointError(
            f"variable {name!r} is in shard {entry.shard_id} but the header declares "
            f"{header.num_shards} shard(s)")
    count = 1
    for d in entry.shape:
        count *= d
    expected = count * _DTYPES[entry.dtype][1].itemsize
    if expected != entry.size:
        raise CheckpointError(
            f"variable {name!r}: shape {list(entry.shape)} of {_DTYPES[entry.dtype][0]} needs "
            f"{expected} bytes but the entry declares {entry.size}")


def list_variables(path: PathLike) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """``{name: (numpy dtype, shape)}`` of every tensor, reading only the ``.index`` file."""
    _, header, entries = read_index(path)
    return {name: (_result_dtype(e.dtype), e.shape) for name, e in entries.items()}


def _result_dtype(dtype: int) -> np.dtype:
    if dtype == 14:  # bfloat16 is returned widened to float32
        return np.dtype(np.float32)
    return _DTYPES[dtype][1].newbyteorder("=")


def _shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}")


def read_checkpoint(path: PathLike, names: Optional[Iterable[str]] = None,
                    verify_crc: bool = True) -> dict[str, np.ndarray]:
    """Read a TF checkpoint into ``{variable name: np.ndarray}`` (native byte order).

    ``path``: a folder with a ``checkpoint`` file, a folder with exactly one ``*.index``,
    or the prefix (``.../snap-0``; a ``.index``/``.data-*`` path also works). ``names``
    restricts reading to those variables (a missing one raises); ``verify_crc`` checks
    each tensor's CRC32C. Raises :class:`CheckpointError` on any problem.
    """
    prefix, header, entries = read_index(path)
    wanted = list(entries) if names is None else list(names)
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise CheckpointError(f"{prefix}: no variable(s) {', '.join(map(repr, missing))}")
    order = "<" if header.endianness == 0 else ">"
    out: dict[str, np.ndarray] = {}
    handles: dict[int, tuple[object, int, Path]] = {}
    try:
        for name in sorted(wanted, key=lambda n: (entries[n].shard_id, entries[n].offset)):
            entry = entries[name]
            if entry.shard_id not in handles:
                shard_path = _shard_path(prefix, entry.shard_id, header.num_shards)
                try:
                    f = open(shard_path, "rb")
                except OSError as exc:
                    raise CheckpointError(
                        f"{shard_path}: cannot open data shard ({exc.strerror}); copy the "
                        ".data-* file(s) next to the .index file") from None
                handles[entry.shard_id] = (f, os.fstat(f.fileno()).st_size, shard_path)
            f, shard_size, shard_path = handles[entry.shard_id]
            if entry.offset + entry.size > shard_size:
                raise CheckpointError(
                    f"{shard_path}: variable {name!r} needs bytes {entry.offset}.."
                    f"{entry.offset + entry.size} but the file has {shard_size} (truncated?)")
            f.seek(entry.offset)  # type: ignore[attr-defined]
            raw = f.read(entry.size)  # type: ignore[attr-defined]
            if len(raw) != entry.size:
                raise CheckpointError(f"{shard_path}: short read for variable {name!r}")
            if verify_crc and entry.crc32c is not None and entry.crc32c != masked_crc32c(raw):
                raise CheckpointError(
                    f"{shard_path}: variable {name!r} fails its CRC32C check (corrupt data file): "
                    "download or copy the checkpoint again")
            try:
                out[name] = _decode_tensor(raw, entry, order)
            except CheckpointError as exc:
                raise CheckpointError(f"{shard_path}: variable {name!r}: {exc}") from None
    finally:
        for f, _, _ in handles.values():
            f.close()  # type: ignore[attr-defined]
    return {name: out[name] for name in wanted}


def _decode_tensor(raw: bytes, entry: BundleEntry, order: str) -> np.ndarray:
    """Raw bytes -> array of ``entry.shape`` in native byte order (bfloat16 -> float32)."""
    base = _DTYPES[entry.dtype][1]
    arr = np.frombuffer(raw, dtype=base.newbyteorder(order)).reshape(entry.shape)
    if entry.dtype == 14:  # bfloat16: the high 16 bits of a float32
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if entry.dtype == 10 and raw and max(raw) > 1:
        raise CheckpointError("DT_BOOL tensor holds bytes other than 0 and 1")
    return arr.astype(base.newbyteorder("="), copy=True)
