"""Assertions on a recorded run: what the machines did, stated in states, not in mocks.

    run = open_run("rec/")                       # or the pytest fixture: amnode_recording.open()
    run.machine("order-*").transitions(called="Paid", accepted=False).assert_count(2)
    run.machine("order-1001").assert_sequence("Created", "Validated", "Paid", "Shipped")
    paid = run.machine("order-1001").transitions(activated="Paid").first
    run.caused_by(paid).assert_any("the pipeline heard about the payment")
    run.assert_no_errors()

A machine pattern is an exact machine key or id, else a glob (`fnmatch`, case-sensitive) on
ids and keys: `order-*`, `nw-hash-*`, `*` for all. Filters combine with "and"; each is
optional. Failures raise `RecordingAssertionError` (an `AssertionError`, so pytest reports it
like any assert) whose message names machines, transition numbers, state names and the
`amdbg replay DIR mach://...` command that opens the debugger at the transition in question.
Recorded strings in messages are escaped (`amdbg.escape`). Built on
`amnode.telemetry.open_recording`; nothing here writes.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, overload

from amnode.telemetry import (
    ERROR_ARG,
    RecordedMachine,
    Recording,
    TransitionRecord,
    open_recording,
)

from ..describe import cancel_reason, changes_label, error_text, mutation_label
from ..escape import printable

#: at most this many transitions or machines are listed in one message
LISTED = 12


class RecordingAssertionError(AssertionError):
    """A recording did not show what a test expected; the message says what it showed."""


def is_error_transition(tx: TransitionRecord) -> bool:
    """True when `tx` activated Exception or an Err* state (the moment an error happened)."""
    return any(s == "Exception" or s.startswith("Err") for s in tx.activated)


def replay_command(path: str | os.PathLike[str], tx: TransitionRecord,
                   cwd: str | os.PathLike[str] | None = None) -> str:
    """`amdbg replay PATH mach://MACHINE/TX_ID`, shell-quoted, PATH relative to `cwd` (the
    current directory by default) when it is below it."""
    return f"amdbg replay {shlex.quote(display_path(path, cwd))} {shlex.quote(tx.url)}"


def display_path(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """`path` relative to `cwd` when it lies below it, else absolute."""
    p = Path(path).resolve()
    base = Path(cwd if cwd is not None else os.getcwd()).resolve()
    try:
        return str(p.relative_to(base))
    except ValueError:
        return str(p)


def describe(tx: TransitionRecord) -> str:
    """One line about a transition: machine, number, mutation, result and why, changes."""
    head = f"{tx.machine} #{tx.number} {mutation_label(tx)}"
    if tx.accepted:
        changes = changes_label(tx)
        text = f"{head} -> accepted" + (f", {changes}" if changes else ", no change")
        err = error_text(tx) if is_error_transition(tx) else ""
        if err:
            text += f" ({err})"
    else:
        reason = cancel_reason(tx)
        text = f"{head} -> canceled" + (f": {reason.text}" if reason else "")
    args = [(k, v) for k, v in tx.args.items() if k != ERROR_ARG]
    if args:
        shown = ", ".join(f"{k}={v}" for k, v in args[:4])
        text += f" [args {shown}{', ...' if len(args) > 4 else ''}]"
    return printable(text)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _arg_text(value: Any) -> str:
    """An expected arg value as the recorder renders it (str as is, else repr)."""
    return value if isinstance(value, str) else repr(value)


def transition_filter(*, called: str | Iterable[str] | None = None,
                      accepted: bool | None = None,
                      activated: str | Iterable[str] | None = None,
                      deactivated: str | Iterable[str] | None = None,
                      type: str | None = None, auto: bool | None = None,
                      error: bool | None = None, check: bool | None = None,
                      args: Mapping[str, Any] | None = None
                      ) -> tuple[Callable[[TransitionRecord], bool], str]:
    """A predicate over transitions and a description of it (for messages).

    `called`, `activated`, `deactivated`: a state or several, all of which must be in the
    transition's called / activated / deactivated states; `accepted`: True or False (canceled);
    `type`: "add", "remove", "set"; `auto`: made by an Auto state; `error`: it activated
    Exception or an Err* state; `check`: a check (`can_add`, ...) rather than a mutation;
    `args`: these args with these values (compared as recorded: strings, else `repr`).
    """
    want_called, want_on, want_off = _names(called), _names(activated), _names(deactivated)
    want_args = {k: _arg_text(v) for k, v in args.items()} if args else None
    parts = []
    if want_called:
        parts.append(f"called {' '.join(want_called)}")
    if type is not None:
        parts.append(f"type {type}")
    if accepted is not None:
        parts.append("accepted" if accepted else "canceled")
    if want_on:
        parts.append(f"activated {' '.join(want_on)}")
    if want_off:
        parts.append(f"deactivated {' '.join(want_off)}")
    for name, flag in (("auto", auto), ("error", error), ("check", check)):
        if flag is not None:
            parts.append(name if flag else f"not {name}")
    if want_args:
        parts.append("args " + ", ".join(f"{k}={v}" for k, v in want_args.items()))

    def match(tx: TransitionRecord) -> bool:
        if accepted is not None and tx.accepted != accepted:
            return False
        if type is not None and tx.type != type:
            return False
        if auto is not None and tx.is_auto != auto:
            return False
        if check is not None and tx.is_check != check:
            return False
        if want_called and not set(want_called) <= set(tx.called):
            return False
        if want_on and not set(want_on) <= set(tx.activated):
            return False
        if want_off and not set(want_off) <= set(tx.deactivated):
            return False
        if error is not None and is_error_transition(tx) != error:
            return False
        return not want_args or all(tx.args.get(k) == v for k, v in want_args.items())

    return match, " and ".join(parts) or "any"


def _final_active(m: RecordedMachine) -> set[str]:
    """The states active after a machine's last transition."""
    return {s for s, tick in m.clock_at(len(m)).items() if tick & 1} if len(m) else set()


