"""The vendors scanhub speaks to, one package each; the registry that lists them; and the API a
vendor package is written against.

`registry()` returns the process-wide `Registry` of `VendorSpec`s: the built-in vendors (`BUILTIN`)
and any third-party vendor registered through the `scanhub.vendors` entry point group. Built-in
and third-party vendors import the same names: this module (spec, configuration schema, client
base, model), `scanhub.sansio` (requests, responses and defensive readers) and `scanhub.sim`
(the simulator toolkit, for the demo part). adapters.md, "Adding a vendor", says what a vendor
package holds and which tests it must pass.
"""

from .._clients import Client
from .._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    ScanhubError,
    ServerError,
)
from .._model import (
    NO_LINKS,
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
from .._ratelimit import RateLimit
from .._registry import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    NotProvided,
    Registry,
    SourceConfig,
    TrackConfig,
    Tracking,
    VendorSpec,
    WebhookResult,
    load_registry,
    need_one,
    registry,
)
from .._schema import Count, EnvVar, HttpUrl, Id, Seconds, Text
from .._secrets import Secret
from .._transport import RetryPolicy, Timeouts
from .._vendor_demo import Planned, Seeded, VendorDemo

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "NO_LINKS",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigError",
    "ConflictError",
    "Count",
    "EnvVar",
    "FindingCounts",
    "Gate",
    "GateKind",
    "HttpUrl",
    "Id",
    "Item",
    "Lifecycle",
    "NotFoundError",
    "NotProvided",
    "PayloadError",
    "Planned",
    "Promotion",
    "RateLimit",
    "RateLimitedError",
    "Registry",
    "RetryPolicy",
    "Scan",
    "ScanhubError",
    "Seconds",
    "Secret",
    "Seeded",
    "ServerError",
    "SourceConfig",
    "Text",
    "Timeouts",
    "TrackConfig",
    "Tracking",
    "Vendor",
    "VendorDemo",
    "VendorSpec",
    "Verdict",
    "WebhookResult",
    "load_registry",
    "need_one",
    "registry",
]
