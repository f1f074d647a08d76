"""The first pass over a recording file: find segments, frames and blocks, check each block,
and index the frames per machine (docs/recording-format.md §4, §7 and §11).

`index_file()` walks the frame headers of one memory-mapped file block by block. A block is
indexed when its check record is genuine and its length and CRC-32 match; frames that no valid
check record covers are still indexed when they decode, but marked *unverified*:

* a **torn tail** (`torn()`): the file, or a segment followed by another segment header, ends
  inside a frame or a check record, or after complete frames whose check record is missing;
* **damage in the middle** (`corrupt()`): the leading frames of a damaged block that still
  decode are kept, the rest of the block is skipped up to the next genuine check record or
  segment header (`resync()`);
* frames after a SALVAGED note in a valid block: frames that `pack()` copied from one of the
  two cases above, so that a packed copy keeps them marked.

What is learned goes into `MachineIndex` objects (made by the reader's factory), the file's
`Segment`s (with the byte ranges `pack()` copies) and a list of `Corruption`s. Nothing is
decoded here except schema, dispose and SALVAGED bodies (rare, needed to index the rest).
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .decode import decode_body, field, log_lines, process_info, schema_version
from .errors import NewerFormatError, RecordingError
from .format import (
    CHECK,
    CRC,
    FLAG_ERROR,
    FORMAT_NAME,
    FRAME_HEADER,
    FRAME_MARK,
    FRAME_MARK_BYTES,
    MAGIC,
    MAX_BODY,
    MAX_SEGMENT_HEADER,
    SEGMENT_PREFIX,
    VERSION_MAJOR,
    Kind,
    unpack_body,
)
from .records import TORN_SEGMENT, TORN_TAIL, Corruption, LogLine, ProcessInfo, SchemaVersion

_HS = FRAME_HEADER.size
_CS = CHECK.size
_SP = SEGMENT_PREFIX.size
_TX = int(Kind.TRANSITION)
_QUEUED = int(Kind.QUEUED)
_SCHEMA = int(Kind.SCHEMA)
_DISPOSE = int(Kind.DISPOSE)
_CHECK = int(Kind.CHECK)
_SALVAGED = int(Kind.SALVAGED)
#: kinds whose frames hold a record this reader knows (checked by `salvage`)
_KNOWN = (_TX, _SCHEMA, _DISPOSE, _QUEUED, _SALVAGED)
#: the first 8 bytes of every genuine check record: marker, kind, flags 0, length 0
#: (docs/recording-format.md §4.1)
_CHECK_PREFIX = FRAME_MARK_BYTES + bytes((_CHECK, 0, 0, 0, 0, 0))

_FILE_TYPES = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str:
    """Why a file of this mode cannot be read as a recording ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "is a directory"
    what = next((name for test, name in _FILE_TYPES if test(mode)), "a special file")
    return f"not a regular file but {what}; a recording is a file or a directory"


# ---------------------------------------------------------------------- files


