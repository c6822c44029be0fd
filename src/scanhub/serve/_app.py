"""The service: the engine running for good behind one aiohttp application.

The engine polls and records; the service only reads. Every read is a store query (a page of
items, one item, counts, the log); the live stream and the metrics are readers of the committed
log (`ScanHub.subscribe`). Writes (track, untrack, webhooks) go through the engine, which commits
them before the service answers. Views are split by resource (`views/`), each a module of
handlers that find the service as `request.app[SERVICE]`; the engine's lifetime is the
application's (`cleanup_ctx`). Connections are the service's own (`_protocol.py`): a cap on how
many are open, deadlines for headers and bodies, malformed requests answered as problem+json.
A request naming a `Host` the service does not answer for (`_hosts.py`: DNS rebinding) is a 421,
but for the probes and the vendors' webhooks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web

from .._config import Config
from .._defaults import (
    MAX_REQUEST_BYTES,
    PORT,
    REDISCOVER_EVERY,
    STUCK_AFTER,
)
from .._errors import ConfigError, StoreUnavailable
from .._registry import Registry, registry
from .._secrets import Secret
from .._stats import StuckRule, stuck_rule
from ..engine import ScanHub
from ..engine.supervise import supervised
from ..store import Store
from ._hosts import HostRule
from ._http import SECURITY_HEADERS, Problem, check_params, problem_response
from ._metrics import Metrics
from ._protocol import Aborted, ClientLog, Connection, Limits, Listener, default_max_connections

log = logging.getLogger("scanhub")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds a client is told to wait (`Retry-After`) while the store is away.
STORE_RETRY_AFTER = 5
#: Seconds the stuck rule's learned thresholds are kept before the store is read again.
RULE_EVERY = 60.0


class Service:
    """`scanhub serve`: see the module docstring. Build it around a `ScanHub` (opened by the
    service) and the configuration it came from; `start()` serves, `stop()` stops cleanly.

    What a client may hold: at most `max_connections` open connections (by default the
    open-file limit less 128; more are answered 503 and closed); `header_timeout` seconds from
    a request's first bytes to its last header line (else 408 and closed); `body_timeout`
    seconds for a body of at most `max_request_body` bytes (else 408, 413);
    `keepalive_timeout` seconds idle between requests; request lines of `max_line_size` and
    header fields of `max_field_size` bytes (else 400). Malformed requests are logged once per
    client address, at INFO, without a traceback. A request whose `Host` is not `localhost`,
    `127.0.0.1`, `::1`, `host` (not a wildcard) or one of `allowed_hosts` is a 421, but for
    `/healthz`, `/readyz` and the webhooks; bound to a wildcard with no `allowed_hosts`, any
    `Host` is answered (`_hosts.py`)."""

    def __init__(
        self,
        hub: ScanHub,
        config: Config,
        *,
        host: str = "127.0.0.1",
        port: int = PORT,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        vendors: Registry | None = None,
        rediscover_every: float = REDISCOVER_EVERY,
        stuck_after: float = STUCK_AFTER,
        max_request_body: int = MAX_REQUEST_BYTES,
        heartbeat: float = 15.0,
        write_timeout: float = 10.0,
        max_connections: int | None = None,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keepalive_timeout: float = 75.0,
        max_line_size: int = 8190,
        max_field_size: int = 8190,
    ) -> None:
        self.hub, self.config = hub, config
        self.store: Store = hub.store
        self.host, self.port = host, port
        try:
            #: The `Host` names it answers for.
            self.hosts = HostRule.of(host, allowed_hosts)
        except ValueError as exc:
            raise ConfigError(f"serve: allowed host: {exc}", operation="serve") from None
        self.token = Secret(token) if token else None
        self.env = env or {}
        self.vendors = vendors or registry()
        self.rediscover_every = rediscover_every
        #: The stuck threshold where the configuration sets none and history is too short
        #: (the configuration's top-level `stuck_after` wins over it).
        self.stuck_after = stuck_after
        self._rule: StuckRule | None = None
        self._log_id: str | None = None
        self._rule_read = 0.0
        self.max_request_body = max_request_body
        self.heartbeat = heartbeat
        #: How long a write waits for the store to commit it before answering 503.
        self.write_timeout = write_timeout
        #: How long a request's body may take to arrive (read before the handler runs).
        self.body_timeout = body_timeout
        #: What every connection shares: the cap, the header deadline, aiohttp's limits.
        self.limits = Limits(
            max_connections=(
                default_max_connections() if max_connections is None else max_connections
            ),
            header_timeout=header_timeout,
            keepalive_timeout=keepalive_timeout,
            max_line_size=max_line_size,
            max_field_size=max_field_size,
            clients=ClientLog(log),
        )
        #: Live-stream clients connected now.
        self.streams = 0
        self.metrics = Metrics(self)
        self.deliveries: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: Listener | None = None
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
        # The log's identity, in every CloudEvent id: read now, so that a stream never needs
        # the store for it once it has answered 200.
        await self.log_id()
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None  # set up above
        loop = asyncio.get_running_loop()
        self._site = Listener(
            self._runner, self.host, self.port, lambda: Connection(server, self.limits, loop)
        )
        try:
            await self._site.start()
        except OSError as exc:  # taken, not an address of this host, a name that resolves not
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                operation="serve",
            ) from None
        self.port = self._site.port
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

    async def log_id(self) -> str:
        """The store's log identity (`SinkLedger.log_id`), part of every CloudEvent id this
        service gives (`event_id`); read once."""
        if self._log_id is None:
            self._log_id = await self.store.sinks.log_id()
        return self._log_id

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
            # Supervised and reported as the engine's parts are: a failure is logged, the part
            # started again, and `health()` (so `/readyz`) says so meanwhile; never a counter
            # stopped unseen.
            runner = self.hub.runner
            parts = {"rediscovery": self._rediscover, "metrics": self.metrics.follow}
            tasks = [
                asyncio.create_task(
                    supervised(name, run, runner.reported(name)), name=f"scanhub-{name}"
                )
                for name, run in parts.items()
            ]
            try:
                yield
            finally:
                self.closing.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for name in parts:
                    runner.forget(name)

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.rediscover_every)
            try:
                await self.hub.discovery.rediscover()
            except Exception:  # a failing rule is in discovery.errors; a bug must not stop this
                log.exception("scanhub: rediscovery failed")


#: How views find the service.
SERVICE: web.AppKey[Service] = web.AppKey("scanhub_service", Service)


def make_app(service: Service) -> web.Application:
    """The aiohttp application: middlewares, the engine's lifetime, and every view's routes."""
    from .views import items, metrics, page, sinks, stats, stream, webhooks, writes

    app = web.Application(
        middlewares=[_connection, _hosts, _problems], client_max_size=service.max_request_body
    )
    app[SERVICE] = service
    app.on_response_prepare.append(_headers)
    app.cleanup_ctx.append(service.engine)
    for module in (page, metrics, items, stats, stream, writes, webhooks, sinks):
        app.router.add_routes(module.routes)
    return app


@web.middleware
async def _connection(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tells the connection a request began and ended (its header deadline stops while a
    request is being handled)."""
    conn = request.protocol
    if not isinstance(conn, Connection):
        return await handler(request)
    conn.request_started()
    try:
        return await handler(request)
    finally:
        conn.request_finished()


