"""JFrog AppTrust (seed 004, vendor-notes, JFrog's REST reference), exactly: every request as
sent, every promotion and page as read, paging decisions, every refusal as raised."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    Gate,
    GateKind,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Promotion,
    ServerError,
    Vendor,
    Verdict,
)
from scanhub.sansio import Request, apptrust

from .expect import refused
from .helpers import resp
from .payloads import AT_PROMOTE_SYNC_SUCCESS, AT_PROMOTIONS_SAMPLE

BASE = "https://acme.jfrog.io/apptrust/api/v1"
VERSION_URL = f"{BASE}/applications/my-app/versions/1.0.0"
JSON = {"Accept": "application/json"}
POST_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
FAILED_REC = AT_PROMOTIONS_SAMPLE["promotions"][0]
DONE_REC = AT_PROMOTIONS_SAMPLE["promotions"][1]
T_FAILED = datetime(2023, 5, 19, 6, 47, 56, 518000, tzinfo=UTC)
T_DONE = datetime(2023, 5, 19, 6, 21, 44, 916000, tzinfo=UTC)
AT = apptrust.Where("apptrust", "jf", "list promotions")


def record(**changes: Any) -> dict[str, Any]:
    """The second sample record of seed 004 (COMPLETED, created_by / created) with changes;
    a change to None removes the field."""
    rec = json.loads(json.dumps(DONE_REC))
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not None}


def read(rec: dict[str, Any], **kw: Any) -> Promotion:
    return apptrust.promotion_from_record(rec, AT, **kw)


def page(body: Any, offset: int = 0, code: int = 200, **kw: Any) -> apptrust.Page:
    return apptrust.parse_promotions(
        resp(code, body, operation="list promotions"),
        source="jf",
        application_key="my-app",
        version="1.0.0",
        offset=offset,
        **kw,
    )


#: The first sample record of seed 004, read.
FAILED = Promotion(
    vendor=Vendor.APPTRUST,
    source="jf",
    id="1684478876518",
    application_id="my-app",
    lifecycle=Lifecycle.FAILED,
    vendor_status="FAILED",
    verdict=Verdict.FAIL,
    created_at=T_FAILED,
    version="1.0.0",
    source_stage="QA",
    target_stage="PROD",
    promoted_by="admin",
    gates=(
        Gate(GateKind.EXIT, Verdict.PASS, "QA", "eval-exit-b4c3d2a1", None, "pass"),
        Gate(
            GateKind.ENTRY,
            Verdict.FAIL,
            "PROD",
            "eval-entry-h8g7f6e5",
            "Promotion blocked due to critical security vulnerabilities.",
            "fail",
        ),
    ),
)
DONE = Promotion(
    vendor=Vendor.APPTRUST,
    source="jf",
    id="1684477304916",
    application_id="my-app",
    lifecycle=Lifecycle.SUCCEEDED,
    vendor_status="COMPLETED",
    verdict=Verdict.PASS,
    created_at=T_DONE,
    version="1.0.0",
    source_stage="DEV",
    target_stage="QA",
    promoted_by="admin",
    gates=(
        Gate(GateKind.EXIT, Verdict.PASS, "DEV", "eval-exit-a1b2c3d4", None, "pass"),
        Gate(GateKind.ENTRY, Verdict.PASS, "QA", "eval-entry-e5f6g7h8", None, "pass"),
    ),
)


# --- requests ----------------------------------------------------------------------------------


def test_bearer_auth() -> None:
    assert apptrust.auth_headers("t0k") == {"Authorization": "Bearer t0k"}


def test_promotions_request_defaults() -> None:
    assert apptrust.build_promotions(BASE, "my-app", "1.0.0") == Request(
        "GET",
        f"{VERSION_URL}/promotions",
        "list promotions",
        params=(
            ("offset", "0"),
            ("limit", "100"),
            ("include", "message"),
            ("order_by", "created"),
            ("order_asc", "false"),
        ),
        headers=JSON,
    )


def test_promotions_request_with_every_option() -> None:
    filters = apptrust.Filters(target_stage="PROD", status="failed", promoted_by="admin")
    req = apptrust.build_promotions(
        BASE,
        "my app",
        "1.0/rc",
        offset=0,
        limit=1,
        filters=filters,
        order_by="stage",
        ascending=True,
        include_message=False,
    )
    assert req == Request(
        "GET",
        f"{BASE}/applications/my%20app/versions/1.0%2Frc/promotions",
        "list promotions",
        params=(
            ("offset", "0"),
            ("limit", "1"),
            ("filter_by", "target_stage:PROD"),
            ("filter_by", "status:failed"),
            ("filter_by", "promoted_by:admin"),
            ("order_by", "stage"),
            ("order_asc", "true"),
        ),
        headers=JSON,
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"order_by": "size"}, "order_by must be one of created, created_by, version, stage"),
        ({"limit": 0}, "limit must be >= 1 and offset >= 0"),
        ({"offset": -1}, "limit must be >= 1 and offset >= 0"),
    ],
)
def test_promotions_request_refused(kw: dict[str, Any], message: str) -> None:
    refused(
        lambda: apptrust.build_promotions(BASE, "k", "1", **kw),
        BadRequestError,
        vendor="apptrust",
        source="",
        operation="list promotions",
        message=message,
    )


@pytest.mark.parametrize(
    ("key", "version", "message"),
    [
        ("", "1", "application_key '' cannot be sent as a path segment (empty, '.' or '..')"),
        ("k", "..", "version '..' cannot be sent as a path segment (empty, '.' or '..')"),
    ],
)
def test_a_version_path_that_cannot_be_sent(key: str, version: str, message: str) -> None:
    refused(
        lambda: apptrust.build_promotions(BASE, key, version),
        BadRequestError,
        vendor="apptrust",
        operation="request",
        message=message,
    )


def test_promotion_details_request() -> None:
    assert apptrust.build_promotion(BASE, "my-app", "1.0.0", "1684477304916") == Request(
        "GET",
        f"{VERSION_URL}/promotions/1684477304916",
        "get promotion",
        params=(("include", "message"),),
        headers=JSON,
    )
    refused(
        lambda: apptrust.build_promotion(BASE, "my-app", "1.0.0", "."),
        BadRequestError,
        vendor="apptrust",
        operation="get promotion",
        message="promotion id '.' cannot be sent as a path segment (empty, '.' or '..')",
    )


def test_promote_request_with_every_option() -> None:
    included = ["a-local"]
    req = apptrust.build_promote(
        BASE,
        "my-app",
        "1.0.0",
        "PROD",
        promotion_type="move",
        included_repository_keys=included,
        excluded_repository_keys=["b-local", "c-local"],
        run_async=False,
    )
    assert req == Request(
        "POST",
        f"{VERSION_URL}/promote",
        "promote",
        params=(("async", "false"),),
        headers=POST_JSON,
        json={
            "target_stage": "PROD",
            "promotion_type": "move",
            "included_repository_keys": ["a-local"],
            "excluded_repository_keys": ["b-local", "c-local"],
        },
        idempotent=False,
    )
    included.append("later")  # the request keeps its own copy
    assert req.json["included_repository_keys"] == ["a-local"]
    assert apptrust.build_promote(BASE, "k", "1", "QA", excluded_repository_keys=[]).json == {
        "target_stage": "QA",
        "excluded_repository_keys": [],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "1", "QA"), "application_key, version and target_stage are required"),
        (("k", "", "QA"), "application_key, version and target_stage are required"),
        (("k", "1", ""), "application_key, version and target_stage are required"),
    ],
)
def test_promote_refused_before_sending(args: tuple[str, str, str], message: str) -> None:
    refused(
        lambda: apptrust.build_promote(BASE, *args, source="jf"),
        BadRequestError,
        vendor="apptrust",
        source="jf",
        operation="promote",
        message=message,
    )
    refused(
        lambda: apptrust.build_promote(BASE, "k", "1", "QA", promotion_type="clone", source="jf"),
        BadRequestError,
        vendor="apptrust",
        source="jf",
        operation="promote",
        message="promotion_type must be one of copy, move, keep, dry_run",
    )


def test_release_request_keeps_every_option_but_the_stage() -> None:
    req = apptrust.build_release(
        BASE,
        "my-app",
        "1.0.0",
        promotion_type="keep",
        included_repository_keys=["a-local"],
        excluded_repository_keys=["b-local"],
    )
    assert req == Request(
        "POST",
        f"{VERSION_URL}/release",
        "release",
        params=(("async", "true"),),
        headers=POST_JSON,
        json={
            "promotion_type": "keep",
            "included_repository_keys": ["a-local"],
            "excluded_repository_keys": ["b-local"],
        },
        idempotent=False,
    )
    assert apptrust.build_release(BASE, "k", "1", run_async=False).params == (("async", "false"),)
    assert apptrust.build_release(BASE, "k", "1").json == {}
    refused(
        lambda: apptrust.build_release(BASE, "", "1", source="jf"),
        BadRequestError,
        vendor="apptrust",
        source="jf",
        operation="promote",
        message="application_key, version and target_stage are required",
    )


# --- records ------------------------------------------------------------------------------------


def test_the_seed_sample_page_exactly() -> None:
    got = page(AT_PROMOTIONS_SAMPLE)
    assert got == apptrust.Page(
        promotions=[FAILED, DONE],
        total=2,
        offset=0,
        limit=1000,
        received=2,
        ids=("1684478876518", "1684477304916"),
        echoed_offset=0,
    )
    assert [p.raw for p in got.promotions] == AT_PROMOTIONS_SAMPLE["promotions"]


def test_a_page_without_paging_numbers() -> None:
    got = page({"promotions": [DONE_REC]}, offset=40)
    assert (got.total, got.limit, got.offset, got.echoed_offset, got.received) == (
        None,
        None,
        40,
        None,
        1,
    )


def test_a_filtered_page_still_counts_and_names_every_record() -> None:
    got = page(AT_PROMOTIONS_SAMPLE, filters=apptrust.Filters(target_stage="QA"))
    assert got.promotions == [DONE]
    assert (got.received, got.ids) == (2, ("1684478876518", "1684477304916"))


@pytest.mark.parametrize(
    ("millis", "wanted"),
    [
        ({"created_millis": "1684477304916"}, "1684477304916"),
        ({"created_millis": " 1684477304916 "}, "1684477304916"),
        ({"created_millis": 1684477304916.0}, "1684477304916"),
        ({"created_millis": None, "promoted_millis": 1684477304000}, "1684477304000"),
        ({"created_millis": None, "promoted_millis": "1684477304001"}, "1684477304001"),
        ({"created_millis": "soon", "promoted_millis": 7}, "7"),
    ],
    ids=["digits", "padded", "float", "promoted", "promoted-digits", "bad-created"],
)
def test_the_id_in_every_documented_spelling(millis: dict[str, Any], wanted: str) -> None:
    got = read(record(**millis))
    assert got.id == wanted and got.created_at == T_DONE


@pytest.mark.parametrize(
    "when",
    [
        {"created": "2023-05-19T06:21:44.916Z"},
        {"created": None, "promoted_at": "2023-05-19T06:21:44.916Z"},
        {"created": None, "promoted": "2023-05-19T06:21:44.916Z"},
        {"created": "not a time", "promoted_at": "2023-05-19T06:21:44.916Z"},
        {"created": None, "promoted_at": "garbage", "promoted": "2023-05-19T06:21:44.916Z"},
    ],
)
def test_the_time_in_every_documented_spelling(when: dict[str, Any]) -> None:
    got = read(record(created_millis=None, **when))
    assert (got.id, got.created_at) == ("1684477304916", T_DONE)


def test_the_time_comes_from_the_millis_when_no_time_is_named() -> None:
    got = read(record(created=None, created_millis=1684478876518))
    assert got.created_at == T_FAILED


def test_a_named_time_wins_over_the_millis_for_created_at() -> None:
    got = read(record(created_millis=1))
    assert (got.id, got.created_at) == ("1", T_DONE)


def test_a_record_without_any_identity_is_refused() -> None:
    rec = record(created=None, created_millis=None)
    refused(
        lambda: apptrust.promotion_from_record(rec, AT, resp(200, {}, operation="list promotions")),
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="list promotions",
        status=200,
        body="{}",
        message="missing identity field created_millis / promoted_millis",
    )


@pytest.mark.parametrize(
    ("fields", "kw", "app", "version"),
    [
        ({"application_key": None}, {"application_key": "arg-app"}, "arg-app", "1.0.0"),
        ({"application_key": 42}, {}, "42", "1.0.0"),
        ({"application_key": ""}, {"application_key": "arg-app"}, "arg-app", "1.0.0"),
        ({"application_version": None, "version": "2.0"}, {"version": "arg"}, "my-app", "2.0"),
        ({"application_version": None}, {"version": "arg"}, "my-app", "arg"),
        ({"application_version": 3}, {}, "my-app", "3"),
        ({"application_version": ""}, {"version": "arg"}, "my-app", "arg"),
    ],
)
def test_application_and_version_from_the_record_else_the_request(
    fields: dict[str, Any], kw: dict[str, str], app: str, version: str
) -> None:
    rec = record(**{k: v for k, v in fields.items() if v is not None})
    for k, v in fields.items():
        if v is None:
            rec.pop(k, None)
    got = read(rec, **kw)
    assert (got.application_id, got.version) == (app, version)


@pytest.mark.parametrize(
    "fields", [{"application_key": None}, {"application_version": None}], ids=["key", "version"]
)
def test_a_record_of_no_known_application_version_is_refused(fields: dict[str, Any]) -> None:
    rec = record(**fields)
    refused(
        lambda: read(rec),
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="list promotions",
        message="missing identity field application_key / application_version",
    )


@pytest.mark.parametrize(
    ("status", "lifecycle", "kept"),
    [
        ("COMPLETED", Lifecycle.SUCCEEDED, "COMPLETED"),
        ("Failed", Lifecycle.FAILED, "Failed"),
        (" processing ", Lifecycle.RUNNING, " processing "),
        ("STARTED\t", Lifecycle.RUNNING, "STARTED\t"),
        ("deleting", Lifecycle.CANCELLED, "deleting"),
        (5, Lifecycle.UNKNOWN, "5"),
        ("", Lifecycle.UNKNOWN, ""),
        (None, Lifecycle.UNKNOWN, ""),
    ],
)
def test_every_status_spelling_padding_and_absence(
    status: Any, lifecycle: Lifecycle, kept: str
) -> None:
    got = read(record(status=status))
    assert (got.lifecycle, got.vendor_status) == (lifecycle, kept)


def test_an_unknown_status_is_kept_raw_and_warned_naming_apptrust(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = f"AWAITING_{uuid.uuid4().hex[:8].upper()}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = read(record(status=value))
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, value)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown apptrust status value {value.lower()!r} mapped to unknown"
    ]


@pytest.mark.parametrize(
    ("fields", "by"),
    [
        ({"promoted_by": "alice", "created_by": "bob"}, "alice"),
        ({"created_by": "bob"}, "bob"),
        ({"created_by": 7}, "7"),
        ({"promoted_by": "", "created_by": "bob"}, "bob"),
        ({"created_by": None}, None),
    ],
)
def test_who_promoted(fields: dict[str, Any], by: str | None) -> None:
    assert read(record(**fields)).promoted_by == by


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"message": "Blocked by gate"}, "Blocked by gate"),
        ({"error_message": "Repository missing"}, "Repository missing"),
        ({"message": "", "error_message": "Repository missing"}, "Repository missing"),
        ({"messages": ["first", "second"]}, "first; second"),
        ({"messages": [{"text": "a"}, {"message": "b"}, {"code": 3}, 4, "c"]}, "a; b; c"),
        ({"messages": [{"text": "a", "message": "b"}]}, "a"),
        ({"messages": []}, None),
        ({"messages": "not a list"}, None),
        ({"message": None}, None),
        ({}, None),
    ],
)
def test_the_message_in_each_documented_variant(
    fields: dict[str, Any], message: str | None
) -> None:
    rec = record()
    rec.update(fields)
    assert read(rec).message == message


def test_gates_of_every_kind_in_order_and_the_worst_verdict() -> None:
    rec = record(
        evaluations={
            "release_gate": {"stage": "PROD", "eval_id": 9, "decision": "Passed"},
            "entry_gate": {"stage": 3, "decision": " warn ", "explanation": 1.5},
            "exit_gate": {"decision": "ERROR"},
            "other_gate": {"decision": "fail"},
        }
    )
    got = read(rec)
    assert got.gates == (
        Gate(GateKind.EXIT, Verdict.ERROR, None, None, None, "ERROR"),
        Gate(GateKind.ENTRY, Verdict.WARN, "3", None, "1.5", " warn "),
        Gate(GateKind.RELEASE, Verdict.PASS, "PROD", "9", None, "Passed"),
    )
    assert got.verdict is Verdict.ERROR


@pytest.mark.parametrize(
    "evaluations",
    [None, {}, [], "pass", {"exit_gate": "pass", "entry_gate": None}],
    ids=["none", "empty", "list", "text", "gates-not-objects"],
)
def test_no_readable_gate_means_no_verdict(evaluations: Any) -> None:
    rec = record()
    rec["evaluations"] = evaluations
    got = read(rec)
    assert (got.gates, got.verdict) == ((), Verdict.NONE)


@pytest.mark.parametrize(("decision", "kept"), [(None, None), ("", ""), (True, None), (2, "2")])
def test_a_gate_without_a_known_decision_has_no_verdict(decision: Any, kept: str | None) -> None:
    rec = record(evaluations={"entry_gate": {"decision": decision}})
    assert read(rec).gates == (Gate(GateKind.ENTRY, Verdict.NONE, None, None, None, kept),)


def test_an_unknown_decision_is_warned_naming_apptrust(caplog: pytest.LogCaptureFixture) -> None:
    value = f"Maybe-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = read(record(evaluations={"entry_gate": {"decision": value}}))
    assert got.gates[0].verdict is Verdict.NONE and got.gates[0].vendor_decision == value
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown apptrust decision value {value.lower()!r} mapped to none"
    ]


# --- promote answers and details ---------------------------------------------------------------


def test_a_promote_answer_takes_the_asked_stage_only_when_it_names_none() -> None:
    def promote(body: Any) -> Promotion:
        return apptrust.parse_promote(
            resp(202, body, operation="promote"),
            source="jf",
            application_key="catalina-app",
            version="1.0.0",
            target_stage="QA",
        )

    without = {k: v for k, v in AT_PROMOTE_SYNC_SUCCESS.items() if k != "target_stage"}
    assert promote(without).target_stage == "QA"
    assert promote(dict(AT_PROMOTE_SYNC_SUCCESS, target_stage="PROD")).target_stage == "PROD"
    got = promote(AT_PROMOTE_SYNC_SUCCESS)
    assert (got.id, got.lifecycle, got.message, got.source) == (
        "1684477304916",
        Lifecycle.SUCCEEDED,
        "Application version promoted to QA",
        "jf",
    )


@pytest.mark.parametrize("call", ["list", "one", "promote"])
@pytest.mark.parametrize(
    ("code", "body", "cls", "message"),
    [
        (
            404,
            {"errors": [{"status": 404, "message": "Application version not found"}]},
            NotFoundError,
            "Application version not found",
        ),
        (
            400,
            {
                "errors": [
                    {"message": "a"},
                    "junk",
                    {"message": ""},
                    {"field": "limit", "message": "b", "code": "400"},
                ]
            },
            BadRequestError,
            "a; limit: b",
        ),
        (
            400,
            {"errors": [{"code": "X"}], "message": "bare", "field": "f"},
            BadRequestError,
            "f: bare",
        ),
        (401, {"errors": "no", "error": "Bad Credentials"}, AuthenticationError, "Bad Credentials"),
        (
            403,
            {"message": "Permission Denied", "code": "FORBIDDEN"},
            AuthenticationError,
            "Permission Denied [FORBIDDEN]",
        ),
        (500, "<html>Internal</html>", ServerError, "HTTP 500"),
        (401, "Bad Credentials", AuthenticationError, "Bad Credentials"),  # seed 004, as text
        (502, "Bad Gateway\nfrom the proxy", ServerError, "HTTP 502"),  # not one line
        (400, "y" * 200, BadRequestError, "y" * 200),
        (400, "y" * 201, BadRequestError, "HTTP 400"),  # a page, not a message
        (503, [], ServerError, "HTTP 503"),
    ],
)
def test_every_error_body_variant(
    code: int, body: Any, cls: type[Any], message: str, call: str
) -> None:
    operation = {"list": "list promotions", "one": "get promotion", "promote": "promote"}[call]
    r = resp(code, body, operation=operation)
    parse = {
        "list": lambda: apptrust.parse_promotions(
            r, source="jf", application_key="k", version="1", offset=0
        ),
        "one": lambda: apptrust.parse_promotion(r, source="jf", application_key="k", version="1"),
        "promote": lambda: apptrust.parse_promote(
            r, source="jf", application_key="k", version="1", target_stage="QA"
        ),
    }[call]
    refused(
        parse,
        cls,
        vendor="apptrust",
        source="jf",
        operation=operation,
        status=code,
        body=body if isinstance(body, str) else json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the response is an array, expected an object"),
        ({"promotions": {}}, "`promotions` is an object, expected an array"),
        ({"promotions": ["x"]}, "a promotion is a string, expected an object"),
    ],
)
def test_a_page_of_the_wrong_shape(body: Any, message: str) -> None:
    refused(
        lambda: page(body),
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="list promotions",
        status=200,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize("call", ["one", "promote"])
def test_a_single_answer_of_the_wrong_shape(call: str) -> None:
    r = resp(200, [1], operation="x")

    def parse() -> Any:
        if call == "one":
            return apptrust.parse_promotion(r, source="jf", application_key="k", version="1")
        return apptrust.parse_promote(
            r, source="jf", application_key="k", version="1", target_stage="QA"
        )

    refused(
        parse,
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="x",
        status=200,
        body="[1]",
        message="the response is an array, expected an object",
    )


def test_details_name_their_version_from_the_request() -> None:
    details = {"target_stage": "QA", "created_by": "admin", "created_millis": 5}
    got = apptrust.parse_promotion(
        resp(200, details), source="jf", application_key="k", version="9"
    )
    assert (got.application_id, got.version, got.id, got.target_stage) == ("k", "9", "5", "QA")


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        (apptrust.Filters(), [True, True]),
        (apptrust.Filters(target_stage="PROD"), [True, False]),
        (apptrust.Filters(promoted_by="admin"), [True, True]),
        (apptrust.Filters(promoted_by="bob"), [False, False]),
        (apptrust.Filters(status="failed"), [True, False]),
        (apptrust.Filters(status="FAILED"), [True, False]),
        (apptrust.Filters(status="success"), [False, True]),
        (apptrust.Filters(status="succeeded"), [False, True]),
        (apptrust.Filters(status="completed"), [False, True]),
        (apptrust.Filters(status="pending"), [False, False]),
        (apptrust.Filters(target_stage="QA", status="failed"), [False, False]),
    ],
)
def test_local_filters(filters: apptrust.Filters, matches: list[bool]) -> None:
    assert [filters.matches(p) for p in (FAILED, DONE)] == matches


# --- paging -------------------------------------------------------------------------------------


def promos(*ids: int) -> list[Promotion]:
    return [read(record(created_millis=i)) for i in ids]


def a_page(
    ids: list[int], offset: int, total: int | None = None, echoed: int | None = None
) -> apptrust.Page:
    listed = promos(*ids)
    return apptrust.Page(
        listed, total, offset, None, len(listed), tuple(p.id for p in listed), echoed
    )


def test_paging_moves_on_by_what_was_received() -> None:
    pager = apptrust.Pager(2)
    assert [p.id for p in pager.accept(a_page([1, 2], 0, total=5, echoed=0), 0)] == ["1", "2"]
    assert (pager.offset, pager.done, pager.fault, pager.pages) == (2, False, None, 1)
    assert [p.id for p in pager.accept(a_page([3, 4], 2, total=5), 2)] == ["3", "4"]
    assert [p.id for p in pager.accept(a_page([5], 4, total=5), 4)] == ["5"]
    assert (pager.done, pager.fault, pager.pages) == (True, None, 3)


def test_a_full_page_without_a_total_asks_for_more() -> None:
    pager = apptrust.Pager(2)
    pager.accept(a_page([1, 2], 0), 0)
    assert (pager.done, pager.offset) == (False, 2)


def test_a_short_page_without_a_total_ends_the_list() -> None:
    pager = apptrust.Pager(2)
    assert [p.id for p in pager.accept(a_page([1], 0), 0)] == ["1"]
    assert (pager.done, pager.fault) == (True, None)


def test_a_short_page_goes_on_when_the_total_says_more_remain() -> None:
    """A server that caps `limit` below what was asked for."""
    pager = apptrust.Pager(10)
    pager.accept(a_page([1, 2], 0, total=4), 0)
    assert (pager.done, pager.offset) == (False, 2)
    pager.accept(a_page([3, 4], 2, total=4), 2)
    assert pager.done and pager.fault is None


def test_an_empty_page_ends_the_list() -> None:
    pager = apptrust.Pager(2)
    assert pager.accept(a_page([], 0, total=9), 0) == []
    assert (pager.done, pager.fault) == (True, None)


def test_an_answer_for_another_offset_is_a_fault() -> None:
    pager = apptrust.Pager(2)
    assert pager.accept(a_page([1, 2], 2, echoed=0), 2) == []
    assert (pager.done, pager.fault) == (
        True,
        "asked for offset 2, the server answered offset 0",
    )


def test_a_page_of_records_already_received_is_a_fault() -> None:
    pager = apptrust.Pager(2)
    first = a_page([1, 2], 0)
    pager.accept(first, 0)
    again = apptrust.Page(first.promotions, None, 2, None, 2)  # no ids: named by its promotions
    assert pager.accept(again, 2) == []
    assert (pager.done, pager.fault) == (
        True,
        "the page at offset 2 repeats records already received (does the server ignore offset?)",
    )


def test_a_page_that_overlaps_yields_only_what_is_new() -> None:
    pager = apptrust.Pager(2)
    pager.accept(a_page([1, 2], 0), 0)
    assert [p.id for p in pager.accept(a_page([2, 3], 2), 2)] == ["3"]
    assert pager.fault is None


def test_paging_stops_after_max_pages_and_says_so() -> None:
    pager = apptrust.Pager(1, max_pages=2)
    pager.accept(a_page([1], 0), 0)
    assert (pager.done, pager.fault) == (False, None)
    pager.accept(a_page([2], 1), 1)
    assert (pager.done, pager.fault, pager.pages) == (
        True,
        "more than 2 pages of 1; stopped there",
        2,
    )


def test_the_last_page_within_max_pages_is_no_fault() -> None:
    pager = apptrust.Pager(1, max_pages=2)
    pager.accept(a_page([1], 0, total=2), 0)
    pager.accept(a_page([2], 1, total=2), 1)
    assert (pager.done, pager.fault) == (True, None)


# --- matching (see also tests/test_apptrust_refresh.py) ----------------------------------------


def test_a_wanted_promotion_after_one_found_by_id_is_still_matched_by_time() -> None:
    listed = [read(record(created_millis=5000)), read(record(created_millis=1000))]
    wanted = [read(record(created_millis=5000)), read(record(created_millis=1003))]
    found = apptrust.match_promotions(listed, wanted)
    assert {k: v.id for k, v in found.items()} == {"5000": "5000", "1003": "1000"}
    assert apptrust.match_promotions(listed, [read(record(created_millis=7))]) == {"7": listed[1]}


# --- what the first run of mutmut showed untested ------------------------------------------------


def test_a_status_filter_by_a_word_the_table_does_not_know_matches_that_word() -> None:
    waiting = read(record(status="AWAITING_APPROVAL"))
    assert apptrust.Filters(status="awaiting_approval").matches(waiting)
    assert not apptrust.Filters(status="awaiting_approval").matches(DONE)


@pytest.mark.parametrize("call", ["list", "one", "promote"])
def test_an_html_page_instead_of_json_is_named(call: str) -> None:
    r = resp(200, "<html>Sign in</html>", operation="x")
    parse = {
        "list": lambda: apptrust.parse_promotions(
            r, source="jf", application_key="k", version="1", offset=0
        ),
        "one": lambda: apptrust.parse_promotion(r, source="jf", application_key="k", version="1"),
        "promote": lambda: apptrust.parse_promote(
            r, source="jf", application_key="k", version="1", target_stage="QA"
        ),
    }[call]
    refused(
        parse,
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="x",
        status=200,
        body="<html>Sign in</html>",
        message="got an HTML page instead of JSON (a login page or proxy?)",
    )


def test_a_page_of_records_without_application_or_version_names_them_from_the_request() -> None:
    bare = record(application_key=None, application_version=None)
    got = apptrust.parse_promotions(
        resp(200, {"promotions": [bare]}),
        source="jf",
        application_key="from-request",
        version="9.9",
        offset=0,
    )
    assert [(p.application_id, p.version, p.id) for p in got.promotions] == [
        ("from-request", "9.9", "1684477304916")
    ]


@pytest.mark.parametrize("call", ["list", "one", "promote"])
def test_a_record_without_identity_is_refused_with_the_answer_named(call: str) -> None:
    rec = {"status": "COMPLETED", "target_stage": "QA"}
    body: Any = {"promotions": [rec]} if call == "list" else rec
    r = resp(200, body, operation="x")
    parse = {
        "list": lambda: apptrust.parse_promotions(
            r, source="jf", application_key="k", version="1", offset=0
        ),
        "one": lambda: apptrust.parse_promotion(r, source="jf", application_key="k", version="1"),
        "promote": lambda: apptrust.parse_promote(
            r, source="jf", application_key="k", version="1", target_stage="QA"
        ),
    }[call]
    refused(
        parse,
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="x",
        status=200,
        body=json.dumps(body),
        message="missing identity field created_millis / promoted_millis",
    )


def test_a_record_of_no_known_application_is_refused_with_the_answer_named() -> None:
    rec = record(application_key=None)
    refused(
        lambda: apptrust.promotion_from_record(rec, AT, resp(200, "{}", operation="x")),
        PayloadError,
        vendor="apptrust",
        source="jf",
        operation="list promotions",
        status=200,
        body="{}",
        message="missing identity field application_key / application_version",
    )


def test_created_millis_as_text_is_the_id_even_when_the_named_time_differs() -> None:
    got = read(record(created_millis="1684477304999"))
    assert (got.id, got.created_at) == ("1684477304999", T_DONE)


def test_a_promoted_by_that_is_a_number_is_read_as_text_before_created_by() -> None:
    assert read(record(promoted_by=7, created_by="bob")).promoted_by == "7"


def test_a_wanted_promotion_whose_id_is_not_a_time_and_is_not_listed_gets_nothing() -> None:
    listed = [read(record(created_millis=1000))]
    assert apptrust.match_promotions(listed, [DONE, read(record(created_millis=1000))]) == {
        "1000": listed[0]
    }
    oddly_named = attrs.evolve(DONE, id="abc")
    assert apptrust.match_promotions(listed, [oddly_named]) == {}
