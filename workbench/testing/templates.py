"""Tiny GGUF fixtures that carry a given chat template.

The fixtures of :mod:`workbench.testing.fixtures` borrow SmolLM2's tokenizer keys, its
chat template included. :func:`set_chat_template` copies a GGUF file with
``tokenizer.chat_template`` replaced (or removed, for a base model), and
:func:`write_chat_fixture` writes a fixture and gives it a template, so a test can load a
tiny model whose prompt is rendered by a real published template (Gemma 4's, Qwen 3.5's)
through llama-cpp-python's own Jinja formatter.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

from workbench.gguf import DEFAULT_ALIGNMENT, read_header
from workbench.testing.fixtures import write_fixture

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF key holding a model's default Jinja chat template."""

_N_KV_AT = 16  # byte offset of the key count: magic (4), version (4), tensor count (8)


def set_chat_template(
    src: str | Path, chat_template: str | None, dst: str | Path | None = None
) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with ``tokenizer.chat_template`` replaced.

    Every other key, tensor descriptor and tensor byte is copied unchanged: the key's
    bytes are spliced in the header and the data section re-aligned (gguf.GGUFReader
    would parse every one of the borrowed tokenizer's 100k array entries, which takes
    tens of seconds on a busy machine; workbench's own header parser takes a fraction of
    a second).

    Args:
        src: the GGUF file to copy.
        chat_template: the new template; None removes the key (a base model).
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
    key = CHAT_TEMPLATE_KEY.encode()
    tag = struct.pack("<Q", len(key)) + key + struct.pack("<I", GGUFValueType.STRING)
    # Tensor descriptors follow the keys; the first one starts with its name.
    first = head.tensors[0].name.encode()
    infos_start = raw.rfind(struct.pack("<Q", len(first)) + first)
    infos_size = sum(8 + len(t.name.encode()) + 4 + 8 * len(t.shape) + 4 + 8 for t in head.tensors)
    infos_end = infos_start + infos_size
    old = head.metadata.get(CHAT_TEMPLATE_KEY)
    if old is None:
        start = end = infos_start  # a new key goes after the last one
    else:
        start = raw.find(tag)
        (n,) = struct.unpack_from("<Q", raw, start + len(tag))
        end = start + len(tag) + 8 + n
        if raw[start + len(tag) + 8 : end].decode("utf-8") != old:
            raise ValueError(f"{src}: could not locate {CHAT_TEMPLATE_KEY} in the header")
    new_kv = b""
    if chat_template is not None:
        body = chat_template.encode("utf-8")
        new_kv = tag + struct.pack("<Q", len(body)) + body
    (n_kv,) = struct.unpack_from("<Q", raw, _N_KV_AT)
    n_kv += (chat_template is not None) - (old is not None)
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
