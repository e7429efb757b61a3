"""Servers the tests start on 127.0.0.1: a free port, and llama-cpp-python's own
OpenAI-compatible server on a real model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.backends.openai_http import OpenAIBackend


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_llama_server(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """llama_cpp.server on ``model`` at ``port``, started and answering /v1/models."""
    pytest.importorskip("llama_cpp.server.app", reason="pip install 'llama-cpp-python[server]'")
    from workbench.host import physical_cores

    threads = str(physical_cores())
    # The same settings the in-process backend uses by default: n_ctx 4096, physical
    # cores, flash attention on (llama.cpp's "auto" turns it on for the CPU backend;
    # llama_cpp.server defaults to off, and a different attention kernel changes the
    # greedy answer). No chat_format: the server then uses the GGUF's own template.
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        "--n_threads", threads, "--n_threads_batch", threads, "--flash_attn", "true",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            if OpenAIBackend(f"http://127.0.0.1:{port}/v1", "x").served_models():
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail("llama_cpp.server did not start in 120 s")
