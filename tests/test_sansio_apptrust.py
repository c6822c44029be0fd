"""JFrog AppTrust pure functions against seed 004 and the variants of vendor-notes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    GateKind,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Verdict,
)
from scanhub.sansio import apptrust

from .helpers import resp
from .payloads import (
    AT_ERROR_404,
    AT_ERROR_BARE,
    AT_ERROR_CODE,
    AT_PROMOTION_FIELD_TABLE_SHAPE,
    AT_PROMOTIONS_SAMPLE,
)

BASE = "https://acme.jfrog.io/apptrust/api/v1"


def _page(body: object, offset: int = 0, filters: apptrust.Filters | None = None) -> apptrust.Page:
    return apptrust.parse_promotions(
        resp(200, body),
        source="at",
        application_key="my-app",
        version="1.0.0",
        offset=offset,
        filters=filters,
    )


def test_seed_sample_two_promotions_with_gates() -> None:
    page = _page(AT_PROMOTIONS_SAMPLE)
    failed, completed = page.promotions
    assert failed.lifecycle is Lifecycle.FAILED and failed.vendor_status == "FAILED"
    assert failed.id == "1684478876518"
    assert failed.promoted_by == "admin"
    assert failed.created_at == datetime(2023, 5, 19, 6, 47, 56, 518000, tzinfo=UTC)
    assert (failed.source_stage, failed.target_stage) == ("QA", "PROD")
    exit_gate, entry_gate = failed.gates
    assert exit_gate.kind is GateKind.EXIT and exit_gate.verdict is Verdict.PASS
    assert entry_gate.kind is GateKind.ENTRY and entry_gate.verdict is Verdict.FAIL
    assert entry_gate.explanation == "Promotion blocked due to critical security vulnerabilities."
    assert entry_gate.evaluation_id == "eval-entry-h8g7f6e5" and entry_gate.stage == "PROD"
    assert failed.verdict is Verdict.FAIL  # worst gate

    assert completed.lifecycle is Lifecycle.SUCCEEDED
    assert completed.promoted_by == "admin"  # from created_by
    assert completed.verdict is Verdict.PASS
    assert page.total == 2 and page.next_offset() is None


def test_field_table_shape_is_read() -> None:
    promo = apptrust.promotion_from_record(
        AT_PROMOTION_FIELD_TABLE_SHAPE, apptrust.Where("apptrust", "at", "x")
    )
    assert promo.id == "1684477304916"
    assert promo.lifecycle is Lifecycle.SUCCEEDED
    assert promo.created_at == datetime(2023, 5, 19, 6, 21, 44, 916000, tzinfo=UTC)


def test_id_from_iso_time_when_no_millis() -> None:
    rec = {k: v for k, v in AT_PROMOTIONS_SAMPLE["promotions"][1].items() if k != "created_millis"}
    promo = apptrust.promotion_from_record(rec, apptrust.Where("apptrust", "at", "x"))
    assert promo.id == "1684477304916"


def test_missing_identity_is_payload_error() -> None:
    with pytest.raises(PayloadError, match="created_millis"):
        apptrust.promotion_from_record({"status": "FAILED"}, apptrust.Where("apptrust", "at", "x"))


ALL_SPELLINGS = {
    "FAILED": Lifecycle.FAILED,
    "failed": Lifecycle.FAILED,
    "COMPLETED": Lifecycle.SUCCEEDED,
    "success": Lifecycle.SUCCEEDED,
    "SUCCESS": Lifecycle.SUCCEEDED,
    "pending": Lifecycle.QUEUED,
    "PENDING": Lifecycle.QUEUED,
    "STARTED": Lifecycle.RUNNING,
    "PROCESSING": Lifecycle.RUNNING,
    "processing": Lifecycle.RUNNING,
    "DELETING": Lifecycle.CANCELLED,
}


@pytest.mark.parametrize(("status", "lifecycle"), sorted(ALL_SPELLINGS.items()))
def test_every_status_spelling_case_insensitive(status: str, lifecycle: Lifecycle) -> None:
    rec = dict(AT_PROMOTIONS_SAMPLE["promotions"][0], status=status)
    promo = apptrust.promotion_from_record(rec, apptrust.Where("apptrust", "at", "x"))
    assert promo.lifecycle is lifecycle and promo.vendor_status == status


@pytest.mark.parametrize(
    ("decision", "verdict"),
    [
        ("pass", Verdict.PASS),
        ("Pass", Verdict.PASS),
        ("fail", Verdict.FAIL),
        ("Fail", Verdict.FAIL),
        ("warning", Verdict.WARN),
        ("Warning", Verdict.WARN),
        ("error", Verdict.ERROR),
        ("Error", Verdict.ERROR),
        ("maybe", Verdict.NONE),
    ],
)
def test_every_gate_decision(decision: str, verdict: Verdict) -> None:
    rec = dict(AT_PROMOTIONS_SAMPLE["promotions"][1])
    rec["evaluations"] = {"entry_gate": {"stage": "QA", "eval_id": "e", "decision": decision}}
    promo = apptrust.promotion_from_record(rec, apptrust.Where("apptrust", "at", "x"))
    assert promo.gates[0].verdict is verdict and promo.gates[0].vendor_decision == decision
    assert promo.verdict is verdict


def test_worst_gate_wins() -> None:
    rec = dict(AT_PROMOTIONS_SAMPLE["promotions"][1])
    rec["evaluations"] = {
        "exit_gate": {"decision": "warning"},
        "entry_gate": {"decision": "error"},
    }
    promo = apptrust.promotion_from_record(rec, apptrust.Where("apptrust", "at", "x"))
    assert promo.verdict is Verdict.ERROR


def test_paging_numbers() -> None:
    body = dict(AT_PROMOTIONS_SAMPLE, total=5, limit=2, offset=2)
    page = _page(body, offset=2)
    assert page.next_offset() == 4
    assert _page(dict(AT_PROMOTIONS_SAMPLE, promotions=[], total=5), offset=4).next_offset() is None


def test_local_filters_apply_even_when_server_ignores_them() -> None:
    page = _page(AT_PROMOTIONS_SAMPLE, filters=apptrust.Filters(target_stage="PROD"))
    assert [p.target_stage for p in page.promotions] == ["PROD"]
    assert page.received == 2  # paging still counts what the server sent
    page = _page(AT_PROMOTIONS_SAMPLE, filters=apptrust.Filters(status="success"))
    assert [p.vendor_status for p in page.promotions] == ["COMPLETED"]
    page = _page(AT_PROMOTIONS_SAMPLE, filters=apptrust.Filters(status="failed"))
    assert [p.vendor_status for p in page.promotions] == ["FAILED"]


def test_list_request() -> None:
    req = apptrust.build_promotions(
        BASE,
        "my-app",
        "1.0.0",
        offset=10,
        limit=5,
        filters=apptrust.Filters(target_stage="PROD", status="failed"),
        ascending=True,
    )
    assert req.url == f"{BASE}/applications/my-app/versions/1.0.0/promotions"
    params = dict(req.params)
    assert params["offset"] == "10" and params["limit"] == "5" and params["include"] == "message"
    assert ("filter_by", "target_stage:PROD") in req.params
    assert ("filter_by", "status:failed") in req.params
    assert params["order_by"] == "created" and params["order_asc"] == "true"
    with pytest.raises(BadRequestError):
        apptrust.build_promotions(BASE, "a", "1", order_by="size")


def test_promote_request_and_answer() -> None:
    req = apptrust.build_promote(BASE, "my-app", "1.0.0", "PROD", promotion_type="copy")
    assert req.url == f"{BASE}/applications/my-app/versions/1.0.0/promote"
    assert req.json == {"target_stage": "PROD", "promotion_type": "copy"}
    assert req.params == (("async", "true"),) and not req.idempotent
    with pytest.raises(BadRequestError, match="promotion_type"):
        apptrust.build_promote(BASE, "my-app", "1.0.0", "PROD", promotion_type="teleport")
    answer = {
        "status": "STARTED",
        "application_key": "my-app",
        "application_version": "1.0.0",
        "source_stage": "QA",
        "created": "2023-05-19T06:47:56.518Z",
        "created_millis": 1684478876518,
        "created_by": "admin",
    }
    promo = apptrust.parse_promote(
        resp(202, answer),
        source="at",
        application_key="my-app",
        version="1.0.0",
        target_stage="PROD",
    )
    assert promo.lifecycle is Lifecycle.RUNNING and promo.target_stage == "PROD"


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (404, AT_ERROR_404, NotFoundError, "Application version not found"),
        (401, AT_ERROR_CODE, AuthenticationError, "Bad Credentials"),
        (403, AT_ERROR_BARE, AuthenticationError, "Permission Denied"),
    ],
)
def test_error_body_variants(status: int, body: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        apptrust.parse_promotion(resp(status, body), source="at", application_key="a", version="1")
