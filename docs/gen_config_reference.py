"""Regenerate the config reference in docs/operator-guide.md from the settings models.

    python docs/gen_config_reference.py          # rewrite the generated section in place
    python docs/gen_config_reference.py --check  # exit 1 when the committed section is out of date

Run it after adding or changing a field in pipeline/settings.py (give the field a `description=`);
tests/test_cli_docs.py fails while the committed reference differs from the generated one.
"""

from __future__ import annotations

import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parent / "operator-guide.md"
BEGIN = "<!-- BEGIN GENERATED CONFIG REFERENCE (python docs/gen_config_reference.py) -->"
END = "<!-- END GENERATED CONFIG REFERENCE -->"


def render(guide_text: str) -> str:
    from pipeline.configcheck import config_reference_markdown

    head, found, rest = guide_text.partition(BEGIN)
    if not found or END not in rest:
        raise SystemExit(f"{GUIDE}: markers {BEGIN!r} and {END!r} not found")
    _old, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{config_reference_markdown()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(GUIDE.parent.parent))
    current = GUIDE.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            print(f"{GUIDE} is out of date: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        GUIDE.write_text(fresh, encoding="utf-8")
        print(f"updated {GUIDE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
