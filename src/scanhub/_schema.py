"""Checked value types for configuration, one strict cattrs converter, and JSON Schema.

A configuration class is a plain attrs class whose fields use the types below (`Seconds`,
`Text`, `Id`, `HttpUrl`, `EnvVar`, `Count`, `Literal[...]`, `bool`, nested classes, lists).
`structure(cls, data)` checks every value and returns the instance or raises `SchemaErrors`
holding *every* problem as (key path, message); `json_schema(cls)` describes the same rules
for editors. Command-line options use the same checkers (`check`), so a value means the same
wherever it is given.

Strict on purpose: TOML has real booleans and numbers, so `"no"` is not false, `2` is not the
string "2", and `nan` or a negative number is not a duration.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal, NewType, TypeVar, get_args, get_origin
from urllib.parse import SplitResult, parse_qsl, urlsplit

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)

from ._ratelimit import RateLimit
from ._sansio import CREDENTIAL_PARAMS
from ._sinks import FILTER_ATTRIBUTES, FilterError, SinkFilter

T = TypeVar("T")

#: A duration or interval in seconds: a finite number greater than 0.
Seconds = NewType("Seconds", float)
#: A number of days: a finite number greater than 0.
Days = NewType("Days", float)
#: A whole number of at least 1.
Count = NewType("Count", int)
#: A non-empty string (not only white space).
Text = NewType("Text", str)
#: An identifier: a non-empty string or a whole number >= 0 (kept as its decimal text).
Id = NewType("Id", str)
#: An absolute http:// or https:// URL with a host.
HttpUrl = NewType("HttpUrl", str)
#: A vendor API's root URL: an `HttpUrl` with no credential query parameter either (`?token=`,
#: `?apiKey=`, ...), which a client refuses.
ApiUrl = NewType("ApiUrl", str)
#: The name of an environment variable (letters, digits, `_`, not starting with a digit).
EnvVar = NewType("EnvVar", str)
#: A client-side rate limit: "iq-cloud" or a table `{ max_requests = N, period = SECONDS }`.
RateLimitSetting = NewType("RateLimitSetting", RateLimit)
#: One environment variable name, or an array of them (a secret and the ones rotated out).
EnvVars = NewType("EnvVars", tuple[str, ...])
#: A sink's filter (see `scanhub._sinks`): one filter expression or an array of them.
SinkFilterSetting = NewType("SinkFilterSetting", SinkFilter)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Problem(ValueError):
    """One bad value; the message says what was expected and what came."""


class SchemaErrors(Exception):
    """Every problem found while structuring, as (key path, message) pairs in file order."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_seconds(value: Any) -> float:
    """A finite number of seconds greater than 0."""
    return _positive(value, "seconds")


def check_days(value: Any) -> float:
    """A finite number of days greater than 0."""
    return _positive(value, "days")


def _positive(value: Any, unit: str) -> float:
    n = _number(value)
    if n is None or not math.isfinite(n) or n <= 0:
        raise Problem(f"expected a positive, finite number of {unit}, got {_got(value)}")
    return n


def check_count(value: Any) -> int:
    """A whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Problem(f"expected a whole number of at least 1, got {_got(value)}")
    return value


def check_text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise Problem(f"expected a non-empty string, got {_got(value)}")
    return value


def check_id(value: Any) -> str:
    """A non-empty string or a whole number >= 0, as text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    raise Problem(f"expected a non-empty string or a whole number, got {_got(value)}")


def _shown_url(value: str) -> str:
    """A URL as a message may quote it: anything up to its last `@` (user info, however it
    is written) masked, so that no password is ever echoed."""
    if "@" not in value:
        return _got(value)
    scheme, sep, rest = value.partition("://")
    head = scheme + sep if sep else ""
    return _got(head + "***@" + (rest if sep else value).rpartition("@")[2])


