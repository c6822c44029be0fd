"""The `scanhub` command and its configuration file, against the simulators."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from scanhub import ConfigError, ItemError, Lifecycle, Scan, Vendor, Verdict, load_config
from scanhub._compose import build_clients
from scanhub._config import parse_config
from scanhub._render import outcome
from scanhub.cli import main
from scanhub.sim import AppSecPlusSim, AppTrustSim, Faults, IQSim, SimClock, ThreadFixSim
from scanhub.vendors import registry

ENV = {
    "IQ_PASSWORD": "admin123",
    "TF_KEY": "tf-api-key-0001",
    "ASP_TOKEN": "asp-token-0001",
    "JF_TOKEN": "jfrog-access-token-0001",
}


@contextlib.asynccontextmanager
async def sims(speed: float = 50.0) -> AsyncIterator[dict[str, Any]]:
    clock = SimClock(speed=speed)
    s = {
        "iq": IQSim(clock=clock),
        "threadfix": ThreadFixSim(clock=clock),
        "appsecplus": AppSecPlusSim(clock=clock),
        "apptrust": AppTrustSim(clock=clock),
    }
    async with contextlib.AsyncExitStack() as es:
        for sim in s.values():
            await es.enter_async_context(sim)
        yield s


def write_config(tmp_path: Path, s: dict[str, Any], tracks: str, extra: str = "") -> Path:
    text = textwrap.dedent(f"""
        interval = 0.01
        {extra}
        [[source]]
        name = "iq"
        vendor = "iq"
        base_url = "{s["iq"].base_url}"
        username = "admin"
        password_env = "IQ_PASSWORD"

        [[source]]
        name = "tf"
        vendor = "threadfix"
        base_url = "{s["threadfix"].base_url}"
        api_key_env = "TF_KEY"

        [[source]]
        name = "asp"
        vendor = "appsecplus"
        base_url = "{s["appsecplus"].base_url}"
        token_env = "ASP_TOKEN"

        [[source]]
        name = "jf"
        vendor = "apptrust"
        base_url = "{s["apptrust"].base_url}"
        token_env = "JF_TOKEN"
        rate_limit = {{ max_requests = 1000, period = 1 }}
        """) + textwrap.dedent(tracks)
    path = tmp_path / "scanhub.toml"
    path.write_text(text)
    return path


async def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(main, list(argv), out)
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


def seed(s: dict[str, Any], *, fail: bool = False) -> str:
    app, _ = s["iq"].add_application("MyApp")
    sids = s["iq"].seed_promotions(app, 1, duration=0.5)
    pids = s["threadfix"].seed_pending(6, 1, duration=0.5)
    s["appsecplus"].seed_scans("app-1", 2, duration=0.5)
    s["apptrust"].add_version("my-app", "1.0.0")
    if fail:
        s["apptrust"].gate("my-app", "PROD", "fail", "blocked")
    s["apptrust"]._new("my-app", "1.0.0", "PROD" if fail else "QA", "admin", 0.5)
    return f"""
        [[track]]
        source = "iq"
        public_id = "MyApp"
        status_id = "{sids[0]}"

        [[track]]
        source = "tf"
        application_id = 6
        pending_scan_id = {pids[0]}

        [[track]]
        source = "asp"
        application_id = "app-1"

        [[track]]
        source = "jf"
        application_key = "my-app"
        version = "1.0.0"
    """


async def test_watch_all_succeeded_exits_0_and_ndjson_streams_changes(tmp_path: Path) -> None:
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        code, out = await run_cli("watch", "-c", str(cfg), "--format", "ndjson", "--timeout", "20")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert {"key", "before", "after", "observed_at"} <= set(events[0])
    finals = [e["key"] for e in events if e["after"]["lifecycle"] in ("succeeded", "failed")]
    assert len(finals) == len(set(finals)) == 5
    assert {e["after"]["vendor"] for e in events} == {"iq", "threadfix", "appsecplus", "apptrust"}


async def test_watch_failed_item_exits_1_with_table(tmp_path: Path) -> None:
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s, fail=True))
        code, out = await run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "20")
    assert code == 1
    assert "final: scanhub: 1 failed, 4 succeeded" in out
    assert "blocked" in out


async def test_watch_timeout_exits_4(tmp_path: Path) -> None:
    async with sims(speed=0.001) as s:
        cfg = write_config(tmp_path, s, seed(s))
        code, _ = await run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "0.3")
    assert code == 4


async def test_secrets_mounted_from_files_are_read_without_their_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret from a file (a Kubernetes secret) ends with a newline: it crashed `status`
    with aiohttp's "Forbidden control character" traceback while `config check` said ok.
    White space around a secret is not part of it; a control character inside one is a
    ConfigError naming the variable (never the value), alike for config check and status."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, {"ASP_TOKEN": f" {v}\r\n", "JF_TOKEN": f"{v}\n"}.get(k, v + "\n"))
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        assert (await run_cli("config", "check", "-c", str(cfg)))[0] == 0
        code, out = await run_cli("status", "-c", str(cfg), "--format", "json")
        assert code == 0, capsys.readouterr().err
        assert len(json.loads(out)["items"]) == 5
        monkeypatch.setenv("ASP_TOKEN", "asp-token\n0001\n")
        for command in ("config", "check"), ("status",):
            code, _ = await run_cli(*command, "-c", str(cfg))
            err = capsys.readouterr().err
            assert code == 2, (command, err)
            assert "environment variable ASP_TOKEN holds a control character" in err
            assert "0001" not in err and "Traceback" not in err


async def test_a_secret_whose_bytes_are_not_utf8_is_refused_naming_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variable holding bytes the locale cannot decode (Python keeps them as lone
    surrogates): `config check` said ok and `status` crashed with a UnicodeEncodeError
    traceback (exit 1). It is a ConfigError naming the variable, never its value."""
    monkeypatch.setenv("ASP_TOKEN", "asp-token\udcff0001")  # the byte 0xff
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        for command in ("config", "check"), ("status",), ("watch",):
            code, _ = await run_cli(*command, "-c", str(cfg))
            err = capsys.readouterr().err
            assert code == 2, (command, err)
            assert "environment variable ASP_TOKEN holds bytes that are not UTF-8 text" in err
            assert "0001" not in err and "Traceback" not in err


