"""Tiny GGUF fixtures that carry a given chat template.

The fixtures of :mod:`workbench.testing.fixtures` borrow SmolLM2's tokenizer keys, its
chat template included. :func:`set_chat_template` copies a GGUF file with
``tokenizer.chat_template`` replaced (or removed, for a base model), and
:func:`write_chat_fixture` writes a fixture and gives it a template, so a test can load a
tiny model whose prompt is rendered by a real published template (Gemma 4's, Qwen 3.5's)
through llama-cpp-python's own Jinja formatter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.testing.fixtures import write_fixture

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF key holding a model's default Jinja chat template."""


def set_chat_template(src: str | Path, chat_template: str | None, dst: str | Path | None = None) -> Path:
    """Copy the GGUF file ``src`` to ``dst`` with ``tokenizer.chat_template`` replaced.

    Every other key and every tensor is copied unchanged (the way gguf's own
    ``gguf_new_metadata`` script copies, without its progress bar).

    Args:
        src: the GGUF file to copy.
        chat_template: the new template; None removes the key (a base model).
        dst: where to write (default: replace ``src``).

    Returns:
        The path written.
    """
    import gguf

    src = Path(src)
    out = Path(dst) if dst is not None else src
    tmp = out.with_name(out.name + ".tmp")
    reader = gguf.GGUFReader(src)
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        raise ValueError(f"{src} has no general.architecture: not a model GGUF")
    writer = gguf.GGUFWriter(str(tmp), str(arch_field.contents()))
    for f in reader.fields.values():
        # The writer adds general.architecture itself; GGUF.* are the reader's own.
        if f.name == gguf.Keys.General.ARCHITECTURE or f.name.startswith("GGUF."):
            continue
        if f.name == CHAT_TEMPLATE_KEY:
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(f.name, f.contents(), vtype, sub_type=sub)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    del reader  # release the memory map before replacing the file it maps
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
