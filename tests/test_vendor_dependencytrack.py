"""OWASP Dependency-Track: pure functions against payloads shaped as the servers answer, and the
client against the simulator (both API versions).

Payload sources (DependencyTrack/dependency-track tag 4.14.3, DependencyTrack/hyades-apiserver
tags 5.0.0 to 5.6.0) are named next to each fixture.
"""

from __future__ import annotations

import base64
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import scanhub
from scanhub import (
    AuthenticationError,
    BadRequestError,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    ScanHub,
    ServerError,
    Verdict,
)
from scanhub._compose import apply_tracks, build_clients
from scanhub._config import parse_config
from scanhub.sim import Faults, SimClock
from scanhub.vendors import registry
from scanhub.vendors.dependencytrack import DependencyTrack, DependencyTrackTrack
from scanhub.vendors.dependencytrack import sansio as dt
from scanhub.vendors.dependencytrack.demo import DEMO, cyclonedx
from scanhub.vendors.dependencytrack.sim import DependencyTrackSim, Profile
from scanhub.vendors.dependencytrack.spec import ApiVersion

from .helpers import resp

ROOT = Path(__file__).resolve().parents[1]
BASE = "https://dtrack.example.com"
PROJECT = "38640b33-4ba9-4733-bdab-cbfc40c6f8aa"  # BomSubmitRequest's @Schema example
TOKEN = "b1b2b3b4-0000-0000-0000-000000000001"  # WorkflowResourceTest (5.x)

# --- Payloads ------------------------------------------------------------------------------------

#: resources/v1/vo/BomUploadResponse.java: `{"token": UUID}` (PUT answers the same map).
DT_UPLOAD = {"token": TOKEN}
#: resources/v1/vo/IsTokenBeingProcessedResponse.java.
DT_PROCESSING_TRUE = {"processing": True}
DT_PROCESSING_FALSE = {"processing": False}

#: hyades-apiserver WorkflowResourceTest (5.6.0, `getWorkflowStatusOk`): states with NON_NULL
#: fields only; `startedAt` / `updatedAt` epoch ms.
DT_WORKFLOW_RUNNING = [
    {"token": TOKEN, "step": "BOM_CONSUMPTION", "status": "COMPLETED", "updatedAt": 1000000900},
    {
        "token": TOKEN,
        "startedAt": 1000001000,
        "updatedAt": 1000001000,
        "step": "BOM_PROCESSING",
        "status": "PENDING",
    },
    {"token": TOKEN, "step": "VULN_ANALYSIS", "status": "PENDING", "updatedAt": 1000000000},
    {"token": TOKEN, "step": "POLICY_EVALUATION", "status": "PENDING", "updatedAt": 1000000000},
    {"token": TOKEN, "step": "METRICS_UPDATE", "status": "PENDING", "updatedAt": 1000000000},
]
#: WorkflowStateQueryManager.createWorkflowSteps: the five steps PENDING, nothing started.
DT_WORKFLOW_QUEUED = [
    {"token": TOKEN, "step": s, "status": "PENDING", "updatedAt": 1000000000} for s in dt.STEPS
    if s != "REPO_META_ANALYSIS"
]  # fmt: skip
#: Every step done, as WorkflowResourceTest's label query answers once both runs completed.
DT_WORKFLOW_COMPLETED = [
    {
        "token": TOKEN,
        "step": s,
        "status": "COMPLETED",
        "startedAt": 1000000100 + i,
        "updatedAt": 1000001000 + i,
    }
    for i, s in enumerate(
        (
            "BOM_CONSUMPTION",
            "BOM_PROCESSING",
            "VULN_ANALYSIS",
            "POLICY_EVALUATION",
            "METRICS_UPDATE",
        )
    )
]
#: ProcessedVulnerabilityScanResultProcessor + VulnerabilityScanDao's failure reason; the
#: children cancelled by WorkflowDao.cancelAllChildren.
DT_WORKFLOW_VULN_FAILED = [
    {"token": TOKEN, "step": "BOM_CONSUMPTION", "status": "COMPLETED", "startedAt": 1, "updatedAt": 2},
    {"token": TOKEN, "step": "BOM_PROCESSING", "status": "COMPLETED", "startedAt": 2, "updatedAt": 3},
    {
        "token": TOKEN,
        "step": "VULN_ANALYSIS",
        "status": "FAILED",
        "startedAt": 3,
        "updatedAt": 4,
        "failureReason": "Failure threshold of 5.00% exceeded: 3/12 of scans failed",
    },
    {"token": TOKEN, "step": "POLICY_EVALUATION", "status": "CANCELLED", "updatedAt": 4},
    {"token": TOKEN, "step": "METRICS_UPDATE", "status": "CANCELLED", "updatedAt": 4},
]  # fmt: skip
#: WorkflowResourceTest `shouldReturnFailedStatesForBomUploadTokenWhenProcessBomFails` (5.7.0-
#: alpha.3, on its new workflow engine: only the import's two steps, both FAILED).
DT_WORKFLOW_IMPORT_FAILED = [
    {"token": TOKEN, "step": "BOM_CONSUMPTION", "status": "FAILED", "startedAt": 2000000100, "updatedAt": 2000001000},
    {"token": TOKEN, "step": "BOM_PROCESSING", "status": "FAILED", "startedAt": 2000000100, "updatedAt": 2000001000},
]  # fmt: skip
#: BomUploadProcessingTask.initiateVulnerabilityAnalysis with no components: NOT_APPLICABLE.
DT_WORKFLOW_NOTHING_TO_ANALYSE = [
    {"token": TOKEN, "step": "BOM_CONSUMPTION", "status": "COMPLETED", "updatedAt": 5},
    {"token": TOKEN, "step": "BOM_PROCESSING", "status": "COMPLETED", "updatedAt": 6},
    {"token": TOKEN, "step": "VULN_ANALYSIS", "status": "NOT_APPLICABLE", "updatedAt": 6},
    {"token": TOKEN, "step": "POLICY_EVALUATION", "status": "NOT_APPLICABLE", "updatedAt": 6},
    {"token": TOKEN, "step": "METRICS_UPDATE", "status": "COMPLETED", "updatedAt": 7},
]

