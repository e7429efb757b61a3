"""Twins of existing GGUF files: a local file's header, or a hub file's header bytes.

- a local GGUF file: only its header is read (all parts of a split file are merged);
- a GGUF in a Hugging Face repository (``owner/repo:FILE.gguf``, ``owner/repo:Q4_K_M``,
  or a catalog name): only the header bytes are fetched, with HTTP Range requests through
  huggingface_hub's session, never the weights. With ``HF_HUB_OFFLINE=1`` the header of
  a file already in the hub cache is read instead.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import HubError
from workbench.gguf import (
    DEFAULT_ALIGNMENT,
    GGUFError,
    RawHeader,
    read_raw_header,
    read_remote_header,
    sequential,
    split_name,
)
from workbench.models import hub
from workbench.models.hub.files import cached_snapshot
from workbench.models.twin.base import MARKER_KEYS, Fill, TwinError, TwinResult, marker_entries
from workbench.models.twin.fill import write_twin


def twin_from_headers(
    raws: Sequence[RawHeader],
    out: str | Path,
    *,
    source: str,
    fill: Fill = "random",
    seed: int = 0,
) -> TwinResult:
    """Write a twin of the model whose header(s) are ``raws`` (one per split part).

    A single header keeps its exact layout (same tensor offsets); split parts are merged
    into one file without the ``split.*`` keys.
    """
    if not raws:
        raise TwinError("no header to twin")
    first = raws[0]
    meta = first.header.metadata
    align = int(meta.get("general.alignment", DEFAULT_ALIGNMENT))
    drop = set(MARKER_KEYS)
    if len(raws) == 1:
        tensors = list(first.header.tensors)
    else:
        drop |= {k for k, _ in first.entries if k.startswith("split.")}
        tensors = sequential(
            ((t.name, t.shape, t.ggml_type) for r in raws for t in r.header.tensors), align
        )
    entries = [raw for key, raw in first.entries if key not in drop] + marker_entries(source, fill)
    size = write_twin(
        out, entries, tensors, fill=fill, seed=seed, version=first.header.version,
        alignment=align,
    )  # fmt: skip
    return TwinResult(
        Path(out), source, str(meta.get("general.architecture", "unknown")), len(tensors),
        sum(t.n_bytes for t in tensors), size, fill,
    )  # fmt: skip


# --------------------------------------------------------------------------- local files


def _split_parts(path: Path) -> list[Path]:
    s = split_name(path)
    if s is None:
        return [path]
    parts = [path.with_name(name) for name in s.parts]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise TwinError(f"{path.name}: split file lacks part(s) {', '.join(missing)}")
    return parts


def read_local_headers(path: str | Path) -> list[RawHeader]:
    """The header of a local GGUF file (of every part, for a split file); no weights read."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise TwinError(f"model file not found: {p}")
    out = []
    for part in _split_parts(p):
        try:
            with part.open("rb") as f:
                out.append(read_raw_header(io.BufferedReader(f, buffer_size=1 << 20)))
        except (GGUFError, struct.error) as e:
            raise TwinError(f"{part.name}: {e}") from None
    return out


def twin_from_file(
    src: str | Path, out: str | Path, *, fill: Fill = "random", seed: int = 0
) -> TwinResult:
    """Twin of a local GGUF file (only its header is read)."""
    return twin_from_headers(
        read_local_headers(src), out, source=str(Path(src).name), fill=fill, seed=seed
    )


# --------------------------------------------------------------------------- hub files


@dataclass(frozen=True)
class RemoteHeaders:
    """Headers read for a hub model, and what it cost."""

    repo: str
    paths: tuple[str, ...]
    """The model's files in the repository (every part of a split file)."""
    headers: tuple[RawHeader, ...]
    bytes_fetched: int
    """Bytes received from the hub (0 when read from the hub cache)."""
    requests: int
    """HTTP requests made."""
    cached: bool = False
    """Read from files already in the hub cache (``HF_HUB_OFFLINE=1``)."""


