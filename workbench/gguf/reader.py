"""The GGUF header parser: keys and tensor descriptors from any binary stream.

It reads a local file or the first bytes of a remote one, skips the token arrays it is
not asked for, and never reads tensor data. ``gguf.GGUFReader`` parses every vocabulary
string into NumPy objects and memory-maps the whole file; this parser is several times
faster on a 262k vocabulary and works on a truncated prefix, which remote header reads
need. Value types and block sizes are the ``gguf`` package's own; it is tested against
``gguf.GGUFReader`` on the bundled models (tests/gguf/test_reader.py).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGMLQuantizationType,
    GGUFReader,
    GGUFValueType,
)

from workbench.errors import ModelError

MAGIC = struct.pack("<I", GGUF_MAGIC)
"""The first four bytes of every GGUF file (b"GGUF")."""
DEFAULT_ALIGNMENT = GGUF_DEFAULT_ALIGNMENT


def _struct_format(np_type: type[np.generic]) -> str:
    """Little-endian struct format of a NumPy scalar type (by kind and size: NumPy's own
    type characters differ by platform, ``l`` is 4 bytes to struct but 8 to NumPy)."""
    dt = np.dtype(np_type)
    if dt.kind == "b":
        return "<?"
    return "<" + {"u": "BHIQ", "i": "bhiq", "f": "?efd"}[dt.kind][dt.itemsize.bit_length() - 1]


SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType(vtype): _struct_format(np_type)
    for vtype, np_type in GGUFReader.gguf_scalar_to_np.items()
}
"""struct format of every fixed-size value type, from the ``gguf`` package's own
value-type -> NumPy type mapping (keys are IntEnum members: a plain int looks them up)."""
_STRUCTS: dict[int, struct.Struct] = {int(k): struct.Struct(v) for k, v in SCALAR_FORMATS.items()}
# Plain ints for the hot paths (every token string): enum attribute lookups cost time.
_STRING, _ARRAY = int(GGUFValueType.STRING), int(GGUFValueType.ARRAY)
_UINT32, _UINT64 = int(GGUFValueType.UINT32), int(GGUFValueType.UINT64)
_U64 = _STRUCTS[_UINT64]

# Arrays that are large and rarely needed; kept only as their length unless asked for.
BULKY_KEYS = (
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
)


class GGUFError(ModelError):
    """The file is not a readable GGUF file; the message is one line naming the cause."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor descriptor from the header."""

    name: str
    shape: tuple[int, ...]
    """Dimensions in GGUF order (ne0 first: the row length)."""
    ggml_type: int
    """ggml type id (gguf.GGMLQuantizationType)."""
    offset: int
    """Byte offset of the data, relative to the start of the data section."""

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_bytes(self) -> int:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return self.n_elements * size // block

    @property
    def type_name(self) -> str:
        try:
            return GGMLQuantizationType(self.ggml_type).name
        except ValueError:
            return f"type{self.ggml_type}"


@dataclass
class GGUFHeader:
    """Everything before the tensor data."""

    version: int
    metadata: dict[str, Any]
    """Key -> value; bulky token arrays are replaced by their length unless requested."""
    tensors: list[TensorInfo]
    data_offset: int
    """Absolute byte offset where tensor data starts."""
    array_lengths: dict[str, int] = field(default_factory=dict)
    """Length of every array-valued key, including skipped ones."""

    @property
    def data_bytes(self) -> int:
        """Bytes the tensor data section must hold (end of the last tensor)."""
        return max((t.offset + t.n_bytes for t in self.tensors), default=0)


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.pos = 0

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise GGUFError(f"header is truncated at byte {self.pos + len(b)}")
        self.pos += n
        return b

    def skip(self, n: int) -> None:
        self.read(n) if n < 4096 else self._skip_big(n)

    def _skip_big(self, n: int) -> None:
        while n:
            k = min(n, 1 << 20)
            self.read(k)
            n -= k

    def scalar(self, vtype: int) -> Any:
        st = _STRUCTS[vtype]  # a hot path (every token string): no enum conversion
        return st.unpack(self.read(st.size))[0]

    def string(self) -> str:
        (n,) = _U64.unpack(self.read(8))
        if n > 1 << 30:
            raise GGUFError(f"implausible string length {n} at byte {self.pos}")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            sub = self.scalar(_UINT32)
            n = self.scalar(_UINT64)
            if sub == _STRING:
                if keep:
                    return [self.string() for _ in range(n)]
                for _ in range(n):
                    self.skip(_U64.unpack(self.read(8))[0])
                return n
            if sub == _ARRAY:
                return [self.value(_ARRAY, keep) for _ in range(n)]
            if sub not in SCALAR_FORMATS:
                raise GGUFError(f"unknown array element type {sub} at byte {self.pos}")
            fmt = SCALAR_FORMATS[sub]
            size = struct.calcsize(fmt)
            if not keep:
                self.skip(n * size)
                return n
            return list(struct.unpack("<" + fmt[1] * n, self.read(n * size)))
        if vtype not in SCALAR_FORMATS:
            raise GGUFError(f"unknown value type {vtype} at byte {self.pos}")
        return self.scalar(vtype)


