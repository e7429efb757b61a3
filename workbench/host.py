"""A short description of the machine, stored with every result row."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass

import psutil


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


def default_budget_bytes() -> int:
    """Memory the runner may fill with loaded models: 75% of RAM (or WORKBENCH_MEMORY_GIB)."""
    env = os.environ.get("WORKBENCH_MEMORY_GIB")
    if env:
        return int(float(env) * 2**30)
    return int(psutil.virtual_memory().total * 0.75)
