"""(De)serialisation of the canonical model through one cattrs converter.

Enums become their string values, datetimes ISO-8601 in UTC with a `Z`, tuples lists. `to_dict`
adds two derived, read-only fields that dashboards want, `kind` and `key`; `from_dict` ignores
them (and any other unknown key), so `from_dict(cls, to_dict(x)) == x`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from ._changes import Change, Snapshot
from ._model import GateKind, Item, Lifecycle, Promotion, Scan, Vendor, Verdict

T = TypeVar("T")


def timestamp(value: datetime) -> str:
    """A time as scanhub writes it: ISO 8601 in UTC with a `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_dt_out = timestamp


def _dt_in(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _enum_value(member: Lifecycle | Verdict | Vendor | GateKind) -> str:
    return str(member.value)


def make_converter() -> cattrs.Converter:
    """Build the converter scanhub uses everywhere (a fresh one; nothing global is mutated)."""
    conv = cattrs.Converter(unstruct_collection_overrides={tuple: list})
    conv.register_unstructure_hook(datetime, _dt_out)
    conv.register_structure_hook(datetime, _dt_in)
    # Our enums subclass str, and singledispatch finds `str` (a pass-through) before `Enum` in
    # their MRO, so each one is registered by name to come out as a plain string.
    for enum_cls in (Lifecycle, Verdict, Vendor, GateKind):
        conv.register_unstructure_hook(enum_cls, _enum_value)
    for cls in (Scan, Promotion):
        conv.register_unstructure_hook(cls, _item_hook(conv, cls))
    return conv


def _item_hook(conv: cattrs.Converter, cls: type[Any]) -> Any:
    # `raw` is the vendor's JSON as decoded: it is handed on as it is, not walked by cattrs,
    # which would recurse once per nesting level (and cost a copy).
    base = make_dict_unstructure_fn(cls, conv, raw=override(omit=True))

    def hook(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = base(obj)
        out["raw"] = obj.raw
        return out

    return hook


#: How deep `raw` is kept when a payload is nested too deeply to serialize as it is.
MAX_RAW_DEPTH = 64
_TOO_DEEP = f"<nested deeper than {MAX_RAW_DEPTH} levels: left out>"


def _prune(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict):
        if depth >= MAX_RAW_DEPTH:
            return _TOO_DEEP
        return {k: _prune(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_RAW_DEPTH:
            return _TOO_DEEP
        return [_prune(v, depth + 1) for v in value]
    return value


def dumps(data: Any, **kw: Any) -> str:
    """`json.dumps` that never fails on what scanhub accepted: a vendor payload nested too
    deeply for the encoder is written with its deep parts (past `MAX_RAW_DEPTH` levels)
    replaced by a marker string."""
    try:
        return json.dumps(data, **kw)
    except RecursionError:
        return json.dumps(_prune(data), **kw)


converter = make_converter()


def to_dict(obj: Any) -> Any:
    """A JSON-ready dict (or list, for a list of models) of any scanhub model: Scan, Promotion,
    Gate, FindingCounts, Snapshot, Change (`before`/`after` in the item schema), ItemError."""
    if isinstance(obj, Scan | Promotion):
        out: dict[str, Any] = converter.unstructure(obj)
        out["kind"] = obj.kind
        out["key"] = obj.key
        return out
    if isinstance(obj, list | tuple):
        return [to_dict(o) for o in obj]
    if isinstance(obj, Change):
        out = {
            "id": obj.id,
            "key": obj.key,
            "observed_at": _dt_out(obj.observed_at),
            "before": None if obj.before is None else to_dict(obj.before),
            "after": to_dict(obj.after),
        }
        if obj.lagged:
            out["lagged"] = True
        return out
    if isinstance(obj, Snapshot):
        return {
            "observed_at": _dt_out(obj.observed_at),
            "items": [to_dict(i) for i in obj.items],
            "errors": {k: converter.unstructure(e) for k, e in obj.errors.items()},
            "source_errors": {k: converter.unstructure(e) for k, e in obj.source_errors.items()},
        }
    return converter.unstructure(obj)


def item_to_stored(item: Item) -> dict[str, Any]:
    """An item as stores keep it: `to_dict` without the vendor payload, the derived `key`, and
    fields that are empty (None, no links, no gates); `item_from_dict` reads it back equal."""
    out: dict[str, Any] = converter.unstructure(item)
    del out["raw"]
    compact = {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    compact["kind"] = item.kind
    return compact


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a model of type `cls` from what `to_dict` produced."""
    return converter.structure(data, cls)


def item_from_dict(data: Any) -> Item:
    """Rebuild a Scan or a Promotion, chosen by the `kind` field `to_dict` writes."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "scan":
        return from_dict(Scan, data)
    if kind == "promotion":
        return from_dict(Promotion, data)
    raise ValueError(f"expected a dict with kind 'scan' or 'promotion', got kind={kind!r}")


def to_json(obj: Any, **kw: Any) -> str:
    """`to_dict` then `json.dumps` (keyword arguments go to json.dumps). Never fails on an
    accepted item: see `dumps`."""
    return dumps(to_dict(obj), **kw)


def from_json(cls: type[T], text: str | bytes) -> T:
    """`json.loads` then `from_dict`."""
    return from_dict(cls, json.loads(text))
