"""The transport's policy layers one at a time, over a `MockTransport` wire (`scanhub._transport`):
what `Authenticating` adds to a request and takes out of an answer or an error, and which
failures `Retrying` sends again. Written from mutation testing's survivors: each test pins a
behaviour no test in the selection did (a request's idempotency lost on its way to the wire, an
error's text keeping a secret, a retry after the first one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scanhub import MockTransport, RetryPolicy
from scanhub._errors import RequestTimeout, TransportError
from scanhub._sansio import Request, Response
from scanhub._secrets import Redactor, Secret
from scanhub._transport import Authenticating, Retrying

SECRET = "tok-Zq8-sEcReT"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def answer(status: int = 200, body: bytes = b"{}", **headers: str) -> Response:
    return Response(status, body, headers, "get scan", "https://h/scans/1", received_at=AT)


# --- Authenticating -------------------------------------------------------------------------------


async def test_the_credentials_are_added_and_nothing_else_of_the_request_changes() -> None:
    wire = MockTransport(lambda req: answer())
    auth = Authenticating(
        wire,
        Redactor([Secret(SECRET)]),
        headers={"Authorization": f"Bearer {SECRET}"},
        params=(("apiKey", SECRET),),
    )
    sent = Request(
        "POST",
        "https://h/scans",
        "trigger scan",
        (("type", "sast"),),
        {"Accept": "application/json"},
        {"applicationId": "a"},
        idempotent=False,
    )
    await auth.send(sent)
    (got,) = wire.requests
    assert got == Request(
        "POST",
        "https://h/scans",
        "trigger scan",
        (("type", "sast"), ("apiKey", SECRET)),
        {"Accept": "application/json", "Authorization": f"Bearer {SECRET}"},
        {"applicationId": "a"},
        idempotent=False,
    )
    assert got.idempotent is False  # never re-sent once it may have reached the server
    assert sent.headers == {"Accept": "application/json"}  # the caller's request is its own


async def test_an_answer_that_echoes_a_secret_keeps_all_else_it_said() -> None:
    echoed = Response(
        201,
        f'{{"token":"{SECRET}"}}'.encode(),
        {"x-request-id": "r1"},
        "trigger scan",
        "https://h/scans/1",
        received_at=AT,
    )
    auth = Authenticating(MockTransport(lambda req: echoed), Redactor([Secret(SECRET)]))
    got = await auth.send(Request("GET", "https://h/scans/1", "trigger scan"))
    assert got == Response(
        201,
        b'{"token":"***"}',
        {"x-request-id": "r1"},
        "trigger scan",
        "https://h/scans/1",
        received_at=AT,
    )
    assert got.headers == {"x-request-id": "r1"} and got.received_at == AT


async def test_an_error_from_the_wire_keeps_no_secret_in_its_text_args_or_repr() -> None:
    def refuse(req: Request) -> Response:
        raise TransportError(f"refused: GET https://h/x?apiKey={SECRET}", vendor="threadfix")

    auth = Authenticating(MockTransport(refuse), Redactor([Secret(SECRET)]))
    with pytest.raises(TransportError) as caught:
        await auth.send(Request("GET", "https://h/x", "get scan"))
    error = caught.value
    for shown in (str(error), repr(error), error.message, *map(str, error.args)):
        assert SECRET not in shown, shown
    assert str(error) == "threadfix: refused: GET https://h/x?apiKey=***"


# --- Retrying -------------------------------------------------------------------------------------


class Script:
    """A wire that answers from a list: a Response, or an exception to raise."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.wire = MockTransport(self.next)

    def next(self, req: Request) -> Response:
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, Response)
        return step


def not_sent(text: str) -> TransportError:
    error = TransportError(text)
    error.not_sent = True  # the connection was never made
    return error


@pytest.fixture
def slept() -> list[float]:
    return []


def retrying(script: Script, slept: list[float], **policy: Any) -> Retrying:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return Retrying(script.wire, RetryPolicy(**{"attempts": 4, **policy}), sleep=sleep)


