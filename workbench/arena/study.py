"""STUDY.toml: which models a blind study compares, on which prompts, by whom.

A study file is strict TOML: an unknown key, a wrong type or an unknown model is an error
that names the key, so a typo never silently changes a study. Relative paths are taken
from the study file's directory; a path starting with ``{data}`` from the workbench data
directory (``$WORKBENCH_DATA`` or the checkout's ``data/``). Example (the bundled
``workbench/data/studies/demo.toml``)::

    name = "demo"
    models = ["gemma-3-270m", "smollm2-135m-instruct"]   # registry names, paths, URLs
    prompts = ["reasoning", "instruction_following"]     # bundled sets or .jsonl paths
    free_prompts = true                                  # raters may type their own
    votes_db = "{data}/votes/demo.sqlite"                 # or "postgresql://user@host/db"

    [generation]                                         # GenerationConfig fields
    max_tokens = 64

    [pool]                                               # pre-generated answers
    runs_root = "{data}"                                 # a RunStore root (data/)

    [[raters]]
    name = "admin"
    token = "admin-token"                                # or token_sha256 = "..."
    role = "admin"
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from workbench.arena.db import describe_url, is_server_url
from workbench.arena.guard import identity_terms
from workbench.backends.base import GenerationConfig, Prompt
from workbench.errors import InputError
from workbench.gguf import GGUFError, read_model_info
from workbench.models.registry import ModelNotFound, ModelRef, resolve
from workbench.paths import data_dir, package_data
from workbench.prompts import PromptSetError, load_prompts

__all__ = [
    "DEMO_TOKENS",
    "SHOW_THINKING",
    "Rater",
    "Study",
    "StudyError",
    "is_loopback",
    "load_study",
    "parse_study",
]

DEMO_TOKENS = ("demo-token", "admin-token")
"""Tokens published in the documentation: a study using one must stay on loopback."""

Role = Literal["rater", "admin"]

ShowThinking = Literal["hidden", "collapsed"]
SHOW_THINKING: tuple[ShowThinking, ...] = ("hidden", "collapsed")
"""What raters see of a model's thinking before voting: nothing (``hidden``, the default)
or a closed block above the answer (``collapsed``), normalised like the answer and
withheld when it names a model or maker."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TOP_KEYS = {
    "name",
    "title",
    "description",
    "models",
    "prompts",
    "free_prompts",
    "show_thinking",
    "max_turns",
    "votes_db",
    "votes_db_password_env",
    "trusted_proxies",
    "generation",
    "pool",
    "limits",
    "raters",
}
_POOL_KEYS = {"runs_root", "only", "store_generated"}
_LIMIT_KEYS = {
    "max_reason_chars",
    "max_prompt_chars",
    "battle_ttl_s",
    "leaderboard_bootstrap",
    "max_open_battles",
    "max_generating",
    "max_generating_per_rater",
}
_RATER_KEYS = {"name", "token", "token_sha256", "role"}


class StudyError(InputError):
    """A study file is malformed or names something that does not exist."""


def token_sha256(token: str) -> str:
    """Hex sha256 of a token (what ``token_sha256`` in a study file holds)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_DEMO_HASHES = frozenset(token_sha256(t) for t in DEMO_TOKENS)


@dataclass(frozen=True)
class Rater:
    """Someone allowed to vote; admins also see the leaderboard."""

    name: str
    """Shown in the votes table; unique within the study."""
    token_hash: str
    """sha256 of the rater's secret token (the token itself is never kept)."""
    role: Role = "rater"
    """``rater`` votes; ``admin`` votes and sees the live leaderboard."""

    def check(self, token: str) -> bool:
        """True when ``token`` is this rater's (constant-time comparison)."""
        return hmac.compare_digest(token_sha256(token), self.token_hash)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def has_demo_token(self) -> bool:
        """True when the token is a published demo token (valid from loopback only)."""
        return self.token_hash in _DEMO_HASHES


