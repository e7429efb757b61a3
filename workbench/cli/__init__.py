"""The ``workbench`` command. Each subcommand lives in its own module of this package,
exposing ``register(subparsers)``; heavy imports happen inside the command's ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.errors import InputError, WorkbenchError, one_line

COMMANDS = ("models", "compare", "bench", "memory", "ratings", "arena", "pull", "twin")


class CliError(InputError):
    """A flag the command cannot use: printed as one line on stderr, exit status 2."""


def add_image_tokens(p: argparse.ArgumentParser, what: str) -> None:
    """``--image-tokens N``, the per-image token budget of projectors that take one (Gemma 4's
    70-1120), worded once for every command; ``what`` says where the budget goes."""
    p.add_argument(
        "--image-tokens",
        dest="image_tokens",
        type=int,
        default=None,
        metavar="N",
        help=f"tokens per image {what} (Gemma 4: 70-1120; default: the projector's)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Compare local LLMs: speed, memory and blind preference on your hardware.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"workbench.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"workbench.cli.{name}":
                continue  # command not built in this version
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as e:  # every error the package raises: one line, no traceback
        print(f"workbench {args.command}: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