GET = Request("GET", "https://h/scans/1", "get scan")
POST = Request("POST", "https://h/scans", "trigger scan", idempotent=False)


async def test_a_read_is_sent_again_after_each_failure_until_one_answers(
    slept: list[float],
) -> None:
    script = Script(
        TransportError("reset"), RequestTimeout("slow"), TransportError("reset"), answer()
    )
    assert await retrying(script, slept).send(GET) == answer()
    assert len(script.wire.requests) == 4 and len(slept) == 3


async def test_a_read_that_fails_every_attempt_raises_the_last_failure(slept: list[float]) -> None:
    script = Script(*(TransportError(f"reset {n}") for n in range(4)))
    with pytest.raises(TransportError, match="reset 3"):
        await retrying(script, slept).send(GET)
    assert len(script.wire.requests) == 4


async def test_a_write_is_sent_again_only_while_it_cannot_have_reached_the_server(
    slept: list[float],
) -> None:
    # Never connected twice, then answered: sent three times.
    script = Script(not_sent("refused"), not_sent("refused"), answer(201))
    assert (await retrying(script, slept).send(POST)).status == 201
    assert len(script.wire.requests) == 3
    # Never connected, then a timeout after sending: the server may have acted; not re-sent.
    script = Script(not_sent("refused"), RequestTimeout("slow"), answer(201))
    with pytest.raises(RequestTimeout):
        await retrying(script, slept).send(POST)
    assert len(script.wire.requests) == 2


async def test_an_unexpected_exception_after_a_retry_is_not_retried(slept: list[float]) -> None:
    script = Script(TransportError("reset"), ValueError("a bug in the wire"), answer())
    with pytest.raises(ValueError, match="a bug in the wire"):
        await retrying(script, slept).send(GET)
    assert len(script.wire.requests) == 2


@pytest.mark.parametrize(("after", "sent"), [("60", 2), ("61", 1)])
async def test_a_429_is_waited_out_inside_the_call_up_to_max_retry_after(
    slept: list[float], after: str, sent: int
) -> None:
    """A wait of exactly `max_retry_after` is slept inside the call; a longer one is the
    caller's (the answer comes back, the source is paused by the layer above)."""
    script = Script(answer(429, **{"retry-after": after}), answer())
    got = await retrying(script, slept, max_retry_after=60.0).send(GET)
    assert len(script.wire.requests) == sent
    assert got.status == (200 if sent == 2 else 429)
    assert slept == ([60.0] if sent == 2 else [])


async def test_a_429_on_a_later_attempt_is_waited_as_it_says(slept: list[float]) -> None:
    """Each wait follows the last answer: its Retry-After when it has one, else the backoff."""
    script = Script(
        answer(429, **{"retry-after": "3"}), answer(429, **{"retry-after": "7"}), answer()
    )
    assert (await retrying(script, slept).send(GET)).status == 200
    assert slept == [3.0, 7.0]


