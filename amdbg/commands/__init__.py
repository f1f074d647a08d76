"""One module per amdbg command; each has HELP, DESCRIPTION, register(parser), run(args, ctx)."""

from __future__ import annotations

from types import ModuleType

from . import attach, diff, export, graph, listen, log, ls, pack, replay, show

#: command name -> module, in the order `amdbg --help` lists them
COMMANDS: dict[str, ModuleType] = {
    "ls": ls, "show": show, "log": log, "graph": graph, "pack": pack, "replay": replay,
    "attach": attach, "listen": listen, "export": export, "diff": diff,
}

__all__ = ["COMMANDS"]
