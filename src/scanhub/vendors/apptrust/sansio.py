"""JFrog AppTrust: application version promotions with entry/exit gates, as pure functions.

Source documents: shared/seeds/004 (Get Application Version Promotions), shared/vendor-notes.md,
JFrog's REST reference ("Promote Application Version", "Release Application Version", "Get
Application Version Promotion Details"), `jfrog/jfrog-client-go` (`apptrust/services/
application.go`: the promotions envelope, statuses COMPLETED / FAILED / STARTED / DELETING) and
`jfrog/jfrog-cli-application` (`model/promote_app_version_request.go`: promotion types copy,
move, keep and dry_run; `service/versions/version_service.go`: `async=` on promote and
release). `base_url` is `https://HOST/apptrust/api/v1`.

Refreshing a promotion reads the promotions list: the documented details endpoint
(`GET .../promotions/{created_millis}`) answers the target stage, creator, time and artifacts,
but no status and no gate evaluations.

The vendor documents disagree with themselves on field names and status casing; every variant
they show is read (see adapters.md).
"""

from __future__ import annotations

import bisect
from collections.abc import Container, Iterable, Mapping
from typing import Any, TypedDict, Unpack

from attrs import define, field, frozen

from scanhub.sansio import (
    Request,
    Response,
    Where,
    as_list,
    as_object,
    decode_json,
    fail,
    join_url,
    map_value,
    map_verdict,
    opt_int,
    opt_str,
    parse_time,
    raise_for_status,
    segment,
    where,
)
from scanhub.vendors import (
    NO_LINKS,
    BadRequestError,
    Gate,
    GateKind,
    Lifecycle,
    PayloadError,
    Promotion,
    Vendor,
    Verdict,
)

VENDOR = Vendor.APPTRUST.value

#: Promotion status (compared lower-case) -> Lifecycle. Samples in seed 004 use FAILED and
#: COMPLETED; its filter docs use success, pending, failed; related JFrog promotion APIs use
#: STARTED, PROCESSING, DELETING (vendor-notes.md).
STATUS_MAP: Mapping[str, Lifecycle] = {
    # The promote and release answers say `success` or `failure` ("the outcome of the
    # request"); the list's records say COMPLETED / FAILED / STARTED / DELETING
    # (jfrog-client-go `PromotionStatus`).
    "failure": Lifecycle.FAILED,
    "pending": Lifecycle.QUEUED,
    "started": Lifecycle.RUNNING,
    "processing": Lifecycle.RUNNING,
    "completed": Lifecycle.SUCCEEDED,
    "success": Lifecycle.SUCCEEDED,
    "failed": Lifecycle.FAILED,
    # The promotion is being rolled back: its effect will not stand (see adapters.md).
    "deleting": Lifecycle.CANCELLED,
}

#: Gate decision (compared lower-case) -> Verdict. The REST answers say `pass`, `warn`, `fail`
#: on entry/exit gates and `passed`, `warn`, `failed` on the release gate; the UI shows Pass,
#: Fail, Warning, Error (Error = the evaluation itself failed; a warning does not block).
DECISION_MAP: Mapping[str, Verdict] = {
    "pass": Verdict.PASS,
    "passed": Verdict.PASS,
    "warn": Verdict.WARN,
    "warning": Verdict.WARN,
    "fail": Verdict.FAIL,
    "failed": Verdict.FAIL,
    "error": Verdict.ERROR,
}

#: `promotion_type` values of the promote call: copy (the default), move and dry_run in the
#: REST reference; keep in JFrog's own CLI (`PromotionTypeKeep`).
PROMOTION_TYPES = ("copy", "move", "keep", "dry_run")
#: How far apart (ms) the time a promote answer names and the list's `created_millis` may be
#: and still be the same promotion, when the answer carried no `created_millis` of its own.
SAME_PROMOTION_MS = 5000
#: `order_by` values of the promotions list.
ORDER_BY = ("created", "created_by", "version", "stage")


