"""The GGUF layer: reading headers (local or remote), writing files, file names, and the
KV-cache type table, built on the ``gguf`` package's enums and block sizes.

- :mod:`workbench.gguf.reader`: the fast header parser (raw entries kept on request);
- :mod:`workbench.gguf.info`: :class:`ModelInfo`, what a header says about a model;
- :mod:`workbench.gguf.writer`: metadata entries, descriptors and streamed tensor data;
- :mod:`workbench.gguf.names`: split-file names and quantization names;
- :mod:`workbench.gguf.kv_cache`: the KV-cache types llama.cpp accepts;
- :mod:`workbench.gguf.remote`: incremental Range reads and one-line hub failures.
"""

from workbench.gguf.info import (
    REQUIRED_KEYS,
    TWIN_KEY,
    ModelInfo,
    model_info_from_header,
    read_model_info,
    validate_header,
)
from workbench.gguf.kv_cache import KV_CACHE_TYPES, UnknownKVCacheType, kv_block, kv_cache_type
from workbench.gguf.names import (
    SplitName,
    is_later_split_part,
    quant_from_header,
    quant_of,
    split_name,
    unsplit,
)
from workbench.gguf.reader import (
    DEFAULT_ALIGNMENT,
    GGUFError,
    GGUFHeader,
    RawHeader,
    TensorInfo,
    read_header,
    read_raw_header,
)
from workbench.gguf.remote import (
    OFFLINE_HINT,
    HubRefused,
    HubUnreachable,
    RangeReader,
    RemoteHeader,
    hub_failure,
    read_remote_header,
)
from workbench.gguf.writer import MetaEntry, entry_bytes, sequential, write_gguf

__all__ = [
    "DEFAULT_ALIGNMENT",
    "KV_CACHE_TYPES",
    "OFFLINE_HINT",
    "REQUIRED_KEYS",
    "TWIN_KEY",
    "GGUFError",
    "GGUFHeader",
    "HubRefused",
    "HubUnreachable",
    "MetaEntry",
    "ModelInfo",
    "RangeReader",
    "RawHeader",
    "RemoteHeader",
    "SplitName",
    "TensorInfo",
    "UnknownKVCacheType",
    "entry_bytes",
    "hub_failure",
    "is_later_split_part",
    "kv_block",
    "kv_cache_type",
    "model_info_from_header",
    "quant_from_header",
    "quant_of",
    "read_header",
    "read_model_info",
    "read_raw_header",
    "read_remote_header",
    "sequential",
    "split_name",
    "unsplit",
    "validate_header",
    "write_gguf",
]
