"""AppSec+ simulator: list, trigger and get scans (seed 003).

Bearer auth; scans go queued -> running -> completed (with a findings summary) or failed; 400 for
an invalid application id or scan type, 404 for an unknown application or scan, 409 when a scan
of the same application and type is already queued or running.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from attrs import define

from scanhub.sim import SimServer, json_response, progress

SCAN_TYPES = ("sast", "dast", "sca", "container")
STATUSES = ("queued", "running", "completed", "failed")


@define
class _Scan:
    id: str
    app: str
    scan_type: str
    triggered_by: str | None
    started: float
    wall_start: datetime
    duration: float
    fails: bool


class AppSecPlusSim(SimServer):
    """AppSec+ on loopback."""

    vendor = "appsecplus"

    def __init__(self, *, token: str = "asp-token-0001", duration: float = 3.0, **kw: Any) -> None:
        self.token, self.duration = token, duration
        self.applications: set[str] = set()
        #: (application, scan type) pairs whose scans fail
        self.failing: set[tuple[str, str]] = set()
        self.scans: dict[str, _Scan] = {}
        self._ids = itertools.count(1)
        super().__init__(**kw)

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def add_application(self, app_id: str) -> None:
        """Create an application id."""
        self.applications.add(app_id)

    def fail(self, app_id: str, scan_type: str) -> None:
        """Make scans of this application and type end `failed`."""
        self.failing.add((app_id, scan_type))

    def seed_scans(
        self,
        app_id: str,
        count: int,
        *,
        duration: float | None = None,
        types: tuple[str, ...] = SCAN_TYPES,
    ) -> list[str]:
        """Create `count` scans directly (benchmarks), of `types` in turn; returns their ids."""
        self.applications.add(app_id)
        return [self._new(app_id, types[i % len(types)], "seed", duration).id for i in range(count)]

    def _new(
        self, app: str, scan_type: str, by: str | None, duration: float | None = None
    ) -> _Scan:
        sid = f"scan-{next(self._ids):03d}"
        scan = _Scan(
            sid,
            app,
            scan_type,
            by,
            self.clock.now(),
            datetime.now(UTC),
            self.duration if duration is None else duration,
            (app, scan_type) in self.failing,
        )
        self.scans[sid] = scan
        return scan

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/scans", self._list)
        router.add_post("/scans", self._trigger)
        router.add_get("/scans/{id}", self._get)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return json_response({"message": "Authentication failed."}, 401)

    def _status(self, scan: _Scan) -> str:
        phase = progress(scan.started, self.clock.now(), scan.duration, 2)
        if phase < 2:
            return ("queued", "running")[phase]
        return "failed" if scan.fails else "completed"

    def _body(self, scan: _Scan) -> dict[str, Any]:
        status = self._status(scan)
        started = scan.wall_start + timedelta(seconds=scan.duration / 4)
        body: dict[str, Any] = {
            "id": scan.id,
            "applicationId": scan.app,
            "scanType": scan.scan_type,
            "status": self.unknown_status(status, "paused") if status == "running" else status,
            "triggeredBy": scan.triggered_by,
            "startedAt": None if status == "queued" else _iso(started),
            "completedAt": None,
            "summary": None,
        }
        if status in ("completed", "failed"):
            body["completedAt"] = _iso(scan.wall_start + timedelta(seconds=scan.duration))
        if status == "completed":
            n = int(scan.id.split("-")[1])
            counts = {"critical": n % 3, "high": n % 7, "medium": n % 11, "low": n % 13}
            body["summary"] = {"totalFindings": sum(counts.values()), **counts}
        return body

    def render(self, scan_id: str) -> dict[str, Any]:
        """The Scan object of seed 003 for this scan as it stands now."""
        return self._body(self.scans[scan_id])

    async def _list(self, request: web.Request) -> web.StreamResponse:
        app, status = request.query.get("applicationId"), request.query.get("status")
        if status is not None and status not in STATUSES:
            return json_response({"message": "Invalid status."}, 400)
        out = [self._body(s) for s in self.scans.values() if app is None or s.app == app]
        return json_response([s for s in out if status is None or s["status"] == status])

    async def _trigger(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or body.get("scanType") not in SCAN_TYPES
            or not isinstance(body.get("applicationId"), str)
        ):
            return json_response({"message": "Invalid application ID or scan type."}, 400)
        app, scan_type = body["applicationId"], body["scanType"]
        if app not in self.applications:
            return json_response({"message": "Application not found."}, 404)
        for scan in self.scans.values():
            if (
                scan.app == app
                and scan.scan_type == scan_type
                and self._status(scan) in ("queued", "running")
            ):
                return json_response({"message": "Conflicting scan is already running."}, 409)
        scan = self._new(app, scan_type, body.get("triggeredBy"))
        return json_response(self._body(scan), 201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        scan = self.scans.get(request.match_info["id"])
        if scan is None:
            return json_response({"message": "Scan not found."}, 404)
        return json_response(self._body(scan))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