async def test_status_formats_and_unreachable_source_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        code, out = await run_cli("status", "-c", str(cfg), "--format", "json")
        assert code == 0
        doc = json.loads(out)
        assert len(doc["items"]) == 5 and doc["errors"] == {}
        assert {i["kind"] for i in doc["items"]} == {"scan", "promotion"}
        code, out = await run_cli("status", "-c", str(cfg), "--format", "ndjson")
        assert code == 0 and len(out.splitlines()) == 5
        code, out = await run_cli("status", "-c", str(cfg))
        assert code == 0 and "source" in out and "lifecycle" in out
        await s["appsecplus"].stop()
        s["threadfix"].faults = Faults(auth_failure=True)
        capsys.readouterr()
        code, lines = await run_cli("status", "-c", str(cfg), "--format", "ndjson")
        said = capsys.readouterr().err
        code, out = await run_cli("status", "-c", str(cfg), "--format", "table")
    assert code == 5
    assert "AuthenticationError" in out  # ThreadFix's 200 + success:false, shown per item
    assert "tf-api-key-0001" not in out and "asp-token-0001" not in out
    # ndjson: stdout stays JSON lines, and stderr says why the exit code is 5, item by item.
    assert all(json.loads(line) for line in lines.splitlines())
    assert "AuthenticationError" in said and "TransportError" in said, said
    assert all(line.startswith("! ") for line in said.splitlines() if "Error" in line)
    assert "tf-api-key-0001" not in said and "asp-token-0001" not in said


async def test_watch_ends_at_once_when_what_is_left_can_never_be_read(tmp_path: Path) -> None:
    """A wrong ThreadFix key: its items fail every poll for good. The watch ends as soon as
    the rest is done, with exit 5 (unreadable), not at the deadline with 4."""
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        s["threadfix"].faults = Faults(auth_failure=True)
        # The test's own deadline is far below the watch's: a watch waiting for its deadline
        # (it slept on, as a failed poll woke nothing) fails the test instead of passing late.
        async with asyncio.timeout(30):
            code, out = await run_cli(
                "watch", "-c", str(cfg), "--format", "plain", "--timeout", "60"
            )
    assert code == 5, out
    assert "AuthenticationError" in out


async def test_watch_ndjson_keeps_stdout_json_and_tells_errors_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sims() as s:
        cfg = write_config(tmp_path, s, seed(s))
        await s["appsecplus"].stop()
        capsys.readouterr()
        code, lines = await run_cli("watch", "-c", str(cfg), "--format", "ndjson", "--timeout", "2")
        said = capsys.readouterr().err
    assert code in (4, 5)
    assert all(json.loads(line) for line in lines.splitlines())  # nothing else on stdout
    assert any(line.startswith("! ") and "Error" in line for line in said.splitlines()), said


def test_outcome_precedence() -> None:
    def item(lc: Lifecycle, v: Verdict = Verdict.NONE) -> Scan:
        return Scan(Vendor.IQ, "s", lc.value + v.value, "a", lc, "", verdict=v)

    S, F, R = Lifecycle.SUCCEEDED, Lifecycle.FAILED, Lifecycle.RUNNING
    assert outcome([item(S)], {}, expect_terminal=True) == 0
    assert outcome([item(S, Verdict.WARN)], {}, expect_terminal=True) == 0
    assert outcome([item(S, Verdict.FAIL)], {}, expect_terminal=True) == 3
    assert outcome([item(S, Verdict.ERROR), item(F)], {}, expect_terminal=True) == 1
    assert outcome([item(Lifecycle.CANCELLED)], {}, expect_terminal=True) == 1
    assert outcome([item(R)], {}, expect_terminal=True) == 4
    assert outcome([item(R)], {}, expect_terminal=False) == 0
    assert outcome([item(S)], {"k": object()}, expect_terminal=True) == 5  # type: ignore[dict-item]
    # A track the user must mend: after a failure, before everything else.
    wrong = ItemError("ConfigError", "report_task: cannot read", False, datetime.now(UTC))
    unreadable = ItemError("TransportError", "refused", True, datetime.now(UTC))
    assert outcome([item(S, Verdict.FAIL), item(R)], {"s": wrong}, expect_terminal=True) == 2
    assert outcome([item(F)], {"s": wrong}, expect_terminal=True) == 1
    assert outcome([item(S)], {"s": unreadable, "t": wrong}, expect_terminal=True) == 2
    # Under way, its last poll refused for good (a wrong token): unreadable, not late; one
    # that may still answer (a connection refused) is late at the deadline.
    running = item(R)
    refused = ItemError("AuthenticationError", "bad token", False, datetime.now(UTC))
    assert outcome([item(S), running], {running.key: refused}, expect_terminal=True) == 5
    assert outcome([item(S), running], {running.key: unreadable}, expect_terminal=True) == 4
    malformed = ItemError("PayloadError", "truncated", False, datetime.now(UTC))  # once
    assert outcome([item(S), running], {running.key: malformed}, expect_terminal=True) == 4
    assert refused.permanent and not malformed.permanent and not unreadable.permanent


