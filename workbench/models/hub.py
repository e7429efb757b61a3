"""A catalog of the GGUF repositories people compare, and downloads through huggingface_hub.

``pull("gemma-4-e4b")`` lists the repository's GGUF files, picks a quantization that fits
this machine's memory (unless one is named), downloads it (all parts of a split file)
into the Hugging Face hub cache with a progress bar, checks every file's sha256 against
the LFS checksum the hub reports, and returns the local path. An interrupted download
resumes where it stopped (a ``.incomplete`` file beside the blob is kept and continued
with an HTTP Range request); a file whose checksum does not match is deleted, never
placed in the cache. With ``HF_HUB_OFFLINE=1`` (or when the hub cannot be reached) the
same call is answered from what the cache already holds.

A pull is named as ``NAME_OR_REPO[:FILE_OR_QUANT]``:

- ``gemma-4-e4b``: a catalog name (see :data:`CATALOG`); quantization chosen to fit;
- ``gemma-4-e4b:Q8_0`` or ``unsloth/gemma-4-E4B-it-GGUF:Q8_0``: a named quantization;
- ``unsloth/gemma-4-E4B-it-GGUF:gemma-4-E4B-it-Q4_K_M.gguf``: one file (a path in the repo).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import errors
from workbench.host import default_budget_bytes

DEFAULT_REVISION = "main"
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?(?:IQ\d+_[A-Z]+|TQ\d_\d|Q\d+_K(?:_[A-Z]+)?|Q\d+_\d|MXFP4(?:_MOE)?"
    r"|BF16|F16|F32))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Preferred default: the 4-bit K-quants most model cards recommend and most published
# comparisons use. Other quantizations are picked only when these do not fit.
PREFERRED_QUANTS = ("Q4_K_M", "UD-Q4_K_XL", "Q4_K_XL")
_FULL_PRECISION = ("BF16", "F16", "F32")
_HEADER_PROBE = 8 << 20
_HEADER_MAX = 64 << 20


HubError = errors.HubError
"""A pull failed; the message is one line naming the cause and what to do."""


class UnknownSpec(HubError, errors.InputError):
    """A name that is neither a catalog entry nor an ``owner/name`` id (bad input: exit 2)."""


class ChecksumError(HubError):
    """A downloaded file's sha256 does not match the checksum the hub reports."""


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class CatalogEntry:
    """A GGUF repository people use when comparing this model family."""

    name: str
    """Short name accepted by ``workbench pull``."""
    repo: str
    """Hugging Face repository id holding the GGUF files."""
    family: str
    """Model family (gemma-4, qwen-3.5, glm-4)."""
    params: str
    """Parameter count as the model card states it (total / active for MoE)."""
    quants: tuple[str, ...]
    """Quantizations the repository publishes (the usual ones; the repo listing decides)."""
    note: str = ""
    """One line on what the model is."""


