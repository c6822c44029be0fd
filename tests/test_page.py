"""The dashboard page in a real headless Chromium (Debian's chromium and chromium-driver):
it loads, shows every vendor, updates live without a reload, renders hostile vendor text as
text, and its filters narrow the rows. Skipped, with the reason, where the browser is missing
(`.ci/run` installs it)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_serve import service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)

HOSTILE_APP = '<img src=x onerror="window.__pwned=1">'
HOSTILE_MESSAGE = "<script>window.__pwned=2</script><b>bold?</b>"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=ChromeService(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


async def until(check: Callable[[], Any], limit: float = 20.0) -> Any:
    """Poll a (blocking) browser check from a thread until it returns something truthy."""
    end = time.monotonic() + limit
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.2)


def rows(driver: Any) -> list[dict[str, str]]:
    script = """
      return [...document.querySelectorAll('#rows tr')].map(tr => ({
        key: tr.dataset.key,
        vendor: tr.cells[0].textContent,
        app: tr.cells[3].textContent,
        lifecycle: tr.cells[5].querySelector('.badge').textContent,
        message: tr.cells[9].textContent,
      }));
    """
    return list(driver.execute_script(script))


async def test_the_page_live_and_safe(tmp_path: Path, browser: Any) -> None:
    async with service(tmp_path, speed=1.0) as (svc, sims, _http):
        asp, tf = sims["appsecplus"], sims["threadfix"]
        asp.add_application(HOSTILE_APP)
        asp.seed_scans(HOSTILE_APP, 1, duration=10_000)
        await svc.hub.discovery.add_rule("appsecplus", {"application_id": HOSTILE_APP})
        tf.interrupt("evil.xml", HOSTILE_MESSAGE)
        evil = await svc.hub.sources.client("threadfix").upload_scan(
            6, b"<x/>", filename="evil.xml"
        )  # type: ignore[attr-defined]
        svc.hub.track(evil)

        await asyncio.to_thread(browser.get, svc.url + "/")
        await asyncio.to_thread(browser.execute_script, "window.__marker = 'no reload';")

        # Rows from all four vendors.
        await until(
            lambda: (
                {r["vendor"] for r in rows(browser)}
                >= {"iq", "threadfix", "appsecplus", "apptrust"}
            )
        )

        # Hostile vendor text is text.
        hostile = await until(
            lambda: [r for r in rows(browser) if r["app"].startswith(HOSTILE_APP)]
        )
        assert hostile
        tf_evil = await until(
            lambda: [r for r in rows(browser) if HOSTILE_MESSAGE in r["message"]], limit=30
        )
        assert tf_evil
        injected = await asyncio.to_thread(
            browser.execute_script,
            "return [window.__pwned || 0, document.querySelectorAll('#rows img, #rows script, #rows b').length];",
        )
        assert injected == [0, 0]

        # A transition made on a simulator appears without a reload.
        scan_id = asp.seed_scans("app-12345", 1, duration=10_000)[0]
        await svc.hub.discovery.rediscover()
        key = next(i.key for i in await svc.hub.current() if i.id == scan_id)
        await until(
            lambda: any(
                r["key"] == key and r["lifecycle"] in ("queued", "running") for r in rows(browser)
            )
        )
        asp.scans[scan_id].duration = 0  # the vendor finishes it now
        await until(
            lambda: any(r["key"] == key and r["lifecycle"] == "succeeded" for r in rows(browser))
        )
        marker = await asyncio.to_thread(browser.execute_script, "return window.__marker;")
        assert marker == "no reload"

        # A filter narrows the rows.
        before = len(rows(browser))
        await asyncio.to_thread(
            browser.execute_script,
            """const s = document.querySelector('#filters select[name=vendor]');
               s.value = 'threadfix'; s.dispatchEvent(new Event('change'));""",
        )
        narrowed = await until(
            lambda: (r := rows(browser)) and {x["vendor"] for x in r} == {"threadfix"} and r
        )
        assert len(narrowed) < before

        # A search narrows the rows once it has 3 characters (the API's least); a shorter one
        # is never sent (it would be read from no index).
        await asyncio.to_thread(
            browser.execute_script,
            """const s = document.querySelector('#filters select[name=vendor]');
               s.value = ''; s.dispatchEvent(new Event('change'));""",
        )
        await until(lambda: len(rows(browser)) >= before)
        search = await asyncio.to_thread(
            browser.find_element, "css selector", "#filters input[name=q]"
        )
        await asyncio.to_thread(search.send_keys, "on")
        await asyncio.sleep(0.5)
        assert "q=" not in await asyncio.to_thread(
            browser.execute_script, "return window.location.search;"
        )
        assert len(rows(browser)) >= before
        await asyncio.to_thread(search.send_keys, "error")
        found = await until(
            lambda: (r := rows(browser)) and all(x["app"].startswith(HOSTILE_APP) for x in r) and r
        )
        assert found
        sent = await asyncio.to_thread(
            browser.execute_script,
            """return performance.getEntriesByType('resource').map(e => e.name)
                 .filter(n => n.includes('/api/v1/items?'))
                 .map(n => new URL(n).searchParams.get('q')).filter(q => q !== null);""",
        )
        assert sent and all(len(q) >= 3 for q in sent), sent
        assert "q=onerror" in await asyncio.to_thread(
            browser.execute_script, "return window.location.search;"
        )
        from selenium.webdriver.common.keys import Keys

        # Back to 2 characters: no search, and the box keeps what was typed, as it does when
        # another filter is chosen meanwhile.
        for _ in range(5):
            await asyncio.to_thread(search.send_keys, Keys.BACKSPACE)
        await until(lambda: len(rows(browser)) >= before)
        assert await asyncio.to_thread(search.get_attribute, "value") == "on"
        await asyncio.to_thread(
            browser.execute_script,
            """const s = document.querySelector('#filters select[name=vendor]');
               s.value = 'threadfix'; s.dispatchEvent(new Event('change'));""",
        )
        await until(lambda: (r := rows(browser)) and {x["vendor"] for x in r} == {"threadfix"})
        assert await asyncio.to_thread(search.get_attribute, "value") == "on"
        assert "q=" not in await asyncio.to_thread(
            browser.execute_script, "return window.location.search;"
        )

        # The stream is live (the badge says so) and the browser saw no script error.
        def badge() -> str:
            return str(
                browser.execute_script("return document.getElementById('live').textContent;")
            )

        assert await asyncio.to_thread(badge) == "live"

        # The store goes away: nothing comes on the open stream, and the page says it is not
        # ready (it looked live, its rows as they were); back, it is live again.
        from scanhub import StoreUnavailable

        async def away() -> int:
            raise StoreUnavailable("the database is unavailable", operation="test")

        svc.store.last_id = away  # type: ignore[method-assign]
        await until(lambda: badge() == "not ready")
        status = await asyncio.to_thread(
            browser.execute_script, "return document.getElementById('updated').textContent;"
        )
        assert status.startswith("not ready since") and "the store is unavailable" in status
        del svc.store.last_id
        await until(lambda: badge() == "live")
        logs = await asyncio.to_thread(browser.get_log, "browser")
        induced = "/readyz - Failed to load resource: the server responded with a status of 503"
        assert not [e for e in logs if e["level"] == "SEVERE" and induced not in e["message"]], logs
