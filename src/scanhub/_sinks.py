"""Sinks, the pure part: which transitions a sink wants (its filter), the exact bytes and headers
of a delivery (a CloudEvent, structured or binary, or a Slack message, signed as Standard
Webhooks 1.0 says), what an answer means, and when to try again.

Nothing here does I/O or reads a clock: the deliverer (`scanhub.engine.sinks`) reads the log,
sends, and keeps each sink's state in the store.

Standard Webhooks (`spec/standard-webhooks.md` of standard-webhooks/standard-webhooks):

- headers `webhook-id` (the event's id, `event_id`: the log's identity and the transition
  id, the same on every attempt and unique across stores, so a receiver deduplicates),
  `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature` (`v1,<base64
  HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret, space-separated, so a receiver
  holding either key verifies during a rotation);
- secrets are `whsec_<base64>`; the signature is over the exact bytes sent;
- only 2xx is success; redirects are not followed (an error); 410 Gone disables the sink;
  429, 502 and 504 throttle it and `Retry-After` is honoured (capped); other answers and
  network errors are retried on the schedule (after the immediate first attempt, waits of
  5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each ±20 %) until it ends or the
  delivery is older than its maximum age: then it is dead-lettered, never dropped silently.
  Other 4xx (and 3xx) answers are tried a few times only (`max_client_errors`): a receiver
  that refuses a body will refuse it again.

CloudEvents HTTP binding: structured mode is the event as `application/cloudevents+json`
(exactly `to_cloudevent(change, log)`, the bytes every reader of that id gets); binary mode sends
its `data` as the body and the attributes as `ce-` headers.

Filters follow the dialects of the CloudEvents Subscriptions API: `exact`, `prefix`, `suffix`
(a table of attribute = value, all of which must match), `all`, `any` (arrays of filters) and
`not` (one filter); a sink's `filter` is one filter or an array of them, all of which must
match. Attributes: `vendor`, `source`, `kind`, `lifecycle` (the one reached),
`previous_lifecycle`, `verdict`, `previous_verdict`, `application` (its id or name),
`subject` (the item's key), `type` (the CloudEvent type).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import random
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from attrs import field, frozen

from ._changes import Change
from ._convert import dumps
from ._exports import EVENT_TYPES, cloudevent_json, to_cloudevent
from ._model import Lifecycle, Verdict
from ._secrets import Secret

#: Seconds between attempts after the first (which is immediate): 5 s, 5 min, 30 min, 2 h,
#: 5 h, 10 h, 14 h, 20 h, 24 h (Standard Webhooks' schedule).
RETRY_SCHEDULE: tuple[float, ...] = (
    5.0,
    300.0,
    1800.0,
    7200.0,
    18000.0,
    36000.0,
    50400.0,
    72000.0,
    86400.0,
)
#: How far each delay of the schedule is spread (±20 %), so retries never arrive in waves.
JITTER = 0.2
#: After this many seconds a delivery is dead, whatever the schedule says (four days: the whole
#: schedule, about 75.6 hours, fits).
MAX_AGE = 4 * 86400.0
#: Attempts of a delivery the receiver refused (3xx, a 4xx other than 410 and 429).
MAX_CLIENT_ERRORS = 3
#: The longest `Retry-After` honoured, in seconds.
MAX_RETRY_AFTER = 3600.0
#: Seconds a delivery may take (Standard Webhooks: 15-30).
TIMEOUT = 15.0
#: The largest body a delivery sends, in bytes.
MAX_BODY = 256 * 1024
#: The most of an answer's body read (for errors and `scanhub sinks test`).
MAX_ANSWER = 64 * 1024
#: The CloudEvent type of `scanhub sinks test`.
TEST_EVENT_TYPE = "io.scanhub.sink.test"

SinkKind = Literal["webhook", "slack"]
SinkMode = Literal["structured", "binary"]

# --- filters --------------------------------------------------------------------------------

#: Attributes a filter may name, and the values an `exact` match may take (None: any string).
FILTER_ATTRIBUTES: Mapping[str, tuple[str, ...] | None] = {
    "vendor": None,
    "source": None,
    "kind": tuple(EVENT_TYPES),
    "lifecycle": tuple(lc.value for lc in Lifecycle),
    "previous_lifecycle": tuple(lc.value for lc in Lifecycle),
    "verdict": tuple(v.value for v in Verdict),
    "previous_verdict": tuple(v.value for v in Verdict),
    "application": None,
    "subject": None,
    "type": tuple(EVENT_TYPES.values()),
}
_MATCHES = ("exact", "prefix", "suffix")
_DIALECTS = (*_MATCHES, "all", "any", "not")


class FilterError(ValueError):
    """A filter that cannot be used; `problems` says every reason as (place, message), the
    place a key path within the filter (`[1].any[0].exact.lifecycle`)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))


