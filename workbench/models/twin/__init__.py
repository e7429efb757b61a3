"""Synthetic twins: GGUF files with a real model's layout and random (or zero) weights.

A twin has exactly the source's tensor names, shapes and types and all of its metadata
(copied byte for byte), plus a marker (``workbench.twin`` = true,
``workbench.twin.source``), so llama.cpp allocates, reads and computes exactly as much
per token as for the real model: speed and memory measured on a twin are the real
model's, without downloading its weights. Answers are noise, so workbench refuses a
twin in answer comparisons and arenas (:attr:`ModelInfo.is_twin`).

Modules: :mod:`~workbench.models.twin.sources` (twins of a local file or a hub file's
header), :mod:`~workbench.models.twin.catalog` (twins of a catalog model's published
configuration, ``twin:NAME``), :mod:`~workbench.models.twin.fill` (the data),
:mod:`~workbench.models.twin.quant` (llama-quantize's type mix),
:mod:`~workbench.models.twin.build` (the front door and the twin cache) and
:mod:`~workbench.models.twin.probe` (llama.cpp's own buffer sizes).
"""

from workbench.gguf import TWIN_KEY
from workbench.models.twin.base import (
    TWIN_FILL_KEY,
    TWIN_SOURCE_KEY,
    Fill,
    TwinError,
    TwinResult,
    describe,
    marker_entries,
)
from workbench.models.twin.build import build_twin, resolve_projector_twin, resolve_twin
from workbench.models.twin.catalog import (
    CatalogHeader,
    catalog_frame,
    catalog_headers,
    catalog_info,
    synthetic_vocab_entries,
    twin_entries,
    twin_from_catalog,
)
from workbench.models.twin.fill import write_twin
from workbench.models.twin.probe import LlamaMemory, llama_cpp_memory
from workbench.models.twin.quant import PRESETS, assign_types
from workbench.models.twin.sources import (
    RemoteHeaders,
    read_local_headers,
    read_remote_headers,
    twin_from_file,
    twin_from_headers,
    twin_from_hub,
)

__all__ = [
    "PRESETS",
    "TWIN_FILL_KEY",
    "TWIN_KEY",
    "TWIN_SOURCE_KEY",
    "CatalogHeader",
    "Fill",
    "LlamaMemory",
    "RemoteHeaders",
    "TwinError",
    "TwinResult",
    "assign_types",
    "build_twin",
    "catalog_frame",
    "catalog_headers",
    "catalog_info",
    "describe",
    "llama_cpp_memory",
    "marker_entries",
    "read_local_headers",
    "read_remote_headers",
    "resolve_projector_twin",
    "resolve_twin",
    "synthetic_vocab_entries",
    "twin_entries",
    "twin_from_catalog",
    "twin_from_file",
    "twin_from_headers",
    "twin_from_hub",
    "write_twin",
]
