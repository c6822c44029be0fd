"""The page as a dashboard (issue 22), in headless Chromium as people use it: screenshots at
1,440 and 400 px (written under tests/artifacts/, which the tests print), the view in the URL
(a link reproduces it, back and forward move through it), an item's timeline opened from a row
by mouse and keyboard, the charts drawn from a known history, and an axe-core audit with no
serious or critical violation in light and dark. Skipped, saying why, where chromium is
missing; the audit also where there is no npm or npm cannot reach the registry for axe-core
(`.ci/run` installs both)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .test_page import CHROMIUM, DRIVER, until
from .test_serve_stats import known

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("SCANHUB_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
#: axe-core, installed with npm into this cache directory when it is not there yet.
AXE_DIR = Path(
    os.environ.get("SCANHUB_AXE_DIR", Path.home() / ".cache" / "scanhub-tests" / "axe-core")
)
AXE_VERSION = "4.10.3"
#: What npm says when it cannot reach the registry (then the audit is skipped; any other
#: failure of npm fails the test).
UNREACHABLE = (
    "FetchError",
    "ECONNREFUSED",
    "ECONNRESET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ERR_SOCKET_TIMEOUT",
)


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
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1440,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    print(f"artifact: {path}")
    return path


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


async def call(driver: Any, script: str, *args: Any) -> Any:
    return await asyncio.to_thread(driver.execute_script, script, *args)


def row_ids(driver: Any) -> list[str]:
    return list(
        js(
            driver,
            "return [...document.querySelectorAll('#rows tr')].map(tr => tr.cells[4].textContent)",
        )
    )


def view_of(driver: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


async def resize(driver: Any, width: int, height: int = 1000) -> None:
    await asyncio.to_thread(driver.set_window_size, width, height)
    await until(lambda: js(driver, "return window.innerWidth") <= width)
    await asyncio.sleep(0.5)  # the charts are drawn again for the new width


def no_severe_logs(driver: Any) -> None:
    """No script error, no failed request."""
    logs = driver.get_log("browser")
    severe = [e for e in logs if e["level"] == "SEVERE"]
    assert not severe, logs


async def test_dashboard_at_two_widths_with_charts_from_a_known_history(browser: Any) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, _http):
        await asyncio.to_thread(browser.get, svc.url + "/")
        # Newest change first by default: p finished last, g-less history.
        await until(lambda: row_ids(browser)[:3] == ["p", "a", "e"])
        # The activity chart: every transition of the window, stacked by outcome.
        await until(
            lambda: js(
                browser, "return document.querySelectorAll('#activity-chart rect.seg').length"
            )
        )
        drawn = await call(
            browser,
            """const out = {};
               for (const r of document.querySelectorAll('#activity-chart rect.seg'))
                 out[r.dataset.outcome] = (out[r.dataset.outcome] || 0) + Number(r.dataset.n);
               return out;""",
        )
        assert drawn == {
            "queued": 6, "running": 4, "succeeded": 3, "blocked": 1, "failed": 1, "cancelled": 1
        }  # fmt: skip
        legend = await call(
            browser, "return document.getElementById('activity-legend').textContent"
        )
        assert "blocked (verdict)" in legend and "failed" in legend  # words, not colour alone
        # Queue and run time per source, with the numbers written on the bars.
        bars = await call(
            browser,
            "return [...document.querySelectorAll('#durations-chart g.dur')].map(g => "
            "[g.dataset.source, g.dataset.phase, g.querySelector('text').textContent])",
        )
        assert ["asp", "queued", "queued 2m 00s · 2m 42s · 3m 00s"] in bars
        assert ["at", "running", "running 30m 00s · 30m 00s · 30m 00s"] in bars
        stuck = await call(browser, "return document.getElementById('stuck-list').textContent")
        assert "1 stuck" in stuck and "asp scan" in stuck
        # The stuck item says so in words, and durations are shown.
        e_row = await call(
            browser,
            "const tr = [...document.querySelectorAll('#rows tr')].find(t => t.cells[4].textContent === 'e');"
            "return [tr.cells[5].textContent, tr.cells[10].textContent];",
        )
        assert "stuck" in e_row[0] and e_row[1].startswith("1h 00m")
        sinks = await call(browser, "return document.getElementById('sink-note').textContent")
        assert sinks == "No sinks configured."
        await asyncio.sleep(0.3)
        await asyncio.to_thread(browser.save_screenshot, str(artifact("dashboard-1440.png")))

        await resize(browser, 400)
        overflow = await call(
            browser, "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"the page is {overflow}px wider than a 400px window"
        labels = await call(
            browser,
            "return getComputedStyle(document.querySelector('#rows td'), '::before').content",
        )
        assert labels == '"vendor"'  # rows become cards with their labels
        await asyncio.to_thread(browser.save_screenshot, str(artifact("dashboard-400.png")))
        await call(browser, "document.getElementById('items').scrollIntoView()")
        await asyncio.to_thread(browser.save_screenshot, str(artifact("dashboard-400-items.png")))
        await asyncio.to_thread(no_severe_logs, browser)


async def test_the_view_lives_in_the_url(browser: Any) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, _http):
        await asyncio.to_thread(browser.get, svc.url + "/")
        await until(lambda: len(row_ids(browser)) == 7)
        # A filter, a sort by clicking a column, a window: each an entry in the history.
        await call(
            browser,
            """const s = document.querySelector('#filters select[name=kind]');
               s.value = 'scan'; s.dispatchEvent(new Event('change'));""",
        )
        await until(lambda: len(row_ids(browser)) == 6)
        await call(browser, "document.querySelector('th[data-sort=since] button').click()")
        await until(lambda: view_of(browser).get("sort") == ["since"])
        await call(
            browser,
            """const w = document.getElementById('window');
               w.value = '7d'; w.dispatchEvent(new Event('change'));""",
        )
        await until(lambda: view_of(browser).get("window") == ["7d"])
        assert view_of(browser) == {"kind": ["scan"], "sort": ["since"], "window": ["7d"]}
        order = await until(
            lambda: (ids := row_ids(browser)) == ["a", "b", "c", "e", "f", "d"] and ids
        )
        aria = await call(
            browser,
            "return document.querySelector('th[data-sort=since]').getAttribute('aria-sort')",
        )
        assert aria == "ascending"

        # The link reproduces the view in a fresh page.
        link = browser.current_url
        await asyncio.to_thread(browser.get, "about:blank")
        await asyncio.to_thread(browser.get, link)
        await until(lambda: row_ids(browser) == order)
        fields = await call(
            browser,
            "return [document.querySelector('#filters select[name=kind]').value,"
            " document.getElementById('sort').value, document.getElementById('window').value]",
        )
        assert fields == ["scan", "since", "7d"]
        title = await until(
            lambda: js(browser, "return document.getElementById('activity-title').textContent")
        )
        assert "per 6 hours" in title

        # Back and forward move through the views.
        await asyncio.to_thread(browser.back)  # about:blank
        await asyncio.to_thread(browser.forward)
        await until(lambda: row_ids(browser) == order)
        await call(browser, "document.querySelector('th[data-sort=since] button').click()")
        await until(lambda: view_of(browser).get("sort") == ["-since"])
        await until(lambda: row_ids(browser)[:2] == ["d", "f"])
        await asyncio.to_thread(browser.back)
        await until(lambda: view_of(browser).get("sort") == ["since"] and row_ids(browser) == order)
        await asyncio.to_thread(browser.forward)
        await until(lambda: row_ids(browser)[:2] == ["d", "f"])


async def test_a_page_of_a_replaced_state_reloads_on_the_streams_reset(browser: Any) -> None:
    """The service comes back on its port over a new state (a restore, a replaced file) whose
    log is shorter than the id the page last saw: EventSource resumes with that id, the
    stream answers `reset`, and the page reads the items again instead of showing the old
    state's rows for good."""
    from scanhub import Lifecycle, MemoryStore, Scan, ScanHub, Vendor
    from scanhub.serve import Service
    from scanhub.store import Observation

    from .test_serve_stats import Still, config

    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, _http):
        port = urlsplit(svc.url).port
        await asyncio.to_thread(browser.get, svc.url + "/")
        await until(lambda: len(row_ids(browser)) == 7)
        await until(
            lambda: js(browser, "return document.getElementById('live').textContent") == "live"
        )
        # One transition while the page listens: EventSource now holds its id.
        moved = Scan(Vendor.APPSECPLUS, "asp", "z", "app-z", Lifecycle.RUNNING, "running")
        await svc.hub.store.commit([Observation.of(moved, "track")])
        newest = await svc.store.last_id()
        await until(lambda: "z" in row_ids(browser))
    # The same port, a new state: one item, its log's newest id far below what the page saw.
    store = MemoryStore()
    other = Scan(Vendor.APPSECPLUS, "asp", "fresh-1", "app-n", Lifecycle.QUEUED, "queued")
    await store.commit([Observation.of(other, "track")])
    assert await store.last_id() < newest
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    again = Service(hub, config(), port=port)
    await again.start()
    try:
        # EventSource retries after 2 s with Last-Event-ID: the reset reloads the rows.
        await until(lambda: row_ids(browser) == ["fresh-1"], limit=30)
    finally:
        await again.stop()


