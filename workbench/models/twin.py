"""Synthetic twins: GGUF files with a real model's layout and random (or zero) weights.

A twin has exactly the source's tensor names, shapes and types and all of its metadata
(copied byte for byte), plus a marker (``workbench.twin`` = true,
``workbench.twin.source``), so llama.cpp allocates, reads and computes exactly as much
per token as for the real model: speed and memory measured on a twin are the real
model's, without downloading its weights. Answers are noise, so workbench refuses a
twin in answer comparisons and arenas (:attr:`ModelInfo.is_twin`).

Sources:

- a local GGUF file: only its header is read (all parts of a split file are merged);
- a GGUF in a Hugging Face repository (``owner/repo:FILE.gguf``, ``owner/repo:Q4_K_M``,
  or a :mod:`workbench.models.hub` catalog name): only the header bytes are fetched, with
  HTTP Range requests through huggingface_hub's session, never the weights;
- a built-in published configuration (``catalog:gemma-4-26b-a4b``, see
  :mod:`workbench.models.twin_catalog`), quantized with llama-quantize's mix for a preset.

Data is streamed to disk in chunks. ``fill="random"`` writes random quantized blocks whose
f16 scale fields are overwritten with small finite values (no NaN or Inf anywhere), so
routers really pick different experts; ``fill="zeros"`` writes a sparse file (the data
section is a hole; all-zero blocks are valid) for memory-only checks at no disk cost.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from workbench.errors import ModelError
from workbench.models.gguf_info import (
    DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGUFError,
    GGUFHeader,
    ModelInfo,
    TensorInfo,
    read_header,
)
from workbench.models.twin_catalog import (
    ARRAY,
    BOOL,
    CATALOG,
    KV,
    STRING,
    TwinConfig,
    assign_types,
    catalog_config,
    layout,
    synthetic_vocab_kvs,
)
from workbench.paths import twins_dir

if TYPE_CHECKING:
    import polars as pl

Fill = Literal["random", "zeros"]
TWIN_KEY = "workbench.twin"
TWIN_SOURCE_KEY = "workbench.twin.source"
TWIN_FILL_KEY = "workbench.twin.fill"
_CHUNK = 8 << 20
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_REMOTE_FIRST = 1 << 20
_REMOTE_MAX = 256 << 20


class TwinError(ModelError):
    """A twin cannot be built; the message is one line naming the cause."""


# --------------------------------------------------------------------------- raw header


class _Recorder(io.RawIOBase):
    """Wraps a stream and keeps every byte read (a header is a few MB at most)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.data = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.data += b
        return b


@dataclass(frozen=True)
class RawHeader:
    """A source header: parsed, plus each metadata entry's exact bytes."""

    header: GGUFHeader
    entries: tuple[tuple[str, bytes], ...]
    """(key, the entry's bytes: key string, type and value) in file order."""


def _skip_value(buf: bytes, pos: int, vtype: int) -> int:
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if vtype in sizes:
        return pos + sizes[vtype]
    if vtype == 8:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == 9:
        sub, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if sub in sizes:
            return pos + n * sizes[sub]
        for _ in range(n):
            pos = _skip_value(buf, pos, sub)
        return pos
    raise GGUFError(f"unknown value type {vtype} at byte {pos}")


def read_raw_header(f: BinaryIO) -> RawHeader:
    """Parse a header from a stream, keeping the metadata entries' bytes.

    Raises:
        GGUFError: not a GGUF file, or truncated.
    """
    rec = _Recorder(f)
    header = read_header(rec)  # type: ignore[arg-type]
    buf = bytes(rec.data)
    (n_kv,) = struct.unpack_from("<Q", buf, 16)
    pos, entries = 24, []
    for _ in range(n_kv):
        start = pos
        (klen,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8 : pos + 8 + klen].decode("utf-8", errors="replace")
        (vtype,) = struct.unpack_from("<I", buf, pos + 8 + klen)
        pos = _skip_value(buf, pos + 12 + klen, vtype)
        entries.append((key, buf[start:pos]))
    return RawHeader(header, tuple(entries))


# --------------------------------------------------------------------------- serializing


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


_PACK = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
         11: "<q", 12: "<d"}  # fmt: skip


