"""ThreadFix simulator: scan upload and pending-scan status (seed 001, vendor-notes).

`APIKEY` auth with the required `Accept: application/json`, the `{"message", "success",
"responseCode": -1, "object"}` envelope on every answer, failures as HTTP 200 with
`"success": false`, the queued upload answer of 2.8.8 and later ("Scan upload process
started." with `links: [{"method", "rel", "href"}]`, the pending scan id only in the href),
epoch-millisecond times, and pending scans that walk QUEUED -> UPLOADED -> FINDINGS_GENERATING
-> CHANNEL_MERGING -> APPLICATION_MERGING -> APPLICATION_MERGED -> LINKING_DEFECTS -> DONE, or
stop at SCAN_INTERRUPTED with `error: true` and an `errorMessage`.

`edition="oss"` serves the open-source server instead: `/rest/applications/...` with no
version, no pending-scan endpoint, and the upload answering with the imported scan.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web
from attrs import define

from scanhub.sim import SimServer, json_response, progress

WALK = (
    "QUEUED",
    "UPLOADED",
    "FINDINGS_GENERATING",
    "CHANNEL_MERGING",
    "APPLICATION_MERGING",
    "APPLICATION_MERGED",
    "LINKING_DEFECTS",
)
MESSAGES = {
    "QUEUED": "Queued",
    "UPLOADED": "Uploaded",
    "FINDINGS_GENERATING": "Generating Findings",
    "CHANNEL_MERGING": "Merging Channel Findings",
    "APPLICATION_MERGING": "Merging Application Findings",
    "APPLICATION_MERGED": "Merging Application Findings Completed",
    "LINKING_DEFECTS": "Linking Defects.",
    "DONE": "Scan Processing Completed. Statistics Update Queued.",
    "SCAN_INTERRUPTED": "Scan processing was interrupted",
}


@define
class _Pending:
    id: int
    app_id: int
    name: str
    started: float
    created_ms: int
    duration: float
    interrupt: str | None
    scan_id: int


def envelope(obj: Any, message: str = "", success: bool = True, **extra: Any) -> dict[str, Any]:
    """ThreadFix's envelope; `responseCode` is always -1."""
    return {"message": message, "success": success, "responseCode": -1, "object": obj, **extra}


