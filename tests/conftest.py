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
