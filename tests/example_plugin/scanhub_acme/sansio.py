"""Acme Scan's vendor logic, without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from scanhub.sansio import (
    Request,
    Response,
    as_list,
    as_object,
    decode_json,
    join_url,
    map_value,
    opt_int,
    opt_str,
    raise_for_status,
    req_str,
    where,
)
from scanhub.vendors import Lifecycle, Scan, Verdict

VENDOR = "acme"

STATUS_MAP: Mapping[str, Lifecycle] = {
    "waiting": Lifecycle.QUEUED,
    "scanning": Lifecycle.RUNNING,
    "clean": Lifecycle.SUCCEEDED,
    "dirty": Lifecycle.SUCCEEDED,
    "crashed": Lifecycle.FAILED,
}
VERDICT_MAP: Mapping[str, Verdict] = {"clean": Verdict.PASS, "dirty": Verdict.FAIL}


def build_scan(base_url: str, scan_id: str) -> Request:
    return Request("GET", join_url(base_url, f"v1/scans/{quote(scan_id, safe='')}"), "get scan")


def build_app_scans(base_url: str, app: str) -> Request:
    return Request("GET", join_url(base_url, f"v1/apps/{quote(app, safe='')}/scans"), "list scans")


def _scan(obj: dict[str, Any], source: str, resp: Response) -> Scan:
    at = where(VENDOR, source, resp)
    state = opt_str(obj, "state") or ""
    issues = opt_int(obj, "issues")
    return Scan(
        VENDOR,
        source,
        req_str(obj, at, "id", resp=resp),
        opt_str(obj, "app") or "",
        map_value(STATUS_MAP, state, VENDOR),
        state,
        VERDICT_MAP.get(state, Verdict.NONE),
        message=f"{issues} issues" if issues else None,
        raw=obj,
    )


def parse_scan(resp: Response, *, source: str) -> Scan:
    at = where(VENDOR, source, resp)
    raise_for_status(resp, at, None)
    return _scan(as_object(decode_json(resp, at), at, "the scan", resp), source, resp)


def parse_app_scans(resp: Response, *, source: str) -> list[Scan]:
    at = where(VENDOR, source, resp)
    raise_for_status(resp, at, None)
    body = as_object(decode_json(resp, at), at, "the answer", resp)
    scans = as_list(body.get("scans"), at, "`scans`", resp)
    return [_scan(as_object(s, at, "a scan", resp), source, resp) for s in scans]
