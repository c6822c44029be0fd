"""Dependency-Track, exactly: every request as sent, every answer as read (upload, token status,
workflow, project, metrics, violations), every judgement of where a token stands with its
message, and every refusal as raised (vendor, source, operation, status, body excerpt, text).
The payloads are those of tests/test_vendor_dependencytrack.py, each naming its source; the
expected values are written out from them, not taken from the code."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

import scanhub._sansio
from scanhub import FindingCounts, Lifecycle, Scan, Verdict
from scanhub.sansio import Request
from scanhub.vendors import AuthenticationError, BadRequestError, NotFoundError, PayloadError
from scanhub.vendors.dependencytrack import sansio as dt

from .expect import refused
from .helpers import resp
from .test_vendor_dependencytrack import (
    BASE,
    DT_METRICS,
    DT_PROJECT,
    DT_UPLOAD,
    DT_WORKFLOW_COMPLETED,
    DT_WORKFLOW_VULN_FAILED,
    PROJECT,
    TOKEN,
    violation,
)

API = f"{BASE}/api/v1"
DATE = "Mon, 10 Jun 2024 06:13:20 GMT"
UPLOADED_AT = datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
V4_LINKS = {
    "status": f"{API}/event/token/{TOKEN}",
    "project": f"{API}/project/{PROJECT}",
    "violations": f"{API}/violation/project/{PROJECT}",
    "metrics": f"{API}/metrics/project/{PROJECT}/current",
}
V5_LINKS = {**V4_LINKS, "status": f"{API}/workflow/token/{TOKEN}/status"}


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


UPLOAD = Scan(
    vendor="dependencytrack",
    source="dt",
    id=TOKEN,
    application_id=PROJECT,
    lifecycle=Lifecycle.QUEUED,
    vendor_status="",
    created_at=UPLOADED_AT,
    scan_type="bom",
    links=V4_LINKS,
    raw={"upload": DT_UPLOAD},
)


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown values are warned once per process: start from none warned."""
    monkeypatch.setattr(scanhub._sansio, "_warned", set())


def segment_refused(call: Any, operation: str, what: str, cls: type = BadRequestError) -> None:
    refused(
        call,
        cls,
        vendor="dependencytrack",
        operation=operation,
        message=f"{what} '..' cannot be sent as a path segment (empty, '.' or '..')",
    )


# --- requests -------------------------------------------------------------------------------------


def test_auth_headers() -> None:
    assert dt.auth_headers("odt_k") == {"X-Api-Key": "odt_k", "Accept": "application/json"}


def test_every_read_request_exactly() -> None:
    assert dt.build_project(BASE, PROJECT) == Request("GET", f"{API}/project/{PROJECT}", "project")
    assert dt.build_metrics(BASE, PROJECT) == Request(
        "GET", f"{API}/metrics/project/{PROJECT}/current", "project metrics"
    )
    assert dt.build_violations(BASE, PROJECT) == Request(
        "GET",
        f"{API}/violation/project/{PROJECT}",
        "policy violations",
        params=(("pageNumber", "1"), ("pageSize", "100")),
    )
    assert dt.build_violations(BASE, PROJECT, page=3, page_size=7).params == (
        ("pageNumber", "3"),
        ("pageSize", "7"),
    )
    assert dt.build_token_status(BASE, TOKEN) == Request(
        "GET", f"{API}/event/token/{TOKEN}", "token status"
    )
    assert dt.build_workflow_status(BASE, TOKEN) == Request(
        "GET", f"{API}/workflow/token/{TOKEN}/status", "workflow status"
    )
    assert dt.build_project_lookup(BASE, "Example Application", "1.0.0") == Request(
        "GET",
        f"{API}/project/lookup",
        "project lookup",
        params=(("name", "Example Application"), ("version", "1.0.0")),
    )


def test_ids_that_cannot_be_path_segments_are_refused_naming_the_operation() -> None:
    segment_refused(lambda: dt.build_project(BASE, ".."), "project", "project uuid")
    segment_refused(lambda: dt.build_metrics(BASE, ".."), "project metrics", "project uuid")
    segment_refused(lambda: dt.build_violations(BASE, ".."), "policy violations", "project uuid")
    segment_refused(lambda: dt.build_token_status(BASE, ".."), "token status", "token")
    segment_refused(lambda: dt.build_workflow_status(BASE, ".."), "workflow status", "token")
    segment_refused(lambda: dt.links(BASE, "..", PROJECT, "v4"), "links", "token")
    segment_refused(lambda: dt.links(BASE, TOKEN, "..", "v4"), "links", "project")
    segment_refused(
        lambda: dt.links(BASE, "..", PROJECT, "v4", error=PayloadError),
        "links",
        "token",
        PayloadError,
    )


@pytest.mark.parametrize(("name", "version"), [("", "1"), ("a", " "), (" ", "")])
def test_a_lookup_without_name_or_version_is_refused(name: str, version: str) -> None:
    refused(
        lambda: dt.build_project_lookup(BASE, name, version),
        BadRequestError,
        vendor="dependencytrack",
        source="",
        operation="project lookup",
        message="project name and version must both be non-empty",
    )


