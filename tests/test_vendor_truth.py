"""What real vendor servers answer, beyond the seed documents (issue: vendor truth).

Each test feeds a payload shaped like the vendor's own sources (JFrog's REST reference and
jfrog-cli-application; Sonatype IQ's ApiPromoteScanServiceV2; ThreadFix's Upload Scan page and
the open-source server), and the simulators are checked to answer the same way.
"""

from __future__ import annotations

import typing

import pytest

from scanhub import (
    AppTrust,
    BadRequestError,
    GateKind,
    IQServer,
    Lifecycle,
    NotFoundError,
    PayloadError,
    ScanHub,
    ThreadFix,
    Verdict,
)
from scanhub._render import EXIT_UNREACHABLE, outcome
from scanhub.sansio import apptrust, iq, threadfix
from scanhub.sim import AppTrustSim, IQSim, SimClock, ThreadFixSim
from scanhub.vendors.threadfix.spec import ApiVersion

from .helpers import resp
from .payloads import (
    AT_ERROR_FIELD,
    AT_PROMOTE_SYNC_FAILURE,
    AT_PROMOTE_SYNC_SUCCESS,
    AT_PROMOTION_DETAILS,
    AT_RELEASE_WARN,
    IQ_APP_ID,
    IQ_PUBLIC_ID,
    IQ_STAGE_INVALID,
    IQ_STATUS_FAILED_NO_REASON,
    IQ_STATUS_GONE,
    IQ_STATUS_ID,
    IQ_WEBHOOK_EVALUATION,
    TF_UPLOAD_2_4_5,
    TF_UPLOAD_OSS,
    TF_UPLOAD_QUEUED,
)

AT = "https://acme.jfrog.io/apptrust/api/v1"
IQ = "https://acme.sonatype.app/platform"
TF = "http://localhost:8080/threadfix"


def at_promote(body: object, status: int = 201) -> typing.Any:
    return apptrust.parse_promote(
        resp(status, body, operation="promote"),
        source="jf",
        application_key="catalina-app",
        version="1.0.0",
        target_stage="QA",
    )


# --- 1. AppTrust promote answers success / failure -------------------------------------------


def test_synchronous_promote_success_is_a_finished_promotion() -> None:
    promo = at_promote(AT_PROMOTE_SYNC_SUCCESS, 201)
    assert promo.lifecycle is Lifecycle.SUCCEEDED and promo.vendor_status == "success"
    # The id is the promotion time the answer names, as the list's created_millis.
    assert promo.id == "1684477304916"
    assert promo.message == "Application version promoted to QA"


def test_synchronous_promote_failure_is_terminal_failed() -> None:
    promo = at_promote(AT_PROMOTE_SYNC_FAILURE, 201)
    assert promo.lifecycle is Lifecycle.FAILED and promo.lifecycle.is_terminal
    assert promo.verdict is Verdict.FAIL
    assert promo.message == "Promotion blocked due to critical security vulnerabilities."
    assert apptrust.STATUS_MAP["failure"] is Lifecycle.FAILED


async def test_a_policy_blocked_promotion_ends_the_wait_at_once() -> None:
    sim = AppTrustSim(clock=SimClock(speed=1.0))
    async with sim:
        sim.add_version("webshop", "1.4.0", stage="QA")
        sim.gate("webshop", "PROD", "fail", "Promotion blocked due to critical vulnerabilities.")
        async with AppTrust(sim.base_url, sim.token, name="jf") as at, ScanHub([at]) as hub:
            promo = await at.promote("webshop", "1.4.0", "PROD", run_async=False)
            assert sim.stats.by_status == {201: 1}
            assert promo.vendor_status == "failure" and promo.lifecycle is Lifecycle.FAILED
            done = await hub.wait(promo, timeout=2)
    assert done.lifecycle is Lifecycle.FAILED and done.verdict is Verdict.FAIL
    assert sim.stats.requests == 1  # nothing left to poll


# --- 2. Gate decisions pass / warn / fail; the release gate passed / warn / failed -------------


def test_warn_decision_is_a_warning_not_a_pass() -> None:
    promo = at_promote(AT_PROMOTE_SYNC_SUCCESS)
    entry = next(g for g in promo.gates if g.kind is GateKind.ENTRY)
    assert entry.verdict is Verdict.WARN and entry.vendor_decision == "warn"
    assert promo.verdict is Verdict.WARN and not promo.verdict.blocks