@dataclass(frozen=True)
class Study:
    """A parsed, validated study."""

    name: str
    """Short identifier, stored with every vote."""
    title: str
    """Heading of the voting page (must not name a model)."""
    description: str
    """Instructions shown to raters under the title."""
    models: tuple[ModelRef, ...]
    """At least two distinct models."""
    prompts: tuple[Prompt, ...]
    """Prompts battles are drawn from (may be empty when free prompts are allowed)."""
    free_prompts: bool
    """Raters may type their own prompt (answers are then generated on demand)."""
    raters: tuple[Rater, ...]
    """Who may vote; at least one."""
    generation: GenerationConfig
    """Settings for every answer (pooled answers must have been made with the same)."""
    votes_db: Path | str
    """Where battles and votes go: a SQLite file (a Path), or a PostgreSQL database URL
    (``postgresql://user@host:port/db``, a str) that several arena processes share."""
    runs_root: Path | None = None
    """RunStore root whose stored runs form the answer pool (None: no pool)."""
    pool_only: bool = False
    """Draw battles only from prompts both models have pooled answers for (no generation)."""
    store_generated: bool = True
    """Append answers generated on demand to ``runs_root`` (so they join the pool)."""
    max_reason_chars: int = 1000
    """Longest accepted vote reason, in characters."""
    max_prompt_chars: int = 2000
    """Longest accepted free prompt, in characters."""
    battle_ttl_s: float = 24 * 3600.0
    """Seconds after which an unvoted battle no longer takes a vote."""
    leaderboard_bootstrap: int = 200
    """Bootstrap rounds for the live leaderboard's confidence intervals."""
    max_open_battles: int = 2
    """Battles one rater may hold open (started, not voted, skipped or expired) at once."""
    max_generating: int = 4
    """Answers being generated or waiting to be, over all raters; past it: "busy"."""
    max_generating_per_rater: int = 1
    """Battles of one rater waiting for generated answers at once; past it: "busy"."""
    trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; none by
    default, so a client cannot choose the address it is counted (and locked out) by."""
    votes_db_password_env: str | None = None
    """The environment variable holding the database password (never in the file)."""
    show_thinking: ShowThinking = "hidden"
    """What raters see of the thinking before voting (see :data:`SHOW_THINKING`)."""
    max_turns: int = 1
    """User turns a battle may have before the vote: 1 is one prompt; more lets the rater
    send follow-ups, which each model answers continuing its own conversation."""
    path: Path | None = None
    """The study file it was read from."""

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def uses_demo_tokens(self) -> bool:
        """True when any rater's token is one of the published demo tokens."""
        return any(r.token_hash in _DEMO_HASHES for r in self.raters)

    def rater_for(self, token: str) -> Rater | None:
        """The rater whose token this is, or None."""
        if not isinstance(token, str) or not token:
            return None
        found = None
        for r in self.raters:  # no early exit: the time taken does not depend on who matched
            if r.check(token):
                found = r
        return found

    def check_share(self, share: bool) -> None:
        """Refuse a public share link (``share=True``, ``GRADIO_SHARE``, Colab) while a
        demo token is in use.

        Raises:
            StudyError: ``share`` is set and a demo token is set.
        """
        if share and self.uses_demo_tokens:
            raise StudyError(
                "refusing to share the arena publicly (share / GRADIO_SHARE): this study "
                f"uses a published demo token ({' / '.join(DEMO_TOKENS)}); give every rater "
                "a secret token first"
            )

    def check_host(self, host: str) -> None:
        """Refuse a non-loopback address while a demo token is in use.

        Raises:
            StudyError: ``host`` is reachable from other machines and a demo token is set.
        """
        if self.uses_demo_tokens and not is_loopback(host):
            raise StudyError(
                f"refusing to listen on {host}: this study uses a published demo token "
                f"({' / '.join(DEMO_TOKENS)}); give every rater a secret token first"
            )


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (the empty host means all interfaces)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- parsing