async def test_demo_runs_as_designed() -> None:
    code, out = await run_cli("demo", "--speed", "6", "--format", "plain")
    assert code == 0, out
    assert "demo ran as designed" in out
    _, final = out.split("final:", 1)
    sources = ("iq-cloud", "threadfix", "appsec-flaky", "apptrust")
    for source in (*sources, "sonarqube", "dependencytrack", "github"):  # all seven vendors
        assert f" {source} " in final, source
    # IQ's applications are shown by the public id people know, not the internal id.
    watched, table = out.split("final:", 1)
    iq_lines = [line for line in watched.splitlines() if " iq-cloud " in line]
    assert iq_lines and all(" promotion webshop/" in line for line in iq_lines), iq_lines
    iq_rows = [line for line in table.splitlines() if "iq-cloud" in line]
    assert iq_rows and all("webshop" in row for row in iq_rows), iq_rows


def test_demo_in_ndjson_says_on_stderr_why_it_did_not_run_as_designed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo --format ndjson` that did not run as designed exited 1 saying nothing at all:
    the mismatches go to stderr, stdout staying JSON lines."""
    from scanhub import Snapshot
    from scanhub._demo import DemoResult

    def run(on_change: Any, **kw: Any) -> DemoResult:
        snap = Snapshot(items=(), errors={}, observed_at=datetime.now(UTC))
        return DemoResult(snap, {}, ["iq-cloud promotion: expected succeeded, got failed"])

    monkeypatch.setattr("scanhub._demo.run", run)
    out = io.StringIO()
    assert main(["demo", "--format", "ndjson"], out) == 1
    assert out.getvalue() == ""
    assert capsys.readouterr().err == (
        "! demo did NOT run as designed:\n  iq-cloud promotion: expected succeeded, got failed\n"
    )


async def test_sim_command_writes_a_working_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "sim.toml"
    code, out = await run_cli("sim", "--duration", "0.5", "--write-config", str(cfg))
    assert code == 0
    assert "appsecplus" in out and "export SCANHUB_SIM_IQ_PASSWORD=" in out
    config = load_config(cfg)
    simulated = [spec.name for spec in registry() if spec.demo]
    assert [s.vendor for s in config.sources] == simulated  # every vendor with a simulator
    assert {t.source for t in config.tracks} == set(simulated)  # each seeded something


async def test_sim_that_cannot_start_or_write_is_a_usage_error_that_keeps_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`scanhub sim` whose --write-config cannot be written, or whose simulators cannot
    listen (an address not this machine's, ports past 65535), ends with exit 2 and one line,
    not a traceback (exit 1); a file --write-config names is left as it was, not emptied, and
    none is left behind."""
    mine = tmp_path / "scanhub.toml"
    mine.write_text("# my own\n")
    fresh = tmp_path / "fresh.toml"
    for argv, said in (
        (["--write-config", str(tmp_path)], f"scanhub: sim: --write-config {tmp_path}: cannot write: Is a directory"),
        (["--write-config", str(tmp_path / "no" / "x.toml")], "cannot write: No such file or directory"),
        (["--write-config", str(mine), "--port", "65535"], "scanhub: sim: cannot listen on 127.0.0.1:65535: the simulators listen on consecutive ports"),
        (["--write-config", str(fresh), "--port", "65535"], "scanhub: sim: cannot listen on 127.0.0.1:65535"),
    ):  # fmt: skip
        code, _ = await run_cli("sim", "--duration", "0.1", *argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert said in err and len(err.splitlines()) == 1, (argv, err)
    assert mine.read_text() == "# my own\n" and not fresh.exists()


# --- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source = 3", "source: expected at least one [[source]] table"),
        (
            '[state]\nretention_days = 0\n[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\n'
            'token_env = "T"',
            "state.retention_days: expected a positive, finite number of days, got 0",
        ),
        ('[[source]]\nbase_url = "http://x"', "source[0].vendor: expected one of iq"),
        ('[[source]]\nbase_url = "http://x"', ", github, got nothing (missing)"),
        (
            '[[source]]\nvendor = "jira"\nbase_url = "http://x"',
            "source[0].vendor: expected one of iq",
        ),
        (
            '[[source]]\nvendor = "iq"\nbase_url = "x"',
            "source[0].base_url: expected an http:// or https:// URL",
        ),
        # each caught here, not as a transport error (exit 5) when the first poll is made
        (
            '[[source]]\nvendor = "iq"\nbase_url = "http://host:99999"',
            "source[0].base_url: expected an http:// or https:// URL with a host, got",
        ),
        (
            '[[source]]\nvendor = "iq"\nbase_url = "http://ho st"',
            "source[0].base_url: expected a URL without spaces or control characters",
        ),
        (
            '[[source]]\nvendor = "iq"\nbase_url = "http://host?x=1#f"',
            "source[0].base_url: expected a URL without a #fragment (it is never sent)",
        ),
        (
            '[state]\nurl = "postgresql://u@h/db?password=pw"\n[[source]]\nvendor = "iq"\n'
            'base_url = "http://x"',
            "state.url: a PostgreSQL URL must not carry a password",
        ),
        (
            '[[source]]\nvendor = "appsecplus"\nbase_url = "http://x"\ntoken = "s3cret"',
            "source[0].token: expected token_env naming an environment variable",
        ),
        ('[[source]]\nvendor = "appsecplus"\nbase_url = "http://x"', "source[0].token_env"),
        (
            '[[source]]\nvendor = "appsecplus"\nbase_url = "http://x"\ntoken_env = "T"\ncolour = 1',
            "source[0].colour: unknown key (expected one of",
        ),
        (
            '[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            'rate_limit = "fast"',
            "source[0].rate_limit",
        ),
        (
            '[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            '[[track]]\nsource = "nope"',
            "track[0].source: expected one of the source names",
        ),
        (
            '[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            '[[track]]\nsource = "apptrust"\napplication_key = "k"',
            "track[0].version",
        ),
        (
            '[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            '[[track]]\nsource = "apptrust"\nscan_id = "k"',
            "track[0].scan_id: unknown key",
        ),
        (
            '[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            '[[track]]\nsource = "apptrust"\nscan_id = "k"',
            "version) (for the apptrust source 'apptrust')",
        ),
        (
            'interval = -1\n[[source]]\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"',
            "interval: expected a positive, finite number of seconds",
        ),
        (
            '[[source]]\nname = "a"\nvendor = "apptrust"\nbase_url = "http://x"\ntoken_env = "T"\n'
            '[[source]]\nname = "a"\nvendor = "apptrust"\nbase_url = "http://y"\ntoken_env = "T"',
            "source[1].name: expected unique names",
        ),
    ],
)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


async def test_a_base_url_with_a_credential_query_parameter_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client refuses a base_url carrying `?token=` (or `apiKey`, `access_token`, ...):
    `config check` said ok and `status` ended with 5, "could not be read", for a file to
    mend. Both say so, exit 2, naming the parameter and never its value; a sink's URL may
    still carry a query its receiver asks for."""
    cfg = tmp_path / "q.toml"
    cfg.write_text(
        '[[source]]\nvendor = "appsecplus"\nbase_url = "https://h.example/api?v=2&access_token=S3cr3t"\n'
        'token_env = "ASP_TOKEN"\n'
    )
    for command in (("config", "check"), ("status",), ("watch",)):
        code, _ = await run_cli(*command, "-c", str(cfg))
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        assert err == (
            f"scanhub: {cfg}: source[0].base_url: expected a URL without credentials (no"
            " access_token query parameter; secrets come only from *_env variables)\n"
        )


async def test_a_client_that_refuses_its_settings_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client that refuses its settings when it is made (a plugin vendor's own checks, or
    one the file's checks let through) is the file's to mend: exit 2 naming the file and the
    source, not 5 ("could not be read") from the command's last resort."""
    from scanhub import BadRequestError

    spec = registry().get("appsecplus")

    def refuse(source: Any, env: Any) -> Any:
        raise BadRequestError(
            "base_url is not one this client takes", vendor="appsecplus", operation="configure"
        )

    monkeypatch.setattr(spec, "make_client", refuse)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[source]]\nname = "asp"\nvendor = "appsecplus"\nbase_url = "https://h.example"\n'
        'token_env = "ASP_TOKEN"\n'
    )
    for command in ("status", "watch"):
        code, _ = await run_cli(command, "-c", str(cfg))
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        assert err == (
            f"scanhub: {cfg}: source 'asp': appsecplus configure: base_url is not one this"
            " client takes\n"
        )


@pytest.mark.parametrize("command", ["history", "stats"])
def test_reading_a_memory_state_is_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--state memory` keeps nothing: history and stats answered an empty log with exit 0,
    as if nothing had happened."""
    assert main([command, "--state", "memory"], io.StringIO()) == 2
    assert capsys.readouterr().err == (
        "scanhub: --state memory keeps nothing: there is no state to read (give the --state"
        " of a watch)\n"
    )


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[[source]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")


def test_every_missing_environment_variable_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JF_TOKEN")
    monkeypatch.delenv("ASP_TOKEN", raising=False)
    monkeypatch.delenv("E3_IQ_USER", raising=False)
    monkeypatch.setenv("E3_IQ_PASS", " ")
    monkeypatch.setenv("E3_IQ_PASS2", "secret")
    iq = {"vendor": "iq", "base_url": "http://z", "password_env": "E3_IQ_PASS"}
    config = parse_config(
        {
            "source": [
                {"vendor": "apptrust", "base_url": "http://x", "token_env": "JF_TOKEN"},
                {"vendor": "appsecplus", "base_url": "http://y", "token_env": "ASP_TOKEN"},
                iq | {"username_env": "E3_IQ_USER"},
                iq | {"name": "iq2", "username": "me"},
                iq | {"name": "iq3", "username_env": "E3_IQ_USER", "password_env": "E3_IQ_PASS2"},
            ]
        },
        "my.toml",
    )
    with pytest.raises(ConfigError) as missing:
        build_clients(config)
    assert missing.value.message == (
        "my.toml: source 'apptrust': token_env: environment variable JF_TOKEN is not set\n"
        "my.toml: source 'appsecplus': token_env: environment variable ASP_TOKEN is not set\n"
        "my.toml: source 'iq': username_env: environment variable E3_IQ_USER is not set;"
        " password_env: environment variable E3_IQ_PASS is empty\n"
        "my.toml: source 'iq2': password_env: environment variable E3_IQ_PASS is empty\n"
        "my.toml: source 'iq3': username_env: environment variable E3_IQ_USER is not set"
    )


def test_every_problem_names_its_own_table_though_an_earlier_one_is_wrong() -> None:
    """A source with a problem of its own is still a source: the tables after it keep their
    indices, a name given twice is told at its second table, and a track naming it is checked
    against its vendor (not told that the source does not exist)."""
    doc = {
        "source": [
            {"name": "sq", "vendor": "sonarqube", "base_url": "https://s.example",
             "token_env": "SQ_TOKEN", "auth": "digest"},
            {"name": "gh", "vendor": "github", "base_url": "https://api.github.com",
             "token_env": "E3_UNSET"},
            {"name": "gh", "vendor": "github", "base_url": "https://ghe.example/api/v3",
             "token_env": "GH_TOKEN"},
        ],
        "track": [{"source": "sq", "application_id": 6.5}],
    }  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config(doc, "idx.toml", env={"SQ_TOKEN": "t", "GH_TOKEN": "t"})
    said = err.value.message
    assert "source[0].auth" in said, said
    assert "source[1].token_env: environment variable E3_UNSET is not set" in said, said
    assert "source[2].name: expected unique names, 'gh' twice" in said, said
    assert "source[1].name" not in said and "source[0].token_env" not in said, said
    assert "track[0]" in said and "expected one of the source names" not in said, said
    assert "(for the sonarqube source 'sq')" in said, said


def test_a_webhook_secret_is_not_needed_to_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """`webhook_secret_env` is optional for polling: read when a webhook is delivered."""
    monkeypatch.setenv("IQ_PW", "pw")
    monkeypatch.delenv("IQ_HOOK", raising=False)
    source = {"vendor": "iq", "base_url": "http://x", "username": "u", "password_env": "IQ_PW"}
    config = parse_config({"source": [{**source, "webhook_secret_env": "IQ_HOOK"}]}, "my.toml")
    (client,) = build_clients(config)
    assert client.vendor == "iq"


async def test_cli_config_error_exits_2(tmp_path: Path) -> None:
    code, _ = await run_cli("status", "-c", str(tmp_path / "nope.toml"))
    assert code == 2


async def test_a_track_that_cannot_be_resolved_for_a_reason_of_its_own_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report-task.txt that is not there is the user's to mend (exit 2, "configuration or
    usage error"), not a source that could not be read (5)."""
    monkeypatch.setenv("SQ_TOKEN", "squ_x")
    cfg = tmp_path / "sq.toml"
    cfg.write_text(
        '[[source]]\nvendor = "sonarqube"\nbase_url = "http://127.0.0.1:1"\ntoken_env = "SQ_TOKEN"\n'
    )
    missing = tmp_path / "nowhere" / "report-task.txt"
    code, out = await run_cli(
        "status", "-c", str(cfg), "--format", "table", "--track",
        f'source = "sonarqube", report_task = "{missing}"',
    )  # fmt: skip
    assert code == 2, out
    assert (
        f"sonarqube: ConfigError: sonarqube/sonarqube read report-task.txt: report_task: cannot read '{missing}'"
        in out
    ), out


