"""The front door: build a twin of whatever a user names, or find it in the twin cache."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from workbench.gguf import read_model_info
from workbench.models import hub
from workbench.models.catalog import TWIN_PREFIX, catalog_entry, strip_prefix
from workbench.models.hub.files import projector_for
from workbench.models.projectors import projector_beside
from workbench.models.twin.base import Fill, TwinError, TwinResult
from workbench.models.twin.catalog import twin_entries, twin_from_catalog
from workbench.models.twin.sources import twin_from_file, twin_from_hub
from workbench.paths import twins_dir

_PREFIXES = (TWIN_PREFIX, "catalog:")


def build_twin(
    source: str | Path,
    out: str | Path,
    *,
    quant: str | None = None,
    fill: Fill = "random",
    seed: int = 0,
    revision: str = "main",
    endpoint: str | None = None,
) -> TwinResult:
    """Write a twin of ``source`` to ``out``.

    ``source`` is a catalog name (``gemma-4-e4b``, ``twin:gemma-4-e4b[:QUANT]``; the older
    ``catalog:NAME`` still works), an existing .gguf path, or a hub spec
    (``owner/repo:FILE.gguf``, ``owner/repo:QUANT``, ``hf:...``). A catalog model with a
    published configuration is built from it alone; one without is twinned from its hub
    file's header. ``quant`` picks the preset for configuration twins (default Q4_K_M)
    and the file for hub repositories; a local or named file keeps its own types.

    Raises:
        TwinError: an unknown name or file, or a quantization that does not apply.
        HubError: the hub refused or could not be reached (one line).
    """
    s = str(source)
    if s.startswith("hf:"):
        return twin_from_hub(s, out, quant=quant, revision=revision, endpoint=endpoint,
                             fill=fill, seed=seed)[0]  # fmt: skip
    named = s.startswith(_PREFIXES)
    body = strip_prefix(s)
    base, _, q = body.partition(":")
    entry = catalog_entry(base)
    p = Path(body).expanduser()
    if entry is not None and (named or not p.exists()):
        if entry.hparams is not None:
            preset = quant or q or "Q4_K_M"
            return twin_from_catalog(entry.name, out, quant=preset, fill=fill, seed=seed)
        return twin_from_hub(body, out, quant=quant, revision=revision, endpoint=endpoint,
                             fill=fill, seed=seed)[0]  # fmt: skip
    if p.exists():
        if quant:
            raise TwinError("--quant applies to catalog and hub sources; a file keeps its types")
        return twin_from_file(p, out, fill=fill, seed=seed)
    if named and "/" not in base:
        known = ", ".join(e.name for e in twin_entries())
        raise TwinError(f"no published configuration {base!r}; known: {known}")
    if body.endswith(".gguf") and ":" not in body:
        raise TwinError(f"model file not found: {p}")
    return twin_from_hub(body, out, quant=quant, revision=revision, endpoint=endpoint,
                         fill=fill, seed=seed)[0]  # fmt: skip


def _cache_name(spec: str, fill: Fill) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")[:80]
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    return f"{slug}-{digest}-{fill}.gguf"


def resolve_twin(name_or_path: str | Path, *, fill: Fill = "random", seed: int = 0) -> Path:
    """A twin's path, built on first use and cached under :func:`twins_dir`.

    Accepts ``twin:NAME[:QUANT]`` (a catalog model; ``catalog:NAME`` is the older
    spelling), ``twin:PATH.gguf`` (a twin of a local file, rebuilt when the file
    changes), ``twin:owner/repo:FILE.gguf`` (hub header only), or a path to a file that
    is already a twin (returned as is).

    Raises:
        TwinError: unknown configuration, unreadable source.
        HubError: a hub source that cannot be read (one line).
    """
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.is_file() and not s.startswith(_PREFIXES):
        if read_model_info(p, check_size=False).is_twin:
            return p
        raise TwinError(f"{p.name} is not a twin; name it as {TWIN_PREFIX}{p} to build one")
    body = strip_prefix(s)
    key = body
    local = Path(body).expanduser()
    entry = catalog_entry(body.partition(":")[0])
    if local.is_file():
        st = local.stat()
        key = f"{local.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    elif entry is not None:
        body = TWIN_PREFIX + body
        if entry.hparams is not None and body.count(":") == 1:
            body += ":Q4_K_M"
        key = body
    target = twins_dir() / _cache_name(key, fill)
    if target.exists():
        return target
    build_twin(body, target, fill=fill, seed=seed)
    return target


def projector_source(name_or_path: str | Path) -> str | None:
    """Where the projector of the model a twin names is: the ``mmproj-*.gguf`` beside a
    local file, or the hub repository's (``owner/repo:mmproj-F16.gguf``: only its header
    is read to twin it); None for a text-only model or a published configuration (whose
    vision tower has no layout here).

    Raises:
        HubError: a hub repository that cannot be listed (one line).
    """
    body = strip_prefix(str(name_or_path))
    local = Path(body).expanduser()
    if local.is_file():
        found = projector_beside(local)
        return str(found) if found else None
    entry = catalog_entry(body.partition(":")[0])
    if entry is not None and entry.hparams is not None:
        return None
    try:
        spec = hub.parse_spec(body)
    except hub.UnknownSpec:
        return None
    settings = hub.HubSettings.from_env()
    if settings.offline:
        files = hub.list_cached_files(spec.repo, settings=settings)
    else:
        files = hub.list_remote_files(spec.repo, settings=settings)
    groups = hub.find_group([g for g in hub.group_gguf_files(files) if g.complete], spec)
    if not groups:
        return None
    found_file = projector_for(files, groups[0])
    return f"{spec.repo}:{found_file.path}" if found_file else None


def resolve_projector_twin(name_or_path: str | Path, *, fill: Fill = "random") -> Path | None:
    """A twin of the projector of the model ``name_or_path`` names (built on first use
    and cached like any twin), None when it has none (see :func:`projector_source`)."""
    source = projector_source(name_or_path)
    return resolve_twin(TWIN_PREFIX + source, fill=fill) if source else None