async def test_a_row_opens_the_items_timeline(browser: Any) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, _http):
        await asyncio.to_thread(browser.get, svc.url + "/")
        await until(lambda: "a" in row_ids(browser))
        await call(
            browser,
            "[...document.querySelectorAll('#rows tr')].find(t => t.cells[4].textContent === 'a').click()",
        )
        steps = await until(
            lambda: (
                (
                    s := js(
                        browser,
                        "return [...document.querySelectorAll('#detail .timeline li')].map(li => li.textContent)",
                    )
                )
                and len(s) == 3
                and s
            )
        )
        assert "new → queued" in steps[0] and "2m 00s in queued" in steps[0]
        assert "queued → running" in steps[1] and "8m 00s in running" in steps[1]
        assert "running → succeeded" in steps[2] and "verdict pass" in steps[2]
        facts = await call(browser, "return document.querySelector('#detail .facts').textContent")
        assert "queued2m 00s" in facts and "in all10m 00s" in facts
        opened = view_of(browser)["item"]
        assert len(opened) == 1 and opened[0].endswith(":a")  # the URL names the open item
        focused = await call(browser, "return document.activeElement.id")
        assert focused == "detail-title"
        await asyncio.to_thread(browser.save_screenshot, str(artifact("timeline-1440.png")))
        # Escape closes it, gives focus back to the row, and takes it out of the URL.
        from selenium.webdriver.common.keys import Keys

        await asyncio.to_thread(browser.switch_to.active_element.send_keys, Keys.ESCAPE)
        await until(lambda: js(browser, "return document.getElementById('detail').hidden"))
        assert "item" not in view_of(browser)
        back = await call(browser, "return document.activeElement.dataset.key")
        assert back and back.endswith(":a")
        # By keyboard alone: arrow to the next row, Enter opens it; the URL opens it too.
        await asyncio.to_thread(browser.switch_to.active_element.send_keys, Keys.ARROW_DOWN)
        await asyncio.to_thread(browser.switch_to.active_element.send_keys, Keys.ENTER)
        title = await until(
            lambda: (
                (t := js(browser, "return document.getElementById('detail-title').textContent"))
                != "Loading…"
                and t
            )
        )
        assert title.endswith(" e")  # the row after a: e, newest change first
        link = browser.current_url
        await asyncio.to_thread(browser.get, link)
        await until(
            lambda: js(
                browser, "return document.getElementById('detail-title').textContent"
            ).endswith(" e")
        )
        await asyncio.to_thread(no_severe_logs, browser)


