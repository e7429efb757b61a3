"""Downloads against a hub look-alike on 127.0.0.1 serving the bundled SmolLM2 GGUF file."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_hub import COMMIT, FakeHub
from workbench.gguf import read_model_info
from workbench.models import hub
from workbench.models.registry import smollm_path
from workbench.models.twin import twin_from_hub

REPO = "acme/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"
SPLIT_REPO = "acme/split-GGUF"
SPLIT_BYTES = os.urandom(3 << 20)


@pytest.fixture(scope="module")
def source() -> Path:
    p = smollm_path()
    if p is None:
        pytest.skip("bundled SmolLM2 model not installed (make models)")
    return p


@pytest.fixture()
def fake_hub(source: Path) -> Iterator[FakeHub]:
    fh = FakeHub()
    fh.add(REPO, FILE, source)
    fh.add(REPO, "mmproj-F16.gguf", b"projector, not a model")
    half = len(SPLIT_BYTES) // 2
    fh.add(SPLIT_REPO, "Q8_0/m-Q8_0-00001-of-00002.gguf", SPLIT_BYTES[:half])
    fh.add(SPLIT_REPO, "Q8_0/m-Q8_0-00002-of-00002.gguf", SPLIT_BYTES[half:])
    fh.add(SPLIT_REPO, "m-Q2_K-00001-of-00002.gguf", b"orphan part")
    with fh:
        yield fh


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pull_puts_a_verified_file_in_the_hub_cache(
    fake_hub: FakeHub, source: Path, tmp_path: Path
) -> None:
    r = hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    storage = tmp_path / "models--acme--SmolLM2-135M-Instruct-GGUF"
    assert r.path == storage / "snapshots" / COMMIT / FILE
    assert r.path.is_symlink()  # the hub cache layout: snapshot link -> content-addressed blob
    assert r.path.resolve().parent == storage / "blobs"
    assert (storage / "refs" / "main").read_text() == COMMIT
    assert r.files[0].sha256 == _sha(source) == r.path.resolve().name
    # The repository has a projector: it comes along, beside the model in the snapshot.
    assert r.mmproj is not None and r.mmproj.local_path == r.path.with_name("mmproj-F16.gguf")
    assert r.mmproj.local_path.read_bytes() == b"projector, not a model"
    assert r.downloaded_bytes == source.stat().st_size + r.mmproj.size
    assert read_model_info(r.path).arch == "llama"
    assert r.name == f"{REPO}:{FILE.removesuffix('.gguf')}"

    before = len(fake_hub.downloads())
    again = hub.pull(f"{REPO}:{FILE}", endpoint=fake_hub.url, cache_dir=tmp_path)
    assert again.path == r.path and again.downloaded_bytes == 0
    assert len(fake_hub.downloads()) == before  # nothing transferred the second time


def test_a_fitting_quantization_is_sized_from_the_header_read_by_range(
    fake_hub: FakeHub, source: Path, tmp_path: Path
) -> None:
    r = hub.pull(REPO, endpoint=fake_hub.url, cache_dir=tmp_path, budget_bytes=8 << 30)
    assert r.quant == "Q4_1" and "file size + KV cache" in r.reason  # the header was read
    # Header reads ask for a bounded range ("bytes=N-M"); the download itself does not.
    ranged = [q for q in fake_hub.downloads() if q.range and not q.range.endswith("-")]
    header = read_model_info(source).data_offset
    assert ranged and sum(q.sent for q in ranged) <= 2 * header + (1 << 20)


@pytest.mark.slow
def test_an_interrupted_download_resumes_where_it_stopped(
    fake_hub: FakeHub, source: Path, tmp_path: Path
) -> None:
    size = source.stat().st_size
    cut = 30 << 20
    fake_hub.cut_next_get_at = cut  # connection dropped after 30 MiB ...
    fake_hub.fail_gets_with = 503  # ... and the retry refused: the pull gives up
    with pytest.raises(hub.HubError, match="run the pull again to resume"):
        hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    partial = list(tmp_path.rglob("*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size == cut
    assert not list(tmp_path.rglob(FILE))

    fake_hub.fail_gets_with = None
    r = hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    last = [q for q in fake_hub.downloads() if r.files[0].sha256 in q.path][-1]
    assert last.range == f"bytes={cut}-" and last.status == 206
    assert r.mmproj is not None  # the projector came along after the model, whole
    assert last.sent == size - cut == r.downloaded_bytes - r.mmproj.size
    assert _sha(r.path) == _sha(source)
    assert not list(tmp_path.rglob("*.incomplete"))


def test_a_download_whose_checksum_does_not_match_is_rejected(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    fake_hub.corrupt.add(FILE)
    with pytest.raises(hub.ChecksumError, match="does not match"):
        hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    storage = tmp_path / "models--acme--SmolLM2-135M-Instruct-GGUF"
    assert not list((storage / "blobs").iterdir())  # neither blob nor partial file kept
    assert not (storage / "snapshots").exists()


def test_offline_pull_is_answered_from_the_cache(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    fake_hub.stop()
    served = len(fake_hub.log)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = hub.pull(REPO, endpoint=fake_hub.url, cache_dir=tmp_path)  # no quant named
    assert r.offline and r.path == first.path and r.quant == "Q4_1"
    with pytest.raises(hub.HubError, match="holds no Q8_0"):
        hub.pull(f"{REPO}:Q8_0", endpoint=fake_hub.url, cache_dir=tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # Online but the hub is down (connection refused): the cache still answers.
    r = hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    assert r.offline and r.path == first.path and "cannot reach" in r.reason
    assert len(fake_hub.log) == served
    fake_hub.start()  # the fixture stops it again


def test_split_files_are_pulled_whole(fake_hub: FakeHub, tmp_path: Path) -> None:
    r = hub.pull(f"{SPLIT_REPO}:Q8_0", endpoint=fake_hub.url, cache_dir=tmp_path)
    assert [f.repo_path for f in r.files] == [
        "Q8_0/m-Q8_0-00001-of-00002.gguf",
        "Q8_0/m-Q8_0-00002-of-00002.gguf",
    ]
    assert r.path.name == "m-Q8_0-00001-of-00002.gguf"
    assert r.files[1].local_path.parent == r.path.parent  # llama.cpp finds part 2 beside 1
    assert r.path.read_bytes() + r.files[1].local_path.read_bytes() == SPLIT_BYTES
    with pytest.raises(hub.HubError, match=r"no Q2_K file|lacks"):
        hub.pull(f"{SPLIT_REPO}:Q2_K", endpoint=fake_hub.url, cache_dir=tmp_path)


def test_unknown_repo_and_file_are_clear_errors(fake_hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(hub.HubError, match="not found"):
        hub.pull("acme/nothing-here", endpoint=fake_hub.url, cache_dir=tmp_path)
    with pytest.raises(hub.HubError, match=r"no file 'x\.gguf'"):
        hub.pull(f"{REPO}:x.gguf", endpoint=fake_hub.url, cache_dir=tmp_path)


@pytest.mark.slow
def test_cli_pull_prints_the_path_as_json(fake_hub: FakeHub, tmp_path: Path) -> None:
    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "HF_HUB_CACHE": str(tmp_path)}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "pull", f"{SPLIT_REPO}:Q8_0", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["path"].endswith("m-Q8_0-00001-of-00002.gguf") and Path(doc["path"]).exists()
    assert doc["quant"] == "Q8_0" and len(doc["files"]) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "pull", "not a repo"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "neither a catalog name" in bad.stderr


# --------------------------------------------------------------------------- pure parts


def test_spec_parsing() -> None:
    assert hub.parse_spec("gemma-4-e4b") == hub.PullSpec("unsloth/gemma-4-E4B-it-GGUF")
    assert hub.parse_spec("Gemma-4-E4B:q8_0").quant == "q8_0"
    assert hub.parse_spec("a/b:dir/f.gguf") == hub.PullSpec("a/b", filename="dir/f.gguf")
    with pytest.raises(hub.UnknownSpec, match="neither a catalog name"):
        hub.parse_spec("no-such-model")


def _groups(**sizes: int) -> list[hub.GGUFGroup]:
    files = [hub.RemoteFile(f"m-{q}.gguf", s, None) for q, s in sizes.items()]
    return hub.group_gguf_files(files)


def test_choice_fits_the_memory_budget() -> None:
    gib = 2**30
    groups = _groups(Q2_K=3 * gib, Q4_K_M=5 * gib, Q6_K=7 * gib, Q8_0=9 * gib, BF16=16 * gib)
    assert hub.choose_file(groups, budget_bytes=32 * gib).group.quant == "Q4_K_M"
    assert hub.choose_file(groups, budget_bytes=5 * gib).group.quant == "Q2_K"
    assert hub.choose_file(groups, budget_bytes=32 * gib, quant="q8_0").group.quant == "Q8_0"
    no_q4 = _groups(Q2_K=3 * gib, Q6_K=7 * gib, Q8_0=9 * gib, BF16=16 * gib)
    assert hub.choose_file(no_q4, budget_bytes=32 * gib).group.quant == "Q8_0"
    with pytest.raises(hub.HubError, match="nothing fits"):
        hub.choose_file(groups, budget_bytes=2 * gib)
    with pytest.raises(hub.HubError, match="no IQ1_S file"):
        hub.choose_file(groups, quant="IQ1_S", budget_bytes=32 * gib)


# --------------------------------------------------------------------------- failures


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(
    argv: list[str], endpoint: str, cache: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache)}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *argv], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_a_hub_twin_without_network_is_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    spec = "unsloth/gemma-4-E4B-it-GGUF:Q4_K_M"
    proc = _cli(["twin", spec, "-o", "x.gguf"], f"http://127.0.0.1:{port}", tmp_path, tmp_path)
    line = _one_line(proc)
    assert proc.returncode == 1 and not (tmp_path / "x.gguf").exists()
    assert line.startswith(f"workbench twin: cannot reach 127.0.0.1:{port}")
    assert "unsloth/gemma-4-E4B-it-GGUF" in line and "HF_HUB_OFFLINE=1" in line
    # A pull falls back to the cache by itself; with nothing there it says both.
    proc = _cli(["pull", spec], f"http://127.0.0.1:{port}", tmp_path, tmp_path)
    line = _one_line(proc)
    assert proc.returncode == 1
    assert line.startswith(f"workbench pull: cannot reach 127.0.0.1:{port} (ConnectError")
    assert line.endswith("and the hub cache holds no Q4_K_M of unsloth/gemma-4-E4B-it-GGUF")


def test_a_hub_answering_an_error_status_is_named_in_one_line(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    fake_hub.fail_api_with = 503
    host = f"127.0.0.1:{fake_hub.port}"
    proc = _cli(["twin", f"{REPO}:Q4_1", "-o", "x.gguf"], fake_hub.url, tmp_path, tmp_path)
    line = _one_line(proc)
    assert proc.returncode == 1
    assert line == (f"workbench twin: {host} answered HTTP 503 for {REPO}; "
                    "HF_HUB_OFFLINE=1 uses the files already in the hub cache")  # fmt: skip
    with pytest.raises(hub.HubError, match=f"^{host} answered HTTP 503, and the hub cache"):
        hub.pull(f"{REPO}:Q4_1", endpoint=fake_hub.url, cache_dir=tmp_path)
    fake_hub.fail_api_with = None
    fake_hub.fail_gets_with = 500  # the file's bytes refused: the header read fails
    with pytest.raises(hub.HubRefused, match=rf"answered HTTP 500 for {REPO}/{FILE}") as e:
        twin_from_hub(f"{REPO}:{FILE}", tmp_path / "x.gguf", endpoint=fake_hub.url)
    assert e.value.status == 500 and "\n" not in str(e.value)