def auth_headers(token: str) -> dict[str, str]:
    """`Authorization: Bearer {access token}`."""
    return {"Authorization": f"Bearer {token}"}


def _version_path(application_key: str, version: str) -> str:
    key = segment(application_key, vendor=VENDOR, operation="request", what="application_key")
    ver = segment(version, vendor=VENDOR, operation="request", what="version")
    return f"applications/{key}/versions/{ver}"


# --- Promotions list (paged) -----------------------------------------------------------------


@frozen
class Filters:
    """Filters of the promotions list; applied by the server and checked again locally, so a
    server that ignores `filter_by` still yields only matching promotions."""

    target_stage: str | None = None
    status: str | None = None
    promoted_by: str | None = None

    def params(self) -> list[tuple[str, str]]:
        """`filter_by` query parameters, one `field:value` each."""
        out = []
        for name in ("target_stage", "status", "promoted_by"):
            value = getattr(self, name)
            if value is not None:
                out.append(("filter_by", f"{name}:{value}"))
        return out

    def matches(self, promo: Promotion) -> bool:
        """True when `promo` satisfies every filter (status by vendor spelling or lifecycle)."""
        if self.target_stage is not None and promo.target_stage != self.target_stage:
            return False
        if self.promoted_by is not None and promo.promoted_by != self.promoted_by:
            return False
        if self.status is not None:
            wanted = self.status.lower()
            mapped = STATUS_MAP.get(wanted)
            if promo.vendor_status.lower() != wanted and (
                promo.lifecycle.value != wanted and promo.lifecycle is not mapped
            ):
                return False
        return True


@frozen
class Page:
    """One page of promotions and the paging numbers the server sent."""

    promotions: list[Promotion]
    total: int | None
    offset: int
    limit: int | None
    #: How many records the server returned, before local filtering.
    received: int
    #: The ids of every record the server returned, before local filtering.
    ids: tuple[str, ...] = ()
    #: The offset the server says it answered, when it said one.
    echoed_offset: int | None = None

    def next_offset(self) -> int | None:
        """Where the next page starts, or None when this was the last one (an empty page, or
        `total` reached). `Pager` adds the checks against a misbehaving server."""
        if self.received == 0:
            return None
        nxt = self.offset + self.received
        if self.total is not None and nxt >= self.total:
            return None
        return nxt


@define
class Pager:
    """Paging through the promotions list so that it always ends and never yields a record
    twice, whatever the server answers.

    It stops on an empty page, a short page (fewer records than asked for, unless `total`
    says more remain), or `total` reached, and after `max_pages` pages. A server at fault (an
    offset that is not the one asked for, negative or going backwards; a page of nothing but
    records already seen) ends the paging with `fault` set, so the caller can say so with a
    typed error after yielding what was new. The next offset is always counted here, never
    taken from the server.
    """

    page_size: int
    max_pages: int = 10_000
    offset: int = 0
    pages: int = 0
    done: bool = False
    fault: str | None = None
    seen: set[str] = field(factory=set)

    def accept(self, page: Page, requested: int) -> list[Promotion]:
        """The promotions of `page` (asked for at offset `requested`) not yielded before, and
        where to go next (`offset`, `done`, `fault`)."""
        self.pages += 1
        if page.echoed_offset is not None and page.echoed_offset != requested:
            return self._stop(
                f"asked for offset {requested}, the server answered offset {page.echoed_offset}"
            )
        ids = page.ids or tuple(p.id for p in page.promotions)
        if ids and all(i in self.seen for i in ids):
            return self._stop(
                f"the page at offset {requested} repeats records already received (does the "
                "server ignore offset?)"
            )
        new = [p for p in page.promotions if p.id not in self.seen]
        self.seen.update(ids)
        nxt = page.next_offset()
        # A short page ends the list, unless `total` says more remain (a server that caps
        # `limit` below what was asked for); max_pages and the checks above still bound it.
        short = page.received < self.page_size and (page.total is None or nxt is None)
        if nxt is None or short:
            self.done = True
        elif self.pages >= self.max_pages:
            self.done = True
            self.fault = f"more than {self.max_pages} pages of {self.page_size}; stopped there"
        else:
            self.offset = requested + page.received
        return new

    def _stop(self, fault: str) -> list[Promotion]:
        self.done, self.fault = True, fault
        return []