def _pick(groups: list[hub.GGUFGroup], spec: hub.PullSpec, repo: str) -> hub.GGUFGroup:
    """The group ``spec`` names among complete ``groups``."""
    complete = [g for g in groups if g.complete]
    if spec.filename:
        hits = hub.find_group(complete, spec)
        if not hits:
            raise TwinError(f"{repo} has no complete GGUF file {spec.filename!r}")
        return hits[0]
    if spec.quant:
        hits = hub.find_group(complete, spec)
    else:
        hits = [g for q in hub.PREFERRED_QUANTS for g in complete if g.quant == q]
    if not hits:
        have = ", ".join(sorted({str(g.quant) for g in complete})) or "none"
        want = (spec.quant or hub.PREFERRED_QUANTS[0]).upper()
        raise TwinError(f"{repo} has no {want} GGUF file (has: {have})")
    return hits[0]


def _cached_headers(
    spec: hub.PullSpec, revision: str, settings: hub.HubSettings, why: str
) -> RemoteHeaders:
    files = hub.list_cached_files(spec.repo, revision=revision, settings=settings)
    groups = [g for g in hub.group_gguf_files(files) if g.complete]
    snap = cached_snapshot(spec.repo, revision, settings)
    if not groups or snap is None:
        raise HubError(f"{why}, and the hub cache holds no GGUF file of {spec.repo}")
    try:
        group = _pick(groups, spec, spec.repo)
    except TwinError as e:
        raise HubError(f"{why}, and in the hub cache: {e}") from None
    raws = tuple(read_local_headers(snap / group.path))
    return RemoteHeaders(spec.repo, tuple(p.path for p in group.parts), raws, 0, 0, cached=True)


def read_remote_headers(
    spec: str,
    *,
    quant: str | None = None,
    revision: str = "main",
    endpoint: str | None = None,
) -> RemoteHeaders:
    """Header(s) of a GGUF model in a hub repository, fetched with Range requests only.

    Args:
        spec: ``owner/repo:FILE.gguf``, ``owner/repo:QUANT`` or a catalog name
            (``gemma-4-e4b:Q4_K_M``); see :func:`workbench.models.hub.parse_spec`.
        quant: quantization when ``spec`` names neither a file nor one.
        revision: branch, tag or commit.
        endpoint: hub URL (default $HF_ENDPOINT or https://huggingface.co).

    Raises:
        TwinError: no such file or quantization in the repository, or not a GGUF header.
        HubError: the hub refused or could not be reached (one line naming the host's
            answer, suggesting ``HF_HUB_OFFLINE=1`` for files already in the cache), or,
            offline, the cache holds no such file.
    """
    from huggingface_hub import hf_hub_url

    ps = hub.parse_spec(spec.removeprefix("hf:"), quant=quant)
    settings = hub.HubSettings.from_env(endpoint=endpoint)
    if settings.offline:
        return _cached_headers(ps, revision, settings, "offline (HF_HUB_OFFLINE)")
    split = split_name(ps.filename) if ps.filename else None
    if ps.filename and (split is None or split.count == 1):
        files = [ps.filename]
    else:
        listing = hub.list_remote_files(ps.repo, revision=revision, settings=settings)
        files = [p.path for p in _pick(hub.group_gguf_files(listing), ps, ps.repo).parts]
    raws, fetched, requests = [], 0, 0
    for path in files:
        url = hf_hub_url(ps.repo, path, revision=revision, endpoint=settings.endpoint)
        try:
            remote = read_remote_header(url, hub.auth_headers(), what=f"{ps.repo}/{path}")
        except GGUFError as e:
            raise TwinError(f"{ps.repo}/{path}: {e}") from None
        raws.append(remote.raw)
        fetched += remote.bytes_fetched
        requests += remote.requests
    return RemoteHeaders(ps.repo, tuple(files), tuple(raws), fetched, requests)


def twin_from_hub(
    spec: str,
    out: str | Path,
    *,
    quant: str | None = None,
    revision: str = "main",
    endpoint: str | None = None,
    fill: Fill = "random",
    seed: int = 0,
) -> tuple[TwinResult, RemoteHeaders]:
    """Twin of a GGUF model on the hub; only header bytes are downloaded."""
    rh = read_remote_headers(spec, quant=quant, revision=revision, endpoint=endpoint)
    source = f"hf:{rh.repo}:{rh.paths[0]}"
    return twin_from_headers(rh.headers, out, source=source, fill=fill, seed=seed), rh
