"""`amdbg graph`: a machine's relation graph or the machine network, as DOT/Mermaid/JSON/text."""

from __future__ import annotations

import argparse

from .. import graph as graphs
from ..errors import UsageError
from ..output import write_raw
from .base import Context, add_machine, add_targets, add_transition

HELP = "export a machine's relation graph or the machine network"
DESCRIPTION = """\
Print a machine's relation graph (states as nodes; require, add, remove and after edges) as
Graphviz DOT, a Mermaid flowchart, node-link JSON or plain text. With -t, the schema in effect
at that transition is drawn and the states it touched, called and left active are marked.
With --network, machines are the nodes: parent -> child edges, and "mutates" edges from a
machine to each machine whose transitions it caused (found by reading every transition; add
--no-links to skip that on big recordings).
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
        g = session.network_graph(links=args.links)
        name = "network"
        title = f"network of {len(session.machines)} machines"
    else:
        session, sel = ctx.select(args)
        m = session.require_machine(sel)
        g = session.machine_graph(m, sel.number)
        name = m.key
        if sel.number is not None:
            title = f"machine {m.key} at transition {sel.number} ({m.transition(sel.number).url})"
        else:
            title = f"machine {m.key}"
    if args.format == "dot":
        text = graphs.to_dot(g, name=name)
    elif args.format == "mermaid":
        text = graphs.to_mermaid(g)
    elif args.format == "json":
        text = graphs.to_json(g)
    else:
        text = f"# {title}\n" + graphs.to_text(g)
    write_raw(text, ctx.stdout)
    return 0


__all__ = ["DESCRIPTION", "FORMATS", "HELP", "register", "run"]
