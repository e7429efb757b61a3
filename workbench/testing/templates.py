"""Tiny GGUF fixtures that carry a given chat template (or other metadata).

The fixtures of :mod:`workbench.testing.fixtures` borrow SmolLM2's tokenizer keys, its
chat template included. :func:`set_chat_template` copies a GGUF file with
``tokenizer.chat_template`` replaced (or removed, for a base model), :func:`set_key` with
any string or number key set (``general.sampling.temp``), and
:func:`write_chat_fixture` writes a fixture and gives it a template, so a test can load a
tiny model whose prompt is rendered by a real published template (Gemma 4's, Qwen 3.5's)
through llama-cpp-python's own Jinja formatter.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGUFValueType

from workbench.gguf import (
    DEFAULT_ALIGNMENT,
    MetaEntry,
    TensorInfo,
    entry_bytes,
    read_raw_header,
    write_gguf,
)
from workbench.testing.fixtures import write_fixture

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF key holding a model's default Jinja chat template."""


def set_key(
    src: str | Path, key: str, value: str | float | None, dst: str | Path | None = None
) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with one scalar key set (or removed).

    Every other metadata entry, tensor descriptor and tensor byte is copied unchanged
    (entries as their raw bytes, through :func:`workbench.gguf.write_gguf`; only the
    header is parsed, so the borrowed tokenizer's 100k array entries cost nothing).

    Args:
        src: the GGUF file to copy.
        key: the key, e.g. ``tokenizer.chat_template`` or ``general.sampling.temp``.
        value: a string, a float (stored as FLOAT32) or an int (INT32, as llama.cpp's
            converter writes ``general.sampling.top_k``); None removes the key.
        dst: where to write (default: replace ``src``).

    Returns:
        The path written.
    """
    if isinstance(value, str):
        vtype = GGUFValueType.STRING
    elif isinstance(value, float):
        vtype = GGUFValueType.FLOAT32
    elif isinstance(value, int) and not isinstance(value, bool):
        vtype = GGUFValueType.INT32
    elif value is not None:
        raise TypeError(f"{key}: unsupported value {value!r}")
    src = Path(src)
    out = Path(dst) if dst is not None else src
    with src.open("rb") as f:
        raw = read_raw_header(io.BufferedReader(f, buffer_size=1 << 20))
    head = raw.header
    if not head.tensors:
        raise ValueError(f"{src} has no tensors: not a model GGUF")
    entries = [b for k, b in raw.entries if k != key]
    if value is not None:
        entries.append(entry_bytes(MetaEntry(key, vtype, value)))
    align = int(head.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    with src.open("rb") as f:

        def copy(w: BinaryIO, t: TensorInfo) -> None:
            f.seek(head.data_offset + t.offset)
            w.write(f.read(t.n_bytes))

        # Written beside ``out`` and renamed into place: src, open here, is read whole.
        write_gguf(out, entries, head.tensors, data=copy, version=head.version, alignment=align)
    return out


def set_chat_template(
    src: str | Path, chat_template: str | None, dst: str | Path | None = None
) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with ``tokenizer.chat_template`` replaced
    (None removes it: a base model). See :func:`set_key`."""
    return set_key(src, CHAT_TEMPLATE_KEY, chat_template, dst)


def write_chat_fixture(
    arch: str, path: str | Path, chat_template: str | None, **fixture_args: Any
) -> Path:
    """Write a tiny fixture of ``arch`` (see :func:`write_fixture`) with a chat template.

    Args:
        arch: one of :data:`workbench.testing.fixtures.FIXTURE_ARCHS`.
        path: the .gguf file to write.
        chat_template: the template to carry; None for none (a base model).
        **fixture_args: passed to :func:`write_fixture` (``variant``, ``seed``, sizes).

    Returns:
        The path written.
    """
    out = write_fixture(arch, path, **fixture_args)
    return set_chat_template(out, chat_template)