def test_the_backoff_doubles_from_its_first_ceiling_up_to_its_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Full jitter: a uniform draw from 0 to a ceiling that doubles each attempt."""
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: (low, high))
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=30.0)
    ceilings = [policy.backoff(n) for n in (1, 2, 3, 4, 7, 8)]
    assert ceilings == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0), (0, 30.0), (0, 30.0)]


# --- the body's cap by Content-Length ---------------------------------------------------------


def test_content_length_is_refused_past_the_cap_and_taken_up_to_it() -> None:
    from scanhub._transport import body_limit_problem

    assert body_limit_problem({}, 100) is None
    assert body_limit_problem({"content-length": "100"}, 100) is None
    assert body_limit_problem({"content-length": " 100 "}, 100) is None
    assert body_limit_problem({"content-length": "101"}, 100) == (
        "the answer is 101 bytes, over the 100-byte cap"
    )
    huge = "9" * 30  # read as its first 20 digits
    assert body_limit_problem({"content-length": huge}, 100) == (
        f"the answer is {'9' * 20} bytes, over the 100-byte cap"
    )
    for bad in ("12a", "-1", "١٢", "1e3"):
        assert body_limit_problem({"content-length": bad}, 100) == (
            f"Content-Length {bad!r} is not a number of bytes"
        )
    long_bad = "x" * 50
    assert body_limit_problem({"content-length": long_bad}, 100) == (
        f"Content-Length {'x' * 40!r} is not a number of bytes"
    )


# --- Recording ------------------------------------------------------------------------------------


class Clock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


async def test_every_attempt_is_timed_and_told_to_the_poll_and_the_observers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from scanhub._transport import Attempt, Recording, recording_attempts

    class Untrusted(TransportError):
        retryable = False  # a refused certificate: not a sign of a struggling source

    steps: list[Any] = [answer(503), TransportError("reset"), Untrusted("bad certificate")]
    script = Script(*steps)
    rec = Recording(
        script.wire, "asp", Redactor([Secret(SECRET)]), clock=Clock(10, 10.25, 20, 21.5, 30, 31)
    )
    told: list[tuple[int | None, float]] = []
    rec.observers.append(lambda status, elapsed: told.append((status, elapsed)))
    caplog.set_level(logging.DEBUG, logger="scanhub")
    with recording_attempts() as attempts:
        assert (await rec.send(Request("GET", f"https://h/x?apiKey={SECRET}", "op"))).status == 503
        with pytest.raises(TransportError):
            await rec.send(GET)
        with pytest.raises(Untrusted):
            await rec.send(GET)
    assert attempts == [Attempt(503, 0.25), Attempt(None, 1.5)]
    assert told == [(503, 0.25), (None, 1.5)]
    assert rec.sent == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "scanhub"]
    assert lines == ["asp GET https://h/x?apiKey=*** -> 503 in 0.250s"]


# --- Pausing --------------------------------------------------------------------------------------


def pausing(script: Script, slept: list[float], now: list[float], **policy: Any) -> Any:
    from scanhub._transport import Pausing

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    chosen = RetryPolicy(**policy)
    return Pausing(
        script.wire, lambda: chosen, vendor="appsecplus", source="asp",
        clock=lambda: now[0], sleep=sleep,
    )  # fmt: skip


async def test_a_short_pause_is_waited_out_a_long_one_refused_with_when_to_come_back(
    slept: list[float],
) -> None:
    from scanhub._errors import RateLimitedError

    now = [0.5]  # a clock that starts past zero: nothing is paused before a pause
    script = Script(answer(), answer(), answer())
    layer = pausing(script, slept, now, max_retry_after=60.0, retry_after_cap=900.0)
    await layer.send(GET)
    assert slept == [] and layer.paused_for == 0.0
    layer.pause(0.5)  # under a second is still a pause
    await layer.send(GET)
    assert slept == [0.5]
    layer.pause(-5)  # a negative pause is none
    assert layer.paused_for == 0.0
    layer.pause(60)  # exactly max_retry_after: waited out
    await layer.send(GET)
    assert slept == [0.5, 60.0]
    layer.pause(5000)  # capped at retry_after_cap, past max_retry_after: refused locally
    assert layer.paused_for == 900.0
    with pytest.raises(RateLimitedError) as refused:
        await layer.send(GET)
    error = refused.value
    assert (error.retry_after, error.vendor, error.source, error.operation) == (
        900.0, "appsecplus", "asp", "get scan",
    )  # fmt: skip
    assert len(script.wire.requests) == 3  # the refused request never reached the wire


async def test_a_429_pauses_the_source_by_its_advice_or_the_first_backoff(
    slept: list[float], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    caplog.set_level(logging.WARNING, logger="scanhub")
    now = [100.0]
    script = Script(answer(429, **{"retry-after": "12"}), answer(429))
    layer = pausing(script, slept, now, backoff_initial=0.5, default_429_wait=None)
    await layer.send(GET)
    assert layer.paused_for == 12.0
    now[0] += 12.0
    await layer.send(GET)  # no advice: the first attempt's backoff ceiling
    assert layer.paused_for == 0.5
    lines = [r.getMessage() for r in caplog.records if r.name == "scanhub"]
    assert lines == [
        "asp: rate limited by appsecplus, pausing 12.0s",
        "asp: rate limited by appsecplus, pausing 0.5s",
    ]


async def test_the_first_backoffs_follow_the_attempts_and_attempts_bounds_the_sends(
    slept: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    failures = [TransportError(f"reset {n}") for n in range(3)]
    script = Script(*failures, answer())
    got = await retrying(script, slept, backoff_initial=1.0, backoff_max=100.0).send(GET)
    assert got.status == 200 and slept == [1.0, 2.0, 4.0]
    for attempts, sends in ((1, 1), (2, 2)):
        script = Script(TransportError("a"), TransportError("b"), answer())
        with pytest.raises(TransportError):
            await retrying(script, [], attempts=attempts).send(GET)
        assert len(script.wire.requests) == sends


# --- the wire: AiohttpTransport over a real socket ------------------------------------------------


@pytest.fixture
async def server() -> Any:
    import asyncio

    from aiohttp import web

    async def exact(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 64)

    async def chunked(request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"a" * (size // 3), b"b" * (size // 3), b"c" * (size - 2 * (size // 3))):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "query": list(request.query.items()),
                "auth": request.headers.get("Authorization"),
                "json": await request.json() if request.can_read_body else None,
            }
        )

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        part = form["file"]
        assert isinstance(part, web.FileField)
        return web.json_response(
            {
                "filename": part.filename,
                "type": part.content_type,
                "body": part.file.read().decode(),
            }
        )

    async def limited(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b"partial")
        assert request.transport is not None
        request.transport.close()  # the connection goes before the body is whole
        return resp

    app = web.Application()
    app.router.add_post("/upload", upload)
    app.router.add_get("/limited", limited)
    app.router.add_get("/cut", cut)
    app.router.add_get("/exact", exact)
    app.router.add_get("/chunked", chunked)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/moved", moved)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_wire_reads_an_answer_up_to_its_cap_and_refuses_one_past_it(server: str) -> None:
    import aiohttp

    from scanhub._errors import PayloadError
    from scanhub._transport import AiohttpTransport

    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(lambda: session, vendor="asp", source="mine", max_body=64)
        assert (await wire.send(Request("GET", f"{server}/exact", "get scan"))).body == b"x" * 64
        streamed = await wire.send(Request("GET", f"{server}/chunked?size=64", "get scan"))
        assert streamed.body == b"a" * 21 + b"b" * 21 + b"c" * 22  # every chunk, in order
        large = AiohttpTransport(lambda: session, vendor="asp", source="mine")
        body = (await large.send(Request("GET", f"{server}/chunked?size=600000", "g"))).body
        assert body == b"a" * 200_000 + b"b" * 200_000 + b"c" * 200_000  # read in many reads
        with pytest.raises(PayloadError) as over:
            await wire.send(Request("GET", f"{server}/chunked?size=65", "list scans"))
    error = over.value
    assert error.message == "the answer passed the 64-byte cap while streaming (max_body)"
    assert (error.vendor, error.source, error.operation, error.status) == (
        "asp", "mine", "list scans", 200,
    )  # fmt: skip


async def test_the_wire_sends_the_request_as_described_and_follows_no_redirect(
    server: str,
) -> None:
    import aiohttp

    from scanhub._transport import AiohttpTransport

    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(lambda: session, vendor="asp", source="mine")
        req = Request(
            "POST", f"{server}/echo", "trigger", (("a", "1"), ("a", "2")),
            {"Authorization": "Bearer t"}, {"scan": "sast"}, idempotent=False,
        )  # fmt: skip
        got = await wire.send(req)
        moved = await wire.send(Request("GET", f"{server}/moved", "get scan"))
    import json

    assert json.loads(got.body) == {
        "method": "POST",
        "query": [["a", "1"], ["a", "2"]],
        "auth": "Bearer t",
        "json": {"scan": "sast"},
    }
    assert (got.status, got.operation, got.received_at) == (200, "trigger", None)
    assert moved.status == 302 and moved.url == f"{server}/moved"


async def test_a_header_http_forbids_is_a_typed_error_that_never_holds_its_value(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret set with a newline made aiohttp raise a bare ValueError (a traceback through
    `status` and `serve`): the wire refuses such a header itself, naming it, and turns any
    ValueError aiohttp raises for what it cannot send into the same BadRequestError; neither
    holds the value, and nothing is sent."""
    import aiohttp

    from scanhub._errors import BadRequestError
    from scanhub._transport import AiohttpTransport

    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(lambda: session, vendor="asp", source="mine")
        for value in ("Bearer tok-S3cret\n", "Bearer tok-S3cret\r\nX-Evil: 1", "tok\x00S3cret"):
            req = Request("GET", f"{server}/echo", "get scan", (), {"Authorization": value})
            with pytest.raises(BadRequestError) as refused:
                await wire.send(req)
            error = refused.value
            assert "S3cret" not in str(error) and error.__cause__ is None
            assert "the 'Authorization' header holds a line break" in error.message
            assert (error.vendor, error.source, error.operation, error.retryable) == (
                "asp", "mine", "get scan", False,
            )  # fmt: skip

        def malformed(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("Forbidden control character in 'tok-S3cret\n'")

        monkeypatch.setattr(session, "request", malformed)
        with pytest.raises(BadRequestError) as refused:
            await wire.send(Request("GET", f"{server}/echo", "get scan"))
    assert "S3cret" not in str(refused.value) and refused.value.__cause__ is None
    assert "aiohttp refused to send the request as malformed" in refused.value.message


async def test_the_wire_names_what_failed_and_whether_it_was_ever_sent(server: str) -> None:
    import socket

    import aiohttp

    from scanhub._transport import AiohttpTransport, Timeouts

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(
            lambda: session, vendor="asp", source="mine", timeouts=Timeouts(connect=1, total=0.3)
        )
        with pytest.raises(TransportError) as refused:
            await wire.send(Request("GET", f"http://127.0.0.1:{closed}/x", "get scan"))
        with pytest.raises(RequestTimeout) as late:
            await wire.send(Request("GET", f"{server}/slow", "get scan"))
    error = refused.value
    assert error.message.startswith("could not connect (ClientConnectorError: Cannot connect")
    assert (error.vendor, error.source, error.operation, error.not_sent) == (
        "asp", "mine", "get scan", True,
    )  # fmt: skip
    assert late.value.message == "timed out (TimeoutError)" and late.value.not_sent is False
    assert (late.value.vendor, late.value.source, late.value.operation) == (
        "asp", "mine", "get scan",
    )  # fmt: skip


# --- the stack a client holds: Transport ----------------------------------------------------------


def test_a_transport_verifies_tls_by_default_and_gives_the_wire_its_settings() -> None:
    import aiohttp

    from scanhub._transport import AiohttpTransport, Timeouts, Transport

    chosen = Timeouts(connect=2.0, total=9.0)
    made = Transport(
        vendor="asp", source="mine", session_factory=aiohttp.ClientSession,
        timeouts=chosen, max_body=5,
    )  # fmt: skip
    wire = made.wire
    assert isinstance(wire, AiohttpTransport)
    assert (wire.vendor, wire.source, wire.timeouts, wire.max_body) == ("asp", "mine", chosen, 5)
    assert wire.verify_tls is True and made.timeouts is chosen
    assert AiohttpTransport(aiohttp.ClientSession, vendor="v", source="s").verify_tls is True
    off = Transport(vendor="v", source="s", session_factory=aiohttp.ClientSession, verify_tls=False)
    assert isinstance(off.wire, AiohttpTransport) and off.wire.verify_tls is False
    for build in (
        lambda n: Transport(
            vendor="v", source="s", session_factory=aiohttp.ClientSession, max_body=n
        ),
        lambda n: AiohttpTransport(aiohttp.ClientSession, vendor="v", source="s", max_body=n),
    ):
        assert build(1) is not None  # one byte is a cap
        with pytest.raises(ValueError, match=r"^max_body must be at least 1 byte$"):
            build(0)
    with pytest.raises(ValueError, match=r"^a transport needs a session factory or a wire$"):
        Transport(vendor="v", source="s")


async def test_a_transport_with_a_rate_limit_waits_for_its_window() -> None:
    from scanhub import RateLimit
    from scanhub._transport import Transport

    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    wire = MockTransport(lambda req: answer())
    made = Transport(
        vendor="asp", source="mine", wire=wire, rate_limit=RateLimit(2, 10.0, guard=0.0),
        clock=lambda: now[0], sleep=sleep,
    )  # fmt: skip
    for _ in range(3):
        await made.send(GET)
    assert wire.requests == [GET, GET, GET] and made.sent == 3
    assert slept == [10.0]  # the third waits for the first to leave the window
    assert made.limiter is not None


async def test_tls_is_verified_unless_the_source_turns_it_off(tmp_path: Any) -> None:
    """A server whose certificate nobody vouches for: refused, once (a certificate does not
    get better: no retry), unless verification is turned off."""
    import ssl
    import subprocess

    import aiohttp
    from aiohttp import web

    from scanhub._transport import Transport

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(  # noqa: ASYNC221 - once, before anything listens
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert), "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/x", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}/x"
    try:
        async with aiohttp.ClientSession() as session:
            checked = Transport(vendor="asp", source="mine", session_factory=lambda: session)
            with pytest.raises(TransportError) as refused:
                await checked.send(Request("GET", url, "get scan"))
            trusting = Transport(
                vendor="asp", source="mine", session_factory=lambda: session, verify_tls=False
            )
            assert (await trusting.send(Request("GET", url, "get scan"))).body == b"ok"
    finally:
        await runner.cleanup()
    assert refused.value.message.startswith(
        "TLS verification failed (ClientConnectorCertificateError: "
    )
    assert refused.value.retryable is False and refused.value.not_sent is False
    assert checked.sent == 1


