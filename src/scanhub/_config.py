"""The configuration file (`scanhub.toml`): settings, sources and what to track.

    interval = 5          # seconds between polls of an item (it grows for stable items)
    timeout = 900         # `scanhub watch` gives up after this many seconds

    [[source]]
    name = "iq-cloud"
    vendor = "iq"                        # a registered vendor: iq | threadfix | appsecplus | ...
    base_url = "https://acme.sonatype.app/platform"
    username = "ci-bot"                  # or username_env = "IQ_USER"
    password_env = "IQ_PASSWORD"         # secrets come only from the environment
    rate_limit = "iq-cloud"              # or { max_requests = 100, period = 60 }

    [[track]]
    source = "iq-cloud"
    public_id = "MyApp"                  # or application_id = "<internal id>"
    status_id = "accc369749774924baa1d207494c29e1"

The file is a tree of attrs classes: `Settings` at the top, each `[[source]]` the schema its
vendor registers (`VendorSpec.source_schema`), each `[[track]]` its source's vendor's track
schema. Values are checked strictly by `scanhub._schema`; every problem of a file is reported at
once, each naming the file, the key path (`source[2].timeout`) and what was expected.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._defaults import INTERVAL, MAX_INTERVAL
from ._errors import ConfigError
from ._registry import Registry, SourceConfig, TrackConfig, registry
from ._schema import Count, SchemaErrors, Seconds, Text, json_schema, structure

#: The keys of the top level that are tables of their own.
_LISTS = ("source", "track")


@attrs.define(kw_only=True)
class StateConfig:
    """`[state]`: where the watcher keeps its durable state."""

    path: Text | None = attrs.field(
        default=None, metadata={"doc": "SQLite file (relative to the config file)"}
    )
    url: Text | None = attrs.field(
        default=None,
        metadata={
            "doc": "PostgreSQL URL without a password (it comes from PGPASSWORD or "
            "SCANHUB_DATABASE_URL); postgresql:// alone: the URL in SCANHUB_DATABASE_URL"
        },
    )
    retention_days: Seconds | None = attrs.field(
        default=None, metadata={"doc": "prune history older than this many days (default: never)"}
    )
    retention_per_item: Count | None = attrs.field(
        default=None, metadata={"doc": "keep at most this many transitions per item"}
    )



@attrs.define(kw_only=True)
class Settings:
    """The top level of `scanhub.toml` (besides the [[source]] and [[track]] arrays)."""

    interval: Seconds = attrs.field(
        default=Seconds(INTERVAL), metadata={"doc": "seconds between polls of an item"}
    )
    timeout: Seconds | None = attrs.field(
        default=None, metadata={"doc": "`scanhub watch` gives up after this many seconds"}
    )
    max_interval: Seconds = attrs.field(
        default=Seconds(MAX_INTERVAL),
        metadata={"doc": "the longest interval a quiet item backs off to"},
    )
    state: StateConfig | None = attrs.field(default=None, metadata={"doc": "durable state"})
    stuck_after: Seconds | None = attrs.field(
        default=None,
        metadata={
            "doc": "seconds an unfinished item may be under way before it is stuck, where its "
            "source sets no stuck_after and has too little history (default 1800)"
        },
    )


@attrs.frozen
class Config:
    """A loaded, checked configuration file."""

    path: str
    sources: tuple[SourceConfig, ...]
    tracks: tuple[TrackConfig, ...]
    interval: float = INTERVAL
    timeout: float | None = None
    max_interval: float = MAX_INTERVAL
    state: StateConfig | None = None
    #: The top-level `stuck_after` (None: not set).
    stuck_after: float | None = None

    def source(self, name: str) -> SourceConfig:
        """The `[[source]]` called `name`."""
        for s in self.sources:
            if s.source_name == name:
                return s
        raise ConfigError(f"{self.path}: no source named {name!r}", operation="load config")


def _error(path: str, problems: list[tuple[str, str]]) -> ConfigError:
    lines = [
        f"{path}: {key}: {message}" if key else f"{path}: {message}" for key, message in problems
    ]
    error = ConfigError("\n".join(lines), operation="load config")
    error.problems = problems
    return error


def load_config(
    path: str | Path = "scanhub.toml",
    *,
    env: Mapping[str, str] | None = None,
    vendors: Registry | None = None,
) -> Config:
    """Read and check a configuration file; raises `ConfigError` listing every problem, each
    naming the file, the key path and what was expected. With `env`, environment variables the
    sources name are checked to be set too (as `scanhub config check` does)."""
    name = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{name}: file not found (give one with --config)", operation="load config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc}", operation="load config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}", operation="load config") from exc
    return parse_config(data, name, env=env, vendors=vendors)


def parse_config(
    data: Mapping[str, Any],
    path: str = "<config>",
    *,
    env: Mapping[str, str] | None = None,
    vendors: Registry | None = None,
) -> Config:
    """Check an already parsed TOML document (see `load_config`)."""
    reg = vendors or registry()
    problems: list[tuple[str, str]] = []
    top = {k: v for k, v in data.items() if k not in _LISTS}
    settings = Settings()
    try:
        settings = structure(Settings, top)
    except SchemaErrors as exc:
        problems += exc.problems

    sources: list[SourceConfig] = []
    raw_sources = data.get("source")
    if not isinstance(raw_sources, list) or not raw_sources:
        problems.append(("source", "expected at least one [[source]] table"))
        raw_sources = []
    for i, raw in enumerate(raw_sources):
        src = _source(raw, f"source[{i}]", reg, problems)
        if src is not None:
            sources.append(src)
    by_name: dict[str, SourceConfig] = {}
    for i, s in enumerate(sources):
        if s.source_name in by_name:
            problems.append(
                (f"source[{i}].name", f"expected unique names, {s.source_name!r} twice")
            )
        by_name[s.source_name] = s

    tracks: list[TrackConfig] = []
    raw_tracks = data.get("track", [])
    if not isinstance(raw_tracks, list):
        problems.append(("track", "expected an array of [[track]] tables"))
        raw_tracks = []
    for i, raw in enumerate(raw_tracks):
        track = _track(raw, f"track[{i}]", by_name, reg, problems)
        if track is not None:
            tracks.append(track)

    if env is not None:
        for i, s in enumerate(sources):
            for key, var in s.env_vars():
                if not env.get(var):
                    problems.append(
                        (f"source[{i}].{key}", f"environment variable {var} is not set")
                    )
    if problems:
        raise _error(path, problems)
    return Config(
        path,
        tuple(sources),
        tuple(tracks),
        settings.interval,
        settings.timeout,
        settings.max_interval,
        settings.state,
        settings.stuck_after,
    )


def _source(
    raw: Any, where: str, reg: Registry, problems: list[tuple[str, str]]
) -> SourceConfig | None:
    if not isinstance(raw, dict):
        problems.append((where, "expected a table"))
        return None
    vendor = raw.get("vendor")
    if not isinstance(vendor, str) or vendor not in reg:
        problems.append(
            (f"{where}.vendor", f"expected one of {', '.join(reg.names())}, got {vendor!r}")
        )
        return None
    schema = reg.get(vendor).source_schema
    found: list[tuple[str, str]] = []
    for secret in schema.SECRETS:
        if secret in raw:
            found.append(
                (
                    f"{where}.{secret}",
                    f"expected {secret}_env naming an environment variable "
                    "(secrets are never read from the file)",
                )
            )
    clean = {k: v for k, v in raw.items() if k not in schema.SECRETS}
    source = None
    try:
        source = structure(schema, clean, where)
    except SchemaErrors as exc:
        found += exc.problems
    if source is not None:
        found += [(f"{where}.{key}", message) for key, message in source.problems()]
    problems += found
    return None if found else source


def _track(
    raw: Any,
    where: str,
    sources: Mapping[str, SourceConfig],
    reg: Registry,
    problems: list[tuple[str, str]],
) -> TrackConfig | None:
    if not isinstance(raw, dict):
        problems.append((where, "expected a table"))
        return None
    name = raw.get("source")
    if not isinstance(name, str) or name not in sources:
        known = ", ".join(sources) or "none are valid"
        problems.append(
            (f"{where}.source", f"expected one of the source names ({known}), got {name!r}")
        )
        return None
    spec = reg.get(sources[name].vendor)
    try:
        track = structure(spec.track_schema, raw, where)
    except SchemaErrors as exc:
        problems += [(p, f"{m} (for a {spec.name} source)") for p, m in exc.problems]
        return None
    found = [(f"{where}.{key}", message) for key, message in track.problems()]
    problems += found
    return None if found else track


def config_schema(vendors: Registry | None = None) -> dict[str, Any]:
    """A JSON Schema of `scanhub.toml`, generated from the same classes that check it."""
    reg = vendors or registry()
    top = json_schema(Settings)
    sources = []
    tracks = []
    for spec in reg:
        s = json_schema(spec.source_schema)
        s["properties"]["vendor"] = {"const": spec.name, "description": spec.title}
        s["title"] = f"{spec.title} source"
        sources.append(s)
        t = json_schema(spec.track_schema)
        t["title"] = f"{spec.title} track"
        tracks.append(t)
    top["properties"]["source"] = {
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": sources},
        "description": "the vendor servers to poll",
    }
    top["properties"]["track"] = {
        "type": "array",
        "items": {"anyOf": tracks},
        "description": "what to track on them",
    }
    top["required"] = ["source"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://scanhub.invalid/schema/scanhub.toml.json",
        "title": "scanhub.toml",
        **top,
    }


def config_schema_json(vendors: Registry | None = None) -> str:
    """`config_schema` as indented JSON text."""
    return json.dumps(config_schema(vendors), indent=2)
