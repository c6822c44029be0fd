"""`scanhub serve` against hostile clients, over real sockets: every hostile request ends as a
4xx problem+json (or a clean close), never a 500, never a traceback in the logs, and no client
can hold the server's connections or fill its logs.

The requests are written byte by byte on a socket (no HTTP client would send most of them), and
the logs are read with caplog; the last test does the same to `scanhub serve --demo` and reads
its stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest

from scanhub.engine.broadcast import Subscription
from scanhub.serve import Service
from scanhub.serve._http import encode_cursor, page_cursor
from scanhub.vendors.iq import sansio as iq
from scanhub.vendors.sonarqube import sansio as sonarqube

from .test_serve import TOKEN, service


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        """The problem+json document, checked for its shape."""
        assert self.headers["content-type"].startswith("application/problem+json"), self
        assert self.headers["x-content-type-options"] == "nosniff", self
        assert "frame-ancestors 'none'" in self.headers["content-security-policy"], self
        doc: dict[str, Any] = json.loads(self.body)
        assert doc["status"] == self.status and doc["title"] and doc["detail"], doc
        return doc


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Answer(int(status_line.split()[1]), headers, body)


async def exchange(where: Any, data: bytes, *, limit: float = 10.0) -> Answer:
    """Send `data` on a new connection to `where` (a host and a port); read until the server
    closes it."""
    reader, writer = await asyncio.open_connection(where.host, where.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(limit):
            raw = await reader.read()
    finally:
        writer.close()
    return parse(raw)


def request(
    method: str, target: str, *headers: str, body: bytes = b"", close: bool = True
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


#: The loggers of the server side (others, such as asyncio collecting an earlier test's
#: leftovers, are not these tests' business).
SERVER = ("scanhub", "aiohttp")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scanhub")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    return caplog


def no_traceback(logs: pytest.LogCaptureFixture) -> None:
    """Nothing the server side (scanhub, aiohttp) logged at ERROR or with a traceback."""
    bad = [
        f"{r.name}: {r.getMessage()}"
        for r in logs.records
        if r.name.startswith(SERVER) and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert not bad, bad


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async with service(tmp_path) as (running, sims, http):
        yield running


# --- what reaches a handler -------------------------------------------------------------------


async def _post_track(svc: Service, body: bytes) -> Any:
    """POST /api/v1/track with the token and `body`, over a real socket."""
    return await exchange(
        svc,
        request(
            "POST",
            "/api/v1/track",
            f"Authorization: Bearer {TOKEN}",
            "Content-Type: application/json",
            body=body,
        ),
    )


# 100,000 levels: past what the stdlib's JSON reads. 600: JSON the stdlib reads, as deep as the
# recursive walks after it had room for or not, by the stack then (it failed in one full run and
# passed alone). 65: one past the deepest body a write takes.
@pytest.mark.parametrize("depth", [100_000, 600, 65])
async def test_a_deeply_nested_json_body_is_a_400(svc: Service, logs: Any, depth: int) -> None:
    answer = await _post_track(svc, b"[" * depth + b"]" * depth)
    assert answer.status == 400 and "nested too deeply" in answer.problem()["detail"]
    no_traceback(logs)


async def test_a_body_as_deep_as_a_write_takes_is_read(svc: Service, logs: Any) -> None:
    """64 levels are read (and refused for what they are: no [[track]] table)."""
    answer = await _post_track(svc, b"[" * 64 + b"]" * 64)
    assert answer.status == 400, answer
    assert answer.problem()["detail"] == "expected a JSON object (a [[track]] table)"
    no_traceback(logs)


async def test_a_track_holding_a_lone_surrogate_is_a_400(svc: Service, logs: Any) -> None:
    """`"\\ud800"` is JSON and no text: tracked, it would be an item no store can write."""
    body = b'{"source": "asp", "scan_id": "scan-\\ud800", "application_id": "app-1"}'
    answer = await _post_track(svc, body)
    assert answer.status == 400, answer
    assert answer.problem()["detail"] == "the body holds a lone surrogate (\\ud800-\\udfff)"
    assert svc.hub.recorder.health().ok
    no_traceback(logs)


@pytest.mark.parametrize("token", [b"\xff\xfe", b"\xc3\xa9t\xc3\xa9", b"\x80" * 40])
async def test_a_bearer_token_of_any_bytes_is_a_401(svc: Service, logs: Any, token: bytes) -> None:
    data = request("POST", "/api/v1/track", body=b"{}").replace(
        b"Connection: close", b"Authorization: Bearer " + token + b"\r\nConnection: close"
    )
    answer = await exchange(svc, data)
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
    answer.problem()
    no_traceback(logs)


#: Each vendor's webhook signature header, and the vendor's own check (sans-I/O).
SIGNED = {
    "iq": ("X-Nexus-Webhook-Signature", iq.verify_webhook),
    "sonarqube": ("X-Sonar-Webhook-HMAC-SHA256", sonarqube.verify_webhook),
}


@pytest.mark.parametrize("signature", [b"\xc3\xa9", b"\xff\xfe", "é".encode("latin-1")])
@pytest.mark.parametrize("vendor", sorted(SIGNED))
async def test_a_non_ascii_webhook_signature_is_a_401(
    svc: Service, logs: Any, signature: bytes, vendor: str
) -> None:
    header = SIGNED[vendor][0].encode()
    data = request(
        "POST",
        f"/webhooks/{vendor}/{vendor}",
        "X-Nexus-Webhook-Id: iq:applicationEvaluation",
        body=b"{}",
    )
    data = data.replace(b"Connection: close", header + b": " + signature + b"\r\nConnection: close")
    answer = await exchange(svc, data)
    assert answer.status == 401 and "missing or wrong" in answer.problem()["detail"], answer
    no_traceback(logs)


@pytest.mark.parametrize("vendor", sorted(SIGNED))
def test_verify_webhook_refuses_a_non_ascii_signature(vendor: str) -> None:
    """The vendor's check itself (sans-I/O): False, not a TypeError from
    `hmac.compare_digest` or a UnicodeEncodeError (aiohttp keeps bytes that are not UTF-8 as
    surrogates)."""
    verify = SIGNED[vendor][1]
    for signature in ("é", "\udcff\udcfe", "0" * 39 + "é"):
        assert verify(b"{}", signature, "s3cret") is False


@pytest.mark.parametrize("value", [str(2**63), str(10**23), "9" * 5000, "-1", "1e3", "٣"])
@pytest.mark.parametrize("where", ["header", "query"])
async def test_a_last_event_id_no_store_holds_is_a_400_before_the_stream_begins(
    svc: Service, logs: Any, value: str, where: str
) -> None:
    if where == "header":
        data = request("GET", "/api/v1/events/stream", f"Last-Event-ID: {value}")
    else:
        data = request("GET", f"/api/v1/events/stream?last_event_id={quote(value)}")
    answer = await exchange(svc, data)
    assert answer.status == 400, answer  # not a 200 whose stream then breaks off
    assert "transition id" in answer.problem()["detail"]
    assert not svc.streams
    no_traceback(logs)


async def test_the_header_and_the_query_are_both_checked_and_the_header_wins(
    svc: Service, logs: Any
) -> None:
    """EventSource resends the header on a reconnect while the URL keeps its query: a wrong
    one is a 400 whichever it is, and of two right ones the header says where to resume."""
    for header, query in (("1", "-1"), ("-1", "1"), (str(2**63), "1"), ("1", str(2**63))):
        data = request(
            "GET", f"/api/v1/events/stream?last_event_id={query}", f"Last-Event-ID: {header}"
        )
        answer = await exchange(svc, data)
        assert answer.status == 400 and "transition id" in answer.problem()["detail"], answer
    async with asyncio.timeout(10):
        while len(first := await svc.store.transitions(limit=3)) < 3:
            await asyncio.sleep(0.05)  # the engine records the first polls' transitions
    reader, writer = await asyncio.open_connection(svc.host, svc.port)
    received = b""
    try:
        writer.write(
            request(
                "GET",
                f"/api/v1/events/stream?last_event_id={first[0].id}",
                f"Last-Event-ID: {first[1].id}",
            )
        )
        async with asyncio.timeout(10):
            while not (found := re.search(rb"\nid: (\d+)\n", received)):
                received += await reader.read(65536)
    finally:
        writer.close()
    assert int(found[1]) == first[2].id, received  # after the header's id, not the query's
    no_traceback(logs)


async def test_the_largest_last_event_id_a_store_holds_is_a_stream(svc: Service, logs: Any) -> None:
    reader, writer = await asyncio.open_connection(svc.host, svc.port)
    try:
        writer.write(request("GET", f"/api/v1/events/stream?last_event_id={2**63 - 1}"))
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            first = await reader.readuntil(b"\n\n")
    finally:
        writer.close()
    answer = parse(head)
    assert answer.status == 200 and answer.headers["content-type"] == "text/event-stream"
    assert b"retry:" in first
    no_traceback(logs)


async def test_thousands_of_digits_are_a_400(svc: Service, logs: Any) -> None:
    """`int()` refuses more than 4300 digits with a ValueError: checked before."""
    for target in ("/api/v1/items?limit=" + "9" * 5000, "/api/v1/events?since=" + "9" * 5000):
        answer = await exchange(svc, request("GET", target))
        assert answer.status == 400 and "whole number" in answer.problem()["detail"]
    no_traceback(logs)


async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(svc: Service) -> None:
    answer = await exchange(svc, request("PATCH", "/api/v1/items"))
    assert answer.status == 405 and "GET" in answer.headers["allow"]
    answer.problem()
    answer = await exchange(svc, request("DELETE", "/api/v1/items/some-key/history"))
    assert answer.status == 405 and "DELETE" not in answer.headers["allow"]


async def test_a_key_with_a_line_break_reaches_the_handler(svc: Service) -> None:
    """The router matches keys with line breaks too: the handler, not the router, says 404."""
    for method in ("GET", "DELETE"):
        answer = await exchange(
            svc, request(method, "/api/v1/items/a%0Ab", f"Authorization: Bearer {TOKEN}")
        )
        assert answer.status == 404 and "no tracked item" in answer.problem()["detail"]
    answer = await exchange(svc, request("GET", "/api/v1/items/a%0Ab/history"))
    assert answer.status == 404 and "no item" in answer.problem()["detail"]


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/items?q=abc%00def",
        "/api/v1/items?application=a%00",
        "/api/v1/items?vendor=%00",
        "/api/v1/items/a%00b",
        "/api/v1/items/a%00b/history",
        "/api/v1/events/stream?q=abc%00def",
        # a cursor carries a key (and in other orders a value) the store is asked for
        "/api/v1/items?cursor=" + page_cursor("key", "a\x00b", None),
        "/api/v1/items?sort=-source&cursor=" + page_cursor("-source", "a\x00b", "asp"),
        "/api/v1/items?sort=-source&cursor=" + page_cursor("-source", "a", "as\x00p"),
    ],
)
async def test_a_nul_in_a_filter_or_a_key_is_a_400(svc: Service, logs: Any, target: str) -> None:
    """No store can be asked for a NUL: SQLite's text search took it for the end of its query
    (a 503 that said the store was away), PostgreSQL refuses it in text (a 500); nor for one
    in a forged cursor."""
    answer = await exchange(svc, request("GET", target))
    assert answer.status == 400 and "NUL" in answer.problem()["detail"], answer
    no_traceback(logs)


@pytest.mark.parametrize(
    "target", ["/api/v1/items?q=app%1Fcheckout", "/api/v1/events/stream?q=%1F"]
)
async def test_a_search_holding_the_field_separator_is_a_400(
    svc: Service, logs: Any, target: str
) -> None:
    """U+001F keeps the searched fields apart: a search holding it could match from one field
    into the next, so it is refused with the reason, never a 500."""
    answer = await exchange(svc, request("GET", target))
    assert answer.status == 400 and "U+001F" in answer.problem()["detail"], answer
    no_traceback(logs)


@pytest.mark.parametrize(
    "target", ["/api/v1/items?q=ab", "/api/v1/events/stream?q=a", "/api/v1/items?q=%F0%9F%98%80x"]
)
async def test_a_search_shorter_than_three_characters_is_a_400(
    svc: Service, logs: Any, target: str
) -> None:
    """A search is read from an index of 3-character pieces: a shorter one, which would read
    every item, is refused with the reason (an empty `q` is no search)."""
    answer = await exchange(svc, request("GET", target))
    assert answer.status == 400, answer
    assert answer.problem()["detail"].startswith("q: at least 3 characters"), answer
    no_traceback(logs)
    assert (await exchange(svc, request("GET", "/api/v1/items?q="))).status == 200


def forged(text: str) -> str:
    return encode_cursor("\x00" + text)


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        # no value in an order whose column is never empty: the store could not continue it
        *((o, forged(f'["{o}",null,"k"]')) for o in ("-since", "vendor", "-kind", "lifecycle")),
        *((o, forged(f'["{o}",null,"k"]')) for o in ("verdict", "application", "-source")),
        ("changed", forged('["changed","yesterday","k"]')),  # a time that is not one
        ("-since", forged('["-since","2026-12-01T10:00:00","k"]')),  # a time without a zone
        ("key", forged('["key","v","k"]')),  # the key order carries no value
        ("-changed", forged('["-changed",5,6]')),  # values of the wrong types
        ("key", forged('{"a":1}')),
        ("key", forged("7")),
        ("key", forged('["key",null]')),
        ("key", encode_cursor("zzz")),  # any base64 is not a cursor
        ("key", "e30"),
    ],
)
async def test_a_forged_cursor_is_a_400_never_a_store_failure(
    svc: Service, logs: Any, sort: str, cursor: str
) -> None:
    """A cursor is read and checked before the store sees it: one the store could not read
    (a 500 and a logged traceback before) is the 400 every other forged cursor gets."""
    answer = await exchange(svc, request("GET", f"/api/v1/items?sort={sort}&cursor={cursor}"))
    assert answer.status == 400, answer
    assert answer.problem()["detail"] == "cursor: not a cursor this API gave"
    no_traceback(logs)


async def test_a_cursor_of_another_order_is_refused_as_such(svc: Service, logs: Any) -> None:
    target = "/api/v1/items?sort=vendor&cursor=" + page_cursor("-vendor", "k", "iq")
    answer = await exchange(svc, request("GET", target))
    assert answer.status == 400 and answer.problem()["detail"] == "cursor: given for another sort"
    no_traceback(logs)


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        ("/api/v1/events?vendr=iq", "unknown query parameter 'vendr'"),
        # the log is not filtered by vendor: refused, not answered with every vendor's events
        ("/api/v1/events?vendor=iq", "unknown query parameter 'vendor'"),
        ("/api/v1/summary?foo=1", "unknown query parameter 'foo'"),
        ("/api/v1/sources?x=", "unknown query parameter 'x'"),
        ("/api/v1/items?since=5", "unknown query parameter 'since'"),
        ("/api/v1/items/k/history?q=x", "unknown query parameter 'q'"),
        ("/api/v1/events/stream?sort=key", "unknown query parameter 'sort'"),
        # the stream resumes from last_event_id; a since it ignored dropped events silently
        ("/api/v1/events/stream?since=41", "unknown query parameter 'since'"),
        ("/api/v1/openapi.json?v=2", "unknown query parameter 'v'"),
        ("/api/v1/stats?window=1h&window=2h", "window: given more than once"),
        # the second of two values was taken or ignored by the order they came in
        ("/api/v1/items?lifecycle=running&lifecycle=queued", "lifecycle: given more than once"),
    ],
)
async def test_a_query_parameter_a_read_does_not_take_is_a_400_naming_it(
    svc: Service, logs: Any, target: str, detail: str
) -> None:
    answer = await exchange(svc, request("GET", target))
    assert answer.status == 400 and answer.problem()["detail"] == detail, answer
    no_traceback(logs)


@pytest.mark.parametrize("target", ["/healthz?probe=1", "/readyz?x=1", "/?utm=x", "/metrics?a=b"])
async def test_probes_and_the_page_take_any_query(svc: Service, target: str) -> None:
    """A load balancer's probe, a scraper or a link may add its own parameters: nothing is
    read from them, nothing is refused."""
    answer = await exchange(svc, request("GET", target))
    assert answer.status in (200, 503), answer  # /readyz: 503 until the engine polls


async def test_an_unexpected_exception_is_a_500_that_says_nothing_logged_once(
    svc: Service, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("internals-0042 /etc/scanhub")

    monkeypatch.setattr(svc.hub.sources, "health", broken)
    answer = await exchange(svc, request("GET", "/api/v1/sources"))
    assert answer.status == 500
    problem = answer.problem()
    assert problem["detail"] == "the service failed to answer; the error is in its log"
    assert b"internals-0042" not in answer.body and b"Traceback" not in answer.body
    logged = [r for r in logs.records if r.name.startswith(SERVER) and r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "internals-0042" in logs.text and "/api/v1/sources" in logged[0].getMessage()


async def test_a_stream_that_breaks_off_is_closed_and_logged_once(
    svc: Service, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails while a stream reads it to catch up (it starts from id 0): the 200
    went out already, so the connection is closed, the failure logged once."""
    subscribe = svc.hub.subscribe

    def failing(*args: Any, **kw: Any) -> Subscription:
        sub = subscribe(*args, **kw)

        async def broken() -> None:
            raise RuntimeError("store-gone-0042")

        monkeypatch.setattr(sub, "catch_up", broken)
        return sub

    monkeypatch.setattr(svc.hub, "subscribe", failing)
    reader, writer = await asyncio.open_connection(svc.host, svc.port)
    try:
        writer.write(request("GET", "/api/v1/events/stream?last_event_id=0"))
        async with asyncio.timeout(10):
            raw = await reader.read()  # the headers, the retry line, then the close
    finally:
        writer.close()
    assert parse(raw).status == 200 and b"store-gone-0042" not in raw
    logged = [r for r in logs.records if r.name.startswith(SERVER) and r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "store-gone-0042" in logs.text
    assert not svc.streams


# --- what never reaches a handler --------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        # A token file with CRLF line endings: the header line aiohttp quotes holds the token.
        b"POST /api/v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-Secret-cccc\r\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        b"POST /api/v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-Secret-cccc\x01"
        b"\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /api/v1/items?token=tok-Secret-cccc HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    ],
    ids=[
        "long-request-line",
        "long-header",
        "nul-in-header",
        "tls-hello",
        "garbage",
        "cr-after-token",
        "control-in-token",
        "bad-request-line",
    ],
)
async def test_a_malformed_request_is_a_400_problem_logged_once_per_client(
    svc: Service, logs: Any, data: bytes
) -> None:
    for _ in range(3):
        answer = await exchange(svc, data)
        assert answer.status == 400, answer
        assert len(answer.problem()["detail"]) <= 200
        assert b"aaaa" not in answer.body and b"bbbb" not in answer.body
        assert b"cccc" not in answer.body  # what the client sent is never quoted back
    noted = [r for r in logs.records if "malformed request" in r.getMessage()]
    assert not any("cccc" in r.getMessage() for r in logs.records)  # nor logged
    assert [r.levelno for r in noted] == [logging.INFO, logging.DEBUG, logging.DEBUG]
    assert "\n" not in noted[0].getMessage()
    no_traceback(logs)


