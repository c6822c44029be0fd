"""What every vendor module shares: request/response descriptions and defensive readers.

Nothing here performs I/O or reads a clock. Vendor payloads are untrusted: every reader checks
types and turns a surprise into a `PayloadError` (for identity fields) or `None` (for optional
fields), never a `KeyError`/`TypeError`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from attrs import field, frozen

from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    ScanhubError,
    ServerError,
)
from ._model import Lifecycle, Verdict
from ._secrets import masked_headers, masked_params

log = logging.getLogger("scanhub")

_orjson_loads: Callable[[bytes], Any] | None
try:  # the `fast` extra: orjson decodes vendor answers 2-5x faster than the stdlib
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - exercised in the stdlib-only benchmark column
    _orjson_loads = None


# orjson reads an integer beyond 64 bits as a float, silently changing it: above 2^64 - 1 (20
# digits or more) and below -2^63 (a minus and 19 digits or more). Any body with a run of 20
# characters from `0-9` and `-` (which covers both: a 20-digit run, a minus before a 19-digit
# run) goes to the stdlib, which keeps such integers exact; a run that is no such integer (a
# line of dashes) only costs the stdlib's slower read of the same value. (Found by mapping every
# digit and `-` to "0" and searching once: 10x faster than a regex over the body.)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789-", b"0000000000")
_TWENTY_DIGITS = b"0" * 20


def loads(body: bytes) -> Any:
    """JSON text to Python objects: orjson when installed, else the stdlib. What orjson would
    refuse (NaN, a lone surrogate) or change (integers beyond 64 bits) is decided by the
    stdlib, so the result never differs from `json.loads`, but for one thing: a string's lone
    surrogate (`"\\ud800"`, valid JSON, no character: no UTF-8 encoder, database or terminal
    takes it) is U+FFFD, as a decoder replaces bytes that are not UTF-8."""
    if _orjson_loads is not None:
        if _TWENTY_DIGITS in body.translate(_DIGITS_TO_ZERO):
            return _stdlib_loads(body)
        try:
            return _orjson_loads(body)
        except ValueError:
            pass
    return _stdlib_loads(body)


# What can give the stdlib's answer a lone surrogate in a UTF-8 body: a surrogate's escape,
# high or low (`\\uD800`-`\\uDFFF`; a pair becomes its character), or one encoded as if it were
# a character (`ED A0`-`ED BF`: CESU-8, Java's "modified UTF-8"; the stdlib decodes with
# `surrogatepass`). A body in UTF-16 or UTF-32 (which the stdlib detects) is mended whole.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
# What is left of them in a decoded string: lone ones only (json pairs the others).
_SURROGATE = re.compile("[\ud800-\udfff]")


def _stdlib_loads(body: bytes) -> Any:
    value = json.loads(body)
    if _SURROGATE_ESCAPE.search(body) is not None or json.detect_encoding(body) not in _UTF8:
        value = mend_surrogates(value)
    return value


_UTF8 = ("utf-8", "utf-8-sig")


def mend_surrogates(value: Any) -> Any:
    """`value` (decoded JSON) with every lone surrogate of its strings and keys as U+FFFD."""
    if isinstance(value, str):
        if value.isascii():
            return value
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [mend_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {mend_surrogates(k): mend_surrogates(v) for k, v in value.items()}
    return value


# ASCII digits only: str.isdigit() accepts "²", which int() refuses.
_INTEGER = re.compile(r"-?[0-9]+")


@frozen
class FilePart:
    """One file for a multipart/form-data upload."""

    field_name: str
    filename: str
    content: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    content_type: str = "application/octet-stream"


@frozen
class Request:
    """An HTTP request to make, described as data. Auth headers are added by the transport."""

    method: str
    url: str
    operation: str
    params: tuple[tuple[str, str], ...] = field(default=(), repr=masked_params)
    #: `repr` shows credentials (`Authorization`, `X-Api-Key`, ...) as `***`.
    headers: Mapping[str, str] = field(factory=dict, hash=False, repr=masked_headers)
    json: Any = field(default=None, hash=False)
    file: FilePart | None = None
    #: False for a request the server may act on (trigger, promote, upload): the transport then
    #: never re-sends it once it may have reached the server.
    idempotent: bool = True


@frozen
class Response:
    """An HTTP response as data. Parsers look headers up by lower-case name: give a mapping
    with lower-case keys, or a case-insensitive one (the transport passes aiohttp's)."""

    status: int
    body: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    headers: Mapping[str, str] = field(factory=dict, hash=False)
    operation: str = ""
    url: str = ""
    #: When the transport received it; lets a `Retry-After` date become seconds without a clock.
    received_at: datetime | None = None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")


@frozen
class Where:
    """Who is speaking: the vendor, the configured source name, and the operation."""

    vendor: str
    source: str
    operation: str


def where(vendor: str, source: str, resp: Response) -> Where:
    """The error context for a parsed response."""
    # Every parse asks for one and few ever fail, while the triples are few (vendors x
    # configured sources x operations): the frozen `Where`s are shared, a dict hit costing a
    # third of building one.
    key = (vendor, source, resp.operation)
    found = _WHERE.get(key)
    if found is None:
        if len(_WHERE) >= _WHERE_MAX:
            _WHERE.clear()
        found = _WHERE[key] = Where(*key)
    return found


_WHERE: dict[tuple[str, str, str], Where] = {}
_WHERE_MAX = 4096


def fail(
    cls: type[ScanhubError],
    at: Where,
    message: str,
    resp: Response | None = None,
    **extra: Any,
) -> NoReturn:
    """Raise `cls` naming vendor, source, operation, status and a body excerpt."""
    raise cls(
        message,
        vendor=at.vendor,
        source=at.source,
        operation=at.operation,
        status=resp.status if resp is not None else None,
        body=resp.text if resp is not None else None,
        **extra,
    )


# --- JSON -------------------------------------------------------------------------------------


def decode_json(resp: Response, at: Where) -> Any:
    """The body as JSON, or a `PayloadError` that says what came instead."""
    body = resp.body
    if not body.strip():
        fail(PayloadError, at, "empty body where JSON was expected", resp)
    try:
        return loads(body)
    except (ValueError, RecursionError):
        ctype = resp.headers.get("content-type", "")
        head = resp.body.lstrip()[:15].lower()
        if "html" in ctype or head.startswith((b"<!doctype", b"<html")):
            fail(
                PayloadError, at, "got an HTML page instead of JSON (a login page or proxy?)", resp
            )
        fail(PayloadError, at, "body is not valid JSON (truncated or garbled)", resp)


def as_object(value: Any, at: Where, what: str, resp: Response | None = None) -> dict[str, Any]:
    """`value` if it is a JSON object, else a `PayloadError` naming `what`."""
    if not isinstance(value, dict):
        fail(PayloadError, at, f"{what} is {_json_type(value)}, expected an object", resp)
    return value


def as_list(value: Any, at: Where, what: str, resp: Response | None = None) -> list[Any]:
    """`value` if it is a JSON array, else a `PayloadError`."""
    if not isinstance(value, list):
        fail(PayloadError, at, f"{what} is {_json_type(value)}, expected an array", resp)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def opt_str(obj: Mapping[str, Any], *keys: str) -> str | None:
    """The first of `keys` holding a string or a number, as a string; else None."""
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        kind = type(value)  # exact types: bool is not a number here
        if kind is str:
            return value  # type: ignore[no-any-return]
        if kind is int or kind is float:
            return str(value)
        if isinstance(value, str):  # str subclasses
            return str(value)
    return None


def req_str(obj: Mapping[str, Any], at: Where, *keys: str, resp: Response | None = None) -> str:
    """Like `opt_str` for an identity field: missing is a `PayloadError`."""
    value = opt_str(obj, *keys)
    if value is None or value == "":
        fail(PayloadError, at, f"missing identity field {' / '.join(keys)!s}", resp)
    return value


def opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    """An integer field (ints, integral floats and digit strings accepted), else None."""
    value = obj.get(key)
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


# --- Time -------------------------------------------------------------------------------------

_NO_COLON_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from ISO-8601 (with `Z`, `+00:00` or IQ's `+0000`) or from
    epoch milliseconds (int or digit string). Anything else is None: timestamps are optional."""
    # The shapes vendors send, decided by exact type before any other test; everything else
    # (and every string `fromisoformat` refuses) goes to `_parse_time_general`, whose answer
    # this always equals (a property test in tests/test_sansio_common.py holds them equal).
    kind = type(value)
    if kind is str:
        try:
            # Python 3.11 reads every documented form itself (Z, +00:00, IQ's +0000), fast.
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _parse_time_general(value)
        tz = parsed.tzinfo
        if tz is UTC:  # `Z` and `+00:00` give the `UTC` singleton itself
            return parsed
        if tz is None:
            return parsed.replace(tzinfo=UTC)
        return _as_utc(parsed)
    if kind is int:
        try:  # `_from_millis`, inline
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return _parse_time_general(value)


def _parse_time_general(value: Any) -> datetime | None:
    """`parse_time` for every input, with no fast path."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_millis(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed if parsed.tzinfo is UTC else _as_utc(parsed)
    text = value.strip()
    if _INTEGER.fullmatch(text):
        return _from_millis(int(text))
    text = _NO_COLON_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return _as_utc(parsed)


def _as_utc(parsed: datetime) -> datetime | None:
    # 0001-01-01T00:00+01:00 is before datetime.min in UTC: a time that cannot be, so None.
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def _from_millis(millis: float) -> datetime | None:
    try:
        # `tz` given by position: the keyword costs fromtimestamp 0.15 µs more.
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


#: RFC 9110 delay-seconds: ASCII digits only (no sign, fraction, exponent, `_` or other
#: scripts' digits).
_DELAY_SECONDS = re.compile(r"[0-9]+", re.ASCII)
#: RFC 9110 HTTP-date: IMF-fixdate, or the obsolete RFC 850 and asctime forms.
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT"
    r"|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d{2}-[A-Z][a-z]{2}-\d{2} "
    r"\d{2}:\d{2}:\d{2} GMT"
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}",
    re.ASCII,
)


