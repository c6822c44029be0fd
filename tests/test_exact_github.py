"""GitHub code scanning, exactly: every request as sent, every receipt, status and analysis as
read, every refusal as raised (vendor, source, operation, status, body excerpt, text), and the
rate-limit and error texts. The expected values are written out from GitHub's documented
payloads (tests/test_vendor_github_payloads.py, each naming its source), not taken from the code.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

import scanhub._sansio
from scanhub import FindingCounts, Lifecycle, Scan
from scanhub.sansio import Request, Where
from scanhub.vendors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
)
from scanhub.vendors.github import sansio as gh

from .expect import refused
from .helpers import resp
from .test_vendor_github_payloads import (
    ANALYSIS_DEFAULT,
    ANALYSIS_ITEMS,
    NOT_FOUND,
    SARIF_ID,
    STATUS_COMPLETE,
    STATUS_FAILED,
    UPLOAD_COMMIT,
    UPLOAD_RECEIPT,
    UPLOAD_REF,
)

API = "https://api.github.com"
REPO = "octocat/hello-world"
CS = f"{API}/repos/octocat/hello-world/code-scanning"
STATUS_URL = f"{CS}/sarifs/{SARIF_ID}"
LOG = {"version": "2.1.0", "runs": []}
#: The log as sent: compact JSON, gzip without a timestamp, then Base64 (upload-sarif).
LOG_BYTES = b'{"version":"2.1.0","runs":[]}'
LOG_FIELD = base64.b64encode(gzip.compress(LOG_BYTES, mtime=0)).decode()


def upload(**kw: Any) -> Request:
    args: dict[str, Any] = {"commit_sha": UPLOAD_COMMIT, "ref": UPLOAD_REF, "source": "gh"}
    args.update(kw)
    sarif = args.pop("sarif", LOG)
    return gh.build_upload(args.pop("base_url", API), args.pop("repository", REPO), sarif, **args)


def status(body: Any, code: int = 200, url: str = STATUS_URL, **kw: Any) -> Scan:
    return gh.parse_status(
        resp(code, body, operation="sarif status", url=url),
        source="gh",
        repository=REPO,
        sarif_id=SARIF_ID,
        **kw,
    )


def analyses(body: Any, sarif_id: str | None = None) -> list[gh.Analysis]:
    return gh.parse_analyses(
        resp(200, body, operation="list analyses"), source="gh", sarif_id=sarif_id
    )


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown values are warned once per process: start from none warned."""
    monkeypatch.setattr(scanhub._sansio, "_warned", set())


# --- requests -------------------------------------------------------------------------------------


def test_the_upload_request_exactly() -> None:
    assert upload() == Request(
        "POST",
        f"{CS}/sarifs",
        "upload sarif",
        headers={"Content-Type": "application/json"},
        json={"commit_sha": UPLOAD_COMMIT, "ref": UPLOAD_REF, "sarif": LOG_FIELD},
        idempotent=False,
    )
    assert gh.decode_sarif(LOG_FIELD) == LOG_BYTES


def test_the_status_and_analyses_requests_exactly() -> None:
    assert gh.build_status(API, REPO, SARIF_ID) == Request("GET", STATUS_URL, "sarif status")
    assert gh.build_analyses(API, REPO, SARIF_ID) == Request(
        "GET",
        f"{CS}/analyses",
        "list analyses",
        params=(("sarif_id", SARIF_ID), ("per_page", "100")),
    )


def test_started_at_is_sent_as_utc_seconds_whatever_it_was_given_in() -> None:
    paris = timezone(timedelta(hours=2))
    assert (
        upload(started_at=datetime(2024, 5, 1, 14, 30, 15, 999, tzinfo=paris)).json["started_at"]
        == "2024-05-01T12:30:15Z"
    )
    assert upload(started_at=datetime(2024, 5, 1, 14, 30)).json["started_at"] == (
        "2024-05-01T14:30:00Z"  # naive: taken as UTC
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"commit_sha": "4b64722"}, "commit_sha '4b64722' is not 40 or 64 hex digits"),
        (
            {"ref": "main"},
            "ref 'main' must be a full reference: refs/heads/<branch>, refs/tags/<tag>, "
            "refs/pull/<number>/merge or refs/pull/<number>/head",
        ),
        ({"checkout_uri": ""}, "checkout_uri is empty"),
        ({"tool_name": "  "}, "tool_name is empty"),
        ({"started_at": "yesterday"}, "started_at 'yesterday' is not an ISO 8601 date and time"),
        ({"sarif": 42}, "sarif must be bytes, text or a mapping, got <class 'int'>"),
        ({"sarif": " \n"}, "the SARIF log is empty"),
        ({"sarif": b"not json"}, "the SARIF log is not JSON"),
        ({"sarif": "[1, 2]"}, "the SARIF log is not a JSON object"),
    ],
)
def test_what_github_would_refuse_is_refused_exactly(kw: dict[str, Any], message: str) -> None:
    refused(
        lambda: upload(**kw),
        BadRequestError,
        vendor="github",
        source="gh",
        operation="upload sarif",
        message=message,
    )


