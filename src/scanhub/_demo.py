"""`scanhub demo`: the four simulators in-process, a designed scenario, watched to the end.

The scenario (each item's designed final state is checked at the end):

- IQ (Sonatype Cloud shape, `/platform`): promote the build scan to stage-release (succeeds);
  promote build to release (FAILED, with the reason).
- ThreadFix: upload a Fortify file (walks all processing statuses to DONE); upload a ZAP file
  that is interrupted (SCAN_INTERRUPTED, error message).
- AppSec+: sast and container scans complete, a dast scan fails. Once they are triggered this
  source turns faulty: latency, 5xx, 429 with Retry-After, truncated JSON, HTML error pages.
  The watch rides through it.
- AppTrust: promote 1.4.0 to QA (gates pass); promote it to PROD, blocked by the entry gate
  (FAILED, verdict fail).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from attrs import frozen

from ._clients import AppSecPlus, AppTrust, IQServer, ThreadFix
from ._hub import Change, ScanHub, Snapshot
from ._model import Item, Lifecycle, Verdict
from ._transport import RetryPolicy
from .sim import AppSecPlusSim, AppTrustSim, Faults, IQSim, SimClock, ThreadFixSim


@frozen
class DemoResult:
    """The final snapshot and whether every item ended as designed."""

    snapshot: Snapshot
    expected: dict[str, tuple[Lifecycle, Verdict | None]]
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        """True when the demo ran as designed."""
        return not self.mismatches


@contextlib.asynccontextmanager
async def running_sims(
    speed: float = 1.0, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[dict[str, Any]]:
    """Start the four simulators; yields them by vendor name. With `port`, IQ listens there
    and the others on the next three ports; otherwise on any free ports."""
    clock = SimClock(speed=speed)
    at = {"host": host}

    def where(n: int) -> dict[str, Any]:
        return {**at, "port": port + n if port else 0}

    sims: dict[str, Any] = {
        "iq": IQSim(clock=clock, cloud=True, duration=4.0, **where(0)),
        "threadfix": ThreadFixSim(clock=clock, duration=6.0, **where(1)),
        "appsecplus": AppSecPlusSim(clock=clock, duration=5.0, **where(2)),
        "apptrust": AppTrustSim(clock=clock, duration=4.0, **where(3)),
    }
    async with contextlib.AsyncExitStack() as stack:
        for sim in sims.values():
            await stack.enter_async_context(sim)
        yield sims


async def run_demo(
    on_change: Callable[[Change, ScanHub], None] | None = None,
    *,
    speed: float = 1.0,
    deadline: float = 50.0,
    interval: float = 0.5,
) -> DemoResult:
    """Run the scenario; `on_change` sees every change (the CLI draws with it)."""
    async with running_sims(speed) as sims:
        iq_sim, tf_sim, asp_sim, at_sim = (
            sims["iq"],
            sims["threadfix"],
            sims["appsecplus"],
            sims["apptrust"],
        )
        app_id, scan_ids = iq_sim.add_application("webshop")
        iq_sim.fail_stage(app_id, "release", "Policy evaluation failed: license data unavailable")
        tf_sim.add_application(6)
        tf_sim.interrupt("webshop-zap.xml", "Unable to parse ZAP report: unexpected end of file")
        asp_sim.add_application("app-12345")
        asp_sim.fail("app-12345", "dast")
        at_sim.add_version("webshop", "1.4.0", stage="DEV")
        at_sim.gate(
            "webshop", "PROD", "fail", "Promotion blocked due to critical security vulnerabilities."
        )

        retry = RetryPolicy(attempts=3, backoff_initial=0.05, backoff_max=0.5)
        clients = [
            IQServer(iq_sim.base_url, iq_sim.username, iq_sim.password, name="iq-cloud"),
            ThreadFix(tf_sim.base_url, tf_sim.api_key, name="threadfix"),
            AppSecPlus(asp_sim.base_url, asp_sim.token, name="appsec-flaky", retry=retry),
            AppTrust(at_sim.base_url, at_sim.token, name="apptrust"),
        ]
        iq, tf, asp, at = clients
        assert isinstance(iq, IQServer)
        assert isinstance(tf, ThreadFix)
        assert isinstance(asp, AppSecPlus)
        assert isinstance(at, AppTrust)
        async with ScanHub(clients, interval=interval, max_interval=2.0) as hub:
            s, f, ok, fail = Lifecycle.SUCCEEDED, Lifecycle.FAILED, Verdict.PASS, Verdict.FAIL
            plan: list[tuple[Item, Lifecycle, Verdict | None]] = [
                (
                    await iq.promote_scan(
                        app_id, target_stage="stage-release", scan_id=scan_ids[0]
                    ),
                    s,
                    None,
                ),
                (
                    await iq.promote_scan(app_id, target_stage="release", source_stage="build"),
                    f,
                    None,
                ),
                (await tf.upload_scan(6, b"<FVDL/>", filename="webshop-fortify.fpr"), s, None),
                (await tf.upload_scan(6, b"<OWASPZAPReport>", filename="webshop-zap.xml"), f, None),
                (await asp.trigger_scan("app-12345", "sast", "demo"), s, None),
                (await asp.trigger_scan("app-12345", "dast", "demo"), f, None),
                (await asp.trigger_scan("app-12345", "container", "demo"), s, None),
                (await at.promote("webshop", "1.4.0", "QA"), s, ok),
                (await at.promote("webshop", "1.4.0", "PROD"), f, fail),
            ]
            # From here on the AppSec+ source misbehaves; the watch must ride through it.
            asp_sim.faults = Faults(
                latency=0.05,
                error_rate=0.2,
                rate_limit_rate=0.15,
                retry_after=0.3,
                malformed_rate=0.1,
                html_rate=0.05,
                seed=7,
            )
            expected = {}
            for item, lifecycle, verdict in plan:
                expected[hub.track(item)] = (lifecycle, verdict)
            async for change in hub.watch(deadline=deadline):
                if on_change is not None:
                    on_change(change, hub)
            snap = Snapshot(tuple(hub.items), hub.errors(), hub._now())
    mismatches = []
    by_key = {i.key: i for i in snap.items}
    for key, (lifecycle, verdict) in expected.items():
        got = by_key[key]
        if got.lifecycle is not lifecycle or (verdict is not None and got.verdict is not verdict):
            mismatches.append(
                f"{key}: {got.lifecycle.value}/{got.verdict.value}, designed "
                f"{lifecycle.value}/{verdict.value if verdict else '*'}"
            )
    return DemoResult(snap, expected, mismatches)


def run(on_change: Callable[[Change, ScanHub], None] | None = None, **kw: Any) -> DemoResult:
    """`run_demo` in a fresh event loop."""
    return asyncio.run(run_demo(on_change, **kw))
