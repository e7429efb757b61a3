"""What the arena does for each request: the two API endpoints and the page's handlers.

:func:`make_handlers` returns them as plain functions bound to one :class:`Arena`; the
layout (``app.py``) only wires them to components. Every refusal is a one-line message:
the API raises ``gr.Error`` (``gradio_client`` raises ``AppError``), the page shows it.
"""

# No `from __future__ import annotations` here: Gradio reads the handlers' annotations at
# runtime to find their gr.Request parameter (filled in by Gradio, not by the caller).

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.arena.auth import Authenticator, LockedOut, Sessions
from workbench.arena.battles import Arena
from workbench.arena.leaderboard import ALL, board_panel, leaderboard_view
from workbench.arena.study import Rater
from workbench.arena.votes import VoteRejected
from workbench.errors import ArenaError

__all__ = ["CHOICE_BUTTONS", "Handlers", "make_handlers"]

CHOICE_BUTTONS = (
    ("A is better", "A"),
    ("B is better", "B"),
    ("Tie", "tie"),
    ("Both are bad", "bothbad"),
)
"""The vote buttons' labels and the choice each records."""

_VERDICTS = {
    "A": "you preferred A",
    "B": "you preferred B",
    "tie": "you called it a tie",
    "bothbad": "you found both bad",
}


@dataclass(frozen=True)
class Handlers:
    """The functions the layout wires to its components (see ``app.py`` for outputs)."""

    new_battle: Callable[..., dict]
    """API: ``new_battle(token)`` -> the battle view as a dict."""
    vote: Callable[..., dict]
    """API: ``vote(token, battle_id, choice, reason)`` -> the revealed names."""
    login: Callable[..., tuple[Any, ...]]
    """Page: token -> session and the panels to show."""
    ui_new_battle: Callable[..., tuple[Any, ...]]
    """Page: start a battle for the session's rater."""
    ui_vote: Callable[[str], Callable[..., tuple[Any, ...]]]
    """Page: the click handler of one vote button (by choice)."""
    refresh: Callable[..., tuple[Any, ...]]
    """Page: the admin's leaderboard (skipped for everyone else)."""


def make_handlers(gr: Any, arena: Arena, authenticate: Authenticator) -> Handlers:
    """The arena's handlers for ``arena``, with Gradio module ``gr`` for its types."""
    study = arena.study
    sessions = Sessions()
    cache: dict[str, Any] = {}
    cache_lock = threading.Lock()
    buttons_off = [gr.update(interactive=False)] * 4

    # ---------------------------------------------------------------- API endpoints

    def new_battle(token: str, request: gr.Request = None) -> dict:
        """Start a blind battle. Returns battle_id, prompt, answer_a, answer_b."""
        try:
            rater = authenticate(token, request)
            return arena.new_battle(rater).as_dict()
        except ArenaError as e:
            raise gr.Error(str(e), print_exception=False) from None

    def vote(
        token: str,
        battle_id: str,
        choice: str,
        reason: str = "",
        request: gr.Request = None,
    ) -> dict:
        """Vote on a battle: choice is A, B, tie or bothbad. Returns the revealed names."""
        try:
            rater = authenticate(token, request)
            out = arena.vote(rater, battle_id, choice, reason)
        except (ArenaError, VoteRejected) as e:
            raise gr.Error(str(e), print_exception=False) from None
        return {
            "status": "recorded",
            "battle_id": out.battle_id,
            "model_a": out.model_a,
            "model_b": out.model_b,
            "choice": out.choice,
            "winner": out.winner,
            "flagged": out.flagged,
        }

    # ---------------------------------------------------------------- page handlers

    def login(token: str, request: gr.Request = None) -> tuple[Any, ...]:
        rater: Rater | None = None
        try:
            rater = authenticate((token or "").strip(), request)
        except LockedOut as e:
            message = f"⚠️ {e}"
        except ArenaError:
            message = "⚠️ Unknown token."
        if rater is None:
            return (
                None,
                message,
                gr.update(visible=False),
                gr.update(visible=False),
                gr.update(),
                gr.update(active=False),
                "",
            )
        sid = sessions.open(rater)
        role = " (admin: the leaderboard is below)" if rater.is_admin else ""
        return (
            sid,
            f"Logged in as **{rater.name}**{role}. Press *New battle* to start.",
            gr.update(visible=True),
            gr.update(visible=rater.is_admin),
            gr.update(visible=False),
            gr.update(active=rater.is_admin),
            "",
        )

    def ui_new_battle(sid: str | None, free: str | None) -> tuple[Any, ...]:
        rater = sessions.rater(sid)
        if rater is None:
            return (None, "⚠️ Please log in.", "", "", *buttons_off, "", "")
        try:
            view = arena.new_battle(rater, free)
        except ArenaError as e:
            return (None, f"⚠️ {e}", "", "", *buttons_off, "", "")
        on = [gr.update(interactive=True)] * 4
        prompt = "**Prompt:**\n\n" + view.prompt
        return (view.battle_id, prompt, view.answer_a, view.answer_b, *on, "", "")

    def ui_vote(choice: str) -> Callable[..., tuple[Any, ...]]:
        def handler(sid: str | None, battle_id: str | None, reason: str | None) -> tuple[Any, ...]:
            rater = sessions.rater(sid)
            if rater is None:
                return ("⚠️ Please log in.", battle_id, *[gr.update()] * 4)
            if not battle_id:
                return ("⚠️ Start a battle first.", None, *buttons_off)
            try:
                out = arena.vote(rater, battle_id, choice, reason)
            except VoteRejected as e:
                # A too-long reason can be fixed: leave the buttons as they are.
                keep = "too long" in str(e)
                return (
                    f"⚠️ {e}",
                    battle_id if keep else None,
                    *([gr.update()] * 4 if keep else buttons_off),
                )
            note = ""
            if out.flagged:
                note = (
                    "\n\n_An answer named a model or maker; "
                    "this battle is left out of the ratings._"
                )
            text = (
                f"✅ Vote recorded ({_VERDICTS[choice]}).\n\n"
                f"**A** was `{out.model_a}` · **B** was `{out.model_b}`{note}\n\n"
                "Press *New battle* for the next one."
            )
            return (text, None, *buttons_off)

        return handler

    def refresh(
        sid: str | None, category: str, language: str, include_flagged: bool
    ) -> tuple[Any, ...]:
        rater = sessions.rater(sid)
        skip = tuple(gr.skip() for _ in range(6))
        if rater is None or not rater.is_admin:
            return skip  # raters never receive leaderboard data
        n = arena.store.count_votes()
        key = f"{n}|{category}|{language}|{include_flagged}"
        with cache_lock:
            if cache.get("key") == key and cache.get("sid") == sid:
                return skip
        view = leaderboard_view(
            arena.votes(include_flagged=True),
            category=category,
            language=language,
            include_flagged=include_flagged,
            bootstrap=study.leaderboard_bootstrap,
        )
        with cache_lock:
            cache["key"], cache["sid"] = key, sid
        panel = board_panel(
            view, battles=arena.store.count_battles(), include_flagged=include_flagged
        )
        return (
            panel.counts,
            panel.board,
            panel.elo,
            panel.figure,
            gr.update(choices=[ALL, *view.categories]),
            gr.update(choices=[ALL, *view.languages]),
        )

    return Handlers(new_battle, vote, login, ui_new_battle, ui_vote, refresh)
