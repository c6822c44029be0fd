"""SonarQube (and SonarCloud): Compute Engine tasks and their quality gate, as pure functions.

A scanner uploads its report (`api/ce/submit`) and leaves `report-task.txt` behind; the server's
Compute Engine processes the report as a background task, which scanhub follows as a `Scan`:
`GET api/ce/task?id=` for the task, and once it has SUCCEEDED with an `analysisId`,
`GET api/qualitygates/project_status?analysisId=` for the verdict.

Sources (SonarSource/sonarqube unless named):

- `sonar-ws/src/main/protobuf/ws-ce.proto`: `Task` (id, type, componentKey, analysisId, status,
  submittedAt, startedAt, executedAt, errorMessage, ...) and `TaskStatus` (PENDING, IN_PROGRESS,
  SUCCESS, FAILED, CANCELED); `ActivityResponse` (tasks and `paging`).
- `server/sonar-webserver-webapi/.../ce/ws/TaskAction.java` (`id`; 404 "No activity found for
  task '%s'"), `TaskFormatter.java` (which fields a queued and a finished task carry),
  `ActivityAction.java` (`component`, `status` default SUCCESS,FAILED,CANCELED, `type`, `p` since
  9.4, `ps` default 100 max 1000, `paging` {pageIndex, pageSize, total}, 400 "Can return only
  the first %s results. %sth result asked."), and their `task-example.json` /
  `activity-example.json`.
- `sonar-ws/src/main/protobuf/ws-qualitygates.proto` (`ProjectStatus`, `Status` OK / WARN /
  ERROR / NONE, `Condition`, `Comparator` GT / LT / EQ / NE) and
  `.../qualitygate/ws/ProjectStatusAction.java` (NONE: "no quality gate associated with the
  analysis"; 404 "Analysis with id '%s' is not found") with `project_status-example.json`.
- `server/sonar-webserver-ws/.../ws/WebServiceEngine.java`: every error is
  `{"errors":[{"msg": ...}]}`; `.../authentication/UserSessionInitializer.java`: a refused
  credential on `/api/` is a bare 401 with no body.
- `server/sonar-server-common/.../webhook/WebhookCallerImpl.java` (`X-SonarQube-Project`;
  `X-Sonar-Webhook-HMAC-SHA256`, the hex HMAC-SHA256 of the body with the webhook's secret),
  `WebhookPayloadFactoryImpl.java` (the payload), `CeTask.java` (a webhook's `status` is SUCCESS
  or FAILED), and `.../qualitygate/EvaluatedCondition.java` (condition status NO_VALUE, OK,
  WARN, ERROR).
- `sonar-scanner-engine/.../report/ReportPublisher.java`: `report-task.txt` (organization,
  projectKey, serverUrl, serverVersion, branch, dashboardUrl, ceTaskId, ceTaskUrl).
- SonarSource/sonarqube-quality-gate-action `script/check-quality-gate.sh`: reads `ceTaskUrl`
  from report-task.txt, polls until the status is neither PENDING nor IN_PROGRESS, then reads
  `project_status?analysisId=`.
- docs.sonarsource.com, "Web API" (10.0+: `Authorization: Bearer <token>`; before: the token as
  the Basic user name with an empty password) and "Webhooks".

`base_url` is the server root (`https://sonar.example.com`, `https://sonarcloud.io`); every path
below is joined onto it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

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
    map_value,
    map_verdict,
    opt_int,
    opt_str,
    parse_time,
    raise_for_status,
    req_str,
    where,
)
from scanhub.vendors import (
    BadRequestError,
    ConfigError,
    Lifecycle,
    PayloadError,
    Scan,
    Verdict,
)

VENDOR = "sonarqube"

#: Compute Engine task status -> Lifecycle: the `TaskStatus` enum of ws-ce.proto, all five.
STATUS_MAP: Mapping[str, Lifecycle] = {
    # ws-ce.proto TaskStatus; TaskFormatter.formatQueue: in the queue, no worker yet.
    "PENDING": Lifecycle.QUEUED,
    # ws-ce.proto TaskStatus; TaskFormatter.formatQueue: a worker has it (startedAt is set).
    "IN_PROGRESS": Lifecycle.RUNNING,
    # ws-ce.proto TaskStatus; TaskFormatter.formatActivity: processed, analysisId set (REPORT).
    "SUCCESS": Lifecycle.SUCCEEDED,
    # ws-ce.proto TaskStatus; TaskFormatter.formatActivity: errorMessage / errorType say why.
    "FAILED": Lifecycle.FAILED,
    # ws-ce.proto TaskStatus; ce/ws/CancelAction.java: only a pending task can be canceled.
    "CANCELED": Lifecycle.CANCELLED,
}

#: Quality gate status -> Verdict: the `ProjectStatusResponse.Status` enum of
#: ws-qualitygates.proto (project_status) and the webhook's `qualityGate.status`.
QUALITY_GATE_MAP: Mapping[str, Verdict] = {
    # ws-qualitygates.proto Status; the gate passed.
    "OK": Verdict.PASS,
    # ws-qualitygates.proto Status; only warning thresholds reached (deprecated since 7.6,
    # ProjectStatusAction changelog); does not block.
    "WARN": Verdict.WARN,
    # ws-qualitygates.proto Status; an error threshold reached: the gate failed.
    "ERROR": Verdict.FAIL,
    # ws-qualitygates.proto Status; ProjectStatusAction: "returned when there is no quality
    # gate associated with the analysis".
    "NONE": Verdict.NONE,
}

#: Condition statuses that make a condition worth naming: WARN and ERROR (project_status's
#: Condition.status and the webhook's EvaluatedCondition.EvaluationStatus; OK, NONE and
#: NO_VALUE conditions did not fail).
FAILING_CONDITIONS = ("ERROR", "WARN")

#: Condition comparators as a symbol: ws-qualitygates.proto `Comparator` (project_status) and
#: qualitygate/Condition.java `Operator` (webhooks). The condition fails when `actual OP
#: threshold` holds.
COMPARATORS: Mapping[str, str] = {
    "GT": ">",
    "LT": "<",
    "EQ": "=",
    "NE": "!=",
    "GREATER_THAN": ">",
    "LESS_THAN": "<",
    "EQUALS": "=",
    "NOT_EQUALS": "!=",
}

#: The values `api/ce/activity` accepts in `status` (ActivityAction: CeActivityDto.Status then
#: CeQueueDto.Status), and what discovery asks for by default: all of them, since the server's
#: own default leaves out the tasks still in the queue, which are the ones worth following.
ACTIVITY_STATUSES = ("SUCCESS", "FAILED", "CANCELED", "PENDING", "IN_PROGRESS")
#: `ps` of `api/ce/activity`: default 100, at most 1000 (ActivityAction.MAX_PAGE_SIZE).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: The webhook signature and project headers (WebhookCallerImpl), looked up lower-case.
SIGNATURE_HEADER = "x-sonar-webhook-hmac-sha256"
PROJECT_HEADER = "x-sonarqube-project"
#: How the token is sent: `bearer` (SonarQube 10.0+ and SonarCloud) or `basic` (the token as
#: the Basic user name with an empty password, which every version accepts).
AUTH_MODES = ("bearer", "basic")
#: At most this many failing conditions are spelled out in a message.
MAX_CONDITIONS_IN_MESSAGE = 8

_LIFECYCLE_TO_STATUS = {lc.value: raw for raw, lc in STATUS_MAP.items()}


def auth_headers(token: str, mode: str = "bearer") -> dict[str, str]:
    """`Authorization: Bearer <token>`, or Basic with the token as user name and an empty
    password (`token:`), the form servers before 10.0 need."""
    if mode == "basic":
        pair = base64.b64encode(f"{token}:".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    if mode != "bearer":
        fail(
            BadRequestError,
            Where(VENDOR, "", "configure"),
            f"auth must be one of {', '.join(AUTH_MODES)}, got {mode!r}",
        )
    return {"Authorization": f"Bearer {token}"}


# --- The quality gate ------------------------------------------------------------------------


@frozen
class Condition:
    """One quality gate condition as the server evaluated it."""

    metric: str
    status: str
    comparator: str | None = None
    actual: str | None = None
    error_threshold: str | None = None
    warning_threshold: str | None = None

    @property
    def failing(self) -> bool:
        """True for a condition that failed (ERROR) or warned (WARN)."""
        return self.status in FAILING_CONDITIONS

    def describe(self) -> str:
        """`new_coverage 62.5 < 80 (ERROR)`: the value, how it compares with the threshold it
        crossed, and the condition's status."""
        op = COMPARATORS.get(self.comparator or "", self.comparator or "?")
        threshold = self.error_threshold if self.status == "ERROR" else None
        threshold = threshold or self.warning_threshold or self.error_threshold
        actual = self.actual if self.actual is not None else "(no value)"
        if threshold is None:
            return f"{self.metric} {actual} ({self.status})"
        return f"{self.metric} {actual} {op} {threshold} ({self.status})"


