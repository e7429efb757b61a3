"""The Gradio voting panel: login, blind battles, votes, and the admin leaderboard.

Everything that could identify a model stays in this server process (the :class:`Arena`
and its SQLite file) until the rater has voted: the page, Gradio's config and info
endpoints, ``gr.State`` and every event payload carry only a random battle id, the prompt
and the two answers. Besides its page the app exposes two named API endpoints for
scripted studies and load tests (``gradio_client``):

- ``new_battle(token)`` -> ``{"battle_id", "prompt", "answer_a", "answer_b", ...}``
- ``vote(token, battle_id, choice, reason)`` with choice ``A``, ``B``, ``tie`` or
  ``bothbad`` -> ``{"status": "recorded", "model_a", "model_b", "winner", ...}``

Both raise a Gradio error (``gradio_client`` raises ``AppError``) with a one-line message
for a wrong token, an unknown or finished battle, or bad input. Unknown tokens are
counted per client address, the page's login and the API together: too many within a
minute lock that address out for a while (:class:`_Throttle`).
"""

# No `from __future__ import annotations` here: gr.api reads the endpoint functions'
# annotations at runtime to describe their parameters.

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from workbench.arena.battles import Arena, ArenaError
from workbench.arena.study import Rater, Study, load_study
from workbench.arena.votes import VoteRejected

__all__ = ["LeaderboardView", "build_app", "leaderboard_view"]

log = logging.getLogger(__name__)

ALL = "all"
_BOARD_COLUMNS = [
    "rank",
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "battles",
    "wins",
    "losses",
    "ties",
]


def _gradio() -> Any:
    try:
        import gradio as gr
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the arena needs Gradio: pip install 'workbench[arena]'") from e
    return gr


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class LeaderboardView:
    """What the admin panel shows, computed from the votes."""

    board: pl.DataFrame
    """Bradley-Terry ratings with 95% bootstrap intervals (ratings.leaderboard)."""
    elo: pl.DataFrame
    """Online Elo in vote order (ratings.online_elo)."""
    matrix: pl.DataFrame
    """Empirical win rates (ratings.win_matrix)."""
    votes: int
    """Votes counted (after filters)."""
    flagged: int
    """Votes on flagged battles (excluded unless asked for)."""
    categories: list[str]
    """Categories present in the votes (for the filter)."""
    languages: list[str]
    """Languages present in the votes (for the filter)."""


def leaderboard_view(
    votes: pl.DataFrame,
    *,
    category: str | None = None,
    language: str | None = None,
    include_flagged: bool = False,
    bootstrap: int = 200,
    seed: int = 0,
) -> LeaderboardView:
    """Filter the votes and compute the admin panel's frames with ``workbench.ratings``.

    Args:
        votes: every vote (``VoteStore.votes_frame(include_flagged=True)``).
        category: keep only this prompt category (None or "all": every one).
        language: keep only this prompt language (None or "all": every one).
        include_flagged: count battles the identity guard flagged.
        bootstrap: bootstrap rounds for the intervals.
        seed: bootstrap seed.
    """
    from workbench import ratings

    categories = sorted(c for c in votes["category"].unique().to_list() if c)
    languages = sorted(c for c in votes["language"].unique().to_list() if c)
    flagged = int(votes["flagged"].sum()) if votes.height else 0
    v = votes
    if not include_flagged and v.height:
        v = v.filter(~pl.col("flagged"))
    if category and category != ALL:
        v = v.filter(pl.col("category") == category)
    if language and language != ALL:
        v = v.filter(pl.col("language") == language)
    if v.height == 0:
        empty = pl.DataFrame(schema={c: pl.String() for c in _BOARD_COLUMNS})
        return LeaderboardView(
            empty,
            pl.DataFrame(schema={"model": pl.String(), "rating": pl.Float64()}),
            pl.DataFrame(schema={"model": pl.String()}),
            0,
            flagged,
            categories,
            languages,
        )
    board = ratings.leaderboard(v, method="bt", bootstrap=bootstrap, seed=seed)
    elo = ratings.online_elo(v).select("model", "rating").sort("rating", descending=True)
    matrix = ratings.win_matrix(v, order=board["model"].to_list())
    return LeaderboardView(board, elo, matrix, v.height, flagged, categories, languages)


# --------------------------------------------------------------------------- sessions


class _Sessions:
    """Browser sessions -> rater, server-side. A session id is random and reveals nothing."""

    def __init__(self) -> None:
        self._by_id: dict[str, Rater] = {}
        self._lock = threading.Lock()

    def open(self, rater: Rater) -> str:
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._by_id[sid] = rater
        return sid

    def rater(self, sid: str | None) -> Rater | None:
        if not sid:
            return None
        with self._lock:
            return self._by_id.get(sid)


class _LockedOut(ArenaError):
    """The client address is locked out after too many unknown tokens."""