class Transitions(Sequence[TransitionRecord]):
    """Transitions picked from a run, in time order (end time), with assertions on them."""

    def __init__(self, items: Iterable[TransitionRecord], what: str, run: Run) -> None:
        self._items = list(items)
        self.what = what
        self.run = run

    @overload
    def __getitem__(self, i: int) -> TransitionRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[TransitionRecord]: ...

    def __getitem__(self, i: int | slice) -> TransitionRecord | list[TransitionRecord]:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[TransitionRecord]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<{len(self)} transitions: {self.what}>\n" + self.listing()

    def listing(self, limit: int = LISTED) -> str:
        """One line per transition (at most `limit`, then how many more)."""
        lines = [f"  {describe(tx)}" for tx in self._items[:limit]]
        if len(self._items) > limit:
            lines.append(f"  ... and {len(self._items) - limit} more")
        return "\n".join(lines) if lines else "  (none)"

    def where(self, **filters: Any) -> Transitions:
        """These transitions narrowed by more filters (the arguments of `transitions`)."""
        match, text = transition_filter(**filters)
        return Transitions([tx for tx in self._items if match(tx)],
                           f"{self.what} and {text}", self.run)

    @property
    def first(self) -> TransitionRecord:
        """The earliest one; RecordingAssertionError when there is none."""
        __tracebackhide__ = True
        self.assert_any()
        return self._items[0]

    @property
    def last(self) -> TransitionRecord:
        """The latest one; RecordingAssertionError when there is none."""
        __tracebackhide__ = True
        self.assert_any()
        return self._items[-1]

    @property
    def numbers(self) -> list[int]:
        """Their numbers within their machines."""
        return [tx.number for tx in self._items]

    def assert_count(self, n: int, why: str = "") -> Transitions:
        """Exactly `n` of them."""
        __tracebackhide__ = True
        if len(self._items) != n:
            self._fail(f"expected {n} transition(s) {self.what}, found {len(self._items)}", why)
        return self

    def assert_any(self, why: str = "") -> Transitions:
        """At least one."""
        __tracebackhide__ = True
        if not self._items:
            self._fail(f"expected a transition {self.what}, found none", why)
        return self

    def assert_none(self, why: str = "") -> Transitions:
        """None at all; the message lists them and opens the first."""
        __tracebackhide__ = True
        if self._items:
            self._fail(f"expected no transition {self.what}, found {len(self._items)}", why,
                       at=self._items[0])
        return self

    def _fail(self, head: str, why: str, at: TransitionRecord | None = None) -> None:
        __tracebackhide__ = True
        lines = [head + (f" ({why})" if why else ""), self.listing()]
        if at is not None:
            lines.append(f"  open it: {self.run.replay_command(at)}")
        raise RecordingAssertionError("\n".join(lines))


