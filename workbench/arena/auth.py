"""Who is asking: browser sessions, token checks and the lockout of token guessers.

Unknown tokens are counted per client address, the page's login and the API together:
too many within a minute lock that address out for a while (:class:`Throttle`). Sessions,
counts and lockouts are rows in the study's votes store, so every arena process of a
study (behind one reverse proxy, on one PostgreSQL database) sees the same ones.

The address is the one the connection came from. ``X-Forwarded-For`` is believed only
from the reverse proxies a study names in ``trusted_proxies``: the arena's own
``launch()`` tells uvicorn to trust exactly those (uvicorn trusts 127.0.0.1 by default,
which let a local client pick a new address for every guess). A request that carries the
header without such a proxy is counted under its connection's address and also under one
shared address, whatever it claims (an app mounted in a server that does believe the
header still locks guessers out), and is never taken for loopback. A published demo
token is refused from any address but loopback, at every request, however the app was
started.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from workbench.arena.battles import Arena
from workbench.arena.study import Rater, is_loopback
from workbench.arena.votes import VoteStore
from workbench.errors import ArenaError

__all__ = [
    "UNTRUSTED_FORWARD",
    "Authenticator",
    "LockedOut",
    "Sessions",
    "Throttle",
    "client_address",
]

UNTRUSTED_FORWARD = "forwarded-by-an-untrusted-proxy"
"""The address every request with an X-Forwarded-For header from an undeclared proxy is
counted under."""

log = logging.getLogger(__name__)


class Sessions:
    """Browser sessions -> rater, in the study's store. A session id is random and
    reveals nothing."""

    def __init__(self, store: VoteStore, raters: Iterable[Rater]) -> None:
        self.store = store
        self._raters = {r.name: r for r in raters}

    def open(self, rater: Rater) -> str:
        """A new session id for ``rater``."""
        sid = secrets.token_urlsafe(24)
        self.store.open_session(sid, rater.name)
        return sid

    def rater(self, sid: str | None) -> Rater | None:
        """The rater of session ``sid`` (None: unknown or not logged in)."""
        if not sid or not isinstance(sid, str) or len(sid) > 200:
            return None
        name = self.store.session_rater(sid)
        return self._raters.get(name) if name is not None else None


class LockedOut(ArenaError):
    """The client address is locked out after too many unknown tokens."""


class Throttle:
    """Slows token guessing: a client address whose unknown tokens reach ``limit`` within
    ``window_s`` seconds is refused, right token or wrong, for ``lockout_s`` seconds. The
    counts live in ``store`` (every process of a study counts together), timed by
    ``clock`` (wall-clock seconds: processes share it).

    Behind a reverse proxy every rater shares the proxy's address; raise ``limit`` there.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        *,
        store: VoteStore,
    ) -> None:
        self.limit, self.window_s, self.lockout_s, self.clock = limit, window_s, lockout_s, clock
        self.store = store

    def check(self, client: str) -> None:
        """Raise LockedOut (an ArenaError) while ``client`` is locked out."""
        left = self.store.lockout_left(client, self.clock())
        if left > 0:
            raise LockedOut(f"too many unknown tokens from this address; try again in {left:.0f} s")

    def failed(self, client: str) -> None:
        """Count one unknown token from ``client``."""
        locked = self.store.token_failed(
            client, self.clock(), window_s=self.window_s, limit=self.limit, lockout_s=self.lockout_s
        )
        if locked:
            log.warning("arena: %s locked out after %d unknown tokens", client, self.limit)


def client_address(request: Any) -> str:
    """The address of the connection a request came on, as the server sees it."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


def _forwarded_untrusted(request: Any, trusted_proxies: tuple[str, ...]) -> bool:
    headers = getattr(request, "headers", None) or {}
    return not trusted_proxies and "x-forwarded-for" in headers


class Authenticator:
    """Token checks shared by the page's login and the API, throttled per address."""

    def __init__(self, arena: Arena, throttle: Throttle) -> None:
        self.arena = arena
        self.throttle = throttle

    def __call__(self, token: object, request: Any) -> Rater:
        """The rater holding ``token``.

        Raises:
            LockedOut: the address guessed too many tokens.
            ArenaError: unknown token (counted against the address), or a demo token
                from an address that is not loopback.
        """
        client = client_address(request)
        keys = [client]
        untrusted = _forwarded_untrusted(request, self.arena.study.trusted_proxies)
        if untrusted:
            keys.append(UNTRUSTED_FORWARD)
        for key in keys:
            self.throttle.check(key)
        try:
            rater = self.arena.authenticate(token)  # type: ignore[arg-type]
        except ArenaError:
            for key in keys:
                self.throttle.failed(key)
            raise
        if rater.has_demo_token and (untrusted or not is_loopback(client)):
            raise ArenaError(
                "demo tokens work only from the machine the arena runs on; "
                "ask the study admin for your own token"
            )
        return rater
