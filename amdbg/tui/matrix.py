"""What the matrix and rain views show, UI-independent (no Textual), so the views and the tests
read the same facts.

* The **matrix** of one transition: a "called" row (1 where the state was called), a tick-delta
  row (how much each state's tick moved) and a state-by-state relation matrix: cell
  [target, source] holds the step-type bits (rel 1, handler 2, activate 4, deactivate 8,
  passive deactivate 16, called 32, cancel 64) of the steps from `source` to `target`, ORed
  (a step naming one state only counts on the diagonal).
* A **rain** row: one character per state for one transition — `1` active, `2` active and
  touched, `|` deactivated, `c` called but canceled, `*` touched (inactive), `.` nothing.

Columns follow a list of state indexes (all states, or the states of a group).
"""

from __future__ import annotations

from dataclasses import dataclass

from amnode.telemetry import StepRecord, TransitionRecord
from amnode.telemetry.records import STEP_TYPES

RAIN_ACTIVE = "1"
RAIN_ACTIVE_TOUCHED = "2"
RAIN_DEACTIVATED = "|"
RAIN_CANCELED_CALL = "c"
RAIN_TOUCHED = "*"
RAIN_NOTHING = "."

#: the rain legend, for the help screen and the docs
RAIN_LEGEND: tuple[tuple[str, str], ...] = (
    (RAIN_ACTIVE, "active"),
    (RAIN_ACTIVE_TOUCHED, "active and touched by the transition"),
    (RAIN_DEACTIVATED, "deactivated by the transition"),
    (RAIN_CANCELED_CALL, "called, but the transition was canceled"),
    (RAIN_TOUCHED, "touched (named by a step), inactive"),
    (RAIN_NOTHING, "nothing"),
)

_STEP_BITS = {name: bit for bit, name in STEP_TYPES.items()}
_ERROR_PREFIX = "Err"


def is_error_state(name: str) -> bool:
    """`Exception` or an `Err*` state."""
    return name == "Exception" or name.startswith(_ERROR_PREFIX)


def columns(names: list[str], group: list[int] | None) -> list[int]:
    """State indexes shown as columns: every state, or the group's (in schema order)."""
    if group is None:
        return list(range(len(names)))
    wanted = set(group)
    return [i for i in range(len(names)) if i in wanted]


@dataclass(frozen=True, slots=True)
class RainCell:
    """One state in one rain row."""

    char: str
    called: bool
    active: bool
    error: bool


def rain_row(tx: TransitionRecord, cols: list[int]) -> list[RainCell]:
    """The rain cells of `tx` for the states at indexes `cols`."""
    names, before, after = tx.state_names, tx.time_before, tx.time_after
    touched = set(tx.touched)
    called = set(tx.called)
    out = []
    for i in cols:
        if i >= len(names):
            out.append(RainCell(" ", False, False, False))
            continue
        name = names[i]
        b = before[i] if i < len(before) else 0
        a = after[i] if i < len(after) else 0
        is_called = name in called
        active = bool(a & 1)
        changed = a != b
        if is_called and not tx.accepted:
            ch = RAIN_CANCELED_CALL
        elif b & 1 and not active:
            ch = RAIN_DEACTIVATED
        elif active:
            ch = RAIN_ACTIVE_TOUCHED if changed or name in touched else RAIN_ACTIVE
        elif name in touched or changed:
            ch = RAIN_TOUCHED
        else:
            ch = RAIN_NOTHING
        out.append(RainCell(ch, is_called, active, active and is_error_state(name)))
    return out


def step_ends(step: StepRecord, index: dict[str, int]) -> tuple[int, int] | None:
    """(source, target) state indexes of a step; a one-state step is (s, s); None when a
    state is unknown to the schema."""
    src = step.from_state or step.to_state
    dst = step.to_state or step.from_state
    if src not in index or dst not in index:
        return None
    return index[src], index[dst]


@dataclass(frozen=True, slots=True)
class Matrix:
    """The matrix of one transition (as of `steps` of its steps), over the states `cols`."""

    cols: list[int]
    names: list[str]
    called: list[int]
    deltas: list[int]
    #: relations[r][c]: bits of the steps from cols[c] to cols[r]
    relations: list[list[int]]

    @property
    def delta_sum(self) -> int:
        """Sum of the tick deltas (the title's `Matrix:N`)."""
        return sum(self.deltas)


def build_matrix(tx: TransitionRecord, cols: list[int], steps: int | None = None) -> Matrix:
    """The matrix of `tx` over the states `cols`; `steps` limits the relation matrix to the
    first `steps` steps (stepping through a transition)."""
    names = tx.state_names
    called = set(tx.called)
    before, after = tx.time_before, tx.time_after
    deltas = [(after[i] if i < len(after) else 0) - (before[i] if i < len(before) else 0)
              for i in cols]
    pos = {c: k for k, c in enumerate(cols)}
    index = {n: i for i, n in enumerate(names)}
    rel = [[0] * len(cols) for _ in cols]
    for s in tx.steps[:steps] if steps is not None else tx.steps:
        ends = step_ends(s, index)
        if ends is None:
            continue
        src, dst = pos.get(ends[0]), pos.get(ends[1])
        if src is None or dst is None:
            continue
        rel[dst][src] |= _STEP_BITS.get(s.type, 0)
    return Matrix(cols, [names[i] if i < len(names) else "?" for i in cols],
                  [1 if i < len(names) and names[i] in called else 0 for i in cols],
                  deltas, rel)


__all__ = ["RAIN_ACTIVE", "RAIN_ACTIVE_TOUCHED", "RAIN_CANCELED_CALL", "RAIN_DEACTIVATED",
           "RAIN_LEGEND", "RAIN_NOTHING", "RAIN_TOUCHED", "Matrix", "RainCell", "build_matrix",
           "columns", "is_error_state", "rain_row", "step_ends"]
