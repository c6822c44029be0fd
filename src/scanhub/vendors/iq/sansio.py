"""Sonatype IQ Server (Lifecycle): promote scan and its status, as pure functions.

Source documents: shared/seeds/000 (Promote Scan REST API), shared/seeds/002 (Cloud `/platform`
prefix, rate limit, CSRF, webhooks), shared/vendor-notes.md, and the IQ server's own
`ApiPromoteScanServiceV2` (com.sonatype.insight.brain.api.v2.service): status ids live in a cache
that expires two hours after the promote request, after which the status call answers 404 "Scan
status with id ... for application with id ... was not found."; `develop` is refused as a target
("Stage develop is invalid."); report links are built with the application's public id; a
failed promotion's `reason` is the failure's message, which may be null.

`base_url` is the server root including any prefix: `http://localhost:8070` on premises,
`https://TENANT.sonatype.app/platform` on Sonatype Cloud. Every path below is joined onto it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
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
    map_verdict,
    opt_int,
    opt_str,
    parse_time,
    raise_for_status,
    req_str,
    segment,
    where,
)
from scanhub.vendors import (
    BadRequestError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Promotion,
    Scan,
    ScanhubError,
    Vendor,
    Verdict,
)

VENDOR = Vendor.IQ.value

#: Promote-scan status -> Lifecycle. Seed 000, "Step 5 - Check the Status": exactly these three.
STATUS_MAP: Mapping[str, Lifecycle] = {
    "PENDING": Lifecycle.RUNNING,  # "the scan promotion is pending (still in progress)"
    "COMPLETED": Lifecycle.SUCCEEDED,  # report links are present
    "FAILED": Lifecycle.FAILED,  # "in a rare case, the scan promotion failed", with `reason`
}

#: Third-party (SBOM) scan `policyAction` -> Verdict (vendor-notes.md). IQ's "None" means the
#: evaluation ran and no policy asked for an action, which is a pass, not a missing verdict.
POLICY_ACTION_MAP: Mapping[str, Verdict] = {
    "None": Verdict.PASS,
    "Warning": Verdict.WARN,
    "Failure": Verdict.FAIL,
}

#: Webhook `applicationEvaluation.outcome` -> Verdict, compared lower-case (seed 002 shows
#: "fail"; the other values are IQ's policy-action vocabulary in the same lower case).
OUTCOME_MAP: Mapping[str, Verdict] = {
    "fail": Verdict.FAIL,
    "failure": Verdict.FAIL,
    "warn": Verdict.WARN,
    "warning": Verdict.WARN,
    "pass": Verdict.PASS,
    "none": Verdict.PASS,
}

#: Stages documented for promote scan (seed 000) plus the source-control stages (vendor-notes).
STAGES = ("build", "stage-release", "release", "operate", "develop", "source")
#: Valid promote targets: every stage but `develop`, which the server refuses as a target
#: (`isValidTargetStage` in ApiPromoteScanServiceV2).
PROMOTE_TARGETS = ("build", "stage-release", "release", "operate", "source")
#: How long the server keeps a promote-scan status id (a cache with expireAfterWrite 2 hours).
STATUS_TTL = 2 * 3600.0
#: The 404 text of a status id the server no longer (or never) knew.
_STATUS_GONE = re.compile(r"scan status with id .* was not found", re.IGNORECASE | re.DOTALL)

#: Report links of a COMPLETED status, in the order the vendor documents them.
REPORT_LINKS = (
    ("report_html", "reportHtmlUrl"),
    ("report_embeddable_html", "embeddableReportHtmlUrl"),
    ("report_pdf", "reportPdfUrl"),
    ("report_data", "reportDataUrl"),
)

#: Sonatype Cloud's documented limit: 1,500 requests per IP per 5 minutes (seed 002).
CLOUD_RATE_LIMIT = (1500, 300.0)
#: Cloud's 429 says "Please wait 5 minutes" and sends no Retry-After.
CLOUD_429_WAIT = 300.0

_STATUS_PATH = re.compile(r"evaluation/applications/([^/]+)/status/([^/?#]+)")


def auth_headers(username: str, password: str) -> dict[str, str]:
    """HTTP Basic; a user token pair (userCode, passCode) is sent the same way."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def csrf_headers(token: str) -> dict[str, str]:
    """Reverse-proxy CSRF protection: the same arbitrary value as header and cookie (seed 002).
    Sent on mutating requests only."""
    return {"X-CSRF-TOKEN": token, "Cookie": f"CLM-CSRF-TOKEN={token}"}


