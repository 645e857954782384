"""The dashboard in a real browser: copbot's web part on a free local port, ``/c/<slug>`` rendered by headless
Chromium — its DOM has the bulb's counts as text, nothing members wrote became markup, and its screenshot is
a real picture (a PNG of the window's size, of many colours, the rings' colours among them).

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it, scripts/install-chromium.sh). Without it
the test is skipped with the reason, unless ``COPBOT_TEST_CHROMIUM_REQUIRED=1`` (set by ``.ci/run`` when it
installed Chromium): then a missing browser is a failure. The screenshot stays in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web.app import create_app
from plugins.dashboard import drawing
from tests.plugins.test_dashboard import COMMUNITIES, PLUGINS, RINGS, SCRIPT, dashboard_link, seed

REQUIRED_ENV = "COPBOT_TEST_CHROMIUM_REQUIRED"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 1600
TIMEOUT = 90.0


@pytest.fixture
def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(
            f"Chromium is not installed but {REQUIRED_ENV}=1 (scripts/install-chromium.sh installs it)"
        )
    pytest.skip(
        f"Chromium is not installed: apt-get install chromium (or set {REQUIRED_ENV}=1 to fail instead)"
    )


async def browse(chromium: str, profile: Path, *arguments: str) -> bytes:
    """Run headless Chromium without blocking the loop the server answers on; its stdout."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"chromium did not finish in {TIMEOUT:.0f} s") from None
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def read_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Width, height, the rows of pixels (unfiltered) and bytes per pixel of an 8-bit, non-interlaced PNG
    — enough of the format to look at a screenshot without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        assert (
            zlib.crc32(kind + body)
            == struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0]
        )
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
        position += 12 + length
    assert header is not None and compressed, "no IHDR or no IDAT"
    width, height, depth, colour, _, _, interlaced = header
    assert depth == 8 and colour in (2, 6) and not interlaced, header  # RGB or RGBA, as Chromium writes
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(compressed))
    stride = width * step
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    above = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(step, stride):
                line[i] = (line[i] + line[i - step]) & 255
        elif kind == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + above[i]) & 255
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - step] if i >= step else 0
                line[i] = (line[i] + (left + above[i]) // 2) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - step] if i >= step else 0
                b, c = above[i], (above[i - step] if i >= step else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert kind == 0, f"unknown filter {kind}"
        rows.append(bytes(line))
        above = line
    return width, height, rows, step


def colour(hex_colour: str) -> bytes:
    return bytes.fromhex(hex_colour.removeprefix("#"))


async def test_the_bulb_in_a_real_browser(console_bot_factory, chromium: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    await seed(bot)
    key = await dashboard_link(bot)
    server = TestServer(create_app(bot.services), host="127.0.0.1")  # a real socket on a free port
    async with TestClient(server) as client:
        url = str(client.make_url(f"/c/cop?key={key}"))
        dom = (await browse(chromium, tmp_path / "profile-dom", "--dump-dom", url)).decode()
        screenshot = tmp_path / "bulb.png"
        await browse(chromium, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
        refused = (await browse(chromium, tmp_path / "profile-403", "--dump-dom", url.split("?")[0])).decode()

    # the DOM as the browser built it: the bulb's counts as text, in the SVG and in the table beside it
    assert "Water Utilities CoP" in dom
    counts = [html.unescape(text) for text in re.findall(r'<tspan class="ring-count">([^<]*)</tspan>', dom)]
    assert counts == [str(count) for count in RINGS.values()]
    table = re.findall(r'<tr data-level="(\w+)"><th scope="row">\w+</th><td class="count">(\d+)</td>', dom)
    assert table == [(level, str(count)) for level, count in RINGS.items()]
    assert len(re.findall(r'<circle class="ring"', dom)) == len(RINGS)
    assert "<script" not in dom.lower() and html.escape(SCRIPT, quote=False) in dom  # text, never markup
    assert "needs a valid link" in refused and "Water Utilities CoP" not in refused

    # the screenshot: a real PNG of the window, not blank, the bulb's colours in it
    print(f"screenshot: {screenshot}")
    width, height, rows, step = read_png(screenshot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    pixels = {row[x : x + 3] for row in rows[::4] for x in range(0, len(row), step * 4)}
    assert len(pixels) > 20, f"only {len(pixels)} colours: a blank page?"
    opaque = b"" if step == 3 else b"\xff"
    seen = {
        level: sum(row.count(colour(drawing.COLOURS[level]) + opaque) for row in rows)
        for level in ("peripheral", "transactional")  # the largest rings: whole areas of their colour
    }
    assert all(count > 1000 for count in seen.values()), seen
    assert sum(row.count(b"\xff\xff\xff" + opaque) for row in rows) > 100_000  # the white page around
