"""The 40 upstream tests of Go's `machine_test.go` (docs/machine.md §8, row 3), plus a few more
worth porting.

One test function per Go test, named after it. Go tests that write `m.schema[...]` after the
initial `Set` are reproduced with `override_schema`, which does the same to the port's machine
(the order of the already active states depends on it).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from helpers.machines import (
    NO_RELS_NAMES,
    Recorder,
    active,
    capture_logs,
    fake_clock,
    joined,
    new_machine,
    new_no_rels,
    new_rels,
    no_rels_schema,
    track_transitions,
)

import amnode as am

EXECUTED = am.Result.EXECUTED
CANCELED = am.Result.CANCELED


def override_schema(m: am.Machine, **states: am.State) -> None:
    """Go's `m.schema["X"] = State{...}` after construction (tests only)."""
    for name, state in states.items():
        m._schema[name] = state
    m._reindex()
    m._resolver.new_schema()


# -------------------------------------------------------------- 1 - 5


def test_expose_all_state_names():
    m = new_no_rels(["A"])
    assert sorted(m.state_names) == ["A", "B", "C", "D", "Exception"]
    # default order is lexicographic
    assert m.state_names == NO_RELS_NAMES


def test_state_set():
    m = new_no_rels(["A"])
    assert m.set("B") == EXECUTED
    assert active(m) == {"B"}


def test_state_add():
    m = new_no_rels(["A"])
    assert m.add("B") == EXECUTED
    assert active(m) == {"A", "B"}


def test_state_remove():
    m = new_no_rels(["B", "C"])
    assert m.remove("C") == EXECUTED
    assert active(m) == {"B"}


def test_panic_when_state_is_unknown():
    m = new_no_rels(["A"])
    with pytest.raises(am.StateUnknownError, match="E not defined"):
        m.set(["E"])
    assert active(m) == {"A"}


# -------------------------------------------------------------- 6 - 11


def test_single_to_single_state_transition():
    m = new_no_rels(["A", "B"])
    history = track_transitions(m)
    m.set("C")
    assert active(m) == {"C"}
    history.assert_order(["AExit", "BExit", "CEnter", "AC", "BC", "CState"])
    history.assert_counts(1)


def test_single_to_multi_state_transition():
    m = new_no_rels(["A"])
    history = track_transitions(m)
    m.set(["B", "C"])
    assert active(m) == {"B", "C"}
    history.assert_order(["AExit", "BEnter", "CEnter", "AB", "AC", "BState", "CState"])
    history.assert_counts(1)


def test_multi_to_multi_state_transition():
    m = new_no_rels(["A", "B"])
    history = track_transitions(m)
    m.set(["D", "C"])
    assert active(m) == {"C", "D"}
    # the called order (D before C) is kept
    history.assert_order(["AExit", "BExit", "DEnter", "CEnter", "AD", "AC", "BD", "BC",
                          "CState"])
    history.assert_counts(1)


def test_multi_to_single_state_transition():
    m = new_no_rels(["A", "B"])
    history = track_transitions(m)
    m.set("C")
    assert active(m) == {"C"}
    history.assert_order(["AExit", "BExit", "CEnter", "AC", "BC", "AnyEnter", "AEnd", "BEnd",
                          "CState", "AnyState"])
    history.assert_counts(1)


def test_after_relation_when_entering():
    m = new_no_rels(["A", "B"])
    override_schema(m, C=am.State(after=["D"]), A=am.State(after=["B"]))
    history = track_transitions(m)
    m.set(["C", "D"])
    assert active(m) == {"C", "D"}
    history.assert_order(["DEnter", "CEnter", "AD", "AC"])
    history.assert_counts(1)


def test_after_relation_when_exiting():
    m = new_no_rels(["A", "B"])
    override_schema(m, C=am.State(after=["D"]), A=am.State(after=["B"]))
    history = track_transitions(m)
    m.set(["C", "D"])
    assert active(m) == {"C", "D"}
    history.assert_order(["BExit", "AExit", "AD", "AC", "BD", "BC"])
    history.assert_counts(1)