def filter_values(change: Change) -> dict[str, tuple[str, ...]]:
    """What a filter matches of a change: each attribute's values (an application has two:
    its id and its name)."""
    item, before = change.after, change.before
    app = tuple(a for a in (item.application_id, item.application_name) if a)
    return {
        "vendor": (str(item.vendor),),
        "source": (item.source,),
        "kind": (item.kind,),
        "lifecycle": (item.lifecycle.value,),
        "previous_lifecycle": (before.lifecycle.value,) if before is not None else (),
        "verdict": (item.verdict.value,),
        "previous_verdict": (before.verdict.value,) if before is not None else (),
        "application": app,
        "subject": (item.key,),
        "type": (EVENT_TYPES[item.kind],),
    }


def _check(expr: Any, where: str, problems: list[tuple[str, str]]) -> None:
    if not isinstance(expr, Mapping) or len(expr) != 1:
        problems.append(
            (where, f"expected a table with one of {', '.join(_DIALECTS)}, got {_shown(expr)}")
        )
        return
    ((dialect, value),) = expr.items()
    here = f"{where}.{dialect}"
    if dialect in _MATCHES:
        if not isinstance(value, Mapping) or not value:
            problems.append((here, "expected a table of attribute = value"))
            return
        for attr, wanted in value.items():
            if attr not in FILTER_ATTRIBUTES:
                known = ", ".join(FILTER_ATTRIBUTES)
                problems.append((f"{here}.{attr}", f"unknown attribute (expected one of {known})"))
                continue
            if not isinstance(wanted, str) or not wanted:
                problems.append(
                    (f"{here}.{attr}", f"expected a non-empty string, got {_shown(wanted)}")
                )
                continue
            allowed = FILTER_ATTRIBUTES[attr]
            if dialect == "exact" and allowed is not None and wanted not in allowed:
                problems.append(
                    (f"{here}.{attr}", f"expected one of {', '.join(allowed)}, got {wanted!r}")
                )
    elif dialect in ("all", "any"):
        if not isinstance(value, list) or not value:
            problems.append((here, "expected a non-empty array of filters"))
            return
        for i, sub in enumerate(value):
            _check(sub, f"{here}[{i}]", problems)
    elif dialect == "not":
        _check(value, here, problems)
    else:
        problems.append(
            (where, f"unknown filter {dialect!r} (expected one of {', '.join(_DIALECTS)})")
        )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _matches(expr: Mapping[str, Any], values: Mapping[str, tuple[str, ...]]) -> bool:
    ((dialect, value),) = expr.items()
    if dialect == "exact":
        return all(wanted in values[attr] for attr, wanted in value.items())
    if dialect == "prefix":
        return all(any(v.startswith(w) for v in values[a]) for a, w in value.items())
    if dialect == "suffix":
        return all(any(v.endswith(w) for v in values[a]) for a, w in value.items())
    if dialect == "all":
        return all(_matches(e, values) for e in value)
    if dialect == "any":
        return any(_matches(e, values) for e in value)
    return not _matches(value, values)  # "not"


