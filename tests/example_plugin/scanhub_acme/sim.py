"""An Acme Scan simulator: scans walk waiting -> scanning -> clean or dirty."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scanhub.sim import SimServer, json_response, progress


class AcmeSim(SimServer):
    vendor = "acme"

    def __init__(self, *, key: str = "acme-key-0001", duration: float = 2.0, **kw: Any) -> None:
        self.key, self.duration = key, duration
        self.scans: dict[str, dict[str, Any]] = {}
        super().__init__(**kw)

    def credentials(self) -> dict[str, str]:
        return {"key": self.key}

    def add_scan(self, scan_id: str, app: str, *, issues: int = 0) -> None:
        self.scans[scan_id] = {"app": app, "issues": issues, "started": self.clock.now()}

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/scans/{id}", self._one)
        router.add_get("/v1/apps/{app}/scans", self._app)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-Acme-Key") == self.key

    def render(self, scan_id: str) -> dict[str, Any]:
        s = self.scans[scan_id]
        phase = progress(s["started"], self.clock.now(), self.duration, 2)
        state = ("waiting", "scanning", "dirty" if s["issues"] else "clean")[phase]
        return {"id": scan_id, "app": s["app"], "state": state, "issues": s["issues"]}

    async def _one(self, request: web.Request) -> web.StreamResponse:
        scan_id = request.match_info["id"]
        if scan_id not in self.scans:
            return json_response({"error": "no such scan"}, 404)
        return json_response(self.render(scan_id))

    async def _app(self, request: web.Request) -> web.StreamResponse:
        app = request.match_info["app"]
        return json_response(
            {"scans": [self.render(i) for i, s in self.scans.items() if s["app"] == app]}
        )
