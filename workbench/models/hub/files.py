"""What a pull names, and the files a hub repository (or the hub cache) holds."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from workbench.errors import HubError, InputError
from workbench.gguf import quant_of, split_name, unsplit
from workbench.gguf.remote import host_of, hub_failure
from workbench.models.catalog import CATALOG, catalog_entry
from workbench.models.projectors import is_projector, pick_projector

DEFAULT_REVISION = "main"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(s: str) -> bool:
    """True for a 64-digit lowercase hex string (an LFS checksum, a blob name)."""
    return bool(_SHA256.match(s))


# --------------------------------------------------------------------------- specs


class UnknownSpec(HubError, InputError):
    """A name that is neither a catalog entry nor an ``owner/name`` id (bad input: exit 2)."""


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
        UnknownSpec: neither a catalog name nor an ``owner/name`` repository id.
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


# --------------------------------------------------------------------------- files


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
        s = split_name(self.parts[0].path)
        return s is None or len(self.parts) == s.count


def group_gguf_files(files: Iterable[RemoteFile]) -> list[GGUFGroup]:
    """GGUF model files of a listing, split parts grouped, projectors (mmproj) left out."""
    groups: dict[str, list[RemoteFile]] = {}
    for f in files:
        name = PurePosixPath(f.path).name.lower()
        if not name.endswith(".gguf") or is_projector(name):
            continue
        groups.setdefault(unsplit(f.path), []).append(f)
    out = []
    for key in sorted(groups):
        parts = tuple(sorted(groups[key], key=lambda f: f.path))
        out.append(GGUFGroup(parts, quant_of(key)))
    return out


def projector_for(files: Iterable[RemoteFile], group: GGUFGroup) -> RemoteFile | None:
    """The listing's projector (``mmproj-*.gguf``) that goes with ``group``: one in the
    model's own directory, else one at the repository's root (repositories that keep each
    quantization in a folder keep the projector there); None for a text-only repository."""
    projectors = [f for f in files if is_projector(f.path)]
    folder = PurePosixPath(group.path).parent
    for where in (folder, PurePosixPath(".")):
        here = {f.path: f for f in projectors if PurePosixPath(f.path).parent == where}
        chosen = pick_projector(here, group.path)
        if chosen is not None:
            return here[chosen]
    return None


def find_group(groups: Iterable[GGUFGroup], spec: PullSpec) -> list[GGUFGroup]:
    """The groups ``spec`` names: the one holding its file, or those of its quantization
    (all groups when it names neither)."""
    if spec.filename:
        return [g for g in groups if spec.filename in {p.path for p in g.parts}]
    if spec.quant:
        return [g for g in groups if g.quant == spec.quant.upper()]
    return list(groups)


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


def storage_dir(settings: HubSettings, repo: str) -> Path:
    """A repository's directory in the hub cache."""
    return settings.cache_dir / ("models--" + repo.replace("/", "--"))


def require_hub() -> None:
    """Raises HubError when huggingface_hub is missing."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise HubError("huggingface_hub is not installed: pip install huggingface_hub") from None


def auth_headers() -> dict[str, str]:
    """huggingface_hub's request headers (user agent, the token when one is set)."""
    from huggingface_hub.utils import build_hf_headers

    return dict(build_hf_headers(library_name="workbench"))


# --------------------------------------------------------------------------- listing


def list_remote_files(
    repo: str, *, revision: str = DEFAULT_REVISION, settings: HubSettings | None = None
) -> list[RemoteFile]:
    """Every file of ``repo`` at ``revision``, with sizes and LFS checksums.

    The same request as ``HfApi.list_repo_tree(recursive=True)``, made without its retry
    back-off, so an unreachable hub falls back to the cache in a second, not in 25.

    Raises:
        HubUnreachable: no answer from the hub (one line, naming the host).
        HubRefused: the hub answered with an HTTP error (its status is named).
    """
    require_hub()
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import get_session, hf_raise_for_status

    settings = settings or HubSettings.from_env()
    url: str | None = f"{settings.endpoint}/api/models/{repo}/tree/{quote(revision, safe='')}"
    params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
    out = []
    while url is not None:
        try:
            r = get_session().get(url, params=params, headers=auth_headers(), timeout=30)
            hf_raise_for_status(r)
            listing = r.json()
        except ValueError:  # answered, but not with JSON: not a hub (a proxy's page?)
            raise HubError(
                f"{host_of(url)} did not answer like a Hugging Face hub for {repo}"
            ) from None
        except Exception as e:
            failure = hub_failure(e, url, repo)
            if failure is None:
                raise
            raise failure from None
        for entry in listing:
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


def cached_snapshot(repo: str, revision: str, settings: HubSettings) -> Path | None:
    """The hub cache's snapshot directory of ``repo`` at ``revision``, if it has one."""
    storage = storage_dir(settings, repo)
    commit = _cached_commit(storage, revision)
    snap = storage / "snapshots" / commit if commit else None
    return snap if snap is not None and snap.is_dir() else None


def list_cached_files(
    repo: str, *, revision: str = DEFAULT_REVISION, settings: HubSettings | None = None
) -> list[RemoteFile]:
    """Files of ``repo`` already in the hub cache for ``revision`` (checksums from blob names)."""
    settings = settings or HubSettings.from_env()
    snap = cached_snapshot(repo, revision, settings)
    if snap is None:
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
                blob if is_sha256(blob) else None,
            )
        )
    return out
