"""What every command shares: the run-time context (streams, session) and argument helpers."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import TextIO

from ..address import MachAddress
from ..escape import printable
from ..live import check_address, is_live_address, snapshot
from ..output import Printer
from ..session import Selection, Session, resolve_positionals

PROG = "amdbg"


@dataclass
class Context:
    """What a command needs besides its arguments: output streams and the opened session."""

    out: Printer
    stdout: TextIO
    stderr: TextIO
    session: Session | None = None
    #: what is damaged in the opened recording ("" when intact); main() reports it once
    damage: str = ""
    #: True when that damage is only a torn tail (expected after a crash; not an error)
    torn_tail_only: bool = False
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Print one warning line on stderr."""
        line = printable(" ".join(message.split()))
        self.warnings.append(line)
        print(f"{PROG}: warning: {line}", file=self.stderr, flush=True)

    def open(self, args: argparse.Namespace) -> tuple[Session, MachAddress | None]:
        """Open the recording named by the positionals (noting any damage in `damage`); a
        `HOST:PORT` instead of a recording attaches to the processes there and reads their
        recent history (`amdbg.live.snapshot`)."""
        path, address = resolve_positionals(args.targets, os.environ.get("AMNODE_RECORD"))
        if is_live_address(path):
            session = Session.from_live(snapshot([check_address(path)]))
        else:
            session = Session.open(path)
        self.session = session
        self.damage = session.damage_summary()
        self.torn_tail_only = session.torn_tail_only
        for line in session.warnings:
            self.warn(line)
        return session, address

    def select(self, args: argparse.Namespace) -> tuple[Session, Selection]:
        """Open the recording and resolve -m / -t / the address."""
        session, address = self.open(args)
        machine = getattr(args, "machine", None)
        transition = getattr(args, "transition", None)
        return session, session.locate(machine, transition, address)


def add_targets(parser: argparse.ArgumentParser, *, address: bool = True,
                metavar: str = "", help_text: str = "") -> None:
    """The REC positional (plus an optional mach:// address, in any order)."""
    metavar = metavar or ("REC [mach://MACHINE/TX_ID]" if address else "REC")
    parser.add_argument("targets", nargs="*", metavar=metavar,
                        help=help_text or "recording file or directory (default: "
                        "$AMNODE_RECORD), or HOST:PORT of a running process to attach to"
                        + ("; an optional mach://MACHINE[/TX_ID] address selects a machine "
                           "and a transition" if address else ""))


def add_machine(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """-m/--select-machine."""
    parser.add_argument("-m", "--select-machine", dest="machine", metavar="MACHINE",
                        help=help_text or "machine: full id or a unique part of one")


def add_transition(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """-t/--select-transition."""
    parser.add_argument("-t", "--select-transition", dest="transition", metavar="TX",
                        help=help_text or "transition: 1-based number, -1 for the last, "
                        "or a transition id")


def add_json(parser: argparse.ArgumentParser) -> None:
    """--json."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")




__all__ = ["PROG", "Context", "add_json", "add_machine", "add_targets", "add_transition"]
