"""GGUF header -> :class:`ModelInfo`, without touching the weights."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.gguf.names import quant_from_header
from workbench.gguf.reader import GGUFError, GGUFHeader, TensorInfo, read_header

TWIN_KEY = "workbench.twin"
"""Metadata key a synthetic twin carries (true): random weights, a real model's layout."""


SAMPLING_KEYS: dict[str, str] = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
    "min_p": "general.sampling.min_p",
    "repeat_penalty": "general.sampling.penalty_repeat",
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
        return bool(self.metadata.get(TWIN_KEY))


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
        quant=quant_from_header(meta, header.tensors),
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
