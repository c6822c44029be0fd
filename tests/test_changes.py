"""The rules of what the engine reports: states only move forward (`merge`), what counts as a
change worth telling (`significant`), and how a failed refresh is described (`ItemError`)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from scanhub import (
    AuthenticationError,
    Change,
    ItemError,
    Lifecycle,
    NotFoundError,
    RateLimitedError,
    RequestTimeout,
    Scan,
    ServerError,
    Snapshot,
    Vendor,
    Verdict,
)
from scanhub._changes import is_placeholder, merge, significant, supersedes

NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)

#: A vendor status of each lifecycle, as AppTrust spells them.
SPELLING = {
    Lifecycle.QUEUED: "PENDING",
    Lifecycle.RUNNING: "STARTED",
    Lifecycle.SUCCEEDED: "COMPLETED",
    Lifecycle.FAILED: "FAILED",
    Lifecycle.CANCELLED: "DELETING",
    Lifecycle.EXPIRED: "GONE",
    Lifecycle.UNKNOWN: "AWAITING_APPROVAL",
}
ACTIVE = [Lifecycle.QUEUED, Lifecycle.RUNNING]
TERMINAL = [Lifecycle.SUCCEEDED, Lifecycle.FAILED, Lifecycle.CANCELLED, Lifecycle.EXPIRED]


def item(lifecycle: Lifecycle, vendor_status: str | None = None, **kw: object) -> Scan:
    status = SPELLING[lifecycle] if vendor_status is None else vendor_status
    return Scan(Vendor.APPSECPLUS, "asp", "scan-001", "app-1", lifecycle, status, **kw)  # type: ignore[arg-type]


# --- merge: only forward -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Lifecycle.QUEUED, Lifecycle.RUNNING),
        *((a, t) for a in ACTIVE for t in TERMINAL),
        *((Lifecycle.UNKNOWN, x) for x in [*ACTIVE, *TERMINAL]),
    ],
)
def test_a_step_forward_is_taken(old: Lifecycle, new: Lifecycle) -> None:
    after = item(new)
    assert merge(item(old), after) is after


@pytest.mark.parametrize(
    ("old", "new"),
    [(Lifecycle.RUNNING, Lifecycle.QUEUED), *((t, a) for t in TERMINAL for a in ACTIVE)],
)
def test_a_step_backward_is_refused(old: Lifecycle, new: Lifecycle) -> None:
    """A stale answer (a cache, a replica behind) never undoes progress."""
    before = item(old)
    assert merge(before, item(new)) is before


@pytest.mark.parametrize("lifecycle", ACTIVE)
def test_a_new_vendor_status_of_the_same_rank_is_taken(lifecycle: Lifecycle) -> None:
    """STARTED -> PROCESSING are both `running`: the vendor status moved and must show."""
    after = item(lifecycle, "PROCESSING", message="step 2 of 3")
    assert merge(item(lifecycle, "STARTED"), after) is after


@pytest.mark.parametrize("old", TERMINAL)
@pytest.mark.parametrize("new", TERMINAL)
def test_a_terminal_state_is_still_updated_by_another_terminal_one(
    old: Lifecycle, new: Lifecycle
) -> None:
    """AppTrust: a COMPLETED promotion that is rolled back (DELETING) is `cancelled`."""
    after = item(new, message="rolled back")
    assert merge(item(old), after) is after


@pytest.mark.parametrize("old", [*ACTIVE, *TERMINAL, Lifecycle.UNKNOWN])
def test_a_placeholder_never_overwrites_a_known_item(old: Lifecycle) -> None:
    """Configuration tracks an item as `unknown` with no vendor status before its first poll;
    that placeholder arriving after a real observation changes nothing."""
    before = item(old)
    assert merge(before, item(Lifecycle.UNKNOWN, "")) is before


@pytest.mark.parametrize("old", ACTIVE)
def test_an_unknown_vendor_status_over_an_active_item_is_taken(old: Lifecycle) -> None:
    """A value the vendor never documented is news (kept raw), not a placeholder."""
    after = item(Lifecycle.UNKNOWN, "AWAITING_APPROVAL")
    assert merge(item(old), after) is after


@pytest.mark.parametrize("old", TERMINAL)
def test_an_unknown_vendor_status_never_reopens_a_finished_item(old: Lifecycle) -> None:
    before = item(old)
    assert merge(before, item(Lifecycle.UNKNOWN, "AWAITING_APPROVAL")) is before


def test_a_known_item_replaces_the_placeholder() -> None:
    after = item(Lifecycle.QUEUED)
    assert merge(item(Lifecycle.UNKNOWN, ""), after) is after


@pytest.mark.parametrize("old", [*ACTIVE, *TERMINAL, Lifecycle.UNKNOWN])
@pytest.mark.parametrize("new", [*ACTIVE, *TERMINAL, Lifecycle.UNKNOWN])
def test_supersedes_is_the_rule_merge_applies(old: Lifecycle, new: Lifecycle) -> None:
    """The stores judge a new observation with `supersedes`; the engine with `merge`: the
    same rule, so an item's state never depends on which of them saw it."""
    before, after = item(old), item(new)
    assert supersedes(before, after) is (merge(before, after) is after)


