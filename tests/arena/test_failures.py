"""Bad input and storage failures: one line each, nothing acknowledged is lost.

Read-only cases run the real command with the file-permission override capability
dropped (``setpriv``), since root may write to any file."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.arena.votes import VoteRejected, VoteStore, VoteStoreError
from workbench.cli import main

from .helpers import study_text, workbench_exe
from .test_votes import battle, dump

ENDPOINTS = ["http://127.0.0.1:9/v1#model-one", "http://127.0.0.1:9/v1#model-two"]


def _store_with_votes(path: Path, n: int = 3) -> VoteStore:
    store = VoteStore(path, "t")
    for i in range(n):
        store.add_battle(battle(f"b{i}"))
        store.record_vote(f"b{i}", "alice", "A", f"reason {i}")
    return store


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"choice": ["A"]}, "unknown choice of type list"),
        ({"choice": {"A": 1}}, "unknown choice of type dict"),
        ({"choice": None}, "unknown choice"),
        ({"reason": "bad \ud800 text"}, "not text"),
        ({"reason": ["x"]}, "must be text"),
        ({"battle_id": ["b0"]}, "unknown battle"),
        ({"battle_id": "b\udfff"}, "unknown battle"),
    ],
)
def test_bad_vote_input_is_one_line(tmp_path: Path, kw: dict[str, object], message: str) -> None:
    with VoteStore(tmp_path / "v.sqlite") as store:
        store.add_battle(battle("b0"))
        before = dump(tmp_path / "v.sqlite")
        args: dict[str, object] = {"battle_id": "b0", "rater": "alice", "choice": "A"}
        args.update(kw)
        with pytest.raises(VoteRejected, match=message) as e:
            store.record_vote(**args)  # type: ignore[arg-type]
        assert "\n" not in str(e.value)
        assert dump(tmp_path / "v.sqlite") == before
        assert store.record_vote("b0", "alice", "B").winner == "model_b"


def test_csv_export_has_no_live_formulas(tmp_path: Path) -> None:
    reasons = ['=HYPERLINK("http://x","y")', "@SUM(A1:A9)", "+1+1", "-2", "\tTAB", "fine"]
    with VoteStore(tmp_path / "v.sqlite") as store:
        for i, reason in enumerate(reasons):
            store.add_battle(battle(f"b{i}"))
            store.record_vote(f"b{i}", "alice", "A", reason)
        out = store.export(tmp_path / "votes.csv")
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cells = [v for row in rows for v in row.values() if v]
    assert not [c for c in cells if c[0] in "=+-@\t\r"], "a cell starts like a formula"
    assert [r["reason"] for r in rows][:2] == ['\'=HYPERLINK("http://x","y")', "'@SUM(A1:A9)"]
    assert rows[-1]["reason"] == "fine"


# --------------------------------------------------------------------------- storage


def test_corrupt_and_truncated_votes_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(VoteStoreError) as e:
        VoteStore(junk)
    assert str(e.value) == f"votes file {junk}: cannot open it: file is not a database"

    good = tmp_path / "good.sqlite"
    _store_with_votes(good, 40).close()
    with sqlite3.connect(good) as c:  # fold the write-ahead log into the file
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cut = tmp_path / "cut.sqlite"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VoteStoreError, match=rf"votes file {cut}: .*malformed") as e:
        VoteStore(cut).votes_frame()
    assert "\n" not in str(e.value)

    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(VoteStoreError, match="is a directory"):
        VoteStore(tmp_path / "dir.sqlite")


def test_full_disk_fails_the_vote_in_one_line_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    store = _store_with_votes(path)
    store.add_battle(battle("full"))
    # SQLite's own page limit gives the real SQLITE_FULL error a full disk gives.
    pages = store._engine._conn.execute("PRAGMA page_count").fetchone()[0]
    store._engine._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(VoteStoreError) as e:
        store.record_vote("full", "alice", "A", "x" * 50_000, max_reason_chars=100_000)
    assert str(e.value).startswith(f"votes file {path}: cannot record the vote: ")
    assert "full" in str(e.value) and "rollback" not in str(e.value)
    store._engine._conn.execute("PRAGMA max_page_count = 1000000")
    assert store.count_votes() == 3  # the acknowledged ones, and not the failed one
    assert store.record_vote("full", "alice", "B").choice == "B"  # the battle still votes
    store.close()


_FAILING_COMMIT = """
import resource, signal, sys
from pathlib import Path
from workbench.arena.votes import VoteStore, VoteStoreError
sys.path.insert(0, {tests!r})
from arena.test_votes import battle

path = Path({path!r})
store = VoteStore(path, "t")
for i in range(3):
    store.add_battle(battle(f"b{{i}}"))
    store.record_vote(f"b{{i}}", "alice", "A")
store.add_battle(battle("late"))
# The disk fills up before the COMMIT: writing past this size fails (EFBIG).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
wal = path.with_name(path.name + "-wal").stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (wal, wal))
try:
    store.record_vote("late", "alice", "A", "r" * 20000, max_reason_chars=100000)
    print("RECORDED")
except VoteStoreError as e:
    print("ERROR", e)
