"""Every example copbot shows a user works when copied: the examples each command declares (what
``help <command>`` and every usage error print) and the command examples of the README, typed on the console
in a community with members, polls, meetings and repertoire items for the ids they name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.registry import declared_commands, discover_plugins

ROOT = Path(__file__).resolve().parents[2]

COMMUNITIES: list[dict[str, Any]] = [
    {"slug": "water", "name": "Water CoP", "share_with": ["wastewater"]},
    {"slug": "wastewater", "name": "Wastewater CoP"},
]

SETUP = [
    ":join ana",
    ":join bo",
    "ana> hello all",
    "bo> hi",
    # polls 1 and 2 come from poll create's examples; poll 3 has four options and takes several choices
    # meetings 1 and 2 come from meeting schedule's examples; meeting 3 is a weekly series on Tuesdays
    # items 1-10 here; meeting 3's notes become item 11, and share's first example item 12
    *(f'!share tool "Tool {n}" https://example.org/tool{n} #gis' for n in range(1, 11)),
    "ana> !profile set expertise leak detection, membranes",
    "bo> !profile set interests smart metering",
    "!profile set interests leak detection",
]

README = "the README's examples"
PROFILE_FIELDS = "profile set, for each field"

ORDER = [
    "help",
    "about",
    "status",
    "welcome preview",
    "welcome set",
    "timezone",
    "profile set",
    PROFILE_FIELDS,
    "profile",
    "profile onboarding",
    "experts",
    "match",
    "poll create",
    "poll list",
    "poll vote",
    "poll results",
    "meeting schedule",
    "meeting list",
    "meeting show",
    "meeting rsvp",
    "meeting ics",
    "meeting attended",
    "meeting notes",
    "meeting move",
    "meeting cancel",
    "share",
    "repertoire search",
    "repertoire show",
    "repertoire top",
    "repertoire tag",
    "repertoire upvote",
    "repertoire used",
    "repertoire edit",
    "repertoire share",
    "repertoire export",
    "repertoire remove",
    "repertoire restore",
    README,
    "poll close",
    "role show",
    "role list",
    "role set",
    "role history",
    "role rules",
    "role lock",
    "role unlock",
    "role recompute",
    "digest preview",
    "digest subscribe",
    "digest now",
    "stats",
    "dashboard",
    "value story",
    "value report",
    "profile link",
    "profile unlink",
    "profile export",
    "profile forget",
]
"""The order the examples run in, so each finds what it names (poll 3 open until it is closed, item 12 removed
before it is restored); a command missing here runs at the end, so none is left out."""

BEFORE: dict[str, list[str]] = {
    "poll vote": ['poll create "Which topics?" Leakage "Smart meters" GIS Pumps --multi'],
    "meeting show": ['meeting schedule "Weekly call" next tuesday 15:00 --every weekly'],
    "profile link": ["ana> !profile link"],
    "meeting attended": ["ana> !meeting rsvp 3 yes", "bo> !meeting rsvp 3 yes", ":advance 2d"],
}
"""What a community would have done before an example: lines typed first (``:advance`` moves the clock)."""

REVERSED = {"meeting cancel"}
"""Examples whose second would find nothing left to do after the first (a series cancelled whole has no
occurrence to cancel)."""

SPEAKER = {"repertoire upvote": "ana", "meeting notes": "ana"}
"""Examples typed by a member other than the moderator ``you``: an upvote is never for one's own item, and
notes are written by those who came."""

README_EXAMPLES = [
    "!help",
    "!poll vote 3 smart meters",
    "!poll create What's next? Leakage Metering",
    "!share story We fixed the main overnight. It took four hours #pipes",
    "!share tool https://example.org/leakmap #gis",
    "!repertoire edit 4 -- --dry-run explained",
    '!experts "women\'s networks"',
    "!experts women's networks",
    "!profile set reminders dm",
    "!profile set public on",
    "!profile set prompts off",
    "!profile set tracking off",
    "!timezone europe/amsterdam",
    "!timezone CET",
    "!timezone UTC+2",
    "!timezone GMT-05:00",
    "!timezone EST",
    '!meeting schedule "Call" friday 15:00',
    '!meeting schedule "Call" tomorrow at 9',
    '!meeting schedule "Call" in 2h',
    '!meeting schedule "Call" next tuesday at 10',
    '!meeting schedule "Call" friday 17h30',
    '!meeting schedule "Call" friday 9.30pm',
    '!meeting schedule "Call" tomorrow at 10.30',
    # the README's `--until 2027-06-30`, as a date still ahead whenever the suite runs
    f'!meeting schedule "Call" friday 15:00 --every weekly --until {datetime.now(UTC).year + 1}-06-30',
    '!meeting schedule "Call" friday 15:00 --every quarterly --until friday',
    '!poll create "Q?" A B --closes friday 17:00',
    '!poll create "Q?" A B --closes friday',
]
"""Command lines the README gives as examples (in the commands table and the text around it)."""

REFUSALS = (
    "There is no",
    "Usage:",
    "nknown command",
    "no such command",
    "went wrong",
    "not found",
    "No poll",
    "No meeting",
)


def declared_examples() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for cls in discover_plugins().values():
        for _, meta in declared_commands(cls):
            found[meta.name] = meta.examples
    return found


async def type_line(bot: Any, clock: FakeClock, line: str) -> list[str]:
    if line.startswith(":advance "):
        clock.advance(timedelta(days=int(line.split()[1].rstrip("d"))))
        return []
    return list(await bot.say(line))


def command_line(speaker: str, example: str) -> str:
    return f"!{example}" if speaker == "you" else f"{speaker}> !{example}"


def issue_codes(monkeypatch: pytest.MonkeyPatch, examples: dict[str, tuple[str, ...]]) -> list[str]:
    """The first link code copbot issues is the one ``profile link``'s example types, so that the example
    links two accounts as it would for a member who got that code; returns what in it is no code's part."""
    import plugins.roles.linking as linking

    code = next(example.split()[-1] for example in examples["profile link"] if len(example.split()) > 2)
    pieces: Iterator[str] = iter(code.lower().split("-"))
    real = linking.secrets.token_hex
    monkeypatch.setattr(linking.secrets, "token_hex", lambda size: next(pieces, None) or real(size))
    shape = re.fullmatch("-".join(["[0-9a-f]{4}"] * 2), real(2) + "-" + real(2))
    assert shape is not None, "copbot's link codes changed shape: change the pattern here too"
    return [] if re.fullmatch("-".join(["[0-9a-f]{4}"] * 2), code.lower()) else [code]