class Machines(Sequence[RecordedMachine]):
    """The machines of a run that match a pattern, in creation order."""

    def __init__(self, machines: Iterable[RecordedMachine], pattern: str, run: Run) -> None:
        self._items = list(machines)
        self.pattern = pattern
        self.run = run

    @overload
    def __getitem__(self, i: int) -> RecordedMachine: ...

    @overload
    def __getitem__(self, i: slice) -> list[RecordedMachine]: ...

    def __getitem__(self, i: int | slice) -> RecordedMachine | list[RecordedMachine]:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[RecordedMachine]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<machines {self.pattern!r}: {', '.join(self.keys)}>"

    @property
    def keys(self) -> list[str]:
        """The machines' keys (ids; `id#2` for a repeated id)."""
        return [printable(m.key) for m in self._items]

    def one(self) -> RecordedMachine:
        """The only machine matched; RecordingAssertionError when several are."""
        __tracebackhide__ = True
        if len(self._items) != 1:
            raise RecordingAssertionError(
                f"{self.pattern!r} matches {len(self._items)} machines, expected one: "
                f"{', '.join(self.keys[:LISTED])}")
        return self._items[0]

    def transitions(self, **filters: Any) -> Transitions:
        """Their transitions matching the filters (see `transition_filter`), in time order."""
        match, text = transition_filter(**filters)
        found = [tx for m in self._items for tx in m.transitions() if match(tx)]
        found.sort(key=lambda tx: tx.end_ns)
        where = "in " + (self.pattern if len(self._items) != 1 else printable(self._items[0].key))
        return Transitions(found, f"{where} {text}" if text != "any" else where, self.run)

    def active(self) -> set[str]:
        """The states active after the last transition (one machine only)."""
        return _final_active(self.one())

    def assert_active(self, *states: str) -> Machines:
        """Every machine ends with these states active."""
        __tracebackhide__ = True
        for m in self._items:
            active = _final_active(m)
            missing = [s for s in states if s not in active]
            if missing:
                self._fail_state(m, f"{', '.join(missing)} not active at the end", active)
        return self

    def assert_inactive(self, *states: str) -> Machines:
        """No machine ends with any of these states active."""
        __tracebackhide__ = True
        for m in self._items:
            active = _final_active(m)
            found = [s for s in states if s in active]
            if found:
                self._fail_state(m, f"{', '.join(found)} still active at the end", active)
        return self

    def _fail_state(self, m: RecordedMachine, what: str, active: set[str]) -> None:
        __tracebackhide__ = True
        lines = [printable(f"{m.key}: {what}; active: {' '.join(sorted(active)) or '(none)'}")]
        if len(m):
            lines.append(f"  open it: {self.run.replay_command(m.transition(len(m)))}")
        raise RecordingAssertionError("\n".join(lines))

    def assert_sequence(self, *expected: str | Iterable[str], exact: bool = False) -> Machines:
        """Each machine activated these states in this order.

        An item is a state or several states activated by one transition. Other activations
        may come in between, unless `exact`: then the machine's activating transitions are
        exactly these, one per item (each activating at least the item's states).
        """
        __tracebackhide__ = True
        if not expected:
            raise ValueError("assert_sequence needs at least one state")
        items = [_names(x) or () for x in expected]
        if not self._items:
            raise RecordingAssertionError(f"no machine matches {self.pattern!r}")
        for m in self._items:
            self._sequence(m, items, exact)
        return self

    def _sequence(self, m: RecordedMachine, items: list[tuple[str, ...]], exact: bool) -> None:
        __tracebackhide__ = True
        acts = [tx for tx in m.transitions() if tx.accepted and tx.activated]
        want = " -> ".join("+".join(i) for i in items)
        matched: list[tuple[tuple[str, ...], TransitionRecord]] = []
        pos = 0
        problem = ""
        at: TransitionRecord | None = None
        for item in items:
            if exact:
                if pos < len(acts) and set(item) <= set(acts[pos].activated):
                    matched.append((item, acts[pos]))
                    pos += 1
                    continue
                got = describe(acts[pos]) if pos < len(acts) else "nothing more"
                at = acts[pos] if pos < len(acts) else None
                problem = f"expected {'+'.join(item)} next, got {got}"
                break
            while pos < len(acts) and not set(item) <= set(acts[pos].activated):
                pos += 1
            if pos == len(acts):
                after = f" after #{matched[-1][1].number}" if matched else ""
                problem = f"{'+'.join(item)} was not activated{after}"
                break
            matched.append((item, acts[pos]))
            pos += 1
        if not problem and exact and pos < len(acts):
            at = acts[pos]
            problem = f"more activations after the last expected one: {describe(acts[pos])}"
        if not problem:
            return
        lines = [printable(f"{m.key}: activations do not follow {want}")]
        if matched:
            lines.append("  matched     " + ", ".join(
                f"{'+'.join(i)} at #{tx.number}" for i, tx in matched))
        lines.append(f"  {'problem' if exact else 'missing'}     {printable(problem)}")
        shown = ", ".join(f"#{tx.number} {changes_label(tx)}" for tx in acts[:LISTED * 2])
        more = f", ... and {len(acts) - LISTED * 2} more" if len(acts) > LISTED * 2 else ""
        lines.append(f"  activations {printable(shown) or '(none)'}{more}")
        if at is None:
            at = matched[-1][1] if matched else (acts[0] if acts else None)
        if at is not None:
            lines.append(f"  open it: {self.run.replay_command(at)}")
        raise RecordingAssertionError("\n".join(lines))


