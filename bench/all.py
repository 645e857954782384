"""`make bench`: every bench under bench/, one after the other, then one table of all their targets.

Each bench runs as its own process (so one's memory and imports never colour another's figures) with its
output passed through; the lines :func:`bench.report.result` printed are gathered into the table. Exits
non-zero only when a bench itself failed to measure (a crash, no Synapse); a missed target is a FAIL row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.report import MARK  # noqa: E402

BENCHES = (
    "dispatch.py",
    "memory.py",
    "catchup.py",
    "meetings.py",
    "repertoire_search.py",
    "digest.py",
    "dashboard.py",
    "levels.py",
    "commands.py",
    "matrix_latency.py",
)


def run(script: str) -> tuple[list[dict], int, float]:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(HERE / script)], stdout=subprocess.PIPE, text=True, cwd=HERE.parent
    )
    assert process.stdout is not None
    results: list[dict] = []
    for line in process.stdout:
        if line.startswith(MARK):
            results.append(json.loads(line[len(MARK) :]))
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
    return results, process.wait(), time.monotonic() - started


def number(value: float, unit: str) -> str:
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[dict]) -> str:
    header = ("bench", "figure", "measured", "target", "ratio", "")
    lines = [header]
    for row in rows:
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}× {row['reference']}"
        verdict = {True: "PASS", False: "FAIL", None: "info"}[row["passed"]]
        lines.append(
            (row["bench"], row["figure"], number(row["value"], row["unit"]), row["target"], ratio, verdict)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def main() -> int:
    only = sys.argv[1:]
    rows: list[dict] = []
    broken: list[str] = []
    for script in BENCHES:
        if only and script.removesuffix(".py") not in only:
            continue
        print(f"\n=== bench/{script}", flush=True)
        results, code, took = run(script)
        print(f"=== bench/{script}: {took:.0f} s", flush=True)
        rows += results
        if code != 0:
            broken.append(f"{script} (exit {code})")
    print("\n" + table(rows))
    judged = [row for row in rows if row["passed"] is not None]
    passed = sum(row["passed"] for row in judged)
    print(f"\nbench: {passed}/{len(judged)} targets met")
    if broken:
        print("bench: could not measure: " + ", ".join(broken))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
