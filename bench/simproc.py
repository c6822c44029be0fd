"""The four simulators in their own process, so the client under test has a core to itself.

The parent sends commands over a pipe; the child answers with plain data (URLs, credentials,
seeded ids, statistics).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from scanhub.sim import AppSecPlusSim, AppTrustSim, Faults, IQSim, SimClock, ThreadFixSim

NEVER = 1e12  # sim seconds: seeded items stay in progress for the whole benchmark


async def _serve(conn: Connection) -> None:
    clock = SimClock()
    sims: dict[str, Any] = {
        "iq": IQSim(clock=clock, keep_log=False),
        "threadfix": ThreadFixSim(clock=clock, keep_log=False),
        "appsecplus": AppSecPlusSim(clock=clock, keep_log=False),
        "apptrust": AppTrustSim(clock=clock, keep_log=False),
    }
    for sim in sims.values():
        await sim.start()
    loop = asyncio.get_running_loop()
    try:
        while True:
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "stop":
                conn.send(None)
                return
            conn.send(_handle(sims, cmd, arg))
    finally:
        for sim in sims.values():
            await sim.stop()


def _handle(sims: dict[str, Any], cmd: str, arg: Any) -> Any:
    if cmd == "info":
        return {n: {"url": s.base_url, "creds": s.credentials()} for n, s in sims.items()}
    if cmd == "seed":  # arg: items per vendor
        app, _ = sims["iq"].add_application("bench")
        return {
            "iq": (app, sims["iq"].seed_promotions(app, arg, duration=NEVER)),
            "threadfix": (7, sims["threadfix"].seed_pending(7, arg, duration=NEVER)),
            "appsecplus": ("bench", sims["appsecplus"].seed_scans("bench", arg, duration=NEVER)),
            "apptrust": (
                ("bench", "1.0.0"),
                sims["apptrust"].seed_promotions("bench", "1.0.0", arg, duration=NEVER),
            ),
        }
    if cmd == "seed_scans":  # arg: how many AppSec+ scans, in progress for good
        return sims["appsecplus"].seed_scans("one", arg, duration=NEVER)
    if cmd == "seed_iq":  # arg: how many IQ promotions, in progress for good
        app, _ = sims["iq"].add_application("hol")
        return (app, sims["iq"].seed_promotions(app, arg, duration=NEVER))
    if cmd == "faults":  # arg: (vendor or "*", dict of Faults fields)
        name, fields = arg
        for n, s in sims.items():
            if name in ("*", n):
                s.faults = Faults(**fields)
        return None
    if cmd == "synthetic":  # arg: (key, version, count)
        sims["apptrust"].add_synthetic_version(*arg)
        return None
    if cmd == "record":  # arg: vendor; start (again) logging arrivals and answers
        s = sims[arg]
        s._keep_log = True
        s.stats.answers.clear()
        return None
    if cmd == "answers":
        return list(sims[arg].stats.answers)
    if cmd == "requests":
        return {n: s.stats.requests for n, s in sims.items()}
    raise ValueError(cmd)


def _main(conn: Connection) -> None:
    asyncio.run(_serve(conn))


class SimProcess:
    """Start with `with SimProcess() as sp:`; `sp.call(cmd, arg)` talks to the child."""

    def __enter__(self) -> SimProcess:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_main, args=(child,), daemon=True)
        self._proc.start()
        return self

    def call(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        return self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("stop")
        finally:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