async def test_clients_that_send_headers_slowly_are_timed_out(tmp_path: Path, logs: Any) -> None:
    async with service(tmp_path, header_timeout=0.5) as (svc, sims, http):
        loop = asyncio.get_running_loop()

        async def slowloris() -> tuple[float, bytes]:
            """A header line every 0.1 s, never the blank line that ends them."""
            reader, writer = await asyncio.open_connection(svc.host, svc.port)
            started = loop.time()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            received = b""
            try:
                async with asyncio.timeout(10):
                    while True:
                        try:
                            async with asyncio.timeout(0.1):
                                chunk = await reader.read(65536)
                        except TimeoutError:
                            writer.write(b"X-Slow: y\r\n")
                            continue
                        if not chunk:
                            break
                        received += chunk
            except ConnectionResetError:
                pass
            finally:
                writer.close()
            return loop.time() - started, received

        results = await asyncio.gather(*(slowloris() for _ in range(300)))
        async with http.get("/healthz") as r:
            assert r.status == 200  # the server is still there for everyone else
        assert svc.limits.open <= 1
    for took, received in results:
        assert took < 3.0
        answer = parse(received)
        assert answer.status == 408 and "did not arrive" in answer.problem()["detail"]
    noted = [r for r in logs.records if "header_timeout" in r.getMessage()]
    assert [r.levelno for r in noted].count(logging.INFO) == 1 and len(noted) == 300
    no_traceback(logs)


