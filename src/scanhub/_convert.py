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

from ._hub import Change, Snapshot
from ._model import GateKind, Item, Lifecycle, Promotion, Scan, Vendor, Verdict

T = TypeVar("T")


def _dt_out(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    return conv


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
        return {
            "key": obj.key,
            "observed_at": _dt_out(obj.observed_at),
            "before": None if obj.before is None else to_dict(obj.before),
            "after": to_dict(obj.after),
        }
    if isinstance(obj, Snapshot):
        return {
            "observed_at": _dt_out(obj.observed_at),
            "items": [to_dict(i) for i in obj.items],
            "errors": {k: converter.unstructure(e) for k, e in obj.errors.items()},
            "source_errors": {k: converter.unstructure(e) for k, e in obj.source_errors.items()},
        }
    return converter.unstructure(obj)


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
    """`to_dict` then `json.dumps` (keyword arguments go to json.dumps)."""
    return json.dumps(to_dict(obj), **kw)


def from_json(cls: type[T], text: str | bytes) -> T:
    """`json.loads` then `from_dict`."""
    return from_dict(cls, json.loads(text))
