"""Relation resolution: turns "states to set" into target states (Go DefaultRelationsResolver).

The algorithm is Go's, step for step (docs/machine.md §8, row 1), with every place where Go
iterates a map replaced by the machine's state order so that results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import StateUnknownError
from .log import LogLevel
from .mutation import Mutation, MutationType
from .steps import Relation, Step, StepType

if TYPE_CHECKING:
    from .machine import Machine
    from .schema import State
    from .transition import Transition

_OPS = int(LogLevel.OPS)
_DECISIONS = int(LogLevel.DECISIONS)
_EVERYTHING = int(LogLevel.EVERYTHING)
_REMOVE = MutationType.REMOVE


class Resolver:
    """The default resolver of Add, Remove, Require and After relations."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        #: state -> position in the Require topology (required states first); absent = -1
        self._topology: dict[str, int] = {}
        #: state -> states whose Remove lists it, in state order
        self._removers: dict[str, tuple[str, ...]] = {}

    def new_schema(self) -> None:
        """Recompute the Require topology and reverse Remove index after a schema change."""
        m = self.machine
        schema, names = m._schema, m._names
        order: list[str] = []
        visited: set[str] = set()
        temp: set[str] = set()
        cycle = ""

        def visit(name: str) -> bool:
            nonlocal cycle
            if name in temp:
                cycle = name
                return False
            if name in visited:
                return True
            temp.add(name)
            state = schema.get(name)
            for req in state.require if state else ():
                if not visit(req):
                    return False
            temp.discard(name)
            visited.add(name)
            order.append(name)
            return True

        ok = True
        for name in names:
            if schema[name].require and name not in visited and not visit(name):
                ok = False
                break
        if ok:
            self._topology = {name: i for i, name in enumerate(order)}
        else:
            self._topology = {}
            m._log(LogLevel.CHANGES,
                   "[resolver] relation error: state %s has a Require cycle for %s", cycle, m.id)
        removers: dict[str, list[str]] = {}
        for name in names:
            for target in schema[name].remove:
                removers.setdefault(target, []).append(name)
        self._removers = {k: tuple(v) for k, v in removers.items()}

    # --- target states ---

    def target_states(self, t: Transition, states_to_set: list[str]) -> list[str]:
        """Resolve relations for `states_to_set`; the result is sorted in handler order."""
        m = self.machine
        schema = m._schema
        steps = t.steps if t._steps_on else None
        s1 = list(dict.fromkeys(self._parse_add(t, list(dict.fromkeys(states_to_set)), steps)))
        s2 = self._parse_require(t, s1, steps)

        # Remove relations: walk from the end; a state blocked by a not-yet-blocked state is dropped
        removers = self._removers
        blocked: set[str] = set()
        r1: list[str] = []
        if removers:
            for name in reversed(s2):
                cand = removers.get(name)
                blockers = None
                if cand:
                    blockers = [b for b in s2 if b in cand]
                    if steps is not None:
                        for b in blockers:
                            steps.append(Step(StepType.RELATION, b, name, Relation.REMOVE))
                    blockers = [b for b in blockers if b not in blocked]
                if not blockers:
                    r1.append(name)
                    continue
                blocked.add(name)
                is_active = name in m._active_set
                lvl = _OPS if is_active else _DECISIONS
                if m._lvl >= lvl:
                    m._log(lvl, "[rel:remove] %s by %s", name, " ".join(blockers))
                if steps is not None:
                    steps.append(Step(StepType.DEACTIVATE if is_active
                                      else StepType.DEACTIVATE_PASSIVE, "", name))
            to_remove: set[str] = set()
            for name in r1:
                to_remove.update(schema[name].remove)
        else:
            r1 = s2[::-1]
            to_remove = set()
        r2 = [s for s in self._parse_add(t, r1, steps) if s not in to_remove]
        r2 = list(dict.fromkeys(r2))
        r2.reverse()
        target = self._parse_require(t, r2, steps)
        self.sort_states(target, steps)
        return target

    def _parse_add(self, t: Transition, states: list[str], steps: list[Step] | None) -> list[str]:
        """Append the Add targets of `states`, one level deep (Go parseAdd)."""
        schema = self.machine._schema
        before = t._before_set
        mut = t.mutation
        is_remove = mut.type == _REMOVE
        out = states
        copied = False
        for name in states:
            state = schema[name]
            if not state.add or (name in before and not state.multi):
                continue
            if is_remove:
                adds = [a for a in state.add if a not in mut.called]
                if not adds:
                    continue
            else:
                adds = state.add
            if not copied:
                out = list(states)
                copied = True
            out.extend(adds)
            if steps is not None:
                steps.extend(Step(StepType.RELATION, name, a, Relation.ADD) for a in adds)
                steps.extend(Step(StepType.ACTIVATE, "", a) for a in adds)
        return out

    def _parse_require(self, t: Transition, states: list[str],
                       steps: list[Step] | None) -> list[str]:
        """Drop states whose Require is not in the set, until nothing changes (Go parseRequire)."""
        schema = self.machine._schema
        missing: dict[str, list[str]] = {}
        while True:
            current = set(states)
            kept: list[str] = []
            for name in states:
                req = schema[name].require
                if not req:
                    kept.append(name)
                    continue
                lacking = [r for r in req if r not in current]
                if steps is not None:
                    self._require_steps(t, name, req, lacking, steps)
                if lacking:
                    missing[name] = lacking
                else:
                    kept.append(name)
            if len(kept) == len(states):
                break
            states = kept
        if missing:
            m = self.machine
            lvl = _DECISIONS if t.mutation.is_auto else _OPS
            if m._lvl >= lvl:
                text = " ".join(f"{k}(-{' -'.join(v)})" for k, v in missing.items())
                m._log(lvl, "[reject:auto] %s" if t.mutation.is_auto else "[reject] %s", text)
        return states

    @staticmethod
    def _require_steps(t: Transition, name: str, req: list[str], lacking: list[str],
                       steps: list[Step]) -> None:
        called = name in t.mutation.called
        for r in req:
            steps.append(Step(StepType.RELATION, name, r, Relation.REQUIRE))
            if r in lacking:
                steps.append(Step(StepType.DEACTIVATE_PASSIVE, name, ""))
                if called:
                    steps.append(Step(StepType.CANCEL, "", r))

    # --- ordering ---

    def sort_states(self, states: list[str], steps: list[Step] | None = None) -> None:
        """Sort in place: Require topology first, then After (Go SortStates, same stable sort)."""
        if len(states) < 2:
            return
        topo = self._topology
        if topo:
            states.sort(key=lambda s: topo.get(s, -1))
        schema = self.machine._schema
        if not any(schema[s].after for s in states):
            return

        def less(a: str, b: str) -> bool:
            if b in schema[a].after:
                if steps is not None:
                    steps.append(Step(StepType.RELATION, b, a, Relation.AFTER))
                return False
            if a in schema[b].after:
                if steps is not None:
                    steps.append(Step(StepType.RELATION, a, b, Relation.AFTER))
                return True
            return False

        go_stable_sort(states, less)

    # --- auto states ---

    def new_auto_mutation(self) -> Mutation | None:
        """An add of every inactive Auto state not removed by an active state, in state order."""
        to_add = self.auto_states_to_add()
        if to_add is None:
            return None
        return Mutation(MutationType.ADD, to_add, None, is_auto=True)

    def auto_states_to_add(self) -> list[str] | None:
        """Every inactive Auto state not removed by an active state, in state order (None:
        none); what `new_auto_mutation` adds."""
        m = self.machine
        active = m._active_set
        to_add: list[str] = []
        for name in m._auto_states:
            if name in active:
                continue
            blocker = next((a for a in self._removers.get(name, ()) if a in active), None)
            if blocker is not None:
                if m._lvl >= _EVERYTHING:
                    m._log(_EVERYTHING, "[auto:rel:remove] %s by %s", name, blocker)
                continue
            to_add.append(name)
        return to_add or None

    # --- relation queries ---

    def relations_of(self, state: str) -> list[Relation]:
        """Kinds of outbound relations a state has, in Go's order (add, require, remove, after)."""
        st = self._state(state)
        rels = ((Relation.ADD, st.add), (Relation.REQUIRE, st.require),
                (Relation.REMOVE, st.remove), (Relation.AFTER, st.after))
        return [rel for rel, targets in rels if targets]

    def relations_between(self, from_state: str, to_state: str) -> list[Relation]:
        """Outbound relations from one state to another, in Go's order."""
        st = self._state(from_state)
        self._state(to_state)
        rels = ((Relation.ADD, st.add), (Relation.REQUIRE, st.require),
                (Relation.REMOVE, st.remove), (Relation.AFTER, st.after))
        return [rel for rel, targets in rels if to_state in targets]

    def inbound_relations_of(self, to_state: str) -> list[str]:
        """States with any relation pointing at `to_state`, in state order."""
        self._state(to_state)
        schema = self.machine._schema
        return [name for name in self.machine._names if name != to_state and any(
            to_state in rel for rel in (schema[name].add, schema[name].require,
                                        schema[name].remove, schema[name].after))]

    def _state(self, name: str) -> State:
        try:
            return self.machine._schema[name]
        except KeyError:
            raise StateUnknownError(f"state {name} not defined in schema for "
                                    f"{self.machine.id}") from None