async def test_a_slow_request_that_completes_in_time_is_answered(tmp_path: Path) -> None:
    async with service(tmp_path, header_timeout=1.0) as (svc, sims, http):
        reader, writer = await asyncio.open_connection(svc.host, svc.port)
        try:
            for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n"):
                writer.write(part)
                await asyncio.sleep(0.2)
            writer.write(b"\r\n")
            async with asyncio.timeout(10):
                answer = parse(await reader.read())
        finally:
            writer.close()
    assert answer.status == 200


async def test_idle_connections_close_after_keepalive_timeout(tmp_path: Path) -> None:
    async with service(tmp_path, keepalive_timeout=0.5) as (svc, sims, http):
        reader, writer = await asyncio.open_connection(svc.host, svc.port)
        try:
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # closed, having sent nothing
        finally:
            writer.close()


async def test_connections_past_the_cap_are_refused_with_a_503(tmp_path: Path, logs: Any) -> None:
    async with service(tmp_path, max_connections=4) as (svc, sims, http):
        held = [await asyncio.open_connection(svc.host, svc.port) for _ in range(4)]
        await asyncio.sleep(0.1)
        assert svc.limits.open == 4
        for _ in range(3):
            answer = await exchange(svc, b"")
            assert answer.status == 503 and answer.headers["retry-after"] == "1"
            assert "connections open" in answer.problem()["detail"]
        reader, writer = held.pop()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.1)
        answer = await exchange(svc, request("GET", "/healthz"))
        assert answer.status == 200
        for _, writer in held:
            writer.close()
    noted = [r for r in logs.records if "max_connections" in r.getMessage()]
    assert [r.levelno for r in noted] == [logging.INFO, logging.DEBUG, logging.DEBUG]
    no_traceback(logs)


