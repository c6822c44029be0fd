"""The one place that performs HTTP: timeouts, retries, rate limiting, redaction, logging.

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

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from attrs import frozen
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from ._defaults import CONNECT_TIMEOUT, MAX_ANSWER_BYTES, TOTAL_TIMEOUT
from ._errors import PayloadError, RateLimitedError, RequestTimeout, ScanhubError, TransportError
from ._ratelimit import RateLimit, SlidingWindowLimiter
from ._sansio import Request, Response, clean_url, retry_after_of
from ._secrets import Redactor

log = logging.getLogger("scanhub")


@frozen
class Timeouts:
    """Seconds allowed to connect, and for the whole request (connect + send + read)."""

    connect: float = CONNECT_TIMEOUT
    total: float = TOTAL_TIMEOUT


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


@contextlib.contextmanager
def recording_attempts() -> Iterator[list[Attempt]]:
    """Collect every attempt the transports make in this task (and the tasks it starts) while
    the block runs: how the engine learns what one poll cost and met."""
    found: list[Attempt] = []
    token = _ATTEMPTS.set(found)
    try:
        yield found
    finally:
        _ATTEMPTS.reset(token)


_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Default cap on an answer's body: vendor answers are kilobytes; a page of a thousand
#: promotions is about a megabyte.
DEFAULT_MAX_BODY = MAX_ANSWER_BYTES
_CHUNK = 64 * 1024


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


class Transport:
    """Executes `Request`s for one configured client over an aiohttp session."""

    def __init__(
        self,
        *,
        vendor: str,
        source: str,
        session_factory: Callable[[], aiohttp.ClientSession],
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
        self.max_body = max_body
        self.vendor = vendor
        self.source = source
        self._session_factory = session_factory
        self._auth_headers = dict(auth_headers or {})
        self._auth_params = auth_params
        self.redact = redactor or Redactor()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.limiter = (
            SlidingWindowLimiter(rate_limit, clock=clock, sleep=sleep) if (rate_limit) else None
        )
        self._ssl: bool = verify_tls
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0
        self._timeout_for: Timeouts | None = None
        self._timeout = aiohttp.ClientTimeout()
        #: Requests actually put on the wire (every attempt counts); read by tests and benches.
        self.sent = 0
        #: Called after every attempt with (HTTP status, or None when no answer came; seconds):
        #: the engine's adaptive concurrency and the service's metrics listen here.
        self.observers: list[Callable[[int | None, float], None]] = []

    def __repr__(self) -> str:
        return f"<Transport {self.vendor}/{self.source}>"

    @property
    def rate_ceiling(self) -> int | None:
        """The most requests the client-side `RateLimit` lets into one window (None: no
        limit): no source should have more in flight."""
        return None if self.limiter is None else self.limiter.limit.max_requests

    def pause(self, seconds: float) -> None:
        """Hold this source's requests for `seconds` (capped at `retry_after_cap`): the vendor
        said wait, in a 429 or otherwise (GitHub's 403 with its rate-limit headers). The one
        place a source's pause is kept; the engine reads it (`paused_for`)."""
        wait = min(max(0.0, seconds), self.retry.retry_after_cap)
        self._paused_until = max(self._paused_until, self._clock() + wait)

    @property
    def paused_for(self) -> float:
        """Seconds this source still waits because the vendor said 429."""
        return max(0.0, self._paused_until - self._clock())

    async def send(self, req: Request) -> Response:
        """Send `req` under the policy; return the final response, whatever its status (the
        vendor module turns statuses into errors), or raise `TransportError`/`RequestTimeout`
        /`RateLimitedError`."""
        # The first attempt runs without the retry machinery: nearly every request succeeds at
        # once, and building a tenacity loop per request costs more CPU than parsing the answer.
        try:
            resp: Response | None = await self._attempt(req)
            error: TransportError | None = None
        except TransportError as exc:
            resp, error = None, exc
        if self.retry.attempts <= 1 or not self._worth_retrying(req, resp, error):
            if error is not None:
                raise error
            assert resp is not None
            return resp
        await self._sleep(self._delay(resp, 1))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts - 1),
            wait=lambda state: self._delay(_last_response(state), state.attempt_number + 1),
            retry=lambda state: self._should_retry(state, req),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    resp = await self._attempt(req)
                    if self._worth_retrying(req, resp, None):
                        raise _Retry(resp)
                    return resp
        except _Retry as last:
            return last.response
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _client_timeout(self) -> aiohttp.ClientTimeout:
        # Built once per Timeouts value rather than per request (it showed in the CPU profile).
        if self._timeout_for is not self.timeouts:
            self._timeout = aiohttp.ClientTimeout(
                total=self.timeouts.total, sock_connect=self.timeouts.connect
            )
            self._timeout_for = self.timeouts
        return self._timeout

    def _worth_retrying(
        self, req: Request, resp: Response | None, error: TransportError | None
    ) -> bool:
        if error is not None:
            # Re-send only what the server cannot have acted on, unless the call is idempotent.
            return error.retryable and (req.idempotent or error.not_sent)
        assert resp is not None
        if resp.status not in _RETRY_STATUSES or not (req.idempotent or resp.status == 429):
            return False
        wait = self._advised_wait(resp)
        return wait is None or wait <= self.retry.max_retry_after

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
            advised = self._advised_wait(resp)
            if advised is not None:
                return advised
        return self.retry.backoff(attempt)

    def _advised_wait(self, resp: Response) -> float | None:
        if resp.status != 429:
            return None
        wait = retry_after_of(resp)
        if wait is None:
            wait = self.retry.default_429_wait
        return None if wait is None else min(wait, self.retry.retry_after_cap)

    async def _attempt(self, req: Request) -> Response:
        await self._respect_pause(req)
        if self.limiter is not None:
            await self.limiter.acquire()
        session = self._session_factory()
        headers = {**req.headers, **self._auth_headers}
        params = list(req.params) + list(self._auth_params)
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
        timeout = self._client_timeout()
        started = self._clock()
        self.sent += 1
        try:
            async with session.request(
                req.method,
                req.url,
                params=params or None,
                headers=headers,
                json=req.json if req.file is None else None,
                data=data,
                timeout=timeout,
                ssl=self._ssl,
                allow_redirects=False,
            ) as raw:
                body = await self._read(raw, req)
                # aiohttp's headers are already case-insensitive: passed as they are. Only a
                # 429's wait needs the time of receipt.
                resp = Response(
                    raw.status,
                    self.redact.scrub_bytes(body),
                    raw.headers,
                    req.operation,
                    clean_url(self.redact(str(raw.url))),
                    datetime.now(UTC) if raw.status == 429 else None,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            self._notify(None, started)
            not_sent = isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise self._error(RequestTimeout, req, "timed out", exc, not_sent) from exc
        except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError) as exc:
            error = self._error(TransportError, req, "TLS verification failed", exc, False)
            error.retryable = False
            raise error from exc
        except aiohttp.ClientConnectorError as exc:
            self._notify(None, started)
            raise self._error(TransportError, req, "could not connect", exc, True) from exc
        except aiohttp.ClientError as exc:
            self._notify(None, started)
            raise self._error(TransportError, req, "connection failed", exc, False) from exc
        elapsed = self._clock() - started
        self._notify(resp.status, started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %d in %.3fs",
                self.source,
                req.method,
                self.redact(req.url),
                resp.status,
                elapsed,
            )
        if resp.status == 429:
            wait = self._advised_wait(resp)
            if wait is None:
                wait = self.retry.backoff(1)
            self._paused_until = max(self._paused_until, self._clock() + wait)
            log.warning("%s: rate limited by %s, pausing %.1fs", self.source, self.vendor, wait)
        return resp

    def _notify(self, status: int | None, started: float) -> None:
        attempts = _ATTEMPTS.get()
        if self.observers or attempts is not None:
            elapsed = self._clock() - started
            if attempts is not None:
                attempts.append(Attempt(status, elapsed))
            for observer in self.observers:
                observer(status, elapsed)

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

    async def _respect_pause(self, req: Request) -> None:
        remaining = self.paused_for
        if remaining <= 0:
            return
        if remaining > self.retry.max_retry_after:
            raise RateLimitedError(
                f"source is paused by the vendor's rate limit for {remaining:.0f}s more",
                retry_after=remaining,
                vendor=self.vendor,
                source=self.source,
                operation=req.operation,
            )
        await self._sleep(remaining)

    def _error(
        self,
        cls: type[TransportError],
        req: Request,
        what: str,
        exc: BaseException,
        not_sent: bool,
    ) -> TransportError:
        detail = self.redact(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
        error = cls(
            f"{what} ({detail})",
            vendor=self.vendor,
            source=self.source,
            operation=req.operation,
        )
        error.not_sent = not_sent
        return error

    def scrub(self, error: ScanhubError) -> ScanhubError:
        """Redact an error's text in place (message, excerpt, args), cap the wait a
        `RateLimitedError` asks for at `retry_after_cap`, and return the error."""
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            error.retry_after = min(error.retry_after, self.retry.retry_after_cap)
        error.message = self.redact(error.message)
        if error.body_excerpt:
            error.body_excerpt = self.redact(error.body_excerpt)
        error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
        return error
