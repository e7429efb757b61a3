"""GGUF repositories on the Hugging Face hub: which files they hold, which one to pull,
and downloads into the hub cache through huggingface_hub.

``pull("gemma-4-e4b")`` lists the repository's GGUF files, picks a quantization that fits
this machine's memory (unless one is named), downloads it (all parts of a split file)
into the Hugging Face hub cache with a progress bar, checks every file's sha256 against
the LFS checksum the hub reports, and returns the local path. An interrupted download
resumes where it stopped (a ``.incomplete`` file beside the blob is kept and continued
with an HTTP Range request); a file whose checksum does not match is deleted, never
placed in the cache. With ``HF_HUB_OFFLINE=1`` (or when the hub cannot be reached) the
same call is answered from what the cache already holds. Every failure is one line
naming the host's answer or the missing network.

A pull is named as ``NAME_OR_REPO[:FILE_OR_QUANT]``:

- ``gemma-4-e4b``: a catalog name (:mod:`workbench.models.catalog`); quantization chosen
  to fit;
- ``gemma-4-e4b:Q8_0`` or ``unsloth/gemma-4-E4B-it-GGUF:Q8_0``: a named quantization;
- ``unsloth/gemma-4-E4B-it-GGUF:gemma-4-E4B-it-Q4_K_M.gguf``: one file (a path in the repo).

Modules: :mod:`~workbench.models.hub.files` (specs, listings, the cache),
:mod:`~workbench.models.hub.choice` (which file), :mod:`~workbench.models.hub.download`.
"""

from workbench.errors import HubError
from workbench.gguf import HubRefused, HubUnreachable, quant_of
from workbench.models.hub.choice import PREFERRED_QUANTS, Choice, choose_file, remote_header_reader
from workbench.models.hub.download import ChecksumError, PulledFile, PullResult, pull, sha256_file
from workbench.models.hub.files import (
    DEFAULT_REVISION,
    GGUFGroup,
    HubSettings,
    PullSpec,
    RemoteFile,
    UnknownSpec,
    auth_headers,
    find_group,
    group_gguf_files,
    list_cached_files,
    list_remote_files,
    parse_spec,
)

__all__ = [
    "DEFAULT_REVISION",
    "PREFERRED_QUANTS",
    "ChecksumError",
    "Choice",
    "GGUFGroup",
    "HubError",
    "HubRefused",
    "HubSettings",
    "HubUnreachable",
    "PullResult",
    "PullSpec",
    "PulledFile",
    "RemoteFile",
    "UnknownSpec",
    "auth_headers",
    "choose_file",
    "find_group",
    "group_gguf_files",
    "list_cached_files",
    "list_remote_files",
    "parse_spec",
    "pull",
    "quant_of",
    "remote_header_reader",
    "sha256_file",
]
