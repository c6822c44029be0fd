"""`scanhub watch --state`, `[state]`, `scanhub history`, and a watcher killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.v1.http import from_json

from scanhub.sim import AppSecPlusSim, SimClock, ThreadFixSim

TOKEN, KEY = "asp-token-0001", "tf-api-key-0001"


@contextlib.asynccontextmanager
async def two_sims(speed: float) -> AsyncIterator[tuple[AppSecPlusSim, ThreadFixSim]]:
    clock = SimClock(speed=speed)
    asp, tf = AppSecPlusSim(clock=clock), ThreadFixSim(clock=clock)
    async with asp, tf:
        yield asp, tf


def config(
    tmp_path: Path, asp: AppSecPlusSim, tf: ThreadFixSim, pids: list[int], extra: str = ""
) -> Path:
    tracks = "".join(
        f'[[track]]\nsource = "tf"\napplication_id = 6\npending_scan_id = {p}\n' for p in pids
    )
    path = tmp_path / "scanhub.toml"
    path.write_text(
        textwrap.dedent(f"""
            interval = 0.05
            {extra}
            [[source]]
            name = "asp"
            vendor = "appsecplus"
            base_url = "{asp.base_url}"
            token_env = "ASP_TOKEN"

            [[source]]
            name = "tf"
            vendor = "threadfix"
            base_url = "{tf.base_url}"
            api_key_env = "TF_KEY"

            [[track]]
            source = "asp"
            application_id = "app-1"
            """)
        + tracks
    )
    return path


async def scanhub(*args: str, limit: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        *args,
        env={**os.environ, "ASP_TOKEN": TOKEN, "TF_KEY": KEY, "SCANHUB_NO_PLUGINS": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def transitions(db: Path) -> list[tuple[int, str, dict[str, Any]]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT id, key, after FROM transitions ORDER BY id").fetchall()
    finally:
        con.close()
    return [(i, k, json.loads(a)) for i, k, a in rows]


async def test_watch_with_state_then_history_and_resume(tmp_path: Path) -> None:
    async with two_sims(speed=40.0) as (asp, tf):
        asp.seed_scans("app-1", 3, duration=2)
        pids = tf.seed_pending(6, 2, duration=2)
        cfg = config(tmp_path, asp, tf, pids)
        db = tmp_path / "state.db"
        code, out, err = await scanhub(
            "watch",
            "-c",
            str(cfg),
            "--state",
            str(db),
            "--format",
            "cloudevents",
            "--timeout",
            "30",
        )
        assert code == 0, err
        events = [from_json(line) for line in out.splitlines()]
        assert len(events) >= 5 and all(e["specversion"] == "1.0" for e in events)
        recorded = transitions(db)
        ids = [i for i, _, _ in recorded]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        # Every event with a store id is a recorded transition, under that id and the state's
        # log identity (another state's, or another run's in memory, never gives the same id).
        with contextlib.closing(sqlite3.connect(db)) as con:
            (log,) = con.execute("SELECT id FROM log_identity").fetchone()
        stored_ids = {f"{log}-{i}" for i in ids}
        numbered = [e for e in events if e["id"].startswith(f"{log}-")]
        assert numbered and all(e["id"] in stored_ids for e in numbered)

        code, out, _ = await scanhub("history", "--state", str(db), "--format", "ndjson")
        lines = [json.loads(x) for x in out.splitlines()]
        assert code == 0 and [x["id"] for x in lines] == ids
        key = recorded[0][1]
        code, out, _ = await scanhub(
            "history", "--state", str(db), "--item", key, "--format", "ndjson"
        )
        assert {json.loads(x)["key"] for x in out.splitlines()} == {key}
        code, out, _ = await scanhub("history", "--state", str(db), "--since", str(ids[-2]))
        assert len(out.splitlines()) == 1 and out.split()[0] == str(ids[-1])
        code, out, _ = await scanhub("history", "--state", str(db), "--format", "cloudevents")
        assert [from_json(x)["id"] for x in out.splitlines()] == [f"{log}-{i}" for i in ids]
        # A key no item has, and a limit of nothing: said, as the API says them, not an
        # empty history.
        code, out, err = await scanhub("history", "--state", str(db), "--item", "nosuch")
        assert code == 2 and "history: no item 'nosuch' in the state" in err and not out
        for limit in ("0", "-1", "x"):
            code, _, err = await scanhub("history", "--state", str(db), "--limit", limit)
            assert code == 2 and f"expected a whole number >= 1, got '{limit}'" in err
        code, out, _ = await scanhub(
            "history", "--state", str(db), "--item", key, "--since", str(ids[-1])
        )
        assert code == 0 and not out  # a known item, nothing after that id

        polls = asp.stats.requests + tf.stats.requests
        code, out, err = await scanhub(
            "watch", "-c", str(cfg), "--state", str(db), "--format", "ndjson"
        )
        assert code == 0, err
        assert transitions(db) == recorded  # nothing recorded twice
        # Terminal items were not polled again (only the discovery list was asked).
        assert tf.stats.requests + asp.stats.requests - polls <= 1


async def test_state_table_in_the_config_file(tmp_path: Path) -> None:
    async with two_sims(speed=40.0) as (asp, tf):
        pids = tf.seed_pending(6, 1, duration=1)
        cfg = config(tmp_path, asp, tf, pids, extra='[state]\npath = "data/scanhub.db"\n')
        cfg.write_text(
            cfg.read_text().replace('[[track]]\nsource = "asp"\napplication_id = "app-1"\n', "")
        )
        asp.add_application("app-1")
        code, _, err = await scanhub(
            "watch", "-c", str(cfg), "--format", "plain", "--timeout", "30"
        )
    assert code == 0, err
    assert transitions(tmp_path / "data" / "scanhub.db")


async def test_history_without_a_state_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await scanhub("history", "--state", str(tmp_path / "none.db"))
    assert code == 2 and "no state file there" in err


async def test_a_state_url_spelled_otherwise_is_never_a_file_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL URL written `PostgreSQL://`, after a space, or with a driver suffix was
    taken for a SQLite path: `history` printed it (password and all) as a missing file and
    `watch` made the directory `./PostgreSQL:/u:<password>@.../`. Now each is read as the URL
    it is or refused with exit 2, showing no password and creating nothing."""
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "asp"\nvendor = "appsecplus"\nbase_url = "http://127.0.0.1:1"\n'
        'token_env = "ASP_TOKEN"\n'
    )
    for state in (
        "PostgreSQL://u:hunter2secret@127.0.0.1:1/db",
        " postgresql://u:hunter2secret@127.0.0.1:1/db",
        "postgresql+asyncpg://u:hunter2secret@127.0.0.1:1/db",
    ):
        for command in (
            ("history", "--state", state),
            ("watch", "-c", str(cfg), "--state", state, "--timeout", "5"),
        ):
            code, out, err = await scanhub(*command)
            assert code == 2, (command, out, err)
            assert "hunter2secret" not in out + err and "Traceback" not in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["scanhub.toml"]  # noqa: ASYNC240