@frozen
class QualityGate:
    """The quality gate of one analysis: its status as sent, the verdict, its conditions."""

    status: str
    verdict: Verdict
    conditions: tuple[Condition, ...] = ()
    raw: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def failing(self) -> tuple[Condition, ...]:
        """The conditions that failed or warned, in the server's order."""
        return tuple(c for c in self.conditions if c.failing)

    def summary(self) -> str | None:
        """The message a Scan carries for this gate: `quality gate ERROR: new_coverage 62.5 < 80
        (ERROR); ...` when conditions failed or warned; None when none did."""
        failing = self.failing
        if not failing:
            return None
        shown = [c.describe() for c in failing[:MAX_CONDITIONS_IN_MESSAGE]]
        more = len(failing) - len(shown)
        text = f"quality gate {self.status}: {'; '.join(shown)}"
        return f"{text}; and {more} more" if more > 0 else text


def build_quality_gate(base_url: str, analysis_id: str) -> Request:
    """GET api/qualitygates/project_status?analysisId= (the gate as computed for that
    analysis, not the project's live status)."""
    if not analysis_id or not analysis_id.strip():
        fail(BadRequestError, Where(VENDOR, "", "quality gate"), "analysis id is empty")
    return Request(
        "GET",
        join_url(base_url, "api/qualitygates/project_status"),
        "quality gate",
        params=(("analysisId", analysis_id),),
        headers={"Accept": "application/json"},
    )


