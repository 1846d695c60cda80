"""What an operator's log pipeline reads: one JSON object per line with the job id at the top level (or a
readable text line with `[job N]`), tracebacks included, and the secrets scrubbed either way."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import pytest

from bot.logs import configure_logging, job_extra

SECRET = "sk-live-0123456789abcdef"


def test_json_lines_carry_time_level_logger_message_job_and_traceback(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", secrets=(SECRET,))
    log = logging.getLogger("bot.services.poller")
    log.info("job delivered in %s s — ✅", 4.5, extra=job_extra(12, guild_id=7))
    try:
        raise RuntimeError(f"provider said {SECRET}")
    except RuntimeError:
        log.exception("poll failed", extra=job_extra(13))
    log.debug("not at INFO")

    lines = [json.loads(line) for line in logs.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "bot.services.poller",
        "job delivered in 4.5 s — ✅",
    )
    assert (first["job_id"], first["guild_id"]) == (12, 7)
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)  # ISO 8601, UTC
    assert "exception" not in first
    assert second["job_id"] == 13
    assert "RuntimeError: provider said [redacted]" in second["exception"]
    assert SECRET not in json.dumps(lines)


def test_text_lines_name_the_job(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text", secrets=(SECRET,))
    logging.getLogger("bot.chat").warning("card edit failed for %s", SECRET, extra=job_extra(5))
    [line] = logs.readouterr().err.splitlines()
    assert line.endswith("WARNING bot.chat [job 5] card edit failed for [redacted]")