def test_the_upload_request_exactly() -> None:
    assert dt.build_upload(BASE, b"<bom/>", project=PROJECT) == Request(
        "PUT",
        f"{API}/bom",
        "upload bom",
        json={"project": PROJECT, "bom": "PGJvbS8+"},
        idempotent=False,
    )
    by_name = dt.build_upload(
        BASE,
        b"<bom/>",
        project_name="app",
        project_version="1",
        parent_uuid=PROJECT,
        project_tags="ci",
    )
    assert by_name.json == {
        "projectName": "app",
        "projectVersion": "1",
        "autoCreate": False,
        "parentUUID": PROJECT,
        "projectTags": [{"name": "ci"}],
        "bom": "PGJvbS8+",
    }


def test_the_largest_bom_put_takes_is_sent_and_one_more_character_is_refused() -> None:
    largest = b"x" * 15_000_000  # 20,000,000 characters in Base64
    assert len(dt.build_upload(BASE, largest, project=PROJECT).json["bom"]) == 20_000_000
    refused(
        lambda: dt.build_upload(BASE, largest + b"xyz", project=PROJECT, source="dt"),
        BadRequestError,
        vendor="dependencytrack",
        source="dt",
        operation="upload bom",
        message="the BOM is 20,000,004 characters in Base64; PUT /api/v1/bom takes at most "
        "20,000,000 (Dependency-Track's POST multipart upload has no such limit, but scanhub's "
        "transport cannot send its form fields yet)",
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"bom": b""}, "the BOM is empty"),
        ({}, "give the project as project (UUID) or as name and version"),
        (
            {"project": PROJECT, "project_version": "1"},
            "give the project as project (UUID) or as name and version",
        ),
        ({"project_version": "1"}, "project_name and project_version must both be non-empty"),
        ({"project_name": "a", "project_version": " "}, "project_name and project_version "
         "must both be non-empty"),
        ({"project": "38640B33-4BA9-4733-BDAB-CBFC40C6F8AA"}, "project "
         "'38640B33-4BA9-4733-BDAB-CBFC40C6F8AA' is not a 36-character lower-case UUID, as "
         "Dependency-Track requires"),
        ({"project_name": "a", "project_version": "1", "parent_uuid": "p"}, "parent_uuid 'p' is "
         "not a 36-character lower-case UUID, as Dependency-Track requires"),
    ],
)  # fmt: skip
def test_what_the_server_would_refuse_is_refused_exactly(kw: dict[str, Any], message: str) -> None:
    kw = dict(kw)  # the parameter is shared by every run of the test in this process
    bom = kw.pop("bom", b"<bom/>")
    refused(
        lambda: dt.build_upload(BASE, bom, source="dt", **kw),
        BadRequestError,
        vendor="dependencytrack",
        source="dt",
        operation="upload bom",
        message=message,
    )


# --- the upload answer ----------------------------------------------------------------------------


def test_the_upload_answer_read_exactly() -> None:
    r = resp(200, DT_UPLOAD, headers={"Date": DATE}, operation="upload bom")
    got = dt.parse_upload(r, source="dt", base_url=BASE, project_uuid=PROJECT)
    assert got == UPLOAD and got.raw == {"upload": DT_UPLOAD}
    v5 = dt.parse_upload(r, source="dt", base_url=BASE, project_uuid=PROJECT, api_version="v5")
    assert v5.links == V5_LINKS


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([TOKEN], "the upload answer is an array, expected an object"),
        ({"token": ""}, "missing identity field token"),
    ],
)
def test_an_upload_answer_without_a_token_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: dt.parse_upload(
            resp(200, body, operation="upload bom"),
            source="dt",
            base_url=BASE,
            project_uuid=PROJECT,
        ),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="upload bom",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_a_token_that_cannot_be_linked_is_the_servers_fault() -> None:
    segment_refused(
        lambda: dt.parse_upload(
            resp(200, {"token": ".."}), source="dt", base_url=BASE, project_uuid=PROJECT
        ),
        "links",
        "token",
        PayloadError,
    )


def test_a_placeholder_and_a_project_learnt_later() -> None:
    assert dt.placeholder("dt", TOKEN, PROJECT) == Scan(
        vendor="dependencytrack",
        source="dt",
        id=TOKEN,
        application_id=PROJECT,
        lifecycle=Lifecycle.UNKNOWN,
        vendor_status="",
        scan_type="bom",
    )
    assert dt.placeholder("dt", TOKEN, PROJECT, BASE, "v5").links == V5_LINKS
    assert dt.placeholder("dt", TOKEN, PROJECT, BASE).links == V4_LINKS
    assert dt.placeholder("dt", TOKEN, "", BASE).links == {"status": V4_LINKS["status"]}
    nameless = dt.placeholder("dt", TOKEN, "", BASE, "v5")
    assert dt.with_project(nameless, BASE, PROJECT, "v5") == attrs.evolve(
        nameless, application_id=PROJECT, links=V5_LINKS
    )