class MappedFile:
    """One recording file, memory-mapped read-only.

    Only regular files are opened: a FIFO, socket or device given as a recording would block
    the reader forever (or have side effects), so it is refused before and after opening.
    """

    #: "file" (read as it is), or for a growing source "growing" while more may come and
    #: "ended" after its last byte (a live stream's connection closed)
    state = "file"
    #: why a growing source ended ("" while it grows or for a plain file)
    end_reason = ""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        #: earlier maps of a file that grew (kept until close: another thread may read them)
        self._old: list[Any] = []
        self.mm: Any = None
        self.size = 0
        self._map(path)
        #: (searched from, found at or -1): the last `next_magic` search
        self._magic = (-1, -1)
        #: bytes read while looking for the next readable record after damage (searches and
        #: candidate check records): the cost of damage, linear in the damaged bytes
        #: (docs/recording-format.md §7)
        self.resync_bytes = 0

    def _map(self, path: Path | str) -> None:
        try:
            why = _not_regular(os.stat(path).st_mode)
        except FileNotFoundError:
            raise RecordingError("no such file or directory", self.path) from None
        except OSError as err:
            raise RecordingError(f"cannot open: {err.strerror or err}", self.path) from None
        if why:
            raise RecordingError(why, self.path)
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | \
            getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise RecordingError("no such file or directory", self.path) from None
        except IsADirectoryError:
            raise RecordingError("is a directory", self.path) from None
        except OSError as err:
            raise RecordingError(f"cannot open: {err.strerror or err}", self.path) from None
        try:
            st = os.fstat(fd)
            why = _not_regular(st.st_mode)  # replaced between stat and open
            if why:
                raise RecordingError(why, self.path)
            if st.st_size > self.size:
                mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                if self.mm is not None:
                    self._old.append(self.mm)
                self.mm = mm
                self.size = len(mm)
        except (OSError, ValueError) as err:
            raise RecordingError(f"cannot map: {err}", self.path) from None
        finally:
            os.close(fd)

    def refresh(self) -> bool:
        """Map the file again when it grew (a file still being written); True when it did.
        Bytes already read never change: a recording file is only appended to."""
        size = self.size
        try:
            if os.stat(self.path).st_size <= size:
                return False
            self._map(self.path)
        except RecordingError:
            return False
        self._grew(size)
        return self.size > size

    def _grew(self, old_size: int) -> None:
        if self._magic[1] < 0:  # "no magic after here" was true of the shorter source only
            self._magic = (-1, -1)

    def next_magic(self, pos: int) -> int:
        """Where the first segment magic at or after `pos` starts, -1 if none. The last answer
        is reused while `pos` has not passed it, so repeated resyncs scan each byte once."""
        lo, at = self._magic
        if 0 <= lo <= pos and (at < 0 or pos <= at):
            return at
        assert self.mm is not None
        at = self.mm.find(MAGIC, pos)
        self._magic = (pos, at)
        self.resync_bytes += (at + len(MAGIC) if at >= 0 else self.size) - pos
        return at

    def frame(self, off: int, kind: int) -> tuple[tuple[int, ...], Any]:
        """Header fields and decoded body of the frame at `off` (validated, strict msgpack):
        a padded list for transitions (see `decode.flat_tx_body`), a map for other kinds."""
        mm = self.mm
        assert mm is not None
        hdr = FRAME_HEADER.unpack_from(mm, off)
        if hdr[0] != FRAME_MARK or hdr[1] != kind:
            raise RecordingError("index points at a different record", self.path, off)
        try:
            body = decode_body(kind, mm[off + _HS:off + _HS + hdr[3]])
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self.path, off) from None
        return hdr, body

    def close(self) -> None:
        """Unmap the file."""
        for mm in (*self._old, self.mm):
            if mm is not None:
                mm.close()
        self._old = []
        self.mm = None


class StreamBuffer(MappedFile):
    """A recording that arrives in pieces (a live stream, docs/recording-format.md "Live
    streams"): its bytes are kept in memory, appended by `feed()`, and read like a mapped file;
    a `Scanner` indexes each piece once. `limit` bounds the bytes one stream may hold."""

    def __init__(self, name: str, limit: int) -> None:
        self.path = name
        self._old = []
        self.buf = bytearray()
        self.mm = self.buf
        self.size = 0
        self.limit = limit
        self.state = "growing"
        self._magic = (-1, -1)
        self.resync_bytes = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes; `RecordingError` past `limit` (the stream is then ended)."""
        if self.state != "growing":
            raise RecordingError(f"stream ended ({self.end_reason})", self.path)
        if self.size + len(data) > self.limit:
            self.end(f"more than {self.limit} bytes")
            raise RecordingError(f"stream exceeds {self.limit} bytes", self.path)
        old = self.size
        self.buf += data
        self.size = len(self.buf)
        self._grew(old)

    def end(self, reason: str = "closed") -> None:
        """No more bytes will come (its connection closed, or it went over a limit)."""
        if self.state == "growing":
            self.state = "ended"
            self.end_reason = reason

    def refresh(self) -> bool:
        """A stream grows by `feed()` only."""
        return False

    def close(self) -> None:
        """Nothing to unmap (the bytes stay readable)."""


class Segment:
    """A segment: its header's process and the byte ranges of its readable frames."""

    __slots__ = ("file", "header_end", "offset", "process", "ranges")

    def __init__(self, file: MappedFile, offset: int, header_end: int,
                 process: ProcessInfo) -> None:
        self.file = file
        self.offset = offset
        self.header_end = header_end
        self.process = process
        #: `[start, end]`: valid blocks (check records included), copied as they are;
        #: `[start, end, frames]`: unverified frames, which a copy closes with a SALVAGED note
        #: and a new check record (see `pack`)
        self.ranges: list[list[int]] = []


