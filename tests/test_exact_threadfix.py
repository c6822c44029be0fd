"""ThreadFix (seed 001, vendor-notes, the Upload Scan page, the open-source server), exactly:
every request as sent, every scan as read, every refusal as raised."""

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
    FindingCounts,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    ServerError,
    Vendor,
)
from scanhub.sansio import FilePart, Request, threadfix

from .expect import refused
from .helpers import resp
from .payloads import TF_PENDING_SCAN_DONE, TF_UPLOAD_OSS, TF_UPLOAD_QUEUED, tf_pending_scan

BASE = "http://localhost:8080/threadfix"
STATUS_URL = f"{BASE}/rest/latest/applications/6/pendingScan/41/status"
MODIFIED = datetime(2019, 10, 3, 15, 49, 33, tzinfo=UTC)  # 1570117773000 ms


def pending(body: Any, code: int = 200, url: str = STATUS_URL, **kw: Any) -> Scan:
    return threadfix.parse_pending_scan(
        resp(code, body, operation="pending scan status", url=url), source="tf", **kw
    )


def upload(body: Any, code: int = 200) -> Scan:
    return threadfix.parse_upload(
        resp(code, body, operation="upload scan"), source="tf", base_url=BASE, application_id="6"
    )


# --- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "prefix"),
    [
        ("latest", "rest/latest"),
        ("v2.8", "rest/v2.8"),
        ("unversioned", "rest"),
        ("v 3/x", "rest/v%203%2Fx"),
    ],
)
def test_pending_scan_request(version: str, prefix: str) -> None:
    assert threadfix.build_pending_scan(BASE, "6", "41/2", api_version=version) == Request(
        "GET", f"{BASE}/{prefix}/applications/6/pendingScan/41%2F2/status", "pending scan status"
    )


def test_pending_scan_request_refuses_dot_segments() -> None:
    for app, pid, what in (("..", "1", "id '..'"), ("6", ".", "id '.'")):
        refused(
            lambda app=app, pid=pid: threadfix.build_pending_scan(BASE, app, pid),  # type: ignore[misc]
            BadRequestError,
            vendor="threadfix",
            operation="pending scan status",
            message=f"{what} cannot be sent as a path segment (empty, '.' or '..')",
        )


def test_upload_request() -> None:
    part = FilePart("anything", "webshop.fpr", b"<FVDL/>", "application/xml")
    assert threadfix.build_upload(BASE, "6", part, api_version="v2.8") == Request(
        "POST",
        f"{BASE}/rest/v2.8/applications/6/upload",
        "upload scan",
        file=FilePart("file", "webshop.fpr", b"<FVDL/>", "application/xml"),
        idempotent=False,
    )


def test_upload_refuses_before_sending() -> None:
    refused(
        lambda: threadfix.build_upload(BASE, "", FilePart("file", "a.fpr", b"x"), source="prod"),
        BadRequestError,
        vendor="threadfix",
        source="prod",
        operation="upload scan",
        message="application_id is empty",
    )
    refused(
        lambda: threadfix.build_upload(BASE, "6", FilePart("file", "a.fpr", b""), source="prod"),
        BadRequestError,
        vendor="threadfix",
        source="prod",
        operation="upload scan",
        message="scan file 'a.fpr' is empty",
    )
    refused(
        lambda: threadfix.build_upload(BASE, "..", FilePart("file", "a.fpr", b"x")),
        BadRequestError,
        vendor="threadfix",
        operation="upload scan",
        message="id '..' cannot be sent as a path segment (empty, '.' or '..')",
    )


def test_an_application_id_may_be_a_number() -> None:
    req = threadfix.build_upload(BASE, 6, FilePart("file", "a.fpr", b"x"))  # type: ignore[arg-type]
    assert req.url == f"{BASE}/rest/latest/applications/6/upload"


# --- pending scan -------------------------------------------------------------------------------


