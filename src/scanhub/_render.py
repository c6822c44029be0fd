"""Turning items into rows, tables and exit codes for the `scanhub` command.

rich (the `cli` extra) draws the tables and the live view; without it a plain-text table is
printed, so `--format json` / `ndjson` and the plain table work on a bare install.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from ._changes import ItemError
from ._convert import dumps, to_dict
from ._model import Item, Lifecycle, Promotion

# Exit codes of `scanhub status`, `watch` and `demo` (README "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_BLOCKED = 3
EXIT_TIMEOUT = 4
EXIT_UNREACHABLE = 5

COLUMNS = ("source", "kind", "application", "id", "lifecycle", "vendor status", "verdict", "detail")
_STYLE = {
    Lifecycle.QUEUED: "cyan",
    Lifecycle.RUNNING: "blue",
    Lifecycle.SUCCEEDED: "green",
    Lifecycle.FAILED: "red",
    Lifecycle.CANCELLED: "magenta",
    Lifecycle.EXPIRED: "magenta",
    Lifecycle.UNKNOWN: "yellow",
}
_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red"}


def outcome(
    items: Sequence[Item],
    errors: Mapping[str, ItemError],
    *,
    expect_terminal: bool,
) -> int:
    """The exit code for a final set of items: failed/cancelled (1) before a track the user
    must mend (2: a `ConfigError`, such as a report-task.txt that is not there or a track
    naming the wrong application) before a blocking verdict (3) before unfinished at the
    deadline (4, also a track whose lookup the deadline cut) before unreadable (5: errors, or
    an item the vendor forgot before it finished, `expired`); else 0."""
    if any(i.lifecycle in (Lifecycle.FAILED, Lifecycle.CANCELLED) for i in items):
        return EXIT_FAILED
    if any(getattr(e, "type", None) == "ConfigError" for e in errors.values()):
        return EXIT_CONFIG
    if any(i.verdict.blocks for i in items):
        return EXIT_BLOCKED
    # Unfinished at the deadline: not an item whose last poll failed for a reason no retry
    # mends (the watch ends on those: it is unreadable, 5, not late).
    stuck = {k for k, e in errors.items() if getattr(e, "permanent", False)}
    if expect_terminal and not all(i.lifecycle.is_terminal or i.key in stuck for i in items):
        return EXIT_TIMEOUT
    # A track whose lookup the deadline cut: unfinished at the deadline too.
    if expect_terminal and any(
        getattr(e, "type", None) == "WaitTimeoutError" for e in errors.values()
    ):
        return EXIT_TIMEOUT
    if errors or any(i.lifecycle is Lifecycle.EXPIRED for i in items):
        return EXIT_UNREACHABLE
    return EXIT_OK


#: The width of the table's detail column; a longer error is printed whole below the table.
DETAIL_WIDTH = 60


def shown(text: str) -> str:
    """Text a vendor (or a receiver) sent, as text on a terminal: every control or other
    non-printable character (ESC of a colour or title sequence, BEL, CR that would overwrite
    the line, bidirectional overrides) as its Python escape, never interpreted."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(text: str | None, width: int = DETAIL_WIDTH) -> str:
    if not text:
        return ""
    text = shown(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def _mid(ident: str) -> str:
    # Long opaque ids (IQ's 32 hex digits) keep their ends, which is how people compare them.
    ident = shown(ident)
    return ident if len(ident) <= 14 else ident[:6] + "…" + ident[-6:]


def _detail(item: Item, error: ItemError | None) -> str:
    return f"⚠ {error.type}: {error.message}" if error else (item.message or "")


def cut_errors(items: Iterable[Item], errors: Mapping[str, ItemError]) -> list[str]:
    """`! <source> <application>/<id>: <type>: <message>` for each item error the table's
    detail column cuts (it shows DETAIL_WIDTH characters): no error is only ever seen cut."""
    out = []
    for item in items:
        error = errors.get(item.key)
        if error is not None and len(_short(_detail(item, error), 10**9)) > DETAIL_WIDTH:
            said = " ".join(error.message.split())
            out.append(shown(f"! {item.source} {item.application}/{item.id}: {error.type}: {said}"))
    return out


def row(item: Item, error: ItemError | None = None) -> list[str]:
    """One table row for an item."""
    ident = _mid(item.id)
    app = item.application_name or _mid(item.application_id)
    if isinstance(item, Promotion):
        if item.version:
            app = f"{app}@{item.version}"
        if item.target_stage:
            app = f"{app} → {item.target_stage}"
    elif item.scan_type:
        app = f"{app} ({item.scan_type})"
    detail = _detail(item, error)
    return [
        shown(item.source),
        item.kind,
        _short(app, 34),
        ident,
        item.lifecycle.value,
        _short(item.vendor_status, 24),
        item.verdict.value,
        _short(detail),
    ]


def rich_table(items: Iterable[Item], errors: Mapping[str, ItemError], title: str = "") -> Any:
    """A rich Table of the items (needs the `cli` extra)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, title_justify="left", expand=False)
    for col in COLUMNS:
        table.add_column(
            col, overflow="fold" if col == "detail" else "ellipsis", no_wrap=col != "detail"
        )
    for item in items:
        # Text, not markup: a vendor's "[link=...]" or "[/]" is shown as it was sent.
        cells = [Text(c) for c in row(item, errors.get(item.key))]
        cells[4].stylize(_STYLE[item.lifecycle])
        if item.verdict.value in _VERDICT_STYLE:
            cells[6].stylize(_VERDICT_STYLE[item.verdict.value])
        table.add_row(*cells)
    return table


def plain_table(items: Iterable[Item], errors: Mapping[str, ItemError]) -> str:
    """The same table as plain text."""
    rows = [list(COLUMNS)] + [row(i, errors.get(i.key)) for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def have_rich() -> bool:
    """True when the `cli` extra (rich) is installed."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def print_table(
    items: Sequence[Item], errors: Mapping[str, ItemError], out: TextIO, title: str = ""
) -> None:
    """Print the table with rich when available, else as plain text."""
    if have_rich():
        from rich.console import Console

        width = None if out.isatty() else 150
        Console(file=out, width=width).print(rich_table(items, errors, title))
    else:
        if title:
            print(title, file=out)
        print(plain_table(items, errors), file=out)
    for line in cut_errors(items, errors):
        print(line, file=out)


def json_line(obj: Any) -> str:
    """One compact JSON document (the `to_dict` schema)."""
    return dumps(to_dict(obj), separators=(",", ":"), ensure_ascii=False)
