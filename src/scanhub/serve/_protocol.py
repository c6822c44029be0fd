"""The service's connections: a cap on how many are open, a deadline for a request's headers,
and malformed requests answered as problem+json and logged once per client.

aiohttp's server has a deadline for idle keep-alive connections (`keepalive_timeout`) and size
limits for the request line and header fields (`max_line_size`, `max_field_size`), but no
deadline for headers that arrive slowly (a client sending a byte every few seconds is never
timed out), no cap on open connections, and its `RequestHandler.handle_error` answers a
malformed request in text/plain and logs each one with a traceback at ERROR, so any client can
fill the logs. `Connection` is aiohttp's `RequestHandler` with those three added or replaced;
`Listener` is the site that makes one for each accepted socket.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from ._http import SECURITY_HEADERS, problem_response, raw_problem

log = logging.getLogger("scanhub")

#: After an answer given before the whole body came (a 408, a 413), aiohttp reads and drops
#: the rest of it this long before closing (its default, 10 s, lets a slow sender hold on).
_LINGERING_TIME = 2.0
#: A refused connection is read (and what it sends dropped) this long before it is closed...
_REFUSED_LINGER = 0.5
#: ...for this many at a time; past that, refused connections are closed at once.
_MAX_LINGERING = 64


def default_max_connections() -> int:
    """The process's open-file limit (`ulimit -n`) less 128 for the store, the vendor
    connections and the rest: past that limit accept() fails with EMFILE, which asyncio logs
    at ERROR on every try. 1000 where the limit is unknown, 10,000 where there is none."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no `resource` on Windows
        return 1000
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(64, soft - 128)


class ClientLog:
    """Logs what a client did wrong once per client address, at INFO and without a traceback;
    the same client's later offences go to DEBUG. Remembers at most `size` addresses (the
    oldest is forgotten first), so no client can grow it."""

    def __init__(self, logger: logging.Logger = log, size: int = 4096) -> None:
        self.logger = logger
        self.size = size
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def note(self, peer: str | None, message: str, *args: object) -> None:
        key = peer or "?"
        if key in self._seen:
            self._seen.move_to_end(key)
            level = logging.DEBUG
        else:
            self._seen[key] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            level = logging.INFO
            message += " (further ones from this address are logged at DEBUG)"
        self.logger.log(level, message, *args)