@pytest.mark.parametrize(
    ("decision", "verdict"),
    [("passed", Verdict.PASS), ("warn", Verdict.WARN), ("failed", Verdict.FAIL)],
)
def test_release_gate_decisions(decision: str, verdict: Verdict) -> None:
    body = dict(AT_RELEASE_WARN)
    body["evaluations"] = {
        **AT_RELEASE_WARN["evaluations"],  # type: ignore[dict-item]
        "release_gate": {"stage": "PROD", "eval_id": "e", "decision": decision},
    }
    promo = at_promote(body)
    gate = next(g for g in promo.gates if g.kind is GateKind.RELEASE)
    assert gate.verdict is verdict and gate.vendor_decision == decision
    assert promo.verdict is verdict


async def test_release_through_the_simulator_reports_the_release_gate() -> None:
    sim = AppTrustSim(clock=SimClock(speed=1.0))
    async with sim:
        sim.add_version("webshop", "2.0.0", stage="QA")
        sim.gate("webshop", "PROD", "warn", "2 medium vulnerabilities")
        async with AppTrust(sim.base_url, sim.token) as at:
            promo = await at.release("webshop", "2.0.0", run_async=False)
    assert promo.target_stage == "PROD" and promo.lifecycle is Lifecycle.SUCCEEDED
    assert [g.kind for g in promo.gates] == [GateKind.EXIT, GateKind.RELEASE]
    assert promo.gates[1].vendor_decision == "warn" and promo.verdict is Verdict.WARN


# --- 3. Status codes, error bodies with code and field, promotion types -----------------------


@pytest.mark.parametrize("status", [200, 201, 202])
def test_promote_answers_of_every_documented_status_code(status: int) -> None:
    assert at_promote(AT_PROMOTE_SYNC_SUCCESS, status).lifecycle is Lifecycle.SUCCEEDED


def test_error_body_names_field_and_code() -> None:
    with pytest.raises(BadRequestError) as err:
        at_promote(AT_ERROR_FIELD, 400)
    assert "promotion_type: invalid promotion type: clone [BAD_REQUEST]" in str(err.value)


@pytest.mark.parametrize("kind", ["copy", "move", "keep", "dry_run"])
def test_documented_promotion_types_are_sent(kind: str) -> None:
    req = apptrust.build_promote(AT, "k", "1", "QA", promotion_type=kind)
    assert req.json == {"target_stage": "QA", "promotion_type": kind}


def test_an_unknown_promotion_type_is_refused_before_sending() -> None:
    with pytest.raises(BadRequestError, match="promotion_type must be one of"):
        apptrust.build_promote(AT, "k", "1", "QA", promotion_type="clone")


async def test_simulator_answers_field_errors_and_status_codes() -> None:
    sim = AppTrustSim(clock=SimClock(speed=1.0))
    async with sim:
        sim.add_version("webshop", "1.4.0")
        async with AppTrust(sim.base_url, sim.token) as at:
            queued = await at.promote("webshop", "1.4.0", "QA")  # async=true
            done = await at.promote("webshop", "1.4.0", "QA", run_async=False)
        assert sim.stats.by_status == {200: 1, 201: 1}
        assert not queued.lifecycle.is_terminal and done.lifecycle is Lifecycle.SUCCEEDED


# --- 4. Refreshing through the documented promotions list -------------------------------------


def test_the_details_endpoint_has_no_status() -> None:
    promo = apptrust.parse_promotion(
        resp(200, AT_PROMOTION_DETAILS), source="jf", application_key="k", version="1"
    )
    assert promo.vendor_status == "" and promo.lifecycle is Lifecycle.UNKNOWN


async def test_refresh_follows_a_promotion_through_the_list_only() -> None:
    sim = AppTrustSim(clock=SimClock(speed=1.0))
    async with sim:
        sim.add_version("webshop", "1.4.0")
        async with AppTrust(sim.base_url, sim.token) as at:
            promo = await at.promote("webshop", "1.4.0", "QA")
            sim.clock.advance(60)
            promo = await at.refresh(promo)
            details = await at.promotion("webshop", "1.4.0", promo.id)
    assert promo.lifecycle is Lifecycle.SUCCEEDED and promo.gates
    assert details.vendor_status == "" and details.raw["artifacts"]


