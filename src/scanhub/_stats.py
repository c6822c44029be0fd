"""Time in state: how long items sit queued and run, how often they fail or are blocked, and
which unfinished ones are stuck. The numbers are store queries (`Store.stats`,
`Store.activity`, `Store.overdue`); this module names the windows, applies the stuck rule and
shapes one report that `GET /api/v1/stats` and `scanhub stats` both give.

The stuck rule: an unfinished item is stuck once it has been under way (since the vendor
created it, else since scanhub first saw it) longer than its threshold, which is, first found:

1. its source's `stuck_after_by_kind` for its kind (`[[source]] stuck_after_by_kind = { scan =
   600 }`);
2. its source's `stuck_after`;
3. the 90th percentile of the total time of the same source and kind's items that finished in
   the last 7 days, once at least 20 did ("longer than 9 in 10 of its peers");
4. the top-level `stuck_after`, else 30 minutes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from ._convert import timestamp_or_none
from ._defaults import STUCK_AFTER
from .store import (
    OUTCOMES,
    PHASES,
    STAT_GROUPS,
    Count,
    GroupStats,
    Spread,
    Store,
    StoredItem,
    phases,
)

if TYPE_CHECKING:
    from ._config import Config

#: The windows stats are read over, and the bucket of the activity series of each.
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "24h": (timedelta(hours=24), 3600),
    "7d": (timedelta(days=7), 6 * 3600),
    "30d": (timedelta(days=30), 24 * 3600),
}
DEFAULT_WINDOW = "24h"
DEFAULT_GROUP_BY = ("source", "kind")
#: The history the stuck rule learns a threshold from, and how many finished items it needs.
LEARN_WINDOW = timedelta(days=7)
LEARN_MIN = 20
KINDS = ("scan", "promotion")


def parse_window(text: str) -> str:
    """A window name (`WINDOWS`); ValueError naming the choices."""
    if text not in WINDOWS:
        raise ValueError(f"window: expected one of {', '.join(WINDOWS)}, got {text[:40]!r}")
    return text


#: What `parse_group_by` skips around a name.
_SPACE = " \t\n"


def parse_group_by(text: str) -> tuple[str, ...]:
    """Comma-separated group names (some of `STAT_GROUPS`, each once; spaces, tabs and line
    breaks around them and empty places are skipped; empty: no groups). The OpenAPI
    document's `group_by` pattern says the same."""
    names = [n.strip(_SPACE) for n in text.split(",") if n.strip(_SPACE)]
    wrong = [n for n in names if n not in STAT_GROUPS]
    if wrong or len(set(names)) != len(names):
        raise ValueError(
            f"group_by: expected some of {', '.join(STAT_GROUPS)} (comma-separated, each once),"
            f" got {text[:60]!r}"
        )
    return tuple(g for g in STAT_GROUPS if g in names)


@frozen
class Threshold:
    """How long an unfinished item may be under way before it is stuck, and why: `configured`
    (stuck_after of its source or kind), `p90` (learned from its peers), or `default`."""

    seconds: float
    basis: str


@frozen
class StuckRule:
    """The stuck rule (module docstring) with what it read: configured thresholds by (source,
    kind or None for the whole source), learned ones by (source, kind), and the fallback."""

    configured: Mapping[tuple[str, str | None], float]
    learned: Mapping[tuple[str, str], float]
    default: float = STUCK_AFTER
    # Each (source, kind)'s threshold once decided (a page asks for it once an item).
    _decided: dict[tuple[str, str], Threshold] = field(
        factory=dict, init=False, repr=False, eq=False
    )

    def threshold(self, source: str, kind: str) -> Threshold:
        """The threshold of a source's items of a kind."""
        decided = self._decided.get((source, kind))
        if decided is None:
            decided = self._decided[(source, kind)] = self._decide(source, kind)
        return decided

    def _decide(self, source: str, kind: str) -> Threshold:
        for key in ((source, kind), (source, None)):
            if key in self.configured:
                return Threshold(self.configured[key], "configured")
        if (source, kind) in self.learned:
            return Threshold(self.learned[(source, kind)], "p90")
        return Threshold(self.default, "default")

    def cutoff(self, source: str, kind: str, now: datetime) -> datetime:
        """A source's items of a kind under way since before this are stuck at `now`: now less
        the threshold (to the microsecond, as stores keep times). The one comparison both
        `stuck` (the items page and API) and `stuck_counts` (the store's `overdue`: /metrics,
        the stats page) make."""
        return now - timedelta(seconds=self.threshold(source, kind).seconds)

    def stuck(self, stored: StoredItem, now: datetime) -> bool:
        """Whether an item is stuck now: unfinished, and under way since before its cutoff.
        Under way since its kept `since` (`since_of`: the vendor's creation time, else when
        scanhub first saw it), which every store fills when it first tracks an item and
        `overdue` reads; an item whose start is not known (not read from a store, or a row of
        an old state file migrated without any time) is not stuck."""
        item = stored.item
        if item.lifecycle.is_terminal or stored.since is None:
            return False
        return stored.since < self.cutoff(item.source, item.kind, now)


