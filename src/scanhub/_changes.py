"""What the engine reports: changes, errors, snapshots, and the rule that states only move
forward."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from attrs import field, frozen

from ._errors import RateLimitedError, ScanhubError
from ._model import Item, Lifecycle, Verdict

_RANK = {
    Lifecycle.QUEUED: 0,
    Lifecycle.RUNNING: 1,
    Lifecycle.SUCCEEDED: 2,
    Lifecycle.FAILED: 2,
    Lifecycle.CANCELLED: 2,
    Lifecycle.EXPIRED: 2,
}


@frozen
class ItemError:
    """Why the last refresh of an item (or a discovery on a source) failed."""

    type: str
    message: str
    retryable: bool
    observed_at: datetime
    retry_after: float | None = None

    @classmethod
    def of(cls, exc: BaseException, observed_at: datetime) -> ItemError:
        """Describe an exception (its text is already redacted by the client)."""
        if isinstance(exc, ScanhubError):
            return cls(
                type(exc).__name__,
                str(exc),
                exc.retryable,
                observed_at,
                exc.retry_after if isinstance(exc, RateLimitedError) else None,
            )
        return cls(type(exc).__name__, f"unexpected error: {exc}", False, observed_at)

    @property
    def permanent(self) -> bool:
        """Whether no later poll can mend it: the credentials are refused, the vendor has no
        such item, the request is wrong, or the track is (not a malformed answer, which a
        proxy or a restart may give once)."""
        return self.type in PERMANENT_ERRORS


#: The errors no later poll mends (`ItemError.permanent`): `scanhub watch` ends on them.
PERMANENT_ERRORS = frozenset(
    {"AuthenticationError", "NotFoundError", "BadRequestError", "ConfigError"}
)


@frozen
class Snapshot:
    """Every tracked item at one moment, with the errors of those that could not be refreshed."""

    items: tuple[Item, ...]
    #: Item key -> the error of its last refresh (absent when it succeeded).
    errors: Mapping[str, ItemError]
    observed_at: datetime
    #: Source name -> the error of a discovery query on it (see `hub.discovery`).
    source_errors: Mapping[str, ItemError] = field(factory=dict)

    @property
    def all_terminal(self) -> bool:
        """True when every item has finished."""
        return all(i.lifecycle.is_terminal for i in self.items)


@frozen
class Change:
    """An item changed between two observations. `before` is None for the first sighting.

    `id` is the transition's id in the store's append-only log (None where no store recorded
    it, as for the first sightings `watch` yields). `lagged` marks a change that restates an
    item's current state because the consumer fell behind and changes in between were
    dropped (see `ScanHub.watch`)."""

    before: Item | None
    after: Item
    observed_at: datetime
    id: int | None = None
    lagged: bool = False

    @property
    def key(self) -> str:
        """The tracked item's key."""
        return self.after.key


class State(Protocol):
    """What the monotonic rule and change detection read of an item (an `Item`, or a store's
    row of its current state)."""

    @property
    def lifecycle(self) -> Lifecycle: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def message(self) -> str | None: ...
    @property
    def vendor_status(self) -> str: ...


def significant(a: State, b: State) -> bool:
    """True when `b` differs from `a` in what consumers are told about."""
    return (
        a.lifecycle is not b.lifecycle
        or a.verdict is not b.verdict
        or a.message != b.message
        or a.vendor_status != b.vendor_status
    )


def supersedes(old: State, new: State) -> bool:
    """True when `new` replaces `old`: False when it would move the lifecycle backwards, or
    when it is a placeholder (`unknown` with no vendor status, as configuration tracks an item
    before its first poll) for an item already known."""
    if new.lifecycle is Lifecycle.UNKNOWN and not new.vendor_status:
        return False
    if old.lifecycle.is_terminal and not new.lifecycle.is_terminal:
        return False
    before, after = _RANK.get(old.lifecycle), _RANK.get(new.lifecycle)
    return before is None or after is None or after >= before


def is_placeholder(item: State) -> bool:
    """True for an item tracked before anything is known of it (`unknown`, no vendor status):
    it waits for its first poll, and is not part of the history."""
    return item.lifecycle is Lifecycle.UNKNOWN and not item.vendor_status


def merge(old: Item, new: Item) -> Item:
    """`new` if it supersedes `old` (see `supersedes`), else `old`."""
    return new if supersedes(old, new) else old
