"""`experts` ranks by full-text relevance, the same on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from plugins.welcome.plugin import Welcome

PEOPLE = {
    "ana": ("expertise", "leak detection, acoustic loggers"),
    "bo": ("interests", "leak detection"),
    "cy": ("expertise", "asset management, leakage control, pressure management"),
    "dee": ("expertise", "bleak outlooks, tariffs"),  # contains "leak" but is not about leaks
    "eve": ("expertise", "water quality"),
}


async def test_experts_are_ranked_by_relevance_not_substring(console_bot_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Welcome, Profiles], database_url=database_url)
    for name, (field, value) in PEOPLE.items():
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
        await bot.say(f"{name}> !profile set {field} {value}")
    lines = await bot.say("!experts leak detection")
    listed = [line.strip() for line in lines[2:]]
    assert listed[0] == "1. @ana — expertise: leak detection"
    names = [line.split()[1] for line in listed if line[0].isdigit()]
    assert names[0] == "@ana" and set(names) == {"@ana", "@bo", "@cy"}
    assert names.index("@ana") < names.index("@bo")  # expertise outranks an interest
    # who only wants to learn about it is listed apart, below those who know about it
    interested = listed.index("Interested in leak detection too:")
    assert [line.split()[1] for line in listed[interested + 1 :]] == ["@bo"]
    assert all("interests:" not in line for line in listed[:interested])
    assert "@dee" not in names and "@eve" not in names
    nobody = await bot.say("!experts desalination")
    expected = (
        "Nobody's profile or shared items mention desalination yet. Add yours: !profile set expertise …"
    )
    assert nobody[1].endswith(expected)


async def test_members_only_interested_in_a_topic_are_not_called_its_experts(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Welcome, Profiles])
    await bot.say(":join bo")
    await bot.say("bo>> stop")
    await bot.say("bo> !profile set interests water reuse")
    lines = await bot.say("!experts reuse")
    assert lines[1:] == [
        "[9] copbot> Nobody lists reuse as expertise or has shared items about it yet; interested in it:",
        "    1. @bo — interests: water reuse",
    ]


async def test_a_member_who_left_is_not_listed_for_what_they_shared(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """The profile search leaves out members who left; the items they shared stay in the repertoire, but
    `experts` must not send anyone to ask them — nor list them once they are back, as their profile is."""
    bot = await console_bot_factory([Welcome, Profiles, Repertoire])
    for name in ("ana", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    await bot.say('ana> !share tool "Leak map" https://example.org/map #leaks')
    await bot.say("bo> !profile set expertise leaks")
    assert [line.strip() for line in (await bot.say("!experts leaks"))[2:]] == [
        "1. @bo — expertise: leaks",
        "2. @ana — shared 1 item tagged #leaks",
    ]
    await bot.say(":leave ana")
    assert [line.strip() for line in (await bot.say("!experts leaks"))[2:]] == ["1. @bo — expertise: leaks"]
    await bot.say(":leave bo")
    nobody = await bot.say("!experts leaks")
    assert nobody[1].endswith(
        "Nobody's profile or shared items mention leaks yet. Add yours: !profile set expertise …"
    )
    await bot.say(":join ana")
    assert [line.strip() for line in (await bot.say("!experts leaks"))[2:]] == [
        "1. @ana — shared 1 item tagged #leaks"
    ]


async def test_accents_do_not_hide_why_a_member_matched_nor_who_is_only_interested(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    """The index finds "Énergie" for "energie" (SQLite's FTS5 ignores accents); the reasons beside each
    name did not, and said "related words" — and a member only interested in it was listed as knowing."""
    bot = await console_bot_factory([Welcome, Profiles])
    for name, (field, value) in {
        "ana": ("expertise", "Énergie solaire"),
        "bo": ("interests", "energie"),
    }.items():
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
        await bot.say(f"{name}> !profile set {field} {value}")
    for topic in ("energie", "énergie", "ENERGIE"):
        lines = [line.strip() for line in (await bot.say(f"!experts {topic}"))[1:]]
        assert lines[0].endswith(f"copbot> Members who know about {topic}:")
        assert lines[1:] == [
            "1. @ana — expertise: Énergie solaire",
            f"Interested in {topic} too:",
            "2. @bo — interests: energie",
        ]


async def test_a_topic_without_a_word_is_refused_with_an_example(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`experts ...` was answered "Nobody's profile or shared items mention ... yet" (and counted as a
    look-up), as if the topic had been searched for."""
    bot = await console_bot_factory([Welcome, Profiles])
    refused = await bot.say("ana> !experts ...")
    assert refused[1] == (
        "[2] copbot> '...' has no word to look for; name the topic, like leak detection. "
        "Usage: !experts <topic…> [--all] — e.g. !experts leak detection"
    )


async def test_an_elision_typed_alone_is_no_prefix_of_every_word(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`experts l'` looked for every tag starting with "l": leakage, legionella, LoRaWAN…"""
    bot = await console_bot_factory([Welcome, Profiles])
    await bot.say("ana> !profile set expertise leakage, legionella")
    refused = await bot.say("bob> !experts l'")
    assert refused[1].startswith("[4] copbot> 'l'' has no word to look for"), refused
    found = await bot.say("bob> !experts l'eau leakage")
    assert "ana" in "\n".join(found)
