"""Reading recordings: one fast pass builds a compact index, records are decoded on access.

    rec = open_recording("rec/")              # a .amrec file, or a directory of them
    for m in rec.machines: print(m.key, m.parent, len(m), m.error_count)
    m = rec.machine("worker")                 # exact key or id (KeyError otherwise)
    rec.find_machines("work")                 # exact key, exact id, else every key containing it
    tx = m.transition(3)                      # 1-based; TransitionRecord
    tx = m.transition_by_id("1f2e...")        # or rec.transition_by_id(...)
    m.summary(3)                              # flags and time from the index, no decoding
    m.clock_at(3)                             # {state: tick} after transition 3
    rec.state_at(wall_ns)                     # {machine key: MachineState} at a wall time
    m.queued()                                # [QueuedRecord]
    rec.corruption                            # [Corruption(file, offset, reason, skipped)]

Public API (everything else is private):

- `open_recording(path, *, verify=True) -> Recording`; raises `RecordingError` (one-line str;
  `NewerFormatError` for a newer major version) for a missing path, a directory without
  `*.amrec` files, a file that is not a recording, or a file with no readable segment.
- `Recording`: `path`, `machines` (ordered by creation), `processes`, `corruption`,
  `transition_count`, `first_ns`, `last_ns`, `machine(key)`, `find_machines(part)`,
  `parent(machine)`, `children(machine)`, `transition_by_id(tx_id)`, `state_at(wall_ns)`,
  `timeline(start_ns=None, end_ns=None)`, `segments()`, `close()`; a context manager.
- `RecordedMachine`: `key` (unique in the recording: the id, or `id#2`, `id#3` when several
  machines share an id), `id`, `parent`, `tags`, `state_names`, `schema`, `groups`,
  `groups_order` (all of the latest schema), `schemas`, `schema_at(n)`, `process`, `file`,
  `created_ns`, `first_ns`, `last_ns`, `transition_count` / `len()`, `error_count`, `errors()`,
  `disposed`, `disposed_ns`, `dispose_log`, `gaps`, `end_times`, `summary(n)`,
  `transition(n)`, `transition_by_id(tx_id)`, `transitions(start=1, stop=None)` / `iter()`,
  `clock_at(n)`, `time_at(n)`, `number_at(wall_ns)`, `state_at(wall_ns)`, `queued_count`,
  `queued()`.
- Value types (`records.py`): `TransitionRecord`, `TransitionSummary`, `StepRecord`, `LogLine`,
  `Source`, `QueuedRecord`, `MachineState`, `SchemaVersion`, `ProcessInfo`, `Corruption`.

Transition numbers `n` are 1-based positions within a machine; `TransitionRecord.seq` is the
number the recorded process gave it (they differ only after lost records, see `gaps`).
Times are wall-clock ns. Out-of-range numbers raise IndexError, unknown keys KeyError, and a
record that fails to decode raises `RecordingError` naming the file and offset.

Memory: per transition the index keeps 25 bytes (offset, end time, id hash, flags); files are
memory-mapped and records are decoded only when asked for, with a one-entry clock cache per
machine that makes sequential access O(1) per step.
"""

from __future__ import annotations

import heapq
import mmap
import os
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import NewerFormatError, RecordingError
from .format import (
    CHECK,
    CRC,
    FILE_SUFFIX,
    FLAG_ACCEPTED,
    FLAG_AUTO,
    FLAG_CHANGED,
    FLAG_CHECK,
    FLAG_ERROR,
    FLAG_FULL_CLOCK,
    FLAG_HEALTH,
    FLAG_PREPENDED,
    FORMAT_NAME,
    FRAME_HEADER,
    FRAME_MARK,
    FRAME_MARK_BYTES,
    MAGIC,
    MAX_BODY,
    MAX_SEGMENT_HEADER,
    MU_REQUIRED,
    OUT_FIELDS,
    OUT_REQUIRED,
    SEGMENT_PREFIX,
    STEP_ENTER,
    STEP_FINAL,
    STEP_SELF,
    TX_REQUIRED,
    TX_TRUNCATED,
    VERSION_MAJOR,
    Kind,
    id_hash,
    unpack_body,
)
from .records import (
    MUTATION_TYPES,
    RELATIONS,
    STEP_TYPES,
    TORN_TAIL,
    Corruption,
    LogLine,
    MachineState,
    ProcessInfo,
    QueuedRecord,
    SchemaVersion,
    Source,
    StepRecord,
    TransitionRecord,
    TransitionSummary,
)

_HS = FRAME_HEADER.size
_CS = CHECK.size
_SP = SEGMENT_PREFIX.size
_TX = int(Kind.TRANSITION)
_QUEUED = int(Kind.QUEUED)
_SCHEMA = int(Kind.SCHEMA)
_DISPOSE = int(Kind.DISPOSE)
_CHECK = int(Kind.CHECK)
#: the first 8 bytes of every genuine check record: marker, kind, flags 0, length 0 (§4.1)
_CHECK_PREFIX = FRAME_MARK_BYTES + bytes((_CHECK, 0, 0, 0, 0, 0))
_MISSING = object()


# ---------------------------------------------------------------------- body validation


