"""Record-level encoder: turns plain values into frames and appends them to a file.

`MachineEncoder` holds what one machine needs within one segment (its machine number, state
index, error states, the last written clock) and returns each record as one frame: the 32-byte
header and the body, as `bytes`. `seal()` groups frames into blocks, each closed by a check
record carrying the block's CRC-32 (one zlib call per block, which releases the GIL for large
buffers). The recorder keeps one encoder per recorded machine and calls it on the machine's own
thread (see `capture.py` for the fast path from live transitions); its writer thread seals and
writes what was buffered, so only whole blocks are ever handed to the kernel.

`RecordWriter` is the file side: a segment header plus frames, written with plain `os.write`.
Its record methods (`add_machine`, `transition`, `queued`, `dispose`) take plain values (state
indexes, step lists) and are what generators, tests and other tools use. Neither class is
thread-safe: one thread owns each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import attrgetter, ne
from typing import Any

import msgpack

from .format import (
    BLOCK_FRAMES,
    DELTA_MIN_STATES,
    FILE_SUFFIX,
    FLAG_CHANGED,
    FLAG_ERROR,
    FLAG_FULL_CLOCK,
    FRAME_HEADER,
    FULL_CLOCK_EVERY,
    LOG_LINE_MAX,
    LOG_LINES_MAX,
    MAX_BODY,
    OUT_FIELDS,
    Kind,
    array_header,
    encode_check,
    encode_frame,
    encode_segment_header,
    id_hash,
)

pack_header = FRAME_HEADER.pack
_join = b"".join
_MAX_BLOCK = 0xFFFFFFFF  # the check record's length field is a u32
_TX = int(Kind.TRANSITION)
_QUEUED = int(Kind.QUEUED)
_SCHEMA = int(Kind.SCHEMA)
_DISPOSE = int(Kind.DISPOSE)
#: the msgpack headers a transition body starts with: [mutation, outcome] and the mutation's
#: [type, called, steps]; a cached mutation part ("head") includes them
TX_HEAD = array_header(2) + array_header(3)
_TX_HEAD_TRUNCATED = array_header(3) + array_header(3)
EMPTY_ARRAY = array_header(0)
_TRUE = b"\xc3"
assert OUT_FIELDS == 13

#: msgpack packer shared by every encoder of the process. `Packer.pack` with autoreset keeps no
#: state between calls and runs entirely in C while holding the GIL, so threads can share it.
#: Log lines may be given as `(level, text)` pairs or as objects with `level` and `text`
#: attributes (the machine's LogEntry): those are converted by `default`, in C.
packb = msgpack.Packer(use_bin_type=True, autoreset=True,
                       default=attrgetter("level", "text")).pack


def seal(frames: list[bytes], wall_ns: int) -> bytes:
    """Frames grouped in blocks of at most BLOCK_FRAMES, each followed by its check record."""
    out: list[bytes] = []
    for i in range(0, len(frames), BLOCK_FRAMES):
        part = frames[i:i + BLOCK_FRAMES]
        block = _join(part)
        if len(block) > _MAX_BLOCK:  # only with huge frames: a block each
            out.extend(f + encode_check(f, 1, wall_ns) for f in part)
            continue
        out.append(block)
        out.append(encode_check(block, len(part), wall_ns))
    return _join(out)


def schema_body(machine_id: str, parent: str, tags: Sequence[str], names: Sequence[str],
                states: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[int]],
                groups_order: Sequence[str], log_prefix: str = "") -> dict[str, Any]:
    """The body of a schema record; falsy per-state fields are left out to keep it small."""
    out_states: dict[str, dict[str, Any]] = {}
    for name in names:
        state = states.get(name) or {}
        out_states[name] = {k: (list(v) if isinstance(v, (list, tuple)) else v)
                            for k, v in state.items() if v}
    body: dict[str, Any] = {"id": machine_id, "parent": parent or "", "tags": list(tags),
                            "names": list(names), "states": out_states}
    if groups:
        body["groups"] = {k: list(v) for k, v in groups.items()}
        body["go"] = list(groups_order)
    if log_prefix:
        body["lp"] = log_prefix
    return body


def _line(line: Any) -> tuple[int, str]:
    return (line[0], line[1]) if isinstance(line, (tuple, list)) else (line.level, line.text)


def bounded_lines(lines: Sequence[Any]) -> list[tuple[int, str]]:
    """Log lines within the limits: at most LOG_LINES_MAX (+ a note), each LOG_LINE_MAX chars.

    A line is a `(level, text)` pair or an object with `level` and `text` (a LogEntry)."""
    out = [(int(level), str(text)[:LOG_LINE_MAX])
           for level, text in map(_line, lines[:LOG_LINES_MAX])]
    if len(lines) > LOG_LINES_MAX:
        out.append((0, f"... {len(lines) - LOG_LINES_MAX} more lines not recorded"))
    return out


def tx_hint(tx_id: str) -> tuple[int, str | None]:
    """(header id hint, body id): amnode's 16-lowercase-hex ids live in the header alone
    (readers print the hint as `%016x`), any other id goes in the body too."""
    txh = id_hash(tx_id)
    return txh, None if "%016x" % txh == tx_id else tx_id


class MachineEncoder:
    """Encodes one machine's records within one segment; every method returns a frame.

    State references (called states, step states) are indexes into the state list of the last
    `schema_frame()`; `index` maps names to them (`""` -> -1). Caches keyed on `index` (the
    recorder's step memos, `steps`) are invalidated by the new dict a schema makes.
    """

    __slots__ = ("delta_min_states", "err_idx", "err_names", "full_every", "full_seq", "index",
                 "last_seq", "mno", "names", "prev", "steps")

    def __init__(self, mno: int, *, full_every: int = FULL_CLOCK_EVERY,
                 delta_min_states: int = DELTA_MIN_STATES) -> None:
        self.mno = mno
        #: machines with more states than this get delta clocks, full ones this often
        self.full_every = max(1, full_every)
        self.delta_min_states = delta_min_states
        self.names: list[str] = []
        self.index: dict[str, int] = {"": -1}
        #: clock indexes of the error states (Exception, Err*)
        self.err_idx: tuple[int, ...] = ()
        #: the error states' names (tested against a machine's active set)
        self.err_names: frozenset[str] = frozenset()
        #: the clock after the last transition frame; None starts a new full-clock chain
        self.prev: Sequence[int] | None = None
        self.full_seq = 0
        self.last_seq = 0
        #: encoded steps made anew in each transition (handlers, late cancels), by step key
        self.steps: dict[tuple[Any, ...], bytes] = {}

    # ------------------------------------------------------------------ records

    def schema_frame(self, machine_id: str, parent: str, tags: Sequence[str],
                     names: Sequence[str], states: Mapping[str, Mapping[str, Any]],
                     groups: Mapping[str, Sequence[int]], groups_order: Sequence[str],
                     wall_ns: int, log_prefix: str = "") -> bytes:
        """A schema record; the next transition frame starts a new clock chain (with `kb`)."""
        self.names = list(names)
        index = {n: i for i, n in enumerate(self.names)}
        index[""] = -1
        self.index = index
        self.err_idx = tuple(i for i, n in enumerate(self.names)
                             if n == "Exception" or n.startswith("Err"))
        self.err_names = frozenset(self.names[i] for i in self.err_idx)
        self.prev = None
        self.steps = {}
        body = packb(schema_body(machine_id, parent, tags, names, states, groups, groups_order,
                                 log_prefix))
        return encode_frame(_SCHEMA, 0, self.mno, 0, wall_ns, 0, body)

    def clock(self, seq: int, flags: int, after: Sequence[int], before: Sequence[int]
              ) -> tuple[int, Sequence[int], Sequence[int] | None]:
        """(flags, k, kb) of a transition: full or delta clock (docs/recording-format.md §6),
        CHANGED and ERROR flags.

        Advances the clock chain: call once per transition frame, in order.
        """
        n = len(after)
        prev = self.prev
        if n <= self.delta_min_states:
            # small clocks: writing them whole is cheaper than computing a delta
            flags |= FLAG_FULL_CLOCK
            k = after
            kb = None if before == prev else before
        elif (prev is None or seq != self.last_seq + 1 or n != len(prev)
                or seq - self.full_seq >= self.full_every):
            flags |= FLAG_FULL_CLOCK
            self.full_seq = seq
            k = after
            kb = before
        else:
            k = []
            for i in compress(range(n), map(ne, after, prev)):
                k.append(i)
                k.append(after[i])
            kb = None if before == prev else before
        if after != before:
            flags |= FLAG_CHANGED
        for i in self.err_idx:
            if i < n and after[i] & 1:
                flags |= FLAG_ERROR
                break
        self.prev = after
        self.last_seq = seq
        return flags, k, kb

    def transition_frame(self, seq: int, end_ns: int, flags: int, txh: int, head: bytes,
                         rest: tuple[Any, ...]) -> bytes:
        """A transition record from its parts: `head` is TX_HEAD followed by the encoded
        mutation type, called states and steps (see `plan_bytes`, `steps_bytes`); `rest` holds
        the OUT_* values. Applies the limits (long log lines, body size)."""
        step_times, dur, qt, mq, ql, k, kb, log, prelog, args, src, body_id, *fail = rest
        if (log and len(log) > LOG_LINES_MAX) or (prelog and len(prelog) > LOG_LINES_MAX) or \
                len(packed := packb(rest)) > LOG_LINE_MAX:
            log = bounded_lines(log) if log else log
            prelog = bounded_lines(prelog) if prelog else prelog
            packed = packb((step_times, dur, qt, mq, ql, k, kb, log, prelog, args, src,
                            body_id, *fail))
        body = head + packed
        if len(body) > MAX_BODY:
            # only huge step lists or logs get here; keep the record, drop the bulk
            packed = packb((None, dur, qt, mq, ql, k, kb, None, None, args, src, body_id,
                            *fail))
            body = _join((_TX_HEAD_TRUNCATED, _plan_part(head), EMPTY_ARRAY, packed, _TRUE))
        return encode_frame(_TX, flags, self.mno, seq, end_ns, txh, body)

    def queued_frame(self, wall_ns: int, flags: int, mtype: int, called: Sequence[Any],
                     queue_tick: int, queue_tick_now: int, queue_len: int, tx_id: str,
                     args: Mapping[str, str] | None, source: Sequence[Any] | None) -> bytes:
        """A queued-mutation record (`queue_tick` = the tick it will run at, 0 = next)."""
        body: dict[str, Any] = {"mt": mtype, "c": called, "qt": queue_tick,
                                "qn": queue_tick_now, "ql": queue_len}
        if tx_id:
            body["tx"] = tx_id
        if args:
            body["a"] = args
        if source:
            body["src"] = source
        return encode_frame(_QUEUED, flags, self.mno, 0, wall_ns, 0, packb(body))

    def dispose_frame(self, wall_ns: int, log: Sequence[Sequence[Any]] | None = None) -> bytes:
        """A dispose record, with the log lines produced after the last transition."""
        body: dict[str, Any] = {"l": bounded_lines(log)} if log else {}
        return encode_frame(_DISPOSE, 0, self.mno, 0, wall_ns, 0, packb(body))

    # ------------------------------------------------------------------ parts

    @staticmethod
    def plan_bytes(mtype: int, called: Sequence[int | str]) -> bytes:
        """Mutation elements 0 and 1: mutation type and called state references."""
        return packb((mtype, called))[1:]

    @staticmethod
    def steps_bytes(steps: Sequence[Sequence[Any]] | None
                    ) -> tuple[bytes, list[float] | None]:
        """Mutation element 2 (steps) and outcome element 0 (step times) from step lists,
        where handler steps may carry their duration in ns as a 7th element: `[type, from, to,
        relation(, flags, name(, ns))]`."""
        if not steps:
            return EMPTY_ARRAY, None
        first = next((i for i, s in enumerate(steps) if len(s) > 6), -1)
        if first < 0:
            return packb(steps), None
        times = [s[6] / 1e9 if len(s) > 6 else 0.0 for s in steps[first:]]
        return packb([s[:6] for s in steps]), times


def _plan_part(head: bytes) -> bytes:
    """The encoded mutation type and called states in `head` (see `transition_frame`)."""
    start = len(TX_HEAD)
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(head) + 1)
    unpacker.feed(head[start:])
    unpacker.skip()
    unpacker.skip()
    return head[start:start + unpacker.tell()]


class RecordWriter:
    """Appends one segment (header + frames) to a file descriptor; see docs/recording-format.md.

    Frames are built in memory and written by `flush()` with plain `os.write` calls (no hidden
    userspace buffer, so nothing is written twice after a fork).
    """

    def __init__(self, fd: int, process: Mapping[str, Any], *,
                 full_every: int = FULL_CLOCK_EVERY,
                 delta_min_states: int = DELTA_MIN_STATES, path: str = "") -> None:
        self.fd = fd
        self.path = path
        #: machines with more states than this get delta clocks, full ones this often
        self.full_every = max(1, full_every)
        self.delta_min_states = delta_min_states
        self.bytes_written = 0
        self.frames_written = 0
        self._out = bytearray(encode_segment_header(dict(process)))
        self._frames: list[bytes] = []
        self._frame_bytes = 0
        self._encoders: dict[int, MachineEncoder] = {}
        self._next_mno = 1
        self.flush()

    @classmethod
    def create(cls, path: str | os.PathLike[str], process: Mapping[str, Any], *,
               exclusive: bool = False, full_every: int = FULL_CLOCK_EVERY,
               delta_min_states: int = DELTA_MIN_STATES) -> RecordWriter:
        """Open `path` for appending (a new segment is added to an existing file)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        if exclusive:
            flags |= os.O_EXCL
        fd = os.open(path, flags, 0o644)
        return cls(fd, process, full_every=full_every, delta_min_states=delta_min_states,
                   path=os.fspath(path))

    # ------------------------------------------------------------------ records

    def encoder(self, mno: int | None = None) -> MachineEncoder:
        """The encoder of machine `mno`, or a new machine's (numbered in this segment)."""
        if mno is not None:
            return self._encoders[mno]
        mno = self._next_mno
        self._next_mno += 1
        enc = self._encoders[mno] = MachineEncoder(mno, full_every=self.full_every,
                                                   delta_min_states=self.delta_min_states)
        return enc

    def add_machine(self, machine_id: str, parent: str, tags: Sequence[str], names: Sequence[str],
                    states: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[int]],
                    groups_order: Sequence[str], wall_ns: int, log_prefix: str = "") -> int:
        """Announce a machine (schema record); returns its machine number in this segment."""
        enc = self.encoder()
        self.append(enc.schema_frame(machine_id, parent, tags, names, states, groups,
                                     groups_order, wall_ns, log_prefix))
        return enc.mno

    def schema(self, mno: int, machine_id: str, parent: str, tags: Sequence[str],
               names: Sequence[str], states: Mapping[str, Mapping[str, Any]],
               groups: Mapping[str, Sequence[int]], groups_order: Sequence[str],
               wall_ns: int, log_prefix: str = "") -> None:
        """(Re)write a machine's schema; the next transition of it carries a full clock."""
        self.append(self._encoders[mno].schema_frame(machine_id, parent, tags, names, states,
                                                     groups, groups_order, wall_ns, log_prefix))

    def index(self, mno: int) -> dict[str, int]:
        """State name -> clock index for a machine ("" maps to -1, meaning "no state")."""
        return self._encoders[mno].index

    def transition(self, mno: int, seq: int, start_ns: int, end_ns: int, tx_id: str, flags: int,
                   mtype: int, called: list[int], queue_tick: int, mut_queue_tick: int,
                   queue_len: int, after: Sequence[int], before: Sequence[int],
                   steps: list[list[Any]] | None, log: list[list[Any]] | None,
                   prelog: list[list[Any]] | None, args: dict[str, str] | None,
                   source: list[Any] | None) -> None:
        """Write a transition record; `called` and step states are indexes (see `index()`).

        `flags` carries ACCEPTED / AUTO / CHECK / HEALTH (the clock and error flags are
        computed); handler steps are `[2, from, to, relation, flags, name, duration_ns]`.
        """
        enc = self._encoders[mno]
        flags, k, kb = enc.clock(seq, flags, after, before)
        txh, body_id = tx_hint(tx_id)
        steps_b, times = enc.steps_bytes(steps)
        self.append(enc.transition_frame(
            seq, end_ns, flags, txh, TX_HEAD + enc.plan_bytes(mtype, called) + steps_b,
            (times, end_ns - start_ns, queue_tick, mut_queue_tick, queue_len, k, kb, log or None,
             prelog or None, args or None, source or None, body_id)))

    def queued(self, mno: int, wall_ns: int, flags: int, mtype: int, called: list[int],
               queue_tick: int, queue_tick_now: int, queue_len: int, tx_id: str,
               args: dict[str, str] | None, source: list[Any] | None) -> None:
        """Write a queued-mutation record (`queue_tick` = the tick it will run at, 0 = next)."""
        self.append(self._encoders[mno].queued_frame(wall_ns, flags, mtype, called, queue_tick,
                                                     queue_tick_now, queue_len, tx_id, args,
                                                     source))

    def dispose(self, mno: int, wall_ns: int, log: list[list[Any]] | None = None) -> None:
        """Write a dispose record, with the log lines produced after the last transition."""
        self.append(self._encoders[mno].dispose_frame(wall_ns, log))

    def append(self, frame: bytes) -> None:
        """Queue one frame (from a `MachineEncoder`) for the next `flush()`."""
        self._frames.append(frame)
        self._frame_bytes += len(frame)

    def append_sealed(self, data: bytes, frames: int) -> None:
        """Queue bytes holding whole blocks of `frames` frames (see `seal()`)."""
        self._seal()
        self._out += data
        self.frames_written += frames

    def _seal(self) -> None:
        frames = self._frames
        if frames:
            self._out += seal(frames, time.time_ns())
            self.frames_written += len(frames)
            self._frames = []
            self._frame_bytes = 0

    # ------------------------------------------------------------------ output

    @property
    def pending(self) -> int:
        """Bytes encoded but not yet written."""
        return len(self._out) + self._frame_bytes

    def flush(self) -> None:
        """Write everything encoded so far (whole blocks only) to the file descriptor."""
        self._seal()
        out = self._out
        if not out:
            return
        view = memoryview(out)
        done = 0
        try:
            while done < len(out):
                done += os.write(self.fd, view[done:])
        finally:
            view.release()
            del out[:done]
            self.bytes_written += done

    def close(self) -> None:
        """Flush and close the file descriptor."""
        try:
            self.flush()
        finally:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def abandon(self) -> None:
        """Close the file descriptor without writing what is pending, which is dropped: after
        a write error, or in a forked child (whose pending bytes are the parent's to write)."""
        # a new buffer rather than clear(): a failed write may still hold a view of the old one
        self._out = bytearray()
        self._frames = []
        self._frame_bytes = 0
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


__all__ = ["EMPTY_ARRAY", "FILE_SUFFIX", "TX_HEAD", "MachineEncoder", "RecordWriter",
           "bounded_lines", "pack_header", "packb", "schema_body", "seal", "tx_hint"]
