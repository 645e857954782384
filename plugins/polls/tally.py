"""Poll rules, pure: limits, which choices a vote means, which response counts, and the tally's chart.

The response rules are MSC3381's, applied to every platform alike: only a member's latest response counts,
responses after the poll ended are ignored, answers that are not in the poll are ignored, and a
single-choice poll takes the first valid answer of a response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.errors import UsageError
from bot.timeparse import shown

MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_QUESTION, MAX_OPTION = 300, 100
BAR = 10


def split_question(question: str, options: Sequence[str]) -> tuple[str, list[str]]:
    """``poll create What's next? Yes No`` means the question "What's next?": a question typed without
    quotes runs up to the first word that ends with a question mark. A question of several words was
    quoted, and so was an option of several: ``"Lunch options" "Other?" Pizza`` asks "Lunch options" (an
    unquoted word holds no space), and a quoted option ends an unquoted question before it."""
    if question.rstrip().endswith("?") or len(question.split()) > 1:
        return question, list(options)
    for index, option in enumerate(options):
        if len(option.split()) > 1:
            break
        if option.rstrip().endswith("?"):
            return " ".join([question, *options[: index + 1]]), list(options[index + 1 :])
    return question, list(options)


def check_poll(question: str, options: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The limits, each with an error that names the one broken."""
    question = " ".join(question.split())
    cleaned = tuple(" ".join(option.split()) for option in options)
    if not question:
        raise UsageError("the question is empty")
    if len(question) > MAX_QUESTION:
        raise UsageError(f"the question has {len(question)} characters; at most {MAX_QUESTION}")
    if len(cleaned) < MIN_OPTIONS:
        raise UsageError(f"a poll needs at least {MIN_OPTIONS} options; got {len(cleaned)}")
    if len(cleaned) > MAX_OPTIONS:
        raise UsageError(f"a poll has at most {MAX_OPTIONS} options; got {len(cleaned)}")
    for number, option in enumerate(cleaned, start=1):
        if not option:
            raise UsageError(f"option {number} is empty")
        if len(option) > MAX_OPTION:
            raise UsageError(f"option {number} has {len(option)} characters; at most {MAX_OPTION}")
    seen: dict[str, int] = {}
    for number, option in enumerate(cleaned, start=1):
        key = option.casefold()
        if key in seen:
            raise UsageError(
                f"option {number} repeats option {seen[key]} ('{shown(option)}'); options must differ"
            )
        seen[key] = number
    return question, cleaned


def parse_choices(
    values: Sequence[str], options: Sequence[str], *, multi: bool, usage: str = ""
) -> tuple[int, ...]:
    """What a member typed → sorted 0-based indexes, or a clear error: numbers (``2``, ``1,3``, ``1 3``) or
    options as written (``Smart meters``, any case; several separated by commas; an option with a comma in its
    name, ``Rotterdam, NL``, is that option, unless its parts are choices themselves). A number is a number
    first: in a poll of years, ``2`` is the second option, not an option called "2".

    An option named twice (``1,1``, ``1, Leakage``) is refused rather than counted once: it is most
    likely a typo for another number, and a vote taken silently would not be the one meant. ``usage``
    (``!poll vote 3``) makes the refusal's example one for this very poll."""
    count = len(options)
    named: dict[str, int] = {}
    for index, option in enumerate(options):
        named.setdefault(_folded(option), index)
    widest = max(option.count(",") for option in options) + 1 if options else 1
    parts = " ".join(values).split(",")
    numbers: list[int] = []
    start = 0
    while start < len(parts):
        end = _named_with_commas(parts, start, widest, named, count)
        if end:
            numbers.append(named[_folded(",".join(parts[start:end]))])
        else:
            end = start + 1
            numbers.extend(_part(parts[start], named, count))
        start = end
    seen: set[int] = set()
    for index in numbers:
        if index in seen:
            raise _named_twice(index, options, sorted(set(numbers)), multi, usage)
        seen.add(index)
    if not numbers:
        raise UsageError(f"no option given; answer with a number from 1 to {count}")
    if len(numbers) > 1 and not multi:
        raise UsageError("this poll takes one choice; give a single option number")
    return tuple(sorted(numbers))


