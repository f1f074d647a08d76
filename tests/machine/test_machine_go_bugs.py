"""docs/machine.md §6: the known Go quirks and bugs, and what the port does instead.

Each test is named after the §6 row it covers. Where the port deliberately keeps Go's
behaviour (#1, #13) the test pins Go's behaviour; elsewhere it pins the port's fix.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers.machines import (
    EventLog,
    active,
    capture_logs,
    fake_clock,
    joined,
    new_machine,
    new_no_rels,
)

import amnode as am

EXECUTED = am.Result.EXECUTED
CANCELED = am.Result.CANCELED


# -------------------------------------------------------------- 1


def test_bug01_add_reaches_exactly_two_levels():
    # kept from Go: parse_add runs twice, so only two levels of Add are followed
    m = new_machine({"A": am.State(add=["B"]), "B": am.State(add=["C"]),
                     "C": am.State(add=["D"]), "D": am.State()})
    m.add("A")
    assert active(m) == {"A", "B", "C"}
    assert m.is_inactive("D")


def test_bug01_second_level_implied_remove_not_applied():
    # kept from Go: a state implied at the second level (by the second parse_add) is added
    # after Remove relations were resolved, so its own Remove is not applied
    m = new_machine({"A": am.State(add=["Y"]), "Y": am.State(add=["Z"]),
                     "Z": am.State(remove=["B"]), "B": am.State()})
    m.add("B")
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B", "Y", "Z"}
    # one level deep it is applied
    m2 = new_machine({"A": am.State(add=["Z"]), "Z": am.State(remove=["B"]), "B": am.State()})
    m2.add("B")
    assert m2.add("A") == EXECUTED
    assert active(m2) == {"A", "Z"}


def test_bug01_active_multi_reapplies_its_add():
    # kept from Go: an active Multi state re-applies its Add on every add/set
    m = new_machine({"M": am.State(multi=True, add=["N"]), "N": am.State(), "X": am.State()})
    m.add("M")
    assert active(m) == {"M", "N"}
    m.remove("N")
    assert active(m) == {"M"}
    m.add("X")
    assert active(m) == {"M", "N", "X"}
    # a non-multi active state does not
    m2 = new_machine({"S": am.State(add=["N"]), "N": am.State(), "X": am.State()})
    m2.add("S")
    m2.remove("N")
    m2.add("X")
    assert active(m2) == {"S", "X"}


# -------------------------------------------------------------- 2


def test_bug02_dedupe_only_drops_the_previous_duplicate():
    m = new_no_rels()
    results = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            results.append(mach.add("B"))
            results.append(mach.remove("B"))
            results.append(mach.add("B"))  # Go drops it as a duplicate of the first one

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [3, 4, 5]
    assert active(m) == {"A", "B"}, "B ends active (Go: inactive)"


def test_bug02_consecutive_duplicates_are_still_dropped():
    m = new_no_rels()
    lines = capture_logs(m, am.LogLevel.OPS)
    results = []

    class Handlers:
        def AState(self, e):
            results.append(e.machine.add("B"))
            results.append(e.machine.add("B"))
            results.append(e.machine.add(["B", "C"]))
            results.append(e.machine.add(["B", "C"], {"k": 1}))

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [3, EXECUTED, 4, 5]
    assert "[queue:skipped] Duplicate detected for [add] B" in joined(lines)


def test_bug02_multi_states_are_never_deduped():
    m = new_machine({"A": am.State(), "M": am.State(multi=True)})
    results = []

    class Handlers:
        def AState(self, e):
            results.append(e.machine.add("M"))
            results.append(e.machine.add("M"))

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [3, 4]
    assert m.tick("M") == 3


# -------------------------------------------------------------- 3


async def test_bug03_when_queue_resolves_for_canceled_mutation():
    m = new_no_rels()

    class Handlers:
        def DEnter(self, e):
            return False

    m.bind_handlers(Handlers())
    tick = m.queue_tick + 1
    task = asyncio.create_task(m.when_queue(tick, timeout=1))
    assert not task.done()
    assert m.add("D") == CANCELED
    await asyncio.wait_for(task, 1)
    assert m.queue_tick == tick


async def test_bug03_when_queue_of_canceled_mutation_from_handler():
    m = new_no_rels()
    ticks = []

    class Handlers:
        def DEnter(self, e):
            return False

        def AState(self, e):
            res = e.machine.add("D")
            ticks.append(res)
            ticks.append(asyncio.get_running_loop().create_task(
                e.machine.when_queue(res, timeout=1)))

    m.bind_handlers(Handlers())
    m.add("A")
    res, task = ticks
    assert am.is_queued(res)
    await asyncio.wait_for(task, 1)
    assert m.is_inactive("D")


async def test_bug03_cancelled_when_queue_removes_its_waiter():
    m = new_no_rels()
    task = asyncio.create_task(m.when_queue(m.queue_tick + 10))
    assert len(m._subs.when_queue) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(m._subs.when_queue) == 0, "the cancelled waiter is removed at once"


async def test_bug03_timed_out_when_queue_removes_its_waiter():
    m = new_no_rels()
    with pytest.raises(TimeoutError):
        await m.when_queue(m.queue_tick + 10, timeout=0.01)
    assert len(m._subs.when_queue) == 0


async def test_bug03_cancelled_state_waits_are_removed_at_once():
    m = new_no_rels()
    tasks = [asyncio.create_task(w) for w in (
        m.when("A"), m.when(["A", "B"]), m.when_time({"A": 3}), m.when_args("A", {"x": 1}),
        m.when_query(lambda c: False))]
    m.add("C")
    tasks.append(asyncio.create_task(m.when_not("C")))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    subs = m._subs
    assert not subs.when_active
    assert not subs.when_inactive
    assert not subs.when_time
    assert not subs.when_args
    assert not subs.when_query


# -------------------------------------------------------------- 4


def test_bug04_auto_states_are_called_in_state_order():
    schema = {"Start": am.State(), "Z": am.State(auto=True), "Y": am.State(auto=True),
              "X": am.State(auto=True)}
    tracer = EventLog()
    m = new_machine(schema, tracers=[tracer])
    m.add("Start")
    autos = [c[1] for c in tracer.calls if c[0] == "queued" and c[1][3]]
    assert autos == [("add", ["X", "Y", "Z"], 0, True)]

    tracer2 = EventLog()
    m2 = new_machine(schema, tracers=[tracer2])
    m2.verify_states(["Z", "Start", "Y", "X", "Exception"])
    m2.add("Start")
    autos = [c[1] for c in tracer2.calls if c[0] == "queued" and c[1][3]]
    assert autos == [("add", ["Z", "Y", "X"], 0, True)]


def test_bug04_require_topology_ties_follow_state_order():
    schema = {"X": am.State(require=["Y"]), "Y": am.State(), "P": am.State(require=["Q"]),
              "Q": am.State()}
    for _ in range(5):
        m = new_machine(schema)
        order = ["X", "P", "Y", "Q"]
        m.resolver.sort_states(order)
        assert order == ["Q", "P", "Y", "X"]
    m = new_machine(schema)
    m.verify_states(["Y", "X", "Q", "P", "Exception"])
    order = ["X", "P", "Y", "Q"]
    m.resolver.sort_states(order)
    assert order == ["Y", "X", "Q", "P"]


# -------------------------------------------------------------- 5


def test_bug05_exit_veto_of_exiting_auto_state_cancels_auto_transition():
    m = new_machine({
        "A": am.State(auto=True),
        "B": am.State(auto=True, remove=["A"], require=["D"]),
        "C": am.State(),
        "D": am.State(),
    })
    vetoes = []

    class Handlers:
        def AExit(self, e):
            vetoes.append(e.transition.is_auto)
            return False

    m.bind_handlers(Handlers())
    m.add("C")
    assert active(m) == {"A", "C"}, "B was rejected (requires D), A activated"
    tracer = EventLog()
    m.bind_tracer(tracer)
    # the auto transition calls B, which removes the active Auto state A; AExit vetoes
    assert m.add("D") == EXECUTED
    assert vetoes == [True]
    assert active(m) == {"A", "C", "D"}
    assert not m.is_err()
    ends = [c[1] for c in tracer.calls if c[0] == "end"]
    assert ends == [(["D"], True, True), (["B"], False, True)]
    # the machine keeps working
    assert m.remove("C") == EXECUTED
    assert active(m) == {"A", "D"}


# -------------------------------------------------------------- 6


def test_bug06_exception_in_exception_final_handler_does_not_nest():
    m = new_no_rels()
    calls = []

    class Handlers:
        def ExceptionState(self, e):
            calls.append("ExceptionState")
            raise RuntimeError("broken exception handler")

        def AState(self, e):
            calls.append("AState")

    m.bind_handlers(Handlers())
    first = ValueError("first")
    res = m.add_err(first)
    assert res in (EXECUTED, CANCELED)
    assert calls == ["ExceptionState"], "no nested Exception transition"
    assert m.queue_len == 0
    assert isinstance(m.err, RuntimeError)
    # later mutations and handlers still work
    assert m.add("A") == EXECUTED
    assert calls == ["ExceptionState", "AState"]
    assert m.is_active("A")


def test_bug06_exception_in_exception_negotiation_handler_does_not_nest():
    m = new_no_rels()
    calls = []

    class Handlers:
        def ExceptionEnter(self, e):
            calls.append("ExceptionEnter")
            raise RuntimeError("broken exception handler")

        def AState(self, e):
            calls.append("AState")

    m.bind_handlers(Handlers())
    assert m.add_err(ValueError("first")) == CANCELED
    assert calls == ["ExceptionEnter"]
    assert not m.is_err()
    assert m.add("A") == EXECUTED
    assert calls == ["ExceptionEnter", "AState"]


def test_bug06_error_state_handler_failing_later_mutations_work():
    m = new_machine({"A": am.State(), "ErrX": am.State(require=["Exception"])})
    calls = []

    class Handlers:
        def ErrXState(self, e):
            calls.append("ErrXState")
            raise RuntimeError("boom")

        def AState(self, e):
            calls.append("AState")

    m.bind_handlers(Handlers())
    m.add_err_state("ErrX", ValueError("x"))
    assert calls == ["ErrXState"]
    assert m.add("A") == EXECUTED
    assert calls == ["ErrXState", "AState"]


# -------------------------------------------------------------- 7


def test_bug07_import_with_machine_restored():
    schema = {"A": am.State(), "B": am.State(), "MachineRestored": am.State()}
    m1 = new_machine(schema, ["A"], id="restore-me")
    m1.verify_states(m1.state_names)
    data = m1.export()
    m2 = new_machine(schema, id="restore-me")
    calls = []

    class Handlers:
        def MachineRestoredState(self, e):
            calls.append(sorted(e.machine.active_states()))

    m2.bind_handlers(Handlers())
    m2.import_data(data)
    assert m2.is_active(["A", "MachineRestored"])
    assert calls == [["A", "MachineRestored"]]
    assert m2.machine_tick == 1


# -------------------------------------------------------------- 8


async def test_bug08_when_time_after_set_schema():
    m = new_no_rels()
    schema = m.schema
    schema["E"] = am.State()
    m.set_schema(schema, [*m.state_names, "E"])
    task = asyncio.create_task(m.when_time({"A": 1, "E": 1}))
    m.add("A")
    await asyncio.sleep(0)
    assert not task.done()
    m.add("E")
    await asyncio.wait_for(task, 1)
    t2 = asyncio.create_task(m.when_ticks("E", 1))
    m.remove("E")
    await asyncio.wait_for(t2, 1)


async def test_bug08_when_query_after_set_schema():
    m = new_no_rels()
    schema = m.schema
    schema["E"] = am.State()
    m.set_schema(schema, [*m.state_names, "E"])
    task = asyncio.create_task(m.when_query(lambda c: c.get("E", 0) >= 1))
    m.add("E")
    await asyncio.wait_for(task, 1)


# -------------------------------------------------------------- 9


def test_bug09_handler_deadline_and_backoff_params_are_honoured(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=0.02, handler_deadline=0.06, handler_backoff=5.0)
    assert (m.handler_timeout, m.handler_deadline, m.handler_backoff) == (0.02, 0.06, 5.0)

    class Handlers:
        def AState(self, e):
            clock.advance(0.1)

    m.bind_handlers(Handlers())
    assert m.add("A") == CANCELED
    assert m.backoff, "past the (constructor) deadline: back off"
    assert m.is_err()
    assert m.add("B") == CANCELED


def test_bug09_default_timeout_is_100ms_and_no_backoff_below_deadline(monkeypatch):
    monkeypatch.delenv("AMNODE_HANDLER_TIMEOUT", raising=False)  # the users' default
    clock = fake_clock(monkeypatch)
    m = new_no_rels()
    assert m.handler_timeout == 0.1
    assert m.handler_deadline == 10.0
    assert m.handler_backoff == 3.0
    m2 = new_no_rels(handler_timeout=0.02, handler_deadline=1.0)

    class Handlers:
        def AState(self, e):
            clock.advance(0.05)

    m2.bind_handlers(Handlers())
    assert m2.add("A") == CANCELED
    assert not m2.backoff, "a timeout below the deadline does not back off"
    assert not m2.is_err()
    assert m2.add("B") == EXECUTED


# -------------------------------------------------------------- 10


def test_bug10_event_is_check_set_during_can_add():
    m = new_no_rels()
    seen = []

    class Handlers:
        def AEnter(self, e):
            seen.append(("AEnter", e.is_check, e.mutation.is_check))

        def AState(self, e):
            seen.append(("AState", e.is_check))

    m.bind_handlers(Handlers())
    assert m.can_add("A") == EXECUTED
    assert seen == [("AEnter", True, True)]
    assert m.is_inactive("A")
    m.add("A")
    assert seen[1:] == [("AEnter", False, False), ("AState", False)]


def test_bug10_parse_states_keeps_order():
    m = new_no_rels()
    assert m.parse_states(["D", "A", "Unknown", "C", "A", "B"]) == ["D", "A", "C", "B"]
    assert m.parse_states("B") == ["B"]
    assert m.parse_states("Nope") == []


# -------------------------------------------------------------- 11


def test_bug11_final_rollback_does_not_retick_multi():
    m = new_machine({"M": am.State(multi=True), "B": am.State()})
    m.add("M")
    assert m.tick("M") == 1

    class Handlers:
        def BState(self, e):
            raise RuntimeError("B failed")

    m.bind_handlers(Handlers())
    assert m.add(["M", "B"]) == CANCELED
    # M re-entered once (+2); the rollback of B does not tick M again (Go: M:5)
    assert m.tick("M") == 3
    assert m.tick("B") == 2
    assert active(m) == {"M", "Exception"}


def test_bug11_final_rollback_keeps_exits_exited():
    m = new_no_rels(["A", "B", "C"])

    class Handlers:
        def BEnd(self, e):
            raise RuntimeError("BEnd failed")

    m.bind_handlers(Handlers())
    assert m.remove(["A", "B", "C"]) == CANCELED
    assert m.string_all() == "(Exception:1) [A:2 B:2 C:2 D:0]"


# -------------------------------------------------------------- 12


def test_bug12_time_after_before_are_vector_clock_comparisons():
    t1 = am.Time([1, 2, 3])
    t2 = am.Time([1, 3, 3])
    # Go: After requires every tick to be greater; vector clocks need only one
    assert t2.after(t1)
    assert t1.before(t2)
    assert not t1.after(t2)
    assert not t2.before(t1)
    # equal times
    assert not t1.after(am.Time([1, 2, 3]))
    assert t1.after(am.Time([1, 2, 3]), or_equal=True)
    assert t1.before(am.Time([1, 2, 3]), or_equal=True)
    # concurrent (incomparable) times
    t3 = am.Time([2, 1, 3])
    assert not t3.after(t1) and not t3.before(t1)
    assert not t3.after(t1, or_equal=True) and not t3.before(t1, or_equal=True)


def test_bug12_machine_times_compare():
    m = new_no_rels()
    before = m.time()
    m.add("A")
    after = m.time()
    assert after.after(before)
    assert before.before(after)
    assert not after.after(after)


# -------------------------------------------------------------- 13


def test_bug13_auto_log_label_and_state_state_handlers_on_removal():
    m = new_machine({"A": am.State(), "B": am.State(), "C": am.State(),
                     "X": am.State(auto=True)})
    lines = capture_logs(m, am.LogLevel.CHANGES)
    m.add("A")
    log = joined(lines)
    assert "[auto_] +X" in log
    assert "[state:auto]" not in log

    # FooBar runs for removals and for pairs where neither side changes
    m2 = new_no_rels(["A", "B", "C"])
    order = []

    def recorder(name):
        return lambda self, e: order.append(name)

    names = ["BExit", "CA", "AC", "BC", "BA", "CB", "AB", "AnyEnter", "BEnd", "AnyState",
             "AnyB", "BAny"]
    Rec = type("Rec", (), {n: recorder(n) for n in names})
    m2.bind_handlers(Rec())
    m2.remove("B")
    # pairs run in (states before) x (targets) order; before = [A B C], targets = [A C]
    assert m2.active_states() == ["A", "C"]
    assert order == ["BExit", "AC", "BA", "BC", "CA", "AnyEnter", "BEnd", "AnyState"]
    assert "AnyB" not in order and "BAny" not in order


# -------------------------------------------------------------- §6, other differences


def test_verify_states_dedupes_before_length_check():
    m = new_no_rels()
    # Go: len([A A B C]) == 4 passes the check and D is lost
    with pytest.raises(am.StateUnknownError, match="missing: D"):
        m.verify_states(["A", "A", "B", "C", "Exception"])
    assert not m.states_verified
    assert m.state_names == ["A", "B", "C", "D", "Exception"]
    m.verify_states(["B", "A", "B", "D", "C", "Exception"])
    assert m.state_names == ["B", "A", "D", "C", "Exception"]


def test_verify_states_appends_auto_added_exception():
    m = new_no_rels()
    m.verify_states(["D", "C", "B", "A"])
    assert m.state_names == ["D", "C", "B", "A", "Exception"]
    # a user-defined Exception must be listed
    m2 = new_machine({"A": am.State(), "Exception": am.State()})
    with pytest.raises(am.StateUnknownError, match="Exception"):
        m2.verify_states(["A"])


# ---------------------------------------- 2, 15-17 (found by differential testing)


def test_bug02_duplicates_compare_called_states_as_sets():
    # Go: add([A, B]) and add([B, A]) are the same mutation
    m = new_no_rels()
    results = []

    class Handlers:
        def AState(self, e):
            results.append(e.machine.add(["B", "C"]))
            results.append(e.machine.add(["C", "B"]))
            results.append(e.machine.add(["C", "B", "D"]))
            results.append(e.machine.add(["C", "B"]))

    m.bind_handlers(Handlers())
    m.add("A")
    assert results == [3, EXECUTED, 4, 5]
    assert active(m) == {"A", "B", "C", "D"}


def test_bug15_self_veto_of_auto_state_does_not_skip_the_next_target():
    # Go deletes the vetoing Auto state from the targets while iterating them and skips the
    # next target's XX handler; every active target's XX runs here
    m = new_machine({"A": am.State(auto=True), "B": am.State(auto=True),
                     "C": am.State(auto=True, require=["D"]), "D": am.State()})
    m.add(["A", "B"])
    calls = []

    class Handlers:
        def AA(self, e):
            calls.append(("AA", e.transition.is_auto))
            return not e.transition.is_auto

        def BB(self, e):
            calls.append(("BB", e.transition.is_auto))

    m.bind_handlers(Handlers())
    assert m.add("D") == EXECUTED
    # add D, then the Auto transition add C (A and B are active targets)
    assert calls == [("AA", False), ("BB", False), ("AA", True), ("BB", True)]
    assert active(m) == {"A", "B", "C", "D"}


def test_bug16_duplicate_relation_entries_are_removed_with_every_copy():
    # Go's parse removes only the first copy: B would stay in Remove
    m = new_machine({"A": am.State(add=["B"], remove=["B", "B"], after=["B", "B"]),
                     "B": am.State()})
    assert m.schema["A"].add == ["B"]
    assert m.schema["A"].remove == []
    assert m.schema["A"].after == ["B"]
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B"}


def test_bug17_unknown_state_in_add_and_remove_is_dropped():
    # Go keeps an Add target that is also in Remove even when the schema lacks it (Exception,
    # which the machine adds afterwards, then gets added along with A)
    m = new_machine({"A": am.State(add=["Exception", "B"], remove=["Exception"]), "B": {}})
    assert m.schema["A"].add == ["B"]
    assert m.schema["A"].remove == []
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B"}