def test_a_promote_answer_without_created_millis_matches_its_list_record() -> None:
    answered = at_promote(AT_PROMOTE_SYNC_SUCCESS)
    listed = apptrust.promotion_from_record(
        {
            "status": "COMPLETED",
            "application_key": "catalina-app",
            "application_version": "1.0.0",
            "target_stage": "QA",
            "created_millis": 1684477304917,
        },
        apptrust.Where("apptrust", "jf", "list promotions"),
    )
    assert apptrust.same_promotion(listed, answered)
    assert not apptrust.older_than(listed, answered)


# --- 5. IQ report links use the public id ---------------------------------------------------------


def test_webhook_report_link_names_the_public_id() -> None:
    import json

    scan = iq.parse_evaluation_webhook(
        {}, json.dumps(IQ_WEBHOOK_EVALUATION).encode(), source="iq", base_url=IQ
    )
    assert scan.links["report_html"] == (
        f"{IQ}/ui/links/application/{IQ_PUBLIC_ID}/report/affdb6b964a64f0bad2db7170c7560dc"
    )
    assert IQ_APP_ID not in scan.links["report_html"]


async def test_simulator_report_links_use_the_public_id() -> None:
    sim = IQSim(clock=SimClock(speed=1.0))
    async with sim:
        app_id, scans = sim.add_application("webshop")
        async with IQServer(sim.base_url, sim.username, sim.password) as client:
            promo = await client.promote_scan(app_id, target_stage="build", scan_id=scans[0])
            sim.clock.advance(60)
            promo = await client.refresh(promo)
    for name in ("report_html", "report_pdf", "report_data"):
        assert "/webshop/" in promo.links[name] and app_id not in promo.links[name]


# --- 6. IQ status ids expire; develop is no target; reason can be null ---------------------------


def _previous() -> typing.Any:
    return iq.parse_promote(
        resp(
            200, {"statusUrl": f"api/v2/evaluation/applications/{IQ_APP_ID}/status/{IQ_STATUS_ID}"}
        ),
        source="iq",
        base_url=IQ,
        application_id=IQ_APP_ID,
        target_stage="release",
        scan_id="s",
    )


def test_a_forgotten_status_id_ends_the_promotion_as_expired() -> None:
    promo = iq.parse_status(
        resp(404, IQ_STATUS_GONE), source="iq", base_url=IQ, previous=_previous()
    )
    assert promo.lifecycle is Lifecycle.EXPIRED and promo.lifecycle.is_terminal
    assert "two hours" in (promo.message or "") and promo.target_stage == "release"
    assert outcome([promo], {}, expect_terminal=True) == EXIT_UNREACHABLE


def test_a_status_id_asked_for_directly_is_still_not_found() -> None:
    with pytest.raises(NotFoundError):
        iq.parse_status(
            resp(404, IQ_STATUS_GONE),
            source="iq",
            base_url=IQ,
            application_id=IQ_APP_ID,
            status_id=IQ_STATUS_ID,
        )


async def test_watch_stops_at_an_expired_status_instead_of_polling_errors() -> None:
    sim = IQSim(clock=SimClock(speed=1.0), status_ttl=7200.0)
    async with sim:
        app_id, _ = sim.add_application("webshop")
        sid = sim.seed_promotions(app_id, 1, duration=10_000)[0]
        async with IQServer(sim.base_url, sim.username, sim.password, name="iq") as client:
            promo = await client.promotion(app_id, sid)
            assert promo.lifecycle is Lifecycle.RUNNING
            sim.clock.advance(7201)  # two hours and a second later
            async with ScanHub([client], interval=0.01) as hub:
                done = await hub.wait(promo, timeout=5)
                polls = sim.stats.requests
                assert hub.errors() == {}
    assert done.lifecycle is Lifecycle.EXPIRED
    assert polls == 2  # one poll told it all


def test_develop_is_refused_as_a_target_before_sending() -> None:
    with pytest.raises(BadRequestError, match="develop"):
        iq.build_promote(IQ, IQ_APP_ID, target_stage="develop", scan_id="s")
    assert set(iq.PROMOTE_TARGETS) == set(iq.STAGES) - {"develop"}