# --- Application lookup ----------------------------------------------------------------------


def build_application_lookup(base_url: str, public_id: str) -> Request:
    """GET /api/v2/applications?publicId=P (the promote and status paths need the internal id)."""
    return Request(
        "GET",
        join_url(base_url, "api/v2/applications"),
        "application lookup",
        params=(("publicId", public_id),),
        headers={"Accept": "application/json"},
    )


def parse_application_lookup(resp: Response, *, source: str, public_id: str) -> str:
    """The internal id of the application; an empty list is a `NotFoundError`."""
    at = where(VENDOR, source, resp)
    raise_for_status(resp, at, _error_text(resp))
    body = as_object(decode_json(resp, at), at, "the response", resp)
    apps = as_list(body.get("applications"), at, "`applications`", resp)
    candidates = [app for app in apps if isinstance(app, dict)]
    # Exact match first; IQ matches public ids case-insensitively, so accept that next. An
    # answer naming another application is never taken.
    for same in (
        lambda p: p == public_id,
        lambda p: isinstance(p, str) and p.casefold() == public_id.casefold(),
    ):
        for app in candidates:
            if same(app.get("publicId")):
                return req_str(app, at, "id", resp=resp)
    fail(NotFoundError, at, f"no application with public id {public_id!r}", resp)


# --- Promote scan ----------------------------------------------------------------------------


def build_promote(
    base_url: str,
    application_id: str,
    *,
    target_stage: str,
    scan_id: str | None = None,
    source_stage: str | None = None,
    csrf_token: str | None = None,
    source: str = VENDOR,
) -> Request:
    """POST .../promoteScan with exactly one of `scan_id` / `source_stage` (checked here)."""
    at = Where(VENDOR, source, "promote scan")
    if (scan_id is None) == (source_stage is None):
        fail(BadRequestError, at, "give exactly one of scan_id or source_stage")
    if not application_id:
        fail(BadRequestError, at, "application_id is empty")
    if target_stage not in PROMOTE_TARGETS:
        fail(
            BadRequestError,
            at,
            f"target_stage must be one of {', '.join(PROMOTE_TARGETS)} (IQ refuses "
            f"{target_stage!r} as a promote target)",
        )
    body: dict[str, str] = {"targetStageId": target_stage}
    if scan_id is not None:
        if not scan_id:
            fail(BadRequestError, at, "scan_id is empty")
        body = {"scanId": scan_id, "targetStageId": target_stage}
    else:
        assert source_stage is not None
        body = {"sourceStageId": source_stage, "targetStageId": target_stage}
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if csrf_token:
        headers.update(csrf_headers(csrf_token))
    return Request(
        "POST",
        join_url(
            base_url,
            "api/v2/evaluation/applications/"
            f"{segment(application_id, vendor=VENDOR, operation='promote scan')}/promoteScan",
        ),
        "promote scan",
        headers=headers,
        json=body,
        idempotent=False,
    )


