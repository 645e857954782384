"""A typed command line as words: shell-style quoting, with the apostrophes people write kept as letters.

The registry needs only the words to find which command a line names (its name can be several words);
:mod:`bot.arguments` then reads the same tokens against that command's spec, so a line is split once.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    """One word as typed. ``unclosed`` holds the quote character of a group that never closed: that is an
    error only if the word is used as a value (a rest-of-line argument takes the raw text instead)."""

    text: str
    start: int
    quoted: bool = False
    unclosed: str = ""

    @property
    def is_option(self) -> bool:
        return (
            not self.quoted
            and self.text.startswith("--")
            and len(self.text) > 2
            and not self.text[2:3].isdigit()
        )

    @property
    def is_short_option(self) -> bool:
        """``-m``: not an option copbot has (options are written in full), so an error, not a value."""
        return not self.quoted and _SHORT_OPTION.match(self.text) is not None


_SHORT_OPTION = re.compile(r"^-[A-Za-z][A-Za-z-]*$")
# Quote pairs, the curly ones phones insert included. Single quotes double as apostrophes.
_OPENING = {'"': '"', "“": "”", "„": "“", "«": "»", "'": "'", "‘": "’", "’": "’"}
_APOSTROPHE_LIKE = {"'", "‘", "’"}
_ESCAPABLE = {'"', "'", "\\", " ", "\t", "“", "”", "‘", "’"}
_SPECIAL = re.compile("[" + re.escape("".join(_OPENING)) + r"\\]")
"""A line without these characters is plain words, split on whitespace (``\\S`` is ``not str.isspace``)."""
_PLAIN_WORD = re.compile(r"\S+")


def tokenize(line: str) -> list[Token]:
    """Shell-style words, with the apostrophes people write taken as letters.

    A quote groups words only where it opens a word and closes one (followed by a space or the end):
    ``"What's next?"`` is one word, ``l'eau``, ``O'Brien`` and ``Don't`` stay as typed, and a lone
    leading apostrophe (``'90s``) is a letter too. A double quote that never closes is remembered on its
    token (see :class:`Token`). A backslash escapes a quote, a space or a backslash.
    """
    if _SPECIAL.search(line) is None:  # most commands: no quote, no escape — plain words
        return [Token(word.group(), word.start()) for word in _PLAIN_WORD.finditer(line)]
    return _tokenize_quoted(line)


def _tokenize_quoted(line: str) -> list[Token]:
    """:func:`tokenize` for a line with quotes or backslashes (for any line, in fact: the same tokens)."""
    tokens: list[Token] = []
    index, length = 0, len(line)
    closers: dict[str, list[int]] = {}
    while index < length:
        while index < length and line[index].isspace():
            index += 1
        if index >= length:
            break
        start = index
        buffer: list[str] = []
        quoted = False
        unclosed = ""
        while index < length and not line[index].isspace():
            char = line[index]
            opens_word = index == start or (line.startswith("--", start) and line[index - 1] == "=")
            if char in _OPENING and opens_word:
                end = _closing(line, index, _OPENING[char], closers)
                if end is not None:
                    buffer.append(_unescape(line[index + 1 : end]))
                    quoted = index == start  # a quoted --option=value is still an option
                    index = end + 1
                    continue
                if char not in _APOSTROPHE_LIKE:
                    unclosed = char
                    buffer.append(_unescape(line[index + 1 :]))
                    index = length
                    break
            if char == "\\" and index + 1 < length and line[index + 1] in _ESCAPABLE:
                buffer.append(line[index + 1])
                index += 2
                continue
            buffer.append(char)
            index += 1
        tokens.append(Token("".join(buffer), start, quoted, unclosed))
    return tokens


def _closing(line: str, opening: int, closing: str, closers: dict[str, list[int]]) -> int | None:
    """Where the quote opened at ``opening`` closes: a ``closing`` character that ends a word.

    Where such characters are is found once per line (``closers``, by character): scanning the rest of the
    line for each opening quote took seconds on a long line of apostrophes (``'a 'a 'a …``)."""
    positions = closers.get(closing)
    if positions is None:
        positions = closers[closing] = _word_ends(line, closing)
    found = bisect.bisect_right(positions, opening)
    return positions[found] if found < len(positions) else None


def _word_ends(line: str, closing: str) -> list[int]:
    """The positions of ``closing`` that end a word and are not escaped, in order."""
    positions: list[int] = []
    end = line.find(closing)
    while end != -1:
        escaped = end > 0 and line[end - 1] == "\\" and closing in "\"'"
        ends_word = end + 1 >= len(line) or line[end + 1].isspace()
        if ends_word and not escaped:
            positions.append(end)
        end = line.find(closing, end + 1)
    return positions


def _unescape(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPABLE:
            out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def unquote_rest(text: str) -> str:
    """Rest-of-line text wrapped whole in one pair of quotes is the same text without them, so quoting
    behaves alike in every command (``experts "women's networks"`` = ``experts women's networks``)."""
    stripped = text.strip()
    tokens = tokenize(stripped)
    if len(tokens) == 1 and tokens[0].quoted and not tokens[0].unclosed:
        opener = stripped[0]
        if opener in _OPENING and stripped.endswith(_OPENING[opener]) and len(stripped) >= 2:
            return tokens[0].text
    return stripped
