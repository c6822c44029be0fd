"""Vendor simulators: real aiohttp servers on loopback that speak each vendor's documented API.

They serve the demo, the integration tests, the benchmarks, and anyone building a dashboard
without vendor access (`scanhub sim`). Scans progress on a `SimClock`; `Faults` injects
latency, 5xx, 429 with or without Retry-After, malformed or truncated bodies, HTML error pages,
dropped connections, auth failure and unknown status values. Each simulator lives in its
vendor's package (`scanhub.vendors.<name>.sim`); the built-in ones are re-exported here.
"""

from ..vendors.appsecplus.sim import AppSecPlusSim
from ..vendors.apptrust.sim import AppTrustSim
from ..vendors.iq.sim import IQSim
from ..vendors.threadfix.sim import ThreadFixSim
from ._base import Faults, SimClock, SimServer, Stats

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