async def test_the_wire_uploads_a_file_as_described_and_times_a_429(server: str) -> None:
    import json

    import aiohttp

    from scanhub._sansio import FilePart
    from scanhub._transport import AiohttpTransport

    part = FilePart("file", "report.sarif", b"{}", "application/sarif+json")
    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(lambda: session, vendor="asp", source="mine")
        sent = await wire.send(Request("POST", f"{server}/upload", "upload", file=part))
        before = datetime.now(UTC)
        limited = await wire.send(Request("GET", f"{server}/limited", "get scan"))
        after = datetime.now(UTC)
        ok = await wire.send(Request("GET", f"{server}/exact", "get scan"))
    assert json.loads(sent.body) == {
        "filename": "report.sarif", "type": "application/sarif+json", "body": "{}",
    }  # fmt: skip
    # Only a 429 carries when it came: its Retry-After date, if any, is read against it.
    assert limited.received_at is not None and before <= limited.received_at <= after
    assert ok.received_at is None


async def test_a_connection_lost_mid_answer_is_a_failure_that_may_have_acted(server: str) -> None:
    import aiohttp

    from scanhub._transport import AiohttpTransport

    async with aiohttp.ClientSession() as session:
        wire = AiohttpTransport(lambda: session, vendor="asp", source="mine")
        with pytest.raises(TransportError) as lost:
            await wire.send(Request("GET", f"{server}/cut", "get scan"))
    error = lost.value
    assert error.message.startswith("connection failed (ClientPayloadError: ")
    assert error.not_sent is False and error.retryable is True
    assert (error.vendor, error.source, error.operation) == ("asp", "mine", "get scan")