def go_stable_sort(data: list[str], less: Callable[[str, str], bool]) -> None:
    """Go's `sort.SliceStable` (insertion sort in blocks of 20, then SymMerge), in place.

    Re-implemented because the After relation's `less` is not a strict weak order, so only the
    same algorithm gives the same order as the reference.
    """
    n = len(data)

    def lt(i: int, j: int) -> bool:
        return less(data[i], data[j])

    def swap(i: int, j: int) -> None:
        data[i], data[j] = data[j], data[i]

    def insertion(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and lt(j, j - 1):
                swap(j, j - 1)
                j -= 1

    def swap_range(a: int, b: int, k: int) -> None:
        for i in range(k):
            swap(a + i, b + i)

    def rotate(a: int, m: int, b: int) -> None:
        i, j = m - a, b - m
        while i != j:
            if i > j:
                swap_range(m - i, m, j)
                i -= j
            else:
                swap_range(m - i, m + j - i, i)
                j -= i
        swap_range(m - i, m, i)

    def sym_merge(a: int, m: int, b: int) -> None:
        if m - a == 1:
            i, j = m, b
            while i < j:
                h = (i + j) >> 1
                if lt(h, a):
                    i = h + 1
                else:
                    j = h
            for k in range(a, i - 1):
                swap(k, k + 1)
            return
        if b - m == 1:
            i, j = a, m
            while i < j:
                h = (i + j) >> 1
                if not lt(m, h):
                    i = h + 1
                else:
                    j = h
            for k in range(m, i, -1):
                swap(k, k - 1)
            return
        mid = (a + b) >> 1
        nn = mid + m
        if m > mid:
            start, r = nn - b, mid
        else:
            start, r = a, m
        p = nn - 1
        while start < r:
            c = (start + r) >> 1
            if not lt(p - c, c):
                start = c + 1
            else:
                r = c
        end = nn - start
        if start < m < end:
            rotate(start, m, end)
        if a < start < mid:
            sym_merge(a, start, mid)
        if mid < end < b:
            sym_merge(mid, end, b)

    block = 20
    a, b = 0, block
    while b <= n:
        insertion(a, b)
        a = b
        b += block
    insertion(a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            sym_merge(a, a + block, b)
            a = b
            b += 2 * block
        if a + block < n:
            sym_merge(a, a + block, n)
        block *= 2
