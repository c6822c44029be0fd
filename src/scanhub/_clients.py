"""The base of every vendor client: configuration, session ownership, `refresh`, discovery.

Each vendor's own client lives in its package (`scanhub.vendors.<name>.client`) and composes
that vendor's pure functions with the shared transport."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import aiohttp
import attrs

from ._errors import (
    BadRequestError,
    ConfigError,
    RateLimitedError,
    ScanhubError,
    ServerError,
    TransportError,
)
from ._model import Item, Promotion, Scan
from ._ratelimit import RateLimit
from ._sansio import Request, Response, clean_url
from ._secrets import Redactor, Secret
from ._transport import (
    DEFAULT_MAX_BODY,
    Attempt,
    HTTPTransport,
    RetryPolicy,
    Timeouts,
    Transport,
    recording_attempts,
)

T = TypeVar("T")


@attrs.frozen
class PollOutcome:
    """What one poll of an item gave: its new state, or the error; the attempts it took."""

    item: Item | None
    error: BaseException | None
    attempts: tuple[Attempt, ...] = ()
    #: Seconds the poll took, retries included.
    latency: float = 0.0

    @property
    def trouble(self) -> bool:
        """The source struggled: an attempt met no answer, a 429 or a 5xx, or the poll failed
        for want of an answer (timeout, connection, rate limit, server error)."""
        for attempt in self.attempts:
            if attempt.trouble:
                return True
        return isinstance(self.error, RateLimitedError | ServerError | TransportError)

    @property
    def retry_after(self) -> float | None:
        """Seconds the vendor asked to wait (a 429 past what a call sleeps), if any."""
        return self.error.retry_after if isinstance(self.error, RateLimitedError) else None


class Client(abc.ABC):
    """What every vendor client shares: configuration, session ownership, `refresh`.

    The client that opens a session closes it: pass `session=` to share one (the `ScanHub` does)
    and it is left open; otherwise the client makes its own on first use and closes it in
    `__aexit__` / `close()`.

    Every request goes through `self.transport`, the policy stack (retries, the vendor's pause,
    the rate limit, what each attempt met, credentials and redaction) over a wire: aiohttp by
    default, or the `HTTPTransport` given as `wire=` (a `MockTransport` in tests), under the
    same policies.
    """

    #: The registry name of the vendor (`Vendor` names the built-in ones).
    vendor: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        verify_tls: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
        auth_headers: dict[str, str] | None = None,
        auth_params: tuple[tuple[str, str], ...] = (),
        secrets: tuple[Secret, ...] = (),
        wire: HTTPTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        scheme = base_url.partition("://")[0].lower() if "://" in base_url else ""
        if scheme not in ("http", "https"):
            raise BadRequestError(
                f"base_url must be an absolute http(s) URL, got {clean_url(base_url)!r}",
                vendor=self.vendor,
                source=name,
                operation="configure",
            )
        if clean_url(base_url) != base_url:
            raise BadRequestError(
                "base_url must not carry credentials (user-info or a credential query "
                "parameter); pass them as the client's credentials",
                vendor=self.vendor,
                source=name,
                operation="configure",
            )
        self.base_url = base_url.rstrip("/")
        self.name = name or self.vendor
        self._session = session
        self._owns_session = session is None
        #: The caller gave the session (`session=`): it is never replaced nor closed here.
        self._brought_session = session is not None
        #: The event loop this client's own session was made in.
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self.transport = Transport(
            vendor=self.vendor,
            source=self.name,
            session_factory=self._get_session,
            wire=wire,
            auth_headers=auth_headers,
            auth_params=auth_params,
            redactor=Redactor(secrets),
            timeouts=timeouts,
            retry=retry,
            rate_limit=rate_limit,
            verify_tls=verify_tls,
            max_body=max_body,
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, name={self.name!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._owns_session and self._session_loop is not loop:
            # This client's own session, made in an event loop since gone (`asyncio.run` once
            # more, the client not closed): bound to that loop, it cannot send from this one.
            # It is left to the collector (its loop can no longer close it), as the caller
            # left it unclosed; this loop gets a session of its own.
            self._session = None
        if self._session is None or self._session.closed:
            if self._brought_session:
                raise ScanhubError(
                    "the shared aiohttp session is closed",
                    vendor=self.vendor,
                    source=self.name,
                    operation="request",
                )
            # No session was given: the one adopted from a hub that has closed since is
            # replaced by one of this client's own, as on first use.
            self._session = aiohttp.ClientSession()
            self._owns_session = True
            self._session_loop = loop
        return self._session

    def adopt_session(self, session: aiohttp.ClientSession) -> None:
        """Use a session owned by someone else (the ScanHub) unless one was given already
        (`session=`) or this client's own is open. A hub opened again after its close hands
        its new session to the clients that adopted the closed one."""
        if self._brought_session:
            return
        mine_gone = self._owns_session and self._session_loop is not _running_loop()
        if self._session is None or self._session.closed or mine_gone:
            # (this client's own, made in an event loop since gone, is left as `_get_session`
            # leaves it: the hub's, with its connection limit, is used instead)
            self._session = session
            self._owns_session = False

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it (in this event loop: one made in a loop
        since gone is only let go, as that loop can no longer close it)."""
        if self._owns_session and self._session_loop is not asyncio.get_running_loop():
            self._session = None
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _call(self, req: Request, parse: Callable[[Response], T]) -> T:
        try:
            result = parse(await self.transport.send(req))
        except ScanhubError as error:
            raise self.transport.scrub(error) from error.__cause__
        return _without_credentials(result)

    def _check_mine(self, item: Item) -> None:
        if item.vendor != self.vendor or item.source != self.name:
            raise BadRequestError(
                f"{item.key} belongs to {item.vendor}/{item.source}, not to this client",
                vendor=self.vendor,
                source=self.name,
                operation="refresh",
            )

    @abc.abstractmethod
    async def refresh(self, item: Any) -> Any:
        """The latest state of a Scan or Promotion this client produced."""

    async def poll(self, item: Item) -> PollOutcome:
        """`refresh`, as the engine calls it: never raises (but on cancellation), and says what
        the poll met on the wire (every attempt, with its status and time). The application's
        name, when the item knew it and the vendor's answer does not carry it, is kept."""
        started = time.monotonic()
        with recording_attempts() as attempts:
            try:
                new = await self.refresh(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failing source never takes the others down
                return PollOutcome(None, exc, tuple(attempts), time.monotonic() - started)
        if new.key != item.key:
            # The answer is another item's (a track whose application the vendor says is
            # another): recorded under the tracked key it would be one item listed twice.
            wrong = ConfigError(
                f"{item.id}: the vendor's answer is the item {new.key!r}, not the tracked "
                f"{item.key!r}: check the track's ids",
                vendor=self.vendor,
                source=self.name,
                operation="poll",
            )
            return PollOutcome(None, wrong, tuple(attempts), time.monotonic() - started)
        if item.application_name and not new.application_name:
            new = attrs.evolve(new, application_name=item.application_name)
        return PollOutcome(new, None, tuple(attempts), time.monotonic() - started)

    def discover(self, **query: Any) -> AsyncIterator[Item]:
        """Every item a discovery query finds (what "track all scans of an application" means
        for this vendor). Vendors without discovery raise `BadRequestError`."""
        raise BadRequestError(
            f"{self.vendor} sources have no discovery query; track single items instead",
            vendor=self.vendor,
            source=self.name,
            operation="discover",
        )


def _clean_item(item: Any) -> Any:
    links = item.links
    if not links or all("@" not in u and "?" not in u for u in links.values()):
        return item
    return attrs.evolve(item, links={k: clean_url(u) for k, u in links.items()})


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _without_credentials(result: T) -> T:
    """A parsed result whose links carry no credential (user-info or credential query
    parameters a vendor put in an href), whatever the vendor module built."""
    if isinstance(result, Scan | Promotion):
        return _clean_item(result)  # type: ignore[no-any-return]
    if isinstance(result, list):
        return [_clean_item(r) if isinstance(r, Scan | Promotion) else r for r in result]  # type: ignore[return-value]
    pages = getattr(result, "promotions", None)
    if isinstance(pages, list):
        return attrs.evolve(result, promotions=[_clean_item(p) for p in pages])  # type: ignore[misc]
    return result
