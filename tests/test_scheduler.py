"""The scheduler's promises at their edges, with a fake clock and a random source pinned to the
ends of each range (tests/test_parts.py has the everyday walk): when an item is due first, after
a change, after a quiet poll, after a vendor's pause or a hold; that a rescheduled item's old
place never hands it out early; what settings it refuses.
"""

from __future__ import annotations

import random
import re

import pytest

from scanhub.engine import Scheduler
from scanhub.engine.scheduler import IN_FLIGHT


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lowest(random.Random):
    """Every draw at the low end of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    """Every draw at the high end of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make(clock: Clock, rng: random.Random, **kw: float) -> Scheduler:
    options = {"interval": 10.0, "max_interval": 60.0, "backoff": 2.0, "jitter": 0.1, **kw}
    return Scheduler(clock=clock, rng=rng, **options)  # type: ignore[arg-type]


def due_after(s: Scheduler, clock: Clock) -> float:
    """How long from now until the earliest scheduled item falls due."""
    due = s.next_due()
    assert due is not None
    return due - clock.now


# --- settings -------------------------------------------------------------------------------------


def test_the_defaults_poll_every_5_s_and_back_off_by_half_up_to_a_minute() -> None:
    clock = Clock()
    s = Scheduler(clock=clock, rng=Lowest())
    s.add("a")
    intervals = []
    for _ in range(9):
        clock.now += 1000
        assert s.pop_due() == ["a"]
        s.done("a", changed=False)
        intervals.append(s.interval_of("a"))
    assert intervals == [7.5, 11.25, 16.875, 25.3125, 37.96875, 56.953125, 60.0, 60.0, 60.0]
    clock.now += 1000
    s.pop_due()
    s.done("a", changed=True)
    assert s.interval_of("a") == 5.0
    assert due_after(s, clock) == pytest.approx(4.5)  # 5 s less 10 % jitter


@pytest.mark.parametrize(
    "bad",
    [
        {"interval": 0.0},
        {"interval": -1.0},
        {"max_interval": 0.0},
        {"backoff": 0.99},
        {"jitter": -0.01},
        {"jitter": 1.0},
    ],
)
def test_settings_out_of_range_are_refused_saying_what_is_needed(bad: dict[str, float]) -> None:
    needs = "the scheduler needs interval > 0, max_interval > 0, backoff >= 1 and 0 <= jitter < 1"
    with pytest.raises(ValueError, match=f"^{re.escape(needs)}$"):
        Scheduler(**bad)  # type: ignore[arg-type]


def test_the_edges_of_each_range_are_accepted() -> None:
    # backoff 1: never back off; jitter 0: exactly on time.
    clock = Clock()
    s = Scheduler(interval=10.0, backoff=1.0, jitter=0.0, clock=clock, rng=Highest())
    s.add("a")
    clock.now += 10
    s.pop_due()
    s.done("a", changed=False)
    assert s.interval_of("a") == 10.0 and due_after(s, clock) == 10.0


# --- the first poll -------------------------------------------------------------------------------


def test_a_large_first_round_spreads_over_exactly_the_interval_and_a_small_one_over_less() -> None:
    clock = Clock()
    many = make(clock, Highest())
    many.start(f"k{i}" for i in range(200))  # 200 items or more: the whole interval
    assert due_after(many, clock) == pytest.approx(10.0, abs=1e-9)
    few = make(clock, Highest())
    few.start(["a", "b", "c", "d"])  # 4 of 200: 4/200 of it
    assert due_after(few, clock) == pytest.approx(0.2, abs=1e-9)
    first = make(clock, Lowest())
    first.start(["a"])
    assert due_after(first, clock) == 0.0  # the spread starts now


def test_a_new_item_is_due_within_a_second_or_its_interval_if_shorter() -> None:
    clock = Clock()
    for rng, interval, wanted in (
        (Lowest(), 10.0, 0.0),
        (Highest(), 10.0, 1.0),
        (Highest(), 0.5, 0.5),
    ):
        s = make(clock, rng, interval=interval)
        s.add("a")
        assert due_after(s, clock) == wanted
        assert s.interval_of("a") == interval


def test_unknown_items_have_no_state_and_no_interval() -> None:
    s = make(Clock(), Lowest())
    assert s.state("zzz") is None and s.interval_of("zzz") is None


# --- after a poll ---------------------------------------------------------------------------------


def test_the_next_poll_is_jittered_within_the_interval_both_ways() -> None:
    for rng, wanted in ((Lowest(), 9.0), (Highest(), 11.0)):
        clock = Clock()
        s = make(clock, rng)
        s.add("a")
        clock.now += 5
        s.pop_due()
        s.done("a", changed=True)
        assert due_after(s, clock) == pytest.approx(wanted)


