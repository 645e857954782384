"""Persistent jobs in copbot's own database, driven by an injectable clock.

Jobs, their triggers (date, interval, cron) and their storage are APScheduler 3's: the
``SQLAlchemyJobStore`` keeps them in the ``apscheduler_jobs`` table next to copbot's data. The loop that
decides what is due is copbot's own, for three reasons APScheduler's built-in schedulers cannot serve:
it reads time from copbot's :class:`~bot.clock.Clock` (tests move time instead of sleeping), a test can
await ``run_due()`` and know the jobs have finished, and a job is advanced in the store *before* it runs,
so a crash or restart mid-run never fires it twice (handlers are idempotent anyway).

Targets are names (``"polls.close"``), not pickled callables: a job stays valid when code changes and
plugins are reloaded, and a job whose target is gone is logged and dropped, not crashed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine

from bot.clock import Clock

log = logging.getLogger(__name__)

Runner = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_SLEEP = 30.0
DEFAULT_GRACE = timedelta(hours=6)


def job_target(**payload: Any) -> None:
    """What APScheduler stores as a job's callable; copbot runs ``payload['target']`` by name instead."""


class Scheduler:
    """Stable job ids, persistence across restarts, at-most-once firing per due time."""

    timezone = UTC  # read by APScheduler's Job when it normalises run times

    def __init__(self, url: str, clock: Clock, runner: Runner) -> None:
        self.clock = clock
        self._runner = runner
        self._engine = create_engine(url, connect_args=_connect_args(url))
        self._store = SQLAlchemyJobStore(engine=self._engine)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.running = False
        self.fired = 0

    # --- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Attach the job store (its table is created by the migrations)."""
        await asyncio.to_thread(self._store.start, self, "default")

    async def start(self) -> None:
        """Run due jobs in the background until :meth:`stop`."""
        if self._task is None:
            self.running = True
            self._task = asyncio.create_task(self._loop(), name="copbot-scheduler")

    async def stop(self) -> None:
        self.running = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._store.shutdown()
        self._engine.dispose()

    # --- adding and removing ----------------------------------------------------------------------------

    async def run_at(self, job_id: str, when: datetime, target: str, **payload: Any) -> None:
        """A one-off job; adding the same id again replaces it (so callers can reschedule freely)."""
        await self._put(job_id, DateTrigger(run_date=when, timezone=UTC), target, payload, replace=True)

    async def every(
        self,
        job_id: str,
        target: str,
        *,
        interval: timedelta | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        **payload: Any,
    ) -> None:
        """A recurring job; declaring it again at start-up keeps its stored next run time."""
        trigger = make_trigger(interval=interval, cron=cron, timezone=timezone, now=self.clock.now())
        existing = await asyncio.to_thread(self._store.lookup_job, job_id)
        if existing is not None and _same_trigger(existing.trigger, trigger):
            return
        await self._put(job_id, trigger, target, payload, replace=True)

    async def cancel(self, job_id: str) -> bool:
        try:
            await asyncio.to_thread(self._store.remove_job, job_id)
        except JobLookupError:
            return False
        return True

    async def next_run(self, job_id: str) -> datetime | None:
        job = await asyncio.to_thread(self._store.lookup_job, job_id)
        return job.next_run_time.astimezone(UTC) if job and job.next_run_time else None

    async def job_ids(self) -> list[str]:
        jobs = await asyncio.to_thread(self._store.get_all_jobs)
        return [job.id for job in jobs]

    async def _put(
        self, job_id: str, trigger: BaseTrigger, target: str, payload: dict[str, Any], *, replace: bool
    ) -> None:
        next_run = trigger.get_next_fire_time(None, self.clock.now())
        job = Job(
            self,
            id=job_id,
            func=job_target,
            args=(),
            kwargs={"target": target, **payload},
            trigger=trigger,
            executor="default",
            name=target,
            misfire_grace_time=int(DEFAULT_GRACE.total_seconds()),
            coalesce=True,
            max_instances=1,
            next_run_time=next_run,
        )

        def _write() -> None:
            if replace and self._store.lookup_job(job_id) is not None:
                self._store.update_job(job)
            else:
                self._store.add_job(job)

        async with self._lock:
            await asyncio.to_thread(_write)
        self._wake.set()

    # --- running ----------------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Run every job due by the clock's now; returns how many ran. Tests await this after moving time."""
        ran = 0
        async with self._lock:
            now = self.clock.now()
            due: list[Job] = await asyncio.to_thread(self._store.get_due_jobs, now)
            batch: list[tuple[Job, bool]] = []
            for job in due:
                latest = job.next_run_time
                following = job.trigger.get_next_fire_time(latest, now)
                while following is not None and following <= now:  # coalesce missed runs into one
                    latest, following = following, job.trigger.get_next_fire_time(following, now)
                late = now - latest
                runnable = job.misfire_grace_time is None or late <= timedelta(seconds=job.misfire_grace_time)
                if following is None:
                    await asyncio.to_thread(self._store.remove_job, job.id)
                else:
                    job._modify(next_run_time=following)
                    await asyncio.to_thread(self._store.update_job, job)
                if not runnable:
                    log.warning("job %s missed its time by %s and was skipped", job.id, late)
                batch.append((job, runnable))
        for job, runnable in batch:
            if not runnable:
                continue
            payload = dict(job.kwargs)
            target = payload.pop("target")
            try:
                await self._runner(target, {"job_id": job.id, **payload})
            except Exception:
                log.exception("scheduled job %s (%s) failed", job.id, target)
            ran += 1
            self.fired += 1
        return ran

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
                next_time = await asyncio.to_thread(self._store.get_next_run_time)
            except Exception:
                log.exception("scheduler tick failed; retrying")
                next_time = None
            delay = MAX_SLEEP
            if next_time is not None:
                delay = min(MAX_SLEEP, max(0.0, (next_time - self.clock.now()).total_seconds()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass


def make_trigger(
    *, interval: timedelta | None, cron: str | None, timezone: str, now: datetime
) -> BaseTrigger:
    if (interval is None) == (cron is None):
        raise ValueError("a recurring job needs exactly one of interval or cron")
    if cron is not None:
        return CronTrigger.from_crontab(cron, timezone=timezone)
    assert interval is not None
    return IntervalTrigger(seconds=int(interval.total_seconds()), start_date=now + interval, timezone=UTC)


def _same_trigger(left: BaseTrigger, right: BaseTrigger) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, IntervalTrigger) and isinstance(right, IntervalTrigger):
        return left.interval == right.interval
    return str(left) == str(right)


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if url.startswith("sqlite") else {}
