"""``workbench arena``: serve a blind preference study (Gradio voting panel)."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.arena.app import build_app, share_requested
from workbench.arena.study import demo_study_path, load_study
from workbench.arena.votes import VoteStore
from workbench.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "arena",
        help="serve a blind voting panel for a study (Gradio)",
        description="Serve the blind voting panel of a study: raters log in with their "
        "token, vote on anonymous answer pairs, and see the model names only after voting; "
        "admins also see the live leaderboard. Votes go to the study's SQLite file.",
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
    p.add_argument("--check", action="store_true", help="validate the study and exit")
    p.add_argument("--json", action="store_true", help="with --check/--export: print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.study or demo_study_path()
    study = load_study(path, resolve_models=not args.export)
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
            "votes_db": str(study.votes_db),
        }
        # Read-only: an export or a check never writes to the votes file or its directory.
        if args.export:
            with VoteStore(study.votes_db, study.name, read_only=True) as store:
                try:
                    out = store.export(args.export, include_flagged=args.include_flagged)
                except OSError as e:
                    raise CliError(f"cannot write {args.export}: {e.strerror or e}") from None
                summary["votes"] = store.count_votes()
            summary["exported"] = str(out)
        elif study.votes_db.exists():
            with VoteStore(study.votes_db, study.name, read_only=True) as store:
                summary["votes"] = store.count_votes()
        else:
            summary["votes"] = 0
        if args.json:
            print(json.dumps(summary))
        else:
            for k, v in summary.items():
                print(f"{k}: {v}", file=sys.stderr)
        return 0

    app = build_app(study, seed=args.seed)
    print(
        f"workbench arena: study {study.name!r} ({len(study.models)} models, "
        f"{len(study.raters)} raters) on http://{args.host}:{args.port}/ ; "
        f"votes in {study.votes_db}",
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