@pytest.mark.parametrize(
    "repository", ["octocat", "/hello-world", " /hello-world", "octocat/", "octocat/ ", "o/r/x"]
)
def test_a_repository_not_named_owner_slash_repo_is_refused(repository: str) -> None:
    refused(
        lambda: gh.split_repository(repository),
        BadRequestError,
        vendor="github",
        operation="configure",
        message=f"repository must be 'owner/repo', got {repository!r}",
    )
    refused(
        lambda: gh.build_status(API, repository, SARIF_ID),
        BadRequestError,
        vendor="github",
        operation="sarif status",
        message=f"repository must be 'owner/repo', got {repository!r}",
    )


@pytest.mark.parametrize(
    ("call", "operation"),
    [
        (lambda repo, sid: gh.build_status(API, repo, sid), "sarif status"),
        (lambda repo, sid: gh.build_analyses(API, repo, sid), "list analyses"),
        (lambda repo, sid: upload(repository=repo), "upload sarif"),
    ],
)
def test_dot_segments_are_refused_naming_the_part(call: Any, operation: str) -> None:
    for repository, what in (("../x", "owner '..'"), ("o/.", "repo '.'")):
        refused(
            lambda repository=repository: call(repository, SARIF_ID),
            BadRequestError,
            vendor="github",
            operation=operation,
            message=f"{what} cannot be sent as a path segment (empty, '.' or '..')",
        )


def test_a_dot_sarif_id_is_refused() -> None:
    refused(
        lambda: gh.build_status(API, REPO, ".."),
        BadRequestError,
        vendor="github",
        operation="sarif status",
        message="sarif_id '..' cannot be sent as a path segment (empty, '.' or '..')",
    )


def test_decode_sarif_refuses_what_is_not_base64_of_gzip() -> None:
    for field in (LOG_FIELD[:8] + "!!" + LOG_FIELD[8:], base64.b64encode(b"plain").decode()):
        with pytest.raises(ValueError, match=r"^not Base64-encoded gzip: ."):
            gh.decode_sarif(field)


# --- the upload receipt ---------------------------------------------------------------------------


def test_the_receipt_read_exactly() -> None:
    got = gh.parse_upload(
        resp(202, UPLOAD_RECEIPT, operation="upload sarif"),
        source="gh",
        repository=REPO,
        started_at="2024-05-01T14:30:00+02:00",
    )
    assert got == Scan(
        vendor="github",
        source="gh",
        id=SARIF_ID,
        application_id=REPO,
        lifecycle=Lifecycle.QUEUED,
        vendor_status="",
        links={"status": UPLOAD_RECEIPT["url"]},
        started_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        scan_type="sarif",
    )
    bare = gh.parse_upload(resp(202, {"id": SARIF_ID}), source="gh", repository=REPO)
    assert (bare.links, bare.started_at) == ({}, None)


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's zone is not UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo")
def test_times_are_kept_in_utc_whatever_the_machines_zone() -> None:
    for given in (
        datetime(2024, 5, 1, 12, 30),
        datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
    ):
        got = gh.parse_upload(
            resp(202, UPLOAD_RECEIPT), source="gh", repository=REPO, started_at=given
        )
        assert got.started_at is not None
        assert got.started_at.isoformat() == "2024-05-01T12:30:00+00:00"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([UPLOAD_RECEIPT], "the upload receipt is an array, expected an object"),
        ({"url": UPLOAD_RECEIPT["url"]}, "missing identity field id"),
    ],
)
def test_a_receipt_that_is_not_a_receipt_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: gh.parse_upload(
            resp(202, body, operation="upload sarif"), source="gh", repository=REPO
        ),
        PayloadError,
        vendor="github",
        source="gh",
        operation="upload sarif",
        status=202,
        body=json.dumps(body),
        message=message,
    )


# --- the processing status ------------------------------------------------------------------------


def test_the_status_examples_read_exactly() -> None:
    complete = Scan(
        vendor="github",
        source="gh",
        id=SARIF_ID,
        application_id=REPO,
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="complete",
        links={"status": STATUS_URL, "analyses": STATUS_COMPLETE["analyses_url"]},
        scan_type="sarif",
    )
    assert status(STATUS_COMPLETE) == complete
    assert status(STATUS_FAILED) == attrs.evolve(
        complete,
        lifecycle=Lifecycle.FAILED,
        vendor_status="failed",
        message='SARIF URI scheme "git" did not match the checkout URI scheme "file"',
        links={"status": STATUS_URL},
    )
    assert status({"processing_status": "pending"}, url="").links == {}


