"""Reading why llama.cpp failed, from its log and a process's exit status.

Shared by the generation workers (:mod:`workbench.backends.llama_cpp`) and the bench
processes (:mod:`workbench.bench`): both run llama.cpp in a child whose stderr goes to a
log file, so that an abort can be reported as one line.
"""

from __future__ import annotations

import re
import signal

# Lines of llama.cpp's log that say why a load or decode failed, most specific first.
_CAUSES = (
    re.compile(r"GGML_ASSERT\(.*?\) failed"),
    re.compile(r"GGML_ABORT.*|.*(?:terminate called|what\(\)).*"),
    re.compile(r"error loading model:\s*(.*)"),
    re.compile(r".*(?:error|failed|out of memory).*", re.IGNORECASE),
)


def failure_cause(log: str) -> str | None:
    """The most specific failure line of a llama.cpp log (an assertion beats a generic
    "failed to load"), or None."""
    for pattern in _CAUSES:
        m = pattern.search(log)
        if m:
            return (m.group(1) if m.groups() else m.group(0)).strip()
    return None


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
