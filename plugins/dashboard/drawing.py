"""The dashboard's charts as geometry: pure functions from figures to circles, bars and label positions,
which the templates draw as SVG (escaped like everything else; no JavaScript anywhere).

The bulb is concentric rings, core in the centre: each ring has a minimum thickness, so that even an
empty level is seen and labelled, and the rest of the radius is shared by area — the area inside a ring's
outer edge (less the minimums) is proportional to the members at that level and inward, so each ring's
area stands for its members. Labels sit beside the bulb with a leader line to their ring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

BULB_WIDTH, BULB_HEIGHT = 620, 440
CENTRE = (220.0, 220.0)
RADIUS = 200.0
MIN_RING = 14.0
LABEL_X = 470.0
COLOURS = {
    "core": "#0b3c5d",
    "active": "#1f6f8b",
    "occasional": "#3f9cb5",
    "peripheral": "#8cc5d6",
    "transactional": "#d5ebf1",
}
INK = {"core": "#ffffff", "active": "#ffffff", "occasional": "#ffffff"}  # on dark rings; else dark ink

CHART_WIDTH, CHART_HEIGHT = 660, 240
BAR_TOP, BAR_BOTTOM = 28.0, 200.0  # where bars may reach, and their base line
BAR_LEFT, BAR_GAP = 20.0, 10.0


@dataclass(frozen=True)
class Ring:
    level: str
    count: int
    inner: float
    outer: float
    fill: str
    ink: str
    # the leader line: from a point in the ring to the label, whose text is at (LABEL_X + 8, label_y)
    anchor_x: float
    anchor_y: float
    label_y: float

    @property
    def middle(self) -> float:
        return (self.inner + self.outer) / 2

    @property
    def thickness(self) -> float:
        return self.outer - self.inner


def bulb(levels: Sequence[str], counts: Mapping[str, int]) -> list[Ring]:
    """The rings, core first (innermost). Each is at least MIN_RING thick; the rest of the radius is
    shared so that the area within a ring's outer edge grows with the members at that level and inward."""
    total = sum(max(counts.get(level, 0), 0) for level in levels)
    free = RADIUS - MIN_RING * len(levels)
    rings: list[Ring] = []
    inner, cumulative = 0.0, 0
    spacing = (BULB_HEIGHT - 80) / max(len(levels) - 1, 1)
    for index, level in enumerate(levels):
        count = max(counts.get(level, 0), 0)
        cumulative += count
        reach = math.sqrt(cumulative / total) if total else (index + 1) / len(levels)  # nobody: even rings
        outer = free * reach + MIN_RING * (index + 1)
        middle = (inner + outer) / 2
        label_y = 40 + spacing * index
        # the anchor: where the ring's middle circle meets the line towards the label, on the right side
        angle = math.atan2(CENTRE[1] - label_y, LABEL_X - CENTRE[0])
        rings.append(
            Ring(
                level=level,
                count=count,
                inner=inner,
                outer=outer,
                fill=COLOURS.get(level, "#cccccc"),
                ink=INK.get(level, "#1d2b36"),
                anchor_x=round(CENTRE[0] + middle * math.cos(angle), 1),
                anchor_y=round(CENTRE[1] - middle * math.sin(angle), 1),
                label_y=round(label_y, 1),
            )
        )
        inner = outer
    return rings


@dataclass(frozen=True)
class Bar:
    count: int
    label: str  # the window's first day, in the community's zone ("2 Dec")
    span: str  # "2 Dec – 9 Dec"
    title: str  # "2 Dec – 9 Dec: 314 actions"
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


def bars(weeks: Sequence[tuple[datetime, datetime, int]], tz: str) -> list[Bar]:
    """One bar per week, oldest on the left, the tallest reaching BAR_TOP; a week with nothing keeps a
    hairline so that the week is seen to be there."""
    if not weeks:
        return []
    zone = ZoneInfo(tz)
    top = max(count for _, _, count in weeks) or 1
    width = (CHART_WIDTH - 2 * BAR_LEFT - BAR_GAP * (len(weeks) - 1)) / len(weeks)
    found = []
    for index, (start, end, count) in enumerate(weeks):
        height = max((BAR_BOTTOM - BAR_TOP) * count / top, 1.0)
        first, last = start.astimezone(zone), (end.astimezone(zone))
        span = f"{first.day} {first:%b} – {last.day} {last:%b}"
        found.append(
            Bar(
                count=count,
                label=f"{first.day} {first:%b}",
                span=span,
                title=f"{span}: {count:,} action{'s' if count != 1 else ''}",
                x=round(BAR_LEFT + index * (width + BAR_GAP), 1),
                y=round(BAR_BOTTOM - height, 1),
                width=round(width, 1),
                height=round(height, 1),
            )
        )
    return found
