"""Property tests: random schemas and mutation sequences keep the machine's invariants.

Invariants checked after every mutation and inside every transition (through a tracer):
* a state is active iff its tick is odd;
* after an accepted transition every active state's Require is active;
* no two active states where one Removes the other;
* a canceled transition changes no tick;
* queue ticks never go backwards, and queued mutations get increasing ticks.

Schemas have one level of Add relations (no state that is an Add target has Add relations of
its own): with longer chains Go's resolver (and this faithful port) can activate a state next to
one it removes, see test_machine_go_bugs.test_bug01_second_level_implied_remove_not_applied.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amnode as am

NAMES = ["S0", "S1", "S2", "S3", "S4", "S5"]
OPS = ["add", "remove", "set", "toggle", "can_add", "can_remove", "add_err"]


@st.composite
def schemas(draw):
    n = draw(st.integers(min_value=2, max_value=len(NAMES)))
    names = NAMES[:n]

    def rel(name, max_size):
        others = [s for s in names if s != name]
        return draw(st.lists(st.sampled_from(others), max_size=max_size, unique=True))

    schema = {}
    for name in names:
        schema[name] = am.State(
            auto=draw(st.booleans()) and draw(st.booleans()),
            multi=draw(st.booleans()) and draw(st.booleans()),
            require=rel(name, 2),
            add=rel(name, 2),
            remove=rel(name, 2),
            after=rel(name, 2),
        )
    # one level of Add only
    targets = {t for state in schema.values() for t in state.add}
    for name in targets:
        schema[name].add = []
    return schema


def mutations(names):
    states = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
    return st.lists(st.tuples(st.sampled_from(OPS), states), min_size=1, max_size=12)


@st.composite
def scenarios(draw):
    schema = draw(schemas())
    names = list(schema)
    vetoes = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    exit_vetoes = draw(st.lists(st.sampled_from(names), max_size=1, unique=True))
    nested = draw(st.dictionaries(st.sampled_from(names),
                                  st.tuples(st.sampled_from(["add", "remove"]),
                                            st.lists(st.sampled_from(names), min_size=1,
                                                     max_size=2, unique=True)),
                                  max_size=2))
    order = draw(st.permutations([*names, "Exception"]))
    return schema, vetoes, exit_vetoes, nested, order, draw(mutations(names))


def check_states(m: am.Machine, schema) -> None:
    clock = m.clock()
    active = set(m.active_states())
    for name, tick in clock.items():
        assert (tick % 2 == 1) == (name in active) == m.is_active(name), (name, tick, str(m))
    for name in active:
        state = m.schema[name]
        for req in state.require:
            assert req in active, f"{name} requires {req}: {m.string_all()}"
        for rem in state.remove:
            assert rem not in active, f"{name} removes {rem}: {m.string_all()}"


class InvariantTracer(am.Tracer):
    def __init__(self, schema) -> None:
        self.schema = schema
        self.queue_ticks: list[int] = []
        self.queued: list[int] = []
        self.transitions = 0

    def transition_start(self, t: am.Transition) -> None:
        self.queue_ticks.append(t.machine.queue_tick)

    def mutation_queued(self, m: am.Machine, mut: am.Mutation) -> None:
        if mut.queue_tick:
            self.queued.append(mut.queue_tick)

    def transition_end(self, t: am.Transition) -> None:
        self.transitions += 1
        m = t.machine
        if t.is_check:
            assert list(m.time()) == list(t.time_before), "a check changes no tick"
            return
        if not t.accepted:
            assert list(t.time_after) == list(t.time_before), "canceled: ticks unchanged"
            assert list(m.time()) == list(t.time_before), "canceled: clock unchanged"
        else:
            assert list(t.time_after) == list(m.time())
        check_states(m, self.schema)


def make_handlers(vetoes, exit_vetoes, nested, budget):
    attrs = {}
    for name in vetoes:
        attrs[name + "Enter"] = lambda self, e: False
    for name in exit_vetoes:
        attrs[name + "Exit"] = lambda self, e: False

    for name, (op, states) in nested.items():
        def final(self, e, op=op, states=states):
            if budget[0] <= 0:
                return
            budget[0] -= 1
            res = getattr(e.machine, op)(states)
            self.results.append(res)

        attrs[name + "State"] = final
    attrs["results"] = None
    return type("RandomHandlers", (), attrs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_mutations_keep_invariants(scenario):
    schema, vetoes, exit_vetoes, nested, order, steps = scenario
    tracer = InvariantTracer(schema)
    m = am.Machine(schema, tracers=[tracer], handler_timeout=None)
    m.verify_states(order)
    budget = [0]
    handlers = make_handlers(vetoes, exit_vetoes, nested, budget)()
    handlers.results = []
    m.bind_handlers(handlers)
    check_states(m, schema)

    last_queue_tick = m.queue_tick
    for op, states in steps:
        budget[0] = 2
        before = list(m.time())
        handlers.results.clear()
        if op == "add_err":
            res = m.add_err_state(states[0], ValueError("random"))
        else:
            res = getattr(m, op)(states)
        assert res in (am.Result.EXECUTED, am.Result.CANCELED), res
        check_states(m, schema)
        if op in ("can_add", "can_remove"):
            assert list(m.time()) == before, "checks change nothing"
        # queued results of nested mutations are increasing ticks
        queued = [r for r in handlers.results if am.is_queued(r)]
        assert queued == sorted(set(queued))
        assert m.queue_tick >= last_queue_tick
        last_queue_tick = m.queue_tick
        assert m.queue_len == 0

    assert tracer.queue_ticks == sorted(tracer.queue_ticks), "queue ticks are monotonic"
    assert tracer.queued == sorted(tracer.queued)
    assert len(set(tracer.queued)) == len(tracer.queued), "queue ticks are unique"


class FirstTxTracer(am.Tracer):
    """The active states right after each non-auto transition (before any auto one runs)."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[list[str], set[str]]] = []

    def transition_end(self, t: am.Transition) -> None:
        if not t.is_auto and not t.is_check:
            self.snapshots.append((list(t.called), set(t.machine.active_states())))


