"""AppSec+ pure functions against seed 003."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    ServerError,
)
from scanhub.sansio import appsecplus

from .helpers import resp
from .payloads import ASP_LIST_SCANS, ASP_SCAN_COMPLETED, ASP_TRIGGER_RESPONSE

BASE = "https://api.appsecplus.example.com"


@pytest.mark.parametrize(
    ("status", "lifecycle"),
    [
        ("queued", Lifecycle.QUEUED),
        ("running", Lifecycle.RUNNING),
        ("completed", Lifecycle.SUCCEEDED),
        ("failed", Lifecycle.FAILED),
    ],
)
def test_each_documented_status(status: str, lifecycle: Lifecycle) -> None:
    assert appsecplus.STATUS_MAP[status] is lifecycle
    scan = appsecplus.parse_scan(resp(200, dict(ASP_SCAN_COMPLETED, status=status)), source="a")
    assert scan.lifecycle is lifecycle and scan.vendor_status == status


def test_list_sample() -> None:
    scans = appsecplus.parse_list(resp(200, ASP_LIST_SCANS), source="asp", base_url=BASE)
    assert len(scans) == 1
    scan = scans[0]
    assert (scan.id, scan.application_id, scan.scan_type, scan.triggered_by) == (
        "scan-001",
        "app-12345",
        "sast",
        "ci-pipeline",
    )
    assert scan.findings == FindingCounts(critical=1, high=5, medium=10, low=26, total=42)
    assert scan.started_at == datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
    assert scan.finished_at == datetime(2025, 11, 1, 12, 5, tzinfo=UTC)
    assert scan.links == {"self": f"{BASE}/scans/scan-001"}


def test_trigger_sample_is_queued_with_nulls() -> None:
    scan = appsecplus.parse_scan(resp(201, ASP_TRIGGER_RESPONSE), source="a")
    assert scan.lifecycle is Lifecycle.QUEUED
    assert scan.findings is None and scan.started_at is None and scan.finished_at is None


def test_requests() -> None:
    req = appsecplus.build_list(BASE, application_id="app-12345", status="completed")
    assert req.url == f"{BASE}/scans"
    assert req.params == (("applicationId", "app-12345"), ("status", "completed"))
    # the canonical value is translated back to the vendor's
    assert appsecplus.build_list(BASE, status="succeeded").params == (("status", "completed"),)
    trig = appsecplus.build_trigger(BASE, "app-12345", "sast", "ci-pipeline")
    assert trig.json == {
        "applicationId": "app-12345",
        "scanType": "sast",
        "triggeredBy": "ci-pipeline",
    }
    assert not trig.idempotent
    assert appsecplus.build_trigger(BASE, "a", "dast").json == {
        "applicationId": "a",
        "scanType": "dast",
    }
    assert appsecplus.build_get(BASE, "scan/1").url == f"{BASE}/scans/scan%2F1"


@pytest.mark.parametrize("scan_type", appsecplus.SCAN_TYPES)
def test_all_scan_types_accepted(scan_type: str) -> None:
    assert appsecplus.build_trigger(BASE, "a", scan_type).json["scanType"] == scan_type


def test_bad_scan_type_and_status_refused_before_sending() -> None:
    with pytest.raises(
        BadRequestError, match="scan_type must be one of sast, dast, sca, container"
    ):
        appsecplus.build_trigger(BASE, "a", "fuzz")
    with pytest.raises(BadRequestError, match="status"):
        appsecplus.build_list(BASE, status="exploded")


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (400, BadRequestError, "Invalid application ID or scan type."),
        (401, AuthenticationError, "Authentication failed."),
        (403, AuthenticationError, "Insufficient permissions."),
        (404, NotFoundError, "not found"),
        (409, ConflictError, "Conflicting scan is already running."),
        (500, ServerError, "Internal server error."),
    ],
)
def test_documented_error_codes(status: int, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text) as err:
        appsecplus.parse_scan(resp(status, b"", operation="trigger scan"), source="asp")
    assert err.value.status == status  # type: ignore[attr-defined]
    assert "appsecplus/asp trigger scan" in str(err.value)


def test_error_body_message_is_used_when_present() -> None:
    with pytest.raises(ConflictError, match="scan-007 is running"):
        appsecplus.parse_scan(resp(409, {"message": "scan-007 is running"}), source="asp")
