"""Several real processes sharing one PostgreSQL database: two gateway shards and two workers.

Everything runs as operators run it (`python -m bot gateway` with `SHARD_COUNT=2` and one `SHARD_IDS` each,
`python -m bot worker` twice); the two simulators run here. Members in four servers (two on each shard) ask for
videos; one worker is killed with SIGKILL while jobs are in flight. Every job must still end, each video must be
in its thread exactly once, nothing may be submitted twice, no generation may be polled by two processes in the
same stretch of time, Discord must never have answered 429, and the ledger must balance.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.jobs import JobStatus
from bot.sim.aimlapi import AimlSimulator, JobScript
from bot.sim.discord import DiscordSimulator, guild_on_shard
from bot.sim.processes import SimDeployment
from bot.sim.wiring import SIM_KEY, SIM_TOKEN
from bot.storage import Store
from tests.e2e_world import image
from tests.pg import PostgresCluster
from tests.services.test_faults_provider import assert_settled

pytestmark = pytest.mark.timeout(240)

LEASE = 3.0  # JOB_LEASE_SECONDS: short, so the killed worker's jobs come back within the test
POLL = 0.3
SETTINGS = {"poll_interval_seconds": POLL, "job_lease_seconds": LEASE}


@pytest.fixture
async def deployment(postgres: PostgresCluster, tmp_path: Path) -> AsyncIterator[SimDeployment]:
    guilds = [guild_on_shard(shard, 2, index) for index in range(2) for shard in range(2)]
    discord_sim = DiscordSimulator(token=SIM_TOKEN, guilds=guilds, shards=2, max_concurrency=1)
    aiml = AimlSimulator(key=SIM_KEY, default_script=JobScript(queued_s=0.3, generating_s=2.5))
    async with SimDeployment.running(discord_sim, aiml, postgres.new_database(), tmp_path, SETTINGS) as dep:
        yield dep


def _polls(aiml: AimlSimulator) -> dict[str, list[tuple[float, float, str]]]:
    """(arrived, answered, process) of every poll, per generation, in order of arrival."""
    polls: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
    for r in aiml.requests:
        if r.method == "GET" and "generation_id" in r.query:
            polls[r.query["generation_id"]].append((r.started, r.at, r.agent))
    return {g: sorted(p) for g, p in polls.items()}


async def test_two_shards_and_two_workers_share_the_work_and_survive_a_killed_worker(deployment: SimDeployment) -> None:
    dep, sim = deployment, deployment.discord
    await dep.start("gateway-0", "gateway", SHARD_COUNT="2", SHARD_IDS="0")
    await dep.start("gateway-1", "gateway", SHARD_COUNT="2", SHARD_IDS="1")
    await dep.start("worker-1", "worker")
    await dep.start("worker-2", "worker")
    try:
        # Both shards READY (a refused IDENTIFY is tried again 5 s later) and the commands synced.
        ready = [lambda shard=shard: sim.gateway.shard_events(shard, "READY") for shard in range(2)]
        await sim.wait_for(lambda: all(r() for r in ready) and bool(sim.commands()), timeout=60)
    except TimeoutError:
        pytest.fail("the gateways never connected:\n" + dep.logs())

    # Two videos for each of three members in each of the four servers (two servers per shard).
    asks = [
        sim.invoke_command(
            "video",
            user_id=int(member),
            channel_id=int(guild.text_channel_id),
            options={"prompt": f"the fox runs, take {n}"},
            attachments={"image1": image("fox.png")},
        )
        for guild in sim.guilds
        for member in guild.member_ids[1:]
        for n in range(2)
    ]
    handles = await asyncio.gather(*asks)
    answers = await asyncio.gather(*(h.wait_response(timeout=30) for h in handles), return_exceptions=True)
    cards = [a for a in answers if not isinstance(a, BaseException)]
    if len(cards) < len(answers):
        pytest.fail(f"{len(answers) - len(cards)} /video got no answer:\n{dep.logs()}")
    refused = [c.content for c in cards if not c.embeds]
    assert not refused, refused

    # Kill a worker once it has jobs in hand (it has polled a generation and the jobs are still running).
    await sim.wait_for(lambda: any(a == "Reelbot (worker-1)" for p in _polls(dep.aiml).values() for *_, a in p), 60)
    killed = dep.procs["worker-1"]
    killed.kill()
    await killed.wait()
    killed_at = time.time()

    async with await Store.open(dep.url) as store:
        guild_ids = tuple(g.id for g in sim.guilds)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = await store.jobs.counts_by_status()
            if sum(counts[s] for s in JobStatus if s not in (JobStatus.DELIVERED, JobStatus.FAILED)) == 0:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"jobs never settled: {counts}\n{dep.logs()}")
        await assert_settled(store, guilds=guild_ids)
        jobs = [j for g in sim.guilds for m in g.member_ids for j in await store.jobs.list_for_user(g.id, int(m))]

    assert len(jobs) == len(cards)
    delivered = [j for j in jobs if j.status is JobStatus.DELIVERED]
    # Only a job the killed worker was submitting at that instant may end without a video (refunded, never resent).
    assert len(delivered) >= len(jobs) - 1, [(j.id, j.status, j.failure_kind) for j in jobs]
    for job in delivered:
        assert job.thread_id is not None
        assert job.thread_id != job.channel_id
        files = [m for m in sim.messages(job.thread_id) if m.attachments]
        assert len(files) == 1, f"job {job.id}: {len(files)} videos in its thread"
        assert files[0].id == job.delivered_message_id

    submits = [r for r in dep.aiml.requests if r.method == "POST"]
    assert len(submits) == len(dep.aiml.generations) == len({j.generation_id for j in jobs if j.generation_id})
    assert not [r for r in sim.requests if r.status == 429], "Discord answered 429"

    # No generation is polled by two processes at once: each poll arrives after the one before it was answered
    # (whichever worker sent it: between polls a job's lease is given back, and either worker may take it). The
    # killed worker sent nothing after its death.
    polls = _polls(dep.aiml)
    for generation, in_order in polls.items():
        for (_, answered, first), (arrived, _, second) in itertools.pairwise(in_order):
            assert arrived >= answered, f"generation {generation} polled by {first} and {second} at once"
        assert all(t <= killed_at for t, _, a in in_order if a == "Reelbot (worker-1)"), generation
    # Both workers did work.
    assert {a for p in polls.values() for _, _, a in p} == {"Reelbot (worker-1)", "Reelbot (worker-2)"}
