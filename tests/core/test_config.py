"""check-config on good and broken files, and environment variables over the file.

Operators read these messages: each test pins the key it names and the plain words it uses, so that a
pydantic upgrade or a refactoring cannot quietly bring back "Input should be a valid integer".
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, TypeAdapter

from bot.cli import main
from bot.config import ConfigError, Settings, load_settings
from bot.config_problems import example, model_in
from bot.plugin_config_check import load_checked

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config.example.toml")]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("prefx = '!'\n", "prefx: unknown key — did you mean prefix?"),
        ("[web]\nport = 'eighty'\n", "web.port: must be a whole number, like port = 8080 (got 'eighty')"),
        (
            "[web]\nenabled = 'yes please'\n",
            "web.enabled: must be true or false, like enabled = true (got 'yes please')",
        ),
        # TOML values have types: a quoted "yes" or "8080" is a typo there, not a way of writing true or 8080
        (
            "[web]\nenabled = 'yes'\n",
            "web.enabled: must be true or false, without quotes, like enabled = true (got 'yes')",
        ),
        ("[web]\nenabled = 1\n", "web.enabled: must be true or false, like enabled = true (got 1)"),
        (
            "[plugins.digest]\nenabled = 'no'\n",
            "plugins.digest.enabled: must be true or false, without quotes, like enabled = true (got 'no')",
        ),
        (
            "[web]\nport = '8080'\n",
            "web.port: must be a whole number, without quotes, like port = 8080 (got '8080')",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n"
            "[communities.matrix]\nlevel_power_levels = { core = '50' }\n",
            "communities[0].matrix.level_power_levels.core: must be a whole number, without quotes, "
            "like core = 50 (got '50')",
        ),
        (
            "[plugins.roles]\noccasional = { score = '5' }\n",
            "plugins.roles.occasional.score: must be a number, without quotes, like score = 5.0 (got '5')",
        ),
        ("[web]\nport = 70000\n", "web.port: must be at most 65535, like port = 8080 (got 70000)"),
        ("[web]\nprot = 1\n", "web.prot: unknown key — did you mean port?"),
        (  # links in chat would read "copbot.example.org/c/water?key=…": no app opens that
            "[web]\npublic_url = 'copbot.example.org'\n",
            "web.public_url: must be the address people open, starting with https:// or http://, "
            "like https://copbot.example.org (got 'copbot.example.org')",
        ),
        ("[web]\npublic_url = 'https://'\n", "web.public_url: must be the address people open"),
        ("timezone = 'Mars/Olympus'\n", "timezone: 'Mars/Olympus' is not a time zone"),
        (
            "timezone = 'Europe/Amsterdm'\n",
            "timezone: 'Europe/Amsterdm' is not a time zone — did you mean Europe/Amsterdam?",
        ),
        (
            "[[communities]]\nname = 'Water'\n",
            'communities[0].slug: missing required value, like slug = "water"',
        ),
        (  # one bracket pair instead of two: the example must be the block, not a list of strings
            "[communities]\nslug = 'water'\nname = 'Water'\n",
            "communities: each community is a block headed [[communities]], with two brackets "
            "(got one [communities] table)",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\ntimezone = 'Europe/Nowhere'\n",
            "communities[0].timezone: 'Europe/Nowhere' is not a time zone",
        ),
        # a value of the wrong shape: the message shows that key written right (config.example.toml's values)
        (
            "moderators = 'ana'\n",
            'moderators: must be a list, like moderators = ["matrix:@ana:example.org", "console:ana"] '
            "(got 'ana')",
        ),
        ("moderators = [1]\n", 'moderators[0]: must be text (in quotes), like moderators = ["matrix:@ana'),
        ("web = 'on'\n", "web: must be a table of key = value pairs, like web = { port = 8080 } (got 'on')"),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\nmatrix = '#water:example.org'\n",
            "communities[0].matrix: must be a table of key = value pairs, "
            'like matrix = { rooms = ["#water:example.org"] }',
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n[communities.discord]\nguild_id = 2345\n",
            'communities[0].discord.guild_id: must be text (in quotes), like guild_id = "234567890123456789"',
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n[communities.discord]\nguild_id = '2345'\n",
            "communities[0].discord.guild_id: must be a Discord id: 15 to 21 digits, "
            "like guild_id = \"234567890123456789\" (got '2345')",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n[communities.matrix]\nlevel_rooms = 'x'\n",
            "communities[0].matrix.level_rooms: must be a table of key = value pairs, "
            'like level_rooms = { core = "#water-core:example.org" }',
        ),
        (
            "[discord]\ntoken = 'x'\nshard_ids = 0\n",
            "discord.shard_ids: must be a list, like shard_ids = [0]",
        ),
        (
            "[matrix]\npassword = 'x'\n",
            'matrix.homeserver: missing required value, like homeserver = "https://',
        ),
        (
            "[plugins]\ndigest = 'off'\n",
            "plugins.digest: must be a table of key = value pairs, like digest = {",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n[plugins.digest]\nrooms = { water = 'x' }\n",
            "plugins.digest.rooms.water: must be a table of key = value pairs, "
            "like water = { matrix = \"#water:example.org\" } (got 'x')",
        ),
        (
            "[plugins.digest]\nrooms = { cop = { matrix = 5 } }\n",
            'plugins.digest.rooms.cop.matrix: must be text (in quotes), like matrix = "#water:example.org" '
            "(got 5)",
        ),
        (
            "[plugins.meetings]\ncommunity_reminders = { cop = '1h' }\n",
            'plugins.meetings.community_reminders.cop: must be a list, like cop = ["2d", "1h"] (got \'1h\')',
        ),
        (
            "[plugins.meetings]\nlist_days = 0\n",
            "plugins.meetings.list_days: must be at least 1, like list_days = 30",
        ),
        (
            "[plugins.roles]\noccasional = {}\n",
            "plugins.roles.occasional.score: missing required value, like score =",
        ),
        (
            "[plugins.roles]\nnames = 'Stewards'\n",
            'plugins.roles.names: must be a table of key = value pairs, like names = { core = "Stewards"',
        ),
        # an unknown key with no near miss: the keys that table takes
        (
            "[web]\ncolour = 'blue'\n",
            "web.colour: unknown key (keys here: enabled, host, port, public_url, secret)",
        ),
        ("[plugins.core]\ncolour = 'blue'\n", "plugins.core.colour: unknown key (keys here: enabled)"),
        ("[web]\nport = true\n", "web.port: must be a whole number, like port = 8080 (got true)"),
        # a room a platform cannot post to: found now, not at the first welcome or digest
        (
            "[plugins.welcome]\nrooms = { cop = { matrix = 'general' } }\n",
            "plugins.welcome.rooms: the matrix room of cop, 'general', is neither a room id (!abc or "
            "!abc:server) nor an alias (#name:server)",
        ),
        (
            "[plugins.digest]\nrooms = { cop = { discord = '#general' } }\n",
            "plugins.digest.rooms: the discord room of cop, '#general', must be a channel id "
            '(15 to 21 digits), like discord = "345678901234567890"',
        ),
        (  # the roles plugin's announcements are a room map like the others
            "[plugins.roles]\nannounce = { watr = { matrix = '#water:example.org' } }\n",
            "plugins.roles.announce: no community with slug 'watr' (communities: cop)",
        ),
        (
            "[plugins.roles]\nannounce = { cop = { slack = 'C123' } }\n",
            "plugins.roles.announce.cop.slack: must be one of 'console', 'matrix' or 'discord'",
        ),
        # settings per community name a configured one: a misspelt slug would be silently ignored
        (
            "[plugins.meetings]\ncommunity_reminders = { watr = ['1h'] }\n",
            "plugins.meetings.community_reminders: no community with slug 'watr' (communities: cop)",
        ),
        (
            "[plugins.digest]\ncommunity_schedules = { watr = '0 9 * * fri' }\n",
            "plugins.digest.community_schedules: no community with slug 'watr' (communities: cop)",
        ),
        (
            "[plugins.value]\ncommunity_schedules = { watr = '' }\n",
            "plugins.value.community_schedules: no community with slug 'watr' (communities: cop)",
        ),
        (
            "[plugins.roles]\nweights = { mesage = 1 }\n",
            "plugins.roles.weights: copbot records no activity called 'mesage' — did you mean message? "
            "(kinds: ",
        ),
        (
            "[plugins.roles]\nweights = { message = 'one' }\n",
            "plugins.roles.weights.message: must be a number",
        ),
        (
            "[plugins.core]\nenabled = false\n",
            "plugins.core.enabled: the core plugin cannot be turned off: copbot needs its help, about, "
            "status and profile export and forget commands, like enabled = true (or leave the key out)",
        ),
        ("[plugins.nosuch]\nenabled = true\n", "plugins.nosuch: no such plugin"),
        ("[plugins.welcom]\nenabled = true\n", "plugins.welcom: no such plugin — did you mean welcome?"),
        ("[plugins.core]\nenabeld = false\n", "plugins.core.enabeld: unknown key — did you mean enabled?"),
        ("prefix = \n", "not valid TOML"),
        ("[console]\ncommunity = 'other'\n", "console.community: no community with slug 'other'"),
        ("prefix = ' '\n", "prefix: must be 1 to 3 characters without spaces, like '!' (got ' ')"),
        ("prefix = '! '\n", "prefix: must be 1 to 3 characters without spaces"),
        (
            "database_url = 'mysql://copbot:secret@db.example.org/copbot'\n",
            "database_url: copbot cannot use 'mysql' databases; "
            "use sqlite:///path.db or postgresql://user:pass@host/db",
        ),
        ("database_url = 'oracle://db'\n", "database_url: copbot cannot use 'oracle' databases"),
        (
            "database_url = 'my database'\n",
            "database_url: not a database URL; use sqlite:///path.db or postgresql://user:pass@host/db",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n"
            "[communities.matrix]\naccept_invites_from = ['@ana:example.org', 'bo']\n",
            "communities[0].matrix.accept_invites_from: 'bo' is not a Matrix user id",
        ),
        (
            "[plugins.profiles]\nintro_rounds = '0 25 * * mon'\n",
            "plugins.profiles.intro_rounds: '0 25 * * mon' is not a cron schedule",
        ),
        (
            "[plugins.profiles]\nintro_rounds = 'every monday'\n",
            "plugins.profiles.intro_rounds: 'every monday' is not a cron schedule (Wrong number of fields; "
            "got 2, expected 5); write minute hour day month weekday, like '0 9 * * mon' for Mondays 09:00",
        ),
        (
            "[plugins.welcome]\ntemplate = 'Hi {membr}!'\n",
            "plugins.welcome.template: unknown placeholder {membr} — did you mean {member}?",
        ),
        (
            "[plugins.welcome]\ntemplate = 'Hi {member, welcome'\n",
            "plugins.welcome.template: '{member,' is missing its closing '}'",
        ),
        (
            "[plugins.welcome]\nwelcome_back = 'Hello } {member}'\n",
            "plugins.welcome.welcome_back: the '}' at character 7 closes nothing",
        ),
        (
            "[plugins.welcome]\nrooms = { watr = { matrix = '!w:example.org' } }\n",
            "plugins.welcome.rooms: no community with slug 'watr' (communities: cop)",
        ),
        (
            "[plugins.welcome]\nrooms = { cop = { slack = 'C123' } }\n",
            "plugins.welcome.rooms.cop.slack: must be one of 'console', 'matrix' or 'discord'",
        ),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\n"
            "[plugins.profiles]\nintro_rooms = { energy = { console = 'console' } }\n",
            "plugins.profiles.intro_rooms: no community with slug 'energy' (communities: water)",
        ),
    ],
)
def test_broken_files_name_the_key_and_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    assert exited.value.code == 2
    assert f"{path}: {problem}" in capsys.readouterr().err


def test_environment_variables_override_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "prefix = '!'\n[web]\nport = 8080\n")
    monkeypatch.setenv("COPBOT_PREFIX", "?")
    monkeypatch.setenv("COPBOT_WEB__PORT", "9090")
    settings = load_settings(path)
    assert (settings.prefix, settings.web.port) == ("?", 9090)
    monkeypatch.setenv("COPBOT_WEB__PORT", "nine")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert error.value.problems == [
        "COPBOT_WEB__PORT: must be a whole number, like COPBOT_WEB__PORT=8080 (got 'nine')"
    ]


def test_variables_are_text_and_are_read_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable can only hold text: "false" and "30" there are a switch and a number, in the settings and
    in the plugin tables alike, while the same quoted values in the file are refused."""
    path = write(tmp_path, "[web]\nport = 8080\n")
    monkeypatch.setenv("COPBOT_WEB__ENABLED", "false")
    monkeypatch.setenv("COPBOT_WEB__PORT", "9090")
    monkeypatch.setenv("COPBOT_PLUGINS__DIGEST__ENABLED", "no")
    monkeypatch.setenv("COPBOT_PLUGINS__MEETINGS__LIST_DAYS", "14")
    monkeypatch.setenv("COPBOT_COMMUNITIES", '[{"slug": "water", "name": "Water", "public": "true"}]')
    settings = load_checked(path).settings
    assert (settings.web.enabled, settings.web.port, settings.communities[0].public) == (False, 9090, True)
    assert settings.plugins["digest"]["enabled"] == "no"  # the plugin's Config reads it when loaded


