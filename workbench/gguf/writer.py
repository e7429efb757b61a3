"""Writing GGUF files: metadata entries, tensor descriptors, and tensor data streamed to
disk by a caller-supplied function (so a twin's tens of gigabytes never sit in memory).

Value types are ``gguf.GGUFValueType``; a metadata entry is a :class:`MetaEntry` (the
word "KV" is kept for the KV cache). Entries copied from another file can be passed as
their raw bytes (:attr:`workbench.gguf.reader.RawHeader.entries`), unchanged.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGUFValueType

from workbench.gguf.reader import (
    DEFAULT_ALIGNMENT,
    MAGIC,
    SCALAR_FORMATS,
    GGUFError,
    TensorInfo,
)

TensorData = Callable[[BinaryIO, TensorInfo], None]
"""Writes exactly ``tensor.n_bytes`` bytes of one tensor's data at the stream's position."""


@dataclass(frozen=True)
class MetaEntry:
    """One metadata entry (key, value type, value) to write."""

    key: str
    vtype: GGUFValueType
    value: Any
    sub: GGUFValueType | None = None
    """Element type of an array."""

    @classmethod
    def of(cls, key: str, value: Any) -> MetaEntry:
        """The entry GGUF files usually hold for a Python value: bool -> BOOL, int ->
        UINT32, float -> FLOAT32, str -> STRING, a list or tuple -> an ARRAY of BOOL,
        STRING, FLOAT32 or INT32 elements."""
        if isinstance(value, (list, tuple)):
            sub = GGUFValueType.INT32
            if value and all(isinstance(v, bool) for v in value):
                sub = GGUFValueType.BOOL
            elif value and all(isinstance(v, str) for v in value):
                sub = GGUFValueType.STRING
            elif any(isinstance(v, float) for v in value):
                sub = GGUFValueType.FLOAT32
            return cls(key, GGUFValueType.ARRAY, list(value), sub)
        if isinstance(value, bool):
            return cls(key, GGUFValueType.BOOL, value)
        if isinstance(value, int):
            return cls(key, GGUFValueType.UINT32, value)
        if isinstance(value, float):
            return cls(key, GGUFValueType.FLOAT32, value)
        if isinstance(value, str):
            return cls(key, GGUFValueType.STRING, value)
        raise TypeError(f"no GGUF value type for {key} = {value!r}")


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(vtype: GGUFValueType, value: Any, sub: GGUFValueType | None = None) -> bytes:
    if vtype == GGUFValueType.STRING:
        return _str(value)
    if vtype == GGUFValueType.ARRAY:
        if sub is None:
            raise TypeError("an array entry needs its element type")
        head = struct.pack("<IQ", sub, len(value))
        if sub == GGUFValueType.STRING:
            return head + b"".join(_str(v) for v in value)
        return head + struct.pack("<" + SCALAR_FORMATS[sub][1] * len(value), *value)
    return struct.pack(SCALAR_FORMATS[vtype], value)


def entry_bytes(entry: MetaEntry) -> bytes:
    """One metadata entry as GGUF bytes (key, type, value)."""
    return (
        _str(entry.key)
        + struct.pack("<I", entry.vtype)
        + _value(entry.vtype, entry.value, entry.sub)
    )


def tensor_info_bytes(t: TensorInfo) -> bytes:
    """One tensor descriptor as GGUF bytes."""
    return (
        _str(t.name)
        + struct.pack("<I", len(t.shape))
        + struct.pack(f"<{len(t.shape)}Q", *t.shape)
        + struct.pack("<IQ", t.ggml_type, t.offset)
    )


def align_up(n: int, alignment: int = DEFAULT_ALIGNMENT) -> int:
    """``n`` rounded up to a multiple of ``alignment``."""
    return (n + alignment - 1) // alignment * alignment


def sequential(
    tensors: Iterable[tuple[str, tuple[int, ...], int]], alignment: int = DEFAULT_ALIGNMENT
) -> list[TensorInfo]:
    """Descriptors for (name, shape, ggml type) tensors laid out one after another, each
    at an aligned offset."""
    out, off = [], 0
    for name, shape, gtype in tensors:
        t = TensorInfo(name, tuple(shape), int(gtype), off)
        out.append(t)
        off = align_up(off + t.n_bytes, alignment)
    return out


def write_gguf(
    out: str | Path,
    entries: Sequence[MetaEntry | bytes],
    tensors: Sequence[TensorInfo],
    *,
    data: TensorData | None = None,
    version: int = 3,
    alignment: int = DEFAULT_ALIGNMENT,
    data_size: int | None = None,
) -> int:
    """Write a GGUF file: metadata entries, tensor descriptors, then the data section.

    Tensors are written at their ``offset`` (relative to the aligned data section) by
    ``data``; without it the data section is left a hole (a sparse file of zeros, which
    are valid blocks of every type). The section is padded to ``data_size`` (default:
    the end of the last tensor, aligned). The file is written beside ``out`` and renamed
    into place, so a failure never leaves a partial file.

    Returns:
        The file size in bytes.

    Raises:
        GGUFError: tensors that overlap, or ``data`` writing the wrong number of bytes.
    """
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytearray(MAGIC + struct.pack("<IQQ", version, len(tensors), len(entries)))
    for e in entries:
        head += e if isinstance(e, bytes) else entry_bytes(e)
    for t in tensors:
        head += tensor_info_bytes(t)
    data_offset = align_up(len(head), alignment)
    head += bytes(data_offset - len(head))
    end = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_size is None:
        data_size = align_up(end, alignment)
    total = data_offset + max(data_size, end)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(head)
            if data is not None:
                for t in sorted(tensors, key=lambda t: t.offset):
                    gap = data_offset + t.offset - f.tell()
                    if gap < 0:
                        raise GGUFError(f"{t.name}: tensor overlaps the one before it")
                    f.write(bytes(gap))
                    data(f, t)
                    if f.tell() != data_offset + t.offset + t.n_bytes:
                        raise GGUFError(f"{t.name}: wrote the wrong number of data bytes")
            f.truncate(total)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return total