async def test_simulator_refuses_develop_as_the_server_does() -> None:
    sim = IQSim(clock=SimClock(speed=1.0))
    async with sim:
        app_id, scans = sim.add_application("webshop")
        req = iq.build_promote(sim.base_url, app_id, target_stage="build", scan_id=scans[0])
        async with IQServer(sim.base_url, sim.username, sim.password) as client:
            body = dict(req.json, targetStageId="develop")
            raw = await client.transport.send(
                iq.Request("POST", req.url, "promote scan", headers=req.headers, json=body)
            )
    assert raw.status == 400 and raw.text == IQ_STAGE_INVALID


def test_failed_with_null_reason() -> None:
    promo = iq.parse_status(
        resp(200, IQ_STATUS_FAILED_NO_REASON), source="iq", base_url=IQ, previous=_previous()
    )
    assert promo.lifecycle is Lifecycle.FAILED and promo.message is None


# --- 7. ThreadFix versions ---------------------------------------------------------------------


def test_upload_answer_of_2_8_8_has_method_rel_href() -> None:
    scan = threadfix.parse_upload(
        resp(200, TF_UPLOAD_QUEUED), source="tf", base_url=TF, application_id="6"
    )
    assert scan.id == "41" and scan.lifecycle is Lifecycle.QUEUED


def test_open_source_upload_answer_is_a_finished_scan() -> None:
    scan = threadfix.parse_upload(
        resp(200, TF_UPLOAD_OSS), source="tf", base_url=TF, application_id="6"
    )
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.id == "12"
    assert scan.findings is not None
    assert (scan.findings.critical, scan.findings.high, scan.findings.total) == (1, 3, 9)
    assert scan.finished_at is not None and scan.scan_type == "Fortify 360"


def test_a_2_4_5_upload_answer_says_why_it_cannot_be_followed() -> None:
    with pytest.raises(PayloadError, match=r"before 2\.5"):
        threadfix.parse_upload(
            resp(200, TF_UPLOAD_2_4_5), source="tf", base_url=TF, application_id="6"
        )


def test_api_version_selects_the_path() -> None:
    assert threadfix.build_pending_scan(TF, "6", "41", api_version="v2.8").url.endswith(
        "/threadfix/rest/v2.8/applications/6/pendingScan/41/status"
    )
    from scanhub.sansio import FilePart

    up = threadfix.build_upload(TF, "6", FilePart("file", "a.fpr", b"x"), api_version="unversioned")
    assert up.url == f"{TF}/rest/applications/6/upload"


def test_configured_versions_are_the_adapters_versions() -> None:
    assert typing.get_args(ApiVersion) == threadfix.API_VERSIONS


async def test_open_source_server_end_to_end() -> None:
    sim = ThreadFixSim(clock=SimClock(speed=1.0), edition="oss")
    async with sim:
        sim.add_application(6)
        async with ThreadFix(sim.base_url, sim.api_key, api_version="unversioned") as tf:
            scan = await tf.upload_scan(6, b"<FVDL/>", filename="webshop.fpr")
            again = await tf.refresh(scan)
    assert scan.lifecycle is Lifecycle.SUCCEEDED and again == scan
    assert sim.stats.requests == 1  # a finished scan is not polled


async def test_refreshing_many_promotions_reads_the_list_a_few_times_not_once_each() -> None:
    sim = AppTrustSim(clock=SimClock(speed=1.0))
    async with sim:
        ids = sim.seed_promotions("webshop", "1.4.0", 250, duration=10_000)
        async with (
            AppTrust(sim.base_url, sim.token, name="jf") as at,
            ScanHub([at], concurrency=50) as hub,
        ):
            for pid in ids:
                hub.track(
                    apptrust.promotion_from_record(
                        sim.render("webshop", "1.4.0", pid),
                        apptrust.Where("apptrust", "jf", "seed"),
                    )
                )
            sim.stats.requests = 0
            snap = await hub.snapshot()
    assert not snap.errors and len(snap.items) == 250
    assert sim.stats.requests <= 30  # batched reads of 100-record pages, not 250 listings