class Limits:
    """What every connection of one server shares: its limits, how many are open, and the
    once-per-client log."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        keepalive_timeout: float,
        max_line_size: int,
        max_field_size: int,
        clients: ClientLog | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_line_size = max_line_size
        self.max_field_size = max_field_size
        self.clients = clients or ClientLog()
        self.open = 0
        self.lingering = 0


def _peer(transport: asyncio.BaseTransport) -> str | None:
    name = transport.get_extra_info("peername")
    if isinstance(name, tuple) and name:
        return str(name[0])
    return str(name) if name else None


class Aborted(ConnectionResetError):
    """Raised by the service's middleware for a handler that failed after its answer began
    (a live stream): the failure is logged already, the connection is closed without more."""


class Connection(web.RequestHandler):
    """One client connection (see the module docstring).

    The header deadline: once bytes arrive while no request of this connection is being
    handled, a request must begin within `header_timeout` seconds, else the client gets a 408
    and the connection closes. Whether a request began is told by the service's outermost
    middleware (`request_started` / `request_finished`), which sees every request aiohttp
    could parse; body bytes that arrive while a handler runs never start the clock (nor do the
    first bytes of a pipelined request sent before the answer to the one before: the idle
    connection's `keepalive_timeout` bounds those).
    """

    def __init__(
        self, manager: web.Server, limits: Limits, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(
            manager,
            loop=loop,
            access_log=None,  # type: ignore[arg-type]  # aiohttp's way to say "no access log"
            keepalive_timeout=limits.keepalive_timeout,
            max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size,
            lingering_time=_LINGERING_TIME,
        )
        self.limits = limits
        self.peer: str | None = None
        self.accepted = False
        self.in_flight = 0
        self.lingering: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # --- the cap ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer = _peer(transport)
        limits = self.limits
        if limits.open < limits.max_connections:
            limits.open += 1
            self.accepted = True
            super().connection_made(transport)
            return
        # Refused: a 503 the client can read, then (for a few at a time) half a second in
        # which what it sent is read and dropped, so that closing does not reset the
        # connection before the 503 arrives. aiohttp never sees this connection.
        limits.clients.note(
            self.peer,
            "scanhub: refused a connection from %s: %d connections are open (max_connections)",
            self.peer,
            limits.open,
        )
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            raw_problem(
                503,
                f"the service has {limits.max_connections} connections open; try again shortly",
                **{"Retry-After": "1"},
            )
        )
        if limits.lingering < _MAX_LINGERING and transport.can_write_eof():
            limits.lingering += 1
            self.lingering = self._loop.call_later(_REFUSED_LINGER, transport.close)
            transport.write_eof()
        else:
            transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lingering is not None:
            self.lingering.cancel()
            self.lingering = None
            self.limits.lingering -= 1
        if not self.accepted:
            return
        self.accepted = False
        self.limits.open -= 1
        self._disarm()
        super().connection_lost(exc)

    # --- the header deadline ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self.accepted:
            return  # refused: dropped
        if self.in_flight == 0 and self._deadline is None:
            self._deadline = self._loop.call_later(self.limits.header_timeout, self._expired)
        super().data_received(data)

    def request_started(self) -> None:
        self.in_flight += 1
        self._disarm()

    def request_finished(self) -> None:
        self.in_flight -= 1

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.in_flight:
            return  # a request began (it disarms the clock; this is only a safeguard)
        self.limits.clients.note(
            self.peer,
            "scanhub: closed a connection from %s: no whole request line and headers "
            "within %g s (header_timeout)",
            self.peer,
            self.limits.header_timeout,
        )
        if self.transport is not None:
            self.transport.write(
                raw_problem(
                    408,
                    "the request line and headers did not arrive within "
                    f"{self.limits.header_timeout:g} s",
                )
            )
        self.force_close()

    # --- malformed requests -----------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp calls this for a request it could not parse (`exc` an
        `HttpProcessingError`, a 4xx), for a handler that timed out (504), and for an exception
        that escaped the middleware (which answers every handler exception itself, so that one
        is a bug of the service)."""
        if isinstance(exc, HttpProcessingError) and 400 <= status < 500:
            detail = _malformed(exc)
            self.limits.clients.note(
                request.remote,
                "scanhub: refused a malformed request from %s: %s",
                request.remote,
                detail,
            )
        elif isinstance(exc, Aborted) or exc is None:
            detail = HTTPStatus(status).description
        else:
            log.error("scanhub: answering %s failed", request.remote, exc_info=exc)
            status, detail = 500, "the service failed to answer; the error is in its log"
        if request.writer.output_size > 0:
            # Part of an answer went out already: all that is left is to close (quietly:
            # aiohttp takes a ConnectionError for a client that went away).
            raise ConnectionResetError("closing a connection whose answer broke off")
        resp = problem_response(status, HTTPStatus(status).phrase, detail, **SECURITY_HEADERS)
        resp.force_close()
        return resp


# What aiohttp's parser quotes of the request (`b'Authorization: Bearer …\\r'`, a request
# line with its query): never logged nor sent back, as it may hold a credential.
_QUOTED = re.compile(r"""b?'(?:[^'\\]|\\.)*'?|b?"(?:[^"\\]|\\.)*"?""")


def _malformed(exc: HttpProcessingError) -> str:
    if isinstance(exc, LineTooLong):
        return f"the request line or a header is longer than {exc.args[1]} bytes"
    text = exc.message if isinstance(exc.message, str) else ""
    # What is wrong, not what was sent: aiohttp quotes the offending line (a header with its
    # token) and points at a byte of it; one line, short.
    text = _QUOTED.sub("", text).replace("^", " ")
    return " ".join(text.split()).rstrip(":")[:200] or "the request is not valid HTTP/1.1"


class Listener(web.BaseSite):
    """A TCP site whose connections `factory` makes (aiohttp's `TCPSite` always uses the
    runner's own `RequestHandler`)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        factory: Callable[[], asyncio.Protocol],
        *,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self.host, self.requested_port, self.factory = host, port, factory

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        server: Any = self._server
        if server is None or not server.sockets:
            return self.requested_port
        return int(server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.factory, self.host, self.requested_port, backlog=self._backlog
        )
