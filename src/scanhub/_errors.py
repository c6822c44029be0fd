"""One small error tree, grouped by what the caller does about the error.

- retry later: `TransportError`, `RequestTimeout`, `RateLimitedError`, `ServerError`
  (`error.retryable` is True);
- fix credentials: `AuthenticationError`;
- fix the input: `BadRequestError`, `NotFoundError`, `ConflictError` (wait for the other scan);
- report a vendor bug or a proxy in the way: `PayloadError`;
- fix the configuration: `ConfigError`.

Every error names the vendor, the source (configured client name), the operation, the HTTP status
when there was one, and a short body excerpt. Text is redacted by the transport before it gets
here; the constructor also caps the excerpt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._model import Item

_EXCERPT = 200


class ScanhubError(Exception):
    """Root of every error scanhub raises on purpose."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        source: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        self.message = message
        self.vendor = vendor
        self.source = source
        self.operation = operation
        self.status = status
        self.body_excerpt = _excerpt(body)
        super().__init__(self._render())

    def _render(self) -> str:
        where = "/".join(p for p in (self.vendor, self.source) if p)
        head = " ".join(p for p in (where, self.operation) if p)
        parts = [f"{head}: {self.message}" if head else self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.body_excerpt:
            parts.append(f"body: {self.body_excerpt!r}")
        return " ".join(parts)


def _excerpt(body: str | None) -> str | None:
    if not body:
        return None
    text = " ".join(body.split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


class TransportError(ScanhubError):
    """The request did not get an HTTP answer (connection refused, reset, DNS, TLS)."""

    retryable = True
    #: True when the request certainly never reached the server (the connection was never
    #: made), so even a non-idempotent request may be sent again.
    not_sent = False


class RequestTimeout(TransportError):
    """The request took longer than its configured timeout."""


class AuthenticationError(ScanhubError):
    """Credentials missing, wrong, or without the permission (401, 403, ThreadFix's message)."""


class NotFoundError(ScanhubError):
    """The application, scan, promotion or status id does not exist (404 and equivalents)."""


class ConflictError(ScanhubError):
    """The vendor refused because a conflicting operation is running (AppSec+ 409)."""


class RateLimitedError(ScanhubError):
    """The vendor asked us to slow down (429). `retry_after` is the wait in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(ScanhubError):
    """The vendor failed (5xx)."""

    retryable = True


class BadRequestError(ScanhubError):
    """The request was wrong: refused by the vendor (400) or caught before sending."""


class PayloadError(ScanhubError):
    """The vendor answered something we cannot read: not JSON (an HTML login page), truncated,
    of the wrong shape, or missing the fields that identify the item."""


class ConfigError(ScanhubError):
    """A configuration file or setting is wrong; the message names the file and the key.
    `problems` lists every problem found as (key path, what was expected)."""

    problems: list[tuple[str, str]]

    def __init__(self, message: str, **kw: object) -> None:
        self.problems = []
        super().__init__(message, **kw)  # type: ignore[arg-type]


class StoreUnavailable(ScanhubError):
    """The store cannot be reached now (the database is away); try again shortly."""

    retryable = True


class WaitTimeoutError(ScanhubError):
    """`ScanHub.wait` gave up before the item reached a terminal state."""

    def __init__(self, message: str, *, item: Item | None = None, **kw: object) -> None:
        #: The item's last known state.
        self.item = item
        super().__init__(message, **kw)  # type: ignore[arg-type]