#: What a receiver said, as a sink's last error shows it: a reason phrase is the receiver's
#: to choose, so it is shown as text.
HOSTILE_REASON = '<img src=x onerror="window.__pwned=1">refused'


async def test_sink_health_shows_what_the_sinks_api_answers(browser: Any) -> None:
    """A sink whose receiver refused a delivery (a dead letter): the health section shows its
    state, deliveries, dead letters and the receiver's words, as text."""
    from aiohttp import web

    from scanhub import Lifecycle, Scan, Vendor
    from scanhub._sinks import Sink, new_secret
    from scanhub.store import Observation

    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=400, reason=HOSTILE_REASON)

    app = web.Application()
    app.router.add_post("/hook", refuse)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sink = Sink.webhook(
        "ops-hook",
        f"http://127.0.0.1:{port}/hook",
        new_secret(),
        allow_private=True,
        max_client_errors=1,
        schedule=(0.05,),
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    try:
        async with known(start, sinks=[sink]) as (svc, _http):
            await asyncio.to_thread(browser.get, svc.url + "/")
            await until(lambda: len(row_ids(browser)) == 7)
            assert (
                await call(browser, "return document.getElementById('sink-note').textContent") == ""
            )
            z = Scan(Vendor.APPSECPLUS, "asp", "z", "app-1", Lifecycle.RUNNING, "running")
            await svc.store.commit([Observation(z.key, datetime.now(UTC), z, None, "track")])
            shown = await until(
                lambda: (
                    (t := js(browser, "return document.getElementById('sinks').textContent"))
                    and "1 dead" in t
                    and t
                )
            )
            assert "ops-hook" in shown and "webhook → http://127.0.0.1:" in shown
            assert "0 delivered (signed)" in shown and "1 failed attempts (retried)" in shown
            assert f"HTTP 400 {HOSTILE_REASON}" in shown  # the receiver's words, as text
            state = await call(
                browser, "return document.querySelector('#sink-list .sink-state').textContent"
            )
            assert state == "active"  # a dead letter does not stop the sink
            injected = await call(
                browser, "return [document.querySelectorAll('#sinks img').length, window.__pwned]"
            )
            assert injected == [0, None]
            await asyncio.to_thread(no_severe_logs, browser)
    finally:
        await runner.cleanup()


def axe_source() -> str:
    """axe-core's axe.min.js, installed with npm into `AXE_DIR` when missing."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script.read_text()
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("needs npm to install axe-core (apt-get install npm; .ci/run installs it)")
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    wanted = f"axe-core@{AXE_VERSION}"
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund",
             "--loglevel=error", wanted],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm could not reach the registry for {wanted} (no answer in 300 s)")
    if done.returncode == 0 and script.is_file():
        return script.read_text()
    said = [line for line in done.stderr.splitlines() if line.strip()]
    if any(code in done.stderr for code in UNREACHABLE):
        pytest.skip(f"npm could not reach the registry for {wanted}: {' / '.join(said[:2])}")
    pytest.fail(f"npm install {wanted} failed (exit {done.returncode}): {done.stderr[-800:]}")


def audit(driver: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it stands (serious and critical only)."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(source)
    found = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           axe.run(document, {resultTypes: ['violations']})
             .then(r => done(JSON.stringify(r.violations)))
             .catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e)}])));"""
    )
    return [v for v in json.loads(found) if v.get("impact") in ("serious", "critical")]