def test_a_bad_value_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[web]\nport = 8080\n")
    monkeypatch.setenv("COPBOT_WEB__PROT", "9000")
    monkeypatch.setenv("COPBOT_PLUGINS__WELCOME__TEMPLATE", "Hi {membr}")
    monkeypatch.setenv("COPBOT_MODERATORS", "[not json")
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == [
        "COPBOT_MODERATORS: lists and tables in environment variables are written as JSON, "
        """like COPBOT_MODERATORS='["matrix:@ana:example.org", "console:ana"]'""",
        "COPBOT_WEB__PROT: unknown key — did you mean COPBOT_WEB__PORT?",
        "COPBOT_PLUGINS__WELCOME__TEMPLATE: unknown placeholder {membr} — did you mean {member}?",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (  # one table where a list of them belongs: [[communities]] is no help in a variable
            "COPBOT_COMMUNITIES",
            '{"slug": "water", "name": "Water"}',
            "COPBOT_COMMUNITIES: must be a JSON list with a table for each community, like "
            """COPBOT_COMMUNITIES='[{"slug": "water", "name": "Water Utilities CoP"}]' (got one table)""",
        ),
        (  # a nested variable is named, not its table's
            "COPBOT_DISCORD__COMMAND_GUILDS",
            "234567890123456789,345678901234567890",
            "COPBOT_DISCORD__COMMAND_GUILDS: lists and tables in environment variables are written as JSON, "
            """like COPBOT_DISCORD__COMMAND_GUILDS='["234567890123456789"]'""",
        ),
        (
            "COPBOT_INSTANCE__COMMUNITIES",
            "water",
            "COPBOT_INSTANCE__COMMUNITIES: lists and tables in environment variables are written as JSON, "
            """like COPBOT_INSTANCE__COMMUNITIES='["water"]'""",
        ),
        (  # inside a variable's JSON: the variable, then where in it
            "COPBOT_COMMUNITIES",
            '[{"slug": "water", "name": "Water", "public": "maybe"}]',
            """COPBOT_COMMUNITIES[0].public: must be true or false, like "public": false (got 'maybe')""",
        ),
        ("COPBOT_COMMUNITIES", '[{"slug": "water"}]', "COPBOT_COMMUNITIES[0].name: missing required value"),
        ("COPBOT_WEB", '{"prot": 9090}', "COPBOT_WEB.prot: unknown key — did you mean port?"),
        (
            "COPBOT_WEB__ENABLED",
            "maybe",
            "COPBOT_WEB__ENABLED: must be true or false, like COPBOT_WEB__ENABLED=true",
        ),
    ],
)
def test_a_bad_variable_is_named_with_an_example_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    path = write(tmp_path, "[web]\nhost = '127.0.0.1'\n")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert [line for line in error.value.problems if line.startswith(problem)] != [], error.value.problems


