"""HTML escaping without the standard library's ``html`` module.

``html`` pulls in ``html.entities`` — a table of all 2,231 named character references, ~0.4 MB kept for
the life of the process — for ``unescape``, which copbot needs only for the five characters it escapes
itself. Escaping is the same translation as ``html.escape``.
"""

from __future__ import annotations

import re

_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})
_ESCAPE_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot carry at all, not even escaped."""
_NOT_ICALENDAR = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
"""What RFC 5545 allows in no TEXT value (a newline is written escaped, a tab as it is)."""


def escape(text: str, quote: bool = True) -> str:
    """As :func:`html.escape`: ``& < >`` always, and both quotes when ``quote``."""
    return text.translate(_ESCAPE if quote else _ESCAPE_TEXT)


def unescape(text: str) -> str:
    """The five named references and numeric ones back to characters (what clients write in a pill's
    name); any other ``&name;`` is left as it is."""

    def character(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _NAMED:
            return _NAMED[name]
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match.group(0)

    return _ENTITY.sub(character, text)


def xml_text(text: str) -> str:
    """``text`` without what XML cannot carry: members can type control characters into a title, and lxml
    refuses the whole feed for one of them, so a single item would make the feed a 500 until it aged out."""
    return _NOT_XML.sub("", text)


def calendar_text(text: str) -> str:
    """``text`` without the control characters RFC 5545 forbids: icalendar writes them as they are, and a
    strict calendar app refuses the whole feed (every meeting of the community) for one in a title."""
    return _NOT_ICALENDAR.sub("", text)
