"""Persistent jobs in copbot's own database, driven by an injectable clock.

Jobs, their triggers (date, interval, cron) and their storage are APScheduler 3's: the
``SQLAlchemyJobStore`` keeps them in the ``apscheduler_jobs`` table next to copbot's data. The loop that
decides what is due is copbot's own, because APScheduler's schedulers cannot give the guarantees copbot
needs: it reads time from copbot's :class:`~bot.clock.Clock` (tests move time instead of sleeping), a test
can await ``run_due()`` and know the jobs have finished, and — the rule learned the hard way — **a job
leaves the store only after its work is committed.** The job runs first (its handler's unit of work
commits, its messages go out through the outbox); only then is it removed, or moved to its next time. A
process killed at any step before that finds the job still stored at the next start and runs it again, and
handlers are idempotent (a closed poll stays closed; the outbox sends a message once), so the work is done
exactly once. A job that fails is retried with back-off instead of being dropped.

Overdue work is never skipped by default: a poll close or a digest runs however late the bot comes back.
A job whose lateness makes it pointless (a reminder after its meeting) says so with its own ``grace``.

Targets are names (``"polls.close"``), not pickled callables: a job stays valid when code changes and
plugins are reloaded, and a job whose target is gone is logged and dropped, not crashed on.

**Owners.** Several copbot processes may share one database, each serving some communities (README
"Running more than one process"). Every job has an *owner*, stored in its own column: the slug of the
community it belongs to (given by the caller, or a ``community`` in its payload), or ``@<instance>`` for
a process's own work (its periodic sweeps). A scheduler given ``owners`` looks only at due jobs of those
owners, so each job runs in the one process serving its community; without ``owners`` (one process
serves everything) it runs them all. A job planned while another job runs (a reminder planning the next)
inherits that job's owner. Job ids stay unique across all processes: ``lookup``/``ensure`` see every job.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import pickle
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime
from sqlalchemy import Column, Unicode, and_, create_engine, null, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from bot import failpoints
from bot.clock import Clock
from bot.db import is_unavailable
from bot.health import Trouble
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Runner = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_SLEEP = 30.0
MAX_ATTEMPTS = 8
"""A one-off job that keeps failing is retried this many times (1 min, 2, 4 … up to an hour apart)."""
STOP_GRACE = 15.0
"""Seconds ``stop`` waits for a job in progress to finish before cancelling it (it stays stored)."""
_TICK = timedelta(seconds=1)
_ROUNDS = 10
"""How many times one pass looks again for jobs that fell due while it ran (see :meth:`Scheduler.run_due`)."""
_ATTEMPT = "_attempt"
_GRACE = "_grace_seconds"
_OWNER = "_owner"
OWNER_LENGTH = 64
_running_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar("copbot_job_owner", default=None)
"""The owner of the job running in this task: what it plans next belongs to the same community."""


def job_target(**payload: Any) -> None:
    """What APScheduler stores as a job's callable; copbot runs ``payload['target']`` by name instead."""


class OwnedJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy store with an ``owner`` column (migration 0014): due jobs and the next run
    time are read for this process's owners only (all of them when ``owners`` is None)."""

    def __init__(self, engine: Engine, owners: Collection[str] | None) -> None:
        super().__init__(engine=engine)
        self.jobs_t.append_column(Column("owner", Unicode(OWNER_LENGTH), nullable=False, server_default=""))
        self.owners = sorted(owners) if owners is not None else None

    def _mine(self) -> list[ColumnElement[bool]]:
        return [] if self.owners is None else [self.jobs_t.c.owner.in_(self.owners)]

    def get_due_jobs(self, now: datetime) -> list[Job]:
        timestamp = datetime_to_utc_timestamp(now)
        jobs: list[Job] = self._get_jobs(self.jobs_t.c.next_run_time <= timestamp, *self._mine())
        return jobs

    def get_next_run_time(self) -> datetime | None:
        query = (
            select(self.jobs_t.c.next_run_time)
            .where(and_(self.jobs_t.c.next_run_time != null(), *self._mine()))
            .order_by(self.jobs_t.c.next_run_time)
            .limit(1)
        )
        with self.engine.begin() as connection:
            found: datetime | None = utc_timestamp_to_datetime(connection.execute(query).scalar())
            return found

    def add_job(self, job: Job) -> None:
        insert = self.jobs_t.insert().values(**self._columns(job), id=job.id)
        with self.engine.begin() as connection:
            try:
                connection.execute(insert)
            except IntegrityError:
                raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        update = self.jobs_t.update().values(**self._columns(job)).where(self.jobs_t.c.id == job.id)
        with self.engine.begin() as connection:
            if connection.execute(update).rowcount == 0:
                raise JobLookupError(job.id)

    def _columns(self, job: Job) -> dict[str, Any]:
        return {
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
            "owner": owner_of(job),
        }