# --- v4: the processing flag ----------------------------------------------------------------------


def token_status(body: Any, status: int = 200) -> dt.Processing:
    return dt.parse_token_status(resp(status, body, operation="token status"), source="dt")


def test_the_token_status_read_exactly() -> None:
    assert token_status({"processing": True}) == dt.Processing(True)
    assert token_status({"processing": False}).vendor_status == "processing=false"
    assert token_status({"processing": True}).vendor_status == "processing=true"
    odd = token_status({"processing": "x" * 60})
    assert odd.processing is None and odd.raw == "x" * 60
    assert odd.vendor_status == "processing=" + '"' + "x" * 58 + "…"  # cut at 60 characters
    exactly = token_status({"processing": "y" * 58})  # 60 characters with its quotes: kept
    assert exactly.vendor_status == 'processing="' + "y" * 58 + '"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (True, "the token status is a boolean, expected an object"),
        ({"running": True}, "the token status has no `processing` field"),
    ],
)
def test_a_token_status_without_the_flag_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: token_status(body),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="token status",
        status=200,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (401, "", AuthenticationError,
         "the API key was refused (X-Api-Key missing, wrong or revoked)"),
        (200, "<html>", PayloadError,
         "got an HTML page instead of JSON (a login page or proxy?)"),
    ],
)  # fmt: skip
def test_a_token_status_refused_or_not_json_names_the_operation(
    status: int, body: str, cls: type, message: str
) -> None:
    refused(
        lambda: token_status(body.encode(), status),
        cls,
        vendor="dependencytrack",
        source="dt",
        operation="token status",
        status=status,
        body=body or None,
        message=message,
    )


def project(imported: datetime | None) -> dt.Project:
    return dt.Project(PROJECT, "app", "1", imported, raw={"uuid": PROJECT})


def metrics(last: datetime | None) -> dt.Metrics:
    return dt.Metrics(FindingCounts(critical=1, total=3), last, raw={"critical": 1})


def test_processing_true_is_running() -> None:
    got = dt.judge_v4(UPLOAD, dt.Processing(True, True))
    assert got == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.RUNNING,
        vendor_status="processing=true",
        message="Dependency-Track is processing the BOM (import, vulnerability analysis, "
        "policy evaluation)",
    )
    assert got.raw == {"upload": DT_UPLOAD, "status": True}


def test_an_odd_processing_value_is_unknown_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    value = f"maybe-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = dt.judge_v4(UPLOAD, dt.Processing(None, value))
    assert got == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.UNKNOWN,
        vendor_status=f'processing="{value}"',
        message=f'the token status\'s processing is "{value}", not true or false',
    )
    assert got.raw == {"upload": DT_UPLOAD, "status": value}
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown dependencytrack status value 'processing=\"{value}\"' mapped to unknown"
    ]


def test_not_processing_without_an_import_since_the_upload_failed() -> None:
    no_project = dt.judge_v4(UPLOAD, dt.Processing(False, False))
    assert no_project == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.FAILED,
        vendor_status="processing=false",
        message="Dependency-Track is not processing the token and the project has no BOM "
        "import since the upload (2024-06-10T06:13:20Z) (last import: unknown): the BOM was "
        "not imported (it could not be parsed or processed, or the server lost its queue), or "
        "the token is unknown",
    )
    assert no_project.raw == {"upload": DT_UPLOAD, "status": False}
    older = UPLOADED_AT - timedelta(days=1)
    stale = dt.judge_v4(UPLOAD, dt.Processing(False, False), project=project(older))
    assert stale.message is not None and "(last import: 2024-06-09T06:13:20Z)" in stale.message
    assert stale.finished_at == older
    assert stale.raw == {"upload": DT_UPLOAD, "status": False, "project": {"uuid": PROJECT}}
    never = dt.judge_v4(attrs.evolve(UPLOAD, created_at=None), dt.Processing(False, False),
                        project=project(None))  # fmt: skip
    assert never.message is not None and "no BOM import at all (last import: never)" in (
        never.message
    )
    assert never.finished_at is None


def test_an_import_just_inside_the_dates_slack_counts() -> None:
    edge = UPLOADED_AT - dt.DATE_SLACK
    assert dt.imported_since(project(edge), UPLOADED_AT) is True
    assert dt.imported_since(project(edge - timedelta(microseconds=1)), UPLOADED_AT) is False
    assert dt.imported_since(project(edge), None) is True
    assert dt.imported_since(project(None), None) is False