#: Routes answered whatever the `Host`: the probes (a load balancer names the address it
#: probes, or anything) and the webhooks (a vendor names the service's public name; a delivery
#: is judged by its signature, and what it answers reveals nothing).
ANY_HOST = frozenset({"/healthz", "/readyz", "/webhooks/{vendor}/{source}"})


@web.middleware
async def _hosts(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 421 for a request naming a `Host` the service does not answer for (DNS rebinding:
    `_hosts.py`), before its body is read; the connection is closed after it."""
    rule = request.app[SERVICE].hosts
    if rule.any:
        return await handler(request)
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical in ANY_HOST:
        return await handler(request)
    host = request.headers.get(hdrs.HOST)
    if rule.allows(host):
        return await handler(request)
    assert host is not None  # allowed when absent
    resp = problem_response(
        421,
        "Misdirected Request",
        f"this service does not answer for the host {host[:200]!r}; its operator can allow "
        "it (scanhub serve --allowed-host NAME)",
        request.path,
    )
    resp.force_close()
    return resp


async def _headers(request: web.Request, resp: web.StreamResponse) -> None:
    """The security headers on every answer, as its headers are sent: a stream's too (it
    sends them before a middleware would see the response)."""
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as problem+json; an unexpected exception as a 500 that says nothing of it
    (logged once, with its traceback). The body is read here, before the handler, within the
    service's `body_timeout` (handlers get it from aiohttp's cache)."""
    try:
        if request.body_exists:
            await _read_body(request)
        if request.method in ("GET", "HEAD") and request.match_info.http_exception is None:
            check_params(request)
        return await handler(request)
    except Problem as p:
        resp = problem_response(p.status, p.title, p.detail, request.path, **p.extra)
        if p.status == 408:
            resp.force_close()  # the rest of the body may still be on its way
        return resp
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
        # Keep what the answer needs (Allow on a 405), not aiohttp's text/plain headers.
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        return problem_response(
            exc.status, exc.reason, exc.text or exc.reason, request.path, **headers
        )
    except Exception:
        log.exception("scanhub: %s %r failed", request.method, request.path)
        if request.writer.output_size > 0:
            raise Aborted from None  # a live stream broke off: nothing more can be said
        return problem_response(
            500,
            "Internal Server Error",
            "the service failed to answer; the error is in its log",
            request.path,
        )


async def _read_body(request: web.Request) -> None:
    """Read the body (at most `max_request_body` bytes) within `body_timeout` seconds."""
    timeout = request.app[SERVICE].body_timeout
    try:
        async with asyncio.timeout(timeout):
            await request.read()
    except TimeoutError:
        raise Problem(
            408, "Request Timeout", f"the body did not arrive within {timeout:g} s"
        ) from None


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    """`async with running(service):` serves until the block ends, then stops cleanly."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


__all__ = ["SERVICE", "Service", "make_app", "running"]
