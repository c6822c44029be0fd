"""GitHub code scanning: SARIF uploads and their processing status, as pure functions.

Sources followed (each mapping entry below names the one it follows):

- `github/rest-api-description`, `descriptions/api.github.com/api.github.com.2022-11-28.json`
  (and `api.github.com.2026-03-10.json`, identical for these operations): operations
  `code-scanning/upload-sarif` (`POST /repos/{owner}/{repo}/code-scanning/sarifs`: `commit_sha`,
  `ref`, `sarif` required; `checkout_uri`, `started_at`, `tool_name`, `validate`; no other key;
  202 `code-scanning-sarifs-receipt` `{id, url}`; 400 "if the sarif field is invalid", 403, 404,
  413 "if the sarif field is too large", 503), `code-scanning/get-sarif`
  (`GET .../sarifs/{sarif_id}`: 200 `code-scanning-sarifs-status` `{processing_status,
  analyses_url, errors}`; 403; 404 "Not Found if the sarif id does not match any upload"; 503)
  and `code-scanning/list-recent-analyses` (`GET .../analyses?sarif_id=`: `results_count`, "The
  total number of results in the analysis.").
- `github/docs`, `content/rest/using-the-rest-api/rate-limits-for-the-rest-api.md`: the
  `x-ratelimit-*` headers and what to do on a primary or secondary limit (below).
- `github/codeql-action`, `src/upload-lib.ts` (`waitForProcessing`): `ProcessingStatus` is
  exactly pending, complete, failed; pending means poll again; complete and failed end the wait;
  a failure's message is "Code Scanning could not process the submitted SARIF file" with the
  `errors`; the SARIF is `zlib.gzipSync(...).toString("base64")`.
- `octokit/plugin-throttling.js`, `src/index.ts`: a 403/429 whose message matches
  `/\\bsecondary rate\\b/i` is a secondary limit (60 s when `retry-after` is missing); one with
  `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset` plus one second.
- `gidgethub/gidgethub`, `gidgethub/sansio.py`: a 403 with no remaining quota is a rate limit;
  a 422's `errors` list is read into the message.

`base_url` is the REST API root: `https://api.github.com`, or `https://HOST/api/v3` on GitHub
Enterprise Server. Every path is joined onto it, so a prefix is kept.

Nothing here reads a clock: the wait for a primary rate limit is `x-ratelimit-reset` minus the
response's own `Date` header.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from attrs import frozen

from scanhub.sansio import (
    Request,
    Response,
    Where,
    as_list,
    as_object,
    decode_json,
    fail,
    join_url,
    loads,
    map_value,
    opt_int,
    opt_str,
    parse_http_date,
    parse_time,
    raise_for_status,
    req_str,
    retry_after_of,
    segment,
    where,
)
from scanhub.vendors import (
    NO_LINKS,
    BadRequestError,
    FindingCounts,
    Lifecycle,
    NotFoundError,
    RateLimitedError,
    Scan,
)

VENDOR = "github"

#: SARIF upload `processing_status` -> Lifecycle (compared lower-case).
STATUS_MAP: Mapping[str, Lifecycle] = {
    # rest-api-description api.github.com.2022-11-28.json (and .2026-03-10.json), schema
    # code-scanning-sarifs-status: "`pending` files have not yet been processed"; codeql-action
    # src/upload-lib.ts waitForProcessing polls again on it. The only state before the end:
    # the upload was accepted and is being processed ("processing will always take a minimum
    # of 2-3 seconds", upload-lib.ts).
    "pending": Lifecycle.RUNNING,
    # code-scanning-sarifs-status: "`complete` means results from the SARIF have been stored";
    # upload-lib.ts ends the wait.
    "complete": Lifecycle.SUCCEEDED,
    # code-scanning-sarifs-status: "`failed` files have either not been processed at all, or
    # could only be partially processed"; upload-lib.ts throws with `errors`.
    "failed": Lifecycle.FAILED,
}

#: The `X-GitHub-Api-Version` values whose description scanhub follows (rest-api-description
#: `descriptions/api.github.com/api.github.com.<version>.json`; the SARIF operations and
#: schemas are the same in both).
API_VERSIONS = ("2022-11-28", "2026-03-10")
DEFAULT_API_VERSION = "2022-11-28"
#: The public API root; GitHub Enterprise Server's is `https://HOST/api/v3`.
DOTCOM_API = "https://api.github.com"
#: GitHub asks for a User-Agent naming the application (getting-started-with-the-rest-api.md).
USER_AGENT = "scanhub"

#: rate-limits-for-the-rest-api.md: a secondary limit without `retry-after` (and without an
#: exhausted primary quota): "wait for at least one minute before retrying".
SECONDARY_WAIT = 60.0
#: plugin-throttling.js: "Add one second so we retry _after_ the reset time".
RESET_MARGIN = 1.0
#: plugin-throttling.js: how a secondary rate limit is told from other 403s.
_SECONDARY = re.compile(r"\bsecondary rate\b", re.IGNORECASE)
#: code-scanning-analysis-commit-sha: 40 (SHA-1) or 64 (SHA-256) hex digits.
_COMMIT_SHA = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
#: code-scanning-ref-full: `refs/heads/<branch>`, `refs/tags/<tag>`, `refs/pull/<n>/merge|head`.
_REF = re.compile(r"refs/(heads|tags|pull)/.+", re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,15}", re.ASCII)
_GZIP_MAGIC = b"\x1f\x8b"
#: upload-lib.ts's wording for a failed upload that names no error.
FAILED_TEXT = "Code Scanning could not process the submitted SARIF file"


def auth_headers(token: str, api_version: str = DEFAULT_API_VERSION) -> dict[str, str]:
    """`Authorization: Bearer <token>` (a fine-grained or classic personal access token, or a
    GitHub App installation token), the recommended media type and the API version."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": api_version,
        "User-Agent": USER_AGENT,
    }


