"""Synthetic twins: exact layout of real files, valid random blocks, llama.cpp loads them,
remote twins fetch header bytes only, and catalog twins allocate what the planner says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFValueType

from tests.helpers.fake_hub import FakeHub
from workbench.errors import HubError
from workbench.gguf import MetaEntry, TensorInfo, entry_bytes, read_model_info, write_gguf
from workbench.models.layouts import TensorSpec
from workbench.models.memory import plan
from workbench.models.twin import (
    TWIN_KEY,
    TWIN_SOURCE_KEY,
    TwinError,
    assign_types,
    build_twin,
    catalog_headers,
    llama_cpp_memory,
    marker_entries,
    resolve_twin,
    twin_from_catalog,
    twin_from_file,
    twin_from_hub,
    write_twin,
)

# --------------------------------------------------------------------------- exact copies


@pytest.mark.slow
@pytest.mark.parametrize("which", ["gemma", "smollm"])
def test_twin_of_a_bundled_model_has_its_exact_layout_and_metadata(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    src: Path = request.getfixturevalue(which)
    out = twin_from_file(src, tmp_path / "twin.gguf", fill="zeros")
    a, b = read_model_info(src), read_model_info(out.path)
    assert [(t.name, t.shape, t.ggml_type) for t in b.tensors] == [
        (t.name, t.shape, t.ggml_type) for t in a.tensors
    ]
    assert b.tensors == a.tensors  # same offsets too: the data section is laid out alike
    assert {k: b.metadata[k] for k in a.metadata} == a.metadata
    assert set(b.metadata) - set(a.metadata) == {TWIN_KEY, TWIN_SOURCE_KEY, "workbench.twin.fill"}
    assert b.is_twin and not a.is_twin
    assert b.metadata[TWIN_SOURCE_KEY] == src.name
    added = sum(len(raw) for raw in marker_entries(src.name, "zeros"))
    grown = out.path.stat().st_size - src.stat().st_size
    assert 0 <= grown <= added + 32  # the marker, re-aligned to the 32-byte data section
    assert os.stat(out.path).st_blocks * 512 < 16 << 20  # zeros: a sparse file


def _dequantize_all(path: Path) -> dict[str, np.ndarray]:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    r = GGUFReader(path)
    return {t.name: dequantize(t.data, t.tensor_type) for t in r.tensors}


def test_random_blocks_of_every_common_type_dequantize_to_small_finite_values(
    tmp_path: Path,
) -> None:
    from gguf import GGMLQuantizationType as Q

    kinds = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
             "IQ4_NL", "IQ4_XS", "F16", "BF16", "F32"]  # fmt: skip
    tensors, off = [], 0
    for k in kinds:
        t = TensorInfo(f"blk.0.{k.lower()}.weight", (512, 64), int(Q[k]), off)
        tensors.append(t)
        off += (t.n_bytes + 31) // 32 * 32
    entries = [entry_bytes(MetaEntry.of("general.architecture", "llama"))]
    write_twin(tmp_path / "blocks.gguf", entries, tensors, fill="random", seed=1)
    values = _dequantize_all(tmp_path / "blocks.gguf")
    for k in kinds:
        v = values[f"blk.0.{k.lower()}.weight"]
        assert np.isfinite(v).all(), k
        assert 0.001 < float(np.abs(v).mean()) < 0.5, k  # varied, and no huge values


def test_split_parts_are_merged_into_one_twin(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType as Q

    def part(i: int, names: list[str]) -> None:
        t = GGUFValueType
        entries = [MetaEntry("general.architecture", t.STRING, "llama"),
                   MetaEntry("split.no", t.UINT16, i), MetaEntry("split.count", t.UINT16, 2),
                   MetaEntry("split.tensors.count", t.INT32, 4)]  # fmt: skip
        ts, off = [], 0
        for n in names:
            ts.append(TensorInfo(n, (256, 8), int(Q.Q8_0), off))
            off += 2176
        path = tmp_path / f"m-Q8_0-{i + 1:05d}-of-00002.gguf"
        write_gguf(path, entries, ts)

    part(0, ["a.weight", "b.weight"])
    part(1, ["c.weight", "d.weight"])
    out = twin_from_file(tmp_path / "m-Q8_0-00001-of-00002.gguf", tmp_path / "twin.gguf")
    info = read_model_info(out.path)
    assert [t.name for t in info.tensors] == ["a.weight", "b.weight", "c.weight", "d.weight"]
    assert not any(k.startswith("split.") for k in info.metadata)


# --------------------------------------------------------------------------- llama.cpp

_GENERATE = r"""
import sys
import numpy as np
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=256, n_threads=2, logits_all=True, verbose=False)
llm.eval(llm.tokenize(b"The twin says hello"))
scores = np.asarray(llm.scores[: llm.n_tokens])
assert np.isfinite(scores).all() and scores.std() > 0, "logits not finite or constant"
out = llm.create_completion("Once", max_tokens=8, temperature=0.0)
print(out["usage"]["completion_tokens"])
"""


@pytest.mark.slow
def test_random_twin_of_smollm_loads_and_generates_in_llama_cpp(
    smollm: Path, tmp_path: Path
) -> None:
    out = twin_from_file(smollm, tmp_path / "twin.gguf", fill="random")
    proc = subprocess.run([sys.executable, "-c", _GENERATE, str(out.path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen3.5-0.8b", "gemma-4-e2b"])
def test_catalog_twin_allocates_what_the_planner_says(name: str, tmp_path: Path) -> None:
    out = twin_from_catalog(name, tmp_path / f"{name}.gguf", fill="zeros")
    info = read_model_info(out.path)
    for fa in (False, True):
        got = llama_cpp_memory(out.path, 4096, flash_attn=fa)
        want = plan(info, 4096, flash_attn=fa)
        assert abs(got.kv_bytes - want.kv_bytes) <= got.resolution, (fa, got, want.kv_bytes)
        assert abs(got.state_bytes - want.state_bytes) <= got.resolution


@pytest.mark.slow
def test_catalog_twin_with_a_synthetic_vocabulary_generates(tmp_path: Path) -> None:
    out = twin_from_catalog("qwen3.5-0.8b", tmp_path / "q.gguf", fill="random")
    proc = subprocess.run([sys.executable, "-c", _GENERATE, str(out.path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


# --------------------------------------------------------------------------- catalog


@pytest.mark.parametrize(
    ("name", "published"),
    [("gemma-4-26b-a4b", 25.23e9), ("gemma-4-31b", 30.70e9), ("qwen3.5-35b-a3b", 34.66e9),
     ("qwen3.5-9b", 8.95e9), ("glm-4-9b", 9.40e9), ("glm-4-32b", 32.565e9),
     ("glm-4.5-air", 106.85e9), ("glm-4.7-flash", 29.94e9)],
)  # fmt: skip
def test_catalog_layouts_reproduce_published_parameter_counts(name: str, published: float) -> None:
    n = sum(t.n_elements for t in catalog_headers(name).tensors)
    assert abs(n - published) / published < 0.005, n


def test_quantization_mix_follows_llama_quantize() -> None:
    types = {t.name: t.type_name for t in catalog_headers("gemma-4-26b-a4b", "Q4_K_M").tensors}
    assert types["token_embd.weight"] == "Q6_K"  # tied embeddings take the output's type
    assert types["blk.3.ffn_gate_up_exps.weight"] == "Q4_K"
    # Expert rows of 704 and dense rows of 2112 are not multiples of 256: 32-element types.
    assert {types[f"blk.{i}.ffn_down_exps.weight"] for i in range(30)} == {"Q5_0", "Q8_0"}
    assert types["blk.0.ffn_gate_inp.weight"] == "F32"
    specs = [TensorSpec("blk.0.attn_v.weight", (256, 64)), TensorSpec("output.weight", (256, 9))]
    assert assign_types(specs, "Q8_0", n_layer=1) == ["Q8_0", "Q8_0"]
    with pytest.raises(ValueError, match="unknown quantization"):
        assign_types(specs, "Q3_X", n_layer=1)


@pytest.mark.slow
def test_catalog_twin_is_marked_and_sparse_with_zeros(tmp_path: Path) -> None:
    out = build_twin("twin:gemma-4-26b-a4b", tmp_path / "g.gguf", fill="zeros")
    info = read_model_info(out.path)
    assert info.is_twin and info.arch == "gemma4" and info.vocab_size == 262144
    assert info.metadata[TWIN_SOURCE_KEY] == "twin:gemma-4-26b-a4b:Q4_K_M"
    assert info.name == "Gemma 4 26B A4B (twin)"
    assert out.data_bytes > 15 * 2**30
    assert os.stat(out.path).st_blocks * 512 < 64 << 20
    # The older catalog: spelling still resolves, to the same twin.
    old = build_twin("catalog:gemma-4-26b-a4b", tmp_path / "old.gguf", fill="zeros")
    assert read_model_info(old.path).tensors == info.tensors and old.source == out.source
    with pytest.raises(TwinError, match="no published configuration"):
        build_twin("twin:gemma-9", tmp_path / "x.gguf")


def test_resolve_twin_builds_once_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    first = resolve_twin("twin:qwen3.5-0.8b", fill="zeros")
    assert first.parent == tmp_path / "models" / "twins"
    mtime = first.stat().st_mtime_ns
    assert resolve_twin("twin:qwen3.5-0.8b", fill="zeros") == first
    assert first.stat().st_mtime_ns == mtime
    assert resolve_twin(first) == first  # a path to a twin is taken as it is
    assert read_model_info(first).is_twin


# --------------------------------------------------------------------------- hub headers


REPO = "acme/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"


@pytest.fixture()
def range_hub(smollm: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.add(REPO, FILE, smollm)
    with hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@pytest.mark.slow
@pytest.mark.parametrize("spec", [f"{REPO}:{FILE}", f"{REPO}:Q4_1"])
def test_remote_twin_fetches_only_header_bytes(
    spec: str, range_hub: FakeHub, smollm: Path, tmp_path: Path
) -> None:
    result, fetched = twin_from_hub(spec, tmp_path / "remote.gguf", fill="zeros")
    local = twin_from_file(smollm, tmp_path / "local.gguf", fill="zeros")
    a, b = read_model_info(local.path), read_model_info(result.path)
    assert a.tensors == b.tensors
    assert {k: v for k, v in a.metadata.items() if k != TWIN_SOURCE_KEY} == {
        k: v for k, v in b.metadata.items() if k != TWIN_SOURCE_KEY
    }
    assert b.metadata[TWIN_SOURCE_KEY] == f"hf:{REPO}:{FILE}"
    served = sum(r.sent for r in range_hub.downloads())
    header = read_model_info(smollm).data_offset
    assert served == fetched.bytes_fetched
    assert header <= served <= 2 * header + (1 << 20)  # growing range reads
    assert served < smollm.stat().st_size / 20  # never the weights


def test_offline_a_hub_twin_reads_the_cached_file(
    range_hub: FakeHub, smollm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.models.hub import pull

    cache = tmp_path / "hub"
    pull(f"{REPO}:Q4_1", endpoint=range_hub.url, cache_dir=cache)
    range_hub.stop()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result, fetched = twin_from_hub(f"{REPO}:Q4_1", tmp_path / "t.gguf", fill="zeros")
    assert fetched.cached and fetched.bytes_fetched == 0 and fetched.paths == (FILE,)
    assert read_model_info(result.path).tensors == read_model_info(smollm).tensors
    with pytest.raises(
        HubError, match=r"^offline \(HF_HUB_OFFLINE\), and in the hub cache: .*no Q8_0"
    ):
        twin_from_hub(f"{REPO}:Q8_0", tmp_path / "x.gguf")
    range_hub.start()  # the fixture stops it again


def test_remote_errors_are_one_line(range_hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="no Q8_0"):
        twin_from_hub(f"{REPO}:Q8_0", tmp_path / "x.gguf")
    with pytest.raises(HubError, match=r"answered HTTP 404 for acme/missing/file\.gguf"):
        twin_from_hub("acme/missing:file.gguf", tmp_path / "x.gguf")
