"""Checks shared by the exact tests (tests/test_exact_*.py): what a user of a parse or build
function sees when it refuses, down to the vendor, source, operation, HTTP status, body excerpt
and text of the error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scanhub import ScanhubError


def excerpt(body: str | None) -> str | None:
    """What an error keeps of a body: white space collapsed, at most 200 characters."""
    if not body:
        return None
    text = " ".join(body.split())
    return text if len(text) <= 200 else text[:199] + "\u2026"


def refused(
    call: Callable[[], Any],
    cls: type[ScanhubError],
    *,
    vendor: str,
    operation: str,
    message: str,
    source: str | None = None,
    status: int | None = None,
    body: str | None = None,
) -> ScanhubError:
    """`call()` raises exactly `cls` with these attributes (`body`: the whole body, of which
    the error keeps an excerpt); returns the error."""
    with pytest.raises(cls) as info:
        call()
    err = info.value
    assert type(err) is cls, f"{type(err).__name__} is not {cls.__name__}"
    got = {
        "vendor": err.vendor,
        "source": err.source,
        "operation": err.operation,
        "status": err.status,
        "body": err.body_excerpt,
        "message": err.message,
    }
    want = {
        "vendor": vendor,
        "source": source,
        "operation": operation,
        "status": status,
        "body": excerpt(body),
        "message": message,
    }
    assert got == want, f"\n got  {got}\n want {want}"
    return err
