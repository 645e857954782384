"""The repertoire: the community's shared stories, tools, experiences and practices — kept, found, credited.

Members add to it with ``share``, or by reacting 📌 to any message: the message is saved with its author
credited (not whoever reacted) and a link back to it, once; deleted on its platform, it leaves the
repertoire too, and copbot takes back its thanks for saving it (where the platform lets it delete its own
messages). An item that leaves (removed, or deleted with its message) leaves the digests' web copies with it
(``Plugin.items_removed``). ``repertoire search`` ranks by full text (title, then tags, then text; stems
match), with a snippet around the match; ``--all`` searches the sister communities too. Upvotes and "I
applied this" mark what proved useful; authors rank in ``experts``; an item can be passed to a sister
community with its origin credited; the whole repertoire exports as Markdown or JSON. Sharing, being saved
and being upvoted count as contributions to participation. On the web, ``/c/<slug>/repertoire`` browses and
searches it (ranked as in chat), behind the dashboard's link: that page and the export are in publishing.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import store
from bot.adapters.base import DeleteAdapter, MessageSource
from bot.commands import Id, Text, Title, command_body
from bot.context import Context
from bot.errors import NotFound, Refused, UsageError
from bot.model import Capability, Card, Content, Member, MessageDeleted, NotesTaken, ReactionAdded, Room
from bot.plugin import (
    UNNAMED,
    DigestEntry,
    DigestSection,
    Expertise,
    Plugin,
    PluginConfig,
    command,
    listen,
    suggests,
)
from bot.suggest import Suggestion
from bot.tables import table_of
from bot.timeparse import shown
from plugins.repertoire import queries
from plugins.repertoire.models import Item, Upvote, Use
from plugins.repertoire.publishing import Publishing
from plugins.repertoire.rules import (
    MAX_BODY,
    MAX_TITLE,
    contents,
    day_in,
    draft,
    first_url,
    hashtags,
    join_tags,
    split_tags,
    split_trailing_tags,
    tag_of,
    tags_in_message,
    tags_of,
    title_from_message,
)
from plugins.repertoire.search import (
    AuthorMatch,
    Hit,
    authors_for,
    closest_tags,
    index_item,
    search_items,
    words,
)

Kind = Literal["story", "tool", "experience", "practice", "resource"]


class RepertoireConfig(PluginConfig):
    save_emoji: str = Field(default="📌", min_length=1, max_length=16)
    saved_kind: Kind = "experience"
    notes_kind: Kind = "experience"
    index_meeting_notes: bool = True


class Repertoire(Publishing):
    name = "repertoire"
    activity_kinds = frozenset(
        {"repertoire_item", "message_saved", "repertoire_save", "upvote_received", "repertoire_used"}
    )
    description = "the shared repertoire: share, 📌 to save, search, credit"
    Config = RepertoireConfig
    config: RepertoireConfig

    # --- adding -----------------------------------------------------------------------------------------

    @command(
        "share",
        examples=(
            'share tool "Leak map of Delft" https://example.org/leakmap #gis #leakage',
            'share story "How we cut night flow by 30%" We logged pressure at night… #leakage',
        ),
    )
    async def share(self, ctx: Context, kind: Kind, title: Title, text: Text) -> None:
        """Add a story, tool, experience, practice or resource to the repertoire.

        Args:
            kind: story, tool, experience, practice or resource
            title: a short title in quotes (at most 200 characters); without quotes, the text's first words
            text: what to share, a link, or both; #tags at the end
        """
        assert ctx.author_id is not None
        community_id = ctx.require_community()
        made = draft(title, text)
        item = Item(
            community_id=community_id,
            kind=kind,
            title=made.title,
            body=made.body,
            url=made.url,
            tags=join_tags(made.tags),
            author_id=ctx.author_id,
            added_by_id=ctx.author_id,
            created_at=ctx.now(),
            updated_at=ctx.now(),
        )
        ctx.session.add(item)
        await ctx.session.flush()
        await index_item(ctx.session, item)
        ctx.count_activity("repertoire_item", f"item {item.id}")
        tags = f" {hashtags(made.tags)}" if made.tags else ""
        await ctx.reply(
            f"Added to the repertoire as #{item.id} ({kind}): {made.title}{tags}. "
            f"Find it with {ctx.prefix}repertoire show {item.id} or {ctx.prefix}repertoire search."
        )

    @listen(ReactionAdded)
    async def on_reaction(self, ctx: Context, event: ReactionAdded) -> None:
        """📌 on any message saves it, crediting whoever wrote it, once."""
        if _plain_emoji(event.emoji) != _plain_emoji(self.config.save_emoji) or ctx.author_id is None:
            return
        if ctx.community_id is None or event.room.is_direct:
            return
        existing = await queries.saved_from(
            ctx.session, ctx.community_id, event.room.platform, event.message_id
        )
        if existing is not None:
            return  # saved before: once is enough
        adapter = ctx.adapter
        if not isinstance(adapter, MessageSource):
            return
        message = await adapter.fetch_message(event.room, event.message_id)
        if message is None or message.author.is_bot or not message.text.strip():
            return
        if command_body(message.text, ctx.prefix) is not None:
            return  # a command is no practice to keep (`profile link <code>` would publish the code)
        author = await store.ensure_member(ctx.session, message.author, ctx.now())
        assert author.id is not None
        body, tag_words = split_trailing_tags(message.text)
        # Two members pinning the same message at once (Discord handles members concurrently) both find it
        # unsaved: the second insert waits for the first to commit and then, on the origin's unique key,
        # inserts nothing — no error, and no second thanks.
        inserted = await ctx.session.scalar(
            store.insert_ignoring_conflicts(ctx.session, table_of(Item))
            .values(
                community_id=ctx.community_id,
                kind=self.config.saved_kind,
                title=title_from_message(body),
                body=body[:MAX_BODY],
                url=first_url(message.text),
                tags=join_tags(tags_in_message(tag_words)),
                author_id=author.id,
                added_by_id=ctx.author_id,
                origin_platform=event.room.platform,
                origin_room=event.room.id,
                origin_message_id=event.message_id,
                source_link=adapter.permalink(event.room, event.message_id),
                created_at=ctx.now(),
                updated_at=ctx.now(),
            )
            .returning(table_of(Item).c.id)
        )
        if inserted is None:
            return  # saved meanwhile by someone else
        item = await ctx.session.get(Item, inserted)
        assert item is not None
        await index_item(ctx.session, item)
        ctx.consumed = True
        ctx.count_activity("message_saved", f"item {item.id}", member_id=author.id)
        ctx.count_activity("repertoire_save", f"item {item.id}")
        thanked = _thanks(ctx, item, message.author, event.member)
        saved_id = inserted
        ctx.after_commit.append(
            lambda: _quietly(self, self._thank(ctx, event.room, event.message_id, saved_id, thanked), "thank")
        )

    async def _thank(self, ctx: Context, room: Room, original: str, item_id: int, thanks: Content) -> None:
        """Thank for a saved message, below it, and keep the thanks' id with the item, to take it back if
        the original is deleted. Deleted already (while the thanks was on its way), it goes at once."""
        thanks_id = await ctx.adapter.send(room, thanks, reply_to=original)
        async with ctx.services.db.session() as session:
            kept = await session.execute(
                update(Item).where(col(Item.id) == item_id).values(thanks_message_id=thanks_id)
            )
        if getattr(kept, "rowcount", 1) == 0:
            await _take_back(ctx, room, [thanks_id])

    @listen(MessageDeleted)
    async def on_message_deleted(self, ctx: Context, event: MessageDeleted) -> None:
        """A saved message deleted on its platform (by its author, or a moderator) takes copbot's copy with
        it: the item, its copies in sister communities, their upvotes and marks — for good, as what its
        author took back must not stay searchable, nor be restorable. The activity it counted stays."""
        if ctx.community_id is None or event.room.is_direct:
            return  # nothing is saved from a direct chat
        saved = await queries.saved_copies(
            ctx.session, ctx.community_id, event.room.platform, event.room.id, event.message_id
        )
        if saved:
            thanks = [
                thanks_id
                for thanks_id in (
                    await ctx.session.scalars(
                        select(col(Item.thanks_message_id)).where(
                            col(Item.id).in_(saved), col(Item.thanks_message_id).is_not(None)
                        )
                    )
                ).all()
                if thanks_id
            ]
            await queries.delete_items(ctx.session, saved)
            await self._gone(ctx, saved)
            if thanks:  # copbot's "📌 Saved … as #N" below it points at nothing now: it goes too
                ctx.after_commit.append(
                    lambda: _quietly(self, _take_back(ctx, event.room, thanks), "take back")
                )
            self.log.info(
                "message %s deleted on %s: its repertoire item(s) %s deleted with it",
                event.message_id,
                event.room.platform,
                ", ".join(f"#{item_id}" for item_id in saved),
            )

    @listen(NotesTaken)
    async def on_notes(self, ctx: Context, event: NotesTaken) -> None:
        """A meeting's minutes join the repertoire, credited to who wrote them and linked to the meeting."""
        if not self.config.index_meeting_notes or ctx.community_id is None or ctx.author_id is None:
            return
        zone = ctx.community.timezone if ctx.community is not None else "UTC"
        title = _notes_title(event.title, day_in(event.occurred_at, zone))
        if event.replaces:  # the notes replaced leave the repertoire too (removed: a moderator can restore)
            # notes written before their titles took the community's day bear the UTC day
            titles = {title, _notes_title(event.title, day_in(event.occurred_at, "UTC"))}
            await ctx.session.execute(
                update(Item)
                .where(
                    col(Item.community_id) == ctx.community_id,  # a sister community's copy stays theirs
                    col(Item.meeting_id) == event.meeting_id,
                    col(Item.title).in_(titles),
                    col(Item.removed_at).is_(None),
                )
                .values(removed_at=ctx.now(), removed_by_id=ctx.author_id)
            )
        item = Item(
            community_id=ctx.community_id,
            kind=self.config.notes_kind,
            title=title,
            body=event.text[:MAX_BODY],
            author_id=ctx.author_id,
            added_by_id=ctx.author_id,
            meeting_id=event.meeting_id,
            created_at=ctx.now(),
            updated_at=ctx.now(),
        )
        ctx.session.add(item)
        await ctx.session.flush()
        await index_item(ctx.session, item)

    # --- finding ----------------------------------------------------------------------------------------

    @command(
        "repertoire search",
        examples=("repertoire search leak detection", "repertoire search metering --kind tool --all"),
    )
    async def search(
        self,
        ctx: Context,
        query: Text,
        *,
        kind: Kind | None = None,
        tag: str | None = None,
        all: bool = False,
    ) -> None:
        """Find items by words in their title, tags and text, best first.

        Args:
            query: the words to look for
            kind: only this kind of item
            tag: only items with this tag
            all: search the sister communities too
        """
        community_id = ctx.require_community()
        communities = self._searchable(ctx, community_id) if all else [community_id]
        if not words(query):  # "the", "what is", "don't": no word a search can look for
            raise UsageError(
                f"'{shown(query)}' has only words too common to search for; say what the item is about"
            )
        if tag is not None and "," in tag and len(several := tags_of([tag])) > 1:  # stored split at commas
            raise UsageError(f"'{shown(tag)}' is several tags; --tag takes one, like --tag {several[0]}")
        wanted_tag = tag_of(tag) if tag else None  # as share reads it: `#GIS.` is the tag gis
        hits = await search_items(ctx.session, query, community_ids=communities, kind=kind, tag=wanted_tag)
        if not hits:
            # with a tag, the tag may be what found nothing: tags are suggested for it, not for the words
            near = await closest_tags(ctx.session, wanted_tag or query, community_ids=communities)
            hint = (
                f" Tags close to {'that tag' if wanted_tag else 'it'}: {hashtags(tuple(near))}."
                if near
                else ""
            )
            filters = [f"--kind {kind}"] if kind else []
            filters += [f"--tag #{wanted_tag}"] if wanted_tag else []
            narrowed = f" with {' and '.join(filters)}" if filters else ""
            await ctx.reply(
                f"Nothing in the repertoire matches '{shown(query)}'{narrowed}.{hint} "
                f"Add what you know with {ctx.prefix}share, "
                f"or react {self.config.save_emoji} to a useful message."
            )
            return
        items = await queries.by_ids(ctx.session, [hit.item_id for hit in hits])
        entries = {entry.item.id: entry for entry in await queries.shown(ctx.session, list(items.values()))}
        slugs = self._slugs()
        lines = [f"Repertoire results for '{shown(query)}':"]  # quoted as typed: cut short, one line
        for hit in once_per_family(hits, items, community_id):
            entry = entries.get(hit.item_id)
            if entry is None:
                continue
            item = entry.item
            where = f" ({slugs.get(item.community_id, '?')})" if item.community_id != community_id else ""
            votes = f" · {entry.upvotes}▲" if entry.upvotes else ""
            lines.append(f"#{item.id} [{item.kind}] {item.title} — {entry.author}{where}{votes}")
            if hit.snippet:
                lines.append(f"   {hit.snippet}")
        await ctx.reply("\n".join(lines))

    @command("repertoire show", examples=("repertoire show 12",))
    async def show(self, ctx: Context, item_id: Id) -> None:
        """One item in full, with who shared it, where it came from, and how useful it proved.

        Args:
            item_id: the item's number
        """
        item = await self._item(ctx, item_id, removed_ok=ctx.is_moderator, sisters=True)
        entry = (await queries.shown(ctx.session, [item]))[0]
        registry = self.services.registry
        assert registry is not None
        fields: list[tuple[str, str]] = []
        if item.community_id != ctx.community_id:  # found with search --all: read here, not changed here
            name = registry.communities[item.community_id].name
            fields.append(("Community", f"{name} (a sister community: read only here)"))
        fields += [
            ("Kind", item.kind),
            ("Shared by", entry.author),
            ("Date", day_in(item.created_at, ctx.timezone)),
        ]
        if item.tags:
            fields.append(("Tags", hashtags(split_tags(item.tags))))
        if item.url:
            fields.append(("Link", item.url))
        if item.source_link:
            fields.append(("Original", item.source_link))
        if item.copied_from_id:
            original = await ctx.session.get(Item, item.copied_from_id)
            origin = registry.communities.get(original.community_id) if original is not None else None
            fields.append(
                (
                    "Shared from",
                    f"item #{item.copied_from_id} of {origin.name if origin else 'a sister community'}",
                )
            )
        fields.append(
            ("Useful", f"{entry.upvotes} upvote{'' if entry.upvotes == 1 else 's'} · applied by {entry.used}")
        )
        if item.removed_at is not None:
            fields.append(("Removed", f"{day_in(item.removed_at, ctx.timezone)} (moderators can restore it)"))
        card = Card(title=f"#{item.id} {item.title}", fields=tuple(fields), footer=item.body[:1500])
        await ctx.reply(Content("", card=card))

    @command("repertoire top", examples=("repertoire top", "repertoire top --kind practice"))
    async def top(self, ctx: Context, *, kind: Kind | None = None) -> None:
        """The most upvoted items.

        Args:
            kind: only this kind of item
        """
        ranked = await queries.top(ctx.session, ctx.require_community(), kind)
        if not ranked:
            await ctx.reply(
                f"The repertoire has no {kind + ' ' if kind else ''}items yet. "
                f"Add one with {ctx.prefix}share."
            )
            return
        names = await queries.names(ctx.session, [item.author_id for item, _ in ranked])
        lines = ["Most upvoted in the repertoire:"]
        lines += [
            f"{place}. #{item.id} [{item.kind}] {item.title} — "
            f"{names.get(item.author_id, 'a former member')} · {votes}▲"
            for place, (item, votes) in enumerate(ranked, start=1)
        ]
        await ctx.reply("\n".join(lines))

    @suggests("item_id")
    async def suggest_items(self, ctx: Context, typed: str) -> list[Suggestion]:
        """The community's items whose title holds what is typed, newest first, with their kind; for
        ``restore``, the removed ones instead; for what only an item's author (or a moderator) may do —
        edit, remove, pass on — the caller's own, as those commands would refuse the others."""
        if ctx.community_id is None:
            return []
        removed = ctx.command is not None and ctx.command.name == "repertoire restore"
        own = ctx.command is not None and ctx.command.owner_only and not ctx.is_moderator
        authors = (await _own_accounts(ctx) if ctx.author_id is not None else set()) if own else None
        return await queries.suggestions(
            ctx.session, ctx.community_id, typed, removed=removed, authors=authors
        )

    # --- curating ---------------------------------------------------------------------------------------

    @command("repertoire tag", examples=("repertoire tag 12 #leakage #gis",))
    async def tag(self, ctx: Context, item_id: Id, tags: Text) -> None:
        """Add tags to an item.

        Args:
            item_id: the item's number
            tags: one or more #tags
        """
        item = await self._item(ctx, item_id)
        typed = tags.split()
        if not all(word.startswith("#") for word in typed):
            raise UsageError("write tags with a #, like #leakage")
        item.tags = join_tags(tags_of(typed, split_tags(item.tags)))
        item.updated_at = ctx.now()
        await index_item(ctx.session, item)
        await ctx.reply(f"#{item.id} is tagged {hashtags(split_tags(item.tags))}.")

    @command("repertoire upvote", examples=("repertoire upvote 12",))
    async def upvote(self, ctx: Context, item_id: Id) -> None:
        """Say an item is useful (once per item; not your own).

        Args:
            item_id: the item's number
        """
        assert ctx.author_id is not None
        item = await self._item(ctx, item_id)
        mine = await _own_accounts(ctx)
        if item.author_id in mine:
            raise Refused("You cannot upvote what you shared yourself; nothing was changed.")
        if await _marked_by(ctx, Upvote, item, mine):
            raise Refused(f"You have already upvoted #{item.id}.")
        ctx.session.add(Upvote(item_id=item.id or 0, member_id=ctx.author_id, at=ctx.now()))
        ctx.count_activity("upvote_received", f"item {item.id}", member_id=item.author_id)
        await ctx.reply(Content(f"Upvoted #{item.id}: {item.title}.", ephemeral=True))

    @command("repertoire used", examples=("repertoire used 12",))
    async def used(self, ctx: Context, item_id: Id) -> None:
        """Say you applied an item in your own work — the value the repertoire creates.

        Args:
            item_id: the item's number
        """
        assert ctx.author_id is not None
        item = await self._item(ctx, item_id)
        if await _marked_by(ctx, Use, item, await _own_accounts(ctx)):
            raise Refused(f"You have already said you applied #{item.id}.")
        ctx.session.add(Use(item_id=item.id or 0, member_id=ctx.author_id, at=ctx.now()))
        ctx.count_activity("repertoire_used", f"item {item.id}")
        await ctx.reply(f"Noted: you applied #{item.id} ({item.title}). Thank you — that is what it is for.")

    @command(
        "repertoire edit",
        owner=True,
        examples=(
            "repertoire edit 12 Updated: the map now covers Rotterdam #gis",
            "repertoire edit 12 The map is offline now --no-link",
        ),
    )
    async def edit(self, ctx: Context, item_id: Id, text: Text, *, no_link: bool = False) -> None:
        """Replace an item's text (its author); #tags at the end replace its tags (alone, only them). A
        link in the new text replaces the item's; without one it keeps its link, unless --no-link.

        Args:
            item_id: the item's number
            text: the new text
            no_link: drop the item's link (a page that is gone)
        """
        item = await self._item(ctx, item_id)
        if item.author_id not in await _own_accounts(ctx):
            raise Refused(f"Only who shared #{item.id} can edit it; nothing was changed.")
        written, tag_words = split_trailing_tags(text)
        if tag_words and not written:  # only #tags: they replace the tags, and the text stays as it was
            if no_link and not item.body:
                raise UsageError(f"#{item.id} has no text: without its link it would be empty; add a text")
            item.tags = join_tags(tags_of(tag_words))
            item.url = "" if no_link else item.url
        else:
            body, url, tags = contents(text)
            if no_link and url:
                raise UsageError("the new text has a link and --no-link drops it; leave out one of them")
            item.body, item.url = body, "" if no_link else url or item.url
            if tags:
                item.tags = join_tags(tags)
        item.updated_at = ctx.now()
        await index_item(ctx.session, item)
        await ctx.reply(f"#{item.id} is updated.")

    @command("repertoire remove", owner=True, examples=("repertoire remove 12",))
    async def remove(self, ctx: Context, item_id: Id) -> None:
        """Take an item out of the repertoire (its author or a moderator; moderators can restore it).

        Args:
            item_id: the item's number
        """
        item = await self._item(ctx, item_id, removed_ok=ctx.is_moderator)
        if not ctx.is_moderator and item.author_id not in await _own_accounts(ctx):
            raise Refused(f"Only who shared #{item.id} or a moderator can remove it; nothing was changed.")
        if item.removed_at is not None:
            restore = f"{ctx.prefix}repertoire restore {item.id}"
            raise Refused(f"#{item.id} is removed already; {restore} brings it back.")
        # its copies in sister communities go with it: what was withdrawn here is not read next door
        copies = [copy for copy in await self._copies(ctx, item) if copy.removed_at is None]
        for withdrawn in (item, *copies):
            withdrawn.removed_at, withdrawn.removed_by_id = ctx.now(), ctx.author_id
        # what its author or a moderator withdrew is not read in the digests' web copies either
        await self._gone(ctx, [withdrawn.id for withdrawn in (item, *copies) if withdrawn.id is not None])
        await ctx.reply(f"#{item.id} is removed from the repertoire{self._with_copies(copies)}.")

    @command("repertoire restore", mod=True, examples=("repertoire restore 12",))
    async def restore(self, ctx: Context, item_id: Id) -> None:
        """Bring a removed item back.

        Args:
            item_id: the item's number
        """
        item = await self._item(ctx, item_id, removed_ok=True)
        if item.removed_at is None:
            raise Refused(f"#{item.id} is not removed.")
        # the copies removed with it (the same moment, by the same member) come back with it
        removed = (item.removed_at, item.removed_by_id)
        copies = [
            copy for copy in await self._copies(ctx, item) if (copy.removed_at, copy.removed_by_id) == removed
        ]
        for back in (item, *copies):
            back.removed_at, back.removed_by_id = None, None
        await ctx.reply(f"#{item.id} is back in the repertoire{self._with_copies(copies)}.")

    async def _gone(self, ctx: Context, item_ids: Sequence[int]) -> None:
        """Items left the repertoire: the plugins keeping texts that show them (the digest's web copies)
        take them out, in this unit of work."""
        registry = self.services.registry
        for plugin in registry.plugins.values() if registry is not None else ():
            await plugin.items_removed(ctx.session, item_ids)

    async def _copies(self, ctx: Context, item: Item) -> list[Item]:
        """The copies of ``item`` passed to sister communities, and the copies passed on from those."""
        return await queries.copies_of(ctx.session, [item.id])

    def _with_copies(self, copies: Sequence[Item]) -> str:
        """ ", with its copy in Wastewater CoP (#3)": the copies a removal or a restore took along."""
        if not copies:
            return ""
        registry = self.services.registry
        names = registry.communities if registry is not None else {}
        where = [
            f"{names[copy.community_id].name if copy.community_id in names else 'a sister community'} "
            f"(#{copy.id})"
            for copy in copies
        ]
        listed = where[0] if len(where) == 1 else ", ".join(where[:-1]) + " and " + where[-1]
        return f", with its cop{'y' if len(copies) == 1 else 'ies'} in {listed}"

    # --- passing on -------------------------------------------------------------------------------------

    @command("repertoire share", owner=True, examples=("repertoire share 12 wastewater",))
    async def share_with(self, ctx: Context, item_id: Id, community: str) -> None:
        """Pass an item to a sister community, its origin credited (its author or a moderator).

        Args:
            item_id: the item's number
            community: the sister community's short name (slug)
        """
        item = await self._item(ctx, item_id)
        if not ctx.is_moderator and item.author_id not in await _own_accounts(ctx):
            raise Refused(f"Only who shared #{item.id} or a moderator can pass it on; nothing was changed.")
        here = ctx.community
        assert here is not None
        registry = self.services.registry
        assert registry is not None
        target = community.strip().lower()
        if target not in here.sisters or target not in registry.community_ids:
            sisters = ", ".join(here.sisters) or "none configured"
            raise UsageError(
                f"'{shown(community)}' is not a sister community of {here.name} (sisters: {sisters})"
            )
        target_id = registry.community_ids[target]
        copied = await ctx.session.scalar(
            select(Item).where(col(Item.community_id) == target_id, col(Item.copied_from_id) == item.id)
        )
        if copied is not None:
            name = registry.communities[target_id].name
            raise Refused(f"#{item.id} was already shared with {name} (there it is #{copied.id}).")
        copy = Item(
            community_id=target_id,
            kind=item.kind,
            title=item.title,
            body=item.body,
            url=item.url,
            tags=item.tags,
            author_id=item.author_id,
            added_by_id=ctx.author_id or item.added_by_id,
            source_link=item.source_link,
            meeting_id=item.meeting_id,
            copied_from_id=item.id,
            created_at=ctx.now(),
            updated_at=ctx.now(),
        )
        ctx.session.add(copy)
        await ctx.session.flush()
        await index_item(ctx.session, copy)
        name = registry.communities[target_id].name
        await ctx.reply(
            f"#{item.id} is shared with {name} as #{copy.id}, credited to {here.name} and its author."
        )

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.repertoire import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.repertoire import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids, remove_items=remove_items)

    # --- the digest -------------------------------------------------------------------------------------

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """New items of the period (copies from sister communities marked) and the most upvoted."""
        added = await queries.count_added_between(session, community_id, start, end)
        sections: list[DigestSection] = []
        if added:
            new = await queries.added_between(session, community_id, start, end, limit=10)
            authors = [item.author_id for item in new]
            names = await queries.names(session, authors)
            shown = await queries.public_names(session, authors)
            lines: list[str] = []
            web_lines: list[str] = []
            entries: list[DigestEntry] = []
            for item in new:
                copied = " (from a sister community)" if item.copied_from_id else ""
                name = names.get(item.author_id, "a former member")
                lines.append(f"#{item.id} [{item.kind}] {item.title} — {name}{copied}")
                head = f"#{item.id} [{item.kind}] {item.title} — "
                # the item, and its author where the web names them: for forget and public off
                entries.append(DigestEntry(len(web_lines), item_by=item.author_id, item_id=item.id))
                if item.author_id in shown:
                    entries.append(
                        DigestEntry(
                            len(web_lines), member_id=item.author_id, name=shown[item.author_id], at=len(head)
                        )
                    )
                web_lines.append(f"{head}{shown.get(item.author_id, UNNAMED)}{copied}")
            if added > len(new):
                lines.append(f"… and {added - len(new)} more")
                web_lines.append(lines[-1])
            sections.append(
                DigestSection(
                    f"New in the repertoire ({added})", tuple(lines), 30, tuple(web_lines), tuple(entries)
                )
            )
        liked = await queries.upvoted_between(session, community_id, start, end, limit=3)
        if liked:
            sections.append(
                DigestSection(
                    "Most upvoted",
                    tuple(f"#{item.id} {item.title} · {votes}▲" for item, votes in liked),
                    35,
                    entries=tuple(
                        DigestEntry(index, item_by=item.author_id, item_id=item.id)
                        for index, (item, _) in enumerate(liked)
                    ),
                )
            )
        return sections

    # --- experts learn from it --------------------------------------------------------------------------

    async def expertise(
        self, session: AsyncSession, topic: str, community_ids: Sequence[int]
    ) -> Sequence[Expertise]:
        found = await authors_for(session, topic, community_ids=community_ids)
        return [
            Expertise(match.member_id, 0.5 + 0.25 * min(match.items, 4), _evidence(match, topic))
            for match in found
        ]

    # --- helpers ----------------------------------------------------------------------------------------

    async def _item(
        self, ctx: Context, item_id: int, *, removed_ok: bool = False, sisters: bool = False
    ) -> Item:
        """An item of this community (a removed one only if ``removed_ok``); with ``sisters``, also one
        ``search --all`` finds in a sister community, never a removed one there (not ours to restore)."""
        item = await ctx.session.get(Item, item_id)
        here = item is not None and item.community_id == ctx.community_id
        readable = (
            sisters
            and item is not None
            and ctx.community_id is not None
            and item.community_id in self._searchable(ctx, ctx.community_id)
        )
        if (
            item is None
            or not (here or readable)
            or (item.removed_at is not None and not (here and removed_ok))
        ):
            raise NotFound(f"There is no item #{item_id} here; {ctx.prefix}repertoire search finds items.")
        return item

    def _searchable(self, ctx: Context, community_id: int) -> list[int]:
        """This community and its sisters."""
        registry = self.services.registry
        assert registry is not None and ctx.community is not None
        ids = [community_id]
        ids += [
            registry.community_ids[slug] for slug in ctx.community.sisters if slug in registry.community_ids
        ]
        return ids

    def _slugs(self) -> dict[int, str]:
        registry = self.services.registry
        return (
            {}
            if registry is None
            else {community_id: slug for slug, community_id in registry.community_ids.items()}
        )


