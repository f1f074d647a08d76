"""`amdbg pack`: merge a recording (directory) into one portable file for a bug report."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from amnode.telemetry import FILE_SUFFIX, pack
from amnode.telemetry.pack import COMPRESSED_SUFFIX

from ..errors import DbgError, UsageError
from ..escape import printable
from ..output import STYLE_DIM, STYLE_UNVERIFIED
from ..session import Session
from .base import Context, add_targets

HELP = "merge a recording into one portable file"
DESCRIPTION = f"""\
Merge a recording directory (one file per process) into one file that amdbg reads exactly
like the directory, ready to attach to a bug report. Damaged parts (a partial last record
after a crash, corrupt records) are left out; records no check record covered (a torn tail's
complete records, the readable start of a damaged block) are kept and stay marked unverified
in the packed file. OUT is replaced if it exists.

Name OUT *{COMPRESSED_SUFFIX} to compress it (gzip, about 4x smaller; every amdbg command
reads it as it is, and a directory listing skips it, so it can sit next to its sources), or
*{FILE_SUFFIX} for an uncompressed file that opens without unpacking (keep that one out of
the recording directory, or its machines show twice).
"""


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pack`."""
    parser.usage = "%(prog)s [-h] [--force] REC OUT"
    add_targets(parser, address=False, metavar="REC OUT",
                help_text="the recording (file or directory) and the file to write")
    parser.add_argument("--force", action="store_true",
                        help=f"write OUT even when its name does not end in {FILE_SUFFIX}")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Pack REC into OUT and check that the result reads back the same."""
    if len(args.targets) != 2:
        raise UsageError("pack needs two arguments: REC OUT")
    src, dst = (Path(p) for p in args.targets)
    compress = dst.name.endswith(COMPRESSED_SUFFIX)
    if dst.is_dir():
        raise UsageError(f"{dst} is a directory; give a file name ending in "
                         f"{COMPRESSED_SUFFIX}")
    if not compress and dst.suffix != FILE_SUFFIX and not args.force:
        raise UsageError(f"{dst}: name the packed file *{COMPRESSED_SUFFIX} (compressed) or "
                         f"*{FILE_SUFFIX} (or add --force)")
    if not compress and src.is_dir() and dst.resolve().parent == src.resolve():
        raise UsageError(f"{dst} is inside the recording directory {src}, where its machines "
                         f"would show twice; write it elsewhere, or name it *{COMPRESSED_SUFFIX}")
    session, _ = ctx.open(argparse.Namespace(targets=[str(src)]))
    machines, transitions = len(session.machines), session.recording.transition_count
    files = len({p.file for p in session.recording.processes})
    try:
        size = pack(session.recording, dst, compress=compress)  # indexed above: read once
    except OSError as err:
        raise DbgError(f"cannot write {dst}: {err.strerror or err}") from None
    unverified = sum(m.unverified_records for m in session.machines)
    with Session.open(dst) as packed:
        if (len(packed.machines), packed.recording.transition_count) != (machines, transitions):
            raise DbgError(f"{dst} does not read back like {src} "
                           f"({len(packed.machines)} machines, "
                           f"{packed.recording.transition_count} transitions)")
    line = Text(printable(f"packed {src} ({files} file{'s' if files != 1 else ''}, "
                          f"{machines} machines, {transitions} transitions) into {dst}"))
    line.append(f" ({size:,} bytes{', gzip-compressed' if compress else ''})", style=STYLE_DIM)
    if unverified:
        line.append(f"; {unverified} unverified record(s) kept, still marked unverified",
                    style=STYLE_UNVERIFIED)
    ctx.out.print(line)
    return 0


__all__ = ["DESCRIPTION", "HELP", "register", "run"]
