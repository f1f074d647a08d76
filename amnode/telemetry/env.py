"""The environment variables of the telemetry: `AMNODE_RECORD` and the live debugger's.

| variable | effect |
|---|---|
| `AMNODE_RECORD=<dir>` | record every machine of this process (and of child processes) |
| `AMNODE_DBG_ADDR=<host:port>` | push every machine's records to `amdbg listen` there |
| `AMNODE_DBG_LISTEN=<host:port>` | let debuggers attach to this process (`amdbg attach`) |
| `AMNODE_DBG_RING=<n>` | the flight recorder's size (records per machine; 0: none) |
| `AMNODE_DBG_DUMP=<dir>` | where the flight recorder dumps (`off`: never) |

`install()` reads them (`import amnode` calls it when one is set). The process-wide recorder
is created on the first machine, so processes that never make a machine leave no file behind;
child processes inherit the variables.
"""

from __future__ import annotations

import os

from . import process
from .recorder import Recorder

ENV_VAR = "AMNODE_RECORD"
DBG_ADDR_VAR = "AMNODE_DBG_ADDR"
DBG_LISTEN_VAR = "AMNODE_DBG_LISTEN"
DBG_RING_VAR = "AMNODE_DBG_RING"
DBG_DUMP_VAR = "AMNODE_DBG_DUMP"
#: variables that make `import amnode` install the telemetry
VARIABLES = (ENV_VAR, DBG_ADDR_VAR, DBG_LISTEN_VAR, DBG_RING_VAR)


def install(path: str | os.PathLike[str] | None = None) -> bool:
    """Record every machine created from now on into the directory `path` (default: the
    `AMNODE_RECORD` variable); also start what the `AMNODE_DBG_*` variables ask for (push to
    a listening debugger, accept attaching debuggers, the flight recorder). Idempotent;
    returns False when there is nothing to record to."""
    target = os.fspath(path) if path is not None else os.environ.get(ENV_VAR, "")
    if target:
        process.set_record_path(target)
    if path is None:
        _install_debugger()
    return bool(target)


def _install_debugger() -> None:
    from . import flight

    ring = os.environ.get(DBG_RING_VAR, "").strip()
    if ring:
        flight.enable(_int(ring, DBG_RING_VAR))
    addr = os.environ.get(DBG_ADDR_VAR, "").strip()
    if addr:
        from . import push
        if not ring:  # a reconnected stream starts with each machine's recent records
            process.set_ring(flight.DEFAULT_RING)
        push.start(addr)
    listen = os.environ.get(DBG_LISTEN_VAR, "").strip()
    if listen:
        from . import endpoint
        endpoint.serve_in_thread(listen)


def _int(text: str, name: str) -> int:
    try:
        return max(0, int(text))
    except ValueError:
        import sys
        print(f"amnode.telemetry: {name}={text!r} is not a number; ignored", file=sys.stderr)
        return 0


def uninstall() -> None:
    """Stop recording new machines and close the process-wide recorder (flushing it)."""
    process.set_record_path(None)


def process_recorder() -> Recorder | None:
    """The process-wide recorder (created on first use), or None when not installed.

    Once closed (at interpreter exit) it is not recreated: machines made during shutdown are
    not recorded rather than starting a new file.
    """
    return process._ensure(lazy=True)


__all__ = ["DBG_ADDR_VAR", "DBG_DUMP_VAR", "DBG_LISTEN_VAR", "DBG_RING_VAR", "ENV_VAR",
           "VARIABLES", "install", "process_recorder", "uninstall"]
