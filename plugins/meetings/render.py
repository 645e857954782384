"""How meetings read in chat: times in the reader's zone (labelled), announcements, lists, reminders.

On a platform whose client shows times in each reader's own zone (Discord's ``<t:…>``), copbot uses that;
elsewhere it writes the time in the zone of whoever reads it, with the zone's name beside it, and where a
time is being set it adds UTC, so a mistake in the zone is visible at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.model import Button, Capability, Card, Content
from bot.timeparse import format_duration, format_when
from plugins.meetings.models import Meeting
from plugins.meetings.recurrence import ClockShift, Occurrence
from plugins.meetings.rsvp import Roster

WEEKDAYS = {
    "MO": "Mondays",
    "TU": "Tuesdays",
    "WE": "Wednesdays",
    "TH": "Thursdays",
    "FR": "Fridays",
    "SA": "Saturdays",
    "SU": "Sundays",
}
ADVERBS = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}


def when_set(moment: datetime, tz: str, reader: str | None = None) -> str:
    """A time just set, so a wrong zone shows at once: ``Tue 3 Mar 15:00 CET (14:00 UTC)``. Set in a zone
    other than the ``reader``'s (``--tz``), it is also shown in theirs, which is the clock they can check:
    ``Tue 3 Mar 15:00 EST (21:00 CET, 20:00 UTC)``. A clock that would read as one already shown is left
    out: the reader's at the meeting's offset or at UTC's, UTC at the meeting's."""
    local = moment.astimezone(ZoneInfo(tz))
    beside: list[str] = []
    if reader is not None and reader != tz:
        theirs = moment.astimezone(ZoneInfo(reader))
        if theirs.utcoffset() not in (local.utcoffset(), timedelta(0)):
            beside.append(_beside(moment, reader, local))
    if local.utcoffset() != timedelta(0):
        beside.append(_beside(moment, "UTC", local))
    shown = format_when(moment, tz)
    return f"{shown} ({', '.join(beside)})" if beside else shown


def _beside(moment: datetime, zone: str, local: datetime) -> str:
    """``21:00 CET``, with the day too when it is another day there than in the meeting's zone."""
    there = moment.astimezone(ZoneInfo(zone))
    return f"{there:%H:%M} {there.tzname()}" if there.date() == local.date() else format_when(moment, zone)


def repeats(meeting: Meeting) -> str:
    """The rule in words: 'weekly on Tuesdays', 'every 2 weeks', 'monthly (FREQ=MONTHLY;BYDAY=1TU)'."""
    if meeting.rule is None:
        return "once"
    parts = dict(part.split("=", 1) for part in meeting.rule.split(";"))
    interval = int(parts.get("INTERVAL", "1"))
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}[parts["FREQ"]]
    text = f"every {interval} {unit}s" if interval > 1 else ADVERBS[unit]
    if unit == "week":
        local = meeting.starts_at.astimezone(ZoneInfo(meeting.tz))
        days = parts.get("BYDAY")
        names = [WEEKDAYS.get(day, day) for day in days.split(",")] if days else [f"{local:%A}s"]
        text += " on " + ", ".join(names)
    elif set(parts) - {"FREQ", "INTERVAL"}:
        text += f" ({meeting.rule})"
    else:
        text += _skipped(meeting, unit)
    if meeting.count is not None:
        text += f", {meeting.count} time{'s' if meeting.count != 1 else ''}"  # "--count 1": not "1 times"
    elif meeting.until_at is not None:
        text += f", until {format_when(meeting.until_at, meeting.tz).rsplit(' ', 2)[0]}"
    return text


def _skipped(meeting: Meeting, unit: str) -> str:
    """A series on a day not every month (or year) has — the 29th to the 31st, 29 February — is skipped
    where that day is missing (RFC 5545, as calendar apps do): said, so nobody waits for a meeting in
    a February that has none."""
    local = meeting.starts_at.astimezone(ZoneInfo(meeting.tz))
    if unit == "month" and local.day >= 29:
        return f" on the {local.day}{'st' if local.day == 31 else 'th'} (not in months without one)"
    if unit == "year" and (local.month, local.day) == (2, 29):
        return " on 29 February (leap years only)"
    return ""


