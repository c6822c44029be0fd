"""What every view shares: problems (RFC 9457) and the headers every answer carries, JSON
answers with ETags, reading query parameters, and an item as the API shows it.

A problem is the one shape of every error the service answers: from a handler, from the
middleware, or from the connection layer before any handler ran (`raw_problem`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .._convert import compact_json, converter, timestamp_or_none, to_dict
from .._model import Item, Lifecycle, Verdict
from .._stats import StuckRule, timing
from ..store import MIN_SEARCH, ORDERS, SEARCH_SEPARATOR, ItemQuery, StoredItem, search_text

PROBLEM_JSON = "application/problem+json"

#: The page's Content-Security-Policy: nothing but this origin, no inline script or style, no
#: framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: On every answer, errors included (the page's static files set their own Cache-Control).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
}

#: The largest transition id a client may name (`since`, `Last-Event-ID`): the largest integer
#: SQLite and PostgreSQL (BIGINT) hold; a larger one would fail in the store, not be refused.
MAX_ID = 2**63 - 1

_KINDS = ("scan", "promotion")
#: The filters of the item list and the live stream.
FILTERS = frozenset({"vendor", "source", "kind", "lifecycle", "verdict", "application", "q"})
#: The query parameters each read takes, by its route: any other, or one given twice (no read
#: takes a list), is refused with a 400 that names it: a typo is never silently ignored, nor
#: is the second of two values (`check_params`, run for every GET of the service).
PARAMS: dict[str, frozenset[str]] = {
    "/api/v1/items": FILTERS | {"limit", "cursor", "sort"},
    "/api/v1/events/stream": FILTERS | {"last_event_id"},
    "/api/v1/events": frozenset({"since", "limit"}),
    "/api/v1/items/{key}/history": frozenset({"since", "limit"}),
    "/api/v1/sinks/{name}/dead": frozenset({"after", "limit"}),
    "/api/v1/stats": frozenset({"window", "group_by"}),
}
#: Routes that take any query (a probe or a browser's page may add its own; nothing is read).
ANY_PARAMS = frozenset({"/", "/static/{name}", "/healthz", "/readyz", "/metrics"})


def check_params(request: web.Request) -> None:
    """Refuse (400) a query parameter the route does not take, or one given twice; and a NUL
    in any (no store can be asked for one)."""
    route = request.match_info.route.resource
    path = route.canonical if route is not None else ""
    if path in ANY_PARAMS:
        return
    allowed = PARAMS.get(path, frozenset())
    seen: set[str] = set()
    for name, value in request.query.items():
        if name not in allowed:
            raise Problem(400, "Bad Request", f"unknown query parameter {name[:40]!r}")
        if name in seen:
            raise Problem(400, "Bad Request", f"{name}: given more than once")
        seen.add(name)
        no_nul(name, value)


#: What `sort=` takes: an order of the store (`ORDERS`), "-" first for descending.
SORTS = tuple(o for name in ORDERS for o in (name, "-" + name))


class Problem(Exception):
    """An error answered as `application/problem+json` (RFC 9457)."""

    def __init__(self, status: int, title: str, detail: str, **extra: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_body(status: int, title: str, detail: str, instance: str = "") -> bytes:
    """The RFC 9457 document for an error."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    return json.dumps(body).encode()


