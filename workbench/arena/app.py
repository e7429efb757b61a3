"""The Gradio voting panel: the page's layout, wired to the handlers.

Everything that could identify a model stays on the server (the :class:`Arena` and its
votes store) until the rater has voted: the page, Gradio's config and info
endpoints, ``gr.State`` and every event payload carry only a random battle id, the prompt
and the two answers (with their thinking, where the study shows it, and the earlier turns
of the conversation). Besides its page the app exposes two named API endpoints for
scripted studies and load tests (``gradio_client``):

- ``new_battle(token, prompt="")`` -> ``{"battle_id", "prompt", "answer_a", "answer_b",
  ...}`` (``prompt``: the rater's own, where the study takes them)
- ``follow_up(token, battle_id, prompt)`` -> the battle view with the new turn (studies
  with ``max_turns`` > 1: both models answer, each continuing its own conversation)
- ``vote(token, battle_id, choice, reason)`` with choice ``A``, ``B``, ``tie`` or
  ``bothbad`` -> ``{"status": "recorded", "model_a", "model_b", "winner", ...}``
  (``label_a``/``label_b``: the names with "(base model)" for a model run as completion)
- ``skip(token, battle_id)`` closes an open battle without a vote.

Requests run in lanes: starting battles (which may wait for generation) in one of
:data:`BATTLE_LANE` places, votes, skips and logins in their own unbounded lanes, so a
vote never waits behind generation. Uploads are off (no component takes files).

All raise a Gradio error (``gradio_client`` raises ``AppError``) with a one-line message
for a wrong token, an unknown or finished battle, or bad input (see ``handlers.py``;
sessions and the lockout of token guessers are in ``auth.py``, the admin's leaderboard in
``leaderboard.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.arena.auth import Authenticator, Throttle
from workbench.arena.battles import Arena
from workbench.arena.handlers import CHOICE_BUTTONS, make_handlers
from workbench.arena.leaderboard import ALL, BOARD_COLUMNS, LeaderboardView, leaderboard_view
from workbench.arena.study import Study, load_study

__all__ = ["BATTLE_LANE", "LeaderboardView", "build_app", "leaderboard_view", "share_requested"]

# The confirmation is right under the buttons; this brings all of it on screen.
_SHOW_RESULT = (
    "() => document.getElementById('vote-result')"
    "?.scrollIntoView({block: 'nearest', behavior: 'instant'})"
)

BATTLE_LANE = 16
"""Battle starts served at once (the rest queue); Gradio's thread pool holds 64."""


def _gradio() -> Any:
    try:
        import gradio as gr
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the arena needs Gradio: pip install 'workbench[arena]'") from e
    return gr


def _theme(gr: Any) -> Any:
    # System fonts: the default theme fetches Google Fonts, which an offline study
    # (or a locked-down browser) cannot reach.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def share_requested(share: bool | None) -> bool:
    """Whether Gradio's ``launch`` would open a public share link: ``share`` itself, or
    when None, ``GRADIO_SHARE=true`` or a hosted notebook (Colab, Kaggle, SageMaker),
    where Gradio shares by itself."""
    if share is not None:
        return bool(share)
    if os.environ.get("GRADIO_SHARE", "").strip().lower() == "true":
        return True
    gr = _gradio()
    return bool(gr.utils.colab_check() or gr.utils.is_hosted_notebook())


@contextmanager
def _forwarded_allow_ips(proxies: tuple[str, ...]) -> Iterator[None]:
    # Gradio builds its uvicorn.Config without forwarded_allow_ips, so uvicorn reads this
    # variable, defaulting to 127.0.0.1: every local client could then name its own
    # address in X-Forwarded-For. Only the study's proxies are trusted ("" trusts none).
    old = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(proxies)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("FORWARDED_ALLOW_IPS", None)
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = old


