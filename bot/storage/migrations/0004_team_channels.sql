-- Team channels: channel budgets (pools), approvals, blocked words, takedowns, and what each video cost.
--
-- Two new job states: awaiting_approval (before queued, in channels where moderators approve videos) and removed
-- (a delivered video that was deleted). SQLite cannot change a CHECK constraint in place, so the jobs table is
-- rebuilt the way SQLite's documentation describes: a new table, every row copied with its id, the old table
-- dropped, the new one renamed, its indexes and triggers created again. The migration runner switches foreign
-- keys off around migrations (they cannot be switched inside a transaction) and checks them before committing.

-- A channel's shared budget. The row stays when the budget is removed (videos NULL): the jobs and ledger rows
-- charged to it keep pointing at it, and setting a budget there again continues the same one.
CREATE TABLE channel_pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    videos INTEGER CHECK (videos IS NULL OR videos >= 0),  -- per period; NULL: no budget any more
    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),  -- calendar periods in UTC
    updated_at REAL NOT NULL,
    UNIQUE (guild_id, channel_id)
);

-- Channels where a moderator approves each video before anything is submitted.
CREATE TABLE channel_approvals (
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) WITHOUT ROWID;

-- Words and phrases prompts may not contain, per guild.
CREATE TABLE blocked_words (
    guild_id INTEGER NOT NULL,
    phrase TEXT NOT NULL CHECK (length(phrase) > 0),  -- folded (bot.domain.words.phrase_key): what is compared
    text TEXT NOT NULL,  -- as the moderator typed it: what the list shows
    added_by INTEGER NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (guild_id, phrase)
) WITHOUT ROWID;

-- A draw from a channel budget is a `reserve` row naming the pool, its refund a `refund` row naming it too; a
-- member's own quota counts only rows without a pool.
ALTER TABLE quota_ledger ADD COLUMN pool_id INTEGER REFERENCES channel_pools (id);
CREATE INDEX quota_ledger_pool ON quota_ledger (pool_id, kind, at) WHERE pool_id IS NOT NULL;

INSERT INTO job_transitions (old, new) VALUES
    ('awaiting_approval', 'queued'), ('awaiting_approval', 'cancelled'), ('awaiting_approval', 'expired'),
    ('awaiting_approval', 'failed'), ('delivered', 'removed');

CREATE TABLE jobs_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, buttons carry them for ever
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    duration INTEGER NOT NULL,
    aspect_ratio TEXT NOT NULL,
    model TEXT NOT NULL,
    "references" TEXT NOT NULL,  -- JSON list of reference images (url, filename, content_type, size, ...)
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN (
        'awaiting_approval', 'queued', 'submitting', 'generating', 'downloading', 'delivering',
        'delivered', 'failed', 'cancelled', 'expired', 'removed')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivery_nonce TEXT NOT NULL UNIQUE CHECK (length(delivery_nonce) BETWEEN 1 AND 25),
    thread_id INTEGER,
    status_message_id INTEGER,
    generation_id TEXT,
    failure_kind TEXT CHECK (failure_kind IS NULL OR failure_kind IN (
        'rejected_input', 'rejected_content', 'out_of_credits', 'provider_unavailable', 'timeout',
        'download_failed', 'delivery_failed', 'submit_uncertain', 'internal', 'cancelled', 'rejected')),
    last_error TEXT,
    submitted_at REAL,
    provider_finished_at REAL,
    finished_at REAL,
    next_poll_at REAL,
    submit_attempts INTEGER NOT NULL DEFAULT 0,
    poll_attempts INTEGER NOT NULL DEFAULT 0,
    poll_errors INTEGER NOT NULL DEFAULT 0,
    video_url TEXT,
    video_size INTEGER,
    delivered_message_id INTEGER,
    retry_of INTEGER REFERENCES jobs (id),
    free INTEGER NOT NULL DEFAULT 0 CHECK (free IN (0, 1)),  -- a free Retry: recorded, never charged
    role_ids TEXT NOT NULL DEFAULT '[]',
    lease_owner TEXT,
    lease_until REAL,
    pool_id INTEGER REFERENCES channel_pools (id),  -- the channel budget it was charged to (NULL: own quota, or free)
    needs_approval INTEGER NOT NULL DEFAULT 0 CHECK (needs_approval IN (0, 1)),
    reviewed_by INTEGER,  -- the moderator who approved or rejected it
    reviewed_at REAL,
    removed_by INTEGER,  -- who deleted the delivered video
    removed_at REAL,
    credits_used REAL  -- the provider's meta.usage.credits_used, when its answer carries it
);

INSERT INTO jobs_new (
    id, guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references", status, created_at,
    updated_at, delivery_nonce, thread_id, status_message_id, generation_id, failure_kind, last_error, submitted_at,
    provider_finished_at, finished_at, next_poll_at, submit_attempts, poll_attempts, poll_errors, video_url,
    video_size, delivered_message_id, retry_of, free, role_ids, lease_owner, lease_until)
SELECT
    id, guild_id, channel_id, user_id, prompt, duration, aspect_ratio, model, "references", status, created_at,
    updated_at, delivery_nonce, thread_id, status_message_id, generation_id, failure_kind, last_error, submitted_at,
    provider_finished_at, finished_at, next_poll_at, submit_attempts, poll_attempts, poll_errors, video_url,
    video_size, delivered_message_id, retry_of, free, role_ids, lease_owner, lease_until
FROM jobs ORDER BY id;

-- Ids are never reused: the new table continues the old one's sequence even past ids that no row holds now.
DELETE FROM sqlite_sequence WHERE name = 'jobs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_new', seq FROM sqlite_sequence WHERE name = 'jobs';

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

-- Every job starts its life queued, or waiting for a moderator's approval.
CREATE TRIGGER jobs_insert_queued BEFORE INSERT ON jobs
WHEN NEW.status NOT IN ('queued', 'awaiting_approval')
BEGIN
    SELECT RAISE(ABORT, 'a new job must start queued or awaiting approval');
END;

CREATE TRIGGER jobs_status_transition BEFORE UPDATE OF status ON jobs
WHEN NEW.status <> OLD.status
 AND NOT EXISTS (SELECT 1 FROM job_transitions WHERE old = OLD.status AND new = NEW.status)
BEGIN
    SELECT RAISE(ABORT, 'invalid job transition');
END;

-- The poller's query: due(), next_due_at(). Partial, so finished jobs cost nothing. A job waiting for approval is
-- due only at its deadline (next_poll_at), when it expires.
CREATE INDEX jobs_due ON jobs (next_poll_at, id)
    WHERE status IN ('awaiting_approval', 'delivering', 'downloading', 'generating', 'queued', 'submitting');
CREATE INDEX jobs_member ON jobs (guild_id, user_id, id);
CREATE INDEX jobs_recent_durations ON jobs (model, duration, provider_finished_at)
    WHERE provider_finished_at IS NOT NULL;
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
CREATE INDEX jobs_guild_finished ON jobs (guild_id, finished_at);
CREATE INDEX jobs_lease_until ON jobs (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_pool ON jobs (pool_id) WHERE pool_id IS NOT NULL;