#: model/Project.java (Jackson NON_NULL; `lastBomImport` epoch ms).
DT_PROJECT = {
    "name": "Example Application",
    "version": "1.0.0",
    "classifier": "APPLICATION",
    "uuid": PROJECT,
    "lastBomImport": 1718000000000,
    "lastBomImportFormat": "CycloneDX 1.5",
    "active": True,
    "isLatest": False,
}
#: model/ProjectMetrics.java (firstOccurrence / lastOccurrence epoch ms).
DT_METRICS = {
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
    "findingsAudited": 0,
    "findingsUnaudited": 11,
    "inheritedRiskScore": 39.0,
    "policyViolationsFail": 1,
    "policyViolationsWarn": 1,
    "policyViolationsInfo": 0,
    "policyViolationsTotal": 2,
    "firstOccurrence": 1717000000000,
    "lastOccurrence": 1718000005000,
}


def violation(state: str, policy: str = "Blacklisted Version", **extra: Any) -> dict[str, Any]:
    """A PolicyViolation as PolicyViolationResource detaches it (PolicyViolationResourceTest:
    `policyCondition.policy.violationState`, `.name`, `component.name`, `type`, `uuid`)."""
    return {
        "type": "OPERATIONAL",
        "component": {"name": "Acme Component", "version": "1.0", "uuid": "c0"},
        "policyCondition": {
            "policy": {"name": policy, "operator": "ALL", "violationState": state, "uuid": "p0"},
            "operator": "NUMERIC_EQUAL",
            "subject": "VERSION",
            "value": "1.0",
            "uuid": "pc0",
        },
        "timestamp": 1718000004000,
        "uuid": "v-" + state,
        **extra,
    }


#: BomResourceTest `uploadBomInvalidJsonTest`: application/problem+json.
DT_INVALID_BOM = {
    "status": 400,
    "title": "The uploaded BOM is invalid",
    "detail": "Schema validation failed",
    "errors": [
        '$.components[0].type: does not have a value in the enumeration ["application", '
        '"framework", "library", "container", "operating-system", "device", "firmware", "file"]'
    ],
}
#: ConstraintViolationExceptionMapperTest: Jersey ValidationErrors.
DT_INVALID_UUID = [
    {
        "message": "Invalid UUID",
        "messageTemplate": "Invalid UUID",
        "path": "get.arg0",
        "invalidValue": "not-a-uuid",
    }
]
#: hyades-apiserver MetricsResourceTest `getProjectCurrentMetricsAclTest`.
DT_PROJECT_DENIED = {
    "status": 403,
    "title": "Project access denied",
    "detail": "Access to the requested project is forbidden",
}

EXPECTED = {
    "PENDING": Lifecycle.RUNNING,
    "TIMED_OUT": Lifecycle.RUNNING,
    "COMPLETED": Lifecycle.SUCCEEDED,
    "FAILED": Lifecycle.FAILED,
    "CANCELLED": Lifecycle.CANCELLED,
    "NOT_APPLICABLE": Lifecycle.SUCCEEDED,
    "processing=true": Lifecycle.RUNNING,
    "processing=false": Lifecycle.SUCCEEDED,
}


def uploaded(created_at: datetime | None = None) -> Scan:
    """A v4 upload as `parse_upload` left it."""
    return Scan(
        dt.VENDOR, "dt", TOKEN, PROJECT, Lifecycle.QUEUED, "", created_at=created_at, raw={}
    )


def steps(body: Any) -> list[dt.Step]:
    return dt.parse_workflow(resp(200, body), source="dt")


# --- Tables ------------------------------------------------------------------------------------


def test_status_table_covers_every_workflow_status_and_both_processing_values() -> None:
    assert dict(dt.STATUS_MAP) == EXPECTED


def test_api_versions_are_the_schema_literal() -> None:
    assert typing.get_args(ApiVersion) == dt.API_VERSIONS


def test_violation_states_are_the_three_of_policy_java() -> None:
    assert dict(dt.VIOLATION_STATE_MAP) == {
        "FAIL": Verdict.FAIL,
        "WARN": Verdict.WARN,
        "INFO": Verdict.PASS,
    }


def _section() -> str:
    text = (ROOT / "adapters.md").read_text()
    return next(
        p
        for p in text.split("\n## ")
        if "scanhub.vendors.dependencytrack.sansio`" in p.split("\n")[0]
    )


def test_violation_state_rows_in_adapters_md() -> None:
    section = _section()
    for raw, verdict in dt.VIOLATION_STATE_MAP.items():
        row = re.search(rf"^\| `{raw}` \| `{verdict.value}` \|", section, re.MULTILINE)
        assert row, raw


def test_crosswalk_rows_agree_with_the_shared_tables() -> None:
    """Each row of the section's GitHub / OTel table is what scanhub computes for it."""
    section = _section().split("as GitHub check runs and OpenTelemetry", 1)[1]
    rows = re.findall(r"^\| (.+?) \| `(\w+)`(?:, `(\w+)`)? \| (.+?) \| (.+?) \|$", section, re.M)
    assert len(rows) == 9
    for _what, lifecycle, verdict, github, otel in rows:
        item = attrs.evolve(
            uploaded(),
            lifecycle=Lifecycle(lifecycle),
            verdict=Verdict(verdict) if verdict else Verdict.NONE,
        )
        status, conclusion = scanhub.github_check(item)
        assert github.replace("`", "") == f"{status} / {conclusion or '–'}"
        attrs_ = scanhub.otel_attributes(item)
        expected = (
            f"{attrs_['cicd.pipeline.run.state']} / {attrs_.get('cicd.pipeline.result', '–')}"
        )
        assert otel.replace("`", "") == expected