def clock_notes(tz: str, shifts: Sequence[ClockShift]) -> str:
    """What the planner of a series is told of meetings the clocks move (see :func:`clock_shifts`):
    ``01:30 does not exist on Sun 29 Mar in Europe/Lisbon (the clocks go forward): that meeting is at
    02:30 WEST.``"""
    said = []
    for shift in shifts:
        wall, held = shift.wall, shift.start.astimezone(ZoneInfo(tz))
        day = f"{wall:%a} {wall.day} {wall:%b}"
        if shift.skipped:
            said.append(
                f"{wall:%H:%M} does not exist on {day} in {tz} (the clocks go forward): "
                f"that meeting is at {held:%H:%M} {held.tzname()}."
            )
        else:
            said.append(
                f"{wall:%H:%M} happens twice on {day} in {tz} (the clocks go back): that meeting is at the "
                f"first, {held:%H:%M} {held.tzname()} ({shift.start.astimezone(UTC):%H:%M} UTC)."
            )
    return " ".join(said)


def places(cap: int) -> str:
    """``1 place``, ``12 places``."""
    return f"{cap} place{'s' if cap != 1 else ''}"


def rsvp_buttons(meeting_id: int) -> tuple[Button, ...]:
    return (
        Button("✅ Yes", f"meetings:{meeting_id}:yes"),
        Button("❔ Maybe", f"meetings:{meeting_id}:maybe"),
        Button("❌ No", f"meetings:{meeting_id}:no"),
    )


def announcement(
    meeting: Meeting,
    following: Occurrence | None,
    roster: Roster,
    *,
    prefix: str,
    capabilities: frozenset[Capability],
    shown_when: str,
    planner_zone: str | None = None,
) -> Content:
    """The meeting as posted (and edited in place as answers come in, and when it is cancelled), showing
    its ``following`` meeting (None: a series with none left), at ``shown_when`` as the platform's readers
    read a time (the card's When).

    Its headline is the planner's echo (see :func:`when_set`) of the meeting, or of the series' start and
    rule, and stays so on every edit and platform. A series whose next meeting is not its first says that
    one apart, labelled, as the card shows it: "planned for <the next one>, weekly" read as a series that
    began then, and after a move as one that moved to that day."""
    assert meeting.id is not None
    fields: list[tuple[str, str]] = [
        ("When", shown_when),
        ("Length", format_duration(timedelta(minutes=meeting.duration_minutes))),
        ("Repeats", repeats(meeting)),
    ]
    if meeting.place:
        fields.append(("Where", meeting.place))
    if meeting.cap is not None:
        fields.append(("Places", f"{meeting.cap}"))
    fields.append(("Answers", roster.counts()))
    title = f"📅 Meeting #{meeting.id}: {meeting.title}"
    if meeting.cancelled_at is not None:  # edited in place when cancelled: nothing left to answer
        card = Card(title=f"{title} (cancelled)", fields=tuple(fields), footer="This meeting is cancelled.")
        return Content(f"Meeting #{meeting.id} is cancelled.", card=card)
    headline = (
        f"Meeting #{meeting.id} planned for {when_set(meeting.starts_at, meeting.tz, planner_zone)}, "
        f"{repeats(meeting)}."
    )
    if meeting.rule is not None:  # a one-off's start is its meeting's, and moves with it
        if following is None:
            headline += " No meeting left in this series."
        elif following.start != meeting.starts_at:
            headline += f" Next meeting: {shown_when}{' (moved)' if following.moved else ''}."
    if Capability.BUTTONS in capabilities:
        how = "Answer with the buttons below."
        buttons = rsvp_buttons(meeting.id)
    else:
        how = f"Answer with {prefix}meeting rsvp {meeting.id} yes|no|maybe"
        if Capability.REACTIONS in capabilities:
            how += " or react ✅ ❌ ❔ to this message"
        how += "."
        buttons = ()
    card = Card(title=title, fields=tuple(fields), footer=how)
    return Content(headline, card=card, buttons=buttons)
