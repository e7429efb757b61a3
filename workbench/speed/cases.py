"""What a bench run measures: the settings swept and the tests they make, in
llama-bench's order."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from workbench.errors import InputError
from workbench.gguf import UnknownKVCacheType
from workbench.host import physical_cores
from workbench.llama.params import kv_type_id


class BenchError(InputError):
    """Settings that cannot be benchmarked (the message says which)."""


def _tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


@dataclass(frozen=True)
class BenchSettings:
    """Settings to sweep; every field is a list of values, and every combination runs.

    Lists are stored as tuples (so settings hash and compare); a bare value counts as a
    one-element list.
    """

    n_threads: Sequence[int | None] = (None,)
    """CPU threads; None = physical cores (what llama-bench uses)."""
    n_batch: Sequence[int] = (2048,)
    """Logical batch size: tokens per llama_decode call during prompt processing."""
    n_ubatch: Sequence[int] = (512,)
    """Physical batch size (clamped to n_batch, as llama.cpp does)."""
    flash_attn: Sequence[bool | None] = (None,)
    """Flash attention: True, False, or None for llama.cpp's auto."""
    type_k: Sequence[str] = ("f16",)
    """KV-cache type for K (f16, q8_0, q4_0, ...)."""
    type_v: Sequence[str] = ("f16",)
    """KV-cache type for V (quantized V needs flash attention)."""
    n_gpu_layers: Sequence[int] = (-1,)
    """Layers offloaded to the GPU; -1 = all (ignored by CPU-only builds)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            values = _tuple(getattr(self, f.name))
            if not values:
                raise BenchError(f"{f.name}: give at least one value")
            object.__setattr__(self, f.name, values)
        for t in (*self.type_k, *self.type_v):
            try:
                kv_type_id(t)
            except UnknownKVCacheType as e:
                raise BenchError(str(e)) from None
        for name in ("n_batch", "n_ubatch"):
            if any(int(v) < 1 for v in getattr(self, name)):
                raise BenchError(f"{name} must be at least 1")
        if any(v is not None and int(v) < 1 for v in self.n_threads):
            raise BenchError("n_threads must be at least 1")


@dataclass(frozen=True)
class BenchCase:
    """One test of one model: what the child process runs and times."""

    test: str
    """pp (prompt processing), tg (text generation) or img (image encoding by the
    projector: the rate is images per second)."""
    n_prompt: int
    n_gen: int
    depth: int
    """Tokens already in the cache before the timed part."""
    n_threads: int
    n_batch: int
    n_ubatch: int
    flash_attn: bool | None
    type_k: str
    type_v: str
    n_gpu_layers: int
    n_images: int = 0
    """Images encoded per repetition of an img test."""
    image_tokens: int | None = None
    """The image token budget of an img test (None: the projector's default)."""

    @property
    def label(self) -> str:
        """llama-bench's test name: ``pp512``, ``tg128 @ d4096``; ``img4`` (``@ 280 tok``)."""
        if self.test == "img":
            budget = f" @ {self.image_tokens} tok" if self.image_tokens else ""
            return f"img{self.n_images}{budget}"
        n = self.n_prompt if self.test == "pp" else self.n_gen
        return f"{self.test}{n}" + (f" @ d{self.depth}" if self.depth else "")

    @property
    def units(self) -> int:
        """What one repetition processes: tokens (pp, tg) or images (img)."""
        return self.n_images if self.test == "img" else self.n_prompt + self.n_gen

    def to_job(self) -> dict[str, Any]:
        return {
            "n_prompt": self.n_prompt,
            "n_gen": self.n_gen,
            "depth": self.depth,
            "n_threads": self.n_threads,
            "n_batch": self.n_batch,
            "n_ubatch": self.n_ubatch,
            "flash_attn": self.flash_attn,
            "type_k_id": kv_type_id(self.type_k),
            "type_v_id": kv_type_id(self.type_v),
            "n_gpu_layers": self.n_gpu_layers,
            "n_images": self.n_images,
            "image_tokens": self.image_tokens,
        }


def bench_cases(
    *,
    n_prompt: int = 512,
    n_gen: int = 128,
    depths: Sequence[int] = (0,),
    sweep: BenchSettings | None = None,
    n_images: int = 0,
    image_tokens: int | None = None,
) -> list[BenchCase]:
    """Every test of a sweep, in llama-bench's order (GPU layers outermost, so a model is
    reloaded only when they change; then batch, KV types, flash attention, threads and
    depth; pp before tg, then img: ``n_images`` images encoded per repetition at the
    ``image_tokens`` budget, once per setting, not per depth)."""
    s = sweep or BenchSettings()
    if n_prompt < 0 or n_gen < 0 or n_images < 0:
        raise BenchError("n_prompt, n_gen and n_images must be >= 0")
    if n_prompt == 0 and n_gen == 0 and n_images == 0:
        raise BenchError("nothing to measure: n_prompt, n_gen and n_images are all 0")
    if image_tokens is not None and image_tokens < 1:
        raise BenchError("image_tokens must be at least 1")
    if not depths or any(int(d) < 0 for d in depths):
        raise BenchError("depths must be >= 0")
    cases = []
    for ngl, nb, nub, tk, tv, fa, nt, d in itertools.product(
        s.n_gpu_layers,
        s.n_batch,
        s.n_ubatch,
        s.type_k,
        s.type_v,
        s.flash_attn,
        s.n_threads,
        depths,
    ):
        common: dict[str, Any] = {
            "depth": int(d),
            "n_threads": int(nt) if nt is not None else physical_cores(),
            "n_batch": int(nb),
            "n_ubatch": min(int(nub), int(nb)),
            "flash_attn": fa,
            "type_k": tk,
            "type_v": tv,
            "n_gpu_layers": int(ngl),
        }
        if n_prompt > 0:
            cases.append(BenchCase("pp", n_prompt, 0, **common))
        if n_gen > 0:
            cases.append(BenchCase("tg", 0, n_gen, **common))
        if n_images > 0 and int(d) == int(depths[0]):
            img = {**common, "depth": 0}
            cases.append(BenchCase("img", 0, 0, **img, n_images=n_images,
                                   image_tokens=image_tokens))  # fmt: skip
    return cases
