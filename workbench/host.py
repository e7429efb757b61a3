"""A short description of the machine, stored with every result row."""

from __future__ import annotations

import functools
import math
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from workbench.errors import InputError


@dataclass(frozen=True)
class HostInfo:
    """The hardware a figure was measured on."""

    cpu: str
    """CPU model name."""
    physical_cores: int
    logical_cores: int
    ram_bytes: int
    gpu: str | None
    """GPU names and memory (nvidia-smi), None when there is none."""
    os: str
    python: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return "; ".join(line.strip() for line in out.splitlines() if line.strip()) or None


def _cgroup_cpus() -> int | None:
    """CPUs a container may use (cgroup v2 cpu.max), None when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(int(quota) / int(period)))


def physical_cores() -> int:
    """Physical cores this process may use: llama.cpp's tools default to that many
    threads. Respects CPU affinity and a container's CPU quota (Binder gives one or two
    CPUs of a large host), and $WORKBENCH_THREADS when set."""
    env = os.environ.get("WORKBENCH_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        n = min(n, len(os.sched_getaffinity(0)))
    quota = _cgroup_cpus()
    return max(1, min(n, quota) if quota else n)


@functools.cache
def host_info() -> HostInfo:
    """Describe this machine (cached: it does not change within a process)."""
    return HostInfo(
        cpu=_cpu_name(),
        physical_cores=physical_cores(),
        logical_cores=os.cpu_count() or 1,
        ram_bytes=psutil.virtual_memory().total,
        gpu=_gpu(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
    )


_UNLIMITED = 2**60
"""cgroup v1 reports "no limit" as a page-rounded 2**63 - 1; anything this large is none."""


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max" (v2) or garbage
        return None
    value = int(text)
    return value if 0 < value < _UNLIMITED else None


def cgroup_memory_limit(
    root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup"
) -> int | None:
    """The memory limit of this process's container, in bytes; None when there is none.

    Reads cgroup v2 ``memory.max`` and cgroup v1 ``memory.limit_in_bytes`` of the cgroup
    named in ``/proc/self/cgroup`` and of every cgroup above it (a parent's limit binds
    its children too), and returns the smallest. Binder, Docker and Kubernetes set these;
    psutil reports the host's RAM, which a container may never get.

    Args:
        root: where the cgroup file systems are mounted.
        proc_cgroup: the process's cgroup membership file.
    """
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    candidates: list[Path] = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # v2: "0::/path"
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        d = base / rel.strip("/")
        while True:
            candidates.append(d / name)
            if d == base:
                break
            d = d.parent
    limits = [v for v in (_read_limit(p) for p in dict.fromkeys(candidates)) if v is not None]
    return min(limits) if limits else None


BUDGET_FRACTION = 0.75
"""Share of the usable memory (RAM, or the container's limit when lower) that loaded
models may fill by default: the rest is for the kernel, the UI and the OS."""


def usable_memory_bytes() -> int:
    """RAM this process may use: the machine's, or its container's limit when lower."""
    ram = psutil.virtual_memory().total
    limit = cgroup_memory_limit()
    return min(ram, limit) if limit else ram


def default_budget_bytes() -> int:
    """Memory the runner may fill with loaded models: ``BUDGET_FRACTION`` of
    :func:`usable_memory_bytes` (a container's limit counts), or $WORKBENCH_MEMORY_GIB."""
    env = os.environ.get("WORKBENCH_MEMORY_GIB")
    if env:
        return int(float(env) * 2**30)
    return int(usable_memory_bytes() * BUDGET_FRACTION)


IDLE_RELEASE_MINUTES = 10.0
"""Default for :func:`idle_release_s`."""


def idle_release_s() -> float | None:
    """Seconds a notebook panel keeps its models loaded after its last run, so that an
    idle notebook gives its memory back: $WORKBENCH_IDLE_MINUTES (default
    ``IDLE_RELEASE_MINUTES``) in seconds; None when that is 0 (never release).

    Raises:
        InputError: $WORKBENCH_IDLE_MINUTES is not a number of minutes >= 0.
    """
    env = os.environ.get("WORKBENCH_IDLE_MINUTES")
    try:
        minutes = IDLE_RELEASE_MINUTES if env is None or not env.strip() else float(env)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < math.inf:  # also refuses nan
        raise InputError(f"WORKBENCH_IDLE_MINUTES must be a number of minutes >= 0, got {env!r}")
    return minutes * 60 if minutes > 0 else None
