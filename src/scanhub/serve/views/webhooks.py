"""Vendor webhooks: `POST /webhooks/{vendor}/{source}`. The vendor's package judges a delivery
(signature, event type, what it means); what it says is committed like a poll's answer, and the
application's tracked items are polled at once to confirm."""

from __future__ import annotations

from aiohttp import web

from ..._errors import ScanhubError
from ..._registry import NotProvided
from .._app import SERVICE
from .._http import Problem

routes = web.RouteTableDef()

#: Delivery ids remembered for deduplication.
REMEMBERED = 10_000


@routes.post("/webhooks/{vendor}/{source}")
async def webhook(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    vendor, name = request.match_info["vendor"], request.match_info["source"]
    cfg = next((s for s in service.config.sources if s.source_name == name), None)
    if cfg is None or cfg.vendor != vendor:
        raise Problem(404, "Not Found", f"no {vendor} source named {name!r}")
    body = await request.read()
    spec = service.vendors.get(cfg.vendor)
    counter = service.metrics.webhooks
    try:
        result = spec.webhook(cfg, service.env, request.headers, body)
    except NotProvided as exc:
        raise Problem(404, "Not Found", str(exc)) from None
    except ScanhubError as exc:
        counter.labels(name, "invalid").inc()
        raise Problem(400, "Bad Request", exc.message) from None
    if result.outcome == "rejected":
        counter.labels(name, "rejected").inc()
        raise Problem(401, "Unauthorized", result.detail)
    deliveries = service.deliveries
    if result.delivery is not None and result.delivery in deliveries:
        counter.labels(name, "duplicate").inc()
        return web.json_response({"outcome": "duplicate", "detail": "already delivered"})
    if result.outcome == "ignored":
        counter.labels(name, "ignored").inc()
        return web.json_response({"outcome": "ignored", "detail": result.detail}, status=202)
    hub = service.hub
    keys = []
    for item in result.items:
        await service.write(hub.apply(item, how=f"webhook:{name}"))
        keys.append(item.key)
    if result.delivery is not None:  # remembered once applied: a failed one may come again
        deliveries[result.delivery] = None
        while len(deliveries) > REMEMBERED:
            deliveries.popitem(last=False)
    # Confirm by polling what this replica polls of those applications now.
    # (Looked up by application: a delivery costs what it names, not the work under way.)
    hub.poke(
        key
        for application in dict.fromkeys(result.confirm)
        for key in hub.working.keys_of_application(name, application)
    )
    counter.labels(name, "applied").inc()
    return web.json_response({"outcome": "applied", "detail": result.detail, "keys": keys})
