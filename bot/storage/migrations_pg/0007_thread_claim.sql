-- Several processes may look for job threads still to be started; the one that starts a thread first claims the
-- step here (its name and the claim's end as epoch seconds), so a thread is asked for once, not once per process.
-- A claim that runs out (its holder died) can be taken by another process; recording the thread clears it.
ALTER TABLE jobs ADD COLUMN thread_owner TEXT;
ALTER TABLE jobs ADD COLUMN thread_until DOUBLE PRECISION;
