"""A Hugging Face hub look-alike on 127.0.0.1, for download tests (HF_ENDPOINT points here).

It answers the requests huggingface_hub makes, with the headers the real hub sends:

- ``GET /api/models/{repo}/tree/{rev}?recursive=...``: the file listing, LFS files with
  ``lfs.oid`` = sha256 and ``lfs.size``;
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: 302 to a CDN URL on another origin
  (``localhost`` instead of ``127.0.0.1``, so huggingface_hub does not follow it for HEAD),
  with ``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``ETag``;
  404 with ``X-Error-Code: EntryNotFound`` / ``RepoNotFound`` otherwise;
- ``HEAD|GET /cdn/{sha256}``: the bytes, with ``Accept-Ranges`` and 206 answers to
  ``Range: bytes=N-`` and ``Range: bytes=N-M`` requests (exactly those bytes, as the
  hub's CDN answers).

Faults for tests: ``cut_next_get_at`` closes the connection after that many bytes of the
next download; ``fail_gets_with`` answers the downloads after it (or all) with that status;
``fail_api_with`` answers every API request (listings) with that status;
``corrupt`` serves a file with one byte flipped (same size) while the API reports the
true sha256. ``log`` records every request (method, path, Range header, bytes sent).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: Path | bytes
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        if isinstance(self.data, bytes):
            h.update(self.data)
            self.size = len(self.data)
        else:
            with open(self.data, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self.size = self.data.stat().st_size
        self.sha256 = h.hexdigest()

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.data, bytes):
            return self.data[start:end]
        with open(self.data, "rb") as f:
            f.seek(start)
            return f.read(end - start)


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0


@dataclass
class FakeHub:
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    cut_next_get_at: int | None = None
    fail_gets_with: int | None = None
    fail_api_with: int | None = None
    corrupt: set[str] = field(default_factory=set)
    log: list[Request] = field(default_factory=list)

    def add(self, repo: str, path: str, data: Path | bytes) -> HubFile:
        f = HubFile(data)
        self.repos.setdefault(repo, {})[path] = f
        return f

    def start(self) -> FakeHub:
        hub = self
        self._conns: set[socket.socket] = set()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                hub._conns.add(self.connection)

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self, head=False)

            def do_POST(self) -> None:
                hub._handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop listening and drop kept-alive connections, as a dead server would."""
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._conns.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def downloads(self) -> list[Request]:
        """GET requests for file bytes."""
        return [r for r in self.log if r.method == "GET" and r.path.startswith("/cdn/")]

    # ------------------------------------------------------------------ handling

    def _send(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
              body: bytes = b"", head: bool = False) -> None:  # fmt: skip
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and not head:
            h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, obj: object, head: bool) -> None:
        body = json.dumps(obj).encode()
        self._send(h, 200, {"Content-Type": "application/json", "X-Repo-Commit": COMMIT},
                   body, head)  # fmt: skip

    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        req = Request(h.command, path, h.headers.get("Range"), 200)
        self.log.append(req)
        try:
            if path.startswith("/api/models/"):
                self._api(h, path.removeprefix("/api/models/"), req, head)
            elif path.startswith("/cdn/"):
                self._cdn(h, path.removeprefix("/cdn/"), req, head)
            elif "/resolve/" in path:
                self._resolve(h, path.lstrip("/"), req, head)
            else:
                req.status = 404
                self._send(h, 404, {}, b"not found", head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _find_repo(self, rest: str) -> tuple[str, str] | None:
        for repo in self.repos:
            if rest.startswith(repo + "/"):
                return repo, rest[len(repo) + 1 :]
        return None

    def _api(self, h: BaseHTTPRequestHandler, rest: str, req: Request, head: bool) -> None:
        if self.fail_api_with is not None:
            req.status = self.fail_api_with
            self._send(h, self.fail_api_with, {}, b"unavailable", head)
            return
        found = self._find_repo(rest)
        if found is None:
            req.status = 404
            body = b'{"error":"Repository not found"}'
            self._send(h, 404, {"X-Error-Code": "RepoNotFound"}, body, head)
            return
        repo, tail = found
        kind, _, _rev = tail.partition("/")
        files = self.repos[repo]
        if kind in ("tree", "paths-info"):
            entries: list[dict[str, object]] = []
            dirs = sorted({str(Path(p).parent) for p in files} - {"."})
            for d in dirs:
                entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
            for p, f in sorted(files.items()):
                entries.append({
                    "type": "file", "oid": hashlib.sha1(f.sha256.encode()).hexdigest(),
                    "size": f.size, "path": p,
                    "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134},
                })  # fmt: skip
            self._json(h, entries, head)
            return
        req.status = 404
        self._send(h, 404, {}, b"unknown api", head)

    def _resolve(self, h: BaseHTTPRequestHandler, rest: str, req: Request, head: bool) -> None:
        found = self._find_repo(rest)
        if found is None:
            req.status = 404
            self._send(h, 404, {"X-Error-Code": "RepoNotFound"}, b"", head)
            return
        repo, tail = found
        _, _, after = tail.partition("resolve/")
        _rev, _, fpath = after.partition("/")
        f = self.repos[repo].get(fpath)
        if f is None:
            req.status = 404
            self._send(
                h, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b"", head
            )
            return
        req.status = 302
        cdn = f"http://localhost:{self.port}/cdn/{f.sha256}?file={fpath}"
        self._send(h, 302, {
            "Location": cdn, "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{f.sha256}"',
            "X-Linked-Size": str(f.size), "ETag": '"' + "1" * 40 + '"',
        }, b"", head)  # fmt: skip

    def _cdn(self, h: BaseHTTPRequestHandler, sha: str, req: Request, head: bool) -> None:
        match = [(repo, p, f) for repo, fs in self.repos.items() for p, f in fs.items()
                 if f.sha256 == sha]  # fmt: skip
        if not match:
            req.status = 404
            self._send(h, 404, {}, b"", head)
            return
        _, fpath, f = match[0]
        if not head and self.fail_gets_with is not None and self.cut_next_get_at is None:
            req.status = self.fail_gets_with
            self._send(h, self.fail_gets_with, {}, b"unavailable", head)
            return
        start, stop = 0, f.size  # the bytes [start, stop) go out
        status = 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{f.sha256}"',
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start = int(first or 0)
            if last:
                stop = min(f.size, int(last) + 1)
            if start >= f.size or start >= stop:
                req.status = 416
                self._send(h, 416, {"Content-Range": f"bytes */{f.size}"}, b"", head)
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{f.size}"
        headers["Content-Length"] = str(stop - start)
        req.status = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        cut = None
        if self.cut_next_get_at is not None:
            cut, self.cut_next_get_at = self.cut_next_get_at, None
        pos = start
        while pos < stop:
            end = min(stop, pos + (1 << 20))
            if cut is not None and end > cut:
                end = cut
            chunk = f.read(pos, end)
            if fpath in self.corrupt and pos <= f.size // 2 < end:
                i = f.size // 2 - pos
                chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
            h.wfile.write(chunk)
            req.sent += len(chunk)
            pos = end
            if cut is not None and pos >= cut:
                h.wfile.flush()
                h.close_connection = True
                # Drop the socket mid-body, as a network failure would.
                h.connection.shutdown(socket.SHUT_RDWR)
                return