def _bad_states(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """State files a careless user points at, and the words the one-line error must say."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 100)
    newer = tmp_path / "newer.db"
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version = 99")
    con.close()
    parent = tmp_path / "a-file"
    parent.write_text("x")
    return {
        "not SQLite": (text, "not a scanhub state file"),
        "newer schema": (newer, "newer than this scanhub"),
        "parent is a file": (parent / "state.db", "cannot open the state file"),
    }


async def test_bad_state_files_end_in_one_clear_line(tmp_path: Path) -> None:
    """Issue 17.3: exit 2 with one line naming the file and what is wrong, for serve, watch and
    history; no traceback; nothing (such as an HTTP session) opened before the store."""
    async with two_sims(speed=40.0) as (asp, tf):
        cfg = config(tmp_path, asp, tf, [])
        for what, (path, words) in _bad_states(tmp_path).items():
            for command in (
                ("watch", "-c", str(cfg), "--state", str(path), "--timeout", "5"),
                ("serve", "-c", str(cfg), "--state", str(path), "--port", "0"),
                ("history", "--state", str(path)),
            ):
                code, out, err = await scanhub(*command)
                lines = [x for x in err.splitlines() if x.strip()]
                assert code == 2, (what, command, out, err)
                assert len(lines) == 1, (what, command, err)
                expected = words
                if command[0] == "history" and what == "parent is a file":
                    expected = "no state file there"  # reading: there is nothing to read
                assert str(path) in lines[0] and expected in lines[0], (what, command, err)
                assert "Traceback" not in err and "Unclosed" not in err


async def test_a_watcher_killed_with_sigkill_loses_nothing_committed(tmp_path: Path) -> None:
    async with two_sims(speed=4.0) as (asp, tf):
        asp.seed_scans("app-1", 6, duration=6)
        pids = tf.seed_pending(6, 6, duration=6)
        cfg = config(tmp_path, asp, tf, pids)
        db = tmp_path / "state.db"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scanhub",
            "watch",
            "-c",
            str(cfg),
            "--state",
            str(db),
            "--format",
            "ndjson",
            "--timeout",
            "60",
            env={**os.environ, "ASP_TOKEN": TOKEN, "TF_KEY": KEY, "SCANHUB_NO_PLUGINS": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        printed: list[dict[str, Any]] = []
        # Read what the watcher handed its consumer until it has recorded some transitions.
        while len([c for c in printed if c.get("id")]) < 12:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the watcher ended early"
            printed.append(json.loads(line))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL

        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        recorded = transitions(db)
        by_id = {i: (k, a) for i, k, a in recorded}
        for change in printed:
            if change.get("id"):  # handed to the consumer: it was committed first
                key, after = by_id[change["id"]]
                assert key == change["key"] and after["lifecycle"] == change["after"]["lifecycle"]

        # A restart resumes and finishes, and no state is recorded twice.
        code, _, err = await scanhub(
            "watch", "-c", str(cfg), "--state", str(db), "--format", "ndjson", "--timeout", "60"
        )
        assert code == 0, err
    final = transitions(db)
    assert [i for i, _, _ in final][: len(recorded)] == [i for i, _, _ in recorded]
    last: dict[str, tuple[str, str]] = {}
    for _, key, after in final:
        state = (after["lifecycle"], after["vendor_status"])
        assert last.get(key) != state, f"{key} recorded {state} twice"
        last[key] = state
    assert all(lc == "succeeded" for lc, _ in last.values()) and len(last) == 12


async def test_a_sqlite_file_that_is_not_a_state_file_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    """Another application's SQLite database given as --state (a typo, a wrong path) is
    refused before anything is written to it: migrating it would add scanhub's tables to it,
    or take its own `user_version` for a scanhub schema version and bump it. A state file with
    a table gone is named damaged, in one line, not a traceback (and exit 1, an item failed)
    in the middle of the command."""
    foreign = tmp_path / "places.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    con.commit()
    con.close()
    versioned = tmp_path / "app.db"
    con = sqlite3.connect(versioned)
    con.execute("CREATE TABLE stuff (id INTEGER PRIMARY KEY)")
    con.execute("PRAGMA user_version = 4")
    con.commit()
    con.close()
    damaged = tmp_path / "damaged.db"
    con = sqlite3.connect(damaged)
    from scanhub.store.sqlite import migrate

    migrate(con)
    con.execute("DROP TABLE transitions")
    con.commit()
    con.close()

    def schema(path: Path) -> tuple[list[Any], int]:
        c = sqlite3.connect(path)
        try:
            names = c.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
            return names, c.execute("PRAGMA user_version").fetchone()[0]
        finally:
            c.close()

    before = {p: schema(p) for p in (foreign, versioned)}
    for path, words in (
        (foreign, "not a scanhub state file (a SQLite database of something else"),
        (versioned, "not a scanhub state file (a SQLite database with schema version 4"),
        (damaged, "a damaged scanhub state file: table transitions missing"),
    ):
        for command in (("history", "--state", str(path)), ("stats", "--state", str(path))):
            code, out, err = await scanhub(*command)
            assert code == 2, (command, out, err)
            assert err == f"scanhub: {path}: {err.split(': ', 2)[2]}", err
            assert words in err and "Traceback" not in err, err
    assert {p: schema(p) for p in (foreign, versioned)} == before


async def test_a_reading_command_given_an_empty_file_writes_nothing_to_it(tmp_path: Path) -> None:
    """An empty file (a `touch`ed path, a truncated download) given to history or stats got a
    whole scanhub schema written into it and an empty answer, exit 0: it is refused, exit 2,
    and left empty."""
    empty = tmp_path / "state.db"
    empty.write_bytes(b"")
    for command in ("history", "stats"):
        code, out, err = await scanhub(command, "--state", str(empty))
        assert code == 2, (command, out, err)
        assert err == f"scanhub: {empty}: an empty file, no state recorded in it\n", err
    left = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert empty.read_bytes() == b"" and left == ["state.db"]