class _Throttle:
    """Slows token guessing: a client address whose unknown tokens reach ``limit`` within
    ``window_s`` seconds is refused, right token or wrong, for ``lockout_s`` seconds.

    Behind a reverse proxy every rater shares the proxy's address; raise ``limit`` there.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.lockout_s, self.clock = limit, window_s, lockout_s, clock
        self._failures: dict[str, list[float]] = {}
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Raise _LockedOut (an ArenaError) while ``client`` is locked out."""
        with self._lock:
            left = self._until.get(client, 0.0) - self.clock()
            if left > 0:
                raise _LockedOut(
                    f"too many unknown tokens from this address; try again in {left:.0f} s"
                )
            self._until.pop(client, None)

    def failed(self, client: str) -> None:
        """Count one unknown token from ``client``."""
        with self._lock:
            now = self.clock()
            recent = [t for t in self._failures.get(client, []) if now - t < self.window_s]
            recent.append(now)
            if len(recent) >= self.limit:
                self._until[client] = now + self.lockout_s
                recent = []
                log.warning("arena: %s locked out after %d unknown tokens", client, self.limit)
            self._failures[client] = recent


def _client(request: Any) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


# --------------------------------------------------------------------------- app


def _theme(gr: Any) -> Any:
    # System fonts: the default theme fetches Google Fonts, which an offline study
    # (or a locked-down browser) cannot reach.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def _make_blocks_class(gr: Any) -> type:
    class ArenaBlocks(gr.Blocks):
        """gr.Blocks that refuses a non-loopback address while demo tokens are in use."""

        arena: Arena

        def launch(self, **kwargs: Any) -> Any:
            host = (
                kwargs.pop("server_name", None)
                or os.environ.get("GRADIO_SERVER_NAME")
                or "127.0.0.1"
            )
            self.arena.study.check_host(host)
            kwargs.setdefault("ssr_mode", False)
            kwargs.setdefault("theme", _theme(gr))
            kwargs.setdefault("max_threads", 64)
            kwargs.setdefault("run_history", False)
            kwargs.setdefault("enable_monitoring", False)
            kwargs.setdefault("mcp_server", False)
            return super().launch(server_name=host, **kwargs)

    return ArenaBlocks


