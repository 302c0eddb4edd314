"""Progress bars on a terminal, one log line per stage elsewhere (logs under Airflow or in pipes stay clean).

    with Progress("pages", len(tasks)) as bar:   # a tqdm bar on a TTY
        ...; bar.update()                         # elsewhere: "pages: 48 of 48 in 3.2 s" logged at the end
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("newsingest.progress")


def on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class Progress:
    def __init__(self, label: str, total: int, *, enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = enabled
        self._t0 = time.monotonic()
        self._bar = None
        if enabled and total and on_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"{label:>6}", unit=label.rstrip("s") or "item", leave=False,
                             dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.total:
            log.info("%s: %d of %d in %.1f s", self.label, self.done, self.total, time.monotonic() - self._t0,
                     extra={"stage": self.label, "done": self.done, "total": self.total})