async def test_every_declared_and_readme_example_is_accepted(
    console_bot_factory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = declared_examples()
    assert all(examples.values()), [name for name, shown in examples.items() if not shown]
    unlike_codes = issue_codes(monkeypatch, examples)
    # Members copy the examples today, not on the day they were written: run them in the coming week (from
    # its Monday, as every run does), so that one naming a day that has passed fails here as it would there.
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    clock.set(today + timedelta(days=7 - today.weekday()))
    bot = await console_bot_factory(list(discover_plugins().values()), communities=COMMUNITIES)
    for line in SETUP:
        await type_line(bot, clock, line)

    failures = [f"{code!r} in profile link's example is no code copbot issues" for code in unlike_codes]
    examples[README] = tuple(README_EXAMPLES)
    # profile set's error for a bad value shows that field's own example: each is copied as the others are
    from plugins.profiles.plugin import EXAMPLES as FIELD_EXAMPLES

    examples[PROFILE_FIELDS] = tuple(FIELD_EXAMPLES.values())
    order = [name for name in ORDER if name in examples] + sorted(set(examples) - set(ORDER))
    for name in order:
        for line in BEFORE.get(name, []):
            await type_line(bot, clock, line if line.startswith((":", "!")) or ">" in line else f"!{line}")
        for example in reversed(examples[name]) if name in REVERSED else examples[name]:
            line = example if name == README else command_line(SPEAKER.get(name, "you"), example)
            replies = await type_line(bot, clock, line)
            said = " ".join(replies[1:])
            if not replies[1:] or any(refusal in said for refusal in REFUSALS):
                failures.append(f"{line!r} → {said!r}")

    for name in sorted(examples.keys() - {README, PROFILE_FIELDS}):
        shown = " ".join(await type_line(bot, clock, f"!help {name}"))
        if not all(f"!{example}" in shown for example in examples[name]):
            failures.append(f"'!help {name}' does not show its examples: {shown!r}")
    assert not failures, "\n".join(failures)


def model_keys() -> list[str]:
    """The dotted path of every key of the settings and of every bundled plugin's table."""
    from pydantic import BaseModel

    from bot.config import Settings
    from bot.config_problems import model_in

    found: list[str] = []

    def walk(table: str, model: type[BaseModel]) -> None:
        for key, info in model.model_fields.items():
            inner = model_in(info.annotation)
            if inner is not None:
                walk(f"{table}.{key}" if table else key, inner)
            elif table or key != "plugins":
                found.append(f"{table}.{key}" if table else key)

    walk("", Settings)
    for name, cls in discover_plugins().items():
        walk(f"plugins.{name}", cls.Config)
    return found


def example_keys() -> set[str]:
    """The dotted path of every key config.example.toml shows, written or commented out."""
    table = ""
    found: set[str] = set()
    for raw in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        line = re.sub(r"^(#\s?)+", "", raw.strip())
        header = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", line)
        if header:
            table = header.group(1)
        elif key := re.match(r"([a-z_]+)\s*=", line):
            found.add(f"{table}.{key.group(1)}" if table else key.group(1))
    return found


def test_every_config_key_is_explained_in_the_example() -> None:
    """The README sends operators to config.example.toml ("every key is explained there"): a key it leaves
    out is a setting nobody finds, and a key it shows that copbot does not have is refused by check-config."""
    shown = example_keys()
    plugin_switch = re.compile(r"plugins\.[a-z_.]+\.enabled")  # explained once for every plugin
    assert [key for key in model_keys() if key not in shown and not plugin_switch.fullmatch(key)] == []
    assert sorted(shown - set(model_keys())) == []


def test_the_readme_commands_table_names_every_option_and_choice() -> None:
    """The README's table of commands is where members look a command up: every --option a command takes,
    and every word it takes from a fixed list (profile set's fields, rsvp's answers), is in its rows.
    (The levels are left to the README's own section on them: a community may rename them.)"""
    from bot.commands import derive_spec

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `!")]
    levels = {"core", "active", "occasional", "peripheral", "transactional"}
    missing: list[str] = []
    for cls in discover_plugins().values():
        for function, meta in declared_commands(cls):
            usage = derive_spec(function, name=meta.name, help=meta.help, examples=meta.examples).usage("!")
            named = [row for row in rows if re.search(rf"`!{re.escape(meta.name)}[ `]", row)]
            assert named, f"the README's table of commands has no row for !{meta.name}"
            words = re.findall(r"--[a-z-]+", usage)
            for choices in re.findall(r"[a-z-]+(?:\|[a-z-]+)+", re.sub(r"<[^>]*>", "", usage)):
                words += [] if set(choices.split("|")) <= levels else choices.split("|")
            missing += [f"!{meta.name}: {word}" for word in words if not any(word in row for row in named)]
    assert missing == []


async def test_help_says_who_may_use_a_command_as_the_command_does(console_bot_factory) -> None:
    """``help <command>`` tells once who may use a command, and what it tells is what the command does: an
    item is edited by its author alone (moderators remove it, they do not rewrite it)."""
    bot = await console_bot_factory(list(discover_plugins().values()), communities=COMMUNITIES)
    examples = declared_examples()
    for name in sorted(examples):
        said = " ".join(await bot.say(f"!help {name}"))
        for who in ("its creator or a moderator", "its author or a moderator", "moderators only"):
            assert said.count(who) <= 1, f"!help {name} says {who!r} twice: {said}"
    edit = " ".join(await bot.say("!help repertoire edit"))
    assert "moderator" not in edit, edit
    await bot.say("ana> !share tool Leak map https://example.org/leakmap")
    assert "Only who shared #1 can edit it" in " ".join(await bot.say("!repertoire edit 1 New text"))


def test_check_config_takes_the_file_as_the_other_commands_do(tmp_path: Path) -> None:
    """``copbot run``, ``db upgrade`` and ``export`` take the file as ``--config``/``-c``: an operator who
    checks the file the way they run it is answered about the file, not with a usage error."""
    from tests.core.test_startup import copbot

    bad = tmp_path / "bad.toml"
    bad.write_text('prefx = "!"\n', encoding="utf-8")
    for option in ("--config", "-c"):
        good = copbot(tmp_path, "check-config", option, str(ROOT / "config.example.toml"))
        assert (good.returncode, good.stderr) == (0, ""), good.stderr
        assert good.stdout.startswith(f"{ROOT / 'config.example.toml'}: OK")
        refused = copbot(tmp_path, "check-config", option, str(bad))
        assert (refused.returncode, refused.stderr) == (
            2,
            f"{bad}: prefx: unknown key — did you mean prefix?\n",
        )


async def test_a_time_of_day_that_cannot_be_is_refused_not_dropped(console_bot_factory) -> None:
    """README, *Typing commands*: "a time of day that cannot be (`25:00`)" is refused "rather than guessed
    or dropped" — also when the words before it are a day on their own (``friday``), which would otherwise
    be read alone and leave ``25:00`` to the next argument (a poll's third option) or out of the answer."""
    bot = await console_bot_factory(list(discover_plugins().values()), communities=COMMUNITIES)
    for line in (
        '!poll create "Next call?" Leakage Metering --closes friday 25:00',
        '!meeting schedule "Call" tomorrow 25:00',
        '!meeting schedule "Call" friday at 25:00',
        '!poll create "Next call?" Leakage Metering --closes friday 13pm',
    ):
        said = " ".join(await bot.say(line))
        assert re.search(r"'(25:00|13pm)' is not a time of day", said), said
    assert "No open polls" in " ".join(await bot.say("!poll list"))
    assert "No meetings" in " ".join(await bot.say("!meeting list"))


async def test_a_polls_closing_time_is_shown_with_utc_beside_it_as_it_is_set(console_bot_factory) -> None:
    """SPEC, *Times on screen*: on Matrix and the console a time being set is shown in the caller's zone
    "with UTC beside it", so a wrong zone shows at once — a poll's --closes as a meeting's time."""
    bot = await console_bot_factory(list(discover_plugins().values()), communities=COMMUNITIES)
    await bot.say("!timezone Europe/Amsterdam")
    said = " ".join(await bot.say('!poll create "Next call?" Leakage Metering --closes 2d'))
    assert "Closes Wed 4 Mar 10:00 CET (09:00 UTC)." in said, said
    said = " ".join(await bot.say('!poll create "Next call?" Leakage Metering --closes wednesday 00:30'))
    assert "Closes Wed 4 Mar 00:30 CET (Tue 3 Mar 23:30 UTC)." in said, said
    await bot.say("!timezone UTC")
    said = " ".join(await bot.say('!poll create "Next call?" Leakage Metering --closes 2d'))
    assert "Closes Wed 4 Mar 09:00 UTC." in said, said


def test_the_readme_says_how_far_ahead_a_poll_may_close() -> None:
    """A poll closes at most 90 days ahead (``--closes must be within 90 days``); the README's paragraph on
    --closes says so, rather than leave a member to learn it from a refusal."""
    from plugins.polls.plugin import MAX_OPEN

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("`--closes` takes a duration") :].split("\n\n", 1)[0]
    assert f"at most {MAX_OPEN.days} days ahead" in paragraph, paragraph


def test_the_readmes_architecture_names_every_core_module_and_plugin() -> None:
    """ARCHITECTURE.md asks that the README's architecture section stay a true picture: each module of the
    core (bot/, its web/ and adapters/) is named in its tree, and each plugin package has its entry."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Architecture") :]
    tree = section.split("```")[1]
    modules = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bot").rglob("*.py")
        if path.name != "__init__.py" and "templates" not in path.parts
    )
    assert [module for module in modules if Path(module).name not in tree] == []
    packages = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "plugin.py").is_file())
    assert [name for name in packages if not re.search(rf"^  {name}/ ", tree, re.MULTILINE)] == []


async def test_a_date_shown_as_one_to_type_is_still_ahead(console_bot_factory, clock: FakeClock) -> None:
    """The hints that show how to write a time — meeting schedule's help for <when>, the hint of every
    unreadable time, the Discord option's description — are copied as examples are: a fixed date in them
    soon lies in the past, and the member who types it is told it "has already passed"."""
    from bot.adapters.discord_commands import _HINTS as OPTION_HINTS
    from bot.commands import Kind

    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    clock.set(today + timedelta(days=7 - today.weekday()))
    bot = await console_bot_factory(list(discover_plugins().values()), communities=COMMUNITIES)
    shown = " ".join(await bot.say("!help meeting schedule"))
    shown += " ".join(await bot.say('!meeting schedule "Call" friday 25:00'))
    shown += OPTION_HINTS[Kind.TIME]
    for day in sorted(set(re.findall(r"\d{4}-\d{2}-\d{2}", shown))):
        said = " ".join(await bot.say(f'!meeting schedule "Call" {day} 15:00'))
        assert "Meeting #" in said, said