def test_a_plugins_list_or_table_can_come_from_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugin keys have no type the environment reader knows: JSON for a list or a table is read as such
    (as the messages' examples say to write it), and text — a welcome starting with a brace — stays text."""
    path = write(tmp_path, "[[communities]]\nslug = 'water'\nname = 'Water'\n")
    monkeypatch.setenv("COPBOT_PLUGINS__MEETINGS__REMINDERS", '["2h", "10m"]')
    monkeypatch.setenv("COPBOT_PLUGINS__DIGEST__ROOMS__WATER", '{"matrix": "#water:example.org"}')
    monkeypatch.setenv("COPBOT_PLUGINS__WELCOME__TEMPLATE", "{member}, welcome to {community}!")
    plugins = load_checked(path).settings.plugins
    assert plugins["meetings"]["reminders"] == ["2h", "10m"]
    assert plugins["digest"]["rooms"] == {"water": {"matrix": "#water:example.org"}}
    assert plugins["welcome"]["template"] == "{member}, welcome to {community}!"
    monkeypatch.setenv("COPBOT_PLUGINS__MEETINGS__REMINDERS", "2h")
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == [
        "COPBOT_PLUGINS__MEETINGS__REMINDERS: must be a list, "
        """like COPBOT_PLUGINS__MEETINGS__REMINDERS='["24h", "15m"]' (got '2h')"""
    ]


def test_a_table_from_a_variable_leaves_the_files_keys_named_by_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[web]\nhost = 7\n")
    monkeypatch.setenv("COPBOT_WEB", '{"port": 9090}')
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == ['web.host: must be text (in quotes), like host = "127.0.0.1" (got 7)']


def test_every_problem_is_reported_in_one_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A settings error must not hide the cross-checks or the plugin tables: one run, every fix."""
    path = write(
        tmp_path,
        "prefx = '!'\n"
        "[web]\nport = 'nine'\n"
        "[console]\ncommunity = 'nowhere'\n"
        "[[communities]]\nslug = 'water'\nname = 'Water'\n"
        "[[communities]]\nslug = 'water'\nname = 'Water again'\n"
        "[plugins.welcome]\ntemplate = 'Hi {membr}'\n"
        "[plugins.profiles]\nintro_rounds = 'sometimes'\n",
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    assert exited.value.code == 2
    reported = [line.removeprefix(f"{path}: ").split(":")[0] for line in capsys.readouterr().err.splitlines()]
    assert sorted(reported) == sorted(
        [
            "prefx",
            "web.port",
            "communities[1].slug",
            "console.community",
            "plugins.welcome.template",
            "plugins.profiles.intro_rounds",
        ]
    )


def test_a_template_without_member_is_accepted_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[plugins.welcome]\ntemplate = 'Welcome to {community}!'\n")
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert captured.err.splitlines() == [
        f"{path}: warning: plugins.welcome.template: "
        "it has no {member}, so the newcomer will not be mentioned"
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_listening_everywhere_without_a_public_url_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """The image sets COPBOT_WEB__HOST=0.0.0.0: links in chat then name this machine's loopback address,
    which only a browser on it opens; the operator is told which key to set."""
    path = write(tmp_path, "[web]\nport = 8080\n")
    monkeypatch.setenv("COPBOT_WEB__HOST", host)
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert captured.err.splitlines() == [
        f"{path}: warning: COPBOT_WEB__HOST: {host!r} listens on every network interface, but links in "
        "messages (dashboard, meeting ics, digest subscribe) need the address people use: set [web] "
        'public_url (or COPBOT_WEB__PUBLIC_URL), like public_url = "https://copbot.example.org"'
    ]
    monkeypatch.setenv("COPBOT_WEB__PUBLIC_URL", "https://copbot.example.org")
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("enabled", ["false", "no", "0", "False"])
def test_no_listening_warning_when_the_web_part_is_turned_off_by_a_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, enabled: str
) -> None:
    """The image sets COPBOT_WEB__HOST=0.0.0.0; turning the web part off with COPBOT_WEB__ENABLED=false
    leaves nothing listening, so nothing to warn of."""
    path = write(tmp_path, "[web]\nport = 8080\n")
    monkeypatch.setenv("COPBOT_WEB__HOST", "0.0.0.0")
    monkeypatch.setenv("COPBOT_WEB__ENABLED", enabled)
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_a_shard_count_from_a_variable_is_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable is text: COPBOT_DISCORD__SHARD_COUNT=2 is a count of two, not a missing one."""
    path = write(tmp_path, "[discord]\ntoken = 'x'\nshard_ids = [1]\n")
    monkeypatch.setenv("COPBOT_DISCORD__SHARD_COUNT", "2")
    assert load_checked(path).settings.discord.shard_count == 2  # type: ignore[union-attr]
    monkeypatch.setenv("COPBOT_DISCORD__SHARD_IDS", "[3]")
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == ["COPBOT_DISCORD__SHARD_IDS[0]: 3 is not a shard of 2 (0 to 1)"]


def test_time_zones_are_read_as_people_type_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timezone = 'europe/amsterdam'\n[[communities]]\nslug = 'water'\nname = 'Water'\n"
        "timezone = 'america/new_york'\n",
    )
    settings = load_settings(path)
    assert (settings.timezone, settings.communities[0].timezone) == ("Europe/Amsterdam", "America/New_York")


