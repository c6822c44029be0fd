"""The one place that performs HTTP: a narrow seam, one implementation over aiohttp, and the
policies as layers over it.

    Transport (what a client holds) = Retrying ─> Pausing ─> RateLimiting ─> Recording
                                       ─> Authenticating ─> AiohttpTransport (the wire)

`HTTPTransport` is the seam (httpx's `AsyncBaseTransport`, gidgethub's one `_request`): `send`
one `Request`, get one `Response` (any status) or a `TransportError` when no answer came. The
wire (`AiohttpTransport`) makes one attempt over an aiohttp session; each policy is a small
layer that wraps another transport; `MockTransport` answers from a function, for tests
(`Client(..., wire=MockTransport(handler))` keeps every policy and replaces only the wire).

Policy (documented in README "Transport policy"):

- every request has a connect and a total timeout;
- idempotent requests (GET) are retried with exponential backoff and full jitter on connection
  errors, timeouts, 5xx and 429 (tenacity does the looping);
- a non-idempotent request (trigger, promote, upload) is re-sent only when the server cannot
  have acted on it: the connection was never established, or the server answered 429;
- `Retry-After` is honoured in RFC 9110's forms only (ASCII delay-seconds or an HTTP-date),
  capped at `RetryPolicy.retry_after_cap`; anything else falls back to our own backoff; a 429
  without it waits `RetryPolicy.default_429_wait` (IQ Cloud: 5 minutes) or the backoff;
- a wait longer than `RetryPolicy.max_retry_after` is not slept inside the call: the call
  raises `RateLimitedError(retry_after=...)` and the source stays paused until then, so an
  aggregator can move on and come back;
- an optional client-side `RateLimit` caps the send rate;
- an answer's body is capped (`max_body`, checked against `Content-Length` and as it streams):
  past the cap the call is a `PayloadError` and the rest is not read;
- secrets never reach logs, error text, stored URLs or parsed bodies: a body that echoes a
  credential has it replaced by `***` before any parser sees it, and the response URL handed
  to parsers carries no credential query parameter or user-info.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from attrs import frozen
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from ._defaults import CONNECT_TIMEOUT, MAX_ANSWER_BYTES, TOTAL_TIMEOUT
from ._errors import (
    BadRequestError,
    PayloadError,
    RateLimitedError,
    RequestTimeout,
    ScanhubError,
    TransportError,
)
from ._ratelimit import RateLimit, SlidingWindowLimiter
from ._sansio import Request, Response, clean_url, retry_after_of
from ._secrets import Redactor

log = logging.getLogger("scanhub")


@frozen
class Timeouts:
    """Seconds allowed to connect, and for the whole request (connect + send + read)."""

    connect: float = CONNECT_TIMEOUT
    total: float = TOTAL_TIMEOUT

    def __attrs_post_init__(self) -> None:
        # aiohttp takes 0 or less as no timeout at all: refused, as RateLimit refuses its own.
        for name, value in (("connect", self.connect), ("total", self.total)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"Timeouts needs {name} in seconds (a number), got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Timeouts needs {name} > 0 seconds (finite), got {value!r}")


@frozen
class RetryPolicy:
    """How failed requests are retried. `attempts` counts the first try."""

    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: Longest wait slept inside one call; longer ones raise `RateLimitedError` at once.
    max_retry_after: float = 60.0
    #: Wait after a 429 that names no Retry-After; None means the exponential backoff.
    default_429_wait: float | None = None
    #: The longest pause a `Retry-After` (or `default_429_wait`) can impose on a source.
    retry_after_cap: float = 900.0

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(
                f"RetryPolicy needs attempts >= 1 (it counts the first try), got {self.attempts!r}"
            )
        for name in ("backoff_initial", "backoff_max", "max_retry_after", "retry_after_cap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryPolicy needs {name} >= 0 seconds (finite), got {value!r}")
        wait = self.default_429_wait
        if wait is not None and not (math.isfinite(wait) and wait >= 0):
            raise ValueError(
                f"RetryPolicy needs default_429_wait >= 0 seconds (finite) or None, got {wait!r}"
            )

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given attempt number (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


@frozen
class Attempt:
    """One attempt of a request: the HTTP status (None when no answer came) and how long it
    took."""

    status: int | None
    elapsed: float

    @property
    def trouble(self) -> bool:
        """A sign the source is struggling: no answer, a 429, or a 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500


