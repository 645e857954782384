"""`python -m bot`: the process prepared as the `copbot` command prepares it (``bot/launch.py``), then the
same command line (``bot/cli.py``)."""

from __future__ import annotations

if __name__ == "__main__":
    import sys

    from bot.launch import prepare

    prepare()
    from bot.cli import main

    sys.exit(main())