def configured_thresholds(config: Config | None) -> dict[tuple[str, str | None], float]:
    """The thresholds a configuration sets, by (source, kind or None)."""
    out: dict[tuple[str, str | None], float] = {}
    if config is None:
        return out
    for s in config.sources:
        if s.stuck_after is not None:
            out[(s.source_name, None)] = s.stuck_after
        by_kind = s.stuck_after_by_kind
        for kind in KINDS:
            value = getattr(by_kind, kind) if by_kind is not None else None
            if value is not None:
                out[(s.source_name, kind)] = value
    return out


async def learn(store: Store, now: datetime) -> dict[tuple[str, str], float]:
    """Per (source, kind), the p90 of the total time of the items that finished in the last
    `LEARN_WINDOW`, where at least `LEARN_MIN` did."""
    found = await store.stats(since=now - LEARN_WINDOW, until=now, group_by=("source", "kind"))
    return {
        (g.source or "", g.kind or ""): g.total.p90
        for g in found
        if g.total.n >= LEARN_MIN and g.total.p90 is not None and g.total.p90 > 0
    }


async def stuck_rule(
    store: Store, config: Config | None, now: datetime, default: float | None = None
) -> StuckRule:
    """The stuck rule of a configuration over what the store has learned."""
    fallback = default if default is not None else STUCK_AFTER
    if config is not None and config.stuck_after is not None:
        fallback = config.stuck_after
    return StuckRule(configured_thresholds(config), await learn(store, now), fallback)


def timing(stored: StoredItem, now: datetime, rule: StuckRule) -> dict[str, Any]:
    """An item's time in state, as the API shows it: its kept times, the seconds it was (or
    has been, while unfinished) queued, running and under way in all, since its last change,
    and its stuck threshold."""
    item = stored.item
    if item.lifecycle.is_terminal:
        # A finished item's times no longer move with `now`: written once (most listed items).
        since, running_at, finished, queued, running, total = _finished_times(
            stored.since, stored.running_at, stored.finished_at
        )
    else:
        since, running_at, finished, queued, running, total = _times(
            stored.since, stored.running_at, stored.finished_at, now
        )
    changed = stored.last_change
    threshold = rule.threshold(item.source, item.kind)
    return {
        "since": since,
        "running_at": running_at,
        "finished_at": finished,
        "queued_seconds": queued,
        "running_seconds": running,
        "total_seconds": total,
        "since_change_seconds": _ms(
            None if changed is None else max(0.0, (now - changed).total_seconds())
        ),
        "stuck_after_seconds": threshold.seconds,
        "stuck_basis": threshold.basis,
    }


_Times = tuple[str | None, str | None, str | None, float | None, float | None, float | None]


def _times(
    since: datetime | None,
    running_at: datetime | None,
    finished_at: datetime | None,
    now: datetime | None,
) -> _Times:
    """The kept times as the API writes them, and the queued, running and total seconds (an
    unfinished item's run until `now`). A finished item without a kept finish time was first
    seen finished: its phases are not known."""
    if now is None and finished_at is None:
        queued = running = total = None
    else:
        queued, running, total = phases(since, running_at, finished_at, now)
    return (
        _ts(since),
        _ts(running_at),
        _ts(finished_at),
        _ms(queued),
        _ms(running),
        _ms(total),
    )


def _finished_times_of(
    since: datetime | None, running_at: datetime | None, finished_at: datetime | None
) -> _Times:
    return _times(since, running_at, finished_at, None)


#: `_times` of finished items, remembered by their three kept times (bounded).
_finished_times = functools.lru_cache(maxsize=16384)(_finished_times_of)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_ts = timestamp_or_none


def _spread(s: Spread) -> dict[str, Any]:
    return {"n": s.n, "p50": s.p50, "p90": s.p90, "max": s.max}


def group_dict(g: GroupStats) -> dict[str, Any]:
    """One group of a report."""
    return {
        "vendor": g.vendor,
        "source": g.source,
        "kind": g.kind,
        "finished": g.finished,
        "failed": g.failed,
        "cancelled": g.cancelled,
        "blocked": g.blocked,
        "failure_rate": round(g.failure_rate, 4),
        "blocked_rate": round(g.blocked_rate, 4),
        **{phase: _spread(getattr(g, phase)) for phase in PHASES},
    }


