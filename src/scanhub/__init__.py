"""scanhub: where your application-security scans and release promotions stand, across vendors,
in one vocabulary.

    import scanhub

    async with scanhub.AppSecPlus("https://api.appsecplus.example.com", token) as asp:
        scan = await asp.trigger_scan("app-12345", "sast")
        scan = await asp.refresh(scan)
        print(scan.lifecycle, scan.findings)
"""

from ._changes import Change, ItemError, Snapshot
from ._clients import Client
from ._compose import apply_tracks, build_clients
from ._config import Config, config_schema, load_config
from ._convert import from_dict, from_json, item_from_dict, make_converter, to_dict, to_json
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    RequestTimeout,
    ScanhubError,
    ServerError,
    StoreUnavailable,
    TransportError,
    WaitTimeoutError,
)
from ._exports import github_check, otel_attributes, to_cloudevent
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
from ._ratelimit import RateLimit
from ._registry import Registry, SourceConfig, TrackConfig, Tracking, VendorSpec, registry
from ._secrets import Secret
from ._sinks import SignatureError, Sink, SinkFilter
from ._sinks import new_secret as new_webhook_secret
from ._sinks import sign as sign_webhook
from ._sinks import verify as verify_webhook
from ._transport import HTTPTransport, MockTransport, RetryPolicy, Timeouts
from .engine import Discovery, EngineHealth, ScanHub, SourceHealth, Sources, Subscription
from .store import (
    DeadLetter,
    GroupStats,
    MemoryStore,
    ReplayPastEnd,
    Retention,
    SinkLedger,
    SinkState,
    SinkStatus,
    Spread,
    SQLiteStore,
    Store,
    StoredItem,
    Transition,
    open_store,
)
from .vendors.appsecplus import AppSecPlus
from .vendors.apptrust import AppTrust
from .vendors.iq import IQServer
from .vendors.threadfix import ThreadFix

__version__ = "0.1.0"

__all__ = [
    "AppSecPlus",
    "AppTrust",
    "AuthenticationError",
    "BadRequestError",
    "Change",
    "Client",
    "Config",
    "ConfigError",
    "ConflictError",
    "DeadLetter",
    "Discovery",
    "EngineHealth",
    "FindingCounts",
    "Gate",
    "GateKind",
    "GroupStats",
    "HTTPTransport",
    "IQServer",
    "Item",
    "ItemError",
    "Lifecycle",
    "MemoryStore",
    "MockTransport",
    "NotFoundError",
    "PayloadError",
    "Promotion",
    "RateLimit",
    "RateLimitedError",
    "Registry",
    "ReplayPastEnd",
    "RequestTimeout",
    "Retention",
    "RetryPolicy",
    "SQLiteStore",
    "Scan",
    "ScanHub",
    "ScanhubError",
    "Secret",
    "ServerError",
    "SignatureError",
    "Sink",
    "SinkFilter",
    "SinkLedger",
    "SinkState",
    "SinkStatus",
    "Snapshot",
    "SourceConfig",
    "SourceHealth",
    "Sources",
    "Spread",
    "Store",
    "StoreUnavailable",
    "StoredItem",
    "Subscription",
    "ThreadFix",
    "Timeouts",
    "TrackConfig",
    "Tracking",
    "Transition",
    "TransportError",
    "Vendor",
    "VendorSpec",
    "Verdict",
    "WaitTimeoutError",
    "__version__",
    "apply_tracks",
    "build_clients",
    "config_schema",
    "from_dict",
    "from_json",
    "github_check",
    "item_from_dict",
    "load_config",
    "make_converter",
    "new_webhook_secret",
    "open_store",
    "otel_attributes",
    "registry",
    "sign_webhook",
    "to_cloudevent",
    "to_dict",
    "to_json",
    "verify_webhook",
]