def _evidence(match: AuthorMatch, topic: str) -> str:
    """Why an author is listed for ``topic``, by what matched it: the tags that did, else a title that did,
    else the text ("shared 1 item tagged #gis" for "Leak map" read as if #gis were why)."""
    shared = f"shared {match.items} item{'s' if match.items != 1 else ''}"
    if match.tags:
        return f"{shared} tagged {hashtags(match.tags[:3])}"
    if match.titles:
        title = shown(match.titles[0], 60)
        return f'{shared} titled "{title}"' if match.items == 1 else f'{shared}, among them "{title}"'
    return f"{shared} mentioning {shown(topic, 60)}"


async def _own_accounts(ctx: Context) -> set[int]:
    """The caller's accounts. A person who linked a Discord and a Matrix account is one person: what they
    shared on one is theirs on the other, and they upvote or apply an item once, not once per account."""
    assert ctx.author_id is not None
    accounts = await store.person_accounts(ctx.session, ctx.author_id)
    return {row.id for row in accounts if row.id is not None} | {ctx.author_id}


async def _marked_by(ctx: Context, mark: type[Upvote] | type[Use], item: Item, accounts: set[int]) -> bool:
    """Whether one of these accounts has upvoted (or applied) the item already."""
    found = await ctx.session.scalar(
        select(col(mark.member_id))
        .where(col(mark.item_id) == item.id, col(mark.member_id).in_(accounts))
        .limit(1)
    )
    return found is not None


