"""`newsingest` command line: the public contract that tests, benchmarks and users rely on.

Imports are lazy: `newsingest dedup --jsonl` must start fast, and `--help` must not load trafilatura.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

EXIT_OK = 0  # done (a run with failed feeds or pages still exits 0: they are recorded and retried)
EXIT_FAILED = 1  # the command could not do its work (bad config, locked or unusable warehouse, ...)
EXIT_USAGE = 2  # wrong arguments or input format

EXIT_CODES_HELP = """exit codes:
  0  done; a run that completed exits 0 even when feeds or pages failed (they are recorded and retried)
  1  could not run: invalid config, empty feed list, missing/unwritable/locked warehouse, failed query
  2  usage error: unknown option, bad argument, malformed input lines
  130 interrupted (Ctrl-C)"""

_LOG_JSON = False  # set by _setup_logging: errors then go out as JSON lines like every other log line


def _die(message: str, code: int = EXIT_FAILED) -> int:
    if _LOG_JSON:
        from datetime import UTC, datetime

        print(json.dumps({"ts": datetime.now(UTC).isoformat(timespec="seconds"), "level": "ERROR",
                          "logger": "newsingest", "msg": message, "exit_code": code}, ensure_ascii=False),
              file=sys.stderr)
    else:
        print(f"newsingest: error: {message}", file=sys.stderr)
    return code


def _read_jsonl(stream: TextIO, what: str) -> Iterator[dict[str, Any]]:
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(_die(f"stdin line {n}: not JSON ({exc.msg}); {what} expects one JSON object per line",
                                  EXIT_USAGE)) from None
        if not isinstance(obj, dict) or "id" not in obj:
            raise SystemExit(_die(f"stdin line {n}: expected an object with an \"id\" field", EXIT_USAGE))
        yield obj


def _write_jsonl(rows, out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, default=str))
        out.write("\n")
    out.flush()


def log_format() -> str:
    """`json` when stderr is not a terminal or we run under Airflow, else `text`; NEWSINGEST_LOG_FORMAT wins."""
    forced = os.environ.get("NEWSINGEST_LOG_FORMAT", "").strip().lower()
    if forced in ("json", "text"):
        return forced
    if os.environ.get("AIRFLOW_CTX_DAG_ID") or not sys.stderr.isatty():
        return "json"
    return "text"


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any `extra={...}` fields (feed, url, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _setup_logging(verbose: bool) -> None:
    global _LOG_JSON
    level = logging.DEBUG if verbose else logging.INFO
    _LOG_JSON = log_format() == "json"
    if not _LOG_JSON:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    else:  # machine-readable lines for Airflow, systemd and pipes
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLines())
        logging.basicConfig(level=level, handlers=[handler])
    # Per-request lines from the HTTP client and per-page notes from trafilatura drown the signal: our own
    # fetch log records every request with its outcome.
    for noisy in ("aiohttp", "trafilatura", "htmldate", "courlan", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


# ------------------------------------------------------------------------------------------------ commands


def _checked_config(path: str, *, need_feeds: bool):
    """The validated config, or an exit code after a message that lists every problem with its line."""
    from pipeline.configcheck import NO_FEEDS, check_config_file

    result = check_config_file(path)
    for w in result.warnings:
        logging.getLogger("newsingest.config").warning(w.format(result.origin))
    errors = [p for p in result.errors if need_feeds or p.code != NO_FEEDS]
    if errors:
        if len(errors) == 1 and errors[0].code in ("missing_file", "unreadable_file", NO_FEEDS):
            return _die(errors[0].format(result.origin))
        lines = "\n".join("  " + p.format(result.origin) for p in errors)
        return _die(f"config {path} has {len(errors)} problem{'s' if len(errors) > 1 else ''}; fix "
                    f"{'them' if len(errors) > 1 else 'it'} (then `newsingest check-config {path}`):\n{lines}")
    return result.validated


def warehouse_error(exc: Exception, *, waited: float = 0.0) -> int:
    """Exit after a warehouse error; a refused lock gets the --wait hint when the caller did not wait."""
    from pipeline.warehouse import WarehouseLocked

    hint = "; or pass --wait SECONDS to queue behind it" if isinstance(exc, WarehouseLocked) and not waited else ""
    return _die(f"{exc}{hint}")


def warehouse_problem(path: str | os.PathLike[str], *, writable: bool = True) -> str | None:
    """Why the warehouse at `path` cannot be used, checked before any fetch; None when it looks usable.
    Object-storage warehouses (s3://) are checked by the warehouse itself when it opens."""
    if str(path).startswith("s3://"):
        return None
    root = Path(path).expanduser().absolute()
    who = _whoami()
    if root.exists():
        if not root.is_dir():
            return (f"warehouse path {root} is a file, not a directory; pass --warehouse with a directory "
                    "(or move the file away)")
        if not os.access(root, os.R_OK | os.X_OK):
            return (f"warehouse {root} is not readable by {who}; fix its permissions (chmod/chown) "
                    "or run as the user that owns it")
        if writable:
            subdirs = ("_log", "_txn", "_state", "_staging", "_cache", "articles", "fetch_log", "raw_pages",
                       "dedup_index")
            for sub in (root, *(root / n for n in subdirs)):
                if sub.exists() and not os.access(sub, os.W_OK | os.X_OK):
                    return (f"warehouse {root} is not writable by {who} ({sub} is read-only); fix its "
                            "permissions (chmod/chown) or run as the user that owns it")
            lock = root / "_lock"
            if lock.exists() and not os.access(lock, os.R_OK | os.W_OK):
                return f"the lock file {lock} is not writable by {who}; fix its permissions or remove it"
        return None
    if not writable:
        return f"no warehouse at {root}; run `newsingest run --config FILE --warehouse {path}` (or `make demo`) first"
    parent = root.parent
    if not parent.is_dir():
        return (f"cannot create the warehouse {root}: its parent directory {parent} does not exist; create it "
                f"(mkdir -p {parent}) or fix --warehouse")
    if not os.access(parent, os.W_OK | os.X_OK):
        return (f"cannot create the warehouse {root}: {parent} is not writable by {who}; choose another "
                "--warehouse or fix the permissions")
    return None


def _whoami() -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(os.geteuid()).pw_name}"
    except KeyError:
        return f"uid {os.geteuid()}"


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.run import run_once
    from pipeline.warehouse import WarehouseError, WarehouseLocked

    config = _checked_config(args.config, need_feeds=True)
    if isinstance(config, int):
        return config
    if not config.active_feeds:
        return _die(f"{args.config}: every feed has enabled: false; enable at least one, nothing to ingest")
    problem = warehouse_problem(args.warehouse)
    if problem:
        return _die(problem)
    try:
        summary = run_once(config, args.warehouse, run_id=args.run_id, progress=not args.quiet,
                           lock_wait_s=args.wait, all_feeds=args.all)
    except WarehouseLocked as exc:
        return warehouse_error(exc, waited=args.wait)
    except WarehouseError as exc:
        return _die(str(exc))
    except OSError as exc:
        return _die(f"the run stopped on a file-system error: {exc}; nothing of this run is visible (a run "
                    "becomes visible only when it commits): fix the cause (disk space, permissions) and run again")
    _print_summary(summary, args.warehouse, as_json=args.json)
    return EXIT_OK


