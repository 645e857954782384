"""One machine-readable line per judged figure, so that `make bench` can print every bench in one table.

Each bench keeps printing its own detail for a reader; :func:`result` adds a line starting with
:data:`MARK` that ``bench/all.py`` collects. The ratio is the figure against its reference: the floor bot
measured in the same run where there is one, otherwise the target itself (so ≤ 1.00× passes a "≤" target
and ≥ 1.00× a "≥" target).
"""

from __future__ import annotations

import json

MARK = "bench-result "


def result(
    bench: str,
    figure: str,
    value: float,
    unit: str,
    target: str,
    ratio: float | None,
    passed: bool | None,
    *,
    reference: str = "target",
) -> None:
    """``passed`` None: shown for information, not judged."""
    record = {
        "bench": bench,
        "figure": figure,
        "value": value,
        "unit": unit,
        "target": target,
        "ratio": ratio,
        "reference": reference,
        "passed": passed,
    }
    print(MARK + json.dumps(record, ensure_ascii=False), flush=True)