class ThreadFixSim(SimServer):
    """ThreadFix on loopback under `/threadfix`."""

    vendor = "threadfix"

    def __init__(
        self,
        *,
        api_key: str = "tf-api-key-0001",
        duration: float = 3.5,
        edition: str = "commercial",
        **kw: Any,
    ) -> None:
        if edition not in ("commercial", "oss"):
            raise ValueError("edition is 'commercial' or 'oss'")
        self.api_key, self.duration, self.edition = api_key, duration, edition
        self.prefix = "/threadfix"
        self.applications: set[int] = set()
        #: file names whose processing is interrupted, with the error message
        self.interruptions: dict[str, str] = {}
        self.pending: dict[int, _Pending] = {}
        self._ids = itertools.count(41)
        self._scan_ids = itertools.count(12)
        super().__init__(**kw)

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def add_application(self, app_id: int) -> None:
        """Create an application id."""
        self.applications.add(app_id)

    def interrupt(self, filename: str, error_message: str) -> None:
        """Make uploads named `filename` end SCAN_INTERRUPTED with `error_message`."""
        self.interruptions[filename] = error_message

    def seed_pending(self, app_id: int, count: int, *, duration: float | None = None) -> list[int]:
        """Create `count` pending scans directly (benchmarks); returns their ids."""
        self.applications.add(app_id)
        return [self._new(app_id, f"seed-{i}.fpr", duration).id for i in range(count)]

    def _new(self, app_id: int, name: str, duration: float | None = None) -> _Pending:
        pid = next(self._ids)
        item = _Pending(
            pid,
            app_id,
            name,
            self.clock.now(),
            int(time.time() * 1000),
            self.duration if duration is None else duration,
            self.interruptions.get(name),
            next(self._scan_ids),
        )
        self.pending[pid] = item
        return item

    def _routes(self, router: web.UrlDispatcher) -> None:
        if self.edition == "oss":
            router.add_post(f"{self.prefix}/rest/applications/{{app}}/upload", self._upload)
            return
        base = f"{self.prefix}/rest/{{version}}/applications/{{app}}"
        router.add_post(f"{base}/upload", self._upload)
        router.add_get(f"{base}/pendingScan/{{pid}}/status", self._status)

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("Authorization") == f"APIKEY {self.api_key}" or (
            request.query.get("apiKey") == self.api_key
        )
        return key and request.headers.get("Accept") == "application/json"

    def _deny(self, request: web.Request) -> web.StreamResponse:
        # ThreadFix answers HTTP 200 with success: false.
        return json_response(envelope(None, "Authentication failed, check your API Key.", False))

    def _app(self, request: web.Request) -> int | None:
        try:
            app = int(request.match_info["app"])
        except ValueError:
            return None
        return app if app in self.applications else None

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        app = self._app(request)
        if app is None:
            return json_response(
                envelope(
                    None, f"Couldn't find Application with ID {request.match_info['app']}.", False
                )
            )
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return json_response(envelope(None, "No file was uploaded.", False))
        item = self._new(app, upload.filename)
        if self.edition == "oss":
            return json_response(envelope(self._imported(item)))
        version = request.match_info["version"]
        path = f"rest/{version}/applications/{app}/pendingScan/{item.id}/status"
        href = f"{self.root}{self.prefix}/{path}"
        return json_response(
            envelope(
                "Scan upload process started.",
                "",
                links=[{"method": "GET", "rel": "related", "href": href}],
            )
        )

    def _imported(self, item: _Pending) -> dict[str, Any]:
        """The open-source server's REST view of an imported `Scan` entity."""
        return {
            "id": item.scan_id,
            "importTime": item.created_ms,
            "scannerName": "Fortify SCA" if item.name.endswith(".fpr") else "OWASP ZAP",
            "numberTotalVulnerabilities": 7,
            "numberCriticalVulnerabilities": 1,
            "numberHighVulnerabilities": 2,
            "numberMediumVulnerabilities": 3,
            "numberLowVulnerabilities": 1,
            "numberInfoVulnerabilities": 0,
            "numberNewVulnerabilities": 7,
            "numberOldVulnerabilities": 0,
            "numberClosedVulnerabilities": 0,
            "numberResurfacedVulnerabilities": 0,
        }

    async def _status(self, request: web.Request) -> web.StreamResponse:
        app = self._app(request)
        try:
            item = self.pending.get(int(request.match_info["pid"]))
        except ValueError:
            item = None
        if app is None or item is None or item.app_id != app:
            return json_response(envelope(None, "Couldn't find Pending Scan.", False))
        return json_response(self.render(item.id))

    def render(self, pending_scan_id: int) -> dict[str, Any]:
        """The pending-scan status envelope as it stands now (seed 001 sample shape)."""
        item = self.pending[pending_scan_id]
        now = self.clock.now()
        phase = progress(item.started, now, item.duration, len(WALK))
        error_message = None
        if phase < len(WALK):
            status = WALK[phase]
            if item.interrupt and phase >= 3:
                status, error_message = "SCAN_INTERRUPTED", item.interrupt
        elif item.interrupt:
            status, error_message = "SCAN_INTERRUPTED", item.interrupt
        else:
            status = "DONE"
        status = self.unknown_status(status, "RESCANNING") if error_message is None else status
        message = MESSAGES.get(status, status)
        modified = item.created_ms + int(max(0.0, now - item.started) * 1000)
        obj = {
            "id": item.id,
            "modifiedDate": modified,
            "active": status not in ("DONE", "SCAN_INTERRUPTED"),
            "fileDataList": [{"id": item.id * 3, "originalName": item.name}],
            "appId": item.app_id,
            "errorMessage": error_message,
            "status": status,
            "error": error_message is not None,
            "scanId": item.scan_id if status == "DONE" else None,
            "type": "upload",
            "name": item.name,
            "time": item.created_ms,
            "scanMessage": message,
        }
        return envelope(obj, message)
