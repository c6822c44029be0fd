"""The service: the engine running for good behind one aiohttp application.

The engine polls and records; the service only reads. Every read is a store query (a page of
items, one item, counts, the log); the live stream and the metrics are readers of the committed
log (`ScanHub.subscribe`). Writes (track, untrack, webhooks) go through the engine, which commits
them before the service answers. Views are split by resource (`views/`), each a module of
handlers that find the service as `request.app[SERVICE]`; the engine's lifetime is the
application's (`cleanup_ctx`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .._config import Config
from .._defaults import (
    MAX_REQUEST_BYTES,
    PORT,
    REDISCOVER_EVERY,
    STUCK_AFTER,
)
from .._errors import StoreUnavailable
from .._registry import Registry, registry
from .._secrets import Secret
from .._stats import StuckRule, stuck_rule
from ..engine import ScanHub
from ..store import Store
from ._http import Problem, problem_response
from ._metrics import Metrics

log = logging.getLogger("scanhub")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The page's Content-Security-Policy: nothing but this origin, no inline script or style, no
#: framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Seconds a client is told to wait (`Retry-After`) while the store is away.
STORE_RETRY_AFTER = 5
#: Seconds the stuck rule's learned thresholds are kept before the store is read again.
RULE_EVERY = 60.0


class Service:
    """`scanhub serve`: see the module docstring. Build it around a `ScanHub` (opened by the
    service) and the configuration it came from; `start()` serves, `stop()` stops cleanly."""

    def __init__(
        self,
        hub: ScanHub,
        config: Config,
        *,
        host: str = "127.0.0.1",
        port: int = PORT,
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        vendors: Registry | None = None,
        rediscover_every: float = REDISCOVER_EVERY,
        stuck_after: float = STUCK_AFTER,
        max_request_body: int = MAX_REQUEST_BYTES,
        heartbeat: float = 15.0,
        write_timeout: float = 10.0,
    ) -> None:
        self.hub, self.config = hub, config
        self.store: Store = hub.store
        self.host, self.port = host, port
        self.token = Secret(token) if token else None
        self.env = env or {}
        self.vendors = vendors or registry()
        self.rediscover_every = rediscover_every
        #: The stuck threshold where the configuration sets none and history is too short
        #: (the configuration's top-level `stuck_after` wins over it).
        self.stuck_after = stuck_after
        self._rule: StuckRule | None = None
        self._rule_read = 0.0
        self.max_request_body = max_request_body
        self.heartbeat = heartbeat
        #: How long a write waits for the store to commit it before answering 503.
        self.write_timeout = write_timeout
        #: Live-stream clients connected now.
        self.streams = 0
        self.metrics = Metrics(self)
        self.deliveries: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.app = make_app(self)

    @staticmethod
    def now() -> datetime:
        """The wall clock."""
        return datetime.now(UTC)

    @property
    def url(self) -> str:
        """Where it serves."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def writes_enabled(self) -> bool:
        """True when a token is configured (writes are refused without one)."""
        return self.token is not None

    async def start(self) -> str:
        """Start the engine and serve; returns the URL (with the real port when `port` was 0).
        The store is opened first, so a bad one fails here, before anything listens."""
        await self.hub.open()
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
            break
        return self.url

    async def stop(self) -> None:
        """Stop polling, close the live streams, commit what waits, stop serving."""
        self.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()  # runs the engine's cleanup (below)
            self._runner = None
        await self.hub.close()

    async def stuck_rule(self) -> StuckRule:
        """The stuck rule (`scanhub._stats`): the configured thresholds and the p90s learned
        from the store's last 7 days, read again once a minute (`RULE_EVERY`)."""
        if self._rule is None or time.monotonic() - self._rule_read > RULE_EVERY:
            self._rule = await stuck_rule(self.store, self.config, self.now(), self.stuck_after)
            self._rule_read = time.monotonic()
        return self._rule

    def ready(self) -> tuple[bool, str | None]:
        """Whether the engine runs and the store takes commits, and why not."""
        health = self.hub.health()
        if not health.polling:
            return False, "the engine is not polling"
        return health.ready, health.reason

    async def write(self, commit: Awaitable[Any]) -> Any:
        """Wait for a write to be committed; the store being away is a 503."""
        try:
            async with asyncio.timeout(self.write_timeout):
                return await commit
        except TimeoutError:
            raise Problem(
                503,
                "Service Unavailable",
                "the store does not take writes now; try again shortly",
                **{"Retry-After": str(STORE_RETRY_AFTER)},
            ) from None

    async def engine(self, app: web.Application) -> AsyncIterator[None]:
        """The engine's lifetime, as the application's (`cleanup_ctx`): poll for good,
        re-run discovery rules, count transitions for the metrics."""
        async with self.hub.polling():
            tasks = [
                asyncio.create_task(self._rediscover(), name="scanhub-rediscover"),
                asyncio.create_task(self.metrics.follow(), name="scanhub-metrics"),
            ]
            try:
                yield
            finally:
                self.closing.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.rediscover_every)
            try:
                await self.hub.rediscover()
            except Exception:  # a failing rule is in source_errors; a bug must not stop this
                log.exception("scanhub: rediscovery failed")


#: How views find the service.
SERVICE: web.AppKey[Service] = web.AppKey("scanhub_service", Service)


def make_app(service: Service) -> web.Application:
    """The aiohttp application: middlewares, the engine's lifetime, and every view's routes."""
    from .views import items, metrics, page, stats, stream, webhooks, writes

    app = web.Application(
        middlewares=[_headers, _problems], client_max_size=service.max_request_body
    )
    app[SERVICE] = service
    app.cleanup_ctx.append(service.engine)
    for module in (page, metrics, items, stats, stream, writes, webhooks):
        app.router.add_routes(module.routes)
    return app


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as p:
        return problem_response(p.status, p.title, p.detail, request.path, **p.extra)
    except StoreUnavailable:
        return problem_response(
            503,
            "Service Unavailable",
            "the store is unavailable; try again shortly",
            request.path,
            **{"Retry-After": str(STORE_RETRY_AFTER)},
        )
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SERVICE].max_request_body
        return problem_response(
            413, "Payload Too Large", f"the body is over {limit} bytes", request.path
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(exc.status, exc.reason, exc.text or exc.reason, request.path)


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    """`async with running(service):` serves until the block ends, then stops cleanly."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


__all__ = ["CSP", "SERVICE", "Service", "make_app", "running"]
