"""IQ's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo

from .client import IQServer
from .sim import IQSim


class IQDemo(VendorDemo):
    """IQ in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> IQSim:
        # The Sonatype Cloud shape: every path under /platform.
        return IQSim(clock=clock, cloud=True, duration=4.0, host=host, port=port)

    def sim_source(self, sim: IQSim) -> tuple[dict[str, Any], dict[str, str]]:
        var, hook = "SCANHUB_SIM_IQ_PASSWORD", "SCANHUB_SIM_IQ_WEBHOOK_SECRET"
        env = {"SCANHUB_SIM_IQ_USER": sim.username, var: sim.password, hook: sim.webhook_secret}
        options = {"username": sim.username, "password_env": var, "webhook_secret_env": hook}
        return options, env

    def sim_seed(self, sim: IQSim) -> list[Seeded]:
        app_id, _ = sim.add_application("webshop")
        # Tracked by public id, as people know the application (scanhub looks the internal
        # id up, and shows the public one).
        return [
            Seeded(
                {"public_id": "webshop", "status_id": sid},
                f"promotion of application webshop (internal id {app_id}), status id {sid}",
            )
            for sid in sim.seed_promotions(app_id, 2, duration=20)
        ]

    async def more(self, sim: IQSim, client: IQServer, round: int) -> list[Item]:
        if "webshop" not in sim.applications:
            sim.add_application("webshop")
        app_id = await client.application_id("webshop")
        target = ("build", "stage-release", "release")[round % 3]
        if target == "release":
            sim.fail_stage(app_id, "release", "Policy evaluation failed: license data unavailable")
        return [await client.promote_scan(app_id, target_stage=target, source_stage="build")]

    def deliver_webhooks(self, sim: IQSim, url: str) -> None:
        sim.webhook_urls.append(url)

    def client(self, sim: IQSim) -> IQServer:
        return IQServer(sim.base_url, sim.username, sim.password, name="iq-cloud")

    async def scenario(self, sim: IQSim, client: IQServer) -> list[Planned]:
        internal, scan_ids = sim.add_application("webshop")
        app_id = await client.application_id("webshop")  # as a user would: by public id
        assert app_id == internal
        sim.fail_stage(app_id, "release", "Policy evaluation failed: license data unavailable")
        return [
            Planned(
                await client.promote_scan(
                    app_id, target_stage="stage-release", scan_id=scan_ids[0]
                ),
                Lifecycle.SUCCEEDED,
            ),
            Planned(
                await client.promote_scan(app_id, target_stage="release", source_stage="build"),
                Lifecycle.FAILED,
            ),
        ]


DEMO = IQDemo()
