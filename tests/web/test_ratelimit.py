from __future__ import annotations

from web.security import RateLimiter


def test_bucket_allows_the_limit_then_refuses_with_a_wait() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.check("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("a", now=0.0)
    assert 0 < wait <= 20.0
    assert limiter.check("b", now=0.0) == 0.0  # per client


def test_bucket_refills_over_time() -> None:
    limiter = RateLimiter(per_minute=60)
    for _ in range(60):
        limiter.check("a", now=0.0)
    assert limiter.check("a", now=0.0) > 0
    assert limiter.check("a", now=2.0) == 0.0


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(per_minute=5, max_clients=100)
    for i in range(1000):
        limiter.check(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(limiter._buckets) == 100