class MachineIndex:
    """What the first pass learns about one recorded machine: its schema versions, disposal,
    and per transition the frame offset (8 bytes; end time, flags and id hint are read from the
    frame headers on first use), plus which records are unverified. The reader's
    `RecordedMachine` adds decoding on top."""

    def __init__(self, file: MappedFile, process: ProcessInfo, mno: int, machine_id: str,
                 created_ns: int, schema: SchemaVersion) -> None:
        self._file = file
        self.mno = mno
        #: unique key within the recording (the id, or `id#2`, `id#3` for later namesakes)
        self.key = machine_id
        self.id = machine_id
        self.process = process
        self.created_ns = created_ns
        self.schemas: list[SchemaVersion] = [schema]
        self._schema_starts = [0]
        self.disposed = False
        self.disposed_ns: int | None = None
        self.dispose_log: list[LogLine] = []
        #: True when the dispose record is unverified (no valid check record covered it)
        self.dispose_unverified = False
        self.error_count = 0
        #: 1-based numbers of transitions preceded by lost records (seq jumps); clocks right
        #: after a gap may be stale until the next full clock
        self.gaps: list[int] = []
        self._offsets = array("q")
        # end times, flags and id hints of the transitions, read from their frame headers on
        # first use (`_times`, `_flags`, `_txh`): opening a recording indexes offsets only
        self._times_a = array("q")
        self._flags_a = array("B")
        self._txh_a = array("Q")
        self._q_offsets = array("q")
        self._q_times = array("q")
        #: 0-based positions of unverified transitions / queued records, ascending
        self._unverified = array("q")
        self._q_unverified = array("q")
        self._last_seq = 0


    @property
    def _times(self) -> array[int]:
        """End wall times (ns) of the transitions, in order."""
        a = self._times_a
        if len(a) != len(self._offsets):
            self._fill(a, _WALL_AT.unpack_from, 16)
        return a

    @property
    def _flags(self) -> array[int]:
        """Frame flags of the transitions, in order."""
        a = self._flags_a
        if len(a) != len(self._offsets):
            self._fill(a, None, 3)
        return a

    @property
    def _txh(self) -> array[int]:
        """Transition-id hints of the transitions, in order."""
        a = self._txh_a
        if len(a) != len(self._offsets):
            self._fill(a, _TXH_AT.unpack_from, 24)
        return a

    def _fill(self, a: array[int], unpack: Callable[..., tuple[int]] | None, at: int) -> None:
        """Bring a per-transition array up to the offsets indexed so far, reading one header
        field (`at` bytes into each frame; a single byte when `unpack` is None)."""
        offs = self._offsets
        n, total = len(a), len(offs)
        if n > total:
            del a[total:]
            return
        mm = self._file.mm
        if unpack is None:
            a.extend([mm[o + at] for o in offs[n:]])
        else:
            a.extend([unpack(mm, o + at)[0] for o in offs[n:]])

    def _header_wall(self, pos: int) -> int:
        """End wall time of the transition at `pos` (0-based), from its frame header."""
        return int(_WALL_AT.unpack_from(self._file.mm, self._offsets[pos] + 16)[0])

    def _flag_at(self, pos: int) -> int:
        """Frame flags of the transition at `pos`: from the array when it is filled, else
        from the frame header (a few lookups must not read a million headers)."""
        a = self._flags_a
        return a[pos] if pos < len(a) else self._file.mm[self._offsets[pos] + 3]

    def _wall_at(self, pos: int) -> int:
        """End wall time of the transition at `pos` (the array's, or the header's)."""
        a = self._times_a
        return a[pos] if pos < len(a) else self._header_wall(pos)

    def _times_right(self, wall_ns: int) -> int:
        """`bisect_right(self._times, wall_ns)` without filling the times array: a binary
        search reads ~20 headers where the array would read them all."""
        a = self._times_a
        n = len(self._offsets)
        if len(a) == n:
            return bisect_right(a, wall_ns)
        return bisect_right(range(n), wall_ns, key=self._wall_at)