def test_imported_but_not_measured_yet_is_still_running() -> None:
    imported = UPLOADED_AT + timedelta(seconds=30)
    waiting = dt.judge_v4(UPLOAD, dt.Processing(False, False), project=project(imported))
    assert waiting == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.RUNNING,
        vendor_status="processing=false",
        message="BOM imported at 2024-06-10T06:13:50Z and analysed; waiting for the project's "
        "metrics update (current metrics: none yet)",
        updated_at=imported,
    )
    assert waiting.raw == {"upload": DT_UPLOAD, "status": False, "project": {"uuid": PROJECT}}
    old = dt.judge_v4(UPLOAD, dt.Processing(False, False), project=project(imported),
                      metrics=metrics(UPLOADED_AT))  # fmt: skip
    assert old.message is not None and old.message.endswith(
        "(current metrics: 2024-06-10T06:13:20Z)"
    )
    assert old.raw["metrics"] == {"critical": 1}
    unmeasured = dt.judge_v4(UPLOAD, dt.Processing(False, False), project=project(imported),
                             metrics=metrics(None))  # fmt: skip
    assert unmeasured.message is not None and unmeasured.message.endswith(
        "(current metrics: never)"
    )


def test_imported_and_measured_since_is_succeeded() -> None:
    imported = UPLOADED_AT + timedelta(seconds=30)
    measured = imported + timedelta(minutes=2)
    got = dt.judge_v4(
        UPLOAD,
        dt.Processing(False, False),
        project=project(imported),
        metrics=metrics(measured),
        status_url="https://dt/status",
    )
    assert got == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="processing=false",
        message="BOM imported at 2024-06-10T06:13:50Z",
        findings=FindingCounts(critical=1, total=3),
        updated_at=measured,
        finished_at=measured,
        links={**V4_LINKS, "status": "https://dt/status"},
    )
    assert got.raw == {
        "upload": DT_UPLOAD,
        "status": False,
        "project": {"uuid": PROJECT},
        "metrics": {"critical": 1},
    }
    tracked = dt.judge_v4(attrs.evolve(UPLOAD, created_at=None), dt.Processing(False, False),
                          project=project(imported), metrics=metrics(imported))  # fmt: skip
    assert tracked.message == (
        "BOM imported at 2024-06-10T06:13:50Z (upload time unknown: finished on "
        "processing=false and the project's last BOM import; Dependency-Track also answers "
        "false for unknown tokens)"
    )
    assert dt.judge_v4(UPLOAD, dt.Processing(True, True)).links == V4_LINKS  # no status_url


# --- v5: the workflow -----------------------------------------------------------------------------


def workflow(body: Any, status: int = 200) -> list[dt.Step]:
    return dt.parse_workflow(resp(status, body, operation="workflow status"), source="dt")


def test_the_workflow_read_exactly() -> None:
    assert workflow(DT_WORKFLOW_VULN_FAILED) == [
        dt.Step("BOM_CONSUMPTION", "COMPLETED", ms(1), ms(2)),
        dt.Step("BOM_PROCESSING", "COMPLETED", ms(2), ms(3)),
        dt.Step("VULN_ANALYSIS", "FAILED", ms(3), ms(4),
                "Failure threshold of 5.00% exceeded: 3/12 of scans failed"),
        dt.Step("POLICY_EVALUATION", "CANCELLED", None, ms(4)),
        dt.Step("METRICS_UPDATE", "CANCELLED", None, ms(4)),
    ]  # fmt: skip
    assert workflow([{"step": "NEW_STEP"}, {"step": "METRICS_UPDATE"}]) == [
        dt.Step("METRICS_UPDATE", ""),
        dt.Step("NEW_STEP", ""),  # unknown steps last
    ]
    # Numbers where strings are expected are read as text; null status and reason as none.
    odd = [
        {"step": 7, "status": 3, "failureReason": 5},
        {"step": "BOM_PROCESSING", "status": None, "failureReason": None},
    ]
    assert workflow(odd) == [dt.Step("BOM_PROCESSING", ""), dt.Step("7", "3", None, None, "5")]


def test_a_workflow_answer_refused_names_the_operation() -> None:
    refused(
        lambda: workflow(b"", 401),
        AuthenticationError,
        vendor="dependencytrack",
        source="dt",
        operation="workflow status",
        status=401,
        message="the API key was refused (X-Api-Key missing, wrong or revoked)",
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (f"Provided token {TOKEN} does not exist.", f"Provided token {TOKEN} does not exist."),
        (b"", "HTTP 404"),
    ],
)
def test_an_unknown_token_is_not_found_saying_why(body: Any, said: str) -> None:
    refused(
        lambda: workflow(body, 404),
        NotFoundError,
        vendor="dependencytrack",
        source="dt",
        operation="workflow status",
        status=404,
        body=body.decode() if isinstance(body, bytes) else body,
        message=f"{said} (an unknown token; or a server without /api/v1/workflow: "
        'Dependency-Track 5.0 and later removed it, use api_version = "v4")',
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"step": "x"}, "the workflow states is an object, expected an array"),
        ([None], "a workflow state is null, expected an object"),
        ([{"status": "PENDING"}], "missing identity field step"),
        ([{"step": ""}], "missing identity field step"),
        ([3], "a workflow state is a number, expected an object"),
        ([], "the workflow has no steps"),
    ],
)
def test_a_workflow_that_cannot_be_read_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: workflow(body),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="workflow status",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_a_failed_workflow_exactly() -> None:
    previous = attrs.evolve(UPLOAD, links={"status": "old"})
    got = dt.workflow_scan(previous, workflow(DT_WORKFLOW_VULN_FAILED), status_url="new")
    listing = ("BOM_CONSUMPTION=COMPLETED, BOM_PROCESSING=COMPLETED, VULN_ANALYSIS=FAILED, "
               "POLICY_EVALUATION=CANCELLED, METRICS_UPDATE=CANCELLED")  # fmt: skip
    assert got == attrs.evolve(
        previous,
        lifecycle=Lifecycle.FAILED,
        vendor_status="VULN_ANALYSIS=FAILED",
        message="VULN_ANALYSIS failed: Failure threshold of 5.00% exceeded: 3/12 of scans "
        f"failed; {listing}",
        links={"status": "new"},
        started_at=ms(1),
        updated_at=ms(4),
        finished_at=ms(4),
    )
    assert got.raw["upload"] == DT_UPLOAD  # the upload's payload is kept
    assert got.raw["workflow"][2] == {
        "step": "VULN_ANALYSIS",
        "status": "FAILED",
        "started_at": "1970-01-01T00:00:00.003000+00:00",
        "updated_at": "1970-01-01T00:00:00.004000+00:00",
        "failure_reason": "Failure threshold of 5.00% exceeded: 3/12 of scans failed",
    }
    assert dt.workflow_scan(previous, workflow(DT_WORKFLOW_VULN_FAILED)).links == {"status": "old"}


