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
import struct
from pathlib import Path
from typing import Any

from workbench.models.gguf_info import DEFAULT_ALIGNMENT, read_header
from workbench.testing.fixtures import write_fixture

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF key holding a model's default Jinja chat template."""

_N_KV_AT = 16  # byte offset of the key count: magic (4), version (4), tensor count (8)
_SCALARS = {4: "<I", 5: "<i", 6: "<f", 10: "<Q", 11: "<q", 12: "<d"}  # GGUFValueType: format


def set_key(
    src: str | Path, key: str, value: str | float | None, dst: str | Path | None = None
) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with one scalar key set (or removed).

    Every other key, tensor descriptor and tensor byte is copied unchanged: the key's
    bytes are spliced in the header and the data section re-aligned (gguf.GGUFReader
    would parse every one of the borrowed tokenizer's 100k array entries, which takes
    tens of seconds on a busy machine; workbench's own header parser takes a fraction of
    a second).

    Args:
        src: the GGUF file to copy.
        key: the key, e.g. ``tokenizer.chat_template`` or ``general.sampling.temp``.
        value: a string, a float (stored as FLOAT32) or an int (INT32, as llama.cpp's
            converter writes ``general.sampling.top_k``); None removes the key.
        dst: where to write (default: replace ``src``).

    Returns:
        The path written.
    """
    from gguf import GGUFValueType

    src = Path(src)
    out = Path(dst) if dst is not None else src
    with src.open("rb", buffering=1 << 20) as f:
        head = read_header(f)
        f.seek(0)
        raw = f.read(head.data_offset)
    if not head.tensors:
        raise ValueError(f"{src} has no tensors: not a model GGUF")
    name = key.encode()
    # Tensor descriptors follow the keys; the first one starts with its name.
    first = head.tensors[0].name.encode()
    infos_start = raw.rfind(struct.pack("<Q", len(first)) + first)
    infos_size = sum(8 + len(t.name.encode()) + 4 + 8 * len(t.shape) + 4 + 8 for t in head.tensors)
    infos_end = infos_start + infos_size
    old = head.metadata.get(key)
    if old is None:
        start = end = infos_start  # a new key goes after the last one
    else:
        start = raw.find(struct.pack("<Q", len(name)) + name)
        at = start + 8 + len(name)
        (vtype,) = struct.unpack_from("<I", raw, at)
        at += 4
        if vtype == GGUFValueType.STRING:
            (n,) = struct.unpack_from("<Q", raw, at)
            end = at + 8 + n
            found: object = raw[at + 8 : end].decode("utf-8")
        elif vtype in _SCALARS:
            fmt = _SCALARS[vtype]
            end = at + struct.calcsize(fmt)
            (found,) = struct.unpack_from(fmt, raw, at)
        else:
            raise ValueError(f"{src}: {key} is not a string or number")
        if start < 0 or found != old:
            raise ValueError(f"{src}: could not locate {key} in the header")
    new_kv = b""
    if value is not None:
        new_kv = struct.pack("<Q", len(name)) + name
        if isinstance(value, str):
            body = value.encode("utf-8")
            new_kv += struct.pack("<IQ", GGUFValueType.STRING, len(body)) + body
        elif isinstance(value, float):
            new_kv += struct.pack("<If", GGUFValueType.FLOAT32, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            new_kv += struct.pack("<Ii", GGUFValueType.INT32, value)
        else:
            raise TypeError(f"{key}: unsupported value {value!r}")
    (n_kv,) = struct.unpack_from("<Q", raw, _N_KV_AT)
    n_kv += (value is not None) - (old is not None)
    header = (
        raw[:_N_KV_AT]
        + struct.pack("<Q", n_kv)
        + raw[_N_KV_AT + 8 : start]
        + new_kv
        + raw[end:infos_end]
    )
    align = int(head.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    header += b"\0" * (-len(header) % align)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with src.open("rb") as f, tmp.open("wb") as w:
        w.write(header)
        f.seek(head.data_offset)
        shutil.copyfileobj(f, w, 1 << 20)
    tmp.replace(out)
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
