"""Tiny GGUF fixtures that carry a given chat template.

The fixtures of :mod:`workbench.testing.fixtures` borrow SmolLM2's tokenizer keys, its
chat template included. :func:`set_chat_template` copies a GGUF file with
``tokenizer.chat_template`` replaced (or removed, for a base model), :func:`set_key` with
any string or number key set (``general.sampling.temp``), and
:func:`write_chat_fixture` writes a fixture and gives it a template, so a test can load a
tiny model whose prompt is rendered by a real published template (Gemma 4's, Qwen 3.5's)
through llama-cpp-python's own Jinja formatter.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGUFValueType

from workbench.gguf import DEFAULT_ALIGNMENT, TensorInfo, read_raw_header
from workbench.gguf.writer import MetaEntry, write_gguf
from workbench.testing.fixtures import write_fixture

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF key holding a model's default Jinja chat template."""


def set_key(
    src: str | Path, key: str, value: str | float | None, dst: str | Path | None = None
) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with one scalar key set (or removed).

    Every other metadata entry is copied byte for byte (workbench's raw header reader;
    gguf.GGUFReader would parse every one of the borrowed tokenizer's 100k array entries,
    which takes tens of seconds on a busy machine), and so are the tensors.

    Args:
        src: the GGUF file to copy.
        key: the key, e.g. ``tokenizer.chat_template`` or ``general.sampling.temp``.
        value: a string, a float (stored as FLOAT32) or an int (INT32, as llama.cpp's
            converter writes ``general.sampling.top_k``); None removes the key.
        dst: where to write (default: replace ``src``).

    Returns:
        The path written.
    """
    src = Path(src)
    out = Path(dst) if dst is not None else src
    with src.open("rb", buffering=1 << 20) as f:
        raw = read_raw_header(f)
    head = raw.header
    if not head.tensors:
        raise ValueError(f"{src} has no tensors: not a model GGUF")
    entry: MetaEntry | None = None
    if isinstance(value, str):
        entry = MetaEntry(key, GGUFValueType.STRING, value)
    elif isinstance(value, float):
        entry = MetaEntry(key, GGUFValueType.FLOAT32, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        entry = MetaEntry(key, GGUFValueType.INT32, value)
    elif value is not None:
        raise TypeError(f"{key}: unsupported value {value!r}")
    entries: list[MetaEntry | bytes] = []
    for k, b in raw.entries:
        if k != key:
            entries.append(b)
        elif entry is not None:
            entries.append(entry)  # in its place
            entry = None
    if entry is not None:
        entries.append(entry)
    alignment = int(head.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    # Written beside the target, so that replacing src in place reads the old file.
    tmp = out.with_name(out.name + ".tmp")
    with src.open("rb") as f:

        def copy(w: BinaryIO, t: TensorInfo) -> None:
            f.seek(head.data_offset + t.offset)
            left = t.n_bytes
            while left:
                chunk = f.read(min(left, 1 << 20))
                w.write(chunk)
                left -= len(chunk)

        write_gguf(tmp, entries, head.tensors, data=copy, version=head.version,
                   alignment=alignment)  # fmt: skip
    shutil.move(tmp, out)
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
