"""`amdbg log`: a machine's transitions as a table, filtered and limited."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from rich.text import Text

from amnode.telemetry import RecordedMachine, TransitionRecord

from ..describe import (
    UNVERIFIED,
    cancel_reason,
    changes_label,
    flag_names,
    mutation_label,
    result_label,
)
from ..errors import UsageError
from ..escape import escape_json, printable
from ..filters import TxFilter, is_empty
from ..output import (
    STYLE_ACCEPTED,
    STYLE_CANCELED,
    STYLE_DIM,
    STYLE_FLAG,
    STYLE_MACHINE,
    STYLE_UNVERIFIED,
    Progress,
    RowWriter,
)
from ..times import format_offset, format_wall
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
    parser.add_argument("--times", choices=("offset", "wall"), default="offset",
                        help="the 'ended' column: offset from the start of the recording "
                        "(default) or the wall clock in UTC (ISO 8601, ends in Z; either can "
                        "be given to --from/--to)")
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
    """Print the transitions table (or JSON), row by row as they are read."""
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
    last = len(m) if stop is None else min(stop, len(m))
    progress = Progress(ctx.stderr, f"reading {m.key}: transition",
                        max(0, last - start + 1)) if flt.active else None
    numbers = _tracked(session.numbers(m, flt, start, stop), start, progress)
    if args.json:
        more = _write_json_rows(m, numbers, limit, ctx, progress)
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
    wall = args.times == "wall"
    rows = RowWriter(ctx.out, ("#", "ended (UTC)" if wall else "ended", "id", "mutation",
                               "result", "flags", "changes"), right=("#",),
                     before_write=progress.clear if progress is not None else None)
    base = session.start_ns
    if last >= start:  # the widest number and time to come
        rows.reserve("#", str(last))
        end_ns = m.end_times[last - 1]
        rows.reserve(rows.columns[1], _iso(end_ns) if wall else format_offset(end_ns, base))
    more = False
    shown = last_shown = 0
    for number in numbers:
        if limit is not None and shown >= limit:
            more = True
            break
        tx = m.transition(number)
        reason = cancel_reason(tx)
        result = Text(result_label(tx), style=STYLE_ACCEPTED if tx.accepted else STYLE_CANCELED)
        if reason is not None:
            result.append(f" ({printable(reason.short)})", style="")
        rows.add(str(tx.number), _iso(tx.end_ns) if wall else format_offset(tx.end_ns, base),
                 printable(tx.id), printable(mutation_label(tx)), result, _flags(tx),
                 printable(changes_label(tx)))
        shown += 1
        last_shown = tx.number
    rows.flush()
    if progress is not None:
        progress.clear()
    if not shown:
        ctx.out.print(Text("no transitions match", style=STYLE_DIM))
    if more:
        ctx.out.print(Text(f"... more transitions match; continue with --from {last_shown + 1}, "
                           "or --limit 0 for all", style=STYLE_DIM))
    return 0


def _iso(ns: int) -> str:
    """`2026-01-31T12:00:00.123456Z`: the wall clock in UTC as one word (`--from` reads it)."""
    return format_wall(ns).replace(" ", "T")


def _tracked(numbers: Iterator[int], start: int, progress: Progress | None) -> Iterator[int]:
    """`numbers`, reporting how far the scan got (filters may skip many transitions)."""
    if progress is None or not progress.active:
        yield from numbers
        return
    for n in numbers:
        progress.update(n - start + 1)
        yield n


def _write_json_rows(m: RecordedMachine, numbers: Iterator[int], limit: int | None,
                     ctx: Context, progress: Progress | None) -> bool:
    """Write the rows as one JSON array, element by element; True when more matched."""
    out = ctx.stdout
    count = 0
    more = False
    out.write("[")
    for n in numbers:
        if limit is not None and count >= limit:
            more = True
            break
        text = json.dumps(row_dict(m.transition(n)), indent=2, ensure_ascii=False)
        if progress is not None:
            progress.clear()
        out.write(("," if count else "") + "\n  " +
                  escape_json(text).replace("\n", "\n  "))
        count += 1
        if count % 200 == 0:
            out.flush()
    out.write("\n]\n" if count else "]\n")
    out.flush()
    if progress is not None:
        progress.clear()
    return more


__all__ = ["DEFAULT_LIMIT", "DESCRIPTION", "HELP", "register", "row_dict", "run"]
