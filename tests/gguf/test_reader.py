"""The header reader against gguf.GGUFReader, on the real bundled files; the writer and
the name and KV-cache tables of the GGUF layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader

from workbench.gguf import GGUFError, read_model_info, validate_header


@pytest.mark.slow
def test_header_matches_gguf_reader(smollm: Path) -> None:
    # gguf.GGUFReader needs about a minute for Gemma's 262k-token vocabulary on a busy
    # 2-core machine; SmolLM2's 49k vocabulary checks the same code paths.
    path = smollm
    info = read_model_info(path)
    ref = GGUFReader(path)
    assert [t.name for t in info.tensors] == [t.name for t in ref.tensors]
    for ours, theirs in zip(info.tensors, ref.tensors, strict=True):
        assert ours.shape == tuple(int(d) for d in theirs.shape)
        assert ours.ggml_type == int(theirs.tensor_type)
        assert ours.n_bytes == int(theirs.n_bytes)
        assert info.data_offset + ours.offset == int(theirs.data_offset)
    arch = ref.fields["general.architecture"].contents()
    assert info.arch == arch
    assert info.n_ctx_train == ref.fields[f"{arch}.context_length"].contents()
    assert info.n_layers == ref.fields[f"{arch}.block_count"].contents()
    assert info.vocab_size == len(ref.fields["tokenizer.ggml.tokens"].data)
    # every scalar key agrees
    for key, field in ref.fields.items():
        if key.startswith("GGUF.") or key not in info.metadata:
            continue
        if isinstance(info.metadata[key], list | str | int | float | bool):
            assert info.metadata[key] == pytest.approx(field.contents()), key


def test_bundled_model_facts(gemma: Path, smollm: Path) -> None:
    g, s = read_model_info(gemma), read_model_info(smollm)
    assert (g.arch, g.quant, g.chat_template) == ("gemma3", "Q4_K_M", None)
    assert 250e6 < g.params < 300e6
    assert s.arch == "llama" and s.quant == "Q4_1" and s.chat_template
    assert 130e6 < s.params < 140e6


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "not found"),
        ("truncated", "truncated"),
        ("corrupt", "corrupt header"),
        ("not_gguf", "not a GGUF file"),
    ],
)
def test_bad_files_give_one_line_errors(
    bad_files: dict[str, Path], kind: str, message: str
) -> None:
    with pytest.raises(GGUFError) as e:
        read_model_info(bad_files[kind])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_validate_header_names_missing_keys(smollm: Path) -> None:
    info = read_model_info(smollm)
    validate_header(info)  # a good file passes
    broken = type(info)(**{**info.__dict__, "arch": "gemma4"})
    with pytest.raises(GGUFError, match=r"gemma4\.rope\.dimension_count_swa"):
        validate_header(broken)
