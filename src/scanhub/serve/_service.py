"""The dashboard service: the engine running for good, a JSON API, a live stream, /metrics,
webhooks and a web page, on one aiohttp server.

The engine polls and records; the service reads the engine's state and the store, and hears of
every transition once it is committed (it consumes `ScanHub.watch(until_done=False)`), which it
counts and fans out to live-stream clients. It never polls vendors itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .._changes import Change
from .._config import Config
from .._convert import converter, dumps, to_dict
from .._errors import ScanhubError
from .._events import to_cloudevent
from .._hub import ScanHub
from .._model import Item, Lifecycle, Verdict
from .._registry import NotProvided, Registry, registry
from .._sansio import clean_url
from .._schema import SchemaErrors, structure
from .._secrets import Secret
from ._metrics import Metrics
from ._openapi import openapi

log = logging.getLogger("scanhub")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The page's Content-Security-Policy: nothing but this origin, no inline script or style, no
#: framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}
_KINDS = ("scan", "promotion")


class Problem(Exception):
    """An error answered as `application/problem+json` (RFC 9457)."""

    def __init__(self, status: int, title: str, detail: str, **extra: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(
    status: int, title: str, detail: str, instance: str = "", **headers: str
) -> web.Response:
    """The RFC 9457 body for an error."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/problem+json",
        headers=headers,
    )


class _Stream:
    """One live-stream client: a bounded queue of committed changes."""

    def __init__(self, capacity: int, wants: Callable[[Item], bool]) -> None:
        self.capacity = capacity
        self.wants = wants
        self.queue: collections.deque[Change] = collections.deque()
        self.event = asyncio.Event()
        self.reset = False

    def push(self, change: Change) -> None:
        if not self.wants(change.after):
            return
        if len(self.queue) >= self.capacity:
            self.queue.clear()  # too slow: tell it to re-fetch rather than grow memory
            self.reset = True
        else:
            self.queue.append(change)
        self.event.set()


