"""What every twin shares: its marker keys, its error, and what a build returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gguf import GGUFValueType

from workbench.errors import ModelError
from workbench.gguf import TWIN_KEY, MetaEntry, entry_bytes

Fill = Literal["random", "zeros"]
FILLS: tuple[Fill, ...] = ("random", "zeros")
"""``random``: valid random blocks (speed runs); ``zeros``: a sparse file (memory only)."""
TWIN_SOURCE_KEY = "workbench.twin.source"
TWIN_FILL_KEY = "workbench.twin.fill"
MARKER_KEYS = frozenset({TWIN_KEY, TWIN_SOURCE_KEY, TWIN_FILL_KEY})
"""The metadata a twin adds to its source's."""


class TwinError(ModelError):
    """A twin cannot be built; the message is one line naming the cause."""


@dataclass(frozen=True)
class TwinResult:
    """What a twin build wrote."""

    path: Path
    source: str
    """What it is a twin of (a file name, ``hf:REPO:FILE`` or ``twin:NAME:QUANT``)."""
    arch: str
    n_tensors: int
    data_bytes: int
    """Bytes of tensor data (what llama.cpp maps)."""
    file_bytes: int
    """Apparent file size (a zero-filled twin occupies almost no disk)."""
    fill: str


def marker_entries(source: str, fill: Fill) -> list[bytes]:
    """The metadata entries a twin adds to its source's: the twin flag, source and fill."""
    entries = [
        MetaEntry(TWIN_KEY, GGUFValueType.BOOL, True),
        MetaEntry(TWIN_SOURCE_KEY, GGUFValueType.STRING, source),
        MetaEntry(TWIN_FILL_KEY, GGUFValueType.STRING, fill),
    ]
    return [entry_bytes(e) for e in entries]


def describe(result: TwinResult) -> dict[str, Any]:
    """A JSON-ready summary of a written twin."""
    return {
        "path": str(result.path),
        "source": result.source,
        "arch": result.arch,
        "n_tensors": result.n_tensors,
        "data_bytes": result.data_bytes,
        "file_bytes": result.file_bytes,
        "fill": result.fill,
    }
