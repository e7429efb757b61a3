"""Reading llama.cpp's log: why a child failed, what it allocated, what it chose.

Every llama.cpp child (generation worker, bench process, memory probe) writes its
stdout and stderr to a log file (see :mod:`workbench.llama.process`); these functions
turn that text into one-line causes and figures. No other module parses llama.cpp's log.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

# Lines of llama.cpp's log that say why a load or decode failed, most specific first.
_CAUSES = (
    re.compile(r"GGML_ASSERT\(.*?\) failed"),
    re.compile(r"GGML_ABORT.*|.*(?:terminate called|what\(\)).*"),
    re.compile(r"error loading model:\s*(.*)"),
    re.compile(r".*(?:error|failed|out of memory).*", re.IGNORECASE),
)
# The last line of a Python traceback: "ModuleNotFoundError: No module named 'x'".
_PY_ERROR = re.compile(r"^(?:[A-Za-z_][\w.]*)(?:Error|Exception|Exit|Interrupt)\b.*$", re.M)
# llama_kv_cache / llama_memory_recurrent: "CPU KV buffer size =    72.00 MiB"
_BUFFER = re.compile(r"\b(KV|RS) buffer size\s*=\s*([\d.]+) MiB")
# clip.cpp (mtmd) loading a projector: "load_hparams: model size:  0.43 MiB"
_PROJECTOR_SIZE = re.compile(r"load_hparams: model size:\s*([\d.]+) MiB")
# Flash attention, in the order llama.cpp decides it (llama-context.cpp).
_FA_FORCED_ON = re.compile(r"enabling flash_attn since")
_FA_FORCED_OFF = re.compile(r"flash_attn is not compatible with .* forcing off")
_FA_RESOLVED = re.compile(r"Flash Attention (enabled|not supported)")
_FA_SETTING = re.compile(r"flash_attn\s*=\s*(enabled|disabled)\b")

MIB = 1024 * 1024
BUFFER_RESOLUTION_BYTES = int(0.005 * MIB) + 1
"""llama.cpp prints buffer sizes in MiB with two decimals: each is exact to this."""


def failure_cause(log: str) -> str | None:
    """The most specific failure line of a llama.cpp log (an assertion beats a generic
    "failed to load"), or None."""
    for pattern in _CAUSES:
        m = pattern.search(log)
        if m:
            return (m.group(1) if m.groups() else m.group(0)).strip()
    return None


def python_failure(log: str) -> str | None:
    """The exception line of the last Python traceback in ``log`` (a failure of
    workbench's own child code, not of llama.cpp), or None."""
    _, sep, tail = log.rpartition("Traceback (most recent call last):")
    if not sep:
        return None
    lines = _PY_ERROR.findall(tail)
    return lines[-1].strip() if lines else None


def exit_description(code: int | None) -> str:
    """A process exit code as people read it: SIGABRT, signal 99, exit status 1."""
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


@dataclass(frozen=True)
class Buffers:
    """The cache buffers llama.cpp logged allocating for one context."""

    kv_mib: tuple[float, ...]
    """Every "KV buffer size" line in log order: the full-attention cache, then the
    sliding-window cache of SWA models."""
    rs_mib: tuple[float, ...]
    """Every "RS buffer size" line (recurrent state)."""

    @property
    def kv_bytes(self) -> int:
        return round(sum(self.kv_mib) * MIB)

    @property
    def rs_bytes(self) -> int:
        return round(sum(self.rs_mib) * MIB)


def buffers(log: str) -> Buffers:
    """KV-cache and recurrent-state buffer sizes from a llama.cpp log excerpt."""
    kv: list[float] = []
    rs: list[float] = []
    for what, mib in _BUFFER.findall(log):
        (kv if what == "KV" else rs).append(float(mib))
    return Buffers(tuple(kv), tuple(rs))


def flash_attn_used(log: str, requested: bool | None) -> bool | None:
    """Whether llama.cpp ran the context with flash attention, from its log: a setting
    it forced, what "auto" resolved to, or the setting it printed; else ``requested``
    (None when that was "auto" and the log does not say)."""
    if _FA_FORCED_ON.search(log):
        return True
    if _FA_FORCED_OFF.search(log):
        return False
    resolved = _FA_RESOLVED.findall(log)
    if resolved:
        return resolved[-1] == "enabled"
    setting = _FA_SETTING.findall(log)
    if setting:
        return setting[-1] == "enabled"
    return requested


def projector_bytes(log: str) -> int | None:
    """The projector's weight bytes llama.cpp's clip loader printed (two decimals of MiB:
    exact to :data:`BUFFER_RESOLUTION_BYTES`), None when no projector was loaded."""
    found = _PROJECTOR_SIZE.findall(log)
    return round(float(found[-1]) * MIB) if found else None
