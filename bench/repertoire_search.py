"""`repertoire search` over 100,000 items: target p95 ≤ 5 ms per search on SQLite.

The items are water-sector texts in three communities (60/30/10 %) and five kinds: each is about one of
sixteen themes (leak detection, smart metering, membranes, asset management, nature-based solutions,
customer engagement…), its title 4–10 words and its text 40–200 words: half small words, the rest mostly
the theme's ~25 words, a few of them in most of its texts and most rarer (Zipf), with general words (a few
everywhere: "water" is in nine texts out of ten) and other themes' words; 1–5 of 86 tags; 1 % removed.
They are written with Core executemany (items, then their FTS5 rows) into a fresh SQLite file migrated to
head, then the index is merged, ANALYZE run and the WAL checkpointed, as in a bot that has been running.

Then 500 searches of 1–3 words of a theme (one word in seven a general one; a fifth of them with --kind, a
tenth with --tag, a fifth over all three communities) go through ``search_items`` in one session — ranking,
filters and snippets, as `repertoire search` runs them — after 20 to warm up, and p50/p95 are printed,
judged on p95. A typical query here matches 10,000–20,000 items: search.py ranks a broad query over its
newest search.WINDOW matches (see there why).

Beside the searches, for information: what Discord's autocomplete asks while an item's number is typed
(``queries.suggestions``, ``/repertoire show item_id:…``): 300 fragments, each a theme word typed letter by
letter, two words' beginnings, a number's first digits or letters found in no title, in one community.

With PostgreSQL's server binaries installed (found as the tests' throwaway cluster finds them), the same
items and searches run on a throwaway cluster too, for information; without them, a line says why not.
Environment: BENCH_REPERTOIRE_ITEMS (default 100000), BENCH_REPERTOIRE_SEARCHES (default 500).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bench.postgres import postgres_cluster
from bench.report import result
from bot import migrate
from bot.db import Database
from bot.tables import CommunityRow, MemberRow
from plugins.repertoire.models import KINDS, Item
from plugins.repertoire.queries import suggestions
from plugins.repertoire.search import RECENT, search_items

TARGET_MS = 5.0
ITEMS = int(os.environ.get("BENCH_REPERTOIRE_ITEMS", "100000"))
SEARCHES = int(os.environ.get("BENCH_REPERTOIRE_SEARCHES", "500"))
SUGGESTIONS = 300
WARMUP = 20
COMMUNITIES = 3
MEMBERS = 600
BATCH = 5000
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# theme → (its words, its tags)
THEMES: dict[str, tuple[str, str]] = {
    "leak detection": (
        "leak leaks leakage detection acoustic logger loggers noise correlator hydrophone burst bursts "
        "pressure transient district metered area night flow minimum background losses pinpointing "
        "ground microphone satellite survey repair crew pipe main mains service connection",
        "leakage leak-detection acoustic-loggers nrw pressure-management dma",
    ),
    "smart metering": (
        "smart meter meters metering reading readings interval consumption customer household AMI AMR "
        "radio LoRaWAN NB-IoT head-end billing tariff data analytics dashboard alarm backflow battery "
        "firmware rollout installation endpoint",
        "smart-metering ami data-analytics billing iot consumption",
    ),
    "membranes": (
        "membrane membranes reverse osmosis ultrafiltration nanofiltration fouling biofouling scaling "
        "cleaning flux permeate concentrate brine pretreatment antiscalant module vessel recovery "
        "desalination seawater energy recovery cartridge integrity testing",
        "membranes desalination reverse-osmosis fouling ultrafiltration brine",
    ),
    "asset management": (
        "asset assets management condition assessment risk criticality renewal rehabilitation "
        "replacement lifecycle cost capital maintenance planning inventory register failure deterioration "
        "model pipe age material cast iron asbestos cement investment",
        "asset-management rehabilitation risk-based-planning capex maintenance gis",
    ),
    "nature-based solutions": (
        "nature-based solutions wetland wetlands constructed green infrastructure sponge city rain garden "
        "bioswale floodplain restoration riparian buffer catchment biodiversity reed bed infiltration "
        "retention pond urban greening ecosystem services",
        "nature-based-solutions wetlands green-infrastructure sponge-city biodiversity catchment",
    ),
    "customer engagement": (
        "customer customers engagement communication campaign outreach trust feedback survey complaints "
        "social media app notification behaviour change water saving awareness school education "
        "vulnerable affordability support call centre",
        "customer-engagement communication behaviour-change water-saving affordability",
    ),
    "wastewater treatment": (
        "wastewater treatment activated sludge aeration blower nitrogen phosphorus removal nitrification "
        "denitrification clarifier digester biogas effluent influent biological reactor granular "
        "anaerobic energy neutral plant operator",
        "wastewater activated-sludge nutrient-removal biogas energy-efficiency",
    ),
    "stormwater": (
        "stormwater storm overflow overflows combined sewer CSO rainfall runoff flooding flood "
        "hydraulic model real-time control storage tank spill discharge monitoring radar forecast "
        "drainage culvert",
        "stormwater cso flooding drainage real-time-control rainfall",
    ),
    "water quality": (
        "water quality drinking chlorine residual disinfection turbidity sampling laboratory "
        "contamination bacteria coliform legionella lead pipes PFAS micropollutants monitoring sensor "
        "online compliance regulation taste odour",
        "water-quality disinfection pfas sampling compliance lead",
    ),
    "digital twin": (
        "digital twin hydraulic model calibration simulation scenario real-time SCADA telemetry sensor "
        "data platform machine learning forecast demand optimisation pump scheduling network "
        "visualisation cloud integration",
        "digital-twin scada hydraulic-modelling machine-learning optimisation",
    ),
    "energy": (
        "energy efficiency pump pumps pumping variable speed drive motor electricity consumption "
        "solar photovoltaic renewable carbon emissions net zero audit tariff peak load shifting "
        "heat recovery",
        "energy pumping net-zero carbon solar",
    ),
    "groundwater": (
        "groundwater aquifer aquifers recharge borehole boreholes well wells abstraction level "
        "monitoring salinisation saline intrusion managed aquifer recharge nitrate protection zone "
        "hydrogeology drought",
        "groundwater aquifer-recharge drought abstraction nitrate",
    ),
    "water reuse": (
        "water reuse reclaimed recycled irrigation agriculture industrial cooling potable indirect "
        "direct advanced treatment ozone UV disinfection acceptance regulation risk barrier "
        "greywater",
        "water-reuse irrigation circular-economy greywater",
    ),
    "resilience": (
        "resilience climate adaptation drought scarcity supply security emergency preparedness "
        "contingency interconnection storage reservoir risk scenario heatwave wildfire cyber security "
        "incident recovery",
        "resilience climate-adaptation drought emergency cyber-security",
    ),
    "governance": (
        "governance regulation regulator policy stakeholder stakeholders participation partnership "
        "public private utility municipality performance benchmarking indicators transparency "
        "funding financing investment procurement tender",
        "governance regulation benchmarking procurement funding policy",
    ),
    "workforce": (
        "workforce skills training apprenticeship knowledge transfer retirement recruitment diversity "
        "mentoring competence operator certification safety culture learning onboarding",
        "workforce training knowledge-transfer safety skills",
    ),
}
GENERAL = (
    "water utility utilities network system project pilot results lessons learned approach method team data "
    "cost costs year month week city region service services operation operators staff implementation "
    "experience practice tool guide report case study example performance improvement challenge solution "
    "municipal rural urban supply demand pipe pipes infrastructure maintenance budget planning strategy "
    "european national local partners consultant contractor university research innovation trial "
    "procurement standard standards target targets benefit benefits impact evaluation workshop webinar "
    "presentation slides template spreadsheet checklist recommendation stakeholders manager "
    "engineer engineers field office control room quality safety health environment climate future "
    "digital software hardware vendor supplier contract specification baseline kpi savings reduction "
    "increase decrease quarterly annual daily hourly first second third new old large small"
).split()
CONNECTORS = (
    "we the a our in on for with and of to from after before during this that these using by at "
    "was were is are has have had it they which when then also but so an as be been more most some all "
    "can could would should will not only very about into over under between"
).split()
TITLES = (
    "How we {a} {b} in {c}",
    "{A} and {b}: lessons from {c}",
    "A practical guide to {a} {b}",
    "Reducing {a} with {b} {c}",
    "{A} {b} pilot in {c} results",
    "Why {a} matters for {b} {c}",
    "Our experience with {a} {b} and {c}",
    "{A} {b} checklist",
)
KIND_WEIGHTS = (3, 3, 2, 2, 2)


def zipf(count: int) -> list[float]:
    return [1 / (rank + 1) for rank in range(count)]


class Vocabulary:
    """Words as texts use them: half are small words; a few of a theme's words are in most of its texts and
    most are rarer (Zipf); a few general words are everywhere (``water`` in most texts), most are not."""

    MIX = (("connector", 0.5), ("theme", 0.3), ("general", 0.1), ("elsewhere", 0.1))

    def __init__(self) -> None:
        self.theme_words = [theme_words.split() for theme_words, _ in THEMES.values()]
        self.theme_cumulative = [list(accumulate(zipf(len(words)))) for words in self.theme_words]
        self.theme_tags = [theme_tags.split() for _, theme_tags in THEMES.values()]
        self.all_tags = sorted({tag for group in self.theme_tags for tag in group})
        self.general_cumulative = list(accumulate(zipf(len(GENERAL))))
        self.elsewhere = sorted({word for words in self.theme_words for word in words})
        self.kinds = [kind for kind, _ in self.MIX]
        self.mix = list(accumulate(share for _, share in self.MIX))

    def theme_word(self, rng: random.Random, theme: int) -> str:
        return rng.choices(self.theme_words[theme], cum_weights=self.theme_cumulative[theme])[0]

    def general_word(self, rng: random.Random) -> str:
        return rng.choices(GENERAL, cum_weights=self.general_cumulative)[0]

    def body(self, rng: random.Random, theme: int) -> str:
        count = rng.randint(40, 200)
        kinds = rng.choices(self.kinds, cum_weights=self.mix, k=count)
        drawn = {
            "connector": iter(rng.choices(CONNECTORS, k=kinds.count("connector"))),
            "theme": iter(
                rng.choices(
                    self.theme_words[theme], cum_weights=self.theme_cumulative[theme], k=kinds.count("theme")
                )
            ),
            "general": iter(
                rng.choices(GENERAL, cum_weights=self.general_cumulative, k=kinds.count("general"))
            ),
            "elsewhere": iter(rng.choices(self.elsewhere, k=kinds.count("elsewhere"))),
        }
        words = [next(drawn[kind]) for kind in kinds]
        sentences: list[str] = []
        start = 0
        while start < count:
            end = min(start + rng.randint(8, 20), count)
            sentences.append(" ".join(words[start:end]).capitalize() + ".")
            start = end
        return " ".join(sentences)

    def title(self, rng: random.Random, theme: int) -> str:
        a, b = self.theme_word(rng, theme), self.theme_word(rng, theme)
        c = self.theme_word(rng, theme) if rng.random() < 0.5 else self.general_word(rng)
        words = rng.choice(TITLES).format(a=a, b=b, c=c, A=a.capitalize()).split()
        while len(words) < 4:
            words.append(self.general_word(rng))
        return " ".join(words[:10])


def item_rows(rng: random.Random) -> Iterator[dict[str, Any]]:
    vocabulary = Vocabulary()
    themes = len(vocabulary.theme_words)
    for index in range(ITEMS):
        theme = rng.randrange(themes)
        own = vocabulary.theme_tags[theme]
        picked = rng.sample(own, rng.randint(1, min(4, len(own))))
        if rng.random() < 0.3:
            picked.append(rng.choice(vocabulary.all_tags))
        created = NOW - timedelta(minutes=(ITEMS - index) * 5)
        author = rng.randint(1, MEMBERS)
        yield {
            "community_id": rng.choices((1, 2, 3), weights=(6, 3, 1))[0],
            "kind": rng.choices(KINDS, weights=KIND_WEIGHTS)[0],
            "title": vocabulary.title(rng, theme),
            "body": vocabulary.body(rng, theme),
            "url": "",
            "tags": ",".join(dict.fromkeys(picked[:5])),
            "author_id": author,
            "added_by_id": author,
            "source_link": "",
            "created_at": created,
            "updated_at": created,
            "removed_at": NOW if rng.random() < 0.01 else None,
        }


def searches(rng: random.Random) -> list[dict[str, Any]]:
    """1–3 words about one theme, each of its words as likely to be searched; one word in seven general."""
    vocabulary = Vocabulary()
    planned = []
    for _ in range(SEARCHES + WARMUP):
        theme = rng.randrange(len(vocabulary.theme_words))
        count = rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
        picked: list[str] = []
        while len(picked) < count:
            word = rng.choice(GENERAL) if rng.random() < 1 / 7 else rng.choice(vocabulary.theme_words[theme])
            if word not in picked:
                picked.append(word)
        roll = rng.random()
        planned.append(
            {
                "query": " ".join(picked),
                "community_ids": [1, 2, 3] if rng.random() < 0.2 else [rng.choices((1, 2, 3), (6, 3, 1))[0]],
                "kind": rng.choice(KINDS) if roll < 0.2 else None,
                "tag": rng.choice(vocabulary.theme_tags[theme]) if 0.2 <= roll < 0.3 else None,
            }
        )
    return planned


async def seed(database: Database) -> float:
    started = time.perf_counter()
    rng = random.Random(2026)
    async with database.session() as session:
        await session.execute(
            insert(CommunityRow),
            [
                {"slug": f"cop{n}", "name": f"CoP {n}", "domain": "", "timezone": "UTC", "created_at": NOW}
                for n in range(1, COMMUNITIES + 1)
            ],
        )
        await session.execute(
            insert(MemberRow),
            [
                {
                    "platform": "console",
                    "platform_id": f"m{n}",
                    "display_name": f"m{n}",
                    "is_bot": False,
                    "reminders": "room",
                    "first_seen": NOW,
                    "last_seen": NOW,
                }
                for n in range(1, MEMBERS + 1)
            ],
        )
    rows = item_rows(rng)
    next_id = 1
    while True:
        batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
        if not batch:
            break
        for offset, row in enumerate(batch):
            row["id"] = next_id + offset
        next_id += len(batch)
        async with database.session() as session:
            await session.execute(insert(Item), batch)
            if database.is_sqlite:
                await session.execute(
                    text(
                        "INSERT INTO repertoire_fts (rowid, item_id, title, tags, body) "
                        "VALUES (:id, :id, :title, :tags, :body)"
                    ),
                    [
                        {
                            "id": row["id"],
                            "title": row["title"],
                            "tags": row["tags"].replace(",", " "),
                            "body": row["body"],
                        }
                        for row in batch
                    ],
                )
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        if database.is_sqlite:  # merged index segments, statistics, the WAL written back: as a running bot's
            # the newest RECENT items indexed again on their own, as search.index_item keeps them
            await connection.execute(
                text(
                    "INSERT INTO repertoire_recent (rowid, item_id, title, tags, body) "
                    "SELECT rowid, item_id, title, tags, body FROM repertoire_fts WHERE rowid > :floor"
                ),
                {"floor": next_id - 1 - RECENT},
            )
            for table in ("repertoire_fts", "repertoire_recent"):
                await connection.execute(text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))
            await connection.execute(text("ANALYZE"))
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            await connection.execute(text("VACUUM ANALYZE repertoire_items"))
    return time.perf_counter() - started


async def measure(database: Database) -> tuple[list[float], int]:
    planned = searches(random.Random(7))
    timings: list[float] = []
    found = 0
    async with database.session() as session:
        for index, search in enumerate(planned):
            started = time.perf_counter()
            hits = await search_items(session, **search)
            took = (time.perf_counter() - started) * 1000
            if index >= WARMUP:
                timings.append(took)
                found += bool(hits)
    return timings, found


def fragments(rng: random.Random) -> list[tuple[int, str]]:
    """What members type into an item's number, in (community, typed) pairs: a word letter by letter, the
    start of two words, the first digits of a number, or nothing any title has."""
    vocabulary = Vocabulary()
    typed: list[tuple[int, str]] = []
    while len(typed) < SUGGESTIONS:
        community = rng.choices((1, 2, 3), (6, 3, 1))[0]
        words = vocabulary.theme_words[rng.randrange(len(vocabulary.theme_words))]
        roll = rng.random()
        if roll < 0.6:
            word = rng.choice(words)
            typed += [(community, word[:end]) for end in range(1, len(word) + 1)]
        elif roll < 0.8:
            first, second = rng.sample(words, 2)
            typed.append((community, f"{first[:4]} {second[:3]}"))
        elif roll < 0.9:
            typed.append((community, "#" + str(rng.randrange(1, ITEMS))[: rng.randint(1, 4)]))
        else:
            typed.append((community, "".join(rng.choices("qxzj", k=4))))
    return typed[:SUGGESTIONS]


async def measure_suggestions(database: Database) -> list[float]:
    timings: list[float] = []
    async with database.session() as session:
        for index, (community, typed) in enumerate(fragments(random.Random(11))):
            started = time.perf_counter()
            await suggestions(session, community, typed, removed=False)
            if index >= WARMUP:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


async def bench(url: str, backend: str) -> str:
    database = Database(url)
    try:
        await migrate.upgrade(database)
        seeded = await seed(database)
        timings, found = await measure(database)
        suggested = sorted(await measure_suggestions(database))
    finally:
        await database.close()
    ordered = sorted(timings)
    p50, p95 = statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]
    verdict = "PASS" if p95 <= TARGET_MS else "FAIL"
    judged = p95 <= TARGET_MS if backend == "sqlite" else None
    result(
        "repertoire",
        f"search p95, {ITEMS:,} items, {backend}",
        p95,
        "ms",
        f"≤ {TARGET_MS:.0f} ms",
        p95 / TARGET_MS,
        judged,
    )
    suggested_p95 = suggested[int(len(suggested) * 0.95) - 1]
    result(
        "repertoire",
        f"item suggestions p95, {ITEMS:,} items, {backend}",
        suggested_p95,
        "ms",
        "information",
        None,
        None,
    )
    if backend != "sqlite":
        verdict = f"for information, {verdict.lower()}"
    return (
        f"repertoire_search[{backend}, {ITEMS:,} items]: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {ordered[-1]:.1f} ms (target p95 ≤ {TARGET_MS:.0f} ms) — {verdict}; "
        f"{len(timings)} searches, {found} with results; seeded in {seeded:.0f} s; item suggestions while a "
        f"number is typed p50 {statistics.median(suggested):.1f} ms, p95 {suggested_p95:.1f} ms, "
        f"max {suggested[-1]:.1f} ms (information)"
    )


async def run() -> None:
    with tempfile.TemporaryDirectory() as directory:
        print(await bench(f"sqlite+aiosqlite:///{directory}/bench.db", "sqlite"), flush=True)
    started = postgres_cluster("bench_repertoire")
    if isinstance(started, str):
        print(f"repertoire_search[postgresql]: skipped — PostgreSQL not available: {started}")
        return
    cluster, url = started
    try:
        print(await bench(url, "postgresql"))
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(run())
