"""GGUF header -> :class:`ModelInfo`, without touching the weights.

The header parser reads keys and tensor descriptors from any binary stream (a local file,
or the first bytes of a remote file), skips the token arrays it is not asked for, and
never reads tensor data. ``gguf.GGUFReader`` parses every vocabulary string into NumPy
objects and memory-maps the whole file; this parser is several times faster on a 262k
vocabulary and works on a truncated prefix, which remote header reads need. It is tested
against ``gguf.GGUFReader`` on the bundled models (tests/models/test_gguf_info.py).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from workbench.errors import ModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF value types (gguf.GGUFValueType).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = range(10)
_UINT64, _INT64, _FLOAT64 = 10, 11, 12
_SCALAR_FMT = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}

# Arrays that are large and rarely needed; kept only as their length unless asked for.
_BULKY_KEYS = (
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
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return self.n_elements * size // block

    @property
    def type_name(self) -> str:
        from gguf import GGMLQuantizationType

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
        fmt = _SCALAR_FMT[vtype]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar(_UINT64)
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
                    self.skip(self.scalar(_UINT64))
                return n
            if sub == _ARRAY:
                return [self.value(_ARRAY, keep) for _ in range(n)]
            if sub not in _SCALAR_FMT:
                raise GGUFError(f"unknown array element type {sub} at byte {self.pos}")
            size = struct.calcsize(_SCALAR_FMT[sub])
            if not keep:
                self.skip(n * size)
                return n
            raw = self.read(n * size)
            fmt = "<" + _SCALAR_FMT[sub][1] * n
            return list(struct.unpack(fmt, raw))
        if vtype not in _SCALAR_FMT:
            raise GGUFError(f"unknown value type {vtype} at byte {self.pos}")
        return self.scalar(vtype)


def read_header(f: BinaryIO, *, keep_arrays: tuple[str, ...] = ()) -> GGUFHeader:
    """Parse a GGUF header from a binary stream positioned at the start of the file.

    Args:
        f: the stream; only the header bytes are read from it.
        keep_arrays: bulky array keys (token lists) to return in full.
    """
    r = _Reader(f)
    magic = r.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFError(f"not a GGUF file (magic {magic!r})")
    version = r.scalar(_UINT32)
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors = r.scalar(_UINT64)
    n_kv = r.scalar(_UINT64)
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise GGUFError("corrupt header (implausible tensor or key count)")
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.scalar(_UINT32)
        keep = not (key in _BULKY_KEYS and key not in keep_arrays)
        val = r.value(vtype, keep)
        if vtype == _ARRAY:
            lengths[key] = val if isinstance(val, int) else len(val)
            if not keep:
                continue
        metadata[key] = val
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar(_UINT32)
        if n_dims > 8:
            raise GGUFError(f"corrupt tensor descriptor for {name!r}")
        shape = tuple(r.scalar(_UINT64) for _ in range(n_dims))
        ggml_type = r.scalar(_UINT32)
        offset = r.scalar(_UINT64)
        tensors.append(TensorInfo(name, shape, ggml_type, offset))
    align = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    data_offset = (r.pos + align - 1) // align * align
    return GGUFHeader(version, metadata, tensors, data_offset, lengths)


def read_header_bytes(data: bytes, **kw: Any) -> GGUFHeader:
    """Parse a header from bytes (e.g. the first megabytes of a remote file)."""
    return read_header(io.BytesIO(data), **kw)


SAMPLING_KEYS: dict[str, str] = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
}
"""GenerationConfig field -> the GGUF key holding the model card's recommended value
(``gguf.Keys.General.SAMPLING_*``, written by llama.cpp's converter from a repository's
``generation_config.json``)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a user wants to know about a model file before loading it."""

    path: Path
    name: str
    """general.name, or the file stem."""
    arch: str
    """general.architecture (llama, gemma3, gemma4, qwen35, glm4, ...)."""
    params: int
    """Parameter count (general.parameter_count, else summed over tensors)."""
    quant: str
    """File type (Q4_K_M, Q8_0, ...), from general.file_type or the dominant tensor type."""
    n_ctx_train: int | None
    n_layers: int | None
    size_bytes: int
    chat_template: str | None
    """The tokenizer.chat_template string, None for base models without one."""
    vocab_size: int | None
    metadata: dict[str, Any] = field(repr=False, compare=False)
    tensors: list[TensorInfo] = field(repr=False, compare=False)
    data_offset: int = 0

    def key(self, suffix: str) -> Any:
        """``metadata["{arch}.{suffix}"]`` or None."""
        return self.metadata.get(f"{self.arch}.{suffix}")

    @property
    def recommended_sampling(self) -> dict[str, float | int]:
        """The model's recommended sampling values present in the file (see
        :data:`SAMPLING_KEYS`), by GenerationConfig field; empty when it names none."""
        out: dict[str, float | int] = {}
        for field_name, key in SAMPLING_KEYS.items():
            value = self.metadata.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[field_name] = value
        return out

    @property
    def is_twin(self) -> bool:
        """True for a synthetic twin (random weights with a real model's shapes)."""
        return bool(self.metadata.get("workbench.twin"))


def _quant_name(meta: dict[str, Any], tensors: list[TensorInfo]) -> str:
    from gguf import LlamaFileType

    ft = meta.get("general.file_type")
    if ft is not None:
        try:
            return LlamaFileType(int(ft)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # Dominant type by bytes among 2-D tensors.
    by_type: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_bytes
    return max(by_type, key=lambda k: by_type[k]) if by_type else "unknown"


def read_model_info(path: str | Path, *, check_size: bool = True) -> ModelInfo:
    """Read a .gguf file's header into :class:`ModelInfo`.

    Raises:
        GGUFError: missing, truncated or corrupt file, with a one-line message.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise GGUFError(f"model file not found: {p}")
    if p.is_dir():
        raise GGUFError(f"expected a .gguf file, got a directory: {p}")
    size = p.stat().st_size
    try:
        with p.open("rb") as f:
            header = read_header(io.BufferedReader(f, buffer_size=1 << 20))
    except GGUFError as e:
        raise GGUFError(f"{p.name}: {e}") from None
    except (OSError, UnicodeDecodeError, struct.error) as e:
        raise GGUFError(f"{p.name}: unreadable GGUF header ({e})") from None
    if check_size:
        need = header.data_offset + header.data_bytes
        if size < need:
            raise GGUFError(f"{p.name}: file is truncated ({size:,} bytes, tensors need {need:,})")
    return model_info_from_header(header, p, size)


def model_info_from_header(header: GGUFHeader, path: Path, size_bytes: int) -> ModelInfo:
    """Build :class:`ModelInfo` from a parsed header."""
    meta = header.metadata
    arch = str(meta.get("general.architecture", "unknown"))
    params = meta.get("general.parameter_count")
    if not params:
        params = sum(t.n_elements for t in header.tensors)
    vocab = header.array_lengths.get("tokenizer.ggml.tokens") or meta.get(f"{arch}.vocab_size")
    name = meta.get("general.name") or path.stem
    return ModelInfo(
        path=path,
        name=str(name),
        arch=arch,
        params=int(params),
        quant=_quant_name(meta, header.tensors),
        n_ctx_train=meta.get(f"{arch}.context_length"),
        n_layers=meta.get(f"{arch}.block_count"),
        size_bytes=size_bytes,
        chat_template=meta.get("tokenizer.chat_template"),
        vocab_size=int(vocab) if vocab else None,
        metadata=meta,
        tensors=header.tensors,
        data_offset=header.data_offset,
    )


# Keys llama.cpp reads without a default for these architectures: a file without them
# either fails to load or, worse, aborts the process on the first decode.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "gemma4": (
        "context_length",
        "embedding_length",
        "block_count",
        "attention.head_count",
        "attention.key_length",
        "attention.key_length_swa",
        "rope.dimension_count",
        "rope.dimension_count_swa",
        "attention.sliding_window",
        "attention.sliding_window_pattern",
    ),
    "gemma3": ("context_length", "embedding_length", "block_count", "attention.head_count"),
    "qwen35": (
        "context_length",
        "embedding_length",
        "block_count",
        "ssm.state_size",
        "ssm.inner_size",
        "ssm.group_count",
        "ssm.time_step_rank",
        "ssm.conv_kernel",
    ),
}


def validate_header(info: ModelInfo) -> None:
    """Cheap checks before handing a file to llama.cpp.

    Raises:
        GGUFError: a required key for the architecture is missing.
    """
    missing = [k for k in REQUIRED_KEYS.get(info.arch, ()) if info.key(k) is None]
    if missing:
        raise GGUFError(
            f"{info.path.name}: {info.arch} file lacks required key(s) "
            + ", ".join(f"{info.arch}.{k}" for k in missing)
        )
    if not info.tensors:
        raise GGUFError(f"{info.path.name}: file holds no tensors")