@frozen
class SinkFilter:
    """Which transitions a sink delivers (see the module docstring); the empty filter takes
    every one. `spec` is the filter as written (a tuple of expressions, all of which must
    match)."""

    spec: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, data: Any) -> SinkFilter:
        """A filter from its configuration form (one filter, or an array of them); raises
        `FilterError` naming every problem."""
        exprs = data if isinstance(data, list) else [data]
        problems: list[tuple[str, str]] = []
        for i, expr in enumerate(exprs):
            _check(expr, f"[{i}]" if isinstance(data, list) else "", problems)
        if problems:
            raise FilterError(problems)
        return cls(tuple(exprs))

    def matches(self, change: Change) -> bool:
        """True when the sink wants this transition."""
        if not self.spec:
            return True
        values = filter_values(change)
        return all(_matches(e, values) for e in self.spec)


# --- sinks ----------------------------------------------------------------------------------


@frozen
class Sink:
    """A configured sink, ready to deliver: where (`url`, a `Secret` since a Slack URL is a
    credential; `shown` is what may be shown of it), what (`kind`, `mode`, `filter`), signed
    with which keys (`secrets`: `whsec_...`, the first the current one), and the retry
    policy."""

    name: str
    url: Secret
    shown: str
    kind: SinkKind = "webhook"
    mode: SinkMode = "structured"
    secrets: tuple[Secret, ...] = ()
    filter: SinkFilter = field(factory=SinkFilter)
    timeout: float = TIMEOUT
    allow_private: bool = False
    schedule: tuple[float, ...] = RETRY_SCHEDULE
    max_age: float = MAX_AGE
    max_client_errors: int = MAX_CLIENT_ERRORS
    max_retry_after: float = MAX_RETRY_AFTER
    max_body: int = MAX_BODY

    @classmethod
    def webhook(
        cls, name: str, url: str, secret: str | Secret | Sequence[str | Secret] = (), **kw: Any
    ) -> Sink:
        """A sink from plain values (for code and tests): `secret` one `whsec_` key or
        several."""
        given = [secret] if isinstance(secret, str | Secret) else list(secret)
        keys = tuple(Secret(s) for s in given)
        for key in keys:
            secret_key(key)  # refuse a malformed key now, not at the first delivery
        return cls(name, Secret(url), shown_url(url), secrets=keys, **kw)


def shown_url(url: str) -> str:
    """What may be shown of a sink's URL: its scheme, host and port (a path or query may hold
    a credential, as Slack's do)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


# --- signing ----------------------------------------------------------------------------------


class SignatureError(ValueError):
    """A delivery's signature headers are missing, malformed, stale, or match no key."""


def secret_key(secret: str | Secret) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; `ValueError` (never showing it) if it is not
    one."""
    text = secret.reveal() if isinstance(secret, Secret) else secret
    if not text.startswith("whsec_"):
        raise ValueError("expected a secret of the form whsec_<base64>")
    try:
        key = base64.b64decode(text[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected a secret of the form whsec_<base64> (bad base64)") from None
    if len(key) < 16:
        raise ValueError("expected a secret of at least 16 bytes (whsec_ + 24 base64 characters)")
    return key


def new_secret() -> str:
    """A fresh `whsec_` secret (32 random bytes)."""
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secrets: Sequence[str | Secret], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,<signature>` for each secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def verify(
    secrets: Sequence[str | Secret],
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    tolerance: float = 300.0,
) -> str:
    """Check a delivery as a receiver would (the Standard Webhooks rules): returns its
    `webhook-id`, or raises `SignatureError`. A receiver with several keys (a rotation)
    accepts a signature by any of them."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = (
        lower.get("webhook-id"),
        lower.get("webhook-timestamp"),
        lower.get("webhook-signature"),
    )
    if not (msg_id and stamp and given):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    # ASCII digits ("²" is a digit to isdigit, not to int), and not thousands of them (int()
    # refuses over 4300 with a ValueError): Unix seconds have 10 digits until 2286.
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise SignatureError("webhook-timestamp is not Unix seconds")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureError("webhook-timestamp is too old or too new")
    wanted = {s.partition(",")[2] for s in sign(secrets, msg_id, int(stamp), body).split(" ")}
    for offered in given.split(" "):
        version, _, value = offered.partition(",")
        if version == "v1" and any(hmac.compare_digest(value, w) for w in wanted):
            return msg_id
    raise SignatureError("no signature matches")


