"""Token buckets, by hand: burst, refill, the wait a refused charge is told, and parsing."""

import pytest

from ntr.serving.ratelimit import Rate, RateLimiter, retry_after


def test_a_bucket_spends_its_burst_then_refills_at_its_rate():
    limiter = RateLimiter(Rate(rate=10, burst=5))
    assert [limiter.charge("k", 1, now=0.0) for _ in range(5)] == [0.0] * 5
    # Empty: one unit comes back after 1/10 s.
    assert limiter.charge("k", 1, now=0.0) == pytest.approx(0.1)
    assert limiter.charge("k", 1, now=0.05) == pytest.approx(0.05)  # half a unit there, nothing taken
    assert limiter.charge("k", 1, now=0.1) == 0.0
    # Refill stops at the burst: after 10 s there are 5 units, not 100.
    assert limiter.charge("k", 5, now=10.0) == 0.0
    assert limiter.charge("k", 1, now=10.0) == pytest.approx(0.1)
    # Other keys have their own buckets; a cost over the burst is charged as the burst.
    assert limiter.charge("other", 1000, now=10.0) == 0.0
    assert limiter.charge("other", 1, now=10.0) == pytest.approx(0.1)


def test_full_buckets_are_forgotten_when_there_are_too_many():
    limiter = RateLimiter(Rate(rate=1, burst=1), max_buckets=2)
    limiter.charge("a", 1, now=0.0)
    limiter.charge("b", 1, now=0.0)
    limiter.charge("c", 1, now=5.0)  # a and b are full again by now: dropped
    assert set(limiter._buckets) == {"c"}


def test_parse_and_retry_after():
    assert Rate.parse("100/s") == Rate(100, 100)
    assert Rate.parse("2.5/s,burst=40") == Rate(2.5, 40)
    for bad in ("100", "100/min", "100/s,bucket=3", "0/s"):
        with pytest.raises(ValueError):
            Rate.parse(bad)
    assert (retry_after(0.01), retry_after(1.0), retry_after(1.2)) == ("1", "1", "2")
