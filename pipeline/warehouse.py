"""The warehouse: hive-partitioned Parquet datasets, a run manifest, committed state, and DuckDB views.

Commit protocol (as dlt's load packages): every row carries its `run_id`; data files are written under a
temporary name and renamed into place; the run's manifest entry `_runs/<run_id>.json` is written last.
Readers (the DuckDB views, `export`) only see rows whose run is in the manifest, so a crash at any point
leaves nothing half-visible, and a re-run of the same run id rewrites the same file names: no duplicates.

Layout under the warehouse root::

    articles/published_date=YYYY-MM-DD/part-<run_id>-<n>.parquet
    fetch_log/run_date=YYYY-MM-DD/part-<run_id>-<n>.parquet
    raw_pages/fetch_date=YYYY-MM-DD/part-<run_id>-<n>.parquet
    dedup_index/part-<run_id>.parquet        rolling near-duplicate index entries of each run
    _state/<run_id>.json                      feed validators, pending retries, site templates
    _state/seen-<run_id>.u64                  article ids already stored (sorted uint64)
    _runs/<run_id>.json                       the manifest: one entry per committed run, written last
    _staging/<run_id>/...                     task outputs of a run in progress (Airflow tasks)
    newsingest.duckdb                         views for `duckdb warehouse/newsingest.duckdb`
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

DB_FILE = "newsingest.duckdb"
STATE_KEEP = 3  # committed state generations kept (older ones are garbage once a newer run committed)


class WarehouseError(Exception):
    """The warehouse cannot be used; the message says why and what to do."""


class WarehouseLocked(WarehouseError):
    pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, ensure_ascii=False, indent=1, default=_json_default).encode("utf-8"))


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, set | frozenset):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet_atomic(path: Path, table: Any, *, row_group_size: int = 64 * 1024) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size, write_statistics=True)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(slots=True)
class RunEntry:
    run_id: str
    started_at: str
    committed_at: str
    counts: dict[str, int]
    files: list[str]
    state_file: str | None
    seen_file: str | None
    config_feeds: int = 0
    trigger: str = "cli"


class Warehouse:
    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        if self.root.exists() and not self.root.is_dir():
            raise WarehouseError(f"warehouse path {self.root} exists and is not a directory")
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                (self.root / "_runs").mkdir(exist_ok=True)
            except OSError as exc:
                raise WarehouseError(f"cannot create the warehouse at {self.root}: {exc.strerror}") from exc
            if not os.access(self.root, os.W_OK):
                raise WarehouseError(f"warehouse {self.root} is not writable by this user")
        elif not self.root.is_dir():
            raise WarehouseError(f"no warehouse at {self.root} (run `newsingest run` or `make demo` first)")

    # ------------------------------------------------------------------ lock

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
        """One writer at a time. Waits up to `wait_s`, then refuses with who holds the lock."""
        path = self.root / "_lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        acquired = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                        raise WarehouseLocked(
                            f"warehouse {self.root} is locked by {holder}; wait for it to finish "
                            "(a crashed holder releases the lock when its process ends)"
                        ) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{owner} (pid {os.getpid()} on {socket.gethostname()}, since "
                          f"{datetime.now(UTC).isoformat(timespec='seconds')})".encode(), 0)
            yield
        finally:
            if acquired:  # a refused writer must not erase the holder's description
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the flock

    def lock_holder(self) -> str | None:
        path = self.root / "_lock"
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            return None
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ manifest

    def committed_runs(self) -> list[dict[str, Any]]:
        runs = []
        for p in sorted((self.root / "_runs").glob("*.json")):
            try:
                runs.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue  # a manifest entry is written atomically; unreadable means foreign junk
        runs.sort(key=lambda r: (r.get("committed_at", ""), r.get("run_id", "")))
        return runs

    def is_committed(self, run_id: str) -> bool:
        return (self.root / "_runs" / f"{run_id}.json").exists()

    def commit(self, entry: RunEntry) -> None:
        """The commit point: after this rename the run's rows are visible; before it, none are."""
        atomic_write_json(self.root / "_runs" / f"{entry.run_id}.json", {
            "run_id": entry.run_id,
            "started_at": entry.started_at,
            "committed_at": entry.committed_at,
            "trigger": entry.trigger,
            "feeds": entry.config_feeds,
            "counts": entry.counts,
            "files": entry.files,
            "state_file": entry.state_file,
            "seen_file": entry.seen_file,
        })

    # ------------------------------------------------------------------ state

    def last_run(self) -> dict[str, Any] | None:
        runs = [r for r in self.committed_runs() if r.get("state_file")]
        return runs[-1] if runs else None

    def load_state(self) -> dict[str, Any]:
        last = self.last_run()
        if last is None:
            return {"feeds": {}, "pending": {}, "templates": {}}
        path = self.root / last["state_file"]
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WarehouseError(f"committed state {path} of run {last['run_id']} is unreadable: {exc}") from exc
        state.setdefault("feeds", {})
        state.setdefault("pending", {})
        state.setdefault("templates", {})
        return state

    def load_seen(self) -> np.ndarray:
        last = self.last_run()
        if last is None or not last.get("seen_file"):
            return np.empty(0, dtype=np.uint64)
        return np.fromfile(self.root / last["seen_file"], dtype=np.uint64)

    def write_state(self, run_id: str, state: dict[str, Any], seen: np.ndarray) -> tuple[str, str]:
        state_rel = f"_state/{run_id}.json"
        seen_rel = f"_state/seen-{run_id}.u64"
        atomic_write_json(self.root / state_rel, state)
        atomic_write_bytes(self.root / seen_rel, np.ascontiguousarray(seen, dtype=np.uint64).tobytes())
        return state_rel, seen_rel

    def prune_state(self) -> None:
        """Drop state generations older than the last few committed runs (never the live ones)."""
        keep: set[str] = set()
        for run in self.committed_runs()[-STATE_KEEP:]:
            keep.update(filter(None, (run.get("state_file"), run.get("seen_file"))))
        state_dir = self.root / "_state"
        if not state_dir.is_dir():
            return
        cutoff = time.time() - 3600  # files of a run still in progress are recent: leave them
        for p in state_dir.iterdir():
            rel = f"_state/{p.name}"
            if rel not in keep and p.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    p.unlink()

    # ------------------------------------------------------------------ paths

    def dataset_dir(self, name: str) -> Path:
        return self.root / name

    def staging_dir(self, run_id: str) -> Path:
        return self.root / "_staging" / run_id

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def remove_uncommitted(self, keep_run: str | None = None) -> int:
        """Delete data files of runs that never committed (crashed runs). Safe under the writer lock."""
        committed = {r["run_id"] for r in self.committed_runs()}
        removed = 0
        for dataset in ("articles", "fetch_log", "raw_pages", "dedup_index"):
            base = self.root / dataset
            if not base.is_dir():
                continue
            for p in base.rglob("*.parquet"):
                run = _run_of(p.name)
                if run and run not in committed and run != keep_run:
                    p.unlink(missing_ok=True)
                    removed += 1
            for p in base.rglob(".*.tmp-*"):
                p.unlink(missing_ok=True)
        return removed


def _run_of(filename: str) -> str | None:
    # part-<run_id>-<n>.parquet ; run ids never contain "--" and end before the last "-<n>"
    if not filename.startswith("part-") or not filename.endswith(".parquet"):
        return None
    stem = filename[len("part-"):-len(".parquet")]
    run, _, n = stem.rpartition("-")
    return run if n.isdigit() and run else stem
