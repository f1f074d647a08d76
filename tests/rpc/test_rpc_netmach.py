"""aRPC mirror: the Go reference's netmach_test.go cases (#20-#30), ported to asyncio.

Every mutation below is remote and awaited; every read is local and checked synchronously right
after the await (read-your-writes).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers.machines import no_rels_schema
from helpers.rpc import NAMES, new_source, rpc_pair, wait_until

import amnode as am
from amnode.states import pipes


def custom(schema: dict[str, am.State], active: list[str] | None = None) -> am.Machine:
    """A source with a custom A-D schema (Go NewCustomNetSrc)."""
    return new_source(schema, active or [])


def norels(active: list[str] | None = None) -> am.Machine:
    return new_source(no_rels_schema(), active or [])


def assert_states(m: am.Machine, states: list[str]) -> None:
    assert set(m.active_states()) == set(states), str(m)


# 20
async def test_state_set_add_remove() -> None:
    async with rpc_pair(norels(["A"])) as t:
        await t.nm.set("B")
        assert_states(t.nm, ["B"])
        await t.nm.add("A")
        assert_states(t.nm, ["A", "B"])
        await t.nm.remove("B")
        assert_states(t.nm, ["A"])
    async with rpc_pair(norels(["B", "C"])) as t:
        await t.nm.remove(["C"])
        assert_states(t.nm, ["B"])


# 21
async def test_single_multiple_active_and_names() -> None:
    async with rpc_pair(norels()) as t:
        await t.nm.add("A")
        assert_states(t.nm, ["A"])
        await t.nm.add(["B"])
        assert_states(t.nm, ["A", "B"])
        assert t.nm.state_names == NAMES
        assert {"A", "B", "C", "D"} <= set(t.nm.state_names)


# 22
async def test_remove_relation_simultaneous() -> None:
    src = custom({"A": am.State(), "B": am.State(), "C": am.State(remove=["D"]),
                  "D": am.State()}, ["D"])
    async with rpc_pair(src) as t:
        assert await t.nm.set(["C", "D"]) == am.CANCELED, "results propagate"
        assert_states(t.nm, ["D"])


# 23
@pytest.mark.parametrize("steps", [
    [("set", ["C"], ["C"])],
    [("set", ["C"], ["C"]), ("set", ["D"], ["D"])],
    [("add", ["C"], ["C"])],
    [("add", ["C"], ["C"]), ("add", ["D"], ["D"])],
])
async def test_remove_relation_cross_blocking(steps: list[tuple[str, list[str], list[str]]]
                                              ) -> None:
    src = custom({"A": am.State(), "B": am.State(), "C": am.State(remove=["D"]),
                  "D": am.State(remove=["C"])}, ["D"])
    async with rpc_pair(src) as t:
        for method, states, expected in steps:
            await getattr(t.nm, method)(states)
            assert_states(t.nm, expected)


async def test_relations_through_the_mirror() -> None:
    # remove relation
    async with rpc_pair(custom({"A": am.State(), "B": am.State(), "C": am.State(remove=["D"]),
                                "D": am.State()}, ["D"])) as t:
        await t.nm.add("C")
        assert_states(t.nm, ["C"])
    # add relation; D skipped when blocked at the same time
    async with rpc_pair(custom({"A": am.State(remove=["D"]), "B": am.State(),
                                "C": am.State(add=["D"]), "D": am.State()})) as t:
        await t.nm.set("C")
        assert_states(t.nm, ["C", "D"])
        await t.nm.set(["A", "C"])
        assert_states(t.nm, ["A", "C"])
    # require relation
    async with rpc_pair(custom({"A": am.State(require=["D"]), "B": am.State(),
                                "C": am.State(), "D": am.State()})) as t:
        await t.nm.set(["C", "D"])
        assert_states(t.nm, ["C", "D"])
    # require relation when the required state isn't active
    async with rpc_pair(custom({"A": am.State(), "B": am.State(),
                                "C": am.State(require=["D"]), "D": am.State()}, ["A"])) as t:
        await t.nm.set(["C", "A"])
        assert_states(t.nm, ["A"])
    # regressions
    async with rpc_pair(new_source({"A": am.State(remove=["B"]), "B": am.State(remove=["A"]),
                                    "Z": am.State(add=["B"])})) as t:
        await t.nm.set("Z")
        assert_states(t.nm, ["Z", "B"])
    async with rpc_pair(new_source({"Wet": am.State(require=["Water"]),
                                    "Dry": am.State(remove=["Wet"]),
                                    "Water": am.State(add=["Wet"], remove=["Dry"])})) as t:
        await t.nm.set("Dry")
        await t.nm.set("Water")
        assert_states(t.nm, ["Water", "Wet"])


# 24
async def test_auto_states_and_partial_auto() -> None:
    src = custom({"A": am.State(), "B": am.State(auto=True, require=["A"]),
                  "C": am.State(require=["D"]), "D": am.State()})
    async with rpc_pair(src) as t:
        assert await t.nm.add("A") == am.EXECUTED
        assert_states(t.nm, ["A", "B"]), "the auto state is in the reply's diff"
    src = custom({"A": am.State(), "B": am.State(), "C": am.State(auto=True, require=["B"]),
                  "D": am.State(auto=True, require=["B"])}, ["A"])
    async with rpc_pair(src) as t:
        await t.nm.add("A")
        assert_states(t.nm, ["A"])


# 25
async def test_time_and_clock() -> None:
    src = custom({"A": am.State(), "B": am.State(multi=True), "C": am.State(),
                  "D": am.State()})
    order = ["A", "B", "C", "D"]
    async with rpc_pair(src) as t:
        w = t.nm
        steps = [
            ("add", ["A", "B"], ["A", "B"], [1, 1, 0, 0]),
            ("add", ["A", "B"], ["A", "B"], [1, 3, 0, 0]),
            ("add", ["A", "B", "C"], ["A", "B", "C"], [1, 5, 1, 0]),
            ("set", ["D"], ["D"], [2, 6, 2, 1]),
            ("add", ["D", "C"], ["D", "C"], [2, 6, 3, 1]),
            ("remove", ["B", "C"], ["D"], [2, 6, 4, 1]),
            ("add", ["A", "B"], ["D", "A", "B"], [3, 7, 4, 1]),
        ]
        for method, states, active, ticks in steps:
            await getattr(w, method)(states)
            assert_states(w, active)
            assert list(w.time(order)) == ticks
        before = w.time(order)
        await w.add("C")
        now = w.time(order)
        assert list(now) == [3, 7, 5, 1]
        assert now.after(before, True)
        assert not before.after(now, True)
        clock = w.clock()
        assert {k: clock[k] for k in [*order, "Exception"]} == {
            "A": 3, "B": 7, "C": 5, "D": 1, "Exception": 0}
        assert w.clock(["A", "B"]) == {"A": 3, "B": 7}
        assert w.tick("A") == 3
        assert w.clock() == src.clock()


# 26
async def test_when_time() -> None:
    async with rpc_pair(norels(["A", "B"])) as t:
        w = t.nm
        when = asyncio.ensure_future(w.when_time({"A": 5, "B": 2}))
        await asyncio.sleep(0)
        await w.remove(["A", "B"])
        await w.add(["A", "B"])
        await asyncio.sleep(0)
        assert not when.done(), "(A:3 B:3) is not enough"
        await w.remove("A")
        await w.add("A")
        await asyncio.sleep(0)
        assert when.done(), "(A:5 B:3) resolves right after the call"


# 27
async def test_when_and_when_not() -> None:
    async with rpc_pair(norels()) as t:
        w = t.nm
        waits = [asyncio.ensure_future(w.when(["A", "B"], timeout=2)) for _ in range(2)]
        await asyncio.sleep(0)
        await w.add(["A", "B"])
        await asyncio.gather(*waits)
        waits = [asyncio.ensure_future(w.when_not(["A", "B"], timeout=2)) for _ in range(2)]
        await asyncio.sleep(0)
        await w.remove(["A", "B"])
        await asyncio.gather(*waits)
    async with rpc_pair(norels(["A"])) as t:
        await t.nm.when("A", timeout=0.01)  # already active: at once
        await t.nm.when_not("B", timeout=0.01)
        assert_states(t.nm, ["A"])


# 28
async def test_when_queue() -> None:
    async with rpc_pair(norels()) as t:
        w = t.nm
        done = asyncio.get_running_loop().create_future()
        tasks: list[asyncio.Task[None]] = []

        class Tracer(am.Tracer):
            def transition_end(self, tx: am.Transition) -> None:
                if "A" in tx.states_before:
                    return
                # never await mutations inside a tracer: fork the work

                async def work() -> None:
                    w.add("B")
                    w.add("C")
                    res = await w.add("D")
                    assert res == am.EXECUTED
                    await w.when_queue(5, timeout=2)
                    done.set_result(w.active_states())

                tasks.append(asyncio.ensure_future(work()))

        w.bind_tracer(Tracer())
        await w.add("A")
        states = await asyncio.wait_for(done, 2)
        assert set(states) == {"A", "B", "C", "D"}
        assert w.queue_tick == t.source.queue_tick >= 5


# 29
async def test_when_query_is_clock_is_time() -> None:
    async with rpc_pair(norels(["A"])) as t:
        w = t.nm
        q1 = asyncio.ensure_future(w.when_query(lambda c: c["A"] > c["B"] * 4))
        q2 = asyncio.ensure_future(w.when_query(lambda c: c["A"] < c["B"]))
        await asyncio.sleep(0)
        await w.add("B")  # 1, 1
        await w.remove("A")  # 2, 1
        await w.add("A")  # 3, 1
        await w.remove("A")  # 4, 1
        await asyncio.sleep(0)
        assert not q1.done() and not q2.done()
        await w.add("A")  # 5, 1
        await asyncio.sleep(0)
        assert q1.done() and not q2.done()
        q2.cancel()
    async with rpc_pair(norels()) as t:
        w = t.nm
        c_a, c_all = w.clock(["A"]), w.clock()
        t_a, t_all = w.time(["A"]), w.time()
        await w.add(["A", "B"])
        assert not w.is_clock(c_all) and not w.is_clock(c_a)
        assert not w.is_time(t_a, ["A"]) and not w.is_time(t_all)
        assert w.is_clock(w.clock()) and w.is_time(w.time())


async def test_is_not_any_switch() -> None:
    src = custom({"A": am.State(), "B": am.State(auto=True, require=["A"]), "C": am.State(),
                  "D": am.State()}, ["A", "B"])
    async with rpc_pair(src) as t:
        w = t.nm
        assert w.is_active(["A", "B"]) and not w.is_active(["A", "B", "C"])
        assert not w.is_inactive(["A", "B"]) and not w.is_inactive(["A", "B", "C"])
        assert w.is_inactive("D")
        assert w.any_active(["A", "B"], ["C"]) and w.any_active(["A", "B", "C"], ["A"])
        assert w.switch(["A", "B"]) == "A"
        assert w.switch(["C", "D"]) == ""


# 30
async def test_inspect_string_and_names() -> None:
    async with rpc_pair(new_source(None, ["A", "C"])) as t:
        w = t.nm
        assert str(w) == "(A:1 C:1)"
        assert w.string_all() == "(A:1 C:1) [Exception:0 B:0 D:0 ErrOnClient:0]"
        text = w.inspect()
        assert text.startswith("0 Exception\n")
        assert "1 A\n    |Tick     1\n    |Auto     true\n    |Require  C\n" in text
        assert "0 D\n    |Tick     0\n    |Add      C B\n" in text
        assert "0 ErrOnClient\n    |Tick     0\n    |Require  Exception\n" in text
        await w.remove("C")
        await w.add("B")
        await w.add("D")
        assert str(w) == "(A:3 B:1 C:3 D:1)"
        assert w.inspect() == t.source.inspect()


async def test_string_no_rels() -> None:
    async with rpc_pair(norels(["A", "B"])) as t:
        assert str(t.nm) == "(A:1 B:1)"
        assert t.nm.string_all() == "(A:1 B:1) [Exception:0 C:0 D:0 ErrOnClient:0]"


async def test_pipes_from_the_mirror() -> None:
    src = norels(["A"])
    local = new_source(no_rels_schema(), id="local")
    async with rpc_pair(src, push_interval=0.01) as t:
        local.set(t.nm.active_states())
        pipes.bind_any(t.nm, local)
        src.add(["A", "B"])
        await local.when(["A", "B"], timeout=2)
        src.remove("A")
        await local.when_not("A", timeout=2)
        assert_states(local, ["B"])


async def test_nested_mutation() -> None:
    src = norels()

    class Handlers:
        def AState(self, e: am.Event) -> None:
            m = e.machine
            for _ in range(3):
                m.add("B")
            m.remove("B")
            m.remove("B")

    src.bind_handlers(Handlers())
    async with rpc_pair(src) as t:
        await t.nm.add("A")
        assert_states(t.nm, ["A"])
        assert t.nm.clock() == src.clock()


async def test_mirror_handlers_fire_per_change() -> None:
    """Final handlers on the mirror see each activation and deactivation; `e.machine` is the
    mirror, so a handler's own mutations go to the source."""
    seen: list[str] = []
    async with rpc_pair(norels(), push_interval=0.01) as t:
        w = t.nm

        class Handlers:
            def AState(self, e: am.Event) -> None:
                seen.append("AState")
                assert e.machine is w
                e.machine.add("B")  # remote, not awaited

            def AEnd(self, e: am.Event) -> None:
                seen.append("AEnd")

            def AnyState(self, e: am.Event) -> None:
                seen.append("Any")

        w.bind_handlers(Handlers())
        await w.add("A")
        await w.when("B", timeout=2)
        await w.remove("A")
        assert seen[:2] == ["AState", "Any"]
        assert "AEnd" in seen
        assert t.source.is_active("B")


