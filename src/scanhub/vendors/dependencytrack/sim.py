"""Dependency-Track simulator: BOM uploads, their processing, the project's violations and
metrics (the sources named in `sansio`).

`X-Api-Key` auth (401 with an empty body, as Alpine's AuthenticationFilter answers), uploads
by `PUT /api/v1/bom` (JSON, Base64 BOM) or `POST /api/v1/bom` (multipart) answering
`{"token"}`, plain-text errors ("The project could not be found."), Jersey validation errors
and RFC 9457 problems for an invalid BOM. Every upload walks the steps the server chains, in
its order: BOM_CONSUMPTION (queued until consumed), BOM_PROCESSING (the import: the project's
`lastBomImport`), VULN_ANALYSIS, POLICY_EVALUATION (the project's violations appear),
METRICS_UPDATE (its metrics). A BOM without components gets VULN_ANALYSIS and
POLICY_EVALUATION NOT_APPLICABLE; a step can be made to fail (FAILED with a reason, the later
steps CANCELLED) or to stall (TIMED_OUT after `step_timeout`, then FAILED "Timed out").

`api_version="v5"` serves the Hyades API server 5.x: `GET /api/v1/workflow/token/{uuid}/status`
with the steps (404 "Provided token … does not exist."), and the event endpoint answering from
them. `api_version="v4"` serves Dependency-Track 4.x: only `GET /api/v1/event/token/{uuid}`,
true while the upload's chain (import, analysis, policy evaluation) runs, false after and for
unknown tokens; the metrics update comes after the chain. In v4 only BOM_CONSUMPTION and
BOM_PROCESSING can fail (the chain ends without an import): v4's analyzers and policy engine
log their errors and let the chain go on, so a `fail` of a later step is not seen.

Its parts: `BomPipeline` is the simulated server's state with no HTTP (projects, uploads and
their walk on the clock); `DependencyTrackSim` serves the API from it (its set-up names,
`add_project`, `seed_upload`, `uploads`, ..., are the pipeline's).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid as uuidlib
from typing import Any

from aiohttp import web
from attrs import define, field

from scanhub.sim import SimClock, SimServer, json_response, progress

#: The steps a BOM upload's workflow is made of (WorkflowStateQueryManager.createWorkflowSteps).
WALK = ("BOM_CONSUMPTION", "BOM_PROCESSING", "VULN_ANALYSIS", "POLICY_EVALUATION", "METRICS_UPDATE")
#: The phases of an upload: 0 queued; 1..5 step i-1 running (earlier ones done); 6 all done.
PHASES = len(WALK) + 1
#: In v4 the token's chain ends with the policy evaluation; the metrics update follows it.
V4_CHAIN_END = 5


@define
class Profile:
    """What uploads to a project result in."""

    #: (violationState, policy name, component name) of each violation once evaluated.
    violations: list[tuple[str, str, str]] = field(factory=list)
    #: critical, high, medium, low, unassigned.
    severities: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    #: A step that fails, and its failureReason.
    fail: tuple[str, str] | None = None
    #: A step that never finishes (it times out).
    stall: str | None = None


@define
class _Project:
    uuid: str
    name: str
    version: str
    last_bom_import: int | None = None
    metrics: dict[str, Any] | None = None
    violations: list[dict[str, Any]] = field(factory=list)
    profile: Profile = field(factory=Profile)


@define
class _Step:
    step: str
    status: str = "PENDING"
    started_at: int | None = None
    updated_at: int = 0
    failure_reason: str | None = None


@define
class _Upload:
    token: str
    project: str
    started: float
    duration: float
    components: int
    profile: Profile
    steps: list[_Step]
    phase: int = 0
    forgotten: bool = False
    stalled_at: float | None = None


def _ms() -> int:
    return int(time.time() * 1000)


def text_response(text: str, status: int) -> web.Response:
    """Dependency-Track's plain-text error answers (`Response.status(...).entity("...")`)."""
    return web.Response(status=status, text=text, content_type="text/plain")


def validation_errors(*errors: tuple[str, str, str]) -> web.Response:
    """400 with Jersey `ValidationError`s (message, path, invalid value), as Alpine's
    failOnValidationError and ConstraintViolationExceptionMapper answer."""
    body = [
        {"message": m, "messageTemplate": m, "path": p, "invalidValue": v} for m, p, v in errors
    ]
    return json_response(body, 400)


def problem(title: str, detail: str, status: int = 400, **extra: Any) -> web.Response:
    """An RFC 9457 problem (`application/problem+json`)."""
    body = {"status": status, "title": title, "detail": detail, **extra}
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/problem+json"
    )


