"""`amdbg replay`: step through a recording in the interactive TUI (amdbg.tui)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from .base import Context, add_machine, add_targets, add_transition

HELP = "step through a recording interactively (Textual TUI)"
DESCRIPTION = """\
The interactive debugger: machines (a parent/child tree), the selected machine's states at the
current transition, the transition in detail, its steps, a relation graph and the network of
machines, and the transition list with filters. Press ? inside for every key.

-m selects a machine (full id or a unique part), -t a transition (1-based number, -1 for the
last, or an id); a mach://MACHINE/TX_ID[/STEP] address does both (and a step). Without them it
opens at the first transition of the first machine.
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `replay`."""
    add_targets(parser)
    add_machine(parser)
    add_transition(parser)
    parser.add_argument("--times", choices=("offset", "wall", "off"), default="offset",
                        help="time column: offset from the recording start (default), wall "
                             "clock (UTC), or off (also hides durations)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Resolve the selection (errors are one line, before the TUI starts), then run the app."""
    session, address = ctx.open(args)
    sel = session.locate(args.machine, args.transition, address)
    if not session.machines:
        raise UsageError(f"the recording {session.path} holds no machines")
    if not _interactive(ctx):
        raise UsageError("replay needs a terminal (stdin and stdout must be a TTY); "
                         "use 'amdbg show' or 'amdbg log' in scripts")
    from ..tui import ReplayApp

    step = address.step if address is not None and address.tx else None
    app = ReplayApp(session, machine=sel.key or None, number=sel.number, step=step,
                    time_mode=args.times)
    app.run()
    ctx.damage = ""  # the TUI showed it already
    return 0


def _interactive(ctx: Context) -> bool:
    if os.environ.get("AMDBG_FORCE_TUI"):
        return True
    try:
        return sys.stdin.isatty() and ctx.stdout.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["DESCRIPTION", "HELP", "register", "run"]