def build_promotions(
    base_url: str,
    application_key: str,
    version: str,
    *,
    offset: int = 0,
    limit: int = 100,
    filters: Filters | None = None,
    order_by: str = "created",
    ascending: bool = False,
    include_message: bool = True,
) -> Request:
    """GET .../versions/{version}/promotions with paging, filters and order."""
    at = Where(VENDOR, "", "list promotions")
    if order_by not in ORDER_BY:
        fail(BadRequestError, at, f"order_by must be one of {', '.join(ORDER_BY)}")
    if limit < 1 or offset < 0:
        fail(BadRequestError, at, "limit must be >= 1 and offset >= 0")
    params = [("offset", str(offset)), ("limit", str(limit))]
    if include_message:
        params.append(("include", "message"))
    params.extend((filters or Filters()).params())
    params += [("order_by", order_by), ("order_asc", "true" if ascending else "false")]
    return Request(
        "GET",
        join_url(base_url, f"{_version_path(application_key, version)}/promotions"),
        "list promotions",
        params=tuple(params),
        headers={"Accept": "application/json"},
    )


def parse_promotions(
    resp: Response,
    *,
    source: str,
    application_key: str,
    version: str,
    offset: int,
    filters: Filters | None = None,
) -> Page:
    """One page of the envelope `{"promotions": [...], "total", "limit", "offset"}`."""
    at = where(VENDOR, source, resp)
    _check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    records = as_list(body.get("promotions"), at, "`promotions`", resp)
    promos = [
        promotion_from_record(
            as_object(r, at, "a promotion", resp), at, resp, application_key, version
        )
        for r in records
    ]
    ids = tuple(p.id for p in promos)
    if filters is not None:
        promos = [p for p in promos if filters.matches(p)]
    got_offset = opt_int(body, "offset")
    return Page(
        promotions=promos,
        total=opt_int(body, "total"),
        offset=offset,
        limit=opt_int(body, "limit"),
        received=len(records),
        ids=ids,
        echoed_offset=got_offset,
    )


# --- One promotion ---------------------------------------------------------------------------


def build_promotion(
    base_url: str, application_key: str, version: str, promotion_id: str
) -> Request:
    """GET .../versions/{version}/promotions/{created_millis}."""
    promo = segment(promotion_id, vendor=VENDOR, operation="get promotion", what="promotion id")
    path = f"{_version_path(application_key, version)}/promotions/{promo}"
    return Request(
        "GET",
        join_url(base_url, path),
        "get promotion",
        params=(("include", "message"),),
        headers={"Accept": "application/json"},
    )


def parse_promotion(
    resp: Response, *, source: str, application_key: str, version: str
) -> Promotion:
    """One promotion's details."""
    at = where(VENDOR, source, resp)
    _check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    return promotion_from_record(body, at, resp, application_key, version)


# --- Promote ---------------------------------------------------------------------------------


class PromoteOptions(TypedDict, total=False):
    """What a promote (or release) call may say besides where to: written once, taken by
    `build_promote`, `build_release` and the client's `promote` and `release`."""

    #: copy (the vendor's default), move, keep or dry_run (`PROMOTION_TYPES`).
    promotion_type: str | None
    included_repository_keys: list[str] | None
    excluded_repository_keys: list[str] | None
    #: `async=true` (the default here, so the call returns at once and the promotion is
    #: followed by polling; the vendor's own default is synchronous).
    run_async: bool


