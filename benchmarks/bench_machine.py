"""Machine throughput against the `transitions` library, measured in the same process.

Workloads:
  a) two states toggled, one final handler each (amnode) vs `on_enter` callbacks (transitions);
  b) the relations-heavy schema of Go's NewRels (docs/machine.md §7) under a fixed random
     mutation sequence;
  c) workload (a) with a tracer bound that collects steps (what the recorder costs the machine).

Usage: python benchmarks/bench_machine.py [--json] [-n TRANSITIONS] [--repeats N]
With --json the last line is one JSON object; its "ratio" is amnode's transitions per second
divided by `transitions`' on workload (a).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable

import amnode as am


def best_rate(run: Callable[[int], None], n: int, repeats: int) -> float:
    """Transitions per second of the fastest of `repeats` runs of `n` transitions."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


class Toggles:
    """Final handlers of workload (a)."""

    def __init__(self) -> None:
        self.count = 0

    def AState(self, e: am.Event) -> None:
        self.count += 1

    def BState(self, e: am.Event) -> None:
        self.count += 1


def amnode_toggle(tracer: am.Tracer | None = None) -> Callable[[int], None]:
    """Workload (a) on amnode: A and B remove each other; add them in turn."""
    schema = {"A": am.State(remove=["B"]), "B": am.State(remove=["A"])}
    m = am.Machine(schema, id="bench-a", tracers=[tracer] if tracer else ())
    m.bind_handlers(Toggles())
    add = m.add

    def run(n: int) -> None:
        for _ in range(n // 2):
            add("A")
            add("B")

    return run


def transitions_toggle() -> Callable[[int], None]:
    """Workload (a) on `transitions`: two states, two triggers, an on_enter callback each."""
    from transitions import Machine, State

    class Model:
        count = 0

        def on_a(self) -> None:
            self.count += 1

        def on_b(self) -> None:
            self.count += 1

    model = Model()
    Machine(model, states=[State("A", on_enter="on_a"), State("B", on_enter="on_b")],
            transitions=[["to_a", "B", "A"], ["to_b", "A", "B"]], initial="A",
            auto_transitions=False)
    to_a, to_b = model.to_a, model.to_b

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
    parser.add_argument("-n", type=int, default=40_000, help="transitions per run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    n, r = args.n, args.repeats
    rows = [
        ("a) toggle, 1 final handler each", "amnode", best_rate(amnode_toggle(), n, r)),
        ("a) toggle, 1 on_enter each", "transitions", best_rate(transitions_toggle(), n, r)),
        ("b) relations-heavy, random muts", "amnode", best_rate(amnode_relations(), n, r)),
        ("c) (a) + tracer collecting steps", "amnode",
         best_rate(amnode_toggle(StepsTracer()), n, r)),
    ]
    ratio = rows[0][2] / rows[1][2]
    print(f"{'workload':<36} {'library':<12} {'tx/s':>12} {'us/tx':>8}")
    for name, lib, rate in rows:
        print(f"{name:<36} {lib:<12} {rate:>12,.0f} {1e6 / rate:>8.2f}")
    print(f"ratio amnode/transitions on (a): {ratio:.2f}")
    if args.json:
        print(json.dumps({
            "ratio": round(ratio, 3),
            "a_amnode_tps": round(rows[0][2]),
            "a_transitions_tps": round(rows[1][2]),
            "b_relations_tps": round(rows[2][2]),
            "c_tracer_tps": round(rows[3][2]),
        }))


if __name__ == "__main__":
    main()
