"""(De)serialisation of the canonical model through one cattrs converter.

Enums become their string values, datetimes ISO-8601 in UTC with a `Z`, tuples lists. `to_dict`
adds two derived, read-only fields that dashboards want, `kind` and `key`; `from_dict` ignores
them (and any other unknown key), so `from_dict(cls, to_dict(x)) == x`.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from ._changes import Change, Snapshot
from ._model import (
    FindingCounts,
    Gate,
    GateKind,
    Item,
    Lifecycle,
    Promotion,
    Scan,
    Vendor,
    Verdict,
)

T = TypeVar("T")

_orjson_dumps: Callable[[Any], bytes] | None
try:  # the `fast` extra
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson_dumps = None


def _timestamp(value: datetime) -> str:
    # Always with microseconds: times of one answer have one length, so they sort as text
    # (isoformat drops the fraction of a whole second: "…:29Z" sorted after "…:29.841000Z").
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"  # without its "+00:00"


#: `isoformat` costs ~1 µs and a page shows four or five times an item; the times a reader
#: comes back to are written once (equal instants are one string: the result is in UTC).
_timestamp_memo = functools.lru_cache(maxsize=16384)(_timestamp)


def timestamp(value: datetime) -> str:
    """A time as scanhub writes it: ISO 8601 in UTC with microseconds and a `Z`."""
    return _timestamp_memo(value)


def timestamp_or_none(value: datetime | None) -> str | None:
    """`timestamp`, and None for None."""
    return None if value is None else timestamp(value)


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
    # A field typed `Item` (Change.before/after, Snapshot.items) is a Scan or a Promotion as
    # the `kind` field `to_dict` writes says (their fields alone cannot tell them apart).
    conv.register_structure_hook_func(_is_item_type, functools.partial(_item_in, conv))
    return conv


def _is_item_type(t: Any) -> bool:
    # `Item` or `Item | None`, however the annotation was resolved (a union of the two classes)
    args = set(typing.get_args(t)) - {type(None)}
    return typing.get_origin(t) in (typing.Union, types.UnionType) and args == {Scan, Promotion}


def _item_in(conv: cattrs.Converter, data: Any, t: Any) -> Item | None:
    if data is None and type(None) in typing.get_args(t):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "scan":
        return conv.structure(data, Scan)
    if kind == "promotion":
        return conv.structure(data, Promotion)
    raise ValueError(f"expected a dict with kind 'scan' or 'promotion', got kind={kind!r}")


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


def compact_json(data: Any) -> bytes:
    """`data` as compact UTF-8 JSON: through orjson when it is installed (the `fast` extra;
    several times faster for the service's answers), else, and for anything orjson refuses
    (nesting past its limit, integers beyond 64 bits), through `dumps`. orjson writes a float
    that is not a number as null where the stdlib would write `NaN`, which is not JSON."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(data)
        except (TypeError, ValueError):
            pass
    return dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


converter = make_converter()


def to_dict(obj: Any) -> Any:
    """A JSON-ready dict (or list, for a list of models) of any scanhub model: Scan, Promotion,
    Gate, FindingCounts, Snapshot, Change (`before`/`after` in the item schema), ItemError."""
    if isinstance(obj, Scan | Promotion):
        return _item_dict(obj)
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


# --- The stores' form of an item ---------------------------------------------------------------
#
# Stores write an item on every transition and read one per listed row, so this form has its
# own encoder and decoder, written out field by field rather than walked by cattrs: about 4x
# faster each way (bench/, "year of history"). The form is `to_dict` without the vendor
# payload, the derived `key` and the empty fields; tests hold the two paths equal.

_STORED_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(a.name for a in attrs.fields(cls) if a.name != "raw") for cls in (Scan, Promotion)
}
_TIMES = frozenset({"created_at", "started_at", "finished_at", "updated_at"})


def _gate_out(gate: Gate) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": gate.kind._value_, "verdict": gate.verdict._value_}
    for name in ("stage", "evaluation_id", "explanation", "vendor_decision"):
        value = getattr(gate, name)
        if value is not None:
            out[name] = value
    return out


