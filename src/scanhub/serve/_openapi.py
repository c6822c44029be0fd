"""The OpenAPI 3.1 description of the service (served at /api/v1/openapi.json): every status
each operation answers, errors included. The tests validate real answers against its schemas,
and drive schemathesis with it against a running service (tests/test_serve_contract.py)."""

from __future__ import annotations

from typing import Any

from .._model import Lifecycle, Verdict
from .._stats import WINDOWS
from ..store import ORDERS, OUTCOMES, PHASES, STAT_GROUPS
from ._http import MAX_ID

_LIFECYCLES = [lc.value for lc in Lifecycle]
_VERDICTS = [v.value for v in Verdict]
_TS = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_INTERNAL = (
    "an unexpected failure of the service (logged with its traceback; the body says nothing of it)"
)
_STORE_AWAY = "the store is unavailable; try again after `Retry-After` seconds"
_WRITE_AWAY = "the store did not take the write in time; try again after `Retry-After` seconds"
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "required": True}}


def _problem(description: str, *, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if retry:
        answer["headers"] = dict(_RETRY_AFTER)
    return answer


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _cached(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON answer with an ETag, and its 304 (If-None-Match)."""
    ok = _json(schema)
    ok["headers"] = {"ETag": {"schema": {"type": "string"}, "required": True}}
    return {"200": ok, "304": {"description": "not modified (If-None-Match matched the ETag)"}}


#: What a read answers with a 400 whatever its own parameters (`check_params`).
_UNKNOWN_PARAM = "a query parameter is unknown or given twice"


def _responses(answers: dict[str, Any], *, store: bool = True, **problems: str) -> dict[str, Any]:
    """`answers`, one problem+json answer per `problems` (status as `_400="..."`; a 503 comes
    with `Retry-After`), the 503 of an operation that reads the store (`store`) while it is
    away, and the 500 any operation may answer."""
    out = dict(answers)
    if store:
        out["503"] = _problem(_STORE_AWAY, retry=True)
    for status, description in problems.items():
        code = status.lstrip("_")
        out[code] = _problem(description, retry=code == "503")
    out["500"] = _problem(_INTERNAL)
    return out


def _limit(maximum: int, default: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        "description": f"at most this many (1 to {maximum})",
    }


def _event_id(name: str, where: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        "description": "resume after this transition id (the header wins over the query)",
    }


def _since() -> dict[str, Any]:
    return {
        "name": "since",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0},
        "description": "transitions after this id",
    }


#: One event of the live stream (a `retry:` line and `:` heartbeat comments carry no data and
#: are no events): `change`, with the transition id and the CloudEvent as JSON; first, when the
#: client resumes past the end of the log, `reset`. A client that reads slowly is caught up
#: from the store, losing nothing (no event says so).
_SSE_EVENT = {
    "oneOf": [
        {
            "type": "object",
            "description": "a transition",
            "required": ["event", "id", "data"],
            "properties": {
                "event": {"const": "change"},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": _ref("CloudEvent"),
                },
            },
        },
        {
            "type": "object",
            "description": "first, when Last-Event-ID is past the end of the log (a client of "
            "another state): the stream resumes from the newest transition (`id`); what the "
            "client holds is to be read again",
            "required": ["event", "id", "data"],
            "properties": {
                "event": {"const": "reset"},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "required": ["last_event_id", "newest", "detail"],
                        "properties": {
                            "last_event_id": {"type": "integer"},
                            "newest": {"type": "integer"},
                            "detail": {"type": "string"},
                        },
                    },
                },
            },
        },
    ]
}


#: A filter's text: anything but NUL (U+0000), which no store can be asked for (a 400).
_TEXT = {"type": "string", "pattern": "^[^\\u0000]*$"}

FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
    for name, schema, text in (
        ("vendor", _TEXT, "only items of this vendor"),
        ("source", _TEXT, "only items of this configured source"),
        ("kind", {"enum": ["scan", "promotion"]}, "scan or promotion"),
        ("lifecycle", {"enum": _LIFECYCLES}, "only items in this lifecycle"),
        ("verdict", {"enum": _VERDICTS}, "only items with this verdict"),
        ("application", _TEXT, "only items of this application id"),
        (
            "q",
            {"type": "string", "pattern": "^([^\\u0000\\u001f]{3,})?$", "maxLength": 200},
            "text, case-insensitive, within one of an item's key, id, application id or name,"
            " message, a promotion's version and stages, a scan's type (not the vendor status);"
            " at least 3 characters, found through an index of 3-character pieces (an empty"
            " `q` is no search)",
        ),
    )
]

_DESCRIPTION = """\
Where application-security scans and release promotions stand, across vendors, in one
vocabulary.

Every error is `application/problem+json` (RFC 9457), including those answered before a
request reaches an operation: 400 for a request that is not HTTP/1.1 or whose request line or
a header is too long, 408 when the request line and headers (or the body) do not arrive in
time, 503 when the service has as many connections open as it takes (each then closes the
connection). Every operation but `/healthz`, `/readyz` and the webhooks answers 421 (and closes
the connection) when the request's `Host` names a host the service does not answer for (by
default its loopback names and its address; `scanhub serve --allowed-host` adds others). Every
operation that reads or writes the store answers 503 with `Retry-After` while the store is
away."""


def openapi(*, writes: bool = True) -> dict[str, Any]:
    """The document; `writes=False` for a service without a token, whose writes answer 403
    whatever the request (so they do not ask for a bearer token either)."""
    doc = _time_in_state(_document())
    if not writes:
        _read_only(doc)
    return doc


def _read_only(doc: dict[str, Any]) -> None:
    off = "writes are not enabled in this service (it has no token configured)"
    for path, method in (
        ("/api/v1/track", "post"),
        ("/api/v1/items/{key}", "delete"),
        ("/api/v1/sinks/{name}/replay", "post"),
    ):
        op = doc["paths"][path][method]
        del op["security"]
        op["description"] = off
        kept = {"403", "408", "413", "500"}  # the body is read (or refused) before the 403
        op["responses"] = {k: v for k, v in op["responses"].items() if k in kept}
        op["responses"]["403"] = _problem(off)


def _document() -> dict[str, Any]:
    key = {
        "name": "key",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^\\u0000]*$"},
        "description": "an item's key, as `key` in its entry (never with a NUL: a 400)",
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "scanhub", "version": "1", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "the process is alive",
                    "responses": _responses({"200": _json(_ref("Health"))}, store=False),
                }
            },
            "/readyz": {
                "get": {
                    "summary": "the store is open and the engine is running",
                    "responses": _responses(
                        {"200": _json(_ref("Health"))},
                        store=False,
                        _503="not ready: the engine is not polling, or the store does not answer "
                        "or take commits",
                    ),
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format)",
                    "responses": _responses(
                        {
                            "200": {
                                "description": "the metrics",
                                "content": {"text/plain": {"schema": {"type": "string"}}},
                            }
                        }
                    ),
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": _responses(
                        _cached({"type": "object"}), store=False, _400=_UNKNOWN_PARAM
                    ),
                }
            },
            "/api/v1/items": {
                "get": {
                    "summary": "tracked items, filtered, with cursor pagination",
                    "parameters": [
                        *FILTERS,
                        _limit(1000, 100),
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "`next_cursor` of the page before; anything else "
                            "is a 400",
                        },
                    ],
                    "responses": _responses(
                        _cached(_ref("ItemList")),
                        _400="a query parameter is unknown, given twice or its value is wrong",
                    ),
                }
            },
            "/api/v1/items/{key}": {
                "get": {
                    "summary": "one item, with its vendor payload",
                    "parameters": [key],
                    "responses": _responses(
                        _cached(_ref("ItemEntry")),
                        _400="the key holds a NUL, or " + _UNKNOWN_PARAM,
                        _404="no such item",
                    ),
                },
                "delete": {
                    "summary": "stop tracking an item (bearer token)",
                    "parameters": [key],
                    "security": [{"bearer": []}],
                    "responses": _responses(
                        {"204": {"description": "untracked"}},
                        _400="the key holds a NUL",
                        _401="no or a wrong bearer token",
                        _403="writes are not enabled (no token configured)",
                        _404="no such item",
                        _503=_WRITE_AWAY,
                    ),
                },
            },
            "/api/v1/items/{key}/history": {
                "get": {
                    "summary": "an item's recorded transitions, oldest first",
                    "description": "Also of an item no longer tracked: the log keeps its "
                    "transitions after an untrack (404 when the key is neither tracked nor in "
                    "the log after `since`).",
                    "parameters": [key, _since(), _limit(10_000, 1000)],
                    "responses": _responses(
                        _cached(_ref("EventList")),
                        _400="`since` or `limit` is wrong, the key holds a NUL, or "
                        + _UNKNOWN_PARAM,
                        _404="no such item",
                    ),
                }
            },
            "/api/v1/events": {
                "get": {
                    "summary": "transitions recorded after an id, as CloudEvents",
                    "parameters": [_since(), _limit(10_000, 1000)],
                    "responses": _responses(
                        _cached(_ref("EventList")),
                        _400="`since` or `limit` is wrong, or " + _UNKNOWN_PARAM,
                    ),
                }
            },
            "/api/v1/events/stream": {
                "get": {
                    "summary": "live transitions (Server-Sent Events; id = transition id, data = "
                    "CloudEvent; resume with Last-Event-ID)",
                    "description": "The schema of the `text/event-stream` answer describes one "
                    "event. A `: heartbeat` comment comes every 15 s. A client that reads "
                    "slowly loses nothing: it is caught up from the store. Should the store fail "
                    "once the stream began, the connection is closed (reconnect with "
                    "Last-Event-ID).",
                    "parameters": [
                        *FILTERS,
                        _event_id("last_event_id", "query"),
                        _event_id("Last-Event-ID", "header"),
                    ],
                    "responses": _responses(
                        {
                            "200": {
                                "description": "an event stream, until the client or the "
                                "service goes away",
                                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                            }
                        },
                        store=False,
                        _400="a query parameter is unknown, given twice or its value is wrong, "
                        "or Last-Event-ID is not a transition id",
                    ),
                }
            },
            "/api/v1/summary": {
                "get": {
                    "summary": "counts and oldest unfinished items",
                    "responses": _responses(_cached(_ref("Summary")), _400=_UNKNOWN_PARAM),
                }
            },
            "/api/v1/sources": {
                "get": {
                    "summary": "configured sources and their health",
                    "responses": _responses(_cached(_ref("SourceList")), _400=_UNKNOWN_PARAM),
                }
            },
            "/api/v1/track": {
                "post": {
                    "summary": "track an item or a discovery query (bearer token); the body is a "
                    "[[track]] table of the configuration",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _ref("TrackRequest"),
                                "example": {"source": "appsecplus", "application_id": "app-12345"},
                            }
                        },
                    },
                    "responses": _responses(
                        {"201": _json(_ref("TrackResult"), "tracked")},
                        _400="the body is not JSON, is nested too deeply, or is not a [[track]] "
                        "table of a configured source",
                        _401="no or a wrong bearer token",
                        _403="writes are not enabled (no token configured)",
                        _408="the body did not arrive in time",
                        _413="the body is too large",
                        _502="the vendor refused the lookup or could not be reached",
                        _503=_WRITE_AWAY,
                    ),
                }
            },
            **_sink_paths(),
            "/webhooks/{vendor}/{source}": {
                "post": {
                    "summary": "a vendor's webhook delivery, signed as that vendor signs it",
                    "description": "The headers a delivery carries (its signature, event type, "
                    "delivery id) are the vendor's own; adapters.md says which for each vendor "
                    "that sends webhooks. A delivery without a right signature is a 401.",
                    "parameters": [
                        {
                            "name": "vendor",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "the source's vendor",
                            "example": "iq",
                        },
                        {
                            "name": "source",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "a configured source's name",
                            "example": "iq",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": _responses(
                        {
                            "200": _json(_ref("WebhookResult")),
                            "202": _json(_ref("WebhookResult"), "accepted, not handled"),
                        },
                        _400="a signed delivery the vendor adapter cannot read",
                        _401="missing or bad signature",
                        _404="no webhook for this source",
                        _408="the body did not arrive in time",
                        _413="the body is too large",
                        _503=_WRITE_AWAY,
                    ),
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}},
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                    },
                },
                "Item": {
                    "type": "object",
                    "required": [
                        "kind",
                        "key",
                        "vendor",
                        "source",
                        "id",
                        "application_id",
                        "lifecycle",
                        "vendor_status",
                        "verdict",
                        "links",
                    ],
                    "properties": {
                        "kind": {"enum": ["scan", "promotion"]},
                        "key": {"type": "string"},
                        "vendor": {"type": "string"},
                        "source": {"type": "string"},
                        "id": {"type": "string"},
                        "application_id": {"type": "string"},
                        "lifecycle": {"enum": _LIFECYCLES},
                        "vendor_status": {"type": "string"},
                        "verdict": {"enum": _VERDICTS},
                        "message": {"type": ["string", "null"]},
                        "links": {"type": "object", "additionalProperties": {"type": "string"}},
                        "created_at": _TS,
                        "started_at": _TS,
                        "finished_at": _TS,
                        "updated_at": _TS,
                    },
                },
                "ItemEntry": {
                    "allOf": [
                        _ref("Item"),
                        {
                            "type": "object",
                            "required": ["last_change", "stuck"],
                            "properties": {
                                "last_change": _TS,
                                "stuck": {"type": "boolean"},
                                "error": {"type": ["object", "null"]},
                            },
                        },
                    ]
                },
                "ItemList": {
                    "type": "object",
                    "required": ["items", "next_cursor", "total"],
                    "properties": {
                        "items": {"type": "array", "items": _ref("ItemEntry")},
                        "next_cursor": {"type": ["string", "null"]},
                        "total": {"type": "integer"},
                    },
                },
                "CloudEvent": {
                    "type": "object",
                    "required": [
                        "specversion",
                        "id",
                        "source",
                        "type",
                        "subject",
                        "time",
                        "datacontenttype",
                        "data",
                    ],
                    "properties": {
                        "specversion": {"const": "1.0"},
                        "id": {
                            "type": "string",
                            "pattern": "^[0-9a-f]+-[0-9]+$",
                            "description": "<log identity>-<transition id>",
                        },
                        "source": {"type": "string"},
                        "type": {
                            "enum": ["io.scanhub.scan.changed", "io.scanhub.promotion.changed"]
                        },
                        "subject": {"type": "string"},
                        "time": {"type": "string", "format": "date-time"},
                        "datacontenttype": {"const": "application/json"},
                        "data": _ref("Item"),
                    },
                },
                "EventList": {
                    "type": "object",
                    "required": ["events", "last_id"],
                    "properties": {
                        "events": {"type": "array", "items": _ref("CloudEvent")},
                        "last_id": {"type": "integer"},
                    },
                },
                "Summary": {
                    "type": "object",
                    "required": ["total", "by_vendor_lifecycle", "by_verdict", "oldest_unfinished"],
                    "properties": {
                        "total": {"type": "integer"},
                        "by_vendor_lifecycle": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": {"type": "integer"},
                            },
                        },
                        "by_verdict": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                        "oldest_unfinished": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["key", "since", "age_seconds"],
                                "properties": {
                                    "key": {"type": "string"},
                                    "since": {"type": "string"},
                                    "age_seconds": {"type": "number"},
                                },
                            },
                        },
                    },
                },
                "Source": {
                    "type": "object",
                    "required": [
                        "name",
                        "vendor",
                        "base_url",
                        "up",
                        "items",
                        "active",
                        "polled_here",
                        "last_success",
                        "last_error",
                        "paused_until",
                        "concurrency",
                    ],
                    "properties": {
                        "name": {"type": "string"},
                        "vendor": {"type": "string"},
                        "base_url": {"type": "string", "description": "without credentials"},
                        "up": {"type": "boolean"},
                        "items": {"type": "integer", "description": "tracked items (the store's)"},
                        "active": {
                            "type": "integer",
                            "description": "unfinished items this process polls",
                        },
                        "polled_here": {
                            "type": "boolean",
                            "description": "whether this process polls the source (on a "
                            "shared store: holds its lease)",
                        },
                        "last_success": _TS,
                        "last_error": {"type": ["object", "null"]},
                        "paused_until": _TS,
                        "concurrency": {"type": "integer"},
                    },
                },
                "SourceList": {
                    "type": "object",
                    "required": ["sources"],
                    "properties": {"sources": {"type": "array", "items": _ref("Source")}},
                },
                "TrackRequest": {
                    "type": "object",
                    "required": ["source"],
                    "properties": {"source": {"type": "string"}},
                    "additionalProperties": True,
                },
                "TrackResult": {
                    "type": "object",
                    "required": ["tracked", "rule"],
                    "properties": {
                        "tracked": {"type": "array", "items": {"type": "string"}},
                        "rule": {"type": ["object", "null"]},
                    },
                },
                **_sink_schemas(),
                "WebhookResult": {
                    "type": "object",
                    "required": ["outcome", "detail"],
                    "properties": {
                        "outcome": {"enum": ["applied", "duplicate", "ignored"]},
                        "detail": {"type": "string"},
                        "keys": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


def _sink_paths() -> dict[str, Any]:
    """The sinks' paths: health, dead letters, replay (every status each answers)."""
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "a configured sink's name (`[[sink]]` `name`; any other is a 404)",
    }
    return {
        "/api/v1/sinks": {
            "get": {
                "summary": "configured sinks: state (active, retrying, disabled), cursor, lag in "
                "events and seconds, last success, last error",
                "responses": _responses(_cached(_ref("SinkList")), _400=_UNKNOWN_PARAM),
            }
        },
        "/api/v1/sinks/{name}/dead": {
            "get": {
                "summary": "a sink's dead letters (deliveries given up on), oldest first",
                "parameters": [
                    name,
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_ID,
                            "default": 0,
                        },
                        "description": "dead letters after this transition id (`next_after` of "
                        "the page before)",
                    },
                    _limit(1000, 100),
                ],
                "responses": _responses(
                    _cached(_ref("DeadLetterList")),
                    _400="`after` or `limit` is wrong, or " + _UNKNOWN_PARAM,
                    _404="no such sink",
                ),
            }
        },
        "/api/v1/sinks/{name}/replay": {
            "post": {
                "summary": "deliver again from an id ({from}), from the first dead letter "
                "({dead: true}), or resume (no body: a disabled sink where it stopped, else "
                "from its first dead letter); bearer token",
                "description": "Everything after that point is delivered again (receivers "
                "deduplicate by `webhook-id`); the replica delivering for the sink notices the "
                "moved cursor in the store.",
                "security": [{"bearer": []}],
                "parameters": [name],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("ReplayRequest")}},
                },
                "responses": _responses(
                    {"202": _json(_ref("ReplayResult"), "the cursor moved; delivery resumes")},
                    _400="the body is not JSON, or not {from: ID}, {dead: true} or nothing",
                    _401="no or a wrong bearer token",
                    _403="writes are not enabled (no token configured)",
                    _404="no such sink",
                    _408="the body did not arrive in time",
                    _409="nothing to resume (no dead letter, not disabled): give an id; or"
                    " `from` is past the end of the log (more than one past its newest id)",
                    _413="the body is too large",
                ),
            }
        },
    }