def _value(vtype: int, value: Any, sub: int | None = None) -> bytes:
    if vtype == STRING:
        return _str(value)
    if vtype == ARRAY:
        assert sub is not None
        head = struct.pack("<IQ", sub, len(value))
        if sub == STRING:
            return head + b"".join(_str(v) for v in value)
        return head + struct.pack("<" + _PACK[sub][1] * len(value), *value)
    return struct.pack(_PACK[vtype], value)


def kv_bytes(kv: KV) -> bytes:
    """One metadata entry as GGUF bytes."""
    return _str(kv.key) + struct.pack("<I", kv.vtype) + _value(kv.vtype, kv.value, kv.sub)


def marker_entries(source: str, fill: Fill) -> list[tuple[str, bytes]]:
    """The metadata a twin adds to its source's: the twin flag, source and fill."""
    kvs = [KV(TWIN_KEY, BOOL, True), KV(TWIN_SOURCE_KEY, STRING, source),
           KV(TWIN_FILL_KEY, STRING, fill)]  # fmt: skip
    return [(kv.key, kv_bytes(kv)) for kv in kvs]


def _tensor_info_bytes(t: TensorInfo) -> bytes:
    return (
        _str(t.name)
        + struct.pack("<I", len(t.shape))
        + struct.pack(f"<{len(t.shape)}Q", *t.shape)
        + struct.pack("<IQ", t.ggml_type, t.offset)
    )


# --------------------------------------------------------------------------- data fill

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


def _float_values(name: str, n: int, rng: Any) -> Any:
    """Plausible values for an unquantized tensor (norms near 1, decays negative, ...)."""
    import numpy as np

    if "norm" in name:
        return 1.0 + rng.normal(0.0, 0.02, n).astype(np.float32)
    if name.endswith(".scale") or "rope_freqs" in name or "layer_output_scale" in name:
        return np.ones(n, dtype=np.float32)
    if name.endswith("ssm_a"):
        return -rng.uniform(0.5, 1.5, n).astype(np.float32)
    if "ssm_conv1d" in name:
        return rng.normal(0.0, 0.2, n).astype(np.float32)
    return rng.normal(0.0, 0.02, n).astype(np.float32)


def _write_float(f: BinaryIO, t: TensorInfo, rng: Any, pool: Any = None) -> None:
    import numpy as np

    kind, n = t.type_name, t.n_elements
    step = _CHUNK // 4
    for start in range(0, n, step):
        v = _float_values(t.name, min(step, n - start), rng)
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


def _write_quant(f: BinaryIO, t: TensorInfo, rng: Any, pool: Any) -> None:
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

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


def _is_float(t: TensorInfo) -> bool:
    return t.type_name in ("F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64")


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class TwinResult:
    """What :func:`build_twin` wrote."""

    path: Path
    source: str
    arch: str
    n_tensors: int
    data_bytes: int
    """Bytes of tensor data (what llama.cpp maps)."""
    file_bytes: int
    """Apparent file size (a zero-filled twin occupies almost no disk)."""
    fill: str


def write_gguf(
    out: str | Path,
    entries: Sequence[tuple[str, bytes]],
    tensors: Sequence[TensorInfo],
    *,
    version: int = 3,
    alignment: int = DEFAULT_ALIGNMENT,
    fill: Fill = "random",
    seed: int = 0,
    data_size: int | None = None,
) -> int:
    """Write a GGUF file from raw metadata entries and tensor descriptors, streaming data.

    Tensors are written at their ``offset`` (relative to the aligned data section); the
    data section is padded to ``data_size`` (default: the end of the last tensor, aligned).
    The file is written beside ``out`` and renamed into place.

    Returns:
        The file size in bytes.
    """
    import numpy as np

    if fill not in ("random", "zeros"):
        raise TwinError(f"fill must be 'random' or 'zeros', not {fill!r}")
    rng = np.random.default_rng(seed)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytearray(GGUF_MAGIC + struct.pack("<IQQ", version, len(tensors), len(entries)))
    for _, raw in entries:
        head += raw
    for t in tensors:
        head += _tensor_info_bytes(t)
    data_offset = (len(head) + alignment - 1) // alignment * alignment
    head += bytes(data_offset - len(head))
    end = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_size is None:
        data_size = (end + alignment - 1) // alignment * alignment
    total = data_offset + max(data_size, end)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(head)
            if fill == "random":
                pool = np.frombuffer(rng.bytes(2 * _CHUNK), np.uint8)
                for t in sorted(tensors, key=lambda t: t.offset):
                    gap = data_offset + t.offset - f.tell()
                    if gap < 0:
                        raise TwinError(f"{t.name}: tensor overlaps the one before it")
                    f.write(bytes(gap))
                    (_write_float if _is_float(t) else _write_quant)(f, t, rng, pool)
            f.truncate(total)  # zeros: the data section stays a hole (a sparse file)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return total


