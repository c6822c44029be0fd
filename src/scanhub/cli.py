"""The `scanhub` command: status, watch, demo, sim.

Exit codes (status, watch, demo): 0 all succeeded with no blocking verdict; 1 an item failed or
was cancelled; 2 configuration or usage error; 3 a verdict blocks (fail/error); 4 the watch
deadline passed with items unfinished; 5 some items or sources could not be read; 70 an internal
error (a defect of scanhub's); 74 an error of the system's (a disk full). The demo exits
0 when it ran as designed (its deliberately failing items are part of the show), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import socket
import ssl
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from . import _render as r
from ._changes import significant
from ._compose import apply_tracks, build_hub, open_state
from ._config import Config, config_schema_json, load_config
from ._convert import dumps, to_dict
from ._defaults import LEASE_SECONDS, PORT
from ._errors import ConfigError, ScanhubError
from ._exports import cloudevent_json
from ._model import Item
from ._registry import registry
from ._schema import Problem, check_env_var, check_seconds
from ._stats import DEFAULT_GROUP_BY, DEFAULT_WINDOW, WINDOWS
from .engine import Change, ScanHub
from .store import STAT_GROUPS


def _seconds(text: str) -> float:
    """argparse type: the same check as durations in the configuration file."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive, finite number of seconds, got {text!r}"
        ) from None
    try:
        return check_seconds(value)
    except Problem as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _count(text: str) -> int:
    """A number of things to show: a whole number >= 1 (0 would show nothing, silently)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def _speed(text: str) -> float:
    """argparse type: how many times faster than real time the simulators' clock runs."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive, finite speed (1 is real time), got {text!r}"
        )
    return value


