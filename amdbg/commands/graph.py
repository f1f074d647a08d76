"""`amdbg graph`: a machine's relation graph or the machine network, as DOT/Mermaid/JSON/text."""

from __future__ import annotations

import argparse

from amnode.telemetry import RecordedMachine

from .. import graph as graphs
from ..describe import UNVERIFIED_NOTE
from ..errors import UsageError
from ..escape import printable
from ..output import Progress, write_raw
from .base import Context, add_machine, add_targets, add_transition

HELP = "export a machine's relation graph or the machine network"
DESCRIPTION = """\
Print a machine's relation graph (states as nodes; require, add, remove and after edges) as
Graphviz DOT, a Mermaid flowchart, node-link JSON or plain text. With -t, the schema in effect
at that transition is drawn and the states it touched, called and left active are marked.
With --network, machines are the nodes: parent -> child edges, and "mutates" edges from a
machine to each machine whose transitions it caused (found by reading the source of every
transition, about 4 µs each, with progress on a terminal; --no-links skips that).
"""

FORMATS = ("text", "dot", "mermaid", "json")


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `graph`."""
    add_targets(parser)
    add_machine(parser)
    add_transition(parser, "mark the states touched, called and active at this transition")
    parser.add_argument("-f", "--format", choices=FORMATS, default="text",
                        help="output format (default: text)")
    parser.add_argument("--network", action="store_true",
                        help="graph of machines (parent/child and causal links), not of states")
    parser.add_argument("--links", action=argparse.BooleanOptionalAction, default=True,
                        help="with --network: add causal 'mutates' edges (default: yes)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print the graph in the chosen format."""
    if args.network:
        if args.transition is not None:
            raise UsageError("-t does not apply to --network")
        session, address = ctx.open(args)
        if args.machine is not None or address is not None:
            raise UsageError("--network draws every machine; leave out -m and the address")
        progress = Progress(ctx.stderr, "reading causal links: transition",
                            session.recording.transition_count)
        g = session.network_graph(links=args.links, progress=progress.update)
        progress.clear()
        name = "network"
        title = f"network of {len(session.machines)} machines"
        notes = [f"machine {m.key} holds {m.unverified_records} unverified record(s)"
                 for m in session.machines if m.unverified_records]
    else:
        session, sel = ctx.select(args)
        m = session.require_machine(sel)
        g = session.machine_graph(m, sel.number)
        name = m.key
        if sel.number is not None:
            title = f"machine {m.key} at transition {sel.number} ({m.transition(sel.number).url})"
        else:
            title = f"machine {m.key}"
        notes = unverified_notes(m, sel.number)
    if notes:
        g.graph["unverified"] = notes
    if args.format == "dot":
        text = _commented("// ", notes, graphs.to_dot(g, name=name), 0)
    elif args.format == "mermaid":
        text = _commented("%% ", notes, graphs.to_mermaid(g), 1)
    elif args.format == "json":
        text = graphs.to_json(g)
    else:
        text = _commented("# ", [title, *notes], graphs.to_text(g), 0)
    write_raw(text, ctx.stdout)
    return 0


def unverified_notes(m: RecordedMachine, number: int | None) -> list[str]:
    """Why a machine graph (at transition `number`) shows unverified data, one line each."""
    notes = []
    if number is not None and m.is_unverified(number):
        notes.append(f"UNVERIFIED transition {number}: {UNVERIFIED_NOTE}")
    schema = m.schema_at(number) if number is not None else m.schemas[-1]
    if schema.unverified:
        notes.append(f"UNVERIFIED schema: {UNVERIFIED_NOTE}")
    return notes


def _commented(prefix: str, lines: list[str], text: str, at: int) -> str:
    """`text` with `lines` inserted as comments after its first `at` lines (control
    characters escaped: ids come from the recording)."""
    if not lines:
        return text
    out = text.split("\n")
    out[at:at] = [prefix + printable(line) for line in lines]
    return "\n".join(out)


__all__ = ["DESCRIPTION", "FORMATS", "HELP", "register", "run", "unverified_notes"]
