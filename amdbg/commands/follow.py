"""`amdbg log --follow`: print transitions as they happen, like `tail -f`.

The source is a recording still being written (a file or an `AMNODE_RECORD` directory) or a
running process (`HOST:PORT`, attached to live). The last transitions already there are
printed first (`--limit`, 10 by default), then every new one that passes the filters, one
line each (`--json`: one JSON object per line). Without `-m` every machine is followed, each
line starting with the machine's key. Ctrl-C ends it (exit 0); so does the end of every live
connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from rich.text import Text

from amnode.telemetry import RecordedMachine, TransitionRecord

from ..describe import cancel_reason, changes_label, mutation_label, result_label
from ..errors import DbgError
from ..escape import escape_json, printable
from ..filters import TxFilter
from ..live import check_address, connect, is_live_address, new_live
from ..output import STYLE_ACCEPTED, STYLE_CANCELED, STYLE_DIM, STYLE_MACHINE
from ..session import Session, resolve_positionals
from ..times import format_offset
from .base import Context

#: transitions printed before following, unless --limit says otherwise
FOLLOW_TAIL = 10
#: seconds between two looks at a followed file
FILE_POLL = 0.2
#: seconds between two looks at a live recording (its bytes are indexed as they arrive)
LIVE_POLL = 0.05


class Follower:
    """Prints the transitions of the followed machines that it has not printed yet."""

    def __init__(self, session: Session, args: argparse.Namespace, ctx: Context,
                 flt: TxFilter, tail: int) -> None:
        self.session = session
        self.args = args
        self.ctx = ctx
        self.flt = flt
        self.tail = tail
        self.part: str | None = args.machine
        #: machine key -> transitions looked at so far
        self.seen: dict[str, int] = {}
        self.base_ns: int | None = None
        self.printed = 0
        self._waiting_said = False

    def machines(self) -> list[RecordedMachine]:
        """The followed machines: the one `-m` names (once it exists), or all."""
        if self.part is None:
            return list(self.session.machines)
        found = self.session.match_machines(self.part)
        if len(found) > 1:
            self.session.select_machine(self.part)  # raises AmbiguousMachineError
        if not found and not self._waiting_said:
            self._waiting_said = True
            self.ctx.warn(f"no machine matches {self.part!r} yet; waiting for it")
        return found

    def poll(self) -> int:
        """Print what is new; returns how many lines were printed."""
        self.session.refresh()
        if self.base_ns is None:
            self.base_ns = self.session.start_ns
        out = 0
        for m in self.machines():
            first = m.key not in self.seen
            start = self.seen.get(m.key, 0) + 1
            if first and self.tail >= 0:
                start = max(1, len(m) - self.tail + 1) if self.tail else len(m) + 1
            self.seen[m.key] = len(m)
            for n in self.session.numbers(m, self.flt, start, len(m)):
                self.emit(m, m.transition(n))
                out += 1
        self.printed += out
        if out:
            self.ctx.stdout.flush()
        return out

    def emit(self, m: RecordedMachine, tx: TransitionRecord) -> None:
        """One transition: a line, or a JSON object on one line."""
        if self.args.json:
            from .log import row_dict

            row: dict[str, Any] = {"machine": m.key, **row_dict(tx)}
            self.ctx.stdout.write(escape_json(json.dumps(row, ensure_ascii=False)) + "\n")
            return
        line = Text()
        if self.part is None:
            line.append(printable(m.key), style=STYLE_MACHINE)
            line.append(" ")
        line.append(f"#{tx.number}", style="bold")
        line.append(f"  {format_offset(tx.end_ns, self.base_ns)}", style=STYLE_DIM)
        line.append(f"  {printable(tx.id)}  {printable(mutation_label(tx))}  ")
        line.append(result_label(tx), style=STYLE_ACCEPTED if tx.accepted else STYLE_CANCELED)
        reason = cancel_reason(tx)
        if reason is not None:
            line.append(f" ({printable(reason.short)})")
        changes = changes_label(tx)
        if changes:
            line.append(f"  {printable(changes)}")
        if tx.unverified:
            line.append("  unverified", style="bold yellow")
        self.ctx.out.print(line)


def run(args: argparse.Namespace, ctx: Context, flt: TxFilter, tail: int) -> int:
    """Follow the recording or process the positionals name."""
    path, _address = resolve_positionals(args.targets, None)
    try:
        if is_live_address(path):
            return asyncio.run(_live(check_address(path), args, ctx, flt, tail))
        session = Session.follow(path)
        ctx.session = session
        follower = Follower(session, args, ctx, flt, tail)
        while True:
            follower.poll()
            time.sleep(FILE_POLL)
    except KeyboardInterrupt:
        return 0


async def _live(addr: str, args: argparse.Namespace, ctx: Context, flt: TxFilter,
                tail: int) -> int:
    live = new_live([addr])
    session = Session.from_live(live)
    ctx.session = session
    follower = Follower(session, args, ctx, flt, tail)
    try:
        await connect(live, [addr])
        await live.wait_ready(10.0)
        while True:
            follower.poll()
            if not live.connected:
                follower.poll()
                reasons = "; ".join(sorted({t.reason for t in live.targets if t.reason}))
                ctx.warn(f"{addr}: disconnected ({reasons or 'closed'})")
                return 0
            await asyncio.sleep(LIVE_POLL)
    except DbgError:
        raise
    finally:
        await live.close()


__all__ = ["FILE_POLL", "FOLLOW_TAIL", "LIVE_POLL", "Follower", "run"]
