-- Characters, styles and channel defaults; and the characters and style of each job.

-- A saved character. Its id is the id of its character sheet, the message the bot posted holding its images:
-- only ids are kept here, the images stay on Discord.
CREATE TABLE characters (
    id BIGINT PRIMARY KEY,
    guild_id BIGINT NOT NULL,
    owner_id BIGINT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    name_key TEXT NOT NULL,  -- the name casefolded: names are unique regardless of case
    shared INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),
    channel_id BIGINT NOT NULL,
    attachment_ids TEXT NOT NULL,  -- JSON list: the front view's attachment id, then the other angles'
    created_at DOUBLE PRECISION NOT NULL
);

-- A member's names are unique among their own characters; shared names are unique among shared ones.
CREATE UNIQUE INDEX characters_personal_name ON characters (guild_id, owner_id, name_key) WHERE shared = 0;
CREATE UNIQUE INDEX characters_shared_name ON characters (guild_id, name_key) WHERE shared = 1;
CREATE INDEX characters_owner ON characters (guild_id, owner_id);

-- A server's named styles: text added to the prompt of every video that picks the style.
CREATE TABLE styles (
    guild_id BIGINT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    text TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
    updated_by BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, name_key)
);

-- What /video uses in a channel when the member does not choose. Removing a style clears it here too.
CREATE TABLE channel_defaults (
    guild_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    style_key TEXT,
    duration INTEGER CHECK (duration IS NULL OR duration IN (5, 10)),
    aspect_ratio TEXT CHECK (aspect_ratio IS NULL OR aspect_ratio IN ('16:9', '9:16', '1:1')),
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

-- A job's characters (JSON list: name, sheet ids, the URLs read just before it was accepted) and its style,
-- kept apart from the member's prompt.
ALTER TABLE jobs ADD COLUMN characters TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN style_name TEXT;
ALTER TABLE jobs ADD COLUMN style_text TEXT;