def test_the_seed_sample_exactly() -> None:
    got = pending(TF_PENDING_SCAN_DONE)
    assert got == Scan(
        vendor=Vendor.THREADFIX,
        source="tf",
        id="2",
        application_id="6",
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="DONE",
        message="Scan Processing Completed. Statistics Update Queued.",
        links={"status": STATUS_URL},
        created_at=MODIFIED,
        finished_at=MODIFIED,
        updated_at=MODIFIED,
        scan_type="upload",
        final_scan_id="12",
    )
    assert got.raw == TF_PENDING_SCAN_DONE


def test_an_unfinished_scan_has_no_finish_time_and_no_link_without_a_url() -> None:
    got = pending(tf_pending_scan("CHANNEL_MERGING"), url="")
    assert (got.lifecycle, got.finished_at, got.updated_at, got.links, got.final_scan_id) == (
        Lifecycle.RUNNING,
        None,
        MODIFIED,
        {},
        None,
    )


@pytest.mark.parametrize(
    ("scan_message", "envelope_message", "message"),
    [
        ("from the scan", "from the envelope", "from the scan"),
        (None, "from the envelope", "from the envelope"),
        (None, None, None),
    ],
)
def test_the_message_of_a_running_scan(
    scan_message: str | None, envelope_message: str | None, message: str | None
) -> None:
    body = tf_pending_scan("QUEUED", scanMessage=scan_message)
    body["message"] = envelope_message
    assert pending(body).message == message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"error": True, "errorMessage": "Parse error on line 3"}, "Parse error on line 3"),
        (
            {"error": True, "errorMessage": None},
            "Scan Processing Completed. Statistics Update Queued.",
        ),
        (
            {"error": True, "errorMessage": None, "scanMessage": None},
            "ThreadFix reported an error for this scan",
        ),
        ({"error": False, "errorMessage": "disk full"}, "disk full"),
        ({"error": "true", "errorMessage": None}, None),
    ],
)
def test_a_failed_scan_says_why(overrides: dict[str, Any], message: str | None) -> None:
    got = pending(tf_pending_scan("DONE", **overrides))
    if message is None:  # "true" as a string is not ThreadFix's error flag
        assert got.lifecycle is Lifecycle.SUCCEEDED
        return
    assert (got.lifecycle, got.message, got.finished_at) == (Lifecycle.FAILED, message, MODIFIED)


@pytest.mark.parametrize("status", ["", None])
def test_a_missing_status_is_unknown(status: str | None) -> None:
    body = tf_pending_scan("QUEUED")
    body["object"]["status"] = status
    got = pending(body)
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, "")


def test_ids_come_from_the_arguments_when_the_object_lacks_them() -> None:
    body = tf_pending_scan("QUEUED", id=None, appId=None)
    got = pending(body, application_id="61", pending_scan_id="411")
    assert (got.id, got.application_id) == ("411", "61")


@pytest.mark.parametrize(
    ("overrides", "kw"),
    [
        ({"id": None}, {}),
        ({"appId": None}, {}),
        ({"id": None, "appId": None}, {"application_id": "6"}),
    ],
)
def test_a_pending_scan_that_cannot_say_which_it_is(
    overrides: dict[str, Any], kw: dict[str, str]
) -> None:
    body = tf_pending_scan("QUEUED", **overrides)
    refused(
        lambda: pending(body, **kw),
        PayloadError,
        vendor="threadfix",
        source="tf",
        operation="pending scan status",
        status=200,
        body=json.dumps(body),
        message="missing identity field object.id / object.appId",
    )


def test_a_pending_scan_whose_object_is_not_one() -> None:
    body = {"message": "ok", "success": True, "responseCode": -1, "object": "a sentence"}
    refused(
        lambda: pending(body),
        PayloadError,
        vendor="threadfix",
        source="tf",
        operation="pending scan status",
        status=200,
        body=json.dumps(body),
        message="`object` is a string, expected an object",
    )


# --- the envelope -------------------------------------------------------------------------------


def envelope(message: Any, success: Any, obj: Any = None) -> dict[str, Any]:
    return {"message": message, "success": success, "responseCode": -1, "object": obj}


