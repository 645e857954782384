"""bot.escaping escapes exactly as the standard library does, and reads back what it wrote."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from bot import escaping


@given(st.text())
def test_escape_is_the_standard_librarys_and_unescape_undoes_it(text: str) -> None:
    assert escaping.escape(text) == html.escape(text)
    assert escaping.escape(text, quote=False) == html.escape(text, quote=False)
    assert escaping.unescape(html.escape(text)) == text


def test_numeric_references_and_unknown_names() -> None:
    written = "Ana &#38; Bo &#x1F30A; &nbsp; &#0; &#xD800;"
    assert escaping.unescape(written) == "Ana & Bo 🌊 &nbsp; &#0; &#xD800;"
