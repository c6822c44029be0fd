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


class PostgresServer:
    """A throwaway PostgreSQL server (see `postgres_server`): its DSN, and `stop()` / `start()`
    to take it away and bring it back (what an outage looks like to scanhub)."""

    def __init__(self, bins: Path, base: Path, port: int, as_user: list[str], options: str) -> None:
        self.bins, self.base, self.port = bins, base, port
        self._as_user, self._options = as_user, options
        self.dsn = f"postgresql://scanhub@127.0.0.1:{port}/postgres"

    def run(self, *cmd: str) -> None:
        """Run a server binary (as the unprivileged user when running as root)."""
        subprocess.run([*self._as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: S603 - fixed argv

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        data = str(self.base / "data")
        log = str(self.base / "log")
        self.run(
            str(self.bins / "pg_ctl"), "-D", data, "-o", self._options, "-l", log, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnect every client at once, as an outage does)."""
        self.run(str(self.bins / "pg_ctl"), "-D", str(self.base / "data"), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def postgres_server(*, max_connections: int = 300) -> Iterator[PostgresServer]:
    """Start a throwaway cluster (`initdb` and `pg_ctl` in a temporary directory, as the
    unprivileged `postgres` user when running as root, on a free loopback port, trust auth);
    yields it (`.dsn` for its superuser `scanhub`, `.stop()`, `.start()`); stops and removes it
    afterwards."""
    bins = postgres_bindir()
    if bins is None:
        raise RuntimeError(POSTGRES_MISSING)
    base = Path(tempfile.mkdtemp(prefix="scanhub-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off "
        f"-c max_connections={max_connections}"
    )
    server = PostgresServer(bins, base, port, as_user, options)
    try:
        server.run(
            str(bins / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "scanhub",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster(*, max_connections: int = 300) -> Iterator[str]:
    """`postgres_server`, yielding only its DSN."""
    with postgres_server(max_connections=max_connections) as server:
        yield server.dsn


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
