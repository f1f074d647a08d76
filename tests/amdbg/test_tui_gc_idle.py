"""Full garbage collections are deferred to when the user rests (`amdbg.tui.gc_idle`): Python's
own thresholds come back when the app ends, and a deferred collection runs only when due and
after a quiet spell."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui.gc_idle import SAFETY_NET, IdleCollector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The process's thresholds, restored after the test whatever it did."""
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_start_defers_the_oldest_generation_and_stop_restores(
        thresholds: tuple[int, int, int]) -> None:
    c = IdleCollector(lambda: 0.0)
    c.start()
    t0, t1, t2 = thresholds
    assert gc.get_threshold() == (t0, t1, max(t2, SAFETY_NET))
    c.start()  # twice: still Python's thresholds saved, not ours
    c.stop()
    assert gc.get_threshold() == thresholds
    c.stop()
    assert gc.get_threshold() == thresholds


def test_stop_keeps_thresholds_someone_else_set(thresholds: tuple[int, int, int]) -> None:
    c = IdleCollector(lambda: 0.0)
    c.start()
    gc.set_threshold(500, 5, 5)
    c.stop()
    assert gc.get_threshold() == (500, 5, 5)


def test_tick_collects_only_when_due_and_idle(thresholds: tuple[int, int, int]) -> None:
    clock = Clock()
    last_key = [clock.now]
    c = IdleCollector(lambda: last_key[0], idle=0.5, clock=clock)
    assert not c.tick()  # not started: nothing deferred
    c.start()
    gc.collect()  # counts from zero
    assert not c.due() and not c.tick()
    for _ in range(thresholds[2]):  # what Python counts before a full collection
        gc.collect(1)
    assert c.due()
    clock.now += 0.1  # a key 0.1 s ago: not now
    assert not c.tick() and c.due()
    clock.now += 1.0
    assert c.tick() and c.collections == 1 and not c.due()
    c.stop()


async def test_the_app_defers_while_running_and_restores(
        orders: Path, thresholds: tuple[int, int, int]) -> None:
    with Session.open(orders) as session:
        app = ReplayApp(session, machine="order-1002", number=3)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("right", "right")
            await pilot.pause()
            assert gc.get_threshold()[2] == max(thresholds[2], SAFETY_NET)
            assert app.number == 5
    assert gc.get_threshold() == thresholds
