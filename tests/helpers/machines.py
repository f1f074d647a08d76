"""Shared helpers for the machine test suite (Go `NewNoRels`, `NewRels`, `trackTransitions`)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import amnode as am
import amnode.machine.handlers as handlers_module

NO_RELS_NAMES = ["A", "B", "C", "D", "Exception"]


def no_rels_schema() -> dict[str, am.State]:
    """`A, B, C, D` without relations (Exception is added by the machine)."""
    return {"A": am.State(), "B": am.State(), "C": am.State(), "D": am.State()}


def rels_schema() -> dict[str, am.State]:
    """`A{Auto, Require C}, B{Multi, Add C}, C{After D}, D{Add C, B}` (Go NewRels)."""
    return {
        "A": am.State(auto=True, require=["C"]),
        "B": am.State(multi=True, add=["C"]),
        "C": am.State(after=["D"]),
        "D": am.State(add=["C", "B"]),
    }


def new_machine(schema: Mapping[str, Any], initial: Iterable[str] | None = None,
                **kwargs: Any) -> am.Machine:
    """A machine with `schema`, optionally `set` to `initial` states."""
    m = am.Machine(schema, **kwargs)
    if initial:
        res = m.set(list(initial))
        assert res == am.Result.EXECUTED, f"initial set {initial} -> {res}"
    return m


def new_no_rels(initial: Iterable[str] | None = None, **kwargs: Any) -> am.Machine:
    """Go `NewNoRels(t, initial)`: A, B, C, D (+Exception), no relations."""
    return new_machine(no_rels_schema(), initial, **kwargs)


def new_rels(initial: Iterable[str] | None = None, **kwargs: Any) -> am.Machine:
    """Go `NewRels(t, initial)`."""
    return new_machine(rels_schema(), initial, **kwargs)


def active(m: am.Machine) -> set[str]:
    """The active states as a set (Go assertStates uses ElementsMatch)."""
    return set(m.active_states())


def capture_logs(m: am.Machine, level: am.LogLevel = am.LogLevel.EVERYTHING) -> list[str]:
    """Route the machine's log lines to a list (Go captureLog, which sets LogEverything)."""
    lines: list[str] = []
    m.logger = lambda _lvl, line: lines.append(line)
    m.log_level = level
    return lines


def joined(lines: list[str]) -> str:
    return "\n".join(lines)


class Recorder:
    """Go's `History` handler struct for trackTransitions: records names in order and counts.

    Negotiation methods return None (accept). `BAny` is kept from Go's struct: it is no handler
    name for these machines and must never be called.
    """

    HANDLERS = (
        "AnyEnter", "AnyState", "AD", "AC", "AExit", "AEnd", "AA", "AState", "AB", "BEnter",
        "BEnd", "BState", "BB", "BExit", "BD", "BAny", "BC", "CEnter", "CState", "DEnter",
        "DState",
    )

    def __init__(self) -> None:
        self.order: list[str] = []
        self.counter: Counter[str] = Counter()

    def event(self, name: str) -> None:
        self.order.append(name)
        self.counter[name] += 1

    def index(self, name: str) -> int:
        """Position of the first call of `name`, -1 if never called."""
        try:
            return self.order.index(name)
        except ValueError:
            return -1

    def assert_order(self, names: list[str]) -> None:
        """Go assertOrder: each name's first call comes before the next name's first call."""
        for a, b in itertools.pairwise(names):
            ia, ib = self.index(a), self.index(b)
            assert ia >= 0, f"{a} was never called; history {self.order}"
            assert ib > ia, f"expected {a} before {b}; history {self.order}"

    def assert_counts(self, expected: int) -> None:
        for name, count in self.counter.items():
            assert count == expected, f"{name} called {count}x, expected {expected}"


def _make_method(name: str):
    def method(self: Recorder, e: am.Event) -> None:
        self.event(name)

    method.__name__ = name
    return method


for _name in Recorder.HANDLERS:
    setattr(Recorder, _name, _make_method(_name))
del _name


def track_transitions(m: am.Machine, id: str | None = "history") -> Recorder:
    """Bind a Recorder to `m` (Go trackTransitions)."""
    rec = Recorder()
    m.bind_handlers(rec, id=id)
    return rec


class EventLog(am.Tracer):
    """A tracer recording hook names and a few fields of what each hook sees."""

    def __init__(self, collect_steps: bool = False) -> None:
        self.collect_steps = collect_steps
        self.calls: list[tuple[str, Any]] = []

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def transition_init(self, t: am.Transition) -> None:
        self.calls.append(("init", (list(t.called), list(t.targets), t.accepted)))

    def transition_start(self, t: am.Transition) -> None:
        self.calls.append(("start", (list(t.called), t.accepted)))

    def transition_finals(self, t: am.Transition) -> None:
        self.calls.append(("finals", (list(t.called), list(t.time_after))))

    def transition_end(self, t: am.Transition) -> None:
        self.calls.append(("end", (list(t.called), t.accepted, t.completed)))

    def mutation_queued(self, m: am.Machine, mut: am.Mutation) -> None:
        self.calls.append(("queued", (str(mut.type), list(mut.called), mut.queue_tick,
                                      mut.is_auto)))

    def handler_start(self, t: am.Transition, binding_id: str, handler: str) -> None:
        self.calls.append(("handler_start", (binding_id, handler)))

    def handler_end(self, t: am.Transition, binding_id: str, handler: str) -> None:
        self.calls.append(("handler_end", (binding_id, handler)))

    def queue_end(self, m: am.Machine) -> None:
        self.calls.append(("queue_end", None))

    def machine_init(self, m: am.Machine) -> None:
        self.calls.append(("machine_init", m.id))

    def machine_dispose(self, machine_id: str) -> None:
        self.calls.append(("machine_dispose", machine_id))

    def new_submachine(self, parent: am.Machine, m: am.Machine) -> None:
        self.calls.append(("new_submachine", (parent.id, m.id)))

    def schema_change(self, m: am.Machine, old: am.Schema) -> None:
        self.calls.append(("schema_change", sorted(old)))

    def verify_states(self, m: am.Machine) -> None:
        self.calls.append(("verify_states", list(m.state_names)))


class FakeClock:
    """A clock that moves only when told to: a handler "runs" for 0.2 s by calling
    `advance(0.2)`, so timeout tests neither sleep nor depend on the machine's speed."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_clock(monkeypatch: Any) -> FakeClock:
    """Make handler dispatch read a `FakeClock` (the seam in docs/machine.md §4.8): handler
    durations (`handlers.perf_counter`) and the deadline backoff (`handlers.monotonic`)."""
    clock = FakeClock()
    monkeypatch.setattr(handlers_module, "perf_counter", clock)
    monkeypatch.setattr(handlers_module, "monotonic", clock)
    return clock