def test_a_refresh_keeps_what_the_upload_knew() -> None:
    previous = Scan(
        "github",
        "gh",
        SARIF_ID,
        REPO,
        Lifecycle.RUNNING,
        "pending",
        links={"status": UPLOAD_RECEIPT["url"], "run": "https://ci.example/run/1"},
        started_at=datetime(2024, 5, 1, 12, tzinfo=UTC),
        finished_at=datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
        findings=FindingCounts(total=4),
    )
    got = status(STATUS_COMPLETE, url="https://elsewhere/status", previous=previous)
    assert got == attrs.evolve(
        previous,
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="complete",
        links={**previous.links, "analyses": STATUS_COMPLETE["analyses_url"]},
        scan_type="sarif",
    )


@pytest.mark.usefixtures("fresh_warnings")
def test_a_missing_status_is_unknown_and_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = status({"analyses_url": None})
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, "")
    assert caplog.records == []


def test_an_unknown_status_is_warned_naming_github(caplog: pytest.LogCaptureFixture) -> None:
    value = f"partial-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = status({"processing_status": value})
    assert (got.lifecycle, got.vendor_status) == (Lifecycle.UNKNOWN, value)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown github status value {value!r} mapped to unknown"
    ]


def test_an_unknown_upload_is_not_found_saying_why() -> None:
    for body, said in (
        (NOT_FOUND, "Not Found (see https://docs.github.com/rest)"),
        (b"", "Not Found"),
    ):
        refused(
            lambda body=body: status(body, 404),
            NotFoundError,
            vendor="github",
            source="gh",
            operation="sarif status",
            status=404,
            body=body.decode() if isinstance(body, bytes) else json.dumps(body),
            message=f"SARIF upload {SARIF_ID} of {REPO}: {said} (the id matches no upload, or "
            "the token cannot see the repository)",
        )


def test_a_status_that_is_not_an_object_is_refused() -> None:
    refused(
        lambda: status([STATUS_COMPLETE]),
        PayloadError,
        vendor="github",
        source="gh",
        operation="sarif status",
        status=200,
        body=json.dumps([STATUS_COMPLETE]),
        message="the SARIF upload status is an array, expected an object",
    )


def test_a_redirect_is_refused() -> None:
    with pytest.raises(PayloadError, match="redirected"):
        status({}, 300)
    with pytest.raises(PayloadError, match="redirected"):
        status({}, 301)


# --- analyses -------------------------------------------------------------------------------------


def test_the_analysis_examples_read_exactly() -> None:
    assert analyses([ANALYSIS_DEFAULT]) == [
        gh.Analysis(
            id="3602840",
            sarif_id=SARIF_ID,
            results_count=3,
            rules_count=67,
            created_at=datetime(2021, 1, 13, 11, 55, 49, tzinfo=UTC),
            tool="CodeQL",
            category=".github/workflows/codeql-analysis.yml:analyze/language:javascript",
            error=None,  # "" in the example: no error
            warning=None,
            url="https://api.github.com/repos/octocat/hello-world/code-scanning/analyses/201",
        )
    ]
    # the list example names two other uploads: filtered out when asking for this one
    assert analyses([*ANALYSIS_ITEMS, ANALYSIS_DEFAULT], SARIF_ID) == analyses([ANALYSIS_DEFAULT])
    assert [a.id for a in analyses(ANALYSIS_ITEMS)] == ["201", "200"]


def test_an_analysis_with_an_error_and_no_category() -> None:
    got = analyses([{"id": 1, "error": "out of memory", "category": "", "tool": "CodeQL"}])
    assert got == [
        gh.Analysis("1", None, None, None, None, None, None, "out of memory", None, None)
    ]


