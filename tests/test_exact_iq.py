"""Sonatype IQ (seeds 000 and 002, vendor-notes), exactly: every request as sent, every
promotion and webhook scan as read, every refusal as raised."""

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
    Promotion,
    RateLimitedError,
    Scan,
    ServerError,
    Vendor,
    Verdict,
)
from scanhub.sansio import Request, iq

from .expect import refused
from .helpers import resp
from .payloads import (
    IQ_APP_ID,
    IQ_PROMOTE_RESPONSE,
    IQ_PROMOTE_UNKNOWN_SCAN,
    IQ_SCAN_ID,
    IQ_STATUS_COMPLETED,
    IQ_STATUS_GONE,
    IQ_STATUS_ID,
    IQ_WEBHOOK_EVALUATION,
)

BASE = "https://acme.sonatype.app/platform"
STATUS_URL = f"{BASE}/api/v2/evaluation/applications/{IQ_APP_ID}/status/{IQ_STATUS_ID}"
REPORT = "affdb6b964a64f0bad2db7170c7560dc"


def submitted(**kw: Any) -> Promotion:
    """The promotion as the promote answer left it (seed 000, step 4)."""
    base: dict[str, Any] = {
        "vendor": Vendor.IQ,
        "source": "iq",
        "id": IQ_STATUS_ID,
        "application_id": IQ_APP_ID,
        "lifecycle": Lifecycle.QUEUED,
        "vendor_status": "",
        "links": {"status": STATUS_URL},
        "source_stage": "build",
        "target_stage": "stage-release",
    }
    return Promotion(**{**base, **kw})


def status(body: Any, code: int = 200, **kw: Any) -> Promotion:
    kw.setdefault("previous", submitted())
    return iq.parse_status(
        resp(code, body, operation="promotion status"), source="iq", base_url=BASE, **kw
    )


# --- requests ----------------------------------------------------------------------------------


def test_basic_auth_of_a_token_pair() -> None:
    assert iq.auth_headers("userCode", "pässCode") == {
        "Authorization": "Basic dXNlckNvZGU6cMOkc3NDb2Rl"
    }


def test_application_lookup_request() -> None:
    assert iq.build_application_lookup(BASE, "My App") == Request(
        "GET",
        f"{BASE}/api/v2/applications",
        "application lookup",
        params=(("publicId", "My App"),),
        headers={"Accept": "application/json"},
    )


@pytest.mark.parametrize(
    ("kw", "body"),
    [
        ({"scan_id": IQ_SCAN_ID}, {"scanId": IQ_SCAN_ID, "targetStageId": "release"}),
        ({"source_stage": "build"}, {"sourceStageId": "build", "targetStageId": "release"}),
    ],
)
def test_promote_request(kw: dict[str, str], body: dict[str, str]) -> None:
    assert iq.build_promote(BASE, "app/1", target_stage="release", **kw) == Request(
        "POST",
        f"{BASE}/api/v2/evaluation/applications/app%2F1/promoteScan",
        "promote scan",
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        json=body,
        idempotent=False,
    )


def test_promote_request_behind_reverse_proxy_auth() -> None:
    req = iq.build_promote(BASE, "a", target_stage="build", source_stage="build", csrf_token="V")
    assert req.headers == {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRF-TOKEN": "V",
        "Cookie": "CLM-CSRF-TOKEN=V",
    }


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"application_id": "a"}, "give exactly one of scan_id or source_stage"),
        (
            {"application_id": "a", "scan_id": "s", "source_stage": "build"},
            "give exactly one of scan_id or source_stage",
        ),
        ({"application_id": "", "scan_id": "s"}, "application_id is empty"),
        ({"application_id": "a", "scan_id": ""}, "scan_id is empty"),
        (
            {"application_id": "a", "scan_id": "s", "target_stage": "develop"},
            "target_stage must be one of build, stage-release, release, operate, source "
            "(IQ refuses 'develop' as a promote target)",
        ),
    ],
)
def test_promote_refuses_before_sending(kw: dict[str, str], message: str) -> None:
    kw.setdefault("target_stage", "release")
    refused(
        lambda: iq.build_promote(BASE, source="cloud", **kw),  # type: ignore[arg-type]
        BadRequestError,
        vendor="iq",
        source="cloud",
        operation="promote scan",
        message=message,
    )


