"""Acme Scan's demo part: its simulator, what `scanhub sim` seeds, its part in the demo."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Lifecycle, Planned, Seeded, VendorDemo, Verdict

from .client import Acme
from .sim import AcmeSim


class AcmeDemo(VendorDemo):
    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AcmeSim:
        return AcmeSim(clock=clock, host=host, port=port)

    def sim_source(self, sim: AcmeSim) -> tuple[dict[str, Any], dict[str, str]]:
        return {"key_env": "ACME_KEY"}, {"ACME_KEY": sim.key}

    def sim_seed(self, sim: AcmeSim) -> list[Seeded]:
        sim.add_scan("a-1", "shop")
        sim.add_scan("a-2", "shop", issues=3)
        return [Seeded({"app": "shop"}, "every scan of app shop (a-1, a-2)")]

    def client(self, sim: AcmeSim) -> Acme:
        return Acme(sim.base_url, sim.key, name="acme")

    async def scenario(self, sim: AcmeSim, client: Acme) -> list[Planned]:
        sim.add_scan("demo-1", "shop", issues=1)
        return [Planned(await client.scan("demo-1"), Lifecycle.SUCCEEDED, Verdict.FAIL)]


DEMO = AcmeDemo()
