"""``workbench bench``: JSON contract, sweeps from comma lists, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main


def _smollm() -> Path:
    from workbench.models.registry import smollm_path

    p = smollm_path()
    if p is None:
        pytest.skip("bundled SmolLM2 not installed (make models)")
    return p


@pytest.mark.slow
def test_json_lists_one_object_per_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    smol = _smollm()
    argv = ["bench", "-m", str(smol), "-p", "16", "-n", "4", "-r", "2", "-t", "1,2", "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 4  # threads x (pp, tg)
    for r in rows:
        for key in (
            "model",
            "test",
            "n_prompt",
            "n_gen",
            "depth",
            "reps",
            "tps_mean",
            "tps_sd",
            "n_threads",
            "flash_attn",
            "type_k",
            "n_batch",
            "n_gpu_layers",
            "samples_tps",
        ):
            assert key in r
        assert r["reps"] == 2 and len(r["samples_tps"]) == 2
        assert r["tps_mean"] > 0
    assert sorted((r["n_threads"], r["test"]) for r in rows) == [
        (1, "pp"),
        (1, "tg"),
        (2, "pp"),
        (2, "tg"),
    ]
    assert {r["n_prompt"] for r in rows if r["test"] == "pp"} == {16}
    assert "[4/4]" in err  # progress goes to stderr
    # stored under $WORKBENCH_DATA/bench
    assert list((tmp_path / "bench").glob("*.parquet"))


@pytest.mark.slow
def test_table_output_and_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    smol = _smollm()
    assert (
        main(["bench", "-m", str(smol), "-p", "0", "-n", "4", "-r", "1", "-fa", "0", "--no-store"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| model" in out and "tg4" in out and "pp" not in out.split("tg4")[0].split("\n")[-1]
    assert "±" in out
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "-m", "no-such-model-xyz"],
        ["bench", "-ctk", "q9_9"],
        ["bench", "-r", "0"],
        ["bench", "-p", "0", "-n", "0"],
    ],
)
def test_user_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("workbench bench:")


def test_bad_comma_list_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["bench", "-t", "1,x"])
    assert e.value.code == 2
    assert "-t" in capsys.readouterr().err


def test_broken_model_exits_1_with_error_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "-m", str(tmp_path / "absent.gguf"), "--json", "--no-store"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["model"] == "absent" and rows[0]["error"]


@pytest.mark.slow
def test_interleave_prints_the_paired_comparison(
    capsys: pytest.CaptureFixture[str], gemma: Path, smollm: Path
) -> None:
    argv = ["bench", "-m", str(smollm), str(gemma), "-p", "16", "-n", "4", "-r", "6", "-t", "1"]
    assert main([*argv, "--interleave", "--no-store"]) == 0
    out = capsys.readouterr().out
    head, _, paired = out.partition(f"speed relative to {smollm.stem.lower()}")
    assert "| model" in head
    lines = [ln.strip() for ln in paired.splitlines()[1:] if ln.strip()]
    assert [ln.split(":")[0] for ln in lines] == [
        f"{gemma.stem.lower()} {t}" for t in ("pp16", "tg4")
    ]
    for ln in lines:  # "name pp16: 1.234 [1.100, 1.300]"
        ratio, low, high = (
            float(x)
            for x in ln.split(":")[1].replace("[", "").replace("]", "").replace(",", "").split()
        )
        assert 0 < low <= ratio <= high


def test_a_twin_says_so_in_rows_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.models.twin import twin_from_file
    from workbench.testing import write_fixture

    original = write_fixture("llama", tmp_path / "tiny.gguf")
    twin = tmp_path / "tiny-twin.gguf"
    twin_from_file(original, twin)
    argv = ["bench", "-m", str(original), str(twin), "-p", "8", "-n", "2", "-r", "1"]
    assert main([*argv, "-t", "1", "--no-store", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["model"], r["twin"]) for r in rows} == {("tiny", False), ("tiny-twin", True)}
    assert main([*argv, "-t", "1", "--no-store"]) == 0
    out = capsys.readouterr().out
    assert "tiny-twin (twin)" in out and "tiny (twin)" not in out
