"""Progress bars on a terminal, silence elsewhere (logs under Airflow or in pipes stay clean)."""

from __future__ import annotations

import sys
from types import TracebackType


class Progress:
    def __init__(self, label: str, total: int, *, enabled: bool = True) -> None:
        self._bar = None
        if enabled and total and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"{label:>6}", unit=label.rstrip("s") or "item", leave=False,
                             dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
