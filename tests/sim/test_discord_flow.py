"""The real discord.py client against the Discord simulator: login, sync, /video, defer, edit, thread, file."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from bot.sim.discord import AttachmentSpec, DiscordSimulator
from tests.discord_sim_bot import RESULT_BYTES, SimTestBot, running_bot, sim_fixture  # noqa: F401

PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000004000000030008060000000000000000")


async def test_video_flow_seen_from_the_simulator(sim: DiscordSimulator) -> None:
    g = sim.guild
    bot = SimTestBot(g.id)
    async with running_bot(sim, bot):
        # Login and sync happened before the gateway connected.
        assert [r.route for r in sim.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]
        synced = sim.commands(guild_id=g.id)
        assert {c["name"] for c in synced} == {"video", "ping", "menu", "rename", "late"}
        video_schema = next(c for c in synced if c["name"] == "video")
        assert [(o["name"], o["type"]) for o in video_schema["options"]] == [
            ("prompt", 3),
            ("image1", 11),
            ("image2", 11),
            ("duration", 4),
        ]

        h = await sim.invoke_command(
            "video",
            user_id=g.member_ids[0],
            channel_id=g.text_channel_id,
            options={"prompt": "a cat", "duration": 10},
            attachments={
                "image1": AttachmentSpec("a.png", "image/png", data=PNG_1x1, width=1024, height=768),
                "image2": AttachmentSpec("b.jpg", "image/jpeg", data=b"\xff\xd8jpegdata", width=640, height=480),
            },
        )
        resp = await h.wait_response(timeout=5)
        assert h.response_type == 5
        assert resp.content == "Queued: a cat (10s)"
        assert not resp.loading
        assert not h.ephemeral
        assert h.acknowledged_at is not None
        assert h.acknowledged_at >= h.created_at

        await sim.wait_for(lambda: "sent_id" in bot.seen or bot.seen["errors"], timeout=10)
        assert bot.seen["errors"] == []
        # The bot saw the attachments exactly as Discord describes them, and downloaded their bytes.
        assert bot.seen["images"] == [
            ("a.png", "image/png", len(PNG_1x1), 1024, 768),
            ("b.jpg", "image/jpeg", 10, 640, 480),
        ]
        assert bot.seen["image_bytes"] == [PNG_1x1, b"\xff\xd8jpegdata"]
        assert bot.seen["filesize_limit"] == 10 * 1024 * 1024

        # Thread on the response message: same id, owned by the bot, under #general.
        threads = sim.threads(g.text_channel_id)
        assert [t.id for t in threads] == [resp.id]
        assert threads[0].owner_id == sim.bot_user_id
        assert threads[0].name == "video: a cat"
        # The 1 MiB file arrived intact in the thread.
        posted = sim.messages(threads[0].id)
        assert len(posted) == 1
        assert posted[0].content == "done"
        att = posted[0].attachments[0]
        assert (att.filename, att.content_type, att.size) == ("out.mp4", "video/mp4", RESULT_BYTES)
        assert bytes(att.data) == bytes(range(256)) * (RESULT_BYTES // 256)

        # The request log shows each step in order, from the simulator's side.
        steps = [(r.method, r.route, r.status) for r in sim.requests]
        expected = [
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", 200),
            ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", 200),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", 201),
            ("POST", "/channels/{channel_id}/messages", 200),
        ]
        positions = [steps.index(step) for step in expected]
        assert positions == sorted(positions)
        upload = sim.requests_to("/channels/{channel_id}/messages", method="POST")[-1]
        assert upload.files == [{"field": "files[0]", "filename": "out.mp4", "size": RESULT_BYTES}]
        assert upload.body_json["enforce_nonce"] is True
        cdn_gets = [r for r in sim.requests if r.route.startswith("/attachments/")]
        assert [r.status for r in cdn_gets] == [200, 200]


class _ZlibStream:
    """A zlib-stream client context (what discord.py uses when zstandard is absent)."""

    COMPRESSION_TYPE = "zlib-stream"

    def __init__(self) -> None:
        self.inflate = zlib.decompressobj()
        self.pending = bytearray()

    def decompress(self, data: bytes, /) -> str | None:
        self.pending += data
        if not data.endswith(b"\x00\x00\xff\xff"):
            return None
        text = self.inflate.decompress(bytes(self.pending)).decode()
        self.pending.clear()
        return text


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_gateway_transport_compression(
    sim: DiscordSimulator, compress: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord.utils

    if compress == "zlib-stream":
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", _ZlibStream)
    bot = SimTestBot(sim.guild.id)
    async with running_bot(sim, bot):
        await asyncio.wait_for(bot.ready_event.wait(), timeout=5)
        assert sim.gateway.compressions[-1] == compress
        assert bot.get_guild(sim.guild.id) is not None
        h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[1], channel_id=sim.guild.text_channel_id)
        assert (await h.wait_response()).content == "pong"
