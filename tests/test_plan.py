"""`plan`, the one commit rule every store applies, on its own: what committing an observation
does (track, record a transition, rewrite the current state, or nothing) and the row as it
stands afterwards, for each case a backend meets; and the two helpers the SQL stores share around
it (`stored_row`, `new_item_columns`). Pure and fast, so mutation testing can run it
per mutant (tests/test_store.py checks the same rule through every backend, far slower).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest

from scanhub import Lifecycle, Scan, Vendor, Verdict
from scanhub._changes import ItemError
from scanhub.store import Observation, Outcome
from scanhub.store._base import Row, Step, new_item_columns, plan, stored_row

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
L = Lifecycle


def scan(
    lc: Lifecycle,
    status: str | None = None,
    *,
    verdict: Verdict = Verdict.NONE,
    message: str | None = None,
    updated: int = 0,
) -> Scan:
    return Scan(
        Vendor.APPSECPLUS,
        "asp",
        "s1",
        "app",
        lc,
        lc.value if status is None else status,
        verdict=verdict,
        message=message,
        updated_at=T0 + timedelta(minutes=updated),
    )


KEY = scan(L.QUEUED).key


def seen(
    item: Scan | None, minute: int, origin: str | None = None, error: ItemError | None = None
) -> Observation:
    return Observation(KEY, T0 + timedelta(minutes=minute), item, error, origin)


def stored(item: Scan, minute: int | None = 0, last: int | None = 7) -> Row:
    """A backend's row of `item`, last observed at `minute` (None: never)."""
    return Row(
        KEY,
        item.lifecycle,
        item.verdict,
        item.vendor_status,
        item.message,
        None if minute is None else T0 + timedelta(minutes=minute),
        last,
        item,
    )


def error(minute: int) -> ItemError:
    return ItemError("ServerError", "HTTP 503", True, T0 + timedelta(minutes=minute))


# --- an item not tracked yet --------------------------------------------------------------------


def test_an_observation_of_an_untracked_item_without_an_origin_is_dropped() -> None:
    assert plan(None, seen(scan(L.RUNNING), 1)) == (Step(Outcome.UNTRACKED), None)


def test_an_origin_without_an_item_tracks_nothing() -> None:
    assert plan(None, seen(None, 1, "track")) == (Step(Outcome.UNTRACKED), None)
    assert plan(None, seen(None, 1, "webhook", error(1))) == (Step(Outcome.UNTRACKED), None)


def test_a_first_sighting_with_an_origin_is_tracked_and_recorded() -> None:
    item = scan(L.RUNNING, "scanning", verdict=Verdict.WARN, message="half way")
    step, row = plan(None, seen(item, 3, "discover"))
    assert step == Step(Outcome.RECORDED, insert=True, record=True)
    assert row == Row(
        KEY,
        L.RUNNING,
        Verdict.WARN,
        "scanning",
        "half way",
        T0 + timedelta(minutes=3),
        None,  # no transition yet: the backend appends the first
        item,
        None,
        True,  # to be written
    )


def test_a_first_sighting_keeps_the_error_it_came_with() -> None:
    item = scan(L.QUEUED)
    _, row = plan(None, seen(item, 0, "track", error(0)))
    assert row is not None and row.error == error(0)


def test_a_placeholder_is_tracked_without_a_transition() -> None:
    placeholder = scan(L.UNKNOWN, "")  # configuration tracks it before its first poll
    step, row = plan(None, seen(placeholder, 0, "track"))
    assert step == Step(Outcome.TRACKED, insert=True, record=False)
    assert row is not None
    assert (row.lifecycle, row.vendor_status, row.item, row.dirty) == (
        L.UNKNOWN,
        "",
        placeholder,
        True,
    )


def test_an_unknown_state_the_vendor_named_is_recorded() -> None:
    odd = scan(L.UNKNOWN, "PAUSED_BY_ADMIN")  # not a placeholder: the vendor said something
    step, _ = plan(None, seen(odd, 0, "track"))
    assert step == Step(Outcome.RECORDED, insert=True, record=True)


# --- an older observation -----------------------------------------------------------------------


def test_an_observation_older_than_the_stored_one_is_stale_and_changes_nothing() -> None:
    row = stored(scan(L.RUNNING), minute=5)
    before = attrs.evolve(row)  # a copy
    step, after = plan(row, seen(scan(L.SUCCEEDED), 4))
    assert (step, after) == (Step(Outcome.STALE), row)
    assert row == before  # not even marked for writing


