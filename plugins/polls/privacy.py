"""What the polls plugin stores about a person, for ``profile export``, and forgetting it.

A vote in a poll that is not anonymous names its voter and their choice. Forgotten, it becomes what an
anonymous vote always is: that *someone* voted (``polls_voters``, under the anonymised member row) and one
more for each option chosen (``polls_counts``) — the results and the number of voters stay exactly as they
were, and no choice is linked to anyone. In an anonymous poll only that the member voted is stored, never
the choice: the export says so and shows nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso
from plugins.polls.models import Poll, PollCount, PollVote, PollVoter


def _options(poll: Poll) -> list[str]:
    return list(json.loads(poll.options))


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    created = list(
        (
            await session.execute(
                select(Poll).where(col(Poll.creator_id).in_(member_ids)).order_by(col(Poll.id))
            )
        ).scalars()
    )
    if created:
        found["polls_created"] = [
            {
                "poll": poll.id,
                "question": poll.question,
                "options": _options(poll),
                "anonymous": poll.anonymous,
                "created_at": iso(poll.created_at),
                "closed_at": iso(poll.closed_at),
            }
            for poll in created
        ]
    votes = (
        await session.execute(
            select(PollVote, Poll)
            .join(Poll, col(Poll.id) == col(PollVote.poll_id))
            .where(col(PollVote.member_id).in_(member_ids))
            .order_by(col(PollVote.poll_id))
        )
    ).all()
    if votes:
        found["votes"] = [
            {
                "poll": poll.id,
                "question": poll.question,
                "your_choice": [
                    _options(poll)[int(index)]
                    for index in vote.choices.split(",")
                    if index.isdigit() and int(index) < len(_options(poll))
                ],
                "at": iso(vote.at),
            }
            for vote, poll in votes
        ]
    anonymous = (
        await session.execute(
            select(col(Poll.id), col(Poll.question))
            .join(PollVoter, col(PollVoter.poll_id) == col(Poll.id))
            .where(col(PollVoter.member_id).in_(member_ids), col(Poll.anonymous).is_(True))
            .order_by(col(Poll.id))
        )
    ).all()
    if anonymous:
        found["anonymous_polls_voted_in"] = [
            {"poll": poll_id, "question": question, "your_choice": "not stored: the poll is anonymous"}
            for poll_id, question in anonymous
        ]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int]) -> list[str]:
    said: list[str] = []
    votes = list(
        (await session.execute(select(PollVote).where(col(PollVote.member_id).in_(member_ids)))).scalars()
    )
    for vote in votes:  # from "who chose what" to "someone voted" and the counts: the same results
        await session.execute(
            delete(PollVote).where(
                col(PollVote.poll_id) == vote.poll_id, col(PollVote.member_id) == vote.member_id
            )
        )
        if await session.get(PollVoter, (vote.poll_id, vote.member_id)) is None:
            session.add(PollVoter(poll_id=vote.poll_id, member_id=vote.member_id))
        for part in vote.choices.split(","):
            if not part.isdigit():
                continue
            row = await session.get(PollCount, (vote.poll_id, int(part)))
            if row is None:
                session.add(PollCount(poll_id=vote.poll_id, option=int(part), count=1))
            else:
                row.count += 1
        await session.flush()
    if votes:
        polls = len({vote.poll_id for vote in votes})
        said.append(
            f"Your vote{'s' if polls != 1 else ''} in {polls} poll{'s' if polls != 1 else ''} kept in the "
            "results as unnamed votes: counted, no longer linked to anyone or to what they chose."
        )
    anonymous = int(
        await session.scalar(
            select(func.count())
            .select_from(PollVoter)
            .join(Poll, col(Poll.id) == col(PollVoter.poll_id))
            .where(col(PollVoter.member_id).in_(member_ids), col(Poll.anonymous).is_(True))
        )
        or 0
    )
    if anonymous:
        said.append(
            f"Your vote{'s' if anonymous != 1 else ''} in {anonymous} anonymous poll"
            f"{'s' if anonymous != 1 else ''} kept as counted: what you chose was never stored."
        )
    created = int(
        await session.scalar(
            select(func.count()).select_from(Poll).where(col(Poll.creator_id).in_(member_ids))
        )
        or 0
    )
    if created:
        said.append(f"{created} poll{'s' if created != 1 else ''} you created kept, created by '{FORMER}'.")
    return said
