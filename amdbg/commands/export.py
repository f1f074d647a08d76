"""`amdbg export`: write a recording as a Go am-dbg export (`.gob.br`, for `--import-data`), or
as Chrome / Perfetto trace-event JSON (`--format chrome`, see `amdbg.trace`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.text import Text

from amnode.telemetry import Recording

from ..errors import DbgError, UsageError
from ..goexport.compress import decompress
from ..goexport.from_amrec import export_gob_br
from ..goexport.to_amrec import convert
from ..output import STYLE_DIM
from ..trace import write_chrome_trace
from .base import Context, add_targets

HELP = "write a recording as a Go am-dbg export (.gob.br) or a trace for Perfetto (.json)"
DESCRIPTION = """\
Write REC (a recording, or a Go export) as OUT.

--format gob (the default): a brotli-compressed gob file in the layout the Go debugger reads:
`am-dbg --import-data OUT`. Every machine with its schema, transitions and queued mutations is
written; what the Go format has no field for (handler durations, sources, disposals) is left
out, see docs/go-interop.md. Name it *.gob.br.

--format chrome: trace-event JSON for ui.perfetto.dev, chrome://tracing or the catapult trace
viewer: one process per recorded process, one track per machine, transitions as slices with
their handlers nested inside, canceled and error transitions marked, flow arrows from each
transition's source to what it caused (docs/testing.md, "Timelines"). Name it *.json.

OUT is replaced if it exists.
"""
FORMATS = ("gob", "chrome")
#: the file name each format expects (without --force)
SUFFIXES = {"gob": ".gob.br", "chrome": ".json"}


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `export`."""
    parser.usage = "%(prog)s [-h] [--format gob|chrome] [--force] REC OUT"
    add_targets(parser, address=False, metavar="REC OUT",
                help_text="the recording (file, directory or Go export) and the file to write")
    parser.add_argument("--format", choices=FORMATS, default="gob",
                        help="gob: a Go am-dbg export (default); chrome: trace-event JSON for "
                             "Perfetto and chrome://tracing")
    parser.add_argument("--force", action="store_true",
                        help="write OUT even when its name does not end in .gob.br (gob) or "
                             ".json (chrome)")


def _version() -> str:
    try:
        from importlib.metadata import version
        return f"amdbg {version('amnode')}"
    except Exception:
        return "amdbg"


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Export REC into OUT and check that OUT reads back with the same counts."""
    if len(args.targets) != 2:
        raise UsageError("export needs two arguments: REC OUT")
    src, dst = (Path(p) for p in args.targets)
    fmt = getattr(args, "format", "gob")
    suffix = SUFFIXES[fmt]
    if dst.is_dir():
        raise UsageError(f"{dst} is a directory; give a file name ending in {suffix}")
    if not dst.name.endswith(suffix) and not args.force:
        hint = " (for a trace viewer: --format chrome)" if \
            fmt == "gob" and dst.name.endswith(".json") else ""
        raise UsageError(f"{dst}: name the export *{suffix} (or add --force){hint}")
    session, _ = ctx.open(argparse.Namespace(targets=[str(src)]))
    if fmt == "chrome":
        return _chrome(session.recording, src, dst, ctx)
    rec = session.recording
    machines, transitions = len(session.machines), rec.transition_count
    queued = sum(m.queued_count for m in session.machines)
    data = export_gob_br(rec, _version())
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dst)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DbgError(f"cannot write {dst}: {err.strerror or err}") from None
    check = dst.with_name(dst.name + ".check.amrec")
    try:
        back = convert(decompress(data).data, check)
    finally:
        check.unlink(missing_ok=True)
    if (back.machines, back.transitions, back.queued) != (machines, transitions, queued):
        raise DbgError(f"{dst} does not read back like {src} ({back.machines} machines, "
                       f"{back.transitions} transitions, {back.queued} queued)")
    line = Text(f"exported {src} ({machines} machines, {transitions} transitions, {queued} "
                f"queued mutations) to {dst}")
    line.append(f" ({len(data):,} bytes)", style=STYLE_DIM)
    ctx.out.print(line)
    return 0


def _chrome(rec: Recording, src: Path, dst: Path, ctx: Context) -> int:
    """Write the trace-event JSON to a temporary file, then put it in place."""
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        with open(tmp, "w", encoding="ascii") as out:
            stats = write_chrome_trace(rec, out, source=str(src), producer=_version())
        os.replace(tmp, dst)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DbgError(f"cannot write {dst}: {err.strerror or err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    line = Text(f"exported {src} ({stats.processes} processes, {stats.machines} machines, "
                f"{stats.transitions} transitions, {stats.flows} flow arrows) to {dst}")
    notes = []
    if stats.unresolved_sources:
        notes.append(f"{stats.unresolved_sources} sources not in the recording")
    if stats.clamped_transitions:
        notes.append(f"{stats.clamped_transitions} overlapping transitions moved")
    if notes:
        line.append(f" ({'; '.join(notes)})", style=STYLE_DIM)
    ctx.out.print(line)
    return 0


__all__ = ["DESCRIPTION", "FORMATS", "HELP", "register", "run"]
