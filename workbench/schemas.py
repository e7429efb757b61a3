"""The table schemas, in one place: run rows, bench rows and votes.

Each schema is a ``{column: polars dtype}`` mapping, in column order. Run and bench rows
are also TypedDicts (:class:`RunRow`, :class:`BenchRow`) whose fields carry both the
Python type (so mypy checks the code that builds a row) and the polars dtype (from which
the schema is derived): each column is written down once. The modules that
write or read a table (``store``, ``bench``, ``arena.votes``, ``ratings``) import it from
here, and so do tests and plots that check or build frames.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypedDict, get_type_hints

import polars as pl

__all__ = [
    "BENCH_SCHEMA",
    "RUN_SCHEMA",
    "VOTE_REQUIRED_COLUMNS",
    "VOTE_SCHEMA",
    "VOTE_WINNERS",
    "BenchRow",
    "RunRow",
]


def _polars_schema(row: type) -> dict[str, pl.DataType]:
    """``{column: polars dtype}`` of a row TypedDict, from its ``Annotated`` fields."""
    hints = get_type_hints(row, include_extras=True)
    return {name: hint.__metadata__[0] for name, hint in hints.items()}


class RunRow(TypedDict):
    """One row per response (``RunStore``, table ``runs``): each column's Python type, for
    mypy, and its polars dtype, for the table. ``host``, ``extra``, ``history`` and
    ``sampling_defaults`` hold JSON; docs/architecture.md says what each column means."""

    run_id: Annotated[str, pl.String()]
    row_id: Annotated[str, pl.String()]
    created_at: Annotated[datetime, pl.Datetime("us", "UTC")]
    prompt_set: Annotated[str | None, pl.String()]
    prompt_id: Annotated[str, pl.String()]
    prompt: Annotated[str, pl.String()]
    system_prompt: Annotated[str | None, pl.String()]
    conversation_id: Annotated[str | None, pl.String()]
    turn: Annotated[int, pl.Int32()]
    history: Annotated[str | None, pl.String()]  # JSON: the turns before the prompt
    prompt_mode: Annotated[str | None, pl.String()]  # chat | completion
    category: Annotated[str | None, pl.String()]
    language: Annotated[str | None, pl.String()]
    rep: Annotated[int, pl.Int32()]
    model: Annotated[str, pl.String()]
    model_path: Annotated[str, pl.String()]
    model_sha256: Annotated[str | None, pl.String()]
    arch: Annotated[str | None, pl.String()]
    quant: Annotated[str | None, pl.String()]
    params: Annotated[int | None, pl.Int64()]
    backend: Annotated[str, pl.String()]
    temperature: Annotated[float, pl.Float64()]
    top_p: Annotated[float, pl.Float64()]
    top_k: Annotated[int, pl.Int32()]
    min_p: Annotated[float, pl.Float64()]
    repeat_penalty: Annotated[float, pl.Float64()]
    sampling_defaults: Annotated[str | None, pl.String()]  # JSON: unset field -> source
    thinking: Annotated[str, pl.String()]  # on | off | default
    seed: Annotated[int | None, pl.Int64()]  # the seed used (drawn when none was given)
    max_tokens: Annotated[int, pl.Int32()]
    n_ctx: Annotated[int | None, pl.Int32()]
    n_threads: Annotated[int | None, pl.Int32()]
    n_gpu_layers: Annotated[int | None, pl.Int32()]
    flash_attn: Annotated[bool | None, pl.Boolean()]
    response: Annotated[str, pl.String()]  # the answer alone
    reasoning: Annotated[str, pl.String()]  # the thinking ("" when none)
    finish_reason: Annotated[str, pl.String()]
    error: Annotated[str | None, pl.String()]
    prompt_tokens: Annotated[int | None, pl.Int32()]
    completion_tokens: Annotated[int | None, pl.Int32()]
    reasoning_tokens: Annotated[int | None, pl.Int32()]
    ttft_s: Annotated[float | None, pl.Float64()]  # submit -> first token (whitespace too)
    ttfa_s: Annotated[float | None, pl.Float64()]  # submit -> first answer token
    total_s: Annotated[float | None, pl.Float64()]
    prompt_tps: Annotated[float | None, pl.Float64()]
    gen_tps: Annotated[float | None, pl.Float64()]
    gen_tps_wall: Annotated[float | None, pl.Float64()]  # steps after the first token / s
    spawn_s: Annotated[float | None, pl.Float64()]  # worker start (python, import llama_cpp)
    load_s: Annotated[float | None, pl.Float64()]  # model load into the running worker
    peak_rss_bytes: Annotated[int | None, pl.Int64()]
    kv_cache_bytes: Annotated[int | None, pl.Int64()]
    image_sha256: Annotated[str | None, pl.String()]  # per image, comma-separated
    image_bytes: Annotated[int | None, pl.Int64()]  # the images' file bytes, summed
    image_size: Annotated[str | None, pl.String()]  # WIDTHxHEIGHT per image, comma-separated
    image_budget: Annotated[int | None, pl.Int32()]  # the image_tokens setting asked for
    image_tokens: Annotated[int | None, pl.Int32()]  # tokens the images took
    image_encode_s: Annotated[float | None, pl.Float64()]  # projector time, apart from pp
    workbench_version: Annotated[str, pl.String()]
    llama_cpp_version: Annotated[str | None, pl.String()]
    host: Annotated[str, pl.String()]
    extra: Annotated[str | None, pl.String()]


RUN_SCHEMA: dict[str, pl.DataType] = _polars_schema(RunRow)
"""One row per response (``RunStore``, table ``runs``), from :class:`RunRow`."""


class BenchRow(TypedDict):
    """One row per (model, settings, depth, test) of a speed run (table ``bench``).
    ``flash_attn`` is the request (null = auto), ``flash_attn_used`` what llama.cpp chose.
    ``twin`` is true for a synthetic twin (random weights: its speed is the original's,
    its text is not). Error rows carry ``error`` and whatever settings were known; their
    rates are null. ``host`` holds JSON."""

    run_id: Annotated[str, pl.String()]
    created_at: Annotated[datetime, pl.Datetime("us", "UTC")]
    model: Annotated[str, pl.String()]
    model_path: Annotated[str, pl.String()]
    arch: Annotated[str | None, pl.String()]
    quant: Annotated[str | None, pl.String()]
    params: Annotated[int | None, pl.Int64()]
    size_bytes: Annotated[int | None, pl.Int64()]
    twin: Annotated[bool | None, pl.Boolean()]
    backend: Annotated[str, pl.String()]
    test: Annotated[str | None, pl.String()]
    n_prompt: Annotated[int | None, pl.Int32()]
    n_gen: Annotated[int | None, pl.Int32()]
    n_images: Annotated[int | None, pl.Int32()]  # images per repetition of an img test
    image_tokens: Annotated[int | None, pl.Int32()]  # tokens each image took (img test)
    depth: Annotated[int | None, pl.Int32()]
    reps: Annotated[int, pl.Int32()]
    interleaved: Annotated[bool, pl.Boolean()]
    n_threads: Annotated[int | None, pl.Int32()]
    n_batch: Annotated[int | None, pl.Int32()]
    n_ubatch: Annotated[int | None, pl.Int32()]
    flash_attn: Annotated[bool | None, pl.Boolean()]
    flash_attn_used: Annotated[bool | None, pl.Boolean()]
    type_k: Annotated[str | None, pl.String()]
    type_v: Annotated[str | None, pl.String()]
    n_gpu_layers: Annotated[int | None, pl.Int32()]
    n_ctx: Annotated[int | None, pl.Int32()]
    tps_mean: Annotated[float | None, pl.Float64()]
    tps_sd: Annotated[float | None, pl.Float64()]
    samples_tps: Annotated[list[float] | None, pl.List(pl.Float64())]
    samples_ns: Annotated[list[int] | None, pl.List(pl.Int64())]
    error: Annotated[str | None, pl.String()]
    workbench_version: Annotated[str, pl.String()]
    llama_cpp_version: Annotated[str | None, pl.String()]
    host: Annotated[str, pl.String()]


BENCH_SCHEMA: dict[str, pl.DataType] = _polars_schema(BenchRow)
"""One row per (model, settings, depth, test) of a speed run (table ``bench``), from
:class:`BenchRow`."""

VOTE_WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
"""Allowed values of a vote's ``winner`` (the public arena convention), in code order."""

