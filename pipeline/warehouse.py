"""The warehouse: hive-partitioned Parquet datasets, a commit log that says which files are live, committed
state, and DuckDB views.

Layout under the warehouse root (a directory, or an ``s3://bucket/prefix`` URL)::

    articles/published_date=YYYY-MM-DD/part-<run_id>-<n>.parquet   by publication date (first seen when unknown)
    fetch_log/run_date=YYYY-MM-DD/part-<run_id>-<n>.parquet
    raw_pages/fetch_date=YYYY-MM-DD/part-<run_id>-<n>.parquet     page bytes, for `newsingest reextract`
    dedup_index/part-<run_id>-0.parquet                           rolling near-duplicate index entries
    .../part-c<seq>-<token>-<n>.parquet                            files written by `newsingest compact`
    _log/<seq:012d>.json                     the commit log: one entry per commit, written last
    _log/<seq:012d>.checkpoint.json          the live state after <seq> (opening stays cheap)
    _state/<run_id>.json, seen-<run_id>.u64  feed validators, pending retries, site templates; stored ids
    _txn/<id>.json                           "a writer is at work": left behind only by a crashed writer
    _staging/<run_id>/...                    task outputs of a run in progress (Airflow tasks)
    _lock                                    the writer lock (flock; a lease object on S3)
    newsingest.duckdb                        views for `duckdb warehouse/newsingest.duckdb` (local only)

Commit protocol. The log is the single source of truth for which data files are live. A writer (an
ingest run, `reextract`, `compact`, `retain`, `vacuum`) takes the lock, reads the log (a snapshot at
sequence number N), writes its data files (a temporary name renamed into place; one PUT on S3, atomic
there), then creates ``_log/<N+1>.json`` *if absent* (a hard link locally, ``If-None-Match: *`` on S3).
That creation is the commit point: an entry lists the files it adds (with rows, bytes and the commit
range of their rows) and the files it retires. Readers (views, export) replay the log up to its end and
read exactly the live files, so they see every committed run once and nothing of an uncommitted one;
a compaction's entry adds the merged files and retires the small ones in one step, so a reader sees a
partition either before or after it, never twice and never missing. Because the entry is created only
if absent at N+1, two writers that both read snapshot N can never both commit (the second fails with
`WarehouseConflict`), whatever the lock did: the lock is for fairness and clear messages, the log for
safety.

Retired files are deleted by `vacuum` only after a grace period (default one hour), so a reader that
planned its query on the previous snapshot still finds them. Files that no entry lists (a crashed
writer's) are invisible and removed by the next writer (it finds the crashed writer's ``_txn`` marker, also
when it is the retry of the same run id);
on object storage only once they are older than twice the lease time, in case their writer still lives.
Every `CHECKPOINT_EVERY` commits (and at each vacuum) the live state is written as a checkpoint, and
vacuum drops log entries a checkpoint made redundant once they are a week old, so opening the warehouse
reads one checkpoint and a few entries however long its history. A warehouse written before the log
existed (one ``_runs/<run_id>.json`` per run) is read as if each run were an entry, and its first commit
writes those entries for real.

`runs` are the log entries that add rows (kind ``ingest`` or ``reextract``), in commit order: a row's
`run_id` maps to its run's sequence number, which is what export watermarks compare. Compaction keeps
every row's `run_id`, so watermarks survive it.

Crash testing: `crash_point(name)` kills the process with SIGKILL when ``NEWSINGEST_CRASH_AT`` names the
point (``write@3`` = the third time ``write`` is reached). Points: ``fetch`` (each page fetched),
``write`` (each data file written by a run), ``before_commit``, ``after_commit``, ``compact.write``,
``compact.before_commit``, ``compact.after_commit``, ``reextract.before_commit``.

Object storage: the root may be ``s3://bucket/prefix``; data goes through `pyarrow.fs.S3FileSystem`,
the conditional writes (log entries, the lock lease) through boto3 (``pip install 'newsingest[s3]'``).
The endpoint, region and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``). The lock there is a lease object
(``_lock``: owner, token, time to live ``NEWSINGEST_S3_LEASE_S``, default 60 s) created with
``If-None-Match: *``, renewed by its holder with ``If-Match`` and taken over only once it expired by the
server's clock. Staging for an S3 warehouse is local (``NEWSINGEST_STAGING`` or the temp directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DB_FILE = "newsingest.duckdb"
STATE_KEEP = 3  # committed state generations kept (older ones are garbage once a newer run committed)
LOG_DIR = "_log"
TXN_DIR = "_txn"
CHECKPOINT_EVERY = 25  # commits between two checkpoints of the live state
CHECKPOINTS_KEPT = 2
DEFAULT_GRACE_S = 3600.0  # retired files outlive their retirement by this much (in-flight readers)
DEFAULT_LOG_KEEP_S = 7 * 86400.0  # log entries already folded into a checkpoint are kept this long
STAGING_MAX_AGE_S = 86400.0
DATASETS = ("articles", "fetch_log", "raw_pages", "dedup_index")
PARTITION_KEYS = {"articles": "published_date", "fetch_log": "run_date", "raw_pages": "fetch_date",
                  "dedup_index": None}
RUN_KINDS = ("ingest", "reextract")  # log entries that add rows; the others only move them
LOG_FORMAT = 1

_ENTRY_RE = re.compile(r"^(\d{12})\.json$")
_CHECKPOINT_RE = re.compile(r"^(\d{12})\.checkpoint\.json$")


class WarehouseError(Exception):
    """The warehouse cannot be used; the message says why and what to do."""


class WarehouseLocked(WarehouseError):
    pass


class WarehouseConflict(WarehouseError):
    """Another writer committed since this one read the log: nothing of this writer became visible."""


# ---------------------------------------------------------------------------------------------------- crash hooks

_CRASH_HITS: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process when $NEWSINGEST_CRASH_AT names this point (``name`` or ``name@n``
    for its n-th hit). A real kill -9: no finally blocks, no flush, no atexit."""
    spec = os.environ.get("NEWSINGEST_CRASH_AT")
    if not spec:
        return
    _CRASH_HITS[name] += 1
    for item in spec.split(","):
        point, _, nth = item.strip().partition("@")
        if point == name and _CRASH_HITS[name] == (int(nth) if nth else 1):
            os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------- local helpers


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, _json_bytes(obj))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1, default=_json_default).encode("utf-8")


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, set | frozenset):
        return sorted(o)
    if type(o).__module__ == "numpy" and hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet_atomic(path: Path, table: Any, *, row_group_size: int = 64 * 1024) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size, write_statistics=True)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _now() -> datetime:
    return datetime.now(UTC)


