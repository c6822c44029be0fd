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

    [[sink]]
    name = "ops"
    url = "https://hooks.example.com/scanhub"
    secret_env = "SCANHUB_OPS_SECRET"    # whsec_...; an array during a key rotation
    filter = [{ any = [{ exact = { lifecycle = "failed" } }, { exact = { verdict = "fail" } }] }]

The file is a tree of attrs classes: `Settings` at the top, each `[[source]]` the schema its
vendor registers (`VendorSpec.source_schema`), each `[[track]]` its source's vendor's track
schema. Values are checked strictly by `scanhub._schema`; every problem of a file is reported at
once, each naming the file, the key path (`source[2].timeout`) and what was expected.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from ._defaults import INTERVAL, MAX_INTERVAL
from ._errors import ConfigError
from ._registry import Registry, SourceConfig, TrackConfig, env_problem, registry
from ._schema import (
    Count,
    Days,
    EnvVar,
    EnvVars,
    HttpUrl,
    SchemaErrors,
    Seconds,
    SinkFilterSetting,
    Text,
    json_schema,
    structure,
)
from ._sinks import (
    MAX_AGE,
    MAX_BODY,
    MAX_CLIENT_ERRORS,
    MAX_RETRY_AFTER,
    RETRY_SCHEDULE,
    TIMEOUT,
    FilterError,
    SinkFilter,
    forbidden_host,
    secret_key,
)