async def test_state_ctx_on_the_mirror() -> None:
    async with rpc_pair(norels()) as t:
        w = t.nm
        await w.add("A")
        ctx = w.state_ctx("A")
        assert not ctx.cancelled
        await w.remove("A")
        assert ctx.cancelled
        ctx2 = w.state_ctx("B")
        await w.add("B")
        assert ctx2.cancelled


async def test_pipes_bind_variants_into_a_mirror() -> None:
    """Pipes from a local machine into a mirror send remote mutations (futures not awaited)."""
    src = norels()
    local = new_source({"On": am.State(), "Err": am.State(require=["Exception"])}, id="local")
    async with rpc_pair(src, check_errors=False) as t:
        pipes.bind(local, t.nm, "On", "A")
        pipes.bind(local, t.nm, "Err", "B", "C")
        pipes.bind_err(local, t.nm)
        local.add("On")
        await t.nm.when("A", timeout=2)
        local.remove("On")
        await t.nm.when_not("A", timeout=2)
        local.add_err_state("Err", ValueError("x"))
        await t.nm.when("Exception", timeout=2)
        local.remove("Exception")  # Err requires it: its end adds C on the source
        await t.nm.when("C", timeout=2)
        assert src.is_active(["B", "C", "Exception"]) and src.is_inactive("A")


