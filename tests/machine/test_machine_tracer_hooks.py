"""Which tracer hooks a machine calls: only overridden hot hooks (decided when bound), in the
same order as for a tracer overriding all of them; tracers bound or detached mid-run;
`queued_immediate`, `start_time` and the plan call of handler steps (docs/machine.md §7)."""

from __future__ import annotations

from typing import Any

from helpers.machines import EventLog, new_machine

import amnode as am


class Handlers:
    def AEnter(self, e: am.Event) -> bool:
        return True

    def AState(self, e: am.Event) -> None:
        pass

    def BState(self, e: am.Event) -> None:
        pass


def _schema() -> dict[str, am.State]:
    return {"A": am.State(), "B": am.State(auto=True, require=["A"]), "C": am.State()}


class EndsAndHandlers(am.Tracer):
    """Overrides only some hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def transition_end(self, t: am.Transition) -> None:
        self.calls.append(("end", (list(t.called), t.accepted, t.completed)))

    def handler_end(self, t: am.Transition, binding_id: str, handler: str) -> None:
        self.calls.append(("handler_end", (binding_id, handler)))


def _drive(m: am.Machine) -> None:
    m.add("A")  # + B (auto)
    m.add("C")
    m.remove("A")
    m.add("A")


def test_a_tracer_overriding_some_hooks_gets_exactly_those_in_order():
    full, some = EventLog(), EndsAndHandlers()
    m = new_machine(_schema(), tracers=[full, some])
    m.bind_handlers(Handlers())
    _drive(m)
    assert some.calls  # it got calls ...
    # ... the ones it overrides, in the order a tracer overriding every hook sees them
    assert some.calls == [c for c in full.calls if c[0] in ("end", "handler_end")]
    assert [c[0] for c in some.calls].count("handler_end") >= 4


def test_hot_hooks_nobody_overrides_are_not_called(monkeypatch):
    called: list[str] = []
    for hook in am.machine.tracer.HOT_HOOKS:
        base = getattr(am.Tracer, hook)

        def spy(self: am.Tracer, *args: Any, _hook: str = hook, _base: Any = base) -> None:
            called.append(_hook)
            _base(self, *args)

        monkeypatch.setattr(am.Tracer, hook, spy)
    # the spies are the base class's hooks now: a tracer that only inherits them is not called
    plain = am.Tracer()
    m = new_machine(_schema(), tracers=[plain])
    m.bind_handlers(Handlers())
    _drive(m)
    assert called == []


def test_a_hook_set_on_the_instance_before_binding_is_called():
    seen: list[list[str]] = []
    tracer = am.Tracer()
    tracer.transition_end = lambda t: seen.append(list(t.called))  # type: ignore[method-assign]
    m = new_machine(_schema())
    m.bind_tracer(tracer)
    m.add("C")
    assert seen and seen[0] == ["C"]


def test_a_tracer_bound_mid_transition_gets_the_rest_of_it():
    late = EventLog()

    class Binds:
        def AEnter(self, e: am.Event) -> bool:
            if late not in e.machine.tracers:
                e.machine.bind_tracer(late)
            return True

    first = EventLog()
    m = new_machine(_schema(), tracers=[first])
    m.bind_handlers(Binds())
    m.add("A")
    # bound during AEnter (negotiation): the rest of that transition, then everything
    names = late.names()
    assert names[0] == "handler_end" and "finals" in names
    assert "init" not in names[:names.index("end")]
    assert late.calls == first.calls[len(first.calls) - len(late.calls):]


def test_a_tracer_detached_mid_transition_gets_nothing_more():
    gone = EventLog()

    class Detaches:
        def AState(self, e: am.Event) -> None:
            e.machine.detach_tracer(gone)

    m = new_machine(_schema(), tracers=[gone])
    m.bind_handlers(Detaches())
    m.add("A")
    names = gone.names()
    assert names[-1] == "handler_start" and "end" not in names
    n = len(names)
    m.add("C")
    assert len(gone.names()) == n


def test_a_tracer_detached_and_bound_again_is_called_again():
    tracer = EventLog()
    m = new_machine(_schema(), tracers=[tracer])
    m.detach_tracer(tracer)
    tracer.calls.clear()
    m.add("C")
    assert tracer.calls == []
    m.bind_tracer(tracer)
    m.remove("C")
    assert "end" in tracer.names()


class QueuedOnly(am.Tracer):
    queued_immediate = False

    def __init__(self) -> None:
        self.queued: list[list[str]] = []

    def mutation_queued(self, m: am.Machine, mut: am.Mutation) -> None:
        self.queued.append(list(mut.called))


def test_queued_immediate_false_skips_only_mutations_that_run_at_once():
    tracer, every = QueuedOnly(), EventLog()

    class Queues:
        def AState(self, e: am.Event) -> None:
            e.machine.add("C")  # waits for the running transition

    m = new_machine(_schema(), tracers=[tracer])
    m.bind_handlers(Queues())
    m.add("A")
    # "A" ran at once; "C" waited, "B" (auto) was prepended
    assert sorted(tracer.queued) == [["B"], ["C"]]
    # next to a tracer with the default (which hears about every mutation), the machine
    # queues every mutation again, and both tracers hear about each
    m2 = new_machine(_schema(), tracers=[tracer, every])
    m2.bind_handlers(Queues())
    tracer.queued.clear()
    m2.add("A")
    queued = [c[1][1] for c in every.calls if c[0] == "queued"]
    assert queued[0] == ["A"] and tracer.queued == queued


def test_start_ns_is_stamped_only_for_a_tracer_asking_for_it():
    class Starts(am.Tracer):
        start_time = True

        def __init__(self) -> None:
            self.starts: list[int] = []

        def transition_end(self, t: am.Transition) -> None:
            self.starts.append(t.start_ns)

    last = am.LastTxTracer()
    m = new_machine(_schema(), tracers=[last])
    m.add("C")
    assert last.last is not None and last.last.start_ns == 0
    starts = Starts()
    m.bind_tracer(starts)
    m.remove("C")
    assert starts.starts and all(ns > 0 for ns in starts.starts)
    m.detach_tracer(starts)
    m.add("C")
    assert last.last.start_ns == 0


def test_handler_steps_of_a_plan_carry_its_call():
    last = am.LastTxTracer()
    last.collect_steps = True
    m = new_machine({"A": am.State(), "C": am.State()}, tracers=[last])
    m.bind_handlers(Handlers())
    calls = []
    for _ in range(2):
        m.add("A")
        tx = last.last
        assert tx is not None
        handlers = [s for s in tx.steps if s.type == am.StepType.HANDLER]
        assert [s.handler for s in handlers] == ["AEnter", "AState"]
        assert all(s.call is not None for s in handlers)
        assert all(s.call is None for s in tx.steps if s.type != am.StepType.HANDLER)
        calls.append([s.call for s in handlers])
        m.remove("A")
    # the same plan replayed: the same calls (its cached tuples)
    assert all(a is b for a, b in zip(calls[0], calls[1], strict=True))
