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