#: The keys of the top level that are tables of their own.
_LISTS = ("source", "track", "sink")


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
    retention_days: Days | None = attrs.field(
        default=None, metadata={"doc": "prune history older than this many days (default: never)"}
    )
    retention_per_item: Count | None = attrs.field(
        default=None, metadata={"doc": "keep at most this many transitions per item"}
    )

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong across fields (as (key, message)): a URL that every command would
        refuse is refused here, where `scanhub config check` sees it."""
        from .store import location_scheme
        from .store.postgres import url_problem

        found = []
        if self.path is not None and location_scheme(self.path) is not None:
            # Not shown: a URL may carry a password, which a path would put in a file name.
            found.append(("path", "expected a file path, got a URL (a PostgreSQL URL is url)"))
        problem = url_problem(self.url) if self.url is not None else None
        if problem is not None:
            found.append(("url", f"a PostgreSQL URL {problem}"))
        return found


@attrs.define(kw_only=True)
class SinkConfig:
    """A `[[sink]]`: where scanhub pushes transitions (signed, retried, durable)."""

    name: Text = attrs.field(metadata={"doc": "how the sink is named (API, metrics, CLI)"})
    url: HttpUrl | None = attrs.field(
        default=None, metadata={"doc": "the receiver's URL (or url_env)"}
    )
    url_env: EnvVar | None = attrs.field(
        default=None,
        metadata={"doc": "a variable holding the URL, when it is itself a secret (Slack's)"},
    )
    kind: Literal["webhook", "slack"] = attrs.field(
        default="webhook",
        metadata={
            "doc": "webhook: a CloudEvent with Standard Webhooks headers; slack: a Slack "
            "incoming-webhook message"
        },
    )
    mode: Literal["structured", "binary"] = attrs.field(
        default="structured",
        metadata={
            "doc": "webhook: the CloudEvent as the body (structured) or its data with ce- "
            "headers (binary)"
        },
    )
    secret_env: EnvVars | None = attrs.field(
        default=None,
        metadata={
            "doc": "variable(s) holding whsec_ signing secrets; several (the new one first) "
            "sign with each during a rotation; required for webhook sinks"
        },
    )
    filter: SinkFilterSetting | None = attrs.field(
        default=None,
        metadata={
            "doc": "which transitions: exact / prefix / suffix tables of vendor, source, kind, "
            "lifecycle, previous_lifecycle, verdict, previous_verdict, application, subject, "
            "type; all / any arrays; not (an array: all must match)"
        },
    )
    timeout: Seconds = attrs.field(
        default=Seconds(TIMEOUT), metadata={"doc": "seconds a delivery may take"}
    )
    allow_private: bool = attrs.field(
        default=False,
        metadata={
            "doc": "allow targets that are not globally reachable: private, loopback, "
            "link-local, ... (refused otherwise)"
        },
    )
    retry_schedule: list[Seconds] | None = attrs.field(
        default=None,
        metadata={
            "doc": "seconds between attempts after the first (default: 5 s, 5 min, 30 min, "
            "2 h, 5 h, 10 h, 14 h, 20 h, 24 h; each ±20 %)"
        },
    )
    max_age: Seconds = attrs.field(
        default=Seconds(MAX_AGE),
        metadata={"doc": "seconds after which a failing delivery is dead-lettered"},
    )
    max_client_errors: Count = attrs.field(
        default=Count(MAX_CLIENT_ERRORS),
        metadata={"doc": "attempts of a delivery refused with a 3xx or 4xx (not 410, 429)"},
    )
    max_retry_after: Seconds = attrs.field(
        default=Seconds(MAX_RETRY_AFTER), metadata={"doc": "the longest Retry-After honoured"}
    )
    max_body: Count = attrs.field(
        default=Count(MAX_BODY), metadata={"doc": "the largest body a delivery sends (bytes)"}
    )

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong across fields (as (key, message))."""
        found = []
        if (self.url is None) == (self.url_env is None):
            found.append(("url", "expected exactly one of url and url_env"))
        if self.kind == "webhook" and not self.secret_env:
            found.append(
                ("secret_env", "expected the variable(s) holding the whsec_ signing secret")
            )
        if self.kind != "webhook" and self.mode != "structured":
            found.append(("mode", "binary mode is for webhook sinks"))
        if self.url is not None and not self.allow_private:
            why = forbidden_host(urlsplit(self.url).hostname or "")
            if why:
                found.append(("url", f"{why}: refused unless the sink says allow_private = true"))
        return found

    def env_vars(self) -> list[tuple[str, str]]:
        """(key, variable) of every variable the sink reads."""
        out = [("secret_env", var) for var in self.secret_env or ()]
        if self.url_env:
            out.append(("url_env", self.url_env))
        return out

    def env_problems(self, env: Mapping[str, str]) -> list[tuple[str, str]]:
        """What is wrong with the variables the sink reads, as (key, message), each message
        naming its variable, never its value: unset, a `secret_env` holding something other
        than `whsec_` secrets (space-separated), a `url_env` holding no http(s) URL."""
        found = []
        for key, var in self.env_vars():
            value = env.get(var, "")
            why = env_problem(var, env, several=key == "secret_env")
            if why is not None:
                found.append((key, why))
            elif key == "secret_env":
                for part in value.split():
                    try:
                        secret_key(part)
                    except ValueError as exc:
                        found.append((key, f"{var}: {exc}"))
                        break
            elif not value.strip().startswith(("https://", "http://")):
                found.append((key, f"environment variable {var} is not set to an http(s) URL"))
            elif not self.allow_private:  # as `url` is checked (the host only is shown)
                why = forbidden_host(urlsplit(value.strip()).hostname or "")
                if why:
                    found.append(
                        (key, f"{var}: {why}: refused unless the sink says allow_private = true")
                    )
        return found

    @property
    def schedule(self) -> tuple[float, ...]:
        """The retry schedule in force."""
        if self.retry_schedule is None:
            return RETRY_SCHEDULE
        return tuple(self.retry_schedule)


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
    sinks: tuple[SinkConfig, ...] = ()
    #: The top-level `stuck_after` (None: not set).
    stuck_after: float | None = None

    def sink(self, name: str) -> SinkConfig:
        """The `[[sink]]` called `name`."""
        for s in self.sinks:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sinks) or "none is configured"
        raise ConfigError(f"{self.path}: no sink named {name!r} ({known})", operation="load config")

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
    tracks: Sequence[str] = (),
    sources_required: bool = True,
) -> Config:
    """Read and check a configuration file; raises `ConfigError` listing every problem, each
    naming the file, the key path and what was expected. With `env`, environment variables the
    sources name are checked to be set too (as `scanhub config check` does). `tracks` are more
    `[[track]]` tables, each written as the inside of a TOML inline table (the CLI's
    `--track 'source = "sonarqube", report_task = "report-task.txt"'`), checked like the
    file's and numbered after them."""
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
    if tracks:
        given = data.get("track", [])
        data["track"] = [*(given if isinstance(given, list) else [given]), *map(_track_arg, tracks)]
    return parse_config(data, name, env=env, vendors=vendors, sources_required=sources_required)


def _track_arg(text: str) -> dict[str, Any]:
    """One `--track`: the inside of a TOML inline table."""
    try:
        table = tomllib.loads(f"track = {{ {text} }}")["track"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"--track {text!r}: not the inside of a TOML inline table "
            f'(e.g. source = "sonarqube", report_task = ".scannerwork/report-task.txt"): {exc}',
            operation="load config",
        ) from None
    return table  # type: ignore[no-any-return]


