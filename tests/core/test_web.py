"""/healthz and /metrics through aiohttp's test client, on a running bot."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.web.app import create_app


async def test_healthz_reports_each_part_and_turns_503_when_one_is_down(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([])
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {
            "status": "ok",
            "role": "active",
            "database": True,
            "platforms": {"console": True},
            "scheduler": True,
        }
        await bot.adapter.stop()  # a platform disconnects
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "unhealthy" and body["platforms"] == {"console": False}


async def test_metrics_count_events_commands_and_latency(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([])
    await bot.say("!about")
    await bot.say("ana> !status")
    await bot.say("just chatting")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert 'copbot_commands_total{command="about",outcome="ok"} 1.0' in text
    assert 'copbot_commands_total{command="status",outcome="refused"} 1.0' in text
    assert 'copbot_events_handled_total{event="command",platform="console"} 2.0' in text
    assert 'copbot_events_handled_total{event="MessageCreated",platform="console"} 1.0' in text
    assert 'copbot_handler_seconds_count{kind="command"} 2.0' in text


async def test_healthz_says_starting_not_unhealthy_until_the_start_has_finished(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([])
    bot.services.ready = False  # as between the web part's start and the platforms' (bot/app.py start())
    async with TestClient(TestServer(create_app(bot.services))) as client:
        await bot.adapter.stop()
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "starting" and body["problems"] == {"console": "not connected"}
