#!/usr/bin/env bash
# Print the interpreter `make` builds .venv with: of the CPython 3.11 builds on this machine that can make a
# virtual environment, the fastest at a short pure-Python loop. 3.11 because the image runs it
# (Dockerfile: python:3.11-slim); the fastest because builds differ: a distribution's (Debian's
# /usr/bin/python3.11) and the image's are compiled with profile-guided optimisation and LTO, a pyenv or
# hand-made source build is not unless asked — measured here, copbot's handlers and queries ran ~1.3×
# slower on one (README, Performance). Prints `python3` when no candidate qualifies, as before.
#
# Set PYTHON (`make PYTHON=/path/to/python3 test`) to choose yourself; this script is then not run.
set -uo pipefail

loop='import time
best = 1e9
for _ in range(3):
    started = time.perf_counter()
    table = {}
    for number in range(200_000):
        table[number] = str(number)
    best = min(best, time.perf_counter() - started)
print(best)'

check='import sys, venv, ensurepip
assert sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)
print(sys.executable)'

declare -A seen=()
best_time=""
best_python=""
for candidate in python3.11 python3 /usr/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    real="$("$candidate" -c "$check" 2>/dev/null)" || continue
    real="$(readlink -f "$real")"
    [[ -n "$real" && -z "${seen[$real]:-}" ]] || continue
    seen[$real]=1
    took="$("$real" -c "$loop" 2>/dev/null)" || continue
    if [[ -z "$best_time" ]] || awk -v a="$took" -v b="$best_time" 'BEGIN { exit !(a < b) }'; then
        best_time="$took"
        best_python="$real"
    fi
done
echo "${best_python:-python3}"
