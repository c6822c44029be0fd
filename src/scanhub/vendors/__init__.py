"""The vendors scanhub speaks to, one package each, and the registry that lists them.

`registry()` returns the process-wide `Registry` of `VendorSpec`s: the built-in vendors
(`iq`, `threadfix`, `appsecplus`, `apptrust`) and any third-party vendor registered through the
`scanhub.vendors` entry point group. adapters.md, "Adding a vendor", says what a vendor package
holds and which tests it must pass.
"""

from .._registry import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    NotProvided,
    Planned,
    Registry,
    Seeded,
    SourceConfig,
    TrackConfig,
    Tracking,
    VendorSpec,
    WebhookResult,
    load_registry,
    need_one,
    registry,
)

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "NotProvided",
    "Planned",
    "Registry",
    "Seeded",
    "SourceConfig",
    "TrackConfig",
    "Tracking",
    "VendorSpec",
    "WebhookResult",
    "load_registry",
    "need_one",
    "registry",
]
