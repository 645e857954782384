"""Welcome templates are checked by one function, in chat (`welcome set`) and in the config file alike:
a template refused in one place must be refused, with the same words, in the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.errors import UsageError
from bot.plugin_config_check import load_checked
from plugins.profiles.plugin import Profiles
from plugins.welcome.plugin import Welcome, check_template

PLUGINS = [Welcome, Profiles]

WRITTEN_LIKE = "placeholders are written like {member}, a literal brace as {{ or }}"
BAD = [
    ("Hi {membr}!", "unknown placeholder {membr} — did you mean {member}?"),
    (
        "Hi {nickname}!",
        "unknown placeholder {nickname}; you can use {member}, {community}, {domain}, {rules}",
    ),
    ("Hi {member, welcome", f"'{{member,' is missing its closing '}}'; {WRITTEN_LIKE}"),
    ("Hello } {member}", f"the '}}' at character 7 closes nothing; {WRITTEN_LIKE}"),
    ("Hi {member} {", f"'{{' is missing its closing '}}'; {WRITTEN_LIKE}"),
    ("Hi {member}}", f"the '}}' at character 12 closes nothing; {WRITTEN_LIKE}"),  # as str.format reads it
    ("Hi {{{member", f"'{{member' is missing its closing '}}'; {WRITTEN_LIKE}"),  # {{, then a lone {
    (
        "Hi {member.__class__}",
        "unknown placeholder {member.__class__}; you can use {member}, {community}, {domain}, {rules}",
    ),
    ("Hi {x!r} {member}", "unknown placeholder {x!r}; you can use {member}, {community}, {domain}, {rules}"),
    ("Hi {0} {member}", "unknown placeholder {0}; you can use {member}, {community}, {domain}, {rules}"),
]


@pytest.mark.parametrize(("template", "reason"), BAD)
def test_a_bad_template_is_refused_with_one_reason(template: str, reason: str) -> None:
    with pytest.raises(UsageError) as error:
        check_template(template)
    assert error.value.message == reason


@pytest.mark.parametrize(("template", "reason"), BAD)
@pytest.mark.parametrize("key", ["template", "welcome_back"])
def test_the_config_refuses_the_same_templates_in_the_same_words(
    tmp_path: Path, template: str, reason: str, key: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[plugins.welcome]\n{key} = '{template}'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == [f"plugins.welcome.{key}: {reason}"]


def test_the_config_warns_about_a_template_without_member(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[plugins.welcome]\nwelcome_back = 'Welcome back to {community}!'\n", encoding="utf-8")
    assert load_checked(path).warnings == [
        "plugins.welcome.welcome_back: it has no {member}, so the returning member will not be mentioned"
    ]


async def test_welcome_set_refuses_stray_braces_and_keeps_the_old_text(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    for line, reason in [
        ("!welcome set Hello {member", "'{member' is missing its closing '}'"),
        ("!welcome set Hello } {member}", "the '}' at character 7 closes nothing"),
    ]:
        reply = (await bot.say(line))[1]
        assert reason in reply
    preview = await bot.say("!welcome preview")
    assert preview[1].startswith(
        "[6] copbot> Newcomers see: Welcome to Our Community of Practice, @newcomer!"
    )


async def test_welcome_set_without_member_saves_with_a_note(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    saved = "\n".join(await bot.say("!welcome set Welcome to {community}!"))
    assert "Welcome text saved. Newcomers will see: Welcome to Our Community of Practice!" in saved
    assert "Note: it has no {member}, so the newcomer will not be mentioned." in saved
    joined = await bot.say(":join eve")
    assert joined[1] == "[4] copbot> Welcome to Our Community of Practice!"


async def test_doubled_braces_are_literal_braces_in_the_preview_and_the_welcome(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    saved = await bot.say("!welcome set Hi {{literal}} {member}, see {{{community}}}")
    assert saved[1] == (
        "[2] copbot> Welcome text saved. Newcomers will see: "
        "Hi {literal} @newcomer, see {Our Community of Practice}"
    )
    preview = await bot.say("!welcome preview")
    assert preview[1:] == [
        "[4] copbot> Newcomers see: Hi {literal} @newcomer, see {Our Community of Practice}",
        "    Template: Hi {{literal}} {member}, see {{{community}}}",
    ]
    joined = await bot.say(":join eve")
    assert joined[1] == "[6] copbot> Hi {literal} @eve, see {Our Community of Practice}"
    literal_only = "\n".join(await bot.say("!welcome set Hi {{member}}"))  # the text "{member}", no one named
    assert "Newcomers will see: Hi {member}" in literal_only
    assert "Note: it has no {member}, so the newcomer will not be mentioned." in literal_only


async def test_a_community_without_rules_is_welcomed_without_a_double_space(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        PLUGINS, communities=[{"slug": "cop", "name": "Leak CoP", "domain": "leaks"}]
    )
    joined = await bot.say(":join eve")
    assert joined[1] == (
        "[2] copbot> Welcome to Leak CoP, @eve! We share what works in leaks. "
        "Say hello and tell us what you are working on."
    )
    saved = await bot.say("!welcome set Hi {member}! Rules: {rules}")
    assert saved[1] == "[5] copbot> Welcome text saved. Newcomers will see: Hi @newcomer! Rules:", saved
    assert (await bot.say(":join ann"))[1] == "[7] copbot> Hi @ann! Rules:"