def _get(body: dict[str, Any], key: str, typ: type | tuple[type, ...], default: Any = _MISSING
         ) -> Any:
    value = body.get(key, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise ValueError(f"missing field {key!r}")
        return default
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"field {key!r} has type {type(value).__name__}")
    return value


def _ints(value: Any, key: str) -> list[int]:
    if not isinstance(value, list) or not all(type(x) is int for x in value):
        raise ValueError(f"field {key!r} must be a list of integers")
    return value


def _strs(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(type(x) is str for x in value):
        raise ValueError(f"field {key!r} must be a list of strings")
    return value


def _lines(value: Any, key: str, prefix: str = "") -> list[LogLine]:
    """Log lines `[level, text]`, the machine's id prefix (schema `lp`) removed."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"field {key!r} must be a list")
    out = []
    plen = len(prefix)
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                and type(item[1]) is str):
            raise ValueError(f"field {key!r} holds a malformed log line")
        text = item[1]
        if plen and text.startswith(prefix):
            text = text[plen:]
        out.append(LogLine(item[0], text))
    return out


# a transition body, flattened (see `_tx_body`): mutation part, then outcome part, then truncated
TX_MT, TX_CALLED, TX_STEPS = 0, 1, 2
(TX_STEP_TIMES, TX_DURATION, TX_QT, TX_MQ, TX_QL, TX_K, TX_KB, TX_LOG, TX_PRELOG, TX_ARGS,
 TX_SRC, TX_ID) = range(3, 3 + OUT_FIELDS)
TX_FLAT_TRUNCATED = 3 + OUT_FIELDS


def _tx_body(body: Any) -> list[Any]:
    """A transition body `[mutation, outcome(, truncated)]` as one flat list (TX_* above),
    padded with None so that every known position can be read."""
    if not isinstance(body, list) or len(body) < TX_REQUIRED:
        raise ValueError(f"transition body is not an array of at least {TX_REQUIRED} elements")
    mu, out = body[0], body[1]
    if not isinstance(mu, list) or len(mu) < MU_REQUIRED:
        raise ValueError("transition mutation part is malformed")
    if not isinstance(out, list) or len(out) < OUT_REQUIRED:
        raise ValueError("transition outcome part is malformed")
    flat = mu[:3]
    flat.extend([None] * (3 - len(flat)))
    flat.extend(out[:OUT_FIELDS])
    flat.extend([None] * (3 + OUT_FIELDS - len(flat)))
    flat.append(body[TX_TRUNCATED] if len(body) > TX_TRUNCATED else None)
    return flat


def _at(body: list[Any], pos: int, typ: type, default: Any = _MISSING) -> Any:
    """Element `pos` of a transition body, type-checked; nil gives `default`."""
    value = body[pos]
    if value is None:
        if default is _MISSING:
            raise ValueError(f"transition element {pos} is missing")
        return default
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"transition element {pos} has type {type(value).__name__}")
    return value


def _str_map(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(type(v) is str for v in value.values()):
        raise ValueError(f"field {key!r} must map strings to strings")
    return value


def _source(value: Any) -> Source | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is str
            and type(value[1]) is str and type(value[2]) is int):
        raise ValueError("field 'src' is malformed")
    return Source(value[0], value[1], value[2])


def _tx_id(hdr: tuple[int, ...], body: list[Any]) -> str:
    """A transition's id: the body's, or (nil) the header's hint as 16 lowercase hex digits."""
    value = body[TX_ID]
    if value is None:
        return "%016x" % hdr[7]
    if type(value) is not str:
        raise ValueError("transition id must be a string")
    return value


def _mtype(value: int) -> str:
    return MUTATION_TYPES[value] if 0 <= value < len(MUTATION_TYPES) else str(value)


class _Names:
    """Resolves state references: an int index, -1 for none, or a literal str name."""

    __slots__ = ("names",)

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __call__(self, ref: Any) -> str:
        if type(ref) is int:
            if 0 <= ref < len(self.names):
                return self.names[ref]
            if ref == -1:
                return ""
            raise ValueError(f"state index {ref} out of range")
        if type(ref) is str:
            return ref
        raise ValueError(f"bad state reference {ref!r}")


def _steps(value: Any, times: Any, name: _Names) -> list[StepRecord]:
    """Steps (`[type, from, to, relation(, flags, handler)]`) with the durations of the last
    len(times) of them (float seconds)."""
    if not isinstance(value, list):
        raise ValueError("step list must be an array")
    if times is None:
        times = ()
    elif not isinstance(times, list) or len(times) > len(value) or \
            not all((type(x) is float or type(x) is int) and 0 <= x < 1e9 for x in times):
        raise ValueError("step times must be an array of seconds, one per last step")
    first = len(value) - len(times)
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, list) or len(s) < 4 or type(s[0]) is not int or \
                type(s[3]) is not int:
            raise ValueError("malformed step")
        stype = STEP_TYPES.get(s[0], str(s[0]))
        rel = RELATIONS[s[3]] if 0 <= s[3] < len(RELATIONS) else None
        ns = round(times[i - first] * 1e9) if i >= first else 0
        if len(s) >= 6:
            if type(s[4]) is not int or type(s[5]) is not str:
                raise ValueError("malformed handler step")
            out.append(StepRecord(stype, name(s[1]), name(s[2]), rel, s[5],
                                  bool(s[4] & STEP_FINAL), bool(s[4] & STEP_ENTER),
                                  bool(s[4] & STEP_SELF), ns))
        else:
            out.append(StepRecord(stype, name(s[1]), name(s[2]), rel, duration_ns=ns))
    return out