def check_url(value: Any) -> str:
    """An absolute http(s) URL with a host, a port in range, no fragment (never sent), no
    space or control character, and no credentials. Credentials are looked for first, and
    a URL is never quoted with them: any `@` before the path (however the rest is written)
    is refused, and the other messages show the URL masked up to its last `@`."""
    if isinstance(value, str):
        authority = re.split(r"[/?#]", value.partition("://")[2], maxsplit=1)[0]
        try:
            parts: SplitResult | None = urlsplit(value)
        except ValueError:
            parts = None
        if "@" in authority or (parts is not None and "@" in parts.netloc):
            raise Problem(
                "expected a URL without credentials (no user:password@; secrets come only "
                "from *_env variables)"
            )
        ok = False
        if parts is not None:
            try:
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018 - reading it checks it (ValueError when out of range)
            except ValueError:
                ok = False
        shown = _shown_url(value)
        if ok and any(c.isspace() or not c.isprintable() for c in value):
            raise Problem(f"expected a URL without spaces or control characters, got {shown}")
        if ok and parts is not None and parts.fragment:
            raise Problem(f"expected a URL without a #fragment (it is never sent), got {shown}")
        if ok:
            return value
        raise Problem(f"expected an http:// or https:// URL with a host, got {shown}")
    raise Problem(f"expected an http:// or https:// URL with a host, got {_got(value)}")


def check_api_url(value: Any) -> str:
    """`check_url`, and no query parameter named like a credential (a client refuses such a
    base URL when it is made: `status` ended with 5, as if a vendor could not be read, where
    `config check` said ok). The parameter is named, never its value."""
    url = check_url(value)
    try:
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        pairs = []
    named = sorted({k for k, _ in pairs if CREDENTIAL_PARAMS.match(k)})
    if named:
        raise Problem(
            f"expected a URL without credentials (no {', '.join(named)} query parameter;"
            " secrets come only from *_env variables)"
        )
    return url


#: Why a `*_env` value is refused when it is not a variable's name: it is not echoed, as
#: what is put there by mistake is most often the secret itself.
NOT_AN_ENV_NAME = (
    "holds something that is not an environment variable name: put the value in the "
    "environment and name the variable here"
)

#: Values that are valid variable names but are secrets' own shapes: GitHub's tokens,
#: Standard Webhooks' secrets, GitLab's and Stripe's, AWS access key ids.
_SECRET_SHAPES = re.compile(
    r"(gh[pousr]_|github_pat_|whsec_|glpat|sk_live_|sk_test_|rk_live_|xox[abposr]_)"
    r"[A-Za-z0-9_]{8,}|(AKIA|ASIA)[A-Z0-9]{16}"
)


def env_name_problem(value: Any) -> str | None:
    """Why `value` cannot be the name of an environment variable, never quoting it (None:
    it can): not a name (a URL, a JWT, a token with `-` or `.`), or a name shaped like a
    well-known kind of secret (`ghp_...`, `whsec_...`)."""
    if not isinstance(value, str):
        return (
            f"expected the name of an environment variable (a string), got a {type(value).__name__}"
        )
    if not _ENV_NAME.fullmatch(value) or _SECRET_SHAPES.fullmatch(value):
        return f"expected the name of an environment variable, but it {NOT_AN_ENV_NAME}"
    return None


def check_env_var(value: Any) -> str:
    """A valid environment variable name."""
    problem = env_name_problem(value)
    if problem is not None:
        raise Problem(problem)
    return str(value)


def check_rate_limit(value: Any) -> RateLimit:
    """`"iq-cloud"` (Sonatype Cloud's 1,500 / 5 min) or `{ max_requests = N, period = S }`."""
    if value == "iq-cloud":
        return RateLimit.iq_cloud()
    if isinstance(value, dict) and set(value) == {"max_requests", "period"}:
        try:
            return RateLimit(check_count(value["max_requests"]), check_seconds(value["period"]))
        except Problem:
            pass
    raise Problem(
        '"iq-cloud" or { max_requests = N, period = SECONDS } (N a whole number >= 1, SECONDS > 0)'
        f" expected, got {_got(value)}"
    )