def _env_name(text: str) -> str:
    """argparse type: the name of an environment variable (as `*_env` keys in a file)."""
    try:
        return check_env_var(text)
    except Problem as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scanhub",
        description="Where your security scans and release promotions stand, across vendors.",
        epilog="Exit codes: 0 ok, 1 failed, 2 config/usage error, 3 blocking verdict, "
        "4 timeout, 5 unreachable.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log requests (redacted)")
    sub = p.add_subparsers(dest="command", required=True)

    st = sub.add_parser("status", help="one snapshot of everything configured")
    st.add_argument("-c", "--config", default="scanhub.toml", help="default: scanhub.toml")
    st.add_argument("--format", choices=("table", "json", "ndjson"), default="table")
    _track_option(st)

    w = sub.add_parser("watch", help="follow everything configured until it finishes")
    w.add_argument("-c", "--config", default="scanhub.toml", help="default: scanhub.toml")
    _track_option(w)
    w.add_argument(
        "--format",
        choices=("live", "plain", "ndjson", "cloudevents"),
        default=None,
        help="live view (default on a terminal), plain lines, ndjson Change events, or one "
        "CloudEvents 1.0 JSON object per line",
    )
    w.add_argument(
        "--state",
        metavar="PATH|URL",
        default=None,
        help="keep tracked items and every transition in this SQLite file (or PostgreSQL "
        "database), and resume from it (default: [state] of the config, else in memory)",
    )
    w.add_argument("--interval", type=_seconds, default=None, help="seconds between polls")
    w.add_argument("--timeout", type=_seconds, default=None, help="give up after this many seconds")
    w.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when nothing is tracked or discovered (default: 2, as a mistyped "
        "application or project finds nothing)",
    )

    d = sub.add_parser("demo", help="run the vendor simulators and a scenario end to end")
    d.add_argument("--format", choices=("live", "plain", "ndjson"), default=None)
    d.add_argument("--speed", type=_speed, default=1.0, help="simulated time speed (default 1)")

    s = sub.add_parser("sim", help="run the vendor simulators standalone")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument(
        "--port",
        type=_port,
        default=0,
        help="first port (IQ); the others follow (default: any free ports)",
    )
    s.add_argument("--duration", type=_seconds, default=None, help="stop after N seconds")
    s.add_argument("--speed", type=_speed, default=1.0, help="simulated time speed (default 1)")
    s.add_argument(
        "--write-config",
        metavar="PATH",
        default=None,
        help="write a scanhub.toml that tracks the simulators' seeded items",
    )

    h = sub.add_parser("history", help="print the transitions a state file recorded, in order")
    h.add_argument(
        "--state",
        metavar="PATH|URL",
        default=None,
        help="the SQLite state file or PostgreSQL URL (default: [state] of --config)",
    )
    h.add_argument(
        "-c", "--config", default=None, help="read [state] from this file (instead of --state)"
    )
    h.add_argument("--item", metavar="KEY", default=None, help="only this item's transitions")
    h.add_argument("--since", metavar="ID", type=_id, default=0, help="only after this id")
    h.add_argument("--limit", metavar="N", type=_count, default=None, help="at most N transitions")
    h.add_argument("--format", choices=("table", "ndjson", "cloudevents"), default="table")

    sa = sub.add_parser(
        "stats", help="time in state: queue and run times, failure and blocked rates, stuck items"
    )
    sa.add_argument(
        "--state",
        metavar="PATH|URL",
        default=None,
        help="the SQLite state file or PostgreSQL URL (default: [state] of --config)",
    )
    sa.add_argument(
        "-c",
        "--config",
        default=None,
        help="read [state] and the stuck_after thresholds from this file",
    )
    sa.add_argument("--window", choices=tuple(WINDOWS), default=DEFAULT_WINDOW)
    sa.add_argument(
        "--group-by",
        default=",".join(DEFAULT_GROUP_BY),
        metavar="NAMES",
        help=f"comma-separated: {', '.join(STAT_GROUPS)} ('' for one group; default"
        f" {','.join(DEFAULT_GROUP_BY)})",
    )
    sa.add_argument("--format", choices=("table", "json"), default="table")

    sv = sub.add_parser("serve", help="the dashboard service: JSON API, live stream, metrics, page")
    sv.add_argument("-c", "--config", default=None, help="default: scanhub.toml (not with --demo)")
    sv.add_argument(
        "--state",
        metavar="PATH|URL",
        default=None,
        help="SQLite state file, or postgresql://user@host/db for several replicas (password "
        "from PGPASSWORD or SCANHUB_DATABASE_URL) (default: [state] url or path, else "
        "scanhub-state.db next to the config; 'memory' keeps nothing)",
    )
    sv.add_argument(
        "--lease-seconds",
        type=_seconds,
        default=LEASE_SECONDS,
        help="replicas on PostgreSQL: how long a source's lease lasts unrenewed (default 15)",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=_port, default=PORT, help=f"default {PORT}; 0: any free port")
    sv.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name the service answers for besides localhost, 127.0.0.1, ::1 and --host "
        "(repeatable; '*.example.com' for every name under it, '*' for any); others get 421. "
        "Bound to 0.0.0.0 or :: with none given, any is answered",
    )
    sv.add_argument(
        "--demo", action="store_true", help="no config: the simulators and a moving scenario"
    )
    sv.add_argument(
        "--token-env",
        type=_env_name,
        default="SCANHUB_TOKEN",
        help="environment variable holding the bearer token that enables writes",
    )

    sk = sub.add_parser("sinks", help="the configured sinks ([[sink]]): send a test event")
    sksub = sk.add_subparsers(dest="sinks_command", required=True)
    skt = sksub.add_parser("test", help="send one signed test event to a sink; print the answer")
    skt.add_argument("name", help="the sink's name")
    skt.add_argument("-c", "--config", default="scanhub.toml", help="default: scanhub.toml")

    c = sub.add_parser("config", help="check a configuration file, or print its JSON Schema")
    csub = c.add_subparsers(dest="config_command", required=True)
    cc = csub.add_parser("check", help="report every problem in a file (exit 2 if any)")
    cc.add_argument("-c", "--config", default="scanhub.toml", help="default: scanhub.toml")
    csub.add_parser("schema", help="print the JSON Schema of scanhub.toml")
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit code."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    configured = bool(logging.getLogger().handlers)  # by a host (a test run): left as it is
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose and not configured:
        # scanhub's own warnings are an operator's business (a source rate limited, a dead
        # letter, an unknown vendor value: adapters.md says one warning a value, the store
        # taking commits again); the libraries' (asyncpg's pool retrying with a traceback
        # while the database is away) only with -v.
        logging.getLogger("scanhub").setLevel(logging.WARNING)
    try:
        if args.command == "config":
            return _config_command(args, out)
        if args.command == "sinks":
            return asyncio.run(_sinks_test(args, out))
        if args.command == "status":
            config = load_config(args.config, tracks=args.track)
            return asyncio.run(_status(config, args.format, out))
        if args.command == "watch":
            config = load_config(args.config, tracks=args.track)
            fmt = args.format or ("live" if out.isatty() and r.have_rich() else "plain")
            return asyncio.run(
                _watch(
                    config,
                    fmt,
                    out,
                    args.interval,
                    args.timeout,
                    args.state,
                    allow_empty=args.allow_empty,
                )
            )
        if args.command == "history":
            return asyncio.run(_history(args, out))
        if args.command == "stats":
            return asyncio.run(_stats(args, out))
        if args.command == "serve":
            return _serve(args, out)
        if args.command == "demo":
            fmt = args.format or ("live" if out.isatty() and r.have_rich() else "plain")
            return _demo(fmt, out, args.speed)
        return asyncio.run(_sim(args, out))
    except ConfigError as exc:
        for line in exc.message.splitlines():
            # A path, a key or a value from the file or the command line, shown as text.
            print(f"scanhub: {r.shown(line)}", file=sys.stderr)
        return r.EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _track_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="TABLE",
        help="one more [[track]] table, as the inside of a TOML inline table, e.g. 'source = "
        '"sonarqube", report_task = ".scannerwork/report-task.txt"\' (repeatable; checked like '
        "the file's tracks, and numbered after them)",
    )


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from .serve import serve
    except ImportError as exc:  # the `serve` extra is missing
        raise ConfigError(
            f"scanhub serve needs the serve extra: pip install 'scanhub[serve]' ({exc})"
        ) from None
    if args.demo and args.config is not None:
        raise ConfigError("serve: --demo runs without a config file; give --demo or -c, not both")
    from .serve._hosts import check_name

    for name in args.allowed_host:
        try:
            check_name(name)
        except ValueError as exc:
            raise ConfigError(f"serve: --allowed-host: {exc}") from None
    return asyncio.run(
        serve(
            None if args.demo else args.config,
            state=args.state,
            host=args.host,
            port=args.port,
            allowed_hosts=args.allowed_host,
            demo=args.demo,
            token_env=args.token_env,
            lease_seconds=args.lease_seconds,
            out=out,
        )
    )


