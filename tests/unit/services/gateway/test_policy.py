"""Gateway policy with a hand-stepped clock: limits, token bucket, quota, decisions."""

from __future__ import annotations

import math
import threading

import pytest

from services.gateway.policy import (
    BodyTooLargeError,
    Decision,
    InvalidLimitsError,
    Limits,
    PolicyManager,
    Quota,
    TokenBucket,
    check_body_size,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- Limits


def test_limits_round_trip_through_a_dict() -> None:
    limits = Limits(rate_per_s=2.5, burst=7, quota=99, quota_window_s=60, max_batch=3)
    assert Limits.from_dict(limits.to_dict()) == limits
    assert Limits.from_dict({}) == Limits()


def test_limits_from_dict_ignores_unknown_keys() -> None:
    assert Limits.from_dict({"burst": 3, "from_a_newer_gateway": 1}) == Limits(burst=3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_per_s", 0),
        ("rate_per_s", -1.0),
        ("rate_per_s", math.inf),
        ("rate_per_s", math.nan),
        ("rate_per_s", "50"),
        ("burst", 0),
        ("burst", 1.5),
        ("burst", True),
        ("quota", 0),
        ("quota_window_s", 0.0),
        ("max_body_bytes", -5),
        ("max_batch", 0),
    ],
)
def test_bad_limits_are_refused_with_the_field_and_value(field: str, value: object) -> None:
    with pytest.raises(InvalidLimitsError, match=field) as info:
        Limits(**{field: value})  # type: ignore[arg-type]
    assert repr(value) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("limits", "largest", "bound"),
    [
        (Limits(burst=100, max_batch=1_000), 100, "burst"),
        (Limits(burst=100, quota=40, max_batch=1_000), 40, "quota"),
        (Limits(burst=100, quota=500, max_batch=20), 20, "max_batch"),
        (Limits(burst=50, quota=50, max_batch=50), 50, "max_batch"),
        (Limits(burst=50, quota=50, max_batch=60), 50, "burst"),
    ],
)
def test_largest_batch_is_what_the_policy_can_admit(
    limits: Limits, largest: int, bound: str
) -> None:
    assert (limits.largest_batch, limits.batch_bound) == (largest, bound)
    # the policy admits a batch of largest_cost at once, never one more
    policy = PolicyManager(clock=lambda: 0.0)
    assert policy.admit("bob", limits, cost=limits.largest_cost).allowed
    assert policy.admit("eve", limits, cost=limits.largest_cost + 1).reason == "too_large"


def test_limits_from_a_non_object_is_refused() -> None:
    with pytest.raises(InvalidLimitsError, match="JSON object"):
        Limits.from_dict([1, 2])  # type: ignore[arg-type]


def test_body_size_check() -> None:
    check_body_size(None, 10)
    check_body_size(10, 10)
    with pytest.raises(BodyTooLargeError, match="11 bytes") as info:
        check_body_size(11, 10)
    assert (info.value.size, info.value.limit) == (11, 10)


# -- TokenBucket


def test_bucket_admits_a_burst_then_refuses_with_the_time_to_the_next_token(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.1)
    assert bucket.take(3) == pytest.approx(0.3)
    assert bucket.remaining == 0


def test_bucket_refusal_takes_nothing(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=4, clock=clock)
    assert bucket.take(3) == 0.0
    assert bucket.take(2) == pytest.approx(1.0)  # 1 token left, 1 missing
    assert bucket.take(1) == 0.0  # the refused 2 did not take the last token


def test_bucket_refills_at_rate_up_to_burst(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2, burst=4, clock=clock)
    bucket.take(4)
    clock.advance(1.0)
    assert bucket.remaining == 2
    clock.advance(100.0)
    assert bucket.remaining == 4
    assert bucket.full


