"""The steps of a job's pipeline, one module each; `bot.services.poller` runs them.

`submit` (queued → generating), `poll` (generating → downloading), `download` (→ delivering), `deliver`
(→ delivered), and `thread` (the job's thread, started beside the others; delivery waits for it). `context`
holds what they share; `recovery` settles what a stopped run left, at start-up.
"""
