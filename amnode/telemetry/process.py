"""The process's telemetry: one recorder shared by every output this process has.

A process has at most one *process recorder*. It records to the `AMNODE_RECORD` directory
when that is set, keeps the flight recorder's ring when one is enabled (`set_ring`: node
processes do by default), and streams to live subscribers (debuggers attached to this
process, `endpoint.py`; `amdbg listen` in push mode, `push.py`). Each transition is encoded
once, on the machine's thread, for all of them.

Machines are tracked from their creation (a `MACHINE_INIT_HOOKS` hook keeping a weak set,
installed by `track()`) so that a debugger attaching later can be given every live machine.
When nothing needs the recorder — no file, no ring, nobody attached — there is none: no
tracer is bound, machines pay nothing (`release()` closes it when the last subscriber goes).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable

from amnode.machine import MACHINE_INIT_HOOKS, Machine, WrongThreadError

from .recorder import Recorder

_lock = threading.RLock()
_machines: weakref.WeakSet[Machine] = weakref.WeakSet()
_record_path: str | None = None
_record_failed = False
_ring = 0
_recorder: Recorder | None = None
_holders = 0
#: called with each new process recorder (the flight recorder sets its error hook)
_on_new: list[Callable[[Recorder], None]] = []


def track() -> None:
    """Track every machine created from now on (idempotent): cheap (a weak set), and what
    lets a recorder created later attach to the machines that exist then."""
    with _lock:
        if _hook not in MACHINE_INIT_HOOKS:
            MACHINE_INIT_HOOKS.append(_hook)


def untrack() -> None:
    """Stop tracking new machines (tests)."""
    with _lock:
        if _hook in MACHINE_INIT_HOOKS:
            MACHINE_INIT_HOOKS.remove(_hook)


def machines() -> list[Machine]:
    """The tracked machines that are not disposed, in no particular order."""
    return [m for m in list(_machines) if not m.is_disposed]


def _hook(machine: Machine) -> None:
    _machines.add(machine)
    rec = _recorder
    if rec is None or rec.closed:
        rec = _ensure(lazy=True)
    if rec is None:
        return
    try:
        rec.attach(machine)
    except RuntimeError:
        pass  # closed concurrently (interpreter exit)


def _ensure(lazy: bool = False) -> Recorder | None:
    """The process recorder, created when something needs it (a file, a ring, a holder)."""
    global _recorder, _record_failed
    with _lock:
        rec = _recorder
        if rec is not None and not rec.closed:
            return rec
        if rec is not None and rec.closed and lazy:
            return None  # closed at interpreter exit: machines made now are not recorded
        path = _record_path if not _record_failed else None
        if path is None and not _ring and not _holders:
            return None
        try:
            rec = Recorder(path, ring=_ring)
        except OSError as err:
            _record_failed = True
            print(f"amnode.telemetry: cannot record to {path}: {err}", file=sys.stderr)
            if not _ring and not _holders:
                return None
            rec = Recorder(None, ring=_ring)
        _recorder = rec
        for fn in list(_on_new):
            fn(rec)
    if not lazy:
        attach_all(rec)
    return rec


def attach_all(rec: Recorder) -> None:
    """Attach `rec` to every tracked machine: at once on this thread's machines, through
    their event loop for the others (machines without a loop on another thread are left)."""
    for m in machines():
        if rec.is_attached(m):
            continue
        try:
            rec.attach(m)
        except WrongThreadError:
            with contextlib.suppress(Exception):
                m.threadsafe.eval(lambda m=m: _attach_quiet(rec, m), "amnode.telemetry.live")
        except RuntimeError:
            return  # the recorder was closed


def _attach_quiet(rec: Recorder, m: Machine) -> None:
    with contextlib.suppress(RuntimeError):
        if not m.is_disposed:
            rec.attach(m)


def recorder() -> Recorder | None:
    """The process recorder, or None when there is none (nothing needs one)."""
    rec = _recorder
    return None if rec is None or rec.closed else rec


def set_record_path(path: str | None) -> None:
    """Record to this directory (`AMNODE_RECORD`), or stop (None); the file is created with
    the first machine."""
    global _record_path, _record_failed
    with _lock:
        if path == _record_path:
            return
        _record_path = path
        _record_failed = False
        _replace()
    if path is not None:
        track()


def set_ring(size: int) -> None:
    """Keep each machine's last `size` to `2 * size - 1` records in memory (0: none): the
    flight recorder. The process recorder is created (and attached to every machine) now."""
    global _ring
    size = max(0, int(size))
    with _lock:
        if size == _ring:
            return
        _ring = size
        rec = recorder()
        if rec is not None:
            rec.set_ring(size)
            if not size and not _holders and _record_path is None:
                _close()
            return
    track()
    if size:
        _ensure()


def ring() -> int:
    """The flight recorder's ring size (0: none)."""
    return _ring


def acquire() -> Recorder:
    """The process recorder for a live subscriber (created and attached to every machine if
    there was none); pair with `release()`."""
    global _holders
    track()
    with _lock:
        _holders += 1
        rec = _ensure()
    assert rec is not None
    return rec


def release() -> None:
    """A live subscriber is gone: with no file, ring or other subscriber left, the recorder is
    closed and every machine runs without a tracer again."""
    global _holders
    with _lock:
        _holders = max(0, _holders - 1)
        if not _holders and not _ring and _record_path is None:
            _close()


def on_new_recorder(fn: Callable[[Recorder], None]) -> None:
    """Call `fn` with every process recorder created from now on (and the current one)."""
    with _lock:
        if fn not in _on_new:
            _on_new.append(fn)
        rec = recorder()
    if rec is not None:
        fn(rec)


def _replace() -> None:
    """The file target changed: close the recorder; the next need creates a new one."""
    rec = _recorder
    if rec is not None and not rec.closed:
        _close()
        if _ring or _holders:
            _ensure()


def _close() -> None:
    global _recorder
    rec, _recorder = _recorder, None
    if rec is not None:
        rec.close()


def _after_fork() -> None:
    global _lock, _holders
    _lock = threading.RLock()
    _holders = 0  # the parent's subscribers


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork)

__all__ = ["acquire", "attach_all", "machines", "on_new_recorder", "recorder", "release",
           "ring", "set_record_path", "set_ring", "track", "untrack"]
