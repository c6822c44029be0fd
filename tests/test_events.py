"""CloudEvents 1.0 and the crosswalk to GitHub check runs and OpenTelemetry CI/CD."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cloudevents.v1.http import from_json

from scanhub import (
    Change,
    Lifecycle,
    Promotion,
    Scan,
    Vendor,
    Verdict,
    github_check,
    otel_attributes,
    to_cloudevent,
)
from scanhub._exports import (
    GITHUB_CONCLUSION,
    GITHUB_STATUS,
    OTEL_RESULT,
    OTEL_RUN_STATE,
    cloudevent_json,
    event_id,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {"specversion", "id", "source", "type"}


def scan(lc: Lifecycle, verdict: Verdict = Verdict.NONE) -> Scan:
    return Scan(Vendor.APPSECPLUS, "asp-prod", "scan-1", "app", lc, lc.value, verdict)


def test_a_change_is_a_valid_structured_cloudevent() -> None:
    before, after = scan(Lifecycle.RUNNING), scan(Lifecycle.SUCCEEDED, Verdict.PASS)
    event = to_cloudevent(Change(before, after, NOW, 42))
    assert set(event) >= REQUIRED and event["specversion"] == "1.0"
    assert event["id"] == "42" and event["subject"] == after.key
    assert event["type"] == "io.scanhub.scan.changed"
    assert event["source"] == "/scanhub/appsecplus/asp-prod"
    assert event["time"] == "2026-11-01T12:00:00.000000Z"
    assert event["data"]["lifecycle"] == "succeeded"
    assert event["data"]["previous_lifecycle"] == "running"
    assert event["data"]["previous_verdict"] == "none"
    parsed = from_json(json.dumps(event))  # the SDK reads it back and checks required fields
    assert parsed["id"] == "42" and parsed.data["key"] == after.key
    # Given the identity of the log that recorded it (every scanhub reader gives it), the id
    # names the log too: two stores' transition 42 are two events.
    named = to_cloudevent(Change(before, after, NOW, 42), "0123456789abcdef")
    assert named["id"] == event_id("0123456789abcdef", 42) == "0123456789abcdef-42"
    assert {k: v for k, v in named.items() if k != "id"} == {
        k: v for k, v in event.items() if k != "id"
    }
    assert cloudevent_json(Change(before, after, NOW, 42), "0123456789abcdef") == (
        json.dumps(named, separators=(",", ":"), ensure_ascii=False)
    )


def test_promotions_and_first_sightings() -> None:
    promo = Promotion(Vendor.APPTRUST, "jf", "1", "web", Lifecycle.RUNNING, "STARTED")
    event = to_cloudevent(Change(None, promo, NOW))
    assert event["type"] == "io.scanhub.promotion.changed"
    assert event["data"]["previous_lifecycle"] is None
    assert event["id"]  # no store id: still a unique id
    from_json(json.dumps(event))


def test_the_source_never_carries_a_url_or_credential() -> None:
    odd = Scan(Vendor.APPSECPLUS, "a b/c?token=x", "1", "a", Lifecycle.RUNNING, "running")
    source = to_cloudevent(Change(None, odd, NOW))["source"]
    assert "://" not in source and "?" not in source and source.count("/") == 3


@pytest.mark.parametrize("lc", list(Lifecycle))
@pytest.mark.parametrize("verdict", list(Verdict))
def test_crosswalk_covers_every_state(lc: Lifecycle, verdict: Verdict) -> None:
    item = scan(lc, verdict)
    status, conclusion = github_check(item)
    assert status in ("queued", "in_progress", "completed")
    assert (conclusion is not None) == lc.is_terminal
    allowed = {
        "success",
        "failure",
        "neutral",
        "cancelled",
        "skipped",
        "timed_out",
        "action_required",
    }
    assert conclusion is None or conclusion in allowed
    attrs = otel_attributes(item)
    assert attrs["cicd.pipeline.run.state"] in ("pending", "executing", "finalizing")
    result = attrs.get("cicd.pipeline.result")
    assert (result is not None) == lc.is_terminal
    assert result is None or result in (
        "success",
        "failure",
        "error",
        "timeout",
        "cancellation",
        "skip",
    )


def test_crosswalk_decisions() -> None:
    assert github_check(scan(Lifecycle.RUNNING)) == ("in_progress", None)
    assert github_check(scan(Lifecycle.SUCCEEDED, Verdict.FAIL)) == ("completed", "failure")
    assert github_check(scan(Lifecycle.SUCCEEDED, Verdict.WARN)) == ("completed", "neutral")
    assert github_check(scan(Lifecycle.CANCELLED)) == ("completed", "cancelled")
    assert github_check(scan(Lifecycle.EXPIRED)) == ("completed", "timed_out")
    assert otel_attributes(scan(Lifecycle.QUEUED)) == {"cicd.pipeline.run.state": "pending"}
    assert otel_attributes(scan(Lifecycle.FAILED, Verdict.ERROR))["cicd.pipeline.result"] == "error"
    assert otel_attributes(scan(Lifecycle.EXPIRED))["cicd.pipeline.result"] == "timeout"


def test_crosswalk_tables_are_in_adapters_md() -> None:
    text = (ROOT / "adapters.md").read_text().split("## Crosswalk", 1)[1]
    for lc, status in GITHUB_STATUS.items():
        assert f"| `{lc.value}` | `{status}` | `{OTEL_RUN_STATE[lc]}` |" in text
    for (lc, verdict), conclusion in GITHUB_CONCLUSION.items():
        row = f"| `{lc.value}` | `{verdict.value}` | `{conclusion}` | `{OTEL_RESULT[(lc, verdict)]}` |"
        assert row in text, row
