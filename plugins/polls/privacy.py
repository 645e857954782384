"""What the polls plugin stores about a person, for ``profile export``, and forgetting it.

A vote in a poll that is not anonymous names its voter and their choice. Forgotten, a vote in a poll whose
results are final (closed, or past its deadline) becomes what an anonymous vote always is: that *someone*
voted (``polls_voters``, under the anonymised member row) and one more for each option chosen
(``polls_counts``) — the results and the number of voters stay exactly as they were, and no choice is
linked to anyone. A vote in a poll still open is withdrawn instead: kept unnamed, nothing would stop the
member, back later as a new member, from voting again and being counted twice. In an anonymous poll only
that the member voted is stored, never the choice: the export says so and shows nothing more; forgotten,
that vote cannot be withdrawn, so while the poll is open each account leaves a keyed one-way mark
(``polls_forgotten_voters``) that refuses it a second vote, deleted when the poll closes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso
from bot.tables import MemberRow
from plugins.polls.models import Poll, PollCount, PollForgottenVoter, PollVote, PollVoter


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


def forgotten_mark(key: bytes, poll_id: int, platform: str, platform_id: str) -> str:
    """The mark an account of a forgotten voter leaves in an anonymous poll still open: keyed (the web's
    signing key) and one-way, so that it names nobody and cannot be tried against a list of accounts
    without the key; per poll, so that two polls' marks are not seen to be the same person's."""
    message = f"polls.forgotten|{poll_id}|{platform}|{platform_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _ended(poll: Poll, now: datetime) -> bool:
    """Closed, or past its deadline: its results are final (as the plugin's ``_ended``)."""
    return poll.closed_at is not None or (poll.closes_at is not None and now >= poll.closes_at)


async def forget(
    session: AsyncSession,
    member_ids: Sequence[int],
    now: datetime,
    key: Callable[[], Awaitable[bytes]],
) -> list[str]:
    """A vote in a poll whose results are final becomes an unnamed vote. A vote in a poll still open is
    withdrawn: kept unnamed, it was counted again when the member came back (copbot meets them as a new
    member) and voted again. An anonymous poll's vote cannot be withdrawn (the choice was never stored):
    it stays counted, and each account leaves a keyed mark that refuses it a second vote until the poll
    closes."""
    said: list[str] = []
    votes = (
        await session.execute(
            select(PollVote, Poll)
            .join(Poll, col(Poll.id) == col(PollVote.poll_id))
            .where(col(PollVote.member_id).in_(member_ids))
        )
    ).all()
    withdrawn: set[int] = set()
    kept: set[int] = set()
    for vote, poll in votes:
        await session.execute(
            delete(PollVote).where(
                col(PollVote.poll_id) == vote.poll_id, col(PollVote.member_id) == vote.member_id
            )
        )
        if not _ended(poll, now):
            withdrawn.add(vote.poll_id)
            continue
        kept.add(vote.poll_id)  # from "who chose what" to "someone voted" and the counts: the same results
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
    if withdrawn:
        many = len(withdrawn) != 1
        said.append(
            f"Your vote{'s' if many else ''} in {len(withdrawn)} poll{'s' if many else ''} still open "
            f"withdrawn: {'they' if many else 'it'} no longer count{'' if many else 's'}. If you come back, "
            "you may vote there again."
        )
    if kept:
        many = len(kept) != 1
        said.append(
            f"Your vote{'s' if many else ''} in {len(kept)} closed poll{'s' if many else ''} kept in the "
            f"results as {'unnamed votes' if many else 'an unnamed vote'}: counted, no longer linked to "
            "anyone or to what they chose."
        )
    anonymous = (
        await session.execute(
            select(Poll)
            .join(PollVoter, col(PollVoter.poll_id) == col(Poll.id))
            .where(col(PollVoter.member_id).in_(member_ids), col(Poll.anonymous).is_(True))
        )
    ).scalars()
    voted = {poll.id: poll for poll in anonymous if poll.id is not None}
    still_open = [poll_id for poll_id, poll in voted.items() if not _ended(poll, now)]
    if still_open:
        accounts = (
            await session.execute(
                select(col(MemberRow.platform), col(MemberRow.platform_id)).where(
                    col(MemberRow.id).in_(member_ids)
                )
            )
        ).all()
        secret = await key()
        for poll_id in still_open:
            for platform, platform_id in accounts:
                mark = forgotten_mark(secret, poll_id, platform, platform_id)
                if await session.get(PollForgottenVoter, (poll_id, mark)) is None:
                    session.add(PollForgottenVoter(poll_id=poll_id, marker=mark))
        await session.flush()
    if voted:
        many = len(voted) != 1
        sentence = (
            f"Your vote{'s' if many else ''} in {len(voted)} anonymous poll{'s' if many else ''} kept as "
            "counted: what you chose was never stored."
        )
        if still_open:
            sentence += (
                " While it is open, that poll keeps a one-way keyed mark of your account (no name, no id), "
                "so that a vote from it is not counted twice; the mark is deleted when the poll closes."
                if len(still_open) == 1
                else f" While they are open, those {len(still_open)} polls keep a one-way keyed mark of "
                "your account (no name, no id), so that a vote from it is not counted twice; the marks "
                "are deleted when each poll closes."
            )
        said.append(sentence)
    created = int(
        await session.scalar(
            select(func.count()).select_from(Poll).where(col(Poll.creator_id).in_(member_ids))
        )
        or 0
    )
    if created:
        said.append(f"{created} poll{'s' if created != 1 else ''} you created kept, created by '{FORMER}'.")
    return said