def fresh_interpreter(probe: str) -> str:
    """What ``probe`` prints in a new Python process: what importing does, before anything else did it."""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_default_zone_is_known_without_listing_every_zone() -> None:
    """Every start validates the default "UTC"; listing the IANA database for it cost ~4 ms and ~0.1 MB.
    Checked in a fresh interpreter, where no other name has listed it yet; the answer is the same."""
    probe = (
        "import bot.zones as z\n"
        "print(z.resolve_zone('UTC'), z._by_folded_name.cache_info().currsize, z.resolve_zone(' utc '))"
    )
    assert fresh_interpreter(probe).split() == ["UTC", "0", "UTC"]


@pytest.mark.parametrize("url", ["sqlite:///copbot.db", "postgresql://u:p@db/copbot", "postgres://db/x"])
def test_the_database_urls_copbot_can_use_are_accepted(tmp_path: Path, url: str) -> None:
    assert load_settings(write(tmp_path, f"database_url = '{url}'\n")).database_url == url


def test_config_does_not_import_the_registry() -> None:
    """The registry depends on the config; a config that imported the registry (and so every plugin) closes
    an import cycle that only lazy imports kept from breaking."""
    probe = (
        "import sys, bot.config, bot.config_values\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bot.registry', 'plugins'))))"
    )
    assert fresh_interpreter(probe).strip() == "[]"
    tree = ast.parse((ROOT / "bot" / "config.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(name and name.startswith(("bot.registry", "plugins")) for name in imported)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[web]\nprot = 1\n", "web.prot: unknown key"),
        (
            "[plugins.welcome]\ntemplate = 'Hi {membr}'\n",
            "plugins.welcome.template: unknown placeholder {membr}",
        ),
        ("[plugins.profiles]\nintro_rounds = '61 9 * * *'\n", "plugins.profiles.intro_rounds: '61 9 * * *'"),
        (
            "[web]\nenabled = 'yes'\n",
            "web.enabled: must be true or false, without quotes, like enabled = true",
        ),
    ],
)
def test_run_refuses_a_bad_config_the_same_way(tmp_path: Path, text: str, problem: str) -> None:
    """From an empty directory: this checkout's copbot, not whichever one the interpreter has installed."""
    path = write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"{path}: {problem}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "copbot.db").exists()