def test_status_request() -> None:
    assert iq.build_status(BASE, "a b", "s/1") == Request(
        "GET",
        f"{BASE}/api/v2/evaluation/applications/a%20b/status/s%2F1",
        "promotion status",
        headers={"Accept": "application/json"},
    )
    refused(
        lambda: iq.build_status(BASE, IQ_APP_ID, "."),
        BadRequestError,
        vendor="iq",
        operation="promotion status",
        message="id '.' cannot be sent as a path segment (empty, '.' or '..')",
    )


# --- application lookup -------------------------------------------------------------------------


def lookup(body: Any, code: int = 200, public_id: str = "MyApp") -> str:
    return iq.parse_application_lookup(
        resp(code, body, operation="application lookup"), source="iq", public_id=public_id
    )


def test_lookup_prefers_the_exact_public_id_over_a_case_insensitive_one() -> None:
    apps = {
        "applications": [{"publicId": "myapp", "id": "lower"}, {"publicId": "MyApp", "id": "exact"}]
    }
    assert lookup(apps) == "exact"
    assert lookup(apps, public_id="MYAPP") == "lower"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"applications": []}, "no application with public id 'MyApp'"),
        (
            {"applications": [{"publicId": "Other", "id": "x"}]},
            "no application with public id 'MyApp'",
        ),
        ({"applications": [{"publicId": 7, "id": "x"}]}, "no application with public id 'MyApp'"),
    ],
)
def test_lookup_of_an_unknown_public_id(body: Any, message: str) -> None:
    refused(
        lambda: lookup(body),
        NotFoundError,
        vendor="iq",
        source="iq",
        operation="application lookup",
        status=200,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"applications": [{"publicId": "MyApp"}]}, "missing identity field id"),
        ({"applications": {"publicId": "MyApp"}}, "`applications` is an object, expected an array"),
        ({}, "`applications` is null, expected an array"),
        (["MyApp"], "the response is an array, expected an object"),
    ],
)
def test_lookup_answers_of_the_wrong_shape(body: Any, message: str) -> None:
    refused(
        lambda: lookup(body),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="application lookup",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_lookup_errors_carry_the_servers_plain_text() -> None:
    refused(
        lambda: lookup("  Authentication required \n", 401),
        AuthenticationError,
        vendor="iq",
        source="iq",
        operation="application lookup",
        status=401,
        body="Authentication required",
        message="Authentication required",
    )


# --- promote answer -----------------------------------------------------------------------------


def promote(body: Any, code: int = 200, **kw: Any) -> Promotion:
    return iq.parse_promote(
        resp(code, body, operation="promote scan"),
        source="iq",
        base_url=BASE,
        application_id="fallback-app",
        target_stage="stage-release",
        **kw,
    )


def test_promote_answer_exactly() -> None:
    got = promote(IQ_PROMOTE_RESPONSE, source_stage="build")
    assert got == submitted() and got.raw == IQ_PROMOTE_RESPONSE
    assert promote(IQ_PROMOTE_RESPONSE, scan_id=IQ_SCAN_ID) == submitted(
        source_stage=None, scan_id=IQ_SCAN_ID
    )


def test_an_absolute_status_url_is_kept() -> None:
    url = f"https://other.example/api/v2/evaluation/applications/{IQ_APP_ID}/status/s1"
    got = promote({"statusUrl": url}, source_stage="build")
    assert (got.id, got.application_id, got.links) == ("s1", IQ_APP_ID, {"status": url})


def test_promote_of_a_purged_scan() -> None:
    refused(
        lambda: promote(IQ_PROMOTE_UNKNOWN_SCAN, 400, scan_id=IQ_SCAN_ID),
        NotFoundError,
        vendor="iq",
        source="iq",
        operation="promote scan",
        status=400,
        body=IQ_PROMOTE_UNKNOWN_SCAN,
        message=f"scan '{IQ_SCAN_ID}' does not exist on the server; IQ keeps only the latest scan "
        "file by default (purgeScanFiles), so an older scan may have been purged and cannot be "
        "promoted",
    )


@pytest.mark.parametrize(
    ("code", "body", "cls", "message"),
    [
        (400, "Stage develop is invalid.", BadRequestError, "Stage develop is invalid."),
        (404, "does not exist", NotFoundError, "does not exist"),
        (401, "", AuthenticationError, "HTTP 401"),
        (429, "x" * 600, RateLimitedError, "x" * 500),
    ],
)
def test_other_promote_errors(code: int, body: str, cls: type[Any], message: str) -> None:
    refused(
        lambda: promote(body, code, scan_id="s"),
        cls,
        vendor="iq",
        source="iq",
        operation="promote scan",
        status=code,
        body=body,
        message=message,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"statusUrl": "api/v2/evaluation/applications/a/status/"},
            "statusUrl 'api/v2/evaluation/applications/a/status/' has no status id",
        ),
        ({}, "missing identity field statusUrl"),
        ([], "the response is an array, expected an object"),
    ],
)
def test_promote_answers_of_the_wrong_shape(body: Any, message: str) -> None:
    refused(
        lambda: promote(body, scan_id="s"),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="promote scan",
        status=200,
        body=json.dumps(body),
        message=message,
    )


