"""The table schemas, in one place: run rows, bench rows and votes.

Each schema is a ``{column: polars dtype}`` mapping, in column order. The modules that
write or read a table (``store``, ``bench``, ``arena.votes``, ``ratings``) import it from
here, and so do tests and plots that check or build frames.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "BENCH_SCHEMA",
    "RUN_SCHEMA",
    "VOTE_REQUIRED_COLUMNS",
    "VOTE_SCHEMA",
    "VOTE_WINNERS",
]

RUN_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "row_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "prompt_set": pl.String(),
    "prompt_id": pl.String(),
    "prompt": pl.String(),
    "system_prompt": pl.String(),
    "conversation_id": pl.String(),
    "turn": pl.Int32(),
    "history": pl.String(),
    "prompt_mode": pl.String(),
    "category": pl.String(),
    "language": pl.String(),
    "rep": pl.Int32(),
    "model": pl.String(),
    "model_path": pl.String(),
    "model_sha256": pl.String(),
    "arch": pl.String(),
    "quant": pl.String(),
    "params": pl.Int64(),
    "backend": pl.String(),
    "temperature": pl.Float64(),
    "top_p": pl.Float64(),
    "top_k": pl.Int32(),
    "sampling_defaults": pl.String(),
    "thinking": pl.String(),
    "seed": pl.Int64(),
    "max_tokens": pl.Int32(),
    "n_ctx": pl.Int32(),
    "n_threads": pl.Int32(),
    "n_gpu_layers": pl.Int32(),
    "flash_attn": pl.Boolean(),
    "response": pl.String(),
    "reasoning": pl.String(),
    "finish_reason": pl.String(),
    "error": pl.String(),
    "prompt_tokens": pl.Int32(),
    "completion_tokens": pl.Int32(),
    "reasoning_tokens": pl.Int32(),
    "ttft_s": pl.Float64(),
    "ttfa_s": pl.Float64(),
    "total_s": pl.Float64(),
    "prompt_tps": pl.Float64(),
    "gen_tps": pl.Float64(),
    "gen_tps_wall": pl.Float64(),
    "load_s": pl.Float64(),
    "peak_rss_bytes": pl.Int64(),
    "kv_cache_bytes": pl.Int64(),
    "workbench_version": pl.String(),
    "llama_cpp_version": pl.String(),
    "host": pl.String(),
    "extra": pl.String(),
}
"""One row per response (``RunStore``, table ``runs``). ``host``, ``extra``, ``history``
and ``sampling_defaults`` hold JSON. docs/architecture.md says what each column means."""

BENCH_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "model": pl.String(),
    "model_path": pl.String(),
    "arch": pl.String(),
    "quant": pl.String(),
    "params": pl.Int64(),
    "size_bytes": pl.Int64(),
    "backend": pl.String(),
    "test": pl.String(),
    "n_prompt": pl.Int32(),
    "n_gen": pl.Int32(),
    "depth": pl.Int32(),
    "reps": pl.Int32(),
    "interleaved": pl.Boolean(),
    "n_threads": pl.Int32(),
    "n_batch": pl.Int32(),
    "n_ubatch": pl.Int32(),
    "flash_attn": pl.Boolean(),
    "flash_attn_used": pl.Boolean(),
    "type_k": pl.String(),
    "type_v": pl.String(),
    "n_gpu_layers": pl.Int32(),
    "n_ctx": pl.Int32(),
    "tps_mean": pl.Float64(),
    "tps_sd": pl.Float64(),
    "samples_tps": pl.List(pl.Float64()),
    "samples_ns": pl.List(pl.Int64()),
    "error": pl.String(),
    "workbench_version": pl.String(),
    "llama_cpp_version": pl.String(),
    "host": pl.String(),
}
"""One row per (model, settings, depth, test) of a speed run (table ``bench``).
``flash_attn`` is the request (null = auto), ``flash_attn_used`` what llama.cpp chose.
Error rows carry ``error`` and whatever settings were known; their rates are null.
``host`` holds JSON."""

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
}
"""A vote as the arena stores it (the SQLite ``votes`` table, in its column order) and
exports it, with :data:`VOTE_REQUIRED_COLUMNS` moved to the front. ``choice`` is the button
(A, B, tie, bothbad), ``winner`` one of :data:`VOTE_WINNERS`; ``flags`` holds JSON."""