# -------------------------------------------------------------- 12 - 19


def test_require_order():
    m = new_machine({
        "A": am.State(auto=True, require=["B", "C"]),
        "B": am.State(auto=True, require=["D"]),
        "C": am.State(auto=True),
        "D": am.State(auto=True),
        "Start": am.State(),
    })
    history = track_transitions(m)
    m.add("Start")
    history.assert_order(["DState", "BState", "AState"])
    history.assert_order(["CState", "AState"])
    assert active(m) == {"A", "B", "C", "D", "Start"}
    for name, count in history.counter.items():
        # global handlers also run for the auto transition
        assert count == (2 if name.startswith("Any") else 1), name

    for order in (["A", "B", "C", "D"], ["C", "D", "A", "B"], ["D", "A", "C", "B"]):
        m.resolver.sort_states(order)
        assert order == ["D", "B", "C", "A"]


def test_remove_relation_simultaneous():
    m = new_machine({**no_rels_schema(), "C": am.State(remove=["D"])}, ["D"])
    lines = capture_logs(m)
    assert m.set(["C", "D"]) == CANCELED
    assert "[rel:remove] D by C" in joined(lines)
    assert active(m) == {"D"}


@pytest.mark.parametrize("how", ["set", "set both ways", "add", "add both ways"])
def test_remove_relation_cross_blocking(how):
    m = new_machine({**no_rels_schema(), "C": am.State(remove=["D"]),
                     "D": am.State(remove=["C"])}, ["D"])
    mutate = m.set if how.startswith("set") else m.add
    mutate("C")
    assert active(m) == {"C"}
    if how.endswith("both ways"):
        mutate("D")
        assert active(m) == {"D"}


def test_add_relation():
    m = new_machine({**no_rels_schema(), "A": am.State(remove=["D"]),
                     "C": am.State(add=["D"])})
    m.set("C")
    assert active(m) == {"C", "D"}, "state should be activated"
    m.set(["A", "C"])
    assert active(m) == {"A", "C"}, "D should be skipped if blocked at the same time"


def test_require_relation_when_required_isnt_active():
    m = new_machine({**no_rels_schema(), "C": am.State(require=["D"])}, ["A"])
    lines = capture_logs(m)
    m.set(["C", "A"])
    assert active(m) == {"A"}, "target state shouldn't be activated"
    assert "[reject] C(-D)" in joined(lines)


def test_remove_multi_implied():
    m = new_machine({**no_rels_schema(),
                     "A": am.State(multi=True, add=["B"], require=["C"]),
                     "B": am.State(require=["C"])}, ["A", "B", "C"])
    m.remove("B")
    assert active(m) == {"A", "C"}


def test_regression_remove_cross_blocked_by_implied():
    m = new_machine({"A": am.State(remove=["B"]), "B": am.State(remove=["A"]),
                     "Z": am.State(add=["B"])})
    m.set("Z")
    assert active(m) == {"Z", "B"}


def test_regression_implied_block_by_being_removed():
    m = new_machine({"Wet": am.State(require=["Water"]), "Dry": am.State(remove=["Wet"]),
                     "Water": am.State(add=["Wet"], remove=["Dry"])})
    m.set("Dry")
    m.set("Water")
    assert active(m) == {"Water", "Wet"}


# -------------------------------------------------------------- 20 - 23


def test_queue():
    m = new_no_rels(["A"])
    history = track_transitions(m)
    results = []

    class Handlers:
        def BEnter(self, e):
            results.append(e.machine.add("C"))

    m.bind_handlers(Handlers())
    m.set("B", {"t": 1})
    # nested Add(C) is the 3rd mutation (queue ticks count from 2)
    assert results == [4]
    for name, count in history.counter.items():
        assert count == (2 if name.startswith("Any") else 1), name
    assert active(m) == {"B", "C"}


