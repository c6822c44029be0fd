"""GitHub code scanning: the pure functions against GitHub's documented payloads, then the
client against the simulator (github.com and Enterprise Server shapes, rate limits)."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from scanhub import (
    AuthenticationError,
    BadRequestError,
    Lifecycle,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    ScanHub,
    ServerError,
    Verdict,
)
from scanhub._config import parse_config
from scanhub.sansio import Response, Where
from scanhub.sim import Faults, SimClock
from scanhub.vendors import FindingCounts, RetryPolicy, Scan, registry
from scanhub.vendors.github import SPEC, GitHubCodeScanning
from scanhub.vendors.github import sansio as gh
from scanhub.vendors.github.sim import GitHubSim, sample_sarif
from scanhub.vendors.github.spec import ApiVersion

from .helpers import resp
from .test_vendor_github_payloads import (
    ANALYSIS_DEFAULT,
    ANALYSIS_ITEMS,
    BAD_CREDENTIALS,
    INVALID_REF,
    NOT_FOUND,
    PRIMARY_BODY,
    PRIMARY_HEADERS,
    PRIMARY_WAIT,
    SARIF_ID,
    SECONDARY_BODY,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUSES,
    UPLOAD_COMMIT,
    UPLOAD_RECEIPT,
    UPLOAD_REF,
    VALIDATION_FAILED,
)

API = "https://api.github.com"
GHES = "https://github.example.com/api/v3"
REPO = "octocat/hello-world"
EXPECTED = {
    "pending": Lifecycle.RUNNING,
    "complete": Lifecycle.SUCCEEDED,
    "failed": Lifecycle.FAILED,
}


def status(body: object, code: int = 200, **kw: typing.Any) -> Scan:
    return gh.parse_status(
        resp(code, body, url=f"{API}/repos/{REPO}/code-scanning/sarifs/{SARIF_ID}"),
        source="gh",
        repository=REPO,
        sarif_id=SARIF_ID,
        **kw,
    )


# --- the status table ---------------------------------------------------------------------------


def test_table_is_exactly_the_documented_processing_statuses() -> None:
    assert set(gh.STATUS_MAP) == set(STATUSES) == set(EXPECTED)
    assert dict(gh.STATUS_MAP) == EXPECTED


@pytest.mark.parametrize(("raw", "lifecycle"), sorted(EXPECTED.items()))
def test_each_status_through_the_parser(raw: str, lifecycle: Lifecycle) -> None:
    body = {"pending": STATUS_PENDING, "complete": STATUS_COMPLETE, "failed": STATUS_FAILED}[raw]
    scan = status(body)
    assert (scan.lifecycle, scan.vendor_status) == (lifecycle, raw)
    assert (scan.id, scan.application_id, scan.scan_type) == (SARIF_ID, REPO, "sarif")
    assert scan.verdict is Verdict.NONE  # code scanning's upload status carries no policy result
    assert scan.raw == body


def test_complete_example_links_its_analyses() -> None:
    scan = status(STATUS_COMPLETE)
    assert scan.links["analyses"] == STATUS_COMPLETE["analyses_url"]
    assert scan.links["status"].endswith(f"/code-scanning/sarifs/{SARIF_ID}")
    assert scan.message is None


def test_failed_errors_become_the_message() -> None:
    scan = status({**STATUS_FAILED, "errors": ["rejecting SARIF, a", "  two\nlines "]})
    assert scan.lifecycle is Lifecycle.FAILED
    assert scan.message == "rejecting SARIF, a; two lines"
    assert "analyses" not in scan.links  # analyses_url is null


def test_failed_without_errors_says_so_in_codeql_actions_words() -> None:
    for errors in (None, [], [3, None, ""]):
        scan = status({"processing_status": "failed", "errors": errors})
        assert scan.message == "Code Scanning could not process the submitted SARIF file"


def test_errors_of_an_unfinished_upload_are_still_shown() -> None:
    scan = status({"processing_status": "pending", "errors": ["a warning"]})
    assert (scan.lifecycle, scan.message) == (Lifecycle.RUNNING, "a warning")


def test_unknown_status_is_unknown_kept_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    # A value of its own each run: warnings are deduplicated per process, and mutation testing
    # runs this test several times in one process.
    value = f"partially_complete_{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        first = status({"processing_status": value})
        status({"processing_status": value})
    assert (first.lifecycle, first.vendor_status) == (Lifecycle.UNKNOWN, value)
    assert sum(value in r.getMessage() for r in caplog.records) == 1


def test_status_case_and_absence() -> None:
    assert status({"processing_status": "COMPLETE"}).lifecycle is Lifecycle.SUCCEEDED
    missing = status({})
    assert (missing.lifecycle, missing.vendor_status) == (Lifecycle.UNKNOWN, "")


def test_previous_upload_keeps_its_start_links_and_count() -> None:
    started = datetime(2024, 5, 1, 12, tzinfo=UTC)
    previous = Scan(
        "github",
        "gh",
        SARIF_ID,
        REPO,
        Lifecycle.QUEUED,
        "",
        links={"status": UPLOAD_RECEIPT["url"]},
        started_at=started,
        findings=FindingCounts(total=2),
    )
    scan = status(STATUS_PENDING, previous=previous)
    assert scan.started_at == started and scan.findings == FindingCounts(total=2)
    assert scan.links["status"] == UPLOAD_RECEIPT["url"]


def test_unknown_upload_is_not_found_with_the_reasons() -> None:
    with pytest.raises(NotFoundError) as err:
        status(NOT_FOUND, 404)
    assert SARIF_ID in err.value.message and "matches no upload" in err.value.message
    assert "Not Found (see https://docs.github.com/rest)" in err.value.message


@pytest.mark.parametrize("body", [[], "text", 3, None, [STATUS_COMPLETE]])
def test_a_status_that_is_not_an_object_is_a_payload_error(body: object) -> None:
    with pytest.raises(PayloadError):
        status(body)


# --- upload -------------------------------------------------------------------------------------


def upload(**kw: typing.Any) -> typing.Any:
    args: dict[str, typing.Any] = {"commit_sha": UPLOAD_COMMIT, "ref": UPLOAD_REF}
    args.update(kw)
    sarif = args.pop("sarif", sample_sarif())
    return gh.build_upload(args.pop("base_url", API), args.pop("repository", REPO), sarif, **args)


def test_upload_request_is_the_documented_one() -> None:
    req = upload()
    assert (req.method, req.url) == (
        "POST",
        f"{API}/repos/octocat/hello-world/code-scanning/sarifs",
    )
    assert req.idempotent is False and req.operation == "upload sarif"
    assert set(req.json) == {"commit_sha", "ref", "sarif"}
    assert (req.json["commit_sha"], req.json["ref"]) == (UPLOAD_COMMIT, UPLOAD_REF)


def test_sarif_is_gzip_compressed_then_base64_encoded() -> None:
    log = sample_sarif(results=2)
    field = upload(sarif=log).json["sarif"]
    raw = gzip.decompress(base64.b64decode(field, validate=True))
    assert json.loads(raw) == log
    assert gh.decode_sarif(field) == raw
    # No timestamp in the gzip header: the same log always encodes the same (no clock read).
    assert field == upload(sarif=log).json["sarif"]
    assert gzip.compress(raw, mtime=0) == base64.b64decode(field)


def test_sarif_given_as_text_bytes_or_already_gzipped() -> None:
    text = json.dumps(sample_sarif())
    assert gh.decode_sarif(gh.encode_sarif(text)) == text.encode()
    assert gh.decode_sarif(gh.encode_sarif(text.encode())) == text.encode()
    zipped = gzip.compress(text.encode())
    assert base64.b64decode(gh.encode_sarif(zipped)) == zipped  # sent as given


@pytest.mark.parametrize("bad", [b"", "   ", b"not json", "[1, 2]", 42])
def test_a_sarif_that_is_not_a_json_log_is_refused_before_sending(bad: typing.Any) -> None:
    with pytest.raises(BadRequestError):
        upload(sarif=bad)


def test_optional_keys_are_sent_only_when_given() -> None:
    req = upload(
        checkout_uri="file:///github/workspace/",
        started_at=datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
        tool_name="Semgrep",
        validate=True,
    )
    assert req.json["checkout_uri"] == "file:///github/workspace/"
    assert req.json["started_at"] == "2024-05-01T14:30:00Z"  # YYYY-MM-DDTHH:MM:SSZ
    assert (req.json["tool_name"], req.json["validate"]) == ("Semgrep", True)
    # A string in another offset or form is sent as GitHub documents the field: UTC, `Z`.
    for given, sent in [
        ("2024-05-01T14:30:00+02:00", "2024-05-01T12:30:00Z"),
        ("2024-05-01T14:30:00+0200", "2024-05-01T12:30:00Z"),
        ("2024-05-01 14:30:00", "2024-05-01T14:30:00Z"),
        ("2024-05-01T14:30:00.987Z", "2024-05-01T14:30:00Z"),
    ]:
        assert upload(started_at=given).json["started_at"] == sent, given
    assert upload(validate=False).json["validate"] is False


@pytest.mark.parametrize(
    "kw",
    [
        {"commit_sha": "4b64722"},  # abbreviated
        {"commit_sha": "g" * 40},
        {"commit_sha": "a" * 41},
        {"ref": "ref/heads/main"},  # the real-world 422 of INVALID_REF
        {"ref": "main"},
        {"ref": "refs/heads/"},
        {"started_at": "yesterday"},
        {"started_at": "2024-05-01"},  # a date alone: which time of it?
        {"started_at": "1714573800000"},  # epoch milliseconds, not the documented form
        {"started_at": "2024-05-01X14:30:00"},
        {"tool_name": " "},
        {"checkout_uri": ""},
        {"repository": "octocat"},
        {"repository": "octocat/hello/world"},
        {"repository": "/hello-world"},
    ],
)
def test_what_github_would_refuse_is_refused_before_sending(kw: dict[str, str]) -> None:
    with pytest.raises(BadRequestError):
        upload(**kw)


def test_sha256_commits_and_every_ref_kind_are_accepted() -> None:
    for ref in ("refs/heads/main", "refs/tags/v1.0", "refs/pull/42/merge", "refs/pull/42/head"):
        assert upload(ref=ref, commit_sha="A" * 64).json["ref"] == ref


def test_enterprise_server_paths_keep_the_api_v3_prefix() -> None:
    assert upload(base_url=GHES).url == f"{GHES}/repos/octocat/hello-world/code-scanning/sarifs"
    assert gh.build_status(GHES, REPO, SARIF_ID).url == (
        f"{GHES}/repos/octocat/hello-world/code-scanning/sarifs/{SARIF_ID}"
    )
    req = gh.build_analyses(GHES + "/", REPO, SARIF_ID)
    assert req.url == f"{GHES}/repos/octocat/hello-world/code-scanning/analyses"
    assert req.params == (("sarif_id", SARIF_ID), ("per_page", "100"))


def test_path_segments_are_literal() -> None:
    req = gh.build_status(API, "octo cat/hello.world", "a/b?c")
    assert req.url.endswith("/repos/octo%20cat/hello.world/code-scanning/sarifs/a%2Fb%3Fc")
    with pytest.raises(BadRequestError):
        gh.build_status(API, "../x", "..")


def test_upload_receipt_example_is_a_queued_upload() -> None:
    started = datetime(2024, 5, 1, tzinfo=UTC)
    scan = gh.parse_upload(
        resp(202, UPLOAD_RECEIPT), source="gh", repository=REPO, started_at=started
    )
    assert (scan.id, scan.application_id) == (SARIF_ID, REPO)
    assert (scan.lifecycle, scan.vendor_status, scan.scan_type) == (Lifecycle.QUEUED, "", "sarif")
    assert scan.links == {"status": UPLOAD_RECEIPT["url"]}
    assert scan.started_at == started and scan.raw == UPLOAD_RECEIPT


@pytest.mark.parametrize("body", [{"url": UPLOAD_RECEIPT["url"]}, {"id": ""}, {"id": None}, []])
def test_a_receipt_without_an_id_is_a_payload_error(body: object) -> None:
    with pytest.raises(PayloadError):
        gh.parse_upload(resp(202, body), source="gh", repository=REPO)


def test_auth_headers() -> None:
    assert gh.auth_headers("ghp_x") == {
        "Authorization": "Bearer ghp_x",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "scanhub",
    }
    assert gh.auth_headers("t", "2026-03-10")["X-GitHub-Api-Version"] == "2026-03-10"


# --- errors -------------------------------------------------------------------------------------


def upload_answer(code: int, body: object, headers: dict[str, str] | None = None) -> Scan:
    return gh.parse_upload(resp(code, body, headers=headers), source="gh", repository=REPO)


def test_bad_credentials_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError) as err:
        upload_answer(401, BAD_CREDENTIALS)
    assert err.value.message == "Bad credentials (see https://docs.github.com/enterprise/3.2/rest)"


def test_a_403_that_is_no_rate_limit_is_an_authentication_error() -> None:
    body = {"message": "Resource not accessible by integration", "documentation_url": "x"}
    with pytest.raises(AuthenticationError):
        upload_answer(403, body, {"x-ratelimit-remaining": "4999", "x-ratelimit-limit": "5000"})


def test_validation_errors_name_what_was_wrong() -> None:
    with pytest.raises(BadRequestError) as err:
        upload_answer(422, INVALID_REF)
    assert err.value.message.startswith(
        "Invalid request. ref/heads/main does not match /^refs\\/(heads|pull|tags)\\/.*$/."
    )
    with pytest.raises(BadRequestError) as err:
        upload_answer(422, VALIDATION_FAILED)
    assert err.value.message == (
        "Validation Failed: title missing_field (see https://docs.github.com/rest)"
    )
    with pytest.raises(BadRequestError) as err:
        upload_answer(422, {"message": "Invalid", "errors": ["a", {"message": "b"}, 7]})
    assert err.value.message == "Invalid: a; b"


@pytest.mark.parametrize(
    ("code", "error"),
    [(400, BadRequestError), (404, NotFoundError), (413, BadRequestError), (503, ServerError)],
)
def test_documented_status_codes_of_the_upload(code: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        upload_answer(code, {"message": "x", "documentation_url": "y"})


def test_a_proxy_page_instead_of_the_envelope() -> None:
    with pytest.raises(ServerError) as err:
        upload_answer(502, "<html><body>Bad gateway</body></html>")
    assert err.value.message == "HTTP 502" and "Bad gateway" in (err.value.body_excerpt or "")


# --- rate limits --------------------------------------------------------------------------------


def limited(code: int, body: object, headers: dict[str, str], **kw: typing.Any) -> float | None:
    with pytest.raises(RateLimitedError) as err:
        gh.raise_for_github(
            Response(code, json.dumps(body).encode(), headers, "sarif status", "", **kw),
            Where("github", "gh", "sarif status"),
        )
    return err.value.retry_after


@pytest.mark.parametrize("code", [403, 429])
def test_primary_limit_waits_until_reset_measured_from_the_date_header(code: int) -> None:
    assert limited(code, PRIMARY_BODY, PRIMARY_HEADERS) == PRIMARY_WAIT


def test_primary_limit_message_names_the_quota() -> None:
    headers = {**PRIMARY_HEADERS, "x-ratelimit-limit": "5000", "x-ratelimit-resource": "core"}
    with pytest.raises(RateLimitedError) as err:
        upload_answer(403, PRIMARY_BODY, headers)
    assert "primary rate limit exhausted (0 of 5000 left for 'core')" in err.value.message
    assert err.value.message.startswith("API rate limit exceeded")


def test_primary_limit_already_reset_waits_a_second() -> None:
    headers = {**PRIMARY_HEADERS, "x-ratelimit-reset": "1377010000"}
    assert limited(403, PRIMARY_BODY, headers) == 1.0


def test_primary_limit_without_a_date_uses_the_receipt_time_or_a_minute() -> None:
    headers = {k: v for k, v in PRIMARY_HEADERS.items() if k != "date"}
    received = datetime.fromtimestamp(1377013200, tz=UTC)
    assert limited(429, PRIMARY_BODY, headers, received_at=received) == 67.0
    assert limited(403, PRIMARY_BODY, headers) == gh.SECONDARY_WAIT  # no clock is read


@pytest.mark.parametrize("code", [403, 429])
def test_secondary_limit_with_retry_after(code: int) -> None:
    assert (
        limited(code, SECONDARY_BODY, {"retry-after": "30", "x-ratelimit-remaining": "4000"}) == 30
    )


@pytest.mark.parametrize("code", [403, 429])
def test_secondary_limit_without_retry_after_waits_a_minute(code: int) -> None:
    assert limited(code, SECONDARY_BODY, {"x-ratelimit-remaining": "4000"}) == 60.0
    with pytest.raises(RateLimitedError) as err:
        upload_answer(code, SECONDARY_BODY, {"x-ratelimit-remaining": "4000"})
    assert "secondary rate limit; retry in 60s" in err.value.message


def test_secondary_limit_on_an_exhausted_quota_waits_for_the_reset() -> None:
    # rate-limits-for-the-rest-api.md: retry-after first, else x-ratelimit-reset, else 60 s.
    assert limited(403, SECONDARY_BODY, PRIMARY_HEADERS) == PRIMARY_WAIT
    headers = {**PRIMARY_HEADERS, "retry-after": "5"}
    assert limited(403, SECONDARY_BODY, headers) == 5


def test_retry_after_as_an_http_date() -> None:
    headers = {
        "date": "Tue, 20 Aug 2013 14:50:41 GMT",
        "retry-after": "Tue, 20 Aug 2013 14:51:11 GMT",
    }
    assert limited(429, SECONDARY_BODY, headers) == 30


def test_a_429_is_always_a_rate_limit() -> None:
    assert limited(429, {"message": "Too Many Requests"}, {}) == 60.0
    assert limited(429, "not json", {"retry-after": "nonsense"}) == 60.0


def test_rate_limit_headers_are_read_defensively() -> None:
    assert gh.rate_limit_of({}) is None
    status = gh.rate_limit_of(
        {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-used": "1",
            "x-ratelimit-reset": "1372700873",
            "x-ratelimit-resource": "core",
        }
    )
    assert status == gh.RateLimitStatus(5000, 4999, 1, 1372700873, "core")
    odd = gh.rate_limit_of({"x-ratelimit-remaining": "-1", "x-ratelimit-reset": "1e9"})
    assert odd == gh.RateLimitStatus(None, None, None, None, None) or odd is None


def test_rate_limit_wait_is_none_for_other_answers() -> None:
    assert gh.rate_limit_wait(Response(200, b"{}", PRIMARY_HEADERS)) is None
    assert gh.rate_limit_wait(Response(404, b"{}", PRIMARY_HEADERS)) is None
    assert gh.rate_limit_wait(Response(403, b"{}", {"x-ratelimit-remaining": "1"})) is None


# --- analyses: the result count -----------------------------------------------------------------


def test_analyses_example_filtered_to_the_upload() -> None:
    found = gh.parse_analyses(
        resp(200, [*ANALYSIS_ITEMS, ANALYSIS_DEFAULT]), source="gh", sarif_id=SARIF_ID
    )
    assert [a.id for a in found] == ["3602840"]
    a = found[0]
    assert (a.results_count, a.rules_count, a.tool, a.sarif_id) == (3, 67, "CodeQL", SARIF_ID)
    assert a.created_at == datetime(2021, 1, 13, 11, 55, 49, tzinfo=UTC)
    assert (a.error, a.warning) == (None, None)  # "" in the example
    everything = gh.parse_analyses(resp(200, ANALYSIS_ITEMS), source="gh")
    assert [x.results_count for x in everything] == [17, 17]


def test_findings_are_the_sum_of_results_counts() -> None:
    scan = status(STATUS_COMPLETE)
    analyses = gh.parse_analyses(resp(200, ANALYSIS_ITEMS), source="gh")
    counted = gh.with_findings(scan, analyses)
    assert counted.findings == FindingCounts(total=34)
    assert counted.finished_at == datetime(2020, 8, 31, 22, 46, 44, tzinfo=UTC)
    assert counted.lifecycle is Lifecycle.SUCCEEDED and counted.verdict is Verdict.NONE
    assert gh.with_findings(scan, []) is scan


def test_analysis_warnings_reach_the_message() -> None:
    warned = {**ANALYSIS_DEFAULT, "warning": "123 results were ignored"}
    analyses = gh.parse_analyses(resp(200, [warned]), source="gh")
    assert gh.with_findings(status(STATUS_COMPLETE), analyses).message == "123 results were ignored"


def test_analyses_errors() -> None:
    with pytest.raises(PayloadError):
        gh.parse_analyses(resp(200, {"analyses": []}), source="gh")
    with pytest.raises(PayloadError):
        gh.parse_analyses(resp(200, [{"results_count": 3}]), source="gh")  # no id
    counts = gh.parse_analyses(resp(200, [{"id": 1, "results_count": "lots"}]), source="gh")
    assert counts[0].results_count is None


# --- configuration ------------------------------------------------------------------------------


def test_configured_versions_are_the_adapters_versions() -> None:
    assert typing.get_args(ApiVersion) == gh.API_VERSIONS


def config(source: dict[str, object], track: dict[str, object]) -> typing.Any:
    doc = {
        "source": [{"name": "gh", "vendor": "github", "token_env": "GH_TOKEN", **source}],
        "track": [{"source": "gh", **track}],
    }
    return parse_config(doc, "t.toml", env={"GH_TOKEN": "ghp_secret_value"})


def test_config_takes_github_and_enterprise_server() -> None:
    for base in (API, GHES):
        cfg = config({"base_url": base}, {"repository": REPO, "sarif_id": SARIF_ID})
        assert cfg.sources[0].base_url == base
    cfg = config(
        {"base_url": API, "api_version": "2026-03-10", "fetch_findings": False},
        {"repository": REPO, "sarif_id": SARIF_ID},
    )
    client = SPEC.make_client(cfg.sources[0], {"GH_TOKEN": "ghp_secret_value"})
    assert client.api_version == "2026-03-10" and client.fetch_findings is False
    assert "ghp_secret_value" not in repr(client)


@pytest.mark.parametrize(
    ("source", "track", "needle"),
    [
        (
            {"base_url": "https://github.com"},
            {"repository": REPO, "sarif_id": "x"},
            "api.github.com",
        ),
        ({"base_url": API}, {"repository": "hello-world", "sarif_id": "x"}, "owner/repo"),
        (
            {"base_url": API, "api_version": "v3"},
            {"repository": REPO, "sarif_id": "x"},
            "api_version",
        ),
        ({"base_url": API, "token": "x"}, {"repository": REPO, "sarif_id": "x"}, "token_env"),
    ],
)
def test_config_problems(source: dict[str, object], track: dict[str, object], needle: str) -> None:
    with pytest.raises(Exception, match=needle):
        config(source, track)


async def test_a_track_is_the_upload_to_poll() -> None:
    client = GitHubCodeScanning(API, "t", name="gh")
    cfg = config({"base_url": API}, {"repository": REPO, "sarif_id": SARIF_ID})
    tracking = await SPEC.resolve_track(client, cfg.tracks[0])
    (item,) = tracking.items
    assert (item.vendor, item.source, item.id, item.application_id) == (
        "github",
        "gh",
        SARIF_ID,
        REPO,
    )
    assert registry().get("github") is SPEC


# --- client and simulator -----------------------------------------------------------------------


def sim_client(sim: GitHubSim, **kw: typing.Any) -> GitHubCodeScanning:
    return GitHubCodeScanning(sim.base_url, sim.token, name="gh", **kw)


async def finish(client: GitHubCodeScanning, scan: Scan, sim: GitHubSim) -> Scan:
    sim.clock.advance(sim.duration + 1)
    return await client.refresh(scan)


@pytest.mark.parametrize("enterprise", [False, True], ids=["github.com", "ghes"])
async def test_upload_walks_pending_to_complete_with_its_result_count(enterprise: bool) -> None:
    sim = GitHubSim(enterprise=enterprise, duration=5)
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        scan = await client.upload_sarif(
            REPO, sample_sarif("Semgrep OSS", 4), commit_sha=UPLOAD_COMMIT, ref=UPLOAD_REF
        )
        assert (scan.lifecycle, scan.vendor_status) == (Lifecycle.QUEUED, "")
        pending = await client.refresh(scan)
        assert (pending.lifecycle, pending.vendor_status) == (Lifecycle.RUNNING, "pending")
        done = await finish(client, pending, sim)
    assert (done.lifecycle, done.vendor_status) == (Lifecycle.SUCCEEDED, "complete")
    assert done.findings == FindingCounts(total=4) and done.finished_at is not None
    assert done.links["analyses"].startswith(sim.base_url)
    assert sim.base_url.endswith("/api/v3") is enterprise


async def test_enterprise_answers_carry_its_version_header() -> None:
    sim = GitHubSim(enterprise=True)
    async with sim, aiohttp.ClientSession() as session:
        sim.add_repository(REPO)
        url = f"{sim.base_url}/repos/{REPO}/code-scanning/sarifs/nope"
        async with session.get(url, headers={"Authorization": f"Bearer {sim.token}"}) as r:
            assert r.status == 404 and "x-github-enterprise-version" in r.headers
        async with session.get(
            url.replace("/api/v3", ""), headers={"Authorization": f"token {sim.token}"}
        ) as r:
            assert r.status == 404 and (await r.json())["message"] == "Not Found"


async def test_failed_upload_carries_githubs_errors() -> None:
    sim = GitHubSim(duration=1)
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        log = sample_sarif("ESLint", 2, uri="git://github.com/octocat/hello-world/app.js")
        scan = await client.upload_sarif(
            REPO, log, commit_sha=UPLOAD_COMMIT, ref=UPLOAD_REF, checkout_uri="file:///src/"
        )
        done = await finish(client, scan, sim)
        sim.fail_tool("Trivy", ["rejecting delivery as the repository has too many logical alerts"])
        other = await client.upload_sarif(
            REPO, sample_sarif("Trivy"), commit_sha=UPLOAD_COMMIT, ref=UPLOAD_REF
        )
        other = await finish(client, other, sim)
    assert (done.lifecycle, done.vendor_status) == (Lifecycle.FAILED, "failed")
    assert done.message == 'SARIF URI scheme "git" did not match the checkout URI scheme "file"'
    assert done.findings is None and "analyses" not in done.links
    assert other.message == "rejecting delivery as the repository has too many logical alerts"


async def test_upload_from_a_file_and_from_text(tmp_path: Path) -> None:
    path = tmp_path / "results.sarif"
    path.write_text(json.dumps(sample_sarif(results=2)))
    sim = GitHubSim(duration=0)
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        for given in (path, str(path), path.read_text()):
            scan = await client.upload_sarif(REPO, given, commit_sha=UPLOAD_COMMIT, ref=UPLOAD_REF)
            assert (await client.refresh(scan)).findings == FindingCounts(total=2)


async def test_unknown_upload_and_wrong_repository_are_not_found() -> None:
    sim = GitHubSim()
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        (sid,) = sim.seed_uploads("octo-org/other", 1)
        with pytest.raises(NotFoundError, match="matches no upload"):
            await client.sarif_upload(REPO, sid)
        with pytest.raises(NotFoundError):
            await client.sarif_upload("octo-org/unknown", sid)


async def test_code_scanning_disabled_is_an_authentication_error() -> None:
    sim = GitHubSim()
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO, code_scanning=False)
        with pytest.raises(AuthenticationError, match="not enabled"):
            await client.upload_sarif(
                REPO, sample_sarif(), commit_sha=UPLOAD_COMMIT, ref=UPLOAD_REF
            )


async def test_bad_token_is_an_authentication_error_without_the_token() -> None:
    sim = GitHubSim()
    async with sim, GitHubCodeScanning(sim.base_url, "ghp_wrongTokenValue123") as client:
        sim.add_repository(REPO)
        with pytest.raises(AuthenticationError) as err:
            await client.sarif_upload(REPO, "x")
    assert "Bad credentials" in str(err.value) and "ghp_wrongTokenValue123" not in str(err.value)


async def test_simulator_checks_the_body_as_github_does() -> None:
    sim = GitHubSim()
    sarif = gh.encode_sarif(sample_sarif())
    good = {"commit_sha": UPLOAD_COMMIT, "ref": UPLOAD_REF, "sarif": sarif}
    cases = [
        ({**good, "category": "x"}, 422, '"category" is not a permitted key'),
        ({"commit_sha": UPLOAD_COMMIT, "ref": UPLOAD_REF}, 422, '"sarif" wasn\'t supplied'),
        ({**good, "ref": "ref/heads/main"}, 422, INVALID_REF["message"]),
        ({**good, "commit_sha": "abc"}, 422, "abc does not match"),
        ({**good, "sarif": "not base64 gzip"}, 400, "gzip"),
        ([good], 400, "Problems parsing JSON"),
    ]
    async with sim, aiohttp.ClientSession() as session:
        sim.add_repository(REPO)
        url = f"{sim.base_url}/repos/{REPO}/code-scanning/sarifs"
        for body, code, text in cases:
            async with session.post(
                url, json=body, headers={"Authorization": f"Bearer {sim.token}"}
            ) as r:
                answer = await r.json()
                assert (r.status, text in answer["message"]) == (code, True), answer
                assert r.headers["x-ratelimit-resource"] == "core"
        async with session.post(
            url, json=good, headers={"Authorization": f"Bearer {sim.token}"}
        ) as r:
            receipt = await r.json()
    assert r.status == 202 and set(receipt) == {"id", "url"}
    assert receipt["url"] == f"{sim.base_url}/repos/{REPO}/code-scanning/sarifs/{receipt['id']}"


async def test_every_answer_carries_the_rate_limit_headers() -> None:
    sim = GitHubSim(faults=Faults(error_rate=0.5, seed=1))
    async with sim, aiohttp.ClientSession() as session:
        sim.add_repository(REPO)
        url = f"{sim.base_url}/repos/{REPO}/code-scanning/analyses"
        seen = []
        for _ in range(6):
            async with session.get(url, headers={"Authorization": f"Bearer {sim.token}"}) as r:
                seen.append((r.status, r.headers["x-ratelimit-remaining"]))
                assert int(r.headers["x-ratelimit-reset"]) > 1_000_000_000
                assert r.headers["x-ratelimit-limit"] == "5000"
    codes = {code for code, _ in seen}
    assert 200 in codes and codes & {500, 502, 503}  # the injected 5xx carry them too
    assert [int(rem) for _, rem in seen] == list(range(4999, 4993, -1))


async def test_primary_rate_limit_from_the_simulator() -> None:
    sim = GitHubSim(faults=Faults(server_rate_limit=(2, 30.0)))
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        (sid,) = sim.seed_uploads(REPO, 1)
        await client.sarif_upload(REPO, sid)
        await client.sarif_upload(REPO, sid)
        with pytest.raises(RateLimitedError) as err:
            await client.sarif_upload(REPO, sid)
    assert err.value.status == 403 and "primary rate limit exhausted (0 of 2 left" in str(err.value)
    assert err.value.retry_after is not None and 1 <= err.value.retry_after <= 32


async def test_primary_rate_limit_as_429_is_not_retried_while_limited() -> None:
    sim = GitHubSim(faults=Faults(server_rate_limit=(1, 30.0)), primary_status=429)
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        (sid,) = sim.seed_uploads(REPO, 1)
        await client.sarif_upload(REPO, sid)
        with pytest.raises(RateLimitedError) as err:
            await client.sarif_upload(REPO, sid)
        sent = client.transport.sent
    assert sent == 2  # the 429 was not asked again inside the call
    assert err.value.retry_after is not None and 1 <= err.value.retry_after <= 32


@pytest.mark.parametrize(("retry_after", "wait"), [(7, 7.0), (None, 60.0)])
async def test_secondary_rate_limit_from_the_simulator(
    retry_after: float | None, wait: float
) -> None:
    sim = GitHubSim(faults=Faults(rate_limit_rate=1.0, retry_after=retry_after))
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        with pytest.raises(RateLimitedError) as err:
            await client.sarif_upload(REPO, "x")
    assert err.value.status == 403 and err.value.retry_after == wait
    assert "You have exceeded a secondary rate limit" in err.value.message


async def test_the_engine_pauses_a_rate_limited_source() -> None:
    sim = GitHubSim(clock=SimClock(speed=1.0), faults=Faults(server_rate_limit=(1, 60.0)))
    async with sim, sim_client(sim) as client:
        sim.add_repository(REPO)
        (sid,) = sim.seed_uploads(REPO, 1, duration=60)
        placeholder = Scan("github", "gh", sid, REPO, Lifecycle.UNKNOWN, "")
        async with ScanHub([client], interval=0.05, max_interval=0.1) as hub:
            hub.track(placeholder)
            async for _ in hub.watch(deadline=0.6):
                pass
            error = hub.errors()[placeholder.key]
    assert sim.stats.requests == 2  # one answered, one limited; then the source waits
    assert error.type == "RateLimitedError" and error.retry_after is not None
    assert 50 <= error.retry_after <= 62


async def test_unknown_status_fault_is_unknown_and_kept() -> None:
    sim = GitHubSim(faults=Faults(unknown_status_rate=1.0))
    async with sim, sim_client(sim) as client:
        (sid,) = sim.seed_uploads(REPO, 1)
        scan = await client.sarif_upload(REPO, sid)
    assert (scan.lifecycle, scan.vendor_status) == (Lifecycle.UNKNOWN, "processing")


async def test_without_fetch_findings_no_analyses_are_read() -> None:
    sim = GitHubSim(duration=0)
    async with sim, sim_client(sim, fetch_findings=False) as client:
        (sid,) = sim.seed_uploads(REPO, 1)
        scan = await client.sarif_upload(REPO, sid)
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.findings is None
    assert sim.stats.requests == 1


class BrokenAnalyses(GitHubSim):
    status_code = 404

    async def _analyses(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response({"message": "nope"}, status=self.status_code)


async def test_a_finished_upload_stays_finished_without_its_count() -> None:
    sim = BrokenAnalyses(duration=0)
    async with sim, sim_client(sim) as client:
        (sid,) = sim.seed_uploads(REPO, 1)
        scan = await client.sarif_upload(REPO, sid)
        assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.findings is None
        sim.status_code = 503  # retryable: the poll fails and is made again later
        async with sim_client(sim, retry=RetryPolicy(attempts=1)) as once:
            with pytest.raises(ServerError):
                await once.sarif_upload(REPO, sid)


async def test_demo_part_keeps_moving_for_serve_demo() -> None:
    from scanhub.vendors.github.demo import DEMO

    sim = DEMO.make_sim(SimClock(speed=100.0))
    async with sim, DEMO.client(sim) as client:
        started = [item for r in range(3) for item in await DEMO.more(sim, client, r)]
        sim.clock.advance(10)
        finals = [await client.refresh(item) for item in started]
    assert [f.lifecycle for f in finals] == [
        Lifecycle.SUCCEEDED,
        Lifecycle.SUCCEEDED,
        Lifecycle.FAILED,
    ]
    assert finals[0].findings == FindingCounts(total=1)
