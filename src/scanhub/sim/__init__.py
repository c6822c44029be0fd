"""Vendor simulators: real aiohttp servers on loopback that speak each vendor's documented API.

They serve the demo, the integration tests, the benchmarks, and anyone building a dashboard
without vendor access (`scanhub sim`). Scans progress on a `SimClock`; `Faults` injects
latency, 5xx, 429 with or without Retry-After, malformed or truncated bodies, HTML error pages,
dropped connections, auth failure and unknown status values.
"""

from ._base import Faults, SimClock, SimServer, Stats
from .appsecplus import AppSecPlusSim
from .apptrust import AppTrustSim
from .iq import IQSim
from .threadfix import ThreadFixSim

__all__ = [
    "AppSecPlusSim",
    "AppTrustSim",
    "Faults",
    "IQSim",
    "SimClock",
    "SimServer",
    "Stats",
    "ThreadFixSim",
]