def build_promote(
    base_url: str,
    application_key: str,
    version: str,
    target_stage: str,
    *,
    source: str = VENDOR,
    **options: Unpack[PromoteOptions],
) -> Request:
    """POST .../versions/{version}/promote, with the `PromoteOptions` given."""
    at = Where(VENDOR, source, "promote")
    if not application_key or not version or not target_stage:
        fail(BadRequestError, at, "application_key, version and target_stage are required")
    promotion_type = options.get("promotion_type")
    if promotion_type is not None and promotion_type not in PROMOTION_TYPES:
        fail(BadRequestError, at, f"promotion_type must be one of {', '.join(PROMOTION_TYPES)}")
    body: dict[str, Any] = {"target_stage": target_stage}
    for name in ("promotion_type", "included_repository_keys", "excluded_repository_keys"):
        value = options.get(name)
        if value is not None:
            body[name] = list(value) if isinstance(value, list | tuple) else value
    return Request(
        "POST",
        join_url(base_url, f"{_version_path(application_key, version)}/promote"),
        "promote",
        params=(("async", "true" if options.get("run_async", True) else "false"),),
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        json=body,
        idempotent=False,
    )


def parse_promote(
    resp: Response, *, source: str, application_key: str, version: str, target_stage: str
) -> Promotion:
    """The promotion the promote (or release) call answered with: 201 with `status` `success`
    or `failure` when synchronous, 200 when asynchronous (202 is read the same way)."""
    at = where(VENDOR, source, resp)
    _check(resp, at)
    body = as_object(decode_json(resp, at), at, "the response", resp)
    body.setdefault("target_stage", target_stage)
    return promotion_from_record(body, at, resp, application_key, version)


def build_release(
    base_url: str,
    application_key: str,
    version: str,
    *,
    source: str = VENDOR,
    **options: Unpack[PromoteOptions],
) -> Request:
    """POST .../versions/{version}/release: promote to the release stage (PROD), with the
    release gate evaluated (`evaluations.release_gate`)."""
    req = build_promote(base_url, application_key, version, "PROD", source=source, **options)
    body = {k: v for k, v in req.json.items() if k != "target_stage"}
    return Request(
        "POST",
        join_url(base_url, f"{_version_path(application_key, version)}/release"),
        "release",
        params=req.params,
        headers=req.headers,
        json=body,
        idempotent=False,
    )


# --- Refresh through the promotions list -------------------------------------------------------


def _millis(promotion_id: str) -> int | None:
    return int(promotion_id) if promotion_id.isascii() and promotion_id.isdigit() else None


def same_promotion(found: Promotion, wanted: Promotion) -> bool:
    """True when a listed promotion is `wanted`: the same id, or (for an id taken from the
    time a promote answer named) the same target stage within `SAME_PROMOTION_MS`."""
    if found.id == wanted.id:
        return True
    if found.target_stage != wanted.target_stage:
        return False
    a, b = _millis(found.id), _millis(wanted.id)
    return a is not None and b is not None and abs(a - b) <= SAME_PROMOTION_MS


def older_than(found: Promotion, wanted: Promotion) -> bool:
    """True when a listed promotion (newest first) is older than `wanted` could be: paging on
    cannot find it."""
    a, b = _millis(found.id), _millis(wanted.id)
    return a is not None and b is not None and a < b - SAME_PROMOTION_MS


def more_to_find(last: Promotion, wanted: Iterable[Promotion], listed: Container[str]) -> bool:
    """True while paging on through the list (newest first) could still find a wanted promotion
    whose id no record so far (`listed`: their ids) carried: `last`, the latest record, is not
    older than it could be. A near record does not end the paging, since the record carrying
    the exact id, or a nearer one, may follow."""
    return not all(w.id in listed or older_than(last, w) for w in wanted)