VOTE_REQUIRED_COLUMNS: tuple[str, ...] = ("model_a", "model_b", "winner")
"""The columns every votes frame has; the ratings need only these. Others are carried
along and used where asked: ``category``, ``language`` (grouping), ``len_a`` and ``len_b``
(style control), ``tstamp`` (rating history)."""

VOTE_SCHEMA: dict[str, pl.DataType] = {
    "vote_id": pl.Int64(),
    "battle_id": pl.String(),
    "study": pl.String(),
    "rater": pl.String(),
    "model_a": pl.String(),
    "model_b": pl.String(),
    "position_a": pl.String(),
    "position_b": pl.String(),
    "swapped": pl.Boolean(),
    "prompt_id": pl.String(),
    "prompt_set": pl.String(),
    "category": pl.String(),
    "language": pl.String(),
    "response_a_id": pl.String(),
    "response_b_id": pl.String(),
    "choice": pl.String(),
    "winner": pl.String(),
    "reason": pl.String(),
    "flagged": pl.Boolean(),
    "flags": pl.String(),
    "battle_created_at": pl.Datetime("us", "UTC"),
    "voted_at": pl.Datetime("us", "UTC"),
    "turns": pl.Int32(),
}
"""A vote as the arena stores it (the SQLite ``votes`` table, in its column order) and
exports it, with :data:`VOTE_REQUIRED_COLUMNS` moved to the front. ``choice`` is the button
(A, B, tie, bothbad), ``winner`` one of :data:`VOTE_WINNERS`; ``flags`` holds JSON;
``turns`` counts the user turns of the conversation the vote covers (1: no follow-ups)."""