# --- errors and disposal stay local to the mirror ---

@pytest.mark.parametrize("partial", [False, True], ids=["full", "partial-no-schema"])
async def test_failing_eval_on_the_mirror_stays_local(partial: bool) -> None:
    """A raising `eval` is the mirror's own error: it never adds Exception + ErrOnClient on the
    source, and a mirror that does not even sync Exception does not raise StateUnknownError."""
    kw = {"allowed_states": ["C"], "no_schema": True} if partial else {}
    async with rpc_pair(norels(), **kw) as t:
        calls = t.client.call_count
        assert t.nm.eval(lambda: 1 / 0, "test") is True
        assert isinstance(t.nm.err, ZeroDivisionError)
        assert list(t.nm.err_internal) == [t.nm.err]
        assert t.client.call_count == calls, "nothing sent"
        await t.client.sync()
        assert t.source.is_inactive(["Exception", "ErrOnClient"])
        assert t.nm.tick("C") == 0, "the mirror's clock still only follows the source"


async def test_handler_task_and_bind_errors_stay_local() -> None:
    """Errors of the mirror's handlers (sync and async) are recorded locally; binding handlers
    while Exception is active does not re-send the stored error."""
    async with rpc_pair(norels(), push_interval=0.01) as t:
        w = t.nm

        class Handlers:
            def AState(self, e: am.Event) -> None:
                raise ValueError("handler")

            async def BState(self, e: am.Event) -> None:
                raise KeyError("task")

        w.bind_handlers(Handlers())
        calls = t.client.call_count
        t.source.add(["A", "B"])
        await w.when(["A", "B"], timeout=5)
        await wait_until(lambda: isinstance(w.err, KeyError))
        assert [type(e) for e in w.err_internal] == [ValueError, KeyError]
        assert w.is_active(["A", "B"]), "a failing final handler cancels nothing on a mirror"
        # an error the source has, seen by a mirror with a stored error and no handlers yet
        await w.add_err(RuntimeError("remote"))
        assert w.is_active("Exception")
        calls = t.client.call_count
        w.bind_handlers(type("Late", (), {})(), id="late")
        w.bind_handlers(type("Later", (), {})(), id="later")
        assert t.client.call_count == calls, "nothing re-sent"
        assert len(w.err_internal) == 2
        await t.client.sync()
        assert t.source.tick("Exception") == 1 and t.source.tick("ErrOnClient") == 1