# --- status -------------------------------------------------------------------------------------


def test_completed_status_exactly() -> None:
    links = {
        "status": STATUS_URL,
        "report_html": f"{BASE}/ui/links/application/MyApplicationPublicID/report/{REPORT}",
        "report_embeddable_html": f"{BASE}/ui/links/application/MyApplicationPublicID/report/{REPORT}/embeddable",
        "report_pdf": f"{BASE}/ui/links/application/MyApplicationPublicID/report/{REPORT}/pdf",
        "report_data": f"{BASE}/api/v2/applications/MyApplicationPublicID/reports/{REPORT}",
    }
    before = submitted(
        verdict=Verdict.WARN, created_at=datetime(2025, 1, 1, tzinfo=UTC), scan_id="s"
    )
    got = status(IQ_STATUS_COMPLETED, previous=before)
    assert got == submitted(
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="COMPLETED",
        links=links,
        verdict=Verdict.WARN,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        scan_id="s",
    )
    assert got.raw == IQ_STATUS_COMPLETED


@pytest.mark.parametrize(
    ("body", "lifecycle", "message"),
    [
        ({"status": "PENDING"}, Lifecycle.RUNNING, None),
        (
            {"status": "FAILED", "reason": "policy evaluation failed"},
            Lifecycle.FAILED,
            "policy evaluation failed",
        ),
        ({"status": "FAILED"}, Lifecycle.FAILED, None),
        ({"status": "COMPLETED", "reason": "ignored"}, Lifecycle.SUCCEEDED, None),
        ({"status": "pending"}, Lifecycle.UNKNOWN, None),
        ({"status": " PENDING "}, Lifecycle.RUNNING, None),
    ],
)
def test_each_status_as_read(
    body: dict[str, str], lifecycle: Lifecycle, message: str | None
) -> None:
    got = status(body)
    assert got == submitted(lifecycle=lifecycle, vendor_status=body["status"], message=message)


def test_report_links_read_as_text_and_the_status_link_the_promotion_had_is_kept() -> None:
    # Links given as numbers read as their text (the toolkit's rule for text fields), an
    # empty or null one gives no link; a status link the promotion already had (the
    # absolute URL a promote answer gave) is kept, not replaced by the one built here.
    kept = "https://iq-proxy.example/platform/api/v2/evaluation/applications/x/status/y"
    body = {
        "status": "COMPLETED",
        "reportHtmlUrl": 12345,
        "reportPdfUrl": None,
        "reportDataUrl": "",
    }
    got = status(body, previous=submitted(links={"status": kept}))
    assert got.links == {"status": kept, "report_html": f"{BASE}/12345"}


def test_status_asked_for_directly_names_itself_from_the_arguments() -> None:
    got = status({"status": "PENDING"}, previous=None, application_id="a1", status_id="s1")
    assert got == Promotion(
        Vendor.IQ,
        "iq",
        "s1",
        "a1",
        Lifecycle.RUNNING,
        "PENDING",
        links={"status": f"{BASE}/api/v2/evaluation/applications/a1/status/s1"},
    )