def _print_summary(summary, warehouse: str, *, as_json: bool = False, out: TextIO = sys.stdout) -> None:
    if as_json:
        from dataclasses import asdict

        out.write(json.dumps(asdict(summary), default=str) + "\n")
        return
    if summary.already_committed:
        out.write(f"run {summary.run_id} was already committed; nothing to do\n")
        return
    extra_feeds = "".join(f", {n} {what}" for n, what in ((summary.feeds_deferred, "deferred by their host"),
                                                          (summary.feeds_not_due, "not due yet")) if n)
    out.write(
        f"run {summary.run_id} committed to {warehouse}\n"
        f"  feeds     {summary.feeds} ({summary.feeds_ok} fetched, {summary.feeds_not_modified} not modified, "
        f"{summary.feeds_failed} failed{extra_feeds})\n"
        f"  items     {summary.items} in feeds, {summary.new_items} new\n"
        f"  pages     {summary.pages_fetched} fetched, {summary.pages_failed} failed "
        f"({summary.retries_pending} waiting for a retry, {summary.given_up} given up)\n"
        f"  articles  {summary.articles_written} written, {summary.articles_ok} with text, "
        f"{summary.not_article} without (kept with feed title and summary)\n"
        f"  dedup     {summary.duplicates} duplicates found ({summary.exact_duplicates} exact, "
        f"{summary.near_duplicates} near)\n"
        f"  time      {summary.elapsed_s:.1f} s\n"
    )
    if summary.stages:
        from pipeline.metering import format_stages

        out.write(f"  stages    {format_stages(summary.stages)}\n")
    if summary.failures:
        out.write(f"  failures  {len(summary.failures)} (recorded in the fetch_log view; retried on later runs):\n")
        for line in summary.failures[:10]:
            out.write(f"    - {line}\n")
        if len(summary.failures) > 10:
            out.write(f"    ... and {len(summary.failures) - 10} more\n")
        out.write("  what to do: nothing for one-off failures (they are retried on later runs); for a feed that keeps "
                  "failing, open its URL (curl -I URL) and fix or disable it in the config. "
                  f"`newsingest doctor --warehouse {warehouse}` lists feeds failing for a day or more.\n")
    for w in summary.warnings:
        out.write(f"  warning   {w}\n")


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.extract import extract_jsonl, extract_page, extracted_to_dict

    if args.jsonl:
        _write_jsonl(extract_jsonl(_read_jsonl(sys.stdin, "extract --jsonl")), sys.stdout)
        return EXIT_OK
    if args.file in (None, "-"):
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            return _die(f"cannot read {args.file}: {exc.strerror}")
    result = extracted_to_dict(extract_page(data, args.url))
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=None if args.compact else 2, default=str) + "\n")
    return EXIT_OK