def _named_with_commas(
    parts: Sequence[str], start: int, widest: int, named: Mapping[str, int], count: int
) -> int:
    """Where an option whose name has commas (``Rotterdam, NL``), typed from ``parts[start]`` on, ends —
    the longest that fits — or 0. Without it such an option could be chosen only by its number. A vote
    that reads as choices between the commas (``1,3``, ``A, B``) keeps that meaning, as it had before."""
    for end in range(min(len(parts), start + widest), start + 1, -1):
        if _folded(",".join(parts[start:end])) in named and not all(
            _reads(part, named, count) for part in parts[start:end]
        ):
            return end
    return 0


def _part(part: str, named: Mapping[str, int], count: int) -> list[int]:
    """The choices between two commas: an option as written, else numbers (``1 3``)."""
    text = " ".join(part.split())
    if not text:
        return []
    if not (text.isdecimal() and len(text) <= 6 and 1 <= int(text) <= count) and _folded(text) in named:
        return [named[_folded(text)]]
    return [_number(word, count) for word in text.split(" ")]


def _reads(part: str, named: Mapping[str, int], count: int) -> bool:
    try:
        _part(part, named, count)
    except UsageError:
        return False
    return True


def _named_twice(
    index: int, options: Sequence[str], numbers: Sequence[int], multi: bool, usage: str
) -> UsageError:
    picked = numbers if multi else [index]  # the vote it would have been, each option once
    example = f"{usage} {','.join(str(number + 1) for number in picked)}" if usage else None
    return UsageError(
        f"option {index + 1} ({shown(options[index])}) is named twice; name each option once",
        example=example,
    )


def _number(word: str, count: int) -> int:
    if not word.isdecimal():  # not isdigit(): "²" is a digit that int() refuses
        raise UsageError(f"'{shown(word)}' is neither an option's number (1–{count}) nor an option")
    if len(word) > 6 or not 1 <= int(word) <= count:  # int() refuses 4,300 digits
        raise UsageError(f"option {shown(word)} does not exist; this poll has options 1–{count}")
    return int(word) - 1


def _folded(text: str) -> str:
    """An option's name as it is compared: any case, any spacing (also around its commas)."""
    return ",".join(" ".join(part.casefold().split()) for part in text.split(","))


def response_answers(answers: Iterable[int], count: int, *, multi: bool) -> tuple[int, ...] | None:
    """A native response's answers, unknown ones dropped; None when nothing valid is left (ignored)."""
    valid: list[int] = []
    for answer in answers:
        if 0 <= answer < count and answer not in valid:
            valid.append(answer)
    if not valid:
        return None
    return tuple(sorted(valid)) if multi else (valid[0],)


def counts_response(*, at: datetime, previous_at: datetime | None, closed_at: datetime | None) -> bool:
    """Whether a response counts: not after the poll ended, and newer than the member's last one."""
    if closed_at is not None and at > closed_at:
        return False
    return previous_at is None or at >= previous_at


def tally(votes: Iterable[Sequence[int]], count: int) -> list[int]:
    totals = [0] * count
    for choices in votes:
        for choice in choices:
            if 0 <= choice < count:
                totals[choice] += 1
    return totals


def chart(options: Sequence[str], totals: Sequence[int], voters: int) -> list[str]:
    """``1. Leakage  ██████░░░░ 2 (67%)``: a text bar chart; percentages are of the members who voted."""
    width = max((len(option) for option in options), default=0)
    width = min(width, 40)
    lines = []
    for number, (option, total) in enumerate(zip(options, totals, strict=True), start=1):
        share = total / voters if voters else 0.0
        filled = round(share * BAR)
        label = option if len(option) <= width else option[: width - 1] + "…"
        lines.append(
            f"{number}. {label.ljust(width)} {'█' * filled}{'░' * (BAR - filled)} {total} ({share:.0%})"
        )
    return lines
