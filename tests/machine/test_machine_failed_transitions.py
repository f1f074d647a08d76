"""A handler that raises fails its whole transition (docs/machine.md §4.7).

A raising negotiation handler cancels the transition it ran in, even an Auto one: unlike a
`False` veto, it never drops just its own Auto state and lets the others activate. The example
is the one differential testing against the Go reference found; the property test states the
general rule for random schemas.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amnode as am


def test_raising_enter_of_auto_state_cancels_the_whole_auto_transition():
    log: list[object] = []

    class H:
        def AEnter(self, e: am.Event) -> None:
            if "boom" not in log:
                log.append("boom")
                raise ValueError("boom")

        def AnyEnter(self, e: am.Event) -> None:
            log.append(list(e.transition.called))

        def BState(self, e: am.Event) -> None:
            log.append(f"BState err={e.machine.is_err()}")

    m = am.Machine({"A": am.State(auto=True), "B": am.State(auto=True), "C": {}}, handlers=H())
    m.set("C")
    # the Go reference's log: the Auto transition is canceled as a whole, Exception is added,
    # and the Auto states are tried again afterwards
    assert log == [["C"], "boom", ["Exception"], ["A", "B"], "BState err=True"]
    assert sorted(m.active_states()) == ["A", "B", "C", "Exception"]


@pytest.mark.parametrize("kind", ["AEnter", "BExit", "BB", "CA", "BA", "AnyEnter"])
def test_every_negotiation_loop_respects_a_failed_transition(kind: str) -> None:
    """Exit, Enter, self, state-to-state and Any handlers of the Auto transition `add A`, made
    while B (Auto) is active, when C arrives: a raise in any of them cancels all of it."""
    schema = {"A": am.State(auto=True, require=["C"], remove=["B"] if kind == "BExit" else []),
              "B": am.State(auto=True), "C": am.State()}
    m = am.Machine(schema)
    m.add("B")
    failed: list[am.Transition] = []

    def boom(self: object, e: am.Event) -> None:
        if e.transition.is_auto and not failed:
            failed.append(e.transition)
            raise ValueError(kind)

    m.bind_handlers(type("H", (), {kind: boom})())
    before = m.clock()
    m.add("C")
    (t,) = failed
    assert t.is_auto and t.failed and not t.accepted
    assert list(t.time_after) == list(t.time_before)
    # C's own transition, then Exception, then the Auto states again: A activates (removing B
    # when A removes it)
    removed_b = {"B": before["B"] + 1} if kind == "BExit" else {}
    assert m.clock() == {**before, "C": 1, "Exception": 1, "A": 1, **removed_b}
    assert m.is_err()


class _Transitions(am.Tracer):
    """Every completed transition, in order, with the clock it left."""

    def __init__(self) -> None:
        self.done: list[tuple[am.Transition, list[int]]] = []

    def transition_end(self, t: am.Transition) -> None:
        self.done.append((t, list(t.machine.time())))


NAMES = ["S0", "S1", "S2", "S3", "S4"]


@st.composite
def auto_scenarios(draw: st.DrawFn) -> tuple[dict[str, am.State], list[str], list[str],
                                              list[tuple[str, list[str]]]]:
    n = draw(st.integers(min_value=2, max_value=len(NAMES)))
    names = NAMES[:n]

    def rel(name: str) -> list[str]:
        others = [s for s in names if s != name]
        return draw(st.lists(st.sampled_from(others), max_size=1))

    autos = draw(st.lists(st.sampled_from(names), min_size=1, max_size=n, unique=True))
    schema = {name: am.State(auto=name in autos, multi=draw(st.booleans()),
                             require=rel(name), add=rel(name), remove=rel(name),
                             after=rel(name)) for name in names}
    # the negotiation handlers that may raise: Exit, Enter, self and state-to-state handlers of
    # Auto states, and AnyEnter
    kinds = ["AnyEnter"]
    for a in autos:
        kinds += [a + "Enter", a + "Exit", *(b + a for b in names)]
    raisers = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3, unique=True))
    vetoes = draw(st.lists(st.sampled_from([s + "Enter" for s in names]), max_size=2,
                           unique=True))
    ops = st.tuples(st.sampled_from(["add", "remove", "set"]),
                    st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    return schema, vetoes, raisers, draw(st.lists(ops, min_size=1, max_size=10))


FINAL_SUFFIXES = ("State", "End")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auto_scenarios(), st.sampled_from([True, True, True, False]))
def test_a_raising_negotiation_handler_fails_its_transition(scenario, auto_only):
    """The transition in which a negotiation handler raised changes no tick, no final handler
    of it runs, and `Exception` is active once the mutation returns."""
    schema, vetoes, raisers, steps = scenario
    tracer = _Transitions()
    m = am.Machine(schema, tracers=[tracer], handler_timeout=None)
    finals: list[am.Transition] = []
    raised: list[am.Transition] = []
    budget = [0]

    def boom(self: object, e: am.Event) -> None:
        t = e.transition
        if budget[0] and "Exception" not in t.called and (t.is_auto or not auto_only):
            budget[0] = 0
            raised.append(t)
            raise ValueError("boom")

    def final(self: object, e: am.Event) -> None:
        finals.append(e.transition)

    vetoed: list[am.Transition] = []

    def veto(self: object, e: am.Event) -> bool:
        vetoed.append(e.transition)
        return False

    attrs: dict[str, object] = {name: veto for name in vetoes}
    for s in [*schema, "Exception"]:
        for suffix in FINAL_SUFFIXES:
            attrs[s + suffix] = final
    attrs["AnyState"] = final
    for name in raisers:
        attrs[name] = boom
    m.bind_handlers(type("RandomHandlers", (), attrs)())

    for op, states in steps:
        budget[0] = 1
        raised.clear()
        tracer.done.clear()
        finals.clear()
        vetoed.clear()
        getattr(m, op)(states)
        if not raised:
            continue
        (t,) = raised
        assert t.failed
        assert not t.accepted
        assert list(t.time_after) == list(t.time_before), "a failed transition changes no tick"
        ends = [clock for done, clock in tracer.done if done is t]
        assert ends == [list(t.time_before)], "the clock it left is the clock it found"
        assert t not in finals, "no final handler of a failed transition runs"
        i = next(i for i, (done, _) in enumerate(tracer.done) if done is t)
        after = tracer.done[i + 1][0]
        assert after.called == ["Exception"], "Exception is added next"
        if after in vetoed:
            # a state the add implies vetoed it (an active Multi state's Add applies again,
            # as in Go), e.g. S0{Multi, Add S2} active and S2Enter returning False
            assert not after.accepted
            continue
        assert after.accepted
        assert m.is_err()