def schema_fingerprint(schema: Any) -> str:
    """A short hash of an Arrow schema's names, types and nullability (metadata ignored)."""
    return hashlib.sha1(schema.remove_metadata().to_string().encode()).hexdigest()[:12]


def file_location(rel: str) -> tuple[str, str]:
    """(dataset, partition directory or '') of a data file's path relative to the root."""
    parts = PurePosixPath(rel).parts
    dataset = parts[0] if parts else ""
    partition = parts[1] if len(parts) > 2 and "=" in parts[1] else ""
    return dataset, partition


# ---------------------------------------------------------------------------------------------------- storage


@dataclass(slots=True)
class FileStat:
    rel: str
    size: int
    mtime: float  # seconds since the epoch


class Storage:
    """What the warehouse needs from a file system. Paths are relative to the root, with '/'."""

    is_local = True
    location = ""

    def read_bytes(self, rel: str) -> bytes | None: ...
    def write_bytes(self, rel: str, data: bytes) -> None: ...
    def put_if_absent(self, rel: str, data: bytes) -> bool: ...
    def delete(self, rel: str) -> bool: ...
    def list(self, prefix: str) -> list[FileStat]: ...
    def put_file(self, local: Path, rel: str) -> int: ...
    def arrow(self) -> tuple[Any, str]: ...  # (pyarrow filesystem, base path of the root in it)

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
        yield

    def lock_holder(self) -> str | None:
        return None

    def check_lock(self) -> None:
        """Raise if the lock this process holds was lost (an expired lease)."""

    def arrow_path(self, rel: str) -> str:
        fs, base = self.arrow()
        return f"{base}/{rel}" if base else rel

    @contextlib.contextmanager
    def parquet_writer(self, rel: str, schema: Any, **kwargs: Any) -> Iterator[Any]:
        """A ParquetWriter whose file becomes visible under `rel` only when the block ends normally."""
        import pyarrow.parquet as pq

        from pipeline.schema import dictionary_columns

        fs, _ = self.arrow()
        kwargs.setdefault("use_dictionary", dictionary_columns(schema))
        writer = pq.ParquetWriter(self.arrow_path(rel), schema, filesystem=fs, compression="zstd",
                                  write_statistics=True, **kwargs)
        try:
            yield writer
        finally:
            writer.close()  # one object PUT / multipart completion: atomic on object storage

    def read_table(self, rel: str, columns: list[str] | None = None, filters: Any = None) -> Any:
        import pyarrow.parquet as pq

        fs, _ = self.arrow()
        if filters is None:  # the plain reader: less overhead per (small) file than the dataset machinery
            with fs.open_input_file(self.arrow_path(rel)) as f:
                return pq.ParquetFile(f).read(columns=columns)
        return pq.read_table(self.arrow_path(rel), columns=columns, filesystem=fs, partitioning=None,
                             filters=filters)

    def read_schema(self, rel: str) -> Any:
        import pyarrow.parquet as pq

        fs, _ = self.arrow()
        with fs.open_input_file(self.arrow_path(rel)) as f:
            return pq.read_schema(f)