def once_per_family(hits: Sequence[Hit], items: Mapping[int, Item], here: int) -> list[Hit]:
    """An item and its copies in sister communities (``repertoire share``) are one result: the one in this
    community if it is among them, else the best ranked, in the place of the family's best."""
    families: dict[int, list[Hit]] = {}  # in the order of each family's best hit
    for hit in hits:
        item = items.get(hit.item_id)
        family = (item.copied_from_id or hit.item_id) if item is not None else hit.item_id
        families.setdefault(family, []).append(hit)

    def ours(hit: Hit) -> bool:
        item = items.get(hit.item_id)
        return item is not None and item.community_id == here

    return [next((hit for hit in members if ours(hit)), members[0]) for members in families.values()]


def _notes_title(meeting: str, day: str) -> str:
    """A meeting's notes as an item: ``Notes: Kick-off (2026-03-03)``, the day its meeting was held."""
    return f"Notes: {meeting} ({day})"[:MAX_TITLE]


def _plain_emoji(emoji: str) -> str:
    return emoji.replace("\ufe0f", "").strip()


def _thanks(ctx: Context, item: Item, author: Member, saver: Member) -> Content:
    prefix = ctx.prefix
    if author.key == saver.key:
        text = (
            f"📌 Saved to the repertoire as #{item.id} — thanks {ctx.mention(author)}. "
            f"See it with {prefix}repertoire show {item.id}."
        )
        return Content(text, mentions=(author,))
    text = (
        f"📌 Saved to the repertoire as #{item.id} — thanks {ctx.mention(author)} for sharing it and "
        f"{ctx.mention(saver)} for saving it. See it with {prefix}repertoire show {item.id}."
    )
    return Content(text, mentions=(author, saver))


async def _take_back(ctx: Context, room: Room, message_ids: Sequence[str]) -> None:
    """Delete (Matrix: redact) messages copbot sent, where the platform lets it; elsewhere they stay."""
    adapter = ctx.adapter
    if Capability.DELETES in adapter.capabilities and isinstance(adapter, DeleteAdapter):
        for message_id in message_ids:
            await adapter.delete(room, message_id)


async def _quietly(plugin: Plugin, work: Awaitable[object], what: str) -> None:
    try:
        await work
    except Exception:
        plugin.log.warning("could not %s for a saved message", what, exc_info=True)
