"""`amdbg show`: everything recorded about one transition, and why it was canceled."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from amnode.telemetry import LogLine, RecordedMachine, TransitionRecord

from ..describe import (
    UNVERIFIED_NOTE,
    cancel_reason,
    changes_label,
    error_text,
    first_line,
    flag_names,
    machine_time_label,
    mutation_label,
    result_label,
    state_changes,
    transition_dict,
)
from ..escape import printable
from ..output import (
    STYLE_ACCEPTED,
    STYLE_ADDED,
    STYLE_CANCELED,
    STYLE_DIM,
    STYLE_ERROR,
    STYLE_FLAG,
    STYLE_MACHINE,
    STYLE_REMOVED,
    STYLE_UNVERIFIED,
    heading,
    table,
    write_json,
)
from ..session import FORK_MAX_SCAN, Selection, Session
from ..times import format_duration, format_offset, format_wall
from .base import Context, add_json, add_machine, add_targets, add_transition

HELP = "show one transition"
DESCRIPTION = """\
Show one transition: mutation and called states, accepted or canceled and why, flags (auto,
check, health, error), wall time and duration, states before -> after with ticks, steps,
handlers with durations, args, log lines (before and during it), the transition that caused it
(source) and those it caused. Without -t, the machine's last transition.
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `show`."""
    add_targets(parser)
    add_machine(parser)
    add_transition(parser, "transition: 1-based number, -1 for the last (default), or a "
                           "transition id (then -m may be left out)")
    parser.add_argument("--all-states", action="store_true",
                        help="list every state, not only active, changed and called ones")
    parser.add_argument("--traces", action="store_true",
                        help="print multi-line log entries (stack traces) in full")
    add_json(parser)


def _ref(session: Session, sel: Selection) -> dict[str, Any]:
    m = session.require_machine(sel)
    number = sel.number or 0
    # sources and forks carry their id (found by decoding them): no second decode for the url
    url = sel.url or m.transition(number).url
    return {"machine": m.key, "number": number, "url": url}


def _ref_text(session: Session, sel: Selection, own: str) -> Text:
    ref = _ref(session, sel)
    text = Text(printable(ref["url"]), style=STYLE_MACHINE)
    where = "this machine" if ref["machine"] == own else printable(ref["machine"])
    text.append(f"  ({where}, transition {ref['number']})", style=STYLE_DIM)
    return text


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print one transition (or JSON)."""
    session, sel = ctx.select(args)
    m = session.require_machine(sel)
    number, note = sel.number, sel.note
    if number is None:
        number, note = session.transition_number(m, -1), "the last one; choose with -t"
    tx = session.transition(m, number)
    source = session.source(tx)
    forks, forks_complete = session.forks(tx)
    queued = session.queued_for(tx)
    if args.json:
        data = transition_dict(tx)
        data.update({
            "of": len(m), "note": note,
            "source_ref": _ref(session, source) if source else None,
            "forks": [_ref(session, f) for f in forks], "forks_complete": forks_complete,
            "queued_at_ns": queued.wall_ns if queued else None,
            "queued_during": queued.tx_id if queued else None,
        })
        write_json(data, ctx.stdout)
        return 0
    ctx.out.print(render(session, m, tx, note=note, source=source, forks=forks,
                         forks_complete=forks_complete,
                         queued_ns=queued.wall_ns if queued else None,
                         queued_during=queued.tx_id if queued else "",
                         all_states=args.all_states, traces=args.traces))
    return 0


