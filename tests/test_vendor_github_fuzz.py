"""GitHub code scanning parsers fuzzed as tests/test_fuzz.py fuzzes the others: any JSON, any
bytes, any status and any rate-limit headers in; a model (or a wait) or a ScanhubError out,
never another exception."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import Scan, ScanhubError
from scanhub.sansio import Response, Where
from scanhub.vendors.github import sansio as gh

from .test_fuzz import _mutations, json_values
from .test_vendor_github_payloads import (
    ANALYSIS_ITEMS,
    PRIMARY_HEADERS,
    SECONDARY_BODY,
    STATUS_COMPLETE,
    STATUS_FAILED,
    UPLOAD_RECEIPT,
)

PARSERS: dict[str, Callable[[Response], Any]] = {
    "gh.upload": lambda r: gh.parse_upload(r, source="s", repository="o/r"),
    "gh.status": lambda r: gh.parse_status(r, source="s", repository="o/r", sarif_id="x"),
    "gh.analyses": lambda r: gh.parse_analyses(r, source="s", sarif_id="x"),
    "gh.counted": lambda r: gh.with_findings(
        Scan("github", "s", "x", "o/r", gh.STATUS_MAP["complete"], "complete"),
        gh.parse_analyses(r, source="s"),
    ),
}
SEEDS = {
    "gh.upload": UPLOAD_RECEIPT,
    "gh.status": STATUS_FAILED,
    "gh.analyses": ANALYSIS_ITEMS,
    "gh.counted": ANALYSIS_ITEMS,
}
STATUSES = st.sampled_from([200, 202, 400, 401, 403, 404, 413, 422, 429, 500, 503])


def _check(name: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    try:
        out = PARSERS[name](Response(status, body, headers or {}, "op", ""))
    except ScanhubError:
        return
    items = out if isinstance(out, list) else [out]
    assert all(isinstance(i, Scan | gh.Analysis) for i in items)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values, status=STATUSES)
def test_any_json(name: str, data: Any, status: int) -> None:
    _check(name, status, json.dumps(data).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_documented_payload_with_one_field_broken(name: str, data: st.DataObject) -> None:
    body = data.draw(_mutations(SEEDS[name]))
    _check(name, 200, json.dumps(body).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=64), status=STATUSES)
def test_any_bytes(name: str, raw: bytes, status: int) -> None:
    _check(name, status, raw)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_truncated_documented_payload(name: str) -> None:
    body = json.dumps(SEEDS[name]).encode()
    for cut in range(0, len(body), max(1, len(body) // 25)):
        with pytest.raises(ScanhubError):
            PARSERS[name](Response(200, body[:cut], {}, "op", ""))


def test_every_documented_status_parses_from_the_example() -> None:
    for raw in gh.STATUS_MAP:
        body = json.dumps({**STATUS_COMPLETE, "processing_status": raw}).encode()
        assert PARSERS["gh.status"](Response(200, body, {}, "op", "")).vendor_status == raw


header_text = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(
        ["0", "1", "60", "1377013266", "1e9", " 0 ", "", "Tue, 20 Aug 2013 14:50:41 GMT"]
    ),
)
rate_headers = st.dictionaries(
    st.sampled_from(
        [
            "date",
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-used",
            "x-ratelimit-reset",
            "x-ratelimit-resource",
        ]
    ),
    header_text,
    max_size=7,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 401, 403, 404, 429, 500]),
    headers=rate_headers,
    body=st.one_of(
        st.just(json.dumps(SECONDARY_BODY).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=40),
    ),
    received=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_rate_limits_from_any_headers(
    status: int, headers: dict[str, str], body: bytes, received: datetime | None
) -> None:
    """A wait is None or a finite number >= 0; an error is a ScanhubError; a 429 is always a
    rate limit with a wait."""
    resp = Response(status, body, headers, "op", "", received)
    wait = gh.rate_limit_wait(resp, gh.error_text(resp))
    assert wait is None or (math.isfinite(wait) and wait >= 0)
    if status == 429:
        assert wait is not None
    try:
        gh.raise_for_github(resp, Where("github", "s", "op"))
    except ScanhubError as error:
        retry = getattr(error, "retry_after", None)
        assert retry is None or (math.isfinite(retry) and retry >= 0)
    else:
        assert 200 <= status < 300


@settings(max_examples=100, deadline=None)
@given(shift=st.integers(min_value=-(10**6), max_value=10**6))
def test_primary_wait_is_reset_minus_date(shift: int) -> None:
    headers = {**PRIMARY_HEADERS, "x-ratelimit-reset": str(1377010241 + shift)}
    wait = gh.rate_limit_wait(Response(403, b"{}", headers, "op", ""))
    assert wait == max(0, shift) + 1


@settings(max_examples=100, deadline=None)
@given(log=st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_any_sarif_object_round_trips(log: dict[str, Any]) -> None:
    field = gh.encode_sarif(log)
    assert json.loads(gh.decode_sarif(field)) == json.loads(json.dumps(log))
