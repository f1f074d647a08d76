"""Compare two sessions machine by machine, by role: which states each one activated, in order.

    runs_a, runs_b = machine_runs(rec_a), machine_runs(rec_b)
    for d in compare(rec_a, rec_b):        # MachineDiff per role, A's order first
        print(d.role, d.status, d.first_divergence)

Machines are lined up by *role*: their id with the run-specific parts masked (`mask_id`), so
`ns-TCWP-dev-201626-0` (a Go run) and `ns-orders-box-093011-0` (ours) are both
`ns-<kind>-<host>-<time>-0`. Several machines with one role (e.g. the workers of a pool) are
paired in the order they were created and named `role#2`, `role#3`. A machine's *run* is its
accepted transitions that changed something, each reduced to the states it activated and
deactivated (sorted by name), so ids, times, pids, durations, canceled and empty transitions
do not count. `first_divergence` is the 1-based position in the runs where the two differ
(None when they are the same) — what a golden-run test asserts on.

Masking rules (also in docs/go-interop.md), applied to the `-`-separated parts of an id:

1. aRPC prefixes `rs-`, `rc-`, `rm-`, `rnm-` are kept and the rest is masked on its own.
2. Node machines (`ns-` supervisor, `nw-` worker, `nb-` bootstrap, `nc-` client): the 2nd
   part is `<kind>`, the 3rd `<host>`; for `ns-`, `nb-` and `nc-` a 4th made of digits only
   is `<time>` (a worker's 4th part is a random suffix, masked by rule 3).
3. Any other part of 4 or more hex digits with at least one digit is `<hex>` (random
   suffixes, all-digit ones included).
4. Everything else is kept (names, short numbers such as instance or peer numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from amnode.telemetry import RecordedMachine, Recording

RPC_PREFIXES = ("rs", "rc", "rm", "rnm")
NODE_PREFIXES = ("ns", "nw", "nb", "nc")
#: node machines whose 4th id part is a start time (a worker's is a random suffix)
TIMED_PREFIXES = ("ns", "nb", "nc")
_HEX = re.compile(r"[0-9a-fA-F]{4,}")
_DIGIT = re.compile(r"\d")


def _mask_part(part: str) -> str:
    if _HEX.fullmatch(part) and _DIGIT.search(part):
        return "<hex>"
    return part


def mask_id(machine_id: str) -> str:
    """A machine id with its run-specific parts masked (see the module docstring)."""
    parts = machine_id.split("-")
    head: list[str] = []
    while len(parts) > 1 and parts[0] in RPC_PREFIXES:
        head.append(parts.pop(0))
    if parts[0] in NODE_PREFIXES and len(parts) >= 3:
        rest = parts[3:]
        if rest and rest[0].isdigit() and parts[0] in TIMED_PREFIXES:
            rest[0] = "<time>"
        parts = [parts[0], "<kind>", "<host>", *rest]
    return "-".join([*head, *(p if p.startswith("<") else _mask_part(p) for p in parts)])


#: one step of a machine's run: (activated states, deactivated states), each sorted by name
Change = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class MachineRun:
    """A machine's changes in order (accepted transitions whose clock changed)."""

    role: str
    key: str
    changes: list[Change]
    #: the transition number each change came from (to point at it: `-m KEY -t N`)
    numbers: list[int] = field(default_factory=list)
    #: the id of the transition each change came from (its address: `mach://ID/TX_ID`)
    ids: list[str] = field(default_factory=list)
    #: the machine's id (the key without a `#2` suffix)
    machine_id: str = ""

    @property
    def activations(self) -> list[list[str]]:
        """The states each change activated, in order."""
        return [list(c[0]) for c in self.changes]


def machine_run(m: RecordedMachine, role: str) -> MachineRun:
    """The run of one recorded machine (reads its changed, accepted transitions)."""
    changes: list[Change] = []
    numbers: list[int] = []
    ids: list[str] = []
    for n in range(1, len(m) + 1):
        s = m.summary(n)
        if not s.accepted or s.is_empty or s.is_check:
            continue
        tx = m.transition(n)
        changes.append((tuple(sorted(tx.activated)), tuple(sorted(tx.deactivated))))
        numbers.append(n)
        ids.append(tx.id)
    return MachineRun(role, m.key, changes, numbers, ids, m.id)


def change_label(change: Change) -> str:
    """`+A +B -C` (activated, then deactivated), or `(no change)`."""
    on, off = change
    return " ".join([*(f"+{s}" for s in on), *(f"-{s}" for s in off)]) or "(no change)"


def roles(machines: Iterable[RecordedMachine]) -> dict[str, RecordedMachine]:
    """Machines by role, in creation order; repeated roles get `#2`, `#3`, ..."""
    out: dict[str, RecordedMachine] = {}
    seen: dict[str, int] = {}
    for m in machines:
        role = mask_id(m.id)
        seen[role] = seen.get(role, 0) + 1
        out[role if seen[role] == 1 else f"{role}#{seen[role]}"] = m
    return out


def machine_runs(rec: Recording) -> dict[str, MachineRun]:
    """Every machine's run, by role."""
    return {role: machine_run(m, role) for role, m in roles(rec.machines).items()}


@dataclass(frozen=True, slots=True)
class MachineDiff:
    """One role compared: its run in A and in B (None when only one side has the role)."""

    role: str
    a: MachineRun | None
    b: MachineRun | None

    @property
    def first_divergence(self) -> int | None:
        """1-based position of the first change that differs (a missing one counts); None
        when both runs are the same."""
        ca = self.a.changes if self.a is not None else []
        cb = self.b.changes if self.b is not None else []
        for i, (x, y) in enumerate(zip(ca, cb, strict=False)):
            if x != y:
                return i + 1
        if len(ca) != len(cb):
            return min(len(ca), len(cb)) + 1
        return None if self.a is not None and self.b is not None else 1

    @property
    def status(self) -> str:
        """"same", "differs", "only in A" or "only in B"."""
        if self.a is None:
            return "only in B"
        if self.b is None:
            return "only in A"
        return "same" if self.first_divergence is None else "differs"

    def to_json(self) -> dict[str, Any]:
        """Plain data: role, machine keys, status, first divergence, both activation lists."""
        def side(run: MachineRun | None) -> dict[str, Any] | None:
            if run is None:
                return None
            return {"machine": run.key, "changes": [
                {"transition": n, "activated": list(c[0]), "deactivated": list(c[1])}
                for n, c in zip(run.numbers, run.changes, strict=False)]}

        return {"role": self.role, "status": self.status,
                "first_divergence": self.first_divergence, "a": side(self.a),
                "b": side(self.b)}


def compare(a: Recording, b: Recording) -> list[MachineDiff]:
    """Both sessions' machines lined up by role: A's roles in A's order, then B-only ones."""
    ra, rb = machine_runs(a), machine_runs(b)
    out = [MachineDiff(role, run, rb.get(role)) for role, run in ra.items()]
    out += [MachineDiff(role, None, run) for role, run in rb.items() if role not in ra]
    return out


__all__ = ["NODE_PREFIXES", "RPC_PREFIXES", "TIMED_PREFIXES", "Change", "MachineDiff",
           "MachineRun", "change_label", "compare", "machine_run", "machine_runs", "mask_id",
           "roles"]