# --- Upload ------------------------------------------------------------------------------------


def test_upload_by_uuid_is_a_put_with_the_bom_in_base64() -> None:
    req = dt.build_upload(BASE, b'{"bomFormat":"CycloneDX"}', project=PROJECT)
    assert (req.method, req.url) == ("PUT", f"{BASE}/api/v1/bom")
    assert req.json == {
        "project": PROJECT,
        "bom": base64.b64encode(b'{"bomFormat":"CycloneDX"}').decode(),
    }
    assert not req.idempotent  # never re-sent once it may have reached the server


def test_upload_by_name_with_auto_create_and_parent() -> None:
    req = dt.build_upload(
        BASE,
        b"<bom/>",
        project_name="Example Application",
        project_version="1.0.0",
        auto_create=True,
        parent_name="Example Application Parent",
        parent_version="1",
        is_latest=True,
        project_tags=["ci"],
    )
    assert req.json == {
        "projectName": "Example Application",
        "projectVersion": "1.0.0",
        "autoCreate": True,
        "parentName": "Example Application Parent",
        "parentVersion": "1",
        "isLatest": True,
        "projectTags": [{"name": "ci"}],
        "bom": "PGJvbS8+",
    }


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({}, "give the project"),
        ({"project": PROJECT, "project_name": "a", "project_version": "1"}, "give the project"),
        ({"project": "38640B33-4BA9-4733-BDAB-CBFC40C6F8AA"}, "lower-case UUID"),
        ({"project_name": "a", "project_version": " "}, "non-empty"),
        (
            {"project_name": "a", "project_version": "1", "parent_uuid": "nope"},
            "parent_uuid 'nope'",
        ),
    ],
)
def test_upload_refuses_what_the_server_would(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(BadRequestError, match=needle):
        dt.build_upload(BASE, b"<bom/>", **kw)


def test_upload_refuses_an_empty_bom_and_one_beyond_the_put_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(BadRequestError, match="empty"):
        dt.build_upload(BASE, b"", project=PROJECT)
    monkeypatch.setattr(dt, "MAX_PUT_BOM_CHARS", 8)
    with pytest.raises(BadRequestError, match="at most 8"):
        dt.build_upload(BASE, b"0123456789", project=PROJECT)


def test_upload_answer_is_a_queued_scan_dated_by_the_server() -> None:
    r = resp(200, DT_UPLOAD, headers={"Date": "Mon, 10 Jun 2024 06:13:20 GMT"})
    scan = dt.parse_upload(r, source="dt", base_url=BASE, project_uuid=PROJECT)
    assert (scan.id, scan.application_id, scan.vendor) == (TOKEN, PROJECT, "dependencytrack")
    assert scan.lifecycle is Lifecycle.QUEUED and scan.vendor_status == ""
    assert scan.created_at == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert scan.scan_type == "bom"
    assert scan.links["status"] == f"{BASE}/api/v1/event/token/{TOKEN}"
    assert scan.links["violations"] == f"{BASE}/api/v1/violation/project/{PROJECT}"
    v5 = dt.parse_upload(r, source="dt", base_url=BASE, project_uuid=PROJECT, api_version="v5")
    assert v5.links["status"] == f"{BASE}/api/v1/workflow/token/{TOKEN}/status"


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": None}, [TOKEN], "ok"])
def test_upload_answer_without_a_token_is_a_payload_error(body: Any) -> None:
    with pytest.raises(PayloadError):
        dt.parse_upload(resp(200, body), source="dt", base_url=BASE, project_uuid=PROJECT)


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "text"),
    [
        (401, b"", {}, AuthenticationError, "API key was refused"),
        (
            401,
            "The principal does not have permission to create project.",
            {},
            AuthenticationError,
            "permission to create project",
        ),
        (403, b"", {}, AuthenticationError, "BOM_UPLOAD"),
        (403, DT_PROJECT_DENIED, {}, AuthenticationError, "Project access denied: Access to"),
        (404, "The project could not be found.", {}, NotFoundError, "project could not be found"),
        (400, DT_INVALID_BOM, {"Content-Type": "application/problem+json"}, BadRequestError,
         "The uploaded BOM is invalid: Schema validation failed: $.components[0].type"),
        (400, DT_INVALID_UUID, {}, BadRequestError, "get.arg0: Invalid UUID"),
        (400, "BOM cannot be uploaded to collection project.", {}, BadRequestError, "collection"),
        (500, b"", {}, ServerError, "HTTP 500"),
        (502, "<html><body>Bad Gateway</body></html>", {}, ServerError, "HTML page"),
    ],
)  # fmt: skip
def test_error_bodies_become_clear_typed_errors(
    status: int, body: Any, headers: dict[str, str], cls: type[Exception], text: str
) -> None:
    with pytest.raises(cls) as caught:
        dt.parse_upload(
            resp(status, body, headers=headers, operation="upload bom"),
            source="dt",
            base_url=BASE,
            project_uuid=PROJECT,
        )
    assert text in str(caught.value)
    assert caught.value.vendor == "dependencytrack"  # type: ignore[attr-defined]


def test_an_empty_403_names_the_permission_of_the_operation() -> None:
    with pytest.raises(AuthenticationError, match="VIEW_POLICY_VIOLATION"):
        dt.parse_violations(resp(403, b"", operation="policy violations"), source="dt")
    with pytest.raises(AuthenticationError, match="VIEW_PORTFOLIO"):
        dt.parse_metrics(resp(403, b"", operation="project metrics"), source="dt")