def _stored_writer(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    """The function that writes an item of `cls` in the stores' form, made once per class as
    straight-line code: one read and one test a field, no loop over the fields and no type
    dispatch (a store writes an item on every transition: about 0.8 µs against 2.0 for the
    loop). What it does with a field follows its declared type; `vendor` is declared `str`
    and holds a `Vendor`, so a field not declared an enum and not holding a `str` goes through
    `_plain`. An enum is written as its `_value_` (`value` is a descriptor: twice the cost)."""
    lines = ["def write(item):", "    d = item.__dict__", "    out = {}"]
    for a in attrs.fields(cls):
        name = a.name
        if name == "raw":
            continue
        lines.append(f"    v = d[{name!r}]")
        if isinstance(a.type, type) and issubclass(a.type, Enum):  # required: never None
            lines.append(f"    out[{name!r}] = v._value_")
        elif name == "links":
            lines.append(f"    if v:\n        out[{name!r}] = dict(v)")
        elif name == "gates":
            lines.append(f"    if v:\n        out[{name!r}] = [gate_out(g) for g in v]")
        else:
            value = (
                "timestamp(v)"
                if name in _TIMES
                else "dict(v.__dict__)"
                if name == "findings"
                else "v if v.__class__ is str else plain(v)"
            )
            lines.append(f"    if v is not None:\n        out[{name!r}] = {value}")
    lines += ["    out['kind'] = item.kind", "    return out"]
    scope: dict[str, Any] = {"timestamp": timestamp, "gate_out": _gate_out, "plain": _plain}
    exec("\n".join(lines), scope)  # noqa: S102 - code made above from the class's own fields
    write: Callable[[Any], dict[str, Any]] = scope["write"]
    return write


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


_STORED_WRITERS = {cls: _stored_writer(cls) for cls in (Scan, Promotion)}


def item_to_stored(item: Item) -> dict[str, Any]:
    """An item as stores keep it: `to_dict` without the vendor payload, the derived `key`, and
    the fields that are empty (None, no links, no gates); `item_from_stored` reads it back
    equal."""
    return _STORED_WRITERS[type(item)](item)


def _gate_in(data: Mapping[str, Any]) -> Gate:
    return Gate(
        GateKind(data["kind"]),
        Verdict(data["verdict"]),
        data.get("stage"),
        data.get("evaluation_id"),
        data.get("explanation"),
        data.get("vendor_decision"),
    )


def _member_reader(enum: type[Enum]) -> Callable[[Any], Any]:
    """`enum(value)`, through a dict for the known values (several times faster)."""
    members = {m.value: m for m in enum}

    def read(value: Any) -> Any:
        member = members.get(value) if isinstance(value, str) else None
        return member if member is not None else enum(value)

    return read


#: A lifecycle and a verdict from their stored text (the stores read their rows with these).
read_lifecycle = _member_reader(Lifecycle)
read_verdict = _member_reader(Verdict)

_READERS: dict[str, Callable[[Any], Any]] = {
    "lifecycle": read_lifecycle,
    "verdict": read_verdict,
    "links": dict,
    "findings": lambda v: FindingCounts(**v),
    "gates": lambda v: tuple(_gate_in(g) for g in v),
    **{name: lambda v: _time_in(v) for name in _TIMES},
}
_STORED_NAMES = {cls: frozenset(names) for cls, names in _STORED_FIELDS.items()}


def _time_in(value: Any) -> datetime:
    """`_dt_in`, with a fast path for the form scanhub writes (`timestamp`: UTC, with `Z`)."""
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is UTC:
                return parsed
    return _dt_in(value, datetime)


def item_from_stored(data: Mapping[str, Any], raw: Any = None) -> Item:
    """The inverse of `item_to_stored` (it also reads `to_dict`'s full form, and ignores the
    derived `key`), with the vendor payload given."""
    kind = data.get("kind")
    cls: type[Scan] | type[Promotion]
    if kind == "scan":
        cls = Scan
    elif kind == "promotion":
        cls = Promotion
    else:
        raise ValueError(f"expected a dict with kind 'scan' or 'promotion', got kind={kind!r}")
    fields = _STORED_NAMES[cls]
    args: dict[str, Any] = {}
    for name, value in data.items():
        if value is not None and name in fields:
            reader = _READERS.get(name)
            args[name] = value if reader is None else reader(value)
    return cls(**args, raw=raw)


def _gate_dict(gate: Gate) -> dict[str, Any]:
    return {
        "kind": gate.kind.value,
        "verdict": gate.verdict.value,
        "stage": gate.stage,
        "evaluation_id": gate.evaluation_id,
        "explanation": gate.explanation,
        "vendor_decision": gate.vendor_decision,
    }


def _value(value: Any) -> Any:
    return value.value


def _field_writers(cls: type[Any]) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Per field of an item class, what writes a (not None) value of it: None when the value
    is written as it is."""
    special: dict[str, Callable[[Any], Any]] = {
        "links": dict,
        "findings": lambda f: dict(f.__dict__),
        "gates": lambda gates: [_gate_dict(g) for g in gates],
    }
    out: list[tuple[str, Callable[[Any], Any] | None]] = []
    for a in attrs.fields(cls):
        if a.name == "raw":
            out.append((a.name, None))
        elif a.name in _TIMES:
            out.append((a.name, timestamp))
        elif a.name in special:
            out.append((a.name, special[a.name]))
        elif isinstance(a.type, type) and issubclass(a.type, Enum):
            out.append((a.name, _value))
        else:
            out.append((a.name, None))
    return tuple(out)


_WRITERS = {cls: _field_writers(cls) for cls in (Scan, Promotion)}


def _item_dict(item: Item) -> dict[str, Any]:
    """`to_dict` of an item, field by field (what the converter's hooks give, several times
    faster: the service writes it for every listed row; a test holds the two equal)."""
    values = item.__dict__
    out: dict[str, Any] = {}
    for name, write in _WRITERS[type(item)]:
        value = values[name]
        out[name] = value if value is None or write is None else write(value)
    out["kind"] = item.kind
    out["key"] = item.key
    return out


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a model of type `cls` from what `to_dict` produced."""
    return converter.structure(data, cls)


def item_from_dict(data: Any) -> Item:
    """Rebuild a Scan or a Promotion, chosen by the `kind` field `to_dict` writes (`_item_in`,
    the converter's rule for a field typed `Item`)."""
    item = _item_in(converter, data, Item)
    assert item is not None  # (None only where the type allows it: `Item | None`)
    return item


def to_json(obj: Any, **kw: Any) -> str:
    """`to_dict` then `json.dumps` (keyword arguments go to json.dumps). Never fails on an
    accepted item: see `dumps`."""
    return dumps(to_dict(obj), **kw)


def from_json(cls: type[T], text: str | bytes) -> T:
    """`json.loads` then `from_dict`."""
    return from_dict(cls, json.loads(text))