def render(session: Session, m: RecordedMachine, tx: TransitionRecord, *, note: str = "",
           source: Selection | None = None, forks: list[Selection] | None = None,
           forks_complete: bool = True,
           queued_ns: int | None = None, queued_during: str = "", all_states: bool = False,
           traces: bool = False) -> Group:
    """The whole `show` page as a rich renderable."""
    parts: list[Any] = []
    title = Text(printable(tx.url), style="bold")
    parts.append(title)
    where = Text()
    where.append(printable(m.key), style=STYLE_MACHINE)
    where.append(f" · transition {tx.number} of {len(m)}")
    if note:
        where.append(f" ({note})", style=STYLE_DIM)
    parts.append(where)

    headline = Text()
    headline.append(printable(mutation_label(tx)), style="bold")
    if tx.args:
        headline.append("  " + printable(" ".join(f"{k}={v}" for k, v in tx.args.items())),
                        style=STYLE_DIM)
    parts.append(headline)
    result = Text()
    reason = cancel_reason(tx)
    result.append(result_label(tx).upper(),
                  style=STYLE_ACCEPTED if tx.accepted else STYLE_CANCELED)
    if reason is not None:
        result.append(f": {printable(reason.text)}")
    elif tx.is_auto and set(tx.called) - set(tx.states_after):
        rejected = [s for s in tx.called if s not in tx.states_after]
        result.append(f" (partially: {printable(' '.join(rejected))} rejected)")
    changes = changes_label(tx)
    if changes:
        result.append("  " + printable(changes), style=STYLE_DIM)
    parts.append(result)
    if tx.unverified:
        parts.append(Text(f"UNVERIFIED: {UNVERIFIED_NOTE}", style=STYLE_UNVERIFIED))

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    flags = flag_names(tx)
    facts.add_row("flags", Text(", ".join(flags) if flags else "-",
                                style=(STYLE_UNVERIFIED if tx.unverified else STYLE_FLAG)
                                if flags else ""))
    start = session.start_ns
    facts.add_row("time", f"{format_wall(tx.start_ns)} ({format_offset(tx.start_ns, start)} "
                          f"into the recording), took {format_duration(tx.duration_ns)}")
    facts.add_row("machine time", machine_time_label(tx))
    queue = f"length {tx.queue_len}, queue tick {tx.queue_tick}"
    if tx.mutation_queue_tick and tx.mutation_queue_tick != tx.queue_tick:
        queue += f", mutation tick {tx.mutation_queue_tick}"
    if queued_ns is not None:
        queue += f"; queued at {format_offset(queued_ns, start)}"
        if queued_during:
            queue += f" during transition {printable(queued_during)}"
    facts.add_row("queue", queue)
    if tx.source is None:
        facts.add_row("source", Text("-", style=STYLE_DIM))
    elif source is not None:
        facts.add_row("source", _ref_text(session, source, m.key))
    else:
        facts.add_row("source", Text(f"{printable(str(tx.source))} (not in this recording)",
                                     style=STYLE_DIM))
    if forks or not forks_complete:
        caused = [_ref_text(session, f, m.key) for f in forks or ()]
        if not forks_complete:
            caused.append(Text(f"(searched the next {FORK_MAX_SCAN:,} transitions only)",
                               style=STYLE_DIM))
        facts.add_row("caused", Group(*caused))
    err = error_text(tx)
    if err:
        facts.add_row("error", Text(printable(err), style=STYLE_ERROR))
    if tx.truncated:
        facts.add_row("note", Text("record truncated at the recorder's size limits",
                                   style=STYLE_DIM))
    parts.append(Padding(facts, (1, 0, 0, 0)))

    parts.append(Padding(heading("States (before -> after)"), (1, 0, 0, 0)))
    states = table("state", "before", "after", "change", right=("before", "after"))
    for ch in state_changes(tx, everything=all_states):
        name = Text(printable(ch.name), style="bold underline" if ch.called else "")
        mark = Text(ch.mark, style=STYLE_REMOVED if ch.mark == "-" else STYLE_ADDED)
        states.add_row(name, _tick(ch.before), _tick(ch.after), mark)
    if states.row_count:
        parts.append(states)
    else:
        parts.append(Text("  no active, changed or called states", style=STYLE_DIM))

    parts.append(Padding(heading(f"Steps ({len(tx.steps)})"), (1, 0, 0, 0)))
    if tx.steps:
        steps = table("#", "step", right=("#",))
        for i, step in enumerate(tx.steps, 1):
            steps.add_row(str(i), printable(str(step)))
        parts.append(steps)
    else:
        parts.append(Text("  none recorded", style=STYLE_DIM))

    handlers = tx.handlers
    parts.append(Padding(heading(f"Handlers ({len(handlers)})"), (1, 0, 0, 0)))
    if handlers:
        ht = table("handler", "took", right=("took",))
        for handler, ns in handlers:
            ht.add_row(printable(handler), format_duration(ns))
        parts.append(ht)
    else:
        parts.append(Text("  none ran", style=STYLE_DIM))

    parts.append(Padding(heading(f"Args ({len(tx.args)})"), (1, 0, 0, 0)))
    if tx.args:
        at = table("key", "value")
        for key, value in tx.args.items():
            at.add_row(printable(key), printable(value))
        parts.append(at)
    else:
        parts.append(Text("  none", style=STYLE_DIM))

    for title_text, lines in (("Log before this transition", tx.pre_log),
                              ("Log during this transition", tx.log)):
        parts.append(Padding(heading(f"{title_text} ({len(lines)})"), (1, 0, 0, 0)))
        if lines:
            parts.append(_log_table(lines, traces))
        else:
            parts.append(Text("  none", style=STYLE_DIM))
    return Group(*parts)


def _tick(tick: int) -> Text:
    return Text(f"{tick}{'*' if tick & 1 else ' '}", style="bold" if tick & 1 else STYLE_DIM)


def _log_table(lines: list[LogLine], traces: bool) -> Table:
    lt = table("lvl", "line", right=("lvl",))
    for line in lines:
        text = line.text
        extra = text.count("\n")
        if extra and not traces:
            shown = Text(printable(first_line(text)))
            shown.append(f"  (+{extra} lines, --traces shows them)", style=STYLE_DIM)
        else:
            shown = Text(printable(text, newlines=True))
        if text.startswith("[error"):
            shown.stylize(STYLE_ERROR, 0, len(printable(first_line(text))))
        lt.add_row(str(line.level), shown)
    return lt


__all__ = ["DESCRIPTION", "HELP", "register", "render", "run"]