def test_a_failed_step_without_a_reason_says_so() -> None:
    got = dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", "FAILED")])
    assert got.lifecycle is Lifecycle.FAILED
    assert got.message == "BOM_CONSUMPTION failed: no reason given; BOM_CONSUMPTION=FAILED"


def test_cancelled_unknown_and_unfinished_workflows_exactly() -> None:
    cancelled = dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", "COMPLETED"),
                                          dt.Step("BOM_PROCESSING", "CANCELLED")])  # fmt: skip
    assert (cancelled.lifecycle, cancelled.vendor_status, cancelled.message) == (
        Lifecycle.CANCELLED,
        "BOM_PROCESSING=CANCELLED",
        "BOM_PROCESSING was cancelled; BOM_CONSUMPTION=COMPLETED, BOM_PROCESSING=CANCELLED",
    )
    value = f"SUSPENDED-{uuid.uuid4().hex[:8]}"
    unknown = dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", value)])
    assert (unknown.lifecycle, unknown.message) == (
        Lifecycle.UNKNOWN,
        f"BOM_CONSUMPTION has status {value!r}; BOM_CONSUMPTION={value}",
    )
    no_status = dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", "")])
    assert (no_status.lifecycle, no_status.vendor_status, no_status.message) == (
        Lifecycle.UNKNOWN,
        "BOM_CONSUMPTION=",
        "BOM_CONSUMPTION has status ''; BOM_CONSUMPTION=?",
    )
    unfinished = dt.workflow_scan(
        UPLOAD,
        [dt.Step("BOM_CONSUMPTION", "COMPLETED"), dt.Step("BOM_PROCESSING", "COMPLETED"),
         dt.Step("VULN_ANALYSIS", "NOT_APPLICABLE")],
    )  # fmt: skip
    assert (unfinished.lifecycle, unfinished.vendor_status, unfinished.message) == (
        Lifecycle.RUNNING,
        "VULN_ANALYSIS=NOT_APPLICABLE",  # the last step there is
        "waiting for the rest of the workflow (no METRICS_UPDATE yet); BOM_CONSUMPTION="
        "COMPLETED, BOM_PROCESSING=COMPLETED, VULN_ANALYSIS=NOT_APPLICABLE",
    )
    assert unfinished.updated_at is None and unfinished.started_at is None  # none given


def test_queued_only_while_the_first_step_waits_unstarted() -> None:
    waiting = [dt.Step("BOM_CONSUMPTION", "PENDING"), dt.Step("BOM_PROCESSING", "PENDING")]
    assert dt.workflow_scan(UPLOAD, waiting).lifecycle is Lifecycle.QUEUED
    started = [dt.Step("BOM_CONSUMPTION", "PENDING", ms(5)), dt.Step("BOM_PROCESSING", "PENDING")]
    got = dt.workflow_scan(UPLOAD, started)
    assert (got.lifecycle, got.message) == (
        Lifecycle.RUNNING,
        "BOM_CONSUMPTION=PENDING, BOM_PROCESSING=PENDING",
    )
    consumed = [dt.Step("BOM_CONSUMPTION", "COMPLETED"), dt.Step("BOM_PROCESSING", "PENDING")]
    assert dt.workflow_scan(UPLOAD, consumed).lifecycle is Lifecycle.RUNNING
    later = [dt.Step("BOM_PROCESSING", "PENDING")]  # the first step there is, not the first step
    assert dt.workflow_scan(UPLOAD, later).lifecycle is Lifecycle.RUNNING


@pytest.mark.usefixtures("fresh_warnings")
def test_a_step_without_a_status_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", "")])
    assert caplog.records == []