async def test_a_report_task_that_is_not_one_is_the_tracks_to_mend_and_never_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report_task path that names no scanner's report-task.txt (text without a task id, a
    file far larger than a scanner writes, a FIFO, a device) is a track to mend, exit 2,
    naming the path; it is never read to its end (`/dev/zero` was read until the process was
    killed for its memory, a FIFO blocked the command for good, and a big file or a text
    without a task id was a vendor's PayloadError, exit 5)."""
    import os

    monkeypatch.setenv("SQ_TOKEN", "squ_x")
    cfg = tmp_path / "sq.toml"
    cfg.write_text(
        '[[source]]\nvendor = "sonarqube"\nbase_url = "http://127.0.0.1:1"\ntoken_env = "SQ_TOKEN"\n'
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    big = tmp_path / "big.txt"
    big.write_bytes(b"ceTaskId=AX1\nprojectKey=p\n" + b"#" * (2 << 20))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, words in (
        (
            notes,
            f"{str(notes)!r} is not a scanner's report-task.txt: report-task.txt has no ceTaskId",
        ),
        (big, f"cannot read {str(big)!r}: larger than 1048576 bytes"),
        (fifo, f"cannot read {str(fifo)!r}: not a regular file"),
    ):
        code, out = await asyncio.wait_for(
            run_cli(
                "status", "-c", str(cfg), "--format", "table", "--track",
                f'source = "sonarqube", report_task = "{path}"',
            ),
            30,
        )  # fmt: skip
        assert code == 2, out
        assert (
            f"sonarqube: ConfigError: sonarqube/sonarqube read report-task.txt: report_task: {words}"
            in out
        ), out


async def test_a_track_that_found_nothing_is_not_forgotten_when_another_query_of_its_source_answers(
    tmp_path: Path,
) -> None:
    """A scan id mistyped in one track, and a discovery track on the same source that answers:
    the failed lookup stays an error of the source, and the gate does not pass. (A discovery
    that answered cleared the source's error, whatever had failed: `watch` and `status`
    exited 0, the mistyped track's scan never looked at, nothing said.)"""
    async with sims() as s:
        s["appsecplus"].add_application("app-1")
        (scan_id,) = s["appsecplus"].seed_scans("app-1", 1, duration=0)
        cfg = write_config(
            tmp_path,
            s,
            f"""
            [[track]]
            source = "asp"
            scan_id = "scan-999-mistyped"

            [[track]]
            source = "asp"
            scan_id = "{scan_id}"

            [[track]]
            source = "asp"
            application_id = "app-1"
            status = "running"
            """,
        )
        for command, fmt in (("watch", "plain"), ("status", "table")):
            code, out = await run_cli(command, "-c", str(cfg), "--format", fmt)
            assert code == 5, (command, out)
            assert "! asp: NotFoundError: appsecplus/asp get scan: Scan not found." in out, out


async def test_watch_tries_a_track_whose_vendor_was_away_again_until_its_deadline(
    tmp_path: Path,
) -> None:
    """README: a network error or a 5xx is not for good, watched until the deadline. A track
    whose lookup (an AppSec+ scan by its id, a discovery) met the vendor away is tried again
    with backoff: the vendor back a few seconds later, the gate passes (it ended with 5 at
    once, the deadline far)."""
    async with sims() as s:
        s["appsecplus"].add_application("app-1")
        (scan_id,) = s["appsecplus"].seed_scans("app-1", 1, duration=0)
        cfg = write_config(
            tmp_path,
            s,
            f"""
            [[track]]
            source = "asp"
            scan_id = "{scan_id}"
            """,
        )
        s["appsecplus"].faults = Faults(error_rate=1.0)
        running = asyncio.ensure_future(
            run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "60")
        )
        await asyncio.sleep(2.0)
        assert not running.done(), running.result()
        s["appsecplus"].faults = Faults()
        code, out = await asyncio.wait_for(running, 50)
        assert code == 0, out
        assert f"app-1/{scan_id} new → succeeded" in out, out


async def test_watch_polls_what_was_found_while_a_failed_lookup_is_tried_again(
    tmp_path: Path,
) -> None:
    """A track whose lookup met its vendor away is tried again while the other tracks' items
    are watched: a ThreadFix scan found at once is polled to its end with AppSec+ away for the
    whole watch. (The lookups were tried again first, until they answered or the deadline
    came: the ThreadFix scan was never polled, and the gate said it was unfinished.)"""
    async with sims() as s:
        s["appsecplus"].add_application("app-1")
        (scan_id,) = s["appsecplus"].seed_scans("app-1", 1, duration=0)
        (pending,) = s["threadfix"].seed_pending(6, 1, duration=0)
        cfg = write_config(
            tmp_path,
            s,
            f"""
            [[track]]
            source = "asp"
            scan_id = "{scan_id}"

            [[track]]
            source = "tf"
            application_id = 6
            pending_scan_id = {pending}
            """,
        )
        s["appsecplus"].faults = Faults(error_rate=1.0)
        code, out = await asyncio.wait_for(
            run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "4"), 30
        )
        assert code == 5, out  # AppSec+ never answered: the gate cannot pass
        assert "! asp: ServerError" in out, out
        assert f"6/{pending} new → succeeded" in out, out
        assert out.count(f"6/{pending} ") == 1, out  # shown once, the watch started again