_WALL_AT = struct.Struct("<q")
#: the first 16 bytes of a frame header: marker, kind, flags, length, machine, sequence
_FRAME_HEAD = struct.Struct("<HBBIII")
_TXH_AT = struct.Struct("<Q")

#: makes the index object of a machine first seen in a segment (the reader's RecordedMachine)
MachineFactory = Callable[[MappedFile, ProcessInfo, int, str, int, SchemaVersion],
                          MachineIndex]


# ---------------------------------------------------------------------- the pass


class StreamDamageError(RecordingError):
    """A growing source in strict mode (a live stream) holds bytes that are not a recording:
    the stream is cut there (what was indexed before stays)."""


class Scanner:
    """The first pass over one source (docs/recording-format.md §7, §11), resumable.

    `scan()` indexes the frames the source holds and remembers where it stopped, so a source
    that grows (a file being written, a live stream: `StreamBuffer`) is indexed by calling it
    again after each growth: every byte is read once. With `final=False` an incomplete tail (a
    frame, check record or segment header still arriving, complete frames whose check record
    has not arrived) waits for more bytes instead of being reported torn; the last call, with
    `final=True`, reports it like a finished file's. In `strict` mode (live streams) damage
    anywhere raises `StreamDamageError` instead of being skipped: a stream is never resynced.
    """

    def __init__(self, f: MappedFile, *, verify: bool, new_machine: MachineFactory,
                 machines: list[Any], segments: list[Segment], corruption: list[Corruption],
                 strict: bool = False) -> None:
        self.f = f
        self.verify = verify
        self.new_machine = new_machine
        self.machines = machines
        self.segments = segments
        self.corruption = corruption
        self.strict = strict
        #: True after a final scan (or a strict failure): nothing more is read
        self.done = False
        self._seg: Segment | None = None
        self._off = 0
        self._run_start = 0
        self._block = 0
        self._pending: list[tuple[int, ...]] = []
        self._slots: dict[int, tuple[Any, ...]] = {}

    @property
    def position(self) -> int:
        """Where the next scan starts (bytes before it are indexed or reported)."""
        return self._off

    @property
    def unclosed(self) -> int:
        """Bytes of the current block still waiting for their check record (a live stream
        bounds this: see `live_protocol.BLOCK_MAX`)."""
        return self.f.size - self._block

    def scan(self, final: bool = True) -> None:
        """Index from where the last scan stopped to the end of the source.

        Raises `RecordingError` when the source is not a recording at all
        (`NewerFormatError` for a newer major version anywhere in it), `StreamDamageError` in
        strict mode on damage.
        """
        if self.done:
            return
        f = self.f
        mm = f.mm
        path = f.path
        size = f.size
        corruption = self.corruption
        segments = self.segments
        if self._seg is None:  # the first segment header
            if not final and not _header_complete(f, 0):
                if mm is not None and bytes(mm[:min(size, len(MAGIC))]) != MAGIC[:min(size, 8)]:
                    raise RecordingError("not an amnode recording (no AMREC header)", path)
                return
            if mm is None or size == 0:
                raise RecordingError("empty file, not an amnode recording", path)
            if mm[:len(MAGIC)] != MAGIC:
                raise RecordingError("not an amnode recording (no AMREC header)", path)
            seg, off = segment_header(f, 0)
            segments.append(seg)
            self._seg = seg
            self._off = self._run_start = self._block = off
        seg = self._seg
        off = self._off
        unpack = FRAME_HEADER.unpack_from
        # the walk reads the first 16 bytes of a header (no big integers to make per frame)
        head = _FRAME_HEAD.unpack_from
        crc32 = zlib.crc32
        mark_ok, check = FRAME_MARK, _CHECK
        verify = self.verify
        strict = self.strict
        new_machine = self.new_machine
        machines = self.machines
        slots = self._slots
        run_start = self._run_start  # start of the current run of verified bytes
        block = self._block  # start of the current block
        pending = self._pending  # header fields of the block's frames so far
        # The fast path: in a final, lenient scan, the block's leading transitions of known
        # machines go straight into the index (`ndirect` of them) instead of waiting in
        # `pending` for the check record; should the block turn out damaged or torn,
        # `undo_direct` takes them back out before anything looks at `pending`, so the result
        # is the same as indexing the block only once it is known valid.
        direct_ok = final and not strict
        ndirect = 0

        def other(at: int, kind: int, mno: int, wall: int, unverified: bool) -> None:
            """Schema, dispose and queued frames (rare): schema and dispose bodies are decoded
            right away (a machine's number is only known from its schema record)."""
            slot = slots.get(mno)
            if kind == _QUEUED:
                if slot is None:
                    corruption.append(Corruption(path, at,
                                                 f"queued record of unknown machine {mno}"))
                    return
                m = slot[0]
                if unverified:
                    m._q_unverified.append(len(m._q_offsets))
                m._q_offsets.append(at)
                m._q_times.append(wall)
                return
            try:
                _, body = f.frame(at, kind)
                if kind == _DISPOSE:
                    if slot is None:
                        raise ValueError(f"dispose of unknown machine {mno}")
                    m = slot[0]
                    m.disposed = True
                    m.disposed_ns = wall
                    m.dispose_unverified = unverified
                    m.dispose_log = log_lines(body.get("l"), "l", m.schemas[-1].log_prefix)
                    return
                mid = field(body, "id", str)
                if slot is None:
                    m = new_machine(f, seg.process, mno, mid, wall,
                                    schema_version(body, 1, wall, unverified))
                    machines.append(m)
                    slots[mno] = (m, m._offsets.append)
                else:
                    m = slot[0]
                    first = len(m._offsets) + 1
                    version = schema_version(body, first, wall, unverified)
                    if m._schema_starts[-1] == first - 1:
                        m.schemas[-1] = version  # no transition in between: replace
                    else:
                        m.schemas.append(version)
                        m._schema_starts.append(first - 1)
            except (ValueError, RecordingError) as err:
                reason = err.reason if isinstance(err, RecordingError) else \
                    f"corrupt record: {err}"
                corruption.append(Corruption(path, at, reason))

        def undo_direct() -> None:
            """Take the block's directly indexed transitions back out of the index and put
            them, in order, before the frames still pending."""
            nonlocal ndirect
            if not ndirect:
                return
            frames: list[tuple[int, ...]] = []
            per_machine: dict[int, list[int]] = {}
            p = block
            for _ in range(ndirect):
                hdr = unpack(mm, p)
                frames.append((p, *hdr[1:]))
                per_machine.setdefault(hdr[4], []).append(hdr[2])
                p += _HS + hdr[3]
            for mno, flag_list in per_machine.items():
                m = slots[mno][0]
                keep = len(m._offsets) - len(flag_list)
                for a in (m._offsets, m._times_a, m._flags_a, m._txh_a):
                    del a[keep:]
                m.error_count -= sum(1 for fl in flag_list if fl & FLAG_ERROR)
                while m.gaps and m.gaps[-1] > keep:
                    m.gaps.pop()
                # the last indexed transition's sequence number (0 when none is left)
                m._last_seq = unpack(mm, m._offsets[keep - 1])[5] if keep else 0
            pending[:0] = frames
            ndirect = 0

        def commit(unverified: bool = False) -> None:
            """Index the pending frames: a verified block (unverified after a SALVAGED note in
            it), or with `unverified` frames that no valid check record covers. Two loops on
            purpose: the first, which indexes almost every frame of a recording, tests nothing
            per frame that only unverified frames need."""
            rest: list[tuple[int, ...]] = pending
            if not unverified:
                rest = []
                for p_off, kind, flags, _n, mno, seq, wall, _txh in pending:
                    if kind == _TX:
                        slot = slots.get(mno)
                        if slot is None:
                            corruption.append(Corruption(
                                path, p_off, f"transition of unknown machine {mno}"))
                            continue
                        m = slot[0]
                        if seq != m._last_seq + 1 and m._last_seq:
                            m.gaps.append(len(m._offsets) + 1)
                        m._last_seq = seq
                        if flags & FLAG_ERROR:
                            m.error_count += 1
                        slot[1](p_off)
                    elif kind == _SALVAGED:  # the rest of this block was salvaged by pack()
                        rest = [p for p in pending if p[0] > p_off]
                        break
                    elif kind in (_SCHEMA, _DISPOSE, _QUEUED):
                        other(p_off, kind, mno, wall, False)
            for p_off, kind, flags, _n, mno, seq, wall, _txh in rest:
                if kind == _TX:
                    slot = slots.get(mno)
                    if slot is None:
                        corruption.append(Corruption(
                            path, p_off, f"transition of unknown machine {mno}"))
                        continue
                    m = slot[0]
                    if seq != m._last_seq + 1 and m._last_seq:
                        m.gaps.append(len(m._offsets) + 1)
                    m._last_seq = seq
                    if flags & FLAG_ERROR:
                        m.error_count += 1
                    m._unverified.append(len(m._offsets))
                    slot[1](p_off)
                elif kind in (_SCHEMA, _DISPOSE, _QUEUED):
                    other(p_off, kind, mno, wall, True)
            pending.clear()

        def keep_unverified(end: int) -> int:
            """Close the verified run before the current block and index the block's pending
            frames (which end at `end`) as unverified; returns how many there were."""
            nonlocal run_start
            undo_direct()
            if run_start < block:
                seg.ranges.append([run_start, block])
            run_start = end
            kept = len(pending)
            if kept:
                seg.ranges.append([block, end, kept])
                commit(unverified=True)
            return kept

        def torn(at: int, detail: str, segment_end: bool = False) -> None:
            """The current block ends unclosed at `at`: the file (or, with `segment_end`, the
            segment) ends inside a record, or after complete frames whose check record was
            never written (a cut-short last write). Its complete frames are kept, unverified
            (docs/recording-format.md §7)."""
            nonlocal block
            kept = keep_unverified(at)
            block = at
            reason = f"{TORN_SEGMENT if segment_end else TORN_TAIL} ({detail})"
            if kept:
                reason += f"; {kept} record(s) before it kept unverified"
            corruption.append(Corruption(path, at, reason, 0 if segment_end else size - at))

        def damaged(at: int, reason: str) -> bool:
            """Damage at `at` on a source that is still growing: True to wait for more bytes
            (the resynchronisation point has not arrived yet); raises in strict mode."""
            if strict:
                corruption.append(Corruption(path, at, reason, size - at))
                self.done = True
                raise StreamDamageError(reason, path, at)
            return not final and resync(f, at)[0] >= size

        def corrupt(at: int, reason: str) -> int:
            """Report damage in the block holding `at` and return where reading goes on. The
            block's leading frames that still decode are kept (unverified: the block's CRC
            covers the damage too); the rest of the block is dropped."""
            nonlocal run_start, block
            undo_direct()
            good = salvage(f, pending)
            bad = pending[good][0] if good < len(pending) else at
            del pending[good:]
            if keep_unverified(bad):
                reason += f"; {good} record(s) before it kept unverified"
            nxt, rec = resync(f, at)
            if rec is not None:
                start = nxt - rec[7]
                # a later block that starts after the damage is kept; else skip the damaged
                # block's own check record too
                nxt = start if at < start and block <= start else nxt + _CS
            corruption.append(Corruption(path, bad, reason, nxt - bad))
            run_start = block = nxt
            return nxt

        # CRCs over a view of the map: slicing the map itself would copy every block
        view = memoryview(mm)
        try:
            while off < size:
                if size - off < _HS:
                    if final:
                        torn(off, f"{size - off} bytes")
                    break
                hdr = head(mm, off)
                if hdr[0] != mark_ok:
                    if mm[off:off + 8] == MAGIC:
                        if not final and not _header_complete(f, off):
                            break
                        try:
                            header: tuple[Segment, int] | None = segment_header(f, off)
                        except NewerFormatError:
                            raise
                        except RecordingError as err:
                            if damaged(off, err.reason):
                                break
                            header, reason = None, err.reason
                        undo_direct()
                        if pending:  # the previous segment ended without its last check record
                            torn(off, "check record missing", segment_end=True)
                        elif run_start < off:
                            seg.ranges.append([run_start, off])
                        if header is None:
                            block = off
                            off = corrupt(off, reason)
                            continue
                        seg, off = header
                        segments.append(seg)
                        self._seg = seg
                        slots = self._slots = {}
                        run_start = block = off
                        continue
                    if damaged(off, "bad frame marker"):
                        break
                    off = corrupt(off, "bad frame marker")
                    continue
                if hdr[1] == check:
                    rec = check_at(f, off)
                    if rec is None:
                        if size - off < _CS:
                            if final:
                                torn(off, f"{size - off} bytes")
                            break
                        if damaged(off, "corrupt check record"):
                            break
                        off = corrupt(off, "corrupt check record")
                        continue
                    if verify and (rec[7] != off - block or crc32(view[block:off]) != rec[5]):
                        if damaged(off, "checksum mismatch"):
                            break
                        off = corrupt(off, "checksum mismatch")
                        continue
                    commit()
                    ndirect = 0
                    off += _CS
                    block = off
                    continue
                n = hdr[3]
                end = off + _HS + n
                if n > MAX_BODY:
                    reason = f"frame length {n} exceeds the limit"
                    if damaged(off, reason):
                        break
                    off = corrupt(off, reason)
                    continue
                if end > size:
                    if not final:
                        break  # the rest of the frame is still arriving
                    if resync(f, off)[0] < size:
                        off = corrupt(off, f"frame length {n} runs past a later record")
                        continue
                    torn(off, f"{size - off} of {end - off} bytes")
                    break
                if hdr[1] == _TX and direct_ok and not pending:
                    slot = slots.get(hdr[4])
                    if slot is not None:
                        # the run of transitions that starts here, in a tight loop (most
                        # frames of a recording, one machine's or interleaved): any other
                        # frame, or one that needs a closer look, ends the run and goes
                        # through the checks above
                        m, append = slot
                        mno = hdr[4]
                        _, _, flags, n, _, seq = hdr
                        last = m._last_seq
                        errors = 0
                        while True:
                            if seq != last + 1 and last:
                                m.gaps.append(len(m._offsets) + 1)
                            last = seq
                            if flags & FLAG_ERROR:
                                errors += 1
                            append(off)
                            ndirect += 1
                            off = end
                            if size - off < _HS:
                                break
                            mark, kind, flags, n, mno2, seq = head(mm, off)
                            end = off + _HS + n
                            if mark != mark_ok or kind != _TX or n > MAX_BODY or end > size:
                                break
                            if mno2 != mno:  # another machine's transition: switch to it
                                slot = slots.get(mno2)
                                if slot is None:
                                    break
                                m._last_seq = last
                                m.error_count += errors
                                m, append = slot
                                mno, last, errors = mno2, m._last_seq, 0
                        m._last_seq = last
                        m.error_count += errors
                        continue
                pending.append((off, *unpack(mm, off)[1:]))
                off = end
            else:
                undo_direct()
                if pending and final:  # complete frames, but their check record is missing
                    torn(size, "check record missing")
            if final:
                if run_start < min(off, size):
                    seg.ranges.append([run_start, min(off, size)])
                self.done = True
        finally:
            view.release()  # a live stream's buffer must stay resizable
            self._off, self._run_start, self._block = off, run_start, block


