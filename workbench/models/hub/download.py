"""Downloading a GGUF model into the hub cache: resumable, sha256-checked, offline-aware."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import HubError
from workbench.gguf.remote import HubRefused, HubUnreachable, host_of, hub_failure
from workbench.models.hub.choice import Choice, choose_file, preferred, remote_header_reader
from workbench.models.hub.files import (
    DEFAULT_REVISION,
    HubSettings,
    PullSpec,
    RemoteFile,
    auth_headers,
    find_group,
    group_gguf_files,
    is_sha256,
    list_cached_files,
    list_remote_files,
    parse_spec,
    projector_for,
    require_hub,
    storage_dir,
)


class ChecksumError(HubError):
    """A downloaded file's sha256 does not match the checksum the hub reports."""


@dataclass(frozen=True)
class PulledFile:
    """One downloaded (or already cached) file."""

    repo_path: str
    """Path in the repository."""
    local_path: Path
    """The file in the hub cache (a snapshot link to its blob)."""
    size: int
    sha256: str | None
    """Verified sha256 (None when the hub gave none to check against)."""
    downloaded_bytes: int
    """Bytes transferred by this pull (0 when cached; less than size after a resume)."""


@dataclass(frozen=True)
class PullResult:
    """What ``pull`` produced."""

    repo: str
    revision: str
    quant: str | None
    files: tuple[PulledFile, ...]
    offline: bool
    """Answered from the cache without asking the hub."""
    reason: str = ""
    """Why this file was chosen."""
    mmproj: PulledFile | None = None
    """The vision projector pulled with the model (None: the repository has none)."""

    @property
    def path(self) -> Path:
        """The file to load (part 1 of a split model)."""
        return self.files[0].local_path

    @property
    def name(self) -> str:
        """The name ``workbench models`` lists it under (the hf-cache source)."""
        return f"{self.repo}:{self.files[0].repo_path.removesuffix('.gguf')}"

    @property
    def downloaded_bytes(self) -> int:
        """Bytes this pull transferred: the model's files and its projector's."""
        return sum(f.downloaded_bytes for f in (*self.files, *filter(None, [self.mmproj])))


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _progress_class(progress: bool) -> type:
    from tqdm import tqdm

    class _Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("file", sys.stderr)
            kwargs.setdefault("disable", not progress)
            kwargs.setdefault("dynamic_ncols", True)
            super().__init__(*args, **kwargs)

    return _Bar


def _download_file(
    repo: str,
    rf: RemoteFile,
    *,
    revision: str,
    settings: HubSettings,
    progress: bool,
) -> PulledFile:
    """Download one file into the hub cache, resumably, and verify its sha256.

    huggingface_hub deletes a partial download when the process stops, so the transfer is
    done here into ``blobs/<sha256>.incomplete`` (kept across runs and continued with a
    Range request); only a verified file becomes the blob. ``hf_hub_download`` then finds
    the blob and writes the snapshot link and the ref exactly as it always does.
    """
    from huggingface_hub import hf_hub_download, hf_hub_url
    from huggingface_hub.file_download import get_hf_file_metadata, http_get

    url = hf_hub_url(repo, rf.path, revision=revision, endpoint=settings.endpoint)
    headers = auth_headers()
    meta = get_hf_file_metadata(url, headers=headers, endpoint=settings.endpoint)
    if meta.commit_hash is None or meta.etag is None:
        raise HubError(f"{host_of(url)} did not answer like a Hugging Face hub for {rf.path}")
    storage = storage_dir(settings, repo)
    pointer = storage / "snapshots" / meta.commit_hash / rf.path
    expected = rf.sha256 or (meta.etag if is_sha256(meta.etag) else None)
    size = meta.size if meta.size is not None else rf.size
    if pointer.exists() and pointer.stat().st_size == size:
        return PulledFile(rf.path, pointer, size, expected, 0)
    blob = storage / "blobs" / meta.etag
    downloaded = 0
    if not blob.exists():
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_name(blob.name + ".incomplete")
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:  # not a prefix of this file: start over
            partial.unlink()
            have = 0
        with open(partial, "ab") as f:
            http_get(
                meta.location,
                f,
                resume_size=have,
                headers=headers,
                expected_size=size,
                displayed_filename=Path(rf.path).name,
                tqdm_class=_progress_class(progress),
            )
        downloaded = partial.stat().st_size - have
        if expected is not None:
            got = sha256_file(partial)
            if got != expected:
                partial.unlink(missing_ok=True)
                raise ChecksumError(
                    f"{rf.path}: sha256 {got[:12]}… does not match the hub's {expected[:12]}…; "
                    "the download was deleted, run the pull again"
                )
        os.replace(partial, blob)
    local = hf_hub_download(
        repo,
        rf.path,
        revision=revision,
        cache_dir=settings.cache_dir,
        endpoint=settings.endpoint,
        headers=headers,
    )
    return PulledFile(rf.path, Path(local), size, expected, downloaded)


