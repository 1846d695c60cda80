"""Attachment CDN: signed, expiring URLs (`ex`/`is`/`hm` like Discord's), the download route, and
`POST /attachments/refresh-urls`.

URLs live at the server root (`/attachments/{channel_id}/{attachment_id}/{filename}`), outside `/api/v10`,
because discord.py downloads `attachment.url` as an absolute URL without authentication. A URL works while its
signature is valid, its `ex` time has not passed on the simulator's clock, it was not revoked by a test
(`revoke`, "a month later"), and the attachment still exists (deleting its message deletes it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from aiohttp import web

from .http_util import json_response, read_body, sim_of
from .state import ApiError, SimAttachment

if TYPE_CHECKING:
    from .core import SimCore

__all__ = ["Cdn", "get_attachment", "refresh_urls"]

MAX_REFRESH = 50
_SIGNATURE_KEYS = ("ex", "is", "hm")


class Cdn:
    """Signs attachment URLs and checks signatures and expiry against the simulator's clock."""

    def __init__(self, sim: SimCore, url_lifetime: float = 86400.0) -> None:
        self._sim = sim
        self._secret = secrets.token_bytes(32)
        self.url_lifetime = url_lifetime
        # Revocation without touching issued URLs: every signature covers the CDN-wide epoch and the
        # attachment's own generation, so bumping either makes the URLs signed before it fail the check.
        self._epoch = 0
        self._generations: dict[int, int] = {}

    @staticmethod
    def path_for(att: SimAttachment) -> str:
        """The URL path of an attachment."""
        return f"/attachments/{att.channel_id}/{att.id}/{quote(att.filename)}"

    def _mac(self, path: str, attachment_id: int, expires: int, issued: int) -> str:
        generation = self._generations.get(attachment_id, 0)
        msg = f"{path}|{expires:x}|{issued:x}|{self._epoch}|{generation}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def _signature(self, path: str, attachment_id: int) -> str:
        now = self._sim.now()
        issued = int(now)
        expires = int(now + self.url_lifetime)
        return f"ex={expires:x}&is={issued:x}&hm={self._mac(path, attachment_id, expires, issued)}&"

    def sign(self, att: SimAttachment) -> str:
        """A fresh signed URL valid for `url_lifetime` seconds of simulator time."""
        path = self.path_for(att)
        return f"{self._sim.base_url}{path}?{self._signature(path, att.id)}"

    def verify(self, path: str, attachment_id: int, query: dict[str, str]) -> bool:
        """Whether the query carries a valid, unrevoked, unexpired signature for this path."""
        try:
            expires = int(query["ex"], 16)
            issued = int(query["is"], 16)
            mac = query["hm"]
        except (KeyError, ValueError):
            return False
        if not hmac.compare_digest(mac, self._mac(path, attachment_id, expires, issued)):
            return False
        return self._sim.now() <= expires

    def revoke(self, attachment_id: int | None = None) -> None:
        """Invalidate every URL signed so far (or only those of one attachment); later signatures work."""
        if attachment_id is None:
            self._epoch += 1
        else:
            self._generations[attachment_id] = self._generations.get(attachment_id, 0) + 1

    def refreshed(self, url: str) -> str:
        """`url` signed afresh if it has the shape of one of this CDN's attachment URLs, else unchanged.

        Whether the attachment still exists is not checked here, as on Discord (see `refresh_urls`)."""
        parts = urlsplit(url)
        segments = parts.path.split("/")  # ['', 'attachments', channel_id, attachment_id, filename]
        ours = f"{parts.scheme}://{parts.netloc}" == self._sim.base_url
        if not ours or len(segments) != 5 or segments[1] != "attachments" or not segments[3].isdigit():
            return url
        # Other query parameters (an image size, say) are kept, as Discord keeps them.
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _SIGNATURE_KEYS]
        signed = f"{self._sim.base_url}{parts.path}?{self._signature(parts.path, int(segments[3]))}"
        return signed + urlencode(kept) if kept else signed


async def get_attachment(request: web.Request) -> web.StreamResponse:
    """GET /attachments/{channel_id}/{attachment_id}/{filename} → raw bytes (404 when unsigned, expired,
    revoked, or the attachment is gone)."""
    sim = sim_of(request)
    try:
        att_id = int(request.match_info["attachment_id"])
    except ValueError:
        att_id = -1
    att = sim.attachments.get(att_id)
    query = {k: v for k, v in request.query.items()}
    if att is None or request.match_info["channel_id"] != str(att.channel_id):
        return web.Response(status=404, text="This content is no longer available.")
    if not sim.cdn.verify(Cdn.path_for(att), att.id, query):
        return web.Response(status=404, text="This content is no longer available.")
    ctype = att.content_type or "application/octet-stream"
    if isinstance(att.content, Path):
        # Streamed from disk: a large file is never loaded into memory to be served.
        return web.FileResponse(att.content, headers={"Content-Type": ctype})
    return web.Response(body=att.content, content_type=ctype)


async def refresh_urls(request: web.Request) -> web.StreamResponse:
    """POST /attachments/refresh-urls `{"attachment_urls": [1–50 URLs]}` → `{"refreshed_urls": [{"original",
    "refreshed"}]}`, one entry per URL in the order given.

    Discord's developer documentation does not describe this endpoint; the community-maintained API reference
    (docs.discord.food, "Refresh Attachment URLs") says the URLs "do not have to be valid or signed" and that
    other query parameters are preserved: the endpoint only re-signs. So an attachment whose message was deleted
    still gets a well-formed fresh URL here, and it is the CDN that refuses it (404 "This content is no longer
    available."). A client tells "gone" from "expired" by fetching the refreshed URL, or more directly by
    fetching the message that holds the attachment (404, code 10008, once it is deleted). URLs that are not this
    CDN's attachment URLs come back unchanged."""
    sim = sim_of(request)
    body = (await read_body(request)).obj
    urls = body.get("attachment_urls")
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_REFRESH or not all(isinstance(url, str) for url in urls):
        raise ApiError(400, 50035, "Invalid Form Body", {"attachment_urls": {"_errors": []}})
    out: list[dict[str, Any]] = [{"original": url, "refreshed": sim.cdn.refreshed(url)} for url in urls]
    return json_response({"refreshed_urls": out})
