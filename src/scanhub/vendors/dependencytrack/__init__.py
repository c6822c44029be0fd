"""OWASP Dependency-Track: BOM uploads followed to their end, with the project's policy verdict
and findings.

`sansio` holds the mapping tables and pure functions, `client` the `DependencyTrack` client,
`sim` the simulator, `spec` the registry entry (configuration schema, tracking), `demo` its part
in the demos."""

from .client import DependencyTrack
from .spec import SPEC, DependencyTrackSource, DependencyTrackSpec, DependencyTrackTrack

__all__ = [
    "SPEC",
    "DependencyTrack",
    "DependencyTrackSource",
    "DependencyTrackSpec",
    "DependencyTrackTrack",
]