def _sink_schemas() -> dict[str, Any]:
    """The sinks' schemas."""
    count = {"type": "integer", "minimum": 0}
    return {
        "Sink": {
            "type": "object",
            "required": [
                "name",
                "kind",
                "target",
                "state",
                "cursor",
                "lag_events",
                "lag_seconds",
                "last_success",
                "last_error",
                "delivered",
                "failures",
                "dead",
                "delivering_here",
            ],
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["webhook", "slack"]},
                "mode": {"enum": ["structured", "binary"]},
                "target": {"type": "string", "description": "scheme, host and port only"},
                "signed": {"type": "boolean"},
                "filter": {"type": "array", "items": {"type": "object"}},
                "state": {"enum": ["active", "retrying", "disabled"]},
                "cursor": {"type": ["integer", "null"]},
                "lag_events": count,
                "lag_seconds": {"type": "number", "minimum": 0},
                "last_success": _TS,
                "last_error": {
                    "type": ["object", "null"],
                    "required": ["message", "at", "status"],
                    "properties": {
                        "message": {"type": "string"},
                        "at": _TS,
                        "status": {"type": ["integer", "null"]},
                    },
                },
                "retrying": {
                    "type": ["object", "null"],
                    "properties": {
                        "id": {"type": ["integer", "null"]},
                        "attempts": count,
                        "next_attempt": _TS,
                    },
                },
                "delivered": count,
                "failures": count,
                "dead": count,
                "delivering_here": {"type": "boolean"},
            },
        },
        "SinkList": {
            "type": "object",
            "required": ["sinks"],
            "properties": {"sinks": {"type": "array", "items": _ref("Sink")}},
        },
        "DeadLetter": {
            "type": "object",
            "required": ["id", "key", "attempts", "first_attempt", "last_attempt", "error"],
            "properties": {
                "id": {"type": "integer"},
                "key": {"type": "string"},
                "attempts": count,
                "first_attempt": _TS,
                "last_attempt": _TS,
                "status": {"type": ["integer", "null"]},
                "error": {"type": "string"},
            },
        },
        "DeadLetterList": {
            "type": "object",
            "required": ["dead", "next_after"],
            "properties": {
                "dead": {"type": "array", "items": _ref("DeadLetter")},
                "next_after": {"type": ["integer", "null"]},
            },
        },
        "ReplayRequest": {
            "type": "object",
            "properties": {
                "from": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "dead": {"const": True},
            },
            "additionalProperties": False,
        },
        "ReplayResult": {
            "type": "object",
            "required": ["replayed_from", "sink"],
            "properties": {"replayed_from": {"type": "integer"}, "sink": _ref("Sink")},
        },
    }


