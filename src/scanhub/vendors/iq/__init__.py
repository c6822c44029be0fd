"""Sonatype IQ Server: promote scan and its status, IQ webhooks.

`sansio` holds the mapping tables and pure functions, `client` the `IQServer` client, `sim` the
simulator, `spec` the registry entry (configuration schema, tracking, demo)."""

from .client import IQServer
from .spec import SPEC, IQSource, IQSpec, IQTrack

__all__ = ["SPEC", "IQServer", "IQSource", "IQSpec", "IQTrack"]