def _expect(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    # bool is an int subclass: "max_tokens = true" must not pass as 1.
    if (
        isinstance(value, bool)
        and kind is not bool
        and not (isinstance(kind, tuple) and bool in kind)
    ):
        raise StudyError(f"{key}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise StudyError(f"{key}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true/false", int: "an integer", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _unknown(section: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(section) - allowed)
    if extra:
        raise StudyError(
            f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
        )


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise StudyError(f"[{key}] must be a table")
    return value


def _path(base: Path, value: str) -> Path:
    if value.startswith("{data}"):  # the workbench data directory (WORKBENCH_DATA or data/)
        value = str(data_dir()) + value[len("{data}") :]
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _votes_db(base: Path, value: str) -> Path | str:
    """A SQLite file's path, or a PostgreSQL URL checked to hold no password."""
    if is_server_url(value):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - parses the port
        except ValueError as e:
            raise StudyError(f"votes_db: not a database URL ({e})") from None
        if parts.password:
            raise StudyError(
                "votes_db: the URL holds a password; put it in an environment variable "
                "and name that with votes_db_password_env"
            )
        if not parts.path.strip("/"):
            raise StudyError(f"votes_db {describe_url(value)}: name the database (…/dbname)")
        return value
    votes_db = _path(base, value)
    if votes_db.is_dir():
        raise StudyError(f"votes_db {votes_db} is a directory; name the SQLite file in it")
    return votes_db


def _generation(section: dict[str, Any]) -> GenerationConfig:
    allowed = {f.name: f for f in fields(GenerationConfig)}
    _unknown(section, set(allowed), "[generation]")
    kinds: dict[str, type | tuple[type, ...]] = {
        "temperature": (int, float),
        "top_p": (int, float),
        "top_k": int,
        "seed": int,
        "max_tokens": int,
        "system_prompt": str,
        "n_ctx": int,
        "n_threads": int,
        "n_gpu_layers": int,
        "flash_attn": bool,
        "swa_full": bool,
        "n_batch": int,
        "n_ubatch": int,
        "type_k": str,
        "type_v": str,
        "thinking": str,
    }
    values = {}
    for key, value in section.items():
        values[key] = _expect(value, kinds.get(key, object), f"generation.{key}")
        if kinds.get(key) == (int, float):
            values[key] = float(value)
    try:
        cfg = GenerationConfig(**values)
    except InputError as e:
        raise StudyError(f"generation.{e}") from None
    _check_generation(cfg)
    return cfg


_MIN_CTX = 64


def _check_generation(cfg: GenerationConfig) -> None:
    # Sampling left unset (None) takes the model's recommended values, else workbench's.
    for key in ("temperature", "top_p"):
        value = getattr(cfg, key)
        if value is not None and not math.isfinite(value):
            raise StudyError(f"generation.{key} must be a finite number, not {value}")
    if cfg.max_tokens < 1:
        raise StudyError("generation.max_tokens must be at least 1")
    if cfg.temperature is not None and cfg.temperature < 0:
        raise StudyError("generation.temperature must not be negative")
    if cfg.top_p is not None and not 0 < cfg.top_p <= 1:
        raise StudyError(f"generation.top_p must be in (0, 1], not {cfg.top_p}")
    if cfg.top_k is not None and cfg.top_k < 0:
        raise StudyError(f"generation.top_k must be 0 (off) or more, not {cfg.top_k}")
    if cfg.n_ctx < max(_MIN_CTX, cfg.max_tokens + 1):
        raise StudyError(
            f"generation.n_ctx = {cfg.n_ctx} leaves no room for a prompt and "
            f"{cfg.max_tokens} answer tokens; use at least {max(_MIN_CTX, cfg.max_tokens + 16)}"
        )
    for key in ("n_batch", "n_ubatch"):
        if getattr(cfg, key) < 1:
            raise StudyError(f"generation.{key} must be at least 1")
    if cfg.n_threads is not None and cfg.n_threads < 1:
        raise StudyError("generation.n_threads must be at least 1")


def _show_thinking(value: Any) -> ShowThinking:
    value = _expect(value, str, "show_thinking")
    if value not in SHOW_THINKING:
        raise StudyError(
            f"show_thinking: expected one of {', '.join(SHOW_THINKING)}, got {value!r}"
        )
    return value


def _proxies(items: Any) -> tuple[str, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise StudyError("trusted_proxies: expected a list of addresses or networks")
    out = []
    for i, item in enumerate(items, 1):
        item = _expect(item, str, f"trusted_proxies #{i}").strip()
        try:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise StudyError(
                f"trusted_proxies #{i}: {item!r} is not an IP address or network"
            ) from None
        out.append(item)
    return tuple(out)


def _raters(items: Any) -> tuple[Rater, ...]:
    if not isinstance(items, list) or not items:
        raise StudyError("[[raters]]: at least one rater (name + token) is required")
    raters: list[Rater] = []
    for i, item in enumerate(items, 1):
        where = f"raters #{i}"
        if not isinstance(item, dict):
            raise StudyError(f"{where}: expected a table with name and token")
        _unknown(item, _RATER_KEYS, where)
        name = _expect(item.get("name"), str, f"{where}.name")
        if not _NAME_RE.match(name):
            raise StudyError(f"{where}.name {name!r}: use letters, digits, _ . @ - (max 64)")
        where = f"rater {name!r}"
        token, digest = item.get("token"), item.get("token_sha256")
        if (token is None) == (digest is None):
            raise StudyError(f"{where}: give exactly one of token or token_sha256")
        if token is not None:
            token = _expect(token, str, f"{where}.token")
            if token != token.strip() or any(c.isspace() for c in token):
                raise StudyError(f"{where}: token must not contain spaces or be blank")
            if len(token) < 8:
                raise StudyError(f"{where}: token must be at least 8 characters")
            digest = token_sha256(token)
        else:
            digest = _expect(digest, str, f"{where}.token_sha256").lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise StudyError(f"{where}.token_sha256: expected 64 hex digits")
        role = item.get("role", "rater")
        if role not in ("rater", "admin"):
            raise StudyError(f"{where}.role: expected 'rater' or 'admin', got {role!r}")
        raters.append(Rater(name, digest, role))
    names = [r.name for r in raters]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StudyError(f"duplicate rater name(s): {', '.join(dup)}")
    hashes = [r.token_hash for r in raters]
    if len(set(hashes)) != len(hashes):
        raise StudyError("two raters share a token; every rater needs their own")
    return tuple(raters)


def _is_twin(ref: ModelRef) -> bool:
    """True for a synthetic twin. Raises StudyError for a file that is not a usable GGUF."""
    try:
        return read_model_info(ref.path).is_twin
    except GGUFError as e:
        raise StudyError(f"models: {ref.name}: {e}") from None


def _models(items: Any, resolve_models: bool) -> tuple[ModelRef, ...]:
    if not isinstance(items, list) or len(items) < 2:
        raise StudyError("models: list at least two models (registry names, paths or URLs)")
    refs: list[ModelRef] = []
    for i, spec in enumerate(items, 1):
        spec = _expect(spec, str, f"models #{i}")
        if not resolve_models:
            refs.append(ModelRef(spec, spec, "unresolved"))
            continue
        if spec.startswith(("twin:", "catalog:")):
            raise StudyError(f"models: {spec} is a synthetic twin (random weights): no answers")
        try:
            ref = resolve(spec)
        except ModelNotFound as e:
            raise StudyError(f"models: {e}") from None
        if ref.source == "path" and not Path(ref.path).is_file():
            raise StudyError(f"models: model file not found: {ref.path}")
        if not ref.is_endpoint and _is_twin(ref):
            raise StudyError(f"models: {ref.name} is a synthetic twin (random weights): no answers")
        refs.append(ref)
    names = [r.name for r in refs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StudyError(f"models: listed twice: {', '.join(dup)}")
    return tuple(refs)


def _prompts(items: Any, base: Path) -> tuple[Prompt, ...]:
    if items is None:
        return ()
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise StudyError("prompts: expected a list of prompt-set names or .jsonl paths")
    out: list[Prompt] = []
    seen: set[str] = set()
    for i, spec in enumerate(items, 1):
        spec = _expect(spec, str, f"prompts #{i}")
        local = _path(base, spec)
        try:
            prompts = load_prompts(local if local.exists() else spec)
        except PromptSetError as e:
            raise StudyError(f"prompts: {e}") from None
        for p in prompts:
            key = f"{p.prompt_set}/{p.id}"
            if key not in seen:
                seen.add(key)
                out.append(p)
    return tuple(out)


def parse_study(
    text: str, *, base_dir: str | Path = ".", path: Path | None = None, resolve_models: bool = True
) -> Study:
    """Parse and validate study TOML.

    Args:
        text: the TOML document.
        base_dir: directory relative paths are taken from.
        path: the file it came from (kept on the Study for messages).
        resolve_models: look every model up in the registry (False: keep the names as given,
            for tools that only read votes).

    Raises:
        StudyError: malformed TOML, unknown key, wrong type, unknown model, bad prompt set.
    """
    where = path.name if path else "study"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{where}: not valid TOML ({e})") from None
    _unknown(doc, _TOP_KEYS, where)
    base = Path(base_dir).resolve()

    name = _expect(doc.get("name", path.stem if path else "study"), str, "name")
    if not _NAME_RE.match(name):
        raise StudyError(f"name {name!r}: use letters, digits, _ . @ - (max 64)")
    title = _expect(doc.get("title", "Which answer is better?"), str, "title")
    description = _expect(doc.get("description", ""), str, "description")
    free_prompts = _expect(doc.get("free_prompts", False), bool, "free_prompts")
    if "votes_db" not in doc:
        raise StudyError(
            f"{where}: votes_db (the SQLite file or PostgreSQL URL for votes) is required"
        )
    votes_db = _votes_db(base, _expect(doc["votes_db"], str, "votes_db"))
    password_env = doc.get("votes_db_password_env")
    if password_env is not None:
        password_env = _expect(password_env, str, "votes_db_password_env")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
            raise StudyError(
                f"votes_db_password_env {password_env!r}: name an environment variable"
            )
        if not isinstance(votes_db, str):
            raise StudyError("votes_db_password_env is for a PostgreSQL votes_db URL")

    pool = _table(doc, "pool")
    _unknown(pool, _POOL_KEYS, "[pool]")
    runs_root = pool.get("runs_root")
    limits = _table(doc, "limits")
    _unknown(limits, _LIMIT_KEYS, "[limits]")

    models = _models(doc.get("models"), resolve_models)
    prompts = _prompts(doc.get("prompts"), base)
    if not prompts and not free_prompts:
        raise StudyError(f"{where}: no prompts; list prompt sets or set free_prompts = true")
    study = Study(
        name=name,
        title=title,
        description=description,
        models=models,
        prompts=prompts,
        free_prompts=free_prompts,
        raters=_raters(doc.get("raters")),
        generation=_generation(_table(doc, "generation")),
        votes_db=votes_db,
        runs_root=_path(base, _expect(runs_root, str, "pool.runs_root")) if runs_root else None,
        pool_only=_expect(pool.get("only", False), bool, "pool.only"),
        store_generated=_expect(pool.get("store_generated", True), bool, "pool.store_generated"),
        max_reason_chars=_expect(limits.get("max_reason_chars", 1000), int, "max_reason_chars"),
        max_prompt_chars=_expect(limits.get("max_prompt_chars", 2000), int, "max_prompt_chars"),
        battle_ttl_s=float(
            _expect(limits.get("battle_ttl_s", 24 * 3600.0), (int, float), "battle_ttl_s")
        ),
        leaderboard_bootstrap=_expect(
            limits.get("leaderboard_bootstrap", 200), int, "leaderboard_bootstrap"
        ),
        max_open_battles=_expect(limits.get("max_open_battles", 2), int, "max_open_battles"),
        max_generating=_expect(limits.get("max_generating", 4), int, "max_generating"),
        max_generating_per_rater=_expect(
            limits.get("max_generating_per_rater", 1), int, "max_generating_per_rater"
        ),
        trusted_proxies=_proxies(doc.get("trusted_proxies")),
        votes_db_password_env=password_env,
        show_thinking=_show_thinking(doc.get("show_thinking", "hidden")),
        max_turns=_expect(doc.get("max_turns", 1), int, "max_turns"),
        path=path,
    )
    if study.pool_only and study.runs_root is None:
        raise StudyError("[pool] only = true needs pool.runs_root (where the stored runs are)")
    if study.pool_only and study.free_prompts:
        raise StudyError("[pool] only = true cannot answer free prompts; set free_prompts = false")
    if study.max_turns < 1:
        raise StudyError("max_turns must be at least 1 (1: no follow-up turns)")
    if study.pool_only and study.max_turns > 1:
        raise StudyError(
            "[pool] only = true cannot answer follow-up turns; set max_turns = 1 or only = false"
        )
    for key in (
        "max_reason_chars",
        "max_prompt_chars",
        "battle_ttl_s",
        "max_open_battles",
        "max_generating",
        "max_generating_per_rater",
    ):
        if not getattr(study, key) > 0:  # NaN too
            raise StudyError(f"limits.{key} must be positive")
    if study.leaderboard_bootstrap < 0:
        raise StudyError("limits.leaderboard_bootstrap must not be negative")
    _check_title(study)
    return study


def _check_title(study: Study) -> None:
    """The title and description are on the page before any vote: no model may be named."""
    text = f"{study.title}\n{study.description}"
    found = identity_terms(text, study.model_names)
    if found:
        raise StudyError(
            f"title/description name a model or maker ({', '.join(found)}); "
            "raters would see it before voting"
        )


def load_study(path: str | Path, *, resolve_models: bool = True) -> Study:
    """Read and validate a STUDY.toml file.

    Raises:
        StudyError: missing file or any problem :func:`parse_study` reports.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise StudyError(f"study file not found: {path}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StudyError(f"cannot read study file {path}: {e}") from None
    return parse_study(text, base_dir=p.parent, path=p.resolve(), resolve_models=resolve_models)


def demo_study_path() -> Path:
    """The example study: the data directory's studies/demo.toml if you made one, else the
    one that ships inside the package (workbench/data/studies/demo.toml)."""
    own = data_dir() / "studies" / "demo.toml"
    return own if own.exists() else package_data("studies", "demo.toml")
