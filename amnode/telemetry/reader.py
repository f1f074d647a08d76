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
    m.unverified                              # numbers of transitions no check record covered

Public API (everything else is private):

- `open_recording(path, *, verify=True, follow=False) -> Recording`; raises `RecordingError`
  (one-line str;
  `NewerFormatError` for a newer major version) for a missing path, a directory without
  `*.amrec` files, a file that is not a recording (or not a regular file), or a file with no
  readable segment.
- `Recording`: `path`, `machines` (ordered by creation), `processes`, `corruption`,
  `transition_count`, `first_ns`, `last_ns`, `machine(key)`, `find_machines(part)`,
  `parent(machine)`, `children(machine)`, `transition_by_id(tx_id)`, `state_at(wall_ns)`,
  `timeline(start_ns=None, end_ns=None)`, `segments()`, `resync_bytes`, `close()`; a context
  manager. Growing recordings (files still being written, live streams): `growing`,
  `refresh() -> Growth`, `Recording.live(label)`, `add_stream(name, limit)`,
  `feed(stream, data)`, `end_stream(stream, reason)`, `streams`.
- `RecordedMachine`: `key` (unique in the recording: the id, or `id#2`, `id#3` when several
  machines share an id), `id`, `parent`, `tags`, `state_names`, `schema`, `groups`,
  `groups_order` (all of the latest schema), `live`, `end_reason`, `schemas`, `schema_at(n)`,
  `process`, `file`,
  `created_ns`, `first_ns`, `last_ns`, `transition_count` / `len()`, `error_count`, `errors()`,
  `disposed`, `disposed_ns`, `dispose_log`, `gaps`, `end_times`, `summary(n)`,
  `transition(n)`, `transition_by_id(tx_id)`, `transitions(start=1, stop=None)` / `iter()`,
  `sources(start=1, stop=None)`,
  `clock_at(n)`, `time_at(n)`, `number_at(wall_ns)`, `state_at(wall_ns)`, `queued_count`,
  `queued()`, `unverified`, `is_unverified(n)`, `unverified_records`, `dispose_unverified`.
- Value types (`records.py`): `TransitionRecord`, `TransitionSummary`, `StepRecord`, `LogLine`,
  `Source`, `QueuedRecord`, `MachineState`, `SchemaVersion`, `ProcessInfo`, `Corruption`.

Transition numbers `n` are 1-based positions within a machine; `TransitionRecord.seq` is the
number the recorded process gave it (they differ only after lost records, see `gaps`).
Times are wall-clock ns. Out-of-range numbers raise `TransitionRangeError` (an IndexError),
unknown keys `UnknownMachineError` (a KeyError), and a record that fails to decode raises
`RecordingError` naming the file and offset; all are `amnode.AmnodeError`s.

Unverified records (docs/recording-format.md §7): records no valid check record covered (a
torn tail, the readable start of a damaged block, frames after a SALVAGED note) are read like
the others but carry `unverified=True`, because their bytes were never checked.

The first pass itself is `scan.Scanner` (building the `MachineIndex` this module's
`RecordedMachine` extends); bodies are decoded by `decode.py`.

