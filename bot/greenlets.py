"""Greenlets for SQLAlchemy's asyncio layer, kept and used again instead of started anew for every call.

SQLAlchemy runs each call of its asyncio API (an ``execute``, a ``commit``, a session's ``close``, checking a
connection out or in) in a new greenlet, which the call's sync code leaves to await the driver. On
CPython 3.11 the first switch into a new greenlet gives it a data stack of its own — a chunk the
interpreter maps from the operating system — and its end unmaps it: two system calls and the page faults
between, ~10 µs on this machine (``strace -c``: one ``mmap`` and one ``munmap`` per greenlet), while the
rest of a switch costs well under 1 µs: each call's greenlet cost more than SQLite's insert of a row. A
command that writes makes two or three such calls (its statements, the commit with its handled id); a
dashboard page or a digest, dozens.

:func:`install` gives SQLAlchemy :class:`Spawned` in place of its greenlet class. A :class:`Spawned`
looks to SQLAlchemy's ``greenlet_spawn`` like the greenlet it made (``switch``, ``throw``, ``dead``) but
runs the function in a :class:`Worker` taken from this thread's pool: a greenlet that never ends, whose
data stack stays mapped, and which goes back to the pool when the function has returned or raised. What
the function sees is unchanged: ``await_`` finds the running greenlet marked as SQLAlchemy's, its parent
is the task that spawned it, and it runs in that task's context (contextvars). A call abandoned half-way
(its task cancelled, or its coroutine dropped) gets the exception where it awaits, as before, and its
worker, once the function has let it through, goes back to the pool.

SQLAlchemy's way stays where its internals are not the ones this was written against (a version that
moved them): :func:`install` then returns False and changes nothing — slower, never wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import greenlet

POOL_SIZE = 32
"""Idle workers kept per thread: as many calls as may await at once in the usual run of things (each open
session's statement, the journal's batch, a web page's queries). More at once start new workers, which
end with their call, as SQLAlchemy's greenlets did."""


class _Finished:
    """What a worker hands back when its function has returned or raised (an awaitable is anything else)."""

    __slots__ = ("error", "result")

    def __init__(self, result: Any, error: BaseException | None) -> None:
        self.result = result
        self.error = error


class Worker(greenlet.greenlet):
    """A greenlet that runs one function after another, switching to its parent between them."""

    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        while True:
            try:
                finished = _Finished(fn(*args, **kwargs), None)
            except greenlet.GreenletExit:
                raise  # the worker itself is being freed (abandoned mid-call): end, do not report
            except BaseException as error:  # handed to the caller, which raises it as SQLAlchemy's would
                finished = _Finished(None, error)
            del fn, args, kwargs  # hold nothing while idle (the caller empties ``finished``)
            parent = self.parent
            assert parent is not None  # set by Spawned before every call
            fn, args, kwargs = parent.switch(finished)


class _Pool(threading.local):
    """Idle workers of the current thread (a greenlet can only run in the thread that made it)."""

    def __init__(self) -> None:
        self.idle: list[Worker] = []


_pool = _Pool()


class Spawned:
    """What SQLAlchemy's ``greenlet_spawn`` takes for the greenlet it made for ``fn``: the first ``switch``
    starts ``fn`` in a worker; each returns what ``fn`` awaits next, or its result once ``dead``."""

    __slots__ = ("_fn", "_worker", "dead")

    def __init__(self, fn: Callable[..., Any], driver: greenlet.greenlet) -> None:
        idle = _pool.idle
        worker = idle.pop() if idle else Worker()
        try:
            worker.parent = driver
        except ValueError:  # the driver descends from it (a call abandoned inside another): a new one
            worker = Worker()
            worker.parent = driver
        worker.gr_context = driver.gr_context
        self._worker: Worker | None = worker
        self._fn: Callable[..., Any] | None = fn
        self.dead = False

    def switch(self, *args: Any, **kwargs: Any) -> Any:
        worker = self._worker
        if worker is None:
            raise greenlet.error("this call has already finished")
        fn, self._fn = self._fn, None
        if fn is not None:
            return self._after(worker.switch(fn, args, kwargs))
        return self._after(worker.switch(*args))

    def throw(self, *exc_info: Any) -> Any:
        worker = self._worker
        if worker is None:
            raise greenlet.error("this call has already finished")
        return self._after(worker.throw(*exc_info))

    def _after(self, outcome: Any) -> Any:
        if outcome.__class__ is not _Finished:
            return outcome  # something for the caller to await
        worker = self._worker
        self._worker = None
        self.dead = True
        if worker is not None:
            worker.gr_context = None  # hold no task's context while idle
            idle = _pool.idle
            if len(idle) < POOL_SIZE:
                idle.append(worker)
        result, error = outcome.result, outcome.error
        outcome.result = outcome.error = None  # the idle worker still refers to it
        if error is not None:
            raise error
        return result


def install() -> bool:
    """Have SQLAlchemy's asyncio layer run its calls in pooled workers; False (nothing changed) if this
    SQLAlchemy keeps its greenlet class elsewhere than where this knows to find it."""
    from sqlalchemy.util import concurrency

    shim = getattr(concurrency, "_concurrency_shim", None)
    if shim is None or not hasattr(shim, "_initialize"):
        return False
    shim._initialize()
    current = getattr(shim, "_AsyncIoGreenlet", None)
    if current is Spawned:
        return True
    if not (isinstance(current, type) and issubclass(current, greenlet.greenlet)):
        return False
    shim._AsyncIoGreenlet = Spawned
    return True


def installed() -> bool:
    from sqlalchemy.util import concurrency

    shim = getattr(concurrency, "_concurrency_shim", None)
    return getattr(shim, "_AsyncIoGreenlet", None) is Spawned
