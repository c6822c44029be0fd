"""The page (plain HTML, CSS and a small ES module shipped in the package), health, and the
OpenAPI document."""

from __future__ import annotations

import asyncio
from importlib import resources

from aiohttp import web

from ..._errors import StoreUnavailable
from .._app import SERVICE
from .._http import Problem, json_response
from .._openapi import openapi as openapi_document

routes = web.RouteTableDef()

_STATIC = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}


def _file(name: str) -> web.Response:
    body = resources.files("scanhub.serve").joinpath("static", name).read_bytes()
    resp = web.Response(body=body, content_type=_STATIC[name], charset="utf-8")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@routes.get("/")
async def page(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


@routes.get("/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC or name == "index.html":
        raise Problem(404, "Not Found", f"no static file {name!r}")
    return _file(name)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    """Alive: answers at once, whatever else is going on."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready: the engine polls, the store answers and takes commits (503 with the reason if
    not)."""
    service = request.app[SERVICE]
    ok, reason = service.ready()
    if ok:
        try:
            async with asyncio.timeout(2.0):
                await service.store.last_id()  # the store answers a query now
        except (StoreUnavailable, TimeoutError):
            ok, reason = False, "the store is unavailable"
    if not ok:
        raise Problem(503, "Service Unavailable", reason or "not ready", **{"Retry-After": "5"})
    return web.json_response({"status": "ready"})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.StreamResponse:
    return json_response(request, openapi_document(writes=request.app[SERVICE].writes_enabled))
