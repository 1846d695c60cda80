"""`python -m bot demo` on a machine with no settings: it plays a member's /video end to end and exits 0."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)


async def test_demo_runs_with_no_settings_and_writes_the_video(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "AIML_", "DATABASE_", "DEV_GUILD"))}
    (tmp_path / ".env").write_text("DISCORD_TOKEN=\nQUOTA_DEFAULT_LIMIT=broken\n")  # a stray .env must not matter
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    for step in ("runs /video", "status card", "thread is started", "video is posted", "/quota"):
        assert step in text
    videos = sorted((tmp_path / "demo-output").glob("*.mp4"))
    assert [v.name for v in videos] == ["reelbot-1.mp4", "reelbot-2.mp4", "reelbot-3.mp4"]
    assert all(v.stat().st_size > 0 for v in videos)
    assert f"({videos[0].stat().st_size:,} bytes)" in text
    # A character saved once and used twice, the second time after every signed link expired.
    assert "Saved **Fox**" in text
    assert text.count("Characters: `@Element1` **Fox**") == 2
    assert text.count("prompt: @Element1 ") == 2
    assert "every image link Discord signed so far has expired" in text
    assert "used **3** of **5**" in text