def test_status_names_itself_from_the_url_it_was_read_from() -> None:
    got = iq.parse_status(
        resp(200, {"status": "PENDING"}, url=STATUS_URL), source="iq", base_url=BASE
    )
    assert (got.application_id, got.id, got.links) == (
        IQ_APP_ID,
        IQ_STATUS_ID,
        {"status": STATUS_URL},
    )
    half = iq.parse_status(
        resp(200, {"status": "PENDING"}, url=STATUS_URL), source="iq", base_url=BASE, status_id="s9"
    )
    assert (half.application_id, half.id) == (IQ_APP_ID, "s9")
    other = iq.parse_status(
        resp(200, {"status": "PENDING"}, url=STATUS_URL),
        source="iq",
        base_url=BASE,
        application_id="a9",
    )
    assert (other.application_id, other.id) == ("a9", IQ_STATUS_ID)


@pytest.mark.parametrize("url", ["", f"{BASE}/api/v2/evaluation/applications/a/other"])
def test_a_status_that_cannot_say_whose_it_is(url: str) -> None:
    refused(
        lambda: iq.parse_status(
            resp(200, {"status": "PENDING"}, operation="promotion status", url=url),
            source="iq",
            base_url=BASE,
        ),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="promotion status",
        status=200,
        body='{"status": "PENDING"}',
        message="cannot tell which promotion this status belongs to",
    )


@pytest.mark.parametrize("body", [{}, {"status": None}, {"status": ["PENDING"]}])
def test_a_status_answer_without_a_status(body: Any) -> None:
    refused(
        lambda: status(body),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="promotion status",
        status=200,
        body=json.dumps(body),
        message="missing field status",
    )


def test_a_status_answer_that_is_not_an_object() -> None:
    refused(
        lambda: status(["PENDING"]),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="promotion status",
        status=200,
        body='["PENDING"]',
        message="the response is an array, expected an object",
    )


def test_an_unknown_status_is_warned_once_naming_iq(caplog: pytest.LogCaptureFixture) -> None:
    value = f"EXPLODED-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        status({"status": value})
        status({"status": value})
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown iq status value {value!r} mapped to unknown"
    ]


def test_a_forgotten_status_id_expires_the_promotion_exactly() -> None:
    before = submitted(
        lifecycle=Lifecycle.RUNNING,
        vendor_status="PENDING",
        verdict=Verdict.PASS,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        scan_id="s",
    )
    got = status(IQ_STATUS_GONE, 404, previous=before)
    assert got == submitted(
        lifecycle=Lifecycle.EXPIRED,
        vendor_status="PENDING",
        verdict=Verdict.PASS,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        scan_id="s",
        message="IQ no longer knows this promotion's status id (it keeps them two hours), so "
        "its outcome is unknown; see the application's reports. IQ said: " + IQ_STATUS_GONE,
    )
    assert got.raw == {"status": 404, "body": IQ_STATUS_GONE}


@pytest.mark.parametrize(
    ("code", "body", "cls"),
    [(404, "Not Found", NotFoundError), (500, IQ_STATUS_GONE, ServerError)],
)
def test_other_status_errors_are_not_expiry(code: int, body: str, cls: type[Any]) -> None:
    refused(
        lambda: status(body, code),
        cls,
        vendor="iq",
        source="iq",
        operation="promotion status",
        status=code,
        body=body,
        message=body,
    )


# --- webhook ------------------------------------------------------------------------------------


def webhook(payload: Any, base_url: str = BASE) -> Scan:
    return iq.parse_evaluation_webhook(
        {"X-Nexus-Webhook-Id": "iq:applicationEvaluation"},
        json.dumps(payload).encode(),
        source="hook",
        base_url=base_url,
    )


def evaluation(**changes: Any) -> dict[str, Any]:
    payload = json.loads(json.dumps(IQ_WEBHOOK_EVALUATION))
    payload["applicationEvaluation"].update(changes)
    return payload


