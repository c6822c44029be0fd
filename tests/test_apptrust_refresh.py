"""Refreshing AppTrust promotions through the promotions list: each promotion gets its own record.

Two promotions of one version to one stage can be created within a second of each other (the
simulator stamps them 1 s apart, as a pipeline that promotes twice does). A record that carries a
promotion's id is that promotion's record; a record "near" in time (same target stage within
`SAME_PROMOTION_MS`) stands in only for a promotion whose id no record carries (a promote answer
that named only a time), and each record answers at most one promotion.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import attrs
import pytest

from scanhub import AppTrust, Lifecycle, Promotion, Vendor, Verdict
from scanhub.sansio import apptrust
from scanhub.sim import AppTrustSim, SimClock

T0 = 1684477304916
KEY, VERSION = "webshop", "1.4.0"


def promo(millis: int | str, stage: str | None = "QA", status: str = "STARTED") -> Promotion:
    """A listed (or wanted) promotion with id `millis` to `stage`."""
    return Promotion(
        Vendor.APPTRUST,
        "jf",
        str(millis),
        KEY,
        apptrust.STATUS_MAP.get(status.lower(), Lifecycle.UNKNOWN),
        status,
        version=VERSION,
        target_stage=stage,
    )


# --- same_promotion ----------------------------------------------------------------------------


def test_same_id_is_the_same_promotion() -> None:
    assert apptrust.same_promotion(promo(T0), promo(T0))
    assert apptrust.same_promotion(promo("abc"), promo("abc"))


@pytest.mark.parametrize("apart", [1, 1000, 4999, apptrust.SAME_PROMOTION_MS])
def test_same_stage_within_the_window_is_the_same_promotion(apart: int) -> None:
    assert apptrust.same_promotion(promo(T0 + apart), promo(T0))
    assert apptrust.same_promotion(promo(T0 - apart), promo(T0))


@pytest.mark.parametrize("apart", [apptrust.SAME_PROMOTION_MS + 1, 60_000])
def test_different_ids_beyond_the_window_are_not_the_same(apart: int) -> None:
    assert not apptrust.same_promotion(promo(T0 + apart), promo(T0))
    assert not apptrust.same_promotion(promo(T0 - apart), promo(T0))


def test_different_stages_are_not_the_same_promotion_even_a_millisecond_apart() -> None:
    assert not apptrust.same_promotion(promo(T0 + 1, "PROD"), promo(T0, "QA"))
    assert not apptrust.same_promotion(promo(T0 + 1, None), promo(T0, "QA"))


def test_ids_that_are_not_times_are_never_near() -> None:
    assert not apptrust.same_promotion(promo("abc"), promo("abd"))
    assert not apptrust.same_promotion(promo("abc"), promo(T0))
    assert not apptrust.same_promotion(promo(T0), promo("-1"))
    assert not apptrust.same_promotion(promo("١٢"), promo("12"))  # Arabic-Indic digits


# --- match_promotions: which record answers which promotion -----------------------------------


LISTED = [promo(T0 + 3000), promo(T0 + 2000), promo(T0 + 1000), promo(T0)]  # newest first


@pytest.mark.parametrize(
    "wanted",
    [
        ids
        for n in range(1, 5)
        for ids in itertools.combinations([T0, T0 + 1000, T0 + 2000, T0 + 3000], n)
    ],
)
def test_an_exact_id_always_wins_over_a_near_record(wanted: tuple[int, ...]) -> None:
    found = apptrust.match_promotions(LISTED, [promo(w) for w in wanted])
    assert {k: v.id for k, v in found.items()} == {str(w): str(w) for w in wanted}


def test_a_near_record_answers_a_promotion_whose_id_no_record_carries() -> None:
    # Promote answers that named only a time, a few milliseconds off the list's created_millis.
    wanted = [promo(T0 + 3), promo(T0 + 1000 - 4), promo(T0 + 3000 + 2)]
    found = apptrust.match_promotions(LISTED, wanted)
    assert {k: v.id for k, v in found.items()} == {
        str(T0 + 3): str(T0),
        str(T0 + 996): str(T0 + 1000),
        str(T0 + 3002): str(T0 + 3000),
    }


def test_each_record_answers_at_most_one_promotion_the_closest_in_time() -> None:
    found = apptrust.match_promotions([promo(T0)], [promo(T0 + 20), promo(T0 + 10)])
    assert {k: v.id for k, v in found.items()} == {str(T0 + 10): str(T0)}
    found = apptrust.match_promotions([promo(T0)], [promo(T0 - 10), promo(T0 + 20)])
    assert {k: v.id for k, v in found.items()} == {str(T0 - 10): str(T0)}


def test_a_record_that_carries_a_wanted_id_stands_in_for_no_other() -> None:
    found = apptrust.match_promotions([promo(T0)], [promo(T0 + 10), promo(T0)])
    assert {k: v.id for k, v in found.items()} == {str(T0): str(T0)}


def test_near_matching_respects_the_stage_and_the_window() -> None:
    listed = [promo(T0, "PROD"), promo(T0 + 6000, "QA")]
    assert apptrust.match_promotions(listed, [promo(T0 + 1, "QA")]) == {}
    found = apptrust.match_promotions(listed, [promo(T0 + 1000, "QA")])
    assert {k: v.id for k, v in found.items()} == {str(T0 + 1000): str(T0 + 6000)}


def test_nothing_listed_answers_nothing() -> None:
    assert apptrust.match_promotions([], [promo(T0)]) == {}
    assert apptrust.match_promotions(LISTED, []) == {}


# --- more_to_find: when paging (newest first) may stop ----------------------------------------


def test_paging_goes_on_past_a_near_record_until_the_exact_id() -> None:
    wanted = [promo(T0)]
    seen: set[str] = set()
    for record in LISTED[:-1]:
        seen.add(record.id)
        assert apptrust.more_to_find(record, wanted, seen)
    seen.add(LISTED[-1].id)
    assert not apptrust.more_to_find(LISTED[-1], wanted, seen)


def test_paging_stops_once_every_wanted_id_was_listed() -> None:
    wanted = [promo(T0 + 3000), promo(T0 + 2000)]
    assert apptrust.more_to_find(LISTED[0], wanted, {LISTED[0].id})
    assert not apptrust.more_to_find(LISTED[1], wanted, {LISTED[0].id, LISTED[1].id})


def test_paging_stops_when_the_records_are_older_than_a_missing_promotion_could_be() -> None:
    wanted = [promo(T0 + 10_000)]
    window = apptrust.SAME_PROMOTION_MS
    assert apptrust.more_to_find(promo(T0 + 10_000 - window), wanted, set())
    assert not apptrust.more_to_find(promo(T0 + 10_000 - window - 1), wanted, set())


def test_paging_never_stops_early_for_an_id_that_is_not_a_time() -> None:
    assert apptrust.more_to_find(promo(1), [promo("abc")], {"1"})
    assert not apptrust.more_to_find(promo(1), [promo("abc")], {"1", "abc"})


# --- Against the simulator on loopback ---------------------------------------------------------


def _state(p: Promotion) -> tuple[Any, ...]:
    return (
        p.id,
        p.lifecycle,
        p.vendor_status,
        p.verdict,
        p.message,
        _gates(p),
    )


def _gates(p: Promotion) -> tuple[tuple[str, str | None, str | None], ...]:
    return tuple((g.kind.value, g.vendor_decision, g.evaluation_id) for g in p.gates)


def _expected(sim: AppTrustSim, wanted: Promotion, record_id: str) -> tuple[Any, ...]:
    own = apptrust.promotion_from_record(
        sim.render(KEY, VERSION, record_id), apptrust.Where("apptrust", "jf", "expected")
    )
    return _state(attrs.evolve(own, id=wanted.id))


async def _promote_four(sim: AppTrustSim, at: AppTrust) -> list[Promotion]:
    """Four promotions of one version to QA, 1 s apart, each ending its own way."""
    plan = [(10.0, "fail"), (1000.0, "error"), (10.0, "warn"), (10.0, "pass")]
    out = []
    for duration, decision in plan:
        sim.duration = duration
        sim.gate(KEY, "QA", decision, f"gate said {decision}")
        out.append(await at.promote(KEY, VERSION, "QA"))
    ids = [int(p.id) for p in out]
    assert [b - a for a, b in itertools.pairwise(ids)] == [1000, 1000, 1000]
    return out


def _groupings(n: int) -> list[list[int]]:
    """Every way the refreshes are asked for: all together, each alone (oldest first and newest
    first), and every subset of two or three together."""
    every = list(range(n))
    return [
        every,
        *([i] for i in every),
        *([i] for i in reversed(every)),
        *(list(c) for k in (2, 3) for c in itertools.combinations(every, k)),
    ]


async def _check_every_grouping(
    sim: AppTrustSim, at: AppTrust, wanted: list[Promotion], records: list[str]
) -> None:
    for group in _groupings(len(wanted)):
        got = await asyncio.gather(*(at.refresh(wanted[i]) for i in group))
        for i, p in zip(group, got, strict=True):
            assert _state(p) == _expected(sim, wanted[i], records[i]), (group, i)


@pytest.mark.parametrize("offset_ms", [0, 3], ids=["exact-ids", "ids-from-answer-times"])
async def test_promotions_one_second_apart_each_keep_their_own_state(offset_ms: int) -> None:
    """`offset_ms` > 0: the promotions carry ids a few milliseconds off their list records, as
    a promote answer that named only its time gives; they must still find their own."""
    sim = AppTrustSim(clock=SimClock(speed=0.0))
    async with sim:
        sim.add_version(KEY, VERSION)
        async with AppTrust(sim.base_url, sim.token, name="jf") as at:
            at.list_cache_ttl = 0.0  # every refresh reads the list
            made = await _promote_four(sim, at)
            records = [p.id for p in made]
            wanted = [attrs.evolve(p, id=str(int(p.id) + offset_ms)) for p in made]
            for at_time in (0.0, 6.0, 20.0, 2000.0):
                sim.clock.advance(at_time - sim.clock.now())
                await _check_every_grouping(sim, at, wanted, records)
                wanted = [await at.refresh(p) for p in wanted]
    final = {p.id: (p.lifecycle, p.verdict) for p in wanted}
    assert list(final.values()) == [
        (Lifecycle.FAILED, Verdict.FAIL),
        (Lifecycle.FAILED, Verdict.ERROR),
        (Lifecycle.SUCCEEDED, Verdict.WARN),
        (Lifecycle.SUCCEEDED, Verdict.PASS),
    ]
    assert list(final) == [str(int(r) + offset_ms) for r in records]


async def test_the_oldest_promotion_alone_reads_past_the_newer_ones() -> None:
    sim = AppTrustSim(clock=SimClock(speed=0.0))
    async with sim:
        sim.add_version(KEY, VERSION)
        async with AppTrust(sim.base_url, sim.token, name="jf") as at:
            made = await _promote_four(sim, at)
            sim.clock.advance(20)
            oldest = await at.refresh(made[0])
    assert oldest.id == made[0].id
    assert oldest.lifecycle is Lifecycle.FAILED and oldest.verdict is Verdict.FAIL
    assert oldest.message == "gate said fail"
