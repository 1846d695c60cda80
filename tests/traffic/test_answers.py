"""Reading Discord's rate-limit headers: a route's bucket, and how long a 429 asks to wait."""

from __future__ import annotations

from bot.traffic.answers import BucketInfo, Refusal, bucket_info, learned_from, refusal
from bot.traffic.state import Learned

HEADERS = {
    "X-RateLimit-Bucket": "abc",
    "X-RateLimit-Limit": "5",
    "X-RateLimit-Remaining": "4",
    "X-RateLimit-Reset-After": "5.000",
}


def test_bucket_headers_are_read_and_a_missing_one_means_nothing_learned() -> None:
    assert bucket_info(HEADERS) == BucketInfo("abc", 5, 4, 5.0)
    assert bucket_info({k: v for k, v in HEADERS.items() if k != "X-RateLimit-Reset-After"}) is None
    assert bucket_info({**HEADERS, "X-RateLimit-Limit": "many"}) is None


def test_the_period_is_the_longest_reset_seen_for_the_same_bucket() -> None:
    first = learned_from(BucketInfo("abc", 5, 4, 5.0), None)
    assert first == Learned("abc", 5, 5.0)
    # A later request in the window sees only what is left of it: the period stays.
    assert learned_from(BucketInfo("abc", 5, 1, 1.2), first) == Learned("abc", 5, 5.0)
    # A different bucket (Discord regrouped the route) starts over.
    assert learned_from(BucketInfo("xyz", 10, 9, 1.0), first) == Learned("xyz", 10, 1.0)


def test_a_429_waits_what_the_body_says_then_the_headers_then_a_second() -> None:
    assert refusal({"Retry-After": "1", "X-RateLimit-Scope": "user"}, {"retry_after": 0.3, "global": False}) == (
        Refusal(0.3, "user")
    )
    assert refusal({"X-RateLimit-Reset-After": "2.5"}, None) == Refusal(2.5, "user")
    assert refusal({"Retry-After": "4"}, "not json") == Refusal(4.0, "user")
    assert refusal({}, None) == Refusal(1.0, "user")


def test_a_global_429_is_recognised_from_headers_or_body() -> None:
    assert refusal({"X-RateLimit-Global": "true", "Retry-After": "1"}, None).is_global
    assert refusal({"X-RateLimit-Scope": "global"}, None).is_global
    assert refusal({}, {"retry_after": 0.5, "global": True}) == Refusal(0.5, "global")
    assert refusal({"X-RateLimit-Scope": "shared"}, {"retry_after": 3}).scope == "shared"
