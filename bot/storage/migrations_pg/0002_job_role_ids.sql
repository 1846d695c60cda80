-- The requester's role ids at the time of the request (JSON array), so later card updates and Retry/Remix can
-- show and apply the member's role-based limit without asking Discord again.
ALTER TABLE jobs ADD COLUMN role_ids TEXT NOT NULL DEFAULT '[]';
