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
from workbench.arena.battles import BASE_MODEL, Arena, BattleView, Turn
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
    follow_up: Callable[..., dict]
    """API: ``follow_up(token, battle_id, prompt)`` -> the battle view with the new turn."""
    skip: Callable[..., dict]
    """API: ``skip(token, battle_id)`` -> ``{"status": "skipped"}``."""
    login: Callable[..., tuple[Any, ...]]
    """Page: token -> session and the panels to show."""
    ui_new_battle: Callable[..., tuple[Any, ...]]
    """Page: start a battle for the session's rater (the one on screen is skipped)."""
    ui_vote: Callable[[str], Callable[..., tuple[Any, ...]]]
    """Page: the click handler of one vote button (by choice)."""
    ui_follow_up: Callable[..., tuple[Any, ...]]
    """Page: send the follow-up box's text to both models of the battle on screen."""
    refresh: Callable[..., tuple[Any, ...]]
    """Page: the admin's leaderboard (skipped for everyone else)."""


def make_handlers(gr: Any, arena: Arena, authenticate: Authenticator) -> Handlers:
    """The arena's handlers for ``arena``, with Gradio module ``gr`` for its types."""
    study = arena.study
    sessions = Sessions(arena.store, study.raters)
    cache: dict[str, Any] = {}
    cache_lock = threading.Lock()
    n_buttons = len(CHOICE_BUTTONS) + 2  # the vote buttons, Skip and Send follow-up
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

    def follow_up(token: str, battle_id: str, prompt: str, request: gr.Request = None) -> dict:
        """Send a follow-up to both models of your open battle (where the study takes
        them); each continues its own conversation. Returns the battle view, whose
        prompt and answers are the new turn's."""
        try:
            rater = authenticate(token, request)
            return arena.follow_up(rater, battle_id, prompt).as_dict()
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
            "label_a": arena.label(out.model_a),
            "label_b": arena.label(out.model_b),
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

    def base_note(model: str) -> str:
        # named only after the vote: before it, "base model" would tell the two apart
        return f" ({BASE_MODEL})" if model in arena.base_models else ""

    def transcript(turns: tuple[Turn, ...]) -> str:
        return "\n\n".join(
            f"— Turn {i} —\nYou: {t.prompt}\n\nA: {t.answer_a}\n\nB: {t.answer_b}"
            for i, t in enumerate(turns, 1)
        )

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

    def view_parts(view: BattleView | None, prompt: str = "") -> tuple[Any, ...]:
        """prompt, earlier turns, thinking A (block, text), answer A, the same for B."""
        if view is None:
            hidden = gr.update(visible=False, open=False)
            return (prompt, gr.update(value="", visible=False), hidden, "", "", hidden, "", "")
        if view.turn == 1:
            prompt = "**Prompt:**\n\n" + view.prompt
        else:
            prompt = f"**Follow-up (turn {view.turn} of {view.max_turns}):**\n\n" + view.prompt
        if view.images:  # the same picture above both answers, on every turn
            prompt += "\n\n" + "\n".join(
                f'<img src="{url}" alt="image {i + 1} of the prompt" class="wb-prompt-image" '
                'style="max-width: 100%; max-height: 420px;">'
                for i, url in enumerate(view.images)
            )
        earlier = transcript(view.earlier)
        return (
            prompt,
            gr.update(value=earlier, visible=bool(earlier)),
            gr.update(visible=bool(view.reasoning_a), open=False),
            view.reasoning_a,
            view.answer_a,
            gr.update(visible=bool(view.reasoning_b), open=False),
            view.reasoning_b,
            view.answer_b,
        )

    def view_buttons(view: BattleView) -> list[Any]:
        more = gr.update(interactive=view.turn < view.max_turns and not view.images)
        return [*buttons_on[:-1], more]

    def shown(view: BattleView) -> tuple[Any, ...]:
        # the prompt boxes are emptied: the next battle must not silently reuse them
        return (view.battle_id, *view_parts(view), *view_buttons(view), "", "", "", "")

    def ui_new_battle(sid: str | None, battle_id: str | None, free: str | None) -> tuple[Any, ...]:
        def refused(message: str) -> tuple[Any, ...]:
            # the prompt box keeps its text here: the rater may want to shorten it
            return (
                None,
                *view_parts(None, f"⚠️ {message}"),
                *buttons_off,
                gr.update(),
                "",
                gr.update(),
                gr.update(),
            )

        rater = sessions.rater(sid)
        if rater is None:
            return refused("Please log in.")
        try:
            if battle_id:  # the battle on screen was left without a vote: skip it
                arena.skip(rater, battle_id)
            view = arena.new_battle(rater, free)
        except ArenaError as e:
            text = STORAGE_FAILED if isinstance(e, VoteStoreError) else str(e)
            if isinstance(e, VoteStoreError):
                log.error("arena: %s", e)
            return refused(text)
        return shown(view)

    def ui_follow_up(sid: str | None, battle_id: str | None, text: str | None) -> tuple[Any, ...]:
        keep_view = [gr.update()] * 8
        rater = sessions.rater(sid)
        if rater is None:
            return (battle_id, *keep_view, *keep_buttons, "⚠️ Please log in.", gr.update())
        if not battle_id:
            return (None, *keep_view, *buttons_off, "⚠️ Start a battle first.", gr.update())
        try:
            view = arena.follow_up(rater, battle_id, text)
        except VoteRejected as e:  # the battle is closed (voted, skipped, expired)
            return (None, *keep_view, *buttons_off, f"⚠️ {e}", gr.update())
        except ArenaError as e:
            message = STORAGE_FAILED if isinstance(e, VoteStoreError) else str(e)
            if isinstance(e, VoteStoreError):
                log.error("arena: %s", e)
            # the follow-up box keeps its text: the rater may change it and send again
            return (battle_id, *keep_view, *keep_buttons, f"⚠️ {message}", gr.update())
        return (view.battle_id, *view_parts(view), *view_buttons(view), "", "")

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
                f"**A** was `{out.model_a}`{base_note(out.model_a)} · "
                f"**B** was `{out.model_b}`{base_note(out.model_b)}.{note}\n\n"
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
            labels={m: arena.label(m) for m in arena.base_models},
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

    return Handlers(
        new_battle, vote, follow_up, skip, login, ui_new_battle, ui_vote, ui_follow_up, refresh
    )