@pytest.mark.parametrize(
    ("code", "body", "cls", "message"),
    [
        (
            200,
            envelope("Authentication failed, check your API Key.", False),
            AuthenticationError,
            "Authentication failed, check your API Key.",
        ),
        (
            200,
            envelope("The requested URL is restricted for your API Key.", False),
            AuthenticationError,
            "The requested URL is restricted for your API Key.",
        ),
        (500, envelope("Invalid API key", False), AuthenticationError, "Invalid API key"),
        (
            200,
            envelope("Couldn't find the application with id 99", False),
            NotFoundError,
            "Couldn't find the application with id 99",
        ),
        (200, envelope("No scan found", False), NotFoundError, "No scan found"),
        (200, envelope("Invalid Scan Id", False), NotFoundError, "Invalid Scan Id"),
        (200, envelope("Something broke", False), BadRequestError, "Something broke"),
        (200, envelope(None, False), BadRequestError, "ThreadFix answered success: false"),
        (200, envelope("", False), BadRequestError, "ThreadFix answered success: false"),
        (404, envelope("Not here", False), NotFoundError, "Not here"),
        (503, envelope(None, False), ServerError, "HTTP 503"),
        (
            200,
            envelope("odd", "false"),
            PayloadError,
            "the envelope's success is 'false', expected true or false (odd)",
        ),
        (
            200,
            envelope(None, 0),
            PayloadError,
            "the envelope's success is 0, expected true or false",
        ),
        (
            200,
            {"object": {}},
            PayloadError,
            "the envelope's success is None, expected true or false",
        ),
        (
            200,
            ["not", "an", "envelope"],
            PayloadError,
            "the envelope is an array, expected an object",
        ),
    ],
)
def test_every_envelope_refusal(code: int, body: Any, cls: type[Any], message: str) -> None:
    refused(
        lambda: pending(body, code),
        cls,
        vendor="threadfix",
        source="tf",
        operation="pending scan status",
        status=code,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("code", "cls", "message"),
    [
        (502, ServerError, "HTTP 502"),
        (401, AuthenticationError, "HTTP 401"),
        (200, PayloadError, "got an HTML page instead of JSON (a login page or proxy?)"),
    ],
)
def test_an_answer_that_is_not_json(code: int, cls: type[Any], message: str) -> None:
    page = "<html><body>Bad Gateway</body></html>"
    refused(
        lambda: pending(page, code),
        cls,
        vendor="threadfix",
        source="tf",
        operation="pending scan status",
        status=code,
        body=page,
        message=message,
    )


# --- upload answers -----------------------------------------------------------------------------


def test_a_queued_upload_exactly() -> None:
    got = upload(TF_UPLOAD_QUEUED)
    assert got == Scan(
        vendor=Vendor.THREADFIX,
        source="tf",
        id="41",
        application_id="6",
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        message="Scan upload process started.",
        links={"status": STATUS_URL},
    )
    assert got.raw == TF_UPLOAD_QUEUED


def test_a_queued_upload_with_the_link_inside_the_object_and_a_relative_href() -> None:
    body = {
        "message": "queued",
        "success": True,
        "responseCode": -1,
        "object": {
            "links": [
                "not a link",
                {"href": 41},
                {"rel": "self", "href": "/threadfix/rest/latest/applications/6"},
                {"rel": "related", "href": "rest/latest/applications/6/pendingScan/42/status"},
            ]
        },
    }
    got = upload(body)
    assert (got.id, got.message, got.links) == (
        "42",
        "queued",
        {"status": f"{BASE}/rest/latest/applications/6/pendingScan/42/status"},
    )


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # A path from the host's root (RFC 3986), holding the server's context path already:
        # not the base's path twice.
        (
            "/threadfix/rest/v2.8/applications/6/pendingScan/43/status",
            "https://tf.example.com/threadfix/rest/v2.8/applications/6/pendingScan/43/status",
        ),
        (
            "https://tf.example.com/threadfix/rest/latest/applications/6/pendingScan/43/status",
            "https://tf.example.com/threadfix/rest/latest/applications/6/pendingScan/43/status",
        ),
        # Network-path (`//host/...`): never another host than the configured one.
        (
            "//elsewhere.example/x/pendingScan/43/status",
            "https://tf.example.com/threadfix/elsewhere.example/x/pendingScan/43/status",
        ),
    ],
)
def test_an_upload_href_from_the_root_or_absolute_is_read_as_a_browser_would(
    href: str, expected: str
) -> None:
    body = {
        "message": "Scan upload process started.",
        "success": True,
        "responseCode": -1,
        "object": "Scan upload process started.",
        "links": [{"method": "GET", "rel": "related", "href": href}],
    }
    got = threadfix.parse_upload(
        resp(200, body, operation="upload scan"),
        source="tf",
        base_url="https://tf.example.com/threadfix",
        application_id="6",
    )
    assert got.links == {"status": expected}


