"""`amdbg attach`: the TUI on running processes, following their transitions as they happen."""

from __future__ import annotations

import argparse

from ..errors import DbgError, UsageError
from ..live import check_address, new_live
from ..session import Session
from .base import Context, add_machine
from .replay import require_terminal

HELP = "attach the TUI to running processes (a node supervisor shows its whole pool)"
DESCRIPTION = """\
Attach to running processes and watch their machines live: each address is a process that
accepts debuggers (a node supervisor's public or local aRPC port, a worker's, or a program
started with AMNODE_DBG_LISTEN=HOST:PORT). A supervisor also relays its workers' machines, so
one address shows the whole pool. Each process first sends its recent history (the flight
recorder), then every transition as it happens; new machines and transitions appear while you
look. The newest transition stays selected (follow mode) until you move; `end` follows again.

Attaching never changes a machine. --record DIR also writes everything received to DIR, a
recording `amdbg replay DIR` opens later.
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `attach`."""
    parser.add_argument("addrs", nargs="+", metavar="HOST:PORT",
                        help="address of a running process (several: one session)")
    add_record_options(parser)
    add_machine(parser, "machine to select first (full id or a unique part)")


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """--record, --no-history, --times (shared with `listen`)."""
    parser.add_argument("--record", metavar="DIR",
                        help="also write what is received to this recording directory")
    parser.add_argument("--no-history", dest="history", action="store_false",
                        help="skip the processes' recent history (the flight recorder)")
    parser.add_argument("--times", choices=("offset", "wall", "off"), default="offset",
                        help="time column: offset from the start (default), wall clock, off")
    parser.add_argument("--theme", choices=("dark", "light"), default="dark",
                        help="colours for a dark (default) or light terminal (T switches)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Check the addresses and the terminal, then run the live app."""
    addrs = [check_address(a) for a in args.addrs]
    if len(set(addrs)) != len(addrs):
        raise UsageError("an address is given twice")
    require_terminal(ctx, "attach")
    live = new_live(addrs, record=args.record, history=args.history)
    session = Session.from_live(live)
    ctx.session = session
    from ..tui import ReplayApp

    app = ReplayApp(session, machine=args.machine, time_mode=args.times, attach=addrs,
                    theme=args.theme)
    app.run()
    if app.error:
        raise DbgError(app.error)
    return app.exit_status


__all__ = ["DESCRIPTION", "HELP", "add_record_options", "register", "run"]