def _make_blocks_class(gr: Any) -> type:
    class ArenaBlocks(gr.Blocks):
        """gr.Blocks whose ``launch`` refuses a non-loopback address or a share link
        while demo tokens are in use, trusts X-Forwarded-For only from the study's
        proxies, and takes no uploads."""

        arena: Arena

        def launch(self, **kwargs: Any) -> Any:
            study = self.arena.study
            host = (
                kwargs.pop("server_name", None)
                or os.environ.get("GRADIO_SERVER_NAME")
                or "127.0.0.1"
            )
            study.check_host(host)
            share = share_requested(kwargs.get("share"))
            study.check_share(share)
            kwargs["share"] = share  # decided here: Colab must not share behind our back
            kwargs.setdefault("ssr_mode", False)
            kwargs.setdefault("theme", _theme(gr))
            kwargs.setdefault("max_threads", 64)
            kwargs.setdefault("run_history", False)
            kwargs.setdefault("enable_monitoring", False)
            kwargs.setdefault("mcp_server", False)
            kwargs.setdefault("max_file_size", 0)  # /gradio_api/upload refuses every byte
            with _forwarded_allow_ips(study.trusted_proxies):
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
    throttle = Throttle(max_token_failures, lockout_s=lockout_s, store=arena.store)
    authenticate = Authenticator(arena, throttle)
    h = make_handlers(gr, arena, authenticate)

    instructions = study.description.strip() or (
        "Two anonymous models answered the same prompt: read both, then vote. "
        "The names are shown after your vote."
    )
    with _make_blocks_class(gr)(title=study.title, analytics_enabled=False) as app:
        session = gr.State(None)
        battle = gr.State(None)
        gr.Markdown(f"# {study.title}\n\n{instructions}")
        with gr.Column(visible=True) as login_col:
            token_box = gr.Textbox(label="Your token", type="password", max_lines=1)
            login_btn = gr.Button("Log in", variant="primary")
        status = gr.Markdown("")
        with gr.Column(visible=False) as arena_col:
            free = gr.Textbox(
                label="Your own prompt (optional; leave empty for one from the study)",
                visible=study.free_prompts,
                max_lines=6,
            )
            new_btn = gr.Button("New battle", variant="primary")
            earlier = gr.Textbox(
                label="Earlier turns", interactive=False, visible=False, lines=6, max_lines=24
            )
            prompt_md = gr.Markdown("")
            with gr.Row():
                sides = []
                for side in ("A", "B"):
                    with gr.Column():
                        # closed above the answer; shown only where the study shows thinking
                        with gr.Accordion("Thinking", open=False, visible=False) as think_box:
                            think = gr.Textbox(
                                show_label=False, interactive=False, lines=4, max_lines=16
                            )
                        answer = gr.Textbox(
                            label=f"Answer {side}", interactive=False, lines=8, max_lines=24
                        )
                    sides.append((think_box, think, answer))
            with gr.Row(visible=study.max_turns > 1):
                follow_box = gr.Textbox(
                    label=(
                        "Follow-up (optional; both models answer it before you vote, "
                        f"up to {study.max_turns} turns)"
                    ),
                    max_lines=6,
                    scale=4,
                )
                follow_btn = gr.Button("Send follow-up", interactive=False, scale=1)
            reason = gr.Textbox(
                label=f"Reason (optional, at most {study.max_reason_chars} characters)",
                max_lines=4,
            )
            with gr.Row():
                vote_buttons = [gr.Button(label, interactive=False) for label, _ in CHOICE_BUTTONS]
                skip_btn = gr.Button("Skip", interactive=False, variant="secondary")
            # right under the buttons, so the confirmation is where the rater looks
            result = gr.Markdown("", elem_id="vote-result")
        with gr.Column(visible=False) as admin_col:
            gr.Markdown("## Leaderboard (admin only)")
            with gr.Row():
                cat = gr.Dropdown([ALL], value=ALL, label="Category", allow_custom_value=False)
                lang = gr.Dropdown([ALL], value=ALL, label="Language", allow_custom_value=False)
                inc = gr.Checkbox(False, label="Include flagged battles")
            counts_md = gr.Markdown("")
            board_df = gr.Dataframe(
                headers=BOARD_COLUMNS, label="Bradley-Terry (95% CI)", interactive=False
            )
            elo_df = gr.Dataframe(
                headers=["model", "rating"], label="Online Elo", interactive=False
            )
            heat = gr.Plot(label="Win rates")
            timer = gr.Timer(2.0, active=False)

        private: dict[str, Any] = {"api_visibility": "private"}
        battles_lane: dict[str, Any] = {
            "concurrency_limit": BATTLE_LANE,
            "concurrency_id": "battles",
        }
        votes_lane: dict[str, Any] = {"concurrency_limit": None, "concurrency_id": "votes"}
        login_outputs = [session, status, arena_col, admin_col, login_col, timer, token_box]
        for trigger in (login_btn.click, token_box.submit):
            trigger(
                h.login,
                [token_box],
                login_outputs,
                concurrency_limit=None,
                concurrency_id="login",
                **private,
            )
        buttons = [*vote_buttons, skip_btn, follow_btn]
        view_outputs = [prompt_md, earlier, *(c for side in sides for c in side)]
        battle_outputs = [battle, *view_outputs, *buttons, reason, result, free, follow_box]
        for btn in (new_btn, skip_btn):
            btn.click(
                h.ui_new_battle,
                [session, battle, free],
                battle_outputs,
                **battles_lane,
                **private,
            )
        for trigger in (follow_btn.click, follow_box.submit):
            trigger(
                h.ui_follow_up,
                [session, battle, follow_box],
                [battle, *view_outputs, *buttons, result, follow_box],
                **battles_lane,
                **private,
            )
        for btn, (_, choice) in zip(vote_buttons, CHOICE_BUTTONS, strict=True):
            btn.click(
                h.ui_vote(choice),
                [session, battle, reason],
                [result, battle, *buttons],
                **votes_lane,
                **private,
            ).then(None, js=_SHOW_RESULT, **private)
        board_outputs = [counts_md, board_df, elo_df, heat, cat, lang]
        board_inputs = [session, cat, lang, inc]
        for trigger in (timer.tick, cat.change, lang.change, inc.change):
            trigger(
                h.refresh,
                board_inputs,
                board_outputs,
                concurrency_limit=1,
                concurrency_id="leaderboard",
                show_progress="hidden",
                **private,
            )
        gr.api(h.new_battle, api_name="new_battle", **battles_lane)
        gr.api(h.follow_up, api_name="follow_up", **battles_lane)
        gr.api(h.vote, api_name="vote", **votes_lane)
        gr.api(h.skip, api_name="skip", **votes_lane)

    app.arena = arena
    return app
