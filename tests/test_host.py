"""The memory budget follows a container's limit (cgroup v2 and v1 file trees as the
kernel lays them out), and the idle-release setting."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from workbench.errors import InputError
from workbench.host import (
    BUDGET_FRACTION,
    IDLE_RELEASE_MINUTES,
    cgroup_memory_limit,
    default_budget_bytes,
    idle_release_s,
    usable_memory_bytes,
)

GIB = 2**30


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_limit_of_the_process_cgroup_and_its_parents(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-self-cgroup"
    _write(proc, "0::/kubepods/pod1/container")
    _write(root / "kubepods" / "memory.max", "max")
    _write(root / "kubepods" / "pod1" / "memory.max", str(2 * GIB))
    _write(root / "kubepods" / "pod1" / "container" / "memory.max", "max")
    assert cgroup_memory_limit(root, proc) == 2 * GIB  # the pod's limit binds the container
    _write(root / "kubepods" / "pod1" / "container" / "memory.max", str(GIB))
    assert cgroup_memory_limit(root, proc) == GIB


def test_cgroup_v2_namespaced_container_sees_its_limit_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-self-cgroup"
    _write(proc, "0::/")
    _write(root / "memory.max", "2147483648")  # Binder's 2 GiB, as Docker shows it
    assert cgroup_memory_limit(root, proc) == 2 * GIB
    _write(root / "memory.max", "max")
    assert cgroup_memory_limit(root, proc) is None


def test_cgroup_v1_limit_and_its_unlimited_marker(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-self-cgroup"
    _write(proc, "12:cpu,cpuacct:/\n4:memory:/docker/abc\n1:name=systemd:/docker/abc")
    unlimited = "9223372036854771712"  # what v1 reports without a limit
    _write(root / "memory" / "memory.limit_in_bytes", unlimited)
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", unlimited)
    assert cgroup_memory_limit(root, proc) is None
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", str(3 * GIB))
    assert cgroup_memory_limit(root, proc) == 3 * GIB


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_memory_limit(tmp_path / "none", tmp_path / "none-either") is None
    _write(tmp_path / "proc", "garbage without colons")
    _write(tmp_path / "cg" / "memory.max", "not a number")
    assert cgroup_memory_limit(tmp_path / "cg", tmp_path / "proc") is None


def test_this_machine_budget_is_a_share_of_what_it_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKBENCH_MEMORY_GIB", raising=False)
    usable = usable_memory_bytes()
    assert 0 < usable <= psutil.virtual_memory().total
    limit = cgroup_memory_limit()
    if limit is not None:
        assert usable <= limit
    assert default_budget_bytes() == int(usable * BUDGET_FRACTION)
    monkeypatch.setenv("WORKBENCH_MEMORY_GIB", "1.5")
    assert default_budget_bytes() == int(1.5 * GIB)


def test_idle_release_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_IDLE_MINUTES", raising=False)
    assert idle_release_s() == IDLE_RELEASE_MINUTES * 60
    monkeypatch.setenv("WORKBENCH_IDLE_MINUTES", "2.5")
    assert idle_release_s() == 150
    monkeypatch.setenv("WORKBENCH_IDLE_MINUTES", "0")
    assert idle_release_s() is None
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("WORKBENCH_IDLE_MINUTES", bad)
        with pytest.raises(InputError, match="WORKBENCH_IDLE_MINUTES must be"):
            idle_release_s()
