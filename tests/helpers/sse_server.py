"""A scripted OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose.

Each test sets ``script``: a function ``(handler, body) -> None`` that writes the answer
(status, headers, SSE lines, or nothing at all). ``requests`` keeps what was received
(headers and JSON body) so a test can check what the client sent. ``gets`` maps a GET
path (``/v1/models``, ``/props``) to the JSON document it answers; any other is a 404.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]


def sse_headers(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Cache-Control", "no-cache")
    h.end_headers()


def sse(h: BaseHTTPRequestHandler, obj: object) -> None:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    h.wfile.write(f"data: {data}\r\n\r\n".encode())
    h.wfile.flush()


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    delta.update(extra.pop("delta", {}))
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "choices": [choice], **extra}


def json_error(h: BaseHTTPRequestHandler, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def drop(h: BaseHTTPRequestHandler) -> None:
    """Close the connection abruptly."""
    h.wfile.flush()
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


def hang(seconds: float) -> Script:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        time.sleep(seconds)

    return script


class ScriptedServer:
    def __init__(self) -> None:
        self.script: Script | None = None
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.gets: dict[str, object] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path not in server.gets:
                    json_error(self, 404, f"no route {self.path}")
                    return
                body = json.dumps(server.gets[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                server.requests.append((dict(self.headers), body))
                assert server.script is not None
                with contextlib.suppress(OSError):  # the client hung up
                    server.script(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
