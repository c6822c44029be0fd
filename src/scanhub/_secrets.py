"""Secrets and redaction: one wrapper type, one scrubber."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

REDACTED = "***"

#: Query parameters whose values are secrets wherever they appear (ThreadFix's `?apiKey=`).
_SECRET_NAMES = r"api[_-]?key|access[_-]?token|token|password|passcode|secret"
_SECRET_PARAMS = re.compile(rf"(?i)\b({_SECRET_NAMES})=([^&#\s'\"]+)")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(\w+\s+)?[^\s'\",}]+")


#: Request headers whose values are credentials, whatever the scheme.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "x-jfrog-art-api"}
)
_SECRET_PARAM_NAME = re.compile(rf"(?i)^({_SECRET_NAMES})$")


def masked_headers(headers: object) -> str:
    """`repr` of a request's headers with every credential's value `***`."""
    if not isinstance(headers, Mapping):
        return repr(headers)
    return repr(
        {k: REDACTED if str(k).lower() in CREDENTIAL_HEADERS else v for k, v in headers.items()}
    )


def masked_params(params: object) -> str:
    """`repr` of a request's query parameters with every secret one's value `***`."""
    if not isinstance(params, tuple | list):
        return repr(params)
    return repr(
        tuple(
            (p[0], REDACTED)
            if isinstance(p, tuple) and len(p) == 2 and _SECRET_PARAM_NAME.match(str(p[0]))
            else p
            for p in params
        )
    )


class Secret:
    """A credential. `str()`, `repr()` and f-strings show `***`; `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        """The secret value, for building an auth header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reveal() == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def _forms(value: str) -> set[str]:
    """How a secret comes back in a vendor's or a receiver's text: as sent, URL-encoded (with
    and without its slashes), as a JSON string carries it (ASCII or not, with `/` as `\\/` as
    PHP's json_encode and others write it), and HTML-escaped (with `/` as an entity too, as
    OWASP's encoders write it)."""
    as_json = json.dumps(value)[1:-1]
    as_html = html.escape(value)
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        as_json,
        as_json.replace("/", "\\/"),
        json.dumps(value, ensure_ascii=False)[1:-1].replace("/", "\\/"),
        json.dumps(value, ensure_ascii=False)[1:-1],
        as_html,
        as_html.replace("/", "&#x2F;"),
        as_html.replace("/", "&#x2f;"),
        as_html.replace("/", "&#47;"),
    }


class Redactor:
    """Removes known secret values, and anything shaped like a credential, from text."""

    def __init__(self, secrets: Iterable[str | Secret] = ()) -> None:
        needles: set[str] = set()
        for secret in secrets:
            value = secret.reveal() if isinstance(secret, Secret) else secret
            if len(value) < 4:  # too short to scrub without mangling ordinary text
                continue
            needles.update(_forms(value))
        self._needles = sorted(needles, key=len, reverse=True)
        self._byte_needles = [n.encode() for n in self._needles]

    def add_basic(self, username: str, password: str) -> None:
        """Also scrub the base64 form of a Basic credential pair."""
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._needles = sorted({*self._needles, token}, key=len, reverse=True)
        self._byte_needles = [n.encode() for n in self._needles]

    def scrub_bytes(self, body: bytes) -> bytes:
        """`body` with every known secret value replaced by `***` (a vendor that echoes a
        credential back never gets it into a parsed model). Costs one substring search per
        secret form when there is nothing to replace."""
        for needle in self._byte_needles:
            if needle in body:
                body = body.replace(needle, REDACTED.encode())
        return body

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)
