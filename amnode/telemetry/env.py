"""`AMNODE_RECORD=<dir>`: record every machine of this process (and of child processes).

`install()` registers a `MACHINE_INIT_HOOKS` hook; the process-wide `Recorder` is created on the
first machine, so processes that never make a machine leave no file behind. Child processes
inherit the variable and write their own file into the same directory.
"""

from __future__ import annotations

import os
import sys
import threading

from amnode.machine import MACHINE_INIT_HOOKS, Machine

from .recorder import Recorder

ENV_VAR = "AMNODE_RECORD"

_lock = threading.Lock()
_path: str | None = None
_recorder: Recorder | None = None
_failed = False


def install(path: str | os.PathLike[str] | None = None) -> bool:
    """Record every machine created from now on into the directory `path` (default: the
    `AMNODE_RECORD` variable). Idempotent; returns False when there is nothing to record to."""
    global _path, _failed
    target = os.fspath(path) if path is not None else os.environ.get(ENV_VAR, "")
    if not target:
        return False
    with _lock:
        if _path != target and _recorder is not None:
            _close_locked()
        _path = target
        _failed = False
        if _hook not in MACHINE_INIT_HOOKS:
            MACHINE_INIT_HOOKS.append(_hook)
    return True


def uninstall() -> None:
    """Stop recording new machines and close the process-wide recorder (flushing it)."""
    global _path
    with _lock:
        if _hook in MACHINE_INIT_HOOKS:
            MACHINE_INIT_HOOKS.remove(_hook)
        _close_locked()
        _path = None


def process_recorder() -> Recorder | None:
    """The process-wide recorder (created on first use), or None when not installed.

    Once closed (at interpreter exit) it is not recreated: machines made during shutdown are
    not recorded rather than starting a new file.
    """
    global _recorder, _failed
    rec = _recorder
    if rec is not None:
        return None if rec.closed else rec
    with _lock:
        if _path is None or _failed:
            return None
        if _recorder is None:
            try:
                _recorder = Recorder(_path)
            except OSError as err:
                _failed = True
                print(f"amnode.telemetry: cannot record to {_path}: {err}", file=sys.stderr)
                return None
        return None if _recorder.closed else _recorder


def _close_locked() -> None:
    global _recorder
    if _recorder is not None:
        _recorder.close()
        _recorder = None


def _hook(machine: Machine) -> None:
    rec = process_recorder()
    if rec is None:
        return
    try:
        rec.attach(machine)
    except RuntimeError:
        pass  # closed concurrently (interpreter exit)


__all__ = ["ENV_VAR", "install", "process_recorder", "uninstall"]
