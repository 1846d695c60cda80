"""Discord's rules as the real discord.py client meets them in the simulator: deadlines, token lifetime,
upload limits, nonces, permissions, threads, the CDN, components, modals, followups and RESUME."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest

from bot.sim.discord import DiscordSimulator, Perm
from tests.discord_sim_bot import SimTestBot, live_fixture, sim_fixture  # noqa: F401

Live = tuple[DiscordSimulator, SimTestBot]
MiB = 1024 * 1024


def _text_channel(sim: DiscordSimulator, bot: SimTestBot) -> discord.TextChannel:
    channel = bot.get_channel(sim.guild.text_channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_answer_after_the_deadline_is_unknown_interaction(live: Live) -> None:
    sim, bot = live
    sim.interaction_deadline = 0.1
    bot.delay_before_ack = 0.3
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    await sim.wait_for(lambda: bot.seen["errors"], timeout=5)
    err = bot.seen["errors"][0]
    assert isinstance(err, discord.NotFound)
    assert err.code == 10062
    assert h.response_type is None
    assert sim.messages(sim.guild.text_channel_id) == []


async def test_token_expires_after_its_lifetime_but_bot_token_still_posts(live: Live) -> None:
    sim, bot = live
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    assert (await h.wait_response()).content == "pong"
    interaction: discord.Interaction = bot.seen["ping_interaction"]
    await interaction.edit_original_response(content="edited in time")
    assert h.response is not None
    assert h.response.content == "edited in time"

    sim.clock_offset = sim.token_lifetime + 1
    with pytest.raises(discord.HTTPException) as caught:
        await interaction.edit_original_response(content="too late")
    assert (caught.value.status, caught.value.code) == (401, 50027)
    with pytest.raises(discord.HTTPException) as caught:
        await interaction.followup.send("too late")
    assert caught.value.status == 401
    assert h.response.content == "edited in time"
    sent = await _text_channel(sim, bot).send("delivered with the bot token")
    assert sim.message(sent.id) is not None


async def test_upload_limit_follows_the_boost_tier(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    guild = bot.get_guild(sim.guild.id)
    assert guild is not None
    assert guild.filesize_limit == 10 * MiB
    too_big = b"\0" * (10 * MiB + 1)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(file=discord.File(io.BytesIO(too_big), "big.mp4"))
    assert (caught.value.status, caught.value.code) == (413, 40005)
    assert sim.messages(channel.id) == []

    sim.set_premium_tier(sim.guild.id, 2)
    await sim.wait_for(lambda: guild.filesize_limit == 50 * MiB, timeout=5)
    sent = await channel.send(file=discord.File(io.BytesIO(too_big), "big.mp4"))
    stored = sim.message(sent.id)
    assert stored is not None
    assert stored.attachments[0].size == len(too_big)


async def test_same_nonce_returns_the_original_message(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    first = await channel.send("status: queued", nonce="job-42")
    again = await channel.send("status: queued", nonce="job-42")
    other = await channel.send("status: queued", nonce="job-43")
    assert again.id == first.id
    assert other.id != first.id
    assert [m.content for m in sim.messages(channel.id)] == ["status: queued", "status: queued"]
    # Only "within a few minutes": later the same nonce creates a new message.
    sim.clock_offset = 3600
    later = await channel.send("status: queued", nonce="job-42")
    assert later.id != first.id


async def test_missing_permissions(live: Live) -> None:
    sim, bot = live
    g = sim.guild
    channel = _text_channel(sim, bot)
    msg = await channel.send("anchor")

    sim.set_bot_permissions(g.text_channel_id, deny=Perm.CREATE_PUBLIC_THREADS)
    with pytest.raises(discord.Forbidden) as caught:
        await msg.create_thread(name="nope")
    assert caught.value.code == 50013
    sim.set_bot_permissions(g.text_channel_id, None, None)
    thread = await msg.create_thread(name="yes")

    sim.set_bot_permissions(g.text_channel_id, deny=Perm.ATTACH_FILES)
    with pytest.raises(discord.Forbidden):
        await thread.send(file=discord.File(io.BytesIO(b"x"), "x.mp4"))
    await thread.send("text still works")

    sim.set_bot_permissions(g.text_channel_id, deny=Perm.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden):
        await channel.send("blocked")
    # The interaction tells the bot what it may do in that channel.
    h = await sim.invoke_command("ping", user_id=g.member_ids[0], channel_id=g.text_channel_id)
    await h.wait_response()
    perms: discord.Permissions = bot.seen["ping_interaction"].app_permissions
    assert not perms.send_messages
    assert perms.attach_files
    assert [m.content for m in sim.messages(thread.id)] == ["text still works"]


async def test_thread_archive_lock_delete(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    thread = await (await channel.send("anchor")).create_thread(name="render")
    sim.archive_thread(thread.id)
    assert sim.threads(channel.id)[0].archived
    # Posting into an archived (unlocked) thread unarchives it, as Discord does.
    fetched = await bot.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread)
    await fetched.send("result")
    assert not sim.threads(channel.id)[0].archived

    sim.lock_thread(thread.id)
    with pytest.raises(discord.Forbidden) as caught:
        await fetched.send("locked out")
    assert caught.value.code == 160005

    sim.delete_channel(thread.id)
    with pytest.raises(discord.NotFound) as not_found:
        await fetched.send("gone")
    assert not_found.value.code == 10003
    assert sim.threads(channel.id) == []


async def test_cdn_urls_are_signed_expire_and_refresh(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    sent = await channel.send(file=discord.File(io.BytesIO(b"frame"), "still.png"))
    att = sent.attachments[0]
    assert "ex=" in att.url
    assert "hm=" in att.url
    assert await att.read() == b"frame"
    with pytest.raises(discord.NotFound):
        await bot.http.get_from_cdn(att.url.replace("hm=", "hm=0"))

    sim.clock_offset = 2 * 86400
    with pytest.raises(discord.NotFound):
        await att.read()
    refreshed = await bot.http.request(
        discord.http.Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": [att.url]}
    )
    new_url = refreshed["refreshed_urls"][0]["refreshed"]
    assert new_url != att.url
    assert await bot.http.get_from_cdn(new_url) == b"frame"


async def test_ephemeral_reply_is_only_visible_through_the_handle(live: Live) -> None:
    sim, _ = live
    h = await sim.invoke_command(
        "ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id, options={"secret": True}
    )
    reply = await h.wait_response()
    assert reply.content == "pong"
    assert h.ephemeral
    assert sim.messages(sim.guild.text_channel_id) == []


async def test_first_followup_after_defer_edits_the_loading_message(live: Live) -> None:
    sim, _ = live
    h = await sim.invoke_command("late", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    followups = await h.wait_followups(2)
    assert [m.content for m in followups] == ["first followup", "second followup"]
    assert followups[0].id == h.original_message_id
    visible = [m.content for m in sim.messages(sim.guild.text_channel_id)]
    assert visible == ["first followup", "second followup"]


async def test_button_click_and_modal_submit(live: Live) -> None:
    sim, bot = live
    g = sim.guild
    h = await sim.invoke_command("menu", user_id=g.member_ids[0], channel_id=g.text_channel_id)
    menu = await h.wait_response()
    click = await sim.click_button(menu.id, "menu:go", user_id=g.member_ids[1])
    updated = await click.wait_response()
    assert click.response_type == 7
    assert updated.id == menu.id
    assert updated.content == "Going"
    assert updated.components == []
    assert bot.seen["clicked_by"] == g.member_ids[1]

    ask = await sim.invoke_command("rename", user_id=g.member_ids[0], channel_id=g.text_channel_id)
    assert await ask.wait_ack() == 9
    assert ask.modal is not None
    assert ask.modal["title"] == "Rename"
    done = await sim.submit_modal("rename:modal", {"rename:name": "Nimbus"}, user_id=g.member_ids[0])
    reply = await done.wait_response()
    assert reply.content == "Renamed to Nimbus"
    assert bot.seen["submitted_name"] == "Nimbus"


async def test_client_resumes_after_disconnect_and_gets_missed_events(live: Live) -> None:
    sim, _ = live
    assert sim.identify_count == 1
    await sim.disconnect_clients()
    h = await sim.invoke_command("ping", user_id=sim.guild.member_ids[0], channel_id=sim.guild.text_channel_id)
    assert (await h.wait_response(timeout=10)).content == "pong"
    assert sim.gateway.resume_count == 1
    assert sim.identify_count == 1


async def test_wrong_token_fails_login(sim: DiscordSimulator) -> None:
    from bot.discord_endpoints import point_discord_at

    point_discord_at(sim.rest_url, sim.gateway_url)
    bot = SimTestBot(sim.guild.id)
    with pytest.raises(discord.LoginFailure):
        await bot.login("WRONG")
    await bot.close()
    assert sim.requests[0].status == 401
    await asyncio.sleep(0)


async def test_discord_py_retries_a_429_after_retry_after(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    sim.inject_fault("POST", "/channels/{channel_id}/messages", 429, retry_after=0.3)
    sent = await channel.send("after the limit")
    posts = sim.requests_to("/channels/{channel_id}/messages", method="POST")
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].started - posts[0].finished >= 0.3
    assert [m.id for m in sim.messages(channel.id)] == [sent.id]


async def test_discord_py_waits_out_a_global_429(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    sim.inject_fault("POST", "/channels/{channel_id}/messages", 429, retry_after=0.2, global_=True)
    await channel.send("after the global limit")
    assert [r.status for r in sim.requests_to("/channels/{channel_id}/messages")] == [429, 200]


async def test_discord_py_paces_itself_by_bucket_headers(live: Live) -> None:
    sim, bot = live
    channel = _text_channel(sim, bot)
    sim.rate_limits["POST /channels/{channel_id}/messages"] = (2, 0.3)
    for i in range(5):
        await channel.send(str(i))
    # The client read Remaining/Reset-After and waited instead of drawing 429s.
    assert [r.status for r in sim.requests_to("/channels/{channel_id}/messages")] == [200] * 5
    assert [m.content for m in sim.messages(channel.id)] == ["0", "1", "2", "3", "4"]


async def test_429_without_via_is_not_retried(live: Live) -> None:
    sim, bot = live
    sim.inject_fault("POST", "/channels/{channel_id}/messages", 429, via=False)
    with pytest.raises(discord.HTTPException) as caught:
        await _text_channel(sim, bot).send("blocked")
    assert caught.value.status == 429