def _schema_version(body: dict[str, Any], first: int, wall_ns: int) -> SchemaVersion:
    names = _strs(_get(body, "names", list), "names")
    states_raw = _get(body, "states", dict)
    schema: dict[str, dict[str, Any]] = {}
    for state, props in states_raw.items():
        if not isinstance(props, dict):
            raise ValueError(f"state {state!r} is malformed")
        schema[state] = {
            "auto": bool(props.get("auto", False)), "multi": bool(props.get("multi", False)),
            **{rel: _strs(props.get(rel, []), rel)
               for rel in ("require", "add", "remove", "after", "tags")},
        }
    groups_raw = _get(body, "groups", dict, {})
    groups = {k: _ints(v, "groups") for k, v in groups_raw.items()}
    order = _strs(_get(body, "go", list, list(groups)), "go")
    return SchemaVersion(first, wall_ns, _get(body, "parent", str, ""),
                         _strs(_get(body, "tags", list, []), "tags"), names, schema, groups,
                         order, _get(body, "lp", str, ""))


# ---------------------------------------------------------------------- files


class _File:
    """One memory-mapped recording file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise RecordingError("no such file or directory", self.path) from None
        except IsADirectoryError:
            raise RecordingError("is a directory", self.path) from None
        except OSError as err:
            raise RecordingError(f"cannot open: {err.strerror or err}", self.path) from None
        try:
            self.size = os.fstat(fd).st_size
            self.mm: mmap.mmap | None = None
            if self.size:
                self.mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise RecordingError(f"cannot map: {err}", self.path) from None
        finally:
            os.close(fd)
        #: (searched from, found at or -1): the last `next_magic` search
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
        return at

    def frame(self, off: int, kind: int) -> tuple[tuple[int, ...], Any]:
        """Header fields and decoded body of the frame at `off` (validated, strict msgpack):
        a padded list for transitions (see `_tx_body`), a dict for the other kinds."""
        mm = self.mm
        assert mm is not None
        hdr = FRAME_HEADER.unpack_from(mm, off)
        if hdr[0] != FRAME_MARK or hdr[1] != kind:
            raise RecordingError("index points at a different record", self.path, off)
        try:
            body = unpack_body(mm[off + _HS:off + _HS + hdr[3]])
            if kind == _TX:
                body = _tx_body(body)
            elif not isinstance(body, dict):
                raise ValueError("record body is not a map")
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self.path, off) from None
        return hdr, body

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None


class _Segment:
    """A segment: its header's process and the byte ranges of its valid frames."""

    __slots__ = ("end", "file", "header_end", "offset", "process", "ranges")

    def __init__(self, file: _File, offset: int, header_end: int, process: ProcessInfo) -> None:
        self.file = file
        self.offset = offset
        self.header_end = header_end
        self.process = process
        #: [start, end) byte ranges of consecutive valid frames
        self.ranges: list[list[int]] = []
        self.end = header_end


# ---------------------------------------------------------------------- machines


