"""Record every outgoing socket connection a Python process makes, with an audit hook (PEP 578).

`sys.addaudithook` sees the `socket.connect` event that CPython raises inside `socket.connect` and
`connect_ex`, whoever calls them (asyncio, aiohttp, a library we forgot): this is what proves that no
request was sent to a refused address, not a mock of our own client.

In this process::

    with ConnectAudit() as audit:
        ...
    audit.connections            # [("127.0.0.1", 8080), ...]

In a child process (e.g. the `newsingest` CLI), with no change to the program itself::

    env = audit_env(tmp_dir, log_path)   # PYTHONPATH gets a sitecustomize.py that installs the hook
    subprocess.run(["newsingest", "run", ...], env={**os.environ, **env})
    read_log(log_path)                   # one JSON object per connection, from every process of the tree

An audit hook cannot be removed; the one installed here does nothing unless a recorder is active.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENV_LOG = "NEWSINGEST_CONNECT_AUDIT_LOG"

_lock = threading.Lock()
_recorders: list[ConnectAudit] = []
_log_fd: int | None = None
_installed = False


def _address(args: tuple[Any, ...]) -> tuple[str, int] | None:
    addr = args[1] if len(args) > 1 else None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    if isinstance(addr, str | bytes):  # AF_UNIX
        return (addr.decode() if isinstance(addr, bytes) else addr), 0
    return None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    addr = _address(args)
    if addr is None:
        return
    if _recorders:
        with _lock:
            for rec in _recorders:
                rec.connections.append(addr)
    if _log_fd is not None:
        line = json.dumps({"pid": os.getpid(), "host": addr[0], "port": addr[1], "t": round(time.time(), 4)})
        os.write(_log_fd, (line + "\n").encode())  # one write per line with O_APPEND: safe across processes


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def install_from_env() -> None:
    """Called by the generated sitecustomize.py: log connections to $NEWSINGEST_CONNECT_AUDIT_LOG."""
    global _log_fd
    path = os.environ.get(ENV_LOG)
    if not path:
        return
    _log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _install()


class ConnectAudit:
    """Collect (host, port) of every socket.connect in this process while active."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []

    def __enter__(self) -> ConnectAudit:
        _install()
        with _lock:
            _recorders.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _recorders.remove(self)


def audit_env(directory: str | os.PathLike[str], log_path: str | os.PathLike[str]) -> dict[str, str]:
    """Environment for a child Python process that logs its connections (and its children's) to log_path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "sitecustomize.py").write_text(
        "from pipeline.testing.connect_audit import install_from_env\ninstall_from_env()\n", encoding="utf-8")
    paths = [str(d)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(paths), ENV_LOG: str(log_path)}


def read_log(log_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(log_path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