# --- what is sent -----------------------------------------------------------------------------


@frozen
class Delivery:
    """One attempt's request: the exact body and its headers (the signature is over that
    body)."""

    body: bytes
    headers: dict[str, str]


class BodyTooLarge(ValueError):
    """A delivery's body is over the sink's `max_body`."""


def event_bytes(event: Mapping[str, Any]) -> bytes:
    """A CloudEvent as compact JSON, UTF-8 (as `cloudevent_json` writes a transition's)."""
    return dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def probe_event(sink: str, now: datetime, msg_id: str) -> dict[str, Any]:
    """The CloudEvent `scanhub sinks test` sends."""
    return {
        "specversion": "1.0",
        "id": msg_id,
        "source": f"/scanhub/sinks/{sink}",
        "type": TEST_EVENT_TYPE,
        "subject": sink,
        "time": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"message": f"a test delivery from scanhub's sink {sink!r}"},
    }


def build(
    sink: Sink,
    event: Mapping[str, Any],
    timestamp: int,
    version: str,
    encoded: bytes | None = None,
) -> Delivery:
    """The request for one attempt at delivering `event` (a CloudEvent) to `sink`, at Unix
    time `timestamp`; `encoded` is the event as JSON when the caller has it (a transition's:
    `cloudevent_json`, the one encoder of every reader). The event's id is the `webhook-id`.
    Raises `BodyTooLarge` past the sink's cap."""
    headers = {"user-agent": f"scanhub/{version}"}
    if sink.kind == "slack":
        body = dumps(slack_message(event), separators=(",", ":"), ensure_ascii=False).encode()
        headers["content-type"] = "application/json"
    elif sink.mode == "binary":
        body = dumps(event.get("data"), separators=(",", ":"), ensure_ascii=False).encode()
        headers["content-type"] = str(event.get("datacontenttype", "application/json"))
        for attr, value in event.items():
            if attr not in ("data", "datacontenttype") and value is not None:
                headers[f"ce-{attr}"] = str(value)
    else:
        body = encoded if encoded is not None else event_bytes(event)
        headers["content-type"] = "application/cloudevents+json; charset=utf-8"
    if len(body) > sink.max_body:
        raise BodyTooLarge(
            f"the body is {len(body)} bytes, over the sink's max_body {sink.max_body}"
        )
    msg_id = str(event["id"])
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    if sink.secrets:
        headers["webhook-signature"] = sign(sink.secrets, msg_id, timestamp, body)
    return Delivery(body, headers)


def build_change(
    sink: Sink, change: Change, timestamp: int, version: str, log: str | None = None
) -> Delivery:
    """`build` for a transition of the log `log`: its CloudEvent is `to_cloudevent(change,
    log)`, written by `cloudevent_json` (the bytes every reader of that id gets)."""
    encoded = cloudevent_json(change, log).encode()
    return build(sink, to_cloudevent(change, log), timestamp, version, encoded)


_SLACK_TEXT = 2900  # Slack caps a section's text at 3000 characters
_EMOJI = {
    "failed": ":x:",
    "cancelled": ":heavy_minus_sign:",
    "expired": ":hourglass:",
    "running": ":arrows_counterclockwise:",
    "queued": ":inbox_tray:",
    "succeeded": ":white_check_mark:",
}


