"""The `copbot` command: copbot is loaded with the garbage collector off, then run.

Loading copbot creates a few hundred thousand objects (modules, classes, table and command definitions)
that live as long as the process; with the collector on, Python walks them again and again while they are
made — ~10 % of the time from process start to the first reply, measured. ``CopBot.start`` freezes what
start-up built and turns the collector on. `python -m bot` does the same in ``bot/__main__.py``.
"""

from __future__ import annotations

import gc


def main() -> int:
    gc.disable()
    from bot.__main__ import main as run_command

    return run_command()
