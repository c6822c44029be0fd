"""The module-level tables of SonarQube, Dependency-Track and GitHub code scanning, value by
value, against the vendor sources their modules cite.

As in tests/test_mapping_tables.py (the first four vendors), every expected value below is
written out from the source, with the file and line it comes from, never copied from the code:
a change to a table must be a change to what a source says. mutmut mutates code inside
functions only, so module-level tables are checked here rather than by mutation testing.

Sources read (paths as in the repositories):

- SonarSource/sonarqube: `sonar-ws/src/main/protobuf/ws-ce.proto` (`enum TaskStatus`),
  `sonar-ws/src/main/protobuf/ws-qualitygates.proto` (`ProjectStatusResponse.Status`,
  `.Comparator`), `server/sonar-server-common/.../qualitygate/Condition.java` (`enum Operator`),
  `.../qualitygate/EvaluatedCondition.java` (`enum EvaluationStatus`),
  `server/sonar-webserver-webapi/.../ce/ws/ActivityAction.java` (`status` possible values,
  `createPageSize(100, MAX_PAGE_SIZE)`, `MAX_PAGE_SIZE = 1000`), `sonar-db-dao/.../ce/
  CeActivityDto.java` and `CeQueueDto.java` (their `enum Status`),
  `server/sonar-server-common/.../webhook/WebhookCallerImpl.java` (the two headers).
- DependencyTrack/dependency-track tag 4.14.3: `model/Policy.java` (`enum ViolationState`),
  `resources/v1/BomResource.java` (PUT: "The maximum allowed length of the bom value is
  20'000'000 characters"; `@PermissionRequired`), `resources/v1/vo/BomSubmitRequest.java`
  (the UUID `@Pattern`), `resources/v1/EventResource.java` (no `@PermissionRequired` on
  `/token/{uuid}`), `ProjectResource.java`, `MetricsResource.java`,
  `PolicyViolationResource.java` (their `@PermissionRequired`); stevespringett/Alpine
  `alpine-server/.../filters/ApiFilter.java` (`new Pagination(Pagination.Strategy.OFFSET, 0,
  100); // Always paginate queries from resources`).
- DependencyTrack/hyades-apiserver: `model/WorkflowStep.java`, `model/WorkflowStatus.java`
  (`PENDING(false), TIMED_OUT(false), COMPLETED(true), FAILED(true), CANCELLED(true),
  NOT_APPLICABLE(true)`: the flag is `isTerminal`), `persistence/WorkflowStateQueryManager.java`
  (`createWorkflowSteps`), `resources/v1/WorkflowResource.java` (`@PermissionRequired(BOM_UPLOAD)`).
- GitHub: rest-api-description, schema `code-scanning-sarifs-status` ("`pending` files have not
  yet been processed, while `complete` means results from the SARIF have been stored. `failed`
  files have either not been processed at all, or could only be partially processed.");
  github/codeql-action `src/upload-lib.ts` (`waitForProcessing`: pending polls again, complete
  ends, failed throws "Code Scanning could not process the submitted SARIF file"); octokit
  plugin-throttling.js `src/index.ts` (`/\\bsecondary rate\\b/i`, a 60-second fallback, "Add one
  second so we retry _after_ the reset time"); github/docs rate-limits-for-the-rest-api.md
  ("wait for at least one minute before retrying").
"""

from __future__ import annotations

import re

from scanhub import Lifecycle, Verdict
from scanhub.vendors.dependencytrack import sansio as dt
from scanhub.vendors.github import sansio as gh
from scanhub.vendors.sonarqube import sansio as sq

L, V = Lifecycle, Verdict


# --- SonarQube ----------------------------------------------------------------------------------


def test_sonarqube_task_status() -> None:
    # ws-ce.proto: enum TaskStatus { PENDING = 0; IN_PROGRESS = 1; SUCCESS = 2; FAILED = 3;
    # CANCELED = 4; } -- all five, and only these.
    assert dict(sq.STATUS_MAP) == {
        "PENDING": L.QUEUED,  # in the queue, no worker has it yet
        "IN_PROGRESS": L.RUNNING,  # a worker has it
        "SUCCESS": L.SUCCEEDED,
        "FAILED": L.FAILED,
        "CANCELED": L.CANCELLED,  # SonarQube spells it with one L
    }


