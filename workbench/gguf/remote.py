"""Reading a remote GGUF header with HTTP Range requests, and one-line hub failures.

:class:`RangeReader` is a forward-only stream over a remote file: the first request asks
for ``first`` bytes, each later one for twice the previous, so a header of H bytes costs
at most about 2H bytes and a handful of requests, and the weights are never fetched.
Requests go through huggingface_hub's session (its proxies, headers and user agent).

Every network or HTTP failure becomes a :class:`~workbench.errors.HubError` with one line
naming the host's answer (``huggingface.co answered HTTP 503``) or the missing network
(``cannot reach huggingface.co``), and saying that ``HF_HUB_OFFLINE=1`` answers from
files already in the hub cache.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from workbench.errors import HubError
from workbench.gguf.reader import GGUFError, RawHeader, read_raw_header

OFFLINE_HINT = "HF_HUB_OFFLINE=1 uses the files already in the hub cache"
"""The end of every hub failure message."""

_FIRST = 1 << 20
_LIMIT = 256 << 20


class HubUnreachable(HubError):
    """No answer from the hub: no network, a name that does not resolve, a refused
    connection, a timeout, or a connection dropped mid-answer."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        """What happened, without the advice (``cannot reach huggingface.co (...)``)."""


class HubRefused(HubError):
    """The hub answered with an HTTP error status (:attr:`status`)."""

    def __init__(self, message: str, reason: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        """What happened, without the advice (``huggingface.co answered HTTP 503``)."""
        self.status = status
        """The HTTP status the hub answered with."""


def host_of(url: str) -> str:
    """``https://huggingface.co/api/...`` -> ``huggingface.co``."""
    return urlsplit(url).netloc or url


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _is_network_error(exc: BaseException) -> bool:
    # A full disk is an OSError too, but not the network's fault.
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return type(exc).__module__.startswith(("httpx", "httpcore", "h11", "ssl"))


def hub_failure(
    exc: BaseException, url: str, what: str, *, hint: str = OFFLINE_HINT
) -> HubError | None:
    """The one-line :class:`HubError` for a failed request, or None when ``exc`` is not a
    network or HTTP failure (a bug keeps its traceback).

    Args:
        exc: what the request raised.
        url: the URL asked for (its host is named).
        what: what was asked for, for the message (``unsloth/gemma-4-E4B-it-GGUF``).
        hint: the advice the message ends with.
    """
    if isinstance(exc, HubError):
        return exc
    host = host_of(url)
    if type(exc).__name__ == "OfflineModeIsEnabled":  # huggingface_hub's own offline flag
        reason = f"HF_HUB_OFFLINE is set, so {host} is not asked for {what}"
        return HubUnreachable(reason, reason)
    status = _status_of(exc)
    if status is not None:
        reason = f"{host} answered HTTP {status}"
        if status in (401, 403, 404):
            why = ": not found, or gated (gated repositories need HF_TOKEN)"
        elif status == 429:
            why = ": too many requests, try again later"
        else:
            why = ""
        return HubRefused(f"{reason} for {what}{why}; {hint}", reason, status)
    if _is_network_error(exc):
        detail = " ".join(str(exc).split())[:120]
        name = type(exc).__name__
        reason = (
            f"cannot reach {host} ({name}: {detail})" if detail else f"cannot reach {host} ({name})"
        )
        advice = f"check the network, or {hint}" if hint == OFFLINE_HINT else hint
        return HubUnreachable(f"{reason} for {what}; {advice}", reason)
    return None


class RangeReader(io.RawIOBase):
    """A forward-only stream over a remote file, fetched with growing HTTP Range requests.

    A server that ignores the Range end (or Range altogether) is read only as far as
    needed. Network and HTTP failures raise one-line :class:`HubError` s.
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        what: str = "",
        first: int = _FIRST,
        limit: int = _LIMIT,
    ) -> None:
        self.url = url
        self.headers = headers
        self.what = what or url
        self.next_size = first
        self.limit = limit
        self.buf = bytearray()
        self.pos = 0
        self.fetched = 0
        """Bytes received from the server."""
        self.requests = 0
        """Requests made."""
        self.size: int | None = None
        """The file's size, once a server said it (Content-Range)."""

    def readable(self) -> bool:
        return True

    def _fetch(self) -> None:
        start = len(self.buf)
        if self.size is not None and start >= self.size:
            return
        if start >= self.limit:
            raise GGUFError(f"header larger than {self.limit >> 20} MiB; not a GGUF model?")
        want = self.next_size
        self.next_size *= 2
        self.requests += 1
        try:
            got = self._get(start, want)
        except Exception as e:
            failure = hub_failure(e, self.url, self.what)
            if failure is None:
                raise
            raise failure from None
        if not got:
            self.size = start
        self.buf += got[:want]

    def _get(self, start: int, want: int) -> bytes:
        from huggingface_hub.utils import get_session

        hdrs = {**self.headers, "Range": f"bytes={start}-{start + want - 1}"}
        got = bytearray()
        with get_session().stream("GET", self.url, headers=hdrs, follow_redirects=True) as r:
            if r.status_code == 416:
                self.size = start
                return b""
            r.raise_for_status()
            skip = start if r.status_code == 200 else 0
            cr = r.headers.get("Content-Range", "")
            if "/" in cr and cr.rsplit("/", 1)[1].isdigit():
                self.size = int(cr.rsplit("/", 1)[1])
            for chunk in r.iter_bytes():
                self.fetched += len(chunk)
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                got += chunk
                if len(got) >= want:
                    break
        return bytes(got)

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            raise ValueError("RangeReader reads a bounded number of bytes at a time")
        while len(self.buf) - self.pos < n:
            before = len(self.buf)
            self._fetch()
            if len(self.buf) == before:
                break
        b = bytes(self.buf[self.pos : self.pos + n])
        self.pos += len(b)
        return b


@dataclass(frozen=True)
class RemoteHeader:
    """A remote file's header and what reading it cost."""

    raw: RawHeader
    """The parsed header with its entries' bytes."""
    bytes_fetched: int
    """Bytes received."""
    requests: int
    """HTTP requests made."""


def read_remote_header(url: str, headers: dict[str, str], *, what: str = "") -> RemoteHeader:
    """The header of the GGUF file at ``url``, read with Range requests only.

    Raises:
        GGUFError: the bytes are not a GGUF header.
        HubError: a network or HTTP failure (one line).
    """
    reader = RangeReader(url, headers, what=what)
    raw = read_raw_header(reader)  # type: ignore[arg-type]
    return RemoteHeader(raw, reader.fetched, reader.requests)
