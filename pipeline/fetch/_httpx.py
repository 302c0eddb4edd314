"""`httpx`, imported without its command-line client.

httpx's __init__ imports `httpx._main` (rich, click, pygments: about half of httpx's import time, paid by
every run) whenever those packages are installed, as they are beside Airflow; the library never uses it.
Import httpx from here: the block on `httpx._main` is lifted right after, so an explicit
`import httpx._main` elsewhere still works.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["httpx"]


def _import() -> ModuleType:
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]  # that import fails: httpx falls back
        try:
            import httpx
        finally:
            if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
                del sys.modules["httpx._main"]
    import httpx

    return httpx


httpx = _import()
