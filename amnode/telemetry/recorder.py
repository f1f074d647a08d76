"""The recorder: a per-machine tracer encoding records into a buffer, one thread writing it.

On the machine's thread the tracer turns each transition (queued mutation, schema change,
disposal) into one complete frame — `bytes`, built mostly by C code from cached parts, see
`capture.py` — and appends it to a `deque`. A daemon thread wakes every `flush_interval` seconds
(50 ms by default, so data reaches the file well within 100 ms), joins what is buffered into
blocks closed by check records (one CRC-32 per block, computed by zlib without the GIL) and
writes them with `os.write` (which releases the GIL too). `flush()` does the same synchronously,
`close()` (or leaving the `with` block, or interpreter exit) flushes and closes. Only `bytes`
are buffered: nothing the cyclic GC has to look at.

Why encode on the machine's thread: docs/recording-format.md ("Writer"). A child made by
`os.fork()` gets its own file (directory recordings) or stops recording (single-file recordings).

    with Recorder("rec/") as rec:
        rec.attach(machine)        # and every submachine created later with parent=machine
        ...

The same frames feed two more outputs, encoded once: a *flight recorder* (`ring=N`: each
tracer keeps its machine's last N to 2N-1 frames in memory, for a debugger that attaches later
and for dumps, see `flight.py`) and *live subscribers* (`subscribe()`: a debugger attached to
the process, see `endpoint.py` and `push.py`), which the writer thread hands each sealed batch
to; a subscriber that does not keep up loses transitions (counted), never the machine's time.
A recorder without a file (`path=None`) has only these two.
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
from collections.abc import Sequence
from itertools import repeat, starmap
from pathlib import Path
from types import TracebackType
from typing import Any

from amnode.machine import Failure, Machine, Mutation, Tracer, Transition, WrongThreadError
from amnode.machine.failure import MESSAGE_MAX, TRACEBACK_MAX, bounded

from .capture import (
    SchemaSnapshot,
    extra_steps,
    log_tuple,
    plan_and_steps,
    queued_frame,
    render_args,
    schema_snapshot,
    step_key,
    step_time,
)
from .errors import RecorderClosedError, RecordingFileError
from .format import (
    ARG_VALUE_MAX,
    DELTA_MIN_STATES,
    ERROR_ARG,
    FILE_SUFFIX,
    FLAG_ACCEPTED,
    FLAG_CHANGED,
    FLAG_ERROR,
    FLAG_FULL_CLOCK,
    FRAME_MARK,
    FULL_CLOCK_EVERY,
    LOG_LINES_MAX,
    STEPS_MAX,
    Kind,
    array_header,
    encode_segment_header,
)
from .subscription import Subscription
from .writer import TX_HEAD, MachineEncoder, RecordWriter, pack_header, packb, seal, tx_hint

_mono = time.monotonic_ns
_join = b"".join
_TX = int(Kind.TRANSITION)
#: header flags of a small-clock transition by `accepted + 2 * changed`
_FLAGS = (FLAG_FULL_CLOCK, FLAG_FULL_CLOCK | FLAG_ACCEPTED, FLAG_FULL_CLOCK | FLAG_CHANGED,
          FLAG_FULL_CLOCK | FLAG_CHANGED | FLAG_ACCEPTED)
#: each log line is at least 3 bytes: a smaller rest cannot exceed a log limit
_FAST_REST_MAX = 3 * LOG_LINES_MAX
#: frames joined into one os.write at most
_WRITE_CHUNK = 8192
#: a tracer's `_cap` after a fork: announce the machine in the child's new segment first
_REANNOUNCE = -1
_TX_KIND = int(Kind.TRANSITION)
_QUEUED_KIND = int(Kind.QUEUED)
#: rings of disposed machines kept for the flight recorder (the newest ones)
RETIRED_MAX = 32
#: the writer thread's period while live subscribers are attached (their latency)
LIVE_FLUSH_INTERVAL = 0.02

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


def failure_body(f: Failure) -> dict[str, Any]:
    """The `fail` element of a transition record (docs/recording-format.md §5.2), bounded."""
    body: dict[str, Any] = {"k": str(f.kind)}
    if f.handler:
        body["h"] = str(f.handler)[:ARG_VALUE_MAX]
    flags = (1 if f.final else 0) | (2 if f.is_async else 0)
    if flags:
        body["f"] = flags
    if f.error_type:
        body["et"] = str(f.error_type)[:ARG_VALUE_MAX]
    if f.message:
        body["em"] = str(f.message)[:MESSAGE_MAX]
    if f.traceback:
        body["tb"] = bounded(str(f.traceback), TRACEBACK_MAX)
    if f.seconds:
        body["s"] = float(f.seconds)
    if f.states:
        body["st"] = [str(s) for s in f.states]
    return body


class _MachineTracer(Tracer):
    """Bound to one machine; encodes its records into frames on the machine's thread.

    Every hook runs on the machine's thread (or, for `attach`, the thread that owns it), so the
    encoder state needs no lock; the shared buffer is a `deque`, whose `append` is atomic.
    """

    collect_steps = True
    collect_check_steps = True
    #: a transition's duration is measured from `Transition.start_ns`
    start_time = True

    def __init__(self, recorder: Recorder, machine: Machine) -> None:
        self.recorder = recorder
        self.machine = machine
        #: the machine's clock: one list for the machine's lifetime, changed in place
        self._ticks = machine._ticks
        self.seq = 0
        self.dropped = 0
        #: numbered by `start()`, once bound
        self.enc = MachineEncoder(0, full_every=recorder.full_every,
                                  delta_min_states=recorder.delta_min_states)
        self.snapshot: SchemaSnapshot = schema_snapshot(machine)
        self.log_prefix = f"[{machine.id[:5]}] " if getattr(machine, "log_id", True) else ""
        #: the snapshot of the last schema frame made
        self.written: SchemaSnapshot | None = None
        self._q = recorder._queue
        self._anchor = recorder._anchor
        self._cap = recorder.buffer_limit
        self._args_max = recorder.args_max_len
        self._all_queued = recorder.all_queued
        #: a mutation that runs at once is only visible as its transition (unless all_queued):
        #: the machine then skips the queue and `mutation_queued` for it
        self.queued_immediate = recorder.all_queued
        #: frames go to the recorder's buffer (a file or live subscribers read it)
        self._to_queue = recorder._outputs
        #: the last schema frame made (a live subscriber's stream starts with it)
        self.schema_frame = b""
        #: flight recorder: (schema frame, older generation, current generation) of frames;
        #: `_ring_cur` is the current generation (None: no ring), rotated at `_ring_n` frames
        self._ring_n = recorder.ring
        self._ring: tuple[bytes, list[bytes], list[bytes]] = (b"", [], [])
        self._ring_cur: list[bytes] | None = self._ring[2] if self._ring_n else None
        #: called on the machine's thread when a transition leaves an error state active
        self._on_error = recorder.on_error

    @property
    def tracer_id(self) -> str:
        return "amnode.telemetry"

    # ------------------------------------------------------------------ buffer

    def _room(self) -> bool:
        """Called when the buffer looks full: re-announce after a fork, else count a drop."""
        if self._cap == _REANNOUNCE:
            rec = self.recorder
            self._cap = rec.buffer_limit
            self._q = rec._queue
            self._anchor = rec._anchor
            self._announce(self.snapshot)
            if len(self._q) < self._cap:
                return True
        self.dropped += 1
        return False

    def _push(self, make: Any, *args: Any) -> None:
        """Emit `make(*args)` (a frame) unless the buffer is full; never raises."""
        if len(self._q) >= self._cap and not self._room():
            return
        try:
            self._emit(make(*args))
        except Exception as err:
            self._failed(err)

    def _failed(self, err: BaseException) -> None:
        rec = self.recorder
        rec.encode_errors += 1
        rec.last_error = err

    def start(self, mno: int) -> None:
        """Take machine number `mno` in the segment and write the first schema frame."""
        self.enc.mno = mno
        self._announce(self.snapshot)

    def _announce(self, snap: SchemaSnapshot) -> None:
        self.snapshot = snap
        self.written = snap
        try:
            frame = self.enc.schema_frame(
                snap.id, snap.parent, snap.tags, snap.names, snap.states, snap.groups,
                snap.groups_order, self._anchor + _mono(), self.log_prefix)
        except Exception as err:
            self._failed(err)
            return
        self.schema_frame = frame
        if self._ring_cur is not None:  # the ring starts again under the new schema
            self._ring = (frame, [], [])
            self._ring_cur = self._ring[2]
        if self._to_queue:
            self._q.append(frame)

    def _emit(self, frame: bytes) -> None:
        """Hand a frame to the recorder's buffer and the ring (rare kinds; transitions do
        this inline)."""
        if self._to_queue:
            self._q.append(frame)
        ring = self._ring_cur
        if ring is not None:
            ring.append(frame)
            if len(ring) >= self._ring_n:
                self._rotate()

    def _rotate(self) -> None:
        """Start a new ring generation (the oldest is dropped). Its first transition frame
        gets a full clock and `kb`, so a ring read from its start decodes (§6)."""
        cur: list[bytes] = []
        self._ring = (self._ring[0], self._ring[2], cur)
        self._ring_cur = cur
        self.enc.prev = None

    def _set_ring(self, size: int) -> None:
        """Start (or stop) keeping a ring; from any thread (see `Recorder.set_ring`)."""
        if size:
            self._ring_n = size
            self._ring = (self.schema_frame, [], [])
            self._ring_cur = self._ring[2]
            self.enc.prev = None
        else:
            self._ring_cur = None
            self._ring_n = 0
            self._ring = (b"", [], [])

    def history(self) -> list[bytes]:
        """This machine's schema frame and ring (oldest first): what a debugger attaching now
        is sent first. Safe from any thread (the lists are copied whole)."""
        schema, old, cur = self._ring
        if not schema:
            return [self.schema_frame] if self.schema_frame else []
        return [schema, *old[:], *cur[:]]

    # ------------------------------------------------------------------ hooks

    def transition_end(self, transition: Transition) -> None:
        # The hot path (see docs/recording-format.md, "Writer"): one frame per
        # transition, from parts cached per resolution and per handler, with as few Python
        # operations and calls as possible. Anything unusual takes `plan_and_steps`,
        # `enc.clock` or `enc.transition_frame`, which produce the same bytes.
        self.seq = seq = self.seq + 1
        q = self._q
        if len(q) >= self._cap and not self._room():
            return
        try:
            end = _mono()
            t = transition
            t0 = t.start_ns
            steps = t.steps
            enc = self.enc
            m = steps[0].memo if steps else None
            # the plan's steps (shared by every transition with this resolution) were encoded
            # before; the steps after them (handlers) are looked up by their fields
            if m.__class__ is tuple and m[0] is enc.index and (k := m[1]) <= (n := len(steps)) \
                    and (k == 1 or steps[k - 1] is m[2]):
                flags = m[5]
                times: Sequence[float] | None
                if n == k:
                    head = m[6]
                    times = None
                elif n == k + 1:
                    # one handler ran: its plan's call says which (other steps: their fields)
                    s = steps[k]
                    key = s.call
                    if key is None:
                        key = step_key(s)
                    head = m[7].get(key)
                    if head is None:
                        head = self._head(m, steps, key)
                    times = (s.duration,)
                elif n <= STEPS_MAX:
                    extra = steps[k:]
                    head = m[7].get(tuple(map(step_key, extra)))
                    if head is None:
                        head = self._head(m, steps)
                    times = list(map(step_time, extra))
                else:  # beyond the step limit: cut (plan_and_steps)
                    head, times, flags = plan_and_steps(enc, t.mutation, steps)
            else:
                head, times, flags = plan_and_steps(enc, t.mutation, steps)
            # the clock after: the machine's, while this is its running transition (what
            # `time_after` computes, without making it); a copy, as the next `prev`
            mach = self.machine
            before: Sequence[int] = t.time_before
            kb: Sequence[int] | None
            after: Sequence[int]
            if len(before) <= enc.delta_min_states:  # small clocks: always whole
                if mach._tx is t and not mach._disposing:
                    # error states active after it <=> in the machine's active set
                    after = self._ticks[:]
                    err = not enc.err_names.isdisjoint(mach._active_set)
                else:
                    after = t.time_after
                    err = any(after[i] & 1 for i in enc.err_idx)
                flags |= _FLAGS[t.accepted + 2 * (after != before)]
                kb = None if before == enc.prev else before
                enc.prev = after
                if err:
                    flags |= FLAG_ERROR
            else:
                flags, after, kb = enc.clock(
                    seq, flags | FLAG_ACCEPTED if t.accepted else flags, t.time_after, before)
            if t.__class__ is Transition:  # its ids are "%016x": the header holds them whole
                h = t.id_num
                tid = None
            else:
                h, tid = tx_hint(t.id)
            mut = t.mutation
            log = t.log_entries
            prelog = t.pre_log_entries
            args = mut.args
            src = mut.source
            # the machine's queue tick equals the mutation's, except for prepended ones (0);
            # log entries are packed as [level, text] by packb's `default`, in C
            mq = mut.queue_tick
            rest: tuple[Any, ...] = (
                    times, end - t0 if t0 else 0, None if mq else self.machine.queue_tick, mq,
                    t.queue_len, after, kb, log, prelog,
                    render_args(args, self._args_max) if args else None,
                    (src.mach_id, src.tx_id, int(src.mach_time)) if src is not None else None,
                    tid)
            fail = t.failure
            if fail is None and args and ERROR_ARG in args:  # an Exception names its failure
                fail = getattr(args[ERROR_ARG], "failure", None)
            if fail is not None:
                rest = (*rest, failure_body(fail))
            packed = packb(rest)
            if len(packed) > _FAST_REST_MAX:  # maybe many or long log lines: check the limits
                frame = enc.transition_frame(seq, self._anchor + end, flags, h, head, rest)
            else:
                frame = _join((pack_header(FRAME_MARK, _TX, flags, len(head) + len(packed),
                                           enc.mno, seq, self._anchor + end, h),
                               head, packed))
            if self._to_queue:
                q.append(frame)
            ring = self._ring_cur
            if ring is not None:
                ring.append(frame)
                if len(ring) >= self._ring_n:
                    self._rotate()
            if flags & FLAG_ERROR and self._on_error is not None:
                self._on_error(self, t)
        except Exception as err:  # a recording problem must never break the machine
            self._failed(err)

    def _head(self, m: tuple[Any, ...], steps: list[Any], key: Any = None) -> bytes:
        """The head (TX_HEAD, mutation part) of a memo hit whose later steps were not seen in
        this combination before: encode it and cache it in the memo under `key` (one later
        step: its plan call, else its `step_key`; several: the tuple of their step keys)."""
        enc = self.enc
        k = m[1]
        extra = steps[k:]
        head = _join((TX_HEAD, m[3], array_header(len(steps)), m[4], extra_steps(enc, extra)))
        if len(m[7]) < 64:
            m[7][tuple(map(step_key, extra)) if key is None else key] = head
        return head

    def mutation_queued(self, machine: Machine, mutation: Mutation) -> None:
        tx = machine.transition
        if tx is None and mutation.queue_len <= 1 and not self._all_queued:
            return  # no transition running: it runs right away, its transition record says all
        args = mutation.args
        self._push(queued_frame, self.enc, mutation, self._anchor + _mono(),
                   tx.id if tx is not None else "",
                   render_args(args, self._args_max) if args else None)

    def new_submachine(self, parent: Machine, machine: Machine) -> None:
        self.recorder.attach(machine)

    def schema_change(self, machine: Machine, old_schema: Any) -> None:
        self._changed(machine)

    def verify_states(self, machine: Machine) -> None:
        self._changed(machine)

    def _changed(self, machine: Machine) -> None:
        """set_schema, verify_states, set_groups, import_data: a schema frame if it differs."""
        if self._cap == 0:
            return
        try:
            snap = schema_snapshot(machine)
        except Exception as err:
            self._failed(err)
            return
        if snap == self.written:
            return
        self.snapshot = snap
        if len(self._q) >= self._cap and not self._room():
            return
        self._announce(snap)

    def machine_dispose(self, machine_id: str) -> None:
        # lines logged after the last transition (e.g. "[dispose] id")
        pending = self.machine.pending_log()
        self._push(self.enc.dispose_frame, self._anchor + _mono(),
                   list(map(log_tuple, pending)) if pending else None)
        if self._ring_cur is not None:  # its history outlives it for a while
            self.recorder._retire(self.enc.mno, self.history())


class Recorder:
    """Records machines to `path`: a directory (one new file per process) or a `.amrec` file;
    with `path=None` to memory only (a flight recorder ring and live subscribers).

    `attach(machine)` starts recording a machine and every submachine created later with it as
    `parent`. Records are encoded on the machine's thread and written by a background thread;
    `flush()` forces a write, `close()` (or leaving the `with` block, or interpreter exit)
    flushes and closes the file. `ring=N` keeps each machine's last N to 2N-1 records in
    memory (`history()`, `flight.dump`); `subscribe()` streams every record to a live
    subscriber, history first.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *,
                 args_max_len: int = ARG_VALUE_MAX, all_queued: bool = False,
                 buffer_limit: int = 1_000_000, flush_interval: float = 0.05,
                 full_every: int = FULL_CLOCK_EVERY, delta_min_states: int = DELTA_MIN_STATES,
                 ring: int = 0) -> None:
        self.path = Path(path) if path is not None else None
        #: True: `path` names a single file; False: a directory holding one file per process
        self.single_file = self.path is not None and self.path.suffix == FILE_SUFFIX and \
            not self.path.is_dir()
        self.args_max_len = args_max_len
        #: also record mutations that run right away (by default only deferred ones are)
        self.all_queued = all_queued
        #: records buffered at most; beyond it records are dropped (and counted), never blocking
        self.buffer_limit = buffer_limit
        self.flush_interval = min(flush_interval, 0.1)
        self._base_interval = self.flush_interval
        self.full_every = full_every
        self.delta_min_states = delta_min_states
        #: flight recorder: records kept in memory per machine (0: none); see `history()`
        self.ring = max(0, int(ring))
        #: called on a machine's thread with (tracer, transition) when a transition leaves an
        #: error state active (the flight recorder's dump trigger); must be cheap
        self.on_error: Any = None
        #: exceptions raised while encoding records (the record is skipped); the last one is kept
        self.encode_errors = 0
        self.last_error: BaseException | None = None
        #: complete frames (bytes) waiting for the writer thread
        self._queue: deque[bytes] = deque()
        self._tracers: weakref.WeakSet[_MachineTracer] = weakref.WeakSet()
        #: histories of disposed machines by machine number (the newest RETIRED_MAX)
        self._retired: dict[int, list[bytes]] = {}
        self._subs: list[Subscription] = []
        #: frames go to the buffer: there is a file or a subscriber to read them
        self._outputs = self.path is not None
        self._attach_lock = threading.Lock()
        self._next_mno = 1
        self._closed = False
        self.file: Path | None = None
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
        #: the segment header every output starts with (the file's, and each live stream's)
        self.header = encode_segment_header(dict(info))
        self._writer: RecordWriter | None = None
        if self.path is None:
            pass
        elif self.single_file:
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
                raise RecordingFileError(f"cannot create a recording file in {self.path}")
        #: the file this process writes (None without a path)
        self.file = Path(self._writer.path) if self._writer is not None else None
        self._thread = threading.Thread(target=self._run, name="amnode-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.flush_interval):
            try:
                self._drain()
            except Exception as err:  # never let the writer thread die silently
                self.last_error = err

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
        """Stop recording: detach from every machine, write what is buffered, close the file
        (live subscribers get what was buffered, then their end)."""
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
            if self._writer is not None:
                self._writer.close()
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.close("recorder closed")
        with _live_lock:
            _live.discard(self)

    def _after_fork_in_child(self) -> None:
        """Runs in a forked child: drop the parent's buffer and file, start this process's own
        (a recorder without a file, whose subscribers are the parent's, stops)."""
        self._queue.clear()  # the parent writes these
        self._lock = threading.Lock()  # the parent's writer thread may have held it
        self._attach_lock = threading.Lock()
        self._subs = []
        if self._writer is not None:
            self._writer.abandon()  # never flush: the pending bytes are the parent's
        if self.single_file or self._closed or self.path is None:
            self._closed = True
            for tracer in list(self._tracers):
                tracer._cap = 0
            return
        self._open_file()
        for tracer in list(self._tracers):
            if tracer._cap != 0:
                tracer._cap = _REANNOUNCE  # a schema frame in the new segment comes first

    # ------------------------------------------------------------------ machines

    def attach(self, machine: Machine) -> None:
        """Record `machine` (idempotent) and, later, every submachine created with it as parent.

        Like other machine methods, call it from the machine's thread (WrongThreadError else).
        """
        if self._closed:
            raise RecorderClosedError("recorder is closed")
        with self._attach_lock:
            for tracer in machine.tracers:
                if isinstance(tracer, _MachineTracer) and tracer.recorder is self:
                    return
            tracer = _MachineTracer(self, machine)
            # binding checks the thread: a refused attach writes nothing and uses no number
            machine.bind_tracer(tracer)
            self._tracers.add(tracer)
            tracer.start(self._next_mno)
            self._next_mno += 1

    def detach(self, machine: Machine) -> None:
        """Stop recording `machine` (its records so far stay)."""
        for tracer in machine.tracers:
            if isinstance(tracer, _MachineTracer) and tracer.recorder is self:
                tracer._cap = 0
                _detach(tracer)

    def is_attached(self, machine: Machine) -> bool:
        """True when this recorder records `machine`."""
        return any(isinstance(t, _MachineTracer) and t.recorder is self and t._cap != 0
                   for t in machine.tracers)

    @property
    def dropped(self) -> int:
        """Records dropped because the buffer was full (`buffer_limit`)."""
        return sum(t.dropped for t in list(self._tracers))

    # ------------------------------------------------------------------ flight recorder

    def set_ring(self, size: int) -> None:
        """Keep each machine's last `size` to `2 * size - 1` records (0: none) from now on.
        Any thread; a ring started on a running machine may begin with a record whose clock
        before is not known (it is, from the ring's first rotation on)."""
        self.ring = max(0, int(size))
        for tracer in list(self._tracers):
            tracer._set_ring(self.ring)

    def _retire(self, mno: int, frames: list[bytes]) -> None:
        """Keep a disposed machine's history (the newest RETIRED_MAX machines)."""
        retired = self._retired
        retired.pop(mno, None)
        retired[mno] = frames
        while len(retired) > RETIRED_MAX:
            retired.pop(next(iter(retired)))

    def history(self) -> list[bytes]:
        """Every machine's schema frame and ring (disposed machines' too, the newest
        RETIRED_MAX), oldest first per machine: a recording of the recent past once sealed
        behind `header` (see `flight.dump`). Safe from any thread."""
        retired = dict(self._retired)
        frames: list[bytes] = []
        for tracer in sorted(list(self._tracers), key=lambda t: t.enc.mno):
            if tracer.enc.mno not in retired and tracer._cap != 0:
                frames.extend(tracer.history())
        for past in retired.values():
            frames.extend(past)
        return frames

    # ------------------------------------------------------------------ live subscribers

    def subscribe(self, sub: Subscription, *, history: bool = True) -> None:
        """Stream every record to `sub` from now on, after this segment's header and every
        machine's schema and (with `history`) ring. Thread-safe; the records are handed over
        by the writer thread, which drops a batch's transitions for a subscriber that has no
        room (`Subscription.limit`) instead of waiting."""
        if self._closed:
            raise RecorderClosedError("recorder is closed")
        with self._lock, self._attach_lock:  # no machine is half attached meanwhile
            self._outputs = True
            for tracer in list(self._tracers):
                tracer._to_queue = True
            self._drain_locked()  # what was buffered before belongs to the older outputs
            frames = self.history() if history else \
                [t.schema_frame for t in sorted(list(self._tracers), key=lambda t: t.enc.mno)
                 if t.schema_frame and t._cap != 0]
            # frames buffered after that drain may be in the history too: skipped once
            sub.skip = {id(f) for f in frames}
            sub._skip_refs = frames
            sub.put(self.header + (seal(frames, time.time_ns()) if frames else b""),
                    force=True)
            self._subs.append(sub)
            self.flush_interval = min(self._base_interval, LIVE_FLUSH_INTERVAL)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop streaming to `sub` (what it holds stays there)."""
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            if not self._subs:
                self.flush_interval = self._base_interval
                if self._writer is None:
                    self._outputs = False
                    for tracer in list(self._tracers):
                        tracer._to_queue = False

    @property
    def subscribers(self) -> list[Subscription]:
        """The live subscribers (a copy)."""
        return list(self._subs)

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write everything buffered so far, on the calling thread."""
        self._drain()

    def _drain(self) -> int:
        """Seal and write every buffered frame; returns how many there were."""
        with self._lock:
            return self._drain_locked()

    def _drain_locked(self) -> int:
        w = self._writer
        subs = self._subs
        queue = self._queue
        popleft = queue.popleft
        total = n = len(queue)
        if w is not None and w.fd < 0:
            w = None
        while n:
            take = min(n, _WRITE_CHUNK)
            # popped and joined in C, one CRC-32 per block: no Python code per frame
            frames = list(starmap(popleft, repeat((), take)))
            n -= take
            if w is None and not subs:
                continue
            data = seal(frames, time.time_ns())
            if w is not None:
                w.append_sealed(data, take)
                try:
                    w.flush()
                except OSError as err:
                    self._stop_writing(w, err)
                    w = None
            for sub in list(subs):
                self._deliver(sub, frames, data)
        return total

    def _deliver(self, sub: Subscription, frames: list[bytes], data: bytes) -> None:
        """Give a sealed batch to one subscriber: whole when it has room, else without its
        transitions and queued mutations (counted as dropped; schemas and disposals always
        go, so what does arrive stays readable)."""
        if sub.closed:
            self._subs.remove(sub)
            return
        if sub.skip:
            skip = sub.skip
            sub.skip = None
            sub._skip_refs = None
            kept = [f for f in frames if id(f) not in skip]
            if len(kept) != len(frames):
                frames = kept
                data = seal(frames, time.time_ns()) if frames else b""
        if not data:
            return
        if sub.put(data):
            return
        kept = [f for f in frames if f[2] != _TX_KIND and f[2] != _QUEUED_KIND]
        sub.count_dropped(sum(1 for f in frames if f[2] == _TX_KIND))
        if kept and not sub.put(seal(kept, time.time_ns()), force=True):
            self._subs.remove(sub)  # stuck beyond twice its limit: cut it off

    def _stop_writing(self, w: RecordWriter, err: OSError) -> None:
        # disk full or similar: stop recording to the file rather than break the program
        self.last_error = err
        w.abandon()
        if not self._subs:
            for tracer in list(self._tracers):
                tracer._cap = 0
        self._queue.clear()
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

__all__ = ["LIVE_FLUSH_INTERVAL", "RETIRED_MAX", "Recorder", "process_info",
           "recording_file_name"]