@settings(max_examples=60, deadline=None)
@given(schemas(), st.data())
def test_time_and_results_agree(schema, data):
    """Results describe what happened: EXECUTED add => called states active, etc."""
    tracer = FirstTxTracer()
    m = am.Machine(schema, tracers=[tracer])
    names = list(schema)
    for _ in range(data.draw(st.integers(1, 10))):
        op = data.draw(st.sampled_from(["add", "remove", "set"]))
        states = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3,
                                    unique=True))
        before = m.time()
        tracer.snapshots.clear()
        res = getattr(m, op)(states)
        after = m.time()
        assert after.after(before, or_equal=True), "ticks never decrease"
        assert res in (am.Result.EXECUTED, am.Result.CANCELED)
        # the mutation's own transition ran first; auto transitions may follow it
        called, active = tracer.snapshots[0]
        assert called == states
        if res == am.Result.CANCELED:
            assert after == before
        elif op == "remove":
            assert not active & set(states)
        else:
            assert set(states) <= active
            if op == "set":
                # everything else active was implied by an Add relation
                implied = {t for s in active for t in m.schema[s].add}
                assert active - set(states) <= implied, (active, states)


class StepsTracer(am.Tracer):
    collect_steps = True
    collect_check_steps = True


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_logging_and_steps_do_not_change_behaviour(scenario):
    """A machine logging everything and collecting steps behaves like a silent one."""
    schema, vetoes, exit_vetoes, nested, order, steps = scenario
    machines = []
    lines: list[str] = []
    for loud in (False, True):
        m = am.Machine(schema, handler_timeout=None,
                       log_level=am.LogLevel.EVERYTHING if loud else am.LogLevel.NOTHING,
                       logger=lambda lvl, line: lines.append(line),
                       tracers=[StepsTracer()] if loud else [])
        m.verify_states(order)
        budget = [0]
        handlers = make_handlers(vetoes, exit_vetoes, nested, budget)()
        handlers.results = []
        m.bind_handlers(handlers)
        machines.append((m, budget, handlers))

    for op, states in steps:
        outcomes = []
        for m, budget, handlers in machines:
            budget[0] = 2
            handlers.results.clear()
            if op == "add_err":
                res = m.add_err_state(states[0], ValueError("random"))
            else:
                res = getattr(m, op)(states)
            outcomes.append((res, m.string_all(), m.active_states(), m.queue_tick,
                             list(handlers.results)))
        assert outcomes[0] == outcomes[1], (op, states)
    assert lines, "the loud machine logged"