def test_the_webhook_sample_exactly() -> None:
    got = webhook(IQ_WEBHOOK_EVALUATION)
    when = datetime(2015, 5, 5, 23, 40, 12, tzinfo=UTC)
    assert got == Scan(
        vendor=Vendor.IQ,
        source="hook",
        id="debceb1d-9209-485d-8d07-bd5390de7ef5",
        application_id="MyApplicationPublicID",
        application_name="MyApplicationPublicID",
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="fail",
        verdict=Verdict.FAIL,
        links={"report_html": f"{BASE}/ui/links/application/MyApplicationPublicID/report/{REPORT}"},
        finished_at=when,
        updated_at=when,
        scan_type="build",
        triggered_by="admin",
        findings=FindingCounts(critical=2, high=5, medium=3, total=10),
        final_scan_id=REPORT,
    )
    assert got.raw == IQ_WEBHOOK_EVALUATION


def test_webhook_without_a_base_url_or_public_id_has_no_report_link() -> None:
    assert webhook(IQ_WEBHOOK_EVALUATION, base_url="").links == {}
    assert (
        iq.parse_evaluation_webhook(
            {}, json.dumps(IQ_WEBHOOK_EVALUATION).encode(), source="hook"
        ).links
        == {}
    )
    no_public = evaluation(application={"id": IQ_APP_ID})
    got = webhook(no_public)
    assert (got.links, got.application_id, got.application_name) == ({}, IQ_APP_ID, None)
    no_report = evaluation(reportId=None)
    assert webhook(no_report).links == {} and webhook(no_report).final_scan_id is None


def test_webhook_report_link_encodes_its_parts() -> None:
    got = webhook(evaluation(application={"id": "i", "publicId": "my app/1"}, reportId="r/2"))
    assert got.links == {"report_html": f"{BASE}/ui/links/application/my%20app%2F1/report/r%2F2"}


def test_webhook_falls_back_to_owner_id_report_id_and_timestamp() -> None:
    got = webhook(evaluation(application=None, policyEvaluationId=None, evaluationDate=None))
    ts = datetime(2020, 10, 28, 15, 8, 32, 348000, tzinfo=UTC)
    assert (got.application_id, got.id, got.finished_at) == (
        "6a454175-f55d-4d33-ba44-90ac3af2e8b8",
        REPORT,
        ts,
    )


def test_webhook_counts_sum_when_no_total_is_given() -> None:
    got = webhook(
        evaluation(
            affectedComponentCount=None,
            criticalComponentCount=1,
            severeComponentCount=2,
            moderateComponentCount=4,
        )
    )
    assert got.findings == FindingCounts(critical=1, high=2, medium=4, total=7)
    none = webhook(
        evaluation(
            affectedComponentCount=None,
            criticalComponentCount=None,
            severeComponentCount=None,
            moderateComponentCount=None,
        )
    )
    assert none.findings == FindingCounts()


def test_webhook_without_an_outcome_or_initiator() -> None:
    payload = evaluation(outcome=None)
    del payload["initiator"]
    got = webhook(payload)
    assert (got.vendor_status, got.verdict, got.triggered_by) == ("", Verdict.NONE, None)


def test_an_unknown_webhook_outcome_is_warned_naming_iq(caplog: pytest.LogCaptureFixture) -> None:
    value = f"maybe-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = webhook(evaluation(outcome=value))
    assert (got.vendor_status, got.verdict) == (value, Verdict.NONE)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown iq decision value {value!r} mapped to none"
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            evaluation(application={"publicId": "p"}, ownerId=None),
            "missing identity field application.id / ownerId",
        ),
        (
            evaluation(policyEvaluationId=None, reportId=None),
            "missing identity field policyEvaluationId / reportId",
        ),
        ({"applicationEvaluation": [1]}, "`applicationEvaluation` is an array, expected an object"),
        ([1], "the payload is an array, expected an object"),
    ],
)
def test_webhook_deliveries_that_cannot_be_read(payload: Any, message: str) -> None:
    refused(
        lambda: webhook(payload),
        PayloadError,
        vendor="iq",
        source="hook",
        operation="evaluation webhook",
        status=200,
        body=json.dumps(payload),
        message=message,
    )