async def test_axe_finds_no_serious_or_critical_violation(browser: Any) -> None:
    source = await asyncio.to_thread(axe_source)
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, _http):
        await asyncio.to_thread(browser.get, svc.url + "/")
        await until(lambda: len(row_ids(browser)) == 7)
        await until(
            lambda: js(browser, "return document.querySelectorAll('#durations-chart g.dur').length")
        )
        problems = {}
        for scheme in ("light", "dark"):
            await asyncio.to_thread(
                browser.execute_cdp_cmd,
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            )
            for width in (1440, 400):
                await resize(browser, width)
                problems[(scheme, width)] = await asyncio.to_thread(audit, browser, source)
            if scheme == "dark":
                await asyncio.to_thread(
                    browser.save_screenshot, str(artifact("dashboard-400-dark.png"))
                )
        await call(browser, "document.querySelector('#rows tr').click()")
        await until(
            lambda: js(browser, "return document.querySelectorAll('#detail .timeline li').length")
        )
        problems[("dark", "timeline")] = await asyncio.to_thread(audit, browser, source)
        await resize(browser, 1440)
        await asyncio.to_thread(browser.save_screenshot, str(artifact("timeline-1440-dark.png")))
    report = {
        str(k): [(v["id"], v["help"], [n["target"] for n in v.get("nodes", [])][:3]) for v in found]
        for k, found in problems.items()
        if found
    }
    assert not report, json.dumps(report, indent=1)