def split_repository(repository: str, *, operation: str = "configure") -> tuple[str, str]:
    """`owner/repo` as (owner, repo); anything else is a `BadRequestError`."""
    owner, sep, repo = str(repository).partition("/")
    if not sep or not owner.strip() or not repo.strip() or "/" in repo:
        raise BadRequestError(
            f"repository must be 'owner/repo', got {str(repository)!r}",
            vendor=VENDOR,
            operation=operation,
        )
    return owner, repo


def _base(base_url: str, repository: str, operation: str) -> str:
    owner, repo = split_repository(repository, operation=operation)
    o = segment(owner, vendor=VENDOR, operation=operation, what="owner")
    r = segment(repo, vendor=VENDOR, operation=operation, what="repo")
    return join_url(base_url, f"repos/{o}/{r}/code-scanning")


# --- Rate limits -----------------------------------------------------------------------------


@frozen
class RateLimitStatus:
    """The primary rate limit as a response's `x-ratelimit-*` headers state it
    (rate-limits-for-the-rest-api.md, "Checking the status of your rate limit")."""

    limit: int | None
    remaining: int | None
    used: int | None
    #: UTC epoch seconds at which the window resets.
    reset: int | None
    resource: str | None


def rate_limit_of(headers: Mapping[str, str]) -> RateLimitStatus | None:
    """The `x-ratelimit-*` headers, or None when the answer carries none (GitHub Enterprise
    Server has rate limits off by default)."""

    def number(name: str) -> int | None:
        value = headers.get(name)
        if value is None or not _DIGITS.fullmatch(value.strip()):
            return None
        return int(value.strip())

    status = RateLimitStatus(
        number("x-ratelimit-limit"),
        number("x-ratelimit-remaining"),
        number("x-ratelimit-used"),
        number("x-ratelimit-reset"),
        headers.get("x-ratelimit-resource"),
    )
    if status == RateLimitStatus(None, None, None, None, None):
        return None
    return status