async def report(
    store: Store,
    *,
    window: str = DEFAULT_WINDOW,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    now: datetime,
    rule: StuckRule,
) -> dict[str, Any]:
    """The report `GET /api/v1/stats` and `scanhub stats --format json` give: the groups of
    items finished in the window, transitions per bucket and outcome, and per source and kind
    its stuck threshold and how many unfinished items are past it."""
    length, bucket = WINDOWS[window]
    since = now - length
    groups = await store.stats(since=since, until=now, group_by=group_by)
    activity = await store.activity(since=since, until=now, bucket=bucket)
    buckets: dict[datetime, dict[str, int]] = {}
    for a in activity:
        buckets.setdefault(a.start, {})[a.outcome] = a.n
    return {
        "window": window,
        "since": _ts(since),
        "until": _ts(now),
        "group_by": list(group_by),
        "groups": [group_dict(g) for g in groups],
        "activity": {
            "bucket_seconds": bucket,
            "outcomes": list(OUTCOMES),
            "buckets": [{"start": _ts(t), "counts": c} for t, c in sorted(buckets.items())],
        },
        "stuck": await stuck_counts(store, rule, now),
    }


async def stuck_counts(
    store: Store, rule: StuckRule, now: datetime, counts: Sequence[Count] | None = None
) -> list[dict[str, Any]]:
    """Per (vendor, source, kind) the store tracks: its threshold, and how many of its
    unfinished items are past it (the store's kept counts say which exist; `overdue` counts,
    through the index of active items by source and start). A caller that has just read the
    kept counts passes them as `counts`: they are not read again (one scrape, one reading)."""
    if counts is None:
        counts = await store.counts()
    triples = sorted({(str(c.vendor), c.source, c.kind) for c in counts})
    # The threshold is a source and kind's; two vendors' sources may share a name: the store
    # is asked about each (source, kind) once, and answers per vendor.
    thresholds = {(s, k): rule.threshold(s, k) for _, s, k in triples}
    found = await store.overdue([(s, k, rule.cutoff(s, k, now)) for s, k in thresholds])
    stuck = {(str(o.vendor), o.source, o.kind): o.n for o in found}
    return [
        {
            "vendor": v,
            "source": s,
            "kind": k,
            "stuck_after_seconds": thresholds[(s, k)].seconds,
            "basis": thresholds[(s, k)].basis,
            "stuck": stuck.get((v, s, k), 0),
        }
        for v, s, k in triples
    ]


def human(seconds: float | None) -> str:
    """A duration for people: 45s, 12m 05s, 3h 20m, 2d 04h; an en dash when unknown."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def table(data: Mapping[str, Any]) -> Iterable[str]:
    """A report as lines of a plain table (`scanhub stats`)."""
    group_by = data["group_by"] or ["all"]
    yield (
        f"items finished in the last {data['window']} ({data['since']} to {data['until']}),"
        f" by {', '.join(group_by)}"
    )
    header = [*group_by, "finished", "failed", "blocked", "queued p50/p90/max",
              "running p50/p90/max", "total p50/p90/max"]  # fmt: skip
    rows = []
    for g in data["groups"]:
        labels = [str(g.get(name) or "") for name in data["group_by"]] or ["all"]
        rows.append(
            [
                *labels,
                str(g["finished"]),
                f"{g['failure_rate']:.0%}",
                f"{g['blocked_rate']:.0%}",
                *(
                    " / ".join(human(g[phase][p]) for p in ("p50", "p90", "max"))
                    for phase in PHASES
                ),
            ]
        )
    if not rows:
        yield "(nothing finished in this window)"
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            yield "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
    for s in data["stuck"]:
        basis = {"configured": "configured", "p90": "p90 of 7 days", "default": "default"}
        yield (
            f"stuck: {s['source']} {s['kind']}: {s['stuck']} unfinished under way longer than "
            f"{human(s['stuck_after_seconds'])} ({basis.get(s['basis'], s['basis'])})"
        )


__all__ = [
    "DEFAULT_GROUP_BY",
    "DEFAULT_WINDOW",
    "WINDOWS",
    "StuckRule",
    "Threshold",
    "configured_thresholds",
    "group_dict",
    "human",
    "learn",
    "parse_group_by",
    "parse_window",
    "report",
    "stuck_counts",
    "stuck_rule",
    "table",
    "timing",
]
