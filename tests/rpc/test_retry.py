"""RetryPolicy / Backoff: delays, caps, tries and the time budget, on a fake clock."""

from __future__ import annotations

import random

import pytest

from amnode.rpc.retry import CALL_RETRY, CONN_RETRY, Backoff, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_delays_grow_by_factor_up_to_the_cap() -> None:
    p = RetryPolicy(first_delay=0.1, factor=2, max_delay=0.5, max_tries=6, timeout=None, jitter=0)
    assert list(p.delays()) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])


def test_no_cap_and_constant_delays() -> None:
    assert RetryPolicy(first_delay=1, factor=3, max_delay=None, max_tries=4, jitter=0,
                       timeout=None).base_delay(3) == 27
    assert list(RetryPolicy(first_delay=0.5, factor=1, max_tries=3, jitter=0).delays()) == [
        0.5, 0.5, 0.5]


def test_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(first_delay=1, factor=1, max_tries=200, jitter=0.2, timeout=None)
    ds = list(p.delays(random.Random(7)))
    assert len(ds) == 200 and all(0.8 <= d <= 1.2 for d in ds) and len(set(ds)) > 1


def test_backoff_stops_after_max_tries_and_resets() -> None:
    clock = FakeClock()
    b = RetryPolicy(first_delay=1, factor=2, max_tries=3, timeout=None, jitter=0).backoff(clock)
    assert [b.next_delay() for _ in range(4)] == [1, 2, 4, None]
    assert b.exhausted
    b.reset()
    assert not b.exhausted and b.next_delay() == 1


def test_backoff_respects_the_time_budget() -> None:
    clock = FakeClock()
    b = Backoff(RetryPolicy(first_delay=4, factor=1, max_tries=0, timeout=10, jitter=0), clock)
    assert b.next_delay() == 4
    clock.now += 8
    assert b.next_delay() == 2          # shortened to end with the budget
    clock.now += 2
    assert b.exhausted and b.next_delay() is None


def test_unlimited_tries() -> None:
    b = RetryPolicy(first_delay=0, max_tries=0, timeout=None).backoff(FakeClock())
    assert all(b.next_delay() == 0 for _ in range(10_000)) and not b.exhausted


def test_invalid_policies_are_refused() -> None:
    for bad in ({"first_delay": -1}, {"factor": 0.5}, {"max_tries": -1}, {"jitter": 1},
                {"timeout": -1}, {"max_delay": -2}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_scaled_and_with() -> None:
    p = CONN_RETRY.scaled(10)
    assert (p.first_delay, p.max_delay, p.timeout) == (10, 100, 3000)
    assert CALL_RETRY.with_(max_tries=3).max_tries == 3 and CALL_RETRY.max_tries == 15


async def test_run_retries_until_success_and_reraises_when_exhausted() -> None:
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("down")
        return "up"

    p = RetryPolicy(first_delay=0.1, factor=2, max_tries=5, jitter=0, timeout=None)
    assert await p.run(flaky, retry_on=ConnectionError, sleep=sleep) == "up"
    assert slept == pytest.approx([0.1, 0.2])

    async def dead() -> None:
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError, match="still down"):
        await p.with_(max_tries=2).run(dead, retry_on=ConnectionError, sleep=sleep)

    async def wrong() -> None:
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        await p.run(wrong, retry_on=ConnectionError, sleep=sleep)


# --- the aRPC client's policies ---

def test_legacy_keywords_map_onto_a_policy() -> None:
    from amnode.rpc.retry import legacy_policy

    p = legacy_policy(CALL_RETRY, tries=3, delay=0.5, backoff=4, timeout=9)
    assert (p.max_tries, p.first_delay, p.factor, p.max_delay, p.timeout) == (3, 0.5, 2, 4, 9)
    constant = legacy_policy(CONN_RETRY, backoff=0)
    assert (constant.factor, constant.max_delay) == (1, None)
    assert constant.first_delay == CONN_RETRY.first_delay
    # 0 retries: exhausted at once (max_tries=0 would mean unlimited)
    assert legacy_policy(CALL_RETRY, tries=0).backoff(FakeClock()).next_delay() is None
    # conn_retry_timeout=0 always meant "no time limit", call_retry_timeout=0 "no retry"
    assert legacy_policy(CONN_RETRY, timeout=0, zero_timeout_is_none=True).timeout is None
    assert legacy_policy(CALL_RETRY, timeout=0).timeout == 0
    assert legacy_policy(CALL_RETRY) is CALL_RETRY


def test_client_takes_policies_and_old_keywords() -> None:
    from amnode.rpc import Client

    default = Client("127.0.0.1:1", id="policies-default")
    assert default.call_retry == CALL_RETRY and default.conn_retry == CONN_RETRY
    mine = RetryPolicy(first_delay=0.2, factor=3, max_tries=4, timeout=None)
    c = Client("127.0.0.1:1", id="policies", call_retry=mine, conn_retries=7,
               conn_retry_backoff=0)
    assert c.call_retry is mine
    assert (c.conn_retry.max_tries, c.conn_retry.factor) == (7, 1)
    assert c.conn_retry.first_delay == CONN_RETRY.first_delay
    for client in (default, c):
        client.dispose()


async def test_client_reconnects_as_its_policy_says() -> None:
    """A dead address: the first dial plus `max_tries` re-dials, then `ConnRetryFailed`."""
    from helpers.rpc import new_source

    from amnode.rpc import Client, Server

    server = Server(new_source())
    await server.start()
    addr = server.addr
    await server.stop(dispose=True)
    client = Client(addr, id="policy-gives-up",
                    conn_retry=RetryPolicy(first_delay=0.001, factor=1, max_tries=3,
                                           timeout=None))
    try:
        await client.start()
        await client.mach.when("ConnRetryFailed", timeout=30)
        assert client.mach.tick("Connecting") == 8, "first dial + 3 re-dials, each on and off"
        assert client.mach.is_inactive(["Start", "RetryingConn"])
    finally:
        await client.stop(dispose=True)
