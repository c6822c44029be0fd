"""ThreadFix: scan upload and pending-scan status.

`sansio` holds the mapping table and pure functions, `client` the `ThreadFix` client, `sim` the
simulator, `spec` the registry entry (configuration schema, tracking, demo)."""

from .client import ThreadFix
from .spec import SPEC, ThreadFixSource, ThreadFixSpec, ThreadFixTrack

__all__ = ["SPEC", "ThreadFix", "ThreadFixSource", "ThreadFixSpec", "ThreadFixTrack"]