def test_nested_mutation():
    m = new_no_rels(["B"])
    lens = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            mach.add("B")
            mach.add("B")
            mach.add("B")
            lens.append(mach.queue_len)
            mach.remove("B")
            lens.append(mach.queue_len)
            mach.remove("B")
            lens.append(mach.queue_len)

    m.bind_handlers(Handlers())
    m.add("A")
    assert lens == [1, 2, 2]
    assert active(m) == {"A"}


@pytest.mark.parametrize(("how", "log"), [
    ("set", r"\[cancel\] \(D\) by DEnter"),
    ("add", r"\[cancel\] \(D A\) by DEnter"),
])
def test_negotiation_cancel(how, log):
    m = new_no_rels(["A"])

    class Handlers:
        def DEnter(self, e):
            return False

    m.bind_handlers(Handlers())
    lines = capture_logs(m)
    res = m.set("D") if how == "set" else m.add("D")
    assert res == CANCELED
    assert active(m) == {"A"}
    assert re.search(log, joined(lines))


def test_negotiation_remove():
    m = new_no_rels(["A"])

    class Handlers:
        def AExit(self, e):
            return False

    m.bind_handlers(Handlers())
    lines = capture_logs(m)
    assert m.remove("A") == CANCELED
    assert active(m) == {"A"}
    assert "[cancel] () by AExit" in joined(lines)


# -------------------------------------------------------------- 24 - 29


def test_auto_states():
    m = new_machine({**no_rels_schema(), "B": am.State(auto=True, require=["A"])})
    lines = capture_logs(m)
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B"}
    assert "[auto] B" in joined(lines)


def test_partial_auto_states():
    m = new_machine({**no_rels_schema(), "A": am.State(auto=True),
                     "B": am.State(auto=True, after=["A"], require=["C"])})
    lines = capture_logs(m)
    assert m.add("D") == EXECUTED
    assert active(m) == {"A", "D"}
    assert "[auto_] +A" in joined(lines)


def test_partial_auto():
    m = new_machine({**no_rels_schema(), "C": am.State(auto=True, require=["B"]),
                     "D": am.State(auto=True, require=["B"])})
    lines = capture_logs(m)
    m.add("A")
    assert active(m) == {"A"}
    assert re.search(r"\[cancel:reject\] (C D|D C)", joined(lines))


def test_partial_auto_states_by_state_state():
    m = new_machine({"A": am.State(auto=True), "B": am.State(auto=True), "C": am.State()})
    called = []

    class Handlers:
        def CB(self, e):
            return False

        def BState(self, e):
            called.append("BState")

    m.bind_handlers(Handlers())
    m.add("C")
    assert active(m) == {"C", "A"}, "only C and the A auto state should be active"
    assert called == []


def test_partial_auto_states_by_enter():
    m = new_machine({"A": am.State(auto=True), "B": am.State(auto=True, add=["D"]),
                     "C": am.State(), "D": am.State()})
    called = []

    class Handlers:
        def BEnter(self, e):
            return False

        def BState(self, e):
            called.append("BState")

    m.bind_handlers(Handlers())
    m.add("C")
    assert active(m) == {"C", "A"}, "only A auto state should be active (no D)"
    assert called == []


def test_partial_auto_states_by_self_handler():
    m = new_machine({"A": am.State(auto=True), "B": am.State(auto=True), "C": am.State()})
    called = []

    class Handlers:
        def CC(self, e):
            # C is not Auto: rejecting the auto transition cancels it as a whole
            return False

        def BState(self, e):
            called.append("BState")

    m.bind_handlers(Handlers())
    m.add("C")
    assert active(m) == {"C"}, "only C, auto canceled by CC"
    assert called == []


# -------------------------------------------------------------- 30 - 35


def test_handler_state_state():
    m = new_no_rels(["A"])
    calls = []

    class Handlers:
        def AB(self, e):
            calls.append("AB")
            return True

        def BA(self, e):
            calls.append("BA")
            return True

    m.bind_handlers(Handlers())
    m.add("B")
    assert calls == ["AB"]


def test_self_handlers_order():
    m = new_no_rels(["A"])
    history = track_transitions(m)
    m.set(["A", "B"])
    assert history.order == ["BEnter", "AA", "AB", "AnyEnter", "BState", "AnyState"]


