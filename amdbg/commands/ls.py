"""`amdbg ls`: the machines of a recording as a parent/child tree with counts and time spans."""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from amnode.telemetry import RecordedMachine

from ..errors import SelectionError
from ..escape import printable
from ..output import STYLE_DIM, STYLE_ERROR, STYLE_MACHINE, STYLE_UNVERIFIED, table, write_json
from ..session import MachineNode, Session
from ..times import format_duration, format_offset, format_wall
from .base import Context, add_json, add_machine, add_targets

HELP = "list the machines of a recording"
DESCRIPTION = """\
List every machine of a recording as a parent/child tree: id, parent, tags, number of states,
transitions and error transitions, and when its first and last transitions ended (offsets from
the start of the recording). Notes say "disposed", or "⌁ never disposed" when the recording
ended with the machine still running (its process exited or was killed), "live" while a
followed or attached source still grows. With -m, only the matching machines and their
children.
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `ls`."""
    add_targets(parser)
    add_machine(parser, "only machines whose id contains this part (and their children)")
    add_json(parser)


def _selected(session: Session, part: str | None, address_machine: str | None
              ) -> list[MachineNode]:
    """The whole tree, or the subtrees of the machines matching -m / the address."""
    roots = session.machine_tree()
    query = part if part is not None else address_machine
    if query is None:
        return list(session.walk_tree(roots))
    matches = {m.key for m in session.match_machines(query)}
    if not matches:
        raise SelectionError(f"no machine matches {query!r}")
    out: list[MachineNode] = []
    taken: set[str] = set()
    for node in session.walk_tree(roots):
        if node.machine.key in matches and node.machine.key not in taken:
            base = node.depth
            for sub in session.walk_tree([node]):
                if sub.machine.key not in taken:
                    taken.add(sub.machine.key)
                    out.append(MachineNode(sub.machine, sub.depth - base, sub.children))
    return out


def machine_dict(m: RecordedMachine, depth: int) -> dict[str, Any]:
    """One machine as JSON-ready data."""
    return {
        "id": m.id, "key": m.key, "parent": m.parent or None, "depth": depth,
        "tags": list(m.tags), "states": list(m.state_names), "transitions": len(m),
        "errors": m.error_count, "queued": m.queued_count,
        "created_ns": m.created_ns, "first_ns": m.first_ns, "last_ns": m.last_ns,
        "disposed": m.disposed, "disposed_ns": m.disposed_ns,
        "schema_versions": len(m.schemas), "gaps": list(m.gaps),
        "unverified": m.unverified, "unverified_records": m.unverified_records,
        "process": {"host": m.process.host, "pid": m.process.pid, "argv0": m.process.argv0},
        "file": m.file,
    }


def tree_prefixes(depths: list[int]) -> list[str]:
    """The tree drawing before each row of a pre-order list of depths: `├─ ` for a child
    with later siblings, `└─ ` for the last one, `│  ` under ancestors that have more."""
    out = [""] * len(depths)
    later: list[bool] = []  # later[k]: a sibling at depth k follows (scanning backwards)
    for i in range(len(depths) - 1, -1, -1):
        d = depths[i]
        if len(later) <= d:
            later.extend([False] * (d + 1 - len(later)))
        if d:
            bars = "".join("│  " if later[k] else "   " for k in range(1, d))
            out[i] = bars + ("├─ " if later[d] else "└─ ")
        later[d] = True
        del later[d + 1:]
    return out


def _notes(m: RecordedMachine) -> Text:
    notes = []
    if m.disposed:
        notes.append("disposed")
    elif m.live:
        notes.append("live")
    else:  # the TUI's ⌁: the process exited or was killed with the machine still running
        notes.append("⌁ never disposed")
    if len(m.schemas) > 1:
        notes.append(f"{len(m.schemas)} schemas")
    if m.gaps:
        notes.append(f"{len(m.gaps)} gaps")
    text = Text(", ".join(notes))
    if m.unverified_records:
        text.append(", " if notes else "")
        text.append(f"{m.unverified_records} unverified", style=STYLE_UNVERIFIED)
    return text


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print the machine tree (or JSON)."""
    session, address = ctx.open(args)
    nodes = _selected(session, args.machine, address.machine if address else None)
    if args.json:
        write_json([machine_dict(n.machine, n.depth) for n in nodes], ctx.stdout)
        return 0
    rec = session.recording
    start = session.start_ns
    files = len({p.file for p in rec.processes})
    summary = Text()
    summary.append("recording ", style="bold")
    summary.append(printable(session.path), style=STYLE_MACHINE)
    ctx.out.print(summary)
    span = (session.end_ns - start) if start is not None and session.end_ns else None
    errors = sum(m.error_count for m in rec.machines)
    unverified_records = sum(m.unverified_records for m in rec.machines)
    unverified = f", {_count(unverified_records, 'unverified record')}" \
        if unverified_records else ""
    ctx.out.print(Text(
        f"{_count(files, 'file')}, {_count(len(rec.processes), 'process', 'processes')}, "
        f"{_count(len(rec.machines), 'machine')}, "
        f"{_count(rec.transition_count, 'transition')}, {_count(errors, 'error transition')}"
        f"{unverified}; starts {format_wall(start)}, spans {format_duration(span)}",
        style=STYLE_DIM))
    many = len({(p.host, p.pid) for p in rec.processes}) > 1
    columns = ["machine", "parent", "tags", "states", "transitions", "errors", "first", "last"]
    t = table(*columns, *(["process"] if many else []), "notes",
              right=("states", "transitions", "errors"))
    t.columns[0].no_wrap = True  # a tree line is never split from its machine id
    for node, prefix in zip(nodes, tree_prefixes([n.depth for n in nodes]), strict=True):
        m = node.machine
        name = Text(prefix)
        name.append(printable(m.key), style=STYLE_MACHINE if node.depth == 0 else "cyan")
        error_cell = Text(str(m.error_count), style=STYLE_ERROR if m.error_count else "")
        t.add_row(name, printable(m.parent), printable(" ".join(m.tags)),
                  str(len(m.state_names)), str(len(m)), error_cell,
                  format_offset(m.first_ns, start), format_offset(m.last_ns, start),
                  *([f"pid {m.process.pid}"] if many else []), _notes(m))
    ctx.out.print(t)
    return 0


__all__ = ["DESCRIPTION", "HELP", "machine_dict", "register", "run", "tree_prefixes"]


def _count(n: int, one: str, many: str = "") -> str:
    """`1 machine`, `2 machines`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
