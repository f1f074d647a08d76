"""`amdbg export`: write a recording as a Go am-dbg export (`.gob.br`, for `--import-data`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.text import Text

from ..errors import DbgError, UsageError
from ..goexport.compress import decompress
from ..goexport.from_amrec import export_gob_br
from ..goexport.to_amrec import convert
from ..output import STYLE_DIM
from .base import Context, add_targets

HELP = "write a recording as a Go am-dbg export (.gob.br)"
DESCRIPTION = """\
Write REC (a recording, or another Go export) as OUT, a brotli-compressed gob file in the
layout the Go debugger reads: `am-dbg --import-data OUT`. Every machine with its schema,
transitions and queued mutations is written; what the Go format has no field for (handler
durations, sources, disposals) is left out, see docs/go-interop.md. OUT is replaced if it
exists; name it *.gob.br.
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `export`."""
    parser.usage = "%(prog)s [-h] [--force] REC OUT"
    add_targets(parser, address=False, metavar="REC OUT",
                help_text="the recording (file, directory or Go export) and the file to write")
    parser.add_argument("--force", action="store_true",
                        help="write OUT even when its name does not end in .gob.br")


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
    if dst.is_dir():
        raise UsageError(f"{dst} is a directory; give a file name ending in .gob.br")
    if not dst.name.endswith(".gob.br") and not args.force:
        raise UsageError(f"{dst}: name the export *.gob.br (or add --force)")
    session, _ = ctx.open(argparse.Namespace(targets=[str(src)]))
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


__all__ = ["DESCRIPTION", "HELP", "register", "run"]