def read_header(f: BinaryIO, *, keep_arrays: tuple[str, ...] = ()) -> GGUFHeader:
    """Parse a GGUF header from a binary stream positioned at the start of the file.

    Args:
        f: the stream; only the header bytes are read from it.
        keep_arrays: bulky array keys (token lists) to return in full.

    Raises:
        GGUFError: not a GGUF file, an unsupported version, or a truncated or corrupt
            header.
    """
    r = _Reader(f)
    magic = r.read(4)
    if magic != MAGIC:
        raise GGUFError(f"not a GGUF file (magic {magic!r})")
    version = r.scalar(GGUFValueType.UINT32)
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors = r.scalar(GGUFValueType.UINT64)
    n_entries = r.scalar(GGUFValueType.UINT64)
    if n_tensors > 1_000_000 or n_entries > 1_000_000:
        raise GGUFError("corrupt header (implausible tensor or key count)")
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_entries):
        key = r.string()
        vtype = r.scalar(GGUFValueType.UINT32)
        keep = not (key in BULKY_KEYS and key not in keep_arrays)
        val = r.value(vtype, keep)
        if vtype == GGUFValueType.ARRAY:
            lengths[key] = val if isinstance(val, int) else len(val)
            if not keep:
                continue
        metadata[key] = val
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar(GGUFValueType.UINT32)
        if n_dims > 8:
            raise GGUFError(f"corrupt tensor descriptor for {name!r}")
        shape = tuple(r.scalar(GGUFValueType.UINT64) for _ in range(n_dims))
        ggml_type = r.scalar(GGUFValueType.UINT32)
        offset = r.scalar(GGUFValueType.UINT64)
        tensors.append(TensorInfo(name, shape, ggml_type, offset))
    align = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    data_offset = (r.pos + align - 1) // align * align
    return GGUFHeader(version, metadata, tensors, data_offset, lengths)


# --------------------------------------------------------------------------- raw entries


class _Recorder(io.RawIOBase):
    """Wraps a stream and keeps every byte read (a header is a few MB at most)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.data = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.data += b
        return b


@dataclass(frozen=True)
class RawHeader:
    """A header, parsed, plus each metadata entry's exact bytes (to copy them unchanged)."""

    header: GGUFHeader
    entries: tuple[tuple[str, bytes], ...]
    """(key, the entry's bytes: key string, type and value) in file order."""


def _value_end(buf: bytes, pos: int, vtype: int) -> int:
    """Where the value of type ``vtype`` starting at ``pos`` ends."""
    if vtype in SCALAR_FORMATS:
        return pos + _STRUCTS[vtype].size
    if vtype == GGUFValueType.STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == GGUFValueType.ARRAY:
        sub, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if sub in SCALAR_FORMATS:
            return pos + n * _STRUCTS[sub].size
        for _ in range(n):
            pos = _value_end(buf, pos, sub)
        return pos
    raise GGUFError(f"unknown value type {vtype} at byte {pos}")


def read_raw_header(f: BinaryIO, *, keep_arrays: tuple[str, ...] = ()) -> RawHeader:
    """Parse a header from a stream, keeping the metadata entries' bytes.

    Args:
        f: the stream, at the start of the file.
        keep_arrays: bulky array keys to parse in full (their bytes are kept anyway).

    Raises:
        GGUFError: not a GGUF file, or truncated.
    """
    rec = _Recorder(f)
    header = read_header(rec, keep_arrays=keep_arrays)  # type: ignore[arg-type]
    buf = bytes(rec.data)
    (n_entries,) = struct.unpack_from("<Q", buf, 16)
    pos, entries = 24, []
    for _ in range(n_entries):
        start = pos
        (klen,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8 : pos + 8 + klen].decode("utf-8", errors="replace")
        (vtype,) = struct.unpack_from("<I", buf, pos + 8 + klen)
        pos = _value_end(buf, pos + 12 + klen, vtype)
        entries.append((key, buf[start:pos]))
    return RawHeader(header, tuple(entries))
