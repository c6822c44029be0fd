"""OWASP Dependency-Track: BOM upload tokens, their processing, the project's verdict and
findings, as pure functions.

Sources (read through the search tools; paths as in the repositories):

- DependencyTrack/dependency-track, tag 4.14.3: `resources/v1/BomResource.java` (PUT / POST
  `/v1/bom`, the `{"token"}` answer, the plain-text and RFC 9457 error bodies),
  `resources/v1/vo/BomSubmitRequest.java` (the PUT body), `resources/v1/vo/BomUploadResponse.java`,
  `resources/v1/EventResource.java` and `vo/IsTokenBeingProcessedResponse.java`
  (`GET /v1/event/token/{uuid}` -> `{"processing": bool}`; "a value of false also does not
  confirm the token is valid"), `resources/v1/PolicyViolationResource.java`
  (`GET /v1/violation/project/{uuid}`, paged, `X-Total-Count`), `resources/v1/MetricsResource.java`
  (`GET /v1/metrics/project/{uuid}/current`), `resources/v1/ProjectResource.java` (`GET
  /v1/project/{uuid}`, `GET /v1/project/lookup?name=&version=`), models `PolicyViolation`,
  `Policy` (`ViolationState` INFO / WARN / FAIL), `ViolationAnalysis` (`isSuppressed`),
  `ProjectMetrics`, `Project` (`lastBomImport`), and `tasks/BomUploadProcessingTask.java`
  (the upload's event chain: import, then vulnerability analysis, then policy evaluation; the
  metrics update runs outside the chain).
- DependencyTrack/hyades-apiserver, tags 5.0.0 to 5.6.0: `resources/v1/WorkflowResource.java`
  (`GET /v1/workflow/token/{uuid}/status` -> the token's `WorkflowState`s; 404 "Provided token
  … does not exist."), models `WorkflowState`, `WorkflowStep`, `WorkflowStatus` (with its own
  `isTerminal`), `persistence/WorkflowStateQueryManager.java` (`createWorkflowSteps`: the five
  steps made at upload, in order), `persistence/jdbi/WorkflowDao.java` and
  `tasks/maintenance/WorkflowMaintenanceTask.java` (PENDING -> TIMED_OUT -> FAILED "Timed out",
  children CANCELLED; finished workflows deleted after 72 hours), and
  `resources/v1/WorkflowResourceTest.java` for the answer's shape.
- Alpine (stevespringett/Alpine): `ApiFilter` (every list is paged, 100 by default;
  `pageNumber` / `pageSize`), `AuthenticationFilter` (401 with an empty body),
  `BaseEventService` (a chain's token stays "being processed" until its last chained event
  ends).

`api_version` chooses how a token is followed (`API_VERSIONS`): `v4` reads the processing flag,
`v5` the workflow steps. adapters.md, "OWASP Dependency-Track", has the rules and their reasons.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from attrs import frozen

from scanhub.sansio import (
    Request,
    Response,
    Where,
    as_list,
    as_object,
    decode_json,
    fail,
    join_url,
    loads,
    map_value,
    map_verdict,
    opt_int,
    opt_str,
    parse_http_date,
    parse_time,
    raise_for_status,
    req_str,
    segment,
    where,
)
from scanhub.vendors import (
    BadRequestError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    ScanhubError,
    Verdict,
)

VENDOR = "dependencytrack"

#: The `api_version` values: `v4` follows a token by its processing flag (Dependency-Track 4.x;
#: Dependency-Track 5.0 and later answer the same endpoint), `v5` by its workflow steps (the
#: Hyades API server 5.0 to 5.6, whose `/v1/workflow` endpoint Dependency-Track 5.0 removed).
API_VERSIONS = ("v4", "v5")

#: The workflow steps in the order the server chains them (hyades-apiserver
#: `model/WorkflowStep.java`; `WorkflowStateQueryManager.createWorkflowSteps` makes
#: BOM_CONSUMPTION -> BOM_PROCESSING -> VULN_ANALYSIS -> POLICY_EVALUATION -> METRICS_UPDATE, each
#: the parent of the next; REPO_META_ANALYSIS is declared but given no state by 5.0 to 5.6).
STEPS = (
    "BOM_CONSUMPTION",
    "BOM_PROCESSING",
    "VULN_ANALYSIS",
    "REPO_META_ANALYSIS",
    "POLICY_EVALUATION",
    "METRICS_UPDATE",
)
#: The step whose end ends the workflow of a BOM upload.
LAST_STEP = "METRICS_UPDATE"

#: Vendor status -> Lifecycle. Two vocabularies, one per `api_version`; the rules that combine
#: them with other evidence (every step of a workflow; the project's last BOM import) are in
#: `workflow_scan` and `judge_v4`, and in adapters.md.
STATUS_MAP: Mapping[str, Lifecycle] = {
    # v5, one workflow step: hyades-apiserver model/WorkflowStatus.java.
    "PENDING": Lifecycle.RUNNING,  # isTerminal false: waiting or in progress
    # isTerminal false; "can still eventually become COMPLETED or FAILED" (5.0.0
    # tasks/WorkflowStateCleanupTask.java): failed after another step timeout
    "TIMED_OUT": Lifecycle.RUNNING,
    "COMPLETED": Lifecycle.SUCCEEDED,  # isTerminal true
    "FAILED": Lifecycle.FAILED,  # isTerminal true; failureReason says why
    "CANCELLED": Lifecycle.CANCELLED,  # isTerminal true: a parent step failed
    "NOT_APPLICABLE": Lifecycle.SUCCEEDED,  # isTerminal true: skipped (no components)
    # v4: vo/IsTokenBeingProcessedResponse.java from resources/v1/EventResource.java.
    "processing=true": Lifecycle.RUNNING,  # the token's event chain is queued or running
    "processing=false": Lifecycle.SUCCEEDED,  # only with the project's evidence (judge_v4)
}

#: A violation's `policyCondition.policy.violationState` -> Verdict (model/Policy.java,
#: `enum ViolationState { INFO, WARN, FAIL }`).
VIOLATION_STATE_MAP: Mapping[str, Verdict] = {
    "FAIL": Verdict.FAIL,  # the policy's violation state FAIL: blocks
    "WARN": Verdict.WARN,  # WARN: worth a look, does not block
    "INFO": Verdict.PASS,  # INFO: informational only
}

#: What each operation needs, named in the error when a 403 comes without a body (Alpine's
#: AuthorizationFilter answers so; the resources' @PermissionRequired).
PERMISSIONS: Mapping[str, str] = {
    "upload bom": "BOM_UPLOAD (and PROJECT_CREATION_UPLOAD or PORTFOLIO_MANAGEMENT to create a "
    "project)",
    "workflow status": "BOM_UPLOAD",
    "token status": "an API key of any team",
    "project": "VIEW_PORTFOLIO",
    "project lookup": "VIEW_PORTFOLIO",
    "project metrics": "VIEW_PORTFOLIO",
    "policy violations": "VIEW_POLICY_VIOLATION",
}

#: `BomSubmitRequest`'s patterns: lower-case 36-character UUIDs, and standard Base64.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: "The maximum allowed length of the bom value is 20'000'000 characters" (PUT /v1/bom).
MAX_PUT_BOM_CHARS = 20_000_000
#: Alpine pages every list, 100 records unless asked otherwise.
PAGE_SIZE = 100
#: Violation pages read at most per refresh (the verdict is known at the first FAIL anyway).
MAX_VIOLATION_PAGES = 20
#: The upload answer's `Date` has whole seconds and is written after the server queued the BOM;
#: an import this long before it still counts as this upload's.
DATE_SLACK = timedelta(seconds=1)


def auth_headers(api_key: str) -> dict[str, str]:
    """`X-Api-Key` (Alpine's ApiKeyAuthenticationService) and JSON answers."""
    return {"X-Api-Key": api_key, "Accept": "application/json"}


def _api(base_url: str, path: str) -> str:
    return join_url(base_url, f"api/v1/{path}")


def _seg(
    value: object, operation: str, what: str, error: type[ScanhubError] = BadRequestError
) -> str:
    return segment(value, vendor=VENDOR, operation=operation, what=what, error=error)


# --- Values read from answers ------------------------------------------------------------------


@frozen(slots=False)  # a dict class builds faster (see scanhub._model); five per poll
class Step:
    """One `WorkflowState` of a token (hyades-apiserver model/WorkflowState.java)."""

    step: str
    status: str
    started_at: datetime | None = None
    updated_at: datetime | None = None
    failure_reason: str | None = None


@frozen
class Processing:
    """`{"processing": bool}`; `processing` is None when the value is not a boolean (`raw`)."""

    processing: bool | None
    raw: Any = attrs.field(default=None, eq=False)

    @property
    def vendor_status(self) -> str:
        """`processing=true` / `processing=false`, or the odd value as received."""
        if self.processing is None:
            return f"processing={_short(json.dumps(self.raw, default=str))}"
        return f"processing={'true' if self.processing else 'false'}"


@frozen
class Project:
    """The parts of a `Project` scanhub reads."""

    uuid: str
    name: str | None = None
    version: str | None = None
    last_bom_import: datetime | None = None
    raw: Any = attrs.field(default=None, eq=False)


@frozen
class Metrics:
    """A project's current `ProjectMetrics`."""

    findings: FindingCounts
    last_occurrence: datetime | None = None
    raw: Any = attrs.field(default=None, eq=False)


@frozen
class Violation:
    """One policy violation: its policy's violation state, names to show, suppression."""

    state: str
    verdict: Verdict
    policy: str | None = None
    component: str | None = None
    type: str | None = None
    suppressed: bool = False


@frozen
class ViolationPage:
    """One page of a project's violations and the `X-Total-Count` header."""

    violations: tuple[Violation, ...]
    total: int | None
    page: int
    page_size: int

    def more(self) -> bool:
        """True when another page may hold more violations."""
        if len(self.violations) < self.page_size:
            return False
        return self.total is None or self.page * self.page_size < self.total


@frozen
class Verdicts:
    """What the violations read say: the worst verdict and counts by state."""

    verdict: Verdict
    counts: Mapping[str, int]
    read: int
    total: int | None
    complete: bool

    def summary(self) -> str:
        """`no policy violations` / `3 policy violations (FAIL 1, WARN 2)`."""
        if not self.counts:
            return "no policy violations" if not self.total else "no unsuppressed policy violations"
        order = [s for s in ("FAIL", "WARN", "INFO") if s in self.counts]
        order += sorted(s for s in self.counts if s not in ("FAIL", "WARN", "INFO"))
        parts = ", ".join(f"{s} {self.counts[s]}" for s in order)
        total = self.total if self.total is not None else self.read
        noun = "policy violation" if total == 1 else "policy violations"
        read = "" if self.complete or self.read >= total else f", {self.read} read"
        return f"{total} {noun} ({parts}{read})"


# --- Upload ------------------------------------------------------------------------------------


def build_upload(
    base_url: str,
    bom: bytes,
    *,
    project: str | None = None,
    project_name: str | None = None,
    project_version: str | None = None,
    auto_create: bool = False,
    parent_uuid: str | None = None,
    parent_name: str | None = None,
    parent_version: str | None = None,
    is_latest: bool = False,
    project_tags: Sequence[str] = (),
    source: str = VENDOR,
) -> Request:
    """`PUT /api/v1/bom` with a `BomSubmitRequest`: the project by `project` (UUID) or by
    `projectName` + `projectVersion` (with `autoCreate` to create it), the BOM as Base64.

    Checked before sending as the server would refuse it: one way to name the project, UUIDs
    in the server's pattern, a non-empty BOM within the 20,000,000-character limit of PUT.
    """
    at = Where(VENDOR, source, "upload bom")
    if not bom:
        fail(BadRequestError, at, "the BOM is empty")
    check_project(project, project_name, project_version, source=source)
    body: dict[str, Any] = {}
    if project is not None:
        body["project"] = project
    else:
        body["projectName"] = project_name
        body["projectVersion"] = project_version
        body["autoCreate"] = bool(auto_create)
        if parent_uuid is not None:
            _check_uuid(parent_uuid, "parent_uuid", at)
            body["parentUUID"] = parent_uuid
        elif parent_name is not None:
            body["parentName"] = parent_name
            if parent_version is not None:
                body["parentVersion"] = parent_version
        if is_latest:
            body["isLatest"] = True
    tags = [project_tags] if isinstance(project_tags, str) else list(project_tags)
    if tags:
        body["projectTags"] = [{"name": str(t)} for t in tags]
    encoded = base64.b64encode(bom).decode("ascii")
    if len(encoded) > MAX_PUT_BOM_CHARS:
        fail(
            BadRequestError,
            at,
            f"the BOM is {len(encoded):,} characters in Base64; PUT /api/v1/bom takes at most "
            f"{MAX_PUT_BOM_CHARS:,} (Dependency-Track's POST multipart upload has no such limit, "
            "but scanhub's transport cannot send its form fields yet)",
        )
    body["bom"] = encoded
    return Request("PUT", _api(base_url, "bom"), "upload bom", json=body, idempotent=False)


def check_project(
    project: str | None,
    project_name: str | None,
    project_version: str | None,
    *,
    source: str = VENDOR,
) -> None:
    """The project is named one way: by UUID, or by a non-empty name and version."""
    at = Where(VENDOR, source, "upload bom")
    if (project is None) == (project_name is None and project_version is None):
        fail(BadRequestError, at, "give the project as project (UUID) or as name and version")
    if project is not None:
        _check_uuid(project, "project", at)
    elif not (project_name or "").strip() or not (project_version or "").strip():
        fail(BadRequestError, at, "project_name and project_version must both be non-empty")


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID as Dependency-Track takes one (36 lower-case characters)."""
    return _UUID.fullmatch(value) is not None


def _check_uuid(value: str, what: str, at: Where) -> None:
    if not is_uuid(value):
        fail(
            BadRequestError,
            at,
            f"{what} {value!r} is not a 36-character lower-case UUID, as Dependency-Track requires",
        )


def parse_upload(
    resp: Response, *, source: str, base_url: str, project_uuid: str, api_version: str = "v4"
) -> Scan:
    """The upload answer `{"token": "<uuid>"}` (BomUploadResponse; PUT answers the same map) as
    a `queued` Scan. `created_at` is the answer's `Date` header: the server's clock, which the
    v4 rule compares with the project's last BOM import."""
    at = where(VENDOR, source, resp)
    body = _json_ok(resp, at)
    obj = as_object(body, at, "the upload answer", resp)
    token = req_str(obj, at, "token", resp=resp)
    return Scan(
        vendor=VENDOR,
        source=source,
        id=token,
        application_id=project_uuid,
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        created_at=parse_http_date(resp.headers.get("date")),
        scan_type="bom",
        links=links(base_url, token, project_uuid, api_version, error=PayloadError),
        raw={"upload": obj},
    )


def links(
    base_url: str,
    token: str,
    project_uuid: str,
    api_version: str,
    *,
    error: type[ScanhubError] = BadRequestError,
) -> dict[str, str]:
    """API links of an upload: how its token is followed, and its project's results (`error`:
    what an id that cannot be a path segment raises)."""
    if not base_url:
        return {}
    project = _seg(project_uuid, "links", "project", error) if project_uuid else ""
    tok = _seg(token, "links", "token", error)
    out = {
        "status": _api(base_url, f"workflow/token/{tok}/status")
        if api_version == "v5"
        else _api(base_url, f"event/token/{tok}")
    }
    if project:
        out["project"] = _api(base_url, f"project/{project}")
        out["violations"] = _api(base_url, f"violation/project/{project}")
        out["metrics"] = _api(base_url, f"metrics/project/{project}/current")
    return out


def with_project(scan: Scan, base_url: str, project_uuid: str, api_version: str) -> Scan:
    """`scan` as the upload of the project `project_uuid` (known after the upload created it)."""
    return attrs.evolve(
        scan,
        application_id=project_uuid,
        links=links(base_url, scan.id, project_uuid, api_version),
    )


def placeholder(
    source: str, token: str, project_uuid: str, base_url: str = "", api_version: str = "v4"
) -> Scan:
    """A token to follow that scanhub did not upload (its state and upload time unknown)."""
    return Scan(
        vendor=VENDOR,
        source=source,
        id=token,
        application_id=project_uuid,
        lifecycle=Lifecycle.UNKNOWN,
        vendor_status="",
        scan_type="bom",
        links=links(base_url, token, project_uuid, api_version),
    )


# --- Projects ----------------------------------------------------------------------------------


def build_project(base_url: str, project_uuid: str) -> Request:
    """`GET /api/v1/project/{uuid}`."""
    uuid = _seg(project_uuid, "project", "project uuid")
    return Request("GET", _api(base_url, f"project/{uuid}"), "project")


def build_project_lookup(base_url: str, name: str, version: str) -> Request:
    """`GET /api/v1/project/lookup?name=&version=`."""
    at = Where(VENDOR, "", "project lookup")
    if not name.strip() or not version.strip():
        fail(BadRequestError, at, "project name and version must both be non-empty")
    return Request(
        "GET",
        _api(base_url, "project/lookup"),
        "project lookup",
        params=(("name", name), ("version", version)),
    )


def parse_project(resp: Response, *, source: str) -> Project:
    """A `Project`: its `uuid` (identity), name, version, `lastBomImport` (epoch ms)."""
    at = where(VENDOR, source, resp)
    obj = as_object(_json_ok(resp, at), at, "the project", resp)
    return Project(
        uuid=req_str(obj, at, "uuid", resp=resp),
        name=opt_str(obj, "name"),
        version=opt_str(obj, "version"),
        last_bom_import=parse_time(obj.get("lastBomImport")),
        raw={k: obj.get(k) for k in ("uuid", "name", "version", "lastBomImport") if k in obj},
    )


# --- v4: the processing flag -------------------------------------------------------------------


def build_token_status(base_url: str, token: str) -> Request:
    """`GET /api/v1/event/token/{uuid}` (EventResource, since 4.11; `/v1/bom/token/{uuid}` is the
    deprecated older form)."""
    return Request(
        "GET",
        _api(base_url, f"event/token/{_seg(token, 'token status', 'token')}"),
        "token status",
    )


def parse_token_status(resp: Response, *, source: str) -> Processing:
    """`{"processing": true|false}`. Any other value is kept (`processing` None)."""
    at = where(VENDOR, source, resp)
    obj = as_object(_json_ok(resp, at), at, "the token status", resp)
    if "processing" not in obj:
        fail(PayloadError, at, "the token status has no `processing` field", resp)
    value = obj.get("processing")
    return Processing(value if isinstance(value, bool) else None, value)


def imported_since(project: Project, uploaded_at: datetime | None) -> bool:
    """True when the project's last BOM import can be this upload's: it exists and is not
    older than the upload answer's `Date` (less `DATE_SLACK`). Without an upload time, any
    import counts."""
    if project.last_bom_import is None:
        return False
    return uploaded_at is None or project.last_bom_import >= uploaded_at - DATE_SLACK


def judge_v4(
    previous: Scan,
    state: Processing,
    *,
    project: Project | None = None,
    metrics: Metrics | None = None,
    status_url: str = "",
) -> Scan:
    """Where a v4 token stands, from its processing flag and, once the flag is false, from the
    project (`lastBomImport`) and its current metrics (`lastOccurrence`):

    - `processing=true`: `running`.
    - not a boolean: `unknown` (polled again).
    - `processing=false` with a BOM import at or after the upload and metrics measured after
      that import: `succeeded` (the caller then reads the verdict and findings).
    - `processing=false` with a BOM import but older metrics (or none): `running`: the metrics
      update runs outside the token's chain and comes after it (at the latest with the
      scheduled portfolio metrics update, hourly by default).
    - `processing=false` and no BOM import since the upload: `failed`: the chain is over and
      the BOM was not imported (it could not be parsed or processed, or the server lost its
      in-memory queue, e.g. in a restart); an unknown token answers the same.

    Without an upload time (a token tracked from the configuration), "since the upload"
    cannot be checked: any import counts, and the message says so.
    """
    vendor_status = state.vendor_status
    base = attrs.evolve(previous, vendor_status=vendor_status)
    if status_url:
        base = attrs.evolve(base, links={**previous.links, "status": status_url})
    raw = {**(previous.raw if isinstance(previous.raw, dict) else {}), "status": state.raw}
    if state.processing is None:
        map_value(STATUS_MAP, vendor_status, VENDOR)  # warned once as an unknown value
        return attrs.evolve(
            base,
            lifecycle=Lifecycle.UNKNOWN,
            message=f"the token status's processing is {vendor_status[11:]}, not true or false",
            raw=raw,
        )
    if state.processing:
        return attrs.evolve(
            base,
            lifecycle=Lifecycle.RUNNING,
            message="Dependency-Track is processing the BOM (import, vulnerability analysis, "
            "policy evaluation)",
            raw=raw,
        )
    uploaded = previous.created_at
    if project is not None:
        raw["project"] = project.raw
    if project is None or not imported_since(project, uploaded):
        last = _when(project.last_bom_import) if project is not None else "unknown"
        since = f"since the upload ({_when(uploaded)})" if uploaded else "at all"
        return attrs.evolve(
            base,
            lifecycle=Lifecycle.FAILED,
            message=(
                f"Dependency-Track is not processing the token and the project has no BOM import "
                f"{since} (last import: {last}): the BOM was not imported (it could not be "
                "parsed or processed, or the server lost its queue), or the token is unknown"
            ),
            finished_at=project.last_bom_import if project is not None else None,
            raw=raw,
        )
    imported = project.last_bom_import
    assert imported is not None  # imported_since made sure
    if metrics is not None:
        raw["metrics"] = metrics.raw
    fresh = (
        metrics is not None
        and metrics.last_occurrence is not None
        and metrics.last_occurrence >= imported
    )
    if not fresh:
        measured = _when(metrics.last_occurrence) if metrics is not None else "none yet"
        return attrs.evolve(
            base,
            lifecycle=Lifecycle.RUNNING,
            message=(
                f"BOM imported at {_when(imported)} and analysed; waiting for the project's "
                f"metrics update (current metrics: {measured})"
            ),
            updated_at=imported,
            raw=raw,
        )
    note = ""
    if uploaded is None:
        note = (
            " (upload time unknown: finished on processing=false and the project's last BOM "
            "import; Dependency-Track also answers false for unknown tokens)"
        )
    return attrs.evolve(
        base,
        lifecycle=Lifecycle.SUCCEEDED,
        message=f"BOM imported at {_when(imported)}{note}",
        findings=metrics.findings if metrics is not None else None,
        updated_at=metrics.last_occurrence if metrics is not None else imported,
        finished_at=metrics.last_occurrence if metrics is not None else imported,
        raw=raw,
    )


# --- v5: the workflow steps --------------------------------------------------------------------


def build_workflow_status(base_url: str, token: str) -> Request:
    """`GET /api/v1/workflow/token/{uuid}/status` (hyades-apiserver WorkflowResource)."""
    return Request(
        "GET",
        _api(base_url, f"workflow/token/{_seg(token, 'workflow status', 'token')}/status"),
        "workflow status",
    )


def parse_workflow(resp: Response, *, source: str) -> list[Step]:
    """The token's `WorkflowState`s: `[{"token", "step", "status", "startedAt"?, "updatedAt"?,
    "failureReason"?}]` (times in epoch ms), sorted in the server's step order. A 404 ("Provided
    token … does not exist.") is a `NotFoundError`; an empty list a `PayloadError`."""
    at = where(VENDOR, source, resp)
    if resp.status == 404:
        said = error_text(resp, at.operation) or "HTTP 404"
        fail(
            NotFoundError,
            at,
            f"{said} (an unknown token; or a server without /api/v1/workflow: Dependency-Track "
            '5.0 and later removed it, use api_version = "v4")',
            resp,
        )
    states = as_list(_json_ok(resp, at), at, "the workflow states", resp)
    steps = []
    names = []
    for entry in states:
        obj = entry if type(entry) is dict else as_object(entry, at, "a workflow state", resp)
        # Each field read inline for the shape the server sends (an exact str, epoch ms as an
        # int), through the shared reader otherwise: the same values either way.
        step = obj.get("step")
        if type(step) is not str or not step:
            step = req_str(obj, at, "step", resp=resp)
        status = obj.get("status")
        if type(status) is not str:
            status = opt_str(obj, "status") or ""
        reason = obj.get("failureReason")
        if reason is not None and type(reason) is not str:
            reason = opt_str(obj, "failureReason")
        # Times: `parse_time`'s own path for epoch ms as an int, inline (ten calls an answer).
        started = obj.get("startedAt")
        if type(started) is int:
            try:
                started = _fromtimestamp(started / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                started = None
        else:
            started = parse_time(started)
        updated = obj.get("updatedAt")
        if type(updated) is int:
            try:
                updated = _fromtimestamp(updated / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                updated = None
        else:
            updated = parse_time(updated)
        # `Step(step, status, started, updated, reason)` as attrs builds it (a frozen dict
        # class: its `__init__` writes the fields into the instance's `__dict__`), inline: a
        # third faster. tests/test_parse_fastpaths.py holds Step free of validators,
        # converters and hooks, and these Steps equal the constructor's.
        made = _new(Step)
        fields = made.__dict__
        fields["step"] = step
        fields["status"] = status
        fields["started_at"] = started
        fields["updated_at"] = updated
        fields["failure_reason"] = reason
        steps.append(made)
        names.append(step)
    if not steps:
        fail(PayloadError, at, "the workflow has no steps", resp)
    # The server sends the five steps it makes, in order: then they are sorted already. Any other
    # list is sorted (stable: steps of one rank keep the server's order).
    if names != _SERVER_STEPS:
        steps.sort(key=_step_rank)
    return steps


_fromtimestamp = datetime.fromtimestamp
_new = object.__new__
#: The steps `createWorkflowSteps` makes for an upload, in `STEPS` order.
_SERVER_STEPS = [name for name in STEPS if name != "REPO_META_ANALYSIS"]

#: A step's place in `STEPS`; a step the server adds later sorts after them.
_STEP_RANK = {name: rank for rank, name in reversed(list(enumerate(STEPS)))}
_LATER = len(STEPS)


def _step_rank(step: Step) -> int:
    return _STEP_RANK.get(step.step, _LATER)


def steps_text(steps: Iterable[Step]) -> str:
    """`BOM_CONSUMPTION=COMPLETED, BOM_PROCESSING=PENDING, ...`: how steps appear in messages."""
    return ", ".join(f"{s.step}={s.status or '?'}" for s in steps)


def workflow_scan(previous: Scan, steps: Sequence[Step], *, status_url: str = "") -> Scan:
    """Where a v5 token stands, from all its steps (in `STEPS` order):

    1. a step FAILED: `failed` (its `failureReason` is the message);
    2. else a step CANCELLED: `cancelled`;
    3. else a step with a status outside `STATUS_MAP`: `unknown`;
    4. else every step COMPLETED or NOT_APPLICABLE and METRICS_UPDATE among them: `succeeded`;
    5. else the first unfinished step decides: `queued` while it is BOM_CONSUMPTION, PENDING and
       not started (the upload waits in the queue), otherwise `running` (TIMED_OUT too: the
       server fails such a step only after another step timeout; every step done but
       METRICS_UPDATE absent also: the rest of the workflow is not there yet).

    `vendor_status` is the deciding step as `STEP=STATUS`; the message lists every step.
    """
    ordered = sorted(steps, key=_step_rank)
    mapped = [
        (s, map_value(STATUS_MAP, s.status, VENDOR) if s.status else Lifecycle.UNKNOWN)
        for s in ordered
    ]
    listing = steps_text(ordered)

    def first(lifecycle: Lifecycle) -> Step | None:
        return next((s for s, lc in mapped if lc is lifecycle), None)

    failed, cancelled, unknown = (
        first(Lifecycle.FAILED),
        first(Lifecycle.CANCELLED),
        first(Lifecycle.UNKNOWN),
    )
    lifecycle: Lifecycle
    if failed is not None:
        decider, lifecycle = failed, Lifecycle.FAILED
        message = f"{failed.step} failed: {failed.failure_reason or 'no reason given'}; {listing}"
    elif cancelled is not None:
        decider, lifecycle = cancelled, Lifecycle.CANCELLED
        message = f"{cancelled.step} was cancelled; {listing}"
    elif unknown is not None:
        decider, lifecycle = unknown, Lifecycle.UNKNOWN
        message = f"{unknown.step} has status {unknown.status!r}; {listing}"
    elif all(lc is Lifecycle.SUCCEEDED for _, lc in mapped):
        if any(s.step == LAST_STEP for s in ordered):
            decider = next(s for s in ordered if s.step == LAST_STEP)
            lifecycle, message = Lifecycle.SUCCEEDED, listing
        else:
            decider, lifecycle = ordered[-1], Lifecycle.RUNNING
            message = f"waiting for the rest of the workflow (no {LAST_STEP} yet); {listing}"
    else:
        decider = next(s for s, lc in mapped if lc is Lifecycle.RUNNING)
        lifecycle = Lifecycle.RUNNING
        if decider.status == "TIMED_OUT":
            message = (
                f"{decider.step} timed out; Dependency-Track fails it after another step "
                f"timeout unless it finishes; {listing}"
            )
        elif decider is ordered[0] and decider.step == STEPS[0] and decider.started_at is None:
            lifecycle = Lifecycle.QUEUED
            message = f"the BOM waits to be consumed; {listing}"
        else:
            message = listing
    started = next((s.started_at for s in ordered if s.started_at is not None), None)
    updated = max((s.updated_at for s in ordered if s.updated_at is not None), default=None)
    links = {**previous.links, "status": status_url} if status_url else previous.links
    raw = {
        **(previous.raw if isinstance(previous.raw, dict) else {}),
        "workflow": [attrs.asdict(s, value_serializer=_serialize) for s in ordered],
    }
    return attrs.evolve(
        previous,
        lifecycle=lifecycle,
        vendor_status=f"{decider.step}={decider.status}",
        message=message,
        links=links,
        started_at=started or previous.started_at,
        updated_at=updated or previous.updated_at,
        finished_at=updated if lifecycle.is_terminal else None,
        raw=raw,
    )


def _serialize(_inst: Any, _field: Any, value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def expired(previous: Scan, error: NotFoundError) -> Scan:
    """A token the workflow endpoint no longer knows though scanhub saw it before: the server
    deleted its finished workflow (after 72 hours by default, WorkflowMaintenanceTask) before
    scanhub saw the end. The outcome is unknown: `expired`."""
    said = error.args[0] if error.args else "not found"
    return attrs.evolve(
        previous,
        lifecycle=Lifecycle.EXPIRED,
        message=(
            f"Dependency-Track no longer knows token {previous.id} ({said}); finished "
            "workflows are deleted after 72 hours by default, so its outcome is unknown"
        ),
    )


# --- Results: metrics and violations ---------------------------------------------------------


def build_metrics(base_url: str, project_uuid: str) -> Request:
    """`GET /api/v1/metrics/project/{uuid}/current`."""
    uuid = _seg(project_uuid, "project metrics", "project uuid")
    return Request("GET", _api(base_url, f"metrics/project/{uuid}/current"), "project metrics")


def parse_metrics(resp: Response, *, source: str) -> Metrics | None:
    """The current `ProjectMetrics`, or None when the project has none yet (the resource then
    answers without a body). critical / high / medium / low become `FindingCounts`; `total` is
    `vulnerabilities` (which counts `unassigned` too), else the sum of the five."""
    at = where(VENDOR, source, resp)
    if resp.status == 204 or (200 <= resp.status < 300 and not resp.body.strip()):
        return None
    body = _json_ok(resp, at)
    if body is None:
        return None
    obj = as_object(body, at, "the project metrics", resp)
    counts = {k: max(0, opt_int(obj, k) or 0) for k in ("critical", "high", "medium", "low")}
    unassigned = max(0, opt_int(obj, "unassigned") or 0)
    total = opt_int(obj, "vulnerabilities")
    if total is None or total < 0:
        total = sum(counts.values()) + unassigned
    keep = (
        "critical", "high", "medium", "low", "unassigned", "vulnerabilities",
        "vulnerableComponents", "components", "suppressed", "findingsTotal",
        "policyViolationsFail", "policyViolationsWarn", "policyViolationsInfo",
        "policyViolationsTotal", "inheritedRiskScore", "firstOccurrence", "lastOccurrence",
    )  # fmt: skip
    return Metrics(
        FindingCounts(**counts, total=total),
        parse_time(obj.get("lastOccurrence")),
        {k: obj[k] for k in keep if k in obj},
    )


def build_violations(
    base_url: str, project_uuid: str, *, page: int = 1, page_size: int = PAGE_SIZE
) -> Request:
    """`GET /api/v1/violation/project/{uuid}?pageNumber=&pageSize=` (suppressed violations are
    left out unless `suppressed=true` is asked for, which scanhub does not)."""
    uuid = _seg(project_uuid, "policy violations", "project uuid")
    return Request(
        "GET",
        _api(base_url, f"violation/project/{uuid}"),
        "policy violations",
        params=(("pageNumber", str(page)), ("pageSize", str(page_size))),
    )


def parse_violations(
    resp: Response, *, source: str, page: int = 1, page_size: int = PAGE_SIZE
) -> ViolationPage:
    """A page of `PolicyViolation`s: the verdict of each is its
    `policyCondition.policy.violationState`; `X-Total-Count` is the total."""
    at = where(VENDOR, source, resp)
    items = as_list(_json_ok(resp, at), at, "the policy violations", resp)
    out = []
    for entry in items:
        obj = as_object(entry, at, "a policy violation", resp)
        condition = obj.get("policyCondition")
        policy = condition.get("policy") if isinstance(condition, dict) else None
        policy = policy if isinstance(policy, dict) else {}
        state = opt_str(policy, "violationState") or ""
        component = obj.get("component")
        analysis = obj.get("analysis")
        out.append(
            Violation(
                state=state,
                verdict=map_verdict(VIOLATION_STATE_MAP, state, VENDOR) if state else Verdict.NONE,
                policy=opt_str(policy, "name"),
                component=opt_str(component, "name") if isinstance(component, dict) else None,
                type=opt_str(obj, "type"),
                suppressed=isinstance(analysis, dict) and analysis.get("isSuppressed") is True,
            )
        )
    total_text = resp.headers.get("x-total-count")
    total = opt_int({"t": total_text}, "t") if total_text is not None else None
    return ViolationPage(
        tuple(out), total if total is None or total >= 0 else None, page, page_size
    )


def judge_violations(pages: Iterable[ViolationPage]) -> Verdicts:
    """The worst verdict over the unsuppressed violations read (none read: `pass`)."""
    counts: dict[str, int] = {}
    verdicts = []
    read, total, complete = 0, None, True
    for page in pages:
        total = page.total if page.total is not None else total
        for v in page.violations:
            if v.suppressed:
                continue
            read += 1
            counts[v.state or "?"] = counts.get(v.state or "?", 0) + 1
            verdicts.append(v.verdict)
        complete = not page.more()
    if not verdicts:
        return Verdicts(Verdict.PASS, counts, read, total, complete)
    return Verdicts(Verdict.worst(verdicts), counts, read, total, complete)


def with_results(scan: Scan, verdicts: Verdicts, metrics: Metrics | None) -> Scan:
    """A succeeded scan with its verdict (from the violations) and findings (from the metrics)."""
    findings = metrics.findings if metrics is not None else scan.findings
    parts = [verdicts.summary()]
    if findings is not None:
        parts.append(
            f"{findings.total} vulnerabilities (critical {findings.critical}, high "
            f"{findings.high}, medium {findings.medium}, low {findings.low})"
        )
    elif metrics is None:
        parts.append("no metrics yet")
    if scan.message:
        parts.append(scan.message)
    raw = {**(scan.raw if isinstance(scan.raw, dict) else {})}
    raw["violations"] = {"counts": dict(verdicts.counts), "total": verdicts.total}
    if metrics is not None:
        raw["metrics"] = metrics.raw
    return attrs.evolve(
        scan, verdict=verdicts.verdict, findings=findings, message="; ".join(parts), raw=raw
    )


# --- Errors ------------------------------------------------------------------------------------


def _json_ok(resp: Response, at: Where) -> Any:
    """The JSON of a 2xx answer, or the right error for any other."""
    if not 200 <= resp.status < 300:
        raise_for_status(resp, at, error_text(resp, at.operation))
    return decode_json(resp, at)


def error_text(resp: Response, operation: str) -> str | None:
    """What an error answer says. Dependency-Track answers with plain text ("The project could
    not be found."), an RFC 9457 problem (`title`, `detail`, `errors`: an invalid BOM, a denied
    project), Jersey validation errors (`[{"message", "path", ...}]`), or nothing at all
    (Alpine's 401 and 403); for those the status says it, with the permission the operation
    needs."""
    text = resp.text.strip()
    said: str | None = None
    if text:
        said = _read_error_body(text)
    status = resp.status
    if status == 401:
        default = "the API key was refused (X-Api-Key missing, wrong or revoked)"
        return f"{said} ({default})" if said else default
    if status == 403 and not said:
        need = PERMISSIONS.get(operation, "a permission this call needs")
        return f"forbidden: the API key lacks {need}, or the project's access control denies it"
    return said


def _read_error_body(text: str) -> str:
    head = text[:15].lower()
    if head.startswith(("<!doctype", "<html")):
        return "an HTML page (a proxy or login page?)"
    try:
        body = loads(text.encode())
    except (ValueError, RecursionError):
        return _short(text, 300)
    if isinstance(body, dict):
        parts = [opt_str(body, "title"), opt_str(body, "detail") or opt_str(body, "message")]
        said = ": ".join(p for p in parts if p)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            shown = "; ".join(_short(e, 120) for e in errors[:3] if isinstance(e, str))
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            said = f"{said}: {shown}{more}" if said else shown + more
        return said or _short(text, 300)
    if isinstance(body, list):
        messages = [
            f"{opt_str(e, 'path') or '?'}: {opt_str(e, 'message')}"
            if isinstance(e, dict) and opt_str(e, "message")
            else _short(e, 120)
            for e in body[:3]
        ]
        return "; ".join(messages) or _short(text, 300)
    return _short(text, 300)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else "never"