async def test_watch_polls_what_a_retried_lookup_found_while_another_vendor_holds_its_answers(
    tmp_path: Path,
) -> None:
    """An AppSec+ scan whose lookup met the vendor away, found once it is back, is polled to
    its end while IQ holds its answer to its own track's lookup until the deadline. (The
    tracks' lookups ran one after the other, then were tried again, and only then was
    anything polled: IQ held the scan's lookup, and then its poll, past the deadline.)"""
    async with sims() as s:
        s["appsecplus"].add_application("app-1")
        (scan_id,) = s["appsecplus"].seed_scans("app-1", 1, duration=0)
        app, _ = s["iq"].add_application("MyApp")
        (sid,) = s["iq"].seed_promotions(app, 1, duration=0)
        cfg = write_config(
            tmp_path,
            s,
            f"""
            [[track]]
            source = "iq"
            public_id = "MyApp"
            status_id = "{sid}"

            [[track]]
            source = "asp"
            scan_id = "{scan_id}"
            """,
        )
        s["appsecplus"].faults = Faults(error_rate=1.0)
        s["iq"].faults = Faults(latency=1000)  # holds its answers
        running = asyncio.ensure_future(
            run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "8")
        )
        await asyncio.sleep(2.0)
        s["appsecplus"].faults = Faults()
        code, out = await asyncio.wait_for(running, 40)
    assert f"app-1/{scan_id} new → succeeded" in out, out
    assert code == 4, out  # IQ's track: its lookup cut by the deadline, unfinished
    assert "! iq: WaitTimeoutError: iq/iq resolve track: the deadline passed" in out, out