def every_key() -> list[tuple[str, type[BaseModel], str]]:
    """(table, model, key) for every key of the settings and of every bundled plugin's table."""
    from bot.registry import discover_plugins

    found: list[tuple[str, type[BaseModel], str]] = []

    def walk(table: str, model: type[BaseModel]) -> None:
        for key, info in model.model_fields.items():
            found.append((table, model, key))
            inner = model_in(info.annotation)
            if inner is not None:
                walk(f"{table}.{key}" if table else key, inner)

    walk("", Settings)
    for name, cls in discover_plugins().items():
        walk(f"plugins.{name}", cls.Config)
    return found


@pytest.mark.parametrize(("table", "model", "key"), every_key(), ids=lambda v: getattr(v, "__name__", v))
def test_every_key_has_a_correct_example(table: str, model: type[BaseModel], key: str) -> None:
    """A message about any key can show that key written right; the example itself must be valid."""
    found = example(model, (key,))
    assert found is not None, f"{table}.{key} has no example: give its Field examples=[…]"
    _, value = found
    info = model.model_fields[key]
    annotation = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    TypeAdapter(annotation).validate_python(value, strict=True)


def test_a_default_made_from_other_keys_does_not_break_the_message() -> None:
    """A plugin's default may be made from its other keys (pydantic passes them to the factory); with none
    at hand there is no example, and the message goes out without one rather than check-config crashing."""

    class Config(BaseModel):
        channel: str = "general"
        announce_in: str = Field(default_factory=lambda data: data["channel"])

    assert example(Config, ("announce_in",)) is None
    assert example(Config, ("channel",)) == ("channel", "general")