def test_self_handlers_cancellable():
    m = new_no_rels(["A"])
    history = track_transitions(m)

    class Handlers:
        def AA(self, e):
            e.args["AACounter"][0] += 1
            return False

    m.bind_handlers(Handlers())
    counter = [0]
    assert m.set(["A", "B"], {"AACounter": counter}) == CANCELED
    assert counter == [1], "AA call count"
    assert history.counter["AA"] == 1, "history handler called"
    assert history.counter["BEnter"] == 1
    assert history.counter["BState"] == 0
    assert active(m) == {"A"}


def test_self_handlers_for_all_no_change_states():
    m = new_no_rels(["A"])
    history = track_transitions(m)
    m.add("B")
    m.add("A")
    assert history.counter["AA"] == 2
    assert history.counter["BB"] == 1


def test_partial_negotiation_panic():
    m = new_no_rels(["A"])
    lines = capture_logs(m)

    class Handlers:
        def BEnter(self, e):
            raise RuntimeError("BEnter panic")

    m.bind_handlers(Handlers())
    assert m.add("B") == CANCELED
    assert active(m) == {"A", "Exception"}
    assert "[cancel] (B A) by recover" in joined(lines)
    assert isinstance(m.err, RuntimeError)


def test_partial_final_panic():
    m = new_no_rels()
    lines = capture_logs(m)

    class PanicHandlers:
        def BState(self, e):
            raise RuntimeError("BState panic")

    m.bind_handlers(PanicHandlers())
    assert m.add(["A", "B", "C"]) == CANCELED
    assert active(m) == {"A", "Exception"}
    log = joined(lines)
    assert "[error:add] A B C (BState" in log
    # the stack trace names the failing handler
    assert "Traceback" in log
    assert "in BState" in log
    assert "[cancel] (A B C) by recover" in log
    assert m.string_all() == "(A:1 Exception:1) [B:2 C:2 D:0]"


# -------------------------------------------------------------- 36 - 40


def test_time():
    m = new_machine({**no_rels_schema(), "B": am.State(multi=True)})
    order = ["A", "B", "C", "D"]
    steps = [
        (m.add, ["A", "B"], {"A", "B"}, [1, 1, 0, 0]),
        (m.add, ["A", "B"], {"A", "B"}, [1, 3, 0, 0]),
        (m.add, ["A", "B", "C"], {"A", "B", "C"}, [1, 5, 1, 0]),
        (m.set, ["D"], {"D"}, [2, 6, 2, 1]),
        (m.add, ["D", "C"], {"D", "C"}, [2, 6, 3, 1]),
        (m.remove, ["B", "C"], {"D"}, [2, 6, 4, 1]),
        (m.add, ["A", "B"], {"D", "A", "B"}, [3, 7, 4, 1]),
    ]
    for mutate, states, expected, ticks in steps:
        mutate(states)
        assert active(m) == expected
        assert m.time(order) == ticks

    before = m.time(order)
    m.add("C")
    now = m.time(order)
    assert active(m) == {"A", "B", "C", "D"}
    assert now == [3, 7, 5, 1]
    assert now.after(before, or_equal=True)
    assert not before.after(now, or_equal=True)
    assert m.time().sum() == 16


def test_state_ctx_basic():
    m = new_no_rels()
    m.add("A")
    ctx1 = m.state_ctx("A")
    assert not ctx1.cancelled
    m.remove("A")
    assert ctx1.cancelled

    # a ctx of an inactive state lives until the state activates
    ctx2 = m.state_ctx("B")
    assert not ctx2.cancelled
    m.add("B")
    assert ctx2.cancelled