class BomPipeline:
    """Dependency-Track's projects and the BOM uploads walking its processing steps on the
    simulated clock, with no HTTP: what each upload has reached, what finishing a step changes
    on its project (import, violations, metrics), failures, stalls and time-outs, as the server
    of `api_version` ("v4" or "v5") does them."""

    def __init__(
        self,
        clock: SimClock,
        *,
        api_version: str = "v5",
        duration: float = 4.0,
        step_timeout: float = 60.0,
    ) -> None:
        if api_version not in ("v4", "v5"):
            raise ValueError("api_version is 'v4' or 'v5'")
        self.clock, self.api_version = clock, api_version
        #: Seconds an upload takes to walk every step; seconds a stalled step waits to time out.
        self.duration, self.step_timeout = duration, step_timeout
        self.projects: dict[str, _Project] = {}
        self.uploads: dict[str, _Upload] = {}

    # --- scenario ------------------------------------------------------------------------

    def add_project(self, name: str, version: str, profile: Profile | None = None) -> str:
        """Create a project (or give the existing one a profile); returns its UUID."""
        found = self.find(name, version)
        if found is None:
            found = _Project(str(uuidlib.uuid4()), name, version)
            self.projects[found.uuid] = found
        if profile is not None:
            found.profile = profile
        return found.uuid

    def profile(self, project_uuid: str) -> Profile:
        """The profile of a project, to change what its next uploads do."""
        return self.projects[project_uuid].profile

    def seed_upload(
        self, project_uuid: str, *, components: int = 12, duration: float | None = None
    ) -> str:
        """An upload made directly (as if a CI job had uploaded); returns its token."""
        return self.upload(self.projects[project_uuid], components, duration).token

    def forget(self, token: str) -> None:
        """Delete a token's workflow, as the retention maintenance does."""
        self.uploads[token].forgotten = True

    def find(self, name: str, version: str) -> _Project | None:
        """The project of this name and version, if there is one."""
        return next(
            (p for p in self.projects.values() if p.name == name and p.version == version), None
        )

    def upload(self, project: _Project, components: int, duration: float | None = None) -> _Upload:
        """A new upload of a BOM with `components` components to `project`, queued."""
        now = _ms()
        upload = _Upload(
            token=str(uuidlib.uuid4()),
            project=project.uuid,
            started=self.clock.now(),
            duration=self.duration if duration is None else duration,
            components=components,
            profile=project.profile,
            steps=[_Step(s, updated_at=now) for s in WALK],
        )
        self.uploads[upload.token] = upload
        return upload

    # --- the walk ------------------------------------------------------------------------

    def advance(self) -> None:
        """Apply what every upload has reached since it was last looked at (the walk moves
        when the server is asked)."""
        for upload in self.uploads.values():
            target = progress(upload.started, self.clock.now(), upload.duration, PHASES)
            while upload.phase < target and not self._ended(upload):
                if not self._enter(upload, upload.phase + 1):
                    break
            self._time_out(upload)

    def _ended(self, upload: _Upload) -> bool:
        return any(s.status in ("FAILED", "CANCELLED") for s in upload.steps) or all(
            s.status in ("COMPLETED", "NOT_APPLICABLE") for s in upload.steps
        )

    def _enter(self, upload: _Upload, phase: int) -> bool:
        """Phase `phase`: the step before it finishes, step `phase - 1` starts. False when the
        upload cannot move on (a stalled step)."""
        now = _ms()
        project = self.projects[upload.project]
        steps = {s.step: s for s in upload.steps}
        if phase >= 2:
            done = steps[WALK[phase - 2]]
            if done.status == "PENDING":
                if upload.profile.stall == done.step:
                    if upload.stalled_at is None:
                        upload.stalled_at = self.clock.now()
                    return False  # it never finishes; _time_out takes it from here
                failure = upload.profile.fail
                if failure is not None and failure[0] == done.step and self._can_fail(done.step):
                    self._fail(upload, done, failure[1])
                    upload.phase = phase
                    return True
                done.status, done.updated_at = "COMPLETED", now
                self._effect(upload, project, done.step, now)
        if phase <= len(WALK):
            starting = steps[WALK[phase - 1]]
            if starting.status == "PENDING":
                starting.started_at = starting.updated_at = now
        upload.phase = phase
        return True

    def _can_fail(self, step: str) -> bool:
        # v4's analyzers and policy engine log their errors and let the chain go on: only a
        # BOM that cannot be consumed or processed ends it early.
        return self.api_version == "v5" or step in ("BOM_CONSUMPTION", "BOM_PROCESSING")

    def _effect(self, upload: _Upload, project: _Project, step: str, now: int) -> None:
        """What finishing `step` changes on the project."""
        steps = {s.step: s for s in upload.steps}
        if step == "BOM_PROCESSING":
            project.last_bom_import = now
            if upload.components == 0:
                # BomUploadProcessingTask: nothing to analyse or evaluate.
                for name in ("VULN_ANALYSIS", "POLICY_EVALUATION"):
                    steps[name].status, steps[name].updated_at = "NOT_APPLICABLE", now
                project.violations = []
        elif step == "POLICY_EVALUATION":
            project.violations = [
                _violation(project, state, policy, component, now)
                for state, policy, component in upload.profile.violations
            ]
        elif step == "METRICS_UPDATE":
            project.metrics = _metrics(project, upload.profile, upload.components, now)

    def _fail(self, upload: _Upload, step: _Step, reason: str) -> None:
        now = _ms()
        step.status, step.failure_reason, step.updated_at = "FAILED", reason, now
        later = False
        for s in upload.steps:
            if later and s.status == "PENDING":
                s.status, s.updated_at = "CANCELLED", now
            later = later or s is step

    def _time_out(self, upload: _Upload) -> None:
        if upload.stalled_at is None:
            return
        waited = self.clock.now() - upload.stalled_at
        step = next(s for s in upload.steps if s.step == upload.profile.stall)
        if step.status == "PENDING" and waited >= self.step_timeout:
            step.status, step.updated_at = "TIMED_OUT", _ms()
        if step.status == "TIMED_OUT" and waited >= 2 * self.step_timeout:
            self._fail(upload, step, "Timed out")

    def processing(self, upload: _Upload) -> bool:
        """Whether the token endpoint says the upload is being processed."""
        if self.api_version == "v5":
            # WorkflowDao.existsWithNonTerminalStatus
            return any(s.status in ("PENDING", "TIMED_OUT") for s in upload.steps)
        if any(s.status == "FAILED" for s in upload.steps):
            return False  # the chain ended early (the BOM could not be consumed or processed)
        # Queued or running until the policy evaluation, the chain's last event, is done; the
        # metrics update that follows is not part of it.
        return upload.phase < V4_CHAIN_END