def test_weights_may_name_a_kind_a_plugin_records_itself(tmp_path: Path) -> None:
    """A plugin that counts activity of its own declares the kinds, and its weights are accepted."""
    from bot.config import RawConfig
    from bot.plugin import Plugin
    from bot.plugin_config_check import check_plugin_tables
    from bot.registry import discover_plugins

    class Badges(Plugin):
        name = "badges"
        activity_kinds = frozenset({"badge_earned"})

    available = {**discover_plugins(), "badges": Badges}
    table = {"weights": {"badge_earned": 2, "value_story": 1}}
    raw = RawConfig({"plugins": {"roles": table}}, {"plugins": {"roles": table}})
    assert check_plugin_tables(raw, available).problems == []
    assert "badge_earned" not in str(check_plugin_tables(raw, available).warnings)
    refused = check_plugin_tables(raw, discover_plugins()).problems
    assert len(refused) == 1 and "'badge_earned'" in refused[0]


def test_run_refuses_a_weight_of_no_activity_in_one_line(tmp_path: Path) -> None:
    from tests.core.test_startup import copbot

    (tmp_path / "config.toml").write_text("[plugins.roles]\nweights = { mesage = 1 }\n")
    done = copbot(tmp_path, "run", "--config", "config.toml")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "plugins.roles.weights: copbot records no activity called 'mesage'" in done.stderr
    assert not (tmp_path / "copbot.db").exists()


