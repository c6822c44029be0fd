"""ThreadFix's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo

from .client import ThreadFix
from .sim import ThreadFixSim


class ThreadFixDemo(VendorDemo):
    """ThreadFix in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> ThreadFixSim:
        return ThreadFixSim(clock=clock, duration=6.0, host=host, port=port)

    def sim_source(self, sim: ThreadFixSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_THREADFIX_KEY"
        return {"api_key_env": var}, {var: sim.api_key}

    def sim_seed(self, sim: ThreadFixSim) -> list[Seeded]:
        return [
            Seeded(
                {"application_id": 6, "pending_scan_id": pid},
                f"pending scan {pid} of application 6",
            )
            for pid in sim.seed_pending(6, 2, duration=25)
        ]

    async def more(self, sim: ThreadFixSim, client: ThreadFix, round: int) -> list[Item]:
        sim.add_application(6)
        name = f"nightly-{round}.fpr" if round % 4 else f"nightly-{round}-zap.xml"
        if round % 4 == 0:
            sim.interrupt(name, "Unable to parse ZAP report: unexpected end of file")
        return [await client.upload_scan(6, b"<FVDL/>", filename=name)]

    def client(self, sim: ThreadFixSim) -> ThreadFix:
        return ThreadFix(sim.base_url, sim.api_key, name="threadfix")

    async def scenario(self, sim: ThreadFixSim, client: ThreadFix) -> list[Planned]:
        sim.add_application(6)
        sim.interrupt("webshop-zap.xml", "Unable to parse ZAP report: unexpected end of file")
        return [
            Planned(
                await client.upload_scan(6, b"<FVDL/>", filename="webshop-fortify.fpr"),
                Lifecycle.SUCCEEDED,
            ),
            Planned(
                await client.upload_scan(6, b"<OWASPZAPReport>", filename="webshop-zap.xml"),
                Lifecycle.FAILED,
            ),
        ]


DEMO = ThreadFixDemo()
