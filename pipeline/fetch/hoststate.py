"""Per-host politeness state that outlives one Fetcher: cached robots.txt, "come back later" deferrals,
and when we last sent the host a request (so the page stage keeps its distance from the feed stage).

A run every 15 minutes must not refetch robots.txt each time (RFC 9309 section 2.4 lets a crawler cache
it for up to 24 hours), and a host that answered `429 Retry-After: 3600` must not see the next run's
requests before that hour is over.

This is a cache, not committed warehouse data: one small JSON file per host under
`<warehouse>/_cache/hosts/`, replaced atomically. Fetch tasks of one run work on disjoint hosts (pages
are batched by host), so files are not contended; a lost update costs one extra robots.txt request,
never data. Entries carry absolute wall-clock times (seconds since the epoch).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class HostStore:
    """Reads and writes `<dir>/<host>.json`: {"robots": {origin: {...}}, "deferred_until": ts, ...}."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def _path(self, netloc: str) -> Path:
        safe = _UNSAFE.sub("_", netloc.lower())[:80]
        digest = hashlib.sha1(netloc.lower().encode()).hexdigest()[:8]  # distinct hosts never share a file
        return self.dir / f"{safe}-{digest}.json"

    def load(self, netloc: str) -> dict[str, Any]:
        try:
            data = json.loads(self._path(netloc).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _update(self, netloc: str, **changes: Any) -> None:
        data = self.load(netloc)
        data["host"] = netloc.lower()
        data.update(changes)
        path = self._path(netloc)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk costs politeness memory, not the run
            with contextlib.suppress(OSError):
                tmp.unlink()

    # ------------------------------------------------------------------ robots.txt

    def robots(self, netloc: str, origin: str, now: float) -> dict[str, Any] | None:
        """The cached robots.txt answer for `origin` ({"status", "body", "fetched_at"}) if still fresh."""
        entry = self.load(netloc).get("robots", {}).get(origin)
        if not isinstance(entry, dict) or float(entry.get("expires_at", 0)) <= now:
            return None
        return entry

    def save_robots(self, netloc: str, origin: str, status: int, body: str | None, now: float, ttl_s: float) -> None:
        robots = self.load(netloc).get("robots", {})
        robots = {k: v for k, v in robots.items() if isinstance(v, dict) and float(v.get("expires_at", 0)) > now}
        robots[origin] = {"status": status, "body": body, "fetched_at": now, "expires_at": now + ttl_s}
        self._update(netloc, robots=robots)

    # ------------------------------------------------------------------ deferral

    def deferred(self, netloc: str, now: float) -> tuple[float, str] | None:
        """(until, reason) while the host asked us to stay away, else None."""
        data = self.load(netloc)
        until = float(data.get("deferred_until") or 0)
        if until <= now:
            return None
        return until, str(data.get("deferred_reason") or "the host asked us to wait")

    def save_deferral(self, netloc: str, until: float, reason: str) -> None:
        current = self.load(netloc)
        if float(current.get("deferred_until") or 0) >= until:
            return
        self._update(netloc, deferred_until=until, deferred_reason=reason)

    # ------------------------------------------------------------------ last request

    def last_request(self, netloc: str) -> float | None:
        value = self.load(netloc).get("last_request_at")
        return float(value) if value else None

    def save_last_request(self, netloc: str, when: float) -> None:
        self._update(netloc, last_request_at=when)
