"""`amdbg graph`: a machine's relation graph or the machine network, as DOT/Mermaid/JSON/text."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from amnode.telemetry import RecordedMachine

from .. import graph as graphs
from ..describe import UNVERIFIED_NOTE, cancel_reason, machine_time_label, mutation_label
from ..errors import DbgError, UsageError
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

--format svg renders the DOT with Graphviz (`dot`) when it is installed; without it the DOT
is written instead, and a note says so. --steps draws one transition's steps as a Mermaid
sequence diagram (states are participants; relations are arrows; activations, handlers and
cancels are messages to self). -o writes to a file instead of stdout.
"""

FORMATS = ("text", "dot", "mermaid", "json", "svg")
#: seconds Graphviz may take to lay out a graph
DOT_TIMEOUT = 60


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `graph`."""
    add_targets(parser)
    add_machine(parser)
    add_transition(parser, "mark the states touched, called and active at this transition")
    parser.add_argument("-f", "--format", choices=FORMATS, default=None,
                        help="output format (default: text; svg needs Graphviz, else DOT)")
    parser.add_argument("--steps", action="store_true",
                        help="the steps of the selected transition as a Mermaid sequence "
                        "diagram")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE instead of stdout")
    parser.add_argument("--network", action="store_true",
                        help="graph of machines (parent/child and causal links), not of states")
    parser.add_argument("--links", action=argparse.BooleanOptionalAction, default=True,
                        help="with --network: add causal 'mutates' edges (default: yes)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print the graph in the chosen format."""
    if args.steps:
        return _steps(args, ctx)
    fmt = args.format or "text"
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
    if fmt in ("dot", "svg"):
        text = _commented("// ", notes, graphs.to_dot(g, name=name), 0)
        if fmt == "svg":
            return _svg(text, args.output, ctx)
    elif fmt == "mermaid":
        text = _commented("%% ", notes, graphs.to_mermaid(g), 1)
    elif fmt == "json":
        text = graphs.to_json(g)
    else:
        text = _commented("# ", [title, *notes], graphs.to_text(g), 0)
    _emit(text, args.output, ctx)
    return 0


def _steps(args: argparse.Namespace, ctx: Context) -> int:
    """`--steps`: one transition as a Mermaid sequence diagram."""
    if args.network:
        raise UsageError("--steps draws one transition; leave out --network")
    if args.format not in (None, "mermaid"):
        raise UsageError("--steps writes a Mermaid sequence diagram; leave out --format "
                         "or give --format mermaid")
    session, sel = ctx.select(args)
    m = session.require_machine(sel)
    if sel.number is None:
        raise UsageError("--steps needs a transition: -t N or mach://MACHINE/TX_ID")
    tx = m.transition(sel.number)
    reason = cancel_reason(tx)
    result = "accepted" if reason is None else f"canceled: {reason.text}"
    title = [tx.url, f"{m.key} transition {tx.number} of {len(m)}: {mutation_label(tx)}: "
             f"{result}", f"machine time {machine_time_label(tx)}"]
    if tx.truncated:
        title.append("steps not recorded in full (record truncated at the size limits)")
    title += unverified_notes(m, sel.number)
    _emit(graphs.steps_mermaid(tx.steps, title=title), args.output, ctx)
    return 0


def _emit(text: str, output: str | None, ctx: Context) -> None:
    """Write `text` to stdout, or to the file `output`."""
    if output is None:
        write_raw(text, ctx.stdout)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            write_raw(text, f)
    except OSError as err:
        raise DbgError(f"cannot write {output}: {err.strerror or err}") from None


def _svg(dot_text: str, output: str | None, ctx: Context) -> int:
    """Render DOT to SVG with Graphviz; without `dot`, write the DOT and say so."""
    dot = shutil.which("dot")
    if dot is None:
        target = None if output is None else str(Path(output).with_suffix(".dot"))
        _emit(dot_text, target, ctx)
        where = f" to {target}" if target else ""
        ctx.warn(f"Graphviz 'dot' is not installed: wrote DOT{where} instead of SVG "
                 "(install graphviz, or render it with `dot -Tsvg`)")
        return 0
    try:
        done = subprocess.run([dot, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DbgError(f"Graphviz 'dot' took more than {DOT_TIMEOUT} s; use --format dot "
                       "and render it yourself") from None
    except OSError as err:
        raise DbgError(f"cannot run {dot}: {err.strerror or err}") from None
    if done.returncode:
        why = " ".join(done.stderr.decode(errors="replace").split())[:300]
        raise DbgError(f"Graphviz 'dot' failed ({done.returncode}): {why or 'no message'}")
    _emit(done.stdout.decode("utf-8", errors="replace"), output, ctx)
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
