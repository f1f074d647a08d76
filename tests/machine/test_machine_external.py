"""External changes: apply_clock (mirrors), replace_schema, MutSource causes, owner thread."""

from __future__ import annotations

import threading

import pytest

import amnode as am


class Finals:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def AState(self, e: am.Event) -> None:
        self.calls.append("AState")

    def BEnd(self, e: am.Event) -> None:
        self.calls.append("BEnd")

    def AnyState(self, e: am.Event) -> None:
        self.calls.append("AnyState")

    def BEnter(self, e: am.Event) -> bool:  # negotiation never runs for external changes
        self.calls.append("BEnter")
        return False


class Ends(am.Tracer):
    def __init__(self) -> None:
        self.txs: list[am.Transition] = []

    def transition_end(self, transition: am.Transition) -> None:
        self.txs.append(transition)


async def test_apply_clock_runs_finals_tracers_and_waits() -> None:
    m = am.Machine({"A": {}, "B": {"require": ["C"]}, "C": {}})
    h = Finals()
    m.bind_handlers(h)
    tracer = Ends()
    m.bind_tracer(tracer)
    # B is activated although its Require is missing: relations are the source's business
    t = m.apply_clock({"B": 1}, source=am.MutSource("src"), queue_tick=5)
    assert t is not None and t.accepted and t.completed
    assert m.is_active("B") and m.queue_tick == 5
    assert h.calls == ["AnyState"]
    h.calls.clear()
    wait = m.when("A", timeout=1)
    m.apply_clock([1, 2, 0, 0])  # A on, B off, in state order
    await wait
    assert h.calls == ["BEnd", "AState", "AnyState"]
    assert tracer.txs[-1].enters == ["A"] and tracer.txs[-1].exits == ["B"]
    assert tracer.txs[-1].mutation.source is None
    assert tracer.txs[0].mutation.source == am.MutSource("src")
    assert m.apply_clock([1, 2, 0, 0]) is None  # nothing changed, no transition


def test_apply_clock_multi_reentry_and_active_override() -> None:
    m = am.Machine({"M": {"multi": True}, "R": {}})
    h_calls: list[str] = []

    class H:
        def MState(self, e: am.Event) -> None:
            h_calls.append(f"M{e.machine.tick('M')}")

    m.bind_handlers(H())
    m.apply_clock({"M": 1})
    m.apply_clock({"M": 3})  # a coalesced re-add: still active, a new instance
    assert h_calls == ["M1", "M3"]
    m.apply_clock({"R": 2}, active=["M", "R"])  # inferred as active by the caller
    assert m.active_states() == ["M", "R"]


async def test_apply_clock_lower_queue_tick_releases_queue_waits() -> None:
    m = am.Machine({"A": {}})
    m.apply_clock({"A": 1}, queue_tick=10)
    wait = m.when_queue(50, timeout=1)
    m.apply_clock({"A": 2}, queue_tick=2)  # the source restarted
    await wait


def test_replace_schema_may_shrink_and_keeps_ticks() -> None:
    m = am.Machine({"A": {}, "B": {}, "C": {}})
    m.add(["A", "C"])
    ctx = m.state_ctx("C")
    m.replace_schema({"A": {}, "D": {"require": ["A"]}}, ["D", "A"])
    assert m.state_names == ["D", "A", "Exception"]
    assert m.tick("A") == 1 and m.tick("D") == 0
    assert m.active_states() == ["A"]
    assert ctx.cancelled  # C is gone
    assert m.add("D") == am.EXECUTED
    with pytest.raises(am.StateUnknownError):
        m.replace_schema({"A": {}}, ["A", "Z"])
    with pytest.raises(am.SchemaError):
        m.replace_schema({"A": {}, "B": {}}, ["A"])


def test_mutsource_as_event_is_recorded() -> None:
    m = am.Machine({"A": {}})
    tracer = Ends()
    m.bind_tracer(tracer)
    m.add("A", event=am.MutSource("client-1", "tx9", 42))
    assert tracer.txs[-1].mutation.source == am.MutSource("client-1", "tx9", 42)


def test_owner_thread_id_and_external_changes_from_other_threads_fail() -> None:
    m = am.Machine({"A": {}})
    assert m.owner_thread_id == threading.get_ident()
    errors: list[BaseException] = []

    def other() -> None:
        for fn in (lambda: m.apply_clock({"A": 1}), lambda: m.replace_schema({"B": {}}, ["B"])):
            try:
                fn()
            except am.WrongThreadError as err:
                errors.append(err)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(errors) == 2
    assert m.tick("A") == 0 and m.has("A")


