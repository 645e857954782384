"""The `copbot` command: how the process is prepared before copbot is loaded, then run.

* **No garbage collection while loading.** Loading copbot creates a few hundred thousand objects (modules,
  classes, table and command definitions) that live as long as the process; with the collector on,
  Python walks them again and again while they are made — ~10 % of the time from process start to the
  first reply, measured. ``CopBot.start`` freezes what start-up built and turns the collector on.
* **CA certificates looked up when needed.** aiohttp makes its verifying TLS context when it is imported,
  and OpenSSL then parses the whole CA bundle (~140 certificates, ~2 MB resident for the life of the
  process) although copbot talks TLS to one or two servers. Where the system keeps its CAs in a hashed
  directory as well (Debian, Ubuntu, Alpine: ``/etc/ssl/certs/<hash>.0``), OpenSSL is pointed at that
  directory only, and loads just the CAs of the servers copbot meets; verification is unchanged. An
  ``SSL_CERT_FILE`` naming other CAs than the system's is always respected.

`python -m bot` does the same (``bot/__main__.py``); the command line itself is ``bot/cli.py``.
"""

from __future__ import annotations

import gc
import os
import ssl
from pathlib import Path

_NO_BUNDLE = "/nonexistent/copbot-uses-the-hashed-ca-directory"


def prepare() -> None:
    gc.disable()
    paths = ssl.get_default_verify_paths()
    given = os.environ.get("SSL_CERT_FILE")
    if given and Path(given).resolve() != Path(paths.openssl_cafile).resolve():
        return  # the operator's own CAs (naming the system's bundle there changes nothing)
    directory = Path(paths.capath or paths.openssl_capath)
    if any(directory.glob("*.0")):  # hashed: OpenSSL finds each CA by its subject's hash
        os.environ["SSL_CERT_FILE"] = _NO_BUNDLE


def main() -> int:
    prepare()
    from bot.cli import main as run_command

    return run_command()
