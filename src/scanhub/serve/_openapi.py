"""The OpenAPI 3.1 description of the service's JSON API (served at /api/v1/openapi.json; the
tests validate real answers against it)."""

from __future__ import annotations

from typing import Any

from .._model import Lifecycle, Verdict

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
            **_sink_paths(),
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
    """The sinks' paths: health, dead letters, replay."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/sinks": {
            "get": {
                "summary": "configured sinks: state (active, retrying, disabled), cursor, lag in "
                "events and seconds, last success, last error",
                "responses": {"200": _json(_ref("SinkList"))},
            }
        },
        "/api/v1/sinks/{name}/dead": {
            "get": {
                "summary": "a sink's dead letters (deliveries given up on), oldest first",
                "parameters": [
                    name,
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {
                    "200": _json(_ref("DeadLetterList")),
                    "400": _problem("a query value is wrong"),
                    "404": _problem("no such sink"),
                },
            }
        },
        "/api/v1/sinks/{name}/replay": {
            "post": {
                "summary": "deliver again from an id ({from}), from the first dead letter "
                "({dead: true}), or resume (no body: a disabled sink where it stopped, else "
                "from its first dead letter); bearer token",
                "security": [{"bearer": []}],
                "parameters": [name],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("ReplayRequest")}},
                },
                "responses": {
                    "202": _json(_ref("ReplayResult"), "the cursor moved; delivery resumes"),
                    "400": _problem("the body is wrong"),
                    "401": _problem("wrong token"),
                    "403": _problem("writes are not enabled (no token configured)"),
                    "404": _problem("no such sink"),
                    "409": _problem("nothing to resume: give an id"),
                    "413": _problem("body too large"),
                },
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
                "from": {"type": "integer", "minimum": 1},
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
