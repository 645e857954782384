"""check-config on good and broken files, and environment variables over the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import ConfigError, load_settings

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
        ("prefx = '!'\n", "prefx: unknown key"),
        ("[web]\nport = 'eighty'\n", "web.port: Input should be a valid integer"),
        ("timezone = 'Mars/Olympus'\n", "timezone: unknown time zone 'Mars/Olympus'"),
        ("[[communities]]\nname = 'Water'\n", "communities[0].slug: missing required value"),
        (
            "[[communities]]\nslug = 'water'\nname = 'Water'\ntimezone = 'Europe/Nowhere'\n",
            "communities[0].timezone: unknown time zone 'Europe/Nowhere'",
        ),
        ("[plugins.nosuch]\nenabled = true\n", "plugins.nosuch: no such plugin"),
        ("[plugins.core]\nenabeld = false\n", "plugins.core.enabeld: unknown key"),
        ("prefix = \n", "not valid TOML"),
        ("[console]\ncommunity = 'other'\n", "console.community: no community with slug 'other'"),
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
    assert error.value.problems[0].startswith("web.port: Input should be a valid integer")


def test_run_refuses_a_bad_config_the_same_way(tmp_path: Path) -> None:
    path = write(tmp_path, "[web]\nprot = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"{path}: web.prot: unknown key" in result.stderr
    assert not (tmp_path / "copbot.db").exists()