def test_an_observation_at_the_same_moment_is_not_stale() -> None:
    row = stored(scan(L.RUNNING), minute=5)
    step, _ = plan(row, seen(scan(L.SUCCEEDED), 5))
    assert step == Step(Outcome.RECORDED, record=True)


def test_a_row_never_observed_takes_any_observation() -> None:
    row = stored(scan(L.QUEUED), minute=None)
    step, after = plan(row, seen(scan(L.RUNNING), -60))
    assert step == Step(Outcome.RECORDED, record=True)
    assert after is row and row.observed_at == T0 - timedelta(minutes=60)


# --- an error, or a state that does not move forward ---------------------------------------------


def test_an_error_is_kept_with_the_time_and_records_nothing() -> None:
    item = scan(L.RUNNING)
    row = stored(item, minute=0)
    step, after = plan(row, seen(None, 2, error=error(2)))
    assert (step, after) == (Step(Outcome.UNCHANGED), row)
    assert (row.error, row.observed_at, row.dirty) == (error(2), T0 + timedelta(minutes=2), True)
    assert (row.lifecycle, row.item) == (L.RUNNING, item)  # the state stays as it was


def test_a_state_after_an_error_clears_it() -> None:
    row = stored(scan(L.RUNNING), minute=0)
    row.error = error(1)
    step, _ = plan(row, seen(scan(L.RUNNING), 2))  # the same state again
    assert step == Step(Outcome.UNCHANGED)
    assert row.error is None and row.dirty


def test_a_state_that_would_move_backwards_is_refused_but_the_sighting_counts() -> None:
    done = scan(L.SUCCEEDED, verdict=Verdict.PASS)
    row = stored(done, minute=0)
    row.error = error(0)
    step, after = plan(row, seen(scan(L.RUNNING, updated=9), 3))
    assert (step, after) == (Step(Outcome.UNCHANGED), row)
    assert (row.lifecycle, row.verdict, row.vendor_status, row.item) == (
        L.SUCCEEDED,
        Verdict.PASS,
        "succeeded",
        done,
    )
    assert (row.observed_at, row.error, row.dirty) == (T0 + timedelta(minutes=3), None, True)


def test_a_placeholder_never_overwrites_a_known_item() -> None:
    known = scan(L.RUNNING, "scanning")
    row = stored(known, minute=0)
    step, _ = plan(row, seen(scan(L.UNKNOWN, ""), 1, "track"))
    assert step == Step(Outcome.UNCHANGED)
    assert (row.lifecycle, row.vendor_status, row.item) == (L.RUNNING, "scanning", known)


# --- a state that moves forward -----------------------------------------------------------------


def test_a_significant_change_is_recorded_and_rewrites_the_state() -> None:
    row = stored(scan(L.RUNNING, "scanning"), minute=0)
    done = scan(L.FAILED, "error", verdict=Verdict.ERROR, message="the scanner crashed")
    step, after = plan(row, seen(done, 4))
    assert step == Step(Outcome.RECORDED, insert=False, record=True)
    assert after == Row(
        KEY,
        L.FAILED,
        Verdict.ERROR,
        "error",
        "the scanner crashed",
        T0 + timedelta(minutes=4),
        7,  # the backend moves it when it appends the transition
        done,
        None,
        True,
    )


def test_each_of_lifecycle_verdict_message_and_vendor_status_is_a_change() -> None:
    base = scan(L.SUCCEEDED, "done", verdict=Verdict.PASS, message="ok")
    for changed in (
        scan(L.FAILED, "done", verdict=Verdict.PASS, message="ok"),
        scan(L.SUCCEEDED, "done", verdict=Verdict.WARN, message="ok"),
        scan(L.SUCCEEDED, "done", verdict=Verdict.PASS, message="2 warnings"),
        scan(L.SUCCEEDED, "DONE", verdict=Verdict.PASS, message="ok"),
    ):
        step, row = plan(stored(base), seen(changed, 1))
        assert step == Step(Outcome.RECORDED, record=True), changed
        assert row is not None and (row.lifecycle, row.verdict, row.message, row.vendor_status) == (
            changed.lifecycle,
            changed.verdict,
            changed.message,
            changed.vendor_status,
        )


