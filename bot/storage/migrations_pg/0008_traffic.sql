-- The traffic state that every process of a deployment shares (bot/traffic/shared.py): one Discord budget per bot
-- token, one provider pace per API key. `scope` names the budget without holding the secret (a hash of it).
-- Times are epoch seconds from the database's clock (clock_timestamp()), so processes on different machines
-- agree. The tables are UNLOGGED: the rows live seconds, and after a database crash an empty state is right.

-- One row per request counted in a rate window: pending (sent_at NULL) from its turn until it leaves, then sent.
-- A pending row that is neither sent nor cancelled (its process died) stops counting at `expires_at`.
CREATE UNLOGGED TABLE traffic_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    per DOUBLE PRECISION NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX traffic_requests_sent ON traffic_requests (scope, key, sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX traffic_requests_pending ON traffic_requests (scope, key, owner, taken_at) WHERE sent_at IS NULL;
CREATE INDEX traffic_requests_expires ON traffic_requests (expires_at);

-- A server said to wait: nothing is taken under `key` until `until`.
CREATE UNLOGGED TABLE traffic_holds (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, key)
);

-- What a Discord route's answers taught: its bucket, limit and period.
CREATE UNLOGGED TABLE traffic_routes (
    scope TEXT NOT NULL,
    route TEXT NOT NULL,
    bucket TEXT NOT NULL,
    "limit" INTEGER NOT NULL,
    per DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, route)
);

-- Small shared values (the provider pace), as JSON, changed under a row lock.
CREATE UNLOGGED TABLE traffic_values (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (scope, name)
);

-- A turn in every window at once, or how long to wait and for which key: one call, one round trip. Each key is
-- locked for the rest of the transaction (advisory locks, in key order so two calls never wait in a cycle), so
-- the count and the insert of two processes never interleave. Returns the database's time too, and how many
-- processes have requests in the first window (what each may use alone if the database becomes unreachable).
CREATE FUNCTION traffic_take(
    p_scope TEXT, p_keys TEXT[], p_limits INTEGER[], p_pers DOUBLE PRECISION[], p_owner TEXT, p_lapse DOUBLE PRECISION,
    OUT wait DOUBLE PRECISION, OUT blocker TEXT, OUT peers INTEGER
) LANGUAGE plpgsql AS $$
DECLARE
    t DOUBLE PRECISION;
    i INTEGER;
    k TEXT;
    until DOUBLE PRECISION;
    held DOUBLE PRECISION;
    n_sent INTEGER;
    n_pending INTEGER;
    frees DOUBLE PRECISION;
BEGIN
    PERFORM pg_advisory_xact_lock(1380057092, hashtext(p_scope || ' ' || x))
        FROM (SELECT DISTINCT unnest(p_keys) AS x ORDER BY 1) AS sorted;
    t := extract(epoch FROM clock_timestamp());
    wait := 0;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        k := p_keys[i];
        until := t;
        SELECT h.until INTO held FROM traffic_holds h WHERE h.scope = p_scope AND h.key = k;
        IF held > t THEN
            until := held;
        END IF;
        SELECT count(*) INTO n_sent FROM traffic_requests r
            WHERE r.scope = p_scope AND r.key = k AND r.sent_at > t - p_pers[i];
        SELECT count(*) INTO n_pending FROM traffic_requests r
            WHERE r.scope = p_scope AND r.key = k AND r.sent_at IS NULL AND r.expires_at > t;
        IF n_sent + n_pending >= p_limits[i] THEN
            -- The request `limit` places back has to leave the window first; if it is still pending, its time in
            -- the window has not even started, and a whole window from now is the honest guess.
            IF n_sent + n_pending - p_limits[i] < n_sent THEN
                SELECT r.sent_at + p_pers[i] INTO frees FROM traffic_requests r
                    WHERE r.scope = p_scope AND r.key = k AND r.sent_at > t - p_pers[i]
                    ORDER BY r.sent_at OFFSET n_sent + n_pending - p_limits[i] LIMIT 1;
            ELSE
                frees := t + p_pers[i];
            END IF;
            until := greatest(until, frees);
        END IF;
        IF until - t > wait THEN
            wait := until - t;
            blocker := k;
        END IF;
    END LOOP;
    IF blocker IS NULL THEN
        INSERT INTO traffic_requests (scope, key, owner, per, taken_at, expires_at)
            SELECT p_scope, p_keys[j], p_owner, p_pers[j], t, t + p_lapse
            FROM generate_subscripts(p_keys, 1) AS j;
    END IF;
    IF array_length(p_keys, 1) > 0 THEN
        SELECT count(DISTINCT r.owner) INTO peers FROM traffic_requests r
            WHERE r.scope = p_scope AND r.key = p_keys[1] AND coalesce(r.sent_at, r.taken_at) > t - p_pers[1];
    END IF;
END;
$$;

-- One pending request of `p_owner` under each key left just now (the oldest, if several), counted in its window
-- from now; a request whose pending place already lapsed, or that never had one, is counted all the same.
CREATE FUNCTION traffic_sent(p_scope TEXT, p_keys TEXT[], p_owner TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    t DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
    k TEXT;
    found_id BIGINT;
BEGIN
    FOREACH k IN ARRAY p_keys LOOP
        SELECT r.id INTO found_id FROM traffic_requests r
            WHERE r.scope = p_scope AND r.key = k AND r.owner = p_owner AND r.sent_at IS NULL
            ORDER BY r.taken_at LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF found_id IS NOT NULL THEN
            UPDATE traffic_requests SET sent_at = t, expires_at = t + per WHERE id = found_id;
        ELSE
            INSERT INTO traffic_requests (scope, key, owner, per, taken_at, sent_at, expires_at)
                SELECT p_scope, k, p_owner, p, t, t, t + p
                FROM (SELECT coalesce(max(r.per), 60) AS p FROM traffic_requests r
                      WHERE r.scope = p_scope AND r.key = k) AS longest;
        END IF;
    END LOOP;
END;
$$;

-- One pending request of `p_owner` under each key will not be sent after all.
CREATE FUNCTION traffic_cancel(p_scope TEXT, p_keys TEXT[], p_owner TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    k TEXT;
BEGIN
    FOREACH k IN ARRAY p_keys LOOP
        DELETE FROM traffic_requests WHERE id = (
            SELECT r.id FROM traffic_requests r
            WHERE r.scope = p_scope AND r.key = k AND r.owner = p_owner AND r.sent_at IS NULL
            ORDER BY r.taken_at LIMIT 1 FOR UPDATE SKIP LOCKED
        );
    END LOOP;
END;
$$;
