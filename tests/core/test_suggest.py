"""bot/suggest.py: a suggestion's label within Discord's limits, and what a typed fragment matches."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite

from bot.suggest import LABEL_LIMIT, Suggestion, matching, suggestion

polls = Table("p", MetaData(), Column("id", Integer, primary_key=True), Column("title", String))


def where(typed: str) -> tuple[str, dict[str, object]]:
    condition = matching(polls.c.id, polls.c.title, typed)
    assert condition is not None
    compiled = select(polls.c.id).where(condition).compile(dialect=sqlite.dialect())
    return str(compiled).split("WHERE ", 1)[1], dict(compiled.params)


def test_a_label_is_one_line_with_the_number_first_and_never_longer_than_discord_takes() -> None:
    assert suggestion(3, "Which  day?\nFriday", "closed") == Suggestion("#3 Which day? Friday · closed", 3)
    long = suggestion(12, "word " * 40, "story")
    assert len(long.label) <= LABEL_LIMIT and long.label.endswith("word…") and long.value == 12


def test_nothing_typed_matches_everything_and_each_word_must_be_in_the_title() -> None:
    assert matching(polls.c.id, polls.c.title, "  ") is None
    sql, params = where("leak night")
    assert sql.count("LIKE") == 2 and " OR " not in sql
    assert sorted(params.values()) == ["%leak%", "%night%"]


def test_a_number_also_matches_the_ids_that_start_with_it_and_like_wildcards_are_literal() -> None:
    sql, params = where("#3")
    assert " OR " in sql and "CAST(p.id AS VARCHAR) LIKE" in sql
    assert sorted(params.values()) == ["%#3%", "3%"]
    _, params = where("100%_x")
    assert list(params.values()) == ["%100\\%\\_x%"]