_ATTEMPTS: contextvars.ContextVar[list[Attempt] | None] = contextvars.ContextVar(
    "scanhub_attempts", default=None
)


class recording_attempts:
    """Collect every attempt the transports make in this task (and the tasks it starts) while
    the block runs: how the engine learns what one poll cost and met. (A plain class rather
    than `contextlib.contextmanager`: one is entered for every poll.)"""

    __slots__ = ("_found", "_token")

    def __enter__(self) -> list[Attempt]:
        self._found: list[Attempt] = []
        self._token = _ATTEMPTS.set(self._found)
        return self._found

    def __exit__(self, *exc: object) -> None:
        _ATTEMPTS.reset(self._token)


_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Default cap on an answer's body: vendor answers are kilobytes; a page of a thousand
#: promotions is about a megabyte.
DEFAULT_MAX_BODY = MAX_ANSWER_BYTES
_CHUNK = 64 * 1024
#: What no HTTP header may hold (aiohttp refuses it with a ValueError): a line break or any
#: other control character but the tab. A secret read with a trailing newline would.
_HEADER_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def body_limit_problem(headers: Mapping[str, str], max_body: int) -> str | None:
    """Why an answer must not be read, judging by its `Content-Length`, or None."""
    declared = headers.get("content-length")
    if declared is None:
        return None
    text = declared.strip()
    if not text.isascii() or not text.isdigit():
        return f"Content-Length {declared[:40]!r} is not a number of bytes"
    if int(text[:20]) > max_body:
        return f"the answer is {int(text[:20])} bytes, over the {max_body}-byte cap"
    return None


def advised_wait(policy: RetryPolicy, resp: Response) -> float | None:
    """How long a 429 asks to wait: its RFC 9110 `Retry-After`, else the policy's
    `default_429_wait`, capped at `retry_after_cap`; None when it says nothing (or is not a
    429)."""
    if resp.status != 429:
        return None
    wait = retry_after_of(resp)
    if wait is None:
        wait = policy.default_429_wait
    return None if wait is None else min(wait, policy.retry_after_cap)


# --- the seam ---------------------------------------------------------------------------------


class HTTPTransport(abc.ABC):
    """Sends one `Request` and returns its `Response` (whatever the status), or raises a
    `TransportError` (or `RequestTimeout`, `PayloadError`) when no usable answer came."""

    @abc.abstractmethod
    async def send(self, req: Request) -> Response:
        """One request, as this transport does it."""

    async def close(self) -> None:
        """Release what it holds (nothing, unless it owns a session)."""
        return


class MockTransport(HTTPTransport):
    """Answers from a function instead of the network (tests): `handler(request)` returns a
    `Response` (or an awaitable of one), or raises a `TransportError`."""

    def __init__(self, handler: Callable[[Request], Response | Awaitable[Response]]) -> None:
        self.handler = handler
        #: Every request it was given, in order.
        self.requests: list[Request] = []

    async def send(self, req: Request) -> Response:
        self.requests.append(req)
        answer = self.handler(req)
        if isinstance(answer, Response):
            return answer
        return await answer