async def test_when_ctx():
    m = new_machine({"A": am.State(), "B": am.State(), "C": am.State(),
                     "D": am.State(multi=True)})
    m.set(["A", "B"])
    # the Python form of a ctx: the awaiting task, cancelled by its owner
    waits = [
        asyncio.create_task(m.when_time({"A": 3, "B": 3})),
        asyncio.create_task(m.when_ticks("A", 2)),
        asyncio.create_task(m.when_time({"B": 3})),
        asyncio.create_task(m.when_args("B", {"foo": "bar"})),
        asyncio.create_task(m.when("C")),
    ]
    subs = m._subs
    assert subs.when_time
    assert subs.when_active
    assert subs.when_args

    for task in waits:
        task.cancel()
    done, pending = await asyncio.wait(waits, timeout=1)
    assert not pending
    assert all(t.cancelled() for t in done)
    # tick the machine, as Go does to notice its canceled ctxs
    for _ in range(3):
        m.add("D")
    # the cancelled waits are gone (Go needs another mutation to GC them)
    assert not subs.when_time
    assert not subs.when_active
    assert not subs.when_args

    # a wait that already passed returns at once
    await asyncio.wait_for(m.when_time({"A": 1}), 1)
    # unknown states are an error
    with pytest.raises(am.StateUnknownError):
        await m.when_time({"A": 1, "Unknown": 1})


async def test_when_queue():
    m = new_no_rels()
    seen = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            mach.add("B")
            mach.add("C")
            res = mach.add("D")
            assert am.is_queued(res)

            async def wait():
                await mach.when_queue(res, timeout=1)
                seen.append(set(mach.active_states()))

            seen.append(asyncio.get_running_loop().create_task(wait()))

    m.bind_handlers(Handlers())
    m.add("A")
    task = seen.pop(0)
    await asyncio.wait_for(task, 1)
    assert seen == [{"A", "B", "C", "D"}]


def test_can_add():
    m = new_rels()
    m.add_breakpoint("C", None, strict=True)
    assert m.can_add("A") == CANCELED, "can't add A (requires C)"
    assert m.can_add("C") == EXECUTED, "can add C"
    assert active(m) == set()
    assert m.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"


# ---------------------------------------------------------------------- also worth porting


async def test_add_err():
    m = new_no_rels()
    err = ValueError("test")
    m.add_err_state("B", err)
    m.add_err(err)
    assert m.is_active("B")
    assert m.is_err()
    assert m.err is err

    # an error raised in a task forked by the machine lands in Exception (PanicToErr)
    m = new_no_rels()

    async def boom():
        raise RuntimeError("test")

    m.fork(boom())
    await m.when_err(timeout=1)
    assert m.is_err()
    assert isinstance(m.err, RuntimeError)


def test_handler_timeout(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=0.05)
    m.handler_deadline = 1.0

    class Handlers:
        def AState(self, e):
            clock.advance(0.1)  # longer than the timeout

    m.bind_handlers(Handlers())
    assert m.add("A") == CANCELED
    assert m.is_inactive("A")
    assert not m.is_err()


def test_export_import():
    m1 = new_no_rels(["A"])
    m1.verify_states(m1.state_names)
    m1.remove("B")
    m1.add("A")
    m1.add("B")
    m1.add("C")
    m1_str = str(m1)
    serial = m1.export()

    m2 = new_no_rels()
    with pytest.raises(ValueError, match="ID mismatch"):
        m2.import_data(serial)
    m2.id = m1.id
    m2.import_data(serial)
    assert m2.states_verified, "imported states have a deterministic order"
    assert m2.id == m1.id
    assert str(m2) == m1_str
    assert m2.machine_tick == serial["machine_tick"] + 1


async def test_when_args():
    m = new_rels()
    task = asyncio.create_task(m.when_args("B", {"foo": "bar"}))
    m.add("B", {"foo": "foo"})
    await asyncio.sleep(0)
    assert not task.done(), "wrong args must not resolve"
    m.add("B", {"foo": "bar"})
    await asyncio.wait_for(task, 1)