def check_env_vars(value: Any) -> tuple[str, ...]:
    """One environment variable name or a non-empty array of them."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise Problem("expected the name of an environment variable or an array of them, got []")
    for n in names:
        problem = env_name_problem(n)
        if problem is not None:
            raise Problem(problem)
    return tuple(names)


def check_sink_filter(value: Any) -> SinkFilter:
    """A sink's filter (`SinkFilter.parse`), every problem in one message."""
    try:
        return SinkFilter.parse(value)
    except FilterError as exc:
        raise Problem(str(exc)) from None


def _filter_schema() -> dict[str, Any]:
    """The JSON Schema of a sink filter: recursive, so it carries its own `$defs` under an
    `$id` of its own (its `$ref`s resolve within it wherever it is embedded)."""
    attrs_ = {
        name: ({"enum": list(allowed)} if allowed else {"type": "string", "minLength": 1})
        for name, allowed in FILTER_ATTRIBUTES.items()
    }
    loose = {name: {"type": "string", "minLength": 1} for name in FILTER_ATTRIBUTES}

    def match(props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
            "minProperties": 1,
        }

    def one(key: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {key: schema},
            "required": [key],
            "additionalProperties": False,
        }

    expr = {"$ref": "#/$defs/expr"}
    return {
        "$id": "https://scanhub.invalid/schema/sink-filter.json",
        "$defs": {
            "expr": {
                "oneOf": [
                    one("exact", match(attrs_)),
                    one("prefix", match(loose)),
                    one("suffix", match(loose)),
                    one("all", {"type": "array", "items": expr, "minItems": 1}),
                    one("any", {"type": "array", "items": expr, "minItems": 1}),
                    one("not", expr),
                ]
            }
        },
        "anyOf": [expr, {"type": "array", "items": expr, "minItems": 1}],
    }


def _strict_str(value: Any, _: Any = None) -> str:
    if not isinstance(value, str):
        raise Problem(f"expected a string, got {_got(value)}")
    return value


def _strict_bool(value: Any, _: Any = None) -> bool:
    if not isinstance(value, bool):
        raise Problem(f"expected true or false, got {_got(value)}")
    return value


