"""`python -m bot demo`: one member's `/video`, end to end, against the two local simulators. No tokens needed.
Then the same member saves a character and uses it in two more videos, the second after every image link Discord
had signed has expired.

Everything real except the remote ends: the real discord.py client, the real store on a SQLite file, the real
provider client over HTTP and the real poller; only Discord and the AI/ML API are the local simulators.
It prints what the member sees, step by step, and writes the delivered MP4s to ./demo-output/.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.app import StartupOptions
from bot.runner import assemble
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import AttachmentSpec, DiscordSimulator, InteractionHandle, SimMessage
from bot.sim.images import make_png
from bot.sim.wiring import SIM_KEY, SIM_TOKEN, simulated_settings

__all__ = ["run_demo"]

OUTPUT = Path("demo-output")
PROMPT = "The fox from image 1 runs through the snowy forest of image 2, camera tracking alongside"


def _say(step: str, text: str = "") -> None:
    print(f"\n▶ {step}")
    for line in text.splitlines():
        print(f"    {line}")


def _card_text(embeds: list[dict[str, Any]], components: list[dict[str, Any]]) -> str:
    if not embeds:
        return "(no card)"
    embed = embeds[0]
    lines = [f"[{embed.get('title', '')}]", embed.get("description", "")]
    lines += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    buttons = [c.get("label") or c.get("placeholder", "") for row in components for c in row.get("components", [])]
    if buttons:
        lines.append("Buttons: " + "  ".join(f"[{label}]" for label in buttons))
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Discord renders `<t:…:R>` as "in 3 seconds" in each member's client; do the same for the terminal."""
    return re.sub(r"<t:(\d+):R>", lambda m: f"in about {max(0, int(m[1]) - int(time.time()))} s", text)


def _status(embeds: list[dict[str, Any]]) -> str:
    for field in embeds[0].get("fields", []) if embeds else []:
        if field["name"] == "Status":
            return _plain(str(field["value"]))
    return ""


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def run_demo(output: Path = OUTPUT) -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.WARNING, format="    (log) %(levelname)s %(name)s: %(message)s")
    discord_sim = DiscordSimulator(token=SIM_TOKEN)
    aiml = AimlSimulator(key=SIM_KEY, default_script=JobScript(queued_s=0.5, generating_s=2.5))
    await discord_sim.start()
    await aiml.start()
    try:
        with tempfile.TemporaryDirectory(prefix="reelbot-demo-") as tmp:
            settings = simulated_settings(discord_sim, aiml, Path(tmp) / "demo.db")
            async with assemble(settings, options=StartupOptions()) as bot:
                running = asyncio.create_task(bot.start(SIM_TOKEN))
                await discord_sim.wait_until_ready(timeout=10)
                guild_id = discord_sim.guild.id
                await discord_sim.wait_for(lambda: bool(discord_sim.commands(guild_id)), timeout=10)
                code = await _play(discord_sim, output)
                if code == 0:
                    code = await _play_characters(discord_sim, aiml, output)
                if code == 0:
                    await _quota(discord_sim)
                await bot.close()
                await asyncio.gather(running, return_exceptions=True)
    finally:
        await aiml.stop()
        await discord_sim.stop()
    _say(f"Done in {time.monotonic() - started:.1f} s.")
    return code


async def _play(sim: DiscordSimulator, output: Path) -> int:
    guild = sim.guild
    member = guild.member_ids[0]
    images = {
        "image1": AttachmentSpec(
            "fox.png", "image/png", data=make_png(1024, 768, (230, 120, 40)), width=1024, height=768
        ),
        "image2": AttachmentSpec(
            "forest.png", "image/png", data=make_png(960, 960, (40, 140, 90)), width=960, height=960
        ),
    }
    _say(
        "A member runs /video in #general",
        f'prompt: "{PROMPT}"\nimage1: fox.png (1024×768 PNG)\nimage2: forest.png (960×960 PNG)\nduration: 5 s',
    )
    handle = await sim.invoke_command(
        "video", user_id=member, channel_id=guild.text_channel_id, options={"prompt": PROMPT}, attachments=images
    )
    card = await handle.wait_response(timeout=5)
    _say("The status card appears in the channel (public)", _card_text(card.embeds, card.components))
    await sim.wait_for(lambda: bool(sim.threads(guild.text_channel_id)), timeout=5)
    thread = sim.threads(guild.text_channel_id)[0]
    _say("A thread is started on the card", f"🧵 {thread.name}")

    seen = _status(card.embeds)
    deadline = time.monotonic() + 20
    delivered = None
    while time.monotonic() < deadline:
        current = sim.message(card.id)
        status = _status(current.embeds) if current else ""
        if status and status != seen:
            seen = status
            _say("The card updates", status)
        posts = [m for m in sim.messages(thread.id) if m.attachments]
        if posts:
            delivered = posts[0]
            break
        await asyncio.sleep(0.1)
    if delivered is None:
        _say("The video did not arrive within 20 seconds — something is wrong.")
        return 1
    attachment = delivered.attachments[0]
    saved = output / attachment.filename
    await asyncio.to_thread(_save, saved, attachment.data)
    _say(
        "The video is posted in the thread",
        f"{delivered.content}\nfile: {attachment.filename} ({attachment.size:,} bytes) → saved to {saved}",
    )
    await sim.wait_for(lambda: "Delivered" in _status(sim.message(card.id).embeds), timeout=5)  # type: ignore[union-attr]
    final = sim.message(card.id)
    _say("The card, final", _card_text(final.embeds, final.components) if final else "(gone)")
    return 0