async def test_when_time():
    m = new_no_rels(["A", "B"])
    # (A:1 B:1)
    w1 = asyncio.create_task(m.when_time({"A": 5, "B": 2}))
    w2 = asyncio.create_task(m.when_time({"A": 7, "B": 2}))
    w3 = asyncio.create_task(m.when_time({"A": 9, "B": 2}))

    m.remove(["A", "B"])
    m.add(["A", "B"])
    await asyncio.sleep(0)
    assert not w1.done(), "(A:3 B:3) is not enough"

    m.remove("A")
    m.add("A")
    await asyncio.wait_for(w1, 1)  # (A:5 B:3)
    assert not w2.done()

    for _ in range(2):
        m.remove("A")
        m.add("A")
    await asyncio.wait_for(asyncio.gather(w2, w3), 1)


async def test_chan_reuse():
    # Python has no channels to reuse: identical waits share one resolution instead
    m = new_no_rels(["A", "B"])
    waits = [
        m.when_time({"A": 5, "B": 2}), m.when_time({"A": 5, "B": 2}),
        m.when_args("B", {"foo": "bar"}), m.when_args("B", {"foo": "bar"}),
        m.when("C"), m.when("C"),
        m.when_not("A"), m.when_not("A"),
    ]
    tasks = [asyncio.create_task(w) for w in waits]
    m.remove("A")
    m.add("A")
    m.remove("A")  # A:4 and inactive
    m.add("A")  # A:5
    m.remove("B")
    m.add("B", {"foo": "bar"})  # BState runs only when B gets activated
    m.add("C")
    m.remove("A")
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


def test_queue_checkable():
    m = new_no_rels()
    asserts = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            mach.add("B")
            mach.add("C")
            mach.add("D")
            assert mach.queue_len == 3
            asserts.append(1)
            assert mach.is_queued(am.MutationType.ADD, ["C"]) == 1, "C should be queued"
            assert mach.will_be("C")
            asserts.append(2)
            assert mach.is_queued(am.MutationType.ADD, ["A"]) == -1
            assert not mach.will_be("A")
            asserts.append(3)
            assert not mach.will_be_removed("A")

    m.bind_handlers(Handlers())
    m.add("A")
    assert asserts == [1, 2, 3]
    assert not m.is_err()


def test_handler_args():
    m = new_no_rels(["A"])
    history = track_transitions(m)
    seen = []

    class Handlers:
        def BEnter(self, e):
            seen.append(("BEnter", e.args["foo"]))

        def AExit(self, e):
            seen.append(("AExit", e.args["foo"]))

        def CState(self, e):
            seen.append(("CState", e.args["foo"]))

    m.bind_handlers(Handlers())
    m.add("B", {"foo": "bar"})
    m.remove("A", {"foo": "bar"})
    m.set("C", {"foo": "bar"})
    assert seen == [("BEnter", "bar"), ("AExit", "bar"), ("CState", "bar")]
    assert all(c >= 1 for c in history.counter.values())


def test_ev_mutations():
    m = new_no_rels()
    sources = []

    class Handlers:
        def AState(self, e):
            e.machine.add("B", e.args, event=e)
            e.machine.remove("A", event=e)

        def BState(self, e):
            sources.append((e.machine_id, e.mutation.source))

    m.bind_handlers(Handlers())
    tx_ids = []
    m.bind_tracer(type("T", (am.Tracer,), {
        "transition_end": lambda self, t: tx_ids.append(t.id)})())
    m.add("A", {"t": 1})
    assert len(sources) == 1
    mach_id, source = sources[0]
    assert source is not None
    assert source.mach_id == mach_id == m.id
    assert source.tx_id == tx_ids[0], "the source is the transition of AState"
    assert active(m) == {"B"}


def test_verify_states():
    m = new_no_rels(["A", "B"])
    with pytest.raises(am.StateUnknownError):
        m.verify_states(["A", "A", "B", "Err"])
    with pytest.raises(am.StateUnknownError):
        m.verify_states(["A", "A"])
    with pytest.raises(am.StateUnknownError):
        m.verify_states(["A", "B"])
    assert not m.states_verified
    m.verify_states(["D", "C", "B", "A", "Exception"])
    assert m.states_verified
    assert m.state_names == ["D", "C", "B", "A", "Exception"]


