"""SonarQube simulator: Compute Engine tasks, the activity, quality gates, webhooks.

Behaves as the server's code says (see `sansio`): a task submitted by a scanner is PENDING in
the queue, then IN_PROGRESS once a worker takes it, then SUCCESS (REPORT tasks get an
`analysisId`), FAILED (`errorMessage`, `errorType`) or, while still pending, CANCELED
(CancelAction: in-progress tasks cannot be canceled). `api/ce/task?id=` answers a queued task
as TaskFormatter.formatQueue does (no analysisId, no executedAt, executionTimeMs while it runs)
and a finished one as formatActivity does; `api/ce/activity` lists a project's tasks (those in
the queue first, newest first), filtered by `status` (default SUCCESS,FAILED,CANCELED) and
`type`, paged with `p` / `ps` (default 100, at most 1000) and `paging` {pageIndex, pageSize,
total}; `api/qualitygates/project_status?analysisId=` answers the gate of an analysis (OK,
WARN, ERROR with conditions; NONE when no gate applies).

Auth: a user token as `Authorization: Bearer` (unless `bearer=False`: a server before 10.0,
which does not read Bearer) or as the Basic user name with an empty password; a refused
credential is a bare 401 with no body (UserSessionInitializer). Errors are the envelope
`{"errors":[{"msg": ...}]}` with the server's texts: 404 "No activity found for task '…'",
"Analysis with id '…' is not found", "Component '…' does not exist"; 400 for bad parameters;
403 "Insufficient privileges" for a project in `restricted`.

Webhooks: with URLs in `webhook_urls`, every REPORT task that ends SUCCESS or FAILED is
delivered to each as WebhookPayloadFactoryImpl builds it, with `X-SonarQube-Project` and
`X-Sonar-Webhook-HMAC-SHA256` (hex HMAC-SHA256 of the body with `webhook_secret`), once.

Its parts: `ComputeEngine` is the simulated server's state with no HTTP (projects, tasks and
their walk on the clock, analyses); `SonarQubeWebhooks` sends the deliveries; `SonarQubeSim`
serves the web API from the engine (its set-up names, `submit`, `tasks`, ..., are the engine's).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from attrs import define, field

from scanhub.sim import SimClock, SimServer, json_response

#: Terminal statuses a task can be given (`submit(outcome=...)`).
OUTCOMES = ("SUCCESS", "FAILED", "CANCELED")
#: Quality gate statuses a task's analysis can be given (`submit(gate=...)`).
GATES = ("OK", "WARN", "ERROR", "NONE")
#: ActivityAction's `status` values, in the order its error message lists them.
ACTIVITY_STATUSES = ("SUCCESS", "FAILED", "CANCELED", "PENDING", "IN_PROGRESS")
#: A Compute Engine failure as the server words it (ValidateProjectStep).
DEFAULT_ERROR = (
    "Date of analysis cannot be older than the date of the last known analysis on this "
    'project. Value: "2024-01-01T00:00:00+0000". Latest analysis: "2024-02-01T00:00:00+0000". '
    "It's only possible to rebuild the past in a chronological order."
)


def _conditions(gate: str) -> list[dict[str, Any]]:
    """project_status conditions of a gate, shaped as project_status-example.json."""
    if gate == "NONE":
        return []
    coverage = {"OK": "87.2", "WARN": "81.0", "ERROR": "62.5"}[gate]
    out: list[dict[str, Any]] = [
        {
            "status": "ERROR" if gate == "ERROR" else "OK",
            "metricKey": "new_coverage",
            "comparator": "LT",
            "errorThreshold": "80",
            "actualValue": coverage,
        },
        {
            "status": "ERROR" if gate == "ERROR" else "OK",
            "metricKey": "new_violations",
            "comparator": "GT",
            "errorThreshold": "0",
            "actualValue": "7" if gate == "ERROR" else "0",
        },
        {
            "status": "OK",
            "metricKey": "new_duplicated_lines_density",
            "comparator": "GT",
            "errorThreshold": "3",
            "actualValue": "0.4",
        },
    ]
    if gate == "WARN":
        out.append(
            {
                "status": "WARN",
                "metricKey": "new_security_hotspots_reviewed",
                "comparator": "LT",
                "warningThreshold": "100",
                "errorThreshold": "50",
                "actualValue": "75.0",
            }
        )
    return out


@define
class _Task:
    id: str
    project_key: str
    project_name: str
    task_type: str
    submitted: float
    queue: float
    duration: float
    outcome: str
    gate: str
    error_message: str | None
    branch: str | None
    submitter: str | None
    analysis_id: str | None = None
    conditions: list[dict[str, Any]] = field(factory=list)


class ComputeEngine:
    """SonarQube's Compute Engine as the simulator plays it, with no HTTP: the projects, the
    tasks scanners submit and where each stands on the simulated clock, and the analyses (with
    their quality gates) that successful REPORT tasks leave."""

    def __init__(self, clock: SimClock, *, queue: float = 1.0, duration: float = 3.0) -> None:
        self.clock = clock
        #: Seconds a new task waits in the queue, then runs (unless `submit` says otherwise).
        self.queue, self.duration = queue, duration
        #: project key -> name
        self.projects: dict[str, str] = {}
        self.tasks: dict[str, _Task] = {}
        #: analysis id -> the task that made it
        self.analyses: dict[str, _Task] = {}
        self._rng = random.Random(0)
        #: The wall-clock time of simulated second 0 (task times are shown in it).
        self.epoch = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=clock.now())

    def add_project(self, key: str, name: str | None = None) -> None:
        """Create a project."""
        self.projects[key] = name or key

    def submit(
        self,
        project_key: str,
        *,
        outcome: str = "SUCCESS",
        gate: str = "OK",
        task_type: str = "REPORT",
        queue: float | None = None,
        duration: float | None = None,
        error_message: str | None = None,
        branch: str | None = None,
        submitter: str | None = "ci-bot",
    ) -> str:
        """A scanner uploads a report: a new task for `project_key` that will end `outcome`
        (SUCCESS, FAILED or CANCELED) with quality gate `gate` (OK, WARN, ERROR, NONE) after
        `queue` seconds pending and `duration` in progress. Returns its id."""
        if outcome not in OUTCOMES or gate not in GATES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, gate one of {GATES}")
        self.projects.setdefault(project_key, project_key)
        task = _Task(
            id=self._uuid(),
            project_key=project_key,
            project_name=self.projects[project_key],
            task_type=task_type,
            submitted=self.clock.now(),
            queue=self.queue if queue is None else queue,
            duration=self.duration if duration is None else duration,
            outcome=outcome,
            gate=gate,
            error_message=(error_message or DEFAULT_ERROR) if outcome == "FAILED" else None,
            branch=branch,
            submitter=submitter,
        )
        if outcome == "SUCCESS" and task_type == "REPORT":
            task.analysis_id = self._uuid()
            task.conditions = _conditions(gate)
            self.analyses[task.analysis_id] = task
        self.tasks[task.id] = task
        return task.id

    def seed_tasks(
        self, project_key: str, count: int, *, duration: float | None = None
    ) -> list[str]:
        """`count` tasks of a project (benchmarks, `scanhub sim`), gates OK, WARN, ERROR in
        turn and every fourth one FAILED; returns their ids."""
        ids = []
        for i in range(count):
            failed = i % 4 == 3
            ids.append(
                self.submit(
                    project_key,
                    outcome="FAILED" if failed else "SUCCESS",
                    gate=("OK", "ERROR", "WARN")[i % 3],
                    duration=duration,
                )
            )
        return ids

    def _uuid(self) -> str:
        # Uuids.create(): 15 bytes, URL-safe base64, 20 characters (AYhSC2-LY0CHkWJxvNA9).
        return base64.urlsafe_b64encode(self._rng.randbytes(15)).decode("ascii")

    def status_of(self, task: _Task) -> str:
        """PENDING, IN_PROGRESS, then the outcome; a CANCELED task is canceled while pending."""
        elapsed = self.clock.now() - task.submitted
        if elapsed < task.queue:
            return "PENDING"
        if task.outcome == "CANCELED":
            return "CANCELED"
        if elapsed < task.queue + task.duration:
            return "IN_PROGRESS"
        return task.outcome

    def when(self, sim_seconds: float) -> str:
        """A simulated time as the server writes dates (DateUtils.formatDateTime:
        yyyy-MM-dd'T'HH:mm:ssZ)."""
        return (self.epoch + timedelta(seconds=sim_seconds)).strftime("%Y-%m-%dT%H:%M:%S%z")


class SonarQubeWebhooks:
    """The webhook sender: every REPORT task of `ce` that ends SUCCESS or FAILED is delivered
    to each URL in `urls` as WebhookPayloadFactoryImpl builds it, signed with `secret`, once
    (SonarQube does not retry)."""

    def __init__(self, ce: ComputeEngine, secret: str) -> None:
        self.ce, self.secret = ce, secret
        #: Where finished tasks are delivered (empty: no webhooks).
        self.urls: list[str] = []
        #: Deliveries sent: (url, HTTP status or None when it failed).
        self.deliveries: list[tuple[str, int | None]] = []
        self._notified: set[str] = set()
        self._notifier: asyncio.Task[None] | None = None

    def payload(self, task_id: str, server_url: str) -> dict[str, Any]:
        """The delivery of a finished task, as WebhookPayloadFactoryImpl writes it."""
        task = self.ce.tasks[task_id]
        status = self.ce.status_of(task)
        project_url = f"{server_url}/dashboard?id={quote(task.project_key, safe='')}"
        ended = self.ce.when(task.submitted + task.queue + task.duration)
        payload: dict[str, Any] = {
            "serverUrl": server_url,
            "taskId": task.id,
            "status": status,
            "analysedAt": ended,
            "revision": hashlib.sha1(task.id.encode()).hexdigest(),  # noqa: S324 - a fake commit
            "changedAt": ended,
            "project": {"key": task.project_key, "name": task.project_name, "url": project_url},
            "branch": {
                "name": task.branch or "main",
                "type": "BRANCH",
                "isMain": not task.branch,
                "url": project_url,
            },
        }
        if status == "SUCCESS" and task.gate != "NONE":
            payload["qualityGate"] = {
                "name": "Sonar way",
                "status": task.gate,
                "conditions": [
                    {
                        "metric": c["metricKey"],
                        "operator": {"LT": "LESS_THAN", "GT": "GREATER_THAN"}[c["comparator"]],
                        "value": c["actualValue"],
                        "status": c["status"],
                        "errorThreshold": c["errorThreshold"],
                    }
                    for c in task.conditions
                ],
            }
        payload["properties"] = {}
        return payload

    def start(self, server_url: str) -> None:
        """Start delivering, as the server at `server_url`."""
        self._notifier = asyncio.create_task(self._notify_loop(server_url))

    async def stop(self) -> None:
        """Stop delivering."""
        if self._notifier is not None:
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
            self._notifier = None

    async def _notify_loop(self, server_url: str) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                await asyncio.sleep(0.25)
                if not self.urls:
                    continue
                for task in list(self.ce.tasks.values()):
                    if task.id in self._notified or task.task_type != "REPORT":
                        continue
                    if self.ce.status_of(task) not in ("SUCCESS", "FAILED"):
                        continue
                    self._notified.add(task.id)
                    body = json.dumps(self.payload(task.id, server_url)).encode()
                    for url in list(self.urls):
                        await self._deliver(session, url, body, task.project_key)

    async def _deliver(
        self, session: aiohttp.ClientSession, url: str, body: bytes, project: str
    ) -> None:
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-SonarQube-Project": project,
            "X-Sonar-Webhook-HMAC-SHA256": signature,
        }
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                self.deliveries.append((url, resp.status))
        except aiohttp.ClientError:
            self.deliveries.append((url, None))  # delivered once; SonarQube does not retry


class SonarQubeSim(SimServer):
    """SonarQube's web API on loopback: the answers of `ce` (its `ComputeEngine`) in the
    server's shapes, with its auth and error envelope; `webhooks` sends its deliveries."""

    vendor = "sonarqube"

    def __init__(
        self,
        *,
        token: str = "squ_sim0000000000000000000000000000000000",
        bearer: bool = True,
        queue: float = 1.0,
        duration: float = 3.0,
        webhook_secret: str = "sonarqube-webhook-secret-0001",
        **kw: Any,
    ) -> None:
        self.token = token
        #: False: a server before 10.0, which reads only the Basic form of a token.
        self.bearer = bearer
        #: Projects whose quality gate this token may not read (403).
        self.restricted: set[str] = set()
        super().__init__(**kw)
        self.ce = ComputeEngine(self.clock, queue=queue, duration=duration)
        self.webhooks = SonarQubeWebhooks(self.ce, webhook_secret)
        # The names the simulator has always offered: the engine's and the sender's own.
        self.projects, self.tasks, self.analyses = self.ce.projects, self.ce.tasks, self.ce.analyses
        self.add_project, self.submit = self.ce.add_project, self.ce.submit
        self.seed_tasks, self.status_of = self.ce.seed_tasks, self.ce.status_of
        self.webhook_urls, self.deliveries = self.webhooks.urls, self.webhooks.deliveries

    @property
    def queue(self) -> float:
        """Seconds a new task waits in the queue (the engine's)."""
        return self.ce.queue

    @queue.setter
    def queue(self, value: float) -> None:
        self.ce.queue = value

    @property
    def duration(self) -> float:
        """Seconds a new task runs (the engine's)."""
        return self.ce.duration

    @duration.setter
    def duration(self, value: float) -> None:
        self.ce.duration = value

    @property
    def webhook_secret(self) -> str:
        """The secret deliveries are signed with (the sender's)."""
        return self.webhooks.secret

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    async def start(self) -> str:
        url = await super().start()
        self.webhooks.start(self.root)
        return url

    async def stop(self) -> None:
        await self.webhooks.stop()
        await super().stop()

    def webhook_payload(self, task_id: str) -> dict[str, Any]:
        """The delivery of a finished task, as WebhookPayloadFactoryImpl writes it."""
        return self.webhooks.payload(task_id, self.root)

    # --- answers -----------------------------------------------------------------------------

    def render_task(self, task_id: str) -> dict[str, Any]:
        """The `Task` of ws-ce.proto as ce/task and ce/activity answer it now."""
        task = self.ce.tasks[task_id]
        status = self.ce.status_of(task)
        when = self.ce.when
        body: dict[str, Any] = {
            "id": task.id,
            "type": task.task_type,
            "componentId": "AY" + hashlib.sha1(task.project_key.encode()).hexdigest()[:18],  # noqa: S324 - an id, not security
            "componentKey": task.project_key,
            "componentName": task.project_name,
            "componentQualifier": "TRK",
            "status": status,
            "submittedAt": when(task.submitted),
        }
        if task.submitter:
            body["submitterLogin"] = task.submitter
        if task.branch:
            body["branch"], body["branchType"] = task.branch, "BRANCH"
        started = task.submitted + task.queue
        if status == "PENDING":
            return body
        if status == "IN_PROGRESS":
            body["status"] = self.unknown_status("IN_PROGRESS", "PAUSED")
            body["startedAt"] = when(started)
            body["executionTimeMs"] = int((self.clock.now() - started) * 1000)
            return body
        # Finished: formatActivity.
        if status == "CANCELED":
            body["executedAt"] = when(started)
        else:
            ended = started + task.duration
            body["startedAt"] = when(started)
            body["executedAt"] = when(ended)
            body["executionTimeMs"] = int(task.duration * 1000)
        if task.analysis_id:
            body["analysisId"] = task.analysis_id
        if status == "FAILED":
            body["errorMessage"] = task.error_message
            body["errorType"] = "PROJECT_VALIDATION"
        body["hasScannerContext"] = status != "CANCELED"
        body["warningCount"] = 0
        body["warnings"] = []
        return body

    def render_quality_gate(self, analysis_id: str) -> dict[str, Any]:
        """project_status for an analysis, shaped as project_status-example.json."""
        task = self.ce.analyses[analysis_id]
        status: dict[str, Any] = {"status": task.gate, "ignoredConditions": False}
        if task.gate != "NONE":
            status["caycStatus"] = "compliant"
            status["conditions"] = task.conditions
            status["period"] = {"mode": "PREVIOUS_VERSION", "date": self.ce.when(0)}
        return {"projectStatus": status}

    # --- HTTP ------------------------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/ce/task", self._task)
        router.add_get("/api/ce/activity", self._activity)
        router.add_get("/api/qualitygates/project_status", self._project_status)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.bearer and header == f"Bearer {self.token}":
            return True
        basic = base64.b64encode(f"{self.token}:".encode()).decode("ascii")
        return header == f"Basic {basic}"

    def _deny(self, request: web.Request) -> web.StreamResponse:
        # UserSessionInitializer: a web service call with a refused credential is a bare 401.
        return web.Response(status=401)

    @staticmethod
    def _errors(status: int, *messages: str) -> web.Response:
        return json_response({"errors": [{"msg": m} for m in messages]}, status)

    async def _task(self, request: web.Request) -> web.StreamResponse:
        task_id = request.query.get("id", "").strip()
        if not task_id:
            return self._errors(400, "The 'id' parameter is missing")
        if task_id not in self.ce.tasks:
            return self._errors(404, f"No activity found for task '{task_id}'")
        return json_response({"task": self.render_task(task_id)})

    async def _activity(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        component = q.get("component")
        if component is not None and component not in self.ce.projects:
            return self._errors(404, f"Component '{component}' does not exist")
        wanted = [s.strip() for s in q.get("status", "SUCCESS,FAILED,CANCELED").split(",")]
        wanted = [s for s in wanted if s]
        for s in wanted:
            if s not in ACTIVITY_STATUSES:
                return self._errors(
                    400,
                    f"Value of parameter 'status' ({s}) must be one of: "
                    f"[{', '.join(ACTIVITY_STATUSES)}]",
                )
        try:
            page = int(q.get("p", "1"))
            size = int(q.get("ps", "100"))
        except ValueError:
            return self._errors(400, "'ps' and 'p' must be integers")
        if size > 1000:
            return self._errors(400, f"'ps' value ({size}) must be less than 1000")
        if page < 1 or size < 1:
            return self._errors(400, "'p' and 'ps' must be greater than 0")
        task_type = q.get("type")
        rows = []
        for task in self.ce.tasks.values():
            if component is not None and task.project_key != component:
                continue
            if task_type is not None and task.task_type != task_type:
                continue
            status = self.ce.status_of(task)
            if status in wanted:
                rows.append((status in ("PENDING", "IN_PROGRESS"), task.submitted, task.id))
        # Tasks in the queue first, then the finished ones; newest first in each.
        rows.sort(key=lambda r: (not r[0], -r[1]))
        total = len(rows)
        if page > 1 and (page - 1) * size + 1 > total:
            return self._errors(
                400,
                f"Can return only the first {total} results. {(page - 1) * size + 1}th result "
                "asked.",
            )
        chosen = rows[(page - 1) * size : page * size]
        return json_response(
            {
                "tasks": [self.render_task(r[2]) for r in chosen],
                "paging": {"pageIndex": page, "pageSize": size, "total": total},
            }
        )

    async def _project_status(self, request: web.Request) -> web.StreamResponse:
        analysis_id = request.query.get("analysisId", "").strip()
        if not analysis_id:
            return self._errors(
                400, "Either 'analysisId', 'projectId' or 'projectKey' must be provided"
            )
        task = self.ce.analyses.get(analysis_id)
        if task is None or self.ce.status_of(task) != "SUCCESS":
            return self._errors(404, f"Analysis with id '{analysis_id}' is not found")
        if task.project_key in self.restricted:
            return self._errors(403, "Insufficient privileges")
        return json_response(self.render_quality_gate(analysis_id))