def build_app(
    study: Study | str | Path,
    *,
    arena: Arena | None = None,
    seed: int | None = None,
    max_token_failures: int = 10,
    lockout_s: float = 60.0,
) -> Any:
    """The voting panel as Gradio Blocks, ready to ``launch()`` or embed in a notebook.

    Args:
        study: a Study or the path of a STUDY.toml file.
        arena: the engine to serve (default: a new one for ``study``); reachable later as
            ``app.arena`` (close it with ``app.arena.close()``).
        seed: sampling seed for a new arena (None: random).
        max_token_failures: unknown tokens from one address within a minute before that
            address is locked out (the page's login and the API count together).
        lockout_s: how long a locked-out address is refused.

    Returns:
        Blocks whose ``launch`` refuses non-loopback addresses while the study uses a
        demo token.
    """
    gr = _gradio()
    if not isinstance(study, Study):
        study = load_study(study)
    arena = arena or Arena(study, seed=seed)
    sessions = _Sessions()
    throttle = _Throttle(max_token_failures, lockout_s=lockout_s)
    cache: dict[str, Any] = {}
    cache_lock = threading.Lock()
    buttons_off = [gr.update(interactive=False)] * 4

    # ---------------------------------------------------------------- API endpoints

    def authenticate(token: str, request: Any) -> Rater:
        client = _client(request)
        throttle.check(client)
        try:
            return arena.authenticate(token)
        except ArenaError:
            throttle.failed(client)
            raise

    # Gradio fills in the gr.Request parameters (by their annotation, read at runtime)
    # and leaves them out of the API's parameters; mypy cannot see gr's types here.
    def new_battle(token: str, request: gr.Request = None) -> dict:  # type: ignore[name-defined]
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
        request: gr.Request = None,  # type: ignore[name-defined]
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

    # ---------------------------------------------------------------- UI handlers

    def login(token: str, request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[name-defined]
        rater: Rater | None = None
        try:
            rater = authenticate((token or "").strip(), request)
        except _LockedOut as e:
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

    def make_vote_handler(choice: str) -> Callable[..., tuple[Any, ...]]:
        def ui_vote(sid: str | None, battle_id: str | None, reason: str | None) -> tuple[Any, ...]:
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
            verdict = {
                "A": "you preferred A",
                "B": "you preferred B",
                "tie": "you called it a tie",
                "bothbad": "you found both bad",
            }[choice]
            note = ""
            if out.flagged:
                note = (
                    "\n\n_An answer named a model or maker; "
                    "this battle is left out of the ratings._"
                )
            text = (
                f"✅ Vote recorded ({verdict}).\n\n"
                f"**A** was `{out.model_a}` · **B** was `{out.model_b}`{note}\n\n"
                "Press *New battle* for the next one."
            )
            return (text, None, *buttons_off)

        return ui_vote

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
        from workbench.plots.ratings import win_rate_heatmap

        board = view.board.select([c for c in _BOARD_COLUMNS if c in view.board.columns])
        board = board.with_columns(pl.col(pl.Float64).round(1))
        fig = (
            win_rate_heatmap(view.matrix, title="Win rate (row beats column)")
            if view.votes
            else None
        )
        counts = (
            f"**{view.votes}** votes counted · {arena.store.count_battles()} battles served · "
            f"{view.flagged} votes on flagged battles" + ("" if include_flagged else " (excluded)")
        )
        return (
            counts,
            board.to_pandas(),
            view.elo.with_columns(pl.col("rating").round(1)).to_pandas(),
            fig,
            gr.update(choices=[ALL, *view.categories]),
            gr.update(choices=[ALL, *view.languages]),
        )

    # ---------------------------------------------------------------- layout

    blocks_cls = _make_blocks_class(gr)
    with blocks_cls(title=study.title, analytics_enabled=False) as app:
        session = gr.State(None)
        battle = gr.State(None)
        gr.Markdown(f"# {study.title}\n\n{study.description}".strip())
        with gr.Column(visible=True) as login_col:
            token_box = gr.Textbox(label="Your token", type="password", max_lines=1)
            login_btn = gr.Button("Log in", variant="primary")
        status = gr.Markdown("")
        with gr.Column(visible=False) as arena_col:
            gr.Markdown(
                "Two anonymous models answered the same prompt. Read both, then vote. "
                "The names are shown after your vote."
            )
            free = gr.Textbox(
                label="Your own prompt (optional; leave empty for one from the study)",
                visible=study.free_prompts,
                max_lines=6,
            )
            new_btn = gr.Button("New battle", variant="primary")
            prompt_md = gr.Markdown("")
            with gr.Row():
                ans_a = gr.Textbox(label="Answer A", interactive=False, lines=8, max_lines=24)
                ans_b = gr.Textbox(label="Answer B", interactive=False, lines=8, max_lines=24)
            with gr.Row():
                btn_a = gr.Button("A is better", interactive=False)
                btn_b = gr.Button("B is better", interactive=False)
                btn_tie = gr.Button("Tie", interactive=False)
                btn_bad = gr.Button("Both are bad", interactive=False)
            reason = gr.Textbox(
                label=f"Reason (optional, at most {study.max_reason_chars} characters)",
                max_lines=4,
            )
            result = gr.Markdown("")
        with gr.Column(visible=False) as admin_col:
            gr.Markdown("## Leaderboard (admin only)")
            with gr.Row():
                cat = gr.Dropdown([ALL], value=ALL, label="Category", allow_custom_value=False)
                lang = gr.Dropdown([ALL], value=ALL, label="Language", allow_custom_value=False)
                inc = gr.Checkbox(False, label="Include flagged battles")
            counts_md = gr.Markdown("")
            board_df = gr.Dataframe(
                headers=_BOARD_COLUMNS, label="Bradley-Terry (95% CI)", interactive=False
            )
            elo_df = gr.Dataframe(
                headers=["model", "rating"], label="Online Elo", interactive=False
            )
            heat = gr.Plot(label="Win rates")
            timer = gr.Timer(2.0, active=False)

        vote_buttons = [btn_a, btn_b, btn_tie, btn_bad]
        private: dict[str, Any] = {"api_visibility": "private"}
        login_outputs = [session, status, arena_col, admin_col, login_col, timer, token_box]
        login_btn.click(login, [token_box], login_outputs, **private)
        token_box.submit(login, [token_box], login_outputs, **private)
        new_btn.click(
            ui_new_battle,
            [session, free],
            [battle, prompt_md, ans_a, ans_b, *vote_buttons, reason, result],
            concurrency_limit=None,
            **private,
        )
        for btn, choice in zip(vote_buttons, ("A", "B", "tie", "bothbad"), strict=True):
            btn.click(
                make_vote_handler(choice),
                [session, battle, reason],
                [result, battle, *vote_buttons],
                concurrency_limit=None,
                **private,
            )
        board_outputs = [counts_md, board_df, elo_df, heat, cat, lang]
        board_inputs = [session, cat, lang, inc]
        for trigger in (timer.tick, cat.change, lang.change, inc.change):
            trigger(
                refresh,
                board_inputs,
                board_outputs,
                concurrency_limit=1,
                concurrency_id="leaderboard",
                show_progress="hidden",
                **private,
            )
        gr.api(new_battle, api_name="new_battle", concurrency_limit=None)
        gr.api(vote, api_name="vote", concurrency_limit=None)

    app.arena = arena
    return app