def parse_promote(
    resp: Response,
    *,
    source: str,
    base_url: str,
    application_id: str,
    target_stage: str,
    scan_id: str | None = None,
    source_stage: str | None = None,
) -> Promotion:
    """The submitted promotion: `queued`, with the status id from the relative `statusUrl`.

    Its `vendor_status` is empty until the first status poll (`refresh`) says PENDING, COMPLETED
    or FAILED.
    """
    at = where(VENDOR, source, resp)
    text = _error_text(resp)
    if resp.status == 400 and text and "does not exist" in text:
        fail(
            NotFoundError,
            at,
            f"scan {scan_id!r} does not exist on the server; IQ keeps only the latest scan file "
            "by default (purgeScanFiles), so an older scan may have been purged and cannot be "
            "promoted",
            resp,
        )
    raise_for_status(resp, at, text)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    status_url = req_str(body, at, "statusUrl", resp=resp)
    match = _STATUS_PATH.search(status_url)
    if match is None:
        fail(PayloadError, at, f"statusUrl {status_url!r} has no status id", resp)
    return Promotion(
        vendor=Vendor.IQ,
        source=source,
        id=match.group(2),
        application_id=match.group(1) or application_id,
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        links={"status": join_url(base_url, status_url)},
        source_stage=source_stage,
        target_stage=target_stage,
        scan_id=scan_id,
        raw=body,
    )


# --- Promotion status ------------------------------------------------------------------------


def build_status(base_url: str, application_id: str, status_id: str) -> Request:
    """GET /api/v2/evaluation/applications/{id}/status/{statusId}."""
    return Request(
        "GET",
        join_url(base_url, _status_path(application_id, status_id, BadRequestError)),
        "promotion status",
        headers={"Accept": "application/json"},
    )


def parse_status(
    resp: Response,
    *,
    source: str,
    base_url: str,
    previous: Promotion | None = None,
    application_id: str | None = None,
    status_id: str | None = None,
) -> Promotion:
    """The promotion's current state. Fields the status answer does not carry (stages, scan id)
    come from `previous`, the promotion as scanhub last knew it.

    A 404 "Scan status with id ... was not found" while refreshing a promotion (`previous`
    given) means the server has forgotten the status id: it keeps them two hours. The promotion
    then ends `expired` (terminal, outcome unknown) instead of failing every later poll."""
    at = where(VENDOR, source, resp)
    text = _error_text(resp)
    if resp.status == 404 and previous is not None and text and _STATUS_GONE.search(text):
        return _expired(previous, text, resp)
    raise_for_status(resp, at, text)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    raw_status = opt_str(body, "status")
    if raw_status is None:
        fail(PayloadError, at, "missing field status", resp)
    lifecycle = map_value(STATUS_MAP, raw_status, VENDOR)
    links = dict(previous.links) if previous else {}
    for name, key in REPORT_LINKS:
        href = body.get(key)
        if type(href) is not str:
            href = opt_str(body, key)
        if href:
            links[name] = _joined(base_url, href)
    app_id = application_id or (previous.application_id if previous else None)
    sid = status_id or (previous.id if previous else None)
    if not app_id or not sid:
        match = _STATUS_PATH.search(resp.url)
        if match is not None:
            app_id, sid = app_id or match.group(1), sid or match.group(2)
    if not app_id or not sid:
        fail(PayloadError, at, "cannot tell which promotion this status belongs to", resp)
    if "status" not in links:
        links["status"] = _joined(base_url, _known_status_path(app_id, sid))
    message = opt_str(body, "reason") if lifecycle is not Lifecycle.SUCCEEDED else None
    return Promotion(
        vendor=Vendor.IQ,
        source=source,
        id=sid,
        application_id=app_id,
        lifecycle=lifecycle,
        vendor_status=raw_status,
        verdict=previous.verdict if previous else Verdict.NONE,
        message=message,
        links=links,
        source_stage=previous.source_stage if previous else None,
        target_stage=previous.target_stage if previous else None,
        scan_id=previous.scan_id if previous else None,
        created_at=previous.created_at if previous else None,
        raw=body,
    )


def _expired(previous: Promotion, text: str, resp: Response) -> Promotion:
    return Promotion(
        vendor=Vendor.IQ,
        source=previous.source,
        id=previous.id,
        application_id=previous.application_id,
        lifecycle=Lifecycle.EXPIRED,
        vendor_status=previous.vendor_status,
        verdict=previous.verdict,
        message=(
            "IQ no longer knows this promotion's status id (it keeps them two hours), so its "
            f"outcome is unknown; see the application's reports. IQ said: {text}"
        ),
        links=previous.links,
        source_stage=previous.source_stage,
        target_stage=previous.target_stage,
        scan_id=previous.scan_id,
        created_at=previous.created_at,
        raw={"status": resp.status, "body": text},
    )