def test_the_default_cap_stays_under_the_open_file_limit() -> None:
    import resource

    from scanhub.serve._protocol import default_max_connections

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = default_max_connections()
    assert cap >= 64 and (soft == resource.RLIM_INFINITY or cap <= max(64, soft - 128))


async def test_a_body_that_does_not_arrive_in_time_is_a_408(tmp_path: Path, logs: Any) -> None:
    async with service(tmp_path, body_timeout=0.5) as (svc, sims, http):
        data = request("POST", "/api/v1/track", f"Authorization: Bearer {TOKEN}", body=b"x" * 100)
        answer = await exchange(svc, data[:-90])  # Content-Length says 100; 10 come
    assert answer.status == 408 and "body did not arrive" in answer.problem()["detail"]
    no_traceback(logs)


# --- all of it, against the command -----------------------------------------------------------


async def test_scanhub_serve_demo_logs_no_traceback_for_any_of_it(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        "serve",
        "--demo",
        "--port",
        "0",
        "--state",
        "memory",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SCANHUB_NO_PLUGINS": "1", "SCANHUB_TOKEN": TOKEN},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        host, _, port = line.split()[2].removeprefix("http://").partition(":")
        target = _Target(host, int(port))
        deep = b"[" * 100_000 + b"]" * 100_000
        sent = [
            request("POST", "/api/v1/track", f"Authorization: Bearer {TOKEN}", body=deep),
            request("POST", "/api/v1/track", body=b"{}").replace(
                b"Connection", b"Authorization: Bearer \xff\xfe\r\nConnection"
            ),
            request("POST", "/webhooks/iq/iq", body=b"{}").replace(
                b"Connection", b"X-Nexus-Webhook-Signature: \xc3\xa9\r\nConnection"
            ),
            request("POST", "/webhooks/sonarqube/sonarqube", body=b"{}").replace(
                b"Connection", b"X-Sonar-Webhook-HMAC-SHA256: \xff\r\nConnection"
            ),
            request("GET", f"/api/v1/events/stream?last_event_id={2**63}"),
            request("GET", "/api/v1/events/stream", f"Last-Event-ID: {10**23}"),
            request("GET", "/api/v1/items?limit=" + "9" * 5000),
            b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n",
        ]
        for data in sent:
            for _ in range(2):
                answer = await exchange(target, data)
                assert 400 <= answer.status < 500, (data[:60], answer)
                answer.problem()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert b"Traceback" not in err and b"ERROR" not in err, err.decode()[-3000:]


@attrs.frozen
class _Target:
    host: str
    port: int
