"""Reading: items (a page, one), an item's history, the log of events, the summary, sources.
Every read is an indexed store query; none walks what the store holds."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from ..._convert import converter
from ..._exports import to_cloudevent
from ...sansio import clean_url
from ...store._base import cursor_key
from .._app import SERVICE
from .._http import (
    CLOCK_FIGURES,
    MAX_ID,
    Problem,
    entry,
    int_param,
    item_key,
    item_query,
    json_response,
    page_cursor,
    read_cursor,
    ts,
)

routes = web.RouteTableDef()


@routes.get("/api/v1/items")
async def items(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    limit = int_param(request, "limit", 100, 1, 1000)
    cursor = request.query.get("cursor")
    order = request.query.get("sort") or "key"
    after, value = read_cursor(cursor, order) if cursor else (None, None)
    try:
        query = item_query(request, limit=limit, after=after, after_value=value)
        cursor_key(query)  # the store's rule: a value its order can hold, before it reads
    except ValueError:  # a cursor whose value is not one of its order's
        raise Problem(400, "Bad Request", "cursor: not a cursor this API gave") from None
    page = await service.store.query(query)
    now = service.now()
    rule = await service.stuck_rule()
    next_cursor = None
    if page.next_after is not None:
        next_cursor = page_cursor(query.order, page.next_after, page.next_value)
    entries = [entry(s, now=now, rule=rule) for s in page.items]
    return json_response(
        request,
        {"items": entries, "next_cursor": next_cursor, "total": page.total},
        moving=[(e["timing"], CLOCK_FIGURES) for e in entries],
    )


# A key is anything, line breaks too (`(?s)`), so that every key reaches the handler that
# knows it (DELETE's route, in writes.py, leaves out keys ending in /history).
@routes.get("/api/v1/items/{key:(?s:.+)}/history")
async def history(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    key = item_key(request)
    limit = int_param(request, "limit", 1000, 1, 10_000)
    since = int_param(request, "since", 0, 0, MAX_ID)
    found = await service.store.transitions(key=key, since=since, limit=limit)
    if not found and await service.store.get(key) is None:
        raise Problem(404, "Not Found", f"no item {key!r} in the store")
    log = await service.log_id()
    events = [to_cloudevent(t.change, log) for t in found]
    return json_response(request, {"events": events, "last_id": found[-1].id if found else 0})


@routes.get("/api/v1/items/{key:(?s:.+)}")
async def item(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    key = item_key(request)
    stored = await service.store.get(key)
    if stored is None:
        raise Problem(404, "Not Found", f"no tracked item {key!r}")
    data = entry(stored, now=service.now(), rule=await service.stuck_rule(), raw=True)
    return json_response(request, data, moving=[(data["timing"], CLOCK_FIGURES)])


@routes.get("/api/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    since = int_param(request, "since", 0, 0, MAX_ID)
    limit = int_param(request, "limit", 1000, 1, 10_000)
    found = await service.store.transitions(since=since, limit=limit)
    last = found[-1].id if found else await service.store.last_id()
    log = await service.log_id()
    return json_response(
        request, {"events": [to_cloudevent(t.change, log) for t in found], "last_id": last}
    )


@routes.get("/api/v1/summary")
async def summary(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    by_vendor: dict[str, dict[str, int]] = {}
    by_verdict: dict[str, int] = {}
    total = 0
    for c in await service.store.counts():
        row = by_vendor.setdefault(c.vendor, {})
        row[c.lifecycle] = row.get(c.lifecycle, 0) + c.n
        by_verdict[c.verdict] = by_verdict.get(c.verdict, 0) + c.n
        total += c.n
    now = service.now()
    oldest = {
        o.source: {
            "key": o.key,
            "since": ts(o.since),
            "age_seconds": max(0.0, (now - o.since).total_seconds()),
        }
        for o in await service.store.oldest_active()
    }
    return json_response(
        request,
        {
            "total": total,
            "by_vendor_lifecycle": by_vendor,
            "by_verdict": by_verdict,
            "oldest_unfinished": oldest,
        },
        moving=[(o, ("age_seconds",)) for o in oldest.values()],
    )


@routes.get("/api/v1/sources")
async def sources(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    health = {h.name: h for h in service.hub.sources.health()}
    tracked: dict[str, int] = {}
    for c in await service.store.counts():
        tracked[c.source] = tracked.get(c.source, 0) + c.n
    now = service.now()
    out = []
    for cfg in service.config.sources:
        h = health.get(cfg.source_name)
        err = h.last_error if h is not None else None
        paused = h.paused_for if h is not None else 0.0
        out.append(
            {
                "name": cfg.source_name,
                "vendor": cfg.vendor,
                "base_url": clean_url(cfg.base_url),
                "up": bool(h.up) if h is not None else False,
                "items": tracked.get(cfg.source_name, 0),
                "active": h.active if h is not None else 0,
                "polled_here": bool(h.polled_here) if h is not None else False,
                "last_success": ts(h.last_success) if h is not None else None,
                "last_error": converter.unstructure(err) if err is not None else None,
                "paused_until": ts(now + timedelta(seconds=paused)) if paused > 0 else None,
                "concurrency": h.concurrency if h is not None else 0,
            }
        )
    return json_response(request, {"sources": out})
