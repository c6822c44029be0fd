"""The shared readers' fast paths give exactly what their general paths give.

Each fast path in `scanhub._sansio` (taken for the shapes vendors send) is held equal, over
generated inputs, to the general code it short-cuts: same value, same tzinfo object, or the
same exception type.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanhub import PayloadError, ScanhubError
from scanhub._sansio import _parse_time_general, _segment_general, parse_time, segment


def outcome(fn: Callable[[Any], Any], value: Any) -> tuple[Any, ...]:
    """What `fn(value)` gives, comparable: the value and its tzinfo object, or the error type."""
    try:
        result = fn(value)
    except Exception as exc:  # the type is the outcome compared
        return ("raised", type(exc))
    if isinstance(result, datetime):
        return ("value", result, id(result.tzinfo), result.fold)
    return ("value", result)


offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
zones = st.none() | st.just(UTC) | offsets.map(timezone)


@st.composite
def iso_strings(draw: st.DrawFn) -> str:
    """A datetime written the ways vendors and odd servers write one."""
    when = draw(st.datetimes(timezones=zones))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    date = when.strftime("%Y-%m-%d")
    clock = when.strftime("%H:%M:%S")
    digits = draw(st.integers(min_value=0, max_value=9))
    if digits:
        clock += "." + draw(st.text("0123456789", min_size=digits, max_size=digits))
    offset = when.utcoffset()
    if offset is None:
        zone = ""
    elif offset == timedelta(0) and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z", "+00:00", "+0000", "-00:00", "+00"]))
    else:
        sign = "-" if offset < timedelta(0) else "+"
        total = abs(int(offset.total_seconds()))
        hh, mm, ss = total // 3600, total // 60 % 60, total % 60
        zone = draw(
            st.sampled_from(
                [
                    f"{sign}{hh:02}:{mm:02}",
                    f"{sign}{hh:02}{mm:02}",
                    f"{sign}{hh:02}:{mm:02}:{ss:02}",
                    f"{sign}{hh:02}",
                ]
            )
        )
    text = f"{date}{sep}{clock}{zone}"
    pad = draw(st.sampled_from(["", " ", "\t", "\n "]))
    return draw(st.sampled_from([text, pad + text, text + pad]))


time_values = (
    iso_strings()
    | st.text()
    | st.from_regex(r"-?[0-9]{1,20}", fullmatch=True)
    | st.integers(min_value=-(10**16), max_value=10**16)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.sampled_from(["", " ", "2025-11-01", "2025-11-01T12:00:00.", "Z", "+0000", "１２３"])
)


@settings(max_examples=3000, deadline=None)
@given(value=time_values)
def test_parse_time_fast_path_equals_the_general_path(value: Any) -> None:
    assert outcome(parse_time, value) == outcome(_parse_time_general, value)


@settings(max_examples=500, deadline=None)
@given(value=iso_strings())
def test_parse_time_reads_every_iso_shape_as_utc(value: str) -> None:
    result = parse_time(value)
    assert result is None or result.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01 00:30+0100",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:30:00.5-0030",
    ],
)
def test_a_time_beyond_the_calendar_in_utc_is_none(value: str) -> None:
    # A valid ISO string whose UTC instant falls outside year 1..9999: None, as for any time
    # scanhub cannot read (it raised OverflowError out of the vendor parsers before).
    assert parse_time(value) is None
    assert parse_time(" " + value) is None


def _segment_outcome(fn: Callable[..., str], value: object) -> tuple[Any, ...]:
    try:
        return ("value", fn(value, "iq", "promotion status", "id", PayloadError))
    except ScanhubError as exc:
        return ("raised", type(exc), str(exc), exc.vendor, exc.operation)


def _fast_segment(
    value: object, vendor: str, operation: str, what: str, error: type[ScanhubError]
) -> str:
    return segment(value, vendor=vendor, operation=operation, what=what, error=error)


segment_values = (
    st.text(alphabet="abcXYZ019_.~-", max_size=12)
    | st.text(max_size=12)
    | st.text(alphabet=st.characters(codec="ascii"), max_size=12)
    | st.sampled_from(["", ".", "..", "...", " ", "a b", "a/b", "%2F", "é", "١٢", "ǅ", "ﬁ"])
    | st.integers()
    | st.uuids()
    | st.uuids().map(str)
)


@settings(max_examples=2000, deadline=None)
@given(value=segment_values)
def test_segment_fast_path_equals_the_general_path(value: object) -> None:
    assert _segment_outcome(_fast_segment, value) == _segment_outcome(_segment_general, value)