class Run:
    """A recorded run opened for assertions (see the module docstring)."""

    def __init__(self, recording: Recording, *, cwd: str | os.PathLike[str] | None = None
                 ) -> None:
        self.recording = recording
        self.path = recording.path
        self.cwd = cwd
        self._caused: dict[tuple[str, str], list[TransitionRecord]] | None = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the recording's files (decoded records stay usable)."""
        self.recording.close()

    def __repr__(self) -> str:
        return f"<Run {self.path} {len(self.recording.machines)} machines>"

    def machines(self, pattern: str = "*") -> Machines:
        """The machines whose key or id is `pattern`, else matches it as a glob (maybe none)."""
        rec = self.recording
        exact = [m for m in rec.machines if pattern in (m.key, m.id)]
        found = exact or [m for m in rec.machines if fnmatch.fnmatchcase(m.id, pattern)
                          or fnmatch.fnmatchcase(m.key, pattern)]
        return Machines(found, printable(pattern), self)

    def machine(self, pattern: str) -> Machines:
        """Like `machines`, but at least one must match (RecordingAssertionError otherwise,
        listing the machines there are)."""
        __tracebackhide__ = True
        found = self.machines(pattern)
        if not found:
            keys = [printable(m.key) for m in self.recording.machines]
            more = f", ... and {len(keys) - LISTED * 2} more" if len(keys) > LISTED * 2 else ""
            raise RecordingAssertionError(
                f"no machine matches {printable(pattern)!r}; recorded: "
                f"{', '.join(keys[:LISTED * 2]) or '(none)'}{more}")
        return found

    def transitions(self, **filters: Any) -> Transitions:
        """Transitions of every machine matching the filters, in time order."""
        return self.machines("*").transitions(**filters)

    def errors(self) -> Transitions:
        """Every transition that activated Exception or an Err* state, in time order."""
        found = self.machines("*").transitions(error=True)
        found.what = "that activated an error state"
        return found

    def assert_no_errors(self) -> None:
        """No machine activated Exception or an Err* state."""
        __tracebackhide__ = True
        self.errors().assert_none()

    def source_of(self, tx: TransitionRecord) -> TransitionRecord | None:
        """The transition that caused `tx` (its recorded source), if it was recorded."""
        if tx.source is None:
            return None
        for m in self.recording.find_machines(tx.source.machine_id):
            found = m.transition_by_id(tx.source.tx_id)
            if found is not None:
                return found
        return self.recording.transition_by_id(tx.source.tx_id)

    def caused_by(self, tx: TransitionRecord, *, deep: bool = False) -> Transitions:
        """Transitions (of any machine) whose source is `tx`; with `deep`, also what those
        caused, and so on. In time order."""
        index = self._caused_index()
        out: dict[tuple[str, str], TransitionRecord] = {}
        todo = [tx]
        while todo:
            cur = todo.pop()
            for t in index.get((cur.machine_id, cur.id), []):
                key = (t.machine, t.id)
                if key not in out:
                    out[key] = t
                    if deep:
                        todo.append(t)
        found = sorted(out.values(), key=lambda t: t.end_ns)
        what = f"caused by {describe(tx)}" + (" (directly or not)" if deep else "")
        return Transitions(found, what, self)

    def _caused_index(self) -> dict[tuple[str, str], list[TransitionRecord]]:
        if self._caused is None:
            index: dict[tuple[str, str], list[TransitionRecord]] = {}
            for m in self.recording.machines:
                for t in m.transitions():
                    if t.source is not None:
                        index.setdefault((t.source.machine_id, t.source.tx_id), []).append(t)
            self._caused = index
        return self._caused

    def replay_command(self, tx: TransitionRecord) -> str:
        """The command that opens the debugger at `tx`."""
        return replay_command(self.path, tx, self.cwd)


def open_run(path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None
             ) -> Run:
    """Open a recording (file or directory) for assertions; `RecordingError` when there is
    none. Paths in messages are relative to `cwd` (default: the current directory)."""
    return Run(open_recording(path), cwd=cwd)


__all__ = ["Machines", "RecordingAssertionError", "Run", "Transitions", "describe",
           "display_path", "is_error_transition", "open_run", "replay_command",
           "transition_filter"]
