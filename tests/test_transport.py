"""Transport pieces: the sliding-window limiter, Retry-After parsing, redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st

from scanhub import (
    AppSecPlus,
    AppTrust,
    IQServer,
    RateLimit,
    RateLimitedError,
    RetryPolicy,
    ScanhubError,
    ThreadFix,
    Timeouts,
)
from scanhub._ratelimit import SlidingWindowLimiter
from scanhub._secrets import Redactor, Secret
from scanhub.sansio._common import parse_retry_after, parse_time

from .conftest import FakeSleep


async def test_limiter_never_lets_more_than_n_into_any_window(fake_sleep: FakeSleep) -> None:
    limiter = SlidingWindowLimiter(
        RateLimit(5, 10.0, guard=0.0), clock=fake_sleep.clock, sleep=fake_sleep
    )
    stamps = []
    for _ in range(23):
        await limiter.acquire()
        stamps.append(fake_sleep.now)
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + 10.0]
        assert len(in_window) <= 5
    # and it is not slower than it must be: 23 sends need 4 full windows
    assert stamps[-1] - stamps[0] == pytest.approx(40.0)


async def test_limiter_guard_widens_the_window(fake_sleep: FakeSleep) -> None:
    limiter = SlidingWindowLimiter(
        RateLimit(2, 10.0, guard=0.5), clock=fake_sleep.clock, sleep=fake_sleep
    )
    for _ in range(3):
        await limiter.acquire()
    assert fake_sleep.slept == [10.5]


def test_iq_cloud_preset() -> None:
    assert RateLimit.iq_cloud() == RateLimit(1500, 300.0, 0.5)
    with pytest.raises(ValueError, match="max_requests"):
        RateLimit(0, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        # Only RFC 9110 forms: ASCII delay-seconds or an HTTP-date; the rest is ignored.
        ("-5", None),
        ("1.5", None),
        ("1e308", None),
        ("1_0", None),
        ("\u0661\u0660", None),  # Arabic-Indic "10"
        ("\uff11\uff10", None),  # full-width "10"
        ("inf", None),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wednesday, 21-Oct-15 07:28:30 GMT", 30.0),
        ("Wed Oct 21 07:28:30 2015", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # a date in the past: no wait
        ("21 Oct 2015 07:28:30", None),  # not one of the three date forms
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


def test_retry_after_date_without_reference_is_none() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-10-28T15:08:32.348+0000", datetime(2020, 10, 28, 15, 8, 32, 348000, tzinfo=UTC)),
        ("2025-11-01T12:00:00Z", datetime(2025, 11, 1, 12, tzinfo=UTC)),
        ("2025-11-01T14:00:00+02:00", datetime(2025, 11, 1, 12, tzinfo=UTC)),
        ("2025-11-01T12:00:00", datetime(2025, 11, 1, 12, tzinfo=UTC)),
        (1570117773000, datetime(2019, 10, 3, 15, 49, 33, tzinfo=UTC)),
        ("1570117773000", datetime(2019, 10, 3, 15, 49, 33, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("yesterday", None),
        (True, None),
        (10**30, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@given(st.text())
def test_parse_time_never_raises(value: str) -> None:
    result = parse_time(value)
    assert result is None or result.tzinfo == UTC


def test_redactor() -> None:
    red = Redactor([Secret("hunter2-token"), Secret("p@ss/w rd"), "ab"])
    red.add_basic("admin", "admin123")
    text = (
        "url http://h/x?apiKey=k9&b=1 token hunter2-token enc p%40ss%2Fw%20rd plus p%40ss%2Fw+rd "
        "hdr Authorization: Basic YWRtaW46YWRtaW4xMjM= ok, a cab"
    )
    out = red(text)
    for leaked in ("hunter2-token", "k9", "YWRtaW46YWRtaW4xMjM=", "p%40ss"):
        assert leaked not in out
    assert "a cab" in out  # "ab" is too short to be treated as a secret
    assert "apiKey=***" in out and "b=1" in out


SECRET = "Zq8-sEcReT-9xY"


async def test_no_secret_in_logs_or_errors_for_any_client(
    vendor_http: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """Every client fails every way we can provoke; the secret shows up nowhere."""
    import re

    caplog.set_level(logging.DEBUG)
    echo = f"<html>denied for {SECRET} / Authorization: Bearer {SECRET}</html>"
    for status in (401, 429, 500, 200):
        vendor_http.get(re.compile(r".*"), status=status, body=echo, repeat=False)
        vendor_http.post(re.compile(r".*"), status=status, body=echo, repeat=False)
    retry = RetryPolicy(attempts=1)
    clients = [
        IQServer("http://iq", "admin", SECRET, retry=retry, csrf_token="c"),
        ThreadFix("http://tf/threadfix", SECRET, retry=retry),
        ThreadFix("http://tf/threadfix", SECRET, retry=retry, api_key_in_query=True),
        AppSecPlus("http://asp", SECRET, retry=retry),
        AppTrust("http://at", SECRET, retry=retry),
    ]
    errors: list[ScanhubError] = []
    for client in clients:
        async with client:
            calls = {
                IQServer: lambda c: c.promotion("a", "b"),
                ThreadFix: lambda c: c.pending_scan(1, 2),
                AppSecPlus: lambda c: c.scan("s"),
                AppTrust: lambda c: c.promotion("k", "v", "1"),
            }
            for _ in range(4):
                try:
                    await calls[type(client)](client)
                except ScanhubError as e:
                    errors.append(e)
    assert errors
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [caplog.text]
    texts += [e.body_excerpt or "" for e in errors] + [repr(c) for c in clients]
    for text in texts:
        assert SECRET not in text


# --- the seam: every policy over a wire that is not the network -----------------------------


async def test_the_policies_stack_over_any_wire() -> None:
    """`Client(wire=MockTransport(...))` replaces only the wire: retries, the vendor's pause,
    credentials and redaction, and the record of attempts all still apply."""
    from scanhub import AppSecPlus, MockTransport, RetryPolicy
    from scanhub._transport import recording_attempts
    from scanhub.sansio import Request, Response

    token = "s3cret-token-abcdef"
    answers = [
        Response(503, b"busy", {}, "scan", "https://asp.example/scans/s1"),
        Response(
            200,
            f'{{"id": "s1", "applicationId": "a", "status": "running", "echo": "{token}"}}'.encode(),
            {"content-type": "application/json"},
            "scan",
            "https://asp.example/scans/s1",
        ),
        Response(429, b"", {"retry-after": "120"}, "scan", "https://asp.example/scans/s1"),
    ]

    def handler(req: Request) -> Response:
        assert req.headers["Authorization"] == f"Bearer {token}"  # credentials added
        return answers.pop(0)

    wire = MockTransport(handler)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(attempts=3, backoff_initial=0.5, max_retry_after=60)
    async with AppSecPlus(
        "https://asp.example", token, wire=wire, retry=policy, sleep=sleep
    ) as asp:
        with recording_attempts() as attempts:
            scan = await asp.scan("s1")
        assert [a.status for a in attempts] == [503, 200]  # one retry after the 503
        assert len(slept) == 1 and 0 <= slept[0] <= 0.5
        assert token not in repr(scan.raw)  # the echoed secret never reaches the parser
        with pytest.raises(RateLimitedError):
            await asp.scan("s1")  # 429 asking for 120 s: more than a call sleeps
        assert asp.transport.paused_for == pytest.approx(120, abs=1)
        with pytest.raises(RateLimitedError):
            await asp.scan("s1")  # paused: refused locally, nothing sent
    assert len(wire.requests) == 3 and answers == []


async def test_every_answer_url_loses_its_credentials_however_often_it_comes() -> None:
    """The authenticating layer remembers the URLs it cleaned; a URL met again is as clean
    as the first time, and URLs without anything to take out are left as they are."""
    from scanhub import MockTransport
    from scanhub._secrets import Redactor
    from scanhub._transport import Authenticating
    from scanhub.sansio import Request, Response

    secret = "k9-very-secret"
    urls = [
        f"https://u:{secret}@h.example/x?apiKey={secret}&b=1",
        "https://h.example/plain?b=2",
    ]
    layer = Authenticating(
        MockTransport(lambda req: Response(200, b"{}", {}, req.operation, req.url)),
        Redactor([secret]),
    )
    for _ in range(3):
        for url in urls:
            resp = await layer.send(Request("GET", url, "op"))
            assert secret not in resp.url and "u:" not in resp.url
            assert resp.url.startswith("https://h.example/")
            assert ("b=1" in resp.url) == ("b=1" in url) and ("b=2" in resp.url) == ("b=2" in url)


@pytest.mark.parametrize(
    "bad",
    [
        {"connect": 0},
        {"total": -1},
        {"total": float("nan")},
        {"connect": float("inf")},
        {"total": None},  # aiohttp's "no timeout" (a TypeError from isfinite, once)
        {"connect": "10"},
        {"total": True},
    ],
)
def test_timeouts_that_are_not_positive_seconds_are_refused(bad: dict[str, float]) -> None:
    # aiohttp takes a timeout of 0 or less as none at all: Timeouts(total=0) or a negative one
    # silently turned off the timeout README promises on every request.
    (field,) = bad
    with pytest.raises(ValueError, match=f"^Timeouts needs {field} "):
        Timeouts(**bad)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"attempts": 0}, "attempts >= 1"),
        ({"attempts": -2}, "attempts >= 1"),
        ({"backoff_initial": -1}, "backoff_initial"),
        ({"backoff_max": float("nan")}, "backoff_max"),
        ({"max_retry_after": float("inf")}, "max_retry_after"),
        ({"retry_after_cap": -0.5}, "retry_after_cap"),
        ({"default_429_wait": float("nan")}, "default_429_wait"),
        ({"default_429_wait": -1.0}, "default_429_wait"),
    ],
)
def test_a_retry_policy_no_request_could_follow_is_refused(
    bad: dict[str, float], named: str
) -> None:
    # attempts=0 behaved as one attempt; a NaN wait made every retry's sleep NaN.
    with pytest.raises(ValueError, match=f"RetryPolicy needs {named}"):
        RetryPolicy(**bad)  # type: ignore[arg-type]
    assert RetryPolicy(attempts=1, backoff_initial=0, default_429_wait=0).attempts == 1
