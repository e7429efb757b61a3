"""What a GGUF file's name and header say about it: split parts and quantization.

One pattern for split files (``NAME-00001-of-00003.gguf``: llama.cpp's ``gguf-split``
naming, loaded from part 1) and one quantization parser, used by the registry, the
Ollama / LM Studio stores, the hub and the twins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from gguf import LlamaFileType

from workbench.gguf.reader import TensorInfo

SPLIT_PATTERN = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
"""``-00001-of-00003.gguf`` at the end of a file name (part number, part count)."""

QUANT_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?(?:IQ\d+_[A-Z]+|TQ\d_\d|Q\d+_K(?:_[A-Z]+)?|Q\d+_\d|MXFP4(?:_MOE)?"
    r"|BF16|F16|F32))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
"""A quantization name inside a file name (Q4_K_M, UD-Q4_K_XL, IQ4_XS, Q8_0, BF16, ...)."""


@dataclass(frozen=True)
class SplitName:
    """A file name of the ``-0000i-of-0000n.gguf`` form, taken apart."""

    stem: str
    """The name before ``-0000i-of-0000n.gguf``."""
    index: int
    """This part's number (1 for the part llama.cpp is given)."""
    count: int
    """How many parts the model has."""

    def part(self, i: int) -> str:
        """The file name of part ``i`` (1-based)."""
        return f"{self.stem}-{i:05d}-of-{self.count:05d}.gguf"

    @property
    def parts(self) -> list[str]:
        """Every part's file name, in order."""
        return [self.part(i) for i in range(1, self.count + 1)]


def split_name(name: str | PurePath) -> SplitName | None:
    """The split-file parts of ``name`` (a file name or path), None for a single file."""
    base = PurePath(name).name
    m = SPLIT_PATTERN.search(base)
    if m is None:
        return None
    return SplitName(base[: m.start()], int(m.group(1)), int(m.group(2)))


def is_later_split_part(name: str | PurePath) -> bool:
    """True for part 2 and later of a split file: not a model of its own."""
    s = split_name(name)
    return s is not None and s.index > 1


def unsplit(path: str) -> str:
    """The path with any ``-0000i-of-0000n`` removed: the same for every part of a model."""
    return SPLIT_PATTERN.sub(".gguf", path)


def quant_of(filename: str) -> str | None:
    """Quantization named in a GGUF file name (``...-Q4_K_M.gguf`` -> ``Q4_K_M``)."""
    stem = unsplit(PurePath(filename).name)
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    found = QUANT_PATTERN.findall(stem)
    return found[-1].upper() if found else None


def quant_from_header(metadata: Mapping[str, Any], tensors: Iterable[TensorInfo]) -> str:
    """A file's quantization: ``general.file_type`` (Q4_K_M, Q8_0, ...), else the tensor
    type holding the most bytes among 2-D tensors."""
    ft = metadata.get("general.file_type")
    if ft is not None:
        try:
            return LlamaFileType(int(ft)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    by_type: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_bytes
    return max(by_type, key=lambda k: by_type[k]) if by_type else "unknown"
