"""Any JSON (or any bytes) into any parser gives a model or a ScanhubError, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import Promotion, Scan, ScanhubError
from scanhub.sansio import Response, appsecplus, apptrust, iq, threadfix, where

from .payloads import (
    ASP_SCAN_COMPLETED,
    AT_PROMOTIONS_SAMPLE,
    IQ_APPLICATION_LOOKUP,
    IQ_PROMOTE_RESPONSE,
    IQ_STATUS_COMPLETED,
    IQ_WEBHOOK_EVALUATION,
    TF_PENDING_SCAN_DONE,
    TF_UPLOAD_QUEUED,
)

B = "http://h"

PARSERS: dict[str, Callable[[Response], Any]] = {
    "iq.lookup": lambda r: iq.parse_application_lookup(
        r, source="s", public_id="MyApplicationPublicID"
    ),
    "iq.promote": lambda r: iq.parse_promote(
        r, source="s", base_url=B, application_id="a", target_stage="t", scan_id="x"
    ),
    "iq.status": lambda r: iq.parse_status(
        r, source="s", base_url=B, application_id="a", status_id="b"
    ),
    "iq.webhook": lambda r: iq.parse_evaluation_webhook(dict(r.headers), r.body, source="s"),
    "tf.pending": lambda r: threadfix.parse_pending_scan(r, source="s"),
    "tf.upload": lambda r: threadfix.parse_upload(r, source="s", base_url=B, application_id="1"),
    "asp.list": lambda r: appsecplus.parse_list(r, source="s"),
    "asp.scan": lambda r: appsecplus.parse_scan(r, source="s"),
    "at.list": lambda r: apptrust.parse_promotions(
        r, source="s", application_key="k", version="v", offset=0
    ),
    "at.one": lambda r: apptrust.parse_promotion(r, source="s", application_key="k", version="v"),
}
SEEDS = {
    "iq.lookup": IQ_APPLICATION_LOOKUP,
    "iq.promote": IQ_PROMOTE_RESPONSE,
    "iq.status": IQ_STATUS_COMPLETED,
    "iq.webhook": IQ_WEBHOOK_EVALUATION,
    "tf.pending": TF_PENDING_SCAN_DONE,
    "tf.upload": TF_UPLOAD_QUEUED,
    "asp.list": [ASP_SCAN_COMPLETED],
    "asp.scan": ASP_SCAN_COMPLETED,
    "at.list": AT_PROMOTIONS_SAMPLE,
    "at.one": AT_PROMOTIONS_SAMPLE["promotions"][0],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _mutations(seed: Any) -> st.SearchStrategy[Any]:
    """The documented payload with one field replaced by any JSON value (or removed)."""
    if isinstance(seed, list):
        return st.lists(_mutations(seed[0]), max_size=2) if seed else st.just([])
    if not isinstance(seed, dict) or not seed:
        return json_values
    keys = sorted(seed)

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        out = dict(seed)
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            out.pop(key)
        else:
            out[key] = draw(json_values | _mutations(seed[key]))
        return out

    return mutate()


def _check(name: str, status: int, body: bytes) -> None:
    try:
        out = PARSERS[name](Response(status, body, {}, "op", ""))
    except ScanhubError:
        return
    items = (
        out.promotions
        if isinstance(out, apptrust.Page)
        else out
        if isinstance(out, list)
        else [out]
    )
    assert all(isinstance(i, Scan | Promotion | str) for i in items)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values, status=st.sampled_from([200, 200, 201, 400, 401, 404, 409, 429, 500]))
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
@given(raw=st.binary(max_size=64))
def test_any_bytes(name: str, raw: bytes) -> None:
    _check(name, 200, raw)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_truncated_documented_payload(name: str) -> None:
    body = json.dumps(SEEDS[name]).encode()
    for cut in range(0, len(body), max(1, len(body) // 25)):
        with pytest.raises(ScanhubError):
            PARSERS[name](Response(200, body[:cut], {}, "op", ""))


@pytest.mark.parametrize(
    "text",
    [
        b'{"status": NaN}',
        b'{"status": "PENDING", "n": 123456789012345678901234567890}',
        b'{"n": -9223372036854775809}',  # one below -2^63: orjson would read a float
        b'{"n": 18446744073709551616}',  # one above 2^64 - 1
        b"[-9223372036854775808, 18446744073709551615]",  # the ends orjson keeps exact
    ],
)
def test_what_orjson_refuses_the_stdlib_still_reads(text: bytes) -> None:
    from scanhub.sansio import Response, where
    from scanhub.sansio._common import decode_json, loads

    assert json.dumps(loads(text)) == json.dumps(json.loads(text))
    # Every parser reads bodies through decode_json: the same answer.
    resp = Response(200, text, {}, "status")
    assert json.dumps(decode_json(resp, where("iq", "s", resp))) == json.dumps(json.loads(text))


def test_a_lone_surrogate_is_read_as_the_replacement_character() -> None:
    """`"\\ud800"` is valid JSON and no character: no UTF-8 encoder (a database, a terminal,
    the service's answers) takes it, so one vendor string would stop the store. Read, it is
    U+FFFD, in strings and keys; a pair is its character; an escaped backslash stays."""
    from scanhub.sansio._common import decode_json, loads

    text = rb'{"a": "x\ud800y", "\udfff": ["\uDC00z"], "b": "\ud83d\ude00", "c": "\\ud800"}'
    want = {"a": "x\ufffdy", "\ufffd": ["\ufffdz"], "b": "\U0001f600", "c": "\\ud800"}
    assert loads(text) == want
    resp = Response(200, text, {}, "status")
    assert decode_json(resp, where("iq", "s", resp)) == want
    json.dumps(loads(text), ensure_ascii=False).encode()  # UTF-8 takes it
    # Written as if it were a character (CESU-8, Java's "modified UTF-8"), and in UTF-16 (the
    # stdlib reads both): mended too.
    assert loads(b'{"m": "x\xed\xa0\x80y"}') == {"m": "x\ufffdy"}
    assert loads('{"m": "\\ud800", "\\udfff": 1}'.encode("utf-16")) == {"m": "\ufffd", "\ufffd": 1}


@settings(max_examples=200, deadline=None)
@given(value=json_values | st.integers(min_value=-(10**40), max_value=10**40))
def test_loads_agrees_with_the_stdlib(value: Any) -> None:
    from scanhub.sansio._common import loads

    text = json.dumps(value).encode()
    assert json.dumps(loads(text)) == json.dumps(json.loads(text))


# --- At the edges: status codes, headers and bytes, into every parser and the transport -------

header_text = st.text(max_size=40) | st.sampled_from(
    [
        "1e308",
        "1_0",
        "\u0661\u0660",
        "-1",
        "nan",
        "99999999999999999999",
        "0",
        "120",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "https://x/login?token=t",
        " 5 ",
        "\x00",
        "1.5",
    ]
)
headers_st = st.dictionaries(
    st.sampled_from(["retry-after", "content-length", "location", "content-type", "date"]),
    header_text,
    max_size=5,
)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    status=st.integers(min_value=100, max_value=599),
    headers=headers_st,
    body=st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_any_status_headers_and_body(
    name: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    try:
        out = PARSERS[name](Response(status, body, headers, "op", ""))
    except ScanhubError:
        return
    items = (
        out.promotions
        if isinstance(out, apptrust.Page)
        else out
        if isinstance(out, list)
        else [out]
    )
    assert all(isinstance(i, Scan | Promotion | str) for i in items)


@settings(max_examples=300, deadline=None)
@given(value=header_text, date=st.none() | st.just("Wed, 21 Oct 2015 07:28:00 GMT"))
def test_retry_after_is_none_or_a_finite_wait(value: str, date: str | None) -> None:
    from datetime import UTC, datetime

    from scanhub.sansio._common import parse_retry_after, retry_after_of

    wait = parse_retry_after(value, datetime(2015, 10, 21, tzinfo=UTC))
    assert wait is None or (wait >= 0 and wait < float("inf"))
    headers = {"retry-after": value} | ({"date": date} if date else {})
    wait = retry_after_of(Response(429, b"", headers, "op", ""))
    assert wait is None or wait >= 0


@settings(max_examples=300, deadline=None)
@given(headers=headers_st, cap=st.integers(min_value=1, max_value=10**9))
def test_body_limit_judges_any_content_length(headers: dict[str, str], cap: int) -> None:
    from scanhub._transport import body_limit_problem

    problem = body_limit_problem(headers, cap)
    declared = headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) <= cap:
        assert problem is None
    elif "content-length" in headers:
        assert isinstance(problem, str)


@settings(max_examples=200, deadline=None)
@given(headers=headers_st)
def test_the_transport_never_waits_past_its_cap(headers: dict[str, str]) -> None:
    from scanhub import RetryPolicy
    from scanhub._transport import advised_wait

    policy = RetryPolicy(retry_after_cap=300.0, default_429_wait=None)
    wait = advised_wait(policy, Response(429, b"", headers, "op", ""))
    assert wait is None or 0 <= wait <= 300.0


class _Script:
    status: ClassVar[int] = 200
    headers: ClassVar[dict[str, str]] = {}
    body: ClassVar[bytes] = b""


@pytest.fixture(scope="module")
def scripted_server() -> Any:
    """One loopback server answering whatever `_Script` says (a module-wide fixture, so the
    property test below costs a request per example, not a server)."""
    import asyncio
    import threading

    from aiohttp import web

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in _Script.headers.items() if k != "content-length"}
        try:
            return web.Response(status=_Script.status, body=_Script.body, headers=headers)
        except ValueError:  # a header value aiohttp itself refuses to send
            return web.Response(status=_Script.status, body=_Script.body)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["base"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.start()
    ready.wait(10)
    yield holder["base"]
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    status=st.sampled_from([200, 201, 204, 301, 302, 400, 401, 404, 409, 418, 429, 500, 503]),
    headers=headers_st,
    body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_any_answer_over_a_real_socket_is_a_model_or_a_typed_error(
    scripted_server: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    import asyncio

    from scanhub import AppSecPlus, RetryPolicy

    _Script.status, _Script.headers, _Script.body = status, headers, body

    async def call() -> Any:
        retry = RetryPolicy(attempts=1, retry_after_cap=1.0)
        async with AppSecPlus(scripted_server, "t0ken-value", retry=retry) as asp:
            return await asyncio.wait_for(asp.scan("s1"), 10)

    try:
        out = asyncio.run(call())
    except ScanhubError:
        return
    assert isinstance(out, Scan)
