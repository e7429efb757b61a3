"""The GGUF layer's writer, file-name parser and KV-cache table: files it writes read back
through gguf.GGUFReader, and the generation backend, the bench and the memory planner all
use the one KV-cache table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType

import workbench.speed as bench
from workbench.gguf import (
    KV_CACHE_TYPES,
    GGUFError,
    MetaEntry,
    TensorInfo,
    UnknownKVCacheType,
    is_later_split_part,
    quant_of,
    read_model_info,
    sequential,
    split_name,
    unsplit,
    write_gguf,
)
from workbench.models import memory

# --------------------------------------------------------------------------- writer


def test_entries_round_trip_through_the_reference_reader(tmp_path: Path) -> None:
    t = GGUFValueType
    entries = [
        MetaEntry("general.architecture", t.STRING, "llama"),
        MetaEntry("a.n", t.UINT32, 7),
        MetaEntry("a.big", t.UINT64, 1 << 40),  # 8-byte scalars keep their width
        MetaEntry("a.list", t.ARRAY, [1, -2, 3], t.INT32),
        MetaEntry("a.words", t.ARRAY, ["x", "yz"], t.STRING),
        MetaEntry.of("a.flags", [True, False]),
        MetaEntry.of("a.eps", 1e-6),
    ]
    write_gguf(tmp_path / "k.gguf", entries, [])
    meta = read_model_info(tmp_path / "k.gguf", check_size=False).metadata
    assert meta["a.n"] == 7 and meta["a.big"] == 1 << 40
    assert meta["a.list"] == [1, -2, 3] and meta["a.words"] == ["x", "yz"]
    assert meta["a.flags"] == [True, False] and meta["a.eps"] == pytest.approx(1e-6)
    ref = GGUFReader(tmp_path / "k.gguf")
    assert ref.fields["a.big"].types == [t.UINT64]
    assert ref.fields["a.flags"].types == [t.ARRAY, t.BOOL]
    assert ref.fields["a.eps"].types == [t.FLOAT32]


def test_tensor_data_is_written_where_the_descriptors_say(tmp_path: Path) -> None:
    q8 = GGMLQuantizationType.Q8_0
    tensors = sequential([("a.weight", (64, 3), GGMLQuantizationType.F32),
                          ("b.weight", (256, 2), q8)])  # fmt: skip
    a = np.arange(192, dtype=np.float32)
    b = np.random.default_rng(0).integers(0, 255, tensors[1].n_bytes, dtype=np.uint8)

    def data(f: object, t: TensorInfo) -> None:
        f.write((a if t.name == "a.weight" else b).tobytes())  # type: ignore[attr-defined]

    write_gguf(tmp_path / "t.gguf", [MetaEntry.of("general.architecture", "llama")], tensors,
               data=data)  # fmt: skip
    ref = {t.name: t for t in GGUFReader(tmp_path / "t.gguf").tensors}
    assert np.array_equal(np.asarray(ref["a.weight"].data).ravel(), a)
    assert bytes(np.asarray(ref["b.weight"].data).ravel()) == b.tobytes()
    assert tensors[1].offset % 32 == 0 and tensors[1].n_bytes == 2 * 8 * 34

    def short(f: object, t: TensorInfo) -> None:
        f.write(b"\0")  # type: ignore[attr-defined]

    with pytest.raises(GGUFError, match="wrong number of data bytes"):
        write_gguf(tmp_path / "bad.gguf", [], tensors, data=short)
    assert not (tmp_path / "bad.gguf").exists()  # nothing half-written is left


# --------------------------------------------------------------------------- names


def test_split_names_and_quantizations() -> None:
    s = split_name("dir/m-Q8_0-00002-of-00003.gguf")
    assert s is not None and (s.stem, s.index, s.count) == ("m-Q8_0", 2, 3)
    assert s.parts == [f"m-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert split_name("m-Q8_0.gguf") is None
    assert is_later_split_part(Path("x-00002-of-00002.gguf"))
    assert not is_later_split_part("x-00001-of-00002.gguf")
    assert unsplit("Q8_0/m-Q8_0-00001-of-00002.gguf") == "Q8_0/m-Q8_0.gguf"
    assert quant_of("gemma-4-31B-it-UD-Q4_K_XL.gguf") == "UD-Q4_K_XL"
    assert quant_of("BF16/gemma-4-31B-it-BF16-00001-of-00002.gguf") == "BF16"
    assert quant_of("Qwen3.5-9B-IQ4_XS.gguf") == "IQ4_XS"
    assert quant_of("SmolLM2-135M-Instruct.Q4_1.gguf") == "Q4_1"
    assert quant_of("model.gguf") is None


# --------------------------------------------------------------------------- KV cache


def test_one_kv_cache_table_for_backend_bench_and_planner() -> None:
    from workbench.llama.params import kv_type_id  # the backend's and the bench's ids

    assert {name: kv_type_id(name) for name in KV_CACHE_TYPES} == dict(KV_CACHE_TYPES)
    # llama.cpp's --cache-type-k list, with the ids of its ggml_type enum.
    assert list(KV_CACHE_TYPES) == ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl",
                                    "q5_0", "q5_1"]  # fmt: skip
    for name, ggml_type in KV_CACHE_TYPES.items():
        assert GGMLQuantizationType(ggml_type).name.lower() == name


def test_every_door_accepts_iq4_nl_and_refuses_an_unknown_type(tmp_path: Path) -> None:
    from workbench.backends.base import GenerationConfig
    from workbench.testing import write_fixture

    info = read_model_info(write_fixture("llama", tmp_path / "m.gguf", n_layer=1))
    from workbench.llama.params import load_params

    params = load_params(GenerationConfig(type_k="iq4_nl", type_v="q8_0"), info)
    assert (params.type_k, params.type_v) == (20, 8)  # ggml_type ids
    settings = bench.BenchSettings(type_k=("iq4_nl",), type_v=("iq4_nl",))
    assert bench.bench_cases(n_prompt=8, n_gen=0, sweep=settings)[0].to_job()["type_k_id"] == 20
    p = memory.plan(info, 1024, kv_type="iq4_nl")
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType.IQ4_NL]
    k_row = info.key("attention.key_length") * info.key("attention.head_count_kv")
    assert p.kv_bytes == 2 * 1024 * k_row // block * size
    with pytest.raises(UnknownKVCacheType, match=r"use one of f32, f16, .*q5_1"):
        memory.plan(info, 1024, kv_type="q3_k")


def test_the_memory_command_checks_against_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["memory", "--kv-type", "q3_k"])
    assert e.value.code == 2
    assert (
        "unknown KV-cache type 'q3_k' (use one of f32, f16, bf16, q8_0" in capsys.readouterr().err
    )
