"""The vendor registry: one `VendorSpec` per vendor, found by name.

A vendor is one package (`scanhub.vendors.<name>`) that holds everything about it: its mapping
tables and pure functions (`sansio`), its client, and a `VendorSpec` that tells the rest of
scanhub how to configure it (source and track schemas), what "track all scans of an
application" means for it (`resolve_track`), how to build its client and how to read its
webhooks. Its simulator and its part in the demos (`VendorDemo`, module `demo`) are loaded
only when asked for (`VendorSpec.load_demo`). Configuration, engine, CLI and demo dispatch
through the registry; nothing outside a vendor's package branches on a vendor name.

Built-in and third-party vendors are written against the same public API (`scanhub.vendors`,
`scanhub.sansio`, `scanhub.sim`). Third-party vendors register through the entry point group
`scanhub.vendors`, whose value is a `VendorSpec` instance or class:

    [project.entry-points."scanhub.vendors"]
    acme = "scanhub_acme:SPEC"
"""

from __future__ import annotations

import abc
import importlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar

import attrs
from attrs import frozen

from ._clients import Client
from ._errors import ConfigError
from ._model import Item
from ._schema import (
    NOT_AN_ENV_NAME,
    ApiUrl,
    Count,
    EnvVar,
    RateLimitSetting,
    Seconds,
    Text,
    env_name_problem,
)
from ._transport import Timeouts
from ._vendor_demo import Planned, Seeded, VendorDemo

log = logging.getLogger("scanhub")

#: The entry point group third-party vendors register under.
ENTRY_POINT_GROUP = "scanhub.vendors"
#: The built-in vendors, as `module:attribute` of their spec.
BUILTIN = (
    "scanhub.vendors.iq:SPEC",
    "scanhub.vendors.threadfix:SPEC",
    "scanhub.vendors.appsecplus:SPEC",
    "scanhub.vendors.apptrust:SPEC",
    "scanhub.vendors.sonarqube:SPEC",
    "scanhub.vendors.dependencytrack:SPEC",
    "scanhub.vendors.github:SPEC",
)


