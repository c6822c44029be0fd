"""AppTrust's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo, Verdict

from .client import AppTrust
from .sim import AppTrustSim


class AppTrustDemo(VendorDemo):
    """AppTrust in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AppTrustSim:
        return AppTrustSim(clock=clock, duration=4.0, host=host, port=port)

    def sim_source(self, sim: AppTrustSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_APPTRUST_TOKEN"
        return {"token_env": var}, {var: sim.token}

    def sim_seed(self, sim: AppTrustSim) -> list[Seeded]:
        sim.add_version("webshop", "1.4.0")
        ids = sim.seed_promotions("webshop", "1.4.0", 2, duration=20)
        return [
            Seeded(
                {"application_key": "webshop", "version": "1.4.0"},
                f"every promotion of webshop 1.4.0 (seeded: {', '.join(ids)})",
            )
        ]

    async def more(self, sim: AppTrustSim, client: AppTrust, round: int) -> list[Item]:
        # Promotions appear through the discovery rule (every promotion of webshop 1.4.0).
        sim.add_version("webshop", "1.4.0")
        sim.gate("webshop", "PROD", "fail", "Promotion blocked due to critical vulnerabilities.")
        sim.gate("webshop", "STAGING", "warn", "2 medium vulnerabilities without a fix")
        target = ("QA", "STAGING", "PROD")[round % 3]
        await client.promote("webshop", "1.4.0", target)
        return []

    def client(self, sim: AppTrustSim) -> AppTrust:
        return AppTrust(sim.base_url, sim.token, name="apptrust")

    async def scenario(self, sim: AppTrustSim, client: AppTrust) -> list[Planned]:
        sim.add_version("webshop", "1.4.0", stage="DEV")
        sim.gate(
            "webshop", "PROD", "fail", "Promotion blocked due to critical security vulnerabilities."
        )
        return [
            Planned(
                await client.promote("webshop", "1.4.0", "QA"), Lifecycle.SUCCEEDED, Verdict.PASS
            ),
            Planned(
                await client.promote("webshop", "1.4.0", "PROD"), Lifecycle.FAILED, Verdict.FAIL
            ),
        ]


DEMO = AppTrustDemo()
