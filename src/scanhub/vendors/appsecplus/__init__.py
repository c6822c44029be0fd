"""AppSec+: SAST, DAST, SCA and container scans.

`sansio` holds the mapping table and pure functions, `client` the `AppSecPlus` client, `sim` the
simulator, `spec` the registry entry (configuration schema, tracking, demo)."""

from .client import AppSecPlus
from .spec import SPEC, AppSecPlusSource, AppSecPlusSpec, AppSecPlusTrack

__all__ = ["SPEC", "AppSecPlus", "AppSecPlusSource", "AppSecPlusSpec", "AppSecPlusTrack"]