class NotProvided(LookupError):
    """A vendor does not provide an optional part (a simulator, a demo role)."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@attrs.define(kw_only=True)
class StuckByKind:
    """`stuck_after_by_kind`: seconds per kind of item (overrides the source's `stuck_after`)."""

    scan: Seconds | None = attrs.field(default=None, metadata=_doc("seconds, for scans"))
    promotion: Seconds | None = attrs.field(default=None, metadata=_doc("seconds, for promotions"))


def env_problem(var: str, env: Mapping[str, str], *, several: bool = False) -> str | None:
    """What is wrong with environment variable `var` as a setting's value, naming it, never
    its value: not set, set to nothing but white space (a CI secret that expanded to ""), or
    holding a control character (a line break, NUL, ...) inside it, or bytes that are not
    UTF-8 text; None when it holds
    something. White space around a value is not a problem: values are read stripped (a
    secret mounted from a file ends with a newline). With `several` (space-separated
    values), white space between them is not inside a value either. A `var` that cannot be a
    variable's name (most often the secret itself, put where its variable's name goes) is not
    named either."""
    if env_name_problem(var) is not None:
        return NOT_AN_ENV_NAME
    if var not in env:
        return f"environment variable {var} is not set"
    value = env[var]
    if not value.strip():
        return f"environment variable {var} is empty"
    parts = value.split() if several else [value.strip()]
    if any(_CONTROL.search(part) for part in parts):
        return (
            f"environment variable {var} holds a control character (a line break, a tab, ...) "
            "inside its value"
        )
    if _UNDECODED.search(value):
        # (Bytes the locale could not decode, kept by Python as lone surrogates: no text
        # can be sent or quoted with them.)
        return f"environment variable {var} holds bytes that are not UTF-8 text"
    return None


#: A control character (C0, DEL, C1): never part of a secret, and refused in an HTTP header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: A lone surrogate: what `os.environ` makes of bytes it cannot decode.
_UNDECODED = re.compile(r"[\ud800-\udfff]")


@attrs.define(kw_only=True)
class SourceConfig:
    """One `[[source]]`: what every vendor's source has. A vendor's schema subclasses it and
    adds its own keys; secrets are only ever named by `<secret>_env`."""

    vendor: Text = attrs.field(metadata=_doc("the vendor's registry name"))
    base_url: ApiUrl = attrs.field(metadata=_doc("the API root URL"))
    name: Text | None = attrs.field(
        default=None, metadata=_doc("how items are told apart; default: the vendor")
    )
    timeout: Seconds | None = attrs.field(
        default=None, metadata=_doc("total seconds per request (default 30)")
    )
    connect_timeout: Seconds | None = attrs.field(
        default=None, metadata=_doc("seconds to connect (default 10)")
    )
    verify_tls: bool = attrs.field(default=True, metadata=_doc("verify TLS certificates"))
    rate_limit: RateLimitSetting | None = attrs.field(
        default=None, metadata=_doc('"iq-cloud" or { max_requests = N, period = SECONDS }')
    )
    max_body: Count | None = attrs.field(
        default=None, metadata=_doc("the largest answer read, in bytes (default 16 MiB)")
    )
    stuck_after: Seconds | None = attrs.field(
        default=None,
        metadata=_doc(
            "an unfinished item under way longer than this many seconds is stuck (default: "
            "the p90 of this source's total time over 7 days, once 20 items finished)"
        ),
    )
    stuck_after_by_kind: StuckByKind | None = attrs.field(
        default=None,
        metadata=_doc("stuck_after per kind, for example { scan = 600, promotion = 3600 }"),
    )

    #: Secret credentials of this vendor: `<name>` in the file is refused, `<name>_env` names
    #: the environment variable that holds it.
    SECRETS: ClassVar[tuple[str, ...]] = ()

    @property
    def source_name(self) -> str:
        """The configured name, else the vendor's name."""
        return self.name or self.vendor

    def problems(self) -> list[tuple[str, str]]:
        """Checks across keys, as (key, message); single values are checked by their types."""
        return []

    def env_vars(self) -> list[tuple[str, str]]:
        """(key, variable) for every `*_env` key that is set."""
        out = []
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            if f.name.endswith("_env") and isinstance(value, str):
                out.append((f.name, value))
        return out

    def secret(self, key: str, env: Mapping[str, str]) -> str:
        """The value of the variable named by `key` (a `*_env` key); `ConfigError` if unset
        or empty (`env_problem`)."""
        return self.secrets((key,), env)[0]

    def secrets(self, keys: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """The values of the variables named by `keys` (`*_env` keys), in order, without the
        white space around them (a secret mounted from a file ends with a newline); one
        `ConfigError` naming every one unset, empty or holding a control character
        (`env_problem`), so that a user fixes them at once."""
        whys = []
        for key in keys:
            var = getattr(self, key)
            why = env_problem(var, env) if isinstance(var, str) else f"{key} is not given"
            if why is not None:
                whys.append(f"{key}: {why}")
        if whys:
            shown = "; ".join(whys)
            raise ConfigError(f"source {self.source_name!r}: {shown}", operation="load config")
        return [env[getattr(self, key)].strip() for key in keys]  # a file's newline, say

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments every client takes, from the shared keys."""
        kw: dict[str, Any] = {"name": self.source_name, "verify_tls": self.verify_tls}
        if self.timeout is not None or self.connect_timeout is not None:
            default = Timeouts()
            kw["timeouts"] = Timeouts(
                connect=default.connect if self.connect_timeout is None else self.connect_timeout,
                total=default.total if self.timeout is None else self.timeout,
            )
        if self.rate_limit is not None:
            kw["rate_limit"] = self.rate_limit
        if self.max_body is not None:
            kw["max_body"] = self.max_body
        return kw


@attrs.define(kw_only=True)
class TrackConfig:
    """One `[[track]]`: which configured source it belongs to. A vendor's track schema adds
    what identifies an item, or a discovery query, on that vendor."""

    source: Text = attrs.field(metadata=_doc("the name of a [[source]]"))

    #: Keys that name a file on the machine scanhub runs on (read when the track is
    #: resolved), with what to send instead: a config file or the CLI may use them, a request
    #: to `scanhub serve`'s API may not (it would make the service read any path it can).
    LOCAL_FILES: ClassVar[Mapping[str, str]] = {}

    def problems(self) -> list[tuple[str, str]]:
        """Checks across keys (for example "one of a or b"), as (key, message)."""
        return []


def need_one(obj: object, *keys: str) -> list[tuple[str, str]]:
    """A problem unless at least one of `keys` is set (a helper for `problems`)."""
    if any(getattr(obj, k) is not None for k in keys):
        return []
    return [(keys[0], f"give {' or '.join(keys)} (missing)")]


@frozen
class Tracking:
    """What a `[[track]]` entry means: items to track now and/or a discovery query that finds
    items (re-run by long-running watchers so new scans appear by themselves)."""

    items: tuple[Item, ...] = ()
    #: Keyword arguments of the client's `discover`, or None.
    query: Mapping[str, str] | None = None


@frozen
class WebhookResult:
    """What a vendor's webhook delivery meant.

    `outcome`: "applied" (items to take at once), "ignored" (an event type the vendor package
    does not handle; answered 202), or "rejected" (a missing or bad signature: nothing is
    recorded; answered 401). `delivery` is the vendor's delivery id, for deduplication;
    `confirm` names application ids whose tracked items are polled right away to confirm."""

    outcome: str
    detail: str
    delivery: str | None = None
    items: tuple[Item, ...] = ()
    confirm: tuple[str, ...] = ()


class VendorSpec(abc.ABC):
    """Everything scanhub needs to know about one vendor. Subclass it in the vendor's package
    and register an instance (built in: `BUILTIN`; third party: the `scanhub.vendors` entry
    point group)."""

    #: The registry name, used as `vendor = "..."` in `[[source]]` and as `Item.vendor`.
    name: ClassVar[str]
    #: A human name ("Sonatype IQ Server").
    title: ClassVar[str]
    #: The vendor's client class.
    client: ClassVar[type[Client]]
    #: The `[[source]]` schema (a `SourceConfig` subclass).
    source_schema: ClassVar[type[SourceConfig]]
    #: The `[[track]]` schema (a `TrackConfig` subclass).
    track_schema: ClassVar[type[TrackConfig]]
    #: `"module:attribute"` of the vendor's `VendorDemo` (simulator and demo part), imported
    #: only by `load_demo`; None: the vendor ships none.
    demo: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<VendorSpec {self.name}>"

    @abc.abstractmethod
    def make_client(self, source: Any, env: Mapping[str, str]) -> Client:
        """The client for a checked `[[source]]`, secrets read from `env`."""

    @abc.abstractmethod
    async def resolve_track(self, client: Any, track: Any) -> Tracking:
        """What a checked `[[track]]` means on this vendor (may call the client, e.g. to look
        an application up)."""

    def webhook(
        self, source: Any, env: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> WebhookResult:
        """Judge a webhook delivery for `source` (a checked `[[source]]`): verify it and say
        what it means. Vendors without webhooks (or a source without a webhook secret) raise
        `NotProvided`."""
        raise NotProvided(f"{self.name} has no webhooks")

    def load_demo(self) -> VendorDemo:
        """This vendor's demo part (simulator, `scanhub sim` seeds, demo scenario), imported
        now from `demo`; `NotProvided` when the vendor ships none."""
        cached = self.__dict__.get("_demo")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        if not self.demo:
            raise NotProvided(f"{self.name} ships no simulator or demo part")
        part = _load(self.demo)
        if isinstance(part, type):
            part = part()
        if not isinstance(part, VendorDemo):
            raise TypeError(f"{self.demo} is not a VendorDemo: {part!r}")
        self.__dict__["_demo"] = part
        return part


class Registry:
    """Vendor specs by name."""

    def __init__(self, specs: Iterator[VendorSpec] | tuple[VendorSpec, ...] = ()) -> None:
        self._specs: dict[str, VendorSpec] = {}
        #: Plugins that failed to load: entry point name -> reason.
        self.load_errors: dict[str, str] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: VendorSpec | type[VendorSpec], *, replace: bool = False) -> None:
        """Add a vendor (an instance, or a class to instantiate)."""
        if isinstance(spec, type):
            spec = spec()
        if not isinstance(spec, VendorSpec):
            raise TypeError(f"expected a VendorSpec, got {spec!r}")
        for attr in ("name", "title", "client", "source_schema", "track_schema"):
            if not hasattr(spec, attr):
                raise TypeError(f"vendor spec {spec!r} does not define {attr}")
        if spec.name in self._specs and not replace:
            raise ValueError(f"a vendor named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def unregister(self, name: str) -> None:
        """Remove a vendor (tests)."""
        self._specs.pop(name, None)

    def get(self, name: str) -> VendorSpec:
        """The spec registered as `name`; `KeyError` naming the known vendors otherwise."""
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown vendor {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        """Registered vendor names, built-ins first, in registration order."""
        return list(self._specs)

    def for_client(self, client: Client) -> VendorSpec:
        """The spec of a client's vendor."""
        return self.get(client.vendor)

    def __iter__(self) -> Iterator[VendorSpec]:
        return iter(list(self._specs.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def load_registry(*, plugins: bool = True) -> Registry:
    """A registry of the built-in vendors and, with `plugins`, every `scanhub.vendors` entry
    point. A plugin that fails to load is logged and listed in `load_errors`; it never takes
    the built-in vendors down. `SCANHUB_NO_PLUGINS=1` skips plugins."""
    reg = Registry()
    for target in BUILTIN:
        reg.register(_load(target))
    if not plugins or os.environ.get("SCANHUB_NO_PLUGINS") == "1":
        return reg
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            reg.register(ep.load())
        except Exception as exc:  # a broken plugin is reported, not fatal
            reg.load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("scanhub: vendor plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)
    return reg


_default: Registry | None = None


def registry() -> Registry:
    """The process-wide registry (built-ins and plugins, loaded on first use)."""
    global _default
    if _default is None:
        _default = load_registry()
    return _default


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "EnvVar",
    "NotProvided",
    "Planned",
    "Registry",
    "Seeded",
    "SourceConfig",
    "TrackConfig",
    "Tracking",
    "VendorDemo",
    "VendorSpec",
    "WebhookResult",
    "load_registry",
    "need_one",
    "registry",
]