@pytest.mark.parametrize(
    ("count", "read"),
    [
        (0, 0),
        (200, 200),
        (10**12 - 1, 10**12 - 1),
        (10**12, None),
        (-1, None),
        ("7", 7),
        (None, None),
    ],
)
def test_result_counts_are_kept_only_when_plausible(count: Any, read: int | None) -> None:
    (got,) = analyses([{"id": 1, "results_count": count, "rules_count": count}])
    assert (got.results_count, got.rules_count) == (read, read)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": 1}, "the analyses is an object, expected an array"),
        ([3], "an analysis is a number, expected an object"),
        ([{"results_count": 3}], "missing identity field id"),
    ],
)
def test_analyses_that_cannot_be_read_are_refused(body: Any, message: str) -> None:
    refused(
        lambda: analyses(body),
        PayloadError,
        vendor="github",
        source="gh",
        operation="list analyses",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_a_receipt_or_analyses_that_are_not_json_are_refused_naming_the_operation() -> None:
    refused(
        lambda: gh.parse_upload(
            resp(202, b"not json", operation="upload sarif"), source="gh", repository=REPO
        ),
        PayloadError,
        vendor="github",
        source="gh",
        operation="upload sarif",
        status=202,
        body="not json",
        message="body is not valid JSON (truncated or garbled)",
    )
    refused(
        lambda: analyses(b"not json"),
        PayloadError,
        vendor="github",
        source="gh",
        operation="list analyses",
        status=200,
        body="not json",
        message="body is not valid JSON (truncated or garbled)",
    )


def test_findings_notes_and_end_from_the_analyses() -> None:
    base = status(STATUS_COMPLETE)
    one = gh.Analysis("1", SARIF_ID, 3, 9, datetime(2024, 5, 1, 12, tzinfo=UTC), None, None,
                      "e1", "w1", None)  # fmt: skip
    two = gh.Analysis("2", SARIF_ID, 4, 9, datetime(2024, 5, 1, 12, 7, tzinfo=UTC), None, None,
                      None, "w2", None)  # fmt: skip
    got = gh.with_findings(base, [one, two])
    assert got == attrs.evolve(
        base,
        message="w1; w2; e1",  # warnings, then errors
        finished_at=datetime(2024, 5, 1, 12, 7, tzinfo=UTC),
        findings=FindingCounts(total=7),
    )
    said = gh.with_findings(attrs.evolve(base, message="processing note"), [one])
    assert said.message == "processing note; w1; e1"
    undated = attrs.evolve(one, created_at=None, warning=None, error=None)
    ended = attrs.evolve(base, finished_at=datetime(2024, 1, 1, tzinfo=UTC), message="kept")
    assert gh.with_findings(ended, [undated]) == attrs.evolve(
        ended, findings=FindingCounts(total=3)
    )
    uncounted = attrs.evolve(one, results_count=None)
    assert gh.with_findings(base, [uncounted]) == base
    assert gh.with_findings(base, []) == base


# --- errors and rate limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"message": "Bad\n credentials"}, "Bad credentials"),
        ({"errors": ["first  one", "second"]}, "first one; second"),
        ({"message": "Invalid", "errors": "ref  is\nwrong"}, "Invalid: ref is wrong"),
        ({"documentation_url": "https://docs"}, "see https://docs"),
        ({"message": "M", "documentation_url": "https://docs"}, "M (see https://docs)"),
        (
            {"errors": [{"message": "a  b"}, {"field": "title", "code": "missing"}, {}, 7]},
            "a b; title missing; invalid",
        ),
        ({"errors": [f"e{i}" for i in range(11)]}, "; ".join(f"e{i}" for i in range(10))),
        ({"other": 1}, None),
        ([1], None),
        (b"", None),
        (b"<html>", None),
    ],
)
def test_githubs_error_envelope_as_one_line(body: Any, text: str | None) -> None:
    assert gh.error_text(resp(422, body)) == text


def test_a_403_with_an_unreadable_retry_after_is_still_a_rate_limit() -> None:
    with pytest.raises(RateLimitedError) as info:
        gh.raise_for_github(
            resp(403, b"", headers={"Retry-After": "soon"}), Where("github", "gh", "op")
        )
    assert info.value.retry_after == 60.0
    assert info.value.message == "rate limited; retry in 60s"


def test_rate_limit_texts() -> None:
    at = Where("github", "gh", "sarif status")
    headers = {"date": "Tue, 20 Aug 2013 14:50:41 GMT", "x-ratelimit-limit": "60",
               "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1377010245"}  # fmt: skip
    with pytest.raises(RateLimitedError) as info:
        gh.raise_for_github(resp(403, b"", headers=headers), at)
    assert info.value.message == "primary rate limit exhausted (0 of 60 left); retry in 5s"
    with pytest.raises(RateLimitedError) as info:
        gh.raise_for_github(
            resp(429, b"", headers={**headers, "x-ratelimit-resource": "code_scanning_upload"}),
            at,
        )
    assert info.value.message == (
        "primary rate limit exhausted (0 of 60 left for 'code_scanning_upload'); retry in 5s"
    )
    with pytest.raises(RateLimitedError) as info:
        gh.raise_for_github(resp(429, {"message": "Slow down"}), at)
    assert info.value.message == "Slow down (rate limited; retry in 60s)"
    with pytest.raises(AuthenticationError):
        gh.raise_for_github(resp(403, {"message": "Resource not accessible"}), at)