def parse_quality_gate(resp: Response, *, source: str) -> QualityGate:
    """`{"projectStatus": {"status", "conditions": [...], ...}}` as a `QualityGate`. A status
    that is missing or not documented is verdict `none` (kept raw, warned once)."""
    at = where(VENDOR, source, resp)
    check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    status_obj = as_object(body.get("projectStatus"), at, "`projectStatus`", resp)
    return quality_gate_from(status_obj, webhook=False)


def quality_gate_from(obj: Mapping[str, Any], *, webhook: bool) -> QualityGate:
    """A `QualityGate` from project_status's `projectStatus` or a webhook's `qualityGate`
    (whose conditions say `metric` / `operator` / `value` instead of `metricKey` /
    `comparator` / `actualValue`)."""
    raw_status = opt_str(obj, "status") or ""
    verdict = map_verdict(QUALITY_GATE_MAP, raw_status or None, VENDOR)
    conditions = []
    items = obj.get("conditions")
    for c in items if isinstance(items, list) else ():
        if not isinstance(c, dict):
            continue
        metric = opt_str(c, "metric", "metricKey") if webhook else opt_str(c, "metricKey")
        conditions.append(
            Condition(
                metric=metric or "?",
                status=opt_str(c, "status") or "",
                comparator=opt_str(c, "operator") if webhook else opt_str(c, "comparator"),
                actual=opt_str(c, "value") if webhook else opt_str(c, "actualValue"),
                error_threshold=opt_str(c, "errorThreshold"),
                warning_threshold=opt_str(c, "warningThreshold"),
            )
        )
    return QualityGate(raw_status, verdict, tuple(conditions), raw=dict(obj))


# --- One task --------------------------------------------------------------------------------


def build_task(base_url: str, task_id: str) -> Request:
    """GET api/ce/task?id= (TaskAction: the task in the queue, else in the activity)."""
    if not task_id or not task_id.strip():
        fail(BadRequestError, Where(VENDOR, "", "get task"), "task id is empty")
    return Request(
        "GET",
        join_url(base_url, "api/ce/task"),
        "get task",
        params=(("id", task_id),),
        headers={"Accept": "application/json"},
    )