def test_webhook_signature_is_checked_on_the_exact_body() -> None:
    body = b'{"a": 1}'
    sig = "b9b6c7b4c2b4b8b7e8f2d4c8b4b3f0c9a2f8e5d1"
    assert not iq.verify_webhook(body, sig, "secret")
    import hashlib
    import hmac

    good = hmac.new(b"secret", body, hashlib.sha1).hexdigest()
    assert iq.verify_webhook(body, f" {good.upper()} ", "secret")
    assert not iq.verify_webhook(body, "", "secret")
    assert not iq.verify_webhook(body + b" ", good, "secret")
    # A signature that is not ASCII is no hex digest: refused, never an error, never accepted.
    assert iq.verify_webhook(body, "é" * 40, "secret") is False
    assert iq.verify_webhook(body, good[:-1] + "é", "secret") is False


# --- what the first run of mutmut showed untested ------------------------------------------------


@pytest.mark.parametrize("call", ["lookup", "promote", "status"])
def test_an_html_page_instead_of_json_is_named(call: str) -> None:
    page = "<html><body>Sign in</body></html>"
    parse = {
        "lookup": lambda: iq.parse_application_lookup(
            resp(200, page, operation="x"), source="iq", public_id="p"
        ),
        "promote": lambda: iq.parse_promote(
            resp(200, page, operation="x"),
            source="iq",
            base_url=BASE,
            application_id="a",
            target_stage="build",
            scan_id="s",
        ),
        "status": lambda: iq.parse_status(
            resp(200, page, operation="x"), source="iq", base_url=BASE, previous=submitted()
        ),
    }[call]
    refused(
        parse,
        PayloadError,
        vendor="iq",
        source="iq",
        operation="x",
        status=200,
        body=page,
        message="got an HTML page instead of JSON (a login page or proxy?)",
    )


def test_promote_refuses_an_application_id_that_cannot_be_a_path_segment() -> None:
    refused(
        lambda: iq.build_promote(BASE, "..", target_stage="build", scan_id="s"),
        BadRequestError,
        vendor="iq",
        operation="promote scan",
        message="id '..' cannot be sent as a path segment (empty, '.' or '..')",
    )


def test_status_keeps_the_links_the_promotion_already_had() -> None:
    before = submitted(links={"status": STATUS_URL, "report_html": "https://x/old"})
    assert status({"status": "PENDING"}, previous=before).links == before.links


@pytest.mark.parametrize(
    "kw", [{"application_id": "a1"}, {"status_id": "s1"}], ids=["only-app", "only-status"]
)
def test_a_status_knowing_only_half_of_whose_it_is(kw: dict[str, str]) -> None:
    refused(
        lambda: iq.parse_status(
            resp(200, {"status": "PENDING"}, operation="promotion status"),
            source="iq",
            base_url=BASE,
            **kw,
        ),
        PayloadError,
        vendor="iq",
        source="iq",
        operation="promotion status",
        status=200,
        body='{"status": "PENDING"}',
        message="cannot tell which promotion this status belongs to",
    )


@pytest.mark.parametrize(("app", "sid", "what"), [("..", "s1", "id '..'"), ("a1", ".", "id '.'")])
def test_a_status_whose_ids_cannot_make_a_link_is_a_payload_error(
    app: str, sid: str, what: str
) -> None:
    refused(
        lambda: status(
            {"status": "PENDING"}, previous=submitted(application_id=app, id=sid, links={})
        ),
        PayloadError,
        vendor="iq",
        operation="promotion status",
        message=f"{what} cannot be sent as a path segment (empty, '.' or '..')",
    )


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (
            b"Sign in",
            {"Content-Type": "text/html"},
            "got an HTML page instead of JSON (a login page or proxy?)",
        ),
        (b'{"truncated', {}, "body is not valid JSON (truncated or garbled)"),
    ],
)
def test_a_webhook_body_that_is_not_json(
    body: bytes, headers: dict[str, str], message: str
) -> None:
    refused(
        lambda: iq.parse_evaluation_webhook(headers, body, source="hook"),
        PayloadError,
        vendor="iq",
        source="hook",
        operation="evaluation webhook",
        status=200,
        body=body.decode(),
        message=message,
    )


def test_the_webhook_total_is_the_affected_component_count() -> None:
    got = webhook(
        evaluation(
            affectedComponentCount=12,
            criticalComponentCount=2,
            severeComponentCount=5,
            moderateComponentCount=3,
        )
    )
    assert got.findings == FindingCounts(critical=2, high=5, medium=3, total=12)