def test_transition_to_active_state():
    m = new_no_rels(["A", "B"])
    history = track_transitions(m)
    m.set("A")
    assert active(m) == {"A"}
    assert history.counter["AExit"] == 0
    assert history.counter["AEnter"] == 0


def test_handler_negotiation_state_state():
    m = new_no_rels(["A"])

    class Handlers:
        def AB(self, e):
            return False

        def BA(self, e):
            return True

    m.bind_handlers(Handlers())
    assert m.add("B") == CANCELED


def test_get_relations_between():
    m = new_machine({
        "A": am.State(add=["B", "C"], after=["B"]),
        "B": am.State(remove=["C"], add=["A"]),
        "C": am.State(after=["D"]),
        "D": am.State(require=["A"]),
    })
    rels = m.resolver.relations_between
    assert rels("A", "B") == [am.Relation.ADD, am.Relation.AFTER]
    assert rels("B", "C") == [am.Relation.REMOVE]
    assert rels("C", "D") == [am.Relation.AFTER]
    assert rels("D", "A") == [am.Relation.REQUIRE]
    with pytest.raises(am.StateUnknownError):
        rels("Unknown1", "A")
    with pytest.raises(am.StateUnknownError):
        rels("A", "Unknown1")
    # Go TestGetStateRelations
    m2 = new_machine({"A": am.State(add=["B"], require=["B"], auto=True), "B": am.State()})
    assert m2.resolver.relations_of("A") == [am.Relation.ADD, am.Relation.REQUIRE]


async def test_when_query():
    m = new_no_rels(["A"])
    w1 = asyncio.create_task(m.when_query(lambda c: c["A"] > c["B"] * 4))
    w2 = asyncio.create_task(m.when_query(lambda c: c["A"] < c["B"]))
    m.add("B")  # 1, 1
    m.remove("A")  # 2, 1
    m.add("A")  # 3, 1
    m.remove("A")  # 4, 1
    await asyncio.sleep(0)
    assert not w1.done()
    assert not w2.done()
    m.add("A")  # 5, 1
    await asyncio.wait_for(w1, 1)
    assert not w2.done()
    w2.cancel()


def test_inspect():
    m = new_rels(["A", "C"])
    expected = (
        "1 A\n"
        "    |Tick     1\n"
        "    |Auto     true\n"
        "    |Require  C\n"
        "0 B\n"
        "    |Tick     0\n"
        "    |Multi    true\n"
        "    |Add      C\n"
        "1 C\n"
        "    |Tick     1\n"
        "    |After    D\n"
        "0 D\n"
        "    |Tick     0\n"
        "    |Add      C B\n"
        "0 Exception\n"
        "    |Tick     0\n"
        "    |Multi    true\n"
    )
    assert m.inspect(["A", "B", "C", "D", "Exception"]) == expected
    m.remove("C")  # () [A:2 B:0 C:2 D:0]
    m.add("B")  # (A:3 B:1 C:3)
    m.add("D")  # (A:3 B:1 C:3 D:1)
    m.verify_states(["Exception", "A", "B", "C", "D"])
    expected = (
        "0 Exception\n"
        "    |Tick     0\n"
        "    |Multi    true\n"
        "1 A\n"
        "    |Tick     3\n"
        "    |Auto     true\n"
        "    |Require  C\n"
        "1 B\n"
        "    |Tick     1\n"
        "    |Multi    true\n"
        "    |Add      C\n"
        "1 C\n"
        "    |Tick     3\n"
        "    |After    D\n"
        "1 D\n"
        "    |Tick     1\n"
        "    |Add      C B\n"
    )
    assert m.inspect() == expected


def test_string():
    m = new_no_rels(["A", "B"])
    m.verify_states(["A", "B", "C", "D", "Exception"])
    assert str(m) == "(A:1 B:1)"
    assert m.string_all() == "(A:1 B:1) [C:0 D:0 Exception:0]"


