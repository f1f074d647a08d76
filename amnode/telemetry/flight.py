"""The flight recorder: each machine's last records in memory, for the moment something fails.

`enable(n)` makes the process recorder keep every machine's last `n` to `2n - 1` records (its
ring: two generations of `n`, the older dropped when the newer fills; disposed machines' rings
are kept too, the newest 32). A debugger attaching to the process gets them first, so a user
who attaches after a failure still sees how it happened. The same records are dumped to a
recording file (which `amdbg` opens like any other) when

* a machine enters `Exception` and no handler of `Exception` (nor of the error state that
  came with it, e.g. `ErrWorkerState`) ran in that transition: an unhandled error, at most
  one dump every 10 s and 20 per process;
* the process receives SIGUSR1 (when nothing else handles that signal): `kill -USR1 PID`.

Dumps go to `AMNODE_DBG_DUMP` (a directory; `off` disables them; default: `amnode-flight` in
the system's temporary directory), named `flight-HOST-PID-TIME.amrec`, each announced by one
line on stderr. Node processes enable the flight recorder by default (`AMNODE_DBG_RING=0`
turns it off, `AMNODE_DBG_RING=N` sets its size everywhere).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from amnode.machine import EXCEPTION

from . import process
from .recorder import Recorder, recording_file_name
from .writer import seal

#: records per machine a node process keeps by default (64 to 127 of them)
DEFAULT_RING = 64
#: seconds between two dumps made because of an unhandled Exception, and how many at most
DUMP_INTERVAL = 10.0
DUMPS_MAX = 20
_HANDLER_STEP = 2  # StepType.HANDLER

_lock = threading.Lock()
_last_dump = -DUMP_INTERVAL
_dumps = 0
_signal_installed = False


def enable(size: int = DEFAULT_RING, *, signals: bool = True) -> None:
    """Keep the last `size` to `2 * size - 1` records of every machine of this process (0:
    turn the flight recorder off); with `signals`, SIGUSR1 dumps them (when the process does
    not handle SIGUSR1 itself and this is the main thread)."""
    process.set_ring(size)
    if size:
        process.on_new_recorder(_watch)
        if signals:
            _install_signal()


def _watch(rec: Recorder) -> None:
    rec.on_error = _on_error


def dump_dir() -> Path | None:
    """Where dumps go: `AMNODE_DBG_DUMP`, or `amnode-flight` in the temporary directory;
    None when dumps are off."""
    value = os.environ.get("AMNODE_DBG_DUMP", "").strip()
    if value.lower() in ("off", "0", "no", "none", "false"):
        return None
    return Path(value) if value else Path(tempfile.gettempdir()) / "amnode-flight"


def dump(reason: str = "requested", directory: str | os.PathLike[str] | None = None
         ) -> Path | None:
    """Write the flight recorder's records to a new recording file and return its path (None
    without a process recorder or with dumps off). Any thread."""
    rec = process.recorder()
    target = Path(directory) if directory is not None else dump_dir()
    if rec is None or target is None:
        return None
    frames = rec.history()
    data = rec.header + (seal(frames, time.time_ns()) if frames else b"")
    target.mkdir(parents=True, exist_ok=True)
    path = target / ("flight-" + recording_file_name(time.time_ns()))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    print(f"amnode.telemetry: flight recorder ({reason}): {len(frames)} records dumped to "
          f"{path}", file=sys.stderr, flush=True)
    return path


def _dump_quietly(reason: str) -> None:
    try:
        dump(reason)
    except Exception as err:  # a dump must never take the process down
        print(f"amnode.telemetry: flight recorder dump failed: {err}", file=sys.stderr)


def request_dump(reason: str, *, rate_limited: bool = True) -> bool:
    """Dump on a new thread (never on a machine's); False when rate-limited."""
    global _last_dump, _dumps
    now = time.monotonic()
    with _lock:
        if rate_limited and (now - _last_dump < DUMP_INTERVAL or _dumps >= DUMPS_MAX):
            return False
        _last_dump = now
        _dumps += 1
    threading.Thread(target=_dump_quietly, args=(reason,), name="amnode-flight-dump",
                     daemon=True).start()
    return True


def _on_error(tracer: Any, t: Any) -> None:
    """On the machine's thread, after a transition that left an error state active: dump
    when it activated `Exception` and no handler of it (or of an Err* state) ran."""
    idx = tracer.enc.index.get(EXCEPTION)
    after, before = t.time_after, t.time_before
    if idx is None or idx >= len(after) or not after[idx] & 1 or \
            (idx < len(before) and before[idx] & 1):
        return
    for s in t.steps:
        if s.type == _HANDLER_STEP and s.is_final and s.is_enter and (
                s.handler == "ExceptionState" or s.handler.startswith("Err")):
            return  # handled
    request_dump(f"{tracer.machine.id} entered Exception with no handler (transition {t.id})")


def _on_signal(signum: int, frame: Any) -> None:
    request_dump("SIGUSR1", rate_limited=False)


def _install_signal() -> None:
    global _signal_installed
    sig = getattr(signal, "SIGUSR1", None)
    if _signal_installed or sig is None or \
            threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(sig) not in (signal.SIG_DFL, None):
            return  # the program handles it
        signal.signal(sig, _on_signal)
        _signal_installed = True
    except (ValueError, OSError):
        pass


__all__ = ["DEFAULT_RING", "DUMPS_MAX", "DUMP_INTERVAL", "dump", "dump_dir", "enable",
           "request_dump"]