async def test_handler_past_its_deadline_on_the_mirror() -> None:
    """A mirror handler past the deadline is recorded once, locally; the mirror still sends
    (the backoff is the source's business)."""
    async with rpc_pair(norels(), push_interval=0.01) as t:
        w = t.nm
        w.handler_timeout, w.handler_deadline = 0.001, 0.002

        class Slow:
            def AState(self, e: am.Event) -> None:
                time.sleep(0.01)  # the overrun under test, not a synchronisation

        w.bind_handlers(Slow())
        await w.add("A")
        assert [type(e) for e in w.err_internal] == [am.HandlerTimeoutError]
        assert w.err is w.err_internal[0]
        assert await w.add("B") == am.EXECUTED
        assert t.source.is_inactive("Exception")


async def test_disposed_mirror_sends_nothing() -> None:
    """Every remote mutation of a disposed mirror, including the *_ns ones, is CANCELED at once
    without touching the source."""
    async with rpc_pair(norels(["D"])) as t:
        w = t.nm
        w.dispose()
        assert w.is_disposed
        calls = t.client.call_count
        assert w.add_ns("A") == am.CANCELED
        assert w.remove_ns("D") == am.CANCELED
        assert w.set_ns("B") == am.CANCELED
        for fut in (w.add("A"), w.remove("D"), w.set("B"), w.toggle("C"),
                    w.add_err(ValueError("late"))):
            assert fut.done() and fut.result() == am.CANCELED
        assert w.err is None
        assert t.client.call_count == calls
        await t.client.sync()
        assert_states(t.source, ["D"])


