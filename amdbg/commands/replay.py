"""`amdbg replay`: step through a recording in the interactive TUI (amdbg.tui)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from ..live import is_live_address
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
    parser.add_argument("--theme", choices=("dark", "light"), default="dark",
                        help="colours for a dark (default) or light terminal (T switches)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Resolve the selection (errors are one line, before the TUI starts), then run the app."""
    if args.targets and is_live_address(args.targets[0]):
        raise UsageError(f"{args.targets[0]} is a running process: use "
                         f"'amdbg attach {args.targets[0]}' to watch it live")
    session, address = ctx.open(args)
    sel = session.locate(args.machine, args.transition, address)
    if not session.machines:
        raise UsageError(f"the recording {session.path} holds no machines")
    require_terminal(ctx, "replay")
    from ..tui import ReplayApp

    step = address.step if address is not None and address.tx else None
    app = ReplayApp(session, machine=sel.key or None, number=sel.number, step=step,
                    time_mode=args.times, theme=args.theme)
    app.run()
    ctx.damage = ""  # the TUI showed it already
    return 0


def require_terminal(ctx: Context, verb: str) -> None:
    """UsageError unless stdin and stdout are a terminal (the TUI needs one)."""
    if not _interactive(ctx):
        raise UsageError(f"{verb} needs a terminal (stdin and stdout must be a TTY); "
                         "use 'amdbg show' or 'amdbg log' in scripts")


def _interactive(ctx: Context) -> bool:
    if os.environ.get("AMDBG_FORCE_TUI"):
        return True
    try:
        return sys.stdin.isatty() and ctx.stdout.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["DESCRIPTION", "HELP", "register", "require_terminal", "run"]
