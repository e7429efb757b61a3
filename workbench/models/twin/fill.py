"""A twin's tensor data: valid random blocks of every ggml type, or a sparse hole.

``fill="random"`` writes random quantized blocks whose f16 scale fields are overwritten
with small finite values (no NaN or Inf anywhere), so routers really pick different
experts; ``fill="zeros"`` leaves the data section a hole (all-zero blocks are valid) for
memory-only checks at no disk cost. Data is streamed in chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from workbench.gguf import DEFAULT_ALIGNMENT, TensorInfo, write_gguf
from workbench.gguf.writer import TensorData
from workbench.models.twin.base import FILLS, Fill, TwinError

_CHUNK = 8 << 20

# Byte offsets of the f16 scale fields of each block type (ggml-common.h), and a scale
# that gives weights of roughly +-0.02.
_SCALES: dict[str, tuple[tuple[int, ...], float]] = {
    "Q4_0": ((0,), 5e-3), "Q4_1": ((0,), 2.5e-3), "Q5_0": ((0,), 2.5e-3),
    "Q5_1": ((0,), 1.25e-3), "Q8_0": ((0,), 3e-4), "Q2_K": ((80, 82), 2e-3),
    "Q3_K": ((108,), 7e-4), "Q4_K": ((0, 2), 1e-4), "Q5_K": ((0, 2), 5e-5),
    "Q6_K": ((208,), 2e-5), "IQ4_NL": ((0,), 4e-4), "IQ4_XS": ((0,), 2.5e-5),
    "IQ2_XXS": ((0,), 5e-4), "IQ2_XS": ((0,), 5e-4), "IQ2_S": ((0,), 5e-4),
    "IQ3_XXS": ((0,), 5e-4), "IQ3_S": ((0,), 5e-4), "IQ1_S": ((0,), 2e-3),
    "TQ1_0": ((52,), 2e-2), "TQ2_0": ((64,), 2e-2), "Q8_1": ((0, 2), 3e-4),
}  # fmt: skip
_MIN_FIELD = {"Q4_1": 2, "Q5_1": 2}  # offset of the f16 "m" (block minimum)
_UNQUANTIZED = ("F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64")


def float_values(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Plausible values for an unquantized tensor (norms near 1, decays negative, ...)."""
    if "norm" in name:
        return 1.0 + rng.normal(0.0, 0.02, n).astype(np.float32)
    if name.endswith(".scale") or "rope_freqs" in name or "layer_output_scale" in name:
        return np.ones(n, dtype=np.float32)
    if name.endswith("ssm_a"):
        return -rng.uniform(0.5, 1.5, n).astype(np.float32)
    if "ssm_conv1d" in name:
        return rng.normal(0.0, 0.2, n).astype(np.float32)
    return rng.normal(0.0, 0.02, n).astype(np.float32)


def _write_float(f: BinaryIO, t: TensorInfo, rng: np.random.Generator, pool: Any) -> None:
    kind, n = t.type_name, t.n_elements
    step = _CHUNK // 4
    for start in range(0, n, step):
        v = float_values(t.name, min(step, n - start), rng)
        if kind == "F32":
            f.write(v.astype("<f4").tobytes())
        elif kind == "F16":
            f.write(v.astype("<f2").tobytes())
        elif kind == "BF16":
            f.write((v.astype("<f4").view(np.uint32) >> 16).astype("<u2").tobytes())
        elif kind == "F64":
            f.write(v.astype("<f8").tobytes())
        else:  # integer tensors (routing tables): zeros are valid ids
            f.write(bytes(min(step, n - start) * (t.n_bytes // max(n, 1))))


def _write_quant(f: BinaryIO, t: TensorInfo, rng: np.random.Generator, pool: Any) -> None:
    kind = t.type_name
    _, bsize = GGML_QUANT_SIZES[GGMLQuantizationType(t.ggml_type)]
    n_blocks = t.n_bytes // bsize
    per_chunk = max(1, _CHUNK // bsize)
    fields, base = _SCALES.get(kind, ((), 0.0))
    for start in range(0, n_blocks, per_chunk):
        nb = min(per_chunk, n_blocks - start)
        # Random bytes come from a pool at a random offset (generating fresh bytes for
        # tens of GB is the slow part); the scale fields below are drawn per block.
        o = int(rng.integers(0, len(pool) - nb * bsize + 1))
        blk = pool[o : o + nb * bsize].copy().reshape(nb, bsize)
        for off in fields:
            d = (base * rng.uniform(0.5, 1.5, nb)).astype("<f2")
            blk[:, off : off + 2] = d.view(np.uint8).reshape(nb, 2)
        if kind in _MIN_FIELD:
            off = _MIN_FIELD[kind]
            m = (-0.02 * rng.uniform(0.5, 1.5, nb)).astype("<f2")
            blk[:, off : off + 2] = m.view(np.uint8).reshape(nb, 2)
        elif kind == "MXFP4":  # E8M0 exponent byte: 2^(e-127) times an fp4 value
            blk[:, 0] = rng.integers(119, 122, nb, dtype=np.uint8)
        elif kind == "IQ1_M":  # the f16 scale is spread over the top nibbles of scales[8]
            sc = blk[:, 48:56].copy().view("<u2")
            d = (2e-3 * rng.uniform(0.5, 1.5, nb)).astype("<f2").view("<u2").astype(np.uint16)
            sc &= 0x0FFF
            sc[:, 0] |= (d & 0x000F) << 12
            sc[:, 1] |= (d & 0x00F0) << 8
            sc[:, 2] |= (d & 0x0F00) << 4
            sc[:, 3] |= d & 0xF000
            blk[:, 48:56] = sc.view(np.uint8)
        elif not fields:
            raise TwinError(f"{t.name}: cannot fill ggml type {kind} with valid random blocks")
        f.write(blk.tobytes())


def random_data(seed: int = 0) -> TensorData:
    """A :data:`~workbench.gguf.writer.TensorData` writing valid random values of each
    tensor's type (seeded: the same seed writes the same bytes)."""
    rng = np.random.default_rng(seed)
    pool = np.frombuffer(rng.bytes(2 * _CHUNK), np.uint8)

    def write(f: BinaryIO, t: TensorInfo) -> None:
        (_write_float if t.type_name in _UNQUANTIZED else _write_quant)(f, t, rng, pool)

    return write


def write_twin(
    out: str | Path,
    entries: Sequence[bytes],
    tensors: Sequence[TensorInfo],
    *,
    fill: Fill = "random",
    seed: int = 0,
    version: int = 3,
    alignment: int = DEFAULT_ALIGNMENT,
) -> int:
    """Write a twin's GGUF file: ``entries`` (metadata bytes, markers included) and
    ``tensors``, their data filled as ``fill`` says.

    Returns:
        The file size in bytes.

    Raises:
        TwinError: an unknown fill, or a tensor type random blocks cannot be made for.
    """
    if fill not in FILLS:
        raise TwinError(f"fill must be 'random' or 'zeros', not {fill!r}")
    data = random_data(seed) if fill == "random" else None
    return write_gguf(out, entries, tensors, data=data, version=version, alignment=alignment)
