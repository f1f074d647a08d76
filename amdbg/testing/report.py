"""The section a failing test's report gains: what its recorded machines did last.

    amnode recording: .amnode-recordings/test_shop.py..test_declined (1 process, 5 machines,
    ...)
    first error     order-1002 #9 add ErrPayment Exception -> accepted, +ErrPayment ...
    first canceled  order-1002 #7 add Paid -> canceled: vetoed by PaidEnter (returned False)
    open it         amdbg replay .amnode-recordings/... mach://order-1002/e9c2b43197c59b7a
    machines (last transitions)
      order-1002  12 transitions, 4 after an error
        #10 ...

"First error" is the earliest transition (by end time, any machine) that activated Exception
or an Err* state; "first canceled" the earliest canceled one that was not an Auto state's
attempt, a check or a health check (those are canceled in normal runs). The command opens the
first error, else the first canceled transition. Machines are listed with the ones holding
those transitions first, then by their last activity, latest first.
"""

from __future__ import annotations

import os
from pathlib import Path

from amnode.telemetry import RecordedMachine, Recording, RecordingError, TransitionRecord
from amnode.telemetry import open_recording as _open_recording

from ..escape import printable
from .recording import describe, display_path, is_error_transition, replay_command

#: machines listed, and transitions listed per machine
MACHINES = 8
LAST = 3


def _first(rec: Recording, want: str) -> TransitionRecord | None:
    """The earliest transition (by end time) that is an error / a notable cancel."""
    best: TransitionRecord | None = None
    for m in rec.machines:
        for n in range(1, len(m) + 1):
            s = m.summary(n)
            if want == "error":
                if not s.is_error or not s.accepted:
                    continue
                tx = m.transition(n)
                if not is_error_transition(tx):
                    continue
            else:
                if s.accepted or s.is_auto or s.is_check or s.is_health:
                    continue
                tx = m.transition(n)
            if best is None or tx.end_ns < best.end_ns:
                best = tx
            break  # later ones of this machine end later
    return best


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _cut(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _machine_line(m: RecordedMachine) -> str:
    errors = len(m.errors())
    text = f"{m.key}  {_count(len(m), 'transition')}"
    if errors:
        text += f", {errors} with an error state active"
    if m.gaps:
        text += ", records lost"
    return printable(text)


def failure_section(path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None,
                    machines: int = MACHINES, last: int = LAST) -> str | None:
    """The report section for a test that recorded into `path`, or None when nothing was
    recorded there."""
    if not Path(path).exists():
        return None
    try:
        rec = _open_recording(path)
    except RecordingError:
        return None
    with rec:
        if not rec.machines:
            return None
        procs = len({(p.host, p.pid, p.start_ns) for p in rec.processes})
        shown = display_path(path, cwd)
        lines = [f"amnode recording: {shown} ({_count(procs, 'process', 'processes')}, "
                 f"{_count(len(rec.machines), 'machine')}, "
                 f"{_count(rec.transition_count, 'transition')})"]
        if rec.corruption:
            lines.append(f"damaged: {printable(str(rec.corruption[0]))}")
        error = _first(rec, "error")
        cancel = _first(rec, "cancel")
        lines.append(f"first error     {describe(error) if error else '(none)'}")
        lines.append(f"first canceled  {describe(cancel) if cancel else '(none)'}")
        at = error or cancel
        if at is not None:
            lines.append(f"open it         {replay_command(path, at, cwd)}")
        else:
            lines.append(f"open it         amdbg replay {shown}")
        first_keys = [t.machine for t in (error, cancel) if t is not None]
        order = sorted(rec.machines, key=lambda m: (
            first_keys.index(m.key) if m.key in first_keys else len(first_keys),
            -(m.last_ns or m.created_ns)))
        lines.append("machines (last transitions)")
        for m in order[:machines]:
            lines.append(f"  {_machine_line(m)}")
            for n in range(max(1, len(m) - last + 1), len(m) + 1):
                tx = m.transition(n)
                lines.append(_cut(f"    #{n} {describe(tx).split(' ', 2)[2]}"))
        if len(order) > machines:
            lines.append(f"  ... and {len(order) - machines} more machines (amdbg ls {shown})")
        return "\n".join(lines)


__all__ = ["failure_section"]