def parse_task(resp: Response, *, source: str, base_url: str, previous: Scan | None = None) -> Scan:
    """`{"task": {...}}` as a Scan (without its verdict: a SUCCESS task with an `analysisId`
    needs `with_quality_gate`). When refreshing (`previous` given) the item keeps its project
    key, so its key never changes (a project renamed since keeps its items); but the first
    answer for a track of `task_id` + `project_key` (a placeholder, never answered) that names
    another project is that track's `ConfigError`: its gate is not the tracked project's."""
    at = where(VENDOR, source, resp)
    check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    task = as_object(body.get("task"), at, "`task`", resp)
    scan = scan_from_task(task, at, resp, base_url)
    if previous is not None:
        if scan.id != previous.id:
            fail(
                PayloadError,
                at,
                f"asked for task {previous.id!r}, the server answered task {scan.id!r}",
                resp,
            )
        if previous.application_id and scan.application_id != previous.application_id:
            if scan.application_id and not previous.vendor_status:  # never answered before
                fail(
                    ConfigError,
                    at,
                    f"task {scan.id!r} is project {scan.application_id!r}'s, not the tracked"
                    f" {previous.application_id!r}: check the track's project_key",
                    resp,
                )
            scan = attrs.evolve(scan, application_id=previous.application_id)
    return scan


def scan_from_task(task: Mapping[str, Any], at: Where, resp: Response, base_url: str) -> Scan:
    """One `Task` of ws-ce.proto (from ce/task or ce/activity) as a Scan."""
    task_id = req_str(task, at, "id", resp=resp)
    raw_status = opt_str(task, "status")
    lifecycle = map_value(STATUS_MAP, raw_status, VENDOR)
    project = opt_str(task, "componentKey") or ""
    submitted = parse_time(task.get("submittedAt"))
    started = parse_time(task.get("startedAt"))
    executed = parse_time(task.get("executedAt"))
    message = None
    if lifecycle is not Lifecycle.SUCCEEDED:
        message = opt_str(task, "errorMessage")
    return Scan(
        vendor=VENDOR,
        source=at.source,
        id=task_id,
        application_id=project,
        lifecycle=lifecycle,
        vendor_status=raw_status or "",
        verdict=Verdict.NONE,
        message=message,
        links=_links(base_url, project, opt_str(task, "branch"), opt_str(task, "pullRequest")),
        created_at=submitted,
        started_at=started,
        finished_at=executed if lifecycle.is_terminal else None,
        updated_at=executed or started or submitted,
        scan_type=opt_str(task, "type", "taskType"),
        triggered_by=opt_str(task, "submitterLogin"),
        final_scan_id=opt_str(task, "analysisId"),
        raw={"task": dict(task)},
    )


def needs_quality_gate(scan: Scan) -> bool:
    """True for a task that SUCCEEDED with an analysis: its verdict is that analysis's gate.
    (A task of another type, or one without an analysis, has no gate: verdict `none`.)"""
    return scan.lifecycle is Lifecycle.SUCCEEDED and bool(scan.final_scan_id)


def with_quality_gate(scan: Scan, gate: QualityGate) -> Scan:
    """The task with its analysis's quality gate: the verdict, the failing conditions in
    `message`, and the gate itself in `raw["projectStatus"]`."""
    raw = dict(scan.raw) if isinstance(scan.raw, dict) else {}
    raw["projectStatus"] = gate.raw
    return attrs.evolve(scan, verdict=gate.verdict, message=gate.summary(), raw=raw)


def without_quality_gate(scan: Scan, reason: str) -> Scan:
    """The task when its analysis's gate cannot be read any more (404: the analysis was
    purged): succeeded, verdict `none`, and `message` says why."""
    return attrs.evolve(scan, verdict=Verdict.NONE, message=f"quality gate not available: {reason}")


def _links(
    base_url: str, project: str, branch: str | None, pull_request: str | None
) -> dict[str, str]:
    if not project or not base_url:
        return {}
    return {"dashboard": _dashboard(base_url, project, branch, pull_request)}


@functools.lru_cache(maxsize=4096)
def _dashboard(base_url: str, project: str, branch: str | None, pull_request: str | None) -> str:
    """A project's (branch's, pull request's) dashboard URL, remembered: every poll of a task
    links the same few (a string: nothing a caller could change)."""
    url = join_url(base_url, f"dashboard?id={quote(project, safe='')}")
    if pull_request:
        url += f"&pullRequest={quote(pull_request, safe='')}"
    elif branch:
        url += f"&branch={quote(branch, safe='')}"
    return url