def _sequential(
    tensors: Iterable[tuple[str, tuple[int, ...], int]], align: int
) -> list[TensorInfo]:
    """Tensor descriptors laid out one after another, each aligned."""
    out, off = [], 0
    for name, shape, gtype in tensors:
        t = TensorInfo(name, shape, gtype, off)
        out.append(t)
        off = (off + t.n_bytes + align - 1) // align * align
    return out


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
    markers = marker_entries(source, fill)
    drop = {TWIN_KEY, TWIN_SOURCE_KEY, TWIN_FILL_KEY}
    if len(raws) == 1:
        entries = [e for e in first.entries if e[0] not in drop] + markers
        tensors = list(first.header.tensors)
        data_size = None
    else:
        drop |= {k for k, _ in first.entries if k.startswith("split.")}
        entries = [e for e in first.entries if e[0] not in drop] + markers
        tensors = _sequential(
            ((t.name, t.shape, t.ggml_type) for r in raws for t in r.header.tensors), align
        )
        data_size = None
    size = write_gguf(
        out, entries, tensors, version=first.header.version, alignment=align, fill=fill,
        seed=seed, data_size=data_size,
    )  # fmt: skip
    return TwinResult(
        Path(out), source, str(meta.get("general.architecture", "unknown")), len(tensors),
        sum(t.n_bytes for t in tensors), size, fill,
    )  # fmt: skip


# --------------------------------------------------------------------------- local files


