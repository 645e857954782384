"""Profiles, the stakeholder map: onboarding, profiles, experts and introductions.

Who someone is (organisation type, organisation, country, expertise, interests, time zone) is what lets a
CoP bring together people who would not otherwise meet: `experts` finds who knows a topic, `match`
suggests one person to meet, and optional intro rounds pair members who opted in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.arguments import short_answer
from bot.commands import Text
from bot.config_values import CronSchedule, RoomMap
from bot.context import Context, JobContext
from bot.errors import NotFound, Refused, Undeliverable, UsageError
from bot.model import (
    ButtonClicked,
    Card,
    CommandAnswered,
    Content,
    Member,
    MemberWelcomed,
    MessageCreated,
    Room,
)
from bot.plugin import UNNAMED, DigestEntry, DigestSection, Plugin, PluginConfig, command, listen, schedule
from bot.tables import MemberRow
from bot.timeparse import shown
from bot.zones import zone_label
from plugins.profiles import fields, queries
from plugins.profiles.matching import Person, pair_round, suggest
from plugins.profiles.models import Onboarding, Profile
from plugins.profiles.onboarding import (
    AGAIN,
    INTRO,
    INTRO_AGAIN,
    INTRO_ASKED,
    QUESTIONS,
    SKIP,
    STOP,
    question_content,
)
from plugins.profiles.search import search_profiles, why, words

FieldName = Literal[
    "org",
    "org-type",
    "country",
    "expertise",
    "interests",
    "timezone",
    "intros",
    "reminders",
    "public",
    "prompts",
    "tracking",
]
EXAMPLES = {
    "org": "profile set org Vitens",
    "org-type": "profile set org-type utility",
    "country": "profile set country Netherlands",
    "expertise": "profile set expertise leak detection, smart metering",
    "interests": "profile set interests nature-based solutions, asset management",
    "timezone": "profile set timezone Europe/Amsterdam",
    "intros": "profile set intros on",
    "reminders": "profile set reminders dm",
    "public": "profile set public on",
    "prompts": "profile set prompts off",
    "tracking": "profile set tracking off",
}
MEMBER_FIELDS = ("timezone", "reminders", "public", "prompts", "tracking")
"""Kept on the member itself, not the profile: how copbot reaches and treats the member."""
CHOICES = ("public", "prompts", "tracking")
"""The member's own choices (on/off) about being shown, asked and counted: no profile needed for them."""


class ProfilesConfig(PluginConfig):
    onboarding: bool = True
    onboarding_days: int = Field(default=7, ge=1, le=90)
    active_days: int = Field(default=60, ge=1, le=3650)
    intro_rounds: CronSchedule = Field(
        default="", description="cron for intro rounds, e.g. '0 9 * * mon'; '' = off"
    )
    intro_rooms: RoomMap = Field(
        default_factory=dict, description="community slug → platform → room that announces each round"
    )


