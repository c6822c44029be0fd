"""AppSec+: list, trigger and get scans, as pure functions.

Source document: shared/seeds/003 ("Scans"), the whole spec. `base_url` is the API root, e.g.
`https://api.appsecplus.example.com`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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
    opt_int,
    opt_str,
    parse_time,
    raise_for_status,
    req_str,
    segment,
    where,
)
from scanhub.vendors import (
    NO_LINKS,
    BadRequestError,
    FindingCounts,
    Lifecycle,
    Scan,
    Vendor,
    Verdict,
)

VENDOR = Vendor.APPSECPLUS.value

#: Scan status -> Lifecycle. Seed 003, Response Elements: "queued, running, completed, or failed".
STATUS_MAP: Mapping[str, Lifecycle] = {
    "queued": Lifecycle.QUEUED,
    "running": Lifecycle.RUNNING,
    "completed": Lifecycle.SUCCEEDED,
    "failed": Lifecycle.FAILED,
}

#: Seed 003: "sast, dast, sca, or container".
SCAN_TYPES = ("sast", "dast", "sca", "container")

#: The error text of each documented HTTP code (seed 003, "Errors" tables).
ERROR_TEXT: Mapping[int, str] = {
    400: "Invalid application ID or scan type.",
    401: "Authentication failed.",
    403: "Insufficient permissions.",
    404: "Application or scan not found.",
    409: "Conflicting scan is already running.",
    500: "Internal server error.",
}


def auth_headers(token: str) -> dict[str, str]:
    """`Authorization: Bearer <access_token>`."""
    return {"Authorization": f"Bearer {token}"}


def build_list(
    base_url: str, *, application_id: str | None = None, status: str | None = None
) -> Request:
    """GET /scans?applicationId=&status= (both filters optional).

    `status` is the vendor's own value (queued, running, completed, failed); a canonical
    Lifecycle value (`succeeded`) is translated back for convenience.
    """
    params: list[tuple[str, str]] = []
    if application_id is not None:
        params.append(("applicationId", application_id))
    if status is not None:
        params.append(("status", _vendor_status(status)))
    return Request(
        "GET",
        join_url(base_url, "scans"),
        "list scans",
        params=tuple(params),
        headers={"Accept": "application/json"},
    )


def _vendor_status(status: str) -> str:
    wanted = str(status.value if isinstance(status, Lifecycle) else status).lower()
    if wanted in STATUS_MAP:
        return wanted
    for raw, life in STATUS_MAP.items():
        if life.value == wanted:
            return raw
    raise BadRequestError(
        f"status must be one of {', '.join(STATUS_MAP)}, got {status!r}",
        vendor=VENDOR,
        operation="list scans",
    )


def parse_list(resp: Response, *, source: str, base_url: str = "") -> list[Scan]:
    """A JSON array of scans."""
    at = where(VENDOR, source, resp)
    _check(resp, at)
    items = as_list(decode_json(resp, at), at, "the response", resp)
    return [
        _scan(i if type(i) is dict else as_object(i, at, "a scan", resp), at, resp, base_url)
        for i in items
    ]


def build_trigger(
    base_url: str,
    application_id: str,
    scan_type: str,
    triggered_by: str | None = None,
    *,
    source: str = VENDOR,
) -> Request:
    """POST /scans; `scan_type` is validated before anything is sent."""
    at = Where(VENDOR, source, "trigger scan")
    if not application_id:
        fail(BadRequestError, at, "application_id is empty")
    if scan_type not in SCAN_TYPES:
        fail(
            BadRequestError,
            at,
            f"scan_type must be one of {', '.join(SCAN_TYPES)}, got {scan_type!r}",
        )
    body = {"applicationId": application_id, "scanType": scan_type}
    if triggered_by is not None:
        body["triggeredBy"] = triggered_by
    return Request(
        "POST",
        join_url(base_url, "scans"),
        "trigger scan",
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        json=body,
        idempotent=False,
    )


def build_get(base_url: str, scan_id: str) -> Request:
    """GET /scans/{id}."""
    return Request(
        "GET",
        join_url(base_url, f"scans/{segment(scan_id, vendor=VENDOR, operation='get scan')}"),
        "get scan",
        headers={"Accept": "application/json"},
    )


def parse_scan(resp: Response, *, source: str, base_url: str = "") -> Scan:
    """One Scan object (the answer of trigger and of get)."""
    at = where(VENDOR, source, resp)
    _check(resp, at)
    return _scan(as_object(decode_json(resp, at), at, "the response", resp), at, resp, base_url)


def _check(resp: Response, at: Where) -> None:
    message: str | None = None
    if not 200 <= resp.status < 300:
        try:
            body = decode_json(resp, at)
        except Exception:
            body = None
        if isinstance(body, dict):
            message = opt_str(body, "message", "error", "detail")
        message = message or ERROR_TEXT.get(resp.status)
    raise_for_status(resp, at, message)


@functools.lru_cache(maxsize=4096)
def _scan_url(base_url: str, scan_id: str) -> str:
    """A scan's own URL, remembered: a watched scan is polled again and again."""
    return join_url(base_url, f"scans/{quote(scan_id, safe='')}")


def _scan(obj: dict[str, Any], at: Where, resp: Response, base_url: str) -> Scan:
    # Runs once per listed scan: each field is read as it is when it has the type the service
    # sends, else through the checked readers (tests/test_parse_fastpaths.py holds this equal to
    # the checked reading over generated records). The Scan is built by position.
    get = obj.get
    scan_id = get("id")
    if type(scan_id) is not str or not scan_id:
        scan_id = req_str(obj, at, "id", resp=resp)
    raw_status = get("status")
    if type(raw_status) is not str:
        raw_status = opt_str(obj, "status")
    summary = get("summary")
    findings = None
    if isinstance(summary, dict):
        sget = summary.get
        critical, high, medium, low = sget("critical"), sget("high"), sget("medium"), sget("low")
        total = sget("totalFindings")
        if type(critical) is not int:
            critical = opt_int(summary, "critical") or 0
        if type(high) is not int:
            high = opt_int(summary, "high") or 0
        if type(medium) is not int:
            medium = opt_int(summary, "medium") or 0
        if type(low) is not int:
            low = opt_int(summary, "low") or 0
        if type(total) is not int:
            total = opt_int(summary, "totalFindings")
        findings = FindingCounts(
            critical,
            high,
            medium,
            low,
            total if total is not None else critical + high + medium + low,
        )
    lifecycle = STATUS_MAP.get(raw_status) if raw_status else None
    if lifecycle is None:
        lifecycle = map_value(STATUS_MAP, raw_status.lower() if raw_status else None, VENDOR)
    completed = parse_time(get("completedAt"))
    app, scan_type, by = get("applicationId"), get("scanType"), get("triggeredBy")
    return Scan(
        Vendor.APPSECPLUS,
        at.source,
        scan_id,
        app if type(app) is str else opt_str(obj, "applicationId") or "",
        lifecycle,
        raw_status or "",
        Verdict.NONE,
        opt_str(obj, "message", "error", "errorMessage")
        if ("message" in obj or "error" in obj or "errorMessage" in obj)
        else None,
        {"self": _scan_url(base_url, scan_id)} if base_url else NO_LINKS,
        None,  # created_at: the service does not say
        parse_time(get("startedAt")),
        completed,  # finished_at
        completed,  # updated_at
        None,  # application_name
        scan_type if type(scan_type) is str else opt_str(obj, "scanType"),
        by if type(by) is str else opt_str(obj, "triggeredBy"),
        findings,
        None,  # final_scan_id
        obj,
    )
