-- Starting a job's thread is a step of the job's pipeline, done by the poller (the command only records the
-- status card). While `thread_id` and `thread_refused` are both empty, the thread is still to be started; delivery
-- waits for it. `thread_refused` holds why Discord refused the thread for good (in words for the member): the
-- video then goes to the channel, and its message says why.
ALTER TABLE jobs ADD COLUMN thread_refused TEXT;

-- The poller's query for threads still to start. Partial, so jobs with a thread cost nothing.
CREATE INDEX jobs_thread_pending ON jobs (id)
    WHERE thread_id IS NULL AND thread_refused IS NULL AND status_message_id IS NOT NULL;
