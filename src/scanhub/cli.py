"""The `scanhub` command: status, watch, demo, sim.

Exit codes (status, watch, demo): 0 all succeeded with no blocking verdict; 1 an item failed or
was cancelled; 2 configuration or usage error; 3 a verdict blocks (fail/error); 4 the watch
deadline passed with items unfinished; 5 some items or sources could not be read. The demo exits
0 when it ran as designed (its deliberately failing items are part of the show), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import _render as r
from ._config import Config, apply_tracks, build_clients, load_config
from ._convert import to_dict
from ._errors import ConfigError, ScanhubError
from ._hub import Change, ScanHub


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

    w = sub.add_parser("watch", help="follow everything configured until it finishes")
    w.add_argument("-c", "--config", default="scanhub.toml", help="default: scanhub.toml")
    w.add_argument(
        "--format",
        choices=("live", "plain", "ndjson"),
        default=None,
        help="live view (default on a terminal), plain lines, or ndjson Change events",
    )
    w.add_argument("--interval", type=float, default=None, help="seconds between polls")
    w.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")

    d = sub.add_parser("demo", help="run the four vendor simulators and a scenario end to end")
    d.add_argument("--format", choices=("live", "plain", "ndjson"), default=None)
    d.add_argument("--speed", type=float, default=1.0, help="simulated time speed (default 1)")

    s = sub.add_parser("sim", help="run the four vendor simulators standalone")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument(
        "--port",
        type=int,
        default=0,
        help="first port (IQ); the others follow (default: any free ports)",
    )
    s.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    s.add_argument(
        "--write-config",
        metavar="PATH",
        default=None,
        help="write a scanhub.toml that tracks the simulators' seeded items",
    )
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit code."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "status":
            return asyncio.run(_status(load_config(args.config), args.format, out))
        if args.command == "watch":
            config = load_config(args.config)
            fmt = args.format or ("live" if out.isatty() and r.have_rich() else "plain")
            return asyncio.run(_watch(config, fmt, out, args.interval, args.timeout))
        if args.command == "demo":
            fmt = args.format or ("live" if out.isatty() and r.have_rich() else "plain")
            return _demo(fmt, out, args.speed)
        return asyncio.run(_sim(args, out))
    except ConfigError as exc:
        print(f"scanhub: {exc}", file=sys.stderr)
        return r.EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


async def _status(config: Config, fmt: str, out: TextIO) -> int:
    async with ScanHub(build_clients(config), interval=config.interval) as hub:
        await apply_tracks(hub, config)
        snap = await hub.snapshot()
    if fmt == "json":
        print(json.dumps(to_dict(snap), indent=2, ensure_ascii=False), file=out)
    elif fmt == "ndjson":
        for item in snap.items:
            print(r.json_line(item), file=out)
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
    for source, err in errors.items():
        print(f"! {source}: {err.type}: {err.message}", file=out)


class _View:
    """Draws changes: a rich live table, plain lines, or ndjson."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.fmt, self.out = fmt, out
        self.live: Any = None
        self.hub: ScanHub | None = None
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
        if self.hub is None:
            return "starting…"
        title = f"{_counts_title(self.hub.items)}  ({time.monotonic() - self.started:.1f}s)"
        return r.rich_table(self.hub.items, self.hub.errors(), title)

    def change(self, change: Change, hub: ScanHub) -> None:
        self.hub = hub
        if self.fmt == "ndjson":
            print(r.json_line(change), file=self.out, flush=True)
        elif self.fmt == "plain":
            a = change.after
            was = change.before.lifecycle.value if change.before else "new"
            detail = f" — {a.message}" if a.message else ""
            print(
                f"{time.monotonic() - self.started:6.1f}s {a.source:<14} {a.kind:<9} "
                f"{a.id[:16]:<16} {was} → {a.lifecycle.value} [{a.vendor_status}] "
                f"verdict={a.verdict.value}{detail}",
                file=self.out,
                flush=True,
            )
        elif self.live is not None:
            self.live.refresh()

    def final(self, items: Sequence[Any], errors: dict[str, Any], title: str) -> None:
        if self.fmt != "ndjson":
            print(file=self.out)
            r.print_table(items, errors, self.out, title=title)


async def _watch(
    config: Config, fmt: str, out: TextIO, interval: float | None, limit: float | None
) -> int:
    if fmt == "live" and not r.have_rich():
        fmt = "plain"
    async with ScanHub(build_clients(config), interval=config.interval) as hub:
        await apply_tracks(hub, config)
        with _View(fmt, out) as view:
            async for change in hub.watch(
                interval=interval or config.interval, deadline=limit or config.timeout
            ):
                view.change(change, hub)
        items, errors = hub.items, hub.errors()
    view.final(items, errors, "final: " + _counts_title(items))
    _print_source_errors(hub.source_errors, out)
    return r.outcome(items, {**errors, **hub.source_errors}, expect_terminal=True)


