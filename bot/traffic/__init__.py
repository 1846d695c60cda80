"""Traffic control: how much the bot sends to Discord and to the AI/ML API, in what order, and when.

- `discord`: the scheduler every bot-token REST request goes through (global budget, learned buckets, priorities,
  coalesced card edits, 429s obeyed).
- `provider`: the pacer of AI/ML API requests (additive increase, multiplicative decrease on 429; scarce
  requests go to submits and to jobs that are likely done).
- `state`: what both remember, behind one interface; kept in memory for one process.
- `shared`: the same, kept in PostgreSQL for every process of a deployment (one budget per bot token and API key).
"""

from bot.traffic.state import Learned, LocalTrafficState, TrafficState, Window

__all__ = ["Learned", "LocalTrafficState", "TrafficState", "Window"]
