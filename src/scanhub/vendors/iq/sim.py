"""Sonatype IQ Server simulator: application lookup, promote scan, promotion status (seed 000).

Behaves as the documents and the server's own `ApiPromoteScanServiceV2` say: Basic auth,
relative `statusUrl`, PENDING then COMPLETED (with relative report links built from the
application's *public* id) or FAILED with a `reason`, plain-text error bodies, 400 "Stage develop
is invalid." for `develop` as a target, 400 "A scan with ID ... does not exist" for an unknown or
purged scan id, status ids forgotten `status_ttl` simulated seconds (two hours) after the
request with the server's 404 text, the Cloud 429 text without `Retry-After`, and the
`/platform` prefix when `cloud=True`.

Webhooks: with URLs in `webhook_urls`, a finished promotion's policy evaluation is delivered to
each as an `iq:applicationEvaluation` POST with `X-Nexus-Webhook-Id`, a fresh
`X-Nexus-Webhook-Delivery` and `X-Nexus-Webhook-Signature` (hex HMAC-SHA1 of the body with
`webhook_secret`), once, and never retried (as IQ does).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from attrs import define

from scanhub.sim import SimServer, json_response

CLOUD_429 = (
    "Rate limit exceeded. Please wait 5 minutes. If this is a recurring issue, reach out to your "
    "administrator or contact your Sonatype support representative."
)
STAGES = {"build", "stage-release", "release", "operate", "develop", "source"}
TARGETS = STAGES - {"develop"}


@define
class _Promotion:
    public_id: str
    app_id: str
    status_id: str
    started: float
    duration: float
    fail_reason: str | None
    report_id: str


class IQSim(SimServer):
    """Sonatype IQ Server on loopback."""

    vendor = "iq"

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "admin123",
        cloud: bool = False,
        duration: float = 3.0,
        status_ttl: float = 2 * 3600.0,
        webhook_secret: str = "iq-webhook-secret-0001",
        **kw: Any,
    ) -> None:
        self.status_ttl = status_ttl
        self.webhook_secret = webhook_secret
        #: Where finished evaluations are delivered (empty: no webhooks).
        self.webhook_urls: list[str] = []
        #: Deliveries sent: (url, HTTP status or None when it failed).
        self.deliveries: list[tuple[str, int | None]] = []
        self._notified: set[str] = set()
        self._notifier: asyncio.Task[None] | None = None
        self.username, self.password, self.cloud, self.duration = (
            username,
            password,
            cloud,
            duration,
        )
        self.prefix = "/platform" if cloud else ""
        #: publicId -> internal id
        self.applications: dict[str, str] = {}
        #: internal id -> scan ids that still exist (only the latest, by default, like IQ)
        self.scans: dict[str, list[str]] = {}
        #: target stages (per internal app id) whose promotion fails, with the reason
        self.failures: dict[tuple[str, str], str] = {}
        self.promotions: dict[str, _Promotion] = {}
        self._ids = itertools.count(1)
        super().__init__(**kw)

    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    async def start(self) -> str:
        url = await super().start()
        self._notifier = asyncio.create_task(self._notify_loop())
        return url

    async def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
            self._notifier = None
        await super().stop()

    async def _notify_loop(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                await asyncio.sleep(0.25)
                if not self.webhook_urls:
                    continue
                for promo in list(self.promotions.values()):
                    done = self.clock.now() - promo.started >= promo.duration
                    if not done or promo.fail_reason is not None:
                        continue
                    if promo.status_id in self._notified:
                        continue
                    self._notified.add(promo.status_id)
                    body = json.dumps(self.evaluation_payload(promo.status_id)).encode()
                    for url in list(self.webhook_urls):
                        await self._deliver(session, url, body)

    async def _deliver(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha1).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Nexus-Webhook-Id": "iq:applicationEvaluation",
            "X-Nexus-Webhook-Delivery": str(uuid.uuid4()),
            "X-Nexus-Webhook-Signature": signature,
        }
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                self.deliveries.append((url, resp.status))
        except aiohttp.ClientError:
            self.deliveries.append((url, None))  # IQ never retries a failed delivery

    def evaluation_payload(self, status_id: str) -> dict[str, Any]:
        """The `iq:applicationEvaluation` delivery of a finished promotion (vendor-notes)."""
        promo = self.promotions[status_id]
        critical = int(promo.report_id[:2], 16) % 3
        severe, moderate = 2, 4
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return {
            "timestamp": when,
            "initiator": "scanhub-sim",
            "id": uuid.uuid4().hex,
            "applicationEvaluation": {
                "application": {
                    "id": promo.app_id,
                    "publicId": promo.public_id,
                    "name": promo.public_id,
                    "organizationId": "81ae1fc7875441f2bec28d78d0f467ec",
                },
                "policyEvaluationId": str(uuid.uuid5(uuid.NAMESPACE_URL, status_id)),
                "stage": "build",
                "ownerId": promo.app_id,
                "evaluationDate": when,
                "affectedComponentCount": critical + severe + moderate,
                "criticalComponentCount": critical,
                "severeComponentCount": severe,
                "moderateComponentCount": moderate,
                "outcome": "fail" if critical else "warn",
                "reportId": promo.report_id,
                "isForLatestScan": True,
            },
        }

    def add_application(self, public_id: str, *, scans: int = 1) -> tuple[str, list[str]]:
        """Create an application with `scans` scan ids; returns (internal id, scan ids)."""
        app_id = uuid.uuid5(uuid.NAMESPACE_URL, f"iq-app/{public_id}").hex
        self.applications[public_id] = app_id
        ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"iq-scan/{public_id}/{i}").hex for i in range(scans)]
        self.scans[app_id] = ids
        return app_id, ids

    def fail_stage(self, app_id: str, stage: str, reason: str) -> None:
        """Make promotions of `app_id` to `stage` end FAILED with `reason` ("" sends null)."""
        self.failures[(app_id, stage)] = reason

    def seed_promotions(
        self, app_id: str, count: int, *, duration: float | None = None
    ) -> list[str]:
        """Create `count` promotions directly (benchmarks); returns their status ids."""
        ids = []
        for _ in range(count):
            sid = f"{next(self._ids):032x}"
            self.promotions[sid] = _Promotion(
                self._public_id(app_id),
                app_id,
                sid,
                self.clock.now(),
                self.duration if duration is None else duration,
                None,
                uuid.uuid4().hex,
            )
            ids.append(sid)
        return ids

    def _public_id(self, app_id: str) -> str:
        return next((p for p, i in self.applications.items() if i == app_id), app_id)

    def _routes(self, router: web.UrlDispatcher) -> None:
        p = self.prefix
        router.add_get(f"{p}/api/v2/applications", self._lookup)
        router.add_post(f"{p}/api/v2/evaluation/applications/{{app}}/promoteScan", self._promote)
        router.add_get(f"{p}/api/v2/evaluation/applications/{{app}}/status/{{sid}}", self._status)

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="Unauthorized", content_type="text/plain")

    def _too_many(self, retry_after: float | None) -> web.StreamResponse:
        # Sonatype Cloud's documented answer: the text, and no Retry-After header.
        return web.Response(status=429, text=CLOUD_429, content_type="text/plain")

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        public_id = request.query.get("publicId", "")
        app_id = self.applications.get(public_id)
        apps: list[dict[str, Any]] = []
        if app_id is not None:
            apps.append(
                {
                    "id": app_id,
                    "publicId": public_id,
                    "name": public_id,
                    "organizationId": "81ae1fc7875441f2bec28d78d0f467ec",
                    "contactUserName": None,
                    "applicationTags": [],
                }
            )
        return json_response({"applications": apps})

    async def _promote(self, request: web.Request) -> web.StreamResponse:
        app_id = request.match_info["app"]
        if app_id not in self.scans:
            return web.Response(status=404, text=f"Application {app_id} not found")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="Malformed JSON")
        if not isinstance(body, dict):
            return web.Response(status=400, text="Malformed JSON")
        target = body.get("targetStageId")
        scan_id, source_stage = body.get("scanId"), body.get("sourceStageId")
        if not isinstance(target, str) or target not in TARGETS:
            return web.Response(status=400, text=f"Stage {target} is invalid.")
        if (scan_id is None) == (source_stage is None):
            return web.Response(status=400, text="Invalid promote scan request")
        if scan_id is not None and scan_id not in self.scans[app_id]:
            return web.Response(
                status=400,
                text=f"A scan with ID {scan_id} does not exist on the server and may be obsolete. "
                "Note that only the most recent scan for the given stage can be promoted.",
            )
        sid = uuid.uuid4().hex
        self.promotions[sid] = _Promotion(
            self._public_id(app_id),
            app_id,
            sid,
            self.clock.now(),
            self.duration,
            self.failures.get((app_id, target)),
            uuid.uuid4().hex,
        )
        return json_response({"statusUrl": f"api/v2/evaluation/applications/{app_id}/status/{sid}"})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        sid, app = request.match_info["sid"], request.match_info["app"]
        promo = self.promotions.get(sid)
        if (
            promo is None
            or promo.app_id != app
            or self.clock.now() - promo.started > self.status_ttl
        ):
            return web.Response(
                status=404,
                text=f"Scan status with id {sid} for application with id {app} was not found.",
            )
        return json_response(self.render(promo.status_id))

    def render(self, status_id: str) -> dict[str, Any]:
        """The status body of a promotion as it stands now (seed 000, step 5)."""
        promo = self.promotions[status_id]
        if self.clock.now() - promo.started < promo.duration:
            return {"status": self.unknown_status("PENDING", "QUEUED_FOR_REVIEW")}
        if promo.fail_reason is not None:
            # An empty reason is sent as null: the server's reason is the failure's message,
            # which can be null.
            return {"status": "FAILED", "reason": promo.fail_reason or None}
        # Every link names the application by its public id (getScanStatus does so).
        report = f"application/{promo.public_id}/report/{promo.report_id}"
        return {
            "status": "COMPLETED",
            "reportHtmlUrl": f"ui/links/{report}",
            "embeddableReportHtmlUrl": f"ui/links/{report}/embeddable",
            "reportPdfUrl": f"ui/links/{report}/pdf",
            "reportDataUrl": f"api/v2/applications/{promo.public_id}/reports/{promo.report_id}",
        }
