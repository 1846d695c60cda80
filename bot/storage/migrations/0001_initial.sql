-- Reelbot schema, version 1: jobs, the job state machine, the quota ledger, quota settings, guild settings.
-- Forward-only: never edit this file once released; add 0002_*.sql instead.
-- All times are Unix epoch seconds (UTC) as REAL.

-- The allowed status changes, mirroring bot.domain.jobs.TRANSITIONS (a test keeps the two equal).
-- The trigger below refuses any other change, so even raw SQL cannot move a job illegally.
CREATE TABLE job_transitions (
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    PRIMARY KEY (old, new)
) WITHOUT ROWID;

INSERT INTO job_transitions (old, new) VALUES
    ('queued', 'submitting'), ('queued', 'cancelled'), ('queued', 'expired'), ('queued', 'failed'),
    ('submitting', 'generating'), ('submitting', 'queued'), ('submitting', 'failed'), ('submitting', 'expired'),
    ('generating', 'downloading'), ('generating', 'failed'), ('generating', 'expired'), ('generating', 'cancelled'),
    ('downloading', 'delivering'), ('downloading', 'failed'), ('downloading', 'expired'),
    ('delivering', 'delivered'), ('delivering', 'failed');

CREATE TABLE jobs (
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
        'queued', 'submitting', 'generating', 'downloading', 'delivering',
        'delivered', 'failed', 'cancelled', 'expired')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivery_nonce TEXT NOT NULL UNIQUE CHECK (length(delivery_nonce) BETWEEN 1 AND 25),
    thread_id INTEGER,
    status_message_id INTEGER,
    generation_id TEXT,
    failure_kind TEXT CHECK (failure_kind IS NULL OR failure_kind IN (
        'rejected_input', 'rejected_content', 'out_of_credits', 'provider_unavailable', 'timeout',
        'download_failed', 'delivery_failed', 'submit_uncertain', 'internal', 'cancelled')),
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
    free INTEGER NOT NULL DEFAULT 0 CHECK (free IN (0, 1))  -- a free Retry: recorded, never charged
);

-- Every job starts its life queued.
CREATE TRIGGER jobs_insert_queued BEFORE INSERT ON jobs
WHEN NEW.status <> 'queued'
BEGIN
    SELECT RAISE(ABORT, 'a new job must start queued');
END;

CREATE TRIGGER jobs_status_transition BEFORE UPDATE OF status ON jobs
WHEN NEW.status <> OLD.status
 AND NOT EXISTS (SELECT 1 FROM job_transitions WHERE old = OLD.status AND new = NEW.status)
BEGIN
    SELECT RAISE(ABORT, 'invalid job transition');
END;

-- The poller's query: due(), next_due_at(). Partial, so finished jobs cost nothing.
CREATE INDEX jobs_due ON jobs (next_poll_at, id)
    WHERE status IN ('queued', 'submitting', 'generating', 'downloading', 'delivering');
CREATE INDEX jobs_member ON jobs (guild_id, user_id, id);
CREATE INDEX jobs_recent_durations ON jobs (model, duration, provider_finished_at)
    WHERE provider_finished_at IS NOT NULL;
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
CREATE INDEX jobs_guild_finished ON jobs (guild_id, finished_at);

-- Every change to anyone's quota or to a guild's settings: who, what, why, when. Append-only.
CREATE TABLE quota_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- also the order of events: a reset counts against later ids only
    guild_id INTEGER NOT NULL,
    user_id INTEGER,
    role_id INTEGER,
    kind TEXT NOT NULL CHECK (kind IN (
        'reserve', 'free', 'refund', 'grant', 'reset', 'block', 'unblock',
        'member_limit', 'role_limit', 'guild_default', 'guild_setting', 'channel_allow', 'channel_disallow')),
    amount INTEGER,  -- units: 1 for reserve/refund, N for grant, the new limit (NULL = cleared) for *_limit
    job_id INTEGER REFERENCES jobs (id),
    actor_id INTEGER,  -- the moderator; NULL when the bot acted on its own (reserve, automatic refund)
    reason TEXT,
    detail TEXT,  -- JSON for settings changes
    at REAL NOT NULL
);

-- The last line of defence against a double refund or a double charge of one job.
CREATE UNIQUE INDEX quota_ledger_one_refund ON quota_ledger (job_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX quota_ledger_one_reserve ON quota_ledger (job_id) WHERE kind IN ('reserve', 'free');
CREATE INDEX quota_ledger_member ON quota_ledger (guild_id, user_id, kind, at);
CREATE INDEX quota_ledger_guild_at ON quota_ledger (guild_id, at);

-- The ledger is an audit trail: rows are never changed or removed.
CREATE TRIGGER quota_ledger_no_update BEFORE UPDATE ON quota_ledger
BEGIN
    SELECT RAISE(ABORT, 'the quota ledger is append-only');
END;
CREATE TRIGGER quota_ledger_no_delete BEFORE DELETE ON quota_ledger
BEGIN
    SELECT RAISE(ABORT, 'the quota ledger is append-only');
END;

-- Current per-member settings (the ledger holds their history).
CREATE TABLE member_quota (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    limit_override INTEGER CHECK (limit_override IS NULL OR limit_override >= 0),
    blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    block_reason TEXT,
    last_reset_id INTEGER NOT NULL DEFAULT 0,  -- ledger id of the last reset; only later uses count
    updated_at REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

CREATE TABLE role_quota (
    guild_id INTEGER NOT NULL,
    role_id INTEGER NOT NULL,
    videos INTEGER NOT NULL CHECK (videos >= 0),
    updated_at REAL NOT NULL,
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

CREATE TABLE guild_settings (
    guild_id INTEGER PRIMARY KEY,
    default_limit INTEGER CHECK (default_limit IS NULL OR default_limit >= 0),
    paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    mod_log_channel_id INTEGER,
    moderator_role_id INTEGER,
    price_per_second REAL CHECK (price_per_second IS NULL OR price_per_second >= 0),
    updated_at REAL NOT NULL
);

-- Channels where /video is allowed; none for a guild means everywhere.
CREATE TABLE guild_channels (
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
