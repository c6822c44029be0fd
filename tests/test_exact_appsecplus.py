"""AppSec+ (seed 003, the whole spec), exactly: every request as sent, every scan as read, every
refusal as raised. Each expected value is written out from the seed, not taken from the code."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    ServerError,
    Vendor,
)
from scanhub.sansio import Request, appsecplus

from .expect import refused
from .helpers import resp
from .payloads import ASP_SCAN_COMPLETED, ASP_TRIGGER_RESPONSE

BASE = "https://api.appsecplus.example.com"
JSON = {"Accept": "application/json"}

#: The GetScan sample of seed 003, read.
SAMPLE = Scan(
    vendor=Vendor.APPSECPLUS,
    source="asp",
    id="scan-001",
    application_id="app-12345",
    lifecycle=Lifecycle.SUCCEEDED,
    vendor_status="completed",
    links={"self": f"{BASE}/scans/scan-001"},
    started_at=datetime(2025, 11, 1, 12, 0, tzinfo=UTC),
    finished_at=datetime(2025, 11, 1, 12, 5, tzinfo=UTC),
    updated_at=datetime(2025, 11, 1, 12, 5, tzinfo=UTC),
    scan_type="sast",
    triggered_by="ci-pipeline",
    findings=FindingCounts(critical=1, high=5, medium=10, low=26, total=42),
)


def scan(body: Any, status: int = 200, base_url: str = BASE) -> Scan:
    return appsecplus.parse_scan(
        resp(status, body, operation="get scan"), source="asp", base_url=base_url
    )


def sample(**changes: Any) -> dict[str, Any]:
    return {**ASP_SCAN_COMPLETED, **changes}


# --- requests ----------------------------------------------------------------------------------


def test_list_request() -> None:
    assert appsecplus.build_list(BASE) == Request(
        "GET", f"{BASE}/scans", "list scans", headers=JSON
    )
    assert appsecplus.build_list(BASE, application_id="app-12345", status="failed") == Request(
        "GET",
        f"{BASE}/scans",
        "list scans",
        params=(("applicationId", "app-12345"), ("status", "failed")),
        headers=JSON,
    )


@pytest.mark.parametrize(
    ("status", "sent"),
    [
        ("queued", "queued"),
        ("RUNNING", "running"),
        ("succeeded", "completed"),
        (Lifecycle.SUCCEEDED, "completed"),
        (Lifecycle.FAILED, "failed"),
    ],
)
def test_list_status_filter_speaks_the_vendors_words(status: str, sent: str) -> None:
    assert appsecplus.build_list(BASE, status=status).params == (("status", sent),)


@pytest.mark.parametrize("status", ["exploded", "cancelled", ""])
def test_a_status_the_vendor_cannot_filter_by_is_refused(status: str) -> None:
    refused(
        lambda: appsecplus.build_list(BASE, status=status),
        BadRequestError,
        vendor="appsecplus",
        operation="list scans",
        message=f"status must be one of queued, running, completed, failed, got {status!r}",
    )


def test_trigger_request() -> None:
    json_headers = {"Accept": "application/json", "Content-Type": "application/json"}
    assert appsecplus.build_trigger(BASE, "app-12345", "sast", "ci-pipeline") == Request(
        "POST",
        f"{BASE}/scans",
        "trigger scan",
        headers=json_headers,
        json={"applicationId": "app-12345", "scanType": "sast", "triggeredBy": "ci-pipeline"},
        idempotent=False,
    )
    assert appsecplus.build_trigger(BASE, "a", "container").json == {
        "applicationId": "a",
        "scanType": "container",
    }


def test_trigger_refuses_before_sending() -> None:
    refused(
        lambda: appsecplus.build_trigger(BASE, "", "sast", source="prod"),
        BadRequestError,
        vendor="appsecplus",
        source="prod",
        operation="trigger scan",
        message="application_id is empty",
    )
    refused(
        lambda: appsecplus.build_trigger(BASE, "a", "SAST", source="prod"),
        BadRequestError,
        vendor="appsecplus",
        source="prod",
        operation="trigger scan",
        message="scan_type must be one of sast, dast, sca, container, got 'SAST'",
    )


def test_get_request() -> None:
    assert appsecplus.build_get(BASE, "scan/1?x") == Request(
        "GET", f"{BASE}/scans/scan%2F1%3Fx", "get scan", headers=JSON
    )
    refused(
        lambda: appsecplus.build_get(BASE, ".."),
        BadRequestError,
        vendor="appsecplus",
        operation="get scan",
        message="id '..' cannot be sent as a path segment (empty, '.' or '..')",
    )


# --- scans as read ------------------------------------------------------------------------------


def test_the_seed_sample_exactly() -> None:
    got = scan(ASP_SCAN_COMPLETED)
    assert got == SAMPLE and got.raw == ASP_SCAN_COMPLETED
    listed = appsecplus.parse_list(resp(200, [ASP_SCAN_COMPLETED]), source="asp", base_url=BASE)
    assert listed == [SAMPLE] and listed[0].raw == ASP_SCAN_COMPLETED


def test_the_trigger_answer_exactly() -> None:
    assert scan(ASP_TRIGGER_RESPONSE, 201) == Scan(
        vendor=Vendor.APPSECPLUS,
        source="asp",
        id="scan-001",
        application_id="app-12345",
        lifecycle=Lifecycle.QUEUED,
        vendor_status="queued",
        links={"self": f"{BASE}/scans/scan-001"},
        scan_type="sast",
        triggered_by="ci-pipeline",
    )


def test_without_a_base_url_a_scan_has_no_links() -> None:
    assert scan(ASP_SCAN_COMPLETED, base_url="").links == {}
    assert appsecplus.parse_scan(resp(200, ASP_SCAN_COMPLETED), source="asp").links == {}
    assert appsecplus.parse_list(resp(200, [ASP_SCAN_COMPLETED]), source="asp")[0].links == {}


def test_the_self_link_encodes_the_id() -> None:
    assert scan(sample(id="a/b c")).links == {"self": f"{BASE}/scans/a%2Fb%20c"}


@pytest.mark.parametrize(
    ("status", "lifecycle"),
    [
        ("COMPLETED", Lifecycle.SUCCEEDED),
        ("Running", Lifecycle.RUNNING),
        (" failed ", Lifecycle.FAILED),
        ("QUEUED\n", Lifecycle.QUEUED),
        ("paused", Lifecycle.UNKNOWN),
        ("", Lifecycle.UNKNOWN),
        (None, Lifecycle.UNKNOWN),
    ],
)
def test_status_in_any_case_or_padding_is_mapped_and_kept_raw(
    status: str | None, lifecycle: Lifecycle
) -> None:
    got = scan(sample(status=status))
    assert got.lifecycle is lifecycle and got.vendor_status == (status or "")


def test_a_status_that_is_not_a_string_is_kept_as_text() -> None:
    got = scan(sample(status=3))
    assert got.lifecycle is Lifecycle.UNKNOWN and got.vendor_status == "3"


def test_a_missing_status_is_unknown() -> None:
    body = {k: v for k, v in ASP_SCAN_COMPLETED.items() if k != "status"}
    got = scan(body)
    assert got.lifecycle is Lifecycle.UNKNOWN and got.vendor_status == ""


@pytest.mark.parametrize(
    ("ident", "read"), [(7, "7"), ("scan-7", "scan-7"), (12.5, "12.5")], ids=str
)
def test_the_id_may_be_a_number(ident: object, read: str) -> None:
    assert scan(sample(id=ident)).id == read


@pytest.mark.parametrize("ident", [None, "", True, [1]], ids=str)
def test_a_scan_without_an_id_is_refused_naming_the_field(ident: object) -> None:
    body = sample(id=ident)
    refused(
        lambda: scan(body),
        PayloadError,
        vendor="appsecplus",
        source="asp",
        operation="get scan",
        status=200,
        body=json.dumps(body),
        message="missing identity field id",
    )


@pytest.mark.parametrize(("app", "read"), [(12345, "12345"), (None, ""), ("", "")])
def test_the_application_id_may_be_a_number_or_missing(app: object, read: str) -> None:
    assert scan(sample(applicationId=app)).application_id == read


@pytest.mark.parametrize(
    ("summary", "counts"),
    [
        ({"critical": 1, "high": 2, "medium": 4, "low": 8}, FindingCounts(1, 2, 4, 8, 15)),
        ({"critical": 3}, FindingCounts(3, 0, 0, 0, 3)),
        ({"high": 2, "totalFindings": 0}, FindingCounts(0, 2, 0, 0, 0)),
        ({"low": "4", "totalFindings": "9"}, FindingCounts(0, 0, 0, 4, 9)),
        ({}, FindingCounts(0, 0, 0, 0, 0)),
        (None, None),
        ([1, 2], None),
    ],
)
def test_the_summary_becomes_finding_counts(summary: object, counts: FindingCounts) -> None:
    assert scan(sample(summary=summary)).findings == counts


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"message": "queue full"}, "queue full"),
        ({"error": "engine crashed"}, "engine crashed"),
        ({"errorMessage": "timeout"}, "timeout"),
        ({"message": "first", "error": "second", "errorMessage": "third"}, "first"),
        ({"error": "second", "errorMessage": "third"}, "second"),
        ({"message": None}, None),
        ({}, None),
    ],
)
def test_a_vendor_message_is_read_from_any_of_its_names(
    fields: dict[str, Any], message: str | None
) -> None:
    assert scan(sample(**fields)).message == message


def test_a_list_of_several_scans_in_order() -> None:
    body = [sample(id="s1"), sample(id="s2", status="running")]
    got = appsecplus.parse_list(resp(200, body), source="asp")
    assert [(s.id, s.lifecycle) for s in got] == [
        ("s1", Lifecycle.SUCCEEDED),
        ("s2", Lifecycle.RUNNING),
    ]


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"id": "x"}, "the response is an object, expected an array"),
        ([3], "a scan is a number, expected an object"),
    ],
)
def test_a_list_of_the_wrong_shape_is_refused(body: Any, what: str) -> None:
    refused(
        lambda: appsecplus.parse_list(resp(200, body, operation="list scans"), source="asp"),
        PayloadError,
        vendor="appsecplus",
        source="asp",
        operation="list scans",
        status=200,
        body=json.dumps(body),
        message=what,
    )


def test_a_scan_of_the_wrong_shape_is_refused() -> None:
    refused(
        lambda: scan(["scan-001"]),
        PayloadError,
        vendor="appsecplus",
        source="asp",
        operation="get scan",
        status=200,
        body='["scan-001"]',
        message="the response is an array, expected an object",
    )


@pytest.mark.parametrize(
    ("status", "cls", "text"),
    [
        (400, BadRequestError, "Invalid application ID or scan type."),
        (401, AuthenticationError, "Authentication failed."),
        (403, AuthenticationError, "Insufficient permissions."),
        (404, NotFoundError, "Application or scan not found."),
        (409, ConflictError, "Conflicting scan is already running."),
        (500, ServerError, "Internal server error."),
        (502, ServerError, "HTTP 502"),
        (418, BadRequestError, "HTTP 418"),
    ],
)
@pytest.mark.parametrize("call", ["scan", "list"])
def test_each_documented_error_code_with_its_documented_text(
    status: int, cls: type[Exception], text: str, call: str
) -> None:
    operation = "get scan" if call == "scan" else "list scans"
    parse = appsecplus.parse_scan if call == "scan" else appsecplus.parse_list
    refused(
        lambda: parse(resp(status, b"<html>oops</html>", operation=operation), source="asp"),
        cls,  # type: ignore[arg-type]
        vendor="appsecplus",
        source="asp",
        operation=operation,
        status=status,
        body="<html>oops</html>",
        message=text,
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"message": "scan-007 is running", "error": "x", "detail": "y"}, "scan-007 is running"),
        ({"error": "Conflict", "detail": "y"}, "Conflict"),
        ({"detail": "scan-007 holds the lock"}, "scan-007 holds the lock"),
        ({"message": ""}, "Conflicting scan is already running."),
        (["not", "an", "object"], "Conflicting scan is already running."),
    ],
)
def test_the_error_bodys_own_text_wins(body: Any, text: str) -> None:
    refused(
        lambda: scan(body, 409),
        ConflictError,
        vendor="appsecplus",
        source="asp",
        operation="get scan",
        status=409,
        body=json.dumps(body),
        message=text,
    )


# --- what the first run of mutmut showed untested ------------------------------------------------


def test_an_html_page_instead_of_a_list_is_named() -> None:
    page = "<!DOCTYPE html><html>Sign in</html>"
    refused(
        lambda: appsecplus.parse_list(resp(200, page, operation="list scans"), source="asp"),
        PayloadError,
        vendor="appsecplus",
        source="asp",
        operation="list scans",
        status=200,
        body=page,
        message="got an HTML page instead of JSON (a login page or proxy?)",
    )


def test_a_listed_scan_without_an_id_is_refused_with_the_answer_named() -> None:
    body = [sample(id=None)]
    refused(
        lambda: appsecplus.parse_list(resp(200, body, operation="list scans"), source="asp"),
        PayloadError,
        vendor="appsecplus",
        source="asp",
        operation="list scans",
        status=200,
        body=json.dumps(body),
        message="missing identity field id",
    )


def test_an_unknown_status_is_warned_naming_appsecplus(caplog: pytest.LogCaptureFixture) -> None:
    value = f"paused-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = scan(sample(status=value))
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, value)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown appsecplus status value {value!r} mapped to unknown"
    ]