def test_a_quiet_item_backs_off_from_its_own_interval() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.add("a")
    clock.now += 5
    s.pop_due()
    s.done("a", changed=False)
    assert s.interval_of("a") == 20.0 and due_after(s, clock) == pytest.approx(18.0)


def test_a_vendor_pause_parks_the_item_until_then_spread_over_a_second() -> None:
    for rng, extra in ((Lowest(), 0.0), (Highest(), 1.0)):
        clock = Clock()
        s = make(clock, rng)
        s.add("a")
        s.pop_due()
        s.done("a", changed=True, wait_until=clock.now + 300)
        assert due_after(s, clock) == 300 + extra
        assert s.interval_of("a") == 10.0  # the pause is not a backoff


def test_a_pause_that_ends_now_does_not_delay_the_next_poll() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.add("a")
    s.pop_due()
    s.done("a", changed=False, wait_until=clock.now)
    assert s.interval_of("a") == 20.0 and due_after(s, clock) == pytest.approx(18.0)


def test_done_for_an_item_no_longer_scheduled_does_nothing() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.add("a")
    s.pop_due()
    s.remove("a")
    s.done("a", changed=True)
    assert "a" not in s and s.next_due() is None


# --- holds --------------------------------------------------------------------------------------


def test_every_held_item_is_parked_and_every_other_due_item_goes() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    keys = [f"{'held' if i % 2 else 'free'}{i}" for i in range(10)]
    s.start(keys)
    clock.now += 10
    until = clock.now + 30
    got = s.pop_due(lambda key: until if key.startswith("held") else None)
    assert sorted(got) == sorted(k for k in keys if k.startswith("free"))
    assert all(s.state(k) == IN_FLIGHT for k in got)
    assert due_after(s, clock) == 30.0  # parked until then (the low end of its second)


def test_a_parked_item_comes_back_within_a_second_after_the_hold() -> None:
    clock = Clock()
    s = make(clock, Highest())
    s.add("a")
    clock.now += 1
    assert s.pop_due(lambda key: clock.now + 30) == []
    assert due_after(s, clock) == 31.0


def test_a_hold_that_ends_now_does_not_hold() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.add("a")
    assert s.pop_due(lambda key: clock.now) == ["a"]


# --- rescheduling ---------------------------------------------------------------------------------


def test_a_rescheduled_item_is_never_handed_out_from_its_old_place() -> None:
    clock = Clock()
    s = make(clock, Highest())
    s.add("a")  # due in 1 s
    clock.now += 0.5
    assert s.poke("a") is True  # a webhook: due now
    assert s.pop_due() == ["a"]
    s.done("a", changed=True)  # next in 11 s
    assert due_after(s, clock) == pytest.approx(11.0)  # not the old place, 0.5 s from now
    clock.now += 1
    assert s.pop_due() == []
    assert s.state("a") != IN_FLIGHT


def test_a_stale_place_is_skipped_even_when_nothing_looked_at_the_queue_in_between() -> None:
    # No next_due() between the reschedule and the pop (next_due drops stale places itself).
    clock = Clock()
    s = make(clock, Highest())
    s.add("a")  # due in 1 s
    clock.now += 0.5
    s.poke("a")
    assert s.pop_due() == ["a"]
    s.done("a", changed=True)  # next in 11 s
    clock.now += 1  # the old place (1 s) is past
    assert s.pop_due() == []


def test_an_item_removed_and_added_again_goes_once_from_its_new_place() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.start(["a"])  # due now
    s.remove("a")
    clock.now += 0.5
    s.add("a")  # due now, 0.5 s after its old place: both places are due
    assert s.pop_due() == ["a"]  # once
    clock.now += 1
    assert s.pop_due() == []


def test_a_removed_item_leaves_no_due_time_behind() -> None:
    clock = Clock()
    s = make(clock, Lowest())
    s.add("a")
    clock.now += 1
    s.add("b")
    s.remove("a")
    assert s.next_due() == clock.now  # b's; a's old entry is skipped
    s.remove("b")
    assert s.next_due() is None and s.queued == 0


def test_items_due_at_the_same_moment_go_in_the_order_they_were_scheduled() -> None:
    clock = Clock()
    s = make(clock, Highest())
    s.start(["a", "b", "c"])
    for key in ("c", "a", "b"):
        s.poke(key)  # all due now
    assert s.pop_due() == ["c", "a", "b"]