def test_an_unknown_step_status_is_warned_naming_dependencytrack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = f"HALTED-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        dt.workflow_scan(UPLOAD, [dt.Step("BOM_CONSUMPTION", value)])
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown dependencytrack status value {value!r} mapped to unknown"
    ]


def test_a_completed_workflow_ends_at_its_newest_update() -> None:
    got = dt.workflow_scan(UPLOAD, workflow(DT_WORKFLOW_COMPLETED))
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.SUCCEEDED, "METRICS_UPDATE=COMPLETED")
    assert (got.started_at, got.updated_at, got.finished_at) == (
        ms(1000000100),
        ms(1000001004),
        ms(1000001004),
    )


def test_a_token_the_server_forgot_has_expired() -> None:
    got = dt.expired(UPLOAD, NotFoundError("Provided token x does not exist."))
    assert got == attrs.evolve(
        UPLOAD,
        lifecycle=Lifecycle.EXPIRED,
        message=f"Dependency-Track no longer knows token {TOKEN} (Provided token x does not "
        "exist.); finished workflows are deleted after 72 hours by default, so its outcome is "
        "unknown",
    )
    bare = dt.expired(UPLOAD, NotFoundError.__new__(NotFoundError))
    assert bare.message is not None and f"token {TOKEN} (not found);" in bare.message


# --- the project and its results ------------------------------------------------------------------


def test_the_project_read_exactly() -> None:
    got = dt.parse_project(resp(200, {**DT_PROJECT, "extra": 1}, operation="project"), source="dt")
    assert got == dt.Project(PROJECT, "Example Application", "1.0.0", ms(1718000000000))
    assert got.raw == {
        "uuid": PROJECT,
        "name": "Example Application",
        "version": "1.0.0",
        "lastBomImport": 1718000000000,
    }
    assert dt.parse_project(resp(200, {"uuid": PROJECT}), source="dt").raw == {"uuid": PROJECT}


@pytest.mark.parametrize(
    ("body", "message"),
    [([DT_PROJECT], "the project is an array, expected an object"), ({}, "missing identity "
     "field uuid")],
)  # fmt: skip
def test_a_project_that_cannot_be_read_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: dt.parse_project(resp(200, body, operation="project"), source="dt"),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="project",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_a_redirect_is_refused_not_read() -> None:
    with pytest.raises(PayloadError, match="redirected"):
        dt.parse_project(resp(300, DT_PROJECT), source="dt")
    with pytest.raises(PayloadError, match="redirected"):
        dt.parse_metrics(resp(300, b""), source="dt")


def test_the_metrics_read_exactly() -> None:
    got = dt.parse_metrics(resp(200, DT_METRICS, operation="project metrics"), source="dt")
    assert got == dt.Metrics(
        FindingCounts(critical=1, high=2, medium=4, low=1, total=11), ms(1718000005000)
    )
    assert got is not None and got.raw == {
        "critical": 1,
        "high": 2,
        "medium": 4,
        "low": 1,
        "unassigned": 3,
        "vulnerabilities": 11,
        "vulnerableComponents": 4,
        "components": 27,
        "suppressed": 0,
        "findingsTotal": 11,
        "policyViolationsFail": 1,
        "policyViolationsWarn": 1,
        "policyViolationsInfo": 0,
        "policyViolationsTotal": 2,
        "inheritedRiskScore": 39.0,
        "firstOccurrence": 1717000000000,
        "lastOccurrence": 1718000005000,
    }


def test_metrics_totals_the_server_leaves_out_are_summed_and_its_own_kept() -> None:
    def total(body: dict[str, Any]) -> int:
        got = dt.parse_metrics(resp(200, body), source="dt")
        assert got is not None
        return got.findings.total

    assert total({"critical": 1, "high": 2, "medium": 3, "low": 4}) == 10
    assert total({"critical": 1, "unassigned": 2}) == 3
    assert total({"critical": 1, "unassigned": -5, "vulnerabilities": -1}) == 1
    assert total({"critical": 1, "vulnerabilities": 0}) == 0  # the server's count stands


def test_no_metrics_yet() -> None:
    assert dt.parse_metrics(resp(204, b"{}"), source="dt") is None  # no content, whatever came
    assert dt.parse_metrics(resp(200, b"  "), source="dt") is None
    assert dt.parse_metrics(resp(200, b"null"), source="dt") is None
    refused(
        lambda: dt.parse_metrics(resp(200, [1], operation="project metrics"), source="dt"),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="project metrics",
        status=200,
        body="[1]",
        message="the project metrics is an array, expected an object",
    )


def violations(body: Any, headers: dict[str, str] | None = None, **kw: Any) -> dt.ViolationPage:
    return dt.parse_violations(
        resp(200, body, headers=headers, operation="policy violations"), source="dt", **kw
    )