def _strict_int(value: Any, _: Any = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(f"expected a whole number, got {_got(value)}")
    return value


def _strict_float(value: Any, _: Any = None) -> float:
    n = _number(value)
    if n is None or not math.isfinite(n):
        raise Problem(f"expected a finite number, got {_got(value)}")
    return n


#: Checked type -> (checker, JSON Schema fragment).
CHECKED: dict[Any, tuple[Callable[[Any], Any], dict[str, Any]]] = {
    Seconds: (check_seconds, {"type": "number", "exclusiveMinimum": 0}),
    Days: (check_days, {"type": "number", "exclusiveMinimum": 0}),
    Count: (check_count, {"type": "integer", "minimum": 1}),
    Text: (check_text, {"type": "string", "minLength": 1, "pattern": r"\S"}),
    Id: (
        check_id,
        {
            "oneOf": [
                {"type": "string", "minLength": 1, "pattern": r"\S"},
                {"type": "integer", "minimum": 0},
            ]
        },
    ),
    HttpUrl: (check_url, {"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+"}),
    ApiUrl: (check_api_url, {"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+"}),
    EnvVar: (check_env_var, {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}),
    RateLimitSetting: (
        check_rate_limit,
        {
            "oneOf": [
                {"const": "iq-cloud"},
                {
                    "type": "object",
                    "properties": {
                        "max_requests": {"type": "integer", "minimum": 1},
                        "period": {"type": "number", "exclusiveMinimum": 0},
                    },
                    "required": ["max_requests", "period"],
                    "additionalProperties": False,
                },
            ]
        },
    ),
    EnvVars: (
        check_env_vars,
        {
            "anyOf": [
                {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                },
            ]
        },
    ),
    SinkFilterSetting: (check_sink_filter, _filter_schema()),
}


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _literal_hook(value: Any, t: Any) -> Any:
    options = get_args(t)
    # Exact types: TOML's 2 is not the string "2", and true is not 1.
    for option in options:
        if type(value) is type(option) and value == option:
            return value
    shown = ", ".join(repr(o) for o in options)
    raise Problem(f"expected one of {shown}, got {_got(value)}")


def _hook(checker: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda value, _type: checker(value)


def make_converter() -> cattrs.Converter:
    """A converter that checks every value strictly and forbids unknown keys."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    for checked, (checker, _) in CHECKED.items():
        conv.register_structure_hook(checked, _hook(checker))
    conv.register_structure_hook_func(_is_literal, _literal_hook)
    return conv


_converter = make_converter()


def structure(cls: type[T], data: Any, path: str = "") -> T:
    """`data` as an instance of `cls`, or `SchemaErrors` listing every problem under `path`."""
    if not isinstance(data, dict):
        raise SchemaErrors([(path, f"expected a table, got {_got(data)}")])
    try:
        return _converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError) as exc:
        raise SchemaErrors(list(_walk(exc, path, cls))) from None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _key(name: str) -> str:
    """A key of the file as its message names it: bare as TOML writes it when it can be, else
    quoted with every character past ASCII printable escaped (a key is the file's text: a
    line break or a terminal's escape in it must not start a line of its own or reach the
    terminal)."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return name
    return json.dumps(name, ensure_ascii=True)


def _walk(exc: BaseException, path: str, cls: Any) -> Iterator[tuple[str, str]]:
    if isinstance(exc, IterableValidationError):
        items, rest = exc.group_exceptions()
        for sub, item in items:
            yield from _walk(sub, f"{path}[{item.index}]", item.type)
        for sub in rest:
            yield path, _describe(sub, cls)
    elif isinstance(exc, ClassValidationError):
        fields, others = exc.group_exceptions()
        for sub, attr in fields:
            yield from _walk(sub, _join(path, attr.name), attr.type)
        for sub in others:
            if isinstance(sub, ForbiddenExtraKeysError):
                allowed = ", ".join(sorted(f.name for f in attrs.fields(exc.cl)))
                for key in sorted(sub.extra_fields):
                    yield _join(path, _key(key)), f"unknown key (expected one of {allowed})"
            else:
                yield path, _describe(sub, exc.cl)
    else:
        yield path, _describe(exc, cls)


def _describe(exc: BaseException, t: Any) -> str:
    if isinstance(exc, Problem):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing (required)"
    if isinstance(exc, AttributeError | TypeError) and isinstance(t, type) and attrs.has(t):
        return "expected a table"
    if isinstance(exc, TypeError) and "not iterable" in str(exc):
        return "expected an array"
    return f"invalid value ({exc})"


# --- JSON Schema ------------------------------------------------------------------------------


def json_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) object for an attrs configuration class."""
    fields = attrs.fields(cls)
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in fields:
        schema = type_schema(hints[f.name])
        doc = (f.metadata or {}).get("doc")
        if doc:
            schema = {**schema, "description": doc}
        if isinstance(f.default, str | int | float | bool):
            schema = {**schema, "default": f.default}
        props[f.name] = schema
        if f.default is attrs.NOTHING:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    if cls.__doc__:
        out["description"] = " ".join(cls.__doc__.split())
    return out


def type_schema(t: Any) -> dict[str, Any]:
    """The JSON Schema fragment of one field type."""
    if t in CHECKED:
        return dict(CHECKED[t][1])
    origin = get_origin(t)
    if origin is Literal:
        return {"enum": list(get_args(t))}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(t) if a is not type(None)]
        if len(options) == 1:
            return type_schema(options[0])
        return {"anyOf": [type_schema(a) for a in options]}
    if origin in (list, tuple):
        args = get_args(t)
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if t is str:
        return {"type": "string"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    if isinstance(t, type) and attrs.has(t):
        return json_schema(t)
    return {}