class AiohttpTransport(HTTPTransport):
    """The wire: one attempt over an aiohttp session, with a connect and a total timeout, TLS
    verification (on unless turned off), no redirects followed, and the answer's body capped
    (judged by `Content-Length`, and again as it streams)."""

    def __init__(
        self,
        session_factory: Callable[[], aiohttp.ClientSession],
        *,
        vendor: str,
        source: str,
        timeouts: Timeouts | None = None,
        verify_tls: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if max_body < 1:
            raise ValueError("max_body must be at least 1 byte")
        self._session_factory = session_factory
        self.vendor, self.source = vendor, source
        self.timeouts = timeouts or Timeouts()
        self.verify_tls = verify_tls
        self.max_body = max_body
        self._timeout_for: Timeouts | None = None
        self._timeout = aiohttp.ClientTimeout()

    def _client_timeout(self) -> aiohttp.ClientTimeout:
        # Built once per Timeouts value rather than per request (it showed in the CPU profile).
        if self._timeout_for is not self.timeouts:
            self._timeout = aiohttp.ClientTimeout(
                total=self.timeouts.total, sock_connect=self.timeouts.connect
            )
            self._timeout_for = self.timeouts
        return self._timeout

    async def send(self, req: Request) -> Response:
        for name, value in dict(req.headers).items():
            if _HEADER_FORBIDDEN.search(name) or _HEADER_FORBIDDEN.search(value):
                raise self._refused(
                    req,
                    f"the {name!r} header holds a line break or another control character, "
                    "which HTTP does not allow (a secret set with one?): not sent",
                )
        session = self._session_factory()
        data: Any = None
        if req.file is not None:
            form = aiohttp.FormData()
            form.add_field(
                req.file.field_name,
                req.file.content,
                filename=req.file.filename,
                content_type=req.file.content_type,
            )
            data = form
        try:
            async with session.request(
                req.method,
                req.url,
                params=list(req.params) or None,
                headers=dict(req.headers),
                json=req.json if req.file is None else None,
                data=data,
                timeout=self._client_timeout(),
                ssl=self.verify_tls,
                allow_redirects=False,
            ) as raw:
                body = await self._read(raw, req)
                # aiohttp's headers are already case-insensitive: passed as they are. Only a
                # 429's wait needs the time of receipt.
                return Response(
                    raw.status,
                    body,
                    raw.headers,
                    req.operation,
                    str(raw.url),
                    datetime.now(UTC) if raw.status == 429 else None,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            not_sent = isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise self._error(RequestTimeout, req, "timed out", exc, not_sent) from exc
        except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError) as exc:
            error = self._error(TransportError, req, "TLS verification failed", exc, False)
            error.retryable = False  # a certificate does not get better: no retry, no trouble
            raise error from exc
        except aiohttp.ClientConnectorError as exc:
            raise self._error(TransportError, req, "could not connect", exc, True) from exc
        except aiohttp.ClientError as exc:
            raise self._error(TransportError, req, "connection failed", exc, False) from exc
        except ValueError:
            # aiohttp's own refusal of what it cannot send (a header it finds malformed): its
            # message or the value may hold a secret, so neither is shown (nor chained).
            raise self._refused(
                req,
                "aiohttp refused to send the request as malformed (a value it cannot write in "
                "a header or a body it cannot encode): not sent",
            ) from None

    def _refused(self, req: Request, what: str) -> BadRequestError:
        """A request that cannot be sent as it is, said without the value at fault."""
        return BadRequestError(
            what,
            vendor=self.vendor,
            source=self.source,
            operation=req.operation,
        )

    async def _read(self, raw: aiohttp.ClientResponse, req: Request) -> bytes:
        """The body, up to `max_body` bytes; past it a `PayloadError`, the rest unread."""
        problem = body_limit_problem(raw.headers, self.max_body)
        if problem is None:
            chunks: list[bytes] = []
            size = 0
            async for chunk in raw.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > self.max_body:
                    problem = f"the answer passed the {self.max_body}-byte cap while streaming"
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        raw.close()  # drop the connection: the rest is never read
        raise PayloadError(
            f"{problem} (max_body)",
            vendor=self.vendor,
            source=self.source,
            operation=req.operation,
            status=raw.status,
        )

    def _error(
        self,
        cls: type[TransportError],
        req: Request,
        what: str,
        exc: BaseException,
        not_sent: bool,
    ) -> TransportError:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        error = cls(
            f"{what} ({detail})", vendor=self.vendor, source=self.source, operation=req.operation
        )
        error.not_sent = not_sent
        return error


# --- the policies, as layers ----------------------------------------------------------------


class Layer(HTTPTransport):
    """A policy over another transport."""

    def __init__(self, inner: HTTPTransport) -> None:
        self.inner = inner

    async def close(self) -> None:
        await self.inner.close()


_CLEAN_URLS_KEPT = 4096


class Authenticating(Layer):
    """Adds the source's credentials to every request, and takes every secret out of what
    comes back: a body that echoes a credential has it replaced by `***` before any parser
    sees it, the answer's URL loses user-info and credential parameters, and error text is
    redacted."""

    def __init__(
        self,
        inner: HTTPTransport,
        redact: Redactor,
        headers: Mapping[str, str] | None = None,
        params: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(inner)
        self.redact = redact
        self._headers = dict(headers or {})
        self._params = params
        #: Answer URL -> the same URL redacted and without credentials.
        self._clean_urls: dict[str, str] = {}

    async def send(self, req: Request) -> Response:
        if self._headers or self._params:
            # `attrs.evolve` without its field walk (a request is sent every poll).
            req = Request(
                req.method,
                req.url,
                req.operation,
                (*req.params, *self._params) if self._params else req.params,
                {**req.headers, **self._headers} if self._headers else req.headers,
                req.json,
                req.file,
                req.idempotent,
            )
        try:
            resp = await self.inner.send(req)
        except ScanhubError as error:
            error.message = self.redact(error.message)
            error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
            raise
        body = self.redact.scrub_bytes(resp.body)
        url = self._clean_urls.get(resp.url)
        if url is None:  # a source asks the same few URLs again and again
            if len(self._clean_urls) >= _CLEAN_URLS_KEPT:
                self._clean_urls.clear()
            url = self._clean_urls[resp.url] = clean_url(self.redact(resp.url))
        if body is resp.body and url == resp.url:
            return resp
        return Response(
            resp.status,
            body,
            resp.headers,
            operation=resp.operation,
            url=url,
            received_at=resp.received_at,
        )


class Recording(Layer):
    """Times every attempt and tells of it: the poll that made it (`recording_attempts`), the
    observers (the service's metrics), and the debug log (redacted URL)."""

    def __init__(
        self,
        inner: HTTPTransport,
        source: str,
        redact: Redactor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inner)
        self.source = source
        self.redact = redact
        self._clock = clock
        #: Attempts actually put on the wire.
        self.sent = 0
        #: Called after every attempt with (HTTP status, or None when no answer came; seconds).
        self.observers: list[Callable[[int | None, float], None]] = []

    async def send(self, req: Request) -> Response:
        started = self._clock()
        self.sent += 1
        try:
            resp = await self.inner.send(req)
        except TransportError as error:
            if error.retryable:  # no answer came (a refused certificate is not trouble)
                self._notify(None, self._clock() - started)
            raise
        elapsed = self._clock() - started
        self._notify(resp.status, elapsed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %d in %.3fs",
                self.source,
                req.method,
                self.redact(req.url),
                resp.status,
                elapsed,
            )
        return resp

    def _notify(self, status: int | None, elapsed: float) -> None:
        attempts = _ATTEMPTS.get()
        if attempts is not None:
            attempts.append(Attempt(status, elapsed))
        for observer in self.observers:
            observer(status, elapsed)


class RateLimiting(Layer):
    """Waits, when the client-side `RateLimit` says so, before each attempt."""

    def __init__(self, inner: HTTPTransport, limiter: SlidingWindowLimiter) -> None:
        super().__init__(inner)
        self.limiter = limiter

    async def send(self, req: Request) -> Response:
        await self.limiter.acquire()
        return await self.inner.send(req)


class Pausing(Layer):
    """The source's pause, in one place: a 429 (or anyone who calls `pause`) holds every
    request of the source until then. A request during a short pause waits it out; during a
    long one (past `max_retry_after`) it is refused locally with `RateLimitedError`, so no
    request is wasted on a vendor that said stop."""

    def __init__(
        self,
        inner: HTTPTransport,
        policy: Callable[[], RetryPolicy],
        *,
        vendor: str,
        source: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self._policy = policy
        self.vendor, self.source = vendor, source
        self._clock, self._sleep = clock, sleep
        self._until = 0.0

    @property
    def paused_for(self) -> float:
        """Seconds the source still waits."""
        return max(0.0, self._until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold the source's requests for `seconds` (capped at `retry_after_cap`)."""
        wait = min(max(0.0, seconds), self._policy().retry_after_cap)
        self._until = max(self._until, self._clock() + wait)

    async def send(self, req: Request) -> Response:
        remaining = self.paused_for
        if remaining > 0:
            if remaining > self._policy().max_retry_after:
                raise RateLimitedError(
                    f"source is paused by the vendor's rate limit for {remaining:.0f}s more",
                    retry_after=remaining,
                    vendor=self.vendor,
                    source=self.source,
                    operation=req.operation,
                )
            await self._sleep(remaining)
        resp = await self.inner.send(req)
        if resp.status == 429:
            policy = self._policy()
            wait = advised_wait(policy, resp)
            if wait is None:
                wait = policy.backoff(1)
            self.pause(wait)
            log.warning("%s: rate limited by %s, pausing %.1fs", self.source, self.vendor, wait)
        return resp


class _Retry(Exception):
    """A response worth another try; carries it so the last one can be returned."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _last_response(state: RetryCallState) -> Response | None:
    outcome = state.outcome
    if outcome is not None and outcome.failed:
        exc = outcome.exception()
        if isinstance(exc, _Retry):
            return exc.response
    return None


class Retrying(Layer):
    """Retries what is worth it, by `RetryPolicy`: idempotent requests on no answer, 5xx and
    429; others only when the server cannot have acted (never connected, or 429); waits by the
    vendor's `Retry-After` or full-jitter backoff, never a wait past `max_retry_after` inside
    the call."""

    def __init__(
        self,
        inner: HTTPTransport,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def send(self, req: Request) -> Response:
        # The first attempt runs without the retry machinery: nearly every request succeeds at
        # once, and building a tenacity loop per request costs more CPU than parsing the answer.
        try:
            resp: Response | None = await self.inner.send(req)
            error: TransportError | None = None
        except TransportError as exc:
            resp, error = None, exc
        if self.policy.attempts <= 1 or not self._worth_retrying(req, resp, error):
            if error is not None:
                raise error
            assert resp is not None
            return resp
        await self._sleep(self._delay(resp, 1))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts - 1),
            wait=lambda state: self._delay(_last_response(state), state.attempt_number + 1),
            retry=lambda state: self._should_retry(state, req),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    resp = await self.inner.send(req)
                    if self._worth_retrying(req, resp, None):
                        raise _Retry(resp)
                    return resp
        except _Retry as last:
            return last.response
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _worth_retrying(
        self, req: Request, resp: Response | None, error: TransportError | None
    ) -> bool:
        if error is not None:
            # Re-send only what the server cannot have acted on, unless the call is idempotent.
            return error.retryable and (req.idempotent or error.not_sent)
        assert resp is not None
        if resp.status not in _RETRY_STATUSES or not (req.idempotent or resp.status == 429):
            return False
        wait = advised_wait(self.policy, resp)
        return wait is None or wait <= self.policy.max_retry_after

    def _should_retry(self, state: RetryCallState, req: Request) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if isinstance(exc, _Retry):
            return True  # _worth_retrying already said so
        if isinstance(exc, TransportError):
            return self._worth_retrying(req, None, exc)
        return False

    def _delay(self, resp: Response | None, attempt: int) -> float:
        if resp is not None:
            advised = advised_wait(self.policy, resp)
            if advised is not None:
                return advised
        return self.policy.backoff(attempt)


# --- what a client holds ----------------------------------------------------------------------


class Transport:
    """The policy stack one client sends through (see the module docstring), with the knobs
    tests and the engine turn: `timeouts`, `retry`, `paused_for` / `pause`, `rate_ceiling`,
    `observers`, `sent`, `redact`, `scrub`."""

    def __init__(
        self,
        *,
        vendor: str,
        source: str,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        wire: HTTPTransport | None = None,
        auth_headers: Mapping[str, str] | None = None,
        auth_params: tuple[tuple[str, str], ...] = (),
        redactor: Redactor | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        verify_tls: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_body < 1:
            raise ValueError("max_body must be at least 1 byte")
        self.vendor, self.source = vendor, source
        self.redact = redactor or Redactor()
        self.max_body = max_body
        if wire is None:
            if session_factory is None:
                raise ValueError("a transport needs a session factory or a wire")
            wire = AiohttpTransport(
                session_factory,
                vendor=vendor,
                source=source,
                timeouts=timeouts,
                verify_tls=verify_tls,
                max_body=max_body,
            )
        self.wire = wire
        stack: HTTPTransport = Authenticating(wire, self.redact, auth_headers, auth_params)
        self._recording = Recording(stack, source, self.redact, clock)
        stack = self._recording
        self.limiter = (
            SlidingWindowLimiter(rate_limit, clock=clock, sleep=sleep) if rate_limit else None
        )
        if self.limiter is not None:
            stack = RateLimiting(stack, self.limiter)
        self._retrying = Retrying(stack, retry, sleep)
        self._pausing = Pausing(
            stack,
            lambda: self._retrying.policy,
            vendor=vendor,
            source=source,
            clock=clock,
            sleep=sleep,
        )
        self._retrying.inner = self._pausing
        self._stack: HTTPTransport = self._retrying

    def __repr__(self) -> str:
        return f"<Transport {self.vendor}/{self.source}>"

    def send(self, req: Request) -> Coroutine[Any, Any, Response]:
        """Send `req` under the policy; return the final response, whatever its status (the
        vendor module turns statuses into errors), or raise `TransportError`/`RequestTimeout`
        /`RateLimitedError`/`PayloadError`. (The stack's own coroutine, awaited by the caller:
        a frame less on every resume of every request.)"""
        return self._stack.send(req)

    @property
    def retry(self) -> RetryPolicy:
        """How failed requests are retried."""
        return self._retrying.policy

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self._retrying.policy = policy

    @property
    def timeouts(self) -> Timeouts:
        """Connect and total timeouts of the wire (aiohttp's)."""
        wire = self.wire
        return wire.timeouts if isinstance(wire, AiohttpTransport) else Timeouts()

    @timeouts.setter
    def timeouts(self, value: Timeouts) -> None:
        if isinstance(self.wire, AiohttpTransport):
            self.wire.timeouts = value

    @property
    def observers(self) -> list[Callable[[int | None, float], None]]:
        """Called after every attempt with (HTTP status or None, seconds)."""
        return self._recording.observers

    @property
    def sent(self) -> int:
        """Requests actually put on the wire (every attempt counts); read by tests and benches."""
        return self._recording.sent

    @property
    def rate_ceiling(self) -> int | None:
        """The most requests the client-side `RateLimit` lets into one window (None: no
        limit): no source should have more in flight."""
        return None if self.limiter is None else self.limiter.limit.max_requests

    @property
    def paused_for(self) -> float:
        """Seconds this source still waits because the vendor said so."""
        return self._pausing.paused_for

    def pause(self, seconds: float) -> None:
        """Hold this source's requests for `seconds` (capped at `retry_after_cap`): the vendor
        said wait, in a 429 or otherwise (GitHub's 403 with its rate-limit headers). The one
        place a source's pause is kept; the engine reads it (`paused_for`)."""
        self._pausing.pause(seconds)

    def scrub(self, error: ScanhubError) -> ScanhubError:
        """Redact an error's text in place (message, excerpt, args), cap the wait a
        `RateLimitedError` asks for at `retry_after_cap` (one that names none gets the wait
        this source is paused for: IQ's 429 names none and means 5 minutes; one that names a
        longer wait than the source's pause pauses it), and return the error."""
        if isinstance(error, RateLimitedError):
            if error.retry_after is None and self.paused_for > 0:
                error.retry_after = self.paused_for
            if error.retry_after is not None:
                error.retry_after = min(error.retry_after, self.retry.retry_after_cap)
                # A vendor that said wait otherwise than with a 429 (GitHub's 403 with its
                # rate-limit headers): the source waits as for a 429, whoever calls.
                if error.retry_after - self.paused_for > 1.0:
                    self.pause(error.retry_after)
                    log.warning(
                        "%s: rate limited by %s, pausing %.1fs",
                        self.source,
                        self.vendor,
                        error.retry_after,
                    )
        error.message = self.redact(error.message)
        if error.body_excerpt:
            error.body_excerpt = self.redact(error.body_excerpt)
        error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
        return error