def rate_limit_wait(resp: Response, message: str | None = None) -> float | None:
    """Seconds to wait when `resp` (a 403 or 429) is a rate limit, else None.

    Following rate-limits-for-the-rest-api.md, "Exceeding the rate limit": a `retry-after`
    header is the wait; else an exhausted primary quota (`x-ratelimit-remaining: 0`) waits until
    `x-ratelimit-reset` (epoch seconds), measured from the response's `Date` header (no clock is
    read here), plus a second; else a secondary limit (a 429, or a 403 whose message says
    "secondary rate") waits at least a minute. A 403 that is none of these is not a rate limit.
    """
    if resp.status not in (403, 429):
        return None
    headers = resp.headers
    quota = rate_limit_of(headers)
    exhausted = quota is not None and quota.remaining == 0
    secondary = bool(message and _SECONDARY.search(message))
    retry_after = retry_after_of(resp)
    if resp.status == 403 and not (
        exhausted or secondary or retry_after is not None or "retry-after" in headers
    ):
        return None
    if retry_after is not None:
        return retry_after
    if exhausted and quota is not None and quota.reset is not None:
        now = parse_http_date(headers.get("date")) or resp.received_at
        if now is not None:
            return max(0.0, quota.reset - now.timestamp()) + RESET_MARGIN
    return SECONDARY_WAIT


def _rate_limit_text(resp: Response, message: str | None, wait: float) -> str:
    quota = rate_limit_of(resp.headers)
    if quota is not None and quota.remaining == 0:
        kind = "primary rate limit exhausted"
        if quota.limit is not None:
            kind += f" (0 of {quota.limit} left"
            kind += f" for {quota.resource!r})" if quota.resource else ")"
    elif message and _SECONDARY.search(message):
        kind = "secondary rate limit"
    else:
        kind = "rate limited"
    text = f"{kind}; retry in {wait:.0f}s"
    return f"{message} ({text})" if message else text


# --- Errors ----------------------------------------------------------------------------------


def error_text(resp: Response) -> str | None:
    """GitHub's error envelope `{"message", "documentation_url", "errors"?}` as one line:
    the message, the `errors` (strings, or `{resource, field, code, message}` objects, read as
    gidgethub does), and the documentation link. None when the body is not such an envelope."""
    try:
        body = loads(resp.body) if resp.body.strip() else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    message = opt_str(body, "message")
    text = " ".join(message.split()) if message else ""
    details = _error_details(body.get("errors"))
    if details:
        text = f"{text}: {details}" if text else details
    docs = opt_str(body, "documentation_url")
    if docs:
        text = f"{text} (see {docs})" if text else f"see {docs}"
    return text or None


def _error_details(errors: Any) -> str:
    if isinstance(errors, str):
        return " ".join(errors.split())
    if not isinstance(errors, list):
        return ""
    parts = []
    for e in errors[:10]:
        if isinstance(e, str):
            parts.append(" ".join(e.split()))
        elif isinstance(e, dict):
            said = opt_str(e, "message")
            if said:
                parts.append(" ".join(said.split()))
            else:
                field, code = opt_str(e, "field"), opt_str(e, "code")
                parts.append(" ".join(p for p in (field, code) if p) or "invalid")
    return "; ".join(p for p in parts if p)


def _message_of(resp: Response) -> str | None:
    try:
        body = loads(resp.body) if resp.body.strip() else None
    except (ValueError, RecursionError):
        return None
    return opt_str(body, "message") if isinstance(body, dict) else None


def raise_for_github(resp: Response, at: Where) -> None:
    """The right `ScanhubError` for a non-2xx answer: a rate limit (primary or secondary, 403
    or 429) is a `RateLimitedError` with the wait; otherwise 401/403 `AuthenticationError`,
    404 `NotFoundError`, 400/413/422 `BadRequestError`, 5xx `ServerError` (the shared map),
    with GitHub's message, errors and documentation link."""
    if 200 <= resp.status < 300:
        return
    text = error_text(resp)
    if resp.status in (403, 429):
        wait = rate_limit_wait(resp, _message_of(resp))
        if wait is not None:
            fail(RateLimitedError, at, _rate_limit_text(resp, text, wait), resp, retry_after=wait)
    raise_for_status(resp, at, text)


