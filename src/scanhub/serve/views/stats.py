"""Time in state: `GET /api/v1/stats`, the report of `scanhub._stats` (the same numbers as
`scanhub stats`), every figure a store query over the window (see `Store.stats`)."""

from __future__ import annotations

from aiohttp import web

from ... import _stats as stats
from .._app import SERVICE
from .._http import Problem, json_response

routes = web.RouteTableDef()


@routes.get("/api/v1/stats")
async def report(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        window = stats.parse_window(request.query.get("window", stats.DEFAULT_WINDOW))
        given = request.query.get("group_by")
        group_by = stats.DEFAULT_GROUP_BY if given is None else stats.parse_group_by(given)
    except ValueError as exc:
        raise Problem(400, "Bad Request", str(exc)) from None
    data = await stats.report(
        service.store,
        window=window,
        group_by=group_by,
        now=service.now(),
        rule=await service.stuck_rule(),
    )
    return json_response(request, data)
