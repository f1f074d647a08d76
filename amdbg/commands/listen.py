"""`amdbg listen`: the TUI waiting for processes started with AMNODE_DBG_ADDR (push mode)."""

from __future__ import annotations

import argparse

from ..errors import DbgError
from ..live import DEFAULT_LISTEN, check_address, new_live
from ..session import Session
from .attach import add_record_options
from .base import Context, add_machine
from .replay import require_terminal

HELP = "wait for processes started with AMNODE_DBG_ADDR and watch them live"
DESCRIPTION = f"""\
Listen for processes that push their machines to the debugger (the Go am-dbg's workflow):
start any program using amnode with AMNODE_DBG_ADDR=HOST:PORT (no code change) and its
machines appear here as they run; several processes may push at once. HOST:PORT defaults to
{DEFAULT_LISTEN} (127.0.0.1 unless you give another host). The newest transition stays
selected (follow mode) until you move; `end` follows again.

--record DIR also writes everything received to DIR, a recording `amdbg replay DIR` opens
later (the same machines and transition ids a file recorder, AMNODE_RECORD, writes).
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `listen`."""
    parser.add_argument("addr", nargs="?", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"where to listen (default {DEFAULT_LISTEN})")
    add_record_options(parser)
    add_machine(parser, "machine to select first, once it appears")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Check the address and the terminal, then run the live app."""
    addr = check_address(args.addr)
    require_terminal(ctx, "listen")
    live = new_live([], record=args.record, history=args.history, listen=addr)
    session = Session.from_live(live)
    ctx.session = session
    from ..tui import ReplayApp

    app = ReplayApp(session, machine=args.machine, time_mode=args.times, listen=addr,
                    theme=args.theme)
    app.run()
    if app.error:
        raise DbgError(app.error)
    return app.exit_status


__all__ = ["DESCRIPTION", "HELP", "register", "run"]
