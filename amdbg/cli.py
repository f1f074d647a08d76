"""The `amdbg` command line: argument parsing, dispatch to `amdbg.commands`, error handling.

Every error is one line on stderr (`amdbg: error: ...`) and a non-zero exit status. A recording
whose files end with a torn record (a killed writer) prints one warning line and exits 0; other
damage prints one warning line, shows what is readable and exits with 3. `AMDBG_DEBUG=1` lets
tracebacks through for debugging amdbg itself.

Exit status: 0 success, 1 error, 2 bad command line, 3 damaged recording (output shown),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from amnode.telemetry import RecordingError

from .commands import COMMANDS
from .commands.base import PROG, Context
from .errors import DbgError, UsageError
from .escape import printable
from .output import Printer

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Read amnode recordings: list machines, show one transition, list transitions, draw graphs,
pack a recording into one file, or step through it interactively (replay).

REC is a recording file (*.amrec) or directory (default: $AMNODE_RECORD), or a Go am-dbg
export (*.gob.br, see docs/go-interop.md). A machine is chosen with -m (full id or a unique
part), a transition with -t (1-based number, -1 = last, or a transition id), or both at once
with a mach://MACHINE/TX_ID address.
"""

EPILOG = """\
examples:
  amdbg ls recordings/orders.amrec
  amdbg show recordings/orders.amrec -m order-1002 -t 3
  amdbg log recordings/orders.amrec -m 1002 --canceled
  amdbg graph recordings/orders.amrec -m order-1001 -t 2 --format mermaid
  amdbg graph recordings/orders.amrec -m order-1002 -t 7 --steps
  amdbg pack recordings/crawler crawler.amrec.gz
  amdbg replay recordings/orders.amrec -m order-1002 -t 7

exit status: 0 ok (a torn last record only warns), 1 error, 2 bad command line,
             3 damaged recording (readable part shown)
set AMDBG_DEBUG=1 to see tracebacks
"""


class ArgParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageError (one line), not usage text + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Raise the problem as a UsageError; main() prints it as one line."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> tuple[ArgParser, dict[str, ArgParser]]:
    """The top-level parser (for --help and --version) and each command's own parser."""
    parser = ArgParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgParser)
    commands: dict[str, ArgParser] = {}
    for name, module in COMMANDS.items():
        commands[name] = sub.add_parser(
            name, help=module.HELP, description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.register(commands[name])
    return parser, commands


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("amnode")
    except Exception:
        return "unknown"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; options and positionals may be mixed in any order."""
    parser, commands = build_parser()
    argv = list(argv)
    if not argv:
        raise UsageError(f"choose a command: {', '.join(COMMANDS)} (see '{PROG} --help')")
    first = argv[0]
    if first.startswith("-"):
        parser.parse_args(argv[:1])  # --help / --version exit here; others are errors
        raise UsageError(f"choose a command before options: {', '.join(COMMANDS)}")
    if first not in COMMANDS:
        raise UsageError(f"unknown command {first!r}; choose from {', '.join(COMMANDS)}")
    args = commands[first].parse_intermixed_args(argv[1:])
    args.command = first
    return args


# ---------------------------------------------------------------------- main


def _debug() -> bool:
    return os.environ.get("AMDBG_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def main(argv: Sequence[str] | None = None) -> int:
    """Run amdbg with `argv` (default: sys.argv[1:]) and return the exit status."""
    stdout, stderr = sys.stdout, sys.stderr
    ctx = Context(Printer(stdout), stdout, stderr)
    debug = _debug()
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        status = COMMANDS[args.command].run(args, ctx)
        stdout.flush()
        if ctx.damage and ctx.torn_tail_only:
            # what a process killed mid-write leaves: everything before it is intact
            _say(f"{PROG}: warning: recording ends with a torn record: {ctx.damage}; the "
                 "writing process was probably killed, everything before it is shown "
                 "(records no check record covers are marked unverified)", stderr)
        elif ctx.damage:
            _say(f"{PROG}: warning: recording is damaged: {ctx.damage}; the output covers "
                 "the readable records only", stderr)
            return status or EXIT_DAMAGED
        return status
    except SystemExit as exit_:  # --help and --version
        code = exit_.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
    except (DbgError, RecordingError) as err:
        if debug:
            traceback.print_exc(file=stderr)
        damage = f" (the recording is damaged: {ctx.damage})" if ctx.damage else ""
        _say(f"{PROG}: error: {_one_line(err)}{damage}", stderr)
        return err.exit_code if isinstance(err, DbgError) else EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`amdbg log ... | head`): stop quietly
        _silence_stdout()
        return EXIT_OK
    except Exception as err:
        if debug:
            traceback.print_exc(file=stderr)
        damage = f" (the recording is damaged: {ctx.damage})" if ctx.damage else ""
        _say(f"{PROG}: internal error: {type(err).__name__}: {_one_line(err)}{damage} "
             "(run with AMDBG_DEBUG=1 for a traceback)", stderr)
        return EXIT_ERROR
    finally:
        if ctx.session is not None:
            ctx.session.close()


def _say(line: str, stream: TextIO) -> None:
    """One line on `stream` (stderr); it may quote the recording, so it is escaped."""
    print(printable(line), file=stream)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


__all__ = ["EXIT_DAMAGED", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "ArgParser", "build_parser",
           "main", "parse"]
