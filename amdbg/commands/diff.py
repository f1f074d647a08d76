"""`amdbg diff`: two sessions side by side, machine by machine (by role), state activations."""

from __future__ import annotations

import argparse

from rich.text import Text

from ..compare import MachineDiff, compare
from ..errors import DbgError, UsageError
from ..output import (
    STYLE_ADDED,
    STYLE_CANCELED,
    STYLE_DIM,
    STYLE_MACHINE,
    heading,
    table,
    write_json,
)
from ..session import Session
from .base import Context, add_json

HELP = "compare two sessions (either format) machine by machine"
DESCRIPTION = """\
Line up the machines of A and B by role — their ids with the run-specific parts masked, e.g.
ns-<kind>-<host>-<time>-0 (rules in docs/go-interop.md) — and show per machine which states
its accepted transitions activated, in order, in each session, and where the two first
differ. A and B may be recordings or Go am-dbg exports (.gob.br). Exit status 0 when every
machine did the same, 4 when some differ or exist on one side only.
"""
EXIT_DIFFERENT = 4


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `diff`."""
    parser.usage = "%(prog)s [-h] [-m ROLE] [--all] [--context N] [--json] A B"
    parser.add_argument("targets", nargs="*", metavar="A B",
                        help="the two sessions: recording files, directories or Go exports")
    parser.add_argument("-m", "--select-machine", dest="machine", metavar="ROLE",
                        help="only the machines whose role or id contains ROLE")
    parser.add_argument("--all", action="store_true",
                        help="list every change of each machine shown, not only the first "
                             "differing ones")
    parser.add_argument("--context", type=int, default=3, metavar="N",
                        help="changes shown before the first difference (default 3)")
    add_json(parser)


def _clean(text: str) -> str:
    """Control characters of hostile ids shown as escapes."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _change(diff: MachineDiff, side: str, i: int) -> Text:
    run = diff.a if side == "a" else diff.b
    if run is None or i >= len(run.changes):
        return Text("-", style=STYLE_DIM)
    on, off = run.changes[i]
    out = Text(f"#{run.numbers[i]} ", style=STYLE_DIM)
    out.append(" ".join("+" + _clean(s) for s in on), style=STYLE_ADDED)
    if off:
        out.append((" " if on else "") + " ".join("-" + _clean(s) for s in off),
                   style=STYLE_DIM)
    return out


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Open both sessions, compare them, print the summary and the differing changes."""
    if len(args.targets) != 2:
        raise UsageError("diff needs two sessions: A B")
    a, _ = ctx.open(argparse.Namespace(targets=[args.targets[0]]))
    try:
        b = Session.open(args.targets[1])
    except DbgError as err:
        raise DbgError(f"B: {err}") from None
    try:
        for line in b.warnings:
            ctx.warn(f"B: {line}")
        damage_b = b.damage_summary()
        if damage_b:
            ctx.damage = "; ".join(d for d in (ctx.damage, damage_b) if d)
            ctx.torn_tail_only = ctx.torn_tail_only and b.torn_tail_only
        diffs = compare(a.recording, b.recording)
    finally:
        b.close()
    if args.machine:
        part = args.machine
        diffs = [d for d in diffs if part in d.role or
                 any(r is not None and part in r.key for r in (d.a, d.b))]
        if not diffs:
            raise DbgError(f"no machine role or id contains {part!r}")
    different = any(d.status != "same" for d in diffs)
    if args.json:
        write_json({"a": str(args.targets[0]), "b": str(args.targets[1]),
                    "machines": [d.to_json() for d in diffs]}, ctx.stdout)
        return EXIT_DIFFERENT if different else 0
    t = table("role", "A", "B", "changes A", "changes B", "result",
              right=("changes A", "changes B"))
    for d in diffs:
        first = d.first_divergence
        result = Text(d.status if first is None or d.status != "differs"
                      else f"differs at change {first}",
                      style=STYLE_DIM if d.status == "same" else STYLE_CANCELED)
        t.add_row(Text(_clean(d.role), style=STYLE_MACHINE),
                  Text(_clean(d.a.key) if d.a else "-"), Text(_clean(d.b.key) if d.b else "-"),
                  str(len(d.a.changes)) if d.a else "-", str(len(d.b.changes)) if d.b else "-",
                  result)
    same = sum(d.status == "same" for d in diffs)
    ctx.out.print(Text(f"A {args.targets[0]}\nB {args.targets[1]}\n{len(diffs)} roles, "
                       f"{same} the same, {len(diffs) - same} different"), t)
    for d in diffs:
        if d.status != "differs" and not (args.all and d.status == "same"):
            continue
        first = (d.first_divergence or 1) - 1
        start = 0 if args.all else max(0, first - max(args.context, 0))
        count = max(len(d.a.changes) if d.a else 0, len(d.b.changes) if d.b else 0)
        stop = count if args.all else min(count, first + 1 + max(args.context, 0))
        rows = table("", "A", "B", right=("",))
        for i in range(start, stop):
            rows.add_row(Text(">" if i == first and d.status == "differs" else ""),
                         _change(d, "a", i), _change(d, "b", i))
        ctx.out.print(heading(f"{_clean(d.role)}: {d.status}"
                              + (f" at change {first + 1}" if d.status == "differs" else "")),
                      rows)
    return EXIT_DIFFERENT if different else 0


__all__ = ["DESCRIPTION", "EXIT_DIFFERENT", "HELP", "register", "run"]