def parse_config(
    data: Mapping[str, Any],
    path: str = "<config>",
    *,
    env: Mapping[str, str] | None = None,
    vendors: Registry | None = None,
    sources_required: bool = True,
) -> Config:
    """Check an already parsed TOML document (see `load_config`). Without `sources_required`
    (commands that read only the state: history, stats) a file may have no [[source]]."""
    reg = vendors or registry()
    problems: list[tuple[str, str]] = []
    top = {k: v for k, v in data.items() if k not in _LISTS}
    settings = Settings()
    try:
        settings = structure(Settings, top)
    except SchemaErrors as exc:
        problems += exc.problems
    if settings.state is not None:
        problems += [(f"state.{key}", message) for key, message in settings.state.problems()]

    sources: list[SourceConfig] = []
    raw_sources = data.get("source")
    if not isinstance(raw_sources, list) or not raw_sources:
        if sources_required or raw_sources is not None:
            problems.append(("source", "expected at least one [[source]] table"))
        raw_sources = []
    # Every table's problems name its own index, valid or not: each source by its position in
    # the file, and each name by the table (valid or not) that holds it.
    valid: list[tuple[int, SourceConfig]] = []
    vendor_of: dict[str, str] = {}  # source name -> vendor, for the tracks' checks
    for i, raw in enumerate(raw_sources):
        src = _source(raw, f"source[{i}]", reg, problems)
        if src is not None:
            valid.append((i, src))
        if not isinstance(raw, dict):
            continue
        vendor, name = raw.get("vendor"), raw.get("name", raw.get("vendor"))
        if not isinstance(name, str) or not isinstance(vendor, str):
            continue
        if name in vendor_of:
            problems.append((f"source[{i}].name", f"expected unique names, {name!r} twice"))
        elif vendor in reg:
            vendor_of[name] = vendor
    sources = [src for _, src in valid]

    tracks: list[TrackConfig] = []
    raw_tracks = data.get("track", [])
    if not isinstance(raw_tracks, list):
        problems.append(("track", "expected an array of [[track]] tables"))
        raw_tracks = []
    for i, raw in enumerate(raw_tracks):
        track = _track(raw, f"track[{i}]", vendor_of, reg, problems)
        if track is not None:
            tracks.append(track)

    sinks: list[tuple[int, SinkConfig]] = []
    raw_sinks = data.get("sink", [])
    if not isinstance(raw_sinks, list):
        problems.append(("sink", "expected an array of [[sink]] tables"))
        raw_sinks = []
    named: set[str] = set()
    for i, raw in enumerate(raw_sinks):
        sink = _sink(raw, f"sink[{i}]", problems)
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            if raw["name"] in named:
                shown = f"expected unique names, {raw['name']!r} twice"
                problems.append((f"sink[{i}].name", shown))
            named.add(raw["name"])
        if sink is not None:
            sinks.append((i, sink))

    if env is not None:
        for i, s in valid:
            for key, var in s.env_vars():
                why = env_problem(var, env)
                if why is not None:
                    problems.append((f"source[{i}].{key}", why))
        for i, k in sinks:
            problems += [(f"sink[{i}].{key}", why) for key, why in k.env_problems(env)]
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
        tuple(k for _, k in sinks),
        settings.stuck_after,
    )


def _sink(raw: Any, where: str, problems: list[tuple[str, str]]) -> SinkConfig | None:
    if not isinstance(raw, dict):
        problems.append((where, "expected a table"))
        return None
    found: list[tuple[str, str]] = []
    if "secret" in raw:
        found.append(
            (
                f"{where}.secret",
                "expected secret_env naming an environment variable (secrets are never read "
                "from the file)",
            )
        )
    # The filter is checked apart, so each of its problems has its own key path.
    chosen: SinkFilter | None = None
    if raw.get("filter") is not None:
        try:
            chosen = SinkFilter.parse(raw["filter"])
        except FilterError as exc:
            found += [(f"{where}.filter{p}", m) for p, m in exc.problems]
    sink = None
    clean = {k: v for k, v in raw.items() if k not in ("secret", "filter")}
    try:
        sink = structure(SinkConfig, clean, where)
    except SchemaErrors as exc:
        found += exc.problems
    if sink is not None:
        sink.filter = SinkFilterSetting(chosen) if chosen is not None else None
        found += [(f"{where}.{key}", message) for key, message in sink.problems()]
    problems += found
    return None if found else sink


def _source(
    raw: Any, where: str, reg: Registry, problems: list[tuple[str, str]]
) -> SourceConfig | None:
    if not isinstance(raw, dict):
        problems.append((where, "expected a table"))
        return None
    vendor = raw.get("vendor")
    if not isinstance(vendor, str) or vendor not in reg:
        problems.append(
            (
                f"{where}.vendor",
                f"expected one of {', '.join(reg.names())}"
                + (", got nothing (missing)" if vendor is None else f", got {vendor!r}"),
            )
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
    sources: Mapping[str, str],
    reg: Registry,
    problems: list[tuple[str, str]],
) -> TrackConfig | None:
    """A `[[track]]` table, checked against its source's vendor (`sources`: source name ->
    vendor, of every source table, valid or not: a track is checked even while its source has
    problems of its own)."""
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
    spec = reg.get(sources[name])
    try:
        track = structure(spec.track_schema, raw, where)
    except SchemaErrors as exc:
        problems += [(p, f"{m} (for the {spec.name} source {name!r})") for p, m in exc.problems]
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
    top["properties"]["sink"] = {
        "type": "array",
        "items": json_schema(SinkConfig),
        "description": "where to push transitions (signed, retried, durable)",
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
