"""The OpenAPI 3.1 description of the service's JSON API (served at /api/v1/openapi.json; the
tests validate real answers against it)."""

from __future__ import annotations

from typing import Any

from .._model import Lifecycle, Verdict
from .._stats import WINDOWS
from ..store import ORDERS, OUTCOMES, PHASES, STAT_GROUPS

_LIFECYCLES = [lc.value for lc in Lifecycle]
_VERDICTS = [v.value for v in Verdict]
_TS = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
    for name, schema, text in (
        ("vendor", {"type": "string"}, "only items of this vendor"),
        ("source", {"type": "string"}, "only items of this configured source"),
        ("kind", {"enum": ["scan", "promotion"]}, "scan or promotion"),
        ("lifecycle", {"enum": _LIFECYCLES}, "only items in this lifecycle"),
        ("verdict", {"enum": _VERDICTS}, "only items with this verdict"),
        ("application", {"type": "string"}, "only items of this application id"),
        (
            "q",
            {"type": "string", "maxLength": 200},
            "text in key, id, application, status or message",
        ),
    )
]


def openapi() -> dict[str, Any]:
    """The document."""
    return _time_in_state(_document())


def _document() -> dict[str, Any]:
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    }
    key = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scanhub",
            "version": "1",
            "description": "Where application-security scans and release promotions stand, "
            "across vendors, in one vocabulary.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "the process is alive",
                    "responses": {"200": _json(_ref("Health"))},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "the store is open and the engine is running",
                    "responses": {"200": _json(_ref("Health")), "503": _problem("not ready")},
                }
            },
            "/api/v1/items": {
                "get": {
                    "summary": "tracked items, filtered, with cursor pagination",
                    "parameters": [
                        *FILTERS,
                        limit,
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(_ref("ItemList")),
                        "304": {"description": "not modified (If-None-Match)"},
                        "400": _problem("a query value is wrong"),
                    },
                }
            },
            "/api/v1/items/{key}": {
                "get": {
                    "summary": "one item",
                    "parameters": [key],
                    "responses": {"200": _json(_ref("ItemEntry")), "404": _problem("no such item")},
                },
                "delete": {
                    "summary": "stop tracking an item (bearer token)",
                    "parameters": [key],
                    "security": [{"bearer": []}],
                    "responses": {
                        "204": {"description": "untracked"},
                        "401": _problem("wrong token"),
                        "403": _problem("writes are not enabled (no token configured)"),
                        "404": _problem("no such item"),
                    },
                },
            },
            "/api/v1/items/{key}/history": {
                "get": {
                    "summary": "an item's recorded transitions, oldest first",
                    "parameters": [key, limit],
                    "responses": {"200": _json(_ref("EventList")), "404": _problem("no such item")},
                }
            },
            "/api/v1/events": {
                "get": {
                    "summary": "transitions recorded after an id, as CloudEvents",
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        limit,
                    ],
                    "responses": {"200": _json(_ref("EventList")), "400": _problem("bad since")},
                }
            },
            "/api/v1/events/stream": {
                "get": {
                    "summary": "live transitions (Server-Sent Events; id = transition id, data = "
                    "CloudEvent; resume with Last-Event-ID)",
                    "parameters": [
                        *FILTERS,
                        {"name": "last_event_id", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {}},
                        }
                    },
                }
            },
            "/api/v1/summary": {
                "get": {
                    "summary": "counts and oldest unfinished items",
                    "responses": {"200": _json(_ref("Summary"))},
                }
            },
            "/api/v1/sources": {
                "get": {
                    "summary": "configured sources and their health",
                    "responses": {"200": _json(_ref("SourceList"))},
                }
            },
            "/api/v1/track": {
                "post": {
                    "summary": "track an item or a discovery query (bearer token); the body is a "
                    "[[track]] table of the configuration",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "content": {"application/json": {"schema": _ref("TrackRequest")}}
                    },
                    "responses": {
                        "201": _json(_ref("TrackResult")),
                        "400": _problem("the body is wrong"),
                        "401": _problem("wrong token"),
                        "403": _problem("writes are not enabled (no token configured)"),
                        "413": _problem("body too large"),
                    },
                }
            },
            "/webhooks/{vendor}/{source}": {
                "post": {
                    "summary": "a vendor's webhook delivery (Sonatype IQ: signed with HMAC-SHA1)",
                    "parameters": [
                        {
                            "name": "vendor",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "source",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("WebhookResult")),
                        "202": _json(_ref("WebhookResult"), "accepted, not handled"),
                        "401": _problem("missing or bad signature"),
                        "404": _problem("no webhook for this source"),
                        "413": _problem("body too large"),
                    },
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
                        "id": {"type": "string"},
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
                    "required": ["name", "vendor", "base_url", "up", "items"],
                    "properties": {
                        "name": {"type": "string"},
                        "vendor": {"type": "string"},
                        "base_url": {"type": "string"},
                        "up": {"type": "boolean"},
                        "items": {"type": "integer"},
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


# --- time in state (issue 22) ---------------------------------------------------------------

_SORTS = [o for name in ORDERS for o in (name, "-" + name)]
_SECONDS = {"type": ["number", "null"], "minimum": 0}


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
                    "schema": {"type": "string", "default": "source,kind"},
                    "description": "comma-separated, each once: vendor, source, kind (empty: "
                    "one group)",
                },
            ],
            "responses": {
                "200": _json(_ref("Stats")),
                "304": {"description": "not modified (If-None-Match)"},
                "400": _problem("a query value is wrong"),
            },
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
