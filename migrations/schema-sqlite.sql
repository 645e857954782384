-- copbot's schema at the newest migration, for a new SQLite database (bot/schema_snapshot.py).
-- Written by `copbot db snapshot`; tests/core/test_schema_snapshot.py checks it. Do not edit.
-- revision: 0023
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE apscheduler_jobs (
	id VARCHAR(191) NOT NULL, 
	next_run_time FLOAT, 
	job_state BLOB NOT NULL, owner VARCHAR(64) DEFAULT '' NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_apscheduler_jobs_next_run_time ON apscheduler_jobs (next_run_time);
CREATE TABLE communities (
	id INTEGER NOT NULL, 
	slug VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	domain VARCHAR(500) NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (slug)
);
CREATE TABLE handled_events (
	platform VARCHAR(32) NOT NULL, 
	event_id VARCHAR(255) NOT NULL, 
	handled_at DATETIME NOT NULL, 
	PRIMARY KEY (platform, event_id)
);
CREATE INDEX ix_handled_events_handled_at ON handled_events (handled_at);
CREATE TABLE state (
	scope VARCHAR(64) NOT NULL, 
	"key" VARCHAR(128) NOT NULL, 
	value TEXT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (scope, "key")
);
CREATE TABLE activity_events (
	id INTEGER NOT NULL, 
	community_id INTEGER, 
	member_id INTEGER NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	platform VARCHAR(32) NOT NULL, 
	room_id VARCHAR(255) NOT NULL, 
	detail VARCHAR(255) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE rooms (
	id INTEGER NOT NULL, 
	platform VARCHAR(32) NOT NULL, 
	room_id VARCHAR(255) NOT NULL, 
	community_id INTEGER NOT NULL, 
	added_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	CONSTRAINT uq_rooms_platform_room UNIQUE (platform, room_id)
);
CREATE INDEX ix_rooms_community_id ON rooms (community_id);
CREATE TABLE welcome_templates (
	community_id INTEGER NOT NULL, 
	template TEXT NOT NULL, 
	updated_by INTEGER, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (community_id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(updated_by) REFERENCES members (id)
);
CREATE TABLE profiles (
	member_id INTEGER NOT NULL, 
	org VARCHAR(200) NOT NULL, 
	org_type VARCHAR(32), 
	country VARCHAR(2), 
	expertise TEXT DEFAULT '' NOT NULL, 
	interests TEXT DEFAULT '' NOT NULL, 
	intros BOOLEAN NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (member_id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE profiles_onboarding (
	member_id INTEGER NOT NULL, 
	community_id INTEGER, 
	step INTEGER NOT NULL, 
	started_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (member_id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE profiles_introductions (
	id INTEGER NOT NULL, 
	community_id INTEGER, 
	member_a INTEGER NOT NULL, 
	member_b INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	round INTEGER, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_a) REFERENCES members (id), 
	FOREIGN KEY(member_b) REFERENCES members (id)
);
CREATE INDEX ix_profiles_introductions_pair ON profiles_introductions (member_a, member_b);
CREATE VIRTUAL TABLE profiles_fts USING fts5(member_id UNINDEXED, expertise, interests, org, tokenize = 'porter unicode61');
CREATE TABLE polls (
	id INTEGER NOT NULL, 
	community_id INTEGER, 
	platform VARCHAR(32) NOT NULL, 
	room_id VARCHAR(255) NOT NULL, 
	message_id VARCHAR(255) NOT NULL, 
	question VARCHAR(300) NOT NULL, 
	options TEXT NOT NULL, 
	multi BOOLEAN NOT NULL, 
	anonymous BOOLEAN NOT NULL, 
	creator_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	closes_at DATETIME, 
	closed_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(creator_id) REFERENCES members (id)
);
CREATE INDEX ix_polls_community_id ON polls (community_id);
CREATE INDEX ix_polls_message ON polls (platform, message_id);
CREATE TABLE polls_votes (
	poll_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	choices VARCHAR(100) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (poll_id, member_id), 
	FOREIGN KEY(member_id) REFERENCES members (id), 
	FOREIGN KEY(poll_id) REFERENCES polls (id)
);
CREATE TABLE polls_voters (
	poll_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	PRIMARY KEY (poll_id, member_id), 
	FOREIGN KEY(member_id) REFERENCES members (id), 
	FOREIGN KEY(poll_id) REFERENCES polls (id)
);
CREATE TABLE polls_counts (
	poll_id INTEGER NOT NULL, 
	option INTEGER NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY (poll_id, option), 
	FOREIGN KEY(poll_id) REFERENCES polls (id)
);
CREATE TABLE outbox (
	id INTEGER NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	platform VARCHAR(32) NOT NULL, 
	target TEXT NOT NULL, 
	content TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	message_id VARCHAR(255) DEFAULT '' NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	last_error VARCHAR(500) DEFAULT '' NOT NULL, owner VARCHAR(64) DEFAULT '' NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_outbox_key UNIQUE ("key")
);
CREATE INDEX ix_outbox_sent_at ON outbox (sent_at);
CREATE TABLE meetings (
	id INTEGER NOT NULL, 
	community_id INTEGER, 
	platform VARCHAR(32) NOT NULL, 
	room_id VARCHAR(255) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	place VARCHAR(500) NOT NULL, 
	tz VARCHAR(64) NOT NULL, 
	starts_at DATETIME NOT NULL, 
	duration_minutes INTEGER NOT NULL, 
	rule VARCHAR(500), 
	until_at DATETIME, 
	count INTEGER, 
	cap INTEGER, 
	creator_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	sequence INTEGER NOT NULL, 
	cancelled_at DATETIME, 
	announcement_id VARCHAR(255) NOT NULL, 
	platform_event_id VARCHAR(255) NOT NULL, 
	platform_event_for VARCHAR(32) NOT NULL, 
	reminded_through DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(creator_id) REFERENCES members (id)
);
CREATE INDEX ix_meetings_community_id ON meetings (community_id);
CREATE INDEX ix_meetings_announcement ON meetings (platform, announcement_id);
CREATE TABLE meetings_changes (
	meeting_id INTEGER NOT NULL, 
	occurrence VARCHAR(32) NOT NULL, 
	cancelled BOOLEAN NOT NULL, 
	moved_to DATETIME, 
	PRIMARY KEY (meeting_id, occurrence), 
	FOREIGN KEY(meeting_id) REFERENCES meetings (id)
);
CREATE TABLE meetings_rsvps (
	meeting_id INTEGER NOT NULL, 
	occurrence VARCHAR(32) NOT NULL, 
	member_id INTEGER NOT NULL, 
	answer VARCHAR(8) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (meeting_id, occurrence, member_id), 
	FOREIGN KEY(meeting_id) REFERENCES meetings (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE meetings_attendance (
	meeting_id INTEGER NOT NULL, 
	occurrence VARCHAR(32) NOT NULL, 
	member_id INTEGER NOT NULL, 
	confirmed_by INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (meeting_id, occurrence, member_id), 
	FOREIGN KEY(confirmed_by) REFERENCES members (id), 
	FOREIGN KEY(meeting_id) REFERENCES meetings (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE meetings_notes (
	id INTEGER NOT NULL, 
	meeting_id INTEGER NOT NULL, 
	occurrence VARCHAR(32) NOT NULL, 
	author_id INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(author_id) REFERENCES members (id), 
	FOREIGN KEY(meeting_id) REFERENCES meetings (id)
);
CREATE INDEX ix_meetings_notes_meeting_id ON meetings_notes (meeting_id);
CREATE TABLE repertoire_items (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	body TEXT DEFAULT '' NOT NULL, 
	url VARCHAR(1000) DEFAULT '' NOT NULL, 
	tags VARCHAR(500) DEFAULT '' NOT NULL, 
	author_id INTEGER NOT NULL, 
	added_by_id INTEGER NOT NULL, 
	origin_platform VARCHAR(32), 
	origin_room VARCHAR(255), 
	origin_message_id VARCHAR(255), 
	source_link VARCHAR(1000) DEFAULT '' NOT NULL, 
	meeting_id INTEGER, 
	copied_from_id INTEGER, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	removed_at DATETIME, 
	removed_by_id INTEGER, thanks_message_id VARCHAR(255), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_repertoire_origin UNIQUE (community_id, origin_platform, origin_message_id), 
	FOREIGN KEY(added_by_id) REFERENCES members (id), 
	FOREIGN KEY(author_id) REFERENCES members (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id)
);
CREATE INDEX ix_repertoire_items_author_id ON repertoire_items (author_id);
CREATE INDEX ix_repertoire_community_kind ON repertoire_items (community_id, kind);
CREATE TABLE repertoire_upvotes (
	item_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (item_id, member_id), 
	FOREIGN KEY(item_id) REFERENCES repertoire_items (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE VIRTUAL TABLE repertoire_fts USING fts5(item_id UNINDEXED, title, tags, body, tokenize = 'porter unicode61');
CREATE TABLE "memberships" (
	community_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	joined_at DATETIME NOT NULL, 
	left_at DATETIME, 
	level VARCHAR(16) DEFAULT 'peripheral' NOT NULL, 
	level_since DATETIME, 
	locked BOOLEAN DEFAULT 0 NOT NULL, 
	below_since DATETIME, last_seen DATETIME, 
	PRIMARY KEY (community_id, member_id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE roles_history (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	old_level VARCHAR(16) NOT NULL, 
	new_level VARCHAR(16) NOT NULL, 
	actor_id INTEGER, 
	rule VARCHAR(300) DEFAULT '' NOT NULL, 
	reason TEXT DEFAULT '' NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(actor_id) REFERENCES members (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE INDEX ix_roles_history_member ON roles_history (community_id, member_id, at);
CREATE TABLE roles_link_codes (
	code VARCHAR(16) NOT NULL, 
	member_id INTEGER NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (code), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE TABLE digest_posts (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	period_start DATETIME NOT NULL, 
	period_end DATETIME NOT NULL, 
	posted_at DATETIME NOT NULL, 
	title VARCHAR(300) NOT NULL, 
	text TEXT NOT NULL, 
	html TEXT NOT NULL, 
	quiet BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_digest_period UNIQUE (community_id, period_end), 
	FOREIGN KEY(community_id) REFERENCES communities (id)
);
CREATE TABLE "members" (
	id INTEGER NOT NULL, 
	platform VARCHAR(32) NOT NULL, 
	platform_id VARCHAR(255) NOT NULL, 
	display_name VARCHAR(255) NOT NULL, 
	is_bot BOOLEAN NOT NULL, 
	timezone VARCHAR(64), 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	reminders VARCHAR(8) DEFAULT 'room' NOT NULL, 
	person_id INTEGER, 
	public BOOLEAN DEFAULT 0 NOT NULL, 
	prompts BOOLEAN DEFAULT 1 NOT NULL, 
	tracking BOOLEAN DEFAULT 1 NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_members_platform_id UNIQUE (platform, platform_id)
);
CREATE INDEX ix_members_person_id ON members (person_id);
CREATE TABLE value_stories (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	author_id INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	cycle VARCHAR(16), 
	public BOOLEAN NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(author_id) REFERENCES members (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id)
);
CREATE INDEX ix_value_stories_community_at ON value_stories (community_id, created_at);
CREATE INDEX ix_value_stories_author_id ON value_stories (author_id);
CREATE TABLE value_prompts (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	story_id INTEGER, 
	step INTEGER NOT NULL, 
	asked_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	outcome VARCHAR(16) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(community_id) REFERENCES communities (id), 
	FOREIGN KEY(member_id) REFERENCES members (id), 
	FOREIGN KEY(story_id) REFERENCES value_stories (id)
);
CREATE INDEX ix_value_prompts_member_open ON value_prompts (member_id, ended_at);
CREATE INDEX ix_value_prompts_community_asked ON value_prompts (community_id, asked_at);
CREATE TABLE value_rounds (
	id INTEGER NOT NULL, 
	community_id INTEGER NOT NULL, 
	period_start DATETIME NOT NULL, 
	period_end DATETIME NOT NULL, 
	ran_at DATETIME NOT NULL, 
	asked INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_value_round UNIQUE (community_id, period_end), 
	FOREIGN KEY(community_id) REFERENCES communities (id)
);
CREATE INDEX ix_activity_community_window ON activity_events (community_id, at, kind, member_id);
CREATE INDEX ix_repertoire_upvotes_at ON repertoire_upvotes (at, item_id);
CREATE INDEX ix_activity_member_window ON activity_events (member_id, community_id, at, kind);
CREATE INDEX ix_apscheduler_jobs_owner ON apscheduler_jobs (owner, next_run_time);
CREATE INDEX ix_repertoire_titles ON repertoire_items (community_id, removed_at, id, title, kind);
CREATE VIRTUAL TABLE repertoire_recent USING fts5(item_id UNINDEXED, title, tags, body, tokenize = 'porter unicode61');
CREATE INDEX ix_repertoire_ranked ON repertoire_items (id, community_id, removed_at, kind, created_at, author_id, tags);
CREATE TABLE polls_forgotten_voters (
	poll_id INTEGER NOT NULL, 
	marker VARCHAR(64) NOT NULL, 
	PRIMARY KEY (poll_id, marker), 
	FOREIGN KEY(poll_id) REFERENCES polls (id)
);
CREATE TABLE digest_entries (
	id INTEGER NOT NULL, 
	post_id INTEGER NOT NULL, 
	"row" INTEGER NOT NULL, 
	item INTEGER NOT NULL, 
	line TEXT NOT NULL, 
	member_id INTEGER, 
	name TEXT DEFAULT '' NOT NULL, 
	at INTEGER NOT NULL, 
	item_by INTEGER, item_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(post_id) REFERENCES digest_posts (id)
);
CREATE INDEX ix_digest_entries_post_id ON digest_entries (post_id);
CREATE INDEX ix_digest_entries_member ON digest_entries (member_id);
CREATE INDEX ix_digest_entries_item_by ON digest_entries (item_by);
CREATE TABLE "repertoire_uses" (
	item_id INTEGER NOT NULL, 
	member_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	withdrawn BOOLEAN DEFAULT 0 NOT NULL, 
	PRIMARY KEY (item_id, member_id), 
	FOREIGN KEY(item_id) REFERENCES repertoire_items (id), 
	FOREIGN KEY(member_id) REFERENCES members (id)
);
CREATE INDEX ix_digest_entries_item_id ON digest_entries (item_id);
INSERT INTO "alembic_version" VALUES('0023');