def test_violations_read_exactly() -> None:
    page = violations(
        [
            violation("FAIL"),
            violation("WARN", analysis={"isSuppressed": True}),
            {"policyCondition": "odd"},
            {"policyCondition": {"policy": "odd"}, "component": "odd", "analysis": {}},
        ],
        {"X-Total-Count": "4"},
        page=2,
        page_size=4,
    )
    assert page == dt.ViolationPage(
        (
            dt.Violation("FAIL", Verdict.FAIL, "Blacklisted Version", "Acme Component",
                         "OPERATIONAL"),
            dt.Violation("WARN", Verdict.WARN, "Blacklisted Version", "Acme Component",
                         "OPERATIONAL", suppressed=True),
            dt.Violation("", Verdict.NONE),
            dt.Violation("", Verdict.NONE),
        ),
        4,
        2,
        4,
    )  # fmt: skip
    assert violations([], {"X-Total-Count": "0"}).total == 0
    assert violations([], {"X-Total-Count": "-1"}).total is None
    assert violations([]).total is None


@pytest.mark.usefixtures("fresh_warnings")
def test_a_violation_without_a_state_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        violations([violation("")])
    assert caplog.records == []


def test_an_unknown_violation_state_is_warned_naming_dependencytrack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = f"SEVERE-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        (got,) = violations([violation(value)]).violations
    assert (got.state, got.verdict) == (value, Verdict.NONE)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown dependencytrack decision value {value!r} mapped to none"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": 1}, "the policy violations is an object, expected an array"),
        (["x"], "a policy violation is a string, expected an object"),
    ],
)
def test_violations_that_cannot_be_read_are_refused(body: Any, message: str) -> None:
    refused(
        lambda: violations(body),
        PayloadError,
        vendor="dependencytrack",
        source="dt",
        operation="policy violations",
        status=200,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("count", "total", "more"),
    [
        (2, None, True),  # a full page, no total: maybe
        (1, None, False),  # a short page is the last
        (2, 5, True),  # page 2 of size 2: 4 of 5 seen
        (2, 4, False),  # 4 of 4 seen
        (2, 3, False),
    ],
)
def test_when_another_page_of_violations_may_hold_more(
    count: int, total: int | None, more: bool
) -> None:
    page = dt.ViolationPage(tuple(dt.Violation("FAIL", Verdict.FAIL) for _ in range(count)),
                            total, 2, 2)  # fmt: skip
    assert page.more() is more


def v(state: str, suppressed: bool = False) -> dt.Violation:
    return dt.Violation(
        state, dt.VIOLATION_STATE_MAP.get(state, Verdict.NONE), suppressed=suppressed
    )


def test_the_verdict_of_the_unsuppressed_violations_read() -> None:
    first = dt.ViolationPage((v("WARN", True), v("INFO"), v("")), 5, 1, 3)
    second = dt.ViolationPage((v("WARN"), v("INFO"), v("")), None, 2, 4)
    got = dt.judge_violations([first, second])
    assert got == dt.Verdicts(Verdict.WARN, {"INFO": 2, "?": 2, "WARN": 1}, 5, 5, True)
    assert dt.judge_violations([]) == dt.Verdicts(Verdict.PASS, {}, 0, None, True)
    suppressed = dt.ViolationPage((v("FAIL", True),), 1, 1, 3)
    assert dt.judge_violations([suppressed]) == dt.Verdicts(Verdict.PASS, {}, 0, 1, True)
    full = dt.ViolationPage((v("FAIL"), v("WARN")), 9, 1, 2)
    assert dt.judge_violations([full]) == dt.Verdicts(Verdict.FAIL, {"FAIL": 1, "WARN": 1}, 2, 9,
                                                      False)  # fmt: skip


@pytest.mark.parametrize(
    ("verdicts", "text"),
    [
        (dt.Verdicts(Verdict.PASS, {}, 0, None, True), "no policy violations"),
        (dt.Verdicts(Verdict.PASS, {}, 0, 0, True), "no policy violations"),
        (dt.Verdicts(Verdict.PASS, {}, 0, 2, True), "no unsuppressed policy violations"),
        (dt.Verdicts(Verdict.FAIL, {"FAIL": 1}, 1, 1, True), "1 policy violation (FAIL 1)"),
        (
            dt.Verdicts(Verdict.FAIL, {"ZED": 1, "INFO": 1, "?": 1, "WARN": 2, "FAIL": 1}, 6, None,
                        True),
            "6 policy violations (FAIL 1, WARN 2, INFO 1, ? 1, ZED 1)",
        ),
        (dt.Verdicts(Verdict.FAIL, {"FAIL": 2}, 2, 40, False), "40 policy violations (FAIL 2, 2 read)"),
        (dt.Verdicts(Verdict.FAIL, {"FAIL": 2}, 2, 2, False), "2 policy violations (FAIL 2)"),
        (dt.Verdicts(Verdict.FAIL, {"FAIL": 2}, 2, 40, True), "40 policy violations (FAIL 2)"),
    ],
)  # fmt: skip
def test_the_violations_summary(verdicts: dt.Verdicts, text: str) -> None:
    assert verdicts.summary() == text