def test_set_states():
    m = new_no_rels(["A", "C"])
    schema = m.schema
    names = m.state_names
    schema["A"] = am.State(multi=True)
    schema["B"] = am.State(remove=["C"])
    schema["D"] = am.State(add=["E"])
    schema["E"] = am.State()
    names.append("E")
    rev = m.schema_version
    m.set_schema(schema, names)
    assert m.schema_version != rev
    m.set(["A", "B", "D"])
    assert active(m) == {"A", "B", "D", "E"}


def test_toggle():
    m = new_no_rels()
    m.toggle("A")
    assert m.is_active("A")
    m.toggle("A")
    assert not m.is_active("A")

    m = new_no_rels()
    m.toggle(["A"])
    assert m.is_active("A")
    m.toggle(["A"])
    assert not m.is_active("A")
    # all active -> remove, else add
    m.add("A")
    m.toggle(["A", "B"])
    assert active(m) == {"A", "B"}
    m.toggle(["A", "B"])
    assert active(m) == set()


async def test_disposed_no_op():
    m = new_no_rels()
    m.dispose()
    await m.when_disposed(timeout=1)

    assert m.set("A") == CANCELED
    assert m.add("A") == CANCELED
    assert m.remove("A") == CANCELED
    assert m.toggle("A") == CANCELED
    assert m.toggle(["A"]) == CANCELED
    assert m.add_err_state("A", ValueError("e")) == CANCELED
    assert m.add_err(ValueError("e")) == CANCELED
    assert m.can_add("A") == CANCELED
    assert m.queue() == []
    assert m.active_states() == []
    assert not m.is_active("A")
    assert str(m) == ""
    assert m.string_all() == ""
    assert m.inspect() == ""
    assert m.tick("A") == 0
    assert m.is_queued(am.MutationType.ADD, ["A"]) == -1
    assert m.eval(lambda: None, "test") is False
    assert m.state_ctx("A").cancelled
    m.log("ignored")
    for wait in (m.when("A"), m.when_not("A"), m.when_args("A", {}), m.when_time({"A": 1})):
        with pytest.raises(am.DisposedError):
            await wait
    await m.when_queue_ends(timeout=1)


async def test_when():
    m = new_no_rels()

    class Handlers:
        def AState(self, e):
            mach = e.machine

            async def later():
                await asyncio.sleep(0.01)
                mach.add("B")
                await asyncio.sleep(0.01)
                mach.add("C")

            mach.fork(later(), "A")

    m.bind_handlers(Handlers())
    m.set("A")
    await m.when(["B", "C"], timeout=1)
    assert active(m) == {"A", "B", "C"}


async def test_when2():
    m = new_no_rels()
    t1 = asyncio.create_task(m.when(["A", "B"], timeout=1))
    t2 = asyncio.create_task(m.when(["A", "B"], timeout=1))
    m.add(["A", "B"])
    await asyncio.gather(t1, t2)
    # already active: returns at once
    await m.when("A", timeout=0.01)


async def test_when_not():
    m = new_no_rels(["B", "C"])

    class Handlers:
        def AState(self, e):
            mach = e.machine

            async def later():
                await asyncio.sleep(0.01)
                mach.remove("B")
                await asyncio.sleep(0.01)
                mach.remove("C")

            mach.fork(later(), "A")

    m.bind_handlers(Handlers())
    m.add("A")
    await m.when_not(["B", "C"], timeout=1)
    await m.when_not("B", timeout=1)
    assert active(m) == {"A"}
    assert not m.is_err()


async def test_when_not2():
    m = new_no_rels(["A", "B"])
    t1 = asyncio.create_task(m.when_not(["A", "B"], timeout=1))
    t2 = asyncio.create_task(m.when_not(["A", "B"], timeout=1))
    m.remove(["A", "B"])
    await asyncio.gather(t1, t2)
    await m.when_not("C", timeout=0.01)


def test_recorder_ignores_non_handler_names():
    # BAny of Go's History struct is no handler name (AnyFoo/FooAny were removed in v0.10)
    m = new_no_rels(["B"])
    history = track_transitions(m)
    m.add(["A", "C", "D"])
    m.set("A")
    assert history.counter["BAny"] == 0
    assert isinstance(history, Recorder)