def test_mirror_dispose_outside_a_running_loop() -> None:
    """Disposing (e.g. `client.dispose()` after the loop stopped) needs no running loop, never
    removes `Start` on the source, and leaves the mirror completely disposed."""
    loop = asyncio.new_event_loop()
    src = new_source({"Start": am.State()}, ["Start"])
    pair = rpc_pair(src)
    try:
        t = loop.run_until_complete(pair.__aenter__())
        w = t.nm
        assert w.is_active("Start")
        w.dispose()  # no loop is running here
        assert w.is_disposed and w.active_states() == [] and w.handlers() == []
        fut = w.add("Start")
        assert fut.done() and fut.result() == am.CANCELED
        assert w.remove_ns("Start") == am.CANCELED
        loop.run_until_complete(t.client.sync())
        assert src.is_active("Start"), "the source keeps Start"
    finally:
        loop.run_until_complete(pair.__aexit__(None, None, None))
        loop.close()


async def test_mirror_mutations_belong_to_its_thread() -> None:
    async with rpc_pair(norels()) as t:
        loop = asyncio.get_running_loop()
        with pytest.raises(am.WrongThreadError):
            await loop.run_in_executor(None, t.nm.add_ns, "A")
        with pytest.raises(am.WrongThreadError):
            await loop.run_in_executor(None, t.nm.add, "A")
        # the threadsafe proxy runs it on the owner thread (here: at once)
        assert await t.nm.threadsafe.add("A").result(0) == am.EXECUTED
        assert t.source.is_active("A")
