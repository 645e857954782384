"""Content as plain text: what the console prints and what Matrix clients without HTML show."""

from __future__ import annotations

from bot.model import Content


def plain_text(content: Content) -> str:
    """The text, then the card's fields, a poll's or menu's numbered options, and button labels as lines."""
    parts = [content.text] if content.text else []
    if content.card is not None:
        parts.append(content.card.title)
        parts += [_field(name, value) for name, value in content.card.fields]
        if content.card.footer:
            parts.append(f"  {content.card.footer}")
    if content.poll is not None and not content.text:
        parts.append(content.poll.question)
        parts += [f"  {index}. {answer}" for index, answer in enumerate(content.poll.answers, start=1)]
    if content.select is not None:
        parts += [f"  {index}. {label}" for index, (_, label) in enumerate(content.select.options, start=1)]
    if content.buttons:
        parts.append("  " + " · ".join(f"[{button.label}]" for button in content.buttons))
    return "\n".join(parts)


BULLET = "• "
"""How a card field's value marks its lines as a list's items (the digest's sections)."""


def _field(name: str, value: str) -> str:
    """``name: value`` on one line (the value alone when the field has no name); a list or several lines
    under their name, indented, so none runs on after the name while the rest start at the margin."""
    if "\n" not in value and not value.startswith(BULLET):
        return f"  {name}: {value}" if name else f"  {value}"
    lines = "\n".join(f"    {line}" for line in value.splitlines())
    return f"  {name}:\n{lines}" if name else lines
