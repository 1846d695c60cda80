"""Logging set-up: plain text or one JSON object per line, job ids attached, secrets scrubbed.

Secrets are scrubbed at the handler, not at each call site, so a secret that slips into an exception message
or a third-party library's log line (discord.py and aiohttp log URLs and headers at DEBUG) is still hidden. No
logging library does that part, so it is ours (`SecretFilter`); the JSON lines are python-json-logger's.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = ["SecretFilter", "configure_logging", "job_extra", "json_formatter"]

REDACTED = "[redacted]"


def job_extra(job_id: int | None, **fields: Any) -> dict[str, Any]:
    """`extra=` for a log call about one job, so every line of a job can be found by its id."""
    return {"job_id": job_id, **fields}


class SecretFilter(logging.Filter):
    """Replaces every known secret in the fully formatted message (arguments and tracebacks included)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Very short values would redact ordinary words; real tokens and keys are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, scrub it, and keep only the text so formatters cannot re-render it.
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


class TextFormatter(logging.Formatter):
    """`2026-11-24T10:00:00Z INFO bot.poller [job 12] message`: readable in a terminal and in `docker logs`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        job = getattr(record, "job_id", None)
        prefix = f"{stamp} {record.levelname} {record.name}" + (f" [job {job}]" if job is not None else "")
        text = f"{prefix} {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def json_formatter() -> logging.Formatter:
    """One JSON object per line (`LOG_FORMAT=json`): `time` (UTC, ISO 8601), `level`, `logger`, `message`, the
    `extra=` fields (such as `job_id`) at the top level, and `exception` with the traceback when there is one."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        timestamp="time",
        json_ensure_ascii=False,
    )


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Route all logging (ours, discord.py's, aiohttp's) to stderr in the chosen format, secrets scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py's gateway chatter at INFO is useful; its DEBUG is a firehose of payloads.
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
