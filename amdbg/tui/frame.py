"""What the panes show for one cursor position: a machine, a transition and maybe a step.

UI-independent (no Textual): `build_frame()` turns a decoded transition into state rows with
their marks, so the state view, the graph and the tests all read the same facts. A step cursor
`k` (0..len(steps)) shows the machine *as of step k*: the ticks before the transition with the
effects of its first `k` steps applied (accepted transitions only; a canceled one never
changed a tick, so its planned effects are marked but not applied).
"""

from __future__ import annotations

from dataclasses import dataclass

from amnode.telemetry import RecordedMachine, StepRecord, TransitionRecord

from ..describe import cancel_reason

#: marks, in the order the state view prints them
MARK_CALLED = "c"
MARK_ADDED = "+"
MARK_REMOVED = "\u2212"  # minus sign
MARK_HANDLER = "*"
MARK_CANCEL = "!"

_ERROR_PREFIX = "Err"


@dataclass(frozen=True, slots=True)
class StateRow:
    """One state of the selected machine at the cursor."""

    name: str
    tick: int
    auto: bool
    multi: bool
    require: tuple[str, ...]
    add: tuple[str, ...]
    remove: tuple[str, ...]
    after: tuple[str, ...]
    called: bool = False
    added: bool = False
    removed: bool = False
    handler: bool = False
    cancel: bool = False

    @property
    def active(self) -> bool:
        """Odd tick = active."""
        return bool(self.tick & 1)

    @property
    def is_error(self) -> bool:
        """`Exception` or an `Err*` state."""
        return self.name == "Exception" or self.name.startswith(_ERROR_PREFIX)

    @property
    def touched(self) -> bool:
        """Marked by the current transition (or the steps so far)."""
        return self.called or self.added or self.removed or self.handler or self.cancel

    @property
    def marks(self) -> str:
        """`+*`, minus, `!`... (called is shown by underlining, not a character)."""
        return "".join(ch for ch, on in ((MARK_ADDED, self.added), (MARK_REMOVED, self.removed),
                                         (MARK_HANDLER, self.handler),
                                         (MARK_CANCEL, self.cancel)) if on)

    def relations(self) -> list[tuple[str, tuple[str, ...]]]:
        """Non-empty relations, in the order require, add, remove, after."""
        return [(rel, targets) for rel, targets in (("require", self.require), ("add", self.add),
                                                    ("remove", self.remove),
                                                    ("after", self.after)) if targets]


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything the panes show at one cursor position."""

    machine: RecordedMachine
    tx: TransitionRecord | None
    #: None = the whole transition (state after it); 0..len(steps) = as of that step
    step: int | None
    rows: tuple[StateRow, ...]

    @property
    def step_count(self) -> int:
        """Number of steps of the transition (0 without one)."""
        return len(self.tx.steps) if self.tx is not None else 0

    def row(self, name: str) -> StateRow | None:
        """The row of state `name`, or None."""
        return next((r for r in self.rows if r.name == name), None)

    @property
    def touched(self) -> list[str]:
        """States marked at this position, in schema order."""
        return [r.name for r in self.rows if r.touched]


def step_state(step: StepRecord) -> str:
    """The state a step is about (its target, else its source)."""
    return step.to_state or step.from_state


def step_text(step: StepRecord) -> str:
    """A step as one short line, e.g. `Paid require Validated`, `handler PaidEnter`."""
    if step.type == "handler":
        return f"handler {step.handler or step_state(step)}"
    return str(step)


def _cancel_states(tx: TransitionRecord, steps: list[StepRecord]) -> set[str]:
    """States to mark `!`: targets of cancel steps, else the state of the vetoing handler."""
    if tx.accepted:
        return set()
    found = {step_state(s) for s in steps if s.type == "cancel" and step_state(s)}
    if found:
        return found
    reason = cancel_reason(tx)
    names = set(tx.state_names)
    if reason is not None and reason.by:
        for suffix in ("Enter", "Exit", "State", "End"):
            if reason.by.endswith(suffix) and reason.by[:-len(suffix)] in names:
                return {reason.by[:-len(suffix)]}
        found = {s for s in reason.by.split() if s in names}
        if found:
            return found
    # no name recorded: the state of the last negotiation handler that ran
    handlers = [s for s in steps if s.type == "handler" and not s.is_final]
    return {step_state(handlers[-1])} if handlers and step_state(handlers[-1]) else set()


def build_frame(machine: RecordedMachine, tx: TransitionRecord | None,
                step: int | None = None) -> Frame:
    """State rows for `tx` of `machine` (None: the schema with zero ticks), as of `step`."""
    if tx is None:
        schema = machine.schema
        names = list(machine.state_names)
        ticks = [0] * len(names)
        return Frame(machine, None, None, tuple(_row(n, t, schema.get(n) or {})
                                                for n, t in zip(names, ticks, strict=True)))
    version = machine.schema_at(tx.number)
    schema = version.schema
    names = list(tx.state_names)
    steps = list(tx.steps)
    if step is not None:
        step = max(0, min(step, len(steps)))
        applied = steps[:step]
    else:
        applied = steps
    called = set(tx.called) if step is None or step > 0 else set()
    handlers = {step_state(s) for s in applied if s.type == "handler"}
    if step is None:
        ticks = list(tx.time_after)
        added = set(tx.activated)
        removed = set(tx.deactivated)
        cancel = _cancel_states(tx, steps)
    else:
        ticks = list(tx.time_before)
        added, removed = set(), set()
        index = {n: i for i, n in enumerate(names)}
        for s in applied:
            name = step_state(s)
            if s.type == "activate":
                added.add(name)
                removed.discard(name)
            elif s.type in ("deactivate", "deactivate-passive"):
                removed.add(name)
                added.discard(name)
        if tx.accepted:
            for name in added | removed:
                i = index.get(name)
                if i is None or i >= len(ticks):
                    continue
                if name in added:
                    ticks[i] += 2 if ticks[i] & 1 else 1
                elif ticks[i] & 1:
                    ticks[i] += 1
            if step == len(steps):
                ticks = list(tx.time_after)
        cancel = _cancel_states(tx, applied) if step == len(steps) else {
            step_state(s) for s in applied if s.type == "cancel"}
    ticks += [0] * (len(names) - len(ticks))
    rows = tuple(_row(n, ticks[i], schema.get(n) or {}, called=n in called, added=n in added,
                      removed=n in removed, handler=n in handlers, cancel=n in cancel)
                 for i, n in enumerate(names))
    return Frame(machine, tx, step, rows)


def _row(name: str, tick: int, spec: dict, **marks: bool) -> StateRow:
    return StateRow(name, tick, bool(spec.get("auto")), bool(spec.get("multi")),
                    tuple(spec.get("require") or ()), tuple(spec.get("add") or ()),
                    tuple(spec.get("remove") or ()), tuple(spec.get("after") or ()), **marks)


__all__ = ["MARK_ADDED", "MARK_CALLED", "MARK_CANCEL", "MARK_HANDLER", "MARK_REMOVED", "Frame",
           "StateRow", "build_frame", "step_state", "step_text"]