class RecordedMachine:
    """One recorded machine: schema versions plus an index of its transitions (1-based)."""

    def __init__(self, file: _File, process: ProcessInfo, mno: int, machine_id: str,
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
        self.error_count = 0
        #: 1-based numbers of transitions preceded by lost records (seq jumps); clocks right
        #: after a gap may be stale until the next full clock
        self.gaps: list[int] = []
        self._offsets = array("q")
        self._times = array("q")
        self._flags = array("B")
        self._txh = array("Q")
        self._q_offsets = array("q")
        self._q_times = array("q")
        self._last_seq = 0
        self._cache_pos = -1
        self._cache_clock: list[int] = []

    def __repr__(self) -> str:
        return f"RecordedMachine({self.key!r}, transitions={len(self._offsets)})"

    # --- identity and schema (latest version) ---

    @property
    def file(self) -> str:
        """The recording file holding this machine."""
        return self._file.path

    @property
    def parent(self) -> str:
        """Parent machine id ("" for none)."""
        return self.schemas[-1].parent

    @property
    def tags(self) -> list[str]:
        """Machine tags."""
        return self.schemas[-1].tags

    @property
    def state_names(self) -> list[str]:
        """Ordered state names (latest schema); clock index i refers to state_names[i]."""
        return self.schemas[-1].state_names

    @property
    def schema(self) -> dict[str, dict[str, Any]]:
        """Latest schema: {state: {auto, multi, require, add, remove, after, tags}}."""
        return self.schemas[-1].schema

    @property
    def groups(self) -> dict[str, list[int]]:
        """Named groups of state indexes (latest schema)."""
        return self.schemas[-1].groups

    @property
    def groups_order(self) -> list[str]:
        """Display order of the groups."""
        return self.schemas[-1].groups_order

    def schema_at(self, n: int) -> SchemaVersion:
        """The schema version in effect for transition `n`."""
        return self.schemas[bisect_right(self._schema_starts, max(n - 1, 0)) - 1]

    # --- counts and times ---

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def transition_count(self) -> int:
        """Number of recorded transitions."""
        return len(self._offsets)

    @property
    def first_ns(self) -> int | None:
        """Wall time (end) of the first transition, None when there is none."""
        return self._times[0] if self._times else None

    @property
    def last_ns(self) -> int | None:
        """Wall time (end) of the last transition."""
        return self._times[-1] if self._times else None

    @property
    def end_times(self) -> array[int]:
        """End wall times of all transitions, in order (do not modify)."""
        return self._times

    def errors(self) -> list[int]:
        """Numbers of transitions after which Exception or an Err* state was active."""
        return [i + 1 for i, f in enumerate(self._flags) if f & FLAG_ERROR]

    def number_at(self, wall_ns: int) -> int:
        """How many transitions had ended at `wall_ns` (0 = none yet)."""
        return bisect_right(self._times, wall_ns)

    def _check(self, n: int) -> int:
        if not isinstance(n, int) or not 1 <= n <= len(self._offsets):
            raise IndexError(f"machine {self.key} has no transition {n} "
                             f"(1..{len(self._offsets)})")
        return n - 1

    def summary(self, n: int) -> TransitionSummary:
        """Flags, sequence number and end time of transition `n`, straight from the index."""
        pos = self._check(n)
        f = self._flags[pos]
        mm = self._file.mm
        assert mm is not None
        seq = FRAME_HEADER.unpack_from(mm, self._offsets[pos])[5]
        return TransitionSummary(n, seq, self._times[pos], bool(f & FLAG_ACCEPTED),
                                 bool(f & FLAG_AUTO), bool(f & FLAG_CHECK),
                                 bool(f & FLAG_HEALTH), bool(f & FLAG_ERROR),
                                 bool(f & FLAG_FULL_CLOCK), not f & FLAG_CHANGED)

    # --- decoding ---

    def _body(self, pos: int) -> tuple[tuple[int, ...], list[Any]]:
        return self._file.frame(self._offsets[pos], _TX)

    def _apply(self, clock: list[int], hdr: tuple[int, ...], body: list[Any]) -> list[int]:
        k = _ints(_at(body, TX_K, list), "k")
        if hdr[2] & FLAG_FULL_CLOCK:
            return list(k)
        if len(k) % 2:
            raise ValueError("clock delta has odd length")
        out = list(clock)
        for i in range(0, len(k), 2):
            idx = k[i]
            if not 0 <= idx < len(out):
                raise ValueError(f"clock delta index {idx} out of range")
            out[idx] = k[i + 1]
        return out

    def _walk(self, pos: int) -> tuple[list[int], list[int] | None, tuple[int, ...],
                                        list[Any]]:
        """(after, after of pos-1 if known, header, body) of `pos`, replaying from a full clock.

        Starts at the nearest full clock at or before `pos`, or at the cached position when
        that is closer, so sequential access decodes one record per step.
        """
        flags = self._flags
        cp, cached = self._cache_pos, self._cache_clock
        known: list[int] | None = cached if cp == pos - 1 else None
        start = pos
        clock: list[int] | None = None
        while not flags[start] & FLAG_FULL_CLOCK:  # back to a full clock (<= 63 frames)
            if start - 1 == cp:
                clock = cached
                break
            if start == 0:
                break
            start -= 1
        if clock is None:
            clock = [0] * len(self.schema_at(start + 1).state_names)
        off = self._offsets[start]
        try:
            for p in range(start, pos + 1):
                off = self._offsets[p]
                hdr, body = self._file.frame(off, _TX)
                if p == pos and p > start:
                    known = clock
                clock = self._apply(clock, hdr, body)
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self._file.path, off) from None
        self._cache_pos, self._cache_clock = pos, clock
        return clock, known, hdr, body

    def _chain(self, pos: int) -> tuple[list[int], list[int], tuple[int, ...], list[Any]]:
        """(after, before, header, body) of position `pos`."""
        clock, prev, hdr, body = self._walk(pos)
        kb = body[TX_KB]
        if kb is not None:
            try:
                return clock, _ints(kb, "kb"), hdr, body
            except ValueError as err:
                raise RecordingError(f"corrupt record: {err}", self._file.path,
                                     self._offsets[pos]) from None
        if prev is None:  # a full clock without `kb`: before = the previous one's after
            prev = self._walk(pos - 1)[0] if pos > 0 else [0] * len(clock)
            self._cache_pos, self._cache_clock = pos, clock
        return clock, prev, hdr, body

    def time_at(self, n: int) -> list[int]:
        """Ticks (in `schema_at(n).state_names` order) after transition `n`."""
        return list(self._walk(self._check(n))[0])

    def clock_at(self, n: int) -> dict[str, int]:
        """{state: tick} after transition `n`."""
        names = self.schema_at(n).state_names
        return dict(zip(names, self.time_at(n), strict=False))

    def _record(self, pos: int, after: list[int], before: list[int], hdr: tuple[int, ...],
                body: list[Any]) -> TransitionRecord:
        off = self._offsets[pos]
        try:
            schema = self.schema_at(pos + 1)
            names = schema.state_names
            name = _Names(names)
            flags = hdr[2]
            lp = schema.log_prefix
            return TransitionRecord(
                machine=self.key, machine_id=self.id, number=pos + 1, seq=hdr[5],
                id=_tx_id(hdr, body), type=_mtype(_at(body, TX_MT, int)),
                called=[name(c) for c in _at(body, TX_CALLED, list)],
                args=_str_map(_at(body, TX_ARGS, dict, {}), "args"),
                accepted=bool(flags & FLAG_ACCEPTED), is_auto=bool(flags & FLAG_AUTO),
                is_check=bool(flags & FLAG_CHECK), is_health=bool(flags & FLAG_HEALTH),
                is_error=bool(flags & FLAG_ERROR),
                queue_tick=_at(body, TX_QT, int, body[TX_MQ] or 0),
                mutation_queue_tick=_at(body, TX_MQ, int, 0),
                queue_len=_at(body, TX_QL, int, 0),
                start_ns=hdr[6] - _at(body, TX_DURATION, int, 0), end_ns=hdr[6],
                state_names=names, time_before=list(before), time_after=list(after),
                steps=_steps(_at(body, TX_STEPS, list, []), body[TX_STEP_TIMES], name),
                log=_lines(body[TX_LOG], "log", lp),
                pre_log=_lines(body[TX_PRELOG], "pre_log", lp),
                source=_source(body[TX_SRC]), truncated=body[TX_FLAT_TRUNCATED] is True,
                file=self._file.path, offset=off,
            )
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self._file.path, off) from None

    def transition(self, n: int) -> TransitionRecord:
        """Transition `n` (1-based), decoded; IndexError when out of range."""
        pos = self._check(n)
        after, before, hdr, body = self._chain(pos)
        return self._record(pos, after, before, hdr, body)

    def transitions(self, start: int = 1, stop: int | None = None) -> Iterator[TransitionRecord]:
        """Transitions `start`..`stop` (inclusive, 1-based), decoded one at a time."""
        stop = len(self._offsets) if stop is None else min(stop, len(self._offsets))
        for n in range(max(start, 1), stop + 1):
            yield self.transition(n)  # sequential: the clock cache makes this O(1) per step

    def __iter__(self) -> Iterator[TransitionRecord]:
        return self.transitions()

    def transition_by_id(self, tx_id: str) -> TransitionRecord | None:
        """The transition with this id, or None (the index holds id hashes; bodies confirm)."""
        h = id_hash(tx_id)
        txh = self._txh
        pos = -1
        while True:
            try:
                pos = txh.index(h, pos + 1)
            except ValueError:
                return None
            try:
                hdr, body = self._body(pos)
                found = _tx_id(hdr, body) == tx_id
            except (RecordingError, ValueError):
                continue
            if found:
                return self.transition(pos + 1)

    def state_at(self, wall_ns: int) -> MachineState:
        """This machine's clock after the last transition that ended at or before `wall_ns`."""
        n = bisect_right(self._times, wall_ns)
        disposed = self.disposed_ns is not None and self.disposed_ns <= wall_ns
        if n:
            after = self._walk(n - 1)[0]
            return MachineState(self.key, n, self._times[n - 1],
                                self.schema_at(n).state_names, list(after), disposed)
        names = self.schemas[0].state_names
        time = [0] * len(names)
        if self._offsets:
            before = self._chain(0)[1]
            if len(before) == len(names):
                time = list(before)
        return MachineState(self.key, 0, self.created_ns, names, time, disposed)

    # --- queued mutations ---

    @property
    def queued_count(self) -> int:
        """Number of queued-mutation records."""
        return len(self._q_offsets)

    def queued(self) -> list[QueuedRecord]:
        """Every queued-mutation record of this machine, decoded, in file order."""
        return [self._queued(i) for i in range(len(self._q_offsets))]

    def _queued(self, i: int) -> QueuedRecord:
        off = self._q_offsets[i]
        hdr, body = self._file.frame(off, _QUEUED)
        try:
            names = self.schemas[-1].state_names
            pos = bisect_right(self._times, hdr[6])
            if pos:
                names = self.schema_at(pos).state_names
            name = _Names(names)
            flags = hdr[2]
            return QueuedRecord(
                machine=self.key, machine_id=self.id, wall_ns=hdr[6],
                type=_mtype(_get(body, "mt", int)),
                called=[name(c) for c in _get(body, "c", list)],
                args=_str_map(_get(body, "a", dict, {}), "a"),
                queue_tick=_get(body, "qt", int, 0), queue_tick_now=_get(body, "qn", int, 0),
                queue_len=_get(body, "ql", int, 0), is_auto=bool(flags & FLAG_AUTO),
                is_check=bool(flags & FLAG_CHECK), prepended=bool(flags & FLAG_PREPENDED),
                tx_id=_get(body, "tx", str, ""), source=_source(body.get("src")),
                file=self._file.path, offset=off)
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self._file.path, off) from None


