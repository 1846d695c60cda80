"""Traffic control: how much the bot sends to Discord and to the AI/ML API, in what order, and when.

- `discord`: the scheduler every bot-token REST request goes through (global budget, learned buckets, priorities,
  coalesced card edits, 429s obeyed).
- `provider`: the pacer of AI/ML API requests (additive increase, multiplicative decrease on 429; scarce
  requests go to submits and to jobs that are likely done).
- `state`: what both remember, behind an interface a shared (multi-process) implementation can replace.
"""

from bot.traffic.state import Learned, LocalTrafficState, TrafficState, Window

__all__ = ["Learned", "LocalTrafficState", "TrafficState", "Window"]