def owner_of(job: Job) -> str:
    """The job's owner as stored in it ("" for a job stored before owners existed)."""
    return str(job.kwargs.get(_OWNER, ""))


class Scheduler:
    """Stable job ids, persistence across restarts, at-most-once firing per due time."""

    timezone = UTC  # read by APScheduler's Job when it normalises run times

    def __init__(
        self,
        url: str,
        clock: Clock,
        runner: Runner,
        *,
        owners: Collection[str] | None = None,
        instance: str = "",
    ) -> None:
        """``owners``: the communities (slugs) whose jobs this process runs, None for all; ``instance``:
        this process's name, whose own jobs are owned by ``@<instance>`` (see the module docstring)."""
        self.clock = clock
        self._runner = runner
        self.own = f"@{instance}"
        """The owner of this process's own jobs, and of jobs that belong to no community."""
        self.partitioned = owners is not None
        self._engine = create_engine(url, connect_args=_connect_args(url))
        self._store = OwnedJobStore(self._engine, None if owners is None else {*owners, self.own})
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # store writes
        self._running = asyncio.Lock()  # one pass over due jobs at a time
        self._closing = False
        self.running = False
        self.fired = 0
        self.trouble = Trouble("scheduler", log)
        """Passes over due jobs failing (the database refusing writes): said once per streak."""

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
        """Let a job in progress finish (it is then settled in the store), then stop the loop."""
        self.running = False
        self._closing = True
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(self._running.acquire(), timeout=STOP_GRACE)
        except TimeoutError:
            log.warning("a scheduled job was still running at stop; it stays stored and runs next time")
        else:
            self._running.release()
        if task is not None:
            await cancel_and_wait(task, what="the scheduler's loop")
        self._store.shutdown()
        self._engine.dispose()

    # --- adding and removing ----------------------------------------------------------------------------

    def own_id(self, job_id: str) -> str:
        """The id of one of this process's own jobs (a periodic sweep): ``job_id@<instance>`` when several
        processes share the database, so that each has its own."""
        return f"{job_id}{self.own}" if self.partitioned else job_id

    async def run_at(
        self,
        job_id: str,
        when: datetime,
        target: str,
        *,
        grace: timedelta | None = None,
        owner: str | None = None,
        **payload: Any,
    ) -> None:
        """A one-off job; adding the same id again replaces it (so callers can reschedule freely).

        ``grace``: how late the job may still run; later than that it is skipped (None: always run).
        ``owner``: the community (slug) it belongs to; see the module docstring for the default.
        """
        if grace is not None:
            payload[_GRACE] = int(grace.total_seconds())
        payload[_OWNER] = self._owner(owner, payload)
        await self._put(job_id, DateTrigger(run_date=when, timezone=UTC), target, payload, replace=True)

    async def ensure(
        self, job_id: str, when: datetime, target: str, *, owner: str | None = None, **payload: Any
    ) -> bool:
        """Add a one-off job unless one with this id is stored; True when it was missing.

        At start-up plugins declare the jobs their own data implies (an open poll's close), so work whose
        job was lost — or never stored — is still found and done. A stored job without an owner (stored
        before owners existed) is given ``owner``.
        """
        owner = self._owner(owner, payload)
        existing = await asyncio.to_thread(self._store.lookup_job, job_id)
        if existing is not None:
            if not owner_of(existing):
                await self._claim(existing, owner)
            return False
        payload[_OWNER] = owner
        await self._put(job_id, DateTrigger(run_date=when, timezone=UTC), target, payload, replace=False)
        return True

    def _owner(self, owner: str | None, payload: dict[str, Any]) -> str:
        """Who runs a job: as given, else the community named in its payload, else the owner of the job
        that is planning it, else this process."""
        if owner is not None:
            return owner
        community = payload.get("community")
        if isinstance(community, str) and community:
            return community
        return _running_owner.get() or self.own

    async def _claim(self, job: Job, owner: str) -> None:
        def _write() -> None:
            job._modify(kwargs={**job.kwargs, _OWNER: owner})
            self._store.update_job(job)

        async with self._lock:
            await asyncio.to_thread(_write)

    async def every(
        self,
        job_id: str,
        target: str,
        *,
        interval: timedelta | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        owner: str | None = None,
        **payload: Any,
    ) -> None:
        """A recurring job; declaring it again at start-up keeps its stored next run time."""
        trigger = make_trigger(interval=interval, cron=cron, timezone=timezone, now=self.clock.now())
        payload[_OWNER] = self._owner(owner, payload)
        existing = await asyncio.to_thread(self._store.lookup_job, job_id)
        if existing is not None and _same_trigger(existing.trigger, trigger):
            if owner_of(existing) != payload[_OWNER]:
                await self._claim(existing, payload[_OWNER])
            return
        # The first run is the next tick strictly after now: a digest declared at 09:00 on a Monday is
        # not due at once, on a brand-new bot.
        await self._put(job_id, trigger, target, payload, replace=True, after=self.clock.now() + _TICK)

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

    async def owners(self) -> dict[str, str]:
        """Every stored job's owner, by id (all processes' jobs)."""
        jobs = await asyncio.to_thread(self._store.get_all_jobs)
        return {job.id: owner_of(job) for job in jobs}

    async def _put(
        self,
        job_id: str,
        trigger: BaseTrigger,
        target: str,
        payload: dict[str, Any],
        *,
        replace: bool,
        after: datetime | None = None,
    ) -> None:
        next_run = trigger.get_next_fire_time(None, after or self.clock.now())
        job = Job(
            self,
            id=job_id,
            func=job_target,
            args=(),
            kwargs={"target": target, **payload},
            trigger=trigger,
            executor="default",
            name=target,
            misfire_grace_time=None,  # copbot's loop decides lateness: see _GRACE
            coalesce=True,
            max_instances=1,
            next_run_time=next_run,
        )

        def _write() -> None:
            if replace and self._store.lookup_job(job_id) is not None:
                self._store.update_job(job)
                return
            try:
                self._store.add_job(job)
            except ConflictingIdError:  # another process stored it meanwhile
                if replace:
                    self._store.update_job(job)

        async with self._lock:
            await asyncio.to_thread(_write)
        self._wake.set()

    # --- running ----------------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Run every job due by the clock's now; returns how many ran. Tests await this after moving time.

        Each job is settled in the store (removed, moved to its next time, or retried later) only after
        its handler returned — see the module docstring.
        """
        ran = 0
        async with self._running:
            now = self.clock.now()
            done: set[tuple[str, datetime | None]] = set()
            for _ in range(_ROUNDS):
                due: list[Job] = await asyncio.to_thread(self._store.get_due_jobs, now)
                # Jobs a job planned at a time already past (after a downtime, a day-before reminder
                # handing over to the 15-minute one) are run in this pass too, not a pass later — at
                # start-up, possibly never. Each job at each time once: one that plans itself at the
                # same past time again waits for the next pass.
                fresh = [job for job in due if (job.id, job.next_run_time) not in done]
                if not fresh:
                    break
                for job in fresh:
                    if self._closing:
                        return ran
                    done.add((job.id, job.next_run_time))
                    ran += await self._run_one(job, now)
        return ran

    async def _run_one(self, job: Job, now: datetime) -> int:
        scheduled = job.next_run_time
        latest, following = scheduled, next_fire_time(job.trigger, scheduled, now)
        while following is not None and following <= now:  # coalesce missed runs into one
            latest, following = following, next_fire_time(job.trigger, following, now)
        payload = dict(job.kwargs)
        target = payload.pop("target")
        attempt = int(payload.pop(_ATTEMPT, 0))
        grace = payload.pop(_GRACE, None)
        owner = payload.pop(_OWNER, "") or None
        late = now - latest
        if grace is not None and late > timedelta(seconds=int(grace)):
            log.warning("job %s missed its time by %s (grace %ss) and was skipped", job.id, late, grace)
            await self._settle(job, scheduled, following, failed=False, attempt=attempt, now=now)
            return 0
        failpoints.hit("job.due")
        failed = False
        running = _running_owner.set(owner)
        try:
            await self._runner(target, {"job_id": job.id, "due_at": latest, **payload})
        except Exception as error:
            failed = True
            if is_unavailable(error):  # the database said so itself, once; no traceback per job
                log.warning("scheduled job %s (%s) failed: the database is unavailable", job.id, target)
            else:
                log.exception("scheduled job %s (%s) failed", job.id, target)
        finally:
            _running_owner.reset(running)
        failpoints.hit("job.delivered")
        await self._settle(job, scheduled, following, failed=failed, attempt=attempt, now=now)
        self.fired += 1
        return 1

    async def _settle(
        self,
        job: Job,
        scheduled: datetime,
        following: datetime | None,
        *,
        failed: bool,
        attempt: int,
        now: datetime,
    ) -> None:
        """After the run: remove a one-off job, move a recurring one on, or retry a failed one later.

        A job replaced or cancelled while it ran (a meeting moved) is left as it now is.
        """

        def _write() -> None:
            current = self._store.lookup_job(job.id)
            if current is None or current.next_run_time != scheduled:
                return
            if failed and following is None and attempt + 1 < MAX_ATTEMPTS:
                retry_at = now + timedelta(seconds=min(3600, 60 * 2**attempt))
                current._modify(next_run_time=retry_at, kwargs={**current.kwargs, _ATTEMPT: attempt + 1})
                self._store.update_job(current)
                log.warning("job %s will be retried at %s (attempt %d)", job.id, retry_at, attempt + 2)
            elif following is None:
                if failed:
                    log.error("job %s failed %d times and is dropped", job.id, attempt + 1)
                self._store.remove_job(job.id)
            else:
                current._modify(next_run_time=following)
                self._store.update_job(current)

        async with self._lock:
            await asyncio.to_thread(_write)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
                next_time = await asyncio.to_thread(self._store.get_next_run_time)
            except Exception as error:
                self.trouble.failed(
                    "a pass over due jobs failed",
                    advice=f"retrying every {MAX_SLEEP:.0f} s",
                    level=logging.ERROR,
                    exc_info=None if is_unavailable(error) else error,
                )
                next_time = None
            else:
                self.trouble.recovered("due jobs run again")
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


def next_fire_time(trigger: BaseTrigger, previous: datetime, now: datetime) -> datetime | None:
    """The trigger's time after ``previous``, except that a cron line at set hours names each local time
    once. When the clocks go back, APScheduler's cron matches 02:30 before the change and 02:30 after it,
    an hour apart: a digest at 02:30 would be posted twice that night, the second covering one hour. As
    Vixie cron does, a job at set hours is not run again while the clock repeats times it has passed; one
    at every hour (``0 * * * *``) runs in both hours, each being an hour of its own. The stored trigger is
    APScheduler's own: nothing to rewrite in the job store."""
    following: datetime | None = trigger.get_next_fire_time(previous, now)  # APScheduler has no type hints
    if not isinstance(trigger, CronTrigger) or _every_hour(trigger):
        return following
    zone = trigger.timezone
    wall = previous.astimezone(zone).replace(tzinfo=None)
    while following is not None and following.astimezone(zone).replace(tzinfo=None) <= wall:  # repeated
        following = trigger.get_next_fire_time(following, following)
    return following


