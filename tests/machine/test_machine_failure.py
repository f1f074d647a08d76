"""`Transition.failure`: why a transition was canceled, as data, at every log level
(amnode.machine.failure)."""

from __future__ import annotations

import asyncio

from helpers.machines import fake_clock

import amnode as am


class Last(am.Tracer):
    def __init__(self) -> None:
        self.done: list[am.Transition] = []

    def transition_end(self, transition: am.Transition) -> None:
        self.done.append(transition)


def machine(handlers: object, **kw: object) -> tuple[am.Machine, Last]:
    tracer = Last()
    schema = {"A": {}, "B": {}, "Auto1": {"auto": True}, "Auto2": {"auto": True},
              "Needs": {"require": ["B"]}}
    m = am.Machine(schema, handlers=handlers, tracers=[tracer], log_level=am.LogLevel.NOTHING,
                   **kw)  # type: ignore[arg-type]
    return m, tracer


def test_veto_raise_and_relations_at_log_level_nothing() -> None:
    class H:
        def AEnter(self, e: am.Event) -> bool:
            return False

        def BState(self, e: am.Event) -> None:
            raise KeyError("k")

    m, t = machine(H())
    assert m.add("A") == am.Result.CANCELED
    assert t.done[-1].failure == am.Failure("veto", "AEnter")
    m.add("B")
    failed = next(x for x in t.done if x.called == ["B"])
    f = failed.failure
    assert f is not None and (f.kind, f.handler, f.final, f.error_type) == \
        ("raised", "BState", True, "KeyError")
    assert f.message == "'k'" and 'raise KeyError("k")' in f.traceback
    added = next(x for x in t.done if x.called == ["Exception"])
    assert added.failure is None  # accepted: its AException carries the failure
    assert added.args[am.ARG_EXCEPTION].failure is f
    m.add("Needs")  # B was rolled back: Needs' Require is not met
    assert t.done[-1].failure == am.Failure("relations", states=("Needs",))
    assert all(x.failure is None for x in t.done if x.accepted)


def test_timeouts_say_which_handler_and_phase(monkeypatch) -> None:
    clock = fake_clock(monkeypatch)

    class H:
        def AEnter(self, e: am.Event) -> None:
            clock.advance(1.0)

        def BState(self, e: am.Event) -> None:
            clock.advance(2.0)

    m, t = machine(H(), handler_timeout=0.5, handler_deadline=None)
    m.add("A")
    assert t.done[-1].failure == am.Failure("timeout", "AEnter", False, seconds=1.0)
    m.add("B")
    b = next(x for x in t.done if x.called == ["B"])
    assert b.failure == am.Failure("timeout", "BState", True, seconds=2.0)


def test_a_partial_auto_veto_is_no_failure() -> None:
    class H:
        def Auto1Enter(self, e: am.Event) -> bool:
            return False

    m, t = machine(H())
    m.add("A")
    auto = next(x for x in t.done if x.is_auto)
    assert auto.accepted and auto.failure is None and m.is_active("Auto2")


def test_an_async_handler_names_itself_in_its_exception() -> None:
    seen: list[am.AException] = []

    class H:
        async def AState(self, e: am.Event) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("late")

        def ExceptionState(self, e: am.Event) -> None:
            seen.append(e.args[am.ARG_EXCEPTION])

    async def main() -> None:
        m, _ = machine(H())
        m.add("A")
        await m.when("Exception", timeout=30)

    asyncio.run(main())
    (a,) = seen  # the Exception's args name the handler and carry its traceback
    assert a.handler == "AState" and "RuntimeError: late" in a.trace
    assert a.failure is not None and a.failure.is_async and a.failure.final
    assert a.failure.error_type == "RuntimeError" and a.failure.message == "late"
