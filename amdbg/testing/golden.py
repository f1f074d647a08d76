"""Golden runs: a run's recording kept as the reference, later runs compared with it.

    write_golden("rec/", "tests/golden/orders.amrec")         # once (a packed, single file)
    assert_matches_golden("rec/", "tests/golden/orders.amrec")  # every later run

The comparison is `amdbg diff`'s (`amdbg.compare`): machines are lined up by role (ids with
their run-specific parts masked, repeated roles paired in creation order) and each machine's
run is the sequence of state changes its accepted transitions made. Ids, times, pids,
durations, canceled, empty and check transitions do not count, so two runs of a deterministic
workflow compare equal. A difference is reported per machine at its first divergent change,
side by side with the changes before it, with the command that opens this run's transition in
the debugger.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from amnode.telemetry import mach_url, open_recording, pack

from ..compare import MachineDiff, MachineRun, change_label, compare
from ..escape import printable
from .recording import RecordingAssertionError, display_path

#: changes shown before the first divergent one
CONTEXT = 2
#: machines described in full in one message (the rest are counted)
SHOWN = 8


def write_golden(run: str | os.PathLike[str], golden: str | os.PathLike[str]) -> int:
    """Pack the recording `run` (a directory or file) into the single file `golden` (its
    directory is created; an existing golden is replaced). Returns the bytes written."""
    target = Path(golden)
    target.parent.mkdir(parents=True, exist_ok=True)
    return pack(run, target)


def golden_diffs(run: str | os.PathLike[str], golden: str | os.PathLike[str]
                 ) -> list[MachineDiff]:
    """Every machine role of the golden run and this run compared (golden is side A)."""
    with open_recording(golden) as a, open_recording(run) as b:
        return compare(a, b)


def _at(run: MachineRun, i: int) -> str:
    if i >= len(run.changes):
        return "(nothing)"
    return printable(f"#{run.numbers[i]} {change_label(run.changes[i])}")


def _name(d: MachineDiff) -> str:
    """This run's machine (else the golden one's), and the golden one's key when it differs:
    `nw-sq-host-1a2b3c (golden nw-sq-host-9f8e7d)`."""
    key = d.b.key if d.b is not None else d.a.key if d.a is not None else d.role
    if d.a is not None and d.b is not None and d.a.key != d.b.key:
        return printable(f"{key} (golden {d.a.key})")
    return printable(key)


def _open(run: MachineRun, i: int, path: str | os.PathLike[str],
          cwd: str | os.PathLike[str] | None) -> str:
    if not run.changes:
        return ""
    i = min(i, len(run.changes) - 1)
    url = mach_url(run.machine_id or run.key, run.ids[i]) if run.ids else ""
    if not url:
        return ""
    return f"amdbg replay {shlex.quote(display_path(path, cwd))} {shlex.quote(url)}"


def golden_message(diffs: list[MachineDiff], *, run: str | os.PathLike[str],
                   golden: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
                   hint: str = "") -> str | None:
    """A readable report of the machines that differ, or None when every one is the same."""
    bad = [d for d in diffs if d.status != "same"]
    if not bad:
        return None
    lines = [f"golden run differs: {len(bad)} of {len(diffs)} machines",
             f"  golden    {display_path(golden, cwd)}",
             f"  this run  {display_path(run, cwd)}"]
    for d in bad[:SHOWN]:
        if d.a is None and d.b is not None:
            lines.append(f"{_name(d)}: only in this run ({len(d.b.changes)} changes)")
            cmd = _open(d.b, 0, run, cwd)
        elif d.b is None and d.a is not None:
            lines.append(f"{_name(d)}: only in the golden run ({len(d.a.changes)} changes), "
                         "missing in this run")
            cmd = ""
        else:
            assert d.a is not None and d.b is not None
            first = (d.first_divergence or 1) - 1
            lines.append(f"{_name(d)}: differs at change {first + 1} (golden "
                         f"{len(d.a.changes)} changes, this run {len(d.b.changes)})")
            rows = [(i, _at(d.a, i), _at(d.b, i))
                    for i in range(max(0, first - CONTEXT), first + 1)]
            width = max(len("golden"), *(len(a) for _, a, _ in rows))
            lines.append(f"       {'golden':<{width}}  this run")
            for i, a, b in rows:
                mark = ">" if i == first else " "
                lines.append(f"  {mark}{i + 1:>3} {a:<{width}}  {b}")
            cmd = _open(d.b, first, run, cwd)
        if cmd:
            lines.append(f"  open it: {cmd}")
    if len(bad) > SHOWN:
        lines.append(f"... and {len(bad) - SHOWN} more machines differ "
                     f"(amdbg diff {display_path(golden, cwd)} {display_path(run, cwd)})")
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def assert_matches_golden(run: str | os.PathLike[str], golden: str | os.PathLike[str], *,
                          cwd: str | os.PathLike[str] | None = None, hint: str = "") -> None:
    """RecordingAssertionError, with `golden_message`, when `run` differs from `golden`."""
    __tracebackhide__ = True
    if not Path(golden).exists():
        raise RecordingAssertionError(f"no golden run at {display_path(golden, cwd)} "
                                      "(write one with write_golden)")
    message = golden_message(golden_diffs(run, golden), run=run, golden=golden, cwd=cwd,
                             hint=hint)
    if message is not None:
        raise RecordingAssertionError(message)


__all__ = ["assert_matches_golden", "golden_diffs", "golden_message", "write_golden"]
