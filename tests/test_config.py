"""Configuration as data: every value checked, every problem reported at once, exit code 2.

Each case below is a value a careless user gave (issue: vendor registry and configuration) and
ends in exit code 2 with the key named, through the real command in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import jsonschema
import pytest

from scanhub import ConfigError, config_schema, load_config

ROOT = Path(__file__).resolve().parents[1]

GOOD_SOURCES = """
[[source]]
name = "iq"
vendor = "iq"
base_url = "http://127.0.0.1:9/platform"
username = "admin"
password_env = "IQ_PASSWORD"

[[source]]
name = "tf"
vendor = "threadfix"
base_url = "http://127.0.0.1:9/threadfix"
api_key_env = "TF_KEY"
"""
GOOD_TRACK = '\n[[track]]\nsource = "tf"\napplication_id = 6\npending_scan_id = 41\n'
ENV = {"IQ_PASSWORD": "x", "TF_KEY": "y"}


def scanhub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanhub", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "SCANHUB_NO_PLUGINS": "1",
            # The scanhub under test, where a worktree's src is put first.
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
            **(env or ENV),
        },
        check=False,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scanhub.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--interval", "-1"], "--interval"),
        (["--interval", "nan"], "--interval"),
        (["--interval", "inf"], "--interval"),
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "-5"], "--timeout"),
        (["--timeout", "0"], "--timeout"),
        (["--timeout", "soon"], "--timeout"),
    ],
)
def test_bad_command_line_values_exit_2_naming_the_option(
    tmp_path: Path, args: list[str], named: str
) -> None:
    cfg = write(tmp_path, GOOD_SOURCES + GOOD_TRACK)
    done = scanhub("watch", "-c", str(cfg), "--format", "plain", *args)
    assert done.returncode == 2, done.stderr
    assert f"argument {named}" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing was polled


@pytest.mark.parametrize(
    ("fragment", "key"),
    [
        ("interval = nan\n", "interval: expected a positive, finite number of seconds"),
        ("interval = -1\n", "interval: expected a positive, finite number of seconds"),
        ("timeout = inf\n", "timeout: expected a positive, finite number of seconds"),
        ("timeout = 0\n", "timeout: expected a positive, finite number of seconds"),
        ('interval = "5"\n', "interval: expected a positive, finite number of seconds"),
    ],
)
def test_bad_top_level_values_exit_2(tmp_path: Path, fragment: str, key: str) -> None:
    cfg = write(tmp_path, fragment + GOOD_SOURCES + GOOD_TRACK)
    done = scanhub("watch", "-c", str(cfg), "--format", "plain")
    assert done.returncode == 2
    assert f"{cfg}: {key}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("fragment", "key", "expected"),
    [
        ("api_version = 2\n", "source[1].api_version", "expected one of 'latest'"),
        ('api_key_in_query = "no"\n', "source[1].api_key_in_query", "expected true or false"),
        ("api_key_in_query = 0\n", "source[1].api_key_in_query", "expected true or false"),
        ("timeout = -3\n", "source[1].timeout", "positive, finite number of seconds"),
        ("connect_timeout = nan\n", "source[1].connect_timeout", "positive, finite"),
        ('verify_tls = "yes"\n', "source[1].verify_tls", "expected true or false"),
        ("rate_limit = { max_requests = 0, period = 60 }\n", "source[1].rate_limit", "iq-cloud"),
        ('api_key_env = "1 BAD"\n', "source[1].api_key_env", "name of an environment variable"),
        ('rate_limit = "fast"\n', "source[1].rate_limit", "iq-cloud"),
    ],
)
def test_bad_source_values_exit_2_naming_the_key(
    tmp_path: Path, fragment: str, key: str, expected: str
) -> None:
    text = GOOD_SOURCES.replace('api_key_env = "TF_KEY"\n', "")
    if "api_key_env" not in fragment:
        fragment += 'api_key_env = "TF_KEY"\n'
    cfg = write(tmp_path, text + fragment + GOOD_TRACK)
    done = scanhub("status", "-c", str(cfg))
    assert done.returncode == 2, done.stderr
    line = next(x for x in done.stderr.splitlines() if key in x)
    assert expected in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("source", "track", "key"),
    [
        ("iq", 'status_id = "abc"\napplication_id = ""\n', "track[0].application_id"),
        ("iq", 'status_id = "   "\npublic_id = "App"\n', "track[0].status_id"),
        ("iq", 'status_id = "abc"\n', "track[0].application_id: give application_id or public_id"),
        ("tf", "application_id = true\npending_scan_id = 4\n", "track[0].application_id"),
        ("tf", "application_id = 6\npending_scan_id = -4\n", "track[0].pending_scan_id"),
    ],
)
def test_bad_track_values_exit_2(tmp_path: Path, source: str, track: str, key: str) -> None:
    cfg = write(tmp_path, GOOD_SOURCES + f'\n[[track]]\nsource = "{source}"\n' + track)
    done = scanhub("status", "-c", str(cfg))
    assert done.returncode == 2
    assert key in done.stderr


def test_empty_csrf_token_is_refused(tmp_path: Path) -> None:
    cfg = write(
        tmp_path, GOOD_SOURCES.replace('username = "admin"', 'username = "admin"\ncsrf_token = ""')
    )
    done = scanhub("status", "-c", str(cfg))
    assert done.returncode == 2
    assert "source[0].csrf_token: expected a non-empty string" in done.stderr


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        """
        interval = -1
        colour = "blue"

        [[source]]
        vendor = "threadfix"
        base_url = "ftp://x"
        api_key = "in-the-file"
        api_version = 2

        [[source]]
        vendor = "nope"

        [[track]]
        source = "threadfix"
        application_id = ""
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    keys = [k for k, _ in err.value.problems]
    assert keys == [
        "interval",
        "colour",
        "source[0].api_key",
        "source[0].base_url",
        "source[0].api_key_env",
        "source[0].api_version",
        "source[1].vendor",
        # The track is checked against its source's vendor, though the source has problems.
        "track[0].application_id",
        "track[0].pending_scan_id",
    ]
    assert "in-the-file" not in str(err.value)  # a secret typed into the file is not echoed
    for line in str(err.value.message).splitlines():
        assert line.startswith(f"{cfg}: ")


