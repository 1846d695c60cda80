"""One allowance, four views, end to end: the member's `/quota`, the over-quota refusal, the status card and the
moderator's reply all count grants the same way (limit + grants), as a new member would try it."""

from __future__ import annotations

import pytest

from bot.sim.discord import SimMessage
from tests.e2e_world import World

pytestmark = pytest.mark.timeout(60)


def quota_field(card: SimMessage) -> str:
    fields = {f["name"]: f["value"] for f in card.embeds[0]["fields"]}
    return str(fields["Your quota"])


async def test_a_grant_counts_in_quota_refusal_card_and_moderator_reply(world: World) -> None:
    await world.start_bot()
    await world.mod("limit", member=world.member, videos=1)
    first = await (await world.video()).wait_response(timeout=5)
    assert quota_field(first) == "0 of 1 videos left"
    assert "used **1** of **1**" in await world.quota_text()

    refusal = await (await world.video()).wait_response(timeout=5)
    assert "reached your video limit" in refusal.content
    assert "used **1** of **1**" in refusal.content

    granted = await world.mod("grant", member=world.member, videos=1)
    assert "**1** of **2** videos left" in granted
    assert "used **1** of **2**" in await world.quota_text()  # the member's view right after the grant

    second = await (await world.video()).wait_response(timeout=5)
    assert quota_field(second) == "0 of 2 videos left"
    assert "used **2** of **2**" in await world.quota_text()
    assert "1 granted by a moderator" in await world.quota_text()

    refusal = await (await world.video()).wait_response(timeout=5)
    assert "used **2** of **2**" in refusal.content
    assert "**0** of **2** videos left" in await world.mod("check", member=world.member)