class Profiles(Plugin):
    name = "profiles"
    description = "profiles, onboarding, experts and introductions"
    Config = ProfilesConfig
    config: ProfilesConfig

    async def setup(self) -> None:
        scheduler = self.services.scheduler
        if scheduler is None:
            return
        job_id = scheduler.own_id("profiles:intro-rounds")  # each process's, for its own communities
        if self.config.intro_rounds:
            await scheduler.every(
                job_id,
                "profiles.intro_round",
                cron=self.config.intro_rounds,
                timezone=self.services.settings.timezone,
                owner=scheduler.own,
            )
        else:
            await scheduler.cancel(job_id)

    # --- onboarding -------------------------------------------------------------------------------------

    @listen(MemberWelcomed)
    async def on_welcomed(self, ctx: Context, event: MemberWelcomed) -> None:
        if not self.config.onboarding or ctx.author_id is None:
            return
        profile = await queries.get_profile(ctx.session, ctx.author_id)
        try:
            if profile is not None and _told_something(profile):
                await self._profile_kept(ctx, event.member, ctx.author_id, profile)
                return
            await self._start_onboarding(ctx, event.member, ctx.author_id)
        except Undeliverable as error:  # direct messages closed: said where they were greeted, once
            self.log.info("onboarding of %s not started: %s", event.member.key, error)
            if profile is None or not _told_something(profile):
                await ctx.post(
                    event.room,
                    Content(
                        f"{ctx.mention(event.member)}, I could not send you the welcome questions by direct "
                        f"message. To answer them later, allow direct messages from this community's members "
                        f"and type {ctx.prefix}profile onboarding.",
                        mentions=(event.member,),
                    ),
                )

    async def _profile_kept(self, ctx: Context, member: Member, member_id: int, profile: Profile) -> None:
        """A profile is one per account, shown in every community the member is in: someone who answered
        in one community and joins a sister one is not asked the same six questions again, but shown what
        the new community will see, and how to change it."""
        row = await queries.member_row(ctx.session, member_id)
        community = ctx.community.name if ctx.community else "the community"
        await ctx.send_direct(
            member,
            Content(
                f"Hi {member.display_name}, welcome to {community}! Your profile is already here, and its "
                f"members see it too. Change a field with {ctx.prefix}profile set, or answer the questions "
                f"again with {ctx.prefix}profile onboarding.",
                card=render_profile(member.display_name, profile, row.timezone if row else None),
            ),
        )

    @command("profile onboarding", examples=("profile onboarding",))
    async def restart_onboarding(self, ctx: Context) -> None:
        """Answer the onboarding questions again, in a direct message."""
        assert ctx.author is not None and ctx.author_id is not None
        profile = await queries.get_profile(ctx.session, ctx.author_id)
        intro = INTRO_AGAIN if profile is not None and _told_something(profile) else INTRO_ASKED
        try:
            await self._start_onboarding(ctx, ctx.author, ctx.author_id, intro)
        except Undeliverable:  # direct messages closed: nothing started, and the member learns why
            raise Refused(
                "I could not send you the questions by direct message, so nothing was started; allow direct "
                f"messages from this community's members and ask again with {ctx.prefix}profile onboarding."
            ) from None
        if not ctx.room.is_direct:
            await ctx.reply(Content("I have sent you the questions in a direct message.", ephemeral=True))

    async def _start_onboarding(
        self, ctx: Context, member: Member, member_id: int, intro: str = INTRO
    ) -> None:
        """The first question by direct message, under ``intro`` (a newcomer's welcome by default), then
        the conversation's row: a member the platform will not let copbot write to
        (:class:`Undeliverable`, raised) has no conversation waiting for answers."""
        now = ctx.now()
        community = ctx.community.name if ctx.community else "the community"
        lead = intro.format(name=member.display_name, community=community)
        await ctx.send_direct(member, question_content(0, member_id, ctx.adapter.capabilities, lead=lead))
        row = await ctx.session.get(Onboarding, member_id)
        if row is None:
            row = Onboarding(member_id=member_id, started_at=now, expires_at=now)
            ctx.session.add(row)
        row.community_id, row.step, row.started_at = ctx.community_id, 0, now
        row.expires_at = now + timedelta(days=self.config.onboarding_days)

    @listen(MessageCreated)
    async def on_direct_message(self, ctx: Context, event: MessageCreated) -> None:
        if event.room.is_direct and ctx.author is not None and ctx.author_id is not None:
            await self._answer(ctx, ctx.author, ctx.author_id, event.message.text)

    @listen(CommandAnswered)
    async def on_command_answered(self, ctx: Context, event: CommandAnswered) -> None:
        """A command typed mid-onboarding pushes the question up, out of sight: ask it again below the
        answer, once, so the member's next skip or answer goes to a question they can see.
        ``profile onboarding`` has just asked its first question itself."""
        if ctx.author_id is None or event.command == "profile onboarding":
            return
        row = await ctx.session.get(Onboarding, ctx.author_id)
        if row is None or row.expires_at <= ctx.now():  # none, or expired: _answer ends that one quietly
            return
        await ctx.send_direct(
            event.member, question_content(row.step, ctx.author_id, ctx.adapter.capabilities, lead=AGAIN)
        )

    @listen(ButtonClicked)
    async def on_menu(self, ctx: Context, event: ButtonClicked) -> None:
        """The organisation-type menu (Discord) answers the first question."""
        parts = event.custom_id.split(":")
        if len(parts) == 3 and parts[1] == "orgtype" and event.values and ctx.author_id == int(parts[2]):
            row = await ctx.session.get(Onboarding, ctx.author_id)
            if row is not None and QUESTIONS[row.step].field == "org_type":
                await ctx.reply(
                    Content(
                        f"Noted: {fields.ORG_TYPES.get(event.values[0], event.values[0])}", ephemeral=True
                    )
                )
                await self._answer(ctx, event.member, ctx.author_id, event.values[0])

    async def _answer(self, ctx: Context, member: Member, member_id: int, text: str) -> None:
        row = await ctx.session.get(Onboarding, member_id)
        if row is None:
            return
        if row.expires_at <= ctx.now():  # expired: end quietly, the member may have moved on
            await ctx.session.delete(row)
            return
        ctx.consumed = True  # an answer to our question, not a message that needs a "type !help" hint
        answer = text.strip()
        word = short_answer(answer)  # "Skip." and "Stop!" too, as the value-story conversation reads them
        if word in STOP:
            await ctx.session.delete(row)
            await self._finish(ctx, member, member_id, "Stopped here, thanks!", "Here is what I saved")
            return
        question = QUESTIONS[row.step]
        lead = ""
        if word not in SKIP:
            try:
                value = question.parse(answer)
            except UsageError as error:
                hint = f"{error.message}. Try again, or answer skip."
                await ctx.send_direct(
                    member, question_content(row.step, member_id, ctx.adapter.capabilities, lead=hint)
                )
                return
            await self._store_field(ctx, member, member_id, question.field, value)
        row.step += 1
        if row.step >= len(QUESTIONS):
            await ctx.session.delete(row)
            await self._finish(ctx, member, member_id, "Thank you!", "Here is the profile I saved")
            return
        await ctx.send_direct(
            member, question_content(row.step, member_id, ctx.adapter.capabilities, lead=lead)
        )

    async def _finish(self, ctx: Context, member: Member, member_id: int, thanks: str, saved: str) -> None:
        profile = await queries.get_profile(ctx.session, member_id)
        if profile is None:  # stopped at once, or every question skipped: an empty card would say nothing
            again = f"{ctx.prefix}profile onboarding asks again, {ctx.prefix}profile set fills in one field"
            await ctx.send_direct(member, Content(f"{thanks} Nothing is saved yet: {again}."))
            return
        row = await queries.member_row(ctx.session, member_id)
        card = render_profile(member.display_name, profile, row.timezone if row else None)
        await ctx.send_direct(
            member, Content(f"{thanks} {saved} (change it any time with {ctx.prefix}profile set)", card=card)
        )

    async def _store_field(
        self, ctx: Context, member: Member, member_id: int, field: str, value: object
    ) -> None:
        if field in MEMBER_FIELDS:  # how copbot reaches and treats the member: kept on the member itself
            row = await ctx.session.get(MemberRow, member_id)
            assert row is not None
            setattr(row, field, bool(value) if field in CHOICES else str(value))
            ctx.member_changed(member)
            if field == "tracking":  # the person's: "none of your activity" on every account of theirs
                for other in (await store.person_accounts(ctx.session, member_id))[1:]:
                    other.tracking = bool(value)
                    ctx.member_changed(store.as_member(other))
            if field == "public" and not value:  # nor in what was kept for the web while it was on
                registry = self.services.registry
                # Turned off in the config too: what a plugin kept for the web stays in the database and
                # is shown again once it is back on (the holders export and forget reach, too).
                for plugin in registry.holders() if registry is not None else ():
                    await plugin.hide_names(ctx.session, [member_id])
            if field not in CHOICES:
                await queries.save_profile(ctx.session, member_id, ctx.now())
            return
        if isinstance(value, list):
            value = fields.join_tags(value)
        await queries.save_profile(ctx.session, member_id, ctx.now(), **{field: value})

    # --- profiles ---------------------------------------------------------------------------------------

    @command("profile", examples=("profile", "profile @ana"))
    async def show(self, ctx: Context, who: Member | None = None) -> None:
        """Show your profile, or another member's.

        Args:
            who: the member whose profile to show (default: you)
        """
        member = who or ctx.author
        assert member is not None
        member_row = await store.find_member(ctx.session, member)
        profile = (
            await queries.get_profile(ctx.session, member_row.id) if member_row and member_row.id else None
        )
        if profile is None:
            if who is None:
                raise NotFound(
                    f"You have no profile yet; start with {ctx.prefix}profile onboarding "
                    f"or {ctx.prefix}profile set"
                )
            raise NotFound(f"{member.display_name} has no profile yet.")
        name = member_row.display_name if member_row else member.display_name
        await ctx.reply(
            Content(
                "",
                card=render_profile(name, profile, member_row.timezone if member_row else None),
            )
        )

    @command("profile set", examples=tuple(EXAMPLES.values())[:3])
    async def set_field(self, ctx: Context, field: FieldName, value: Text) -> None:
        """Set one field of your profile.

        Your own choices, each on or off: public (your name on the community's web pages), prompts
        (being asked for value stories), tracking (copbot records your activity).

        Args:
            field: org, org-type, country, expertise, interests, timezone, intros, reminders, public…
            value: the new value
        """
        assert ctx.author is not None and ctx.author_id is not None
        parse = {
            "org": fields.organisation,
            "org-type": fields.org_type,
            "country": fields.country,
            "expertise": fields.tags,
            "interests": fields.tags,
            "timezone": fields.timezone,
            "intros": fields.switch,
            "reminders": fields.reminders,
            "public": fields.switch,
            "prompts": fields.switch,
            "tracking": fields.switch,
        }[field]
        try:
            parsed = parse(value)
        except UsageError as error:
            raise UsageError(error.message, example=ctx.prefix + EXAMPLES[field]) from None
        stored_field = {"org-type": "org_type"}.get(field, field)
        await self._store_field(ctx, ctx.author, ctx.author_id, stored_field, parsed)
        shown = fields.join_tags(parsed) if isinstance(parsed, list) else parsed
        if field == "timezone":
            shown = zone_label(str(parsed))
        elif field == "org-type":
            shown = fields.ORG_TYPES[str(parsed)]
        elif field == "country":
            shown = f"{fields.country_name(str(parsed))} ({parsed})"
        elif field == "intros":
            shown = "off"
            if parsed and self.config.intro_rounds:
                shown = "on — you will be paired in the next intro round"
            elif parsed:  # say so rather than promise rounds nobody has set up
                shown = (
                    "on — but no intro rounds are scheduled yet; you will be paired once a coordinator "
                    f"sets them up. Meanwhile {ctx.prefix}match suggests someone to meet"
                )
        elif field == "reminders":
            shown = "by direct message" if parsed == "dm" else "in the meeting's room, mentioning you"
        elif field in CHOICES:
            shown = choice_said(field, bool(parsed), ctx.prefix)
        await ctx.reply(f"Saved {field}: {shown}")

    # --- experts and introductions ----------------------------------------------------------------------

    @command("experts", examples=("experts leak detection", "experts membranes --all"))
    async def experts(self, ctx: Context, topic: Text, *, all: bool = False) -> None:
        """Members who know about a topic, best first: from their profiles, and from what they shared.

        Args:
            topic: words describing the topic
            all: look in the sister communities too
        """
        if not words(topic):  # "...", "?": nothing to look for, which is not "nobody knows about it"
            raise UsageError(f"'{shown(topic)}' has no word to look for; name the topic, like leak detection")
        communities = self._communities(ctx, include_sisters=all)
        hits = await search_profiles(ctx.session, topic, community_ids=communities)
        scores: dict[int, float] = {}
        reasons: dict[int, list[str]] = {}
        for index, hit in enumerate(hits):
            scores[hit.member_id] = 1.0 - 0.05 * index  # the profile search's own order
        registry = self.services.registry
        for plugin in registry.plugins.values() if registry is not None else ():
            for found in await plugin.expertise(ctx.session, topic, communities):
                scores[found.member_id] = scores.get(found.member_id, 0.0) + found.score
                reasons.setdefault(found.member_id, []).append(found.reason)
        from bot import privacy

        for member_id in await privacy.forgotten_among(ctx.session, scores):
            del scores[member_id]  # what a former member shared stays, but they are nobody to ask
        # nor is someone who left: their items stay, they are not here to answer
        for member_id in set(scores) - await queries.still_members(ctx.session, scores, communities):
            del scores[member_id]
        if not scores:
            await ctx.reply(
                f"Nobody's profile or shared items mention {topic} yet. "
                f"Add yours: {ctx.prefix}profile set expertise …"
            )
            return
        scores, reasons = await _per_person(ctx.session, scores, reasons, [hit.member_id for hit in hits])
        ranked = sorted(scores, key=lambda member_id: (-scores[member_id], member_id))[:10]
        knowing: list[str] = []
        interested: list[str] = []  # matched on interests alone: people to connect, not to ask
        matched = {hit.member_id for hit in hits}
        for member_id in ranked:
            row = await queries.member_row(ctx.session, member_id)
            if row is None:
                continue
            profile = await queries.get_profile(ctx.session, member_id)
            where = ""
            said: list[str] = []
            only_interested = False
            if profile is not None:
                where = ", ".join(
                    part
                    for part in (
                        fields.ORG_TYPES.get(profile.org_type or "", ""),
                        fields.country_name(profile.country),
                    )
                    if part
                )
                if member_id in matched:
                    matched_on = why(profile, topic)
                    said.append(matched_on.said)
                    only_interested = matched_on.interested_only
            said += reasons.get(member_id, [])
            line = self._name(ctx, row) + (f" ({where})" if where else "") + f" — {'; '.join(said)}"
            (interested if only_interested and not reasons.get(member_id) else knowing).append(line)
        if knowing:
            lines = [f"Members who know about {topic}:"]
        else:
            lines = [f"Nobody lists {topic} as expertise or has shared items about it yet; interested in it:"]
        lines += [f"{index}. {line}" for index, line in enumerate(knowing, start=1)]
        if knowing and interested:
            lines.append(f"Interested in {topic} too:")
        lines += [f"{index}. {line}" for index, line in enumerate(interested, start=len(knowing) + 1)]
        await ctx.reply("\n".join(lines))

    def _communities(self, ctx: Context, *, include_sisters: bool) -> list[int]:
        found = [ctx.require_community()]
        registry = self.services.registry
        if include_sisters and registry is not None and ctx.community is not None:
            found += [registry.community_ids[s] for s in ctx.community.sisters if s in registry.community_ids]
        return found

    @command("match", examples=("match",), reads_activity=True)
    async def match(self, ctx: Context) -> None:
        """Suggest one member you should meet, and why."""
        assert ctx.author_id is not None
        community_id = ctx.require_community()
        mine = await queries.get_profile(ctx.session, ctx.author_id)
        name = ctx.author.display_name if ctx.author is not None else ""
        me = queries.person_of(ctx.author_id, name, mine) if mine is not None else None
        if me is None or not me.topics:
            raise NotFound(
                f"Tell me your interests first, e.g. {ctx.prefix}profile set interests leak detection, "
                "smart metering"
            )
        since = queries.since(ctx.now(), self.config.active_days)
        others = await queries.people_to_meet(ctx.session, community_id, since)
        introduced = await queries.introduced_to(ctx.session, ctx.author_id)
        found = suggest(me, others, introduced=introduced)
        if found is None:
            await ctx.reply(
                "I have nobody new to suggest right now: add more interests, "
                "or try again as the community grows."
            )
            return
        row = await queries.member_row(ctx.session, found.person.member_id)
        assert row is not None  # one of the community's members, read in this unit of work
        await queries.record_introduction(
            ctx.session, community_id, ctx.author_id, found.person.member_id, "match", ctx.now()
        )
        await ctx.reply(f"Meet {self._name(ctx, row)}: {found.reason}")

    @schedule("intro_round")
    async def intro_round(self, ctx: JobContext) -> None:
        """Pair the members who opted in, in every community, and introduce each pair by direct message."""
        registry = self.services.registry
        assert registry is not None
        for slug, community_id in registry.served.items():
            everyone = {
                person.member_id: (person, row, profile)
                for person, row, profile in await queries.people(ctx.session, community_id)
            }
            opted = sorted(member_id for member_id, (_, _, profile) in everyone.items() if profile.intros)
            number, previous = await queries.last_round(ctx.session, community_id)
            groups = pair_round(opted, previous)
            if not groups:
                continue
            for group in groups:
                for index, a in enumerate(group):
                    for b in group[index + 1 :]:
                        await queries.record_introduction(
                            ctx.session, community_id, a, b, "round", ctx.now(), number + 1
                        )
                for member_id in group:
                    await self._introduce(ctx, everyone, member_id, [m for m in group if m != member_id])
            await self._announce(ctx, slug, len(groups), number + 1)

    async def _introduce(
        self,
        ctx: JobContext,
        everyone: dict[int, tuple[Person, MemberRow, Profile]],
        member_id: int,
        others: list[int],
    ) -> None:
        _, row, _ = everyone[member_id]
        adapter = self.services.adapters.get(row.platform)
        if adapter is None:
            return
        lines = ["This round's introduction — you two (or three) should talk:"]
        for other in others:
            person, other_row, profile = everyone[other]
            who = other_row.display_name
            if other_row.platform == row.platform:
                who = adapter.mention(store.as_member(other_row))
            details = ", ".join(p for p in (profile.org, fields.country_name(profile.country)) if p)
            topics = ", ".join(sorted(person.topics)[:5])
            lines.append(
                f"• {who}" + (f" ({details})" if details else "") + (f" — into {topics}" if topics else "")
            )
        try:
            await adapter.send_direct(store.as_member(row), Content("\n".join(lines)))
        except Exception:
            self.log.exception("could not send an intro-round message to member %s", member_id)

    async def _announce(self, ctx: JobContext, slug: str, pairs: int, number: int) -> None:
        for platform, room_id in self.config.intro_rooms.get(slug, {}).items():
            if platform in self.services.adapters:
                await ctx.send(
                    Room(platform, room_id, community_id=slug),
                    f"Intro round {number}: {pairs} introductions sent by direct message. "
                    f"Join the next one with {self.services.settings.prefix}profile set intros on.",
                )

    # --- the digest -------------------------------------------------------------------------------------

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """New members of the period, with their organisation type and country (names, never pings)."""
        count = await queries.count_joined_between(session, community_id, start, end)
        if not count:
            return ()
        joined = await queries.joined_between(session, community_id, start, end, limit=15)
        lines: list[str] = []
        web_lines: list[str] = []
        entries: list[DigestEntry] = []
        for row, profile in joined:
            where = ""
            if profile is not None:
                where = ", ".join(
                    part
                    for part in (
                        fields.ORG_TYPES.get(profile.org_type or "", ""),
                        fields.country_name(profile.country),
                    )
                    if part
                )
            lines.append(row.display_name + (f" ({where})" if where else ""))
            if row.public:  # named on the web: where, for forget and public off
                entries.append(DigestEntry(len(web_lines), member_id=row.id, name=row.display_name))
            web_lines.append((row.display_name if row.public else UNNAMED) + (f" ({where})" if where else ""))
        if count > len(joined):
            lines.append(f"… and {count - len(joined)} more")
            web_lines.append(lines[-1])
        return (DigestSection(f"New members ({count})", tuple(lines), 10, tuple(web_lines), tuple(entries)),)

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.profiles import privacy as personal  # only when a member's data is exported or forgotten

        return await personal.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.profiles import privacy as personal  # only when a member's data is exported or forgotten

        return await personal.forget(session, member_ids)

    def _name(self, ctx: Context, row: MemberRow) -> str:
        """A mention on the caller's platform (without pinging: no `mentions`), a plain name elsewhere."""
        return ctx.mention(store.as_member(row)) if row.platform == ctx.room.platform else row.display_name