# --- Upload ----------------------------------------------------------------------------------


def encode_sarif(sarif: bytes | str | Mapping[str, Any], *, source: str = VENDOR) -> str:
    """The `sarif` field: the SARIF log gzip-compressed, then Base64-encoded (upload-sarif:
    "gzip -c analysis-data.sarif | base64 -w0"). `sarif` is the log as bytes or text (JSON), a
    parsed log (a mapping), or bytes already gzip-compressed (sent as they are). The gzip
    header carries no timestamp, so the same log always encodes the same."""
    at = Where(VENDOR, source, "upload sarif")
    if isinstance(sarif, Mapping):
        raw = json.dumps(sarif, separators=(",", ":")).encode()
    elif isinstance(sarif, str):
        raw = sarif.encode()
    elif isinstance(sarif, bytes | bytearray):
        raw = bytes(sarif)
    else:
        fail(BadRequestError, at, f"sarif must be bytes, text or a mapping, got {type(sarif)}")
    if not raw.strip():
        fail(BadRequestError, at, "the SARIF log is empty")
    if raw[:2] == _GZIP_MAGIC:
        zipped = raw
    else:
        try:
            log = loads(raw)
        except (ValueError, RecursionError):
            fail(BadRequestError, at, "the SARIF log is not JSON")
        if not isinstance(log, dict):
            fail(BadRequestError, at, "the SARIF log is not a JSON object")
        zipped = gzip.compress(raw, mtime=0)
    return base64.b64encode(zipped).decode("ascii")


