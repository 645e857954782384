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
ON_TIME = timedelta(minutes=1)
"""A reminder sent within this of its due time says its lead ("starts in 24 hours")."""


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

    def label_at(self, now: datetime) -> str:
        """How long until the meeting, said when the reminder goes out: the lead when on time, and the
        time actually left when late (after a downtime, "starts in 24 hours" half an hour late was wrong
        by half an hour; a 15-minute reminder ten minutes late, by two thirds)."""
        if now - self.due <= ON_TIME:
            return self.label
        return time_left_words(self.occurrence.start - now)


def time_left_words(left: timedelta) -> str:
    """``23 hours 30 minutes``, ``2 days 1 hour``, ``5 minutes``: at most two units, minutes rounded down
    (a reminder never says more time is left than there is)."""
    minutes = int(left.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    units = [(minutes // 1440, "day"), (minutes % 1440 // 60, "hour"), (minutes % 60, "minute")]
    first = next(index for index, (count, _) in enumerate(units) if count)
    said = [f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in units[first : first + 2] if count]
    return " ".join(said)


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
