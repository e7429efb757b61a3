"""What the arena does for each request: the two API endpoints and the page's handlers.

:func:`make_handlers` returns them as plain functions bound to one :class:`Arena`; the
layout (``app.py``) only wires them to components. Every refusal is a one-line message:
the API raises ``gr.Error`` (``gradio_client`` raises ``AppError``), the page shows it.
"""

# No `from __future__ import annotations` here: Gradio reads the handlers' annotations at
# runtime to find their gr.Request parameter (filled in by Gradio, not by the caller).

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.arena.auth import Authenticator, LockedOut, Sessions
from workbench.arena.battles import Arena, BattleView
from workbench.arena.leaderboard import ALL, board_panel, leaderboard_view
from workbench.arena.study import Rater
from workbench.arena.votes import VoteRejected, VoteStoreError
from workbench.errors import ArenaError

__all__ = ["CHOICE_BUTTONS", "STORAGE_FAILED", "Handlers", "make_handlers"]

log = logging.getLogger(__name__)

CHOICE_BUTTONS = (
    ("A is better", "A"),
    ("B is better", "B"),
    ("Tie", "tie"),
    ("Both are bad", "bothbad"),
)
"""The vote buttons' labels and the choice each records."""

STORAGE_FAILED = (
    "the server could not save this (its votes file failed); nothing was recorded, "
    "please try again later"
)
"""What a rater is told when the votes file fails (the log names the file and cause)."""

