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

BAD = [
    ("Hi {membr}!", "unknown placeholder {membr} — did you mean {member}?"),
    (
        "Hi {nickname}!",
        "unknown placeholder {nickname}; you can use {member}, {community}, {domain}, {rules}",
    ),
    ("Hi {member, welcome", "'{member,' is missing its closing '}'; placeholders are written like {member}"),
    ("Hello } {member}", "the '}' at character 7 closes nothing; placeholders are written like {member}"),
    ("Hi {member} {", "'{' is missing its closing '}'; placeholders are written like {member}"),
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