# --- Webhooks --------------------------------------------------------------------------------


def verify_webhook(body: bytes, signature: str | None, secret: str) -> bool:
    """True when `X-Nexus-Webhook-Signature` is the hex HMAC-SHA1 of the body with `secret`."""
    if not signature:
        return False
    sent = signature.strip().lower()
    if not sent.isascii():
        return False  # a hex digest is ASCII; `compare_digest` raises TypeError on non-ASCII str
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(digest, sent)


def parse_evaluation_webhook(
    headers: Mapping[str, str], body: bytes, *, source: str, base_url: str = ""
) -> Scan:
    """An `iq:applicationEvaluation` webhook delivery as a finished Scan with its verdict.

    Check the signature with `verify_webhook` first when a secret is configured.
    """
    resp = Response(200, body, {k.lower(): v for k, v in headers.items()}, "evaluation webhook")
    at = where(VENDOR, source, resp)
    payload = as_object(decode_json(resp, at), at, "the payload", resp)
    ev = as_object(payload.get("applicationEvaluation"), at, "`applicationEvaluation`", resp)
    app = ev.get("application")
    app_obj: dict[str, Any] = app if isinstance(app, dict) else {}
    app_id = opt_str(app_obj, "id") or opt_str(ev, "ownerId")
    if not app_id:
        fail(PayloadError, at, "missing identity field application.id / ownerId", resp)
    evaluation_id = req_str(ev, at, "policyEvaluationId", "reportId", resp=resp)
    outcome = opt_str(ev, "outcome")
    critical = opt_int(ev, "criticalComponentCount") or 0
    severe = opt_int(ev, "severeComponentCount") or 0
    moderate = opt_int(ev, "moderateComponentCount") or 0
    links: dict[str, str] = {}
    report_id = opt_str(ev, "reportId")
    public_id = opt_str(app_obj, "publicId")
    if report_id and public_id and base_url:
        # IQ's UI links name the application by its public id, never the internal one.
        links["report_html"] = join_url(
            base_url, f"ui/links/application/{_seg(public_id)}/report/{_seg(report_id)}"
        )
    when = parse_time(ev.get("evaluationDate")) or parse_time(payload.get("timestamp"))
    return Scan(
        vendor=Vendor.IQ,
        source=source,
        id=evaluation_id,
        application_id=opt_str(app_obj, "publicId") or app_id,
        application_name=public_id,
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status=outcome or "",
        verdict=map_verdict(OUTCOME_MAP, outcome.lower() if outcome else None, VENDOR),
        links=links,
        finished_at=when,
        updated_at=when,
        scan_type=opt_str(ev, "stage"),
        triggered_by=opt_str(payload, "initiator"),
        findings=FindingCounts(
            critical=critical,
            high=severe,
            medium=moderate,
            total=opt_int(ev, "affectedComponentCount") or critical + severe + moderate,
        ),
        final_scan_id=report_id,
        raw=payload,
    )


def _error_text(resp: Response) -> str | None:
    # IQ error bodies are plain text, not JSON.
    if 200 <= resp.status < 300:
        return None
    text = resp.text.strip()
    return text[:500] or None


def _status_path(
    application_id: str, status_id: str, error: type[ScanhubError] = PayloadError
) -> str:
    app = segment(application_id, vendor=VENDOR, operation="promotion status", error=error)
    sid = segment(status_id, vendor=VENDOR, operation="promotion status", error=error)
    return f"api/v2/evaluation/applications/{app}/status/{sid}"


#: `join_url` and `_status_path` remembered: a promotion's links are the same on every poll of
#: it (pure functions; bounded).
_joined = functools.lru_cache(maxsize=4096)(join_url)
_known_status_path = functools.lru_cache(maxsize=4096)(_status_path)


def _seg(value: str) -> str:
    return quote(value, safe="")