def index_file(f: MappedFile, *, verify: bool, new_machine: MachineFactory,
               machines: list[Any], segments: list[Segment],
               corruption: list[Corruption]) -> None:
    """Index one whole file: append its machines, segments and damage to the given lists.

    Walks the frames block by block, verifies each block's CRC-32 at its check record (unless
    `verify` is False: then a genuine check record is trusted as is) and feeds the frames of
    good blocks to the per-machine index arrays. Raises `RecordingError` when the file is not a
    recording at all (`NewerFormatError` for a newer major version anywhere in it).
    """
    Scanner(f, verify=verify, new_machine=new_machine, machines=machines, segments=segments,
            corruption=corruption).scan(final=True)


def _header_complete(f: MappedFile, off: int) -> bool:
    """True when a whole segment header (as far as its length field tells) is at `off`."""
    size = f.size
    if size - off < _SP:
        return False
    hlen = SEGMENT_PREFIX.unpack_from(f.mm, off)[3]
    return hlen > MAX_SEGMENT_HEADER or off + _SP + hlen + CRC.size <= size


def segment_header(f: MappedFile, off: int) -> tuple[Segment, int]:
    """Parse the segment header at `off`: (segment, offset of its first frame)."""
    mm = f.mm
    assert mm is not None
    size = f.size
    if size - off < _SP:
        raise RecordingError("truncated segment header", f.path, off)
    _, major, minor, hlen = SEGMENT_PREFIX.unpack_from(mm, off)
    if major > VERSION_MAJOR:
        raise NewerFormatError(
            f"recording format {major}.{minor} is newer than this reader "
            f"({VERSION_MAJOR}.x); upgrade amnode to read it", f.path, off)
    if major < VERSION_MAJOR:
        raise RecordingError(
            f"recording format {major}.{minor} is older than this reader "
            f"({VERSION_MAJOR}.x) reads; record it again", f.path, off)
    if hlen > MAX_SEGMENT_HEADER:
        raise RecordingError(f"segment header length {hlen} exceeds the limit", f.path, off)
    end = off + _SP + hlen
    if end + CRC.size > size:
        raise RecordingError("truncated segment header", f.path, off)
    if zlib.crc32(mm[off:end]) != CRC.unpack_from(mm, end)[0]:
        raise RecordingError("segment header checksum mismatch", f.path, off)
    try:
        head = unpack_body(mm[off + _SP:end])
        if not isinstance(head, dict):
            raise ValueError("header is not a map")
        if head.get("format") != FORMAT_NAME:
            raise ValueError(f"unknown format name {head.get('format')!r}")
        process = process_info(head, f.path, off, (major, minor))
    except ValueError as err:
        raise RecordingError(f"corrupt segment header: {err}", f.path, off) from None
    return Segment(f, off, end + CRC.size, process), end + CRC.size


