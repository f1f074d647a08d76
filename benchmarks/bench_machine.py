"""Machine throughput against the `transitions` library, measured in the same process.

Workloads:
  a) two states toggled, one final handler each (amnode) vs `on_enter` callbacks (transitions);
  b) the relations-heavy schema of Go's NewRels (docs/machine.md §7) under a fixed random
     mutation sequence;
  c) workload (a) with a tracer bound that collects steps (what the recorder costs the machine).

Every workload runs once per round, interleaved, after an untimed warm-up round, with a
`gc.collect()` before each timed run; the table shows the median rate over the rounds, and the
ratios are medians of the per-round ratios (both peers measured in the same round, so a busy
neighbour on a shared machine slows both). Memory: traced bytes per idle machine (workload
(a)'s schema and handlers, no transition yet; and the same after workload (a) ran, with its
plan cache filled), next to a `transitions` machine of workload (a).

Usage: python benchmarks/bench_machine.py [--json] [-n TRANSITIONS] [--rounds N]
With --json the last line is one JSON object; its "ratio" is amnode's transitions per second
divided by `transitions`' on workload (a), "b_ratio" amnode's rate on (b) divided by
`transitions`' on (a).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable

import amnode as am


def rates(runs: dict[str, Callable[[int], None]], n: int, rounds: int
          ) -> dict[str, list[float]]:
    """Transitions per second of every workload in each of `rounds` interleaved rounds (after
    one untimed warm-up round)."""
    out: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds + 1):
        for name, run in runs.items():
            gc.collect()
            t0 = time.perf_counter()
            run(n)
            dt = time.perf_counter() - t0
            if r:
                out[name].append(n / dt)
    return out


def bytes_per(make: Callable[[], object], count: int = 500) -> float:
    """Traced bytes that each of `count` objects made by `make` keeps alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = [make() for _ in range(count)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return (after - before) / count


class Toggles:
    """Final handlers of workload (a)."""

    def __init__(self) -> None:
        self.count = 0

    def AState(self, e: am.Event) -> None:
        self.count += 1

    def BState(self, e: am.Event) -> None:
        self.count += 1


def toggle_machine(tracer: am.Tracer | None = None) -> am.Machine:
    """The machine of workload (a): A and B remove each other, a final handler each."""
    schema = {"A": am.State(remove=["B"]), "B": am.State(remove=["A"])}
    m = am.Machine(schema, id="bench-a", tracers=[tracer] if tracer else ())
    m.bind_handlers(Toggles())
    return m


def warm_toggle_machine() -> am.Machine:
    """A machine of workload (a) after it ran (its plan cache filled)."""
    m = toggle_machine()
    for _ in range(4):
        m.add("A")
        m.add("B")
    return m


def amnode_toggle(tracer: am.Tracer | None = None) -> Callable[[int], None]:
    """Workload (a) on amnode: A and B remove each other; add them in turn."""
    add = toggle_machine(tracer).add

    def run(n: int) -> None:
        for _ in range(n // 2):
            add("A")
            add("B")

    return run


class TogglesModel:
    """The model of workload (a) on `transitions`."""

    count = 0

    def on_a(self) -> None:
        self.count += 1

    def on_b(self) -> None:
        self.count += 1


def transitions_machine() -> object:
    """Workload (a)'s machine on `transitions`: two states, two triggers, on_enter callbacks."""
    from transitions import Machine, State

    model = TogglesModel()
    Machine(model, states=[State("A", on_enter="on_a"), State("B", on_enter="on_b")],
            transitions=[["to_a", "B", "A"], ["to_b", "A", "B"]], initial="A",
            auto_transitions=False)
    return model


def transitions_toggle() -> Callable[[int], None]:
    """Workload (a) on `transitions`: two states, two triggers, an on_enter callback each."""
    model = transitions_machine()
    to_a, to_b = model.to_a, model.to_b  # type: ignore[attr-defined]

    def run(n: int) -> None:
        for _ in range(n // 2):
            to_b()
            to_a()

    return run


def amnode_relations() -> Callable[[int], None]:
    """Workload (b): A{Auto, Require C}, B{Multi, Add C}, C{After D}, D{Add C, B}."""
    schema = {
        "A": am.State(auto=True, require=["C"]),
        "B": am.State(multi=True, add=["C"]),
        "C": am.State(after=["D"]),
        "D": am.State(add=["C", "B"]),
    }
    m = am.Machine(schema, id="bench-b")
    rnd = random.Random(42)
    names = ["A", "B", "C", "D"]
    ops = [(rnd.choice((m.add, m.remove, m.set)), rnd.sample(names, rnd.randint(1, 3)))
           for _ in range(1024)]

    def run(n: int) -> None:
        for i in range(n):
            fn, states = ops[i & 1023]
            fn(states)

    return run


class StepsTracer(am.Tracer):
    """A tracer that asks for steps and touches every transition, like a recorder would."""

    collect_steps = True

    def __init__(self) -> None:
        self.steps = 0

    def transition_end(self, transition: am.Transition) -> None:
        self.steps += len(transition.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    parser.add_argument("-n", type=int, default=20_000, help="transitions per run")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (medians)")
    args = parser.parse_args()

    workloads = {
        "a": ("a) toggle, 1 final handler each", "amnode", amnode_toggle()),
        "t": ("a) toggle, 1 on_enter each", "transitions", transitions_toggle()),
        "b": ("b) relations-heavy, random muts", "amnode", amnode_relations()),
        "c": ("c) (a) + tracer collecting steps", "amnode", amnode_toggle(StepsTracer())),
    }
    got = rates({k: w[2] for k, w in workloads.items()}, args.n, args.rounds)
    med = {k: statistics.median(v) for k, v in got.items()}
    ratio = statistics.median(a / t for a, t in zip(got["a"], got["t"], strict=True))
    b_ratio = statistics.median(b / t for b, t in zip(got["b"], got["t"], strict=True))
    idle = bytes_per(toggle_machine)
    warm = bytes_per(warm_toggle_machine)
    peer = bytes_per(transitions_machine)

    print(f"{'workload':<36} {'library':<12} {'tx/s':>12} {'us/tx':>8}   "
          f"(median of {args.rounds} rounds of {args.n:,})")
    for k, (name, lib, _run) in workloads.items():
        print(f"{name:<36} {lib:<12} {med[k]:>12,.0f} {1e6 / med[k]:>8.2f}")
    print(f"ratio amnode/transitions on (a): {ratio:.2f}")
    print(f"ratio amnode (b) / transitions (a): {b_ratio:.2f}")
    print(f"bytes per idle machine: amnode {idle:,.0f} (after (a) ran: {warm:,.0f}), "
          f"transitions {peer:,.0f}")
    if args.json:
        print(json.dumps({
            "ratio": round(ratio, 3),
            "b_ratio": round(b_ratio, 3),
            "a_amnode_tps": round(med["a"]),
            "a_transitions_tps": round(med["t"]),
            "b_relations_tps": round(med["b"]),
            "c_tracer_tps": round(med["c"]),
            "rounds": args.rounds,
            "transitions_per_run": args.n,
            "bytes_per_idle_machine": round(idle),
            "bytes_per_idle_machine_after_a": round(warm),
            "bytes_per_idle_machine_transitions": round(peer),
        }))


if __name__ == "__main__":
    main()