class Service:
    """`scanhub serve`: see the module docstring. Build it around an open-able `ScanHub` and
    the configuration it came from; `start()` serves, `stop()` stops cleanly."""

    def __init__(
        self,
        hub: ScanHub,
        config: Config,
        *,
        host: str = "127.0.0.1",
        port: int = 8470,
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        vendors: Registry | None = None,
        rediscover_every: float = 60.0,
        stuck_after: float = 1800.0,
        max_body: int = 1 << 20,
        stream_queue: int = 1000,
        heartbeat: float = 15.0,
        lease_ttl: float = 15.0,
    ) -> None:
        self.hub, self.config = hub, config
        self.host, self.port = host, port
        self._token = Secret(token) if token else None
        self.env = env or {}
        self.vendors = vendors or registry()
        self.rediscover_every = rediscover_every
        self.stuck_after = stuck_after
        self.max_body = max_body
        self.stream_queue = stream_queue
        self.heartbeat = heartbeat
        self.lease_ttl = lease_ttl
        #: Several replicas share the store: leases decide what this one polls, and the live
        #: stream follows the store (every replica's transitions) rather than this engine.
        self.shared = hub.store.shared
        self.streams: set[_Stream] = set()
        self.metrics = Metrics(hub, clients=lambda: len(self.streams), now=self._now)
        self._deliveries: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.app = self._make_app()

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    @property
    def url(self) -> str:
        """Where it serves."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        """Open the store, start the engine and serve; returns the URL (with the real port
        when `port` was 0)."""
        await self.hub.open()
        if self.shared:
            self.hub.set_active_sources(await self._lease())
        self._tasks.append(asyncio.create_task(self._consume(), name="scanhub-engine"))
        self._tasks.append(asyncio.create_task(self._rediscover(), name="scanhub-rediscover"))
        if self.shared:
            since = await self.hub.store.last_id()
            self._tasks.append(asyncio.create_task(self._follow(since), name="scanhub-follow"))
            self._tasks.append(asyncio.create_task(self._leases(), name="scanhub-leases"))
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop polling, close the live streams, flush the store, stop serving."""
        self._closing.set()
        for stream in list(self.streams):
            stream.event.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(Exception):  # a store already gone cannot hold leases either
            await self.hub.store.release()
        await self.hub.close()

    async def _consume(self) -> None:
        async for change in self.hub.watch(until_done=False, initial=False):
            if change.lagged:
                for stream in self.streams:
                    stream.reset = True
                    stream.event.set()
                continue
            self.metrics.change(change)
            if not self.shared:
                for stream in self.streams:
                    stream.push(change)

    async def _follow(self, since: int) -> None:
        """Replicas: every transition any replica commits, in id order, moves this engine's
        view forward and goes to this replica's live-stream clients."""
        async for change in self.hub.store.follow(since):
            self.hub.absorb(change)
            for stream in self.streams:
                stream.push(change)

    async def _lease(self) -> set[str]:
        names = [c.name for c in self.hub.clients]
        return await self.hub.store.lease(names, self.lease_ttl)

    async def _leases(self) -> None:
        """Replicas: renew this replica's leases (and take expired ones) three times a lease
        period; poll exactly the sources held."""
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                held = await self._lease()
            except Exception:  # the database is away: hold nothing rather than poll twice
                log.exception("scanhub: renewing leases failed")
                held = set()
            if held != self.hub.active_sources:
                log.info("scanhub: polling %s", ", ".join(sorted(held)) or "nothing")
            self.hub.set_active_sources(held)

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.rediscover_every)
            try:
                await self.hub.rediscover()
            except Exception:  # a failing rule is in source_errors; a bug must not stop this
                log.exception("scanhub: rediscovery failed")

    def ready(self) -> bool:
        """The store is open and the engine is running."""
        return self.hub._opened and bool(self._tasks) and not self._tasks[0].done()

    # --- the app ----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._headers, self._problems], client_max_size=self.max_body
        )
        r = app.router
        r.add_get("/", self._page)
        r.add_get("/static/{name}", self._static)
        r.add_get("/healthz", self._healthz)
        r.add_get("/readyz", self._readyz)
        r.add_get("/metrics", self._metrics)
        r.add_get("/api/v1/openapi.json", self._openapi)
        r.add_get("/api/v1/items", self._items)
        r.add_get("/api/v1/items/{key:.+}/history", self._history)
        r.add_get("/api/v1/items/{key:.+}", self._item)
        r.add_delete("/api/v1/items/{key:.+}", self._untrack)
        r.add_post("/api/v1/track", self._track)
        r.add_get("/api/v1/events/stream", self._stream)
        r.add_get("/api/v1/events", self._events)
        r.add_get("/api/v1/summary", self._summary)
        r.add_get("/api/v1/sources", self._sources)
        r.add_post("/webhooks/{vendor}/{source}", self._webhook)
        return app

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @web.middleware
    async def _problems(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as p:
            return problem_response(p.status, p.title, p.detail, request.path, **p.extra)
        except web.HTTPRequestEntityTooLarge:
            return problem_response(
                413, "Payload Too Large", f"the body is over {self.max_body} bytes", request.path
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(exc.status, exc.reason, exc.text or exc.reason, request.path)

    # --- page, health, metrics --------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC or name == "index.html":
            raise Problem(404, "Not Found", f"no static file {name!r}")
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = resources.files("scanhub.serve").joinpath("static", name).read_bytes()
        resp = web.Response(body=body, content_type=_STATIC[name], charset="utf-8")
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.StreamResponse:
        if not self.ready():
            raise Problem(503, "Service Unavailable", "the store or the engine is not running")
        return web.json_response({"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.metrics.registry)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return self._json(request, openapi())

    # --- reading ----------------------------------------------------------------------------

    def _filter(self, request: web.Request) -> Callable[[Item], bool]:
        q = request.query
        for name in q:
            if name not in (
                "vendor",
                "source",
                "kind",
                "lifecycle",
                "verdict",
                "application",
                "q",
                "limit",
                "cursor",
                "since",
                "last_event_id",
            ):
                raise Problem(400, "Bad Request", f"unknown query parameter {name!r}")
        kind = q.get("kind")
        if kind is not None and kind not in _KINDS:
            raise Problem(400, "Bad Request", f"kind: expected scan or promotion, got {kind!r}")
        lifecycle = q.get("lifecycle")
        if lifecycle is not None and lifecycle not in {lc.value for lc in Lifecycle}:
            raise Problem(
                400,
                "Bad Request",
                f"lifecycle: expected one of {', '.join(lc.value for lc in Lifecycle)}",
            )
        verdict = q.get("verdict")
        if verdict is not None and verdict not in {v.value for v in Verdict}:
            raise Problem(
                400,
                "Bad Request",
                f"verdict: expected one of {', '.join(v.value for v in Verdict)}",
            )
        text = q.get("q")
        if text is not None and len(text) > 200:
            raise Problem(400, "Bad Request", "q: at most 200 characters")
        needle = text.casefold() if text else None
        vendor, source, app = q.get("vendor"), q.get("source"), q.get("application")

        def wants(item: Item) -> bool:
            if vendor is not None and item.vendor != vendor:
                return False
            if source is not None and item.source != source:
                return False
            if kind is not None and item.kind != kind:
                return False
            if lifecycle is not None and item.lifecycle.value != lifecycle:
                return False
            if verdict is not None and item.verdict.value != verdict:
                return False
            if app is not None and item.application_id != app:
                return False
            if needle is not None:
                hay = " ".join(
                    (item.key, item.id, item.application_id, item.vendor_status, item.message or "")
                ).casefold()
                return needle in hay
            return True

        return wants

    @staticmethod
    def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query.get(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
            raise Problem(
                400,
                "Bad Request",
                f"{name}: expected a whole number from {low} to {high}, got {raw[:40]!r}",
            )
        return int(raw)

    def _entry(self, item: Item, *, raw: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = to_dict(item)
        if not raw:
            data.pop("raw", None)
        changed = self.hub.changed_at(item.key)
        data["last_change"] = _ts(changed)
        since = changed or item.created_at
        data["stuck"] = bool(
            not item.lifecycle.is_terminal
            and since is not None
            and self._now() - since > timedelta(seconds=self.stuck_after)
        )
        error = self.hub.errors().get(item.key)
        data["error"] = converter.unstructure(error) if error is not None else None
        return data

    def _json(self, request: web.Request, data: Any, status: int = 200) -> web.Response:
        body = dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if status == 200 and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        resp = web.Response(body=body, status=status, content_type="application/json")
        resp.headers["ETag"] = etag
        return resp

    async def _items(self, request: web.Request) -> web.StreamResponse:
        wants = self._filter(request)
        limit = self._int(request, "limit", 100, 1, 1000)
        after = None
        cursor = request.query.get("cursor")
        if cursor:
            try:
                padded = cursor.encode() + b"=" * (-len(cursor) % 4)
                after = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise Problem(400, "Bad Request", "cursor: not a cursor this API gave") from None
        chosen = sorted((i for i in self.hub.items if wants(i)), key=lambda i: i.key)
        total = len(chosen)
        if after is not None:
            chosen = [i for i in chosen if i.key > after]
        page = chosen[:limit]
        nxt = None
        if len(chosen) > limit:
            nxt = base64.urlsafe_b64encode(page[-1].key.encode()).decode().rstrip("=")
        return self._json(
            request, {"items": [self._entry(i) for i in page], "next_cursor": nxt, "total": total}
        )

    def _find(self, key: str) -> Item:
        for item in self.hub.items:
            if item.key == key:
                return item
        raise Problem(404, "Not Found", f"no tracked item {key!r}")

    async def _item(self, request: web.Request) -> web.StreamResponse:
        return self._json(request, self._entry(self._find(request.match_info["key"]), raw=True))

    async def _history(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        limit = self._int(request, "limit", 1000, 1, 10_000)
        found = await self.hub.store.transitions(key=key, limit=limit)
        if not found and key not in {i.key for i in self.hub.items}:
            raise Problem(404, "Not Found", f"no item {key!r} in the store")
        events = [to_cloudevent(t.change) for t in found]
        return self._json(request, {"events": events, "last_id": found[-1].id if found else 0})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        since = self._int(request, "since", 0, 0, 2**62)
        limit = self._int(request, "limit", 1000, 1, 10_000)
        found = await self.hub.store.transitions(since=since, limit=limit)
        last = found[-1].id if found else await self.hub.store.last_id()
        return self._json(
            request, {"events": [to_cloudevent(t.change) for t in found], "last_id": last}
        )

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        by_vendor: dict[str, dict[str, int]] = {}
        by_verdict: dict[str, int] = {}
        oldest: dict[str, tuple[datetime, str]] = {}
        items = self.hub.items
        for item in items:
            row = by_vendor.setdefault(str(item.vendor), {})
            row[item.lifecycle.value] = row.get(item.lifecycle.value, 0) + 1
            by_verdict[item.verdict.value] = by_verdict.get(item.verdict.value, 0) + 1
            if not item.lifecycle.is_terminal:
                since = item.created_at or self.hub.changed_at(item.key)
                if since is not None and (
                    item.source not in oldest or since < oldest[item.source][0]
                ):
                    oldest[item.source] = (since, item.key)
        now = self._now()
        return self._json(
            request,
            {
                "total": len(items),
                "by_vendor_lifecycle": by_vendor,
                "by_verdict": by_verdict,
                "oldest_unfinished": {
                    source: {
                        "key": key,
                        "since": _ts(since),
                        "age_seconds": (now - since).total_seconds(),
                    }
                    for source, (since, key) in oldest.items()
                },
            },
        )

    async def _sources(self, request: web.Request) -> web.StreamResponse:
        health = self.hub.source_health()
        out = []
        for cfg in self.config.sources:
            h = health.get(cfg.source_name, {})
            err = h.get("last_error")
            out.append(
                {
                    "name": cfg.source_name,
                    "vendor": cfg.vendor,
                    "base_url": clean_url(cfg.base_url),
                    "up": bool(h.get("up", False)),
                    "items": int(h.get("items", 0)),
                    "last_success": _ts(h.get("last_success")),
                    "last_error": converter.unstructure(err) if err is not None else None,
                    "paused_until": _ts(h.get("paused_until")),
                    "concurrency": int(h.get("concurrency", 0)),
                }
            )
        return self._json(request, {"sources": out})

    # --- writing ----------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        if self._token is None:
            raise Problem(
                403,
                "Forbidden",
                "writes are not enabled: start scanhub serve with a token in the environment "
                "(--token-env, default SCANHUB_TOKEN)",
            )
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        expected = self._token.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
            raise Problem(
                401,
                "Unauthorized",
                "a valid bearer token is required",
                **{"WWW-Authenticate": "Bearer"},
            )

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError:
            raise Problem(400, "Bad Request", "the body is not JSON") from None

    async def _track(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise Problem(400, "Bad Request", "expected a JSON object (a [[track]] table)")
        name = body.get("source")
        try:
            cfg = self.config.source(str(name))
        except ScanhubError:
            known = ", ".join(s.source_name for s in self.config.sources)
            raise Problem(
                400, "Bad Request", f"source: expected one of {known}, got {name!r}"
            ) from None
        spec = self.vendors.get(cfg.vendor)
        try:
            track = structure(spec.track_schema, body)
        except SchemaErrors as exc:
            raise Problem(
                400, "Bad Request", "; ".join(f"{k}: {m}" for k, m in exc.problems)
            ) from None
        problems = track.problems()
        if problems:
            raise Problem(400, "Bad Request", "; ".join(f"{k}: {m}" for k, m in problems))
        client = self.hub.client(cfg.source_name)
        try:
            tracking = await spec.resolve_track(client, track)
        except ScanhubError as exc:
            raise Problem(502, "Bad Gateway", f"the vendor refused: {exc}") from None
        keys = [self.hub.track(item, how="api") for item in tracking.items]
        if tracking.query is not None:
            found = await self.hub.add_rule(cfg.source_name, tracking.query)
            keys += [i.key for i in found]
        return self._json(
            request,
            {"tracked": keys, "rule": dict(tracking.query) if tracking.query else None},
            status=201,
        )

    async def _untrack(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)
        key = request.match_info["key"]
        self._find(key)
        self.hub.untrack(key)
        return web.Response(status=204)

    # --- webhooks ---------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        vendor, name = request.match_info["vendor"], request.match_info["source"]
        cfg = next((s for s in self.config.sources if s.source_name == name), None)
        if cfg is None or cfg.vendor != vendor:
            raise Problem(404, "Not Found", f"no {vendor} source named {name!r}")
        body = await request.read()
        spec = self.vendors.get(cfg.vendor)
        counter = self.metrics.webhooks
        try:
            result = spec.webhook(cfg, self.env, request.headers, body)
        except NotProvided as exc:
            raise Problem(404, "Not Found", str(exc)) from None
        except ScanhubError as exc:
            counter.labels(name, "invalid").inc()
            raise Problem(400, "Bad Request", exc.message) from None
        if result.outcome == "rejected":
            counter.labels(name, "rejected").inc()
            raise Problem(401, "Unauthorized", result.detail)
        if result.delivery is not None:
            if result.delivery in self._deliveries:
                counter.labels(name, "duplicate").inc()
                return web.json_response({"outcome": "duplicate", "detail": "already delivered"})
            self._deliveries[result.delivery] = None
            while len(self._deliveries) > 10_000:
                self._deliveries.popitem(last=False)
        if result.outcome == "ignored":
            counter.labels(name, "ignored").inc()
            return web.json_response({"outcome": "ignored", "detail": result.detail}, status=202)
        keys = []
        for item in result.items:
            await self.hub.apply(item, how=f"webhook:{name}")
            keys.append(item.key)
        # Confirm by polling what is tracked for those applications on this source now.
        confirm = set(result.confirm)
        self.hub.poke(
            i.key for i in self.hub.items if i.source == name and i.application_id in confirm
        )
        counter.labels(name, "applied").inc()
        return web.json_response({"outcome": "applied", "detail": result.detail, "keys": keys})

    # --- the live stream --------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        wants = self._filter(request)
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        if last is not None and (not last.isascii() or not last.isdigit()):
            raise Problem(
                400, "Bad Request", f"Last-Event-ID: expected a transition id, got {last[:40]!r}"
            )
        # Where to start: the id the client last saw, else now. Read before the stream is
        # registered, so that what is committed in between comes from the backlog, and what is
        # committed afterwards from the queue; ids already sent are skipped: no gap, no repeat.
        start = int(last) if last is not None else await self.hub.store.last_id()
        stream = _Stream(self.stream_queue, wants)
        self.streams.add(stream)
        try:
            resp = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            resp.headers["X-Accel-Buffering"] = "no"
            await resp.prepare(request)
            await resp.write(b"retry: 2000\n\n")
            sent = await self._backlog(resp, wants, start)
            while not self._closing.is_set():
                if stream.reset:
                    stream.reset = False
                    stream.queue.clear()
                    await resp.write(b"event: reset\ndata: {}\n\n")
                    sent = await self.hub.store.last_id()
                    continue
                if stream.queue:
                    change = stream.queue.popleft()
                    if change.id is not None and change.id <= sent:
                        continue  # already sent from the backlog
                    await resp.write(_sse(change))
                    sent = change.id or sent
                    continue
                stream.event.clear()
                try:
                    async with asyncio.timeout(self.heartbeat):
                        await stream.event.wait()
                except TimeoutError:
                    await resp.write(b": heartbeat\n\n")
            return resp
        except ConnectionResetError:  # the client went away
            return web.Response(status=204)
        finally:
            self.streams.discard(stream)

    async def _backlog(
        self, resp: web.StreamResponse, wants: Callable[[Item], bool], since: int
    ) -> int:
        """Send what the store recorded after `since`, in pages; returns the last id sent."""
        while True:
            found = await self.hub.store.transitions(since=since, limit=500)
            for t in found:
                if wants(t.change.after):
                    await resp.write(_sse(t.change))
                since = t.id
            if len(found) < 500:
                return since


def _sse(change: Change) -> bytes:
    data = dumps(to_cloudevent(change), separators=(",", ":"), ensure_ascii=False)
    return f"id: {change.id}\nevent: change\ndata: {data}\n\n".encode()


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def running(service: Service) -> Any:
    """`async with running(service):` serves until the block ends, then stops cleanly."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
