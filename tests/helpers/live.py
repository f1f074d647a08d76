"""Shared helpers for the live debugging tests: an endpoint on the test's loop, waits on state
(with generous failure bounds, never a duration assertion), raw connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import amnode as am
from amnode.telemetry import endpoint, process
from amnode.telemetry.live_protocol import PREFACE, VERSION, Msg, control
from amnode.telemetry.receiver import LiveRecording

#: generous failure bound for waits on state
T = 30.0

# machines made from now on can be attached to (node processes do this when importing
# amnode.node, other programs when AMNODE_DBG_* is set)
process.track()


def quiet(schema: dict[str, Any], **kw: Any) -> am.Machine:
    """A machine logging into its transitions only, with a handler timeout no stall trips."""
    kw.setdefault("log_level", am.LogLevel.OPS)
    kw.setdefault("handler_timeout", 60.0)
    return am.Machine(schema, logger=lambda level, line: None, **kw)


async def until(cond: Callable[[], Any], timeout: float = T, what: Any = "") -> Any:
    """Wait until `cond()` is truthy (polled between loop iterations); fail after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.time() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {said or cond}")
        await asyncio.sleep(0.01)


async def grown(live: LiveRecording, cond: Callable[[], Any], timeout: float = T,
                what: Any = "") -> Any:
    """Refresh `live`'s recording until `cond()` holds."""
    def check() -> Any:
        live.recording.refresh()
        return cond()

    return await until(check, timeout, what)


@contextlib.asynccontextmanager
async def serving(**kw: Any) -> AsyncIterator[str]:
    """`endpoint.serve` on 127.0.0.1:0 in the test's loop; yields its address."""
    server = await endpoint.serve("127.0.0.1:0", **kw)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"{host}:{port}"
    finally:
        server.close()


def hello(role: str = "attach", **body: Any) -> bytes:
    """The preface and a HELLO, as a debugger sends them."""
    return PREFACE + control(Msg.HELLO, 0, {"v": VERSION, "role": role, **body})


def telemetry_tracers(m: am.Machine) -> list[Any]:
    """The telemetry tracers bound to `m`."""
    return [t for t in m.tracers if t.tracer_id == "amnode.telemetry"]


def count(live: LiveRecording, key: str) -> int:
    """How many transitions machine `key` has in `live` (-1: not there yet)."""
    found = [m for m in live.recording.machines if m.key == key]
    return len(found[0]) if found else -1


def wait_for_dumps(directory: Path, n: int = 1) -> list[Path]:
    """The flight dump files in `directory`, once `n` exist. Dumps are written by a thread (or
    process) of their own, so this polls the disk, bounded by `T`."""
    deadline = time.monotonic() + T
    while time.monotonic() < deadline:
        files = sorted(directory.glob("flight-*.amrec")) if directory.exists() else []
        if len(files) >= n:
            return files
        time.sleep(0.01)
    raise AssertionError(f"no {n} dump(s) in {directory}")
