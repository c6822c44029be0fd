"""Vendor simulators: real aiohttp servers on loopback that speak each vendor's documented API.

They serve the demo, the integration tests, the benchmarks, and anyone building a dashboard
without vendor access (`scanhub sim`). This module is the toolkit a vendor's simulator is
written with: `SimServer` (the base: auth, faults, request log), `SimClock` (scans progress on
it; `speed` and `advance`), `Faults` (latency, 5xx, 429 with or without Retry-After, malformed
or truncated bodies, HTML error pages, dropped connections, auth failure, unknown status
values), `json_response` and `progress`.

Each simulator lives in its vendor's package (`scanhub.vendors.<name>.sim`, loaded with the
vendor's demo part). The built-in ones stay reachable here under their historical names
(`scanhub.sim.IQSim`, ...), imported when first asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import Faults, SimClock, SimServer, Stats, json_response, progress

#: Deprecated aliases: the built-in simulators under their historical names.
_HISTORICAL = {
    "IQSim": "scanhub.vendors.iq.sim",
    "ThreadFixSim": "scanhub.vendors.threadfix.sim",
    "AppSecPlusSim": "scanhub.vendors.appsecplus.sim",
    "AppTrustSim": "scanhub.vendors.apptrust.sim",
}


def __getattr__(name: str) -> Any:
    module = _HISTORICAL.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Faults", "SimClock", "SimServer", "Stats", "json_response", "progress"]