def cmd_clean(args: argparse.Namespace) -> int:
    from pipeline.clean import clean_documents

    if not args.jsonl:
        from pipeline.clean import clean_text

        result = clean_text(sys.stdin.read())
        sys.stdout.write(result.text + "\n")
        return EXIT_OK
    _write_jsonl(clean_documents(_read_jsonl(sys.stdin, "clean --jsonl")), sys.stdout)
    return EXIT_OK


def cmd_dedup(args: argparse.Namespace) -> int:
    from pipeline.dedup import dedup_documents

    settings = None
    if args.config:
        from pipeline.settings import ConfigError, load_config

        try:
            settings = load_config(args.config).dedup
        except ConfigError as exc:
            return _die(str(exc))
    _write_jsonl(dedup_documents(_read_jsonl(sys.stdin, "dedup --jsonl"), settings), sys.stdout)
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    from pipeline.views import connect
    from pipeline.warehouse import WarehouseError

    root = args.warehouse
    if "://" not in root and not Path(root).is_dir():  # s3:// warehouses are checked by connect()
        return _die(f"no warehouse at {root} (run `newsingest run` or `make demo` first)")
    try:
        con = connect(root)
    except WarehouseError as exc:
        return _die(str(exc))
    try:
        rel = con.sql(args.sql)
    except Exception as exc:
        return _die(f"query failed: {str(exc).splitlines()[0]}; fix the SQL (views: articles, articles_unique, "
                    "clusters, runs, fetch_log, source_health; columns in docs/consumer-guide.md)")
    if rel is None:
        return EXIT_OK
    table = rel.to_arrow_table()
    return _write_table(table, args.format, args.out)


def _write_table(table, fmt: str, out_path: str | None) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if not out_path:
            return _die("--format parquet needs --out FILE", EXIT_USAGE)
        pq.write_table(table, out_path, compression="zstd")
        return EXIT_OK
    out = open(out_path, "w", encoding="utf-8", newline="") if out_path else sys.stdout
    try:
        rows = table.to_pylist()
        if fmt == "json":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif fmt == "csv":
            import csv

            w = csv.writer(out)
            w.writerow(table.column_names)
            for row in rows:
                w.writerow(["" if v is None else (json.dumps(v, default=str) if isinstance(v, list | dict) else v)
                            for v in row.values()])
        else:
            out.write(format_table(table.column_names, rows))
    finally:
        if out_path:
            out.close()
    return EXIT_OK