def decode_sarif(field: str) -> bytes:
    """The SARIF log inside an upload's `sarif` field (the inverse of `encode_sarif`);
    `ValueError` when it is not Base64 of gzip."""
    try:
        return gzip.decompress(base64.b64decode(field, validate=True))
    except (binascii.Error, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not Base64-encoded gzip: {exc}") from exc


def _when(value: datetime | str | None) -> datetime | None:
    """A time given by the caller as an aware UTC datetime (naive ones are taken as UTC)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC)
    return parse_time(value) if isinstance(value, str) else None


def _iso(value: datetime | str, at: Where) -> str:
    """`started_at` as GitHub documents it, `YYYY-MM-DDTHH:MM:SSZ` (UTC): a datetime (naive
    taken as UTC) or an ISO 8601 date and time in any offset; a date alone, epoch digits or a
    time GitHub would misread are refused before sending."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = _when(value)
    elif isinstance(value, str) and len(value) > 10 and value[10:11] in ("T", "t", " "):
        try:
            when = _when(datetime.fromisoformat(value))
        except ValueError:
            when = None
    if when is None:
        fail(BadRequestError, at, f"started_at {value!r} is not an ISO 8601 date and time")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_upload(
    base_url: str,
    repository: str,
    sarif: bytes | str | Mapping[str, Any],
    *,
    commit_sha: str,
    ref: str,
    checkout_uri: str | None = None,
    started_at: datetime | str | None = None,
    tool_name: str | None = None,
    validate: bool | None = None,
    source: str = VENDOR,
) -> Request:
    """POST /repos/{owner}/{repo}/code-scanning/sarifs. `commit_sha` (40 or 64 hex digits) and
    `ref` (`refs/heads/...`, `refs/tags/...`, `refs/pull/...`) are checked before sending
    against the description's patterns; the optional keys are sent only when given (the body
    allows no other key)."""
    at = Where(VENDOR, source, "upload sarif")
    if not isinstance(commit_sha, str) or not _COMMIT_SHA.fullmatch(commit_sha):
        fail(BadRequestError, at, f"commit_sha {commit_sha!r} is not 40 or 64 hex digits")
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        fail(
            BadRequestError,
            at,
            f"ref {ref!r} must be a full reference: refs/heads/<branch>, refs/tags/<tag>, "
            "refs/pull/<number>/merge or refs/pull/<number>/head",
        )
    body: dict[str, Any] = {
        "commit_sha": commit_sha,
        "ref": ref,
        "sarif": encode_sarif(sarif, source=source),
    }
    if checkout_uri is not None:
        if not checkout_uri:
            fail(BadRequestError, at, "checkout_uri is empty")
        body["checkout_uri"] = checkout_uri
    if started_at is not None:
        body["started_at"] = _iso(started_at, at)
    if tool_name is not None:
        if not tool_name.strip():
            fail(BadRequestError, at, "tool_name is empty")
        body["tool_name"] = tool_name
    if validate is not None:
        body["validate"] = bool(validate)
    return Request(
        "POST",
        _base(base_url, repository, "upload sarif") + "/sarifs",
        "upload sarif",
        headers={"Content-Type": "application/json"},
        json=body,
        idempotent=False,
    )


def parse_upload(
    resp: Response,
    *,
    source: str,
    repository: str,
    started_at: datetime | str | None = None,
) -> Scan:
    """The 202 receipt `{id, url}`: a `queued` Scan whose id is the SARIF id. Its
    `vendor_status` is empty until the first status poll (`refresh`)."""
    at = where(VENDOR, source, resp)
    raise_for_github(resp, at)
    body = as_object(decode_json(resp, at), at, "the upload receipt", resp)
    sarif_id = req_str(body, at, "id", resp=resp)
    url = opt_str(body, "url")
    return Scan(
        vendor=VENDOR,
        source=source,
        id=sarif_id,
        application_id=repository,
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        links={"status": url} if url else NO_LINKS,
        started_at=_when(started_at),
        scan_type="sarif",
        raw=body,
    )


# --- Status ----------------------------------------------------------------------------------


def build_status(base_url: str, repository: str, sarif_id: str) -> Request:
    """GET /repos/{owner}/{repo}/code-scanning/sarifs/{sarif_id}."""
    sid = segment(sarif_id, vendor=VENDOR, operation="sarif status", what="sarif_id")
    return Request(
        "GET", _base(base_url, repository, "sarif status") + f"/sarifs/{sid}", "sarif status"
    )


def parse_status(
    resp: Response,
    *,
    source: str,
    repository: str,
    sarif_id: str,
    previous: Scan | None = None,
) -> Scan:
    """The upload's processing status as a Scan.

    `errors` (a list of strings) become `message`; a `failed` upload without errors gets
    codeql-action's sentence. `analyses_url` becomes `links["analyses"]`. A 404 is a
    `NotFoundError`: GitHub answers it when the id matches no upload, and also when the token
    cannot see the repository."""
    at = where(VENDOR, source, resp)
    if resp.status == 404:
        text = error_text(resp) or "Not Found"
        fail(
            NotFoundError,
            at,
            f"SARIF upload {sarif_id} of {repository}: {text} (the id matches no upload, or the "
            "token cannot see the repository)",
            resp,
        )
    raise_for_github(resp, at)
    body = as_object(decode_json(resp, at), at, "the SARIF upload status", resp)
    raw_status = opt_str(body, "processing_status") or ""
    lifecycle = (
        map_value(STATUS_MAP, raw_status.lower(), VENDOR) if raw_status else Lifecycle.UNKNOWN
    )
    errors = _strings(body.get("errors"))
    message = "; ".join(errors) if errors else None
    if lifecycle is Lifecycle.FAILED and message is None:
        message = FAILED_TEXT
    links = dict(previous.links) if previous is not None else {}
    if resp.url and "status" not in links:
        links["status"] = resp.url
    analyses = opt_str(body, "analyses_url")
    if analyses:
        links["analyses"] = analyses
    return Scan(
        vendor=VENDOR,
        source=source,
        id=sarif_id,
        application_id=repository,
        lifecycle=lifecycle,
        vendor_status=raw_status,
        message=message,
        links=links or NO_LINKS,
        started_at=previous.started_at if previous is not None else None,
        finished_at=previous.finished_at if previous is not None else None,
        scan_type="sarif",
        findings=previous.findings if previous is not None else None,
        raw=body,
    )


def _strings(value: Any) -> list[str]:
    """A list of strings from an optional `errors` field (other members are skipped)."""
    if not isinstance(value, list):
        return []
    return [" ".join(v.split()) for v in value if isinstance(v, str) and v.strip()]


# --- Analyses (finding counts) ---------------------------------------------------------------


@frozen
class Analysis:
    """One analysis a SARIF upload produced (one per run), as `code-scanning-analysis`."""

    id: str
    sarif_id: str | None
    results_count: int | None
    rules_count: int | None
    created_at: datetime | None
    tool: str | None
    category: str | None
    error: str | None
    warning: str | None
    url: str | None


def build_analyses(base_url: str, repository: str, sarif_id: str) -> Request:
    """GET /repos/{owner}/{repo}/code-scanning/analyses?sarif_id=...&per_page=100. Built from
    `base_url` rather than by following `analyses_url`, so the token only ever goes to the
    configured API. One page is enough: an upload holds at most 20 runs (upload-sarif's
    limits), one analysis each."""
    return Request(
        "GET",
        _base(base_url, repository, "list analyses") + "/analyses",
        "list analyses",
        params=(("sarif_id", str(sarif_id)), ("per_page", "100")),
    )


def parse_analyses(resp: Response, *, source: str, sarif_id: str | None = None) -> list[Analysis]:
    """The analyses of an upload. Records naming another upload's `sarif_id` are dropped (a
    server that ignored the filter still yields only this upload's analyses)."""
    at = where(VENDOR, source, resp)
    raise_for_github(resp, at)
    records = as_list(decode_json(resp, at), at, "the analyses", resp)
    out = []
    for rec in records:
        obj = as_object(rec, at, "an analysis", resp)
        belongs = opt_str(obj, "sarif_id")
        if sarif_id is not None and belongs is not None and belongs != sarif_id:
            continue
        tool = obj.get("tool")
        out.append(
            Analysis(
                id=req_str(obj, at, "id", resp=resp),
                sarif_id=belongs,
                results_count=_count(obj, "results_count"),
                rules_count=_count(obj, "rules_count"),
                created_at=parse_time(obj.get("created_at")),
                tool=opt_str(tool, "name") if isinstance(tool, dict) else None,
                category=opt_str(obj, "category") or None,
                error=opt_str(obj, "error") or None,
                warning=opt_str(obj, "warning") or None,
                url=opt_str(obj, "url"),
            )
        )
    return out


def _count(obj: Mapping[str, Any], key: str) -> int | None:
    value = opt_int(obj, key)
    return value if value is not None and 0 <= value < 10**12 else None


def with_findings(scan: Scan, analyses: Sequence[Analysis]) -> Scan:
    """`scan` with the analyses' finding count: `findings.total` is the sum of `results_count`
    (code scanning gives no per-severity count here, so the severities stay 0), `finished_at`
    the newest analysis's `created_at`, and their warnings (e.g. "123 results were ignored")
    added to the message. No analyses: `scan` unchanged."""
    counts = [a.results_count for a in analyses if a.results_count is not None]
    if not analyses or not counts:
        return scan
    created = [a.created_at for a in analyses if a.created_at is not None]
    notes = [a.warning for a in analyses if a.warning] + [a.error for a in analyses if a.error]
    message = scan.message
    if notes:
        message = "; ".join([*([message] if message else []), *notes])
    return attrs.evolve(
        scan,
        message=message,
        finished_at=max(created) if created else scan.finished_at,
        findings=FindingCounts(total=sum(counts)),
    )
