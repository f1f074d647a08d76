"""Record-level encoder: turns plain values into frames of one segment and appends them to a file.

`RecordWriter` knows nothing about live machines (see `capture.py` for that); it numbers machines
within its segment, stores clocks (whole for small machines, else as deltas with periodic full
clocks), computes the flags the index needs, and writes whole frames only, so a crash can tear
at most the last one. It is not thread-safe: one thread (the recorder's writer, or a generator
script) owns it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from .format import (
    CRC,
    DELTA_MIN_STATES,
    FILE_SUFFIX,
    FLAG_CHANGED,
    FLAG_ERROR,
    FLAG_FULL_CLOCK,
    FRAME_HEADER,
    FRAME_MARK,
    FULL_CLOCK_EVERY,
    MAX_BODY,
    Kind,
    encode_segment_header,
    id_hash,
)

_pack_header = FRAME_HEADER.pack
_pack_crc = CRC.pack
_crc32 = zlib.crc32
_TX = int(Kind.TRANSITION)
_QUEUED = int(Kind.QUEUED)


class _Slot:
    """Per-machine state of one segment: state order, error states and the last written clock."""

    __slots__ = ("err_idx", "full_seq", "index", "last_seq", "names", "prev")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.index[""] = -1
        self.err_idx = tuple(i for i, n in enumerate(self.names)
                             if n == "Exception" or n.startswith("Err"))
        self.prev: Sequence[int] | None = None
        self.full_seq = 0
        self.last_seq = 0


def schema_body(machine_id: str, parent: str, tags: Sequence[str], names: Sequence[str],
                states: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[int]],
                groups_order: Sequence[str]) -> dict[str, Any]:
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
    return body


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
        self._slots: dict[int, _Slot] = {}
        self._next_mno = 1
        self._packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
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

    def add_machine(self, machine_id: str, parent: str, tags: Sequence[str], names: Sequence[str],
                    states: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[int]],
                    groups_order: Sequence[str], wall_ns: int) -> int:
        """Announce a machine (schema record); returns its machine number in this segment."""
        mno = self._next_mno
        self._next_mno += 1
        self.schema(mno, machine_id, parent, tags, names, states, groups, groups_order, wall_ns)
        return mno

    def schema(self, mno: int, machine_id: str, parent: str, tags: Sequence[str],
               names: Sequence[str], states: Mapping[str, Mapping[str, Any]],
               groups: Mapping[str, Sequence[int]], groups_order: Sequence[str],
               wall_ns: int) -> None:
        """(Re)write a machine's schema; the next transition of it carries a full clock."""
        old = self._slots.get(mno)
        slot = _Slot(names)
        if old is not None:
            slot.last_seq = old.last_seq
        self._slots[mno] = slot
        body = self._packb(schema_body(machine_id, parent, tags, names, states, groups,
                                       groups_order))
        self._frame(int(Kind.SCHEMA), 0, mno, 0, wall_ns, 0, body)

    def index(self, mno: int) -> dict[str, int]:
        """State name -> clock index for a machine ("" maps to -1, meaning "no state")."""
        return self._slots[mno].index

    def transition(self, mno: int, seq: int, start_ns: int, end_ns: int, tx_id: str, flags: int,
                   mtype: int, called: list[int], queue_tick: int, mut_queue_tick: int,
                   queue_len: int, after: Sequence[int], before: Sequence[int],
                   steps: list[list[Any]] | None, log: list[list[Any]] | None,
                   prelog: list[list[Any]] | None, args: dict[str, str] | None,
                   source: list[Any] | None) -> None:
        """Write a transition record; `called` and step states are indexes (see `index()`)."""
        slot = self._slots[mno]
        prev = slot.prev
        body: dict[str, Any] = {"id": tx_id, "s": start_ns, "mt": mtype, "c": called,
                                "qt": queue_tick, "mq": mut_queue_tick, "ql": queue_len}
        n = len(after)
        if n <= self.delta_min_states:
            # small clocks: writing them whole is cheaper than computing a delta
            flags |= FLAG_FULL_CLOCK
            body["k"] = after
            if prev is None or before != prev:
                body["kb"] = before
        elif (prev is None or seq != slot.last_seq + 1 or n != len(prev)
                or seq - slot.full_seq >= self.full_every):
            flags |= FLAG_FULL_CLOCK
            slot.full_seq = seq
            body["k"] = after
            body["kb"] = before
        else:
            if after == prev:
                body["k"] = []
            else:
                body["k"] = [x for i, (a, b) in enumerate(zip(after, prev, strict=True))
                             if a != b for x in (i, a)]
            if before != prev:
                body["kb"] = before
        if after != before:
            flags |= FLAG_CHANGED
        for i in slot.err_idx:
            if i < len(after) and after[i] & 1:
                flags |= FLAG_ERROR
                break
        if steps:
            body["st"] = steps
        if log:
            body["l"] = log
        if prelog:
            body["pl"] = prelog
        if args:
            body["a"] = args
        if source:
            body["src"] = source
        slot.prev = after
        slot.last_seq = seq
        data = self._packb(body)
        if len(data) > MAX_BODY:
            # only huge step lists or logs get here; keep the record, drop the bulk
            for key in ("st", "l", "pl"):
                body.pop(key, None)
            body["tr"] = True
            data = self._packb(body)
        try:  # id_hash() inlined for amnode's own 16-hex-digit ids
            txh = int(tx_id, 16) if len(tx_id) == 16 and tx_id.isalnum() and \
                tx_id.isascii() and tx_id[1] not in "xX" else id_hash(tx_id)
        except ValueError:
            txh = id_hash(tx_id)
        head = _pack_header(FRAME_MARK, _TX, flags, len(data), mno, seq, end_ns, txh)
        out = self._out
        out += head
        out += data
        out += _pack_crc(_crc32(data, _crc32(head)))
        self.frames_written += 1

    def queued(self, mno: int, wall_ns: int, flags: int, mtype: int, called: list[int],
               queue_tick: int, queue_tick_now: int, queue_len: int, tx_id: str,
               args: dict[str, str] | None, source: list[Any] | None) -> None:
        """Write a queued-mutation record (`queue_tick` = the tick it will run at, 0 = next)."""
        body: dict[str, Any] = {"mt": mtype, "c": called, "qt": queue_tick, "qn": queue_tick_now,
                                "ql": queue_len}
        if tx_id:
            body["tx"] = tx_id
        if args:
            body["a"] = args
        if source:
            body["src"] = source
        self._frame(_QUEUED, flags, mno, 0, wall_ns, 0, self._packb(body))

    def dispose(self, mno: int, wall_ns: int, log: list[list[Any]] | None = None) -> None:
        """Write a dispose record, with the log lines produced after the last transition."""
        body: dict[str, Any] = {"l": log} if log else {}
        self._frame(int(Kind.DISPOSE), 0, mno, 0, wall_ns, 0, self._packb(body))

    def _frame(self, kind: int, flags: int, mno: int, seq: int, wall_ns: int, txh: int,
               body: bytes) -> None:
        head = _pack_header(FRAME_MARK, kind, flags, len(body), mno, seq, wall_ns, txh)
        out = self._out
        out += head
        out += body
        out += _pack_crc(_crc32(body, _crc32(head)))
        self.frames_written += 1

    # ------------------------------------------------------------------ output

    @property
    def pending(self) -> int:
        """Bytes encoded but not yet written."""
        return len(self._out)

    def flush(self) -> None:
        """Write everything encoded so far (whole frames only) to the file descriptor."""
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


__all__ = ["FILE_SUFFIX", "RecordWriter", "schema_body"]
