"""ThreadFix: scan upload and pending-scan status, as pure functions.

Source documents: shared/seeds/001 (Check Pending Scan Status API), shared/vendor-notes.md,
ThreadFix's "Upload Scan - API" page (2.3.0; queued processing since 2.4.5, whose answer has no
links; the pending-scan link since 2.5; versioned link since 2.8.8) and the open-source server
(denimgroup/threadfix, `ApplicationRestController` / `UploadScanServiceImpl`: unversioned
`/rest/applications/...` paths, no pending-scan endpoint, the processed scan in the upload
answer). Versions and what differs are in adapters.md, "ThreadFix versions".

`base_url` usually ends in `/threadfix`; paths are `rest/{version}/...` below it. Every answer is
an envelope `{"message", "success", "responseCode", "object"}` in which `responseCode` is -1 and
is NOT the HTTP status, and a failure may come as HTTP 200 with `"success": false`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin

from scanhub.sansio import (
    FilePart,
    Request,
    Response,
    Where,
    as_object,
    decode_json,
    fail,
    join_url,
    map_value,
    opt_int,
    opt_str,
    parse_time,
    raise_for_status,
    segment,
    where,
)
from scanhub.vendors import (
    AuthenticationError,
    BadRequestError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    ScanhubError,
    Vendor,
)

VENDOR = Vendor.THREADFIX.value

#: Pending-scan status -> Lifecycle. Seed 001, "List of Scan Statuses" (all twelve). The
#: reasoning for each judgment call is in adapters.md.
STATUS_MAP: Mapping[str, Lifecycle] = {
    "QUEUED": Lifecycle.QUEUED,  # Queued: waiting for a worker
    "UPLOADED": Lifecycle.RUNNING,  # Uploaded: a worker has the file
    "FINDINGS_GENERATING": Lifecycle.RUNNING,  # Generating Findings
    "CHANNEL_MERGING": Lifecycle.RUNNING,  # Merging Channel Findings
    "APPLICATION_MERGING": Lifecycle.RUNNING,  # Merging Application Findings
    "APPLICATION_MERGED": Lifecycle.RUNNING,  # merge completed, DONE not reached yet
    "LINKING_DEFECTS": Lifecycle.RUNNING,  # Linking Defects: still processing
    "DONE": Lifecycle.SUCCEEDED,  # "Scan Processing Completed", scanId is set
    "FINISHED_FINDING_PULLING": Lifecycle.SUCCEEDED,  # "Findings Import From Server Finished."
    "SCAN_INTERRUPTED": Lifecycle.FAILED,  # "Scan processing was interrupted"
    "SCAN_QUEUED_FOR_DELETE": Lifecycle.CANCELLED,  # its results will not stand
    "SCAN_DELETED": Lifecycle.CANCELLED,  # "Scan Deleted."
}

#: Envelope messages that mean the API key is wrong or lacks the permission (vendor-notes.md).
_AUTH_MESSAGES = re.compile(
    r"authentication failed|check your api key|restricted for your api key|invalid api key",
    re.IGNORECASE,
)


def _says_auth_failed(message: str) -> bool:
    """`_AUTH_MESSAGES` finds a phrase in `message`."""
    # The regex costs ~1.7 µs on a usual envelope message, a quarter of a whole parse. Case-blind,
    # it also reads a few non-ASCII letters as ASCII ones (U+212A KELVIN SIGN as `k`, U+017F
    # LONG S as `s`, U+0130 and U+0131, the dotted and dotless I, as `i`); an ASCII message has
    # none, so the regex matches it exactly when its lower-cased text holds one of the phrases,
    # and the three that end in "api key" cannot be there without "api key". (A property test
    # in tests/test_parse_fastpaths.py holds this equal to the regex.)
    if message.isascii():
        low = message.lower()
        if "api key" not in low:
            return "authentication failed" in low
    return _AUTH_MESSAGES.search(message) is not None


_NOT_FOUND_MESSAGES = re.compile(
    r"not found|couldn't find|could not find|does not exist|no \w+ found|invalid \w+ id",
    re.IGNORECASE,
)
_PENDING_HREF = re.compile(r"/pendingScan/([^/?#]+)/status")

#: The `api_version` values scanhub speaks. `latest` and `v2.5`..`v3.0` are the commercial
#: server's versioned REST paths (`/rest/{version}/...`), which queue uploads and have the
#: pending-scan status endpoint (since 2.5.0; 3.0 keeps it). `unversioned` is the open-source
#: server: `/rest/...` with no version, no pending-scan endpoint, and the processed scan
#: returned by the upload itself.
API_VERSIONS = ("latest", "v2.5", "v2.6", "v2.7", "v2.8", "v3.0", "unversioned")
UNVERSIONED = "unversioned"


def auth_headers(api_key: str) -> dict[str, str]:
    """`Authorization: APIKEY {key}`; `Accept: application/json` is required on every call."""
    return {"Authorization": f"APIKEY {api_key}", "Accept": "application/json"}


def auth_params(api_key: str) -> tuple[tuple[str, str], ...]:
    """Old servers read the key from the query string instead (never logged: see transport)."""
    return (("apiKey", api_key),)


def _rest(base_url: str, api_version: str, path: str) -> str:
    if api_version == UNVERSIONED:
        return join_url(base_url, f"rest/{path}")
    return join_url(base_url, f"rest/{quote(api_version, safe='.')}/{path}")


# --- Upload ----------------------------------------------------------------------------------


def build_upload(
    base_url: str,
    application_id: str,
    file: FilePart,
    *,
    api_version: str = "latest",
    source: str = VENDOR,
) -> Request:
    """POST /rest/{v}/applications/{appId}/upload with the scan file in multipart field `file`."""
    at = Where(VENDOR, source, "upload scan")
    if not str(application_id):
        fail(BadRequestError, at, "application_id is empty")
    if not file.content:
        fail(BadRequestError, at, f"scan file {file.filename!r} is empty")
    return Request(
        "POST",
        _rest(
            base_url,
            api_version,
            f"applications/{segment(application_id, vendor=VENDOR, operation='upload scan')}"
            "/upload",
        ),
        "upload scan",
        file=FilePart("file", file.filename, file.content, file.content_type),
        idempotent=False,
    )


def parse_upload(resp: Response, *, source: str, base_url: str, application_id: str) -> Scan:
    """What the upload answer says.

    - Queued (2.5 and later): `object` is a sentence and the pending scan id is only inside
      `links[].href` (`.../pendingScan/{id}/status`): a `queued` Scan to follow.
    - Processed at once (the open-source server): `object` is the imported scan: a finished
      Scan (`succeeded`) with its finding counts.
    - Queued with no link (2.4.5 to 2.4.x): nothing to follow it by: `PayloadError` saying so.
    """
    at = where(VENDOR, source, resp)
    body = _envelope(resp, at)
    pending_id = _pending_id(body)
    obj = body.get("object")
    if pending_id is None:
        if isinstance(obj, dict) and opt_str(obj, "id"):
            return _processed_scan(obj, body, source, str(application_id))
        fail(
            PayloadError,
            at,
            "the upload was accepted but the answer has no pendingScan link to follow it by "
            "(ThreadFix before 2.5 queues uploads without one; scanhub supports 2.5 and later, "
            "and the open-source server)",
            resp,
        )
    message = obj if isinstance(obj, str) else opt_str(body, "message")
    return Scan(
        vendor=Vendor.THREADFIX,
        source=source,
        id=pending_id,
        application_id=str(application_id),
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        message=message,
        links={"status": _link(base_url, _href_path(body, pending_id) or "")},
        raw=body,
    )


def _processed_scan(
    obj: Mapping[str, Any], body: Mapping[str, Any], source: str, application_id: str
) -> Scan:
    """A scan the server imported during the upload (its `Scan` entity's REST view)."""
    counts = {
        k: opt_int(obj, f"number{k.title()}Vulnerabilities") or 0
        for k in ("critical", "high", "medium", "low")
    }
    total = opt_int(obj, "numberTotalVulnerabilities")
    imported = parse_time(obj.get("importTime"))
    scan_id = opt_str(obj, "id") or ""
    return Scan(
        vendor=Vendor.THREADFIX,
        source=source,
        id=scan_id,
        application_id=opt_str(obj, "applicationId") or application_id,
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="",
        message=opt_str(body, "message") or None,
        created_at=imported,
        finished_at=imported,
        updated_at=imported,
        scan_type=opt_str(obj, "scannerName"),
        findings=FindingCounts(
            **counts, total=total if total is not None else sum(counts.values())
        ),
        final_scan_id=scan_id,
        raw=body,
    )


def _pending_id(body: Mapping[str, Any]) -> str | None:
    for href in _hrefs(body):
        match = _PENDING_HREF.search(href)
        if match:
            return match.group(1)
    return None


def _link(base_url: str, href: str) -> str:
    """An href of the server's answer as a URL: one from the host's root (`/threadfix/rest/...`,
    holding the server's context path already) is resolved as RFC 3986 says, not appended to
    the base's path; a relative one (`rest/latest/...`) is under the base."""
    if href.startswith("/") and not href.startswith("//"):
        return urljoin(base_url, href)
    return join_url(base_url, href)


def _href_path(body: Mapping[str, Any], pending_id: str) -> str | None:
    for href in _hrefs(body):
        if f"/pendingScan/{pending_id}/" in href:
            return href
    return None


def _hrefs(body: Mapping[str, Any]) -> list[str]:
    # `links` sits on the envelope; some servers nest it in `object`. Accept both.
    found: list[str] = []
    obj = body.get("object")
    for holder in (body, obj if isinstance(obj, dict) else {}):
        links = holder.get("links")
        if isinstance(links, list):
            found.extend(
                link["href"]
                for link in links
                if isinstance(link, dict) and isinstance(link.get("href"), str)
            )
    return found


# --- Pending scan status ---------------------------------------------------------------------


def build_pending_scan(
    base_url: str, application_id: str, pending_scan_id: str, *, api_version: str = "latest"
) -> Request:
    """GET /rest/{v}/applications/{appId}/pendingScan/{pendingScanId}/status."""
    app = segment(application_id, vendor=VENDOR, operation="pending scan status")
    pid = segment(pending_scan_id, vendor=VENDOR, operation="pending scan status")
    path = f"applications/{app}/pendingScan/{pid}/status"
    return Request("GET", _rest(base_url, api_version, path), "pending scan status")


def parse_pending_scan(
    resp: Response,
    *,
    source: str,
    base_url: str = "",
    application_id: str | None = None,
    pending_scan_id: str | None = None,
) -> Scan:
    """The pending scan as a Scan. `error: true` or a non-null `errorMessage` means failed,
    whatever `status` says; `modifiedDate` and `time` are epoch milliseconds."""
    at = where(VENDOR, source, resp)
    body = _envelope(resp, at)
    obj = as_object(body.get("object"), at, "`object`", resp)
    scan_id = opt_str(obj, "id") or pending_scan_id
    app_id = opt_str(obj, "appId") or application_id
    if not scan_id or not app_id:
        fail(PayloadError, at, "missing identity field object.id / object.appId", resp)
    raw_status = opt_str(obj, "status") or ""
    lifecycle = map_value(STATUS_MAP, raw_status, VENDOR) if raw_status else Lifecycle.UNKNOWN
    error_message = opt_str(obj, "errorMessage")
    failed = obj.get("error") is True or bool(error_message)
    if failed:
        lifecycle = Lifecycle.FAILED
    modified = parse_time(obj.get("modifiedDate"))
    message = error_message if failed else opt_str(obj, "scanMessage") or opt_str(body, "message")
    if failed and not message:
        message = opt_str(obj, "scanMessage") or "ThreadFix reported an error for this scan"
    return Scan(
        vendor=Vendor.THREADFIX,
        source=source,
        id=scan_id,
        application_id=app_id,
        lifecycle=lifecycle,
        vendor_status=raw_status,
        message=message,
        links={"status": resp.url} if resp.url else {},
        created_at=parse_time(obj.get("time")),
        finished_at=modified if lifecycle.is_terminal else None,
        updated_at=modified,
        scan_type=opt_str(obj, "type"),
        final_scan_id=opt_str(obj, "scanId"),
        raw=body,
    )


# --- Envelope --------------------------------------------------------------------------------


def _envelope(resp: Response, at: Where) -> dict[str, Any]:
    """The envelope of a 2xx answer, or the right error for a failed one (even on HTTP 200)."""
    body: Any = None
    try:
        body = decode_json(resp, at)
    except PayloadError:
        if 200 <= resp.status < 300:
            raise
    message = opt_str(body, "message") if isinstance(body, dict) else None
    if message and _says_auth_failed(message):
        fail(AuthenticationError, at, message, resp)
    raise_for_status(resp, at, message)
    env = as_object(body, at, "the envelope", resp)
    success = env.get("success")
    if success is not True and success is not False:
        # "false" (a string), 0, null or a missing field: not a success we can trust.
        fail(
            PayloadError,
            at,
            f"the envelope's success is {success!r}, expected true or false"
            + (f" ({message})" if message else ""),
            resp,
        )
    if success is False:
        error_cls: type[ScanhubError] = BadRequestError
        if message and _NOT_FOUND_MESSAGES.search(message):
            error_cls = NotFoundError
        fail(error_cls, at, message or "ThreadFix answered success: false", resp)
    return env
