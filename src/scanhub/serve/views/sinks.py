"""Sinks: their health (state, cursor, lag, last success, last error), their dead letters, and
a replay (token-protected, like every write). Everything is read from the store, so every
replica answers alike; a replay is a write to the store that the replica delivering for the
sink notices."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ...engine.sinks import SinkReport
from ...store import ReplayPastEnd, SinkStatus
from .._app import SERVICE, Service
from .._http import MAX_ID, Problem, int_param, json_response, ts
from .writes import authorize

routes = web.RouteTableDef()


def entry(report: SinkReport) -> dict[str, Any]:
    """A sink as the API shows it (never its URL's path or query, never a secret)."""
    sink, state = report.sink, report.state
    error = None
    if state is not None and state.last_error is not None:
        error = {
            "message": state.last_error,
            "at": ts(state.last_error_at),
            "status": state.last_status,
        }
    return {
        "name": sink.name,
        "kind": sink.kind,
        "mode": sink.mode,
        "target": sink.shown,
        "signed": bool(sink.secrets),
        "filter": list(sink.filter.spec),
        "state": state.status.value if state is not None else SinkStatus.ACTIVE.value,
        "cursor": state.position if state is not None else None,
        "lag_events": report.lag_events,
        "lag_seconds": round(report.lag_seconds, 3),
        "last_success": ts(state.last_success) if state is not None else None,
        "last_error": error,
        "retrying": (
            {
                "id": state.head,
                "attempts": state.attempts,
                "next_attempt": ts(state.next_attempt),
            }
            if state is not None and state.status is SinkStatus.RETRYING
            else None
        ),
        "delivered": state.delivered if state is not None else 0,
        "failures": state.failures if state is not None else 0,
        "dead": state.dead if state is not None else 0,
        "delivering_here": report.delivering_here,
    }


def _known(service: Service, name: str) -> None:
    if name not in service.hub.sinks.sinks:
        known = ", ".join(service.hub.sinks.names) or "none is configured"
        raise Problem(404, "Not Found", f"no sink named {name!r} ({known})")


async def _report(service: Service, name: str) -> dict[str, Any]:
    for report in await service.hub.sinks.report():
        if report.sink.name == name:
            return entry(report)
    raise Problem(404, "Not Found", f"no sink named {name!r}")  # pragma: no cover


@routes.get("/api/v1/sinks")
async def sinks(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    reports = await service.hub.sinks.report()
    return json_response(request, {"sinks": [entry(r) for r in reports]})


@routes.get("/api/v1/sinks/{name}/dead")
async def dead(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    name = request.match_info["name"]
    _known(service, name)
    after = int_param(request, "after", 0, 0, MAX_ID)
    limit = int_param(request, "limit", 100, 1, 1000)
    letters = await service.store.sinks.dead_letters(name, after=after, limit=limit)
    return json_response(
        request,
        {
            "dead": [
                {
                    "id": d.id,
                    "key": d.key,
                    "attempts": d.attempts,
                    "first_attempt": ts(d.first_attempt),
                    "last_attempt": ts(d.last_attempt),
                    "status": d.status,
                    "error": d.error,
                }
                for d in letters
            ],
            "next_after": letters[-1].id if len(letters) == limit else None,
        },
    )


def _transition_id(given: object) -> int:
    """`from` of a replay: a whole number from 1 to MAX_ID (JSON's 12.0 is one too)."""
    if isinstance(given, float) and given.is_integer():
        given = int(given)
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= MAX_ID:
        shown = json.dumps(given)[:40]  # as the request wrote it (`true`, not `True`)
        raise Problem(400, "Bad Request", f"from: expected a transition id >= 1, got {shown}")
    return given


@routes.post("/api/v1/sinks/{name}/replay")
async def replay(request: web.Request) -> web.StreamResponse:
    """Deliver again from an id (`{"from": ID}`), from the first dead letter
    (`{"dead": true}`), or, with an empty body, resume: a disabled sink from where it stopped,
    else from its first dead letter. Everything after that point is sent again (receivers
    deduplicate by `webhook-id`)."""
    service = request.app[SERVICE]
    authorize(service, request)
    name = request.match_info["name"]
    _known(service, name)
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise Problem(400, "Bad Request", "the body is not JSON") from None
    if not isinstance(body, dict) or set(body) - {"from", "dead"}:
        raise Problem(400, "Bad Request", 'expected {"from": ID}, {"dead": true} or nothing')
    if "dead" in body and body["dead"] is not True:
        raise Problem(400, "Bad Request", "dead: expected true")
    start: int | None = None
    if "from" in body:
        start = _transition_id(body["from"])
    else:
        states = await service.store.sinks.states([name])
        letters = await service.store.sinks.dead_letters(name, limit=1)
        if body.get("dead") is not True and states and states[0].status is SinkStatus.DISABLED:
            start = states[0].head
        elif letters:
            start = letters[0].id
        if start is None:
            raise Problem(
                409,
                "Conflict",
                f'sink {name!r} has no dead letter and is not disabled: give {{"from": ID}}',
            )
    try:
        await service.store.sinks.replay(name, start - 1, service.now())
    except ReplayPastEnd as exc:  # the cursor would skip every transition until ids reach it
        raise Problem(
            409,
            "Conflict",
            f"from: {start} is past the end of the log (its newest transition is"
            f" {exc.newest}): give an id up to {exc.newest + 1}",
        ) from None
    service.hub.sinks.wake(name)
    answer = {"replayed_from": start, "sink": await _report(service, name)}
    return json_response(request, answer, status=202)
