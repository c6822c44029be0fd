"""Sonatype IQ pure functions against the payloads of seed 000 / vendor-notes."""

from __future__ import annotations

import json

import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    Lifecycle,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    Verdict,
)
from scanhub.sansio import iq

from .helpers import resp
from .payloads import (
    IQ_APP_ID,
    IQ_APPLICATION_LOOKUP,
    IQ_APPLICATION_LOOKUP_EMPTY,
    IQ_CLOUD_429,
    IQ_PROMOTE_RESPONSE,
    IQ_PROMOTE_UNKNOWN_SCAN,
    IQ_SCAN_ID,
    IQ_STATUS_COMPLETED,
    IQ_STATUS_FAILED,
    IQ_STATUS_ID,
    IQ_STATUS_PENDING,
    IQ_WEBHOOK_EVALUATION,
)

BASE = "http://localhost:8070"
CLOUD = "https://tenant.sonatype.app/platform"


def test_every_documented_status_is_mapped() -> None:
    assert iq.STATUS_MAP == {
        "PENDING": Lifecycle.RUNNING,
        "COMPLETED": Lifecycle.SUCCEEDED,
        "FAILED": Lifecycle.FAILED,
    }
    assert iq.POLICY_ACTION_MAP == {
        "None": Verdict.PASS,
        "Warning": Verdict.WARN,
        "Failure": Verdict.FAIL,
    }


def test_basic_auth_header_matches_curl_u() -> None:
    # curl -u admin:admin123 sends base64("admin:admin123")
    assert iq.auth_headers("admin", "admin123") == {"Authorization": "Basic YWRtaW46YWRtaW4xMjM="}


def test_application_lookup_request_and_answer() -> None:
    req = iq.build_application_lookup(BASE, "MyApplicationPublicID")
    assert (req.method, req.url, req.params) == (
        "GET",
        f"{BASE}/api/v2/applications",
        (("publicId", "MyApplicationPublicID"),),
    )
    got = iq.parse_application_lookup(
        resp(200, IQ_APPLICATION_LOOKUP), source="iq", public_id="MyApplicationPublicID"
    )
    assert got == IQ_APP_ID


def test_application_lookup_case_insensitive_but_never_another_app() -> None:
    got = iq.parse_application_lookup(
        resp(200, IQ_APPLICATION_LOOKUP), source="iq", public_id="myapplicationpublicid"
    )
    assert got == IQ_APP_ID
    with pytest.raises(NotFoundError, match="OtherApp"):
        iq.parse_application_lookup(
            resp(200, IQ_APPLICATION_LOOKUP), source="iq", public_id="OtherApp"
        )


def test_unknown_public_id_is_not_found() -> None:
    with pytest.raises(NotFoundError) as err:
        iq.parse_application_lookup(
            resp(200, IQ_APPLICATION_LOOKUP_EMPTY), source="prod", public_id="nope"
        )
    assert err.value.vendor == "iq" and err.value.source == "prod"


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"scan_id": IQ_SCAN_ID}, {"scanId": IQ_SCAN_ID, "targetStageId": "stage-release"}),
        ({"source_stage": "build"}, {"sourceStageId": "build", "targetStageId": "stage-release"}),
    ],
)
def test_promote_request_bodies_match_seed(kwargs: dict[str, str], body: dict[str, str]) -> None:
    req = iq.build_promote(BASE, IQ_APP_ID, target_stage="stage-release", **kwargs)
    assert req.method == "POST" and not req.idempotent
    assert req.url == f"{BASE}/api/v2/evaluation/applications/{IQ_APP_ID}/promoteScan"
    assert req.json == body


@pytest.mark.parametrize("kwargs", [{}, {"scan_id": "s", "source_stage": "build"}])
def test_promote_needs_exactly_one_source(kwargs: dict[str, str]) -> None:
    with pytest.raises(BadRequestError, match="exactly one of scan_id or source_stage"):
        iq.build_promote(BASE, IQ_APP_ID, target_stage="release", **kwargs)


def test_promote_csrf_header_and_cookie_carry_the_same_value() -> None:
    req = iq.build_promote(
        BASE, "a", target_stage="release", source_stage="build", csrf_token="api"
    )
    assert req.headers["X-CSRF-TOKEN"] == "api"
    assert req.headers["Cookie"] == "CLM-CSRF-TOKEN=api"


def test_promote_answer_relative_status_url_joined_under_platform() -> None:
    promo = iq.parse_promote(
        resp(200, IQ_PROMOTE_RESPONSE),
        source="cloud",
        base_url=CLOUD,
        application_id=IQ_APP_ID,
        target_stage="stage-release",
        scan_id=IQ_SCAN_ID,
    )
    assert promo.id == IQ_STATUS_ID
    assert promo.application_id == IQ_APP_ID
    assert promo.lifecycle is Lifecycle.QUEUED and promo.vendor_status == ""
    assert promo.links["status"] == f"{CLOUD}/{IQ_PROMOTE_RESPONSE['statusUrl']}"
    assert promo.scan_id == IQ_SCAN_ID and promo.target_stage == "stage-release"


def test_promote_of_purged_scan_explains_purging() -> None:
    with pytest.raises(NotFoundError, match="purge") as err:
        iq.parse_promote(
            resp(400, IQ_PROMOTE_UNKNOWN_SCAN, operation="promote scan"),
            source="iq",
            base_url=BASE,
            application_id=IQ_APP_ID,
            target_stage="release",
            scan_id=IQ_SCAN_ID,
        )
    assert err.value.status == 400 and err.value.operation == "promote scan"


