"""Replays of cached plans while nobody observes the machine (amnode.machine.plan: REPLAY_LEAN
runs no `Transition` at all, REPLAY_FINALS only the final phase) behave exactly like a full
transition: same results, clocks, queue ticks and handler calls as a machine that is observed
(here by an `on_change` callback, which forces the general path)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amnode as am
from amnode.machine.plan import REPLAY_FINALS, REPLAY_LEAN

NAMES = ["S0", "S1", "S2", "S3", "S4"]


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, am.State]:
    """Random schemas with one level of Add relations (see test_machine_properties)."""
    names = NAMES[:draw(st.integers(min_value=2, max_value=len(NAMES)))]

    def rel(name: str) -> list[str]:
        return draw(st.lists(st.sampled_from([s for s in names if s != name]), max_size=2,
                             unique=True))

    schema = {name: am.State(auto=draw(st.booleans()) and draw(st.booleans()),
                             multi=draw(st.booleans()) and draw(st.booleans()),
                             require=rel(name), add=rel(name), remove=rel(name),
                             after=rel(name)) for name in names}
    for name in {t for state in schema.values() for t in state.add}:
        schema[name].add = []
    return schema


def _machine(schema, finals, nested, observed: bool, calls: list[str]) -> am.Machine:
    m = am.Machine(schema, handler_timeout=None)
    if observed:
        m.on_change(lambda *_: None)
    attrs: dict[str, object] = {}
    for name in finals:
        def final(self: object, e: am.Event, name: str = name) -> None:
            calls.append(f"{e.name} {sum(e.transition.time_before)}")
            op = nested.get(name)
            if op is not None and len(calls) < 40:
                calls.append(f"-> {getattr(e.machine, op[0])(op[1])}")
        attrs[name + "State"] = final
    m.bind_handlers(type("Finals", (), attrs)())
    return m


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas(), st.data())
def test_unobserved_replays_match_full_transitions(schema, data) -> None:
    names = list(schema)
    finals = data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    nested = data.draw(st.dictionaries(
        st.sampled_from(names), st.tuples(st.sampled_from(["add", "remove"]),
                                          st.lists(st.sampled_from(names), min_size=1,
                                                   max_size=2, unique=True)), max_size=2))
    ops = data.draw(st.lists(st.tuples(st.sampled_from(["add", "remove", "set"]),
                                       st.lists(st.sampled_from(names), min_size=1, max_size=3,
                                                unique=True)), min_size=1, max_size=30))
    calls: tuple[list[str], list[str]] = ([], [])
    machines = [_machine(schema, finals, nested, observed, calls[i])
                for i, observed in enumerate((False, True))]
    # every sequence twice, so that the second pass replays what the first one cached
    for op, states in ops + ops:
        outcomes = []
        for i, m in enumerate(machines):
            calls[i].clear()
            res = getattr(m, op)(states)
            outcomes.append((res, m.clock(), m.active_states(), m.queue_tick, calls[i][:]))
        assert outcomes[0] == outcomes[1], (op, states)


def test_replays_happen_and_are_exact() -> None:
    """A, B toggled with a final handler for A only; C{Auto, Require B}: REPLAY_FINALS for
    `add A`, REPLAY_LEAN for `add B` and its Auto transition."""
    calls: list[str] = []

    class H:
        def AState(self, e: am.Event) -> None:
            calls.append(f"AState {e.transition.time_after}")

    schema = {"A": am.State(remove=["B"]), "B": am.State(remove=["A"]),
              "C": am.State(auto=True, require=["B"])}
    m = am.Machine(schema, handlers=H())
    m.verify_states(["A", "B", "C", "Exception"])
    for _ in range(3):
        assert m.add("A") == am.Result.EXECUTED
        assert m.add("B") == am.Result.EXECUTED
    replays = {plan.replay for plan in m._plans.values()}
    assert {REPLAY_FINALS, REPLAY_LEAN} <= replays
    assert m.clock() == {"A": 6, "B": 5, "C": 5, "Exception": 0}
    assert calls == ["AState [1, 0, 0, 0]", "AState [3, 2, 2, 0]", "AState [5, 4, 4, 0]"]
    assert m.queue_tick == 7