_UNSLOTH_QUANTS = (
    "UD-IQ2_XXS", "UD-Q2_K_XL", "UD-Q3_K_XL", "IQ4_XS", "Q4_K_S", "Q4_K_M", "UD-Q4_K_XL",
    "Q5_K_M", "UD-Q5_K_XL", "Q6_K", "Q8_0", "BF16",
)  # fmt: skip

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("gemma-4-e2b", "unsloth/gemma-4-E2B-it-GGUF", "gemma-4", "5.1B (2.3B effective)",
                 _UNSLOTH_QUANTS, "Gemma 4 E2B instruct, per-layer embeddings, phone/laptop class"),
    CatalogEntry("gemma-4-e4b", "unsloth/gemma-4-E4B-it-GGUF", "gemma-4", "8B (4.5B effective)",
                 _UNSLOTH_QUANTS, "Gemma 4 E4B instruct, per-layer embeddings"),
    CatalogEntry("gemma-4-26b-a4b", "unsloth/gemma-4-26B-A4B-it-GGUF", "gemma-4",
                 "26B total / 4B active", _UNSLOTH_QUANTS, "Gemma 4 mixture-of-experts"),
    CatalogEntry("gemma-4-31b", "unsloth/gemma-4-31B-it-GGUF", "gemma-4", "31B",
                 _UNSLOTH_QUANTS, "Gemma 4 dense flagship"),
    CatalogEntry("gemma-4-e4b-ggml", "ggml-org/gemma-4-E4B-it-GGUF", "gemma-4",
                 "8B (4.5B effective)",
                 ("Q4_K_M", "Q8_0"), "Gemma 4 E4B as converted by the llama.cpp maintainers"),
    CatalogEntry("qwen3.5-0.8b", "unsloth/Qwen3.5-0.8B-GGUF", "qwen-3.5", "0.8B", _UNSLOTH_QUANTS,
                 "Qwen 3.5 hybrid (Gated DeltaNet + attention), smallest"),
    CatalogEntry("qwen3.5-2b", "unsloth/Qwen3.5-2B-GGUF", "qwen-3.5", "2B", _UNSLOTH_QUANTS,
                 "Qwen 3.5 hybrid reasoning model"),
    CatalogEntry("qwen3.5-4b", "unsloth/Qwen3.5-4B-GGUF", "qwen-3.5", "4B", _UNSLOTH_QUANTS,
                 "Qwen 3.5 hybrid reasoning model"),
    CatalogEntry("qwen3.5-9b", "unsloth/Qwen3.5-9B-GGUF", "qwen-3.5", "9B", _UNSLOTH_QUANTS,
                 "Qwen 3.5 hybrid reasoning model"),
    CatalogEntry("qwen3.5-27b", "unsloth/Qwen3.5-27B-GGUF", "qwen-3.5", "27B", _UNSLOTH_QUANTS,
                 "Qwen 3.5 dense"),
    CatalogEntry("qwen3.5-35b-a3b", "unsloth/Qwen3.5-35B-A3B-GGUF", "qwen-3.5",
                 "35B total / 3B active", _UNSLOTH_QUANTS, "Qwen 3.5 mixture-of-experts"),
    CatalogEntry("qwen3.5-122b-a10b", "unsloth/Qwen3.5-122B-A10B-GGUF", "qwen-3.5",
                 "122B total / 10B active", _UNSLOTH_QUANTS, "Qwen 3.5 large MoE (split files)"),
    CatalogEntry("glm-4.7-flash", "unsloth/GLM-4.7-Flash-GGUF", "glm-4", "30B total / 3B active",
                 _UNSLOTH_QUANTS, "GLM 4.7 Flash MoE"),
    CatalogEntry("glm-4.5-air", "unsloth/GLM-4.5-Air-GGUF", "glm-4", "106B total / 12B active",
                 _UNSLOTH_QUANTS, "GLM 4.5 Air MoE (split files)"),
    CatalogEntry("glm-4.6", "unsloth/GLM-4.6-GGUF", "glm-4", "355B total / 32B active",
                 _UNSLOTH_QUANTS, "GLM 4.6 MoE (split files)"),
    CatalogEntry("glm-4-9b", "bartowski/THUDM_GLM-4-9B-0414-GGUF", "glm-4", "9B",
                 ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"), "GLM 4 0414 dense"),
)  # fmt: skip
"""Known repositories; any other repository id works too."""


