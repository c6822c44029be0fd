"""The live stream: Server-Sent Events of every committed transition, filtered.

A client starts from `Last-Event-ID` (header or `last_event_id=`) or from now, and reads the
committed log through a subscription: what is older than the broadcaster's position comes from
the store, what is newer from the broadcaster, and ids already sent are skipped, so a resumed
stream has no gap and no repeat; an id past the end of the log (a client of another state)
resumes from the end, told so by a `reset` event. A client that reads slowly loses nothing and
costs no memory: its subscription falls back to reading the store until it has caught up. Each
event is the transition's CloudEvent, the same bytes every reader of that id gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from ..._changes import Change
from ..._errors import StoreUnavailable
from ..._exports import cloudevent_json
from .._app import SERVICE
from .._http import MAX_ID, Problem, item_query, wanted, whole

routes = web.RouteTableDef()


def sse(change: Change, log: str) -> bytes:
    """One transition of the log `log` as an SSE event (`id:` the transition id, for
    `Last-Event-ID`; the CloudEvent's id also names the log)."""
    return f"id: {change.id}\nevent: change\ndata: {cloudevent_json(change, log)}\n\n".encode()


def last_event_id(request: web.Request) -> int | None:
    """Where the client resumes: `Last-Event-ID` (the header, as EventSource sends it, else
    `last_event_id=`), a transition id checked before anything is sent. Both are checked when
    both are given; the header wins."""
    found = []
    for name, raw in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("last_event_id", request.query.get("last_event_id")),
    ):
        if raw is None:
            continue
        value = whole(raw)
        if value is None or value > MAX_ID:
            raise Problem(
                400,
                "Bad Request",
                f"{name}: expected a transition id from 0 to {MAX_ID}, got {raw[:40]!r}",
            )
        found.append(value)
    return found[0] if found else None


def reset(asked: int, newest: int) -> bytes:
    """The event that tells a client its `Last-Event-ID` is past the end of this log (a new
    state, another service's id): the stream resumes from the newest transition, whose id it
    carries, and what the client holds is to be read again (the page reloads)."""
    detail = (
        f"Last-Event-ID {asked} is past the end of this log (its newest transition is"
        f" {newest}): resuming from {newest}; read the items again"
    )
    data = json.dumps({"last_event_id": asked, "newest": newest, "detail": detail})
    return f"id: {newest}\nevent: reset\ndata: {data}\n\n".encode()


@routes.get("/api/v1/events/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    query = item_query(request)
    asked = last_event_id(request)
    # An id past the end would skip every transition until the log reached it: the stream
    # resumes from the end instead, and says so first (`reset`). Transitions committed after
    # `newest` was read are read from the store: no gap.
    since = asked
    if asked is not None:
        try:
            newest = await service.store.last_id()
        except StoreUnavailable:
            # Not a 503: EventSource never reconnects after an answer other than 200. The
            # stream opens as it is asked, and closes if the store is still away (the browser
            # reconnects then, and is checked again).
            newest = asked
        since = min(asked, newest)
    sub = service.hub.subscribe(since, wanted(query))
    service.streams += 1
    try:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        resp.headers["X-Accel-Buffering"] = "no"
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n\n")
        if asked is not None and since is not None and since < asked:
            await resp.write(reset(asked, since))
        clock = asyncio.get_running_loop().time
        # A heartbeat once nothing was written for `heartbeat` seconds: transitions the
        # filter leaves out wake the stream, and must not put the heartbeat off for good.
        written = clock()
        while not service.closing.is_set():
            change = sub.next_nowait()
            if change is not None:
                await resp.write(sse(change, await service.log_id()))
                written = clock()
                continue
            quiet = written + service.heartbeat - clock()
            if quiet <= 0:  # (also while catching up on transitions the filter leaves out)
                await resp.write(b": heartbeat\n\n")
                written = clock()
                continue
            if sub.behind:
                await sub.catch_up()
                continue
            closing = asyncio.ensure_future(service.closing.wait())
            ready = asyncio.ensure_future(sub.wait())
            try:
                await asyncio.wait(
                    (closing, ready), timeout=quiet, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                closing.cancel()
                ready.cancel()
        return resp
    except (ConnectionResetError, ConnectionError):  # the client went away
        return web.Response(status=204)
    finally:
        service.streams -= 1
        with contextlib.suppress(Exception):
            sub.close()