def _config_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.config_command == "schema":
        print(config_schema_json(), file=out)
        return r.EXIT_OK
    config = load_config(args.config, env=os.environ)
    # Only `scanhub serve` delivers to sinks (`watch` and `status` read none): said here.
    sinks = f", {len(config.sinks)} sinks, delivered by scanhub serve" if config.sinks else ""
    print(
        f"{config.path}: ok ({len(config.sources)} sources, {len(config.tracks)} tracks{sinks})",
        file=out,
    )
    return r.EXIT_OK


async def _sinks_test(args: argparse.Namespace, out: TextIO) -> int:
    """`scanhub sinks test NAME`: one signed test event; exit 0 when answered 2xx, else 5."""
    from ._compose import build_sinks
    from .engine.sinks import send_test

    config = load_config(args.config)
    config.sink(args.name)  # a ConfigError naming the sinks there are
    (sink,) = [s for s in build_sinks(config) if s.name == args.name]
    msg_id, got = await send_test(sink)
    took = f"{got.elapsed * 1000:.0f} ms"
    if got.status is None:
        said = r.shown(got.describe())
        print(f"sink {sink.name} → {sink.shown}: {said} (webhook-id {msg_id})", file=out)
        return r.EXIT_UNREACHABLE
    said = r.shown(got.describe())
    print(
        f"sink {sink.name} → {sink.shown}: {said} in {took} (webhook-id {msg_id}, "
        f"signed with {len(sink.secrets)} key{'s' if len(sink.secrets) != 1 else ''})",
        file=out,
    )
    if got.body:
        text = got.body[:2000].decode("utf-8", "replace")
        # The receiver's text, shown as text: control characters escaped, never interpreted.
        print("\n".join(r.shown(line) for line in text.split("\n")), file=out)
    return r.EXIT_OK if 200 <= got.status < 300 else r.EXIT_UNREACHABLE