# ---------------------------------------------------------------------- recording


class Recording:
    """All machines of a recording file or directory, merged; see the module docstring."""

    def __init__(self, path: Path, verify: bool = True) -> None:
        self.path = path
        self.verify = verify
        self.machines: list[RecordedMachine] = []
        self.corruption: list[Corruption] = []
        self._segments: list[_Segment] = []
        self._files: list[_File] = []
        self._by_key: dict[str, RecordedMachine] = {}
        #: machines by id, in creation order (ids repeat across runs)
        self._by_id: dict[str, list[RecordedMachine]] = {}

    # --- opening ---

    def _load(self, files: list[Path], single: bool) -> None:
        first_error: RecordingError | None = None
        for p in files:
            try:
                f = _File(p)
            except RecordingError as err:
                if single:
                    raise
                first_error = first_error or err
                self.corruption.append(Corruption(str(p), 0, err.reason))
                continue
            self._files.append(f)
            try:
                self._index(f)
            except RecordingError as err:
                if single or isinstance(err, NewerFormatError):
                    self.close()
                    raise
                first_error = first_error or err
                self.corruption.append(Corruption(f.path, err.offset or 0, err.reason))
        if not self._segments:
            self.close()
            if first_error is not None:
                raise first_error
            raise RecordingError("no readable recording segment", str(self.path))
        order = {id(f): i for i, f in enumerate(self._files)}
        self.machines.sort(key=lambda m: (m.created_ns, order[id(m._file)], m.mno))
        for m in self.machines:
            same = self._by_id.setdefault(m.id, [])
            same.append(m)
            m.key = m.id if len(same) == 1 else f"{m.id}#{len(same)}"
            self._by_key[m.key] = m

    def _segment_header(self, f: _File, off: int) -> tuple[_Segment, int]:
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
            process = ProcessInfo(
                host=_get(head, "host", str, ""), pid=_get(head, "pid", int, 0),
                argv0=_get(head, "argv0", str, ""), start_ns=_get(head, "start_ns", int, 0),
                file=f.path, offset=off, version=(major, minor),
                extra={k: v for k, v in head.items()
                       if k not in ("host", "pid", "argv0", "start_ns", "format", "major",
                                    "minor")})
        except ValueError as err:
            raise RecordingError(f"corrupt segment header: {err}", f.path, off) from None
        seg = _Segment(f, off, end + CRC.size, process)
        self._segments.append(seg)
        return seg, end + CRC.size

    def _check_at(self, f: _File, off: int) -> tuple[int, ...] | None:
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

    @staticmethod
    def _salvage(f: _File, frames: list[tuple[int, ...]]) -> int:
        """How many of a damaged block's leading frames decode as valid records."""
        for i, (off, kind, *_rest) in enumerate(frames):
            if kind not in (_TX, _SCHEMA, _DISPOSE, _QUEUED):
                return i
            try:
                f.frame(off, kind)
            except RecordingError:
                return i
        return len(frames)

    def _resync(self, f: _File, off: int) -> tuple[int, tuple[int, ...] | None]:
        """The next offset after `off` where a genuine check record or a segment header starts,
        with the check record's fields (None for a segment header); (size, None) if none.

        Linear in the bytes skipped: the next segment magic is searched once (and remembered by
        the file, see `_File.next_magic`), check records only up to it, and only candidates
        whose first 8 bytes are those of a check record are verified."""
        mm = f.mm
        assert mm is not None
        magic = f.next_magic(off + 1)
        end = f.size if magic < 0 else magic
        find = mm.find
        crc32 = zlib.crc32
        unpack_crc = CRC.unpack_from
        body = _CS - CRC.size
        pos = find(_CHECK_PREFIX, off + 1, end)
        while pos >= 0:
            if pos + _CS <= f.size and crc32(mm[pos:pos + body]) == unpack_crc(mm, pos + body)[0]:
                return pos, CHECK.unpack_from(mm, pos)
            pos = find(_CHECK_PREFIX, pos + 1, end)
        return (f.size, None) if magic < 0 else (magic, None)

    def _index(self, f: _File) -> None:
        """The first pass: walk the frames block by block, verify each block's CRC-32 at its
        check record, and feed the frames of good blocks to the per-machine index arrays."""
        mm = f.mm
        path = f.path
        size = f.size
        if mm is None or size == 0:
            raise RecordingError("empty file, not an amnode recording", path)
        if mm[:len(MAGIC)] != MAGIC:
            raise RecordingError("not an amnode recording (no AMREC header)", path)
        seg, off = self._segment_header(f, 0)
        unpack = FRAME_HEADER.unpack_from
        crc32 = zlib.crc32
        verify = self.verify
        mark_ok, check = FRAME_MARK, _CHECK
        slots: dict[int, tuple[Any, ...]] = {}
        run_start = off  # start of the current run of good bytes (see `segments`, `pack`)
        block = off  # start of the current block
        pending: list[tuple[int, ...]] = []  # header fields of the block's frames so far

        def commit() -> None:
            """Index the pending frames: a verified block, or the complete frames of a block
            whose check record was never written (a torn last write)."""
            for p_off, kind, flags, _n, mno, seq, wall, txh in pending:
                if kind == _TX:
                    slot = slots.get(mno)
                    if slot is None:
                        self.corruption.append(Corruption(
                            path, p_off, f"transition of unknown machine {mno}"))
                        continue
                    m = slot[0]
                    if seq != m._last_seq + 1 and m._last_seq:
                        m.gaps.append(len(m._offsets) + 1)
                    m._last_seq = seq
                    if flags & FLAG_ERROR:
                        m.error_count += 1
                    slot[1](p_off)
                    slot[2](wall)
                    slot[3](flags)
                    slot[4](txh)
                elif kind in (_SCHEMA, _DISPOSE, _QUEUED):
                    self._other(f, seg, slots, p_off, kind, mno, wall)
            pending.clear()

        def corrupt(at: int, reason: str) -> int:
            """Report damage in the block holding `at` and return where reading goes on. The
            block's leading frames that still decode are kept (unverified: the block's CRC
            covers the damage too); the rest of the block is dropped."""
            nonlocal run_start, block
            if run_start < block:
                seg.ranges.append([run_start, block])
            good = self._salvage(f, pending)
            bad = pending[good][0] if good < len(pending) else at
            if good:
                del pending[good:]
                commit()
                # pack() closes these frames with a fresh check record (the third field)
                seg.ranges.append([block, bad, good])
                reason += f"; {good} record(s) before it kept unverified"
            pending.clear()
            nxt, rec = self._resync(f, at)
            if rec is not None:
                start = nxt - rec[7]
                # a later block that starts after the damage is kept; else skip the damaged
                # block's own check record too
                nxt = start if at < start and block <= start else nxt + _CS
            self.corruption.append(Corruption(path, bad, reason, nxt - bad))
            run_start = block = nxt
            return nxt

        while off < size:
            if size - off < _HS:
                commit()
                if run_start < off:
                    seg.ranges.append([run_start, off])
                run_start = size
                self.corruption.append(Corruption(
                    path, off, f"{TORN_TAIL} ({size - off} bytes)", size - off))
                break
            hdr = unpack(mm, off)
            if hdr[0] != mark_ok:
                if mm[off:off + 8] == MAGIC:
                    commit()  # the previous segment ended without a check record
                    if run_start < off:
                        seg.ranges.append([run_start, off])
                    try:
                        seg, off = self._segment_header(f, off)
                    except NewerFormatError:
                        raise
                    except RecordingError as err:
                        block = off
                        off = corrupt(off, err.reason)
                        continue
                    slots = {}
                    run_start = block = off
                    continue
                off = corrupt(off, "bad frame marker")
                continue
            if hdr[1] == check:
                rec = self._check_at(f, off)
                if rec is None:
                    if size - off < _CS:
                        commit()
                        if run_start < off:
                            seg.ranges.append([run_start, off])
                        run_start = size
                        self.corruption.append(Corruption(
                            path, off, f"{TORN_TAIL} ({size - off} bytes)",
                            size - off))
                        break
                    off = corrupt(off, "corrupt check record")
                    continue
                if verify and (rec[7] != off - block or crc32(mm[block:off]) != rec[5]):
                    off = corrupt(off, "checksum mismatch")
                    continue
                commit()
                off += _CS
                block = off
                continue
            n = hdr[3]
            end = off + _HS + n
            if n > MAX_BODY:
                off = corrupt(off, f"frame length {n} exceeds the limit")
                continue
            if end > size:
                if self._resync(f, off)[0] < size:
                    off = corrupt(off, f"frame length {n} runs past a later record")
                    continue
                commit()  # complete frames of a block whose check record was not written
                if run_start < off:
                    seg.ranges.append([run_start, off])
                run_start = size
                self.corruption.append(Corruption(
                    path, off, f"{TORN_TAIL} ({size - off} of "
                    f"{end - off} bytes)", size - off))
                break
            pending.append((off, *hdr[1:]))
            off = end
        else:
            commit()
        if run_start < min(off, size):
            seg.ranges.append([run_start, min(off, size)])

    def _other(self, f: _File, seg: _Segment, slots: dict[int, tuple[Any, ...]], off: int,
               kind: int, mno: int, wall: int) -> None:
        """Schema, dispose and queued frames (rare): decode schema/dispose bodies right away."""
        slot = slots.get(mno)
        if kind == _QUEUED:
            if slot is None:
                self.corruption.append(Corruption(f.path, off, f"queued record of unknown "
                                                  f"machine {mno}"))
                return
            slot[0]._q_offsets.append(off)
            slot[0]._q_times.append(wall)
            return
        try:
            _, body = f.frame(off, kind)
            if kind == _DISPOSE:
                if slot is None:
                    raise ValueError(f"dispose of unknown machine {mno}")
                m = slot[0]
                m.disposed = True
                m.disposed_ns = wall
                m.dispose_log = _lines(body.get("l"), "l", m.schemas[-1].log_prefix)
                return
            mid = _get(body, "id", str)
            if slot is None:
                m = RecordedMachine(f, seg.process, mno, mid, wall,
                                    _schema_version(body, 1, wall))
                self.machines.append(m)
                slots[mno] = (m, m._offsets.append, m._times.append, m._flags.append,
                              m._txh.append)
            else:
                m = slot[0]
                first = len(m._offsets) + 1
                version = _schema_version(body, first, wall)
                if m._schema_starts[-1] == first - 1:
                    m.schemas[-1] = version  # no transition in between: replace
                else:
                    m.schemas.append(version)
                    m._schema_starts.append(first - 1)
        except (ValueError, RecordingError) as err:
            reason = err.reason if isinstance(err, RecordingError) else f"corrupt record: {err}"
            self.corruption.append(Corruption(f.path, off, reason))

    # --- queries ---

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Unmap every file (records decoded so far stay usable)."""
        for f in self._files:
            f.close()

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, machines={len(self.machines)})"

    @property
    def processes(self) -> list[ProcessInfo]:
        """Every process (segment) in the recording, in file order."""
        return [s.process for s in self._segments]

    def segments(self) -> list[tuple[str, int, int, list[list[int]]]]:
        """(file, segment offset, header end, valid frame ranges) per segment; used by `pack`.

        A range is `[start, end]`, or `[start, end, frames]` for frames salvaged from a damaged
        block, which a copy must close with a new check record (see `format.encode_check`).
        """
        return [(s.file.path, s.offset, s.header_end, [list(r) for r in s.ranges])
                for s in self._segments]

    @property
    def transition_count(self) -> int:
        """Transitions of all machines."""
        return sum(len(m) for m in self.machines)

    @property
    def first_ns(self) -> int | None:
        """Earliest machine creation time."""
        return min((m.created_ns for m in self.machines), default=None)

    @property
    def last_ns(self) -> int | None:
        """Latest transition end time."""
        return max((m.last_ns for m in self.machines if m.last_ns is not None), default=None)

    def machine(self, key: str) -> RecordedMachine:
        """The machine with this key, or else the first one with this id; KeyError otherwise."""
        m = self._by_key.get(key)
        if m is not None:
            return m
        same = self._by_id.get(key)
        if same:
            return same[0]
        raise KeyError(f"no machine {key!r} in {self.path}")

    def parent(self, machine: RecordedMachine) -> RecordedMachine | None:
        """The recorded machine `machine.parent` names, or None (no parent, or not recorded).

        Ids repeat across runs (`id#2`): a namesake in the same process comes first, then the
        latest one created before `machine` (a parent in another process, e.g. after a fork).
        """
        if not machine.parent:
            return None
        found = [m for m in self._by_id.get(machine.parent, ()) if m is not machine]
        if not found:
            return None
        for m in found:
            if m.process is machine.process:
                return m
        earlier = [m for m in found if m.created_ns <= machine.created_ns]
        return earlier[-1] if earlier else found[0]

    def children(self, machine: RecordedMachine) -> list[RecordedMachine]:
        """Machines whose `parent()` is `machine`, in creation order."""
        return [m for m in self.machines
                if m.parent == machine.id and m is not machine and self.parent(m) is machine]

    def find_machines(self, part: str) -> list[RecordedMachine]:
        """Exact key, else every machine with that exact id, else every key containing `part`."""
        if part in self._by_key:
            return [self._by_key[part]]
        same = self._by_id.get(part)
        return list(same) if same else [m for m in self.machines if part in m.key]

    def transition_by_id(self, tx_id: str) -> TransitionRecord | None:
        """The transition with this id in any machine, or None."""
        for m in self.machines:
            tx = m.transition_by_id(tx_id)
            if tx is not None:
                return tx
        return None

    def state_at(self, wall_ns: int) -> dict[str, MachineState]:
        """Every machine that existed at `wall_ns`, with its clock at that moment."""
        return {m.key: m.state_at(wall_ns) for m in self.machines if m.created_ns <= wall_ns}

    def timeline(self, start_ns: int | None = None, end_ns: int | None = None
                 ) -> Iterator[tuple[int, RecordedMachine, int]]:
        """(end wall ns, machine, number) of every transition in time order, lazily merged."""
        def one(order: int, m: RecordedMachine) -> Iterator[tuple[int, int, int]]:
            times = m._times
            lo = 0 if start_ns is None else bisect_right(times, start_ns - 1)
            hi = len(times) if end_ns is None else bisect_right(times, end_ns)
            for i in range(lo, hi):
                yield times[i], order, i + 1

        machines = self.machines
        for t, order, n in heapq.merge(*(one(i, m) for i, m in enumerate(machines))):
            yield t, machines[order], n


def _recording_files(path: Path) -> list[Path]:
    try:
        entries = sorted(p for p in path.iterdir() if p.suffix == FILE_SUFFIX and p.is_file())
    except OSError as err:
        raise RecordingError(f"cannot list directory: {err.strerror or err}", str(path)) from None
    if not entries:
        raise RecordingError(f"no recording files (*{FILE_SUFFIX}) in this directory", str(path))
    return entries


def open_recording(path: str | os.PathLike[str], *, verify: bool = True) -> Recording:
    """Open a recording file or directory, index it, and return the merged `Recording`.

    `verify=False` skips CRC checks in the first pass (faster; torn tails are still found).
    Raises `RecordingError` when nothing readable is there; damaged parts of otherwise
    readable files are listed in `Recording.corruption` instead.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError("no such file or directory", str(p))
    rec = Recording(p, verify)
    if p.is_dir():
        rec._load(_recording_files(p), single=False)
    else:
        rec._load([p], single=True)
    return rec


__all__ = ["RecordedMachine", "Recording", "open_recording"]
