"""`newsingest demo`: serve the bundled demo web on 127.0.0.1, ingest it, print a summary and a query.

Article ids derive from URLs, and the demo's URLs from its clock and port, so both are pinned in the
warehouse (`_demo.json`) on the first run: a second `make demo` sees the same web and adds nothing.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

SAMPLE_SQL = """\
SELECT source,
       count(*)                                        AS articles,
       count(*) FILTER (WHERE extraction_status = 'ok') AS with_text,
       count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS copies_of_other_stories,
       count(DISTINCT cluster_id)                      AS stories
FROM articles
GROUP BY source
ORDER BY source"""

CLUSTER_SQL = """\
SELECT copies, sources, left(title, 60) AS first_title
FROM clusters WHERE copies > 1
ORDER BY copies DESC, first_title
LIMIT 5"""


def _pinned(warehouse: Path, port: int) -> dict:
    meta_path = warehouse / "_demo.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text(encoding="utf-8"))
    from pipeline.demo.web import DEFAULT_SEED, default_now

    return {"now": default_now().isoformat(), "port": port, "seed": DEFAULT_SEED}


def run_demo(warehouse: str, port: int = 8787, out=sys.stdout) -> int:
    from pipeline.cli import _print_summary, format_table
    from pipeline.demo.server import DemoServer
    from pipeline.demo.web import DemoWeb
    from pipeline.run import run_once
    from pipeline.settings import parse_config
    from pipeline.views import connect
    from pipeline.warehouse import Warehouse, WarehouseError, atomic_write_json

    try:
        wh = Warehouse(warehouse)
    except WarehouseError as exc:
        print(f"newsingest: error: {exc}", file=sys.stderr)
        return 1
    meta = _pinned(wh.root, port)
    web = DemoWeb(seed=meta["seed"], now=datetime.fromisoformat(meta["now"]))
    try:
        server = DemoServer(web, port=meta["port"])
    except OSError as exc:
        print(f"newsingest: error: cannot serve the demo web on 127.0.0.1:{meta['port']} ({exc.strerror}). "
              f"The demo warehouse {wh.root} was built with that port (its URLs, hence article ids, include it): "
              "stop whatever uses the port, or use another --warehouse with --port.", file=sys.stderr)
        return 1
    with server:
        atomic_write_json(wh.root / "_demo.json", meta)
        config_text = web.config_yaml(server.base_url)
        (wh.root / "demo-config.yaml").write_text(config_text, encoding="utf-8")
        out.write(f"demo web: {len(web.outlets)} made-up outlets, {len(web.feeds)} feeds, {len(web.pages)} article "
                  f"pages served at {server.base_url}/\n")
        summary = run_once(parse_config(config_text, origin="demo config"), wh.root, trigger="demo", progress=True,
                           lock_wait_s=30)
    _print_summary(summary, str(warehouse), out=out)
    con = connect(wh.root)
    for title, sql in (("articles per source", SAMPLE_SQL), ("stories with syndicated copies", CLUSTER_SQL)):
        table = con.sql(sql).to_arrow_table()
        out.write(f"\nsample DuckDB query ({title}):\n\n{sql}\n\n")
        out.write(format_table(table.column_names, table.to_pylist()))
    total = con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    out.write(
        f"\nthe warehouse holds {total} articles. Try:\n"
        f"  .venv/bin/newsingest query --warehouse {warehouse} \"SELECT title, source, published_at FROM articles_unique "
        "ORDER BY published_at DESC LIMIT 10\"\n"
        f"  duckdb {Path(warehouse) / 'newsingest.duckdb'}   (views: articles, articles_unique, clusters, runs, "
        "fetch_log, source_health)\n"
    )
    return 0


def serve_demo(port: int, write_config: str | None = None, *, live: bool = False, speed: float = 1.0,
               publication_log: str | None = None) -> int:
    from pipeline.demo.server import serve_forever

    return serve_forever(port, write_config=write_config, live=live, speed=speed, publication_log=publication_log)