async def test_a_discovery_held_by_its_vendor_holds_no_retry_of_another_sources_lookup(
    tmp_path: Path,
) -> None:
    """AppSec+ holds its answer to a discovery track to the deadline, while IQ's lookup met IQ
    away for a moment: IQ's lookup is tried again, and its promotion polled to its end, all
    the same. (A round of retries waited for every lookup and rule it ran again: AppSec+'s
    held rule held every later round, and IQ's track was never tried again.)"""
    async with sims() as s:
        s["appsecplus"].add_application("app-1")
        app, _ = s["iq"].add_application("MyApp")
        (sid,) = s["iq"].seed_promotions(app, 1, duration=0)
        cfg = write_config(
            tmp_path,
            s,
            f"""
            [[track]]
            source = "asp"
            application_id = "app-1"

            [[track]]
            source = "iq"
            public_id = "MyApp"
            status_id = "{sid}"
            """,
        )
        s["appsecplus"].faults = Faults(latency=1000)  # holds its answers
        s["iq"].faults = Faults(error_rate=1.0)
        running = asyncio.ensure_future(
            run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "16")
        )
        await asyncio.sleep(5.0)  # past IQ's own retries of the first lookup
        s["iq"].faults = Faults()
        code, out = await asyncio.wait_for(running, 40)
    assert f"{sid} new → succeeded" in out, out
    assert code == 4, out  # AppSec+'s discovery: cut by the deadline
    assert "! asp: WaitTimeoutError" in out, out