def test_the_same_state_with_newer_details_is_kept_without_a_transition() -> None:
    row = stored(scan(L.RUNNING, "scanning", updated=0), minute=0)
    newer = scan(L.RUNNING, "scanning", updated=5)  # only updated_at moved
    step, after = plan(row, seen(newer, 5))
    assert step == Step(Outcome.UNCHANGED, record=False)
    assert after is row and row.item is newer and row.dirty  # the stored item is rewritten
    assert row.last_transition == 7


# --- times in other zones, and what the SQL stores read and insert ----------------------------


def test_an_observation_in_another_zone_is_kept_as_the_same_instant_in_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    at = datetime(2026, 11, 1, 14, 0, tzinfo=plus2)  # 12:00 UTC, T0
    _, new = plan(None, Observation(KEY, at, scan(L.QUEUED), None, "track"))
    assert new is not None
    assert new.observed_at == T0 and new.observed_at.tzinfo is UTC
    row = stored(scan(L.QUEUED), minute=0)
    later = datetime(2026, 11, 1, 14, 30, tzinfo=plus2)  # 12:30 UTC
    step, after = plan(row, Observation(KEY, later, scan(L.RUNNING)))
    assert step.outcome is Outcome.RECORDED and after is row
    assert row.observed_at == T0 + timedelta(minutes=30) and row.observed_at.tzinfo is UTC


def test_times_of_one_zone_across_a_dst_fold_are_compared_as_instants() -> None:
    # Python compares two times of the same zone by their wall clocks: 02:45 of the earlier
    # hour would read as after 02:30 of the later one. Kept in UTC, they compare as instants.
    paris = ZoneInfo("Europe/Paris")  # 2026-10-25 03:00 CEST is 02:00 CET: 02:xx twice
    second_0230 = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris)  # 01:30 UTC
    first_0245 = datetime(2026, 10, 25, 2, 45, fold=0, tzinfo=paris)  # 00:45 UTC
    _, row = plan(None, Observation(KEY, second_0230, scan(L.RUNNING), None, "track"))
    assert row is not None
    step, _ = plan(row, Observation(KEY, first_0245, scan(L.QUEUED)))
    assert step.outcome is Outcome.STALE
    assert row.observed_at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_a_utc_or_naive_observation_time_is_kept_as_given() -> None:
    # A naive time is not taken as local time here (the SQL stores decide what it means).
    naive = datetime(2026, 11, 1, 12, 0)
    _, new = plan(None, Observation(KEY, naive, scan(L.QUEUED), None, "track"))
    assert new is not None and new.observed_at == naive and new.observed_at.tzinfo is None
    _, new = plan(None, Observation(KEY, T0, scan(L.QUEUED), None, "track"))
    assert new is not None and new.observed_at is T0


def test_new_item_columns_as_both_sql_stores_insert_them() -> None:
    running = scan(L.RUNNING, "in_progress", verdict=Verdict.WARN)
    assert new_item_columns(Observation(KEY, T0, running, None, "discover")) == (
        "discover", "scan", Vendor.APPSECPLUS, "asp", "app", "running", "warn", "in_progress", True,
    )  # fmt: skip
    # No origin (an engine track): "track"; a finished item is not under way.
    done = scan(L.SUCCEEDED, "completed")
    columns = new_item_columns(Observation(KEY, T0, done))
    assert columns[0] == "track" and columns[5] == "succeeded" and columns[8] is False


def test_stored_row_reads_the_stored_text_of_lifecycle_and_verdict() -> None:
    row = stored_row("k", "failed", "fail", "FAILED", "boom", T0, 9)
    assert row == Row("k", L.FAILED, Verdict.FAIL, "FAILED", "boom", T0, 9)
    assert type(row.lifecycle) is Lifecycle and type(row.verdict) is Verdict
    assert (row.item, row.error, row.dirty, row.changed_at) == (None, None, False, None)
    assert stored_row("k", "queued", "none", "", None, None, None) == Row(
        "k", L.QUEUED, Verdict.NONE, "", None, None, None
    )
    # A value this version does not know is the enum's own error, not a KeyError.
    with pytest.raises(ValueError, match="'paused' is not a valid Lifecycle"):
        stored_row("k", "paused", "none", "", None, None, None)
    with pytest.raises(ValueError, match="'maybe' is not a valid Verdict"):
        stored_row("k", "queued", "maybe", "", None, None, None)