_VERDICTS = {
    "A": "you preferred A",
    "B": "you preferred B",
    "tie": "you called it a tie",
    "bothbad": "you found both bad",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Handlers:
    """The functions the layout wires to its components (see ``app.py`` for outputs)."""

    new_battle: Callable[..., dict]
    """API: ``new_battle(token, prompt="")`` -> the battle view as a dict."""
    vote: Callable[..., dict]
    """API: ``vote(token, battle_id, choice, reason)`` -> the revealed names."""
    skip: Callable[..., dict]
    """API: ``skip(token, battle_id)`` -> ``{"status": "skipped"}``."""
    login: Callable[..., tuple[Any, ...]]
    """Page: token -> session and the panels to show."""
    ui_new_battle: Callable[..., tuple[Any, ...]]
    """Page: start a battle for the session's rater (the one on screen is skipped)."""
    ui_vote: Callable[[str], Callable[..., tuple[Any, ...]]]
    """Page: the click handler of one vote button (by choice)."""
    refresh: Callable[..., tuple[Any, ...]]
    """Page: the admin's leaderboard (skipped for everyone else)."""


def make_handlers(gr: Any, arena: Arena, authenticate: Authenticator) -> Handlers:
    """The arena's handlers for ``arena``, with Gradio module ``gr`` for its types."""
    study = arena.study
    sessions = Sessions(arena.store, study.raters)
    cache: dict[str, Any] = {}
    cache_lock = threading.Lock()
    n_buttons = len(CHOICE_BUTTONS) + 1  # the vote buttons and Skip
    buttons_off = [gr.update(interactive=False)] * n_buttons
    buttons_on = [gr.update(interactive=True)] * n_buttons
    keep_buttons = [gr.update()] * n_buttons

    def refuse(e: Exception) -> Exception:
        if isinstance(e, VoteStoreError):
            log.error("arena: %s", e)  # one line, with the file and the cause
            return gr.Error(STORAGE_FAILED, print_exception=False)
        return gr.Error(str(e), print_exception=False)

    # ---------------------------------------------------------------- API endpoints

    def new_battle(token: str, prompt: str = "", request: gr.Request = None) -> dict:
        """Start a blind battle (on your own prompt where the study takes them). Returns
        battle_id, prompt, answer_a, answer_b."""
        try:
            rater = authenticate(token, request)
            return arena.new_battle(rater, prompt).as_dict()
        except ArenaError as e:
            raise refuse(e) from None

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
        except ArenaError as e:
            raise refuse(e) from None
        return {
            "status": "recorded",
            "battle_id": out.battle_id,
            "model_a": out.model_a,
            "model_b": out.model_b,
            "choice": out.choice,
            "winner": out.winner,
            "flagged": out.flagged,
        }

    def skip(token: str, battle_id: str, request: gr.Request = None) -> dict:
        """Close one of your open battles without voting. Returns {"status": "skipped"}."""
        try:
            rater = authenticate(token, request)
            if not arena.skip(rater, battle_id):
                raise ArenaError("no such open battle of yours")
        except ArenaError as e:
            raise refuse(e) from None
        return {"status": "skipped", "battle_id": battle_id}

    # ---------------------------------------------------------------- page handlers

    def tally(rater: Rater) -> str:
        try:
            return f"You have cast {_plural(arena.rater_votes(rater), 'vote')} in this study."
        except VoteStoreError as e:
            log.error("arena: %s", e)
            return ""

    def login(token: str, request: gr.Request = None) -> tuple[Any, ...]:
        rater: Rater | None = None
        try:
            rater = authenticate((token or "").strip() if isinstance(token, str) else "", request)
        except LockedOut as e:
            message = f"⚠️ {e}"
        except ArenaError as e:
            message = "⚠️ Unknown token." if str(e).startswith("unknown token") else f"⚠️ {e}"
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
            f"Logged in as **{rater.name}**{role}. {tally(rater)} Press *New battle* to start.",
            gr.update(visible=True),
            gr.update(visible=rater.is_admin),
            gr.update(visible=False),
            gr.update(active=rater.is_admin),
            "",
        )

    def shown(view: BattleView) -> tuple[Any, ...]:
        prompt = "**Prompt:**\n\n" + view.prompt
        # the prompt box is emptied: the next battle must not silently reuse it
        return (view.battle_id, prompt, view.answer_a, view.answer_b, *buttons_on, "", "", "")

    def ui_new_battle(sid: str | None, battle_id: str | None, free: str | None) -> tuple[Any, ...]:
        rater = sessions.rater(sid)
        if rater is None:
            return (None, "⚠️ Please log in.", "", "", *buttons_off, gr.update(), "", gr.update())
        try:
            if battle_id:  # the battle on screen was left without a vote: skip it
                arena.skip(rater, battle_id)
            view = arena.new_battle(rater, free)
        except ArenaError as e:
            text = STORAGE_FAILED if isinstance(e, VoteStoreError) else str(e)
            if isinstance(e, VoteStoreError):
                log.error("arena: %s", e)
            # the prompt box keeps its text here: the rater may want to shorten it
            return (None, f"⚠️ {text}", "", "", *buttons_off, gr.update(), "", gr.update())
        return shown(view)

    def ui_vote(choice: str) -> Callable[..., tuple[Any, ...]]:
        def handler(sid: str | None, battle_id: str | None, reason: str | None) -> tuple[Any, ...]:
            rater = sessions.rater(sid)
            if rater is None:
                return ("⚠️ Please log in.", battle_id, *keep_buttons)
            if not battle_id:
                return ("⚠️ Start a battle first.", None, *buttons_off)
            try:
                out = arena.vote(rater, battle_id, choice, reason)
            except VoteStoreError as e:
                log.error("arena: %s", e)
                return (f"⚠️ {STORAGE_FAILED}", battle_id, *keep_buttons)
            except VoteRejected as e:
                # A reason that is too long or not text can be fixed: keep the buttons.
                keep = "reason" in str(e)
                return (
                    f"⚠️ {e}",
                    battle_id if keep else None,
                    *(keep_buttons if keep else buttons_off),
                )
            note = ""
            if out.flagged:
                note = (
                    "\n\n_An answer named a model or maker; "
                    "this battle is left out of the ratings._"
                )
            text = (
                f"✅ Vote recorded ({_VERDICTS[choice]}). "
                f"**A** was `{out.model_a}` · **B** was `{out.model_b}`.{note}\n\n"
                f"{tally(rater)} *New battle* for the next one."
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

    return Handlers(new_battle, vote, skip, login, ui_new_battle, ui_vote, refresh)