def test_every_kind_a_plugin_counts_is_one_it_declares() -> None:
    """The weights check knows the kinds from ``activity_kinds``: a plugin counting a kind it does not
    declare would have its weight refused."""
    import inspect
    import re

    from bot.activity import CORE_KINDS
    from bot.pipeline import ACTIVITY_KINDS
    from bot.registry import discover_plugins

    assert set(ACTIVITY_KINDS.values()) <= CORE_KINDS
    for plugin in discover_plugins().values():
        folder = Path(inspect.getfile(plugin)).parent
        if folder.name == "bot":  # the core plugin: the pipeline counts for the core, checked above
            continue
        counted = {
            kind
            for source in folder.glob("*.py")
            for kind in re.findall(r"count_activity\(\s*\"(\w+)\"", source.read_text())
        }
        assert counted <= plugin.activity_kinds, plugin.name


def test_run_refuses_to_turn_the_core_off_in_one_line(tmp_path: Path) -> None:
    """`[plugins.core] enabled = false` was accepted: copbot started without help, status or profile
    forget, and every such command answered that it was turned off."""
    from tests.core.test_startup import copbot

    (tmp_path / "config.toml").write_text("[plugins.core]\nenabled = false\n")
    done = copbot(tmp_path, "run", "--config", "config.toml", stdin="!help\n")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "plugins.core.enabled: the core plugin cannot be turned off" in done.stderr
    assert done.stdout == "" and not (tmp_path / "copbot.db").exists()