def test_sonarqube_quality_gate_status() -> None:
    # ws-qualitygates.proto ProjectStatusResponse: enum Status { OK = 1; WARN = 2; ERROR = 3;
    # NONE = 4; }
    assert dict(sq.QUALITY_GATE_MAP) == {
        "OK": V.PASS,
        "WARN": V.WARN,  # warning thresholds only: does not block
        "ERROR": V.FAIL,
        "NONE": V.NONE,  # no quality gate associated with the analysis
    }


def test_sonarqube_condition_statuses_and_comparators() -> None:
    # EvaluatedCondition.EvaluationStatus { NO_VALUE, OK, WARN, ERROR }: the conditions worth
    # naming are those that reached a threshold.
    assert set(sq.FAILING_CONDITIONS) == {"WARN", "ERROR"}
    # ws-qualitygates.proto enum Comparator { GT = 1; LT = 2; EQ = 3; NE = 4; } (project_status)
    # and Condition.Operator { EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN } (webhooks).
    assert dict(sq.COMPARATORS) == {
        "GT": ">",
        "LT": "<",
        "EQ": "=",
        "NE": "!=",
        "GREATER_THAN": ">",
        "LESS_THAN": "<",
        "EQUALS": "=",
        "NOT_EQUALS": "!=",
    }


def test_sonarqube_activity_parameters_and_webhook_headers() -> None:
    # ActivityAction: status possible values = CeActivityDto.Status (SUCCESS, FAILED, CANCELED)
    # then CeQueueDto.Status (PENDING, IN_PROGRESS); scanhub asks for all of them.
    assert set(sq.ACTIVITY_STATUSES) == {"SUCCESS", "FAILED", "CANCELED", "PENDING", "IN_PROGRESS"}
    assert len(sq.ACTIVITY_STATUSES) == 5
    # ActivityAction: action.createPageSize(100, MAX_PAGE_SIZE); MAX_PAGE_SIZE = 1000.
    assert (sq.DEFAULT_PAGE_SIZE, sq.MAX_PAGE_SIZE) == (100, 1000)
    # WebhookCallerImpl: PROJECT_KEY_HEADER = "X-SonarQube-Project";
    # request.header("X-Sonar-Webhook-HMAC-SHA256", signature). Looked up lower-case.
    assert (sq.PROJECT_HEADER, sq.SIGNATURE_HEADER) == (
        "x-sonarqube-project",
        "x-sonar-webhook-hmac-sha256",
    )


# --- Dependency-Track ---------------------------------------------------------------------------


def test_dependencytrack_workflow_steps_in_the_servers_order() -> None:
    # hyades-apiserver model/WorkflowStep.java, in declaration order.
    assert dt.STEPS == (
        "BOM_CONSUMPTION",
        "BOM_PROCESSING",
        "VULN_ANALYSIS",
        "REPO_META_ANALYSIS",
        "POLICY_EVALUATION",
        "METRICS_UPDATE",
    )
    # WorkflowStateQueryManager.createWorkflowSteps: BOM_CONSUMPTION is the parent of
    # BOM_PROCESSING, ... and METRICS_UPDATE, made last, is the parent of none.
    assert dt.LAST_STEP == "METRICS_UPDATE"


def test_dependencytrack_status_map() -> None:
    # hyades-apiserver WorkflowStatus: PENDING(false), TIMED_OUT(false), COMPLETED(true),
    # FAILED(true), CANCELLED(true), NOT_APPLICABLE(true); v4: IsTokenBeingProcessedResponse's
    # `processing` boolean.
    assert dict(dt.STATUS_MAP) == {
        "PENDING": L.RUNNING,
        "TIMED_OUT": L.RUNNING,  # not terminal: failed only after another step timeout
        "COMPLETED": L.SUCCEEDED,
        "FAILED": L.FAILED,
        "CANCELLED": L.CANCELLED,  # a parent step failed
        "NOT_APPLICABLE": L.SUCCEEDED,  # skipped, nothing to do
        "processing=true": L.RUNNING,
        "processing=false": L.SUCCEEDED,  # with the project's evidence (judge_v4)
    }
    # The server's own isTerminal flag agrees with the lifecycle's, status by status.
    terminal = {
        "PENDING": False,
        "TIMED_OUT": False,
        "COMPLETED": True,
        "FAILED": True,
        "CANCELLED": True,
        "NOT_APPLICABLE": True,
    }
    assert {s: dt.STATUS_MAP[s].is_terminal for s in terminal} == terminal


