"""The recorder: a per-machine tracer feeding a buffer, and one background thread writing it.

On the machine's thread the tracer only appends small tuples to a `deque` (plus rendering args
when a mutation has any); a daemon thread wakes every `flush_interval` seconds (50 ms by
default, so data reaches the file well within 100 ms), encodes everything buffered with a
`RecordWriter` and writes it with `os.write`. `flush()` does the same synchronously, `close()`
(or leaving the `with` block, or interpreter exit) flushes and closes.

One thread serves every machine of the recorder, with or without a running asyncio loop; the
reasons are in docs/recording-format.md ("Writer"). A child made by `os.fork()` gets its own
file (directory recordings) or stops recording (single-file recordings).

    with Recorder("rec/") as rec:
        rec.attach(machine)        # and every submachine created later with parent=machine
        ...
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from amnode.machine import Machine, Mutation, Tracer, Transition, WrongThreadError

from .capture import (
    ITEM_DISPOSE,
    ITEM_QUEUED,
    ITEM_SCHEMA,
    ITEM_TX,
    SchemaSnapshot,
    log_lines,
    render_args,
    schema_snapshot,
    write_queued,
    write_transition,
)
from .format import ARG_VALUE_MAX, FILE_SUFFIX, FULL_CLOCK_EVERY
from .writer import RecordWriter

_mono = time.monotonic_ns
_FLUSH_CHUNK = 1 << 20
_BUSY_ITEMS = 64
_BUSY_WAIT = 0.002

#: recorders that are open, closed at interpreter exit and re-targeted in forked children
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()
_live_lock = threading.Lock()


def _amnode_version() -> str:
    mod = sys.modules.get("amnode")
    return str(getattr(mod, "__version__", "")) if mod is not None else ""


def process_info(start_ns: int) -> dict[str, Any]:
    """The segment-header fields describing this process."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "argv0": sys.argv[0] if sys.argv else "", "start_ns": start_ns,
            "amnode": _amnode_version(), "python": sys.version.split()[0],
            "clock": "monotonic+anchor", "full_every": FULL_CLOCK_EVERY}


def recording_file_name(start_ns: int, attempt: int = 0) -> str:
    """`HOST-PID-YYYYmmddTHHMMSS_micros[-N].amrec` (UTC), unique per process and start time."""
    host = "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname()) or "host"
    secs, ns = divmod(start_ns, 1_000_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs)) + f"_{ns // 1000:06d}"
    suffix = f"-{attempt}" if attempt else ""
    return f"{host}-{os.getpid()}-{stamp}{suffix}{FILE_SUFFIX}"


class _MachineTracer(Tracer):
    """Bound to one machine; appends tuples to the recorder's buffer and nothing else."""

    collect_steps = True
    collect_check_steps = True

    def __init__(self, recorder: Recorder, machine: Machine) -> None:
        self.recorder = recorder
        self.machine = machine
        self.seq = 0
        self.t0 = 0
        self.dropped = 0
        self.snapshot: SchemaSnapshot = schema_snapshot(machine)
        self.log_prefix = f"[{machine.id[:5]}] " if getattr(machine, "log_id", True) else ""
        #: writer side: segment generation and machine number this machine was announced with
        self.gen = -1
        self.mno = 0
        self.written: SchemaSnapshot | None = None
        self._q = recorder._queue
        self._cap = recorder.buffer_limit
        self._args_max = recorder.args_max_len
        self._all_queued = recorder.all_queued

    @property
    def tracer_id(self) -> str:
        return "amnode.telemetry"

    def _push(self, item: tuple[Any, ...]) -> None:
        if len(self._q) < self._cap:
            self._q.append(item)
        else:
            self.dropped += 1

    def transition_init(self, transition: Transition) -> None:
        self.t0 = _mono()

    def transition_end(self, transition: Transition) -> None:
        self.seq = seq = self.seq + 1
        q = self._q
        if len(q) < self._cap:
            t = transition
            mut = t.mutation
            args = mut.args
            # only what the record needs: the transition itself (and most of what it
            # references) can be freed right away, which keeps the GC's work small
            q.append((ITEM_TX, self, seq, self.t0, _mono(), self.machine.queue_tick,
                      render_args(args, self._args_max) if args else None, t.id,
                      t.accepted, mut.type, mut.called, mut.is_auto, mut.is_check, mut.source,
                      mut.queue_tick, t.queue_len, t.time_after, t.time_before, t.steps,
                      t.log_entries, t.pre_log_entries))
        else:
            self.dropped += 1

    def mutation_queued(self, machine: Machine, mutation: Mutation) -> None:
        tx = machine.transition
        if tx is None and mutation.queue_len <= 1 and not self._all_queued:
            return  # it runs right away; its transition record says everything
        args = mutation.args
        self._push((ITEM_QUEUED, self, mutation, _mono(), tx.id if tx is not None else "",
                    render_args(args, self._args_max) if args else None))

    def new_submachine(self, parent: Machine, machine: Machine) -> None:
        self.recorder.attach(machine)

    def schema_change(self, machine: Machine, old_schema: Any) -> None:
        self._announce(machine)

    def verify_states(self, machine: Machine) -> None:
        self._announce(machine)

    def _announce(self, machine: Machine) -> None:
        self.snapshot = snap = schema_snapshot(machine)
        self._push((ITEM_SCHEMA, self, snap, _mono()))

    def machine_dispose(self, machine_id: str) -> None:
        # lines logged after the last transition (e.g. "[dispose] id") sit in the machine's
        # buffer; Machine has no public accessor for it yet, so read it defensively
        pending = list(getattr(self.machine, "_log_buffer", ()) or ())
        self._push((ITEM_DISPOSE, self, _mono(), pending))