# --- time in state (issue 22) ---------------------------------------------------------------

_SORTS = [o for name in ORDERS for o in (name, "-" + name)]
_SECONDS = {"type": ["number", "null"], "minimum": 0}
#: `group_by` as `_stats.parse_group_by` reads it: names of STAT_GROUPS separated by commas,
#: spaces, tabs and line breaks around them and empty places skipped (`_GROUP_BY`), none
#: twice (`_TWICE` must not match).
_NAME = "(" + "|".join(STAT_GROUPS) + ")"
_S = "[ \\t\\n]*"
_GROUP_BY = f"^{_S}{_NAME}?{_S}(,{_S}{_NAME}?{_S})*$"
_TWICE = f"(^|,){_S}{_NAME}{_S},([\\s\\S]*,)?{_S}\\2{_S}(,|$)"


def _time_in_state(doc: dict[str, Any]) -> dict[str, Any]:
    """The stats report, the items' `sort`, and each item's `timing`."""
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    paths["/api/v1/items"]["get"]["parameters"].append(
        {
            "name": "sort",
            "in": "query",
            "schema": {"enum": _SORTS, "default": "key"},
            "description": "the order: key, changed (last change), since (start), vendor, "
            "source, kind, lifecycle, verdict or application; '-' first for descending "
            "(an item never changed sorts first ascending, last descending); the cursor "
            "continues the same order",
        }
    )
    paths["/api/v1/stats"] = {
        "get": {
            "summary": "time in state: per group, the items that finished in the window (as "
            "scanhub saw them finish), their failure and blocked rates and p50/p90/max of "
            "queue, run and total time; transitions per bucket and outcome; stuck items per "
            "source and kind",
            "parameters": [
                {
                    "name": "window",
                    "in": "query",
                    "schema": {"enum": list(WINDOWS), "default": "24h"},
                    "description": "the window, ending now",
                },
                {
                    "name": "group_by",
                    "in": "query",
                    "schema": {
                        "type": "string",
                        "pattern": _GROUP_BY,
                        "not": {"pattern": _TWICE},
                        "default": "source,kind",
                    },
                    "description": "comma-separated, each once: vendor, source, kind (empty: "
                    "one group)",
                },
            ],
            "responses": _responses(
                _cached(_ref("Stats")),
                _400="a query parameter is unknown, given twice or its value is wrong",
            ),
        }
    }
    entry = schemas["ItemEntry"]["allOf"][1]
    entry["required"].append("timing")
    entry["properties"]["timing"] = _ref("Timing")
    schemas["Timing"] = {
        "type": "object",
        "description": "time in state: kept times, seconds queued, running and under way "
        "(until now while unfinished; null where not known, such as an item first seen "
        "finished), since the last change, and the stuck threshold and its basis",
        "required": [
            "since",
            "running_at",
            "finished_at",
            "queued_seconds",
            "running_seconds",
            "total_seconds",
            "since_change_seconds",
            "stuck_after_seconds",
            "stuck_basis",
        ],
        "properties": {
            "since": _TS,
            "running_at": _TS,
            "finished_at": _TS,
            "queued_seconds": _SECONDS,
            "running_seconds": _SECONDS,
            "total_seconds": _SECONDS,
            "since_change_seconds": _SECONDS,
            "stuck_after_seconds": {"type": "number", "exclusiveMinimum": 0},
            "stuck_basis": {"enum": ["configured", "p90", "default"]},
        },
    }
    schemas["Spread"] = {
        "type": "object",
        "description": "seconds: how many items had the phase, median, 90th percentile "
        "(interpolated) and longest",
        "required": ["n", "p50", "p90", "max"],
        "properties": {
            "n": {"type": "integer", "minimum": 0},
            "p50": _SECONDS,
            "p90": _SECONDS,
            "max": _SECONDS,
        },
    }
    label = {"type": ["string", "null"]}
    count = {"type": "integer", "minimum": 0}
    rate = {"type": "number", "minimum": 0, "maximum": 1}
    schemas["Stats"] = {
        "type": "object",
        "required": ["window", "since", "until", "group_by", "groups", "activity", "stuck"],
        "properties": {
            "window": {"enum": list(WINDOWS)},
            "since": {"type": "string", "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            "group_by": {"type": "array", "items": {"enum": list(STAT_GROUPS)}},
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "vendor",
                        "source",
                        "kind",
                        "finished",
                        "failed",
                        "cancelled",
                        "blocked",
                        "failure_rate",
                        "blocked_rate",
                        *PHASES,
                    ],
                    "properties": {
                        "vendor": label,
                        "source": label,
                        "kind": label,
                        "finished": count,
                        "failed": count,
                        "cancelled": count,
                        "blocked": count,
                        "failure_rate": rate,
                        "blocked_rate": rate,
                        **{phase: _ref("Spread") for phase in PHASES},
                    },
                },
            },
            "activity": {
                "type": "object",
                "required": ["bucket_seconds", "outcomes", "buckets"],
                "properties": {
                    "bucket_seconds": {"type": "integer", "minimum": 1},
                    "outcomes": {"type": "array", "items": {"enum": list(OUTCOMES)}},
                    "buckets": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["start", "counts"],
                            "properties": {
                                "start": {"type": "string", "format": "date-time"},
                                "counts": {
                                    "type": "object",
                                    "propertyNames": {"enum": list(OUTCOMES)},
                                    "additionalProperties": count,
                                },
                            },
                        },
                    },
                },
            },
            "stuck": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "vendor",
                        "source",
                        "kind",
                        "stuck_after_seconds",
                        "basis",
                        "stuck",
                    ],
                    "properties": {
                        "vendor": {"type": "string"},
                        "source": {"type": "string"},
                        "kind": {"type": "string"},
                        "stuck_after_seconds": {"type": "number", "exclusiveMinimum": 0},
                        "basis": {"enum": ["configured", "p90", "default"]},
                        "stuck": count,
                    },
                },
            },
        },
    }
    return doc