def test_dependencytrack_violation_states() -> None:
    # model/Policy.java: public enum ViolationState { INFO, WARN, FAIL }
    assert dict(dt.VIOLATION_STATE_MAP) == {"FAIL": V.FAIL, "WARN": V.WARN, "INFO": V.PASS}


def test_dependencytrack_permissions_named_in_a_bare_403() -> None:
    # The @PermissionRequired of each resource method scanhub calls (4.14.3; the workflow
    # status from hyades-apiserver); EventResource /token/{uuid} requires none beyond an API key.
    required = {
        "upload bom": "BOM_UPLOAD",  # BomResource PUT /v1/bom
        "workflow status": "BOM_UPLOAD",  # WorkflowResource /token/{uuid}/status
        "token status": None,  # EventResource /token/{uuid}
        "project": "VIEW_PORTFOLIO",  # ProjectResource /{uuid}
        "project lookup": "VIEW_PORTFOLIO",  # ProjectResource /lookup
        "project metrics": "VIEW_PORTFOLIO",  # MetricsResource /project/{uuid}/current
        "policy violations": "VIEW_POLICY_VIOLATION",  # PolicyViolationResource /project/{uuid}
    }
    assert set(dt.PERMISSIONS) == set(required)
    for operation, permission in required.items():
        text = dt.PERMISSIONS[operation]
        if permission is None:
            assert text == "an API key of any team"
        else:
            assert text.split(" ")[0] == permission, operation
    # BomResource: autoCreate "will additionally need the PORTFOLIO_MANAGEMENT or
    # PROJECT_CREATION_UPLOAD permission".
    assert "PORTFOLIO_MANAGEMENT" in dt.PERMISSIONS["upload bom"]
    assert "PROJECT_CREATION_UPLOAD" in dt.PERMISSIONS["upload bom"]


def test_dependencytrack_limits_and_patterns() -> None:
    # BomResource PUT: "The maximum allowed length of the bom value is 20'000'000 characters."
    assert dt.MAX_PUT_BOM_CHARS == 20_000_000
    # Alpine ApiFilter: new Pagination(Pagination.Strategy.OFFSET, 0, 100).
    assert dt.PAGE_SIZE == 100
    # BomSubmitRequest: @Pattern(regexp = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-
    # [0-9a-f]{12}$") on project and parentUUID (fullmatch stands for the anchors).
    assert dt._UUID.pattern == "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    # Dependency-Track 4.x follows a token by its processing flag, Hyades 5.x by its workflow.
    assert dt.API_VERSIONS == ("v4", "v5")


# --- GitHub code scanning -----------------------------------------------------------------------


def test_github_processing_status() -> None:
    # code-scanning-sarifs-status.processing_status: pending, complete, failed (upload-lib.ts
    # waitForProcessing: pending polls again; complete and failed end the wait).
    assert dict(gh.STATUS_MAP) == {
        "pending": L.RUNNING,
        "complete": L.SUCCEEDED,
        "failed": L.FAILED,
    }
    # upload-lib.ts: `Code Scanning could not process the submitted SARIF file:\n${errors}`.
    assert gh.FAILED_TEXT == "Code Scanning could not process the submitted SARIF file"


def test_github_rate_limit_constants() -> None:
    # plugin-throttling.js: /\bsecondary rate\b/i tells a secondary limit from other 403s.
    assert gh._SECONDARY.pattern == r"\bsecondary rate\b"
    assert gh._SECONDARY.flags & re.IGNORECASE
    # docs: "wait for at least one minute before retrying"; plugin-throttling's fallback is 60 s.
    assert gh.SECONDARY_WAIT == 60.0
    # plugin-throttling.js: "Add one second so we retry _after_ the reset time".
    assert gh.RESET_MARGIN == 1.0


def test_github_api_versions_and_root() -> None:
    # rest-api-description descriptions/api.github.com/api.github.com.<version>.json: the two
    # calendar versions scanhub follows; the first is the default GitHub answers without one.
    assert gh.API_VERSIONS == ("2022-11-28", "2026-03-10")
    assert gh.DEFAULT_API_VERSION == "2022-11-28"
    assert gh.DOTCOM_API == "https://api.github.com"
