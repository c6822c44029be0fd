"""What every vendor simulator shares: a clock, fault injection, auth, request accounting."""

from __future__ import annotations

import abc
import asyncio
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Self

from aiohttp import web
from attrs import define, field

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimClock:
    """Simulated seconds. `speed` > 1 makes scans progress faster than real time; `advance`
    moves time forward by hand (tests)."""

    def __init__(self, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self._clock = clock
        self._start = clock()
        self._offset = 0.0

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return (self._clock() - self._start) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        """Jump forward by `seconds` simulated seconds."""
        self._offset += seconds


@define
class Faults:
    """Faults a simulator injects; each `*_rate` is the share of requests it hits (0..1)."""

    #: Seconds added before every answer.
    latency: float = 0.0
    #: Answered 500/502/503 without acting.
    error_rate: float = 0.0
    #: Answered 429 without acting.
    rate_limit_rate: float = 0.0
    #: `Retry-After` seconds sent with an injected 429; None sends no header (like IQ Cloud).
    retry_after: float | None = 1.0
    #: Answered with truncated JSON.
    malformed_rate: float = 0.0
    #: Answered 200 with an HTML login page (a proxy in the way).
    html_rate: float = 0.0
    #: The connection is closed with no answer at all.
    drop_rate: float = 0.0
    #: Every request fails authentication the vendor's way.
    auth_failure: bool = False
    #: Status answers carry a status value the vendor never documented.
    unknown_status_rate: float = 0.0
    #: Rate limit enforced by the server: (max requests, period seconds); None: no limit.
    server_rate_limit: tuple[int, float] | None = None
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def hit(self, rate: float) -> bool:
        """Draw whether a fault of this share strikes now."""
        return rate > 0 and self._rng.random() < rate

    def choice(self, options: list[Any]) -> Any:
        """A seeded pick among options."""
        return self._rng.choice(options)


@define
class Stats:
    """What a simulator saw; read by tests and benchmarks."""

    requests: int = 0
    by_status: dict[int, int] = field(factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    #: (arrival time in real monotonic seconds, status answered) of every request, in order;
    #: kept only when the server was made with `keep_log=True` (the default).
    answers: list[tuple[float, int]] = field(factory=list)


class SimServer(abc.ABC):
    """A vendor simulator: a real aiohttp server on loopback.

    Subclasses add routes in `_routes` and answer auth failures the vendor's way in `_deny`.
    """

    vendor: ClassVar[str]
    #: Path prefix every route lives under (e.g. `/threadfix`).
    prefix: str = ""

    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_log: bool = True,
    ) -> None:
        self.clock = clock or SimClock()
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.stats = Stats()
        self._keep_log = keep_log
        self._runner: web.AppRunner | None = None
        self._limit_log: deque[float] = deque()
        self.app = web.Application(middlewares=[self._middleware])
        self._routes(self.app.router)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> str:
        """Start serving; returns the base URL a client should use."""
        # A simulated hang (latency fault) ends when the client goes away, and stopping never
        # waits for it.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.base_url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def root(self) -> str:
        """`http://host:port`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL to give the scanhub client."""
        return self.root + self.prefix

    @abc.abstractmethod
    def credentials(self) -> dict[str, str]:
        """The credentials this simulator accepts (for `scanhub sim` to print)."""

    # --- hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _routes(self, router: web.UrlDispatcher) -> None:
        """Add the vendor's endpoints."""

    @abc.abstractmethod
    def _authorized(self, request: web.Request) -> bool:
        """True when the request carries the vendor's credentials."""

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="Unauthorized")

    def _too_many(self, retry_after: float | None) -> web.StreamResponse:
        # RFC 9110 delay-seconds are whole seconds.
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
        return web.Response(status=429, text="Too Many Requests", headers=headers)

    # --- the middleware -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        arrived = time.monotonic()
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            resp = await self._answer(request, handler)
        finally:
            stats.in_flight -= 1
        stats.by_status[resp.status] = stats.by_status.get(resp.status, 0) + 1
        if self._keep_log:
            stats.answers.append((arrived, resp.status))
        return resp

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        f = self.faults
        if f.latency:
            await asyncio.sleep(f.latency)
        if f.server_rate_limit is not None:
            limited = self._enforce_limit(*f.server_rate_limit)
            if limited is not None:
                return limited
        if f.hit(f.drop_rate):
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is answered on a dropped connection
        if f.auth_failure or not self._authorized(request):
            return self._deny(request)
        if f.hit(f.rate_limit_rate):
            return self._too_many(f.retry_after)
        if f.hit(f.error_rate):
            return web.Response(status=f.choice([500, 502, 503]), text="Internal Server Error")
        if f.hit(f.html_rate):
            page = (
                "<!DOCTYPE html><html><head><title>Sign in</title></head><body>login</body></html>"
            )
            return web.Response(status=200, text=page, content_type="text/html")
        resp = await handler(request)
        if f.hit(f.malformed_rate) and isinstance(resp, web.Response) and resp.body:
            body = bytes(resp.body)  # type: ignore[arg-type]
            return web.Response(
                status=resp.status,
                body=body[: max(1, len(body) // 2)],
                content_type="application/json",
            )
        return resp

    def _enforce_limit(self, max_requests: int, period: float) -> web.StreamResponse | None:
        now = time.monotonic()
        log = self._limit_log
        while log and log[0] <= now - period:
            log.popleft()
        if len(log) >= max_requests:
            return self._too_many(self.faults.retry_after)
        log.append(now)
        return None

    def unknown_status(self, documented: str, invented: str) -> str:
        """`invented` when the unknown-status fault strikes, else `documented`."""
        return invented if self.faults.hit(self.faults.unknown_status_rate) else documented


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (compact, like the vendors send)."""
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":")).encode(),
        content_type="application/json",
    )


def progress(start: float, now: float, duration: float, steps: int) -> int:
    """Which of `steps` equal phases of `duration` the item is in (== steps when done)."""
    if duration <= 0:
        return steps
    done = (now - start) / duration
    return steps if done >= 1 else max(0, int(done * steps))