class DependencyTrackSim(SimServer):
    """Dependency-Track (`api_version` "v4" or "v5") on loopback; base URL without `/api`: the
    server's answers, auth and errors, from its `pipeline` (a `BomPipeline`)."""

    vendor = "dependencytrack"

    def __init__(
        self,
        *,
        api_key: str = "odt_SimulatedDependencyTrackKey0001",
        api_version: str = "v5",
        duration: float = 4.0,
        step_timeout: float = 60.0,
        clock: SimClock | None = None,
        **kw: Any,
    ) -> None:
        self.api_key = api_key
        clock = clock or SimClock()
        self.pipeline = BomPipeline(
            clock, api_version=api_version, duration=duration, step_timeout=step_timeout
        )
        # The names the simulator has always offered: the pipeline's own.
        self.projects, self.uploads = self.pipeline.projects, self.pipeline.uploads
        self.add_project, self.profile = self.pipeline.add_project, self.pipeline.profile
        self.seed_upload, self.forget = self.pipeline.seed_upload, self.pipeline.forget
        super().__init__(clock=clock, **kw)

    @property
    def api_version(self) -> str:
        """The server version served: "v4" or "v5" (the pipeline's)."""
        return self.pipeline.api_version

    @property
    def duration(self) -> float:
        """Seconds an upload takes to walk every step (the pipeline's)."""
        return self.pipeline.duration

    @duration.setter
    def duration(self, value: float) -> None:
        self.pipeline.duration = value

    @property
    def step_timeout(self) -> float:
        """Seconds a stalled step waits to time out (the pipeline's)."""
        return self.pipeline.step_timeout

    @step_timeout.setter
    def step_timeout(self, value: float) -> None:
        self.pipeline.step_timeout = value

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    # --- HTTP ----------------------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_put("/api/v1/bom", self._upload_json)
        router.add_post("/api/v1/bom", self._upload_multipart)
        router.add_get("/api/v1/event/token/{uuid}", self._token)
        router.add_get("/api/v1/bom/token/{uuid}", self._token)  # deprecated since 4.11
        if self.pipeline.api_version == "v5":
            router.add_get("/api/v1/workflow/token/{uuid}/status", self._workflow)
        router.add_get("/api/v1/project/lookup", self._lookup)
        router.add_get("/api/v1/project/{uuid}", self._project)
        router.add_get("/api/v1/metrics/project/{uuid}/current", self._metrics)
        router.add_get("/api/v1/violation/project/{uuid}", self._violations)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-Api-Key") == self.api_key

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401)  # Alpine: no body

    def _uuid(self, request: web.Request, operation: str) -> str | web.Response:
        value = request.match_info["uuid"]
        try:
            uuidlib.UUID(value)
        except ValueError:
            return validation_errors(("Invalid UUID", f"{operation}.arg0", value))
        return value

    async def _upload_json(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return text_response("Unable to process JSON", 400)
        if not isinstance(body, dict):
            return text_response("Unable to process JSON", 400)
        encoded = body.get("bom")
        if not isinstance(encoded, str):
            return validation_errors(("may not be null", "bom", ""))
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return validation_errors(("The BOM must be Base64 encoded", "bom", encoded[:40]))
        fields = {k: v for k, v in body.items() if k != "bom"}
        return self._accept(fields, content)

    async def _upload_multipart(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        part = form.get("bom")
        if not isinstance(part, web.FileField):
            return web.Response(status=200)  # no "bom" part: BomResource answers 200, no token
        fields: dict[str, Any] = {
            k: str(v) for k, v in form.items() if k != "bom" and isinstance(v, str)
        }
        for flag in ("autoCreate", "isLatest"):
            if flag in fields:
                fields[flag] = fields[flag].lower() == "true"
        return self._accept(fields, part.file.read())

    def _accept(self, fields: dict[str, Any], content: bytes) -> web.StreamResponse:
        project: _Project | None
        if fields.get("project"):
            project = self.pipeline.projects.get(str(fields["project"]))
        else:
            name, version = fields.get("projectName"), fields.get("projectVersion")
            if not isinstance(name, str) or not isinstance(version, str):
                return validation_errors(("must not be blank", "projectName", ""))
            project = self.pipeline.find(name, version)
            if project is None and fields.get("autoCreate") is True:
                project = self.pipeline.projects[self.pipeline.add_project(name, version)]
        if project is None:
            return text_response("The project could not be found.", 404)
        components = _components(content)
        if isinstance(components, str):
            return problem("The uploaded BOM is invalid", components)
        self.pipeline.advance()
        upload = self.pipeline.upload(project, components)
        return json_response({"token": upload.token})

    async def _token(self, request: web.Request) -> web.StreamResponse:
        token = self._uuid(request, "isTokenBeingProcessed")
        if isinstance(token, web.Response):
            return token
        self.pipeline.advance()
        upload = self.pipeline.uploads.get(token)
        processing = (
            upload is not None and not upload.forgotten and self.pipeline.processing(upload)
        )
        value: Any = processing
        if processing and self.unknown_status("true", "maybe") == "maybe":
            value = "maybe"
        return json_response({"processing": value})

    async def _workflow(self, request: web.Request) -> web.StreamResponse:
        token = self._uuid(request, "getWorkflowStates")
        if isinstance(token, web.Response):
            return token
        self.pipeline.advance()
        upload = self.pipeline.uploads.get(token)
        if upload is None or upload.forgotten:
            return text_response(f"Provided token {token} does not exist.", 404)
        return json_response(self.render(token))

    def render(self, token: str) -> list[dict[str, Any]]:
        """The token's WorkflowStates as WorkflowResource answers (NON_NULL fields only)."""
        upload = self.pipeline.uploads[token]
        out = []
        for s in upload.steps:
            status = s.status
            if status == "PENDING" and s.started_at is not None:
                status = self.unknown_status(status, "RETRYING")
            state: dict[str, Any] = {"token": token, "step": s.step, "status": status}
            if s.started_at is not None:
                state["startedAt"] = s.started_at
            state["updatedAt"] = s.updated_at
            if s.failure_reason is not None:
                state["failureReason"] = s.failure_reason
            out.append(state)
        return out

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        found = self.pipeline.find(request.query.get("name", ""), request.query.get("version", ""))
        if found is None:
            return text_response("The project could not be found.", 404)
        self.pipeline.advance()
        return json_response(_project_json(found))

    def _known(self, request: web.Request, operation: str) -> _Project | web.Response:
        uuid = self._uuid(request, operation)
        if isinstance(uuid, web.Response):
            return uuid
        project = self.pipeline.projects.get(uuid)
        if project is None:
            return text_response("The project could not be found.", 404)
        self.pipeline.advance()
        return project

    async def _project(self, request: web.Request) -> web.StreamResponse:
        project = self._known(request, "getProject")
        if isinstance(project, web.Response):
            return project
        return json_response(_project_json(project))

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        project = self._known(request, "getProjectCurrentMetrics")
        if isinstance(project, web.Response):
            return project
        if project.metrics is None:
            return web.Response(status=204)  # Response.ok(null): no entity
        return json_response(project.metrics)

    async def _violations(self, request: web.Request) -> web.StreamResponse:
        project = self._known(request, "getViolationsByProject")
        if isinstance(project, web.Response):
            return project
        # Alpine's ApiFilter: pageNumber/pageSize, else offset/limit, else the first 100.
        try:
            size = int(request.query.get("pageSize") or request.query.get("limit") or 100)
            if "pageNumber" in request.query:
                offset = (int(request.query["pageNumber"]) - 1) * size
            else:
                offset = int(request.query.get("offset") or 0)
        except ValueError:
            size, offset = 100, 0
        page = project.violations[max(0, offset) : max(0, offset) + max(0, size)]
        resp = json_response(page)
        resp.headers["X-Total-Count"] = str(len(project.violations))
        return resp


def _components(content: bytes) -> int | str:
    """The number of components of a CycloneDX BOM, or why the upload's validation refuses it
    (CycloneDxValidator's messages)."""
    text = content.lstrip()
    if text.startswith(b"<"):
        if b"<bom" not in text:
            return "Unable to determine schema version from XML"
        return text.count(b"<component ") + text.count(b"<component>")
    try:
        bom = json.loads(text)
    except ValueError:
        return "BOM is neither valid JSON nor XML"
    if not isinstance(bom, dict) or "specVersion" not in bom:
        return "Unable to determine schema version from JSON"
    components = bom.get("components")
    return len(components) if isinstance(components, list) else 0


def _project_json(project: _Project) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": project.name,
        "version": project.version,
        "classifier": "APPLICATION",
        "uuid": project.uuid,
        "active": True,
        "isLatest": False,
    }
    if project.last_bom_import is not None:
        out["lastBomImport"] = project.last_bom_import
        out["lastBomImportFormat"] = "CycloneDX 1.5"
    return out


def _violation(
    project: _Project, state: str, policy: str, component: str, now: int
) -> dict[str, Any]:
    """A PolicyViolation as PolicyViolationResource detaches it (fetch depth 2)."""
    return {
        "type": "LICENSE" if "licen" in policy.lower() else "OPERATIONAL",
        "project": {"name": project.name, "version": project.version, "uuid": project.uuid},
        "component": {
            "name": component,
            "version": "1.0.0",
            "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, project.uuid + component)),
        },
        "policyCondition": {
            "policy": {
                "name": policy,
                "operator": "ANY",
                "violationState": state,
                "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, policy)),
                "includeChildren": False,
                "onlyLatestProjectVersion": False,
            },
            "operator": "IS",
            "subject": "LICENSE" if "licen" in policy.lower() else "COORDINATES",
            "value": component,
            "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, policy + "/condition")),
        },
        "timestamp": now,
        "uuid": str(uuidlib.uuid4()),
    }


def _metrics(project: _Project, profile: Profile, components: int, now: int) -> dict[str, Any]:
    """A ProjectMetrics row (model/ProjectMetrics.java; times in epoch ms)."""
    c, h, m, low, u = profile.severities if components else (0, 0, 0, 0, 0)
    states = [s for s, _, _ in profile.violations] if components else []
    return {
        "critical": c,
        "high": h,
        "medium": m,
        "low": low,
        "unassigned": u,
        "vulnerabilities": c + h + m + low + u,
        "vulnerableComponents": min(components, c + h + m + low + u),
        "components": components,
        "suppressed": 0,
        "findingsTotal": c + h + m + low + u,
        "findingsAudited": 0,
        "findingsUnaudited": c + h + m + low + u,
        "inheritedRiskScore": float(10 * c + 5 * h + 3 * m + low + 5 * u),
        "policyViolationsFail": states.count("FAIL"),
        "policyViolationsWarn": states.count("WARN"),
        "policyViolationsInfo": states.count("INFO"),
        "policyViolationsTotal": len(states),
        "policyViolationsAudited": 0,
        "policyViolationsUnaudited": len(states),
        "firstOccurrence": (project.metrics or {}).get("firstOccurrence", now),
        "lastOccurrence": now,
    }
