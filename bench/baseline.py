"""The simplest thing a user could write instead of `scanhub serve`: 30 lines of aiohttp and
stdlib sqlite3 over scanhub's own state file, answering a page of items ordered by key.

Run: `python -m bench.baseline STATE.db [--port 0]`; the first line printed is its URL.
Issue 19 measures scanhub's reads against this one's first page, in the same run.
"""

import argparse
import asyncio
import contextlib
import json
import sqlite3

from aiohttp import web

COLUMNS = "key, lifecycle, verdict, item, origin, observed_at, changed_at"


def make_app(path: str) -> web.Application:
    db = sqlite3.connect(path, check_same_thread=False)

    async def items(request: web.Request) -> web.Response:
        q = request.query
        where, args = ["key > ?"], [q.get("after", "")]
        if "lifecycle" in q:
            where.append("lifecycle = ?")
            args.append(q["lifecycle"])
        if "q" in q:  # what a user writes without a text index: a substring of the item
            where.append("instr(lower(item), ?) > 0")
            args.append(q["q"].lower())
        sql = f"SELECT {COLUMNS} FROM items WHERE {' AND '.join(where)} ORDER BY key LIMIT ?"
        rows = db.execute(sql, [*args, int(q.get("limit", "100"))]).fetchall()
        names = COLUMNS.split(", ")
        out = [dict(zip(names, row, strict=True)) for row in rows]
        for entry in out:
            entry["item"] = json.loads(entry["item"])
        after = out[-1]["key"] if out else None
        return web.Response(
            text=json.dumps({"items": out, "next_after": after}), content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/items", items)
    return app


async def serve(path: str, port: int) -> None:
    runner = web.AppRunner(make_app(path), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()  # until the benchmark terminates it


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.baseline")
    ap.add_argument("state")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.state, args.port))


if __name__ == "__main__":
    main()