async def test_a_transport_pauses_its_source_and_scrubs_what_it_raises() -> None:
    """The stack a client holds: a long pause a 429 asked for refuses the next request with
    the source named; `scrub` takes secrets out of any error's text and caps its wait."""
    from scanhub._errors import RateLimitedError
    from scanhub._transport import Transport

    wire = MockTransport(lambda req: answer(429, **{"retry-after": "5000"}))
    made = Transport(
        vendor="asp", source="mine", wire=wire, redactor=Redactor([Secret(SECRET)]),
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip
    assert (await made.send(GET)).status == 429
    with pytest.raises(RateLimitedError) as paused:
        await made.send(GET)
    assert (paused.value.vendor, paused.value.source) == ("asp", "mine")
    assert len(wire.requests) == 1
    error = RateLimitedError(f"slow down {SECRET}", retry_after=99999.0, body=f"echo {SECRET}")
    assert made.scrub(error) is error
    assert SECRET not in str(error) and SECRET not in repr(error)
    assert error.args == ("slow down *** body: 'echo ***'",)
    assert error.retry_after == 900.0  # retry_after_cap


async def test_a_transport_times_and_waits_with_the_clock_and_sleep_it_is_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from scanhub._transport import Attempt, Transport, recording_attempts

    now = [50.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def handler(req: Request) -> Response:
        now[0] += 0.5  # each answer takes half a second of the given clock
        return answer(429, **{"retry-after": "5"}) if len(wire.requests) == 1 else answer()

    wire = MockTransport(handler)
    made = Transport(
        vendor="asp", source="mine", wire=wire, retry=RetryPolicy(attempts=1),
        clock=lambda: now[0], sleep=sleep,
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="scanhub")
    with recording_attempts() as attempts:
        assert (await made.send(GET)).status == 429
        assert (await made.send(GET)).status == 200  # waits out the pause with `sleep`
    assert slept == [5.0]
    assert attempts == [Attempt(429, 0.5), Attempt(200, 0.5)]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == [
        "mine GET https://h/scans/1 -> 429 in 0.500s",
        "mine GET https://h/scans/1 -> 200 in 0.500s",
    ]


def test_a_rate_limit_that_names_no_wait_gets_the_sources_pause_and_only_that(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`Transport.scrub`: a RateLimitedError naming no wait takes the source's pause (IQ's
    429 names none), however short; with no pause it stays without one; one naming a longer
    wait pauses the source (GitHub's 403)."""
    import logging

    from scanhub._errors import RateLimitedError
    from scanhub._transport import Transport

    caplog.set_level(logging.WARNING, logger="scanhub")
    now = [100.0]
    transport = Transport(
        vendor="appsecplus",
        source="asp",
        wire=MockTransport(lambda r: answer()),
        clock=lambda: now[0],
    )

    def limited(wait: float | None) -> float | None:
        error = RateLimitedError("slow down", retry_after=wait, vendor="appsecplus")
        result = transport.scrub(error).retry_after
        assert isinstance(result, float | None)
        return result

    assert limited(None) is None and transport.paused_for == 0.0
    transport.pause(0.5)
    assert limited(None) == pytest.approx(0.5)
    now[0] += 1.0  # the pause is over
    assert limited(30.0) == 30.0 and transport.paused_for == pytest.approx(30.0)
    assert limited(30.5) == 30.5 and transport.paused_for == pytest.approx(30.0)  # within 1 s
    assert limited(31.5) == 31.5 and transport.paused_for == 31.5  # 1.5 s longer: paused
    assert limited(32.5) == 32.5 and transport.paused_for == 31.5  # exactly 1 s: not
    assert [r.getMessage() for r in caplog.records] == [
        "asp: rate limited by appsecplus, pausing 30.0s",
        "asp: rate limited by appsecplus, pausing 31.5s",
    ]