def problem_response(
    status: int, title: str, detail: str, instance: str = "", **headers: str
) -> web.Response:
    """The RFC 9457 answer for an error."""
    return web.Response(
        status=status,
        body=problem_body(status, title, detail, instance),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def raw_problem(status: int, detail: str, **headers: str) -> bytes:
    """A whole HTTP/1.1 answer, as bytes to write on a transport, for the connection layer
    (which answers before aiohttp made a request of the bytes, and closes)."""
    title = HTTPStatus(status).phrase
    body = problem_body(status, title, detail)
    lines = [
        f"HTTP/1.1 {status} {title}",
        f"Content-Type: {PROBLEM_JSON}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in {**SECURITY_HEADERS, **headers}.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: The figures of an item's `timing` that move with the clock, not with the item: left out
#: of an answer's ETag (the times they are reckoned from are in it).
CLOCK_FIGURES = ("queued_seconds", "running_seconds", "total_seconds", "since_change_seconds")


def json_response(
    request: web.Request,
    data: Any,
    status: int = 200,
    *,
    moving: Iterable[tuple[dict[str, Any], Sequence[str]]] = (),
) -> web.Response:
    """A JSON answer with a weak ETag (and 304 when the client has it already). The ETag is
    the answer's without the figures that only move with the clock (`moving`: each a dict of
    `data` and the keys of it to leave out: seconds since a change, an age): an answer where
    nothing but the clock moved is the one the client has, whose times let it reckon them."""
    held = [(d, {k: d.pop(k) for k in keys if k in d}) for d, keys in moving]
    basis = compact_json(data)
    for d, figures in held:
        d.update(figures)
    etag = 'W/"' + hashlib.sha256(basis).hexdigest()[:32] + '"'
    if status == 200 and request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    body = compact_json(data) if held else basis
    resp = web.Response(body=body, status=status, content_type="application/json")
    resp.headers["ETag"] = etag
    return resp


def whole(raw: str) -> int | None:
    """A whole number written in ASCII digits, else None (also for more digits than any bound
    here needs: `int()` refuses over 4300 of them with a ValueError)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 40:
        return None
    return int(raw)


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high]."""
    raw = request.query.get(name)
    if raw is None:
        return default
    value = whole(raw)
    if value is None or not low <= value <= high:
        raise Problem(
            400,
            "Bad Request",
            f"{name}: expected a whole number from {low} to {high}, got {raw[:40]!r}",
        )
    return value


def no_nul(name: str, value: str) -> str:
    """`value`, refused (400) when it holds a NUL (U+0000): no store can be asked for one
    (PostgreSQL's text cannot hold it; SQLite's text search takes it for the end of the
    query), and the API never gives one out."""
    if "\x00" in value:
        raise Problem(400, "Bad Request", f"{name}: must not contain NUL (U+0000)")
    return value


def item_key(request: web.Request) -> str:
    """The item key of a request's path (`{key}`)."""
    return no_nul("key", request.match_info["key"])


def item_query(
    request: web.Request,
    *,
    limit: int = 100,
    after: str | None = None,
    after_value: str | None = None,
) -> ItemQuery:
    """The filters of a request (shared by the item list and the live stream)."""
    q = request.query  # its names are checked (`check_params`)
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
    if text is not None and SEARCH_SEPARATOR in text:
        raise Problem(
            400, "Bad Request", "q: must not contain U+001F (it separates the searched fields)"
        )
    if text and len(text) < MIN_SEARCH:  # (an empty q is no search)
        raise Problem(
            400,
            "Bad Request",
            f"q: at least {MIN_SEARCH} characters (a search is read from an index of"
            f" {MIN_SEARCH}-character pieces)",
        )
    order = q.get("sort") or "key"
    if order not in SORTS:
        raise Problem(
            400, "Bad Request", f"sort: expected one of {', '.join(SORTS)}, got {order[:40]!r}"
        )
    return ItemQuery(
        vendor=q.get("vendor"),
        source=q.get("source"),
        kind=kind,
        lifecycle=lifecycle,
        verdict=verdict,
        application=q.get("application"),
        text=text or None,
        after=after,
        limit=limit,
        order=order,
        after_value=after_value,
    )


def wanted(query: ItemQuery) -> Any:
    """The same filters as a predicate over a change (for the live stream)."""
    text = query.text.casefold() if query.text else None

    def wants(change: Any) -> bool:
        item = change.after
        if query.vendor is not None and item.vendor != query.vendor:
            return False
        if query.source is not None and item.source != query.source:
            return False
        if query.kind is not None and item.kind != query.kind:
            return False
        if query.lifecycle is not None and item.lifecycle.value != query.lifecycle:
            return False
        if query.verdict is not None and item.verdict.value != query.verdict:
            return False
        # The application's name as a store's row keeps it: the item's, else the one before
        # it (an answer that stops naming the application keeps its name, as in `/items`).
        before = change.before
        name = item.application_name or (before.application_name if before else None)
        if query.application is not None and query.application not in (
            item.application_id,
            name,
        ):
            return False
        if text is not None:
            return text in search_text(item, name)
        return True

    return wants


def encode_cursor(key: str) -> str:
    """A page cursor: the last key, URL-safe base64."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The key a cursor of this API carries."""
    try:
        padded = cursor.encode() + b"=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(400, "Bad Request", "cursor: not a cursor this API gave") from None


def page_cursor(order: str, key: str, value: str | None) -> str:
    """The cursor of a page: the order, the last key and its value of the order's column
    (None in the key order), as URL-safe base64 of JSON after a NUL."""
    text = "\x00" + json.dumps([order, value, key], separators=(",", ":"))
    return encode_cursor(text)


def read_cursor(cursor: str, order: str) -> tuple[str, str | None]:
    """The (key, value) a cursor of this API carries; one of another shape, or given for
    another order, is a 400. (Whether its value is one its order can hold is the store's rule,
    `store.cursor_key`, which the item list asks before the store reads.)"""
    forged = Problem(400, "Bad Request", "cursor: not a cursor this API gave")
    text = decode_cursor(cursor)
    if not text.startswith("\x00"):
        raise forged
    try:
        given, value, key = json.loads(text[1:])
    except (ValueError, TypeError):
        raise forged from None
    if not isinstance(given, str) or not isinstance(key, str):
        raise forged
    if given != order:
        raise Problem(400, "Bad Request", "cursor: given for another sort")
    name = order.removeprefix("-")
    if not isinstance(value, str | None) or (name == "key" and value is not None):
        raise forged
    no_nul("cursor", key + (value or ""))  # what the store is asked for
    return key, value


#: A time as the API writes it (ISO 8601, UTC, `Z`), None for None.
ts = timestamp_or_none


#: `to_dict` of items without a vendor payload, by identity (the item kept with its dict, so
#: an id is never another item's): stores hand out one object per stored text
#: (`store._base.item_from_text`), so a page read again is not converted again. Bounded.
_LISTED: dict[int, tuple[Item, dict[str, Any]]] = {}
_LISTED_MAX = 4096


def _listed(item: Item) -> dict[str, Any]:
    """`to_dict(item)` without `raw`, as a new top-level dict (the nested values are shared:
    `entry` only adds top-level keys, and what it returns is encoded, never changed)."""
    hit = _LISTED.get(id(item))
    if hit is not None and hit[0] is item:
        return dict(hit[1])
    data = to_dict(item)
    data.pop("raw", None)
    if len(_LISTED) >= _LISTED_MAX:
        _LISTED.clear()
    _LISTED[id(item)] = (item, data)
    return dict(data)


def entry(
    stored: StoredItem, *, now: datetime, rule: StuckRule, raw: bool = False
) -> dict[str, Any]:
    """An item as the API shows it: the item (`to_dict`, its vendor payload only when `raw`),
    when it last changed, whether it is stuck (the stuck rule of `scanhub._stats`), its time
    in state (`timing`), the error of its last poll."""
    item = stored.item
    data: dict[str, Any]
    if raw or item.raw is not None:
        data = to_dict(item)
        if not raw:
            data.pop("raw", None)
    else:
        data = _listed(item)
    data["last_change"] = ts(stored.last_change)
    data["stuck"] = rule.stuck(stored, now)
    data["timing"] = timing(stored, now, rule)
    error = stored.last_error
    data["error"] = converter.unstructure(error) if error is not None else None
    return data


__all__ = [
    "ANY_PARAMS",
    "CLOCK_FIGURES",
    "CSP",
    "FILTERS",
    "MAX_ID",
    "PARAMS",
    "PROBLEM_JSON",
    "SECURITY_HEADERS",
    "Problem",
    "check_params",
    "decode_cursor",
    "encode_cursor",
    "entry",
    "int_param",
    "item_key",
    "item_query",
    "json_response",
    "no_nul",
    "page_cursor",
    "problem_body",
    "problem_response",
    "raw_problem",
    "read_cursor",
    "ts",
    "wanted",
    "whole",
]