def test_an_open_source_upload_exactly() -> None:
    got = upload(TF_UPLOAD_OSS)
    assert got == Scan(
        vendor=Vendor.THREADFIX,
        source="tf",
        id="12",
        application_id="6",
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="",
        created_at=MODIFIED,
        finished_at=MODIFIED,
        updated_at=MODIFIED,
        scan_type="Fortify 360",
        findings=FindingCounts(critical=1, high=3, medium=4, low=1, total=9),
        final_scan_id="12",
    )
    assert got.raw == TF_UPLOAD_OSS


def test_an_open_source_upload_counts_and_names() -> None:
    body = json.loads(json.dumps(TF_UPLOAD_OSS))
    body["message"] = "imported"
    obj = body["object"]
    obj.update(applicationId=61, numberTotalVulnerabilities=None, numberLowVulnerabilities=8)
    del obj["numberMediumVulnerabilities"]
    got = upload(body)
    assert (got.application_id, got.message, got.findings) == (
        "61",
        "imported",
        FindingCounts(critical=1, high=3, medium=0, low=8, total=12),
    )
    obj["numberTotalVulnerabilities"] = 0
    assert upload(body).findings == FindingCounts(critical=1, high=3, medium=0, low=8, total=0)


def test_an_upload_answer_with_nothing_to_follow() -> None:
    body = envelope("", True, "Scan upload process started.")
    refused(
        lambda: upload(body),
        PayloadError,
        vendor="threadfix",
        source="tf",
        operation="upload scan",
        status=200,
        body=json.dumps(body),
        message="the upload was accepted but the answer has no pendingScan link to follow it by "
        "(ThreadFix before 2.5 queues uploads without one; scanhub supports 2.5 and later, "
        "and the open-source server)",
    )


def test_an_upload_refused_by_the_envelope() -> None:
    body = envelope("Authentication failed, check your API Key.", False)
    refused(
        lambda: upload(body),
        AuthenticationError,
        vendor="threadfix",
        source="tf",
        operation="upload scan",
        status=200,
        body=json.dumps(body),
        message="Authentication failed, check your API Key.",
    )


def test_the_default_api_version_is_latest() -> None:
    assert threadfix.build_pending_scan(BASE, "6", "41").url == STATUS_URL
    req = threadfix.build_upload(BASE, "6", FilePart("file", "a.fpr", b"x"))
    assert req.url == f"{BASE}/rest/latest/applications/6/upload"


def test_an_unknown_status_is_warned_naming_threadfix(caplog: pytest.LogCaptureFixture) -> None:
    value = f"REINDEXING_{uuid.uuid4().hex[:8].upper()}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = pending(tf_pending_scan(value))
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, value)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown threadfix status value {value!r} mapped to unknown"
    ]


def test_a_missing_status_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    body = tf_pending_scan("QUEUED")
    body["object"]["status"] = None
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        pending(body)
    assert caplog.records == []


def test_a_redirect_is_named_as_such_whatever_its_body() -> None:
    refused(
        lambda: pending("Moved", 300),
        PayloadError,
        vendor="threadfix",
        source="tf",
        operation="pending scan status",
        status=300,
        body="Moved",
        message="the server redirected (no Location given); scanhub does not follow redirects "
        "(an API moved, or a login page is in the way): check base_url",
    )
