"""What a model built in C would cost on the two list pages (issue 19, target 5): AppSec+'s,
read at discovery, and AppTrust's, which its polls read too.

`python -m bench.struct_option` (needs `pip install msgspec`, which scanhub does not depend on).

scanhub's models are frozen attrs classes, built field by field in Python; on a page of 1,000
records that alone is about as much as `json.loads` of the page (bench/HISTORY-NOTES.md). This
measures the alternative a decision would weigh: the same pages decoded by msgspec straight into
frozen `Struct`s shaped as the vendor documents them (typed: a wrong type is an error, times are
parsed), and, for AppSec+, each record then made into a canonical `Struct` with `Scan`'s 19
fields in Python. Beside them, in the same run, what the attrs model costs at the least: scanhub's
own parsers, AppSec+'s list decoded as scanhub decodes it and each record made into its `Scan` and
`FindingCounts` with no field read twice and nothing checked (the floor no parser can go under
while it builds these objects). Figures are the cost relative to `json.loads` of the same bytes,
measured as bench.history measures normalization (alternating batches, the collector on), three
times. Nothing here is used by scanhub; it is the evidence for the decision bench/HISTORY-NOTES.md
records (the models stay attrs classes).
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from typing import Any

from bench.history import interleaved
from bench.run import normalization_bodies
from scanhub import FindingCounts, Lifecycle, Scan, Vendor, Verdict
from scanhub.sansio import Response, decode_json, parse_time, where
from scanhub.vendors import NO_LINKS

try:
    import msgspec
    from msgspec import Struct
except ImportError:  # pragma: no cover - a research script
    sys.exit("bench.struct_option needs msgspec: pip install msgspec")


class Summary(Struct, frozen=True, rename="camel"):
    total_findings: int | None = None
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0


class AspScan(Struct, frozen=True, rename="camel"):
    """An AppSec+ scan as seed 003 documents it."""

    id: str
    application_id: str = ""
    scan_type: str | None = None
    status: str = ""
    triggered_by: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    summary: Summary | None = None
    message: str | None = None


class GateRecord(Struct, frozen=True):
    stage: str | None = None
    eval_id: str | None = None
    decision: str | None = None
    explanation: str | None = None


class Evaluations(Struct, frozen=True):
    exit_gate: GateRecord | None = None
    entry_gate: GateRecord | None = None
    release_gate: GateRecord | None = None


class AppTrustPromotion(Struct, frozen=True):
    """An AppTrust promotion record as seed 004 documents it."""

    status: str = ""
    project_key: str | None = None
    application_key: str | None = None
    application_version: str | None = None
    source_stage: str | None = None
    target_stage: str | None = None
    created_by: str | None = None
    created: datetime | None = None
    created_millis: int | None = None
    evaluations: Evaluations | None = None


class AppTrustPage(Struct, frozen=True):
    promotions: list[AppTrustPromotion]
    total: int | None = None
    limit: int | None = None
    offset: int | None = None


class CanonicalScan(Struct, frozen=True):
    """`Scan`'s fields, in its order."""

    vendor: str
    source: str
    id: str
    application_id: str
    lifecycle: str
    vendor_status: str
    verdict: str = "none"
    message: str | None = None
    links: Any = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    application_name: str | None = None
    scan_type: str | None = None
    triggered_by: str | None = None
    findings: Any = None
    final_scan_id: str | None = None
    raw: Any = None


_LIFECYCLE = {
    "queued": "queued",
    "running": "running",
    "completed": "succeeded",
    "failed": "failed",
}


def main() -> None:
    pages = normalization_bodies()
    at_body, at_records, at_parse = pages["apptrust (page of 1000 promotions)"]
    asp_body, asp_records, asp_parse = pages["appsecplus (list of 1000 scans)"]
    at_resp = Response(200, at_body, {"content-type": "application/json"})
    asp_resp = Response(200, asp_body, {"content-type": "application/json"})
    asp_where = where("appsecplus", "s", asp_resp)
    asp = msgspec.json.Decoder(list[AspScan])
    apptrust = msgspec.json.Decoder(AppTrustPage)
    assert len(asp.decode(asp_body)) == asp_records
    assert len(apptrust.decode(at_body).promotions) == at_records

    def canonical() -> list[CanonicalScan]:
        out = []
        for r in asp.decode(asp_body):
            s = r.status
            out.append(
                CanonicalScan(
                    "appsecplus",
                    "s",
                    r.id,
                    r.application_id,
                    _LIFECYCLE.get(s, "unknown"),
                    s,
                    "none",
                    r.message,
                    None,
                    None,
                    r.started_at,
                    r.completed_at,
                    r.completed_at,
                    None,
                    r.scan_type,
                    r.triggered_by,
                    r.summary,
                    None,
                    r,
                )
            )
        return out

    def attrs_floor() -> list[Scan]:
        # What any parser building scanhub's objects pays at the least: the page decoded as
        # scanhub decodes it, each field read once, nothing checked, the two times parsed.
        out = []
        for r in decode_json(asp_resp, asp_where):
            s, c = r["summary"], parse_time(r["completedAt"])
            counts = FindingCounts(
                s["critical"], s["high"], s["medium"], s["low"], s["totalFindings"]
            )
            out.append(
                Scan(
                    Vendor.APPSECPLUS,
                    "s",
                    r["id"],
                    r["applicationId"],
                    Lifecycle.SUCCEEDED,
                    r["status"],
                    Verdict.NONE,
                    None,
                    NO_LINKS,
                    None,
                    parse_time(r["startedAt"]),
                    c,
                    c,
                    None,
                    r["scanType"],
                    r["triggeredBy"],
                    counts,
                    None,
                    r,
                )
            )
        return out

    # The floor builds what scanhub's parser builds of this page (`raw` aside, which Scan's
    # equality leaves out, and is the same record in both).
    assert attrs_floor() == asp_parse(asp_resp)
    cases = [
        ("AppSec+ list: scanhub's parse_list", asp_body, lambda: asp_parse(asp_resp)),
        ("AppSec+ list: the attrs floor (decode, build, nothing checked)", asp_body, attrs_floor),
        ("AppSec+ list: typed decode", asp_body, lambda: asp.decode(asp_body)),
        ("AppSec+ list: typed decode + canonical Struct", asp_body, canonical),
        ("AppTrust page: scanhub's parse_promotions", at_body, lambda: at_parse(at_resp)),
        ("AppTrust page: typed decode", at_body, lambda: apptrust.decode(at_body)),
    ]
    for name, body, fn in cases:
        ratios = []
        for _ in range(3):
            t_json, t_fn = interleaved([lambda body=body: json.loads(body), fn], 3.0, 11)
            ratios.append(statistics.median(f / j for f, j in zip(t_fn, t_json, strict=True)))
        print(f"{name}: {', '.join(f'{x:.2f}x' for x in ratios)} json.loads")


if __name__ == "__main__":
    main()