def catalog_entry(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    return next((e for e in CATALOG if e.name == lowered), None)


# --------------------------------------------------------------------------- specs and files


@dataclass(frozen=True)
class PullSpec:
    """What ``NAME_OR_REPO[:FILE_OR_QUANT]`` asks for."""

    repo: str
    """Repository id."""
    filename: str | None = None
    """A path in the repository (a .gguf file, or part 1 of a split one)."""
    quant: str | None = None
    """A quantization name (Q4_K_M, ...), matched against file names."""


def parse_spec(spec: str, *, quant: str | None = None) -> PullSpec:
    """Parse ``NAME_OR_REPO[:FILE_OR_QUANT]``.

    Raises:
        HubError: neither a catalog name nor an ``owner/name`` repository id.
    """
    base, _, tail = spec.strip().partition(":")
    entry = catalog_entry(base)
    if entry is not None:
        repo = entry.repo
    elif base.count("/") == 1 and all(base.split("/")):
        repo = base
    else:
        names = ", ".join(e.name for e in CATALOG)
        raise UnknownSpec(f"{spec!r} is neither a catalog name ({names}) nor an owner/repo id")
    if tail.lower().endswith(".gguf"):
        return PullSpec(repo, filename=tail, quant=quant)
    return PullSpec(repo, quant=tail or quant)


def quant_of(filename: str) -> str | None:
    """Quantization named in a GGUF file name (``...-Q4_K_M.gguf`` -> ``Q4_K_M``)."""
    stem = _SPLIT.sub("", Path(filename).name)
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    found = _QUANT.findall(stem)
    return found[-1].upper() if found else None


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repository."""

    path: str
    """Path in the repository."""
    size: int
    """Bytes."""
    sha256: str | None
    """LFS sha256 (None for a file not stored in LFS)."""


@dataclass(frozen=True)
class GGUFGroup:
    """A model file: one .gguf, or all parts of a split one (``-00001-of-0000N``)."""

    parts: tuple[RemoteFile, ...]
    quant: str | None

    @property
    def path(self) -> str:
        """Path of the first part (what llama.cpp is given)."""
        return self.parts[0].path

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def complete(self) -> bool:
        m = _SPLIT.search(self.parts[0].path)
        return m is None or len(self.parts) == int(m.group(2))


def group_gguf_files(files: Iterable[RemoteFile]) -> list[GGUFGroup]:
    """GGUF model files of a listing, split parts grouped, projectors (mmproj) left out."""
    groups: dict[str, list[RemoteFile]] = {}
    for f in files:
        name = Path(f.path).name.lower()
        if not name.endswith(".gguf") or "mmproj" in name:
            continue
        groups.setdefault(_SPLIT.sub(".gguf", f.path), []).append(f)
    out = []
    for key in sorted(groups):
        parts = tuple(sorted(groups[key], key=lambda f: f.path))
        out.append(GGUFGroup(parts, quant_of(key)))
    return out


# --------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class HubSettings:
    """Where and how to reach the hub; read from the environment at call time."""

    endpoint: str
    """Hub URL ($HF_ENDPOINT, default https://huggingface.co)."""
    cache_dir: Path
    """Hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    offline: bool
    """$HF_HUB_OFFLINE: answer from the cache only."""

    @classmethod
    def from_env(
        cls,
        *,
        endpoint: str | None = None,
        cache_dir: str | Path | None = None,
        offline: bool | None = None,
    ) -> HubSettings:
        env = os.environ
        ep = endpoint or env.get("HF_ENDPOINT") or "https://huggingface.co"
        if cache_dir is None:
            home = env.get("HF_HOME") or os.path.join(
                env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
            )
            cache_dir = (
                env.get("HF_HUB_CACHE")
                or env.get("HUGGINGFACE_HUB_CACHE")
                or (os.path.join(home, "hub"))
            )
        if offline is None:
            flag = env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or ""
            offline = flag.strip().lower() in ("1", "true", "yes", "on")
        return cls(ep.rstrip("/"), Path(cache_dir).expanduser(), offline)


def _storage(settings: HubSettings, repo: str) -> Path:
    return settings.cache_dir / ("models--" + repo.replace("/", "--"))


def _require_hub() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise HubError("huggingface_hub is not installed: pip install huggingface_hub") from None


# --------------------------------------------------------------------------- listing


def list_remote_files(
    repo: str, *, revision: str = DEFAULT_REVISION, settings: HubSettings | None = None
) -> list[RemoteFile]:
    """Every file of ``repo`` at ``revision``, with sizes and LFS checksums.

    The same request as ``HfApi.list_repo_tree(recursive=True)``, made without its retry
    back-off, so an unreachable hub falls back to the cache in a second, not in 25.
    """
    _require_hub()
    from urllib.parse import quote

    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import get_session, hf_raise_for_status

    settings = settings or HubSettings.from_env()
    url: str | None = f"{settings.endpoint}/api/models/{repo}/tree/{quote(revision, safe='')}"
    params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
    out = []
    while url is not None:
        r = get_session().get(url, params=params, headers=_auth_headers(), timeout=30)
        hf_raise_for_status(r)
        for entry in r.json():
            if entry.get("type") == "file":
                item = RepoFile(**entry)
                sha = item.lfs.sha256 if item.lfs is not None else None
                out.append(RemoteFile(item.path, int(item.size), sha))
        url, params = r.links.get("next", {}).get("url"), None
    return out


def _cached_commit(storage: Path, revision: str) -> str | None:
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    ref = storage / "refs" / revision
    try:
        return ref.read_text().strip()
    except OSError:
        return None


def list_cached_files(
    repo: str, *, revision: str = DEFAULT_REVISION, settings: HubSettings | None = None
) -> list[RemoteFile]:
    """Files of ``repo`` already in the hub cache for ``revision`` (checksums from blob names)."""
    settings = settings or HubSettings.from_env()
    storage = _storage(settings, repo)
    commit = _cached_commit(storage, revision)
    snap = storage / "snapshots" / commit if commit else None
    if snap is None or not snap.is_dir():
        return []
    out = []
    for p in sorted(snap.rglob("*")):
        if p.is_dir() or not p.exists():
            continue
        blob = p.resolve().name
        out.append(
            RemoteFile(
                p.relative_to(snap).as_posix(),
                p.stat().st_size,
                blob if _SHA256.match(blob) else None,
            )
        )
    return out


# --------------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class Choice:
    """The file a pull chose, and why."""

    group: GGUFGroup
    need_bytes: int
    """Estimated memory to run it (weights + KV cache at ``ctx``)."""
    budget_bytes: int
    reason: str


def _overhead_bytes(groups: list[GGUFGroup], header_reader: Any, ctx: int) -> int | None:
    """KV cache + recurrent state at ``ctx`` from the memory planner, or None without it.

    The KV cache depends on the architecture, not on the quantization, so one header
    (of the smallest file) serves every candidate.
    """
    try:
        from workbench.models import memory
    except ImportError:
        return None
    if header_reader is None or not groups:
        return None
    try:
        smallest = min(groups, key=lambda g: g.size)
        info = header_reader(smallest)
        plan = memory.plan(info, ctx=ctx)
        return int(plan.kv_bytes + getattr(plan, "state_bytes", 0))
    except Exception:
        return None


def choose_file(
    groups: list[GGUFGroup],
    *,
    quant: str | None = None,
    budget_bytes: int | None = None,
    ctx: int = 4096,
    header_reader: Any = None,
) -> Choice:
    """Pick the model file to pull.

    A named ``quant`` is taken as it is. Otherwise the first of :data:`PREFERRED_QUANTS`
    that fits ``budget_bytes`` wins; failing that, the largest file that fits (full
    precision only when nothing quantized fits). Memory need is file size + KV cache from
    ``workbench.models.memory.plan`` when it exists, else file size + 20%.

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


# --------------------------------------------------------------------------- downloading


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
    notes: tuple[str, ...] = field(default_factory=tuple)

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
        return sum(f.downloaded_bytes for f in self.files)


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


def _auth_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return dict(build_hf_headers(library_name="workbench"))


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
    headers = _auth_headers()
    meta = get_hf_file_metadata(url, headers=headers, endpoint=settings.endpoint)
    if meta.commit_hash is None or meta.etag is None:
        raise HubError(f"{settings.endpoint} did not answer like a Hugging Face hub for {rf.path}")
    storage = _storage(settings, repo)
    pointer = storage / "snapshots" / meta.commit_hash / rf.path
    expected = rf.sha256 or (meta.etag if _SHA256.match(meta.etag) else None)
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


def _remote_header_reader(repo: str, revision: str, settings: HubSettings) -> Any:
    """A function GGUFGroup -> ModelInfo that reads only the header, with Range requests."""

    def read(group: GGUFGroup) -> Any:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import get_session

        from workbench.models.gguf_info import (
            GGUFError,
            model_info_from_header,
            read_header_bytes,
        )

        url = hf_hub_url(repo, group.path, revision=revision, endpoint=settings.endpoint)
        n = _HEADER_PROBE
        while True:
            r = get_session().get(
                url, headers={**_auth_headers(), "Range": f"bytes=0-{n - 1}"}, follow_redirects=True
            )
            r.raise_for_status()
            try:
                header = read_header_bytes(r.content)
                return model_info_from_header(header, Path(group.path), group.size)
            except GGUFError:
                if n >= _HEADER_MAX or len(r.content) < n:
                    raise
                n *= 2

    return read


def _offline_pull(spec: PullSpec, revision: str, settings: HubSettings, why: str) -> PullResult:
    from huggingface_hub import hf_hub_download

    files = list_cached_files(spec.repo, revision=revision, settings=settings)
    groups = [g for g in group_gguf_files(files) if g.complete]
    if spec.filename:
        groups = [g for g in groups if spec.filename in {p.path for p in g.parts}]
    elif spec.quant:
        groups = [g for g in groups if g.quant == spec.quant.upper()]
    if not groups:
        what = spec.filename or spec.quant or "GGUF file"
        raise HubError(f"{why}, and the hub cache holds no {what} of {spec.repo}")
    group = next((g for g in groups if g.quant in PREFERRED_QUANTS), groups[0])
    pulled = []
    for part in group.parts:
        local = hf_hub_download(
            spec.repo, part.path, revision=revision, cache_dir=settings.cache_dir,
            local_files_only=True,
        )  # fmt: skip
        pulled.append(PulledFile(part.path, Path(local), part.size, part.sha256, 0))
    return PullResult(
        spec.repo, revision, group.quant, tuple(pulled), True, reason=f"{why}: from the cache"
    )


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

    Args:
        spec: ``NAME_OR_REPO[:FILE_OR_QUANT]`` (see the module docstring).
        quant: quantization to take when ``spec`` names none.
        revision: branch, tag or commit.
        budget_bytes: memory the model may use (default: the runner's budget, 75% of RAM
            or $WORKBENCH_MEMORY_GIB); only used when no file or quantization is named.
        ctx: context length the memory estimate is made for.
        progress: draw a progress bar on stderr.
        endpoint, cache_dir, offline: override $HF_ENDPOINT, $HF_HUB_CACHE, $HF_HUB_OFFLINE.

    Raises:
        HubError: unknown repo or file, nothing fits, not cached while offline, or a
            network failure (``ChecksumError`` for a corrupt download).
    """
    _require_hub()
    from huggingface_hub.errors import HfHubHTTPError

    settings = HubSettings.from_env(endpoint=endpoint, cache_dir=cache_dir, offline=offline)
    ps = parse_spec(spec, quant=quant)
    if settings.offline:
        return _offline_pull(ps, revision, settings, "offline (HF_HUB_OFFLINE)")
    try:
        files = list_remote_files(ps.repo, revision=revision, settings=settings)
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status in (401, 404):
            raise HubError(f"{ps.repo}: repository or revision {revision!r} not found "
                           f"(HTTP {status}; gated repos need HF_TOKEN)") from None  # fmt: skip
        return _offline_pull(ps, revision, settings, f"the hub answered HTTP {status}")
    except OSError as e:
        return _offline_pull(ps, revision, settings, f"cannot reach {settings.endpoint} ({e})")
    except Exception as e:
        if type(e).__module__.startswith(("httpx", "httpcore")):
            why = f"cannot reach {settings.endpoint} ({type(e).__name__})"
            return _offline_pull(ps, revision, settings, why)
        raise
    groups = group_gguf_files(files)
    if ps.filename:
        match = [g for g in groups if ps.filename in {p.path for p in g.parts}]
        if not match:
            raise HubError(f"{ps.repo} has no file {ps.filename!r}")
        group = match[0]
        choice = Choice(group, group.size, budget_bytes or 0, "file named")
    else:
        reader = _remote_header_reader(ps.repo, revision, settings)
        choice = choose_file(
            groups, quant=ps.quant, budget_bytes=budget_bytes, ctx=ctx, header_reader=reader
        )
    group = choice.group
    if not group.complete:
        raise HubError(f"{group.path}: the repository lacks some parts of this split file")
    pulled = []
    for part in group.parts:
        try:
            pulled.append(
                _download_file(ps.repo, part, revision=revision, settings=settings,
                               progress=progress)
            )  # fmt: skip
        except HubError:
            raise
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else "?"
            raise HubError(f"{part.path}: download failed (HTTP {status}); run the pull "
                           "again to resume") from None  # fmt: skip
        except Exception as e:
            if isinstance(e, OSError) or type(e).__module__.startswith(("httpx", "httpcore")):
                why = f"{type(e).__name__}: {str(e)[:120]}"
                raise HubError(
                    f"{part.path}: download interrupted ({why}); run the pull again to resume"
                ) from None
            raise
    return PullResult(ps.repo, revision, group.quant, tuple(pulled), False, reason=choice.reason)
