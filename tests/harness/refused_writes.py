"""A running copbot's SQLite database made to refuse writes, as a read-only file or a full disk does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from bot.db import Database


class RefusedWrites:
    """Makes copbot's running SQLite database refuse writes as a read-only file or a full disk does: on
    every connection copbot takes from its pool (``PRAGMA query_only``, or ``max_page_count`` at the pages
    the file has), until :meth:`lift` — the cause going away, with nothing restarted."""

    def __init__(self, db: Database, kind: str) -> None:
        self.engine = db.engine.sync_engine
        self.kind = kind
        self.active = True
        event.listen(self.engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if self.kind == "read-only":
                cursor.execute(f"PRAGMA query_only = {int(self.active)}")
            elif self.active:
                cursor.execute("PRAGMA page_count")
                pages = cursor.fetchone()[0]
                cursor.execute(f"PRAGMA max_page_count = {pages}")
            else:
                cursor.execute("PRAGMA max_page_count = 4294967294")
        finally:
            cursor.close()

    def lift(self) -> None:
        self.active = False

    def remove(self) -> None:
        event.remove(self.engine, "checkout", self._on_checkout)