class Recorder:
    """Records machines to `path`: a directory (one new file per process) or a `.amrec` file.

    `attach(machine)` starts recording a machine and every submachine created later with it as
    `parent`. Writing happens on a background thread; `flush()` forces it, `close()` (or leaving
    the `with` block, or interpreter exit) flushes and closes the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, args_max_len: int = ARG_VALUE_MAX,
                 all_queued: bool = False, buffer_limit: int = 1_000_000,
                 flush_interval: float = 0.05, full_every: int = FULL_CLOCK_EVERY) -> None:
        self.path = Path(path)
        #: True: `path` names a single file; False: a directory holding one file per process
        self.single_file = self.path.suffix == FILE_SUFFIX and not self.path.is_dir()
        self.args_max_len = args_max_len
        #: also record mutations that run right away (by default only deferred ones are)
        self.all_queued = all_queued
        #: items buffered at most; beyond it records are dropped (and counted), never blocking
        self.buffer_limit = buffer_limit
        self.flush_interval = min(flush_interval, 0.1)
        self.full_every = full_every
        #: exceptions raised while encoding items (the item is skipped); the last one is kept
        self.encode_errors = 0
        self.last_error: BaseException | None = None
        self._queue: deque[tuple[Any, ...]] = deque()
        self._tracers: weakref.WeakSet[_MachineTracer] = weakref.WeakSet()
        self._attach_lock = threading.Lock()
        self._closed = False
        self._gen = 0
        self._open_file()
        with _live_lock:
            _live.add(self)

    # ------------------------------------------------------------------ lifecycle

    def _open_file(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        start_ns = time.time_ns()
        self._anchor = start_ns - _mono()
        info = process_info(start_ns)
        if self.single_file:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = RecordWriter.create(self.path, info, full_every=self.full_every)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            for attempt in range(100):
                target = self.path / recording_file_name(start_ns, attempt)
                try:
                    self._writer = RecordWriter.create(target, info, exclusive=True,
                                                       full_every=self.full_every)
                    break
                except FileExistsError:
                    continue
            else:
                raise FileExistsError(f"cannot create a recording file in {self.path}")
        #: the file this process writes
        self.file = Path(self._writer.path)
        self._thread = threading.Thread(target=self._run, name="amnode-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # while machines are busy keep draining (the GIL still interleaves us with them):
        # buffered transitions then die young, which keeps the cyclic GC cheap for the program
        stop = self._stop
        wait = self.flush_interval
        while not stop.wait(wait):
            try:
                n = self._drain()
                while n >= _BUSY_ITEMS and not stop.is_set():
                    n = self._drain()
            except Exception as err:  # never let the writer thread die silently
                self.last_error = err
                n = 0
            wait = _BUSY_WAIT if n else self.flush_interval

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return self._closed

    def close(self) -> None:
        """Stop recording: detach from every machine, write what is buffered, close the file."""
        if self._closed:
            return
        self._closed = True
        for tracer in list(self._tracers):
            tracer._cap = 0  # inert at once, from any thread
            _detach(tracer)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._drain()
        with self._lock:
            self._writer.close()
        with _live_lock:
            _live.discard(self)

    def _after_fork_in_child(self) -> None:
        """Runs in a forked child: drop the parent's buffer and file, start this process's own."""
        self._queue.clear()
        self._lock = threading.Lock()  # the parent's writer thread may have held it
        try:
            os.close(self._writer.fd)  # never flush: the pending bytes are the parent's
        except OSError:
            pass
        self._writer.fd = -1
        self._gen += 1
        if self.single_file or self._closed:
            self._closed = True
            for tracer in list(self._tracers):
                tracer._cap = 0
            return
        self._open_file()

    # ------------------------------------------------------------------ machines

    def attach(self, machine: Machine) -> None:
        """Record `machine` (idempotent) and, later, every submachine created with it as parent.

        Like other machine methods, call it from the machine's thread (WrongThreadError else).
        """
        if self._closed:
            raise RuntimeError("recorder is closed")
        with self._attach_lock:
            for tracer in machine.tracers:
                if isinstance(tracer, _MachineTracer) and tracer.recorder is self:
                    return
            tracer = _MachineTracer(self, machine)
            tracer._push((ITEM_SCHEMA, tracer, tracer.snapshot, _mono()))
            self._tracers.add(tracer)
            machine.bind_tracer(tracer)

    def detach(self, machine: Machine) -> None:
        """Stop recording `machine` (its records so far stay)."""
        for tracer in machine.tracers:
            if isinstance(tracer, _MachineTracer) and tracer.recorder is self:
                tracer._cap = 0
                _detach(tracer)

    @property
    def dropped(self) -> int:
        """Records dropped because the buffer was full (`buffer_limit`)."""
        return sum(t.dropped for t in list(self._tracers))

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Encode and write everything buffered so far, on the calling thread."""
        self._drain()

    def _drain(self) -> int:
        """Encode and write every buffered item; returns how many there were."""
        with self._lock:
            w = self._writer
            if w.fd < 0:
                return 0
            q = self._queue
            gen = self._gen
            anchor = self._anchor
            touched: dict[int, _MachineTracer] = {}
            count = len(q)
            for _ in range(count):
                item = q.popleft()
                tracer: _MachineTracer = item[1]
                try:
                    kind = item[0]
                    if kind == ITEM_SCHEMA:
                        if tracer.gen != gen or item[2] != tracer.written:
                            self._announce(w, tracer, item[2], anchor + item[3])
                        continue
                    if tracer.gen != gen:  # first schema dropped, or a forked child
                        self._announce(w, tracer, tracer.snapshot, anchor + _mono())
                    if kind == ITEM_TX:
                        touched[id(tracer)] = tracer
                        write_transition(w, tracer.mno, item, anchor, tracer.log_prefix)
                    elif kind == ITEM_QUEUED:
                        write_queued(w, tracer.mno, item, anchor)
                    else:
                        w.dispose(tracer.mno, anchor + item[2],
                                  log_lines(item[3], tracer.log_prefix) if item[3] else None)
                except Exception as err:
                    self.encode_errors += 1
                    self.last_error = err
                    continue
                if w.pending >= _FLUSH_CHUNK:
                    self._write(w)
            for tracer in touched.values():
                self._check_unhooked_changes(w, tracer, anchor)
            self._write(w)
            return count

    def _announce(self, w: RecordWriter, tracer: _MachineTracer, snap: SchemaSnapshot,
                  wall_ns: int) -> None:
        args = (snap.id, snap.parent, snap.tags, snap.names, snap.states, snap.groups,
                snap.groups_order, wall_ns)
        if tracer.gen != self._gen:
            tracer.mno = w.add_machine(*args)
            tracer.gen = self._gen
        else:
            w.schema(tracer.mno, *args)
        tracer.written = snap

    def _check_unhooked_changes(self, w: RecordWriter, tracer: _MachineTracer,
                                anchor: int) -> None:
        """`set_groups` and `import_data` have no tracer hook: compare after each batch."""
        m = tracer.machine
        written = tracer.written
        if written is None:
            return
        try:
            groups, order = m.groups()
            names = m.state_names
        except Exception:
            return
        if groups != written.groups or tuple(order) != written.groups_order or \
                tuple(names) != written.names:
            snap = schema_snapshot(m)
            tracer.snapshot = snap
            self._announce(w, tracer, snap, anchor + _mono())

    def _write(self, w: RecordWriter) -> None:
        try:
            w.flush()
        except OSError as err:
            # disk full or similar: stop recording rather than break the program
            self.last_error = err
            for tracer in list(self._tracers):
                tracer._cap = 0
            self._queue.clear()
            try:
                os.close(w.fd)
            except OSError:
                pass
            w.fd = -1
            print(f"amnode.telemetry: recording to {self.file} stopped: {err}", file=sys.stderr)


def _detach(tracer: _MachineTracer) -> None:
    """Unbind an (already inert) tracer: now on the owner thread, else via the owner's loop.

    With neither possible the inert tracer stays bound: it records nothing, but the machine
    keeps collecting steps until it is disposed.
    """
    m = tracer.machine

    def run() -> None:
        with contextlib.suppress(KeyError):
            m.detach_tracer(tracer)

    try:
        run()
    except WrongThreadError:
        with contextlib.suppress(Exception):
            m.threadsafe.eval(run, "amnode.telemetry.detach")


def _close_all() -> None:
    with _live_lock:
        recorders = list(_live)
    for rec in recorders:
        try:
            rec.close()
        except Exception as err:  # exit must go on
            print(f"amnode.telemetry: closing {rec.path} failed: {err}", file=sys.stderr)


def _after_fork() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    for rec in list(_live):
        rec._after_fork_in_child()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork)

__all__ = ["Recorder", "process_info", "recording_file_name"]
