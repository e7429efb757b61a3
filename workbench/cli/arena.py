"""``workbench arena``: serve a blind preference study (Gradio voting panel)."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workbench.arena.app import build_app, share_requested
from workbench.arena.db import describe_url, is_server_url
from workbench.arena.study import Study, demo_study_path, load_study
from workbench.arena.votes import VoteStore, migrate_store, open_study_store
from workbench.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "arena",
        help="serve a blind voting panel for a study (Gradio)",
        description="Serve the blind voting panel of a study: raters log in with their "
        "token, vote on anonymous answer pairs, and see the model names only after voting; "
        "admins also see the live leaderboard. Votes go to the study's SQLite file or "
        "PostgreSQL database (votes_db).",
    )
    p.add_argument(
        "--study",
        metavar="STUDY.toml",
        help="the study file (default: the demo study bundled with workbench)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--seed", type=int, default=None, help="seed for pair and prompt sampling")
    p.add_argument(
        "--export",
        metavar="VOTES_FILE",
        help="write the votes (.parquet, .csv or .jsonl, ratings format) and exit",
    )
    p.add_argument(
        "--include-flagged",
        action="store_true",
        help="with --export: keep battles the identity guard flagged",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve the study from N processes on ports PORT, PORT+1, ... (put a reverse "
        "proxy in front; with a PostgreSQL votes_db they may run on several hosts)",
    )
    p.add_argument(
        "--migrate-to",
        metavar="URL",
        help="copy the study's SQLite votes and battles into the empty PostgreSQL database "
        "URL (postgresql://user@host:port/db; password from the study's "
        "votes_db_password_env or PGPASSWORD), check the counts and exit",
    )
    p.add_argument("--check", action="store_true", help="validate the study and exit")
    p.add_argument("--json", action="store_true", help="with --check/--export: print JSON")
    p.set_defaults(func=run)


def _where(study: Study) -> str:
    db = study.votes_db
    return describe_url(db) if isinstance(db, str) else str(db)


def run(args: argparse.Namespace) -> int:
    path = args.study or demo_study_path()
    study = load_study(path, resolve_models=not (args.export or args.migrate_to))
    if args.migrate_to:
        return _migrate(study, args.migrate_to)
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    if not args.export:  # before anything starts: a demo token must not reach the network
        study.check_host(args.host)
        study.check_share(share_requested(None))
    if args.check or args.export:
        summary: dict[str, object] = {
            "study": study.name,
            "models": study.model_names,
            "prompts": len(study.prompts),
            "raters": len(study.raters),
            "show_thinking": study.show_thinking,
            "max_turns": study.max_turns,
            "votes_db": _where(study),
        }
        # Read-only: an export or a check never writes to the votes store.
        if args.export:
            with open_study_store(study, read_only=True) as store:
                try:
                    out = store.export(args.export, include_flagged=args.include_flagged)
                except OSError as e:
                    raise CliError(f"cannot write {args.export}: {e.strerror or e}") from None
                summary["votes"] = store.count_votes()
            summary["exported"] = str(out)
        elif isinstance(study.votes_db, str) or study.votes_db.exists():
            with open_study_store(study, read_only=True) as store:
                summary["votes"] = store.count_votes()
        else:
            summary["votes"] = 0
        if args.json:
            print(json.dumps(summary))
        else:
            for k, v in summary.items():
                print(f"{k}: {v}", file=sys.stderr)
        return 0
    if args.workers > 1:
        return _workers(args, Path(path), study)

    app = build_app(study, seed=args.seed)
    print(
        f"workbench arena: study {study.name!r} ({len(study.models)} models, "
        f"{len(study.raters)} raters) on http://{args.host}:{args.port}/ ; "
        f"votes in {_where(study)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        app.launch(server_name=args.host, server_port=args.port, quiet=True)
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {e}") from None
    finally:
        app.arena.close()
    return 0


def _migrate(study: Study, url: str) -> int:
    if not is_server_url(url):
        raise CliError(f"--migrate-to {url!r}: give a postgresql://user@host:port/db URL")
    if isinstance(study.votes_db, str):
        raise CliError(f"study {study.name!r} is on {describe_url(study.votes_db)} already")
    with (
        VoteStore(study.votes_db, study.name, read_only=True) as source,
        VoteStore(url, study.name, password_env=study.votes_db_password_env) as target,
    ):
        copied = migrate_store(source, target)
        counts = (target.count_battles(), target.count_votes())
        if counts != (source.count_battles(), source.count_votes()):
            raise CliError(f"the counts differ after the copy: {counts}")
    print(
        f"workbench arena: copied {copied['battles']} battles, {copied['votes']} votes and "
        f"{copied['answers']} generated answers of study {study.name!r} from "
        f"{study.votes_db} to {describe_url(url)}; the counts match. Serve it with "
        f'votes_db = "{url}" in the study file.',
        file=sys.stderr,
    )
    return 0


def _workers(args: argparse.Namespace, path: Path, study: Study) -> int:
    """Serve from ``args.workers`` child processes on consecutive ports; stop them together."""
    open_study_store(study).close()  # a bad store is one line here, not N
    procs: list[tuple[int, subprocess.Popen[bytes]]] = []

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop)
    try:
        for i in range(args.workers):
            port = args.port + i
            cmd = [sys.executable, "-m", "workbench.cli", "arena", "--study", str(path)]
            cmd += ["--host", args.host, "--port", str(port)]
            if args.seed is not None:
                cmd += ["--seed", str(args.seed + i)]
            procs.append((port, subprocess.Popen(cmd)))
        print(
            f"workbench arena: {args.workers} processes on ports {args.port}-"
            f"{args.port + args.workers - 1} ; stop them all with Ctrl-C or SIGTERM",
            file=sys.stderr,
            flush=True,
        )
        while True:
            for port, proc in procs:
                rc = proc.poll()
                if rc is not None:
                    print(
                        f"workbench arena: the process on port {port} exited ({rc}); "
                        "stopping the others",
                        file=sys.stderr,
                    )
                    return rc or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, old)
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