# --- A project's tasks (discovery) -----------------------------------------------------------


def statuses_param(status: str | None, *, source: str = VENDOR) -> str:
    """The `status` parameter of ce/activity from a comma-separated list of the vendor's
    statuses or the canonical lifecycle names (`queued` = PENDING, ...); None: every status.
    An unknown value is refused before sending."""
    if status is None:
        return ",".join(ACTIVITY_STATUSES)
    out: list[str] = []
    for part in status.split(","):
        word = part.strip()
        if not word:
            continue
        raw = word.upper() if word.upper() in STATUS_MAP else _LIFECYCLE_TO_STATUS.get(word)
        if raw is None:
            fail(
                BadRequestError,
                Where(VENDOR, source, "list tasks"),
                f"status {word!r} is not one of {', '.join(ACTIVITY_STATUSES)} (or queued, "
                "running, succeeded, failed, cancelled)",
            )
        if raw not in out:
            out.append(raw)
    return ",".join(out) if out else ",".join(ACTIVITY_STATUSES)


def build_activity(
    base_url: str,
    project_key: str,
    *,
    statuses: str = ",".join(ACTIVITY_STATUSES),
    task_type: str | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Request:
    """GET api/ce/activity?component=&status=&type=&p=&ps= (the project's tasks, those in the
    queue first, then the finished ones, newest first)."""
    at = Where(VENDOR, "", "list tasks")
    if not project_key or not project_key.strip():
        fail(BadRequestError, at, "project key is empty")
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        fail(BadRequestError, at, f"page must be >= 1 and page size 1..{MAX_PAGE_SIZE}")
    params = [("component", project_key), ("status", statuses)]
    if task_type:
        params.append(("type", task_type))
    params += [("p", str(page)), ("ps", str(page_size))]
    return Request(
        "GET",
        join_url(base_url, "api/ce/activity"),
        "list tasks",
        params=tuple(params),
        headers={"Accept": "application/json"},
    )


@frozen
class ActivityPage:
    """One page of ce/activity and the paging the server sent (`paging` is absent on servers
    before 9.4, which have no `p` parameter: one page only)."""

    scans: list[Scan]
    page: int
    page_index: int | None
    page_size: int | None
    total: int | None

    def more(self, asked_size: int) -> bool:
        """True when another page is worth asking for: the server pages (9.4+), this page was
        full, and `total` says more remain."""
        if self.page_index is None or self.total is None or not self.scans:
            return False
        size = self.page_size or asked_size
        return len(self.scans) >= size and self.page * size < self.total


def parse_activity(resp: Response, *, source: str, base_url: str, page: int = 1) -> ActivityPage:
    """`{"tasks": [...], "paging": {"pageIndex", "pageSize", "total"}}`."""
    at = where(VENDOR, source, resp)
    check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    tasks = as_list(body.get("tasks", []), at, "`tasks`", resp)
    scans = [scan_from_task(as_object(t, at, "a task", resp), at, resp, base_url) for t in tasks]
    paging = body.get("paging")
    paging = paging if isinstance(paging, dict) else {}
    return ActivityPage(
        scans=scans,
        page=page,
        page_index=opt_int(paging, "pageIndex"),
        page_size=opt_int(paging, "pageSize"),
        total=opt_int(paging, "total"),
    )


# --- report-task.txt -------------------------------------------------------------------------


@frozen
class ReportTask:
    """What a scanner leaves in `report-task.txt` (`.scannerwork/`, `target/sonar/`,
    `build/sonar/`, `.sonarqube/out/.sonar/`) after uploading its report."""

    ce_task_id: str
    project_key: str | None = None
    server_url: str | None = None
    ce_task_url: str | None = None
    dashboard_url: str | None = None
    organization: str | None = None
    branch: str | None = None
    server_version: str | None = None
    properties: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)