"""


def test_failed_commit_is_not_hidden(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    script = _FAILING_COMMIT.format(path=str(path), tests=str(Path(__file__).parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith(f"ERROR votes file {path}: cannot record the vote: "), line
    assert "rollback" not in line and "\n" not in line
    with VoteStore(path) as store:
        assert sorted(store.votes_frame()["battle_id"]) == ["b0", "b1", "b2"]
        assert store.get_battle("late").status == "open"  # type: ignore[union-attr]


def _no_override(cmd: list[str]) -> list[str]:
    """``cmd`` run without the capability that lets root write read-only files."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test read-only files as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]


def _endpoint_study(directory: Path) -> Path:
    study = directory / "study.toml"
    study.write_text(study_text(directory, models=ENDPOINTS), encoding="utf-8")
    return study


@pytest.mark.slow  # starts the command
def test_read_only_votes_file_exports_and_refuses_to_serve(tmp_path: Path) -> None:
    study = _endpoint_study(tmp_path)
    votes = tmp_path / "votes"
    votes.mkdir()
    _store_with_votes(votes / "test.sqlite", 4).close()
    for f in votes.iterdir():
        f.chmod(0o444)
    votes.chmod(0o555)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    try:
        export = subprocess.run(
            _no_override(
                [
                    *workbench_exe(),
                    "arena",
                    "--study",
                    str(study),
                    "--export",
                    str(out_dir / "v.csv"),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert export.returncode == 0, export.stderr
        assert "votes: 4" in export.stderr
        assert len((out_dir / "v.csv").read_text().splitlines()) == 5

        serve = subprocess.run(
            _no_override([*workbench_exe(), "arena", "--study", str(study), "--port", "1"]),
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = serve.stderr.strip().splitlines()
        assert serve.returncode == 1 and len(lines) == 1, serve.stderr
        assert lines[0].startswith(f"workbench arena: votes file {votes / 'test.sqlite'}: ")
    finally:
        votes.chmod(0o755)


@pytest.mark.slow  # starts the command
def test_read_only_directory_for_a_new_votes_file(tmp_path: Path) -> None:
    study = _endpoint_study(tmp_path)
    (tmp_path / "votes").mkdir(mode=0o555)
    try:
        serve = subprocess.run(
            _no_override([*workbench_exe(), "arena", "--study", str(study), "--port", "1"]),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        (tmp_path / "votes").chmod(0o755)
    lines = serve.stderr.strip().splitlines()
    assert serve.returncode == 1 and len(lines) == 1, serve.stderr
    assert str(tmp_path / "votes" / "test.sqlite") in lines[0]
    assert "unable to open database file" in lines[0]


# --------------------------------------------------------------------------- --check


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("temperature = 0.7", "temperature = nan"), "temperature"),
        (lambda t: t.replace("temperature = 0.7", "temperature = 0.7\ntop_p = 5"), "top_p"),
        (lambda t: t.replace("temperature = 0.7", "temperature = 0.7\ntop_k = -3"), "top_k"),
        (lambda t: t.replace("n_ctx = 512", "n_ctx = 10"), "n_ctx = 10"),
        (lambda t: t.replace('"bob-secret-22"', '"          "'), "spaces or be blank"),
        (lambda t: t.replace('"bob-secret-22"', '" bob-secret-22"'), "spaces or be blank"),
        (lambda t: t.replace("[limits]", "[limits]\nbattle_ttl_s = nan"), "battle_ttl_s"),
        (lambda t: t.replace("[limits]", "[limits]\nmax_open_battles = 0"), "max_open"),
        (lambda t: 'trusted_proxies = ["nope"]\n' + t, "trusted_proxies"),
        (lambda t: t.replace('"votes/test.sqlite"', '"votes"'), "is a directory"),
    ],
)
def test_check_catches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, message: str
) -> None:
    (tmp_path / "votes").mkdir()
    study = tmp_path / "study.toml"
    study.write_text(edit(study_text(tmp_path, models=ENDPOINTS)), encoding="utf-8")  # type: ignore[operator]
    assert main(["arena", "--study", str(study), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_check_catches_a_model_file_that_is_not_gguf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_files: dict[str, Path]
) -> None:
    for kind in ("not_gguf", "truncated"):
        study = tmp_path / f"{kind}.toml"
        text = study_text(tmp_path, models=[ENDPOINTS[0], str(bad_files[kind])])
        study.write_text(text, encoding="utf-8")
        assert main(["arena", "--study", str(study), "--check"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad_files[kind].name in err[0], err


def test_share_is_refused_with_demo_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "study.toml"
    study.write_text(
        study_text(tmp_path, models=ENDPOINTS, raters=[("demo", "demo-token", "rater")]),
        encoding="utf-8",
    )
    monkeypatch.setenv("GRADIO_SHARE", "true")
    assert main(["arena", "--study", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to share" in err[0], err
    monkeypatch.setenv("GRADIO_SHARE", "false")
    assert main(["arena", "--study", str(study), "--check"]) == 0


@pytest.mark.slow  # starts the command
def test_share_env_refuses_the_demo_study_in_one_line() -> None:
    """The command of the issue, as a user types it."""
    demo = Path(__file__).resolve().parents[2] / "workbench" / "data" / "studies" / "demo.toml"
    out = subprocess.run(
        [*workbench_exe(), "arena", "--study", str(demo)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRADIO_SHARE": "true"},
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "refusing to share" in lines[0]
