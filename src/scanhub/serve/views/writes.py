"""Writing: track (a `[[track]]` table as JSON) and untrack. Only with a bearer token; each
write is committed to the store before the answer, on any replica (the replica polling the
source hears of it from the store)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from ..._errors import ConfigError, ScanhubError
from ..._sansio import mend_surrogates
from ..._schema import SchemaErrors, structure
from .._app import SERVICE, Service
from .._http import Problem, item_key, json_response

routes = web.RouteTableDef()


def authorize(service: Service, request: web.Request) -> None:
    """Refuse a write without the configured bearer token (403 when none is configured)."""
    if service.token is None:
        raise Problem(
            403,
            "Forbidden",
            "writes are not enabled: start scanhub serve with a token in the environment "
            "(--token-env, default SCANHUB_TOKEN)",
        )
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    expected = service.token.reveal().encode()
    offered = value.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered, expected):
        raise Problem(
            401,
            "Unauthorized",
            "a valid bearer token is required",
            **{"WWW-Authenticate": "Bearer"},
        )


#: The deepest body a write takes: a [[track]] table nests a few levels (deeper is no track,
#: and whether the recursive walks after the parse had room for it depended on the stack).
MAX_DEPTH = 64


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests deeper than `limit` (walked a level at a time, containers only,
    without recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [c for c in children if isinstance(c, (dict, list))]
        if not below:
            return False
        level = below
    return True


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        value = json.loads(raw)
    except ValueError:
        raise Problem(400, "Bad Request", "the body is not JSON") from None
    except RecursionError:
        raise Problem(400, "Bad Request", "the body is nested too deeply") from None
    if _too_deep(value):
        raise Problem(400, "Bad Request", "the body is nested too deeply") from None
    mended = mend_surrogates(value)
    if mended != value:  # no store, page or terminal takes one
        raise Problem(400, "Bad Request", "the body holds a lone surrogate (\\ud800-\\udfff)")
    return value


@routes.post("/api/v1/track")
async def track(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    authorize(service, request)
    body = await _body(request)
    if not isinstance(body, dict):
        raise Problem(400, "Bad Request", "expected a JSON object (a [[track]] table)")
    name = body.get("source")
    try:
        cfg = service.config.source(str(name))
    except ScanhubError:
        known = ", ".join(s.source_name for s in service.config.sources)
        detail = f"source: expected one of {known}, got {name!r}"
        raise Problem(400, "Bad Request", detail) from None
    spec = service.vendors.get(cfg.vendor)
    try:
        wanted = structure(spec.track_schema, body)
    except SchemaErrors as exc:
        raise Problem(400, "Bad Request", "; ".join(f"{k}: {m}" for k, m in exc.problems)) from None
    for key, instead in spec.track_schema.LOCAL_FILES.items():
        if getattr(wanted, key) is not None:
            detail = f"{key}: the service reads no file named in a request; {instead}"
            raise Problem(400, "Bad Request", detail)
    problems = wanted.problems()
    if problems:
        raise Problem(400, "Bad Request", "; ".join(f"{k}: {m}" for k, m in problems))
    hub = service.hub
    client = hub.sources.client(cfg.source_name)
    try:
        tracking = await spec.resolve_track(client, wanted)
    except ConfigError as exc:  # what the request asked for cannot be (not the vendor's doing)
        raise Problem(400, "Bad Request", str(exc)) from None
    except ScanhubError as exc:
        raise Problem(502, "Bad Gateway", f"the vendor refused: {exc}") from None
    keys = [hub.track(item, how="api") for item in tracking.items]
    if tracking.query is not None:
        found = await service.write(hub.discovery.add_rule(cfg.source_name, tracking.query))
        keys += [i.key for i in found]
    await service.write(hub.flush())  # durable before it is acknowledged
    rule = dict(tracking.query) if tracking.query else None
    return json_response(request, {"tracked": keys, "rule": rule}, status=201)


# Any key, line breaks too, but not one ending in /history: that URL is the history's (GET),
# so it must not answer DELETE (nor list DELETE in a 405's Allow) either.
@routes.delete("/api/v1/items/{key:(?s:.+)(?<!/history)}")
async def untrack(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    authorize(service, request)
    key = item_key(request)
    if await service.store.get(key) is None:
        raise Problem(404, "Not Found", f"no tracked item {key!r}")
    service.hub.untrack(key)
    await service.write(service.hub.flush())
    return web.Response(status=204)