def _offline_pull(spec: PullSpec, revision: str, settings: HubSettings, why: str) -> PullResult:
    """Answer a pull from the hub cache; ``why`` says why the hub was not asked."""
    from huggingface_hub import hf_hub_download

    files = list_cached_files(spec.repo, revision=revision, settings=settings)
    groups = find_group([g for g in group_gguf_files(files) if g.complete], spec)
    if not groups:
        what = spec.filename or spec.quant or "GGUF file"
        raise HubError(f"{why}, and the hub cache holds no {what} of {spec.repo}")
    group = preferred(groups)
    pulled = []
    projector = projector_for(files, group)
    for part in (*group.parts, *filter(None, [projector])):
        local = hf_hub_download(
            spec.repo, part.path, revision=revision, cache_dir=settings.cache_dir,
            local_files_only=True,
        )  # fmt: skip
        pulled.append(PulledFile(part.path, Path(local), part.size, part.sha256, 0))
    mmproj = pulled.pop() if projector is not None else None
    return PullResult(
        spec.repo, revision, group.quant, tuple(pulled), True, reason=f"{why}: from the cache",
        mmproj=mmproj,
    )  # fmt: skip


def pull(
    spec: str,
    *,
    quant: str | None = None,
    revision: str = DEFAULT_REVISION,
    budget_bytes: int | None = None,
    ctx: int = 4096,
    progress: bool = False,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
) -> PullResult:
    """Download a GGUF model into the hub cache (or find it there) and return its path.

    With ``HF_HUB_OFFLINE=1``, or when the hub cannot be reached or answers with a server
    error, the pull is answered from what the cache already holds.

    Args:
        spec: ``NAME_OR_REPO[:FILE_OR_QUANT]`` (see :mod:`workbench.models.hub`).
        quant: quantization to take when ``spec`` names none.
        revision: branch, tag or commit.
        budget_bytes: memory the model may use (default: the runner's budget, 75% of RAM
            or $WORKBENCH_MEMORY_GIB); only used when no file or quantization is named.
        ctx: context length the memory estimate is made for.
        progress: draw a progress bar on stderr.
        endpoint, cache_dir, offline: override $HF_ENDPOINT, $HF_HUB_CACHE, $HF_HUB_OFFLINE.

    Raises:
        HubError: unknown repo or file, nothing fits, not cached while offline, or a
            network failure (``ChecksumError`` for a corrupt download); one line each.
    """
    require_hub()
    settings = HubSettings.from_env(endpoint=endpoint, cache_dir=cache_dir, offline=offline)
    ps = parse_spec(spec, quant=quant)
    if settings.offline:
        return _offline_pull(ps, revision, settings, "offline (HF_HUB_OFFLINE)")
    host = host_of(settings.endpoint)
    try:
        files = list_remote_files(ps.repo, revision=revision, settings=settings)
    except HubRefused as e:
        if e.status in (401, 403, 404):
            raise HubError(f"{ps.repo}: repository or revision {revision!r} not found "
                           f"({host} answered HTTP {e.status}; gated repos need HF_TOKEN)"
                           ) from None  # fmt: skip
        return _offline_pull(ps, revision, settings, e.reason)
    except HubUnreachable as e:
        return _offline_pull(ps, revision, settings, e.reason)
    groups = group_gguf_files(files)
    if ps.filename:
        match = find_group(groups, ps)
        if not match:
            raise HubError(f"{ps.repo} has no file {ps.filename!r}")
        group = match[0]
        choice = Choice(group, group.size, budget_bytes or 0, "file named")
    else:
        reader = remote_header_reader(ps.repo, revision, settings)
        choice = choose_file(
            groups, quant=ps.quant, budget_bytes=budget_bytes, ctx=ctx, header_reader=reader
        )
    group = choice.group
    if not group.complete:
        raise HubError(f"{group.path}: the repository lacks some parts of this split file")
    pulled = []
    # A vision model's projector comes along (the repository's mmproj-*.gguf).
    projector = projector_for(files, group)
    for part in (*group.parts, *filter(None, [projector])):
        try:
            pulled.append(
                _download_file(ps.repo, part, revision=revision, settings=settings,
                               progress=progress)
            )  # fmt: skip
        except HubError:
            raise
        except Exception as e:
            hint = "run the pull again to resume"
            failure = hub_failure(e, settings.endpoint, part.path, hint=hint)
            if failure is None and isinstance(e, OSError):  # e.g. the cache's disk is full
                failure = HubError(f"{part.path}: download interrupted ({e}); {hint}")
            if failure is None:
                raise
            raise failure from None
    mmproj = pulled.pop() if projector is not None else None
    return PullResult(
        ps.repo, revision, group.quant, tuple(pulled), False, reason=choice.reason, mmproj=mmproj
    )