def format_table(columns: list[str], rows: list[dict[str, Any]], max_width: int = 60) -> str:
    def cell(v: Any) -> str:
        s = "" if v is None else str(v)
        s = s.replace("\n", " ")
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells)
    return f"{line}\n{sep}\n{body}\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"


def cmd_check_config(args: argparse.Namespace) -> int:
    """Every problem on its own `FILE:LINE:COL: path: message` line (as compilers do), on stdout."""
    from pipeline.configcheck import check_config_file, format_path

    result = check_config_file(args.config)
    if args.json:
        for p in result.problems:
            print(json.dumps({"file": result.origin, "line": p.line, "column": p.column, "severity": p.severity,
                              "code": p.code, "path": format_path(p.path), "message": p.message}, ensure_ascii=False))
    elif result.problems:
        print(result.report())
    errors, warnings = len(result.errors), len(result.warnings)
    if errors:
        if not args.json:
            print(f"{args.config}: {errors} error{'s' if errors != 1 else ''}, {warnings} "
                  f"warning{'s' if warnings != 1 else ''}; nothing was fetched")
        return EXIT_FAILED
    config = result.config
    if not args.json:
        print(f"{args.config}: ok ({len(config.active_feeds)} active feeds of {len(config.feeds)}"
              f"{f', {warnings} warning' + ('s' if warnings != 1 else '') if warnings else ''})")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo.runner import run_demo, serve_demo

    if args.serve is not None:
        return serve_demo(args.serve, write_config=args.write_config, live=args.live, speed=args.speed,
                          publication_log=args.publication_log)
    return run_demo(args.warehouse, port=args.port)


# ------------------------------------------------------------------------------------------------ parser


