"""Content as plain text: what the console prints and what Matrix clients without HTML show."""

from __future__ import annotations

from bot.model import Content


def plain_text(content: Content) -> str:
    """The text, then the card's fields, a poll's or menu's numbered options, and button labels as lines."""
    parts = [content.text] if content.text else []
    if content.card is not None:
        parts.append(content.card.title)
        parts += [f"  {name}: {value}" for name, value in content.card.fields]
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