def test_unknown_token_on_the_workflow_endpoint_is_not_found() -> None:
    with pytest.raises(NotFoundError, match=f"Provided token {TOKEN} does not exist") as caught:
        dt.parse_workflow(resp(404, f"Provided token {TOKEN} does not exist."), source="dt")
    # Dependency-Track 5.0 answers 404 for the removed endpoint itself: the error says so.
    assert 'use api_version = "v4"' in str(caught.value)


# --- v5: the workflow steps --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "lifecycle"),
    [
        ("PENDING", Lifecycle.RUNNING),
        ("TIMED_OUT", Lifecycle.RUNNING),
        ("COMPLETED", Lifecycle.SUCCEEDED),
        ("NOT_APPLICABLE", Lifecycle.SUCCEEDED),
        ("FAILED", Lifecycle.FAILED),
        ("CANCELLED", Lifecycle.CANCELLED),
    ],
)
def test_each_step_status_decides_as_the_table_says(status: str, lifecycle: Lifecycle) -> None:
    """Every step but METRICS_UPDATE completed; METRICS_UPDATE (started) has `status`."""
    body = [dict(s) for s in DT_WORKFLOW_COMPLETED]
    body[-1]["status"] = status
    scan = dt.workflow_scan(uploaded(), steps(body))
    assert scan.lifecycle is lifecycle
    assert scan.vendor_status == f"METRICS_UPDATE={status}"


def test_queued_until_the_bom_is_consumed() -> None:
    scan = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_QUEUED))
    assert scan.lifecycle is Lifecycle.QUEUED
    assert scan.vendor_status == "BOM_CONSUMPTION=PENDING"
    assert scan.message and scan.message.startswith("the BOM waits to be consumed")


def test_running_names_the_first_unfinished_step_and_lists_them_all() -> None:
    scan = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_RUNNING), status_url="u")
    assert scan.lifecycle is Lifecycle.RUNNING
    assert scan.vendor_status == "BOM_PROCESSING=PENDING"
    assert scan.message == (
        "BOM_CONSUMPTION=COMPLETED, BOM_PROCESSING=PENDING, VULN_ANALYSIS=PENDING, "
        "POLICY_EVALUATION=PENDING, METRICS_UPDATE=PENDING"
    )
    assert scan.started_at == datetime.fromtimestamp(1000001, tz=UTC)
    assert scan.updated_at == datetime.fromtimestamp(1000001, tz=UTC)
    assert scan.finished_at is None and scan.links["status"] == "u"
    assert [s["step"] for s in scan.raw["workflow"]][:2] == ["BOM_CONSUMPTION", "BOM_PROCESSING"]


def test_a_failed_step_fails_the_upload_with_its_reason() -> None:
    scan = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_VULN_FAILED))
    assert scan.lifecycle is Lifecycle.FAILED
    assert scan.vendor_status == "VULN_ANALYSIS=FAILED"
    assert scan.message and scan.message.startswith(
        "VULN_ANALYSIS failed: Failure threshold of 5.00% exceeded: 3/12 of scans failed; "
    )
    assert scan.finished_at == datetime.fromtimestamp(0.004, tz=UTC)


def test_the_import_failing_shape_of_5_7_0_alpha_3() -> None:
    scan = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_IMPORT_FAILED))
    assert scan.lifecycle is Lifecycle.FAILED
    assert scan.vendor_status == "BOM_CONSUMPTION=FAILED"
    assert "no reason given" in (scan.message or "")


def test_cancelled_without_a_failure_is_cancelled() -> None:
    body = [{**s, "status": "CANCELLED"} for s in DT_WORKFLOW_COMPLETED]
    scan = dt.workflow_scan(uploaded(), steps(body))
    assert scan.lifecycle is Lifecycle.CANCELLED
    assert scan.vendor_status == "BOM_CONSUMPTION=CANCELLED"


def test_timed_out_keeps_running_and_says_so() -> None:
    body = [dict(s) for s in DT_WORKFLOW_RUNNING]
    body[1]["status"] = "TIMED_OUT"
    scan = dt.workflow_scan(uploaded(), steps(body))
    assert scan.lifecycle is Lifecycle.RUNNING
    assert scan.vendor_status == "BOM_PROCESSING=TIMED_OUT"
    assert "BOM_PROCESSING timed out" in (scan.message or "")


def test_not_applicable_steps_count_as_done() -> None:
    scan = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_NOTHING_TO_ANALYSE))
    assert scan.lifecycle is Lifecycle.SUCCEEDED
    assert scan.vendor_status == "METRICS_UPDATE=COMPLETED"


def test_done_steps_without_metrics_update_are_not_the_end() -> None:
    """5.7.0-alpha.3 lists the import run's two steps until the analysis run exists."""
    body = [{**s, "status": "COMPLETED"} for s in DT_WORKFLOW_IMPORT_FAILED]
    scan = dt.workflow_scan(uploaded(), steps(body))
    assert scan.lifecycle is Lifecycle.RUNNING
    assert "no METRICS_UPDATE yet" in (scan.message or "")


def test_steps_are_read_in_the_servers_order_whatever_the_answer_order() -> None:
    shuffled = list(reversed(DT_WORKFLOW_RUNNING))
    assert [s.step for s in steps(shuffled)] == [s.step for s in steps(DT_WORKFLOW_RUNNING)]


def test_an_unknown_step_status_is_unknown_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    body = [dict(s) for s in DT_WORKFLOW_RUNNING]
    body[1]["status"] = "SUSPENDED"
    scan = dt.workflow_scan(uploaded(), steps(body))
    assert scan.lifecycle is Lifecycle.UNKNOWN
    assert scan.vendor_status == "BOM_PROCESSING=SUSPENDED"


def test_a_failure_outranks_an_unknown_status() -> None:
    body = [dict(s) for s in DT_WORKFLOW_VULN_FAILED]
    body[0]["status"] = "SUSPENDED"
    assert dt.workflow_scan(uploaded(), steps(body)).lifecycle is Lifecycle.FAILED


