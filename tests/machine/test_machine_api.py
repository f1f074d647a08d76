"""The machine's public API beyond the upstream tests: waits, contexts, forks, async handlers,
threads, tracers, logging, export/import, disposal, parents, tags, groups, schema helpers,
handler bindings and handler timeouts (docs/machine.md §2-§5)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from helpers.machines import (
    EventLog,
    active,
    capture_logs,
    fake_clock,
    joined,
    new_machine,
    new_no_rels,
    new_rels,
    no_rels_schema,
)

import amnode as am

EXECUTED = am.Result.EXECUTED
CANCELED = am.Result.CANCELED


# ============================================================== results


def test_results_and_helpers():
    assert am.Result.EXECUTED == 0 == am.EXECUTED
    assert am.Result.CANCELED == 1 == am.CANCELED
    assert am.Result.QUEUED == 2
    assert not am.is_queued(EXECUTED)
    assert not am.is_queued(CANCELED)
    assert am.is_queued(2) and am.is_queued(17)
    assert [am.result_str(r) for r in (0, 1, 2, 9)] == ["executed", "canceled", "queued",
                                                           "queued"]
    assert str(am.Result.CANCELED) == "canceled"
    assert str(am.MutationType.REMOVE) == "remove"


def test_mutations_accept_one_name_or_a_list():
    m = new_no_rels()
    assert m.add("A") == EXECUTED
    assert m.add(["B", "C"]) == EXECUTED
    assert m.add(("D",)) == EXECUTED
    assert m.remove(["A", "B"]) == EXECUTED
    assert active(m) == {"C", "D"}
    assert m.set(["A"]) == EXECUTED
    assert active(m) == {"A"}
    assert m.add1 is not None and m.remove1 is not None
    assert m.add1("B") == EXECUTED
    assert m.remove1("B") == EXECUTED


def test_remove_inactive_from_outside_is_a_real_noop_transition():
    m = new_no_rels(["A"])
    tracer = EventLog()
    m.bind_tracer(tracer)
    assert m.remove("B") == EXECUTED
    assert ("end", (["B"], True, True)) in tracer.calls
    assert active(m) == {"A"}


def test_add_active_non_multi_does_not_tick():
    m = new_no_rels(["A"])
    assert m.add("A") == EXECUTED
    assert m.tick("A") == 1


def test_args_dict_is_shared_by_all_handlers():
    m = new_no_rels(["A"])
    seen = []

    class Handlers:
        def AExit(self, e):
            e.args["seen"] = "AExit"
            seen.append(e.args)

        def BEnter(self, e):
            seen.append(e.args)

        def BState(self, e):
            seen.append(e.args)

    m.bind_handlers(Handlers())
    args = {"k": 1}
    m.set("B", args)
    assert all(a is args for a in seen)
    assert args == {"k": 1, "seen": "AExit"}
    # None becomes an empty dict
    m.bind_tracer(tracer := am.LastTxTracer())
    m.add("C")
    assert tracer.last.args == {}


def test_queries():
    m = new_no_rels(["A", "B"])
    lines = capture_logs(m, am.LogLevel.DECISIONS)
    assert m.is_active(["A", "B"])
    assert not m.is_active(["A", "B", "C"])
    assert not m.is_active("Unknown")
    assert "[is] state Unknown not found" in joined(lines)
    assert not m.is_inactive(["A", "B"])
    assert not m.is_inactive(["A", "C"])
    assert m.is_inactive("D")
    with pytest.raises(am.StateUnknownError):
        m.is_inactive("Unknown")
    assert m.any_active(["A", "B"], ["C"])
    assert m.any_active(["A", "B", "C"], ["A"])
    assert m.any_active("C", "A")
    assert not m.any_active(["C"])
    assert m.tick("A") == 1
    with pytest.raises(am.StateUnknownError):
        m.tick("Unknown")
    assert m.clock() == {"A": 1, "B": 1, "C": 0, "D": 0, "Exception": 0}
    assert m.clock(["B", "A"]) == {"B": 1, "A": 1}
    assert m.time() == [1, 1, 0, 0, 0]
    assert m.time(["C", "A"]) == [0, 1]
    assert isinstance(m.time(), am.Time)
    c_a, c_all = m.clock("A"), m.clock()
    t_a, t_all = m.time("A"), m.time()
    assert m.is_clock(c_all) and m.is_time(t_all) and m.is_time(t_a, "A")
    m.remove("A")
    assert not m.is_clock(c_a) and not m.is_clock(c_all)
    assert not m.is_time(t_a, "A") and not m.is_time(t_all)
    assert m.was_clock(c_all) and m.was_time(t_all)
    c_a["A"] += 1
    assert m.is_clock(c_a)
    assert not m.was_clock({"A": 3})
    assert m.has(["A", "B"]) and m.has("Exception") and not m.has(["A", "Err"])
    assert m.index("C") == 2 and m.index("Nope") == -1
    assert m.is_err() is False
    assert m.active_states(["B", "C"]) == ["B"]


def test_active_states_order_is_last_target_order():
    m = new_machine({"A": am.State(after=["B"]), "B": am.State(), "C": am.State()})
    m.add(["A", "B"])
    assert m.active_states() == ["B", "A"]
    assert str(m) == "(A:1 B:1)", "str() uses the state order"
    m.add("C")
    assert m.active_states() == ["C", "B", "A"]


def test_exception_can_be_removed():
    m = new_no_rels()
    m.add_err(ValueError("x"))
    assert m.is_err()
    assert m.remove("Exception") == EXECUTED
    assert not m.is_err()


def test_user_defined_exception_is_not_multi():
    m = new_machine({"A": am.State(), "Exception": am.State()})
    m.add_err(ValueError("1"))
    m.add_err(ValueError("2"))
    assert m.tick("Exception") == 1
    m2 = new_no_rels()
    assert m2.schema["Exception"].multi


def test_on_change_on_error_and_breakpoints():
    m = new_no_rels()
    changes = []
    errors = []
    bps = []
    m.on_change(lambda mach, before, after: changes.append((list(before), list(after))))
    m.on_error(lambda mach, err: errors.append(err))
    m.breakpoint_hook = lambda mach, added, removed: bps.append((added, removed))
    m.add_breakpoint(["B"], None)
    lines = capture_logs(m, am.LogLevel.CHANGES)

    class Handlers:
        def CEnter(self, e):
            return False

    m.bind_handlers(Handlers())
    m.add("A")
    m.add("C")  # canceled: on_change still runs
    assert changes == [([0, 0, 0, 0, 0], [1, 0, 0, 0, 0]), ([1, 0, 0, 0, 0], [1, 0, 0, 0, 0])]
    m.add("B")
    assert bps == [(["B"], [])]
    assert "[breakpoint] Machine.breakpoint" in joined(lines)
    err = ValueError("x")
    m.add_err(err)
    assert errors == [err]
    # checks don't call on_change
    n = len(changes)
    m.can_add("D")
    assert len(changes) == n


def test_is_queued_positions():
    m = new_no_rels()
    found = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            mach.add("B")
            mach.remove("C", {"x": 1})
            mach.add(["C", "D"])
            found.append(mach.is_queued(am.MutationType.ADD, "B", position="first"))
            found.append(mach.is_queued(am.MutationType.ADD, "C", position="first"))
            found.append(mach.is_queued(am.MutationType.ADD, "C", position="last"))
            found.append(mach.is_queued(am.MutationType.ADD, "C", strict=True))
            found.append(mach.is_queued(am.MutationType.REMOVE, "C"))
            found.append(mach.is_queued(am.MutationType.REMOVE, "C", without_args=True))
            found.append(mach.will_be_removed("C"))
            found.append(mach.will_be(["C", "D"], position="last"))

    m.bind_handlers(Handlers())
    m.add("A")
    assert found == [0, -1, 2, -1, 1, -1, True, True]


# ============================================================== waits


async def test_wait_timeouts_raise_timeout_error():
    m = new_no_rels()
    with pytest.raises(TimeoutError):
        await m.when("A", timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_time({"A": 1}, timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_args("A", {"x": 1}, timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_query(lambda c: False, timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_err(timeout=0.01)
    m.add("A")
    with pytest.raises(TimeoutError):
        await m.when_not("A", timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_next_active("A", timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_queue(m.queue_tick + 1, timeout=0.01)
    with pytest.raises(TimeoutError):
        await m.when_disposed(timeout=0.01)
    # timed out waits are gone
    assert not m._subs.when_active and not m._subs.when_time and not m._subs.when_args


async def test_waits_resolve_at_once_when_satisfied():
    m = new_no_rels(["A"])
    await m.when("A", timeout=0.01)
    await m.when_not("B", timeout=0.01)
    await m.when_time({"A": 1}, timeout=0.01)
    await m.when_queue(m.queue_tick, timeout=0.01)
    await m.when_queue_ends(timeout=0.01)
    m.add_err(ValueError("x"))
    await m.when_err(timeout=0.01)


async def test_waits_raise_disposed_error_when_disposed_while_waiting():
    m = new_no_rels()
    waits = [m.when("A"), m.when_time({"A": 1}),
             m.when_args("A", {}), m.when_query(lambda c: False), m.when_queue(99),
             m.when_ticks("B", 2)]
    tasks = [asyncio.create_task(w) for w in waits]
    m.dispose()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)
    assert all(isinstance(r, am.DisposedError) for r in results), results
    await m.when_disposed(timeout=1)


async def test_when_next_active_and_ticks():
    m = new_machine({"A": am.State(), "M": am.State(multi=True)})
    t1 = asyncio.create_task(m.when_next_active("A"))
    m.add("A")
    await asyncio.wait_for(t1, 1)
    # active: the next activation is 2 ticks away
    t2 = asyncio.create_task(m.when_next_active("A"))
    m.remove("A")
    await asyncio.sleep(0)
    assert not t2.done()
    m.add("A")
    await asyncio.wait_for(t2, 1)
    # a Multi re-entry counts
    m.add("M")
    t3 = asyncio.create_task(m.when_next_active("M"))
    m.add("M")
    await asyncio.wait_for(t3, 1)
    t4 = asyncio.create_task(m.when_ticks("M", 4))
    m.add("M")
    await asyncio.sleep(0)
    assert not t4.done()
    m.add("M")
    await asyncio.wait_for(t4, 1)


async def test_when_args_fires_without_handlers_and_for_multi_reentry():
    m = new_machine({"A": am.State(), "M": am.State(multi=True)})
    t = asyncio.create_task(m.when_args("M", {"id": 2}))
    m.add("M", {"id": 1})
    await asyncio.sleep(0)
    assert not t.done()
    m.add("M", {"id": 2, "extra": True})
    await asyncio.wait_for(t, 1)
    # not fired for an already-active non-multi state
    m.add("A")
    t2 = asyncio.create_task(m.when_args("A", {"id": 3}))
    m.add("A", {"id": 3})
    await asyncio.sleep(0)
    assert not t2.done()
    t2.cancel()


async def test_when_queue_ends_during_a_drain():
    m = new_no_rels()
    got = []

    class Handlers:
        def AState(self, e):
            mach = e.machine
            got.append(asyncio.get_running_loop().create_task(mach.when_queue_ends(timeout=1)))
            mach.add("B")

    m.bind_handlers(Handlers())
    m.add("A")
    await asyncio.wait_for(got[0], 1)
    assert active(m) == {"A", "B"}


async def test_when_and_when_not_for_auto_states():
    m = new_machine({"A": am.State(), "X": am.State(auto=True, require=["A"])})
    t = asyncio.create_task(m.when("X"))
    m.add("A")
    await asyncio.wait_for(t, 1)
    t2 = asyncio.create_task(m.when_not("X"))
    m.remove("A")
    await asyncio.wait_for(t2, 1)


async def test_when_query_predicate_error_fails_only_its_waiter():
    m = new_no_rels()

    def bad(clock):
        raise ValueError("bad predicate")

    t = asyncio.create_task(m.when_query(bad))
    assert m.add("A") == EXECUTED
    with pytest.raises(ValueError, match="bad predicate"):
        await asyncio.wait_for(t, 1)


# ============================================================== state ctx


async def test_state_ctx():
    m = new_machine({"A": am.State(), "M": am.State(multi=True)})
    ctx = m.state_ctx("A")
    assert ctx is m.state_ctx("A"), "one shared ctx per state until it fires"
    assert not ctx.cancelled
    waiter = asyncio.create_task(ctx.wait())
    assert not waiter.done()
    m.add("A")
    assert ctx.cancelled
    await asyncio.wait_for(waiter, 1)
    await ctx.wait()  # returns at once
    ctx2 = m.state_ctx("A")
    assert ctx2 is not ctx and not ctx2.cancelled
    assert ctx2.state == "A" and ctx2.tick == 1
    # a Multi re-entry cancels the ctx
    m.add("M")
    ctx_m = m.state_ctx("M")
    m.add("M")
    assert ctx_m.cancelled
    # a canceled transition does not
    m.remove("A", None)
    ctx3 = m.state_ctx("A")

    class Handlers:
        def AEnter(self, e):
            return False

    m.bind_handlers(Handlers())
    assert m.add("A") == CANCELED
    assert not ctx3.cancelled
    # dispose cancels every ctx
    m.dispose()
    assert ctx3.cancelled
    assert m.state_ctx("A").cancelled
    with pytest.raises(am.StateUnknownError):
        m.state_ctx("Nope")


# ============================================================== fork / async


async def test_fork_bound_to_state_ctx():
    m = new_no_rels(["A"])
    started = asyncio.Event()

    async def work():
        started.set()
        await asyncio.sleep(10)

    task = m.fork(work(), "A")
    await asyncio.wait_for(started.wait(), 1)
    m.remove("A")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    # forking on an already cancelled ctx cancels at once
    ctx = m.state_ctx("B")
    m.add("B")
    assert ctx.cancelled


async def test_fork_without_state_lives_until_dispose():
    m = new_no_rels()
    started = asyncio.Event()

    async def work():
        started.set()
        await asyncio.sleep(10)

    task = m.fork(work())
    await asyncio.wait_for(started.wait(), 1)
    m.add("A")
    m.remove("A")
    assert not task.done()
    m.dispose()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)


async def test_fork_exception_becomes_exception_state():
    m = new_no_rels(["A"])

    async def work():
        raise KeyError("forked")

    m.fork(work(), "A")
    await m.when_err(timeout=1)
    assert isinstance(m.err, KeyError)


async def test_async_final_handler_runs_as_task_bound_to_state():
    m = new_no_rels()
    events = []
    release = asyncio.Event()

    class Handlers:
        async def AState(self, e):
            events.append(("AState", e.machine.transition is None))
            e.machine.add("B")
            await release.wait()
            events.append("never")

        async def CState(self, e):
            await asyncio.sleep(0)
            e.machine.add("D", {"from": "CState"})

        async def AnyState(self, e):
            events.append("AnyState")

    m.bind_handlers(Handlers())
    assert m.add("A") == EXECUTED
    assert events == [], "async handlers run after the transition"
    await m.when("B", timeout=1)
    # the task ran outside the drain, so its add executed immediately
    assert events[0] == ("AState", True)
    a_tasks = [t for t in asyncio.all_tasks()
               if t.get_coro().__qualname__.endswith("AState")]
    assert len(a_tasks) == 1 and not a_tasks[0].done()
    m.remove("A")  # cancels the AState task
    release.set()
    await asyncio.wait_for(asyncio.gather(*a_tasks, return_exceptions=True), 1)
    assert a_tasks[0].cancelled()
    assert "never" not in events
    m.add("C")
    await m.when("D", timeout=1)


async def test_async_final_handler_exception_adds_exception():
    m = new_no_rels()

    class Handlers:
        async def AState(self, e):
            raise ValueError("async boom")

    m.bind_handlers(Handlers())
    assert m.add("A") == EXECUTED
    await m.when_err(timeout=1)
    assert isinstance(m.err, ValueError)
    assert m.is_active("A")


def test_async_final_handler_without_loop_is_an_error():
    m = new_no_rels()

    class Handlers:
        async def AState(self, e):
            pass

    m.bind_handlers(Handlers())
    assert m.add("A") == CANCELED
    assert m.is_err()
    assert isinstance(m.err, RuntimeError)
    assert "running asyncio event loop" in str(m.err)


def test_async_negotiation_handler_is_a_bind_error():
    m = new_no_rels()

    class Handlers:
        async def AEnter(self, e):
            return True

    with pytest.raises(am.HandlerBindError, match="AEnter"):
        m.bind_handlers(Handlers())

    class PairHandlers:
        async def AB(self, e):
            return True

    # HandlerBindError is also a TypeError
    with pytest.raises(TypeError, match="AB"):
        m.bind_handlers(PairHandlers())
    assert m.handlers() == []


# ============================================================== threads


async def test_wrong_thread_and_threadsafe_proxy():
    m = new_no_rels()
    errors = []
    results = []

    def worker():
        try:
            m.add("A")
        except am.WrongThreadError as err:
            errors.append(err)
        for call in (lambda: m.remove("A"), lambda: m.set("A"), lambda: m.can_add("A"),
                     lambda: m.add_err(ValueError("x"))):
            try:
                call()
            except am.WrongThreadError as err:
                errors.append(err)
        # reads are safe
        results.append(m.is_active("A"))
        results.append(m.threadsafe.add("A").result(timeout=1))
        results.append(m.threadsafe.add(["B", "C"], {"x": 1}).result(timeout=1))
        results.append(m.threadsafe.remove("C").result(timeout=1))
        results.append(m.threadsafe.toggle("D").result(timeout=1))
        results.append(m.threadsafe.set(["A", "B", "D"]).result(timeout=1))
        results.append(m.threadsafe.eval(lambda: results.append("eval"), "worker")
                       .result(timeout=1))
        results.append(m.eval(lambda: results.append("eval2"), "worker2"))
        results.append(m.threadsafe.add_err(ValueError("t")).result(timeout=1))

    await asyncio.to_thread(worker)
    assert len(errors) == 5
    assert "threadsafe" in str(errors[0])
    assert results == [False, EXECUTED, EXECUTED, EXECUTED, EXECUTED, EXECUTED, "eval", True,
                       "eval2", True, EXECUTED]
    assert active(m) == {"A", "B", "D", "Exception"}


async def test_waits_from_another_thread_raise():
    m = new_no_rels()

    def worker():
        return asyncio.run(m.when("A", timeout=0.1))

    with pytest.raises(am.WrongThreadError):
        await asyncio.to_thread(worker)


def test_threadsafe_needs_an_owner_loop():
    m = new_no_rels()  # created outside any loop
    out = []

    def worker():
        try:
            m.threadsafe.add("A")
        except am.WrongThreadError as err:
            out.append(err)

    t = threading.Thread(target=worker)
    t.start()
    t.join(1)
    assert len(out) == 1
    # on the owner thread the proxy runs at once
    assert m.threadsafe.add("A").result(timeout=0) == EXECUTED


async def test_bind_thread():
    m = await asyncio.to_thread(new_no_rels)  # owned by a finished worker thread
    with pytest.raises(am.WrongThreadError):
        m.add("A")
    m.bind_thread()
    assert m.add("A") == EXECUTED
    await m.when("A", timeout=0.1)


# ============================================================== eval


def test_eval():
    m = new_no_rels()
    out = []
    assert m.eval(lambda: out.append(1), "test") is True
    assert out == [1]
    with pytest.raises(ValueError):
        m.eval(lambda: None, "")


def test_eval_nested_and_from_handler():
    m = new_no_rels(detect_eval=False)
    out = []

    def outer():
        out.append("outer")
        out.append(m.eval(lambda: out.append("inner"), "nested"))

    assert m.eval(outer, "outer") is True
    assert out == ["outer", False]
    assert not m.is_err(), "nested evals are allowed to fail quietly"

    m2 = new_no_rels(detect_eval=True)

    class Handlers:
        def AState(self, e):
            out.append(e.machine.eval(lambda: out.append("direct"), "handler"))

    m2.bind_handlers(Handlers())
    m2.add("A")
    assert out[-1] is False
    assert m2.is_err()
    assert isinstance(m2.err, am.NestedEvalError)


def test_eval_exception_becomes_exception_state():
    m = new_no_rels()

    def bad():
        raise ValueError("eval failed")

    assert m.eval(bad, "bad") is True
    assert m.is_err()
    assert isinstance(m.err, ValueError)


# ============================================================== tracers


def test_tracer_hook_order():
    # Go's hook order for Add1(A) where AState does Add1(B) and C{Auto, Require B}
    # (docs/machine.md §8, row 5)
    tracer = EventLog()
    m = am.Machine({"A": am.State(), "B": am.State(), "C": am.State(auto=True, require=["B"])},
                   tracers=[tracer])

    class Handlers:
        def AEnter(self, e):
            pass

        def AState(self, e):
            e.machine.add("B")

    m.bind_handlers(Handlers(), id="h1")
    tracer.calls.clear()
    m.add("A")
    assert tracer.calls == [
        ("queued", ("add", ["A"], 2, False)),
        ("init", (["A"], ["A"], True)),
        ("start", (["A"], True)),
        ("handler_start", ("h1", "AEnter")),
        ("handler_end", ("h1", "AEnter")),
        ("finals", (["A"], [1, 0, 0, 0])),
        ("handler_start", ("h1", "AState")),
        ("queued", ("add", ["B"], 3, False)),
        ("handler_end", ("h1", "AState")),
        ("queued", ("add", ["C"], 0, True)),
        ("end", (["A"], True, True)),
        ("init", (["C"], ["A"], False)),
        ("start", (["C"], False)),
        ("end", (["C"], False, True)),
        # targets are sorted by the Require topology; A is not in it, so it goes first
        ("init", (["B"], ["A", "B"], True)),
        ("start", (["B"], True)),
        ("finals", (["B"], [1, 1, 0, 0])),
        ("queued", ("add", ["C"], 0, True)),
        ("end", (["B"], True, True)),
        ("init", (["C"], ["A", "B", "C"], True)),
        ("start", (["C"], True)),
        ("finals", (["C"], [1, 1, 1, 0])),
        ("end", (["C"], True, True)),
        ("queue_end", None),
    ]


def test_tracer_data_per_hook():
    seen = {}

    class T(am.Tracer):
        def transition_init(self, t):
            seen["init"] = (t.accepted, list(t.targets), list(t.enters), list(t.exits),
                            list(t.time_before), list(t.time_after), t.completed,
                            list(t.states_before), str(t.mutation.type), t.mutation.args)

        def transition_start(self, t):
            seen["start"] = (t.machine.is_active("B"),)

        def transition_finals(self, t):
            seen["finals"] = (t.machine.is_active("B"), list(t.time_after), t.completed)

        def transition_end(self, t):
            seen["end"] = (t.completed, t.accepted, list(t.time_after), t.queue_len,
                           [e.text for e in t.log_entries],
                           [e.text for e in t.pre_log_entries])

    m = new_machine({"A": am.State(), "B": am.State(add=["C"]), "C": am.State()}, ["A"],
                    log_level=am.LogLevel.CHANGES, logger=lambda lvl, line: None)
    m.log_id = False
    m.bind_tracer(T())
    m.log("before")
    m.set("B", {"k": 1})
    names = m.state_names  # A B C Exception
    assert names == ["A", "B", "C", "Exception"]
    assert seen["init"] == (True, ["B", "C"], ["B", "C"], ["A"], [1, 0, 0, 0], [2, 1, 1, 0],
                            False, ["A"], "set", {"k": 1})
    assert seen["start"] == (False,)
    assert seen["finals"] == (True, [2, 1, 1, 0], False)
    assert seen["end"] == (True, True, [2, 1, 1, 0], 0, ["[state] +B +C -A"], ["[exter] before"])


def test_tracer_sees_canceled_and_check_transitions():
    tracer = EventLog()
    m = new_rels(tracers=[tracer])
    tracer.calls.clear()
    assert m.can_add("A") == CANCELED
    assert tracer.names() == ["queued", "init", "start", "end", "queue_end"]
    assert tracer.calls[1] == ("init", (["A"], [], False))


def test_steps_only_collected_when_a_tracer_asks():
    plain = am.LastTxTracer()
    m = new_no_rels(["A"], tracers=[plain])

    class Handlers:
        def DEnter(self, e):
            pass

    m.bind_handlers(Handlers())
    m.set("D")
    assert plain.last.steps == []

    m2 = new_no_rels(["A"])
    steps_tracer = EventLog(collect_steps=True)
    last = am.LastTxTracer()
    m2.bind_tracer(steps_tracer)
    m2.bind_tracer(last)
    m2.bind_handlers(Handlers())
    m2.set("D")
    tx = last.last
    assert [str(s) for s in tx.steps] == ["called D", "activate D", "deactivate A",
                                          "handler DEnter"]
    assert tx.steps[0].type == am.StepType.CALLED
    handler = tx.steps[-1]
    assert handler.type == am.StepType.HANDLER and handler.handler == "DEnter"
    assert handler.is_enter and not handler.is_final
    assert str(tx) == (f"tx#{tx.id}\n[set] D\n- called D\n- activate D\n- deactivate A\n"
                       "- handler DEnter")
    # checks need collect_check_steps
    m2.can_add("B")
    assert last.last.is_check
    assert last.last.steps == []
    steps_tracer.collect_check_steps = True
    m2.detach_tracer(steps_tracer)
    m2.bind_tracer(steps_tracer)
    m2.can_add("B")
    assert [str(s) for s in last.last.steps][:2] == ["called B", "activate B"]
    # detaching the last collecting tracer stops collection
    m2.detach_tracer(steps_tracer)
    m2.add("C")
    assert last.last.steps == []


def test_relation_steps():
    last = am.LastTxTracer()
    last.collect_steps = True
    m = new_machine({"A": am.State(require=["B"]), "B": am.State(), "C": am.State(remove=["B"]),
                     "D": am.State(add=["B"])}, tracers=[last])
    m.add(["D"])
    rels = [(s.from_state, s.relation, s.to_state) for s in last.last.steps
            if s.type == am.StepType.RELATION]
    assert ("D", am.Relation.ADD, "B") in rels
    m.add("C")
    rels = [(s.from_state, s.relation, s.to_state) for s in last.last.steps
            if s.type == am.StepType.RELATION]
    assert ("C", am.Relation.REMOVE, "B") in rels
    m.add("A")
    assert any(s.type == am.StepType.RELATION and s.relation == am.Relation.REQUIRE
               for s in last.last.steps)


def test_a_state_reached_twice_is_activated_once_in_the_steps():
    """Issue 14 ("activate Busy" twice in one transition): Add is applied in two passes (like
    Go), and each pass recorded `activate Busy` again; two states adding Busy, or Busy called
    and added, recorded it once more per relation. Each step is now recorded once."""
    last = am.LastTxTracer()
    last.collect_steps = True
    m = new_machine({"A": am.State(add=["Busy"]), "B": am.State(add=["Busy"]),
                     "Busy": am.State()}, tracers=[last])

    def steps() -> list[str]:
        return [str(s) for s in last.last.steps]

    m.add("A")
    assert steps() == ["called A", "activate A", "A add Busy", "activate Busy"]
    m.set([])
    m.add(["A", "B"])
    assert steps() == ["called A", "called B", "activate A", "activate B", "A add Busy",
                       "activate Busy", "B add Busy"]
    m.set([])
    m.add(["Busy", "A"])
    assert steps() == ["called Busy", "called A", "activate Busy", "activate A", "A add Busy"]
    assert m.active_states() == ["Busy", "A"]
    # the same when the resolution is replayed from the cache
    m.set([])
    m.add(["Busy", "A"])
    assert steps() == ["called Busy", "called A", "activate Busy", "activate A", "A add Busy"]


def test_tracer_bind_detach_and_machine_hooks():
    m = new_no_rels()
    t = EventLog()
    lines = capture_logs(m, am.LogLevel.OPS)
    m.bind_tracer(t)
    assert f"[tracers] bind {t.tracer_id}" in joined(lines)
    assert m.tracers == [t]
    m.detach_tracer(t)
    assert m.tracers == []
    with pytest.raises(KeyError, match="tracer not bound"):
        m.detach_tracer(t)
    with pytest.raises(TypeError):
        m.bind_tracer(object())
    # machine_init only for tracers passed to the constructor
    t2 = EventLog()
    m2 = am.Machine({"A": {}}, id="m2", tracers=[t2])
    assert t2.calls[0] == ("machine_init", "m2")
    m2.verify_states(["A", "Exception"])
    assert t2.calls[-1] == ("verify_states", ["A", "Exception"])
    schema = m2.schema
    schema["B"] = am.State()
    m2.set_schema(schema, ["A", "B", "Exception"])
    assert t2.names()[-2:] == ["schema_change", "verify_states"]
    assert t2.calls[-2] == ("schema_change", ["A", "Exception"])
    m2.dispose()
    assert t2.calls[-1] == ("machine_dispose", "m2")
    assert am.Tracer().tracer_id == "Tracer"


# ============================================================== logging


FOO_SCHEMA = {"Foo": am.State(), "Bar": am.State(auto=True), "Baz": am.State(auto=True)}

# (level, line) of Go's logging example (docs/machine.md §8, row 6), in execution order;
# [auto_] differs at L5
FOO_LINES = [
    (3, "[queue:add] Foo"),
    (3, "[add] Foo"),
    (2, "[state] +Foo"),
    (3, "[handler:0] FooState"),
    (3, "[auto] Bar Baz"),
    (3, "[prepend:add] Bar Baz"),
    (3, "[postpone] queue running (1 item)"),
    (4, "[add:auto] Bar Baz"),
    (3, "[handler:0] BarEnter"),
    (3, "[cancel] (Bar Baz Foo) by BarEnter"),
    (2, "[auto_] +Baz"),
]


class FooHandlers:
    def FooState(self, e):
        pass

    def BarEnter(self, e):
        return False


def _foo_machine(level):
    lines = []
    m = am.Machine(FOO_SCHEMA, log_level=level, logger=lambda lvl, line: lines.append(
        (int(lvl), line)))
    m.log_id = False
    m.bind_handlers(FooHandlers(), id="h")
    lines.clear()
    m.add("Foo", {"id": "abc"})
    assert active(m) == {"Foo", "Baz"}
    return lines


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_log_levels_select_lines(level):
    lines = _foo_machine(am.LogLevel(level))
    assert lines == [(lvl, text) for lvl, text in FOO_LINES if lvl <= level]


def test_log_level_everything():
    lines = [text for _, text in _foo_machine(am.LogLevel.EVERYTHING)]
    # every handler name tried is logged, also missing ones
    for text in ("[handle:h] FooEnter", "[handle:h] AnyEnter", "[handle:h] FooState",
                 "[handle:h] BarEnter", "[handle:h] BazEnter", "[handle:h] FooFoo"):
        assert text in lines
    # unchanged states are listed too
    assert "[auto_] +Baz Foo" in lines
    assert "[auto_] +Baz" not in lines


def test_log_level_everything_logs_handler_end():
    lines = [text for _, text in _foo_machine(am.LogLevel.EVERYTHING)]
    assert "[handler:end] FooState from h" in lines
    assert lines.index("[handler:0] FooState") < lines.index("[handler:end] FooState from h")


def test_log_level_strings_and_env(monkeypatch):
    assert [str(lvl) for lvl in am.LogLevel] == ["nothing", "external", "changes", "ops",
                                                 "decisions", "everything"]
    assert am.Machine({"A": {}}).log_level == am.LogLevel.NOTHING
    monkeypatch.setenv("AMNODE_LOG", "3")
    assert am.Machine({"A": {}}).log_level == am.LogLevel.OPS
    m = am.Machine({"A": {}}, log_level=am.LogLevel.CHANGES)
    assert m.log_level == am.LogLevel.CHANGES
    m.log_level = 4
    assert m.log_level == am.LogLevel.DECISIONS


def test_log_id_prefix_and_external_log():
    lines = []
    m = am.Machine({"A": {}}, id="machine1", log_level=am.LogLevel.EXTERNAL,
                   logger=lambda lvl, line: lines.append((lvl, line)))
    m.log("hello\nworld %s", 42)
    assert lines == [(am.LogLevel.EXTERNAL, "[machi] [exter] hello world 42")]
    m.log_id = False
    m.log("plain")
    assert lines[-1][1] == "[exter] plain"
    m.log_level = am.LogLevel.NOTHING
    m.log("silent")
    assert len(lines) == 2


def test_log_args_mapper():
    m = new_no_rels(["A"], args_mapper=am.new_args_mapper(5, ["arg", "arg2"]))
    lines = capture_logs(m, am.LogLevel.OPS)
    m.add("D", {"arg": "foofoofoo", "other": 1})
    log = joined(lines)
    assert "[queue:add] D (arg=fo...)" in log
    assert "[add] D (arg=fo...)" in log
    assert "[state] +D (arg=fo...)" in log
    mapper = am.new_args_mapper()
    assert mapper({"id": "x" * 30, "zzz": 1}) == {"id": "x" * 17 + "..."}
    assert am.format_args({"b": "2", "a": "1"}) == " (a=1 b=2)"
    assert am.format_args({}) == ""
    assert "id" in am.LOG_ARGS and "addr" in am.LOG_ARGS
    # without a mapper no args are shown
    m2 = new_no_rels()
    lines2 = capture_logs(m2, am.LogLevel.OPS)
    m2.add("A", {"id": "abc"})
    assert "[add] A" in lines2[1] and "abc" not in joined(lines2)


def test_log_formats_of_relations_and_cancels():
    m = new_machine({
        "A": am.State(), "B": am.State(add=["C"]), "C": am.State(),
        "D": am.State(remove=["A"]), "R": am.State(require=["A"]),
        "X": am.State(auto=True, require=["Y"]), "Y": am.State(),
    }, ["A"])
    lines = capture_logs(m, am.LogLevel.DECISIONS)

    class Handlers:
        def AA(self, e):
            return e.args.get("ok", True)

    m.bind_handlers(Handlers(), id="h")
    m.add("B")
    log = joined(lines)
    assert "[implied] C" in log
    assert "[reject:auto] X(-Y)" in log
    assert "[cancel:reject] X" in log
    m.add("D")
    assert "[rel:remove] A by D" in joined(lines)
    m.set(["R"])
    assert "[reject] R(-A)" in joined(lines)
    assert "[cancel:reject] R" in joined(lines)
    m.remove("D")
    m.add("A")
    lines.clear()
    assert m.add("A", {"ok": False}) == CANCELED
    # targets: B and C are not in the Require topology, so they sort before A
    assert "[cancel:self] (B C A) by AA" in joined(lines)


def test_log_source_line():
    m = new_no_rels(id="srcmach")
    lines = capture_logs(m, am.LogLevel.OPS)
    txs = []

    class Handlers:
        def AState(self, e):
            txs.append((e.transition.id, sum(e.transition.time_before)))
            e.machine.add("B")

    m.bind_handlers(Handlers())
    m.add("A")
    tx_id, t = txs[0]
    assert f"[source] srcmach/{tx_id}/{t}" in joined(lines)


def test_log_entries_and_pre_log_entries():
    last = am.LastTxTracer()
    m = new_no_rels(tracers=[last], log_level=am.LogLevel.EXTERNAL, logger=lambda *a: None)
    m.log_id = False
    m.log("one")
    m.log("one")  # consecutive duplicates are dropped
    m.log("two")
    m.add("A")
    assert [e.text for e in last.last.pre_log_entries] == ["[exter] one", "[exter] two"]
    assert last.last.log_entries == []

    class Handlers:
        def AState(self, e):
            e.machine.log("inside %s", "A")

    m.remove("A")
    assert last.last.pre_log_entries == []
    m.bind_handlers(Handlers())
    m.add("A")
    assert [(e.level, e.text) for e in last.last.log_entries] == [(1, "[exter] inside A")]
    m.log_level = am.LogLevel.CHANGES
    m.remove("A")
    assert [e.text for e in last.last.log_entries] == ["[state] -A"]


def test_log_error_and_recover_lines():
    m = new_no_rels(["A"])
    lines = capture_logs(m, am.LogLevel.OPS)

    class Handlers:
        def BEnter(self, e):
            raise RuntimeError("nope")

    m.bind_handlers(Handlers())
    m.add("B")
    log = joined(lines)
    assert "[recover] handling panic..." in log
    assert "[error:add] B (BEnter nope)" in log
    assert "[cancel] (B A) by recover" in log
    assert "[prepend:add] Exception" in log


def test_broken_logger_does_not_break_transitions():
    def logger(lvl, line):
        raise RuntimeError("broken logger")

    m = new_no_rels(logger=logger, log_level=am.LogLevel.EVERYTHING)
    assert m.add("A") == EXECUTED


# ============================================================== export / import


def test_export_import_details():
    m = new_no_rels(["A", "C"], id="exp")
    lines = capture_logs(m, am.LogLevel.CHANGES)
    m.verify_states(["D", "C", "B", "A", "Exception"])
    m.add("B")
    data = m.export()
    assert data == {"id": "exp", "state_names": ["D", "C", "B", "A", "Exception"],
                    "time": [0, 1, 1, 1, 0], "queue_tick": 3, "machine_tick": 0}
    assert "[import] exported at 3 ticks" in joined(lines)

    m2 = new_no_rels(id="exp")
    m2.import_data(data)
    assert m2.state_names == data["state_names"]
    assert m2.clock() == m.clock()
    assert m2.active_states() == ["C", "B", "A"]
    assert m2.machine_tick == 1
    assert m2.queue_tick == 1, "the queue tick is not restored"
    again = m2.export()
    assert again["machine_tick"] == 1
    m3 = new_no_rels(id="exp")
    m3.import_data(again)
    assert m3.machine_tick == 2
    # the machine keeps working after an import
    assert m2.remove("C") == EXECUTED
    assert m2.tick("C") == 2


def test_import_validates_before_changing_anything():
    m = new_no_rels(["A"], id="imp")
    before = m.string_all()
    with pytest.raises(ValueError, match="ID mismatch"):
        m.import_data({"id": "other", "state_names": [], "time": []})
    with pytest.raises(ValueError):
        m.import_data({"id": "imp", "state_names": ["A", "B"], "time": [1, 1]})
    with pytest.raises(am.StateUnknownError, match="state unknown: X"):
        m.import_data({"id": "imp", "state_names": ["B", "C", "D", "Exception", "X"],
                       "time": [1, 1, 1, 1, 1]})
    assert m.string_all() == before


# ============================================================== dispose


async def test_dispose():
    tracer = EventLog()
    m = new_no_rels(["A"], tracers=[tracer])
    disposed = []
    m.on_dispose(lambda mid: disposed.append(mid))
    ctx = m.state_ctx("A")
    assert not m.is_disposed
    m.dispose()
    assert m.is_disposed
    await m.when_disposed(timeout=1)
    assert disposed == [m.id]
    assert tracer.calls[-1] == ("machine_dispose", m.id)
    assert ctx.cancelled
    assert m.handlers() == []
    m.dispose()  # idempotent
    assert disposed == [m.id]


async def test_dispose_from_handler_finishes_after_the_drain():
    m = new_no_rels()
    after = []

    class Handlers:
        def AState(self, e):
            e.machine.add("B")
            e.machine.dispose()
            after.append(e.machine.is_disposed)

        def BState(self, e):
            after.append("BState")

    m.bind_handlers(Handlers())
    m.add("A")
    assert after == [True]
    await m.when_disposed(timeout=1)
    assert m.add("C") == CANCELED


def test_dispose_removes_start_first():
    m = new_machine({"Start": am.State(), "A": am.State()}, ["Start"])
    ends = []

    class Handlers:
        def StartEnd(self, e):
            ends.append("StartEnd")

    m.bind_handlers(Handlers())
    m.dispose()
    assert ends == ["StartEnd"]
    assert m.is_disposed


async def test_dispose_cancels_forks_and_async_handlers():
    m = new_no_rels()
    started = asyncio.Event()

    class Handlers:
        async def AState(self, e):
            started.set()
            await asyncio.sleep(10)

    m.bind_handlers(Handlers())
    m.add("A")
    await asyncio.wait_for(started.wait(), 1)
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    m.dispose()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)
    assert all(t.cancelled() for t in tasks)


# ============================================================== parents, tags, groups


def test_parent_child_and_new_submachine():
    tracer = EventLog()
    parent = am.Machine({"A": {}}, id="parent", tracers=[tracer])
    child = am.Machine({"B": {}}, id="child", parent=parent)
    assert child.parent_id == "parent"
    assert ("new_submachine", ("parent", "child")) in tracer.calls
    by_id = am.Machine({"B": {}}, parent="remote-parent")
    assert by_id.parent_id == "remote-parent"
    assert parent.parent_id == ""


def test_ids_and_tags():
    m = am.Machine({"A": {}}, tags=["a", "b", "a", "c:1"])
    assert m.tags == ["a", "b", "c:1"]
    assert len(m.id) == 16 and int(m.id, 16) >= 0
    assert am.Machine({"A": {}}).id != m.id
    m.tags = ["c"]
    assert m.tags == ["c"]


def test_groups_and_switch():
    m = new_no_rels(["B"])
    m.set_groups({"g1": ["A", "B"], "g2": ["D", "C"]}, ["g2", "g1"])
    groups, order = m.groups()
    assert groups == {"g1": [0, 1], "g2": [3, 2]}
    assert order == ["g2", "g1"]
    m.set_groups({"x": ["C"]})
    assert m.groups() == ({"x": [2]}, ["x"])
    with pytest.raises(am.StateUnknownError):
        m.set_groups({"bad": ["Nope"]})
    assert m.switch(["A", "B"]) == "B"
    assert m.switch(["C"], ["D", "B"]) == "B"
    assert m.switch("C", "D") == ""


# ============================================================== schema


def test_schema_parse_rules():
    m = new_machine({
        "A": am.State(remove=["A", "B", "Unknown"], add=["B", "Unknown2"],
                      after=["A", "Unknown", "C"]),
        "B": am.State(),
        "C": am.State(require=["Unknown"]),
    })
    s = m.schema
    assert s["A"].remove == []
    assert s["A"].add == ["B"]
    assert s["A"].after == ["C"]
    assert s["C"].require == ["Unknown"], "unknown Require names are kept"
    assert not m.is_err()
    assert m.add("C") == CANCELED, "a state requiring an unknown state can never activate"
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B"}


def test_schema_add_of_unknown_state_kept_by_remove_does_not_crash():
    # an unknown Add target that is also in Remove: Go keeps it in Add, the port drops it
    # (docs/machine.md §6, row 17); either way the machine works
    m = new_machine({"A": am.State(add=["B", "Unknown"], remove=["Unknown"]), "B": am.State()})
    assert m.add("A") == EXECUTED
    assert active(m) == {"A", "B"}


def test_schema_require_remove_conflict_adds_exception():
    m = new_machine({"A": am.State(require=["B"], remove=["B"]), "B": am.State()})
    assert m.is_err()
    assert isinstance(m.err, am.SchemaError)
    assert "require-remove conflict for A to B" in str(m.err)


def test_schema_accepts_dicts_and_go_keys():
    m = am.Machine({"A": {"Require": ["B"], "Auto": True}, "B": {"multi": True}, "C": None})
    assert m.schema["A"].require == ["B"] and m.schema["A"].auto
    assert m.schema["B"].multi
    assert m.schema["C"] == am.State()
    with pytest.raises(am.SchemaError):
        am.Machine({"A": {"requires": ["B"]}})
    with pytest.raises(am.SchemaError):
        am.Machine(["A"])
    # the schema property is a copy
    s = m.schema
    s["A"].require.append("C")
    assert m.schema["A"].require == ["B"]


def test_set_schema_errors():
    m = new_no_rels()
    with pytest.raises(am.SchemaError, match="too short"):
        m.set_schema(no_rels_schema(), m.state_names)
    bigger = {**no_rels_schema(), "E": am.State()}
    with pytest.raises(am.SchemaError):
        m.set_schema(bigger, ["A", "B"])

    class Handlers:
        def AState(self, e):
            with pytest.raises(am.SchemaError):
                e.machine.set_schema(bigger, ["A", "B", "C", "D", "E", "Exception"])
            e.machine.add("B")

    m.bind_handlers(Handlers())
    m.add("A")
    assert m.is_active("B")
    assert m.schema_version == 5
    m.set_schema(bigger, ["E", "A", "B", "C", "D", "Exception"])
    assert m.schema_version == 6
    assert m.state_names[0] == "E"
    assert m.clock()["A"] == 1, "ticks survive a schema change"


def test_set_schema_rebinds_handlers_for_new_states():
    m = new_no_rels()
    calls = []

    class Handlers:
        def EState(self, e):
            calls.append("EState")

    m.bind_handlers(Handlers())
    m.set_schema({**no_rels_schema(), "E": am.State()}, [*m.state_names, "E"])
    m.add("E")
    assert calls == ["EState"]


def test_schema_helpers():
    base = {"A": am.State(add=["B"]), "B": am.State(tags=["io"])}
    merged = am.schema_merge(base, {"B": {"multi": True}, "C": {}})
    assert merged["B"] == am.State(multi=True)
    assert merged["A"].add == ["B"] and "C" in merged
    assert base["B"].tags == ["io"], "inputs are not modified"

    pre = am.schema_prefix({"A": {"add": ["B"]}, "B": {}, "FooC": {"remove": ["A"]}}, "Foo",
                           remove_dups=True)
    assert sorted(pre) == ["FooA", "FooB", "FooC"]
    assert pre["FooA"].add == ["FooB"] and pre["FooC"].remove == ["FooA"]
    pre2 = am.schema_prefix({"A": {"add": ["B"]}, "B": {}}, "X", skiplist=["B"])
    assert sorted(pre2) == ["B", "XA"] and pre2["XA"].add == ["B"]
    pre3 = am.schema_prefix({"A": {}, "B": {}}, "X", allowlist=["A"])
    assert sorted(pre3) == ["B", "XA"]

    tagged = {"A": {"tags": ["io", "x:1"]}, "B": {"tags": ["x"]}, "C": {"tags": ["xy"]}}
    assert sorted(am.filter_by_tag(tagged, "x")) == ["B"]
    assert am.states_by_tag(tagged, "x") == ["A", "B"]
    assert am.State(tags=["x:1"]).has_tag("x") and not am.State(tags=["xy"]).has_tag("x")
    assert am.adjacent_states({"A": {"add": ["B"], "after": ["C"], "require": ["D"],
                                     "remove": ["E", "B"]}}, "A") == ["B", "C", "D", "E"]

    assert am.s_add(["A", "B"], ["B", "C"], "D") == ["A", "B", "C", "D"]
    assert am.s_rem(["A", "B", "C"], ["B"], "C") == ["A"]
    assert am.s_shared(["C", "A", "B"], ["A", "C"]) == ["C", "A"]
    assert am.s_equal(["A", "B"], ["B", "A"]) and not am.s_equal(["A"], ["A", "B"])

    s1 = am.State(require=["A"], tags=["t"])
    ext = s1.extend(am.State(auto=True, require=["B"], remove=["C"]))
    assert ext.auto and not ext.multi and ext.require == ["A", "B"] and ext.remove == ["C"]
    assert not am.State(auto=True).extend(am.State()).multi
    assert am.State(auto=True).extend(am.State()).auto
    rels = am.State(auto=True, require=["A"], add=["X"]).set_rels(am.State(require=["B"]))
    assert rels.auto and rels.require == ["B"] and rels.add == ["X"]
    assert am.State(add="A").add == ["A"]
    assert s1.clone() == s1 and s1.clone() is not s1
    assert s1.to_dict()["require"] == ["A"]

    parsed, errors = am.parse_schema({"A": {"require": ["B"], "remove": ["B"]}, "B": {}})
    assert parsed["A"].require == ["B"] and parsed["A"].remove == ["B"]
    assert errors == ["schema error: require-remove conflict for A to B"]
    h1 = am.schema_hash(base, ["A", "B"])
    assert h1 == am.schema_hash(base, ["A", "B"]) != am.schema_hash(base, ["B", "A"])
    assert am.is_handler_name("AState", ["A"]) and am.is_handler_name("AB", ["A", "B"])
    assert am.is_handler_name("AnyEnter", [])
    assert not am.is_handler_name("AnyB", ["A", "B"])
    assert not am.is_handler_name("Unrelated", ["A"])


# ============================================================== handlers


def test_handler_binding_ids_and_detach():
    m = new_no_rels()
    lines = capture_logs(m, am.LogLevel.OPS)

    class H:
        def AState(self, e):
            pass

    bid = m.bind_handlers(H(), id="my handler!")
    assert bid == "myhandler"
    assert "[handlers] bind 0:myhandler" in joined(lines)
    anon = m.bind_handlers(H())
    assert anon.startswith("anon-") and len(anon) == 9
    dup = m.bind_handlers(H(), id="myhandler")
    assert dup != bid and dup.startswith("myhandler")
    assert m.handlers() == [bid, anon, dup]
    m.detach_handlers(anon)
    assert m.handlers() == [bid, dup]
    with pytest.raises(KeyError, match="handlers not bound"):
        m.detach_handlers(anon)
    for bad in (None, "str", {"AState": lambda e: None}, 1):
        with pytest.raises(TypeError):
            m.bind_handlers(bad)


def test_handler_attributes_and_event():
    m = new_no_rels(["A"])
    seen = []

    class H:
        not_a_handler = 1
        AB = None  # not callable: ignored

        def __init__(self):
            self.BState = self._b_state  # instance attributes work too

        def _b_state(self, e):
            seen.append((e.name, e.machine is m, e.machine_id == m.id,
                         e.transition_id == e.transition.id, e.is_valid(),
                         list(e.mutation.called), e.args))
            seen.append(e)

        def Unrelated(self, e):
            seen.append("Unrelated")

    m.bind_handlers(H())
    m.add("B", {"x": 1})
    assert seen[0] == ("BState", True, True, True, True, ["B"], {"x": 1})
    assert not seen[1].is_valid(), "the event is invalid once the transition completed"
    assert "Unrelated" not in seen


def test_several_bindings_run_in_order_and_false_stops():
    m = new_no_rels()
    calls = []

    class H1:
        def AEnter(self, e):
            calls.append("h1.AEnter")

        def AState(self, e):
            calls.append("h1.AState")

    class H2:
        def AEnter(self, e):
            calls.append("h2.AEnter")
            return e.args.get("ok", False)

        def AState(self, e):
            calls.append("h2.AState")

    class H3:
        def AEnter(self, e):
            calls.append("h3.AEnter")

    m.bind_handlers(H1())
    m.bind_handlers(H2())
    m.bind_handlers(H3())
    assert m.add("A") == CANCELED
    assert calls == ["h1.AEnter", "h2.AEnter"]
    calls.clear()
    assert m.add("A", {"ok": True}) == EXECUTED
    assert calls == ["h1.AEnter", "h2.AEnter", "h3.AEnter", "h1.AState", "h2.AState"]


def test_state_prefix_binding():
    m = new_machine({"FooA": am.State(), "B": am.State(), "A": am.State()})
    calls = []

    class Sub:
        def AState(self, e):
            calls.append(("sub.AState", e.name))

        def AEnter(self, e):
            calls.append(("sub.AEnter", e.name))

    class Plain:
        def AState(self, e):
            calls.append(("plain.AState", e.name))

    m.bind_handlers(Sub(), state_prefix="Foo")
    m.bind_handlers(Plain())
    m.add("FooA")
    assert calls == [("sub.AEnter", "FooAEnter"), ("sub.AState", "FooAState")]
    calls.clear()
    m.add("A")
    assert calls == [("plain.AState", "AState")]


def test_first_bind_readds_active_exception():
    m = new_no_rels()
    err = ValueError("early")
    m.add_err(err)
    seen = []

    class H:
        def ExceptionState(self, e):
            seen.append(e.args[am.ARG_EXCEPTION].err)

    m.bind_handlers(H())
    assert seen == [err]
    assert m.tick("Exception") == 3


def test_exception_args_of_handler_panic():
    m = new_no_rels(["A"])
    seen = []

    class H:
        def BEnter(self, e):
            raise KeyError("bad")

        def ExceptionState(self, e):
            seen.append(e.args[am.ARG_EXCEPTION])
            seen.append(e.mutation.source)

    m.bind_handlers(H())
    m.add("B", {"k": 1})
    exc, source = seen
    assert isinstance(exc, am.AException)
    assert isinstance(exc.err, KeyError)
    assert exc.handler == "BEnter"
    assert exc.called_states == ["B"]
    assert exc.states_before == ["A"]
    assert exc.target_states == ["B", "A"]
    assert "Traceback" in exc.trace
    assert source is not None and source.mach_id == m.id and source.tx_id == exc.tx_id


def test_panic_to_exception_off_propagates():
    m = new_no_rels(panic_to_exception=False)

    class H:
        def AState(self, e):
            raise LookupError("propagates")

    m.bind_handlers(H())
    with pytest.raises(LookupError):
        m.add("A")


# ============================================================== timeouts


def test_handler_timeout_measured_after_return(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=0.05, handler_deadline=5)
    lines = capture_logs(m, am.LogLevel.DECISIONS)
    done = []

    class H:
        def AEnter(self, e):
            clock.advance(0.1)
            done.append("AEnter finished")  # not pre-empted

    bid = m.bind_handlers(H(), id="slow")
    assert m.add("A") == CANCELED
    assert done == ["AEnter finished"]
    assert m.tick("A") == 0, "negotiation timeout: nothing applied"
    log = joined(lines)
    assert "[cancel] (A) by timeout" in log
    assert f"[handler:timeout]: AEnter from {bid}" in log
    assert isinstance(m.err_internal[-1], am.HandlerTimeoutError)
    assert not m.backoff
    assert m.add("B") == EXECUTED


def test_handler_timeout_none_disables_it(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=None)

    class H:
        def AState(self, e):
            clock.advance(0.12)

    m.bind_handlers(H())
    assert m.add("A") == EXECUTED
    assert len(m.err_internal) == 0


def test_amnode_debug_disables_handler_timeout(monkeypatch):
    clock = fake_clock(monkeypatch)
    monkeypatch.setenv("AMNODE_DEBUG", "1")
    m = new_no_rels(handler_timeout=0.01, handler_deadline=0.02)
    assert m.handler_timeout is None and m.handler_deadline is None

    class H:
        def AState(self, e):
            clock.advance(0.05)

    m.bind_handlers(H())
    assert m.add("A") == EXECUTED
    assert m.is_active("A")
    assert not m.backoff
    monkeypatch.setenv("AMNODE_DEBUG", "0")
    assert new_no_rels(handler_timeout=0.01).handler_timeout == 0.01


def test_deadline_backoff_blocks_most_mutations(monkeypatch):
    clock = fake_clock(monkeypatch)
    m = new_no_rels(handler_timeout=0.01, handler_deadline=0.03, handler_backoff=60)

    class H:
        def AState(self, e):
            e.machine.add("C")
            clock.advance(0.05)

    m.bind_handlers(H(), id="h")
    assert m.add("A") == CANCELED
    assert m.is_err() and m.is_inactive(["A", "C"])
    assert isinstance(m.err, am.HandlerTimeoutError)
    assert m.backoff
    assert m.add("B") == CANCELED
    assert m.remove("Exception") == CANCELED
    assert m.add_err(ValueError("x")) == CANCELED
    assert m.can_add("B") == CANCELED
    assert m.toggle("B") == CANCELED
    # Set has no backoff check
    assert m.set(["B"]) == EXECUTED
    clock.advance(59)
    assert m.backoff, "still inside the 60 s window"
    clock.advance(2)
    assert not m.backoff
    assert m.add("D") == EXECUTED
    assert active(m) == {"B", "D"}


def test_deadline_exception_args_describe_the_transition(monkeypatch):
    # docs/machine.md §4.8: the deadline adds Exception with an AException describing the
    # transition (Go: AException{TargetStates, CalledStates, TimeBefore, TimeAfter, Event})
    clock = fake_clock(monkeypatch)
    m = new_no_rels(["B"], handler_timeout=0.01, handler_deadline=0.03, handler_backoff=0.01)
    seen = []

    class H:
        def AState(self, e):
            seen.append(e.transition.id)
            clock.advance(0.05)

        def ExceptionState(self, e):
            seen.append(e.args[am.ARG_EXCEPTION])

    m.bind_handlers(H(), id="h")
    assert m.add("A") == CANCELED
    tx_id, exc = seen
    assert isinstance(exc, am.AException)
    assert isinstance(exc.err, am.HandlerTimeoutError)
    assert exc.handler == "AState"
    assert exc.called_states == ["A"]
    assert exc.states_before == ["B"]
    assert exc.target_states == ["A", "B"]
    assert exc.tx_id == tx_id