async def _per_person(
    session: AsyncSession, scores: dict[int, float], reasons: dict[int, list[str]], profiled: list[int]
) -> tuple[dict[int, float], dict[int, list[str]]]:
    """The experts' scores and reasons, one entry per person (linked accounts are one member: what each
    account knows and shared adds up), under the account whose profile matched best, else their first."""
    person = await queries.persons_of(session, scores)
    order = {member_id: index for index, member_id in enumerate(profiled)}
    shown: dict[int, int] = {}
    for member_id in sorted(scores, key=lambda member_id: (order.get(member_id, len(order)), member_id)):
        shown.setdefault(person.get(member_id, member_id), member_id)
    merged: dict[int, float] = {}
    said: dict[int, list[str]] = {}
    for member_id, score in scores.items():
        as_shown = shown[person.get(member_id, member_id)]
        merged[as_shown] = merged.get(as_shown, 0.0) + score
        if member_id in reasons:
            said.setdefault(as_shown, []).extend(reasons[member_id])
    return merged, said


def choice_said(field: str, on: bool, prefix: str) -> str:
    """What turning one of the member's own choices on or off changes, in words."""
    if field == "public":
        if on:
            return "on — your name appears on the community's web pages (the dashboard, the value page)"
        return "off — the community's web pages never show your name; you appear there as 'a member'"
    if field == "prompts":
        if on:
            return "on — now and then I may ask you by direct message what the community is worth to you"
        return (
            "off — I will not ask you for value stories any more; "
            f"you can still tell one whenever you like with {prefix}value story …"
        )
    if on:
        return "on — copbot records your activity again, and your participation level follows the rules"
    return (
        "off — from now on copbot records none of your activity (messages, reactions, commands, votes); "
        "what you share, vote and plan still works. Your participation level then changes only by a "
        "moderator"
    )


def _told_something(profile: Profile) -> bool:
    return bool(profile.org or profile.org_type or profile.country or profile.expertise or profile.interests)


def render_profile(name: str, profile: Profile | None, timezone: str | None) -> Card:
    if profile is None:  # everything skipped: show the empty form, so the member sees what they can add
        return Card(title=f"Profile of {name}", fields=(("Time zone", zone_label(timezone or "—")),))
    org = profile.org or "—"
    if profile.org_type:
        org += f" ({fields.ORG_TYPES.get(profile.org_type, profile.org_type)})"
    return Card(
        title=f"Profile of {name}",
        fields=(
            ("Organisation", org),
            ("Country", fields.country_name(profile.country) or "—"),
            ("Expertise", profile.expertise or "—"),
            ("Interests", profile.interests or "—"),
            ("Time zone", zone_label(timezone or "—")),
            ("Introductions", "on" if profile.intros else "off"),
        ),
    )