@pytest.mark.parametrize("body", [[], {"step": "x"}, [{"status": "PENDING"}], [None]])
def test_a_workflow_answer_without_steps_is_a_payload_error(body: Any) -> None:
    with pytest.raises(PayloadError):
        steps(body)


def test_a_token_seen_before_that_the_server_forgot_expires() -> None:
    seen = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_RUNNING))
    gone = dt.expired(seen, NotFoundError(f"Provided token {TOKEN} does not exist."))
    assert gone.lifecycle is Lifecycle.EXPIRED and gone.vendor_status == seen.vendor_status
    assert "72 hours" in (gone.message or "")


# --- v4: the processing flag and the project's evidence ---------------------------------------

UPLOAD_AT = datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)  # the upload answer's Date
IMPORTED = UPLOAD_AT + timedelta(seconds=3)


def project(last_import: datetime | None) -> dt.Project:
    return dt.Project(PROJECT, last_bom_import=last_import)


def metrics(measured: datetime | None) -> dt.Metrics:
    body = dict(DT_METRICS)
    body["lastOccurrence"] = int(measured.timestamp() * 1000) if measured else None
    found = dt.parse_metrics(resp(200, body), source="dt")
    assert found is not None
    return found


def test_the_token_status_answer() -> None:
    assert dt.parse_token_status(resp(200, DT_PROCESSING_TRUE), source="dt").processing is True
    state = dt.parse_token_status(resp(200, DT_PROCESSING_FALSE), source="dt")
    assert state.processing is False and state.vendor_status == "processing=false"
    odd = dt.parse_token_status(resp(200, {"processing": "yes"}), source="dt")
    assert odd.processing is None and odd.vendor_status == 'processing="yes"'
    with pytest.raises(PayloadError, match="no `processing`"):
        dt.parse_token_status(resp(200, {}), source="dt")


def test_v4_processing_true_is_running() -> None:
    scan = dt.judge_v4(uploaded(UPLOAD_AT), dt.Processing(True, True), status_url="s")
    assert scan.lifecycle is Lifecycle.RUNNING and scan.vendor_status == "processing=true"
    assert scan.links["status"] == "s"


def test_v4_odd_processing_value_is_unknown() -> None:
    scan = dt.judge_v4(uploaded(UPLOAD_AT), dt.Processing(None, "yes"))
    assert scan.lifecycle is Lifecycle.UNKNOWN and scan.vendor_status == 'processing="yes"'


def test_v4_false_with_import_and_fresh_metrics_succeeds() -> None:
    scan = dt.judge_v4(
        uploaded(UPLOAD_AT),
        dt.Processing(False, False),
        project=project(IMPORTED),
        metrics=metrics(IMPORTED + timedelta(seconds=2)),
    )
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.vendor_status == "processing=false"
    assert scan.findings == scanhub.FindingCounts(1, 2, 4, 1, 11)
    assert scan.finished_at == IMPORTED + timedelta(seconds=2)
    assert "upload time unknown" not in (scan.message or "")


def test_v4_import_within_the_date_headers_second_counts() -> None:
    assert dt.imported_since(project(UPLOAD_AT - timedelta(milliseconds=900)), UPLOAD_AT)
    assert not dt.imported_since(project(UPLOAD_AT - timedelta(seconds=2)), UPLOAD_AT)
    assert not dt.imported_since(project(None), UPLOAD_AT)


def test_v4_false_waits_for_the_metrics_update() -> None:
    for stale in (metrics(IMPORTED - timedelta(hours=1)), metrics(None), None):
        scan = dt.judge_v4(
            uploaded(UPLOAD_AT),
            dt.Processing(False, False),
            project=project(IMPORTED),
            metrics=stale,
        )
        assert scan.lifecycle is Lifecycle.RUNNING, stale
        assert "waiting for the project's metrics update" in (scan.message or "")


def test_v4_false_without_an_import_since_the_upload_fails() -> None:
    for last in (None, UPLOAD_AT - timedelta(days=2)):
        scan = dt.judge_v4(uploaded(UPLOAD_AT), dt.Processing(False, False), project=project(last))
        assert scan.lifecycle is Lifecycle.FAILED and scan.vendor_status == "processing=false"
        assert "no BOM import since the upload" in (scan.message or "")
        assert "or the token is unknown" in (scan.message or "")


def test_v4_without_an_upload_time_says_what_the_finish_rests_on() -> None:
    old = UPLOAD_AT - timedelta(days=2)
    scan = dt.judge_v4(
        uploaded(None), dt.Processing(False, False), project=project(old), metrics=metrics(old)
    )
    assert scan.lifecycle is Lifecycle.SUCCEEDED
    assert "upload time unknown" in (scan.message or "")
    never = dt.judge_v4(uploaded(None), dt.Processing(False, False), project=project(None))
    assert never.lifecycle is Lifecycle.FAILED and "at all" in (never.message or "")


# --- Results -----------------------------------------------------------------------------------


def test_project_answer() -> None:
    found = dt.parse_project(resp(200, DT_PROJECT), source="dt")
    assert found.uuid == PROJECT and found.name == "Example Application"
    assert found.last_bom_import == datetime.fromtimestamp(1718000000, tz=UTC)
    with pytest.raises(PayloadError, match="uuid"):
        dt.parse_project(resp(200, {"name": "x"}), source="dt")


def test_metrics_become_findings_with_unassigned_in_the_total() -> None:
    found = dt.parse_metrics(resp(200, DT_METRICS), source="dt")
    assert found is not None
    assert found.findings == scanhub.FindingCounts(critical=1, high=2, medium=4, low=1, total=11)
    assert found.last_occurrence == datetime.fromtimestamp(1718000005, tz=UTC)
    no_total = {k: v for k, v in DT_METRICS.items() if k != "vulnerabilities"}
    again = dt.parse_metrics(resp(200, no_total), source="dt")
    assert again is not None and again.findings.total == 11


