"""`/metrics`: Prometheus text, through prometheus-client (see `scanhub.serve._metrics`)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .._app import SERVICE

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    await service.metrics.refresh()
    resp = web.Response(body=generate_latest(service.metrics.registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
