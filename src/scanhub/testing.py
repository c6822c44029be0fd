"""Helpers for testing and benchmarking scanhub and its plugins (in the spirit of
`structlog.testing`): a throwaway PostgreSQL cluster from the machine's server binaries."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Why PostgreSQL tests skip where the server binaries are missing.
POSTGRES_MISSING = "needs PostgreSQL server binaries (apt-get install postgresql)"


def postgres_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are (newest version first); None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_cluster(*, max_connections: int = 300) -> Iterator[str]:
    """Start a throwaway cluster (`initdb` and `pg_ctl` in a temporary directory, as the
    unprivileged `postgres` user when running as root, on a free loopback port, trust auth);
    yields a DSN for its superuser `scanhub`; stops and removes it afterwards."""
    bins = postgres_bindir()
    if bins is None:
        raise RuntimeError(POSTGRES_MISSING)
    base = Path(tempfile.mkdtemp(prefix="scanhub-pg-"))
    data = base / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: S603 - fixed argv

    try:
        run(
            str(bins / "initdb"),
            "-D",
            str(data),
            "-U",
            "scanhub",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={max_connections}"
        )
        run(
            str(bins / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        )
        yield f"postgresql://scanhub@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            run(str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


async def fresh_database(dsn: str, name: str) -> str:
    """A new, empty database in the cluster at `dsn`; returns its DSN."""
    import asyncpg  # type: ignore[import-untyped]  # the driver ships no annotations

    con = await asyncpg.connect(dsn)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    return dsn.rsplit("/", 1)[0] + "/" + name
