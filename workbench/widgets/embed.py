"""Show a Gradio app (the arena's panel) inside a notebook, wherever the browser runs.

Gradio's own ``launch(inline=True)`` points its iframe at ``http://127.0.0.1:PORT``: the
browser's own machine. That is right for a notebook on your laptop and wrong on
JupyterHub or mybinder.org, where the kernel runs in a container far from the browser.
There the Jupyter server itself proxies the port (jupyter-server-proxy serves
``{base_url}proxy/PORT/``), and Gradio, told that path as its ``root_path``, writes
links that go back through the proxy.

The Jupyter server's base URL comes from ``$JUPYTERHUB_SERVICE_PREFIX``, which
JupyterHub (and so Binder) sets for the server and every kernel it starts; without it
the browser is taken to run on this machine and loads 127.0.0.1 directly.
"""

from __future__ import annotations

import html
import importlib.util
import os
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["InlineApp", "jupyter_base_url", "launch_inline"]


def jupyter_base_url() -> str | None:
    """The base URL of the Jupyter server this kernel belongs to when the browser is on
    another machine (JupyterHub, Binder), else None."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").strip()
    if not prefix:
        return None
    return "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class InlineApp:
    """A launched Gradio app and the address the notebook's browser reaches it at.

    Displaying it (the last expression of a cell) shows the app in an iframe, with a
    link that opens it in a tab of its own.
    """

    app: Any
    """The Gradio Blocks, launched."""
    url: str
    """What the browser loads: the proxied path, or the app's local URL."""
    local_url: str
    """Where the app listens on this machine (http://127.0.0.1:PORT/)."""
    height: int
    """Iframe height in pixels."""
    note: str | None = None
    """Why the browser may not reach the app (no proxy where one is needed), or None."""

    @property
    def proxied(self) -> bool:
        """Whether the browser goes through the Jupyter server's proxy."""
        return self.url != self.local_url

    def close(self) -> None:
        """Stop the app's server."""
        self.app.close()

    def _repr_html_(self) -> str:
        src = html.escape(self.url, quote=True)
        note = (
            f"<div class='wb-inline-note' style='color:var(--jp-warn-color1,#b35900)'>"
            f"{html.escape(self.note)}</div>"
            if self.note
            else ""
        )
        return (
            f"<div class='wb-inline-app'>{note}"
            f"<iframe src='{src}' width='100%' height='{int(self.height)}' frameborder='0'"
            " allow='clipboard-read; clipboard-write'></iframe>"
            f"<div style='font-size:12px'>Open in a tab of its own: "
            f"<a href='{src}' target='_blank' rel='noopener'>{src}</a></div></div>"
        )


def launch_inline(
    app: Any,
    *,
    height: int = 900,
    port: int | None = None,
    base_url: str | None = None,
) -> InlineApp:
    """Launch a Gradio app without blocking and return what shows it in the notebook.

    Args:
        app: Gradio Blocks (e.g. :func:`workbench.arena.build_app`'s).
        height: iframe height in pixels.
        port: the port to listen on, on 127.0.0.1 (default: a free one).
        base_url: the Jupyter server's base URL to proxy through (default:
            :func:`jupyter_base_url`); "" never proxies.

    Returns:
        An :class:`InlineApp`; ``close()`` it (or shut the kernel down) to stop the app.
    """
    port = port or _free_port()
    base = jupyter_base_url() if base_url is None else (base_url or None)
    note = None
    if base is not None and importlib.util.find_spec("jupyter_server_proxy") is None:
        note = (
            "jupyter-server-proxy is not installed, so the panel below is reachable only "
            "from the machine the kernel runs on: pip install jupyter-server-proxy and "
            "restart the Jupyter server."
        )
        base = None
    root_path = f"{base.rstrip('/')}/proxy/{port}" if base is not None else None
    app.launch(
        prevent_thread_lock=True,
        inline=False,
        quiet=True,
        server_port=port,
        root_path=root_path,
    )
    local = str(app.local_url)
    return InlineApp(app, f"{root_path}/" if root_path else local, local, height, note)