async def test_watch_timeout_bounds_the_tracks_lookups_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watch --timeout` is the command's deadline: a vendor that holds a track's lookup (an
    AppSec+ scan by its id, a discovery) does not hold the gate past it. The lookups ran before
    the deadline counted, each for as long as the source's timeouts and retries allowed
    (minutes with defaults, per track, one after the other). Cut by the deadline, a lookup is
    a track unfinished at the deadline: exit 4, saying which."""
    from aiohttp import web

    async def hold(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(60)
        return web.json_response([])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hold)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("ASP_TOKEN", "t")
    cfg = tmp_path / "held.toml"
    cfg.write_text(
        f'[[source]]\nname = "asp"\nvendor = "appsecplus"\nbase_url = "http://127.0.0.1:{port}"\n'
        'token_env = "ASP_TOKEN"\ntimeout = 8\n'
        '[[track]]\nsource = "asp"\nscan_id = "scan-001"\n'
        '[[track]]\nsource = "asp"\napplication_id = "app-1"\n'
    )
    try:
        started = asyncio.get_running_loop().time()
        code, out = await run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "1")
        took = asyncio.get_running_loop().time() - started
    finally:
        await runner.cleanup()
    assert code == 4, out
    assert took < 5, took
    assert (
        "! asp: WaitTimeoutError: appsecplus/asp resolve track: the deadline passed before the"
        " vendor answered this track's discovery" in out
    ), out


async def test_serve_refuses_a_config_with_demo_and_a_token_variable_that_cannot_be_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = await run_cli("serve", "--demo", "-c", "mine.toml")
    assert code == 2
    assert "scanhub: serve: --demo runs without a config file; give --demo or -c, not both" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--token-env", "1bad"], io.StringIO())
    assert refused.value.code == 2
    err = capsys.readouterr().err  # not echoed: a value put there is most often the secret
    assert "--token-env: expected the name of an environment variable, but it holds" in err
    assert "1bad" not in err


@pytest.mark.parametrize("command", ["demo", "sim"])
def test_a_speed_that_is_not_one_is_refused_as_a_speed(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("0", "-2", "fast", "inf"):
        with pytest.raises(SystemExit) as refused:
            main([command, "--speed", bad], io.StringIO())
        assert refused.value.code == 2
        assert f"expected a positive, finite speed (1 is real time), got {bad!r}" in (
            capsys.readouterr().err
        )


async def test_history_and_stats_read_a_config_that_has_only_its_state(tmp_path: Path) -> None:
    """They read the state alone: a file with a [state] table and no [[source]] is enough
    (it was refused with 'expected at least one [[source]] table'); a malformed one is not."""
    from scanhub import SQLiteStore

    async with SQLiteStore(tmp_path / "s.db"):
        pass
    cfg = tmp_path / "state.toml"
    cfg.write_text('[state]\npath = "s.db"\n')
    for command in ("history", "stats"):
        code, _ = await run_cli(command, "-c", str(cfg))
        assert code == 0, command
    cfg.write_text('source = 3\n[state]\npath = "s.db"\n')
    code, _ = await run_cli("history", "-c", str(cfg))
    assert code == 2


# --- what a vendor sends is shown, never interpreted by the terminal --------------------------

_HOSTILE = Scan(
    vendor=Vendor.IQ,
    source="iq",
    id="s\x1b]0;pwned\x07",
    application_id="[bold red]app[/]",
    lifecycle=Lifecycle.FAILED,
    vendor_status="[link=http://evil.example]ok[/link]",
    verdict=Verdict.NONE,
    message="[/]done\x1b[2J\rover\u202eevil",
)


class _File(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("rich", [True, False])
def test_the_table_shows_vendor_text_as_text(monkeypatch: pytest.MonkeyPatch, rich: bool) -> None:
    """A vendor's rich markup is neither a crash (a stray "[/]" raised MarkupError) nor a
    link; its escape sequences, BEL, CR and bidirectional overrides are shown escaped."""
    from scanhub import _render

    monkeypatch.setattr(_render, "have_rich", lambda: rich)
    out = _File()
    _render.print_table([_HOSTILE], {}, out)
    shown = out.getvalue()
    assert not any(c in shown for c in "\x1b\x07\r\u202e"), repr(shown)
    # (white space, CR too, is one space in a table cell)
    assert "[link=http://evil.examp" in shown and "[/]done\\x1b[2J over\\u202eevil" in shown
    assert "s\\x1b]…ed\\x07" in shown  # the id, escaped, then its middle cut


def test_an_error_the_table_cuts_is_printed_whole_below_it() -> None:
    from scanhub import _render

    whole = "the server said: " + " ".join(f"word{n}" for n in range(30)) + " \x1b[31m"
    scan = Scan(
        vendor=Vendor.IQ,
        source="iq",
        id="s1",
        application_id="app",
        lifecycle=Lifecycle.RUNNING,
        vendor_status="x",
        verdict=Verdict.NONE,
    )
    short = ItemError("ServerError", "HTTP 502", True, datetime(2026, 1, 1, tzinfo=UTC))
    other = attrs.evolve(scan, id="s2")
    errors = {
        scan.key: ItemError("ServerError", whole, True, datetime(2026, 1, 1, tzinfo=UTC)),
        other.key: short,
    }
    for rich in (True, False):
        out = _File()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_render, "have_rich", lambda r=rich: r)
            _render.print_table([scan, other], errors, out)
        lines = out.getvalue().splitlines()
        assert lines[-1] == "! iq app/s1: ServerError: " + whole.replace("\x1b", "\\x1b"), lines
        assert not any("s2:" in line for line in lines)  # shown whole in the table already


def test_a_plain_watch_line_and_a_source_error_show_vendor_text_escaped() -> None:
    from scanhub._changes import Change
    from scanhub.cli import _print_source_errors, _View

    out = io.StringIO()

    class Hub:
        def errors(self) -> dict[str, Any]:
            return {}

    with _View("plain", out) as view:
        view.change(Change(None, _HOSTILE, datetime(2026, 1, 1, tzinfo=UTC), 1), Hub())  # type: ignore[arg-type]
    _print_source_errors(
        {"ast": ItemError("PayloadError", "bad\x1b[2Jbody\r", False, datetime(2026, 1, 1))},
        out,
    )
    said = out.getvalue()
    assert not any(c in said for c in "\x1b\x07\r\u202e"), repr(said)
    assert said.count("\n") == 2
    assert "[/]done\\x1b[2J\\rover\\u202eevil" in said
    assert said.endswith("! ast: PayloadError: bad\\x1b[2Jbody\\r\n")


async def test_a_watch_that_found_nothing_to_watch_does_not_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped application is found by no vendor: the gate must not pass on nothing (2),
    unless told that nothing is fine."""
    async with sims() as s:
        s["appsecplus"].seed_scans("app-1", 1, duration=0.5)
        cfg = write_config(tmp_path, s, '[[track]]\nsource = "asp"\napplication_id = "app-typo"\n')
        code, out = await run_cli("watch", "-c", str(cfg), "--format", "plain", "--timeout", "20")
        assert code == 2, out
        assert out.splitlines()[-1] == (
            "! nothing to watch: 1 track and discovery found no item (a mistyped application or"
            " project?); --allow-empty exits 0"
        )
        capsys.readouterr()
        code, out = await run_cli("watch", "-c", str(cfg), "--format", "ndjson", "--timeout", "20")
        assert (code, out) == (2, "")  # stdout stays JSON lines; stderr says why
        assert capsys.readouterr().err.startswith("! nothing to watch: 1 track and")
        code, out = await run_cli(
            "watch", "-c", str(cfg), "--format", "plain", "--timeout", "20", "--allow-empty"
        )
        assert code == 0 and "nothing to watch" not in out


def test_an_internal_error_exits_70_not_1_which_says_an_item_failed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A defect of scanhub's (an exception no command turns into an exit code) exits 70 with
    its traceback: a gate reading 1 took it for a failed scan."""
    from scanhub import cli

    def broken(*_: object) -> int:
        raise AttributeError("'NoneType' object has no attribute 'lifecycle'")

    monkeypatch.setattr(cli, "main", broken)
    with pytest.raises(SystemExit) as ended:
        cli.run()
    assert ended.value.code == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "AttributeError: 'NoneType'" in err, err
    assert err.rstrip().endswith("please report it with the lines above)"), err
    # A timeout or a connection error is no error of the system's either: a defect if it
    # reaches here (scanhub turns a vendor's into its own errors).
    for stray in (TimeoutError(), ConnectionResetError(104, "Connection reset by peer")):

        def raising(*_: object, stray: Exception = stray) -> int:
            raise stray

        monkeypatch.setattr(cli, "main", raising)
        with pytest.raises(SystemExit) as ended:
            cli.run()
        assert ended.value.code == 70, stray
        assert "internal error" in capsys.readouterr().err


def test_an_error_of_the_system_exits_74_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A disk full (an output that cannot be written) is the system's, not a defect of
    scanhub's: one line and 74, no traceback and no request to report it."""
    import errno

    from scanhub import cli

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli, "main", full)
    with pytest.raises(SystemExit) as ended:
        cli.run()
    assert ended.value.code == 74
    assert capsys.readouterr().err == "scanhub: [Errno 28] No space left on device\n"


def test_a_watch_started_again_shows_no_item_twice_and_a_moved_one_as_a_change() -> None:
    """`watch` starts its watch again once the tracks' lookups have answered, and a watch shows
    every item first: a state shown already is not printed again, and one that moved in
    between is printed as a change from what was shown, not as new."""
    from datetime import UTC, datetime

    from scanhub import Change, Lifecycle, Scan, Vendor
    from scanhub.cli import _View

    class Hub:
        def errors(self) -> dict[str, Any]:
            return {}

    out = io.StringIO()
    view = _View("plain", out)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    queued = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.QUEUED, "queued")
    done = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.SUCCEEDED, "completed")
    for change in (Change(None, queued, at), Change(None, queued, at), Change(None, done, at)):
        view.change(change, Hub())  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "app/s1 new → queued" in lines[0] and "app/s1 queued → succeeded" in lines[1], lines


async def test_the_last_round_of_retries_starts_before_the_deadline() -> None:
    """With a lookup failing for good and the backoff past what is left, the last round of
    retries starts a second before the deadline and ends (it started at the deadline itself,
    and was cut at once: no retry in the last stretch, up to 30 s with the backoff at its
    cap)."""
    import time

    from scanhub.cli import _retry_lookups

    started: list[float] = []
    ended: list[float] = []

    class Discovery:
        def pending(self) -> bool:
            return True

        async def rediscover(self) -> list[Any]:
            started.append(time.monotonic())
            await asyncio.sleep(0.2)
            ended.append(time.monotonic())
            return []

    class Hub:
        discovery = Discovery()

    resolved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    resolved.set_result(None)
    end = time.monotonic() + 3.1  # rounds at 1 s and 2.1 s (not at 3 s, then 3.1 s)
    await _retry_lookups(Hub(), end, resolved)  # type: ignore[arg-type]
    assert len(started) >= 2 and len(ended) == len(started), (started, ended)
    assert all(end - t >= 0.5 for t in started), [end - t for t in started]