def _demo(fmt: str, out: TextIO, speed: float) -> int:
    from ._demo import run

    if fmt == "live" and not r.have_rich():
        fmt = "plain"
    if fmt != "ndjson":
        print(
            "scanhub demo: four vendor simulators on 127.0.0.1; the AppSec+ source turns "
            "faulty after its scans are triggered.",
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
    return r.EXIT_OK if result.ok else r.EXIT_FAILED


async def _sim(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import running_sims

    async with running_sims(host=args.host, port=args.port) as sims:
        seeded = _seed(sims)
        print("scanhub simulators running (Ctrl-C to stop):", file=out)
        for name, sim in sims.items():
            creds = ", ".join(f"{k}={v}" for k, v in sim.credentials().items())
            print(f"  {name:<11} {sim.base_url}   {creds}", file=out)
        if args.write_config:
            Path(args.write_config).write_text(_sim_config(sims, seeded), encoding="utf-8")  # noqa: ASYNC240 - tiny, once
            print(
                f"wrote {args.write_config}; set the variables below, then "
                f"`scanhub watch -c {args.write_config}`:",
                file=out,
            )
            for line in _sim_env(sims):
                print(f"  export {line}", file=out)
        out.flush()
        try:
            if args.duration is None:
                await asyncio.Event().wait()  # until Ctrl-C
            await asyncio.sleep(args.duration)
        except asyncio.CancelledError:
            pass
    return r.EXIT_OK


def _seed(sims: dict[str, Any]) -> dict[str, Any]:
    iq, tf, asp, at = sims["iq"], sims["threadfix"], sims["appsecplus"], sims["apptrust"]
    app_id, _ = iq.add_application("webshop")
    at.add_version("webshop", "1.4.0")
    asp.add_application("app-12345")
    return {
        "iq": (app_id, iq.seed_promotions(app_id, 2, duration=20)),
        "threadfix": tf.seed_pending(6, 2, duration=25),
        "appsecplus": asp.seed_scans("app-12345", 3, duration=15),
        "apptrust": at.seed_promotions("webshop", "1.4.0", 2, duration=20),
    }


def _sim_config(sims: dict[str, Any], seeded: dict[str, Any]) -> str:
    lines = [
        "# Written by `scanhub sim`: sources and items of the running simulators.",
        "interval = 2",
        "timeout = 120",
        "",
    ]
    lines += [
        "[[source]]",
        'name = "iq"',
        'vendor = "iq"',
        f'base_url = "{sims["iq"].base_url}"',
        f'username = "{sims["iq"].username}"',
        'password_env = "SCANHUB_SIM_IQ_PASSWORD"',
        "",
    ]
    lines += [
        "[[source]]",
        'name = "threadfix"',
        'vendor = "threadfix"',
        f'base_url = "{sims["threadfix"].base_url}"',
        'api_key_env = "SCANHUB_SIM_THREADFIX_KEY"',
        "",
    ]
    lines += [
        "[[source]]",
        'name = "appsecplus"',
        'vendor = "appsecplus"',
        f'base_url = "{sims["appsecplus"].base_url}"',
        'token_env = "SCANHUB_SIM_APPSECPLUS_TOKEN"',
        "",
    ]
    lines += [
        "[[source]]",
        'name = "apptrust"',
        'vendor = "apptrust"',
        f'base_url = "{sims["apptrust"].base_url}"',
        'token_env = "SCANHUB_SIM_APPTRUST_TOKEN"',
        "",
    ]
    app_id, status_ids = seeded["iq"]
    for sid in status_ids:
        lines += [
            "[[track]]",
            'source = "iq"',
            f'application_id = "{app_id}"',
            f'status_id = "{sid}"',
            "",
        ]
    for pid in seeded["threadfix"]:
        lines += [
            "[[track]]",
            'source = "threadfix"',
            "application_id = 6",
            f"pending_scan_id = {pid}",
            "",
        ]
    lines += ["[[track]]", 'source = "appsecplus"', 'application_id = "app-12345"', ""]
    lines += [
        "[[track]]",
        'source = "apptrust"',
        'application_key = "webshop"',
        'version = "1.4.0"',
        "",
    ]
    return "\n".join(lines)


def _sim_env(sims: dict[str, Any]) -> list[str]:
    return [
        f"SCANHUB_SIM_IQ_PASSWORD={sims['iq'].password}",
        f"SCANHUB_SIM_THREADFIX_KEY={sims['threadfix'].api_key}",
        f"SCANHUB_SIM_APPSECPLUS_TOKEN={sims['appsecplus'].token}",
        f"SCANHUB_SIM_APPTRUST_TOKEN={sims['apptrust'].token}",
    ]


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    except ScanhubError as exc:  # anything not turned into an exit code above
        print(f"scanhub: {exc}", file=sys.stderr)
        code = r.EXIT_UNREACHABLE
    raise SystemExit(code)