def test_promote_other_400_is_bad_request() -> None:
    with pytest.raises(BadRequestError):
        iq.parse_promote(
            resp(400, "Invalid stage"),
            source="iq",
            base_url=BASE,
            application_id="a",
            target_stage="nope",
            source_stage="build",
        )


@pytest.mark.parametrize(
    ("payload", "lifecycle", "message"),
    [
        (IQ_STATUS_PENDING, Lifecycle.RUNNING, None),
        (IQ_STATUS_FAILED, Lifecycle.FAILED, "message"),
        (IQ_STATUS_COMPLETED, Lifecycle.SUCCEEDED, None),
    ],
)
def test_status_payloads(
    payload: dict[str, str], lifecycle: Lifecycle, message: str | None
) -> None:
    promo = iq.parse_status(
        resp(200, payload),
        source="iq",
        base_url=BASE,
        application_id=IQ_APP_ID,
        status_id=IQ_STATUS_ID,
    )
    assert promo.lifecycle is lifecycle
    assert promo.vendor_status == payload["status"]
    assert promo.message == message
    assert promo.id == IQ_STATUS_ID


def test_completed_report_links_are_made_absolute() -> None:
    promo = iq.parse_status(
        resp(200, IQ_STATUS_COMPLETED),
        source="c",
        base_url=CLOUD,
        application_id=IQ_APP_ID,
        status_id="s",
    )
    assert promo.links["report_html"] == f"{CLOUD}/{IQ_STATUS_COMPLETED['reportHtmlUrl']}"
    assert promo.links["report_pdf"].startswith(f"{CLOUD}/ui/links/")
    assert promo.links["report_data"] == f"{CLOUD}/{IQ_STATUS_COMPLETED['reportDataUrl']}"
    assert promo.links["report_embeddable_html"].endswith("/embeddable")


def test_absolute_report_links_are_kept() -> None:
    payload = dict(IQ_STATUS_COMPLETED, reportPdfUrl="https://other.example/report.pdf")
    promo = iq.parse_status(
        resp(200, payload), source="c", base_url=BASE, application_id="a", status_id="s"
    )
    assert promo.links["report_pdf"] == "https://other.example/report.pdf"


def test_status_keeps_what_the_promotion_knew() -> None:
    submitted = iq.parse_promote(
        resp(200, IQ_PROMOTE_RESPONSE),
        source="iq",
        base_url=BASE,
        application_id=IQ_APP_ID,
        target_stage="release",
        source_stage="build",
    )
    done = iq.parse_status(
        resp(200, IQ_STATUS_COMPLETED), source="iq", base_url=BASE, previous=submitted
    )
    assert done.key == submitted.key
    assert (done.target_stage, done.source_stage) == ("release", "build")
    assert done.links["status"] == submitted.links["status"]


def test_unknown_status_becomes_unknown_and_keeps_raw() -> None:
    promo = iq.parse_status(
        resp(200, {"status": "EXPLODED"}),
        source="iq",
        base_url=BASE,
        application_id="a",
        status_id="s",
    )
    assert promo.lifecycle is Lifecycle.UNKNOWN and promo.vendor_status == "EXPLODED"


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (404, NotFoundError), (429, RateLimitedError)],
)
def test_status_errors(status: int, error: type[Exception]) -> None:
    body = IQ_CLOUD_429 if status == 429 else "error"
    with pytest.raises(error):
        iq.parse_status(
            resp(status, body), source="iq", base_url=BASE, application_id="a", status_id="s"
        )


def test_html_login_page_is_a_payload_error() -> None:
    page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
    with pytest.raises(PayloadError, match="HTML"):
        iq.parse_status(
            resp(200, page, headers={"Content-Type": "text/html"}),
            source="iq",
            base_url=BASE,
            application_id="a",
            status_id="s",
        )


def test_truncated_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        iq.parse_status(
            resp(200, b'{"status": "PEND'),
            source="iq",
            base_url=BASE,
            application_id="a",
            status_id="s",
        )


def test_webhook_signature_and_payload() -> None:
    body = json.dumps(IQ_WEBHOOK_EVALUATION).encode()
    import hashlib
    import hmac

    sig = hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    assert iq.verify_webhook(body, sig, "s3cret")
    assert not iq.verify_webhook(body, sig, "other")
    assert not iq.verify_webhook(body, None, "s3cret")
    scan = iq.parse_evaluation_webhook(
        {"X-Nexus-Webhook-Id": "iq:applicationEvaluation"}, body, source="iq", base_url=BASE
    )
    assert scan.verdict is Verdict.FAIL and scan.lifecycle is Lifecycle.SUCCEEDED
    assert scan.findings is not None
    assert (scan.findings.critical, scan.findings.high, scan.findings.medium) == (2, 5, 3)
    assert scan.findings.total == 10
    assert scan.finished_at is not None and scan.finished_at.year == 2015
    assert scan.scan_type == "build"


@pytest.mark.parametrize(("outcome", "verdict"), sorted(iq.OUTCOME_MAP.items()))
def test_webhook_outcomes(outcome: str, verdict: Verdict) -> None:
    payload = json.loads(json.dumps(IQ_WEBHOOK_EVALUATION))
    payload["applicationEvaluation"]["outcome"] = outcome.upper()
    scan = iq.parse_evaluation_webhook({}, json.dumps(payload).encode(), source="iq")
    assert scan.verdict is verdict
