"""Loaded with the collector off (bot/launch.py), copbot collects the garbage of loading before it freezes
what start-up built — after its first replies, not before them (bot/app.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from bot import app
from bot.app import CopBot
from tests.conftest import make_settings


class _Cycle:
    """An object that keeps itself alive by reference counts alone: only a collection frees it."""

    def __init__(self) -> None:
        self.me = self


async def test_the_garbage_of_loading_is_collected_before_it_is_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "SETTLE_SECONDS", 0.05)
    bot = CopBot(make_settings(tmp_path), adapters=[], plugins=[], run_scheduler_loop=False)
    gc.disable()
    try:
        garbage = _Cycle()
        left = weakref.ref(garbage)
        del garbage
        await bot.start()
        assert not gc.isenabled() and left() is not None, "collected before start-up was done"
        for _ in range(100):
            if gc.isenabled():
                break
            await asyncio.sleep(0.01)
        assert gc.isenabled()
        assert left() is None, "frozen with the garbage still in it"
        assert gc.get_freeze_count() > 0
    finally:
        await bot.stop()
        gc.unfreeze()
        gc.enable()


async def test_with_the_collector_on_start_up_freezes_at_once(tmp_path: Path) -> None:
    bot = CopBot(make_settings(tmp_path), adapters=[], plugins=[], run_scheduler_loop=False)
    assert gc.isenabled()
    try:
        await bot.start()
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        await bot.stop()
        gc.unfreeze()