def match_promotions(
    listed: Iterable[Promotion], wanted: Iterable[Promotion]
) -> dict[str, Promotion]:
    """Which listed record answers which wanted promotion: wanted id -> record.

    A record that carries a wanted promotion's id answers that promotion, whatever else is near
    it. A wanted promotion whose id no record carries (an id taken from the time a promote
    answer named) is answered by a record that `same_promotion` allows, the closest in time,
    and only by one that answers no other wanted promotion: each record answers at most one.
    """
    records = {p.id: p for p in listed}
    wants = {w.id: w for w in wanted}
    found = {wid: records[wid] for wid in wants if wid in records}
    taken = set(found)  # records already answering a wanted promotion
    timed = sorted(
        (a, rid) for rid in records if rid not in taken and (a := _millis(rid)) is not None
    )
    times = [a for a, _ in timed]
    near: list[tuple[int, int, int, str, str]] = []
    for wid, w in wants.items():
        b = _millis(wid)
        if wid in found or b is None:
            continue
        lo = bisect.bisect_left(times, b - SAME_PROMOTION_MS)
        hi = bisect.bisect_right(times, b + SAME_PROMOTION_MS)
        near.extend(
            (abs(a - b), b, a, wid, rid)
            for a, rid in timed[lo:hi]
            if same_promotion(records[rid], w)
        )
    # The closest pairs first (ties: the older wanted promotion, then the older record).
    for *_, wid, rid in sorted(near):
        if wid not in found and rid not in taken:
            found[wid] = records[rid]
            taken.add(rid)
    return found


# --- Records ---------------------------------------------------------------------------------


def promotion_from_record(
    rec: Mapping[str, Any],
    at: Where,
    resp: Response | None = None,
    application_key: str | None = None,
    version: str | None = None,
) -> Promotion:
    """A promotion record in any of the documented shapes.

    The id is `created_millis` (it doubles as the id in the details path), else
    `promoted_millis`, else the millisecond value of the ISO creation time. This runs once per
    record of every page, so it reads fields directly (see bench/ for why).
    """
    get = rec.get
    millis = get("created_millis")
    if type(millis) is not int:
        millis = opt_int(rec, "created_millis")
        if millis is None:
            millis = opt_int(rec, "promoted_millis")
    created = (
        parse_time(get("created")) or parse_time(get("promoted_at")) or parse_time(get("promoted"))
    )
    if millis is None:
        if created is None:
            fail(PayloadError, at, "missing identity field created_millis / promoted_millis", resp)
        millis = round(created.timestamp() * 1000)
    elif created is None:
        created = parse_time(millis)
    app = get("application_key")
    if type(app) is not str or not app:
        app = opt_str(rec, "application_key") or application_key
    ver = get("application_version")
    if type(ver) is not str or not ver:
        ver = opt_str(rec, "application_version", "version") or version
    if not app or not ver:
        fail(PayloadError, at, "missing identity field application_key / application_version", resp)
    raw_status = get("status")
    if type(raw_status) is not str:
        raw_status = opt_str(rec, "status") or ""
    lifecycle = STATUS_MAP.get(raw_status.lower()) if raw_status else Lifecycle.UNKNOWN
    if lifecycle is None:
        lifecycle = map_value(STATUS_MAP, raw_status.lower(), VENDOR)
    evaluations = get("evaluations")
    gates = _gates(evaluations) if evaluations else ()
    by = get("promoted_by") or get("created_by")
    return Promotion(  # by position (a record of every page is built here): _Tracked's fields
        Vendor.APPTRUST,
        at.source,
        str(millis),
        app,
        lifecycle,
        raw_status,
        Verdict.worst([g.verdict for g in gates]) if gates else Verdict.NONE,
        _message(rec)
        if ("message" in rec or "messages" in rec or "error_message" in rec)
        else None,
        NO_LINKS,
        created,  # created_at
        None,  # started_at
        None,  # finished_at
        None,  # updated_at
        None,  # application_name
        ver,  # then Promotion's own: version
        _text(get("source_stage")),
        _text(get("target_stage")),
        by if type(by) is str else opt_str(rec, "promoted_by", "created_by"),
        gates,
        None,  # scan_id
        rec,
    )


