"""When to remind, pure: the next (occurrence, lead) after a moment, and whether a late one still counts.

A meeting has one reminder job at a time: when it has run, the next reminder is planned from the rule.
So a series rolls on for ever with one stored job, and a restart finds the next reminder from the
meeting itself (the last reminder handled is stored on the meeting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.timeparse import format_duration
from plugins.meetings.recurrence import Occurrence, Series

DEFAULT_LEADS = (timedelta(hours=24), timedelta(minutes=15))


@dataclass(frozen=True, slots=True)
class Reminder:
    occurrence: Occurrence
    lead: timedelta

    @property
    def due(self) -> datetime:
        return self.occurrence.start - self.lead

    @property
    def label(self) -> str:
        """``24 hours``, ``15 minutes``, ``2 days``: how a person says the lead."""
        return lead_words(self.lead)


def lead_words(lead: timedelta) -> str:
    minutes = int(lead.total_seconds() // 60)
    for size, unit in ((2880, "day"), (60, "hour"), (1, "minute")):
        if minutes >= size and minutes % (size if unit != "day" else 1440) == 0:
            count = minutes // (1440 if unit == "day" else size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return format_duration(lead)


def next_reminder(
    series: Series, leads: Sequence[timedelta], after: datetime, now: datetime | None = None
) -> Reminder | None:
    """The reminder due soonest after ``after`` (strictly), over every lead and occurrence; with ``now``,
    only of occurrences that start after it (a reminder of one that has started is never sent:
    :func:`still_worth_sending`). So after weeks down a series' job goes straight to the next reminder
    that can count, instead of stepping through every missed one, a run of the scheduler each."""
    best: Reminder | None = None
    for lead in leads:
        occurrence = series.next(after + lead if now is None else max(after + lead, now))
        if occurrence is None:
            continue
        candidate = Reminder(occurrence, lead)
        if best is None or (candidate.due, -candidate.lead) < (best.due, -best.lead):
            best = candidate
    return best


def still_worth_sending(reminder: Reminder, leads: Sequence[timedelta], now: datetime) -> bool:
    """A reminder is sent late only while the meeting has not started, and only if no shorter lead of the
    same occurrence is due too (after a long downtime, one reminder — the most recent — is enough)."""
    if now >= reminder.occurrence.start:
        return False
    return not any(lead < reminder.lead and reminder.occurrence.start - lead <= now for lead in leads)