def parse_properties(text: str) -> dict[str, str]:
    """A Java properties file (`java.util.Properties.load`): `key=value`, `key: value` or
    `key value`; `#` / `!` comments; backslash escapes (`\\:`, `\\=`, `\\t`, `\\uXXXX`) and
    line continuations. A line ends at `\\n`, `\\r` or `\\r\\n` only (not at the other
    characters `str.splitlines` breaks on, such as U+2028 or U+0085: those belong to the
    value). ReportPublisher writes plain `key=value` lines, which this reads as they are.
    Escaped UTF-16 surrogate pairs (`\\uD83D\\uDE00`, as `Properties.store` writes a
    character beyond U+FFFF) are one character; see `_unescape` for a lone surrogate."""
    props: dict[str, str] = {}
    lines = _LINE_END.split(text)
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        # A line ending in an odd number of backslashes continues on the next one.
        while _continues(line) and i < len(lines):
            line = line[:-1] + lines[i].lstrip(" \t\f")
            i += 1
        if _continues(line):
            line = line[:-1]
        key, value = _split_property(line)
        props[_unescape(key)] = _unescape(value)
    return props


#: Where Java's natural lines end (LineReader): nothing else ends a line.
_LINE_END = re.compile(r"\r\n|\r|\n")


def _continues(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _split_property(line: str) -> tuple[str, str]:
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t\f":
            break
        i += 1
    # The key ends at an unescaped separator; white space around one `=` or `:` is skipped.
    rest = line[i:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return line[:i], rest


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unescape(text: str) -> str:
    """A key or value with its escapes read as Java reads them (`\\t`, `\\n`, `\\r`, `\\f`,
    `\\uXXXX`; a backslash before anything else is that character). Java strings are UTF-16,
    so a high surrogate followed by a low one is a single character (`\\uD83D\\uDE00` is
    U+1F600). A lone surrogate is no character at all (it cannot be encoded as UTF-8, so it
    would fail later, wherever the text is written): it becomes U+FFFD, the replacement
    character, as a UTF-8 decoder makes of bytes that are not text."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) == 5 and code[0] == "u":
            return chr(int(code[1:], 16))
        return _SIMPLE.get(code, code)

    out = _ESCAPE.sub(one, text)
    if _SURROGATE.search(out):
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return out


def parse_report_task(text: str | bytes, *, source: str = VENDOR) -> ReportTask:
    """`report-task.txt` as a `ReportTask`. The task id is `ceTaskId`, else the `id` of
    `ceTaskUrl` (all sonarqube-quality-gate-action reads); a file with neither is a
    `PayloadError` (it is not a scanner's report-task.txt). `projectKey` may be missing (the
    task then says which project it belongs to)."""
    at = Where(VENDOR, source, "read report-task.txt")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            fail(PayloadError, at, "report-task.txt is not UTF-8 text")
    props = parse_properties(text)
    task_id = (props.get("ceTaskId") or "").strip() or _task_id_of(props.get("ceTaskUrl"))
    if not task_id:
        fail(PayloadError, at, "report-task.txt has no ceTaskId (nor a ceTaskUrl with an id)")
    return ReportTask(
        ce_task_id=task_id,
        project_key=(props.get("projectKey") or "").strip() or None,
        server_url=props.get("serverUrl") or None,
        ce_task_url=props.get("ceTaskUrl") or None,
        dashboard_url=props.get("dashboardUrl") or None,
        organization=props.get("organization") or None,
        branch=props.get("branch") or None,
        server_version=props.get("serverVersion") or None,
        properties=props,
    )


def _task_id_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        query = urlsplit(url).query
    except ValueError:
        return ""
    ids = parse_qs(query).get("id") or [""]
    return ids[0].strip()


def scan_from_report_task(report: ReportTask, *, source: str) -> Scan:
    """A placeholder for the task a report-task.txt names (state `unknown` until the first
    poll), with the scanner's dashboard link. The report must name its project."""
    if not report.project_key:
        fail(BadRequestError, Where(VENDOR, source, "read report-task.txt"), "no projectKey")
    links = {"dashboard": report.dashboard_url} if report.dashboard_url else {}
    return Scan(
        vendor=VENDOR,
        source=source,
        id=report.ce_task_id,
        application_id=report.project_key,
        lifecycle=Lifecycle.UNKNOWN,
        vendor_status="",
        links=links,
    )


# --- Webhooks --------------------------------------------------------------------------------


def verify_webhook(body: bytes, signature: str | None, secret: str) -> bool:
    """True when `X-Sonar-Webhook-HMAC-SHA256` is the hex HMAC-SHA256 of the raw body with
    `secret` (WebhookCallerImpl.signatureOf), compared in constant time."""
    if not signature or not secret:
        return False
    sent = signature.strip().lower()
    if not sent.isascii():
        return False  # a hex digest is ASCII; a header's non-UTF-8 bytes are surrogates here
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest.encode(), sent.encode())


def delivery_id(body: bytes) -> str:
    """SonarQube sends no delivery id; the body's SHA-256 stands in for one, so a delivery
    sent twice (a proxy's retry) is recognised as a duplicate."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_webhook(
    headers: Mapping[str, str], body: bytes, *, source: str, base_url: str = ""
) -> Scan | None:
    """A webhook delivery (WebhookPayloadFactoryImpl) as the task's final state: SUCCESS with
    the quality gate's verdict and failing conditions, or FAILED. None for a delivery that is
    about no task (no `taskId`: the quality gate changed after an issue was updated).

    Check the signature with `verify_webhook` first."""
    lower = {k.lower(): v for k, v in headers.items()}
    resp = Response(200, body, lower, "webhook")
    at = where(VENDOR, source, resp)
    payload = as_object(decode_json(resp, at), at, "the payload", resp)
    task_id = opt_str(payload, "taskId")
    if not task_id:
        return None
    project = payload.get("project")
    project_obj: dict[str, Any] = project if isinstance(project, dict) else {}
    project_key = opt_str(project_obj, "key") or (lower.get(PROJECT_HEADER) or "").strip()
    if not project_key:
        fail(PayloadError, at, "missing identity field project.key (and X-SonarQube-Project)", resp)
    raw_status = opt_str(payload, "status")
    lifecycle = map_value(STATUS_MAP, raw_status, VENDOR)
    gate_obj = payload.get("qualityGate")
    gate = quality_gate_from(gate_obj, webhook=True) if isinstance(gate_obj, dict) else None
    verdict, message = Verdict.NONE, None
    if gate is not None and lifecycle is Lifecycle.SUCCEEDED:
        verdict, message = gate.verdict, gate.summary()
    branch = payload.get("branch")
    branch_obj: dict[str, Any] = branch if isinstance(branch, dict) else {}
    dashboard = opt_str(branch_obj, "url") or opt_str(project_obj, "url")
    links = {"dashboard": dashboard} if dashboard and "://" in dashboard else {}
    if not links:
        links = _links(base_url, project_key, None, None)
    analysed = parse_time(payload.get("analysedAt"))
    changed = parse_time(payload.get("changedAt"))
    return Scan(
        vendor=VENDOR,
        source=source,
        id=task_id,
        application_id=project_key,
        lifecycle=lifecycle,
        vendor_status=raw_status or "",
        verdict=verdict,
        message=message,
        links=links,
        finished_at=analysed or changed if lifecycle.is_terminal else None,
        updated_at=changed or analysed,
        # Webhooks are sent after an analysis report is processed: a REPORT task.
        scan_type="REPORT",
        raw=payload,
    )


# --- Errors ----------------------------------------------------------------------------------


def error_text(resp: Response) -> str | None:
    """The messages of the error envelope `{"errors":[{"msg": ...}]}` (WebServiceEngine), joined;
    a bare 401 (UserSessionInitializer sends no body) gets a sentence saying what to check."""
    if 200 <= resp.status < 300:
        return None
    text: str | None = None
    try:
        body = decode_json(resp, Where(VENDOR, "", resp.operation))
    except PayloadError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            msgs = [opt_str(e, "msg") for e in errors if isinstance(e, dict)]
            text = "; ".join(m for m in msgs if m) or None
        text = text or opt_str(body, "message", "msg")
    if text is None and resp.status == 401:
        text = (
            'the token was refused (401, no detail): check the token, and use auth = "basic" '
            "for SonarQube before 10.0, which does not read Bearer tokens"
        )
    return text


def check(resp: Response, at: Where) -> None:
    """Raise the typed error of a non-2xx answer: 401/403 `AuthenticationError`, 404
    `NotFoundError`, 400 `BadRequestError`, 429 `RateLimitedError`, 5xx `ServerError`, naming
    the server's messages."""
    raise_for_status(resp, at, error_text(resp))