def _split_parts(path: Path) -> list[Path]:
    m = _SPLIT.search(path.name)
    if m is None:
        return [path]
    n = int(m.group(2))
    stem = path.name[: m.start()]
    parts = [path.with_name(f"{stem}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]
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


# --------------------------------------------------------------------------- remote files


class RangeReader(io.RawIOBase):
    """A forward-only stream over a remote file, fetched with HTTP Range requests.

    The first request asks for ``first`` bytes; each later one for twice the previous,
    so a header of H bytes costs at most about 2H bytes and a handful of requests. A server
    that ignores the Range end (or Range altogether) is read only as far as needed.
    """

    def __init__(self, url: str, headers: dict[str, str], *, first: int = _REMOTE_FIRST,
                 limit: int = _REMOTE_MAX) -> None:  # fmt: skip
        self.url = url
        self.headers = headers
        self.next_size = first
        self.limit = limit
        self.buf = bytearray()
        self.pos = 0
        self.fetched = 0
        """Bytes received from the server."""
        self.requests = 0
        self.size: int | None = None

    def readable(self) -> bool:
        return True

    def _fetch(self) -> None:
        from huggingface_hub.utils import get_session

        start = len(self.buf)
        if self.size is not None and start >= self.size:
            return
        if start >= self.limit:
            raise TwinError(f"header larger than {self.limit >> 20} MiB; not a GGUF model?")
        want = self.next_size
        self.next_size *= 2
        hdrs = {**self.headers, "Range": f"bytes={start}-{start + want - 1}"}
        self.requests += 1
        got = bytearray()
        with get_session().stream("GET", self.url, headers=hdrs, follow_redirects=True) as r:
            if r.status_code == 416:
                self.size = start
                return
            r.raise_for_status()
            skip = start if r.status_code == 200 else 0
            cr = r.headers.get("Content-Range", "")
            if "/" in cr and cr.rsplit("/", 1)[1].isdigit():
                self.size = int(cr.rsplit("/", 1)[1])
            for chunk in r.iter_bytes():
                self.fetched += len(chunk)
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                got += chunk
                if len(got) >= want:
                    break
        if not got:
            self.size = start
        self.buf += got[:want]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise TwinError("RangeReader reads a bounded number of bytes at a time")
        while len(self.buf) - self.pos < n:
            before = len(self.buf)
            self._fetch()
            if len(self.buf) == before:
                break
        b = bytes(self.buf[self.pos : self.pos + n])
        self.pos += len(b)
        return b


@dataclass(frozen=True)
class RemoteHeaders:
    """Headers read from the hub, and what it cost."""

    repo: str
    paths: tuple[str, ...]
    headers: tuple[RawHeader, ...]
    bytes_fetched: int
    requests: int


def read_remote_headers(
    spec: str,
    *,
    quant: str | None = None,
    revision: str = "main",
    endpoint: str | None = None,
) -> RemoteHeaders:
    """Header(s) of a GGUF model in a hub repository, fetched with Range requests only.

    Args:
        spec: ``owner/repo:FILE.gguf``, ``owner/repo:QUANT`` or a hub catalog name
            (``gemma-4-e4b:Q4_K_M``); see :func:`workbench.models.hub.parse_spec`.
        quant: quantization when ``spec`` names neither a file nor one.
        revision: branch, tag or commit.
        endpoint: hub URL (default $HF_ENDPOINT or https://huggingface.co).

    Raises:
        TwinError: unknown repository or file, or not a GGUF header.
    """
    from huggingface_hub import hf_hub_url

    from workbench.models import hub

    try:
        ps = hub.parse_spec(spec.removeprefix("hf:"), quant=quant)
        settings = hub.HubSettings.from_env(endpoint=endpoint)
        if ps.filename:
            files = [ps.filename]
            m = _SPLIT.search(ps.filename)
            if m and int(m.group(2)) > 1:
                listing = hub.list_remote_files(ps.repo, revision=revision, settings=settings)
                group = next(g for g in hub.group_gguf_files(listing)
                             if ps.filename in {p.path for p in g.parts})  # fmt: skip
                files = [p.path for p in group.parts]
        else:
            listing = hub.list_remote_files(ps.repo, revision=revision, settings=settings)
            groups = [g for g in hub.group_gguf_files(listing) if g.complete]
            want = (ps.quant or "").upper()
            pick = [g for g in groups if g.quant == want] if want else [
                g for g in groups if g.quant in hub.PREFERRED_QUANTS
            ]  # fmt: skip
            if not pick:
                have = ", ".join(sorted({str(g.quant) for g in groups})) or "none"
                raise TwinError(f"{ps.repo} has no {want or 'Q4_K_M'} GGUF file (has: {have})")
            files = [p.path for p in pick[0].parts]
    except hub.HubError as e:
        raise TwinError(str(e)) from None
    except StopIteration:
        raise TwinError(f"{spec}: the repository does not list that file") from None
    from huggingface_hub.utils import build_hf_headers

    auth = dict(build_hf_headers(library_name="workbench"))
    raws, fetched, requests = [], 0, 0
    for path in files:
        url = hf_hub_url(ps.repo, path, revision=revision, endpoint=settings.endpoint)
        reader = RangeReader(url, auth)
        try:
            raws.append(read_raw_header(reader))  # type: ignore[arg-type]
        except GGUFError as e:
            raise TwinError(f"{ps.repo}/{path}: {e}") from None
        except Exception as e:
            if type(e).__module__.startswith(("httpx", "huggingface_hub")):
                raise TwinError(f"{ps.repo}/{path}: {type(e).__name__}: {str(e)[:160]}") from None
            raise
        fetched += reader.fetched
        requests += reader.requests
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


# --------------------------------------------------------------------------- catalog


def catalog_headers(cfg: TwinConfig, quant: str = "Q4_K_M") -> tuple[list[KV], list[TensorInfo]]:
    """Metadata and tensor descriptors of a catalog twin (nothing written)."""
    from gguf import GGMLQuantizationType

    from workbench.models.twin_catalog import PRESETS
    from workbench.models.twin_catalog import UINT32 as U32

    if quant.upper() not in PRESETS:
        raise TwinError(f"unknown quantization {quant!r}; known: {', '.join(PRESETS)}")
    quant = quant.upper()
    arch_kvs, specs = layout(cfg)
    n_expert = int(cfg.extra.get("n_expert", 0))
    types = assign_types(specs, quant, n_layer=cfg.n_layer, n_expert=n_expert)
    kvs = [
        KV("general.architecture", STRING, cfg.arch),
        KV("general.name", STRING, cfg.title),
        KV("general.file_type", U32, PRESETS[quant][1]),
        KV("general.quantization_version", U32, 2),
        *arch_kvs,
        *synthetic_vocab_kvs(cfg.n_vocab),
    ]
    tensors = _sequential(
        (
            (s.name, s.shape, int(GGMLQuantizationType[t]))
            for s, t in zip(specs, types, strict=False)
        ),
        DEFAULT_ALIGNMENT,
    )
    return kvs, tensors


def twin_from_catalog(
    name: str,
    out: str | Path,
    *,
    quant: str = "Q4_K_M",
    fill: Fill = "random",
    seed: int = 0,
) -> TwinResult:
    """Twin of a published configuration (``gemma-4-26b-a4b``, ``qwen3.5-35b-a3b``, ...)."""
    cfg = catalog_config(name)
    if cfg is None:
        from workbench.models.twin_catalog import CATALOG

        known = ", ".join(c.name for c in CATALOG)
        raise TwinError(f"no published configuration {name!r}; known: {known}")
    kvs, tensors = catalog_headers(cfg, quant)
    source = f"catalog:{cfg.name}:{quant.upper()}"
    entries = [(kv.key, kv_bytes(kv)) for kv in kvs] + marker_entries(source, fill)
    size = write_gguf(out, entries, tensors, fill=fill, seed=seed)
    return TwinResult(Path(out), source, cfg.arch, len(tensors),
                      sum(t.n_bytes for t in tensors), size, fill)  # fmt: skip


# --------------------------------------------------------------------------- front door


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

    ``source`` is ``catalog:NAME`` (or a bare catalog name), an existing .gguf path, or a
    hub spec (``owner/repo:FILE.gguf``, ``owner/repo:QUANT``, ``hf:...``, a hub catalog
    name). ``quant`` picks the preset for catalog twins (default Q4_K_M) and the file for
    hub repositories; a local or named file keeps its own types.
    """
    s = str(source)
    cfg = catalog_config(s) if not s.startswith("hf:") else None
    if s.startswith(("catalog:", "twin:")) or (cfg is not None and not Path(s).exists()):
        base, _, q = s.removeprefix("catalog:").removeprefix("twin:").partition(":")
        return twin_from_catalog(base, out, quant=(quant or q or "Q4_K_M"), fill=fill, seed=seed)
    p = Path(s).expanduser()
    if p.exists():
        if quant:
            raise TwinError("--quant applies to catalog and hub sources; a file keeps its types")
        return twin_from_file(p, out, fill=fill, seed=seed)
    if s.endswith(".gguf") and ":" not in s:
        raise TwinError(f"model file not found: {p}")
    return twin_from_hub(s, out, quant=quant, revision=revision, endpoint=endpoint,
                         fill=fill, seed=seed)[0]  # fmt: skip


def _cache_name(spec: str, fill: Fill) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")[:80]
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    return f"{slug}-{digest}-{fill}.gguf"


def resolve_twin(name_or_path: str | Path, *, fill: Fill = "random", seed: int = 0) -> Path:
    """A twin's path, built on first use and cached under :func:`twins_dir`.

    Accepts ``twin:NAME[:QUANT]`` / ``catalog:NAME[:QUANT]`` (published configurations),
    ``twin:PATH.gguf`` (a twin of a local file, rebuilt when the file changes),
    ``twin:owner/repo:FILE.gguf`` (hub header only), or a path to a file that is
    already a twin (returned as is).

    Raises:
        TwinError: unknown configuration, unreadable source.
    """
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.is_file() and not s.startswith(("twin:", "catalog:")):
        from workbench.models.gguf_info import read_model_info

        if read_model_info(p, check_size=False).is_twin:
            return p
        raise TwinError(f"{p.name} is not a twin; name it as twin:{p} to build one")
    body = s.removeprefix("twin:")
    key = body
    local = Path(body).expanduser()
    if local.is_file():
        st = local.stat()
        key = f"{local.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    elif catalog_config(body.partition(":")[0]) is not None and not body.startswith("catalog:"):
        body = "catalog:" + body
        key = body if body.count(":") > 1 else body + ":Q4_K_M"
    target = twins_dir() / _cache_name(key, fill)
    if target.exists():
        return target
    build_twin(body, target, fill=fill, seed=seed)
    return target


def describe(result: TwinResult) -> dict[str, Any]:
    """A JSON-ready summary of a written twin."""
    return {
        "path": str(result.path),
        "source": result.source,
        "arch": result.arch,
        "n_tensors": result.n_tensors,
        "data_bytes": result.data_bytes,
        "file_bytes": result.file_bytes,
        "fill": result.fill,
    }


# --------------------------------------------------------------------------- llama.cpp check

_PROBE = r"""
import sys
import llama_cpp.llama_cpp as ll
from llama_cpp import Llama

_default = ll.llama_model_default_params


def _params():
    p = _default()
    p.use_extra_bufts = False  # no CPU repack copies: weights stay in the mapping
    return p


ll.llama_model_default_params = _params
path, ctx, swa_full, fa = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
Llama(path, n_ctx=ctx, n_threads=1, n_batch=512, n_ubatch=512, use_mmap=True, verbose=True,
      swa_full=swa_full, flash_attn=fa)
print("PROBE-OK", file=sys.stderr)
"""


@dataclass(frozen=True)
class LlamaMemory:
    """Cache buffers llama.cpp reported allocating for one context."""

    kv_bytes: int
    """Sum of every "KV buffer size" line (full and sliding-window caches)."""
    state_bytes: int
    """Sum of the "RS buffer size" lines (recurrent state)."""
    resolution: int
    """The log prints MiB with 2 decimals: each figure is exact to this many bytes."""


def llama_cpp_memory(
    path: str | Path,
    ctx: int = 4096,
    *,
    swa_full: bool = False,
    flash_attn: bool = False,
    timeout: float = 600.0,
) -> LlamaMemory:
    """Load ``path`` in a llama-cpp-python subprocess (mmap, no repacking, so weights are
    mapped, not copied) and return the KV / recurrent-state buffer sizes it logs.

    Raises:
        TwinError: the load failed; the message carries the last log line.
    """
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(ctx), str(int(swa_full)),
         str(int(flash_attn))],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    log = proc.stderr
    if proc.returncode != 0 or "PROBE-OK" not in log:
        tail = [ln for ln in log.splitlines() if ln.strip()][-1:] or ["no output"]
        raise TwinError(f"llama.cpp could not load {Path(path).name}: {tail[0][:200]}")
    mib = 1024 * 1024

    def total(what: str) -> int:
        vals = re.findall(rf"{what} buffer size =\s*([0-9.]+) MiB", log)
        return round(sum(float(v) for v in vals) * mib)

    return LlamaMemory(total("KV"), total("RS"), int(0.005 * mib) + 1)


def catalog_info(name: str, quant: str = "Q4_K_M") -> ModelInfo:
    """A catalog model's :class:`ModelInfo`, from its published configuration alone: what
    the planner needs to answer "how much context fits" before anything is downloaded."""
    from workbench.models.gguf_info import GGUFHeader, model_info_from_header

    cfg = catalog_config(name.removeprefix("catalog:").removeprefix("twin:"))
    if cfg is None:
        raise TwinError(f"no published configuration named {name!r}")
    kvs, tensors = catalog_headers(cfg, quant)
    meta: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for kv in kvs:
        if isinstance(kv.value, list | tuple):
            lengths[kv.key] = len(kv.value)
            if kv.key.startswith("tokenizer.ggml."):
                continue
        meta[kv.key] = list(kv.value) if isinstance(kv.value, tuple) else kv.value
    header = GGUFHeader(3, meta, tensors, 0, lengths)
    size = header.data_bytes
    return model_info_from_header(header, Path(f"{cfg.name}-{quant}.gguf"), size)


def catalog_frame(
    budget_bytes: int | float, *, quant: str = "Q4_K_M", ctx: int = 32768
) -> pl.DataFrame:
    """Every catalog model's weights, KV cache per token, memory at ``ctx`` and the largest
    context that fits ``budget_bytes`` (planner figures, f16 KV, flash attention auto)."""
    import polars as pl

    from workbench.models import memory

    rows = []
    for cfg in CATALOG:
        info = catalog_info(cfg.name, quant)
        p = memory.plan(info, min(ctx, info.n_ctx_train or ctx))
        rows.append({
            "model": cfg.name,
            "arch": info.arch,
            "params_b": info.params / 1e9,
            "weights_gib": p.weights_bytes / 2**30,
            "kv_kib_per_token": p.kv_bytes_per_token / 1024,
            f"total_gib_at_{ctx}": p.total_bytes / 2**30,
            "max_ctx_in_budget": memory.max_context(info, budget_bytes),
            "n_ctx_train": info.n_ctx_train,
        })  # fmt: skip
    return pl.DataFrame(rows)
