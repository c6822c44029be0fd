"""SonarQube's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo, Verdict

from .client import SonarQube
from .sim import SonarQubeSim

#: What `scanhub serve --demo` submits round after round: (outcome, quality gate).
_ROUNDS = (("SUCCESS", "OK"), ("SUCCESS", "ERROR"), ("SUCCESS", "WARN"), ("FAILED", "NONE"))


class SonarQubeDemo(VendorDemo):
    """SonarQube in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> SonarQubeSim:
        return SonarQubeSim(clock=clock, queue=1.0, duration=3.0, host=host, port=port)

    def sim_source(self, sim: SonarQubeSim) -> tuple[dict[str, Any], dict[str, str]]:
        var, hook = "SCANHUB_SIM_SONARQUBE_TOKEN", "SCANHUB_SIM_SONARQUBE_WEBHOOK_SECRET"
        options = {"token_env": var, "webhook_secret_env": hook}
        return options, {var: sim.token, hook: sim.webhook_secret}

    def sim_seed(self, sim: SonarQubeSim) -> list[Seeded]:
        sim.add_project("webshop", "Web Shop")
        ids = sim.seed_tasks("webshop", 3, duration=20)
        gated = sim.submit("payments", gate="ERROR", duration=20)
        return [
            Seeded(
                {"project_key": "webshop"},
                f"every recent task of project webshop (seeded: {', '.join(ids)})",
            ),
            Seeded({"task_id": gated}, f"task {gated} of project payments (quality gate ERROR)"),
        ]

    async def more(self, sim: SonarQubeSim, client: SonarQube, round: int) -> list[Item]:
        outcome, gate = _ROUNDS[round % len(_ROUNDS)]
        task_id = sim.submit("webshop", outcome=outcome, gate=gate)
        return [await client.task(task_id)]

    def deliver_webhooks(self, sim: SonarQubeSim, url: str) -> None:
        sim.webhook_urls.append(url)

    def client(self, sim: SonarQubeSim) -> SonarQube:
        return SonarQube(sim.base_url, sim.token, name="sonarqube")

    async def scenario(self, sim: SonarQubeSim, client: SonarQube) -> list[Planned]:
        sim.add_project("payments-api", "Payments API")
        passed = sim.submit("payments-api", gate="OK")
        blocked = sim.submit("payments-api", gate="ERROR")
        failed = sim.submit("payments-api", outcome="FAILED")
        canceled = sim.submit("payments-api", outcome="CANCELED", queue=2.0)
        return [
            Planned(await client.task(passed), Lifecycle.SUCCEEDED, Verdict.PASS),
            Planned(await client.task(blocked), Lifecycle.SUCCEEDED, Verdict.FAIL),
            Planned(await client.task(failed), Lifecycle.FAILED),
            Planned(await client.task(canceled), Lifecycle.CANCELLED),
        ]


DEMO = SonarQubeDemo()