def parse_retry_after(value: str | None, now: datetime | None) -> float | None:
    """Seconds to wait from a `Retry-After` header in one of RFC 9110's forms: delay-seconds
    (ASCII digits) or an HTTP-date measured from `now`. Anything else (`1e308`, `1_0`, `1.5`,
    other scripts' digits, a date with no `now`) is None, so the caller's own backoff applies;
    capping a long but valid wait is the caller's business."""
    if not value:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(min(int(text[:12]), 10**11))
    if not _HTTP_DATE.fullmatch(text):
        return None
    when = parse_http_date(text)
    if when is None or now is None:
        return None
    return max(0.0, (when - now).total_seconds())


def retry_after_of(resp: Response) -> float | None:
    """The wait a response asks for, in seconds, or None when it names none."""
    # A Retry-After date is measured against the server's own Date header when it sent one,
    # which cancels any clock skew between us and the vendor.
    now = parse_http_date(resp.headers.get("date")) or resp.received_at
    return parse_retry_after(resp.headers.get("retry-after"), now)


def parse_http_date(value: str | None) -> datetime | None:
    """An RFC 7231 date header as an aware datetime, or None."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --- Mapping tables ---------------------------------------------------------------------------

_warned: set[tuple[str, str]] = set()


def map_value(table: Mapping[str, Lifecycle], raw: str | None, vendor: str) -> Lifecycle:
    """Look `raw` up in a vendor's status table (surrounding white space ignored; case as the
    caller gives it); unknown values become UNKNOWN (warned once)."""
    if raw is None:
        return Lifecycle.UNKNOWN
    found = table.get(raw)
    if found is None:
        found = table.get(raw.strip())
    if found is None:
        _warn_once(vendor, "status", raw, Lifecycle.UNKNOWN.value)
        return Lifecycle.UNKNOWN
    return found


def map_verdict(table: Mapping[str, Verdict], raw: str | None, vendor: str) -> Verdict:
    """Look `raw` up in a vendor's decision table (surrounding white space ignored); unknown
    values become NONE (warned once)."""
    if raw is None:
        return Verdict.NONE
    found = table.get(raw)
    if found is None:
        found = table.get(raw.strip())
    if found is None:
        _warn_once(vendor, "decision", raw, Verdict.NONE.value)
        return Verdict.NONE
    return found


def _warn_once(vendor: str, what: str, raw: str, mapped: str) -> None:
    if (vendor, raw) not in _warned and len(_warned) < 1000:
        _warned.add((vendor, raw))
        log.warning("scanhub: unknown %s %s value %r mapped to %s", vendor, what, raw[:100], mapped)


# --- URLs and errors ----------------------------------------------------------------------------

#: Query parameter names whose values are credentials wherever they appear.
CREDENTIAL_PARAMS = re.compile(
    r"(?i)^(api[_-]?key|apikey|access[_-]?token|token|password|passwd|passcode|secret|"
    r"client[_-]?secret|auth|authorization|signature|sig|key)$"
)


#: RFC 3986 unreserved characters: the ones `quote(..., safe="")` leaves as they are.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+").fullmatch
_DOT_SEGMENTS = frozenset((".", ".."))


def segment(
    value: object,
    *,
    vendor: str,
    operation: str,
    what: str = "id",
    error: type[ScanhubError] = BadRequestError,
) -> str:
    """`value` as one URL path segment, percent-encoded so the server receives the literal id
    (`/`, `?`, `#`, `%` included). Empty, `.` and `..` are refused (`error`, a
    `BadRequestError` by default): they cannot be sent as a literal segment, since clients and
    servers collapse dot segments into another endpoint."""
    # An id of unreserved characters only (hex, a UUID, a key) is its own encoding: what
    # `quote` would return, without its byte round trip.
    if (
        type(value) is str
        and value.isascii()
        and (value.isalnum() or (_UNRESERVED(value) is not None and value not in _DOT_SEGMENTS))
    ):
        return value
    return _segment_general(value, vendor, operation, what, error)


def _segment_general(
    value: object, vendor: str, operation: str, what: str, error: type[ScanhubError]
) -> str:
    """`segment` for every input, with no fast path."""
    text = str(value)
    if text in ("", ".", "..") or not text.strip():
        raise error(
            f"{what} {text!r} cannot be sent as a path segment (empty, '.' or '..')",
            vendor=vendor,
            operation=operation,
        )
    return quote(text, safe="")


def clean_url(url: str) -> str:
    """`url` without credentials: no user-info, no query parameter named like a credential
    (`apiKey`, `token`, ...). Stored links and logged URLs go through it."""
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].rsplit("@", 1)[-1]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not CREDENTIAL_PARAMS.match(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def join_url(base_url: str, path: str) -> str:
    """`path` made absolute against `base_url`, keeping any prefix of the base (`/platform`,
    `/threadfix`). An absolute `path` is returned unchanged."""
    if "://" in path:
        return path
    if "./" not in path and "?" not in base_url and "#" not in base_url:
        # The common case, by plain concatenation: urljoin costs ~9 µs a call.
        return base_url.rstrip("/") + "/" + path.lstrip("/")
    return urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))


def raise_for_status(resp: Response, at: Where, message: str | None) -> None:
    """Map a non-2xx HTTP status to the error tree; `message` is the vendor's error text."""
    status = resp.status
    if 200 <= status < 300:
        return
    text = message or f"HTTP {status}"
    if status in (401, 403):
        fail(AuthenticationError, at, text, resp)
    if status == 404:
        fail(NotFoundError, at, text, resp)
    if status == 409:
        fail(ConflictError, at, text, resp)
    if status == 429:
        wait = retry_after_of(resp)
        fail(RateLimitedError, at, text, resp, retry_after=wait)
    if status >= 500:
        fail(ServerError, at, text, resp)
    if 400 <= status < 500:
        fail(BadRequestError, at, text, resp)
    if 300 <= status < 400:
        location = resp.headers.get("location")
        where_to = f" to {clean_url(location)!r}" if location else " (no Location given)"
        fail(
            PayloadError,
            at,
            f"the server redirected{where_to}; scanhub does not follow redirects (an API moved, "
            "or a login page is in the way): check base_url",
            resp,
        )
    fail(PayloadError, at, f"unexpected HTTP status {status}", resp)
