"""GitHub code scanning: SARIF uploads and their processing status.

`sansio` holds the mapping table and pure functions, `client` the `GitHubCodeScanning` client,
`sim` the simulator, `spec` the registry entry (configuration schema, tracking, demo)."""

from .client import GitHubCodeScanning
from .spec import SPEC, GitHubSource, GitHubSpec, GitHubTrack

__all__ = ["SPEC", "GitHubCodeScanning", "GitHubSource", "GitHubSpec", "GitHubTrack"]