@pytest.mark.parametrize(("status", "body"), [(204, b""), (200, b""), (200, b"null")])
def test_a_project_without_metrics_has_none(status: int, body: bytes) -> None:
    assert dt.parse_metrics(resp(status, body), source="dt") is None


@pytest.mark.parametrize(
    ("states", "verdict"),
    [
        ([], Verdict.PASS),
        (["INFO"], Verdict.PASS),
        (["INFO", "WARN"], Verdict.WARN),
        (["WARN", "FAIL", "INFO"], Verdict.FAIL),
        (["MAYBE"], Verdict.NONE),
        (["MAYBE", "WARN"], Verdict.WARN),
    ],
)
def test_the_verdict_is_the_worst_violation_state(states: list[str], verdict: Verdict) -> None:
    body = [violation(s) for s in states]
    page = dt.parse_violations(
        resp(200, body, headers={"X-Total-Count": str(len(body))}), source="dt"
    )
    assert [v.state for v in page.violations] == states
    assert dt.judge_violations([page]).verdict is verdict


def test_suppressed_violations_do_not_count() -> None:
    body = [violation("FAIL", analysis={"analysisState": "APPROVED", "isSuppressed": True})]
    page = dt.parse_violations(resp(200, body), source="dt")
    judged = dt.judge_violations([page])
    assert judged.verdict is Verdict.PASS and judged.read == 0


def test_violation_pages_and_the_total_header() -> None:
    full = [violation("WARN")] * dt.PAGE_SIZE
    page = dt.parse_violations(resp(200, full, headers={"X-Total-Count": "150"}), source="dt")
    assert page.total == 150 and page.more()
    last = dt.parse_violations(
        resp(200, full[:50], headers={"X-Total-Count": "150"}), source="dt", page=2
    )
    assert not last.more()
    judged = dt.judge_violations([page, last])
    assert judged.summary() == "150 policy violations (WARN 150)"
    assert dt.build_violations(BASE, PROJECT, page=2).params == (
        ("pageNumber", "2"),
        ("pageSize", "100"),
    )


def test_results_go_into_the_scan() -> None:
    done = dt.workflow_scan(uploaded(), steps(DT_WORKFLOW_COMPLETED))
    page = dt.parse_violations(resp(200, [violation("FAIL"), violation("WARN")]), source="dt")
    scan = dt.with_results(
        done, dt.judge_violations([page]), dt.parse_metrics(resp(200, DT_METRICS), source="dt")
    )
    assert scan.verdict is Verdict.FAIL and scan.lifecycle is Lifecycle.SUCCEEDED
    assert scan.findings == scanhub.FindingCounts(1, 2, 4, 1, 11)
    assert scan.message and scan.message.startswith(
        "2 policy violations (FAIL 1, WARN 1); 11 vulnerabilities (critical 1, high 2, medium 4, "
        "low 1); BOM_CONSUMPTION=COMPLETED"
    )


# --- The client over the simulator -------------------------------------------------------------

BOM = cyclonedx("webshop", "left-pad", "lodash", "express")


async def run_to_end(client: DependencyTrack, sim: DependencyTrackSim, item: Scan) -> list[Scan]:
    """Refresh `item`, moving the simulated clock, until it is terminal; every state seen."""
    seen = [item]
    for _ in range(40):
        if seen[-1].lifecycle.is_terminal:
            break
        sim.clock.advance(sim.duration / 8)
        seen.append(await client.refresh(seen[-1]))
    return seen