Memory: per transition the index keeps 25 bytes (offset, end time, id hash, flags); files are
memory-mapped and records are decoded only when asked for, with a one-entry clock cache per
machine that makes sequential access O(1) per step.
"""

from __future__ import annotations

import heapq
import os
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from types import TracebackType
from typing import Any

from .decode import (
    TX_ARGS,
    TX_CALLED,
    TX_DURATION,
    TX_FAIL,
    TX_FLAT_TRUNCATED,
    TX_K,
    TX_KB,
    TX_LOG,
    TX_MQ,
    TX_MT,
    TX_PRELOG,
    TX_QL,
    TX_QT,
    TX_SRC,
    TX_STEP_TIMES,
    TX_STEPS,
    StateNames,
    element,
    field,
    int_list,
    log_lines,
    mutation_type,
    str_map,
)
from .decode import failure as failure_of
from .decode import source as source_of
from .decode import steps as steps_of
from .decode import tx_id as tx_id_of
from .errors import NewerFormatError, RecordingError, TransitionRangeError, UnknownMachineError
from .format import (
    FILE_SUFFIX,
    FLAG_ACCEPTED,
    FLAG_AUTO,
    FLAG_CHANGED,
    FLAG_CHECK,
    FLAG_ERROR,
    FLAG_FULL_CLOCK,
    FLAG_HEALTH,
    FLAG_PREPENDED,
    FRAME_HEADER,
    Kind,
    id_hash,
)
from .records import (
    Corruption,
    MachineState,
    ProcessInfo,
    QueuedRecord,
    SchemaVersion,
    Source,
    TransitionRecord,
    TransitionSummary,
    UnverifiedSummary,
)
from .scan import MachineIndex, MappedFile, Scanner, Segment, StreamBuffer, StreamDamageError

_TX = int(Kind.TRANSITION)
_QUEUED = int(Kind.QUEUED)


# ---------------------------------------------------------------------- machines


class RecordedMachine(MachineIndex):
    """One recorded machine: schema versions plus an index of its transitions (1-based)."""

    def __init__(self, file: MappedFile, process: ProcessInfo, mno: int, machine_id: str,
                 created_ns: int, schema: SchemaVersion) -> None:
        super().__init__(file, process, mno, machine_id, created_ns, schema)
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
    def live(self) -> bool | None:
        """Whether the machine's source may still grow: None for a finished file, True while
        its live stream is connected (or its file is followed), False once the stream ended
        (its process exited, or the connection was lost: disconnected)."""
        state = self._file.state
        return None if state == "file" else state == "growing"

    @property
    def end_reason(self) -> str:
        """Why the machine's live stream ended ("" while connected or for a file)."""
        return self._file.end_reason

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
        return self._header_wall(0) if self._offsets else None

    @property
    def last_ns(self) -> int | None:
        """Wall time (end) of the last transition."""
        return self._header_wall(len(self._offsets) - 1) if self._offsets else None

    @property
    def end_times(self) -> array[int]:
        """End wall times of all transitions, in order (do not modify)."""
        return self._times

    def errors(self) -> list[int]:
        """Numbers of transitions after which Exception or an Err* state was active."""
        return [i + 1 for i, f in enumerate(self._flags) if f & FLAG_ERROR]

    @property
    def unverified(self) -> list[int]:
        """Numbers of the transitions no valid check record covered (a torn tail, or kept from
        a damaged block): their bytes were never checked (docs/recording-format.md §7)."""
        return [pos + 1 for pos in self._unverified]

    @property
    def unverified_records(self) -> int:
        """How many of this machine's records (transitions, queued mutations, schema versions,
        the disposal) are unverified."""
        return (len(self._unverified) + len(self._q_unverified)
                + sum(v.unverified for v in self.schemas) + self.dispose_unverified)

    def is_unverified(self, n: int) -> bool:
        """True when transition `n` is unverified (see `unverified`)."""
        u = self._unverified
        if not u:
            return False
        i = bisect_left(u, n - 1)
        return i < len(u) and u[i] == n - 1

    def number_at(self, wall_ns: int) -> int:
        """How many transitions had ended at `wall_ns` (0 = none yet)."""
        return self._times_right(wall_ns)

    def _check(self, n: int) -> int:
        if not isinstance(n, int) or not 1 <= n <= len(self._offsets):
            raise TransitionRangeError(f"machine {self.key} has no transition {n} "
                             f"(1..{len(self._offsets)})")
        return n - 1

    def summary(self, n: int) -> TransitionSummary:
        """Flags, sequence number and end time of transition `n`, straight from the index."""
        pos = self._check(n)
        mm = self._file.mm
        assert mm is not None
        # the header holds flags and time too: no need to fill the index arrays for them
        _, _, f, _, _, seq, wall, _ = FRAME_HEADER.unpack_from(mm, self._offsets[pos])
        cls = UnverifiedSummary if self._unverified and self.is_unverified(n) else \
            TransitionSummary
        return cls(n, seq, wall, bool(f & FLAG_ACCEPTED), bool(f & FLAG_AUTO),
                   bool(f & FLAG_CHECK), bool(f & FLAG_HEALTH), bool(f & FLAG_ERROR),
                   bool(f & FLAG_FULL_CLOCK), not f & FLAG_CHANGED)

    # --- decoding ---

    def _body(self, pos: int) -> tuple[tuple[int, ...], list[Any]]:
        return self._file.frame(self._offsets[pos], _TX)

    def _apply(self, clock: list[int], hdr: tuple[int, ...], body: list[Any]) -> list[int]:
        k = int_list(element(body, TX_K, list), "k")
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
        flag_at = self._flag_at  # a few frames: no need to fill the flags array
        cp, cached = self._cache_pos, self._cache_clock
        known: list[int] | None = cached if cp == pos - 1 else None
        start = pos
        clock: list[int] | None = None
        while not flag_at(start) & FLAG_FULL_CLOCK:  # back to a full clock (<= 63 frames)
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
                return clock, int_list(kb, "kb"), hdr, body
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
            name = StateNames(names)
            flags = hdr[2]
            lp = schema.log_prefix
            return TransitionRecord(
                machine=self.key, machine_id=self.id, number=pos + 1, seq=hdr[5],
                id=tx_id_of(hdr, body), type=mutation_type(element(body, TX_MT, int)),
                called=[name(c) for c in element(body, TX_CALLED, list)],
                args=str_map(element(body, TX_ARGS, dict, {}), "args"),
                accepted=bool(flags & FLAG_ACCEPTED), is_auto=bool(flags & FLAG_AUTO),
                is_check=bool(flags & FLAG_CHECK), is_health=bool(flags & FLAG_HEALTH),
                is_error=bool(flags & FLAG_ERROR),
                queue_tick=element(body, TX_QT, int, body[TX_MQ] or 0),
                mutation_queue_tick=element(body, TX_MQ, int, 0),
                queue_len=element(body, TX_QL, int, 0),
                start_ns=hdr[6] - element(body, TX_DURATION, int, 0), end_ns=hdr[6],
                state_names=names, time_before=list(before), time_after=list(after),
                steps=steps_of(element(body, TX_STEPS, list, []), body[TX_STEP_TIMES], name),
                log=log_lines(body[TX_LOG], "log", lp),
                pre_log=log_lines(body[TX_PRELOG], "pre_log", lp),
                source=source_of(body[TX_SRC]), truncated=body[TX_FLAT_TRUNCATED] is True,
                file=self._file.path, offset=off,
                unverified=bool(self._unverified) and self.is_unverified(pos + 1),
                failure=failure_of(body[TX_FAIL]),
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

    def sources(self, start: int = 1, stop: int | None = None
                ) -> Iterator[tuple[int, Source | None]]:
        """(number, source) of transitions `start`..`stop`, decoding only the body (no clock
        replay, steps or log lines): about 15x cheaper than `transitions()` for causal links."""
        stop = len(self._offsets) if stop is None else min(stop, len(self._offsets))
        frame, offsets = self._file.frame, self._offsets
        for pos in range(max(start, 1) - 1, stop):
            body = frame(offsets[pos], _TX)[1]
            try:
                yield pos + 1, source_of(body[TX_SRC])
            except ValueError as err:
                raise RecordingError(f"corrupt record: {err}", self._file.path,
                                     offsets[pos]) from None

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
                found = tx_id_of(hdr, body) == tx_id
            except (RecordingError, ValueError):
                continue
            if found:
                return self.transition(pos + 1)

    def state_at(self, wall_ns: int) -> MachineState:
        """This machine's clock after the last transition that ended at or before `wall_ns`."""
        n = self._times_right(wall_ns)
        disposed = self.disposed_ns is not None and self.disposed_ns <= wall_ns
        if n:
            after = self._walk(n - 1)[0]
            return MachineState(self.key, n, self._wall_at(n - 1),
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
            pos = self._times_right(hdr[6])
            if pos:
                names = self.schema_at(pos).state_names
            name = StateNames(names)
            flags = hdr[2]
            return QueuedRecord(
                machine=self.key, machine_id=self.id, wall_ns=hdr[6],
                type=mutation_type(field(body, "mt", int)),
                called=[name(c) for c in field(body, "c", list)],
                args=str_map(field(body, "a", dict, {}), "a"),
                queue_tick=field(body, "qt", int, 0), queue_tick_now=field(body, "qn", int, 0),
                queue_len=field(body, "ql", int, 0), is_auto=bool(flags & FLAG_AUTO),
                is_check=bool(flags & FLAG_CHECK), prepended=bool(flags & FLAG_PREPENDED),
                tx_id=field(body, "tx", str, ""), source=source_of(body.get("src")),
                file=self._file.path, offset=off, unverified=i in self._q_unverified)
        except ValueError as err:
            raise RecordingError(f"corrupt record: {err}", self._file.path, off) from None


# ---------------------------------------------------------------------- recording


@dataclass(frozen=True, slots=True)
class Growth:
    """What `Recording.refresh()` found: machines seen for the first time, machines with new
    transitions (key -> how many they had before), damage found."""

    new_machines: list[RecordedMachine] = dc_field(default_factory=list)
    grown: dict[str, int] = dc_field(default_factory=dict)
    new_damage: list[Corruption] = dc_field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_machines or self.grown or self.new_damage)


class Recording:
    """All machines of a recording file or directory, merged; see the module docstring.

    A recording may grow while it is read (`growing`): files still being written
    (`open_recording(path, follow=True)`) or live streams (`Recording.live()` and
    `add_stream()`). `refresh()` indexes what arrived since the last call and says what
    changed; machines and transitions are only ever appended, so numbers and keys stay valid.
    """

    def __init__(self, path: Path, verify: bool = True) -> None:
        self.path = path
        self.verify = verify
        self.machines: list[RecordedMachine] = []
        self.corruption: list[Corruption] = []
        self._segments: list[Segment] = []
        self._files: list[MappedFile] = []
        self._by_key: dict[str, RecordedMachine] = {}
        #: machines by id, in creation order (ids repeat across runs)
        self._by_id: dict[str, list[RecordedMachine]] = {}
        #: scanners of the sources that may still grow
        self._scanners: list[Scanner] = []
        #: a followed directory: new files in it are picked up by `refresh()`
        self._follow_dir: Path | None = None
        #: machines keyed so far, and their transition counts at the last `refresh()`
        self._keyed = 0
        self._counts: list[int] = []
        self._reported = 0
        #: files are read as still being written (`open_recording(follow=True)`)
        self._follow = False

    @classmethod
    def live(cls, label: str, *, verify: bool = True) -> Recording:
        """An empty recording that live streams are added to (`add_stream`); `label` names it
        (e.g. the address attached to)."""
        return cls(Path(label), verify)

    @property
    def growing(self) -> bool:
        """True while a source may still grow (a followed file, a connected stream)."""
        return bool(self._scanners) or self._follow_dir is not None

    # --- opening ---

    def _load(self, files: list[Path], single: bool, follow: bool = False) -> None:
        self._follow = follow
        first_error: RecordingError | None = None
        for p in files:
            try:
                f = MappedFile(p)
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
        if not self._segments and not follow:
            self.close()
            if first_error is not None:
                raise first_error
            raise RecordingError("no readable recording segment", str(self.path))
        if not single and not follow:
            self._drop_repeated_segments()
        order = {id(f): i for i, f in enumerate(self._files)}
        self.machines.sort(key=lambda m: (m.created_ns, order[id(m._file)], m.mno))
        self._key_new()
        self._counts = [len(m) for m in self.machines]
        self._reported = len(self.machines)

    def _index(self, f: MappedFile) -> None:
        """The first pass over one file (see `scan.Scanner`); a followed file keeps its
        scanner, which `refresh()` resumes."""
        follow = self._follow
        sc = Scanner(f, verify=self.verify, new_machine=RecordedMachine, machines=self.machines,
                     segments=self._segments, corruption=self.corruption)
        if follow:
            f.state = "growing"
            self._scanners.append(sc)
        sc.scan(final=not follow)

    def _drop_repeated_segments(self) -> None:
        """A directory holding a pack (a file of several segments) and the files it was made
        from has those segments twice (same host, pid, start time and program): keep the
        source file's copy and drop the pack's, so no machine shows twice. Copies of one
        single-segment file are kept (they read as two runs: `id#2`)."""
        per_file: dict[int, int] = {}
        for seg in self._segments:
            per_file[id(seg.file)] = per_file.get(id(seg.file), 0) + 1
        groups: dict[tuple[str, int, int, str], list[Segment]] = {}
        for seg in self._segments:
            p = seg.process
            groups.setdefault((p.host, p.pid, p.start_ns, p.argv0), []).append(seg)
        dropped: set[int] = set()
        for same in groups.values():
            packed = [seg for seg in same if per_file[id(seg.file)] > 1]
            if len(same) < 2 or not packed:
                continue
            keep = next((seg for seg in same if per_file[id(seg.file)] == 1), same[0])
            dropped.update(id(seg) for seg in same if seg is not keep)
        if dropped:
            drop_processes = {id(seg.process) for seg in self._segments if id(seg) in dropped}
            self._segments[:] = [seg for seg in self._segments if id(seg) not in dropped]
            self.machines[:] = [m for m in self.machines
                                if id(m.process) not in drop_processes]

    def _key_new(self) -> None:
        """Give machines found since the last call their keys (`id`, `id#2`, ...)."""
        for m in self.machines[self._keyed:]:
            same = self._by_id.setdefault(m.id, [])
            same.append(m)
            m.key = m.id if len(same) == 1 else f"{m.id}#{len(same)}"
            self._by_key[m.key] = m
        self._keyed = len(self.machines)

    # --- growing ---

    def add_stream(self, name: str, limit: int) -> StreamBuffer:
        """A new live stream (one process's records, docs/recording-format.md "Live
        streams"): give it bytes with `feed()`, end it with `end_stream()`; at most `limit`
        bytes. Damage in a stream is not skipped: `feed()` raises and the stream ends."""
        f = StreamBuffer(name, limit)
        self._files.append(f)
        self._scanners.append(Scanner(
            f, verify=self.verify, new_machine=RecordedMachine, machines=self.machines,
            segments=self._segments, corruption=self.corruption, strict=True))
        return f

    def _scanner(self, f: MappedFile) -> Scanner | None:
        for sc in self._scanners:
            if sc.f is f:
                return sc
        return None

    def feed(self, stream: StreamBuffer, data: bytes) -> int:
        """Append `data` to a live stream and index it at once; returns the bytes of the
        stream's last block still waiting for its check record (a bound for the caller).
        Raises `RecordingError` for bytes that are not a recording (the stream ends; what
        was indexed before stays)."""
        sc = self._scanner(stream)
        if sc is None:
            raise RecordingError(f"stream ended ({stream.end_reason})", stream.path)
        try:
            stream.feed(data)
            sc.scan(final=False)
        except RecordingError as err:
            stream.end(f"damaged: {err.reason}" if isinstance(err, StreamDamageError)
                       else err.reason)
            self._finish(sc)
            raise
        finally:
            self._key_new()
        return sc.unclosed

    def end_stream(self, stream: StreamBuffer, reason: str = "closed") -> None:
        """The stream's connection closed: its incomplete tail is reported (kept unverified
        when it decodes), and its machines are marked disconnected (`RecordedMachine.live`)."""
        stream.end(reason)
        sc = self._scanner(stream)
        if sc is not None:
            self._finish(sc)
        self._key_new()

    def _finish(self, sc: Scanner) -> None:
        try:
            sc.scan(final=True)
        except RecordingError as err:
            if not any(c.offset == err.offset and c.file == err.path for c in self.corruption):
                self.corruption.append(Corruption(err.path, err.offset or 0, err.reason))
        finally:
            sc.done = True
            if sc in self._scanners:
                self._scanners.remove(sc)

    def refresh(self) -> Growth:
        """Index what the growing sources added since the last call (new files in a followed
        directory too) and return what changed since the last `refresh()`."""
        if self._follow_dir is not None:
            known = {f.path for f in self._files}
            try:
                fresh = [p for p in _recording_files(self._follow_dir) if str(p) not in known]
            except RecordingError:
                fresh = []
            for p in fresh:
                try:
                    f = MappedFile(p)
                except RecordingError:
                    continue  # e.g. not a regular file: skipped, as when opening
                self._files.append(f)
                try:
                    self._index(f)
                except RecordingError as err:
                    self.corruption.append(Corruption(f.path, err.offset or 0, err.reason))
        damage = len(self.corruption)
        for sc in list(self._scanners):
            f = sc.f
            if isinstance(f, StreamBuffer):
                continue  # indexed as it arrives (`feed`)
            f.refresh()
            try:
                sc.scan(final=False)
            except RecordingError as err:
                f.state, f.end_reason = "ended", err.reason
                self._scanners.remove(sc)
                self.corruption.append(Corruption(f.path, err.offset or 0, err.reason))
        self._key_new()
        machines = self.machines
        counts = self._counts
        grown = {m.key: counts[i] for i, m in enumerate(machines[:len(counts)])
                 if len(m) != counts[i]}
        new = machines[self._reported:]
        self._counts = [len(m) for m in machines]
        self._reported = len(machines)
        return Growth(new_machines=list(new), grown=grown,
                      new_damage=self.corruption[damage:])

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
    def streams(self) -> list[StreamBuffer]:
        """The live streams added (connected or ended), in the order they were added."""
        return [f for f in self._files if isinstance(f, StreamBuffer)]

    @property
    def processes(self) -> list[ProcessInfo]:
        """Every process (segment) in the recording, in file order."""
        return [s.process for s in self._segments]

    def segments(self) -> list[tuple[str, int, int, list[list[int]]]]:
        """(file, segment offset, header end, valid frame ranges) per segment; used by `pack`.

        A range is `[start, end]` (valid blocks, copied as they are), or `[start, end, frames]`
        for unverified frames (a torn tail, or kept from a damaged block), which a copy puts
        after a SALVAGED note and closes with a new check record, so they stay unverified.
        """
        return [(s.file.path, s.offset, s.header_end, [list(r) for r in s.ranges])
                for s in self._segments]

    @property
    def resync_bytes(self) -> int:
        """Bytes read while looking for the next readable record after damage (each damaged
        byte about once: see docs/recording-format.md §7); 0 for an intact recording."""
        return sum(f.resync_bytes for f in self._files)

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
        raise UnknownMachineError(f"no machine {key!r} in {self.path}")

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
    """The `*.amrec` entries of a directory, sorted (subdirectories skipped). Entries that are
    not regular files stay in the list: opening one reports it and skips it."""
    try:
        entries = sorted(p for p in path.iterdir() if p.suffix == FILE_SUFFIX and not p.is_dir())
    except OSError as err:
        raise RecordingError(f"cannot list directory: {err.strerror or err}", str(path)) from None
    if not entries:
        raise RecordingError(f"no recording files (*{FILE_SUFFIX}) in this directory", str(path))
    return entries


def open_recording(path: str | os.PathLike[str], *, verify: bool = True,
                   follow: bool = False) -> Recording:
    """Open a recording file or directory, index it, and return the merged `Recording`.

    `verify=False` skips CRC checks in the first pass (faster; torn tails are still found).
    `follow=True` reads a recording that is still being written: its incomplete tail waits
    for more bytes instead of being reported torn, and `Recording.refresh()` indexes what the
    writers add (and, for a directory, the files new processes create).
    Raises `RecordingError` when nothing readable is there; damaged parts of otherwise
    readable files are listed in `Recording.corruption` instead.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError("no such file or directory", str(p))
    rec = Recording(p, verify)
    if p.is_dir():
        if follow:
            rec._follow_dir = p
            try:
                files = _recording_files(p)
            except RecordingError:
                files = []  # the processes have not made their files yet
        else:
            files = _recording_files(p)
        rec._load(files, single=False, follow=follow)
    elif not follow and _is_compressed(p):  # a compressed pack (`*.amrec.gz`, see pack.py)
        plain = _inflate(p)
        try:
            rec._load([plain], single=True)
        finally:
            plain.unlink(missing_ok=True)  # mapped already: the data stays until close
        for f in rec._files:
            f.path = str(p)
    else:
        rec._load([p], single=True, follow=follow)
    return rec


def _is_compressed(path: Path) -> bool:
    from .pack import is_compressed  # pack imports this module
    return is_compressed(path)


def _inflate(path: Path) -> Path:
    from .pack import inflate
    return inflate(path)


__all__ = ["Growth", "RecordedMachine", "Recording", "open_recording"]