def test_bucket_check_takes_nothing(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    assert bucket.check(2) == 0.0
    assert bucket.remaining == 2


def test_bucket_cost_above_burst_never_succeeds(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    bucket.take(1)
    assert bucket.take(5) == pytest.approx(1.0)  # the time until full, documented
    clock.advance(1_000)
    assert bucket.take(5) > 0.0
    assert bucket.remaining == 3


def test_bucket_survives_a_clock_stepping_back(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.take(2)
    clock.advance(-10)
    assert bucket.remaining == 0  # no negative refill, no crash
    clock.advance(1)  # time counts again from where the clock now is
    assert bucket.remaining == 1


@pytest.mark.parametrize("cost", [-1, 1.5, True])
def test_a_bad_cost_is_refused(clock: FakeClock, cost: object) -> None:
    with pytest.raises(ValueError, match="cost"):
        TokenBucket(1, 1, clock).take(cost)  # type: ignore[arg-type]


def test_bucket_is_thread_safe() -> None:
    bucket = TokenBucket(rate=1e-9, burst=1_000)  # no refill during the test
    admitted = []

    def worker() -> None:
        admitted.append(sum(bucket.take() == 0.0 for _ in range(200)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1_000


# -- Quota


def test_quota_refuses_until_the_window_ends_then_resets(clock: FakeClock) -> None:
    quota = Quota(limit=3, window_s=60, clock=clock)
    assert [quota.take() for _ in range(3)] == [0.0] * 3
    clock.advance(20)
    assert quota.take() == pytest.approx(40.0)
    assert quota.remaining == 0
    clock.advance(40)
    assert quota.take(2) == 0.0
    assert quota.remaining == 1


def test_quota_windows_do_not_drift(clock: FakeClock) -> None:
    quota = Quota(limit=1, window_s=10, clock=clock)
    clock.advance(25)  # two windows passed: the current one ends at 30
    quota.take()
    assert quota.take() == pytest.approx(5.0)


def test_quota_refusal_counts_nothing(clock: FakeClock) -> None:
    quota = Quota(limit=5, window_s=10, clock=clock)
    quota.take(4)
    assert quota.take(2) > 0.0
    assert quota.take(1) == 0.0
    assert quota.check(1) > 0.0


# -- PolicyManager and Decision


def test_manager_burst_then_rate_refusal_with_retry_after(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    limits = Limits(rate_per_s=2, burst=3)
    decisions = [policy.admit("ana", limits) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert (refused.reason, refused.remaining, refused.limit) == ("rate", 0, 3)
    assert refused.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert policy.admit("ana", limits).allowed


def test_manager_keeps_clients_apart(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    limits = Limits(rate_per_s=1, burst=1)
    assert policy.admit("ana", limits).allowed
    assert not policy.admit("ana", limits).allowed
    assert policy.admit("bob", limits).allowed


def test_manager_quota_refusal_and_window_reset(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    limits = Limits(rate_per_s=1_000, burst=1_000, quota=2, quota_window_s=3_600)
    assert policy.admit("ana", limits).quota_remaining == 1
    assert policy.admit("ana", limits).quota_remaining == 0
    clock.advance(600)
    refused = policy.admit("ana", limits)
    assert (refused.allowed, refused.reason) == (False, "quota")
    assert refused.retry_after == pytest.approx(3_000)
    clock.advance(3_000)
    assert policy.admit("ana", limits).allowed


def test_a_quota_refusal_takes_no_tokens(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    limits = Limits(rate_per_s=1e-6, burst=5, quota=2)
    policy.admit("ana", limits, cost=2)
    assert policy.admit("ana", limits).reason == "quota"
    assert policy.admit("ana", limits).remaining == 3


def test_a_rate_refusal_counts_no_quota(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    limits = Limits(rate_per_s=1, burst=1, quota=10)
    policy.admit("ana", limits)
    assert policy.admit("ana", limits).reason == "rate"
    assert policy.admit("ana", limits).quota_remaining == 9


@pytest.mark.parametrize(
    ("limits", "cost"),
    [(Limits(burst=10), 11), (Limits(burst=100, quota=5), 6)],
)
def test_cost_above_burst_or_quota_is_too_large(
    clock: FakeClock, limits: Limits, cost: int
) -> None:
    policy = PolicyManager(clock=clock)
    decision = policy.admit("ana", limits, cost=cost)
    assert (decision.allowed, decision.reason, decision.retry_after) == (False, "too_large", 0.0)
    assert "Retry-After" not in decision.headers()
    assert policy.admit("ana", limits, cost=5).allowed  # the refusal took nothing


def test_changed_rate_rebuilds_the_bucket_but_keeps_the_quota(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    policy.admit("ana", Limits(burst=2, quota=10), cost=2)
    decision = policy.admit("ana", Limits(burst=5, quota=10))
    assert (decision.allowed, decision.limit, decision.remaining) == (True, 5, 4)
    assert decision.quota_remaining == 7
    assert policy.admit("ana", Limits(burst=5, quota=20)).quota_remaining == 19


def test_idle_clients_are_forgotten_unless_their_quota_window_is_in_use(
    clock: FakeClock,
) -> None:
    policy = PolicyManager(clock=clock, idle_s=3_600, sweep_every_s=60)
    policy.admit("idle", Limits())
    policy.admit("quota", Limits(quota=100, quota_window_s=86_400))
    clock.advance(3_601)
    policy.admit("fresh", Limits())
    assert len(policy) == 2  # "idle" forgotten; "quota" would get its day's quota back
    clock.advance(86_400)
    policy.admit("fresh", Limits())
    assert len(policy) == 1


def test_forget(clock: FakeClock) -> None:
    policy = PolicyManager(clock=clock)
    policy.admit("ana", Limits())
    policy.forget("ana")
    policy.forget("nobody")
    assert len(policy) == 0


def test_headers_when_admitted_and_refused() -> None:
    admitted = Decision(True, None, 0.0, limit=100, remaining=99)
    assert admitted.headers() == {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99"}
    for wait, header in [(0.01, "1"), (1.0, "1"), (1.2, "2"), (3_599.5, "3600")]:
        refused = Decision(False, "rate", wait, limit=100, remaining=0)
        assert refused.headers()["Retry-After"] == header
    quota = Decision(False, "quota", 10.0, limit=5, remaining=5, quota=10, quota_remaining=0)
    assert quota.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "5",
        "X-Quota-Limit": "10",
        "X-Quota-Remaining": "0",
        "Retry-After": "10",
    }


def test_manager_is_thread_safe() -> None:
    policy = PolicyManager()
    limits = Limits(rate_per_s=1e-9, burst=500, quota=300)
    admitted = []

    def worker() -> None:
        admitted.append(sum(policy.admit("ana", limits).allowed for _ in range(100)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 300