async def _status(config: Config, fmt: str, out: TextIO) -> int:
    async with build_hub(config) as hub:
        await apply_tracks(hub, config)
        snap = await hub.snapshot()
    if fmt == "json":
        print(dumps(to_dict(snap), indent=2, ensure_ascii=False), file=out)
    elif fmt == "ndjson":
        for item in snap.items:
            print(r.json_line(item), file=out)
        # stdout is the machine's: why the exit code is what it is goes to stderr.
        _print_source_errors({**snap.errors, **snap.source_errors}, sys.stderr)
    else:
        r.print_table(snap.items, snap.errors, out, title=_counts_title(snap.items))
        _print_source_errors(snap.source_errors, out)
    errors = {**snap.errors, **snap.source_errors}
    return r.outcome(snap.items, errors, expect_terminal=False)


def _counts_title(items: Sequence[Any]) -> str:
    counts: dict[str, int] = {}
    for i in items:
        counts[i.lifecycle.value] = counts.get(i.lifecycle.value, 0) + 1
    return "scanhub: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing")


def _print_source_errors(errors: Mapping[str, Any], out: TextIO) -> None:
    """One line each: `! <source or item key>: <type>: <message>`."""
    for source, err in errors.items():
        print(r.shown(f"! {source}: {err.type}: {err.message}"), file=out)