_LOOK_BACK = tuple(timedelta(hours=hours) for hours in (2, 2 * 24, 8 * 24, 32 * 24, 367 * 24))
"""How far back :func:`previous_fire_time` looks, nearest first: a line ticking every minute is walked
over two hours, not a year."""


def previous_fire_time(cron: str, timezone: str, before: datetime) -> datetime | None:
    """The last time a cron line (in ``timezone``) named before ``before``, within a year; None if none.
    APScheduler only counts forward, so this walks forward from a little before, then further back."""
    trigger = CronTrigger.from_crontab(cron, timezone=timezone)
    for reach in _LOOK_BACK:
        last: datetime | None = None
        tick: datetime | None = trigger.get_next_fire_time(None, before - reach)
        while tick is not None and tick < before:
            last, tick = tick, next_fire_time(trigger, tick, tick)
        if last is not None:
            return last
    return None


def _every_hour(trigger: CronTrigger) -> bool:
    hour = next(field for field in trigger.fields if field.name == "hour")
    return str(hour) == "*"


def _same_trigger(left: BaseTrigger, right: BaseTrigger) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, IntervalTrigger) and isinstance(right, IntervalTrigger):
        same: bool = left.interval == right.interval  # APScheduler has no type hints
        return same
    # A cron trigger's text leaves its zone out: the same line in a community's new zone is a new schedule.
    zones = str(getattr(left, "timezone", "")), str(getattr(right, "timezone", ""))
    return str(left) == str(right) and zones[0] == zones[1]


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if url.startswith("sqlite") else {}