class LocalStorage(Storage):
    is_local = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self._fs = None

    def _p(self, rel: str) -> Path:
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return self._p(rel).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic_write_bytes(self._p(rel), data)

    def put_if_absent(self, rel: str, data: bytes) -> bool:
        path = self._p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails when the name exists: the content is complete or absent
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    def delete(self, rel: str) -> bool:
        try:
            self._p(rel).unlink()
            return True
        except FileNotFoundError:
            return False

    def list(self, prefix: str) -> list[FileStat]:
        base = self._p(prefix)
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out.append(FileStat(str(p.relative_to(self.root)), st.st_size, st.st_mtime))
        return out

    def put_file(self, local: Path, rel: str) -> int:
        target = self._p(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A hard link (staging is on the same file system), not a move: the staged file stays until its run's
        # staging is removed after the commit, so a commit killed midway and retried finds it again.
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(local, tmp)
        except OSError:  # another file system (or no hard links): copy
            import shutil

            shutil.copyfile(local, tmp)
        os.replace(tmp, target)
        return target.stat().st_size

    def arrow(self) -> tuple[Any, str]:
        if self._fs is None:
            import pyarrow.fs as pafs

            self._fs = pafs.LocalFileSystem()
        return self._fs, str(self.root)

    @contextlib.contextmanager
    def parquet_writer(self, rel: str, schema: Any, **kwargs: Any) -> Iterator[Any]:
        import pyarrow.parquet as pq

        from pipeline.schema import dictionary_columns

        path = self._p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
        kwargs.setdefault("use_dictionary", dictionary_columns(schema))
        writer = pq.ParquetWriter(str(tmp), schema, compression="zstd", write_statistics=True, **kwargs)
        ok = False
        try:
            yield writer
            ok = True
        finally:
            writer.close()
            if ok:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            else:
                tmp.unlink(missing_ok=True)

    # -- lock: flock on <root>/_lock; the kernel releases it when the holder dies, however it dies

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
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
                        waited = f" after waiting {wait_s:g} s" if wait_s else ""
                        raise WarehouseLocked(
                            f"warehouse {self.root} is locked by {holder}{waited}; wait for it to finish (a crashed "
                            "holder releases the lock when its process ends)"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{owner} (pid {os.getpid()} on {socket.gethostname()}, since "
                          f"{_now().isoformat(timespec='seconds')})".encode(), 0)
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


class S3Storage(Storage):
    """A warehouse under s3://bucket/prefix (any S3-compatible server)."""

    is_local = False
    LEASE = "_lock"

    def __init__(self, url: str) -> None:
        m = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
        if not m:
            raise WarehouseError(f"warehouse URL {url!r} is not of the form s3://bucket/prefix")
        self.bucket, self.prefix = m.group(1), m.group(2).strip("/")
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.lease_s = float(os.environ.get("NEWSINGEST_S3_LEASE_S", "60"))
        self._fs = None
        self._client = None
        self._lease: dict[str, Any] | None = None
        self._lease_lost = threading.Event()

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config as BotoConfig
            except ImportError as exc:
                raise WarehouseError("an s3:// warehouse needs boto3: pip install 'newsingest[s3]'") from exc
            self._client = boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                                        config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}))
        return self._client

    def arrow(self) -> tuple[Any, str]:
        if self._fs is None:
            import pyarrow.fs as pafs

            kwargs: dict[str, Any] = {"region": self.region}
            if self.endpoint:
                scheme, _, host = self.endpoint.partition("://")
                kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
            if os.environ.get("AWS_ACCESS_KEY_ID"):
                kwargs.update(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                              secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                              session_token=os.environ.get("AWS_SESSION_TOKEN"))
            self._fs = pafs.S3FileSystem(**kwargs)
        return self._fs, f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def check_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise WarehouseError(f"cannot use bucket {self.bucket!r} at {self.endpoint or 'AWS'}: {exc}") from exc

    def read_bytes(self, rel: str) -> bytes | None:
        fs, _ = self.arrow()
        try:
            with fs.open_input_stream(self.arrow_path(rel)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)

    def put_if_absent(self, rel: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, IfNoneMatch="*")
            return True
        except ClientError as exc:
            if _s3_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise

    def delete(self, rel: str) -> bool:
        fs, _ = self.arrow()
        try:
            fs.delete_file(self.arrow_path(rel))
            return True
        except FileNotFoundError:
            return False

    def list(self, prefix: str) -> list[FileStat]:
        import pyarrow.fs as pafs

        fs, base = self.arrow()
        infos = fs.get_file_info(pafs.FileSelector(f"{base}/{prefix}".rstrip("/"), recursive=True,
                                                   allow_not_found=True))
        out = []
        for info in infos:
            if info.type == pafs.FileType.File:
                mtime = info.mtime.timestamp() if info.mtime else 0.0
                out.append(FileStat(info.path[len(base) + 1:], info.size or 0, mtime))
        return out

    def put_file(self, local: Path, rel: str) -> int:
        size = local.stat().st_size
        # The staged file stays (removed with its run's staging after the commit): a retried commit needs it.
        self.client.upload_file(str(local), self.bucket, self.key(rel))
        return size

    # -- lock: a lease object created if absent, renewed with If-Match, taken over once expired

    def _read_lease(self) -> tuple[dict[str, Any], str, float] | None:
        """(lease body, ETag, age in seconds by the server's clock), or None when there is no lease."""
        from email.utils import parsedate_to_datetime

        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(self.LEASE))
        except ClientError as exc:
            if _s3_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            body = json.loads(resp["Body"].read())
        except ValueError:
            body = {}
        server_now = resp["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(server_now) if server_now else _now()
        age = (now - resp["LastModified"]).total_seconds()
        return body, resp["ETag"], age

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
        from botocore.exceptions import ClientError

        body = {"owner": owner, "token": secrets.token_hex(8), "pid": os.getpid(), "host": socket.gethostname(),
                "since": _now().isoformat(timespec="seconds"), "ttl_s": self.lease_s}
        data = json.dumps(body).encode()
        key = self.key(self.LEASE)
        deadline = time.monotonic() + wait_s
        etag = None
        while etag is None:
            try:
                etag = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")["ETag"]
                break
            except ClientError as exc:
                if _s3_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    raise
            held = self._read_lease()
            if held is None:
                continue  # released in between: try again at once
            holder, held_etag, age = held
            ttl = float(holder.get("ttl_s") or self.lease_s)
            if age > ttl:  # expired (by the server's clock): take it over, unless someone else just did
                try:
                    etag = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfMatch=held_etag)["ETag"]
                    break
                except ClientError as exc:
                    if _s3_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409",
                                             "NoSuchKey", "404"):
                        raise
                    continue
            if time.monotonic() >= deadline:
                who = (f"{holder.get('owner', 'another process')} (pid {holder.get('pid')} on {holder.get('host')}, "
                       f"since {holder.get('since')})")
                waited = f" after waiting {wait_s:g} s" if wait_s else ""
                raise WarehouseLocked(
                    f"warehouse {self.location} is locked by {who}{waited}; only one writer at a time. Its lease "
                    f"was renewed {age:.0f} s ago and expires {max(0.0, ttl - age):.0f} s after its last renewal "
                    "if the holder died; wait for it to finish"
                )
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._lease = {"etag": etag, "data": data}
        self._lease_lost.clear()
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(key, stop), name="s3-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=10)
            lease, self._lease = self._lease, None
            if lease and not self._lease_lost.is_set():
                with contextlib.suppress(ClientError):
                    self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=lease["etag"])

    def _renew(self, key: str, stop: threading.Event) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not stop.wait(self.lease_s / 3):
            lease = self._lease
            if lease is None:
                return
            try:
                lease["etag"] = self.client.put_object(Bucket=self.bucket, Key=key, Body=lease["data"],
                                                       IfMatch=lease["etag"])["ETag"]
            except ClientError:
                self._lease_lost.set()  # someone took it over: we are no longer the writer
                return
            except BotoCoreError:
                continue  # a network hiccup: try again before the lease runs out

    def check_lock(self) -> None:
        if self._lease_lost.is_set():
            raise WarehouseLocked(f"lost the lease on {self.location} (it expired and another writer took it "
                                  "over); nothing of this writer was committed")

    def lock_holder(self) -> str | None:
        held = self._read_lease()
        if held is None:
            return None
        body, _, age = held
        if age > float(body.get("ttl_s") or self.lease_s):
            return None
        return f"{body.get('owner')} (pid {body.get('pid')} on {body.get('host')}, since {body.get('since')})"