def test_results_join_a_succeeded_scan() -> None:
    done = attrs.evolve(UPLOAD, lifecycle=Lifecycle.SUCCEEDED, message="BOM imported at X")
    verdicts = dt.Verdicts(Verdict.FAIL, {"FAIL": 1}, 1, 1, True)
    measured = dt.Metrics(FindingCounts(critical=1, high=2, medium=3, low=4, total=11), None,
                          raw={"critical": 1})  # fmt: skip
    got = dt.with_results(done, verdicts, measured)
    assert got == attrs.evolve(
        done,
        verdict=Verdict.FAIL,
        findings=measured.findings,
        message="1 policy violation (FAIL 1); 11 vulnerabilities (critical 1, high 2, medium 3, "
        "low 4); BOM imported at X",
    )
    assert got.raw == {
        "upload": DT_UPLOAD,
        "violations": {"counts": {"FAIL": 1}, "total": 1},
        "metrics": {"critical": 1},
    }
    unmeasured = dt.with_results(attrs.evolve(done, message=None, raw=None), verdicts, None)
    assert unmeasured.message == "1 policy violation (FAIL 1); no metrics yet"
    assert unmeasured.findings is None
    assert unmeasured.raw == {"violations": {"counts": {"FAIL": 1}, "total": 1}}
    counted = attrs.evolve(done, message=None, findings=FindingCounts(total=2))
    kept = dt.with_results(counted, verdicts, None)
    assert (
        kept.message == "1 policy violation (FAIL 1); 2 vulnerabilities (critical 0, high 0, "
        "medium 0, low 0)"
    )
    assert kept.findings == FindingCounts(total=2)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "operation", "text"),
    [
        (401, b"", "project", "the API key was refused (X-Api-Key missing, wrong or revoked)"),
        (401, "Token expired", "project", "Token expired (the API key was refused (X-Api-Key "
         "missing, wrong or revoked))"),
        (403, b"", "project", "forbidden: the API key lacks VIEW_PORTFOLIO, or the project's "
         "access control denies it"),
        (403, b"", "something new", "forbidden: the API key lacks a permission this call needs, "
         "or the project's access control denies it"),
        (403, "Denied", "project", "Denied"),
        (500, b"", "project", None),
        (500, b"   ", "project", None),
        (400, "<!DOCTYPE html><html>", "project", "an HTML page (a proxy or login page?)"),
        (400, "<HTML><body>", "project", "an HTML page (a proxy or login page?)"),
        (400, {"title": "T", "detail": "D", "message": "M"}, "project", "T: D"),
        (400, {"title": "T", "message": "M"}, "project", "T: M"),
        (400, {"detail": "D"}, "project", "D"),
        (400, {"title": "T", "errors": ["a", 1, "b", "c", "d"]}, "project", "T: a; b (+2 more)"),
        (400, {"errors": ["a", "b", "c"]}, "project", "a; b; c"),
        (400, {"title": "T", "errors": "abc"}, "project", "T"),
        (400, {"title": "T", "errors": []}, "project", "T"),
        (400, {"errors": ["x" * 130]}, "project", "x" * 119 + "…"),
        (400, {"other": 1}, "project", '{"other": 1}'),
        (400, [{"path": "get.arg0", "message": "Invalid UUID"}, {"message": "m"}], "project",
         "get.arg0: Invalid UUID; ?: m"),
        (400, [{"path": "p"}, "s", 3, "four"], "project", "{'path': 'p'}; s; 3"),
        (400, [], "project", "[]"),
        (400, 42, "project", "42"),
        (400, "y" * 310, "project", "y" * 299 + "…"),
        (400, "z" * 300, "project", "z" * 300),
        (400, {"errors": ["a", "b", "c", "d"]}, "project", "a; b; c (+1 more)"),
        (400, {"other": "o" * 300}, "project", ('{"other": "' + "o" * 300)[:299] + "…"),
        (400, ["s" * 130], "project", "s" * 119 + "…"),
        (400, "[" + " " * 400 + "]", "project", "[" + " " * 298 + "…"),
        (400, '"' + "q" * 400 + '"', "project", '"' + "q" * 298 + "…"),
    ],
)  # fmt: skip
def test_what_an_error_answer_says(
    status: int, body: Any, operation: str, text: str | None
) -> None:
    assert dt.error_text(resp(status, body), operation) == text


def test_an_empty_403_names_the_permission_in_the_error() -> None:
    refused(
        lambda: dt.parse_violations(resp(403, b"", operation="policy violations"), source="dt"),
        AuthenticationError,
        vendor="dependencytrack",
        source="dt",
        operation="policy violations",
        status=403,
        message="forbidden: the API key lacks VIEW_POLICY_VIOLATION, or the project's access "
        "control denies it",
    )
    assert dt.PERMISSIONS["token status"] == "an API key of any team"


def test_a_successful_answer_is_read_as_it_is() -> None:
    assert dt.parse_project(resp(201, DT_PROJECT), source="dt").uuid == PROJECT
    assert dt.parse_project(resp(299, DT_PROJECT), source="dt").uuid == PROJECT
    assert base64.b64decode(dt.build_upload(BASE, b"\x00\xff", project=PROJECT).json["bom"]) == (
        b"\x00\xff"
    )
