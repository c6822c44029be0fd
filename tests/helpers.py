from __future__ import annotations

import json
from typing import Any

from scanhub.sansio import Response


def resp(
    status: int = 200,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    operation: str = "op",
    url: str = "",
) -> Response:
    """A Response whose body is `body` as JSON (bytes and str are sent as they are)."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    return Response(status, raw, {k.lower(): v for k, v in (headers or {}).items()}, operation, url)


def transition_of(event_id: str) -> int:
    """The transition id in a CloudEvent's id (`<log identity>-<transition id>`, `event_id`)."""
    log, _, tid = event_id.rpartition("-")
    assert len(log) == 16 and tid.isdigit(), event_id
    return int(tid)
