"""The sans-I/O toolkit a vendor package is written with, for use with any HTTP stack.

`Request` and `Response` describe an exchange without performing it; the readers
(`decode_json`, `as_object`, `as_list`, `opt_str`, `req_str`, `opt_int`, `parse_time`) read an
untrusted vendor payload defensively and turn a surprise into a `PayloadError` naming the
vendor, the operation and what was wrong; `map_value` / `map_verdict` apply a vendor's mapping
table (an unknown value becomes `unknown` / `none`, keeps the raw string and is logged once);
`raise_for_status` turns an error status into the right `ScanhubError`; `join_url` and
`segment` build URLs with literal path segments. Nothing here imports aiohttp or asyncio.

Each vendor's own pure functions live in its package (`scanhub.vendors.<name>.sansio`). The
built-in ones stay reachable here under their historical names (`scanhub.sansio.iq`, ...), as
the very same module objects, imported when first asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .._sansio import (
    FilePart,
    Request,
    Response,
    Where,
    as_list,
    as_object,
    clean_url,
    decode_json,
    fail,
    join_url,
    loads,
    map_value,
    map_verdict,
    opt_int,
    opt_str,
    parse_http_date,
    parse_retry_after,
    parse_time,
    raise_for_status,
    req_str,
    retry_after_of,
    segment,
    where,
)

#: Deprecated aliases: the built-in vendors' modules under their historical names.
_HISTORICAL = ("iq", "threadfix", "appsecplus", "apptrust")


def __getattr__(name: str) -> ModuleType:
    if name in _HISTORICAL:
        return importlib.import_module(f"scanhub.vendors.{name}.sansio")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FilePart",
    "Request",
    "Response",
    "Where",
    "as_list",
    "as_object",
    "clean_url",
    "decode_json",
    "fail",
    "join_url",
    "loads",
    "map_value",
    "map_verdict",
    "opt_int",
    "opt_str",
    "parse_http_date",
    "parse_retry_after",
    "parse_time",
    "raise_for_status",
    "req_str",
    "retry_after_of",
    "segment",
    "where",
]