def _s3_code(exc: Exception) -> str:
    resp = getattr(exc, "response", {}) or {}
    return str(resp.get("Error", {}).get("Code") or resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


# ---------------------------------------------------------------------------------------------------- snapshot


@dataclass
class Snapshot:
    """The warehouse as of one log sequence number: its runs, its live files, its retired files."""

    seq: int = 0
    committed_at: str | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # live: path -> file entry
    retired: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {"seq", "retired_at", ...}
    legacy: list[dict[str, Any]] = field(default_factory=list)  # entries synthesised from a v0 _runs/ dir

    def apply(self, entry: dict[str, Any]) -> None:
        seq = int(entry["seq"])
        if seq != self.seq + 1:
            raise WarehouseError(f"commit log out of order: entry {seq} after {self.seq}")
        if entry.get("run"):
            self.runs.append({**entry["run"], "seq": seq, "kind": entry["kind"],
                              "committed_at": entry["committed_at"]})
        for f in entry.get("add", []):
            self.files[f["path"]] = f
        for path in entry.get("remove", []):
            gone = self.files.pop(path, None) or {}
            self.retired[path] = {"seq": seq, "retired_at": entry["committed_at"], "bytes": gone.get("bytes")}
        for path in entry.get("purged", []):
            self.retired.pop(path, None)
        self.seq = seq
        self.committed_at = entry["committed_at"]

    def live(self, dataset: str, partition: str | None = None) -> list[dict[str, Any]]:
        return sorted((f for f in self.files.values() if f["dataset"] == dataset
                       and (partition is None or f.get("partition", "") == partition)), key=lambda f: f["path"])

    def run(self, run_id: str) -> dict[str, Any] | None:
        for r in reversed(self.runs):
            if r["run_id"] == run_id:
                return r
        return None

    def committed_at_of(self, seq: int) -> str | None:
        """Commit time of the run with this sequence number (or of the last run before it)."""
        best = None
        for r in self.runs:
            if r["seq"] > seq:
                break
            best = r["committed_at"]
        return best

    def copy(self) -> Snapshot:
        """An independent snapshot (apply() replaces entries, never mutates them: shallow copies suffice)."""
        return Snapshot(seq=self.seq, committed_at=self.committed_at, runs=list(self.runs), files=dict(self.files),
                        retired=dict(self.retired))

    def to_checkpoint(self) -> dict[str, Any]:
        return {"format": LOG_FORMAT, "seq": self.seq, "committed_at": self.committed_at, "runs": self.runs,
                "files": sorted(self.files.values(), key=lambda f: f["path"]), "retired": self.retired}

    @classmethod
    def from_checkpoint(cls, d: dict[str, Any]) -> Snapshot:
        return cls(seq=int(d["seq"]), committed_at=d.get("committed_at"), runs=list(d.get("runs", [])),
                   files={f["path"]: f for f in d.get("files", [])}, retired=dict(d.get("retired", {})))


# ---------------------------------------------------------------------------------------------------- warehouse


@dataclass(slots=True)
class RunEntry:
    run_id: str
    started_at: str
    committed_at: str
    counts: dict[str, int]
    files: list[Any]  # file entries from `Warehouse.write_table` / `put_file` (or relative paths)
    state_file: str | None
    seen_file: str | None
    config_feeds: int = 0
    trigger: str = "cli"
    kind: str = "ingest"


class Warehouse:
    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        location = os.fspath(root)
        self._root: Path | None = None
        self.last_snapshot: Snapshot | None = None
        if location.startswith("s3://"):
            self.storage: Storage = S3Storage(location)
            self.location = self.storage.location
            if create:
                self.storage.check_bucket()  # type: ignore[attr-defined]
            return
        if "://" in location:
            raise WarehouseError(f"unsupported warehouse URL {location!r}: use a directory or s3://bucket/prefix")
        self._root = Path(location).expanduser().absolute()
        self.location = str(self._root)
        if self._root.exists() and not self._root.is_dir():
            raise WarehouseError(f"warehouse path {self._root} exists and is not a directory")
        if create:
            try:
                self._root.mkdir(parents=True, exist_ok=True)
                (self._root / LOG_DIR).mkdir(exist_ok=True)
            except OSError as exc:
                raise WarehouseError(f"cannot create the warehouse at {self._root}: {exc.strerror}") from exc
            if not os.access(self._root, os.W_OK):
                raise WarehouseError(f"warehouse {self._root} is not writable by this user")
        elif not self._root.is_dir():
            raise WarehouseError(f"no warehouse at {self._root} (run `newsingest run` or `make demo` first)")
        self.storage = LocalStorage(self._root)

    @property
    def is_local(self) -> bool:
        return self._root is not None

    @property
    def root(self) -> Path:
        """The directory of a local warehouse (object-storage warehouses have none: use `location`)."""
        if self._root is None:
            raise WarehouseError(f"{self.location} is on object storage: it has no local directory")
        return self._root

    def __repr__(self) -> str:
        return f"Warehouse({self.location!r})"

    # ------------------------------------------------------------------ lock

    def lock(self, owner: str, wait_s: float = 0.0) -> contextlib.AbstractContextManager[None]:
        """One writer at a time. Waits up to `wait_s`, then refuses with who holds the lock."""
        return self.storage.lock(owner, wait_s)

    def lock_holder(self) -> str | None:
        return self.storage.lock_holder()

    # ------------------------------------------------------------------ the log

    def snapshot(self) -> Snapshot:
        """The committed state: the latest checkpoint plus the log entries after it."""
        for attempt in range(3):
            try:
                return self._read_snapshot()
            except _LogRace:
                if attempt == 2:
                    raise WarehouseError(f"the commit log of {self.location} kept changing under this reader; "
                                         "try again") from None
        raise AssertionError("unreachable")

    def _read_snapshot(self) -> Snapshot:
        entries: dict[int, str] = {}
        checkpoints: dict[int, str] = {}
        for st in self.storage.list(LOG_DIR):
            name = PurePosixPath(st.rel).name
            if m := _ENTRY_RE.match(name):
                entries[int(m.group(1))] = st.rel
            elif m := _CHECKPOINT_RE.match(name):
                checkpoints[int(m.group(1))] = st.rel
        if not entries and not checkpoints:
            return self._legacy_snapshot()
        last = max(entries, default=0)
        snap = None
        for cp in sorted(checkpoints, reverse=True):
            if cp > last and last:
                continue  # a checkpoint ahead of its entry cannot exist; ignore foreign junk
            data = self.storage.read_bytes(checkpoints[cp])
            if data is None:
                raise _LogRace
            with contextlib.suppress(ValueError, KeyError):
                snap = Snapshot.from_checkpoint(json.loads(data))
                break
        if snap is None:
            if entries and min(entries) != 1:
                raise _LogRace if checkpoints else WarehouseError(
                    f"the commit log of {self.location} starts at {min(entries)} and has no checkpoint")
            snap = Snapshot()
        for seq in range(snap.seq + 1, last + 1):
            rel = entries.get(seq)
            data = self.storage.read_bytes(rel) if rel else None
            if data is None:
                raise _LogRace if rel else WarehouseError(f"the commit log of {self.location} misses entry {seq}")
            snap.apply(json.loads(data))
        return snap

    def _legacy_snapshot(self) -> Snapshot:
        """A warehouse written before the commit log (one `_runs/<run_id>.json` per run): read it as if
        each run were a log entry. The first commit writes these entries for real."""
        snap = Snapshot()
        legacy = []
        for st in self.storage.list("_runs"):
            if not st.rel.endswith(".json"):
                continue
            with contextlib.suppress(ValueError, TypeError):
                legacy.append(json.loads(self.storage.read_bytes(st.rel) or b""))
        legacy.sort(key=lambda r: (r.get("committed_at", ""), r.get("run_id", "")))
        for n, r in enumerate(legacy, 1):
            add = []
            for rel in r.get("files", []):
                dataset, partition = file_location(rel)
                add.append({"path": rel, "dataset": dataset, "partition": partition, "rows": None,
                            "bytes": None, "min_seq": n, "max_seq": n})
            entry = {"format": LOG_FORMAT, "seq": n, "kind": "ingest", "committed_at": r.get("committed_at"),
                     "run": {k: r.get(k) for k in ("run_id", "started_at", "trigger", "feeds", "counts",
                                                   "state_file", "seen_file")} | {"files": r.get("files", [])},
                     "add": add, "remove": []}
            snap.apply(entry)
            snap.legacy.append(entry)
        return snap

    def committed_runs(self) -> list[dict[str, Any]]:
        """Committed runs (ingest and reextract) in commit order, each with its `seq`."""
        return self.snapshot().runs

    def is_committed(self, run_id: str) -> bool:
        return self.snapshot().run(run_id) is not None

    def commit_entry(self, base: Snapshot, kind: str, *, add: Iterable[dict[str, Any]] = (),
                     remove: Iterable[str] = (), purged: Iterable[str] = (), run: dict[str, Any] | None = None,
                     info: dict[str, Any] | None = None) -> int:
        """Commit one log entry on top of `base` (the snapshot this writer read). The commit point."""
        seq = base.seq + 1
        for legacy in base.legacy:  # upgrade a pre-log warehouse on its first commit
            self.storage.put_if_absent(f"{LOG_DIR}/{legacy['seq']:012d}.json", _json_bytes(legacy))
        add = [dict(f) for f in add]
        for f in add:
            f.setdefault("min_seq", seq)
            f.setdefault("max_seq", seq)
        entry = {"format": LOG_FORMAT, "seq": seq, "kind": kind, "committed_at": _now().isoformat(),
                 "run": run, "add": add, "remove": sorted(remove), "purged": sorted(purged), "info": info or {}}
        self.storage.check_lock()
        if not self.storage.put_if_absent(f"{LOG_DIR}/{seq:012d}.json", _json_bytes(entry)):
            raise WarehouseConflict(
                f"another writer committed entry {seq} to {self.location} while this one worked (was the lock "
                "bypassed or did a lease expire?); nothing of this writer is visible, run it again")
        after = base.copy()
        after.apply(entry)
        self.last_snapshot = after  # what this writer just committed (saves a re-read of the log)
        if seq % CHECKPOINT_EVERY == 0:
            self.write_checkpoint(after)
        return seq

    def commit(self, entry: RunEntry, base: Snapshot | None = None) -> int:
        """Commit an ingest (or reextract) run: after this its rows are visible; before it, none are."""
        base = base if base is not None else self.snapshot()
        files = [f if isinstance(f, dict) else self._describe(f) for f in entry.files]
        run = {"run_id": entry.run_id, "started_at": entry.started_at, "trigger": entry.trigger,
               "feeds": entry.config_feeds, "counts": entry.counts, "files": [f["path"] for f in files],
               "state_file": entry.state_file, "seen_file": entry.seen_file}
        return self.commit_entry(base, entry.kind, add=files, run=run)

    def write_checkpoint(self, snap: Snapshot) -> str:
        rel = f"{LOG_DIR}/{snap.seq:012d}.checkpoint.json"
        self.storage.write_bytes(rel, json.dumps(snap.to_checkpoint(), ensure_ascii=False,
                                                 default=_json_default).encode("utf-8"))
        return rel

    # ------------------------------------------------------------------ transactions (crash markers)

    @contextlib.contextmanager
    def transaction(self, txn_id: str, what: str) -> Iterator[None]:
        """Marks a writer at work. A marker left behind means a crash: the next writer sweeps orphans."""
        rel = f"{TXN_DIR}/{txn_id}.json"
        self.storage.write_bytes(rel, json.dumps({"what": what, "pid": os.getpid(), "host": socket.gethostname(),
                                                  "since": _now().isoformat()}).encode())
        yield
        self.storage.delete(rel)  # not reached on a crash (or an exception): the marker stays

    def recover(self, current_txn: str | None = None) -> int:
        """Remove what crashed writers left (files no log entry lists). Call under the lock, before the
        writer's own `transaction`: a marker is then always a crashed writer's, even one named `current_txn`
        (an earlier attempt of the same run id, e.g. a retried Airflow commit task)."""
        markers = list(self.storage.list(TXN_DIR))
        if not markers:
            return 0
        removed = self.remove_orphans()
        for st in markers:
            self.storage.delete(st.rel)
        return removed

    # ------------------------------------------------------------------ data files

    def write_table(self, rel: str, table: Any, *, row_group_size: int = 64 * 1024) -> dict[str, Any]:
        """Write one data file (atomically) and return its file entry for the commit."""
        with self.storage.parquet_writer(rel, table.schema) as writer:
            writer.write_table(table, row_group_size=row_group_size)
        crash_point("write")
        return self._describe(rel, rows=table.num_rows, schema=table.schema)

    def open_table(self, rel: str, schema: Any) -> TableWriter:
        """A data file written in row groups (`TableWriter.write`), visible under `rel` when `close` returns
        its file entry for the commit (as `write_table`'s); `abort` drops it."""
        return TableWriter(self, rel, schema)

    def put_file(self, local: Path, rel: str, rows: int | None = None, *, with_schema: bool = False) -> dict[str, Any]:
        """Put a finished local file (a staging file) into the warehouse; the local file stays.
        `with_schema`: the entry carries the file's schema fingerprint, as `write_table`'s do."""
        schema = None
        if with_schema:
            import pyarrow.parquet as pq

            meta = pq.read_metadata(local)
            schema = meta.schema.to_arrow_schema()
            rows = meta.num_rows if rows is None else rows
        size = self.storage.put_file(local, rel)
        crash_point("write")
        return self._describe(rel, rows=rows, size=size, schema=schema)

    def _describe(self, rel: str, rows: int | None = None, size: int | None = None,
                  schema: Any = None) -> dict[str, Any]:
        dataset, partition = file_location(rel)
        if rows is None or size is None:
            import pyarrow.parquet as pq

            fs, _ = self.storage.arrow()
            info = fs.get_file_info(self.storage.arrow_path(rel))
            size = info.size if size is None else size
            if rows is None:
                with fs.open_input_file(self.storage.arrow_path(rel)) as f:
                    rows = pq.ParquetFile(f).metadata.num_rows
        entry = {"path": rel, "dataset": dataset, "partition": partition, "rows": rows, "bytes": size}
        if schema is not None:
            entry["schema"] = schema_fingerprint(schema)
        return entry

    def read_table(self, rel: str, columns: list[str] | None = None, filters: Any = None) -> Any:
        """One data file; `filters` (pyarrow expression) skips row groups by their statistics."""
        return self.storage.read_table(rel, columns, filters)

    def remove_orphans(self, min_age_s: float | None = None) -> int:
        """Delete data files that no log entry lists, live or retired (a crashed writer's). Call under the
        lock. On object storage only files older than `min_age_s` (default: the lease time) go."""
        if min_age_s is None:
            min_age_s = 0.0 if self.storage.is_local else 2 * getattr(self.storage, "lease_s", 60.0)
        snap = self.snapshot()
        known = set(snap.files) | set(snap.retired)
        cutoff = time.time() - min_age_s
        removed = 0
        for dataset in DATASETS:
            for st in self.storage.list(dataset):
                name = PurePosixPath(st.rel).name
                if st.rel in known or st.mtime > cutoff:
                    continue
                if name.endswith(".parquet") or ".tmp-" in name:
                    self.storage.delete(st.rel)
                    removed += 1
        return removed

    def remove_uncommitted(self, keep_run: str | None = None) -> int:
        """Compatibility name for `remove_orphans` (files of runs that never committed)."""
        return self.remove_orphans()

    # ------------------------------------------------------------------ state

    def last_run(self, snap: Snapshot | None = None) -> dict[str, Any] | None:
        runs = [r for r in (snap or self.snapshot()).runs if r.get("state_file")]
        return runs[-1] if runs else None

    def load_state(self, snap: Snapshot | None = None) -> dict[str, Any]:
        last = self.last_run(snap)
        if last is None:
            return {"feeds": {}, "pending": {}, "templates": {}}
        data = self.storage.read_bytes(last["state_file"])
        try:
            if data is None:
                raise OSError("missing")
            state = json.loads(data)
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"committed state {self.uri(last['state_file'])} of run {last['run_id']} is "
                                 f"unreadable: {exc}") from exc
        state.setdefault("feeds", {})
        state.setdefault("pending", {})
        state.setdefault("templates", {})
        return state

    def load_seen(self, snap: Snapshot | None = None) -> np.ndarray:
        import numpy as np

        last = self.last_run(snap)
        if last is None or not last.get("seen_file"):
            return np.empty(0, dtype=np.uint64)
        data = self.storage.read_bytes(last["seen_file"])
        if data is None:
            raise WarehouseError(f"committed id set {last['seen_file']} of run {last['run_id']} is missing")
        return np.frombuffer(data, dtype=np.uint64).copy()

    def write_state(self, run_id: str, state: dict[str, Any], seen: np.ndarray, *,
                    same_seen_as: str | None = None) -> tuple[str, str]:
        """Write a run's state and stored-id set; returns their paths for its log entry. `same_seen_as`:
        the committed id-set file `seen` was loaded from, when the run stored nothing new: the entry names
        that file again instead of a copy (8 MB for a million articles, at every run of 304s)."""
        import numpy as np

        state_rel = f"_state/{run_id}.json"
        self.storage.write_bytes(state_rel, _json_bytes(state))
        if same_seen_as:
            return state_rel, same_seen_as  # kept by prune_state while one of the last runs names it
        seen_rel = f"_state/seen-{run_id}.u64"
        self.storage.write_bytes(seen_rel, np.ascontiguousarray(seen, dtype=np.uint64).tobytes())
        return state_rel, seen_rel

    def prune_state(self, snap: Snapshot | None = None) -> None:
        """Drop state generations older than the last few committed runs (never the live ones). `snap`:
        the latest snapshot when the caller has it (under the lock, e.g. `last_snapshot` after a commit)."""
        keep: set[str] = set()
        for run in [r for r in (snap or self.snapshot()).runs if r.get("state_file")][-STATE_KEEP:]:
            keep.update(filter(None, (run.get("state_file"), run.get("seen_file"))))
        cutoff = time.time() - 3600  # files of a run still in progress are recent: leave them
        for st in self.storage.list("_state"):
            if st.rel not in keep and st.mtime < cutoff:
                self.storage.delete(st.rel)

    # ------------------------------------------------------------------ vacuum

    def vacuum(self, *, grace_s: float = DEFAULT_GRACE_S, log_keep_s: float = DEFAULT_LOG_KEEP_S,
               now: datetime | None = None) -> dict[str, Any]:
        """Delete retired files older than `grace_s`, orphans, stale staging, and log entries folded into a
        checkpoint and older than `log_keep_s`. Call under the lock."""
        now = now or _now()
        snap = self.snapshot()
        cutoff = (now - timedelta(seconds=grace_s)).isoformat()
        purge = sorted(p for p, r in snap.retired.items() if r["retired_at"] <= cutoff)
        purged_bytes = 0
        for rel in purge:
            purged_bytes += snap.retired[rel].get("bytes") or 0
            self.storage.delete(rel)
        seq = snap.seq
        if purge:
            seq = self.commit_entry(snap, "vacuum", purged=purge)
            snap = self.snapshot()
        orphans = self.remove_orphans()
        for st in self.storage.list(TXN_DIR):
            self.storage.delete(st.rel)
        # Fold the log into a checkpoint, then drop what the checkpoint made redundant.
        log_removed = 0
        if snap.seq:
            self.write_checkpoint(snap)
            log_cutoff = time.time() - log_keep_s
            cps = []
            for st in self.storage.list(LOG_DIR):
                name = PurePosixPath(st.rel).name
                if m := _CHECKPOINT_RE.match(name):
                    cps.append((int(m.group(1)), st))
            cps.sort(key=lambda c: c[0])
            for n, st in cps[:-CHECKPOINTS_KEPT]:
                if st.mtime < log_cutoff and n < snap.seq:
                    self.storage.delete(st.rel)
                    log_removed += 1
            for st in self.storage.list(LOG_DIR):
                m = _ENTRY_RE.match(PurePosixPath(st.rel).name)
                if m and int(m.group(1)) <= snap.seq and st.mtime < log_cutoff:
                    self.storage.delete(st.rel)
                    log_removed += 1
        staging_removed = 0
        if self.is_local:
            staging = self.root / "_staging"
            if staging.is_dir():
                import shutil

                for d in staging.iterdir():
                    if d.stat().st_mtime < time.time() - STAGING_MAX_AGE_S:
                        shutil.rmtree(d, ignore_errors=True)
                        staging_removed += 1
        return {"seq": seq, "purged_files": len(purge), "purged_bytes": purged_bytes, "orphans_removed": orphans,
                "log_files_removed": log_removed, "staging_removed": staging_removed}

    # ------------------------------------------------------------------ paths

    def dataset_dir(self, name: str) -> Path:
        return self.root / name

    def staging_dir(self, run_id: str) -> Path:
        """Where a run's tasks hand over files. Local even for an object-storage warehouse
        ($NEWSINGEST_STAGING, shared by the workers when there are several machines)."""
        if self._root is not None:
            return self._root / "_staging" / run_id
        base = os.environ.get("NEWSINGEST_STAGING")
        if base:
            return Path(base) / run_id
        digest = hashlib.sha1(self.location.encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / "newsingest-staging" / digest / run_id

    def local_cache_dir(self) -> Path:
        """A local directory for caches outside the commit protocol (robots.txt, host deferrals).
        Inside a local warehouse; beside the staging area for an object-storage one."""
        if self._root is not None:
            return self._root / "_cache"
        return self.staging_dir("_cache")

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def uri(self, rel: str) -> str:
        """A path DuckDB and pyarrow understand: absolute for a local warehouse, s3://... otherwise."""
        if self._root is not None:
            return str(self._root / rel)
        return f"{self.location}/{rel}"


class TableWriter:
    """One data file of a commit written a row group at a time (Warehouse.open_table)."""

    def __init__(self, wh: Warehouse, rel: str, schema: Any) -> None:
        self.wh, self.rel, self.schema = wh, rel, schema
        self.rows = 0
        self._cm = wh.storage.parquet_writer(rel, schema)
        self._writer = self._cm.__enter__()

    def write(self, table: Any) -> None:
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.rows += table.num_rows

    def close(self) -> dict[str, Any]:
        self._cm.__exit__(None, None, None)
        crash_point("write")
        return self.wh._describe(self.rel, rows=self.rows, schema=self.schema)

    def abort(self) -> None:
        """Drop the unfinished file (a local temporary file is removed; an object is never completed)."""
        err = RuntimeError(f"{self.rel}: aborted")
        with contextlib.suppress(Exception):
            self._cm.__exit__(RuntimeError, err, None)


class _LogRace(Exception):
    """A log file disappeared between listing and reading (a concurrent vacuum): read again."""


def open_warehouse(target: Warehouse | str | os.PathLike[str], *, create: bool = False) -> Warehouse:
    return target if isinstance(target, Warehouse) else Warehouse(target, create=create)
