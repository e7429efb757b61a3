"""Which file of a repository to pull: the named one, or a quantization that fits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import HubError, WorkbenchError
from workbench.gguf import ModelInfo, model_info_from_header, read_remote_header
from workbench.host import default_budget_bytes
from workbench.models import memory
from workbench.models.hub.files import GGUFGroup, HubSettings, auth_headers

# Preferred default: the 4-bit K-quants most model cards recommend and most published
# comparisons use. Other quantizations are picked only when these do not fit.
PREFERRED_QUANTS = ("Q4_K_M", "UD-Q4_K_XL", "Q4_K_XL")
_FULL_PRECISION = ("BF16", "F16", "F32")

HeaderReader = Callable[[GGUFGroup], ModelInfo]
"""Reads a group's header (not its weights) into :class:`ModelInfo`."""


@dataclass(frozen=True)
class Choice:
    """The file a pull chose, and why."""

    group: GGUFGroup
    need_bytes: int
    """Estimated memory to run it (weights + KV cache at ``ctx``)."""
    budget_bytes: int
    reason: str


def remote_header_reader(repo: str, revision: str, settings: HubSettings) -> HeaderReader:
    """A :data:`HeaderReader` that reads a hub file's header with Range requests."""

    def read(group: GGUFGroup) -> ModelInfo:
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(repo, group.path, revision=revision, endpoint=settings.endpoint)
        remote = read_remote_header(url, auth_headers(), what=f"{repo}/{group.path}")
        return model_info_from_header(remote.raw.header, Path(group.path), group.size)

    return read


def _overhead_bytes(
    groups: list[GGUFGroup], header_reader: HeaderReader | None, ctx: int
) -> int | None:
    """KV cache + recurrent state at ``ctx`` from the memory planner, or None when the
    header cannot be read or the planner does not know the architecture.

    The KV cache depends on the architecture, not on the quantization, so one header
    (of the smallest file) serves every candidate.
    """
    if header_reader is None or not groups:
        return None
    try:
        info = header_reader(min(groups, key=lambda g: g.size))
        plan = memory.plan(info, ctx=ctx)
    except (WorkbenchError, ValueError):  # an estimate only: fall back to size + 20%
        return None
    return int(plan.kv_bytes + plan.state_bytes)


def choose_file(
    groups: list[GGUFGroup],
    *,
    quant: str | None = None,
    budget_bytes: int | None = None,
    ctx: int = 4096,
    header_reader: HeaderReader | None = None,
) -> Choice:
    """Pick the model file to pull.

    A named ``quant`` is taken as it is. Otherwise the first of :data:`PREFERRED_QUANTS`
    that fits ``budget_bytes`` wins; failing that, the largest file that fits (full
    precision only when nothing quantized fits). Memory need is file size + KV cache from
    :func:`workbench.models.memory.plan` when the header can be read, else file size + 20%.

    Raises:
        HubError: no GGUF file, the named quantization is missing, or nothing fits.
    """
    usable = [g for g in groups if g.complete]
    if not usable:
        raise HubError("the repository holds no complete GGUF model file")
    if quant:
        want = quant.upper()
        hits = [g for g in usable if g.quant == want]
        if not hits:
            have = ", ".join(sorted({g.quant or g.path for g in usable}))
            raise HubError(f"no {want} file in the repository; it has: {have}")
        g = min(hits, key=lambda g: len(g.path))
        return Choice(g, g.size, budget_bytes or 0, f"{want} as asked")
    if budget_bytes is None:
        budget_bytes = default_budget_bytes()
    overhead = _overhead_bytes(usable, header_reader, ctx)

    def need(g: GGUFGroup) -> int:
        return g.size + overhead if overhead is not None else int(g.size * 1.2)

    how = "file size + KV cache" if overhead is not None else "file size + 20%"
    fits = [g for g in usable if need(g) <= budget_bytes]
    if not fits:
        small = min(usable, key=need)
        raise HubError(
            f"nothing fits in {budget_bytes / 2**30:.1f} GiB; the smallest "
            f"({small.quant or small.path}) needs {need(small) / 2**30:.1f} GiB ({how})"
        )
    for q in PREFERRED_QUANTS:
        hits = [g for g in fits if g.quant == q]
        if hits:
            g = min(hits, key=lambda g: len(g.path))
            return Choice(g, need(g), budget_bytes, f"{q}: the usual default, fits ({how})")
    quantized = [g for g in fits if g.quant not in _FULL_PRECISION] or fits
    g = max(quantized, key=lambda g: g.size)
    return Choice(g, need(g), budget_bytes, f"largest that fits ({how})")


def preferred(groups: list[GGUFGroup]) -> GGUFGroup:
    """The group a pull without a named quantization takes from a cached listing: the
    first preferred quantization present, else the first group."""
    return next((g for g in groups if g.quant in PREFERRED_QUANTS), groups[0])