def test_config_check_reports_problems_and_unset_variables(tmp_path: Path) -> None:
    cfg = write(tmp_path, GOOD_SOURCES + GOOD_TRACK)
    ok = scanhub("config", "check", "-c", str(cfg))
    assert ok.returncode == 0 and "ok (2 sources, 1 tracks)" in ok.stdout
    missing = scanhub("config", "check", "-c", str(cfg), env={"IQ_PASSWORD": "x"})
    assert missing.returncode == 2
    assert "source[1].api_key_env: environment variable TF_KEY is not set" in missing.stderr
    # Set to nothing (a CI secret that expanded to ""), or to white space: said so.
    for blank in ("", "  "):
        empty = scanhub(
            "config", "check", "-c", str(cfg), env={"IQ_PASSWORD": "x", "TF_KEY": blank}
        )
        assert empty.returncode == 2, empty.stdout
        assert "source[1].api_key_env: environment variable TF_KEY is empty" in empty.stderr
        status = scanhub("status", "-c", str(cfg), env={"IQ_PASSWORD": "x", "TF_KEY": blank})
        assert status.returncode == 2 and "TF_KEY is empty" in status.stderr
    assert scanhub("config", "check", "-c", str(tmp_path / "none.toml")).returncode == 2


def test_schema_is_generated_from_the_classes_and_validates_files() -> None:
    done = scanhub("config", "schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema == config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert list(validator.iter_errors(tomllib.loads(block))) == []
    for bad in (
        {"source": []},
        {"source": [{"vendor": "iq", "base_url": "http://x", "password_env": "P", "zz": 1}]},
        {
            "interval": -1,
            "source": [{"vendor": "apptrust", "base_url": "http://x", "token_env": "T"}],
        },
        {
            "source": [
                {
                    "vendor": "threadfix",
                    "base_url": "http://x",
                    "api_key_env": "K",
                    "api_key_in_query": "no",
                }
            ]
        },
    ):
        assert list(validator.iter_errors(bad)), bad


@pytest.mark.parametrize(
    "url",
    [
        "https://bob:hunter2secret@host:99999/x",  # a bad port was reported first, URL quoted
        "https://bob:hunter2secret@ho st/x",
        "https://bob:hunter2secret@host/x#frag",
        "ftp://bob:hunter2secret@host/x",
        "https://bob:hunter2secret@[::1/x",
        "https://bob:hunter2/secret@host/x",  # an unencoded /: no parser sees a password
        "hunter2secret@host",
    ],
)
def test_a_url_with_credentials_is_never_quoted(url: str) -> None:
    """`source.base_url` and `sink.url` holding `user:password@` are refused as carrying
    credentials, whatever else is wrong with them, and no message quotes the password."""
    from scanhub._config import parse_config

    data = {
        "source": [{"vendor": "appsecplus", "base_url": url, "token_env": "ASP"}],
        "sink": [{"name": "s", "url": url, "secret_env": "W"}],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(data, "c.toml")
    assert "hunter2" not in str(refused.value)
    assert [k for k, _ in refused.value.problems] == ["source[0].base_url", "sink[0].url"]


def test_a_bad_url_without_credentials_is_still_quoted() -> None:
    from scanhub._config import parse_config

    data = {"source": [{"vendor": "appsecplus", "base_url": "http://h:99999", "token_env": "A"}]}
    with pytest.raises(ConfigError, match="with a host, got 'http://h:99999'"):
        parse_config(data, "c.toml")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("token_env", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA"),  # a JWT
        ("token_env", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),  # a GitHub token
        ("token_env", "glpat-xXc2sEcrEtz9y"),
        ("url_env", "https://hooks.slack.com/services/T00/B00/XXXXsecretXXXX"),
        ("secret_env", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("secret_env", ["NEW_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]),
    ],
)
def test_a_secret_where_its_variables_name_goes_is_never_echoed(
    tmp_path: Path, key: str, value: object
) -> None:
    """The value put where the variable's name goes (a Slack URL in `url_env`, a token in
    `token_env`) was quoted by the "not a name" message, or, for a token shaped like a name
    (`ghp_...`, `whsec_...`), by "environment variable ghp_... is not set"."""
    from scanhub._config import parse_config

    source = {"vendor": "appsecplus", "base_url": "http://h", "token_env": "ASP"}
    sink: dict[str, object] = {"name": "s", "url": "https://example.com/x", "secret_env": "W"}
    if key == "token_env":
        source[key] = value  # type: ignore[assignment]
        where = "source[0].token_env"
    else:
        sink.update({key: value, "kind": "slack"} if key == "url_env" else {key: value})
        if key == "url_env":
            del sink["url"], sink["secret_env"]
        where = f"sink[0].{key}"
    env = {"ASP": "t", "W": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    with pytest.raises(ConfigError) as refused:
        parse_config({"source": [source], "sink": [sink]}, "c.toml", env=env)
    shown = str(refused.value)
    for part in ("eyJ", "ghp_", "glpat", "hooks.slack", "whsec_", "XXXX"):
        assert part not in shown, shown
    assert refused.value.problems == [
        (
            where,
            "expected the name of an environment variable, but it holds something that is not "
            "an environment variable name: put the value in the environment and name the "
            "variable here",
        )
    ]
    cfg = write(tmp_path, f'[[source]]\nvendor = "appsecplus"\nbase_url = "http://h"\n{key} = ')
    if isinstance(value, str):  # and through `scanhub config check`
        cfg.write_text(cfg.read_text() + json.dumps(value) + "\n")
        done = scanhub("config", "check", "-c", str(cfg))
        assert done.returncode == 2 and value not in done.stdout + done.stderr


def test_env_problem_never_names_what_cannot_be_a_variable() -> None:
    from scanhub._registry import env_problem

    assert env_problem("ghp_16C7e42F292c6912E7710c838347Ae178B4a", {}) == (
        "holds something that is not an environment variable name: put the value in the "
        "environment and name the variable here"
    )
    assert env_problem("https://hooks.slack.com/services/T/B/X", {}) is not None
    assert env_problem("GITHUB_TOKEN", {}) == "environment variable GITHUB_TOKEN is not set"


def test_env_problem_takes_white_space_around_a_value_and_refuses_control_characters() -> None:
    from scanhub._registry import env_problem

    assert env_problem("T", {"T": "tok-0001\n"}) is None  # a secret mounted from a file
    assert env_problem("T", {"T": " tok-0001\r\n"}) is None
    for inside in ("tok\n0001", "tok\t0001", "tok\x000001", "tok\x7f0001", "tok\x850001"):
        why = env_problem("T", {"T": inside})
        assert why == (
            "environment variable T holds a control character (a line break, a tab, ...) "
            "inside its value"
        ), repr(inside)
    # Several space-separated values (a sink's whsec_ secrets during a rotation): a line
    # between two is not inside either.
    assert env_problem("W", {"W": "whsec_a\nwhsec_b\n"}, several=True) is None
    assert env_problem("W", {"W": "whsec_a\x00 whsec_b"}, several=True) is not None


def test_a_key_or_a_path_is_shown_as_text_never_as_a_terminal_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown key is the file's own text: one with a line break made a second
    `scanhub: ...` line of the message's choosing, one with an escape (a window title, a
    colour, a C1 CSI, a bidirectional override) reached the terminal. It is named quoted and
    escaped, as TOML writes it; a path given on the command line is shown escaped too."""
    from scanhub.cli import main

    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '"a\\nscanhub: ok (forged)" = 1\n"t\\u001b]0;PWNED\\u0007" = 2\n'
        '[[source]]\nvendor = "iq"\nbase_url = "https://iq.example.com"\nusername = "u"\n'
        'password_env = "P"\n"b\\u202egnp\\u009b31m" = 3\n'
    )
    assert main(["config", "check", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f'scanhub: {cfg}: "a\\nscanhub: ok (forged)": unknown key (expected one of interval,'
        " max_interval, state, stuck_after, timeout)",
        f'scanhub: {cfg}: "t\\u001b]0;PWNED\\u0007": unknown key (expected one of interval,'
        " max_interval, state, stuck_after, timeout)",
        f'scanhub: {cfg}: source[0]."b\\u202egnp\\u009b31m": unknown key (expected one of'
        " base_url, connect_timeout, csrf_token, max_body, name, password_env, rate_limit,"
        " stuck_after, stuck_after_by_kind, timeout, username, username_env, vendor,"
        " verify_tls, webhook_secret_env)",
    ]
    assert main(["config", "check", "-c", str(tmp_path / "x\x1b[2J.toml")]) == 2
    assert "x\\x1b[2J.toml: file not found" in capsys.readouterr().err
