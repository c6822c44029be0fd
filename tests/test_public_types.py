"""The public API as a `mypy --strict` user's script sees it (py.typed is shipped): what the
documented calls return is the type the documentation names, not a base class or Any."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SCRIPT = """
from typing import assert_type

import scanhub
from scanhub.vendors.appsecplus.sim import AppSecPlusSim


async def main() -> None:
    async with AppSecPlusSim() as sim:
        assert_type(sim, AppSecPlusSim)
        sim.add_application("app-1")
    async with scanhub.SQLiteStore("state.db") as store:
        assert_type(store, scanhub.SQLiteStore)
        store.size()
    async with scanhub.AppSecPlus("http://127.0.0.1", "t") as asp:
        scan = await asp.trigger_scan("app-1", "sast")
        async with scanhub.ScanHub([asp]) as hub:
            assert_type(hub, scanhub.ScanHub)
            done = await hub.wait(scan, timeout=60)
            assert_type(done, scanhub.Scan)
            print(done.findings)
            try:
                await hub.wait(scan, timeout=1)
            except scanhub.WaitTimeoutError as e:
                if e.item is not None:
                    print(e.item.lifecycle)
            async with hub.polling():
                pass
            for item in await hub.current():  # an Item: a Scan or a Promotion
                assert_type(await hub.wait(item, timeout=1), scanhub.Scan | scanhub.Promotion)
    assert_type(scanhub.Verdict.worst([scanhub.Verdict.PASS]), scanhub.Verdict)
    scanhub.Verdict.worst([1, 2])  # E: not verdicts
"""


def test_a_strict_script_gets_the_documented_types(tmp_path: Path) -> None:
    script = tmp_path / "gate.py"
    script.write_text(SCRIPT)
    out, err, _ = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(script)]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    wanted = [i + 1 for i, line in enumerate(SCRIPT.splitlines()) if "# E:" in line]
    assert sorted({int(line.split(":")[1]) for line in errors}) == wanted, out + err
