"""Every vendor operation through the async clients, with aioresponses standing in for the
vendor (payloads from tests/payloads.py, i.e. the vendor documents)."""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

import scanhub
from scanhub import (
    AppSecPlus,
    AppTrust,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IQServer,
    Lifecycle,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ThreadFix,
    TransportError,
    Verdict,
)

from .conftest import FakeSleep
from .payloads import (
    ASP_LIST_SCANS,
    ASP_SCAN_COMPLETED,
    ASP_TRIGGER_RESPONSE,
    AT_PROMOTIONS_SAMPLE,
    IQ_APP_ID,
    IQ_APPLICATION_LOOKUP,
    IQ_CLOUD_429,
    IQ_PROMOTE_RESPONSE,
    IQ_PROMOTE_UNKNOWN_SCAN,
    IQ_SCAN_ID,
    IQ_STATUS_COMPLETED,
    IQ_STATUS_ID,
    IQ_STATUS_PENDING,
    TF_AUTH_FAILED,
    TF_UPLOAD_QUEUED,
    tf_pending_scan,
)

IQ = "https://tenant.sonatype.app/platform"
TF = "http://tf.local/threadfix"
ASP = "https://api.appsecplus.example.com"
AT = "https://acme.jfrog.io/apptrust/api/v1"

IQ_STATUS_URL = f"{IQ}/api/v2/evaluation/applications/{IQ_APP_ID}/status/{IQ_STATUS_ID}"


def sent(m: aioresponses, method: str, url: str) -> list[Any]:
    return m.requests.get((method, URL(url)), [])


# --- IQ -----------------------------------------------------------------------------------------


