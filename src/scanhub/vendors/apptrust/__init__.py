"""JFrog AppTrust: application version promotions with entry and exit gates.

`sansio` holds the mapping tables and pure functions, `client` the `AppTrust` client, `sim` the
simulator, `spec` the registry entry (configuration schema, tracking, demo)."""

from .client import AppTrust
from .spec import SPEC, AppTrustSource, AppTrustSpec, AppTrustTrack

__all__ = ["SPEC", "AppTrust", "AppTrustSource", "AppTrustSpec", "AppTrustTrack"]
