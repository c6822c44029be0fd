"""The canonical model: one vocabulary for every vendor.

Everything here is plain data (frozen attrs classes and str enums). Vendor adapters produce these
objects; the aggregator, the CLI and user code consume them. Processing state (`Lifecycle`) is
kept apart from the security/policy result (`Verdict`), as GitHub Checks keeps `status` apart
from `conclusion`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from attrs import field, frozen


class Lifecycle(StrEnum):
    """Where a scan or promotion stands in its processing, whatever the vendor.

    `unknown` is what a vendor value we do not recognise becomes; it is not terminal, so a
    watcher keeps polling an item in that state until it becomes something we understand.
    `expired` is terminal: the vendor forgot the item before scanhub saw it finish (Sonatype IQ
    drops promote-scan status ids two hours after the request), so its outcome is unknown and
    polling it again cannot help.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True once the item will not change any more (succeeded, failed, cancelled,
        expired)."""
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """True while the vendor is still working on the item (queued, running)."""
        return self in _ACTIVE


_TERMINAL = frozenset(
    {Lifecycle.SUCCEEDED, Lifecycle.FAILED, Lifecycle.CANCELLED, Lifecycle.EXPIRED}
)
_ACTIVE = frozenset({Lifecycle.QUEUED, Lifecycle.RUNNING})


class Verdict(StrEnum):
    """The security or policy result, separate from the processing state.

    Worst-of order, used to roll up gates: none < pass < warn < error < fail. `fail` ranks above
    `error` because it is a definite policy decision, whereas `error` says the evaluation itself
    broke; both block (`blocks`).
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    NONE = "none"

    @property
    def rank(self) -> int:
        """Position in the worst-of order (higher is worse)."""
        return _VERDICT_RANK[self]

    @property
    def blocks(self) -> bool:
        """True when the verdict stops a release (fail or error)."""
        return self in (Verdict.FAIL, Verdict.ERROR)

    @staticmethod
    def worst(verdicts: Iterable[Verdict]) -> Verdict:
        """The worst of an iterable of verdicts; `none` when it is empty."""
        result, rank = Verdict.NONE, 0
        for v in verdicts:
            r = _VERDICT_RANK[v]
            if r > rank:
                result, rank = v, r
        return result


_VERDICT_RANK = {
    Verdict.NONE: 0,
    Verdict.PASS: 1,
    Verdict.WARN: 2,
    Verdict.ERROR: 3,
    Verdict.FAIL: 4,
}


class Vendor(StrEnum):
    """The names of the vendors built into scanhub.

    An item's `vendor` is a plain string, the registry name of its vendor (see
    `scanhub.vendors`): these four, or the name of a third-party vendor. Members compare equal
    to their strings (`Vendor.IQ == "iq"`).
    """

    IQ = "iq"
    THREADFIX = "threadfix"
    APPSECPLUS = "appsecplus"
    APPTRUST = "apptrust"


class GateKind(StrEnum):
    """Which gate a policy evaluation guards: a stage's entry or exit (AppTrust evaluates both
    on a promotion), or the release gate of AppTrust's release to production."""

    ENTRY = "entry"
    EXIT = "exit"
    RELEASE = "release"


# The models are frozen *dict* classes, not slotted ones. attrs' frozen slotted __init__ sets
# each field through object.__setattr__; a dict class writes its __dict__ directly and builds a
# Promotion about 2x faster. An A/B over alternating runs of bench/ normalization gave the dict
# classes 0.3-0.5x lower cost relative to json.loads for every vendor; they use ~110 bytes more
# per tracked item (348 B vs 236 B beyond the raw payload), far inside the 4 KiB budget.


@frozen(slots=False)
class FindingCounts:
    """Findings by severity on a four-level scale.

    Sonatype IQ's three levels map as critical -> critical, severe -> high, moderate -> medium
    (IQ has no `low`). `total` is the vendor's own total where it gives one, else the sum.
    """

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    total: int = 0


@frozen(slots=False)
class Gate:
    """One policy gate evaluated for a promotion."""

    kind: GateKind
    verdict: Verdict
    stage: str | None = None
    evaluation_id: str | None = None
    explanation: str | None = None
    #: The vendor's decision string exactly as received (e.g. "pass", "Warning").
    vendor_decision: str | None = None


#: The shared, read-only `links` of an item that has none (saves a dict per item).
NO_LINKS: Mapping[str, str] = MappingProxyType({})


#: RFC 3986 unreserved characters: a part made only of them is its own encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def _key(*parts: object) -> str:
    # Each part is percent-encoded so that ":" inside an id can never make two keys collide
    # (a part of unreserved characters only, the usual id, is what `quote` would return).
    return ":".join(
        p if type(p) is str and _UNRESERVED(p) else quote(str(p), safe="") for p in parts
    )


@frozen(slots=False)
class _Tracked:
    """The fields every tracked item has, scan or promotion."""

    #: The registry name of the vendor (`Vendor` names the built-in ones).
    vendor: str
    #: The client's `name`: tells two servers of one vendor apart.
    source: str
    #: The vendor's id of the item.
    id: str
    #: The vendor's id of the application (IQ: the internal id).
    application_id: str
    lifecycle: Lifecycle
    #: The vendor's own status string, always kept (empty when the vendor has not said yet).
    vendor_status: str
    verdict: Verdict = Verdict.NONE
    #: Error or reason text from the vendor.
    message: str | None = None
    #: Name -> absolute URL.
    links: Mapping[str, str] = field(default=NO_LINKS, hash=False)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    #: The application as people call it, when it differs from `application_id` and is known
    #: (IQ: the public id, such as "webshop", of the internal id).
    application_name: str | None = None

    @property
    def application(self) -> str:
        """The application as it is shown: its name when known, else its id."""
        return self.application_name or self.application_id


@frozen(slots=False)
class Scan(_Tracked):
    """A security scan, normalized.

    `key` identifies the scan across every configured source and survives serialisation.
    `raw` is the vendor payload the object was built from; it is excluded from equality.
    """

    scan_type: str | None = None
    triggered_by: str | None = None
    findings: FindingCounts | None = None
    #: The vendor's id for the finished scan when it differs from `id` (ThreadFix `scanId`).
    final_scan_id: str | None = None
    raw: Any = field(default=None, eq=False, hash=False, repr=False)

    @property
    def kind(self) -> str:
        """Always "scan"; lets mixed collections be told apart without isinstance."""
        return "scan"

    @cached_property
    def key(self) -> str:
        """A stable identifier, unique across vendors and sources (computed once)."""
        return _key(self.vendor, self.source, "scan", self.application_id, self.id)


@frozen(slots=False)
class Promotion(_Tracked):
    """A release promotion (IQ promote-scan, AppTrust version promotion), normalized."""

    version: str | None = None
    source_stage: str | None = None
    target_stage: str | None = None
    promoted_by: str | None = None
    gates: tuple[Gate, ...] = ()
    #: The scan the promotion evaluated (IQ `scanId`), when known.
    scan_id: str | None = None
    raw: Any = field(default=None, eq=False, hash=False, repr=False)

    @property
    def kind(self) -> str:
        """Always "promotion"."""
        return "promotion"

    @cached_property
    def key(self) -> str:
        """A stable identifier, unique across vendors and sources (computed once)."""
        return _key(
            self.vendor,
            self.source,
            "promotion",
            self.application_id,
            self.version or "",
            self.id,
        )


#: Anything scanhub tracks.
Item = Scan | Promotion