def build_parser(*, feature_modules: bool = True) -> argparse.ArgumentParser:
    """The whole command line; `feature_modules=False` leaves out the subcommands of COMMAND_MODULES (their
    imports would slow the start of the stateless `dedup` and `clean` commands)."""
    from pipeline import __version__

    p = argparse.ArgumentParser(prog="newsingest", description="Streaming news ingestion: feeds to Parquet and DuckDB.",
                                epilog=EXIT_CODES_HELP + "\n\nlogs: text on a terminal, JSON lines otherwise "
                                "(and under Airflow); NEWSINGEST_LOG_FORMAT=text|json overrides",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"newsingest {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (also accepted after the command)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def warehouse_arg(sp: argparse.ArgumentParser) -> None:
        # resolved in main(): importing pipeline.settings (pydantic) here would slow every command's start
        sp.add_argument("--warehouse", default=None,
                        help="warehouse directory (default: $NEWSINGEST_WAREHOUSE or ./warehouse)")

    sp = sub.add_parser("run", help="one incremental run: feeds -> pages -> text -> dedup -> Parquet")
    sp.add_argument("--config", required=True, help="YAML config with feeds: and fetch:")
    warehouse_arg(sp)
    sp.add_argument("--run-id", help="run identity (re-running a committed id is a no-op)")
    sp.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for the warehouse lock")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sp.add_argument("--all", action="store_true",
                    help="poll every feed, not only those due (their adaptive interval ends before the next run)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("extract", help="HTML page -> JSON with main text and metadata")
    sp.add_argument("file", nargs="?", help="HTML file, or - for stdin")
    sp.add_argument("--url", help="the page's URL (resolves links, dates in the URL)")
    sp.add_argument("--jsonl", action="store_true", help='stdin lines {"id","html","url"?} -> JSON lines')
    sp.add_argument("--compact", action="store_true", help="one-line JSON")
    sp.set_defaults(func=cmd_extract)

    sp = sub.add_parser("clean", help="remove boilerplate from extracted text")
    sp.add_argument("--jsonl", action="store_true", help='stdin lines {"id","text","source"?} -> JSON lines')
    sp.set_defaults(func=cmd_clean)

    sp = sub.add_parser("dedup", help="cluster syndicated copies")
    sp.add_argument("--jsonl", action="store_true", required=True,
                    help='stdin lines {"id","text","url"?,"published_at"?,"source"?} -> {"id","cluster","duplicate_of"}')
    sp.add_argument("--config", help="take dedup settings from this config")
    sp.set_defaults(func=cmd_dedup)

    sp = sub.add_parser("query", help="SQL over the warehouse views (articles, articles_unique, clusters, runs, ...)")
    warehouse_arg(sp)
    sp.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    sp.add_argument("--out", help="write to this file instead of stdout")
    sp.add_argument("sql")
    sp.set_defaults(func=cmd_query)

    sp = sub.add_parser("check-config", help="validate a config file without fetching anything",
                        description="Validate a config: every problem on a FILE:LINE:COL line (unknown keys with a "
                        "suggestion, repeated keys, bad URLs, invalid values, repeated feed names, empty feed list). "
                        "Exit 0 when usable (warnings allowed), 1 when not.")
    sp.add_argument("config")
    sp.add_argument("--json", action="store_true", help="one JSON object per problem")
    sp.set_defaults(func=cmd_check_config)

    sp = sub.add_parser("demo", help="serve the bundled offline demo web on 127.0.0.1 and ingest it")
    warehouse_arg(sp)
    sp.add_argument("--port", type=int, default=8787, help="port of the demo web during the ingest (default 8787)")
    sp.add_argument("--serve", type=int, metavar="PORT", help="only serve the demo web on 127.0.0.1:PORT until stopped")
    sp.add_argument("--write-config", metavar="FILE", help="with --serve: write the config that ingests the demo web")
    sp.add_argument("--live", action="store_true", help="with --serve: outlets keep publishing, each feed at its own "
                    "rate (busy, steady, bursty, idle, flaky); the config is for `newsingest watch`")
    sp.add_argument("--speed", type=float, default=1.0, help="with --live: compress the publication schedule")
    sp.add_argument("--publication-log", metavar="FILE", help="with --live: append each publication (JSON lines)")
    sp.set_defaults(func=cmd_demo)

    # Commands that live with their feature: each module has `register(subparsers)` and keeps its
    # top level light (heavy imports inside the command functions).
    import importlib

    for name in COMMAND_MODULES if feature_modules else ():
        importlib.import_module(name).register(sub)
    # `newsingest run -v` as well as `newsingest -v run`.
    for sp in sub.choices.values():
        with contextlib.suppress(argparse.ArgumentError):
            sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    return p


# One line per feature module that contributes subcommands.
COMMAND_MODULES: tuple[str, ...] = (
    "pipeline.maintenance",
    "pipeline.watch",
    "pipeline.doctor",
    "pipeline.report",
)


# Built-in commands that other projects run in loops over their datasets: they start without loading the
# feature modules (and pydantic with them).
LIGHT_COMMANDS = frozenset({"dedup", "clean"})


def main(argv: list[str] | None = None) -> int:
    from pipeline import _malloc

    _malloc.use_system_arrow_pool()  # before pyarrow is imported: its C++ default pool is chosen once
    _malloc.single_threaded_blas()  # before numpy is imported
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(feature_modules=command not in LIGHT_COMMANDS)
    args = parser.parse_args(argv)
    if getattr(args, "warehouse", "") is None:
        from pipeline.settings import default_warehouse

        args.warehouse = default_warehouse()
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _die("interrupted", 130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug, not bad input: say where, keep the traceback for --verbose
        logging.getLogger("newsingest").debug("unexpected error", exc_info=True)
        return _die(f"`{args.command}` stopped on an unexpected {type(exc).__name__}: {exc}. This is a bug: rerun "
                    "with --verbose for the traceback and report it")


def entry() -> NoReturn:
    """The `newsingest` command (and `python -m pipeline.cli`): `main`, then the process ends without the
    interpreter's teardown (`exit_process`)."""
    exit_process(main())


def exit_process(code: int) -> NoReturn:
    """End the process with `code` as `sys.exit` would, less the interpreter's teardown: freeing every module
    and object one by one took 0.09-0.14 s of CPU after a run, its last serial step. What an exit must do still
    happens: the atexit functions (temporary directories' finalizers, multiprocessing's joins, logging's flush)
    and the flush of stdout and stderr. With a non-daemon thread still alive (an executor not shut down), the
    interpreter's own exit, which waits for it; also under a profiler or a tracer (`python -m cProfile -m
    pipeline.cli`), which writes its results after the code returns."""
    main_thread = threading.main_thread()
    if (sys.getprofile() is not None or sys.gettrace() is not None
            or any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate())):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader gone, a stream closed: nothing left to deliver
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