class Changes(am.Tracer):
    def __init__(self) -> None:
        self.events: list[str] = []

    def schema_change(self, machine: am.Machine, old_schema: am.Schema) -> None:
        self.events.append("schema_change")

    def verify_states(self, machine: am.Machine) -> None:
        self.events.append("verify_states")


def test_groups_follow_state_reordering_and_tracers_hear_about_them() -> None:
    m = am.Machine({"A": {}, "B": {}, "C": {}})
    tracer = Changes()
    m.bind_tracer(tracer)
    m.set_groups({"ab": ["A", "B"]})
    assert tracer.events == ["schema_change"]
    m.verify_states(["C", "B", "A"])
    groups, order = m.groups()
    assert [m.state_names[i] for i in groups["ab"]] == ["A", "B"] and order == ["ab"]
    m.import_data(m.export())
    assert tracer.events[-1] == "verify_states"


def test_pending_log_holds_lines_since_the_last_transition() -> None:
    m = am.Machine({"A": {}}, log_level=am.LogLevel.EXTERNAL, logger=lambda lvl, line: None)
    m.log_id = False
    m.add("A")
    m.log("hello %s", "world")
    assert [e.text for e in m.pending_log()] == ["[exter] hello world"]
    m.remove("A")
    assert m.pending_log() == []


def test_dispose_from_a_handler_still_removes_start_and_drops_the_rest() -> None:
    calls: list[str] = []

    class H:
        def AState(self, e: am.Event) -> None:
            e.machine.add("B")  # queued, then dropped by dispose (as in Go)
            e.machine.dispose()
            calls.append(f"after dispose: {int(e.machine.add('C'))}")

        def BState(self, e: am.Event) -> None:
            calls.append("BState")

        def StartEnd(self, e: am.Event) -> None:
            calls.append("StartEnd")  # closes resources: must run

    m = am.Machine({"Start": {}, "A": {}, "B": {}, "C": {}})
    m.add("Start")
    m.bind_handlers(H())
    m.add("A")
    assert calls == ["after dispose: 1", "StartEnd"]
    assert m.is_disposed and m.add("A") == am.CANCELED


def test_apply_clock_queues_handler_errors_after_itself() -> None:
    order: list[str] = []

    class H:
        def AState(self, e: am.Event) -> None:
            raise RuntimeError("boom")

    class Order(am.Tracer):
        def transition_init(self, t: am.Transition) -> None:
            order.append("init " + " ".join(t.called))

        def transition_end(self, t: am.Transition) -> None:
            order.append("end " + " ".join(t.called))

    m = am.Machine({"A": {}})
    m.bind_handlers(H())
    m.bind_tracer(Order())
    t = m.apply_clock({"A": 1})
    assert t is not None and t.accepted
    assert order == ["init A", "end A", "init Exception", "end Exception"]
    assert m.is_active(["A", "Exception"])


def test_apply_clock_tracers_see_the_new_queue_tick() -> None:
    seen: list[int] = []

    class QT(am.Tracer):
        def transition_end(self, t: am.Transition) -> None:
            seen.append(t.machine.queue_tick)

    m = am.Machine({"A": {}})
    m.bind_tracer(QT())
    m.apply_clock({"A": 1}, queue_tick=7)
    assert seen == [7]


async def test_threadsafe_call_returns_the_result_from_another_thread() -> None:
    import asyncio

    m = am.Machine({"A": {}})
    m.bind_thread()
    fut = await asyncio.to_thread(lambda: m.threadsafe.call(lambda x: (x, m.add("A")), 5))
    assert await asyncio.wrap_future(fut) == (5, am.EXECUTED)
    boom = await asyncio.to_thread(lambda: m.threadsafe.call(lambda: 1 / 0))
    with pytest.raises(ZeroDivisionError):
        await asyncio.wrap_future(boom)


async def test_a_wait_cancelled_before_it_ran_or_never_awaited_unregisters() -> None:
    import asyncio
    import gc

    m = am.Machine({"A": {}})
    task = asyncio.create_task(m.when("A"))
    assert m._subs.when_active  # registered by the call itself
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not m._subs.when_active
    w = m.when_queue(m.queue_tick + 5)
    assert m._subs.when_queue
    w.close()  # what Python does with a coroutine nobody awaited
    assert not m._subs.when_queue
    m.when_args("A", {"x": 1})  # dropped on the floor
    gc.collect()
    assert not m._subs.when_args
