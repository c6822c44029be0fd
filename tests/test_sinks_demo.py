"""`scanhub serve --demo` pushes too: its signed sink to a receiving endpoint on loopback is on
the page, with deliveries and one retried after a failure. In a real headless Chromium (skipped
where it is missing, as the page's other tests are)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .test_page import CHROMIUM, DRIVER, browser, until

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["browser"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


async def test_the_demo_pushes_signed_deliveries_and_the_page_shows_them(
    tmp_path: Path, browser: Any
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        "serve",
        "--demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SCANHUB_NO_PLUGINS": "1", "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.split()[2]
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(40):
                while True:
                    async with http.get(f"{url}/api/v1/sinks") as r:
                        (sink,) = (await r.json())["sinks"]
                    # The receiver verified and refused the first (503), then took the retry
                    # and what followed.
                    if sink["delivered"] >= 2 and sink["failures"] >= 1:
                        break
                    await asyncio.sleep(0.5)
        assert sink["name"] == "demo-receiver" and sink["signed"]
        assert "503" in sink["last_error"]["message"]
        await asyncio.to_thread(browser.get, url)

        def shown() -> str | None:
            text = browser.execute_script(
                "const s = document.querySelector('#sinks');"
                "return s && !s.hidden ? s.textContent : null;"
            )
            return text if text and "delivered (signed)" in text else None

        text = await until(shown)
        assert "demo-receiver" in text and "failed attempts (retried)" in text
        assert "503" in text
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0
