"""JFrog AppTrust simulator: promote, paged promotions with gates, one promotion (seed 004).

Bearer auth; `{"promotions", "total", "limit", "offset"}` pages with `filter_by=field:value`,
`order_by` and `order_asc`; records in both documented shapes (`promoted_by` + `promoted` like
the first sample, `created_by` + `created` like the second) with `created_millis` as the id;
`evaluations.exit_gate` / `entry_gate` with pass / warn / fail decisions (the release gate of
`POST .../release` says passed / warn / failed); status STARTED ->
PROCESSING -> COMPLETED, or FAILED when the entry gate fails; errors as
`{"errors":[{"status", "message"}]}`.

`add_synthetic_version` serves a version with any number of completed promotions computed from
their index, so paging through 100,000 of them costs the simulator no memory.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from attrs import define

from scanhub.sim import SimServer, json_response, progress

BASE_MILLIS = 1684477304916


@define
class _Promo:
    millis: int
    release: bool
    key: str
    version: str
    source_stage: str
    target_stage: str
    by: str
    started: float
    duration: float
    entry_decision: str
    explanation: str | None


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _errors(status: int, message: str) -> web.Response:
    return json_response({"errors": [{"status": status, "message": message}]}, status)


def _field_error(field: str, message: str) -> web.Response:
    # Validation errors name the field and a code beside the status and message.
    return json_response(
        {"errors": [{"status": 400, "code": "BAD_REQUEST", "field": field, "message": message}]},
        400,
    )


class AppTrustSim(SimServer):
    """JFrog AppTrust on loopback under `/apptrust/api/v1`."""

    vendor = "apptrust"

    def __init__(
        self, *, token: str = "jfrog-access-token-0001", duration: float = 3.0, **kw: Any
    ) -> None:
        self.token, self.duration = token, duration
        self.prefix = "/apptrust/api/v1"
        self.versions: dict[tuple[str, str], list[_Promo]] = {}
        self.synthetic: dict[tuple[str, str], int] = {}
        #: (application, target stage) -> (entry gate decision, explanation)
        self.gates: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.stage: dict[tuple[str, str], str] = {}
        # Promotions made here are stamped with the wall clock, as a server's are.
        self._millis = int(time.time() * 1000)
        super().__init__(**kw)

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def add_version(self, key: str, version: str, stage: str = "DEV") -> None:
        """Create an application version sitting in `stage`."""
        self.versions.setdefault((key, version), [])
        self.stage[(key, version)] = stage

    def gate(
        self, key: str, target_stage: str, decision: str, explanation: str | None = None
    ) -> None:
        """Set the entry gate decision (pass, warn, fail, error) for promotions to a stage
        (`PROD` also decides the release gate of a release)."""
        self.gates[(key, target_stage)] = (decision, explanation)

    def add_synthetic_version(self, key: str, version: str, count: int) -> None:
        """A version with `count` finished promotions, computed on demand."""
        self.synthetic[(key, version)] = count

    def seed_promotions(
        self, key: str, version: str, count: int, *, duration: float | None = None
    ) -> list[str]:
        """Create `count` promotions directly (benchmarks); returns their ids."""
        self.add_version(key, version)
        return [str(self._new(key, version, "QA", "seed", duration).millis) for _ in range(count)]

    def _new(
        self,
        key: str,
        version: str,
        target: str,
        by: str,
        duration: float | None = None,
        *,
        release: bool = False,
    ) -> _Promo:
        self._millis += 1000
        decision, explanation = self.gates.get((key, target), ("pass", None))
        promo = _Promo(
            self._millis,
            release,
            key,
            version,
            self.stage.get((key, version), "DEV"),
            target,
            by,
            self.clock.now(),
            self.duration if duration is None else duration,
            decision,
            explanation,
        )
        self.versions.setdefault((key, version), []).append(promo)
        return promo

    def _routes(self, router: web.UrlDispatcher) -> None:
        base = f"{self.prefix}/applications/{{key}}/versions/{{version}}"
        router.add_post(f"{base}/promote", self._promote)
        router.add_post(f"{base}/release", self._release)
        router.add_get(f"{base}/promotions", self._list)
        router.add_get(f"{base}/promotions/{{millis}}", self._one)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def _deny(self, request: web.Request) -> web.StreamResponse:
        return _errors(401, "Bad Credentials")

    def _record(self, p: _Promo) -> dict[str, Any]:
        phase = progress(p.started, self.clock.now(), p.duration, 2)
        done = phase >= 2
        blocked = p.entry_decision in ("fail", "error")
        status = (
            ("FAILED" if blocked else "COMPLETED") if done else ("STARTED", "PROCESSING")[phase]
        )
        if status == "PROCESSING":
            status = self.unknown_status(status, "AWAITING_APPROVAL")
        rec: dict[str, Any] = {
            "status": status,
            "project_key": "catalina",
            "application_key": p.key,
            "application_version": p.version,
            "source_stage": p.source_stage,
            "target_stage": p.target_stage,
            "created_millis": p.millis,
        }
        # Both documented record shapes, alternating, as the vendor's own samples do.
        if p.millis // 1000 % 2:
            rec.update(promoted_by=p.by, promoted=_iso(p.millis))
        else:
            rec.update(created_by=p.by, created=_iso(p.millis))
        if done:
            rec["evaluations"] = self._evaluations(p)
            if blocked:
                rec["message"] = p.explanation or "Promotion blocked by entry gate"
        return rec

    def _evaluations(self, p: _Promo) -> dict[str, Any]:
        gate: dict[str, Any] = {"stage": p.target_stage, "eval_id": f"eval-entry-{p.millis}"}
        if p.release:
            # The release gate speaks in past participles (Release Application Version).
            words = {"pass": "passed", "fail": "failed"}
            gate["decision"] = words.get(p.entry_decision, p.entry_decision)
        else:
            gate["decision"] = p.entry_decision
        if p.explanation:
            gate["explanation"] = p.explanation
        return {
            "exit_gate": {
                "stage": p.source_stage,
                "eval_id": f"eval-exit-{p.millis}",
                "decision": "pass",
            },
            "release_gate" if p.release else "entry_gate": gate,
        }

    def _outcome(self, p: _Promo, promotion_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """The synchronous promote / release answer: the outcome as `success` or `failure`."""
        blocked = p.entry_decision in ("fail", "error")
        return {
            "application_key": p.key,
            "application_version": p.version,
            "source_stage": p.source_stage,
            "target_stage": p.target_stage,
            "promotion_type": promotion_type,
            "status": "failure" if blocked else "success",
            "message": (p.explanation or "Promotion blocked by entry gate")
            if blocked
            else f"Application version promoted to {p.target_stage}",
            "included_repository_keys": body.get("included_repository_keys", []),
            "excluded_repository_keys": body.get("excluded_repository_keys", []),
            "artifact_additional_properties": [],
            "promoted": _iso(p.millis),
            "evaluations": self._evaluations(p),
        }

    def render(self, key: str, version: str, promotion_id: str) -> dict[str, Any]:
        """One promotion record as it stands now (seed 004 sample shapes)."""
        for p in self.versions[(key, version)]:
            if str(p.millis) == promotion_id:
                return self._record(p)
        raise KeyError(promotion_id)

    def synthetic_record(self, key: str, version: str, index: int) -> dict[str, Any]:
        """The `index`-th promotion of a synthetic version (finished, gates passed)."""
        millis = BASE_MILLIS - index * 1000
        return {
            "status": "COMPLETED",
            "project_key": "catalina",
            "application_key": key,
            "application_version": version,
            "source_stage": "DEV",
            "target_stage": "QA",
            "created_by": "bot",
            "created": _iso(millis),
            "created_millis": millis,
            "evaluations": {
                "exit_gate": {"stage": "DEV", "eval_id": f"x-{index}", "decision": "pass"},
                "entry_gate": {"stage": "QA", "eval_id": f"e-{index}", "decision": "pass"},
            },
        }

    async def _promote(self, request: web.Request) -> web.StreamResponse:
        return await self._start(request, release=False)

    async def _release(self, request: web.Request) -> web.StreamResponse:
        return await self._start(request, release=True)

    async def _start(self, request: web.Request, *, release: bool) -> web.StreamResponse:
        key, version = request.match_info["key"], request.match_info["version"]
        if (key, version) not in self.versions:
            return _errors(404, f"Application version {key}/{version} not found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _errors(400, "a JSON object is required")
        target = "PROD" if release else body.get("target_stage")
        if not isinstance(target, str) or not target:
            return _field_error("target_stage", "target_stage is required")
        promotion_type = body.get("promotion_type", "copy")
        if promotion_type not in ("copy", "move", "keep", "dry_run"):
            return _field_error("promotion_type", f"invalid promotion type: {promotion_type}")
        run_async = request.query.get("async", "false") == "true"  # the vendor's default: sync
        duration = None if run_async else 0.0  # a synchronous call returns when it is done
        promo = self._new(key, version, target, "admin", duration, release=release)
        if run_async:
            return json_response(self._record(promo), 200)
        return json_response(self._outcome(promo, promotion_type, body), 201)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        key, version = request.match_info["key"], request.match_info["version"]
        q = request.query
        try:
            offset, limit = int(q.get("offset", "0")), int(q.get("limit", "1000"))
        except ValueError:
            return _errors(400, "offset and limit must be integers")
        synthetic = self.synthetic.get((key, version))
        if synthetic is not None:
            page = [
                self.synthetic_record(key, version, i)
                for i in range(offset, min(synthetic, offset + limit))
            ]
            return json_response(
                {"promotions": page, "total": synthetic, "limit": limit, "offset": offset}
            )
        if (key, version) not in self.versions:
            return _errors(404, f"Application version {key}/{version} not found")
        records = [self._record(p) for p in self.versions[(key, version)]]
        for spec in q.getall("filter_by", []):
            name, _, value = spec.partition(":")
            field = {"promoted_by": ("promoted_by", "created_by")}.get(name, (name,))
            records = [
                r
                for r in records
                if any(str(r.get(f, "")).lower() == value.lower() for f in field)
                or (name == "status" and _status_matches(r["status"], value))
            ]
        records.sort(key=lambda r: r["created_millis"], reverse=q.get("order_asc") != "true")
        return json_response(
            {
                "promotions": records[offset : offset + limit],
                "total": len(records),
                "limit": limit,
                "offset": offset,
            }
        )

    async def _one(self, request: web.Request) -> web.StreamResponse:
        # Get Application Version Promotion Details: stage, creator, time, artifacts; no status.
        key, version = request.match_info["key"], request.match_info["version"]
        for p in self.versions.get((key, version), []):
            if str(p.millis) == request.match_info["millis"]:
                return json_response(
                    {
                        "target_stage": p.target_stage,
                        "created_by": p.by,
                        "created": _iso(p.millis),
                        "created_millis": p.millis,
                        "artifacts": [
                            {
                                "path": f"{key}-{p.target_stage.lower()}-generic-local/{key}/"
                                f"{version}/{key}-{version}.tgz",
                                "checksum": f"{p.millis:064x}"[-64:],
                                "package_type": "generic",
                                "package_name": key,
                                "package_version": version,
                            }
                        ],
                    }
                )
        return _errors(404, "Promotion not found")


def _status_matches(status: str, wanted: str) -> bool:
    # The filter docs speak of success / pending / failed while records say COMPLETED etc.
    aliases = {"success": {"completed"}, "pending": {"started", "processing"}}
    return status.lower() in aliases.get(wanted.lower(), set())
