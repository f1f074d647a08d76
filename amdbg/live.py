"""Live targets: `HOST:PORT` addresses of running processes, wherever a recording is accepted.

`amdbg attach ADDR...` and `amdbg listen [ADDR]` run the TUI on a recording that grows
(`amnode.telemetry.LiveRecording`); `ls` and `log` accept an address instead of a recording
and read what the processes there have sent once they sent their recent history (`READY`);
`log --follow` keeps printing. Everything here reads records only: a debugger never changes a
machine.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from amnode.telemetry import RecordingError
from amnode.telemetry.receiver import LiveConnectError, LiveRecording

from .errors import DbgError, UsageError

#: `host:port`, `:port`, `[v6]:port` (a path that exists is never an address)
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]*):(\d{1,5})$")
#: seconds `ls` / `log` wait for the processes' history
READY_TIMEOUT = 10.0
#: where `amdbg listen` listens without an address (the Go am-dbg's port)
DEFAULT_LISTEN = "127.0.0.1:6831"


def is_live_address(text: str) -> bool:
    """True when `text` names a running process (`host:port`) rather than a recording."""
    return bool(_ADDRESS.match(text)) and not os.path.exists(text)


def check_address(text: str) -> str:
    """`text` if it is `host:port` (an empty host is 127.0.0.1), else a UsageError."""
    m = _ADDRESS.match(text)
    if m is None or not 0 < int(m.group(2)) <= 65535:
        raise UsageError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:6831)")
    return text if m.group(1) else "127.0.0.1" + text


def label(addrs: list[str], listen: str = "") -> str:
    """What a live session is called (the window's title, `ls`'s heading)."""
    parts = [*addrs, *([f"listen {listen}"] if listen else [])]
    return " + ".join(parts) or "live"


def new_live(addrs: list[str], *, record: str | None = None, history: bool = True,
             listen: str = "") -> LiveRecording:
    """A live recording for these targets (nothing connects yet: see `connect`)."""
    if record is not None:
        target = Path(record)
        if target.exists() and not target.is_dir():
            raise UsageError(f"--record {record}: not a directory")
    try:
        return LiveRecording(label(addrs, listen), record_dir=record, history=history)
    except OSError as err:
        raise DbgError(f"--record {record}: {err}") from None


async def connect(live: LiveRecording, addrs: list[str], listen: str | None = None) -> str:
    """Attach to every address (and listen, when `listen` is given); returns the address
    listened on (""). A target that cannot be reached is a DbgError (one line)."""
    bound = ""
    try:
        if listen is not None:
            bound = await live.listen(listen)
        for addr in addrs:
            await live.attach(addr)
    except LiveConnectError as err:
        raise DbgError(str(err)) from None
    return bound


def snapshot(addrs: list[str], *, history: bool = True, timeout: float = READY_TIMEOUT
             ) -> LiveRecording:
    """Attach, wait for the processes' recent history, detach: what `ls` and `log` read."""
    live = new_live(addrs, history=history)

    async def run() -> None:
        await connect(live, addrs)
        await live.wait_ready(timeout)
        await live.close()

    try:
        asyncio.run(run())
    except RecordingError as err:
        raise DbgError(str(err)) from None
    live.recording.refresh()
    return live


__all__ = ["DEFAULT_LISTEN", "READY_TIMEOUT", "check_address", "connect", "is_live_address",
           "label", "new_live", "snapshot"]
