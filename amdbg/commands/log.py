"""`amdbg log`: a machine's transitions as a table, filtered and limited."""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from amnode.telemetry import TransitionRecord

from ..describe import (
    UNVERIFIED,
    cancel_reason,
    changes_label,
    flag_names,
    mutation_label,
    result_label,
)
from ..errors import UsageError
from ..escape import printable
from ..filters import TxFilter, is_empty
from ..output import (
    STYLE_ACCEPTED,
    STYLE_CANCELED,
    STYLE_DIM,
    STYLE_FLAG,
    STYLE_MACHINE,
    STYLE_UNVERIFIED,
    table,
    write_json,
)
from ..times import format_offset
from . import follow
from .base import Context, add_json, add_machine, add_targets, add_transition
from .follow import FOLLOW_TAIL

HELP = "list a machine's transitions"
DESCRIPTION = """\
List a machine's transitions as a table: number, when it ended (offset from the start of the
recording), transition id, mutation, result (and why it was canceled), flags, state changes.

Filters are tri-state: --canceled shows only canceled transitions, --no-canceled hides them,
neither shows both; the same for --auto, --empty (accepted but nothing changed), --health
(Heartbeat/Healthcheck), --checks and --errors. --state S keeps transitions that called S or
changed its tick (repeat it for any of several states). --from/--to take a transition number,
a transition id, or a time: +1.5s / +200ms from the start of the recording, or an ISO time.
"""

DEFAULT_LIMIT = 200


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `log`."""
    add_targets(parser)
    add_machine(parser)
    add_transition(parser, "start the list at this transition (number or id)")
    flags = parser.add_argument_group("filters")
    for name, dest, what in (("canceled", "canceled", "canceled transitions"),
                             ("auto", "auto", "transitions made by Auto states"),
                             ("empty", "empty", "accepted transitions that changed nothing"),
                             ("health", "health", "Heartbeat/Healthcheck transitions"),
                             ("checks", "check", "can_add/can_remove dry runs"),
                             ("errors", "error", "transitions after which an error is active")):
        flags.add_argument(f"--{name}", dest=dest, action=argparse.BooleanOptionalAction,
                           default=None, help=f"only {what} (--no-{name}: hide them)")
    flags.add_argument("--state", dest="states", action="append", default=[], metavar="STATE",
                       help="only transitions that called STATE or changed its tick")
    flags.add_argument("--from", dest="start", metavar="TX|TIME",
                       help="first transition: number, id, +1.5s, or an ISO time")
    flags.add_argument("--to", dest="stop", metavar="TX|TIME",
                       help="last transition: number, id, +1.5s, or an ISO time")
    flags.add_argument("--limit", type=int, default=None, metavar="N",
                       help=f"print at most N transitions (default {DEFAULT_LIMIT}; 0 = all; "
                       f"with --follow: the last N before following, default {FOLLOW_TAIL})")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing transitions as they happen, like tail -f (REC "
                        "still being written, or HOST:PORT of a running process; without -m "
                        "every machine); Ctrl-C ends it")
    add_json(parser)


def row_dict(tx: TransitionRecord) -> dict[str, Any]:
    """One table row as JSON-ready data."""
    reason = cancel_reason(tx)
    return {
        "number": tx.number, "id": tx.id, "url": tx.url, "start_ns": tx.start_ns,
        "end_ns": tx.end_ns, "type": tx.type, "called": list(tx.called),
        "accepted": tx.accepted, "cancel_reason": reason.text if reason else None,
        "auto": tx.is_auto, "check": tx.is_check, "health": tx.is_health, "error": tx.is_error,
        "empty": is_empty(tx), "activated": tx.activated, "deactivated": tx.deactivated,
        "time_sum": tx.time_sum, "unverified": tx.unverified,
    }


def _flags(tx: TransitionRecord) -> Text:
    """The flags cell; `unverified` stands out."""
    text = Text(style=STYLE_FLAG)
    for i, name in enumerate(flag_names(tx)):
        text.append(" " if i else "")
        text.append(name, style=STYLE_UNVERIFIED if name == UNVERIFIED else "")
    return text


def _filter(args: argparse.Namespace) -> TxFilter:
    return TxFilter(canceled=args.canceled, auto=args.auto, empty=args.empty,
                    health=args.health, check=args.check, error=args.error,
                    states=tuple(args.states))


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print the transitions table (or JSON)."""
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    if args.follow:
        if args.start or args.stop or args.transition:
            raise UsageError("--follow prints from the end: leave out --from, --to and -t")
        return follow.run(args, ctx, _filter(args), FOLLOW_TAIL if args.limit is None
                          else args.limit)
    if args.limit is None:
        args.limit = DEFAULT_LIMIT
    session, sel = ctx.select(args)
    m = session.require_machine(sel)
    if args.states:
        session.check_states(m, args.states)
    flt = _filter(args)
    start = session.bound(m, args.start, upper=False) if args.start else 1
    stop = session.bound(m, args.stop, upper=True) if args.stop else None
    if sel.number is not None and not args.start:
        start = sel.number  # an address or -t starts the list there
    limit = args.limit or None
    numbers = session.numbers(m, flt, start, stop)
    shown: list[TransitionRecord] = []
    more = False
    for n in numbers:
        if limit is not None and len(shown) >= limit:
            more = True
            break
        shown.append(m.transition(n))
    if args.json:
        write_json([row_dict(tx) for tx in shown], ctx.stdout)
        if more:
            ctx.warn(f"stopped after {limit} transitions (--limit); more match")
        return 0

    title = Text()
    title.append(printable(m.key), style=STYLE_MACHINE)
    title.append(f"  {len(m)} transitions", style=STYLE_DIM)
    described = flt.describe()
    if described:
        title.append(f", filter: {described}", style=STYLE_DIM)
    if args.start or args.stop or sel.number is not None:
        title.append(f", from {start} to {stop if stop is not None else len(m)}",
                     style=STYLE_DIM)
    ctx.out.print(title)
    t = table("#", "ended", "id", "mutation", "result", "flags", "changes", right=("#",))
    base = session.start_ns
    for tx in shown:
        reason = cancel_reason(tx)
        result = Text(result_label(tx), style=STYLE_ACCEPTED if tx.accepted else STYLE_CANCELED)
        if reason is not None:
            result.append(f" ({printable(reason.short)})", style="")
        t.add_row(str(tx.number), format_offset(tx.end_ns, base), printable(tx.id),
                  printable(mutation_label(tx)), result, _flags(tx), printable(changes_label(tx)))
    if shown:
        ctx.out.print(t)
    else:
        ctx.out.print(Text("no transitions match", style=STYLE_DIM))
    if more:
        last = shown[-1].number
        ctx.out.print(Text(f"... more transitions match; continue with --from {last + 1}, "
                           "or --limit 0 for all", style=STYLE_DIM))
    return 0


__all__ = ["DEFAULT_LIMIT", "DESCRIPTION", "HELP", "register", "row_dict", "run"]