def slack_escape(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally (`&`, `<`, `>` escaped: vendor text can never
    become a link or a mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str) -> str:
    return text if len(text) <= _SLACK_TEXT else text[: _SLACK_TEXT - 1] + "…"


def _slack_text(text: str) -> str:
    """Vendor text escaped (`slack_escape`), then capped to Slack's length (escaping can make
    it longer: capped first, a text of `&`s went past it and the delivery was refused), never
    cutting an entity in two."""
    out = slack_escape(text)
    if len(out) <= _SLACK_TEXT:
        return out
    cut = out[: _SLACK_TEXT - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (text and blocks) for a CloudEvent."""
    data = event.get("data") or {}
    if event.get("type") == TEST_EVENT_TYPE:
        text = slack_escape(f"scanhub: {data.get('message', 'test')}")
        return {"text": text, "blocks": [_section(text)]}
    lifecycle = str(data.get("lifecycle", "unknown"))
    verdict = str(data.get("verdict", "none"))
    emoji = _EMOJI.get(lifecycle, ":grey_question:")
    if verdict in ("fail", "error"):
        emoji = ":no_entry:"
    was = data.get("previous_lifecycle") or "new"
    what = f"{data.get('kind', 'item')} {data.get('application_id', '')}/{data.get('id', '')}"
    where = f"{data.get('vendor', '')}/{data.get('source', '')}"
    text = f"{what} ({where}): {was} → {lifecycle}, verdict {verdict}"
    blocks = [_section(f"{emoji} *{_slack_text(text)}*")]
    details = []
    if data.get("vendor_status"):
        details.append(f"vendor status: {data['vendor_status']}")
    if data.get("message"):
        details.append(str(data["message"]))
    if details:
        shown_details = {"type": "mrkdwn", "text": _slack_text(" — ".join(details))}
        blocks.append({"type": "context", "elements": [shown_details]})
    links = data.get("links") or {}
    shown = [
        f"<{url}|{slack_escape(name)}>"
        for name, url in links.items()
        if isinstance(url, str)
        and url.startswith(("https://", "http://"))
        and "|" not in url
        and ">" not in url
        and " " not in url
    ]
    if shown:
        blocks.append(_section(_cap(" · ".join(shown))))
    # The text is Slack's notification: read for mentions and links as the blocks are.
    return {"text": f"{emoji} {_slack_text(text)}", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --- what an answer means ---------------------------------------------------------------------


class Answer(StrEnum):
    """What an attempt's answer (or its absence) means for the sink."""

    #: 2xx.
    DELIVERED = "delivered"
    #: 429, 502, 504: the receiver asks to slow down (`Retry-After` honoured).
    THROTTLED = "throttled"
    #: 410: the receiver is gone for good; the sink is disabled until a replay.
    GONE = "gone"
    #: 3xx (redirects are not followed) and 4xx other than 410 and 429: refused, tried a few
    #: times only.
    REFUSED = "refused"
    #: 5xx, no answer, a timeout, a network error: tried again on the schedule.
    FAILED = "failed"


def classify(status: int | None) -> Answer:
    """What an attempt's status means (None: no answer)."""
    if status is None:
        return Answer.FAILED
    if 200 <= status < 300:
        return Answer.DELIVERED
    if status in (429, 502, 504):
        return Answer.THROTTLED
    if status == 410:
        return Answer.GONE
    if 300 <= status < 500:
        return Answer.REFUSED
    return Answer.FAILED


@frozen
class Next:
    """What follows a failed attempt: wait `delay` seconds and try again, or give the
    delivery up (`dead`, with the reason), or disable the sink (`disable`)."""

    action: Literal["retry", "dead", "disable"]
    delay: float = 0.0
    reason: str = ""


def after_failure(
    sink: Sink,
    answer: Answer,
    attempts: int,
    age: float,
    asked: float | None,
    rng: random.Random,
) -> Next:
    """What to do after attempt number `attempts` (1 for the first) of a delivery first tried
    `age` seconds ago failed with `answer`; `asked` is the answer's `Retry-After`."""
    if answer is Answer.GONE:
        return Next("disable", reason="the receiver answered 410 Gone")
    if answer is Answer.REFUSED and attempts >= sink.max_client_errors:
        return Next("dead", reason=f"refused {attempts} times")
    if attempts > len(sink.schedule):
        return Next("dead", reason=f"the retry schedule ran out after {attempts} attempts")
    delay = sink.schedule[attempts - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if asked is not None and math.isfinite(asked):
        delay = min(max(asked, 0.0), sink.max_retry_after)
    if age + delay > sink.max_age:
        return Next("dead", reason=f"older than the sink's max_age ({sink.max_age:g} s)")
    return Next("retry", delay)


# --- where a sink may send ----------------------------------------------------------------------


#: NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the operator's prefix.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def forbidden_address(address: str) -> str | None:
    """Why a sink must not send to this IP address without `allow_private`, or None when it
    may. It may only when the address is globally reachable: not loopback, link-local,
    site-local, private, multicast, unspecified or reserved, nor anything else `ipaddress`
    does not call global (such as 100.64.0.0/10, shared by carrier-grade NATs). An IPv6
    address that carries an IPv4 one (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`,
    6to4 `2002::/16`) is judged by the IPv4 address it reaches; Teredo (`2001::/32`) and
    local-use NAT64 (`64:ff9b:1::/48`) are refused whole. What is not an IP address (a name,
    a typo) is refused too, never taken for a public one: this judges the addresses a name
    resolved to, `forbidden_host` a URL's host."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0]
        )
    except ValueError:
        return f"{address!r} is not an IP address"
    carrier = None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return f"{ip} is a Teredo address (a tunnel to {ip.teredo[1]})"
        if ip in _NAT64_LOCAL:
            return f"{ip} is a local-use NAT64 address"
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        carried = ip.ipv4_mapped or ip.sixtofour or nat64
        if carried is not None:
            carrier, ip = ip, carried
    why = _not_global(ip)
    if why is not None and carrier is not None:
        why += f" (reached through {carrier})"
    return why


def _not_global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    for name, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("site-local", site_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is a {name} address"
    if not ip.is_global:
        return f"{ip} is not a globally reachable address"
    return None


def forbidden_host(host: str) -> str | None:
    """`forbidden_address` for a URL's host when it is an address: an IP literal, or a
    numeric host in a spelling `inet_aton` (so getaddrinfo) reads as IPv4 (`127.1`,
    `2130706433`, `0x7f.1` are 127.0.0.1); `localhost` and its subdomains are refused, and a
    URL with no host. Any other name gives None: it is judged once resolved (the engine's
    `GuardedResolver` drops the addresses `forbidden_address` refuses)."""
    if not host:
        return "the URL names no host"
    lowered = host.lower().removesuffix(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return f"{host} is a loopback name"
    literal = host.strip("[]")
    if ":" in literal:
        return forbidden_address(literal)
    try:
        packed = socket.inet_aton(literal)
    except OSError:
        # A host of digits and dots is connected to without being resolved (aiohttp): one
        # that is no address is refused (forbidden_address fails closed).
        return forbidden_address(literal) if literal.replace(".", "").isdigit() else None
    ip = str(ipaddress.IPv4Address(packed))
    why = forbidden_address(ip)
    return why if why is None or ip == literal else f"{literal} ({why})"


__all__ = [
    "FILTER_ATTRIBUTES",
    "MAX_AGE",
    "RETRY_SCHEDULE",
    "TEST_EVENT_TYPE",
    "Answer",
    "BodyTooLarge",
    "Delivery",
    "FilterError",
    "Next",
    "SignatureError",
    "Sink",
    "SinkFilter",
    "after_failure",
    "build",
    "build_change",
    "classify",
    "event_bytes",
    "filter_values",
    "forbidden_address",
    "forbidden_host",
    "new_secret",
    "probe_event",
    "secret_key",
    "shown_url",
    "sign",
    "slack_escape",
    "slack_message",
    "verify",
]