def _text(value: Any) -> str | None:
    """A string field, with numbers accepted as their text (as `opt_str` does)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is float:
        return str(value)
    return None


_GATE_KEYS = (
    (GateKind.EXIT, "exit_gate"),
    (GateKind.ENTRY, "entry_gate"),
    (GateKind.RELEASE, "release_gate"),
)


def _gates(evaluations: Any) -> tuple[Gate, ...]:
    if type(evaluations) is not dict and not isinstance(evaluations, dict):
        return ()
    gates = []
    for kind, key in _GATE_KEYS:
        gate = evaluations.get(key)
        if type(gate) is not dict and not isinstance(gate, dict):
            continue
        get = gate.get
        # Each field read as it is when it is a string (what the service sends), else as
        # `_text` reads it.
        decision = get("decision")
        if type(decision) is not str:
            decision = _text(decision)
        verdict = DECISION_MAP.get(decision.lower()) if decision else Verdict.NONE
        if verdict is None:
            verdict = map_verdict(DECISION_MAP, decision.lower() if decision else None, VENDOR)
        stage, eval_id, explanation = get("stage"), get("eval_id"), get("explanation")
        # Built as attrs' `__init__` builds a frozen dict class (its fields written into the
        # new instance's `__dict__`), inline: a gate costs about half. tests/
        # test_parse_fastpaths.py holds Gate free of validators, converters and hooks, and
        # these gates equal the constructor's.
        made = _new(Gate)
        fields = made.__dict__
        fields["kind"] = kind
        fields["verdict"] = verdict
        fields["stage"] = stage if type(stage) is str else _text(stage)
        fields["evaluation_id"] = eval_id if type(eval_id) is str else _text(eval_id)
        fields["explanation"] = explanation if type(explanation) is str else _text(explanation)
        fields["vendor_decision"] = decision
        gates.append(made)
    return tuple(gates)


_new = object.__new__


def _message(rec: Mapping[str, Any]) -> str | None:
    # An empty `message` does not hide an `error_message` beside it.
    text = opt_str(rec, "message") or opt_str(rec, "error_message")
    if text:
        return text
    messages = rec.get("messages")
    if isinstance(messages, list):
        parts = [
            m
            if isinstance(m, str)
            else opt_str(m, "text", "message")
            if isinstance(m, dict)
            else None
            for m in messages
        ]
        joined = "; ".join(p for p in parts if p)
        return joined or None
    return None


def _error_text(err: Mapping[str, Any]) -> str | None:
    """`message`, prefixed by the `field` it concerns and the `code` when the service sent
    them (`{"status", "code", "field", "message"}`)."""
    text = opt_str(err, "message")
    if not text:
        return None
    field, code = opt_str(err, "field"), opt_str(err, "code")
    if field:
        text = f"{field}: {text}"
    if code and not code.isdigit():
        text = f"{text} [{code}]"
    return text


def _check(resp: Response, at: Where) -> None:
    """Errors come as `{"errors":[{"status"|"code", "message"}]}`, a bare `{"message"}`, or a
    line of plain text."""
    if 200 <= resp.status < 300:
        return
    message: str | None = None
    try:
        body = decode_json(resp, at)
    except PayloadError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            texts = [_error_text(e) for e in errors if isinstance(e, dict)]
            message = "; ".join(t for t in texts if t) or None
        message = message or _error_text(body) or opt_str(body, "error")
    elif body is None:
        # Some answers are plain text (seed 004: 401 "Bad Credentials"): a short line is the
        # vendor's message; a page of HTML from a proxy is not.
        text = resp.text.strip()
        if text and len(text) <= 200 and "\n" not in text and "<" not in text:
            message = text
    raise_for_status(resp, at, message)