async def _quota(sim: DiscordSimulator) -> None:
    guild = sim.guild
    quota = await sim.invoke_command("quota", user_id=guild.member_ids[0], channel_id=guild.text_channel_id)
    reply = await quota.wait_response(timeout=5)
    _say("The member runs /quota (only they see the answer)", reply.content)


async def _private(sim: DiscordSimulator, handle: InteractionHandle) -> str:
    """The member's private answer, once "thinking…" has turned into it."""
    reply = await handle.wait_response(timeout=15)
    await sim.wait_for(lambda: not getattr(sim.message(reply.id, include_ephemeral=True), "loading", True), 15)
    current = sim.message(reply.id, include_ephemeral=True)
    return current.content if current else ""


async def _delivered(sim: DiscordSimulator, card: SimMessage, output: Path) -> str:
    await sim.wait_for(lambda: any(m.attachments for m in sim.messages(card.id)), timeout=20)
    post = next(m for m in sim.messages(card.id) if m.attachments)
    saved = output / post.attachments[0].filename
    await asyncio.to_thread(_save, saved, post.attachments[0].data)
    return f"{post.content}\nfile: {post.attachments[0].filename} → saved to {saved}"


async def _submitted(sim: DiscordSimulator, aiml: AimlSimulator, count: int) -> None:
    await sim.wait_for(lambda: len(aiml.submissions) >= count, timeout=15)


async def _play_characters(sim: DiscordSimulator, aiml: AimlSimulator, output: Path) -> int:
    """Save a character once, use it twice; the second time after every signed image link has expired."""
    member, channel = sim.guild.member_ids[0], sim.guild.text_channel_id
    views = {
        "frontal": ("fox-front.png", (230, 120, 40)),
        "reference1": ("fox-left.png", (220, 110, 50)),
        "reference2": ("fox-back.png", (210, 100, 60)),
    }
    files = {
        option: AttachmentSpec(name, "image/png", data=make_png(768, 768, rgb), width=768, height=768)
        for option, (name, rgb) in views.items()
    }
    _say(
        "The member saves a character with /character create",
        "name: Fox\nfrontal: fox-front.png   reference1: fox-left.png   reference2: fox-back.png",
    )
    handle = await sim.invoke_command(
        "character", subcommand="create", user_id=member, channel_id=channel, options={"name": "Fox"}, attachments=files
    )
    _say("Reelbot answers privately", await _private(sim, handle))
    sheet = next(m for m in reversed(sim.messages(channel)) if m.embeds and m.embeds[0]["title"].startswith("🎭"))
    _say(
        "The character sheet is posted in the channel (the images live in this message; the bot keeps only its ids)",
        f"[{sheet.embeds[0]['title']}]\n{sheet.embeds[0]['description']}\n"
        f"files: {', '.join(a.filename for a in sheet.attachments)}",
    )
    forest = {
        "image1": AttachmentSpec(
            "forest.png", "image/png", data=make_png(960, 960, (40, 140, 90)), width=960, height=960
        )
    }
    prompts = ("@Fox runs through the snowy forest of image 1", "@Fox curls up to sleep under the trees of image 1")
    for n, prompt in enumerate(prompts, start=1):
        if n == 2:
            sim.expire_attachment_urls()
            _say("A day later: every image link Discord signed so far has expired", "")
        _say(
            f"The member runs /video with the character (use {n})",
            f'prompt: "{prompt}"\ncharacter1: Fox\nimage1: forest.png',
        )
        handle = await sim.invoke_command(
            "video",
            user_id=member,
            channel_id=channel,
            options={"prompt": prompt, "character1": "Fox"},
            attachments=forest,
        )
        card = await handle.wait_response(timeout=15)
        _say("The card says who is who", _plain(_card_text(card.embeds, card.components)))
        await _submitted(sim, aiml, 1 + n)  # the first /video, then ours
        body = aiml.submissions[-1]
        elements = body.get("elements") or []
        assert isinstance(elements, list)
        angles = sum(len(e["reference_image_urls"]) for e in elements)
        _say(
            "What the video service receives",
            f"prompt: {body['prompt']}\nelements: {len(elements)} character (a front view and {angles} angles, "
            "their links read fresh from the sheet)",
        )
        try:
            _say("The video is posted in the thread", await _delivered(sim, card, output))
        except TimeoutError:
            _say("The video did not arrive within 20 seconds — something is wrong.")
            return 1
    return 0
