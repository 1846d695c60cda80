"""Safe download of a finished video: http(s) only, public addresses only, streamed to disk with a byte cap.

The video URL comes from the provider's answer, so it is untrusted input: without these checks a crafted
answer could make the bot fetch from its own host or private network (SSRF) or fill the disk. The address
check sits in the connector's resolver, which is what the socket actually connects to, so a DNS name that
resolves to a private address is caught, and every redirect hop goes through the same path.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import pathlib
import socket
import uuid
from collections.abc import Callable
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "DownloadError",
    "DownloadFailed",
    "MediaDownloader",
    "MediaRefused",
    "MediaTooLarge",
    "is_public_address",
]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 451})


class DownloadError(Exception):
    """A download did not produce the file. `permanent` means trying again cannot help."""

    permanent: bool = False


class MediaTooLarge(DownloadError):
    """The file is larger than the caller's cap (by Content-Length, or counted while streaming)."""

    permanent = True

    def __init__(self, size: int | None, limit: int) -> None:
        shown = f"{size} bytes" if size is not None else "more than the limit"
        super().__init__(f"The video is too large to download ({shown}; limit {limit} bytes).")
        self.size = size
        self.limit = limit


class MediaRefused(DownloadError):
    """The URL is not safe to fetch (scheme, private address, too many redirects)."""

    permanent = True

    def __init__(self, reason: str) -> None:
        super().__init__(f"Refused to download the video: {reason}")
        self.reason = reason


class DownloadFailed(DownloadError):
    """The server or network failed. 404/410 are permanent; 5xx, timeouts and truncated bodies are not."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def is_public_address(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses.

    IPv6 forms that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, 6to4, Teredo, NAT64) are judged by
    the embedded address, so `::ffff:127.0.0.1` is as private as `127.0.0.1`.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr.teredo is not None:
            embedded = addr.teredo[1]
        if embedded is None and addr in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


AddressPolicy = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]


def _safe_check(policy: AddressPolicy, host: str) -> bool:
    try:
        return policy(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return False


class _RefusedAddress(OSError):
    """Raised inside the resolver; aiohttp wraps OSErrors from resolvers in ClientConnectorDNSError."""


class _PublicOnlyResolver(AbstractResolver):
    """Resolves with the default resolver, then drops every address the policy refuses."""

    def __init__(self, allowed: AddressPolicy = is_public_address) -> None:
        self._inner = aiohttp.DefaultResolver()
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if _safe_check(self._allowed, r["host"])]
        if not allowed:
            raise _RefusedAddress(f"{host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class MediaDownloader:
    """Downloads provider media to files. Owns its aiohttp session (created on first use)."""

    def __init__(
        self,
        *,
        allow_private_networks: bool,
        timeout: float = 120.0,
        max_redirects: int = 5,
        address_allowed: AddressPolicy = is_public_address,
    ) -> None:
        """`address_allowed` replaces `is_public_address` (tests only: everything on this host is loopback,
        so a test that needs one "public" and one refused address marks 127.0.0.1 as the public one)."""
        self._allow_private = allow_private_networks
        self._address_allowed = address_allowed
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 15.0))
        self._max_redirects = max_redirects
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver: AbstractResolver = (
                aiohttp.DefaultResolver() if self._allow_private else _PublicOnlyResolver(self._address_allowed)
            )
            connector = aiohttp.TCPConnector(resolver=resolver, limit=4)
            # trust_env=False: an HTTP(S)_PROXY from the environment would bypass the resolver check.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_url(self, url: str) -> URL:
        """Scheme and literal-IP checks. aiohttp does not call the resolver for IP literals, so check here."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise MediaRefused("the URL cannot be parsed") from None
        if parsed.scheme not in ("http", "https"):
            raise MediaRefused(f"only http and https URLs are allowed, not {parsed.scheme or 'none'!r}")
        host = parsed.host
        if not host:
            raise MediaRefused("the URL has no host")
        if not self._allow_private:
            literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None
            try:
                literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            except ValueError:
                literal = None
            if literal is not None and not self._address_allowed(literal):
                raise MediaRefused(f"{literal} is not a public address")
        return parsed

    async def download(self, url: str, dest: pathlib.Path, *, max_bytes: int) -> int:
        """Stream `url` into `dest`; return the number of bytes written.

        The body goes to a sibling temporary file that is renamed onto `dest` only when complete, so a
        failure never leaves a partial `dest` behind.
        """
        session = self._get_session()
        current = self._check_url(url)
        for _hop in range(self._max_redirects + 1):
            try:
                async with session.get(current, allow_redirects=False, timeout=self._timeout) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise DownloadFailed(f"HTTP {resp.status} redirect without a Location", permanent=True)
                        current = self._check_url(urljoin(str(current), location))
                        log.debug("download redirected to host %s", current.host)
                        continue
                    return await self._save(resp, dest, max_bytes)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, _RefusedAddress):
                    raise MediaRefused(str(exc.os_error)) from None
                raise DownloadFailed(f"Could not connect to {current.host}.", permanent=False) from None
            except TimeoutError:
                raise DownloadFailed("The video download timed out.", permanent=False) from None
            except aiohttp.ClientPayloadError:
                raise DownloadFailed("The video download was cut off.", permanent=False) from None
            except aiohttp.ClientError as exc:
                raise DownloadFailed(f"The video download failed ({type(exc).__name__}).", permanent=False) from None
        raise MediaRefused(f"more than {self._max_redirects} redirects")

    async def _save(self, resp: aiohttp.ClientResponse, dest: pathlib.Path, max_bytes: int) -> int:
        if resp.status != 200:
            permanent = resp.status in _PERMANENT_STATUSES
            raise DownloadFailed(f"The video server answered HTTP {resp.status}.", permanent=permanent)
        expected = resp.content_length
        if expected is not None and expected > max_bytes:
            raise MediaTooLarge(expected, max_bytes)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A unique sibling name: two downloads to the same dest never share (or rename) a half-written file.
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        written = 0
        try:
            with part.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise MediaTooLarge(expected, max_bytes)
                    fh.write(chunk)
            if expected is not None and written < expected:
                raise DownloadFailed(
                    f"The video download was cut off ({written} of {expected} bytes).", permanent=False
                )
            part.replace(dest)
        except BaseException:
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        return written