class _View:
    """Draws changes: a rich live table, plain lines, or ndjson. It keeps its own view of every
    item it was shown (the watch shows each item first), for the live table."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.fmt, self.out = fmt, out
        self.log: str | None = None  # the store's log identity, for CloudEvent ids
        self.live: Any = None
        self.items: dict[str, Item] = {}
        self.errors: dict[str, Any] = {}
        self.started = time.monotonic()

    def __enter__(self) -> _View:
        if self.fmt == "live":
            from rich.console import Console
            from rich.live import Live

            # get_renderable redraws 8 times a second, so errors and the clock stay current
            # between changes.
            self.live = Live(
                console=Console(file=self.out),
                refresh_per_second=8,
                transient=True,
                get_renderable=self._render,
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def _render(self) -> Any:
        if not self.items:
            return "starting…"
        items = list(self.items.values())
        title = f"{_counts_title(items)}  ({time.monotonic() - self.started:.1f}s)"
        return r.rich_table(items, self.errors, title)

    def change(self, change: Change, hub: ScanHub) -> None:
        shown = self.items.get(change.key)
        if change.before is None and shown is not None:
            # A watch started again (once the lookups answered) shows every item first: a
            # state shown already is not shown again, and one that moved meanwhile is a
            # change from what was shown (`lagged`: what came between is not shown).
            if not significant(shown, change.after):  # (the same, to a consumer)
                self.items[change.key] = change.after
                return
            change = Change(shown, change.after, change.observed_at, lagged=True)
        self.items[change.key] = change.after
        self.errors = hub.errors()
        if self.fmt == "ndjson":
            print(r.json_line(change), file=self.out, flush=True)
        elif self.fmt == "cloudevents":
            print(cloudevent_json(change, self.log), file=self.out, flush=True)
        elif self.fmt == "plain":
            a = change.after
            was = change.before.lifecycle.value if change.before else "new"
            detail = f" — {a.message}" if a.message else ""
            # Whole ids: IQ's 32-hex status ids differ only past any prefix worth cutting to.
            # One line per change, the vendor's text never interpreted by the terminal.
            print(
                r.shown(
                    f"{time.monotonic() - self.started:6.1f}s {a.source:<14} {a.kind:<9} "
                    f"{a.application}/{a.id} {was} → {a.lifecycle.value} [{a.vendor_status}] "
                    f"verdict={a.verdict.value}{detail}"
                ),
                file=self.out,
                flush=True,
            )
        elif self.live is not None:
            self.live.refresh()

    def final(self, items: Sequence[Any], errors: dict[str, Any], title: str) -> None:
        if self.fmt not in ("ndjson", "cloudevents"):
            print(file=self.out)
            r.print_table(items, errors, self.out, title=title)


async def _history(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config, sources_required=False) if args.config else None
    if args.state is None and (config is None or config.state is None):
        raise ConfigError("history: give --state PATH|URL, or -c with a [state] table")
    store = await open_state(config, args.state, "memory", must_exist=True)
    try:
        found = await store.transitions(since=args.since, key=args.item, limit=args.limit)
        if args.item is not None and not found and await store.get(args.item) is None:
            # As `GET /api/v1/items/{key}/history` answers: a key mistyped is not an empty
            # history.
            raise ConfigError(f"history: no item {args.item!r} in the state")
        log = await store.sinks.log_id()
    finally:
        await store.close()
    for t in found:
        if args.format == "ndjson":
            print(r.json_line(t.change), file=out)
        elif args.format == "cloudevents":
            print(cloudevent_json(t.change, log), file=out)
        else:
            c = t.change
            was = c.before.lifecycle.value if c.before else "new"
            print(
                r.shown(
                    f"{t.id:>7}  {to_dict(c)['observed_at']}  {c.key}  {was} → "
                    f"{c.after.lifecycle.value} [{c.after.vendor_status}] "
                    f"verdict={c.after.verdict.value}"
                ),
                file=out,
            )
    return r.EXIT_OK


async def _stats(args: argparse.Namespace, out: TextIO) -> int:
    """`scanhub stats`: the report of `GET /api/v1/stats`, from a state file."""
    from datetime import UTC, datetime

    from . import _stats as stats

    try:
        group_by = stats.parse_group_by(args.group_by)
    except ValueError as exc:
        raise ConfigError(f"stats: {exc}") from None
    config = load_config(args.config, sources_required=False) if args.config else None
    if args.state is None and (config is None or config.state is None):
        raise ConfigError("stats: give --state PATH|URL, or -c with a [state] table")
    store = await open_state(config, args.state, "memory", must_exist=True)
    try:
        now = datetime.now(UTC)
        rule = await stats.stuck_rule(store, config, now)
        data = await stats.report(store, window=args.window, group_by=group_by, now=now, rule=rule)
    finally:
        await store.close()
    if args.format == "json":
        print(dumps(data, indent=2, ensure_ascii=False), file=out)
    else:
        for line in stats.table(data):
            print(r.shown(line), file=out)
    return r.EXIT_OK


async def _watch(
    config: Config,
    fmt: str,
    out: TextIO,
    interval: float | None,
    limit: float | None,
    state: str | None = None,
    *,
    allow_empty: bool = False,
) -> int:
    if fmt == "live" and not r.have_rich():
        fmt = "plain"
    store = await open_state(config, state, "memory")
    limit = limit if limit is not None else config.timeout
    end = None if limit is None else time.monotonic() + limit
    async with build_hub(config, store) as hub:
        with _View(fmt, out) as view:
            view.log = await store.sinks.log_id()
            every = interval if interval is not None else config.interval

            async def show(until_done: bool) -> None:
                async for change in hub.watch(
                    interval=every, deadline=_left(end), until_done=until_done
                ):
                    view.change(change, hub)

            async def look_up() -> None:
                # The deadline is the command's: a vendor that holds a lookup does not hold
                # the gate. What failed for a reason that may pass is tried again, while the
                # other sources' lookups still run.
                resolving = asyncio.ensure_future(apply_tracks(hub, config, deadline=_left(end)))
                try:
                    await _retry_lookups(hub, end, resolving)
                    await resolving
                finally:
                    resolving.cancel()
                    await asyncio.gather(resolving, return_exceptions=True)

            # The tracks' lookups run (and are tried again) while everything tracked is
            # watched, what they find as they find it: a vendor away, or holding its answers,
            # holds none of the others' items unpolled. The watch goes on until they have all
            # answered (or the deadline), then until all it has is done.
            # One polling block for both watches: the engine polls on between them.
            async with hub.polling(every):
                finding = asyncio.ensure_future(look_up())
                watching = asyncio.ensure_future(show(until_done=False))
                try:
                    await asyncio.wait({finding, watching}, return_when=asyncio.FIRST_COMPLETED)
                    if watching.done():
                        watching.result()  # the deadline came (or the watch failed)
                        # The lookups end at the same deadline, a moment later: what they
                        # say of a lookup cut by it is the gate's answer (4), so they end.
                        await asyncio.wait({finding}, timeout=LOOKUPS_GRACE)
                        if finding.done() and not finding.cancelled():
                            finding.result()  # a failure of scanhub's, not lost
                    else:
                        finding.result()  # its failure now, not when the watch ends
                        watching.cancel()
                        await asyncio.wait({watching})  # (a Ctrl-C meanwhile is not lost)
                        await show(until_done=True)
                finally:
                    finding.cancel()
                    watching.cancel()
                    # (Their failures, if any, were raised above: nothing here replaces the
                    # exception under way, a Ctrl-C or a closed pipe.)
                    await asyncio.gather(finding, watching, return_exceptions=True)
        items, errors = await hub.current(), hub.errors()
        source_errors = dict(hub.discovery.errors)
    view.final(items, errors, "final: " + _counts_title(items))
    if fmt in ("ndjson", "cloudevents"):
        # stdout is a stream of JSON lines: the errors, why the exit code is what it is, go
        # to stderr, every item's and every source's.
        _print_source_errors({**errors, **source_errors}, sys.stderr)
    else:
        _print_source_errors(source_errors, out)
    if not items and not errors and not source_errors and not allow_empty:
        # A gate that watched nothing must not pass: a mistyped application, project or
        # repository is found by no vendor, and nothing finishing is not everything succeeding.
        said = sys.stderr if fmt in ("ndjson", "cloudevents") else out
        tracks = len(config.tracks)
        print(
            f"! nothing to watch: {tracks} track{'s' if tracks != 1 else ''} and discovery"
            " found no item (a mistyped application or project?); --allow-empty exits 0",
            file=said,
        )
        return r.EXIT_CONFIG
    return r.outcome(items, {**errors, **source_errors}, expect_terminal=True)


async def _retry_lookups(hub: ScanHub, end: float | None, resolving: asyncio.Future[None]) -> None:
    """Run again, with backoff until the deadline (None: none), the tracks' lookups and
    discoveries that failed for a reason that may pass (the vendor away for a moment, a 5xx),
    as an item's poll is, while `resolving` (the tracks' first lookups) runs and after, until
    none is left to try. (A gate that gave up on them at once ended with 5 in seconds, the
    vendor back a moment later.)"""
    delay = 1.0
    # A round is not waited for: one a vendor holds (to the deadline) holds no later round of
    # the others' lookups (`rediscover` leaves out what is under way).
    rounds: set[asyncio.Task[Any]] = set()
    try:
        while True:
            for done in [t for t in rounds if t.done()]:
                rounds.discard(done)
                done.result()  # a failure of scanhub's, now
            if not hub.discovery.pending():
                if resolving.done():
                    return  # (a round still under way re-runs rules only: cut)
                await asyncio.wait({resolving, *rounds}, timeout=delay)  # a lookup may fail
                continue
            left = _left(end)
            if left is not None and left <= LAST_TRY:
                # The rounds under way have until the deadline; what failed stays failed.
                if rounds:
                    await asyncio.wait(rounds, timeout=left)
                    for done in [t for t in rounds if t.done()]:
                        rounds.discard(done)
                        done.result()
                return
            # The last round starts `LAST_TRY` before the deadline, not at it (cut at once).
            await _sleep_watching(delay if left is None else min(delay, left - LAST_TRY), rounds)
            rounds.add(asyncio.ensure_future(hub.discovery.rediscover()))
            delay = min(delay * 2, 30.0)
    finally:
        for t in rounds:  # (at the deadline: cut, as the vendor's answer would be)
            t.cancel()
        await asyncio.gather(*rounds, return_exceptions=True)


async def _sleep_watching(seconds: float, rounds: set[asyncio.Task[Any]]) -> None:
    """Sleep `seconds`, raising at once the failure of a round that ends meanwhile."""
    sleeping = asyncio.ensure_future(asyncio.sleep(seconds))
    try:
        while not sleeping.done():
            await asyncio.wait({sleeping, *rounds}, return_when=asyncio.FIRST_COMPLETED)
            for done in [t for t in rounds if t.done()]:
                rounds.discard(done)
                done.result()
    finally:
        sleeping.cancel()


def _left(end: float | None) -> float | None:
    """Seconds until `end` (a `time.monotonic()`), none below 0; None: no deadline."""
    return None if end is None else max(0.0, end - time.monotonic())


def _demo(fmt: str, out: TextIO, speed: float) -> int:
    from ._demo import run

    if fmt == "live" and not r.have_rich():
        fmt = "plain"
    if fmt != "ndjson":
        print(
            "scanhub demo: the vendor simulators on 127.0.0.1 (one per vendor); the AppSec+ "
            "source turns faulty after its scans are triggered.",
            file=out,
            flush=True,
        )
    with _View(fmt, out) as view:
        result = run(view.change, speed=speed)
    snap = result.snapshot
    view.final(snap.items, dict(snap.errors), "final: " + _counts_title(snap.items))
    if fmt != "ndjson":
        if result.ok:
            print(
                f"demo ran as designed in {time.monotonic() - view.started:.1f}s: "
                f"{len(result.expected)} items reached their designed final states.",
                file=out,
            )
        else:
            print("demo did NOT run as designed:", *result.mismatches, sep="\n  ", file=out)
    elif not result.ok:
        # stdout is a stream of JSON lines: why the exit code is 1 goes to stderr.
        print("! demo did NOT run as designed:", *result.mismatches, sep="\n  ", file=sys.stderr)
    return r.EXIT_OK if result.ok else r.EXIT_FAILED


async def _sim(args: argparse.Namespace, out: TextIO) -> int:
    written, created = None, False
    if args.write_config:
        # Opened before anything starts (a path that cannot be written is a usage error), and
        # not emptied until the text is there (a simulator that cannot listen leaves it be).
        created = not os.path.lexists(args.write_config)  # noqa: ASYNC240 - once, first
        try:
            written = open(args.write_config, "a", encoding="utf-8")  # noqa: ASYNC230, SIM115 - tiny, once
        except OSError as exc:
            raise ConfigError(
                f"sim: --write-config {args.write_config}: cannot write: {exc.strerror or exc}"
            ) from None
    try:
        return await _run_sims(args, out, written)
    except BaseException:
        if created and written is not None and not written.closed:
            os.unlink(args.write_config)  # nothing was written to it
        raise
    finally:
        if written is not None:
            written.close()


async def _run_sims(args: argparse.Namespace, out: TextIO, written: TextIO | None) -> int:
    from ._demo import running_sims

    listening = False
    try:
        async with running_sims(speed=args.speed, host=args.host, port=args.port) as sims:
            listening = True
            return await _sims_running(args, out, sims, written)
    except (OSError, OverflowError) as exc:
        if listening:
            raise
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OverflowError):
            why = "the simulators listen on consecutive ports from --port, one per vendor"
        raise ConfigError(f"sim: cannot listen on {args.host}:{args.port}: {why}") from None


async def _sims_running(
    args: argparse.Namespace, out: TextIO, sims: dict[str, Any], written: TextIO | None
) -> int:
    reg = registry()
    print("scanhub simulators running (Ctrl-C to stop):", file=out)
    for name, sim in sims.items():
        creds = ", ".join(f"{k}={v}" for k, v in sim.credentials().items())
        print(f"  {name:<15} {sim.base_url}   {creds}", file=out)
    seeded = {name: reg.get(name).load_demo().sim_seed(sim) for name, sim in sims.items()}
    print("seeded:", file=out)
    for name, items in seeded.items():
        for item in items:
            print(f"  {name:<15} {item.description}", file=out)
    text, env = _sim_config(sims, seeded)
    if written is not None:
        written.seek(0)
        written.truncate()
        written.write(text)
        written.close()
        print(
            f"wrote {args.write_config}; set the variables below, then "
            f"`scanhub watch -c {args.write_config}`:",
            file=out,
        )
    else:
        print("the variables README's quickstart and --write-config use:", file=out)
    for var, value in env.items():
        print(f"  export {var}={value}", file=out)
    print("scanhub sim: ready", file=out)  # a fixed last line, for scripts that wait
    out.flush()
    try:
        if args.duration is None:
            await asyncio.Event().wait()  # until Ctrl-C
        await asyncio.sleep(args.duration)
    except asyncio.CancelledError:
        pass
    return r.EXIT_OK


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    # A JSON string with only ASCII is a valid TOML basic string.
    return json.dumps(str(value))


def _sim_config(sims: dict[str, Any], seeded: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The text of a scanhub.toml for the running simulators, and the variables it names."""
    from ._demo import sim_config

    doc, env = sim_config(sims, seeded)
    lines = [
        "# Written by `scanhub sim`: sources and items of the running simulators.",
        *(f"{k} = {_toml_value(doc[k])}" for k in ("interval", "timeout")),
        "",
    ]
    for key in ("source", "track"):
        for table in doc[key]:
            lines += [f"[[{key}]]", *(f"{k} = {_toml_value(v)}" for k, v in table.items()), ""]
    return "\n".join(lines), env