@pytest.mark.parametrize(
    ("lifecycle", "vendor_status", "placeholder"),
    [
        (Lifecycle.UNKNOWN, "", True),
        (Lifecycle.UNKNOWN, "AWAITING_APPROVAL", False),
        (Lifecycle.QUEUED, "", False),
        (Lifecycle.RUNNING, "STARTED", False),
        (Lifecycle.SUCCEEDED, "", False),
    ],
)
def test_only_an_unknown_item_with_no_vendor_status_is_a_placeholder(
    lifecycle: Lifecycle, vendor_status: str, placeholder: bool
) -> None:
    assert is_placeholder(item(lifecycle, vendor_status)) is placeholder


# --- significant: what consumers are told about -------------------------------------------------


BASE = item(Lifecycle.RUNNING, "STARTED", verdict=Verdict.NONE, message="working")


@pytest.mark.parametrize(
    "change",
    [
        {"lifecycle": Lifecycle.SUCCEEDED},
        {"verdict": Verdict.WARN},
        {"message": "step 2 of 3"},
        {"message": None},
        {"vendor_status": "PROCESSING"},
    ],
    ids=["lifecycle", "verdict", "message", "message-cleared", "vendor-status"],
)
def test_a_change_of_any_one_told_field_alone_is_significant(change: dict[str, object]) -> None:
    assert significant(BASE, attrs.evolve(BASE, **change))
    assert significant(attrs.evolve(BASE, **change), BASE)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"updated_at": NOW},
        {"links": {"self": "http://x/scans/scan-001"}},
        {"raw": {"status": "STARTED", "etag": "2"}},
        {"triggered_by": "ci"},
    ],
    ids=["same", "updated-at", "links", "raw", "triggered-by"],
)
def test_a_change_of_nothing_told_is_not_significant(change: dict[str, object]) -> None:
    assert not significant(BASE, attrs.evolve(BASE, **change))


# --- ItemError: a failed refresh, described ----------------------------------------------------


def test_a_rate_limit_error_keeps_its_wait() -> None:
    exc = RateLimitedError("slow down", retry_after=30.0, vendor="iq", source="cloud")
    err = ItemError.of(exc, NOW)
    assert err == ItemError("RateLimitedError", str(exc), True, NOW, 30.0)
    assert "iq/cloud" in err.message


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (
            ServerError("boom", vendor="threadfix", operation="pending scan status", status=503),
            True,
        ),
        (RequestTimeout("too slow", vendor="apptrust"), True),
        (AuthenticationError("Bad Credentials", vendor="apptrust", status=401), False),
        (NotFoundError("no such scan", vendor="appsecplus", status=404), False),
    ],
)
def test_a_vendor_error_is_named_with_its_retryability(exc: Exception, retryable: bool) -> None:
    err = ItemError.of(exc, NOW)
    assert err == ItemError(type(exc).__name__, str(exc), retryable, NOW, None)
    assert str(exc).startswith(exc.vendor)  # type: ignore[attr-defined]


def test_an_unexpected_exception_is_never_retryable_and_says_so() -> None:
    err = ItemError.of(KeyError("status"), NOW)
    assert err == ItemError("KeyError", "unexpected error: 'status'", False, NOW, None)


# --- Snapshot and Change ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifecycles", "done"),
    [
        ([], True),
        (TERMINAL, True),
        ([Lifecycle.SUCCEEDED, Lifecycle.RUNNING], False),
        ([Lifecycle.UNKNOWN], False),
    ],
)
def test_a_snapshot_is_all_terminal_only_when_every_item_finished(
    lifecycles: list[Lifecycle], done: bool
) -> None:
    snap = Snapshot(tuple(item(x) for x in lifecycles), {}, NOW)
    assert snap.all_terminal is done


def test_a_change_is_keyed_by_the_item_it_is_about() -> None:
    after = item(Lifecycle.SUCCEEDED)
    assert Change(None, after, NOW).key == after.key == item(Lifecycle.QUEUED).key
