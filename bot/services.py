"""What every plugin is handed: the shared services of one running bot (no globals anywhere)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Settings
from bot.db import Database
from bot.metrics import Metrics
from bot.model import Event

if TYPE_CHECKING:
    from bot.adapters.base import Adapter
    from bot.pipeline import Pipeline
    from bot.registry import Registry
    from bot.scheduler import Scheduler


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics
    started_at: datetime
    scheduler: Scheduler | None = None
    registry: Registry | None = None
    pipeline: Pipeline | None = None
    adapters: dict[str, Adapter] = field(default_factory=dict)
    role: str = "active"
    """"active", or "standby" while another process of the same instance is active (bot/standby.py)."""
    ready: bool = False
    """True once start() has finished: until then /healthz says "starting", not "unhealthy" (the web part
    answers before the platforms and the scheduler run, so that a taken port fails first)."""
    emit: Callable[[Event], Awaitable[None]] | None = None
