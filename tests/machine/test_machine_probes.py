"""Acceptance cases verified against the Go code with probes (docs/machine.md §8, row 4)."""

from __future__ import annotations

import asyncio

from helpers.machines import active, fake_clock, new_machine, new_no_rels

import amnode as am

EXECUTED = am.Result.EXECUTED
CANCELED = am.Result.CANCELED


def test_add_reaches_two_levels():
    m = new_machine({"A": am.State(add=["B"]), "B": am.State(add=["C"]),
                     "C": am.State(add=["D"]), "D": am.State()})
    assert m.add("A") == EXECUTED
    assert m.string_all() == "(A:1 B:1 C:1) [D:0 Exception:0]"


def test_set_active_state_drops_its_implied_state():
    m = new_machine({"A": am.State(add=["B"]), "B": am.State()})
    m.set(["A", "B"])
    assert m.set("A") == EXECUTED
    assert m.string_all() == "(A:1) [B:2 Exception:0]"


def test_add_both_sides_of_mutual_remove_is_canceled():
    m = new_machine({"A": am.State(remove=["B"]), "B": am.State(remove=["A"])})
    assert m.add(["A", "B"]) == CANCELED
    assert m.active_states() == []
    assert m.string_all() == "() [A:0 B:0 Exception:0]"


def test_results_of_mutations_from_a_handler():
    m = new_no_rels()
    results = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            results.append(mach.add("B"))
            results.append(mach.add("B"))  # duplicate of the previous one
            results.append(mach.add("B", {"x": 1}))  # args: never a duplicate
            results.append(mach.remove("C"))  # inactive, but the queue is not empty
            results.append(mach.add("D"))
            results.append(mach.can_add("B"))  # a check can't run now: Queued

    m.bind_handlers(Handlers())
    # the outer mutation has queue tick 2, so queued ones count from 3
    assert m.add("A") == EXECUTED
    assert results == [3, 0, 4, 5, 6, 2]
    assert results[5] == am.Result.QUEUED
    assert active(m) == {"A", "B", "D"}


def test_remove_inactive_from_handler_with_empty_queue():
    m = new_no_rels()
    results = []

    class Handlers:
        def AState(self, e):
            results.append(e.machine.remove("C"))
            results.append(e.machine.queue_len)

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [EXECUTED, 0]
    assert m.queue_tick == 2, "nothing was queued"


def test_implied_state_missing_its_requirement_is_skipped():
    m = new_machine({"A": am.State(), "B": am.State(require=["A"]), "C": am.State(add=["B"])})
    assert m.add("C") == EXECUTED
    assert str(m) == "(C:1)"


def test_can_add_multi_state_ignores_relations():
    m = new_machine({"B": am.State(), "M": am.State(multi=True, require=["B"])})
    assert m.can_add("M") == EXECUTED
    assert m.add("M") == CANCELED, "the real mutation is still rejected"
    assert m.is_inactive("M")


def test_multi_via_add_relation_does_not_re_enter():
    m = new_machine({"M": am.State(multi=True), "X": am.State(add=["M"])})
    calls = []

    class Handlers:
        def MEnter(self, e):
            calls.append("MEnter")

    m.add("M")
    m.bind_handlers(Handlers())
    tick = m.tick("M")
    assert m.add("X") == EXECUTED
    assert m.tick("M") == tick
    assert calls == []
    assert m.is_active(["M", "X"])


def test_add_err_three_times_and_invalid_errors():
    m = new_no_rels()
    for _ in range(3):
        assert m.add_err(ValueError("e")) == EXECUTED
    assert m.tick("Exception") == 5
    assert m.add_err(None) == CANCELED
    assert m.add_err(asyncio.CancelledError()) == CANCELED
    assert m.tick("Exception") == 5


def test_add_err_args():
    m = new_no_rels()
    seen = []

    class Handlers:
        def ExceptionState(self, e):
            seen.append(sorted(e.args))
            seen.append(e.args[am.ARG_EXCEPTION])

    m.bind_handlers(Handlers())
    err = ValueError("boom")
    m.add_err(err, {"foo": 1})
    assert seen[0] == ["_am__Exception", "foo"]
    assert am.ARG_EXCEPTION == "_am__Exception"
    assert isinstance(seen[1], am.AException)
    assert seen[1].err is err


def test_queue_limit():
    m = new_no_rels(queue_limit=2)
    results = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            for i in range(3):
                results.append(mach.add("B", {"i": i}))
            results.append(mach.add_err(ValueError("1")))
            results.append(mach.add_err(ValueError("2")))

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [3, 4, CANCELED, CANCELED, CANCELED]
    assert not m.is_err()


def test_final_handler_timeout(monkeypatch):
    monkeypatch.delenv("AMNODE_HANDLER_TIMEOUT", raising=False)  # the users' default
    clock = fake_clock(monkeypatch)
    m = new_no_rels()
    assert m.handler_timeout == 0.1, "default timeout is 100 ms"

    class Handlers:
        def AState(self, e):
            clock.advance(0.3)

    bid = m.bind_handlers(Handlers(), id="h1")
    assert m.add("A") == CANCELED
    assert m.string_all() == "() [A:2 B:0 C:0 D:0 Exception:0]"
    assert not m.is_err()
    assert len(m.err_internal) == 1
    err = m.err_internal[-1]
    assert isinstance(err, am.HandlerTimeoutError)
    assert str(err).startswith(f"handler timeout: AState from {bid}")


def test_handler_deadline_clears_queue_and_backs_off(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=0.05, handler_deadline=0.15, handler_backoff=60)
    queued = []

    class Handlers:
        def AState(self, e):
            queued.append(e.machine.add("B"))
            queued.append(e.machine.add("C"))
            clock.advance(0.2)

    m.bind_handlers(Handlers())
    assert m.add("A") == CANCELED
    assert queued == [3, 4]
    assert m.queue_len == 0
    assert m.is_inactive(["A", "B", "C"]), "the queue was cleared"
    assert m.tick("Exception") == 1
    assert isinstance(m.err, am.HandlerTimeoutError)
    assert m.backoff
    assert m.add("D") == CANCELED, "mutations are canceled during the backoff"
    assert m.remove("Exception") == CANCELED
    clock.advance(61)
    assert not m.backoff
    assert m.add("D") == EXECUTED


def test_healthcheck_does_not_trigger_auto_states():
    m = new_machine({"Healthcheck": am.State(), "Heartbeat": am.State(),
                     "Z": am.State(auto=True), "A": am.State()})
    assert m.add("Healthcheck") == EXECUTED
    assert m.is_inactive("Z")
    assert m.add("Heartbeat") == EXECUTED
    assert m.is_inactive("Z")
    # any other state-changing transition does
    m.add("A")
    assert m.is_active("Z")