def check_at(f: MappedFile, off: int) -> tuple[int, ...] | None:
    """The fields of a genuine check record at `off` (its own CRC matches), else None."""
    mm = f.mm
    assert mm is not None
    if f.size - off < _CS:
        return None
    rec = CHECK.unpack_from(mm, off)
    if rec[0] != FRAME_MARK or rec[1] != _CHECK or rec[2] != 0 or rec[3] != 0 or \
            zlib.crc32(mm[off:off + _CS - 4]) != rec[8]:
        return None
    return rec


def salvage(f: MappedFile, frames: list[tuple[int, ...]]) -> int:
    """How many of a damaged block's leading frames decode as valid records."""
    for i, (off, kind, *_rest) in enumerate(frames):
        if kind not in _KNOWN:
            return i
        try:
            f.frame(off, kind)
        except RecordingError:
            return i
    return len(frames)


def resync(f: MappedFile, off: int) -> tuple[int, tuple[int, ...] | None]:
    """The next offset after `off` where a genuine check record or a segment header starts,
    with the check record's fields (None for a segment header); (size, None) if none.

    Linear in the bytes skipped: the next segment magic is searched once (and remembered by
    the file, see `MappedFile.next_magic`), check records only up to it, and only candidates
    whose first 8 bytes are those of a check record are verified."""
    mm = f.mm
    assert mm is not None
    magic = f.next_magic(off + 1)
    end = f.size if magic < 0 else magic
    find = mm.find
    crc32 = zlib.crc32
    unpack_crc = CRC.unpack_from
    body = _CS - CRC.size
    plen = len(_CHECK_PREFIX)
    pos = find(_CHECK_PREFIX, off + 1, end)
    read = (pos + plen if pos >= 0 else end) - off
    try:
        while pos >= 0:
            read += body
            if pos + _CS <= f.size and \
                    crc32(mm[pos:pos + body]) == unpack_crc(mm, pos + body)[0]:
                return pos, CHECK.unpack_from(mm, pos)
            nxt = find(_CHECK_PREFIX, pos + 1, end)
            read += (nxt + plen if nxt >= 0 else end) - pos
            pos = nxt
        return (f.size, None) if magic < 0 else (magic, None)
    finally:
        f.resync_bytes += read


__all__ = ["MachineFactory", "MachineIndex", "MappedFile", "Scanner", "Segment", "StreamBuffer",
           "StreamDamageError", "check_at", "index_file", "resync", "salvage", "segment_header"]