@pytest.mark.parametrize("api_version", ["v4", "v5"])
async def test_upload_to_a_known_project_ends_with_its_verdict_and_findings(
    api_version: str,
) -> None:
    sim = DependencyTrackSim(api_version=api_version, clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project(
            "webshop",
            "1.4.0",
            Profile(
                violations=[("FAIL", "Forbidden licenses", "left-pad")], severities=(1, 0, 2, 0, 1)
            ),
        )
        async with DependencyTrack(sim.base_url, sim.api_key, api_version=api_version) as client:
            first = await client.upload_bom(BOM, project=uuid)
            assert first.application_id == uuid and first.created_at is not None
            seen = await run_to_end(client, sim, first)
    last = seen[-1]
    assert last.lifecycle is Lifecycle.SUCCEEDED and last.verdict is Verdict.FAIL
    assert last.findings == scanhub.FindingCounts(1, 0, 2, 0, 4)
    lifecycles = [s.lifecycle for s in seen]
    assert Lifecycle.RUNNING in lifecycles
    statuses = {s.vendor_status for s in seen}
    if api_version == "v5":
        assert {"BOM_CONSUMPTION=PENDING", "VULN_ANALYSIS=PENDING"} <= statuses
        assert last.vendor_status == "METRICS_UPDATE=COMPLETED"
        assert Lifecycle.QUEUED in lifecycles
    else:
        assert {"processing=true", "processing=false"} <= statuses
        # The metrics update comes after the token's chain: seen as running with false.
        assert any(
            s.vendor_status == "processing=false" and s.lifecycle is Lifecycle.RUNNING for s in seen
        )


@pytest.mark.parametrize("api_version", ["v4", "v5"])
async def test_upload_by_name_creates_the_project_and_keeps_its_uuid(api_version: str) -> None:
    sim = DependencyTrackSim(api_version=api_version, clock=SimClock(speed=0))
    async with sim:
        async with DependencyTrack(sim.base_url, sim.api_key, api_version=api_version) as client:
            with pytest.raises(NotFoundError, match="project could not be found"):
                await client.upload_bom(BOM, project_name="inventory", project_version="0.9.0")
            scan = await client.upload_bom(
                BOM, project_name="inventory", project_version="0.9.0", auto_create=True
            )
            created = await client.project_uuid("inventory", "0.9.0")
            assert scan.application_id == created
            assert scan.links["project"].endswith(created)
            seen = await run_to_end(client, sim, scan)
    assert {s.application_id for s in seen} == {created}
    assert seen[-1].lifecycle is Lifecycle.SUCCEEDED and seen[-1].verdict is Verdict.PASS


async def test_v5_failed_step_cancels_the_rest() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("billing", "3.1.0", Profile(fail=("BOM_PROCESSING", "boom")))
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            seen = await run_to_end(client, sim, await client.upload_bom(BOM, project=uuid))
    last = seen[-1]
    assert last.lifecycle is Lifecycle.FAILED and last.vendor_status == "BOM_PROCESSING=FAILED"
    assert last.verdict is Verdict.NONE and last.findings is None
    assert "VULN_ANALYSIS=CANCELLED" in (last.message or "")


async def test_v4_a_bom_that_is_not_imported_fails() -> None:
    sim = DependencyTrackSim(api_version="v4", clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project(
            "billing", "3.1.0", Profile(fail=("BOM_CONSUMPTION", "Failed to parse BOM"))
        )
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v4") as client:
            seen = await run_to_end(client, sim, await client.upload_bom(BOM, project=uuid))
    assert seen[-1].lifecycle is Lifecycle.FAILED
    assert "no BOM import since the upload" in (seen[-1].message or "")


async def test_v5_empty_bom_has_nothing_to_analyse() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("empty", "1", Profile(violations=[("FAIL", "p", "c")]))
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            seen = await run_to_end(
                client, sim, await client.upload_bom(cyclonedx("e"), project=uuid)
            )
    assert seen[-1].lifecycle is Lifecycle.SUCCEEDED and seen[-1].verdict is Verdict.PASS
    assert "VULN_ANALYSIS=NOT_APPLICABLE" in (seen[-1].message or "")


async def test_v5_a_stalled_step_times_out_then_fails() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=0), step_timeout=10)
    async with sim:
        uuid = sim.add_project("slow", "1", Profile(stall="VULN_ANALYSIS"))
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            scan = await client.upload_bom(BOM, project=uuid)
            sim.clock.advance(sim.duration)
            scan = await client.refresh(scan)
            assert scan.vendor_status == "VULN_ANALYSIS=PENDING"
            sim.clock.advance(10)
            scan = await client.refresh(scan)
            assert scan.lifecycle is Lifecycle.RUNNING
            assert scan.vendor_status == "VULN_ANALYSIS=TIMED_OUT"
            sim.clock.advance(10)
            scan = await client.refresh(scan)
    assert scan.lifecycle is Lifecycle.FAILED
    assert (scan.message or "").startswith("VULN_ANALYSIS failed: Timed out")


async def test_v5_forgotten_token_expires_only_once_seen() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("p", "1")
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            scan = await client.upload_bom(BOM, project=uuid)
            seen = await client.refresh(scan)
            sim.forget(scan.id)
            assert (await client.refresh(seen)).lifecycle is Lifecycle.EXPIRED
            with pytest.raises(NotFoundError, match="does not exist"):
                await client.refresh(scan)  # never seen: not found, not expired
            with pytest.raises(NotFoundError, match="does not exist"):
                await client.upload(uuid, "00000000-0000-0000-0000-000000000000")


async def test_v4_an_unknown_token_is_not_taken_for_a_success() -> None:
    sim = DependencyTrackSim(api_version="v4", clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("p", "1")
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v4") as client:
            scan = await client.upload(uuid, "00000000-0000-0000-0000-000000000000")
    assert scan.lifecycle is Lifecycle.FAILED and scan.vendor_status == "processing=false"


async def test_the_simulator_refuses_what_dependency_track_refuses() -> None:
    sim = DependencyTrackSim(clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("p", "1")
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            with pytest.raises(BadRequestError, match="BOM is neither valid JSON nor XML"):
                await client.upload_bom(b"not a bom", project=uuid)
            with pytest.raises(NotFoundError, match="project could not be found"):
                await client.upload_bom(BOM, project="00000000-0000-4000-8000-000000000000")
        async with DependencyTrack(sim.base_url, "odt_wrong", api_version="v5") as wrong:
            with pytest.raises(AuthenticationError, match="API key was refused") as caught:
                await wrong.upload_bom(BOM, project=uuid)
            assert "odt_wrong" not in str(caught.value) and "odt_wrong" not in repr(wrong)


async def test_the_simulator_serves_the_multipart_upload_and_the_deprecated_token_path() -> None:
    import aiohttp

    sim = DependencyTrackSim(api_version="v4", clock=SimClock(speed=0))
    async with sim, aiohttp.ClientSession(headers={"X-Api-Key": sim.api_key}) as session:
        sim.add_project("p", "1")
        form = aiohttp.FormData()
        form.add_field("projectName", "p")
        form.add_field("projectVersion", "1")
        form.add_field("bom", BOM, filename="bom.json", content_type="application/json")
        async with session.post(f"{sim.base_url}/api/v1/bom", data=form) as r:
            token = (await r.json())["token"]
        async with session.get(f"{sim.base_url}/api/v1/bom/token/{token}") as r:
            assert await r.json() == {"processing": True}
        async with session.get(f"{sim.base_url}/api/v1/event/token/not-a-uuid") as r:
            assert r.status == 400
            assert (await r.json())[0]["message"] == "Invalid UUID"
        async with session.get(f"{sim.base_url}/api/v1/workflow/token/{token}/status") as r:
            assert r.status == 404  # a v4 server has no workflow endpoint


async def test_a_faulty_server_is_ridden_through_by_the_hub() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=50), duration=2.0)
    async with sim:
        uuid = sim.add_project("p", "1", Profile(violations=[("WARN", "Outdated", "x")]))
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5", name="dt") as c:
            scan = await c.upload_bom(BOM, project=uuid)
            sim.faults = Faults(error_rate=0.2, malformed_rate=0.1, unknown_status_rate=0.2, seed=3)
            async with ScanHub([c], interval=0.02, max_interval=0.1) as hub:
                done = await hub.wait(scan, timeout=20)
    assert done.lifecycle is Lifecycle.SUCCEEDED and done.verdict is Verdict.WARN


