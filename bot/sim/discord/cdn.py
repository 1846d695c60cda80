"""Attachment CDN: signed, expiring URLs (`ex`/`is`/`hm` like Discord's) and the download route.

URLs live at the server root (`/attachments/{channel_id}/{attachment_id}/{filename}`), outside `/api/v10`,
because discord.py downloads `attachment.url` as an absolute URL without authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from .http_util import json_response, read_body, sim_of
from .state import ApiError, SimAttachment

if TYPE_CHECKING:
    from .core import SimCore

__all__ = ["Cdn", "get_attachment", "refresh_urls"]


class Cdn:
    """Signs attachment URLs and checks signatures and expiry against the simulator's clock."""

    def __init__(self, sim: SimCore, url_lifetime: float = 86400.0) -> None:
        self._sim = sim
        self._secret = secrets.token_bytes(32)
        self.url_lifetime = url_lifetime

    @staticmethod
    def path_for(att: SimAttachment) -> str:
        """The URL path of an attachment."""
        return f"/attachments/{att.channel_id}/{att.id}/{quote(att.filename)}"

    def _mac(self, path: str, expires: int, issued: int) -> str:
        msg = f"{path}|{expires:x}|{issued:x}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, att: SimAttachment) -> str:
        """A fresh signed URL valid for `url_lifetime` seconds of simulator time."""
        now = self._sim.now()
        issued = int(now)
        expires = int(now + self.url_lifetime)
        path = self.path_for(att)
        return f"{self._sim.base_url}{path}?ex={expires:x}&is={issued:x}&hm={self._mac(path, expires, issued)}&"

    def verify(self, path: str, query: dict[str, str]) -> bool:
        """Whether the query carries a valid, unexpired signature for this path."""
        try:
            expires = int(query["ex"], 16)
            issued = int(query["is"], 16)
            mac = query["hm"]
        except (KeyError, ValueError):
            return False
        if not hmac.compare_digest(mac, self._mac(path, expires, issued)):
            return False
        return self._sim.now() <= expires

    def attachment_for_url(self, url: str) -> SimAttachment | None:
        """The stored attachment a (possibly expired) CDN URL points at."""
        parts = urlsplit(url).path.split("/")
        # ['', 'attachments', channel_id, attachment_id, filename]
        if len(parts) != 5 or parts[1] != "attachments":
            return None
        try:
            att_id = int(parts[3])
        except ValueError:
            return None
        return self._sim.attachments.get(att_id)


async def get_attachment(request: web.Request) -> web.StreamResponse:
    """GET /attachments/{channel_id}/{attachment_id}/{filename} → raw bytes (404 when unsigned or expired)."""
    sim = sim_of(request)
    try:
        att_id = int(request.match_info["attachment_id"])
    except ValueError:
        att_id = -1
    att = sim.attachments.get(att_id)
    query = {k: v for k, v in request.query.items()}
    if att is None or request.match_info["channel_id"] != str(att.channel_id):
        return web.Response(status=404, text="Not Found")
    if not sim.cdn.verify(Cdn.path_for(att), query):
        return web.Response(status=404, text="This content is no longer available.")
    ctype = att.content_type or "application/octet-stream"
    if isinstance(att.content, Path):
        # Streamed from disk: a large file is never loaded into memory to be served.
        return web.FileResponse(att.content, headers={"Content-Type": ctype})
    return web.Response(body=att.content, content_type=ctype)


async def refresh_urls(request: web.Request) -> web.StreamResponse:
    """POST /attachments/refresh-urls: re-sign attachment URLs (unknown ones are returned unchanged)."""
    sim = sim_of(request)
    body = (await read_body(request)).obj
    urls = body.get("attachment_urls")
    if not isinstance(urls, list) or not urls or len(urls) > 50:
        raise ApiError(400, 50035, "Invalid Form Body", {"attachment_urls": {"_errors": []}})
    out: list[dict[str, Any]] = []
    for url in urls:
        att = sim.cdn.attachment_for_url(str(url))
        out.append({"original": url, "refreshed": sim.cdn.sign(att) if att else url})
    return json_response({"refreshed_urls": out})