#: The exit code of a command whose reader went away (`scanhub ... | head -1`): what a shell
#: reports for a process ended by SIGPIPE (128 + 13), as `cat` or `grep` would end.
EXIT_PIPE = 141

#: The exit code of an unexpected error, a defect of scanhub's (sysexits.h's EX_SOFTWARE): a
#: gate tells it from 1, an item that failed.
EXIT_INTERNAL = 70

#: The exit code of an error of the system's (sysexits.h's EX_IOERR): a disk full, an output
#: that cannot be written.
EXIT_IO = 74


def _systems(exc: BaseException) -> bool:
    """Whether `exc` is an error of the system's (an `OSError` with an errno: a disk full),
    not a timeout or a connection (a vendor's, which scanhub turns into its own errors)."""
    return (
        isinstance(exc, OSError)
        and exc.errno is not None
        and not isinstance(exc, TimeoutError | ConnectionError | ssl.SSLError | socket.gaierror)
        and not type(exc).__module__.startswith("aiohttp")
    )


#: How long, in seconds, `watch` waits for the tracks' lookups to end once its deadline came.
LOOKUPS_GRACE = 5.0
#: The least time, in seconds, before `watch`'s deadline that a round of retries starts with.
LAST_TRY = 1.0


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    except ScanhubError as exc:  # anything not turned into an exit code above
        print(f"scanhub: {exc}", file=sys.stderr)
        code = r.EXIT_UNREACHABLE
    except BrokenPipeError:
        # The reader closed the pipe: stop quietly, and keep Python from complaining when it
        # flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_PIPE
    except Exception as exc:
        if _systems(exc):  # a disk full, an output that cannot be written
            print(f"scanhub: {r.shown(str(exc))}", file=sys.stderr)
            code = EXIT_IO
        else:  # a defect of scanhub's: not 1, which a gate reads as "an item failed"
            traceback.print_exc()
            print(
                "scanhub: internal error (a defect of scanhub's, not of an item: please report"
                " it with the lines above)",
                file=sys.stderr,
            )
            code = EXIT_INTERNAL
    raise SystemExit(code)