# --- Configuration -----------------------------------------------------------------------------


def test_track_needs_the_project_one_way() -> None:
    assert DependencyTrackTrack(source="s", token=TOKEN, project_uuid=PROJECT).problems() == []
    assert (
        DependencyTrackTrack(
            source="s", token=TOKEN, project_name="a", project_version="1"
        ).problems()
        == []
    )
    assert DependencyTrackTrack(source="s", token=TOKEN).problems()[0][0] == "project_uuid"
    assert DependencyTrackTrack(source="s", token=TOKEN, project_name="a").problems() == [
        ("project_version", "give project_version with project_name (missing)")
    ]
    both = DependencyTrackTrack(source="s", token=TOKEN, project_uuid=PROJECT, project_name="a")
    assert both.problems()[0][0] == "project_uuid"
    # The token and a project UUID as the server takes them (else a 400 on every poll).
    bad = DependencyTrackTrack(source="s", token="NOT-A-UUID", project_uuid=PROJECT.upper())
    assert bad.problems() == [
        ("token", "expected a 36-character lower-case UUID, got 'NOT-A-UUID'"),
        ("project_uuid", f"expected a 36-character lower-case UUID, got {PROJECT.upper()!r}"),
    ]


def test_client_refuses_an_unknown_api_version() -> None:
    with pytest.raises(BadRequestError, match="api_version must be one of v4, v5"):
        DependencyTrack(BASE, "k", api_version="v3")


async def test_a_configuration_tracks_tokens_by_project_name() -> None:
    sim = DependencyTrackSim(api_version="v5", clock=SimClock(speed=100))
    async with sim:
        uuid = sim.add_project("webshop", "1.4.0")
        token = sim.seed_upload(uuid, duration=1)
        doc = {
            "interval": 0.05,
            "source": [
                {
                    "name": "dt",
                    "vendor": "dependencytrack",
                    "base_url": sim.base_url,
                    "api_key_env": "DT_KEY",
                    "api_version": "v5",
                }
            ],
            "track": [
                {
                    "source": "dt",
                    "token": token,
                    "project_name": "webshop",
                    "project_version": "1.4.0",
                }
            ],
        }
        env = {"DT_KEY": sim.api_key}
        config = parse_config(doc, "t.toml", env=env)
        clients = build_clients(config, env)
        assert sim.api_key not in repr(clients[0])
        async with ScanHub(clients, interval=0.05, max_interval=0.2) as hub:
            await apply_tracks(hub, config)
            async for _ in hub.watch(deadline=20):
                pass
            (item,) = await hub.current()
    assert item.lifecycle is Lifecycle.SUCCEEDED and item.application_id == uuid


def test_a_bad_api_version_in_the_file_is_refused() -> None:
    doc = {
        "source": [
            {"vendor": "dependencytrack", "base_url": BASE, "api_key_env": "K", "api_version": "v6"}
        ]
    }
    with pytest.raises(scanhub.ConfigError, match="api_version"):
        parse_config(doc, "t.toml", env={"K": "x"})


def test_the_registry_lists_the_vendor_with_its_demo() -> None:
    spec = registry().get("dependencytrack")
    assert spec.title == "Dependency-Track" and spec.client is DependencyTrack
    assert spec.load_demo() is DEMO


async def test_the_project_is_named_one_way_before_anything_is_sent() -> None:
    sim = DependencyTrackSim(clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("p", "1")
        async with DependencyTrack(sim.base_url, sim.api_key) as client:
            with pytest.raises(BadRequestError, match="give the project as"):
                await client.upload_bom(BOM, project=uuid, project_name="p", project_version="1")
            with pytest.raises(BadRequestError, match="both be non-empty"):
                await client.upload_bom(BOM, project_name="p")
    assert sim.stats.requests == 0


@pytest.mark.parametrize(
    ("first", "pages", "summary"),
    [
        ("WARN", 3, "250 policy violations (WARN 250)"),
        ("FAIL", 1, "250 policy violations (FAIL 1, WARN 99, 100 read)"),
    ],
)
async def test_violations_are_paged_until_the_end_or_the_first_fail(
    first: str, pages: int, summary: str
) -> None:
    sim = DependencyTrackSim(clock=SimClock(speed=0))
    async with sim:
        many = [(first, "p0", "c0")] + [("WARN", f"p{i}", f"c{i}") for i in range(1, 250)]
        uuid = sim.add_project("big", "1", Profile(violations=many))
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            scan = await client.upload_bom(BOM, project=uuid)
            sim.clock.advance(sim.duration)
            before = sim.stats.requests
            scan = await client.refresh(scan)
    assert sim.stats.requests - before == 2 + pages  # workflow, metrics, violation pages
    assert (scan.message or "").startswith(summary)
    assert scan.verdict is Verdict(first.lower())


async def test_upload_from_a_path(tmp_path: Path) -> None:
    (tmp_path / "bom.json").write_bytes(BOM)
    sim = DependencyTrackSim(clock=SimClock(speed=0))
    async with sim:
        uuid = sim.add_project("p", "1")
        async with DependencyTrack(sim.base_url, sim.api_key, api_version="v5") as client:
            scan = await client.upload_bom(tmp_path / "bom.json", project=uuid)
    assert sim.uploads[scan.id].components == 3
