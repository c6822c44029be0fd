"""Changes for other systems: CloudEvents 1.0, and the crosswalk to GitHub check runs and to
OpenTelemetry's CI/CD semantic conventions.

The crosswalk is data (`GITHUB_STATUS`, `GITHUB_CONCLUSION`, `OTEL_RUN_STATE`, `OTEL_RESULT`),
tested and tabled in adapters.md, so a user can post a check run or an OTel span from a scanhub
item without re-deriving the mapping:

    status, conclusion = scanhub.github_check(item)        # ("completed", "failure")
    attributes = scanhub.otel_attributes(item)              # {"cicd.pipeline.run.state": ...}

CloudEvents: `to_cloudevent(change)` is the structured-mode JSON object of the specification
(required `specversion`, `id`, `source`, `type`; with `subject`, `time`, `datacontenttype` and
`data`). scanhub writes it itself rather than through the `cloudevents` SDK: the event is a
small dict, and the SDK would add dependencies to the core for no behaviour; the tests read
scanhub's events back with the SDK to show they conform.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ._changes import Change
from ._convert import compact_json, timestamp, to_dict
from ._model import Item, Lifecycle, Verdict

CLOUDEVENTS_SPECVERSION = "1.0"
#: `type` of an event, by item kind.
EVENT_TYPES: Mapping[str, str] = {
    "scan": "io.scanhub.scan.changed",
    "promotion": "io.scanhub.promotion.changed",
}

# --- GitHub check runs (REST "Create a check run": status, conclusion) ----------------------

#: Lifecycle -> check run `status` (queued, in_progress, completed).
GITHUB_STATUS: Mapping[Lifecycle, str] = {
    Lifecycle.QUEUED: "queued",
    Lifecycle.RUNNING: "in_progress",
    Lifecycle.UNKNOWN: "in_progress",  # tracked, not yet understood: not finished
    Lifecycle.SUCCEEDED: "completed",
    Lifecycle.FAILED: "completed",
    Lifecycle.CANCELLED: "completed",
    Lifecycle.EXPIRED: "completed",
}
#: (terminal Lifecycle, Verdict) -> check run `conclusion`. A succeeded item's conclusion is
#: its verdict's; the other terminal states decide by themselves.
GITHUB_CONCLUSION: Mapping[tuple[Lifecycle, Verdict], str] = {
    **{
        (Lifecycle.SUCCEEDED, v): c
        for v, c in (
            (Verdict.NONE, "success"),
            (Verdict.PASS, "success"),
            (Verdict.WARN, "neutral"),  # finished, worth a look, does not block
            (Verdict.ERROR, "failure"),  # the evaluation broke: blocks
            (Verdict.FAIL, "failure"),
        )
    },
    **{(Lifecycle.FAILED, v): "failure" for v in Verdict},
    **{(Lifecycle.CANCELLED, v): "cancelled" for v in Verdict},
    # The vendor forgot the item: nobody knows how it ended.
    **{(Lifecycle.EXPIRED, v): "timed_out" for v in Verdict},
}

# --- OpenTelemetry CI/CD semantic conventions ------------------------------------------------

#: Lifecycle -> `cicd.pipeline.run.state` (pending, executing, finalizing).
OTEL_RUN_STATE: Mapping[Lifecycle, str] = {
    Lifecycle.QUEUED: "pending",
    Lifecycle.RUNNING: "executing",
    Lifecycle.UNKNOWN: "executing",
    Lifecycle.SUCCEEDED: "finalizing",
    Lifecycle.FAILED: "finalizing",
    Lifecycle.CANCELLED: "finalizing",
    Lifecycle.EXPIRED: "finalizing",
}
#: (terminal Lifecycle, Verdict) -> `cicd.pipeline.result` (success, failure, error, timeout,
#: cancellation, skip).
OTEL_RESULT: Mapping[tuple[Lifecycle, Verdict], str] = {
    **{
        (Lifecycle.SUCCEEDED, v): r
        for v, r in (
            (Verdict.NONE, "success"),
            (Verdict.PASS, "success"),
            (Verdict.WARN, "success"),
            (Verdict.ERROR, "error"),  # the policy evaluation itself broke
            (Verdict.FAIL, "failure"),
        )
    },
    **{(Lifecycle.FAILED, v): "error" if v is Verdict.ERROR else "failure" for v in Verdict},
    **{(Lifecycle.CANCELLED, v): "cancellation" for v in Verdict},
    **{(Lifecycle.EXPIRED, v): "timeout" for v in Verdict},
}


def github_check(item: Item) -> tuple[str, str | None]:
    """(status, conclusion) of a GitHub check run for `item`; conclusion None until it is
    completed."""
    status = GITHUB_STATUS[item.lifecycle]
    if status != "completed":
        return status, None
    return status, GITHUB_CONCLUSION[(item.lifecycle, item.verdict)]


def otel_attributes(item: Item) -> dict[str, str]:
    """OpenTelemetry CI/CD attributes of `item`: the run state, and the result once finished."""
    attrs = {"cicd.pipeline.run.state": OTEL_RUN_STATE[item.lifecycle]}
    result = OTEL_RESULT.get((item.lifecycle, item.verdict))
    if result is not None:
        attrs["cicd.pipeline.result"] = result
    return attrs


def event_source(item: Item) -> str:
    """The CloudEvents `source` of an item: its vendor and configured source name (never a
    URL, so never a credential)."""
    return f"/scanhub/{quote(str(item.vendor), safe='')}/{quote(item.source, safe='')}"


def event_id(log: str, transition_id: int) -> str:
    """A transition's id for the world outside its store, a CloudEvent's `id` and a webhook's
    `webhook-id`: the store's log identity (`SinkLedger.log_id`) and the transition id, so
    that two services, two runs of `scanhub watch`, or a state file replaced by a new one
    never give one id to two transitions (CloudEvents: `source` + `id` unique per event;
    Standard Webhooks: unique across all messages). A copy of a state file keeps its
    identity."""
    return f"{log}-{transition_id}"


def cloudevent_json(change: Change, log: str | None = None) -> str:
    """`to_cloudevent` as the one JSON text scanhub writes for it (compact, UTF-8): what the
    live stream, `scanhub history` and `scanhub watch --format cloudevents` print."""
    return compact_json(to_cloudevent(change, log)).decode()


def to_cloudevent(change: Change, log: str | None = None) -> dict[str, Any]:
    """A change as a CloudEvents 1.0 structured-mode JSON object. `id` is `event_id(log,
    transition id)` given the log identity of the store that recorded it (what every scanhub
    reader gives: `store.sinks.log_id()`), the transition id alone without one, and a UUID
    for a change no store recorded; `data` is the item as `to_dict` without the vendor
    payload, plus `previous_lifecycle` and `previous_verdict` (None on a first sighting).

    Events never carry the vendor payload (`raw`): it can be large, it is the vendor's own
    shape (and may echo what the vendor was sent), and the log does not keep it. So a
    transition's event is the same bytes whoever builds it, live or from the log; the item
    itself (`GET /api/v1/items/{key}`, `Store.get`) offers the current payload."""
    after = change.after
    data = to_dict(after)
    data.pop("raw", None)
    before = change.before
    data["previous_lifecycle"] = before.lifecycle.value if before is not None else None
    data["previous_verdict"] = before.verdict.value if before is not None else None
    time = timestamp(change.observed_at)
    return {
        "specversion": CLOUDEVENTS_SPECVERSION,
        "id": (
            str(uuid.uuid4())
            if change.id is None
            else str(change.id)
            if log is None
            else event_id(log, change.id)
        ),
        "source": event_source(after),
        "type": EVENT_TYPES[after.kind],
        "subject": after.key,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }
