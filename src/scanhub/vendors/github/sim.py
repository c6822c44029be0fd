"""GitHub code scanning simulator: SARIF uploads, their processing status and analyses.

What it follows (see `sansio` for the sources): `Authorization: Bearer` (or `token`) auth,
401 `{"message": "Bad credentials", "documentation_url"}`; `POST /repos/{owner}/{repo}/
code-scanning/sarifs` checks the body as the description does (`commit_sha`, `ref` and `sarif`
required, no other key, the `commit_sha` and `ref` patterns: 422 "Invalid request." with the
failing rule, as GitHub words it), decodes the gzip + Base64 `sarif` (400 when it is not) and
answers 202 `{id, url}`; `GET .../sarifs/{sarif_id}` walks `pending` -> `complete` (with
`analyses_url`) or `failed` (with `errors`), 404 `Not Found` for an unknown id;
`GET .../analyses?sarif_id=` lists one analysis per SARIF run once the upload is complete
(`results_count`, `rules_count`, `tool`, ... as the description's example).

Processing fails the way GitHub reports it when a result's location has a URI scheme other
than the `checkout_uri`'s (`SARIF URI scheme "git" did not match the checkout URI scheme
"file"`, the error codeql-action's `shouldConsiderInvalidRequest` recognises), or with errors
set for a tool (`fail_tool`).

Every answer carries the primary rate limit headers (`x-ratelimit-limit`, `-remaining`,
`-used`, `-reset` in epoch seconds, `-resource`) on the wall clock, as GitHub's do. Faults:
`server_rate_limit=(n, period)` is the primary quota (past it: 403, or `primary_status`, with
`x-ratelimit-remaining: 0`); `rate_limit_rate` answers a secondary rate limit (403, or
`secondary_status`, "You have exceeded a secondary rate limit", `retry-after` when
`Faults.retry_after` is set, none otherwise); the rest as every simulator. `enterprise=True`
serves the GitHub Enterprise Server shape: every path under `/api/v3`, and
`x-github-enterprise-version` on every answer.

Its parts: `CodeScanning` is the simulated service's state with no HTTP (repositories, uploads
and their processing on the clock); `RateWindow` counts the primary rate limit; `GitHubSim`
serves the REST API from them (its set-up names, `add_repository`, `seed_uploads`, `uploads`,
..., are code scanning's).
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from attrs import define, field

from scanhub.sim import SimClock, SimServer, json_response

from .sansio import decode_sarif

DOCS = "https://docs.github.com/rest"
UPLOAD_DOCS = f"{DOCS}/code-scanning/code-scanning#upload-an-analysis-as-sarif-data"
STATUS_DOCS = f"{DOCS}/code-scanning/code-scanning#get-information-about-a-sarif-upload"
PRIMARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
SECONDARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
#: upload-sarif's request body: these keys, three of them required, nothing else.
BODY_KEYS = ("commit_sha", "ref", "sarif", "checkout_uri", "started_at", "tool_name", "validate")
REQUIRED = ("commit_sha", "ref", "sarif")
COMMIT_PATTERN = "^([0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?)$"
REF_PATTERN = "^refs\\/(heads|pull|tags)\\/.*$"
#: The primary quota of a personal access token when no fault sets one (5,000 an hour).
DEFAULT_QUOTA = (5000, 3600.0)


@define
class _Run:
    analysis_id: int
    tool: str
    version: str | None
    results: int
    rules: int
    category: str


@define
class _Upload:
    id: str
    repository: str
    commit_sha: str
    ref: str
    started: float
    wall_start: datetime
    duration: float
    runs: list[_Run]
    errors: list[str] = field(factory=list)


def sample_sarif(
    tool: str = "Semgrep OSS",
    results: int = 3,
    *,
    uri: str = "src/app.py",
    version: str = "1.85.0",
    category: str | None = None,
) -> dict[str, Any]:
    """A small SARIF 2.1.0 log of one run with `results` results (tests and demos)."""
    rules = [{"id": f"rule-{i}", "name": f"rule-{i}"} for i in range(max(1, min(results, 5)))]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": tool, "semanticVersion": version, "rules": rules}},
        "results": [
            {
                "ruleId": rules[i % len(rules)]["id"],
                "message": {"text": f"finding {i + 1}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": {"startLine": 10 + i},
                        }
                    }
                ],
            }
            for i in range(results)
        ],
    }
    if category is not None:
        run["automationDetails"] = {"id": category}
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }


def _error(status: int, message: str, docs: str = DOCS) -> web.Response:
    return json_response({"message": message, "documentation_url": docs}, status)


def _result_uris(run: Mapping[str, Any]) -> list[str]:
    """The artifact URIs of a run's result locations."""
    uris = []
    results = run.get("results")
    for result in results if isinstance(results, list) else []:
        locations = result.get("locations") if isinstance(result, dict) else None
        for loc in locations if isinstance(locations, list) else []:
            physical = loc.get("physicalLocation") if isinstance(loc, dict) else None
            artifact = physical.get("artifactLocation") if isinstance(physical, dict) else None
            uri = artifact.get("uri") if isinstance(artifact, dict) else None
            if isinstance(uri, str):
                uris.append(uri)
    return uris


def _scheme(uri: str) -> str | None:
    scheme = urlsplit(uri).scheme if ":" in uri else ""
    return scheme.lower() if len(scheme) > 1 else None  # "C:" is a drive, not a scheme


class CodeScanning:
    """GitHub code scanning's repositories and the SARIF uploads they are sent, processed on
    the simulated clock, with no HTTP: each upload's runs (one analysis each), whether its
    processing fails (a failing tool, or a result URI scheme that differs from the checkout's),
    and where it stands."""

    def __init__(self, clock: SimClock, *, duration: float = 3.0) -> None:
        self.clock = clock
        #: Seconds an upload is processed.
        self.duration = duration
        self.repositories: set[str] = set()
        #: repositories where code scanning is not enabled (403)
        self.disabled: set[str] = set()
        #: tool name -> processing errors of its uploads
        self.failing_tools: dict[str, list[str]] = {}
        self.uploads: dict[str, _Upload] = {}
        self._analysis_ids = itertools.count(201)

    def add_repository(self, repository: str, *, code_scanning: bool = True) -> None:
        """Create `owner/repo`; `code_scanning=False`: uploads and reads answer 403."""
        self.repositories.add(repository)
        if not code_scanning:
            self.disabled.add(repository)

    def fail_tool(self, tool: str, errors: list[str]) -> None:
        """Make uploads whose first run's tool is `tool` end `failed` with `errors`."""
        self.failing_tools[tool] = list(errors)

    def seed_uploads(
        self, repository: str, count: int, *, duration: float | None = None
    ) -> list[str]:
        """Create `count` uploads directly (benchmarks, `scanhub sim`); returns their ids."""
        self.add_repository(repository)
        ids = []
        for i in range(count):
            log = sample_sarif(results=2 + i % 4)
            upload = self.upload(repository, "0" * 40, "refs/heads/main", log, None, duration)
            ids.append(upload.id)
        return ids

    def upload(
        self,
        repository: str,
        commit_sha: str,
        ref: str,
        log: Mapping[str, Any],
        checkout_uri: str | None,
        duration: float | None = None,
    ) -> _Upload:
        """A new upload of the SARIF `log` for a commit, being processed."""
        listed = log.get("runs")
        runs = [r for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
        upload = _Upload(
            str(uuid.uuid4()),
            repository,
            commit_sha,
            ref,
            self.clock.now(),
            datetime.now(UTC),
            self.duration if duration is None else duration,
            [self._run(r) for r in runs],
        )
        upload.errors = self._processing_errors(upload, runs, checkout_uri)
        self.uploads[upload.id] = upload
        return upload

    def _run(self, run: Mapping[str, Any]) -> _Run:
        tool = run.get("tool")
        driver = tool.get("driver") if isinstance(tool, dict) else None
        driver = driver if isinstance(driver, dict) else {}
        results, rules = run.get("results"), driver.get("rules")
        details = run.get("automationDetails")
        category = details.get("id") if isinstance(details, dict) else None
        version = driver.get("semanticVersion") or driver.get("version")
        return _Run(
            next(self._analysis_ids),
            str(driver.get("name") or "API"),
            str(version) if version else None,
            len(results) if isinstance(results, list) else 0,
            len(rules) if isinstance(rules, list) else 0,
            str(category or ""),
        )

    def _processing_errors(
        self, upload: _Upload, runs: list[dict[str, Any]], checkout_uri: str | None
    ) -> list[str]:
        if upload.runs and upload.runs[0].tool in self.failing_tools:
            return list(self.failing_tools[upload.runs[0].tool])
        base = _scheme(checkout_uri) if checkout_uri else None
        if base is None:
            return []
        for run in runs:
            for uri in _result_uris(run):
                scheme = _scheme(uri)
                if scheme is not None and scheme != base:
                    return [
                        f'SARIF URI scheme "{scheme}" did not match the checkout URI '
                        f'scheme "{base}"'
                    ]
        return []

    def phase(self, upload: _Upload) -> str:
        """Where an upload's processing stands: pending, complete or failed."""
        if self.clock.now() - upload.started < upload.duration:
            return "pending"
        return "failed" if upload.errors else "complete"


class RateWindow:
    """The primary rate limit window as GitHub counts and shows it, on the wall clock: the
    requests made in it and the `x-ratelimit-*` headers. `quota` is `Faults.server_rate_limit`
    (None: the default quota, only shown, never reached)."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.used = 0

    def headers(self, quota: tuple[int, float] | None) -> dict[str, str]:
        """The `x-ratelimit-*` headers as they stand."""
        limit, period = quota or DEFAULT_QUOTA
        start = self.start if self.start is not None else time.time()
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - self.used)),
            "x-ratelimit-used": str(min(self.used, limit)),
            "x-ratelimit-reset": str(math.ceil(start + period)),
            "x-ratelimit-resource": "core",
        }

    def count(self, quota: tuple[int, float] | None) -> None:
        """Count a request (a new window when the last one has ended)."""
        limit, period = quota or DEFAULT_QUOTA
        now = time.time()
        expired = self.start is None or now >= self.start + period
        # Without a quota fault the default quota is only shown, never reached: a long run
        # (benchmarks) starts a new window rather than show `remaining: 0` on answers that
        # are not rate limits.
        spent = quota is None and self.used >= limit
        if expired or spent:
            self.start, self.used = now, 0
        self.used += 1


class GitHubSim(SimServer):
    """GitHub code scanning on loopback (github.com shape, or GHES under `/api/v3`): the REST
    answers, auth, rate limits and envelope, from its `code_scanning` (a `CodeScanning`)."""

    vendor = "github"

    def __init__(
        self,
        *,
        token: str = "ghp_scanhubSimulatedToken0000000000000000",
        duration: float = 3.0,
        enterprise: bool = False,
        primary_status: int = 403,
        secondary_status: int = 403,
        **kw: Any,
    ) -> None:
        self.token = token
        self.enterprise = enterprise
        self.prefix = "/api/v3" if enterprise else ""
        self.primary_status, self.secondary_status = primary_status, secondary_status
        self.rate = RateWindow()
        super().__init__(**kw)
        self.code_scanning = cs = CodeScanning(self.clock, duration=duration)
        # The names the simulator has always offered: code scanning's own.
        self.repositories, self.disabled, self.uploads = cs.repositories, cs.disabled, cs.uploads
        self.failing_tools, self.phase = cs.failing_tools, cs.phase
        self.add_repository, self.fail_tool = cs.add_repository, cs.fail_tool
        self.seed_uploads = cs.seed_uploads
        # Outermost, so every answer (faults included) carries the rate limit headers.
        self.app.middlewares.insert(0, self._github_headers)

    @property
    def duration(self) -> float:
        """Seconds an upload is processed (code scanning's)."""
        return self.code_scanning.duration

    @duration.setter
    def duration(self, value: float) -> None:
        self.code_scanning.duration = value

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    # --- rate limits --------------------------------------------------------------------------

    def rate_headers(self) -> dict[str, str]:
        """The `x-ratelimit-*` headers as they stand (wall clock, as GitHub's)."""
        return self.rate.headers(self.faults.server_rate_limit)

    @web.middleware
    async def _github_headers(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.rate.count(self.faults.server_rate_limit)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            resp = _error(404, "Not Found")
        resp.headers.update(self.rate_headers())
        resp.headers["x-github-request-id"] = uuid.uuid4().hex[:20].upper()
        if self.enterprise:
            resp.headers["x-github-enterprise-version"] = "3.17.0"
        return resp

    def _enforce_limit(self, max_requests: int, period: float) -> web.StreamResponse | None:
        # The primary quota (`Faults.server_rate_limit`): counted by `_github_headers`.
        if self.rate.used <= max_requests:
            return None
        return _error(self.primary_status, "API rate limit exceeded for user ID 1.", PRIMARY_DOCS)

    def _too_many(self, retry_after: float | None) -> web.StreamResponse:
        resp = _error(
            self.secondary_status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again.",
            SECONDARY_DOCS,
        )
        if retry_after is not None:
            resp.headers["Retry-After"] = str(math.ceil(retry_after))
        return resp

    # --- routes -------------------------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        base = f"{self.prefix}/repos/{{owner}}/{{repo}}/code-scanning"
        router.add_post(f"{base}/sarifs", self._upload)
        router.add_get(f"{base}/sarifs/{{sarif_id}}", self._status)
        router.add_get(f"{base}/analyses", self._analyses)

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return given in (f"Bearer {self.token}", f"token {self.token}")

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return _error(401, "Bad credentials")

    def _repository(self, request: web.Request) -> tuple[str, web.StreamResponse | None]:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if repo not in self.code_scanning.repositories:
            return repo, _error(404, "Not Found")
        if repo in self.code_scanning.disabled:
            return repo, _error(403, "GitHub Code Security is not enabled")
        return repo, None

    def api_url(self, path: str) -> str:
        """An absolute API URL, as GitHub writes them in answers."""
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        repo, refused = self._repository(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            return _error(400, "Problems parsing JSON")
        for key in body:
            if key not in BODY_KEYS:
                return _error(
                    422, f'Invalid request.\n\n"{key}" is not a permitted key.', UPLOAD_DOCS
                )
        for key in REQUIRED:
            if not isinstance(body.get(key), str):
                return _error(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.', UPLOAD_DOCS)
        sha, ref = body["commit_sha"], body["ref"]
        if not (len(sha) in (40, 64) and all(c in "0123456789abcdefABCDEF" for c in sha)):
            return _error(
                422, f"Invalid request.\n\n{sha} does not match /{COMMIT_PATTERN}/.", UPLOAD_DOCS
            )
        if not ref.startswith(("refs/heads/", "refs/tags/", "refs/pull/")):
            return _error(
                422, f"Invalid request.\n\n{ref} does not match /{REF_PATTERN}/.", UPLOAD_DOCS
            )
        try:
            log = json.loads(decode_sarif(body["sarif"]))
        except ValueError:
            return _error(
                400, "The sarif field is not gzip-compressed, Base64-encoded SARIF.", UPLOAD_DOCS
            )
        if not isinstance(log, dict):
            return _error(400, "The sarif field is not a SARIF log.", UPLOAD_DOCS)
        checkout = body.get("checkout_uri")
        upload = self.code_scanning.upload(
            repo, sha, ref, log, checkout if isinstance(checkout, str) else None
        )
        tool = body.get("tool_name")
        if isinstance(tool, str) and tool:
            for run in upload.runs:
                run.tool = run.tool if run.tool != "API" else tool
        url = self.api_url(f"repos/{repo}/code-scanning/sarifs/{upload.id}")
        return json_response({"id": upload.id, "url": url}, 202)

    def render(self, sarif_id: str) -> dict[str, Any]:
        """The status body of an upload as it stands now."""
        upload = self.code_scanning.uploads[sarif_id]
        phase = self.code_scanning.phase(upload)
        if phase == "pending":
            return {"processing_status": self.unknown_status("pending", "processing")}
        if phase == "failed":
            return {"processing_status": "failed", "analyses_url": None, "errors": upload.errors}
        return {
            "processing_status": "complete",
            "analyses_url": self.api_url(
                f"repos/{upload.repository}/code-scanning/analyses?sarif_id={upload.id}"
            ),
        }

    async def _status(self, request: web.Request) -> web.StreamResponse:
        repo, refused = self._repository(request)
        if refused is not None:
            return refused
        upload = self.code_scanning.uploads.get(request.match_info["sarif_id"])
        if upload is None or upload.repository != repo:
            return _error(404, "Not Found", STATUS_DOCS)
        return json_response(self.render(upload.id))

    def _analysis(self, upload: _Upload, run: _Run) -> dict[str, Any]:
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        created = upload.wall_start + timedelta(seconds=upload.duration / speed)
        return {
            "ref": upload.ref,
            "commit_sha": upload.commit_sha,
            "analysis_key": f"api/{run.tool}",
            "environment": "{}",
            "error": "",
            "category": run.category,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "results_count": run.results,
            "rules_count": run.rules,
            "id": run.analysis_id,
            "url": self.api_url(
                f"repos/{upload.repository}/code-scanning/analyses/{run.analysis_id}"
            ),
            "sarif_id": upload.id,
            "tool": {"name": run.tool, "guid": None, "version": run.version},
            "deletable": True,
            "warning": "",
        }

    async def _analyses(self, request: web.Request) -> web.StreamResponse:
        repo, refused = self._repository(request)
        if refused is not None:
            return refused
        wanted = request.query.get("sarif_id")
        out = []
        for upload in reversed(list(self.code_scanning.uploads.values())):
            if upload.repository != repo or (wanted is not None and upload.id != wanted):
                continue
            if self.code_scanning.phase(upload) != "complete":
                continue
            out += [self._analysis(upload, run) for run in reversed(upload.runs)]
        return json_response(out)
