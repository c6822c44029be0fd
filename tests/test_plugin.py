"""A third-party vendor, registered through the `scanhub.vendors` entry point group, works end
to end (config file -> hub -> `scanhub status`) without touching scanhub's files."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from scanhub.sim import SimClock

from .plugin import env_with_plugin, registry_with_plugin


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_entry_point_registers_the_vendor() -> None:
    reg = registry_with_plugin()
    assert reg.names() == [
        "iq",
        "threadfix",
        "appsecplus",
        "apptrust",
        "sonarqube",
        "dependencytrack",
        "github",
        "acme",
    ]
    assert reg.get("acme").title == "Acme Scan"
    assert reg.load_errors == {}


async def test_plugin_vendor_end_to_end_through_scanhub_status(tmp_path: Path) -> None:
    spec = registry_with_plugin().get("acme")
    sim = spec.load_demo().make_sim(SimClock(speed=1.0))
    async with sim:
        sim.add_scan("s-1", "shop")  # type: ignore[attr-defined]
        sim.add_scan("s-2", "shop", issues=2)  # type: ignore[attr-defined]
        sim.add_scan("s-9", "other")  # type: ignore[attr-defined]
        sim.clock.advance(10)  # all finished
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            textwrap.dedent(f"""
                [[source]]
                name = "acme-prod"
                vendor = "acme"
                base_url = "{sim.base_url}"
                key_env = "ACME_KEY"

                [[track]]
                source = "acme-prod"
                app = "shop"

                [[track]]
                source = "acme-prod"
                scan_id = "s-9"
                """)
        )
        env = {**env_with_plugin(), "ACME_KEY": sim.key}  # type: ignore[attr-defined]
        code, out, err = await run("config", "check", "-c", str(cfg), env=env)
        assert code == 0, err
        code, out, err = await run("status", "-c", str(cfg), "--format", "json", env=env)
    assert err == ""
    snap = json.loads(out)
    got = {i["id"]: (i["vendor"], i["lifecycle"], i["verdict"]) for i in snap["items"]}
    assert got == {
        "s-1": ("acme", "succeeded", "pass"),
        "s-2": ("acme", "succeeded", "fail"),
        "s-9": ("acme", "succeeded", "pass"),
    }
    assert code == 3  # a blocking verdict, as for any vendor
    assert sim.key not in out  # type: ignore[attr-defined]


async def test_plugin_vendor_appears_in_the_schema_and_in_config_errors(tmp_path: Path) -> None:
    env = env_with_plugin()
    code, out, _ = await run("config", "schema", env=env)
    assert code == 0
    vendors = [
        s["properties"]["vendor"]["const"]
        for s in json.loads(out)["properties"]["source"]["items"]["oneOf"]
    ]
    assert vendors == [
        "iq",
        "threadfix",
        "appsecplus",
        "apptrust",
        "sonarqube",
        "dependencytrack",
        "github",
        "acme",
    ]
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[source]]\nvendor = "acme"\nbase_url = "http://127.0.0.1:9"\nkey = "k"\n')
    code, _, err = await run("config", "check", "-c", str(cfg), env=env)
    assert code == 2
    assert "source[0].key: expected key_env naming an environment variable" in err


async def test_a_vendor_whose_demo_part_cannot_load_leaves_the_others_running(
    monkeypatch: Any, caplog: Any
) -> None:
    """A plugin whose `demo` names nothing importable: `scanhub sim` and `scanhub demo` run
    the other vendors' simulators and say which part failed (as a plugin that cannot load at
    all is reported, not fatal)."""
    import logging

    from scanhub._demo import running_sims
    from scanhub._registry import registry

    reg = registry()
    broken = reg.get("github")
    monkeypatch.setattr(type(broken), "demo", "scanhub_no_such_module:NOPE")
    monkeypatch.delitem(broken.__dict__, "_demo", raising=False)
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        async with running_sims(speed=1.0, vendors=reg) as sims:
            assert "github" not in sims and "iq" in sims and len(sims) == len(reg) - 1
    assert "vendor github: its demo part failed to load" in caplog.text
