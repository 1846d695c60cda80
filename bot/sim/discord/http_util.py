"""HTTP helpers shared by the REST handlers: exact JSON responses and streaming request-body parsing.

discord.py only parses a body as JSON when `Content-Type` is *exactly* `application/json` (no charset), so
every JSON answer goes through `json_response`. Multipart uploads are streamed part by part into spool files
(the simulator's `spool_dir`), and a file over the size limit is drained and discarded instead of being kept,
so a 100 MiB upload never sits in memory.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import BodyPartReader, web

from .state import ApiError

if TYPE_CHECKING:
    from .server import DiscordSimulator

__all__ = [
    "BODY_KEY",
    "SIM_KEY",
    "ParsedBody",
    "Upload",
    "empty_response",
    "error_response",
    "json_response",
    "read_body",
    "sim_of",
]

SIM_KEY: web.AppKey[Any] = web.AppKey("reelbot.discord_sim")
# What the request log keeps of a body (JSON, or a multipart summary). RequestKey exists from aiohttp 3.14 on.
BODY_KEY: Any = web.RequestKey("reelbot.sim_body") if hasattr(web, "RequestKey") else "reelbot.sim_body"
_CHUNK = 256 * 1024
_FILE_FIELD = re.compile(r"^(?:files\[(\d+)\]|file(\d*))$")


def sim_of(request: web.Request) -> DiscordSimulator:
    """The simulator serving this request."""
    return cast("DiscordSimulator", request.app[SIM_KEY])


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with exactly `Content-Type: application/json`."""
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def empty_response() -> web.Response:
    """204 No Content."""
    return web.Response(status=204)


def error_response(err: ApiError) -> web.Response:
    """Discord's error body for an ApiError."""
    return json_response(err.body(), status=err.status)


@dataclass
class Upload:
    """One uploaded file part (`files[n]`), spooled to `path`."""

    index: int
    field_name: str
    filename: str
    content_type: str | None
    path: Path
    size: int


@dataclass
class ParsedBody:
    """A request body: the JSON payload (or `payload_json`) plus uploaded files."""

    json: Any = None
    uploads: list[Upload] = field(default_factory=list)

    @property
    def obj(self) -> dict[str, Any]:
        """The JSON payload as an object (400 if it is something else)."""
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise ApiError(400, 50109, "The request body contains invalid JSON.")
        return self.json

    def summary(self) -> dict[str, Any]:
        """What the request log keeps of a multipart body (never the file bytes)."""
        return {
            "payload_json": self.json,
            "files": [{"field": u.field_name, "filename": u.filename, "size": u.size} for u in self.uploads],
        }


def guess_content_type(filename: str) -> str | None:
    """Discord infers the type from the filename: discord.py sends every file as application/octet-stream."""
    guessed, _ = mimetypes.guess_type(filename)
    return guessed


async def read_body(request: web.Request, size_limit: int | None = None) -> ParsedBody:
    """Parse a JSON or multipart body. Raises ApiError 413/40005 if a file exceeds `size_limit`."""
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        parsed = await _read_multipart(request, size_limit, sim_of(request).spool_dir)
        request[BODY_KEY] = parsed.summary()
        return parsed
    raw = await request.read()
    if not raw:
        return ParsedBody()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
    request[BODY_KEY] = data
    return ParsedBody(json=data)


async def _read_multipart(request: web.Request, size_limit: int | None, spool_dir: Path) -> ParsedBody:
    reader = await request.multipart()
    parsed = ParsedBody()
    too_large = False
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue  # nested multipart: Discord does not use it
            name = part.name or ""
            if name == "payload_json":
                try:
                    parsed.json = json.loads(await part.text())
                except ValueError as exc:
                    raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
                continue
            match = _FILE_FIELD.match(name)
            if match is None:
                await part.release()
                continue
            index = int(match.group(1) or match.group(2) or 0)
            filename = part.filename or f"file{index}"
            path = spool_dir / uuid.uuid4().hex
            size = 0
            with path.open("wb") as out:
                while chunk := await part.read_chunk(_CHUNK):
                    size += len(chunk)
                    if size_limit is not None and size > size_limit:
                        too_large = True  # keep draining so the client receives our 413, not a reset
                    else:
                        out.write(chunk)
            if size_limit is not None and size > size_limit:
                path.unlink(missing_ok=True)
                continue
            parsed.uploads.append(Upload(index, name, filename, guess_content_type(filename), path, size))
        if too_large:
            raise ApiError(413, 40005, "Request entity too large")
    except BaseException:
        for upload in parsed.uploads:
            upload.path.unlink(missing_ok=True)
        raise
    return parsed
