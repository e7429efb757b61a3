"""``workbench ratings VOTES_FILE``: a leaderboard with confidence intervals from votes."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from workbench.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``ratings`` subcommand."""
    parser = sub.add_parser(
        "ratings",
        help="leaderboard (Bradley-Terry or Elo, with 95%% intervals) from a votes file",
        description=(
            "Read pairwise votes (Parquet, CSV, JSON lines or a JSON array such as the public "
            "arena battle dump; columns model_a, model_b, winner in {model_a, model_b, tie, "
            "tie (bothbad)}) and print a leaderboard. Ratings are on the Elo scale: "
            "P(A beats B) = 1 / (1 + 10^((R_B - R_A) / 400)). rank = 1 + the number of "
            "models whose interval lies entirely above this model's."
        ),
    )
    parser.add_argument("votes_file", metavar="VOTES_FILE", help="votes file")
    parser.add_argument(
        "--method", choices=("bt", "elo"), default="bt", help="Bradley-Terry (default) or Elo"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap rounds (1000)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="bootstrap seed (0)")
    parser.add_argument(
        "--ci",
        choices=("bootstrap", "sandwich"),
        default="bootstrap",
        help="interval: bootstrap percentiles (default) or sandwich (robust) standard errors",
    )
    parser.add_argument(
        "--ties",
        choices=("keep", "drop"),
        default="keep",
        help="keep ties as half a win each (default) or drop them",
    )
    parser.add_argument(
        "--anchor",
        metavar="MODEL=VALUE",
        help="pin MODEL's rating at VALUE (default: mean rating 1000)",
    )
    parser.add_argument(
        "--by",
        metavar="COLUMN",
        help="one leaderboard per value of this column (category, language, ...)",
    )
    parser.add_argument(
        "--style-control",
        action="store_true",
        help="also rate with answer-length difference as a covariate (needs len_a, len_b)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    parser.set_defaults(func=run)


def _parse_anchor(text: str | None) -> tuple[str, float] | None:
    if text is None:
        return None
    model, sep, value = text.rpartition("=")
    if not sep or not model:
        raise CliError(f"--anchor {text!r}: expected MODEL=VALUE, e.g. gpt-4=1200")
    try:
        return model, float(value)
    except ValueError:
        raise CliError(f"--anchor {text!r}: {value!r} is not a number") from None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _table(rows: list[dict[str, Any]], by: str | None, style: bool) -> str:
    headers = ["rank", "model", "rating", "95% CI", "battles", "W", "L", "T"]
    if style:
        headers += ["rank_sc", "rating_sc", "95% CI (sc)"]
    if by:
        headers.insert(0, by)
    lines = []
    for r in rows:
        ci = f"{_fmt(r['ci_low'])} .. {_fmt(r['ci_high'])}" if r["ci_low"] is not None else "-"
        cells = [
            str(r["rank"]),
            r["model"],
            _fmt(r["rating"]),
            ci,
            str(r["battles"]),
            str(r["wins"]),
            str(r["losses"]),
            str(r["ties"]),
        ]
        if style:
            ci_sc = (
                f"{_fmt(r['ci_low_sc'])} .. {_fmt(r['ci_high_sc'])}"
                if r["ci_low_sc"] is not None
                else "-"
            )
            cells += [str(r["rank_sc"]), _fmt(r["rating_sc"]), ci_sc]
        if by:
            cells.insert(0, str(r[by]))
        lines.append(cells)
    widths = [max(len(h), *(len(c[k]) for c in lines)) for k, h in enumerate(headers)]
    text_cols = {"model", by}

    def line(cells: list[str]) -> str:
        out = []
        for k, (c, wd) in enumerate(zip(cells, widths, strict=True)):
            out.append(c.ljust(wd) if headers[k] in text_cols else c.rjust(wd))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(c) for c in lines)])


def run(args: argparse.Namespace) -> int:
    """Prints the leaderboard. A bad flag raises CliError; a missing or malformed votes
    file, or an option the votes cannot take, the ratings' own InputError."""
    from workbench import ratings

    anchor = _parse_anchor(args.anchor)
    if args.bootstrap < 0:
        raise CliError("--bootstrap must be >= 0")
    votes = ratings.read_votes(args.votes_file)
    n_models = len(set(votes["model_a"].to_list()) | set(votes["model_b"].to_list()))
    print(f"{votes.height} votes among {n_models} models", file=sys.stderr)
    kw: dict[str, Any] = {
        "method": args.method,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "ci": args.ci,
        "ties": args.ties,
        "anchor": anchor,
        "style_control": args.style_control,
    }
    if args.by:
        board = ratings.leaderboard_by(votes, args.by, **kw)
    else:
        board = ratings.leaderboard(votes, **kw)
    rows = [{k: _clean(v) for k, v in row.items()} for row in board.to_dicts()]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(_table(rows, args.by, args.style_control))
    return 0
