"""constraints.txt pins what a fresh install gets: every package copbot and its tests need must be in it,
at a version its own requirement allows, and make and the image must install through it. A dependency
added to pyproject.toml but not pinned would be installed at whatever was released last."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        assert version, f"constraints.txt: {line!r} is not pinned to one version"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = [
        *project["dependencies"],
        *(req for extra in project["optional-dependencies"].values() for req in extra),
    ]
    return [Requirement(req) for req in listed]


def test_every_requirement_is_pinned_at_a_version_it_allows() -> None:
    pins = pinned()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in constraints.txt: run `make constraints`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside pyproject's {requirement}"
        )
    assert "greenlet" in pins  # what sqlalchemy[asyncio] adds


def test_make_and_the_image_install_through_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--constraint constraints.txt -e '.[test]'" in makefile
    assert "$(STAMP): pyproject.toml constraints.txt" in makefile  # a new pin reinstalls
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "constraints.txt" in dockerfile.split("RUN pip install")[0]  # copied before the install
    assert "pip install --constraint constraints.txt ." in dockerfile
