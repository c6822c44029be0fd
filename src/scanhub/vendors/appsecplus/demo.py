"""AppSecPlus's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import Faults, SimClock
from scanhub.vendors import Item, Lifecycle, Planned, RetryPolicy, Seeded, VendorDemo

from .client import AppSecPlus
from .sim import AppSecPlusSim


class AppSecPlusDemo(VendorDemo):
    """AppSecPlus in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AppSecPlusSim:
        return AppSecPlusSim(clock=clock, duration=5.0, host=host, port=port)

    def sim_source(self, sim: AppSecPlusSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_APPSECPLUS_TOKEN"
        return {"token_env": var}, {var: sim.token}

    def sim_seed(self, sim: AppSecPlusSim) -> list[Seeded]:
        sim.add_application("app-12345")
        # No sast scan, so that triggering one (README's quickstart) does not conflict (409).
        ids = sim.seed_scans("app-12345", 3, duration=15, types=("dast", "sca", "container"))
        return [
            Seeded(
                {"application_id": "app-12345"},
                f"every scan of application app-12345 (seeded: {', '.join(ids)})",
            )
        ]

    async def more(self, sim: AppSecPlusSim, client: AppSecPlus, round: int) -> list[Item]:
        # New scans appear through the discovery rule (every scan of app-12345); this only
        # starts them, a different type each round so none conflicts with a running one. This
        # is the demo's faulty source: 5xx, 429 with Retry-After, some latency.
        if round == 1:
            sim.faults = Faults(
                latency=0.05, error_rate=0.1, rate_limit_rate=0.05, retry_after=1, seed=11
            )
        sim.add_application("app-12345")
        sim.seed_scans("app-12345", 1, types=(("sast", "dast", "sca", "container")[round % 4],))
        return []

    def client(self, sim: AppSecPlusSim) -> AppSecPlus:
        # This source turns faulty in the demo: a short backoff keeps the show moving.
        retry = RetryPolicy(attempts=3, backoff_initial=0.05, backoff_max=0.5)
        return AppSecPlus(sim.base_url, sim.token, name="appsec-flaky", retry=retry)

    async def scenario(self, sim: AppSecPlusSim, client: AppSecPlus) -> list[Planned]:
        sim.add_application("app-12345")
        sim.fail("app-12345", "dast")
        plan = [
            Planned(await client.trigger_scan("app-12345", "sast", "demo"), Lifecycle.SUCCEEDED),
            Planned(await client.trigger_scan("app-12345", "dast", "demo"), Lifecycle.FAILED),
            Planned(
                await client.trigger_scan("app-12345", "container", "demo"), Lifecycle.SUCCEEDED
            ),
        ]
        # From here on this source misbehaves; the watch must ride through it.
        sim.faults = Faults(
            latency=0.05,
            error_rate=0.2,
            rate_limit_rate=0.15,
            retry_after=0.3,
            malformed_rate=0.1,
            html_rate=0.05,
            seed=7,
        )
        return plan


DEMO = AppSecPlusDemo()
