"""The configuration file (`scanhub.toml`): sources and what to track.

    interval = 5          # seconds between polls of an item (it grows for stable items)
    timeout = 900         # `scanhub watch` gives up after this many seconds

    [[source]]
    name = "iq-cloud"
    vendor = "iq"                        # iq | threadfix | appsecplus | apptrust
    base_url = "https://acme.sonatype.app/platform"
    username = "ci-bot"                  # or username_env = "IQ_USER"
    password_env = "IQ_PASSWORD"         # secrets come only from the environment
    rate_limit = "iq-cloud"              # or { max_requests = 100, period = 60 }

    [[track]]
    source = "iq-cloud"
    public_id = "MyApp"                  # or application_id = "<internal id>"
    status_id = "accc369749774924baa1d207494c29e1"

Every error names the file, the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from ._clients import AppSecPlus, AppTrust, Client, IQServer, ThreadFix
from ._errors import ConfigError, ScanhubError
from ._hub import ItemError, ScanHub
from ._model import Lifecycle, Promotion, Scan, Vendor
from ._ratelimit import RateLimit
from ._transport import Timeouts

#: Per vendor: credential -> whether it is a secret (read only from `<name>_env`).
_CREDENTIALS: dict[str, dict[str, bool]] = {
    "iq": {"username": False, "password": True},
    "threadfix": {"api_key": True},
    "appsecplus": {"token": True},
    "apptrust": {"token": True},
}
_SOURCE_OPTIONS = {
    "name",
    "vendor",
    "base_url",
    "timeout",
    "connect_timeout",
    "verify_tls",
    "rate_limit",
    "csrf_token",
    "api_version",
    "api_key_in_query",
}
#: Per vendor: the accepted keys of a [[track]] entry.
_TRACK_KEYS: dict[str, set[str]] = {
    "iq": {"application_id", "public_id", "status_id"},
    "threadfix": {"application_id", "pending_scan_id"},
    "appsecplus": {"scan_id", "application_id", "status"},
    "apptrust": {
        "application_key",
        "version",
        "promotion_id",
        "target_stage",
        "status",
        "promoted_by",
    },
}


#: Per vendor: groups of [[track]] keys of which at least one must be given.
_REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "iq": [("status_id",), ("application_id", "public_id")],
    "threadfix": [("application_id",), ("pending_scan_id",)],
    "appsecplus": [("scan_id", "application_id")],
    "apptrust": [("application_key",), ("version",)],
}


@frozen
class SourceConfig:
    """One `[[source]]`."""

    name: str
    vendor: Vendor
    base_url: str
    options: Mapping[str, Any]


@frozen
class TrackConfig:
    """One `[[track]]`."""

    index: int
    source: str
    vendor: Vendor
    params: Mapping[str, str]


@frozen
class Config:
    """A loaded configuration file."""

    path: str
    sources: tuple[SourceConfig, ...]
    tracks: tuple[TrackConfig, ...]
    interval: float = 5.0
    timeout: float | None = None


def _err(path: str, key: str, expected: str, got: object = ...) -> ConfigError:
    tail = "" if got is ... else f", got {got!r}"
    return ConfigError(f"{path}: {key}: expected {expected}{tail}", operation="load config")


def load_config(path: str | Path = "scanhub.toml") -> Config:
    """Read and check a configuration file; raises `ConfigError` naming file, key, expectation."""
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
    return parse_config(data, name)


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> Config:
    """Check an already parsed TOML document."""
    unknown = set(data) - {"interval", "timeout", "source", "track"}
    if unknown:
        raise _err(
            path, sorted(unknown)[0], "one of interval, timeout, source, track (unknown key)"
        )
    interval = _number(data, "interval", path, 5.0)
    timeout = _number(data, "timeout", path, None)
    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise _err(path, "source", "at least one [[source]] table", raw_sources or None)
    sources = tuple(_source(s, i, path) for i, s in enumerate(raw_sources))
    by_name: dict[str, SourceConfig] = {}
    for s in sources:
        if s.name in by_name:
            raise _err(path, "source.name", "unique names", s.name)
        by_name[s.name] = s
    raw_tracks = data.get("track", [])
    if not isinstance(raw_tracks, list):
        raise _err(path, "track", "an array of [[track]] tables", raw_tracks)
    tracks = tuple(_track(t, i, path, by_name) for i, t in enumerate(raw_tracks))
    return Config(path, sources, tracks, interval if interval is not None else 5.0, timeout)


def _number(table: Mapping[str, Any], key: str, where: str, default: float | None) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _err(where, key, "a positive number of seconds", value)
    return float(value)


def _source(raw: Any, i: int, path: str) -> SourceConfig:
    where = f"source[{i}]"
    if not isinstance(raw, dict):
        raise _err(path, where, "a table", raw)
    vendor_name = raw.get("vendor")
    if vendor_name not in _CREDENTIALS:
        raise _err(
            path, f"{where}.vendor", "one of iq, threadfix, appsecplus, apptrust", vendor_name
        )
    base_url = raw.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise _err(path, f"{where}.base_url", "an http(s) URL", base_url)
    name = raw.get("name", vendor_name)
    if not isinstance(name, str) or not name:
        raise _err(path, f"{where}.name", "a non-empty string", name)
    creds = _CREDENTIALS[vendor_name]
    allowed = _SOURCE_OPTIONS | {k for k in creds if not creds[k]} | {f"{k}_env" for k in creds}
    for key in raw:
        if creds.get(key):
            raise _err(
                path,
                f"{where}.{key}",
                f"{key}_env naming an environment variable (secrets are never read from the file)",
            )
        if key not in allowed:
            raise _err(path, f"{where}.{key}", f"one of {', '.join(sorted(allowed))}")
    for cred, secret in creds.items():
        if not secret and cred in raw and not isinstance(raw[cred], str):
            raise _err(path, f"{where}.{cred}", "a string", raw[cred])
        if (secret or cred not in raw) and not isinstance(raw.get(f"{cred}_env"), str):
            raise _err(
                path,
                f"{where}.{cred}_env",
                "the name of an environment variable",
                raw.get(f"{cred}_env"),
            )
    for key in ("timeout", "connect_timeout"):
        _number(raw, key, f"{path}: {where}", None)
    if "verify_tls" in raw and not isinstance(raw["verify_tls"], bool):
        raise _err(path, f"{where}.verify_tls", "true or false", raw["verify_tls"])
    if "rate_limit" in raw:
        _rate_limit(raw["rate_limit"], path, f"{where}.rate_limit")
    return SourceConfig(name, Vendor(vendor_name), base_url, dict(raw))


def _rate_limit(value: Any, path: str, where: str) -> RateLimit:
    if value == "iq-cloud":
        return RateLimit.iq_cloud()
    if isinstance(value, dict) and set(value) == {"max_requests", "period"}:
        n, period = value["max_requests"], value["period"]
        if (
            isinstance(n, int)
            and not isinstance(n, bool)
            and n > 0
            and isinstance(period, int | float)
            and period > 0
        ):
            return RateLimit(n, float(period))
    raise _err(path, where, '"iq-cloud" or { max_requests = N, period = SECONDS }', value)


def _track(raw: Any, i: int, path: str, sources: Mapping[str, SourceConfig]) -> TrackConfig:
    where = f"track[{i}]"
    if not isinstance(raw, dict):
        raise _err(path, where, "a table", raw)
    source = raw.get("source")
    if not isinstance(source, str) or source not in sources:
        raise _err(
            path, f"{where}.source", f"one of the source names ({', '.join(sources)})", source
        )
    vendor = sources[source].vendor
    params: dict[str, str] = {}
    for key, value in raw.items():
        if key == "source":
            continue
        if key not in _TRACK_KEYS[vendor.value]:
            raise _err(
                path,
                f"{where}.{key}",
                f"one of {', '.join(sorted(_TRACK_KEYS[vendor]))} for a {vendor.value} source",
            )
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _err(path, f"{where}.{key}", "a string or an integer", value)
        params[key] = str(value)
    need: list[tuple[str, ...]] = _REQUIRED[vendor.value]
    for options in need:
        if not any(o in params for o in options):
            raise _err(
                path,
                f"{where}.{options[0]}",
                f"{' or '.join(options)} for a {vendor.value} source (missing)",
            )
    return TrackConfig(i, source, vendor, params)


def build_clients(config: Config, env: Mapping[str, str] | None = None) -> list[Client]:
    """Clients for every source, with secrets read from the environment."""
    env = os.environ if env is None else env
    clients: list[Client] = []
    for s in config.sources:
        o = s.options
        creds: dict[str, str] = {}
        for cred in _CREDENTIALS[s.vendor.value]:
            if cred in o:
                creds[cred] = o[cred]
                continue
            var = o[f"{cred}_env"]
            if not env.get(var):
                raise ConfigError(
                    f"{config.path}: source {s.name!r}: environment variable {var} "
                    f"({cred}_env) is not set",
                    operation="load config",
                )
            creds[cred] = env[var]
        kw: dict[str, Any] = {"name": s.name, "verify_tls": o.get("verify_tls", True)}
        if "timeout" in o or "connect_timeout" in o:
            kw["timeouts"] = Timeouts(
                connect=float(o.get("connect_timeout", 10.0)), total=float(o.get("timeout", 30.0))
            )
        if "rate_limit" in o:
            kw["rate_limit"] = _rate_limit(o["rate_limit"], config.path, s.name)
        if s.vendor is Vendor.IQ:
            clients.append(
                IQServer(
                    s.base_url,
                    creds["username"],
                    creds["password"],
                    csrf_token=o.get("csrf_token"),
                    **kw,
                )
            )
        elif s.vendor is Vendor.THREADFIX:
            clients.append(
                ThreadFix(
                    s.base_url,
                    creds["api_key"],
                    api_version=o.get("api_version", "latest"),
                    api_key_in_query=o.get("api_key_in_query", False),
                    **kw,
                )
            )
        elif s.vendor is Vendor.APPSECPLUS:
            clients.append(AppSecPlus(s.base_url, creds["token"], **kw))
        else:
            clients.append(AppTrust(s.base_url, creds["token"], **kw))
    return clients


async def apply_tracks(hub: ScanHub, config: Config) -> None:
    """Put what the file says to track into `hub`. Single items start as placeholders in state
    `unknown` (the first refresh fills them in); queries (AppSec+ by application, AppTrust by
    version) are run now. A failing lookup is recorded in `hub.source_errors`."""
    for t in config.tracks:
        p = t.params
        try:
            if t.vendor is Vendor.IQ:
                app = p.get("application_id")
                if app is None:
                    client = hub.client(t.source)
                    assert isinstance(client, IQServer)
                    app = await client.application_id(p["public_id"])
                hub.track(
                    Promotion(Vendor.IQ, t.source, p["status_id"], app, Lifecycle.UNKNOWN, "")
                )
            elif t.vendor is Vendor.THREADFIX:
                hub.track(
                    Scan(
                        Vendor.THREADFIX,
                        t.source,
                        p["pending_scan_id"],
                        p["application_id"],
                        Lifecycle.UNKNOWN,
                        "",
                    )
                )
            elif t.vendor is Vendor.APPSECPLUS:
                if "scan_id" in p:
                    hub.track(
                        Scan(
                            Vendor.APPSECPLUS,
                            t.source,
                            p["scan_id"],
                            p.get("application_id", ""),
                            Lifecycle.UNKNOWN,
                            "",
                        )
                    )
                else:
                    await hub.discover_scans(t.source, p["application_id"], p.get("status"))
            elif "promotion_id" in p:
                hub.track(
                    Promotion(
                        Vendor.APPTRUST,
                        t.source,
                        p["promotion_id"],
                        p["application_key"],
                        Lifecycle.UNKNOWN,
                        "",
                        version=p["version"],
                    )
                )
            else:
                await hub.discover_promotions(
                    t.source,
                    p["application_key"],
                    p["version"],
                    target_stage=p.get("target_stage"),
                    status=p.get("status"),
                    promoted_by=p.get("promoted_by"),
                )
        except ScanhubError as exc:
            hub.source_errors[t.source] = ItemError.of(exc, hub._now())