async def test_iq_promote_then_poll_to_completion(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    vendor_http.get(
        f"{IQ}/api/v2/applications?publicId=MyApplicationPublicID", payload=IQ_APPLICATION_LOOKUP
    )
    vendor_http.post(
        f"{IQ}/api/v2/evaluation/applications/{IQ_APP_ID}/promoteScan", payload=IQ_PROMOTE_RESPONSE
    )
    vendor_http.get(IQ_STATUS_URL, payload=IQ_STATUS_PENDING)
    vendor_http.get(IQ_STATUS_URL, payload=IQ_STATUS_COMPLETED)
    async with IQServer(
        IQ, "admin", "admin123", name="cloud", csrf_token="api", retry=fast_retry
    ) as iq:
        app = await iq.application_id("MyApplicationPublicID")
        promo = await iq.promote_scan(app, target_stage="stage-release", scan_id=IQ_SCAN_ID)
        assert promo.lifecycle is Lifecycle.QUEUED and promo.source == "cloud"
        promo = await iq.refresh(promo)
        assert promo.lifecycle is Lifecycle.RUNNING
        promo = await iq.refresh(promo)
    assert promo.lifecycle is Lifecycle.SUCCEEDED
    assert promo.links["report_html"].startswith(f"{IQ}/ui/links/application/")
    assert promo.target_stage == "stage-release" and promo.scan_id == IQ_SCAN_ID
    (post,) = sent(
        vendor_http, "POST", f"{IQ}/api/v2/evaluation/applications/{IQ_APP_ID}/promoteScan"
    )
    assert post.kwargs["json"] == {"scanId": IQ_SCAN_ID, "targetStageId": "stage-release"}
    assert post.kwargs["headers"]["X-CSRF-TOKEN"] == "api"
    assert post.kwargs["headers"]["Authorization"].startswith("Basic ")


async def test_iq_direct_promotion_lookup(vendor_http: aioresponses) -> None:
    vendor_http.get(IQ_STATUS_URL, payload={"status": "FAILED", "reason": "policy engine down"})
    async with IQServer(IQ, "u", "p") as iq:
        promo = await iq.promotion(IQ_APP_ID, IQ_STATUS_ID)
    assert promo.lifecycle is Lifecycle.FAILED and promo.message == "policy engine down"


async def test_iq_purged_scan(vendor_http: aioresponses) -> None:
    vendor_http.post(
        f"{IQ}/api/v2/evaluation/applications/a/promoteScan",
        status=400,
        body=IQ_PROMOTE_UNKNOWN_SCAN,
    )
    async with IQServer(IQ, "u", "p") as iq:
        with pytest.raises(NotFoundError, match="purged"):
            await iq.promote_scan("a", target_stage="release", scan_id=IQ_SCAN_ID)


async def test_iq_exactly_one_source_checked_before_any_request(vendor_http: aioresponses) -> None:
    async with IQServer(IQ, "u", "p") as iq:
        with pytest.raises(BadRequestError):
            await iq.promote_scan("a", target_stage="release")
    assert not vendor_http.requests


async def test_iq_cloud_429_without_retry_after_pauses_the_source_5_minutes(
    vendor_http: aioresponses, fake_sleep: FakeSleep
) -> None:
    vendor_http.get(IQ_STATUS_URL, status=429, body=IQ_CLOUD_429)
    async with IQServer(IQ, "u", "p", clock=fake_sleep.clock, sleep=fake_sleep) as iq:
        with pytest.raises(RateLimitedError) as err:
            await iq.promotion(IQ_APP_ID, IQ_STATUS_ID)
        # IQ names no wait; its 429 means 5 minutes, which the source is paused for: the
        # error says so (a caller waits retry_after, not a retry refused locally at once).
        assert err.value.retry_after == pytest.approx(300)
        assert iq.transport.paused_for == pytest.approx(300)
        # the next call is refused locally instead of hammering the vendor
        with pytest.raises(RateLimitedError) as err2:
            await iq.promotion(IQ_APP_ID, IQ_STATUS_ID)
        assert err2.value.retry_after == pytest.approx(300)
    assert len(sent(vendor_http, "GET", IQ_STATUS_URL)) == 1
    assert fake_sleep.slept == []


async def test_github_403_rate_limit_pauses_the_source_as_a_429_does(
    fake_sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    """README: a vendor that says wait otherwise than with a 429 (GitHub's 403 with its
    rate-limit headers) pauses the source the same way, whoever calls the client."""
    from email.utils import formatdate

    from scanhub.sansio import Response
    from scanhub.vendors.github import GitHubCodeScanning

    now = 1_800_000_000
    headers = {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(now + 120),
        "date": formatdate(now, usegmt=True),
    }
    wire = scanhub.MockTransport(
        lambda r: Response(
            403, b'{"message":"API rate limit exceeded"}', headers, r.operation, r.url
        )
    )
    async with GitHubCodeScanning(
        "https://api.github.com", "ghp_x", wire=wire, clock=fake_sleep.clock, sleep=fake_sleep
    ) as gh:
        with caplog.at_level(logging.WARNING, logger="scanhub"):
            with pytest.raises(RateLimitedError) as err:
                await gh.sarif_upload("o/r", "abc")
        assert err.value.retry_after == pytest.approx(121)
        assert gh.transport.paused_for == pytest.approx(121)
        assert "rate limited by github, pausing 121.0s" in caplog.text
        with pytest.raises(RateLimitedError):  # refused here: the vendor is not asked again
            await gh.sarif_upload("o/r", "abc")
    assert len(wire.requests) == 1


# --- ThreadFix ----------------------------------------------------------------------------------


async def test_threadfix_upload_then_poll(vendor_http: aioresponses, tmp_path: Any) -> None:
    status_url = f"{TF}/rest/latest/applications/6/pendingScan/41/status"
    vendor_http.post(f"{TF}/rest/latest/applications/6/upload", payload=TF_UPLOAD_QUEUED)
    vendor_http.get(status_url, payload=tf_pending_scan("FINDINGS_GENERATING", id=41))
    vendor_http.get(status_url, payload=tf_pending_scan("DONE", id=41))
    scan_file = tmp_path / "contoso.fpr"
    scan_file.write_bytes(b"<fvdl/>")
    async with ThreadFix(TF, "k3y-abcdef") as tf:
        scan = await tf.upload_scan(6, scan_file)
        assert (scan.id, scan.lifecycle) == ("41", Lifecycle.QUEUED)
        scan = await tf.refresh(scan)
        assert scan.lifecycle is Lifecycle.RUNNING
        scan = await tf.refresh(scan)
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.final_scan_id == "12"
    (upload,) = sent(vendor_http, "POST", f"{TF}/rest/latest/applications/6/upload")
    assert isinstance(upload.kwargs["data"], aiohttp.FormData)
    assert upload.kwargs["headers"]["Authorization"] == "APIKEY k3y-abcdef"
    assert upload.kwargs["headers"]["Accept"] == "application/json"


async def test_threadfix_auth_message_on_200(vendor_http: aioresponses) -> None:
    vendor_http.get(
        f"{TF}/rest/latest/applications/6/pendingScan/41/status", payload=TF_AUTH_FAILED
    )
    async with ThreadFix(TF, "wrong-key-123") as tf:
        with pytest.raises(AuthenticationError, match="check your API Key"):
            await tf.pending_scan(6, 41)


async def test_threadfix_api_key_in_query_never_leaks(
    vendor_http: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3rS3cretKey"
    pattern = re.compile(rf"{re.escape(TF)}/rest/v2\.8/applications/6/pendingScan/41/status.*")
    vendor_http.get(
        pattern, status=500, body=f"<html>error at /status?apiKey={secret}</html>", repeat=True
    )
    caplog.set_level(logging.DEBUG, logger="scanhub")
    tf = ThreadFix(
        TF,
        secret,
        api_version="v2.8",
        api_key_in_query=True,
        retry=RetryPolicy(attempts=2, backoff_initial=0.001),
    )
    async with tf:
        with pytest.raises(ServerError) as err:
            await tf.pending_scan(6, 41)
    (first, *_) = vendor_http.requests[("GET", next(iter(vendor_http.requests))[1])]
    assert ("apiKey", secret) in first.kwargs["params"]
    assert "Authorization" not in first.kwargs["headers"]
    for text in (
        str(err.value),
        repr(err.value),
        err.value.body_excerpt or "",
        caplog.text,
        repr(tf),
    ):
        assert secret not in text
    assert "apiKey=***" in (err.value.body_excerpt or "")


# --- AppSec+ ------------------------------------------------------------------------------------


async def test_appsecplus_list_trigger_get(vendor_http: aioresponses) -> None:
    vendor_http.get(f"{ASP}/scans?applicationId=app-12345&status=completed", payload=ASP_LIST_SCANS)
    vendor_http.post(f"{ASP}/scans", payload=ASP_TRIGGER_RESPONSE, status=201)
    vendor_http.get(f"{ASP}/scans/scan-001", payload=ASP_SCAN_COMPLETED)
    async with AppSecPlus(ASP, "tok-123456") as asp:
        listed = await asp.scans("app-12345", "completed")
        assert [s.lifecycle for s in listed] == [Lifecycle.SUCCEEDED]
        scan = await asp.trigger_scan("app-12345", "sast", "ci-pipeline")
        assert scan.lifecycle is Lifecycle.QUEUED
        scan = await asp.refresh(scan)
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.findings is not None
    (post,) = sent(vendor_http, "POST", f"{ASP}/scans")
    assert post.kwargs["headers"]["Authorization"] == "Bearer tok-123456"


async def test_appsecplus_409_is_conflict_and_not_retried(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    vendor_http.post(f"{ASP}/scans", status=409, repeat=True)
    async with AppSecPlus(ASP, "tok-123456", retry=fast_retry) as asp:
        with pytest.raises(ConflictError, match="already running"):
            await asp.trigger_scan("app-12345", "sast")
    assert len(sent(vendor_http, "POST", f"{ASP}/scans")) == 1


async def test_appsecplus_bad_scan_type_sends_nothing(vendor_http: aioresponses) -> None:
    async with AppSecPlus(ASP, "t0ken") as asp:
        with pytest.raises(BadRequestError):
            await asp.trigger_scan("app", "pentest")
    assert not vendor_http.requests


# --- AppTrust -----------------------------------------------------------------------------------


async def test_apptrust_pages_lazily(vendor_http: aioresponses) -> None:
    first, second = AT_PROMOTIONS_SAMPLE["promotions"]
    url = re.compile(rf"{re.escape(AT)}/applications/my-app/versions/1\.0\.0/promotions\?.*")
    vendor_http.get(url, payload={"promotions": [first], "total": 2, "limit": 1, "offset": 0})
    vendor_http.get(url, payload={"promotions": [second], "total": 2, "limit": 1, "offset": 1})
    async with AppTrust(AT, "acc3ss-token") as at:
        it = at.promotions("my-app", "1.0.0", page_size=1)
        got = [await it.__anext__()]
        assert sum(len(v) for v in vendor_http.requests.values()) == 1  # lazily
        got += [p async for p in it]
    assert [p.lifecycle for p in got] == [Lifecycle.FAILED, Lifecycle.SUCCEEDED]
    assert got[0].verdict is Verdict.FAIL
    offsets = [
        dict(c.kwargs["params"])["offset"] for calls in vendor_http.requests.values() for c in calls
    ]
    assert offsets == ["0", "1"]


async def test_apptrust_promote_and_refresh_through_the_promotions_list(
    vendor_http: aioresponses,
) -> None:
    # The asynchronous promote answers 200; the details endpoint has no status, so the refresh
    # reads the documented list, newest first, filtered by the target stage.
    answer = dict(AT_PROMOTIONS_SAMPLE["promotions"][0], status="STARTED", evaluations={})
    vendor_http.post(
        f"{AT}/applications/my-app/versions/1.0.0/promote?async=true", payload=answer, status=200
    )
    vendor_http.get(
        f"{AT}/applications/my-app/versions/1.0.0/promotions?offset=0&limit=100&include=message"
        "&filter_by=target_stage:PROD&order_by=created&order_asc=false",
        payload=AT_PROMOTIONS_SAMPLE,
    )
    async with AppTrust(AT, "acc3ss-token", name="jfrog") as at:
        promo = await at.promote("my-app", "1.0.0", "PROD")
        assert promo.lifecycle is Lifecycle.RUNNING
        promo = await at.refresh(promo)
    assert promo.lifecycle is Lifecycle.FAILED and promo.verdict is Verdict.FAIL
    assert promo.id == "1684478876518" and promo.source == "jfrog"


async def test_refresh_refuses_another_sources_item(vendor_http: aioresponses) -> None:
    async with AppTrust(AT, "t0ken", name="a") as a, AppTrust(AT, "t0ken", name="b") as b:
        vendor_http.post(
            f"{AT}/applications/k/versions/1/promote?async=true",
            payload={"status": "pending", "created_millis": 1},
        )
        promo = await a.promote("k", "1", "QA")
        with pytest.raises(BadRequestError, match="not to this client"):
            await b.refresh(promo)


# --- Transport policy ---------------------------------------------------------------------------


async def test_get_retried_on_5xx_then_succeeds(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    vendor_http.get(f"{ASP}/scans/s1", status=503)
    vendor_http.get(f"{ASP}/scans/s1", payload=ASP_SCAN_COMPLETED)
    async with AppSecPlus(ASP, "t0ken", retry=fast_retry) as asp:
        scan = await asp.scan("s1")
    assert scan.lifecycle is Lifecycle.SUCCEEDED
    assert len(sent(vendor_http, "GET", f"{ASP}/scans/s1")) == 2


async def test_get_gives_up_after_attempts(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    vendor_http.get(f"{ASP}/scans/s1", status=502, repeat=True)
    async with AppSecPlus(ASP, "t0ken", retry=fast_retry) as asp:
        with pytest.raises(ServerError):
            await asp.scan("s1")
    assert len(sent(vendor_http, "GET", f"{ASP}/scans/s1")) == 3


async def test_post_not_resent_after_5xx_or_broken_connection(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    vendor_http.post(f"{ASP}/scans", status=500)
    vendor_http.post(f"{ASP}/scans", exception=aiohttp.ServerDisconnectedError())
    async with AppSecPlus(ASP, "t0ken", retry=fast_retry) as asp:
        with pytest.raises(ServerError):
            await asp.trigger_scan("app", "sast")
        with pytest.raises(TransportError):
            await asp.trigger_scan("app", "sast")
    assert len(sent(vendor_http, "POST", f"{ASP}/scans")) == 2


async def test_post_resent_when_connection_never_opened(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    conn_key = aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None)
    vendor_http.post(
        f"{ASP}/scans", exception=aiohttp.ClientConnectorError(conn_key, OSError(111, "refused"))
    )
    vendor_http.post(f"{ASP}/scans", payload=ASP_TRIGGER_RESPONSE)
    async with AppSecPlus(ASP, "t0ken", retry=fast_retry) as asp:
        scan = await asp.trigger_scan("app", "sast")
    assert scan.lifecycle is Lifecycle.QUEUED


async def test_post_resent_after_429_honouring_retry_after(
    vendor_http: aioresponses, fake_sleep: FakeSleep
) -> None:
    vendor_http.post(f"{ASP}/scans", status=429, headers={"Retry-After": "7"})
    vendor_http.post(f"{ASP}/scans", payload=ASP_TRIGGER_RESPONSE)
    async with AppSecPlus(ASP, "t0ken", clock=fake_sleep.clock, sleep=fake_sleep) as asp:
        scan = await asp.trigger_scan("app", "sast")
    assert scan.lifecycle is Lifecycle.QUEUED
    assert fake_sleep.slept == [7.0]


async def test_retry_after_http_date(vendor_http: aioresponses, fake_sleep: FakeSleep) -> None:
    headers = {
        "Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT",
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    vendor_http.get(f"{ASP}/scans/s1", status=429, headers=headers)
    vendor_http.get(f"{ASP}/scans/s1", payload=ASP_SCAN_COMPLETED)
    async with AppSecPlus(ASP, "t0ken", clock=fake_sleep.clock, sleep=fake_sleep) as asp:
        await asp.scan("s1")
    assert len(fake_sleep.slept) == 1 and 0 < fake_sleep.slept[0] <= 10


async def test_long_retry_after_is_raised_not_slept(
    vendor_http: aioresponses, fake_sleep: FakeSleep
) -> None:
    vendor_http.get(f"{ASP}/scans/s1", status=429, headers={"Retry-After": "600"})
    async with AppSecPlus(ASP, "t0ken", clock=fake_sleep.clock, sleep=fake_sleep) as asp:
        with pytest.raises(RateLimitedError) as err:
            await asp.scan("s1")
    assert err.value.retry_after == 600 and fake_sleep.slept == []


async def test_retry_after_is_capped(vendor_http: aioresponses, fake_sleep: FakeSleep) -> None:
    vendor_http.get(f"{ASP}/scans/s1", status=429, headers={"Retry-After": "3600"})
    async with AppSecPlus(ASP, "t0ken", clock=fake_sleep.clock, sleep=fake_sleep) as asp:
        with pytest.raises(RateLimitedError) as err:
            await asp.scan("s1")
        assert asp.transport.paused_for == pytest.approx(900)
    assert err.value.retry_after == 900  # RetryPolicy.retry_after_cap


async def test_html_login_page_from_a_proxy(vendor_http: aioresponses) -> None:
    vendor_http.get(
        f"{ASP}/scans/s1", body="<html><form>login</form></html>", content_type="text/html"
    )
    async with AppSecPlus(ASP, "t0ken") as asp:
        with pytest.raises(PayloadError, match="HTML"):
            await asp.scan("s1")


async def test_shared_session_is_left_open() -> None:
    async with aiohttp.ClientSession() as session:
        async with AppSecPlus(ASP, "t0ken", session=session):
            pass
        assert not session.closed


def test_tokens_are_not_in_repr() -> None:
    clients = [
        IQServer(IQ, "admin", "pa55word!"),
        ThreadFix(TF, "pa55word!"),
        AppSecPlus(ASP, "pa55word!"),
        AppTrust(AT, "pa55word!"),
    ]
    for client in clients:
        assert "pa55word!" not in repr(client) and "pa55word!" not in repr(vars(client))
    assert repr(scanhub.Secret("pa55word!")) == "Secret('***')"
    assert f"{scanhub.Secret('pa55word!')}" == "***"


@pytest.mark.parametrize(
    "url", ["api.example.com", "ftp://api.example.com", "file:///etc/passwd", "ws://h/x"]
)
def test_base_url_must_be_absolute_http(url: str) -> None:
    """Refused when the client is made, naming what is expected (another scheme failed at
    the first request, as a TransportError)."""
    with pytest.raises(BadRequestError, match=r"absolute http\(s\) URL"):
        AppSecPlus(url, "t")
    assert AppSecPlus("HTTPS://api.example.com", "t").base_url == "HTTPS://api.example.com"


async def test_tls_verification_failure_is_not_retried(
    vendor_http: aioresponses, fast_retry: RetryPolicy
) -> None:
    conn_key = aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None)
    cert_error = aiohttp.ClientConnectorCertificateError(
        conn_key, Exception("self-signed certificate")
    )
    vendor_http.get(f"{ASP}/scans/s1", exception=cert_error)
    vendor_http.get(f"{ASP}/scans/s1", payload=ASP_SCAN_COMPLETED)
    async with AppSecPlus(ASP, "t0ken", retry=fast_retry) as asp:
        with pytest.raises(TransportError, match="TLS verification failed") as err:
            await asp.scan("s1")
    assert not err.value.retryable
    assert len(sent(vendor_http, "GET", f"{ASP}/scans/s1")) == 1


async def test_verify_tls_flag_reaches_every_request(vendor_http: aioresponses) -> None:
    vendor_http.get(f"{ASP}/scans/s1", payload=ASP_SCAN_COMPLETED, repeat=True)
    async with AppSecPlus(ASP, "t0ken") as on, AppSecPlus(ASP, "t0ken", verify_tls=False) as off:
        await on.scan("s1")
        await off.scan("s1")
    first, second = sent(vendor_http, "GET", f"{ASP}/scans/s1")
    assert first.kwargs["ssl"] is True and second.kwargs["ssl"] is False


# The sessions left unclosed by the loops the client was not closed in are reported by
# aiohttp when collected ("Unclosed client session"), as they should be.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_client_used_by_one_event_loop_after_another_sends_in_each() -> None:
    """`asyncio.run` twice with one client that was never closed: its own session, made in
    the first loop, is bound to it (its connector's transports, its timers), and the second
    loop's requests failed through it (a bare RuntimeError, "Event loop is closed"). Each loop
    gets a session of its own, and closing in a later loop closes that loop's."""
    import asyncio
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(ASP_SCAN_COMPLETED).encode()

    class Vendor(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Vendor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        asp = AppSecPlus(f"http://127.0.0.1:{server.server_address[1]}", "tok-123456")

        async def get() -> Lifecycle:
            return (await asp.scan("scan-001")).lifecycle

        assert asyncio.run(get()) is Lifecycle.SUCCEEDED
        assert asyncio.run(get()) is Lifecycle.SUCCEEDED

        async def get_and_close() -> Lifecycle:
            async with asp:
                return await get()

        assert asyncio.run(get_and_close()) is Lifecycle.SUCCEEDED
        assert asyncio.run(get()) is Lifecycle.SUCCEEDED
        asyncio.run(asp.close())  # the session of the loop before is let go, not closed here
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_client_used_alone_in_a_loop_before_takes_the_hubs_session_in_the_next() -> None:
    """`asyncio.run(asp.scan(...))`, then `asyncio.run(main())` with `ScanHub([asp])`: the
    client kept its own session of the loop before as open, refused the hub's, and made one
    of its own again, without the hub's connection limit."""
    import asyncio

    from scanhub import ScanHub

    asp = AppSecPlus("http://127.0.0.1:9", "tok-123456")

    async def alone() -> None:
        asp.transport  # noqa: B018 - nothing sent: the session is made on first use
        asp._get_session()

    async def in_a_hub() -> bool:
        async with ScanHub([asp]) as hub:
            return asp._get_session() is hub.sources._session

    asyncio.run(alone())
    assert asyncio.run(in_a_hub())
