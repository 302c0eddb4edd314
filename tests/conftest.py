"""Shared fixtures. ../shared (reference material) is optional: tests that need it skip visibly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout; NEWSINGEST_SHARED points elsewhere (e.g. from a git worktree).
SHARED = Path(os.environ.get("NEWSINGEST_SHARED") or ROOT.parent / "shared")

# Tests must never depend on a developer's warehouse or config.
os.environ.pop("NEWSINGEST_WAREHOUSE", None)
os.environ.pop("NEWSINGEST_CONFIG", None)


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material {path} is not present (../shared is optional)")
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make demo` builds (the bundled demo web ingested once), then a second run of the same web with
    one extra feed at a path the demo web does not serve (it 404s): feeds answer 304, the failed feed and
    the retried page show in the fetch log. Shared by the report and doctor tests; do not write to it."""
    import io
    import json
    import socket
    from datetime import datetime

    import yaml

    from pipeline.demo import DemoServer, DemoWeb
    from pipeline.demo.runner import run_demo
    from pipeline.run import run_once
    from pipeline.settings import parse_config

    root = tmp_path_factory.mktemp("demo") / "warehouse"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run_demo(str(root), port=port, out=io.StringIO()) == 0
    meta = json.loads((root / "_demo.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((root / "demo-config.yaml").read_text(encoding="utf-8"))
    with DemoServer(DemoWeb(seed=meta["seed"], now=datetime.fromisoformat(meta["now"])), port=meta["port"]) as server:
        config["feeds"].append({"name": "retired-outlet", "url": f"{server.base_url}/retired-outlet/feed.xml"})
        run_once(parse_config(yaml.safe_dump(config)), root, trigger="test")
    return root
