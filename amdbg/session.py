"""The debugger's session model: one opened recording and every question a front end asks it.

UI-independent (no printing, no rich, no Textual): the CLI and the TUI both build on it.

    with Session.open("recordings/orders.amrec") as s:
        m = s.select_machine("1002")                  # full key, id, or a unique part
        sel = s.locate(address="mach://order-1002/3")  # -m / -t / mach:// resolution
        tx = s.transition(sel.machine, sel.number)
        for tx in s.transitions(m, TxFilter(canceled=True)): ...
        s.nearest(m, wall_ns)                          # last transition ended at or before

Every error is an `amdbg.errors.DbgError` with a one-line message; reading a damaged record
may also raise `amnode.telemetry.RecordingError` (one line as well).
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from amnode.telemetry import (
    Growth,
    QueuedRecord,
    RecordedMachine,
    Recording,
    RecordingError,
    TransitionRecord,
    mach_url,
    open_recording,
)
from amnode.telemetry.receiver import LiveRecording

from . import graph as graphs
from .address import MachAddress, is_address, parse_address, resolve_params
from .errors import AmbiguousMachineError, DbgError, SelectionError, UsageError
from .filters import TxFilter
from .times import parse_time_span

if TYPE_CHECKING:
    import networkx as nx

_INT = re.compile(r"-?\d+")

#: how long after a transition ends `forks()` looks for transitions it caused elsewhere
FORK_WINDOW_NS = 1_000_000_000
#: how many transitions `forks()` reads at most (keeps `show` fast on busy recordings)
FORK_MAX_SCAN = 5_000
#: machines with more queued-mutation records than this are not searched by `queued_for()`
QUEUED_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Selection:
    """A selected machine (maybe none yet) and a 1-based transition number (maybe none)."""

    machine: RecordedMachine | None
    number: int | None = None
    #: how the transition was chosen when not given explicitly ("last", "t=...", ...), or ""
    note: str = ""
    #: the transition's id when it was known while selecting (found by content), or ""
    tx_id: str = ""

    @property
    def key(self) -> str:
        """The machine key, "" when no machine is selected."""
        return self.machine.key if self.machine is not None else ""

    @property
    def url(self) -> str:
        """`mach://MACHINE_ID/TX_ID` when the transition id is known (no decoding), else ""."""
        if self.machine is None or not self.tx_id:
            return ""
        return mach_url(self.machine.id, self.tx_id)


@dataclass(slots=True)
class MachineNode:
    """One machine in the parent/child tree; `depth` 0 = a root."""

    machine: RecordedMachine
    depth: int
    children: list[MachineNode] = field(default_factory=list)


class Session:
    """An opened recording plus selection, filtering, lookup and graph queries over it."""

    def __init__(self, recording: Recording, live: LiveRecording | None = None) -> None:
        self.recording = recording
        #: the connections feeding a live recording (None for a recording read from files)
        self.live = live
        self._queued: dict[str, dict[int, QueuedRecord]] = {}
        #: one line each: what opening noticed (e.g. unknown fields of a Go export)
        self.warnings: list[str] = []
        #: why only part of the source could be read (a damaged Go export), "" otherwise
        self.source_damage = ""

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Session:
        """Open a recording file or directory, or a Go am-dbg export (`.gob.br`, detected by
        content and converted once, see amdbg.goexport); DbgError (one line) when unreadable."""
        from .goexport import open_go_export

        go = open_go_export(path)
        try:
            session = cls(open_recording(go.path if go is not None else path))
        except RecordingError as err:
            raise DbgError(str(err)) from err
        if go is not None:
            session.recording.path = Path(path)
            session.warnings = list(go.warnings)
            session.source_damage = go.damage
        return session

    @classmethod
    def from_live(cls, live: LiveRecording) -> Session:
        """A session over a live recording (it grows while the streams are connected)."""
        return cls(live.recording, live)

    @classmethod
    def follow(cls, path: str | os.PathLike[str]) -> Session:
        """A session over a recording still being written (`refresh()` reads what is new)."""
        try:
            return cls(open_recording(path, follow=True))
        except RecordingError as err:
            raise DbgError(str(err)) from err

    @property
    def growing(self) -> bool:
        """True while the recording may grow (live streams, a followed file)."""
        return self.recording.growing

    def refresh(self) -> Growth:
        """Read what a growing recording gained since the last call (see `Recording.refresh`)."""
        growth = self.recording.refresh()
        for key in growth.grown:
            self._queued.pop(key, None)
        return growth

    def close(self) -> None:
        """Release the recording's files."""
        self.recording.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ the recording

    @property
    def path(self) -> str:
        """The recording's path as given."""
        return str(self.recording.path)

    @property
    def machines(self) -> list[RecordedMachine]:
        """Every machine, in creation order."""
        return self.recording.machines

    @property
    def start_ns(self) -> int | None:
        """Wall time the recording starts at (first machine created); offsets count from it."""
        return self.recording.first_ns

    @property
    def end_ns(self) -> int | None:
        """Wall time of the last transition."""
        return self.recording.last_ns

    @property
    def damaged(self) -> bool:
        """True when parts of the recording could not be read (torn tail, corrupt frames)."""
        return bool(self.recording.corruption) or bool(self.source_damage)

    @property
    def torn_tail_only(self) -> bool:
        """True when the only damage is incomplete last records (a killed writer), if any."""
        return not self.source_damage and all(c.torn_tail for c in self.recording.corruption)

    def damage_summary(self) -> str:
        """One line naming the first damaged spot (file, offset, reason); "" when intact."""
        if self.source_damage:
            return f"{self.path}: {self.source_damage}"
        problems = self.recording.corruption
        if not problems:
            return ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{problems[0]}{more}"

    # ------------------------------------------------------------------ machines

    def machine_tree(self) -> list[MachineNode]:
        """Root nodes of the parent/child tree (parents not recorded make their children roots)."""
        nodes = {m.key: MachineNode(m, 0) for m in self.machines}
        roots: list[MachineNode] = []
        for m in self.machines:
            parent = self.parent(m)
            if parent is not None and not self._is_ancestor(m, parent):
                nodes[parent.key].children.append(nodes[m.key])
            else:
                roots.append(nodes[m.key])

        def set_depth(node: MachineNode, d: int) -> None:
            """Number the levels below `node`."""
            node.depth = d
            for child in node.children:
                set_depth(child, d + 1)

        for root in roots:
            set_depth(root, 0)
        return roots

    def walk_tree(self, roots: list[MachineNode] | None = None) -> Iterator[MachineNode]:
        """Depth-first, parents before children, siblings in creation order."""
        stack = list(reversed(self.machine_tree() if roots is None else roots))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def parent(self, machine: RecordedMachine) -> RecordedMachine | None:
        """The recorded parent of `machine`, or None (no parent, or parent not recorded); when
        ids repeat across runs, the one of the same process (see `Recording.parent`)."""
        return self.recording.parent(machine)

    def _machine_by_id(self, machine_id: str) -> RecordedMachine | None:
        try:
            return self.recording.machine(machine_id)
        except KeyError:
            return None

    def _is_ancestor(self, machine: RecordedMachine, other: RecordedMachine) -> bool:
        """True when `machine` is among the ancestors of `other` (guards against cycles)."""
        seen = set()
        cur: RecordedMachine | None = other
        while cur is not None and cur.key not in seen:
            if cur is machine:
                return True
            seen.add(cur.key)
            cur = self.parent(cur)
        return False

    def match_machines(self, part: str) -> list[RecordedMachine]:
        """Exact key, else exact id, else keys containing `part` (then case-insensitively)."""
        found = self.recording.find_machines(part)
        if not found:
            low = part.lower()
            found = [m for m in self.machines if low in m.key.lower()]
        return found

    def select_machine(self, query: str) -> RecordedMachine:
        """The one machine `query` names: a full key or id, or a part matching one machine.

        Raises SelectionError when nothing matches and AmbiguousMachineError (listing the
        candidates) when several do.
        """
        query = query.strip()
        if not query:
            raise UsageError("empty machine id")
        if not self.machines:
            raise SelectionError(f"the recording {self.path} holds no machines")
        found = self.match_machines(query)
        if len(found) == 1:
            return found[0]
        if not found:
            names = ", ".join(m.key for m in self.machines[:AmbiguousMachineError.SHOWN])
            more = len(self.machines) - AmbiguousMachineError.SHOWN
            if more > 0:
                names += f", ... and {more} more"
            raise SelectionError(f"no machine matches {query!r}; machines: {names}")
        raise AmbiguousMachineError(query, [m.key for m in found])

    # ------------------------------------------------------------------ transitions

    def transition_number(self, machine: RecordedMachine, ref: str | int) -> int:
        """A 1-based transition number from `ref`: N, -N (from the end), "last", or an id.

        Numbers are tried first unless out of range and shaped like an id; ids are looked up
        in `machine` (and, to say where it is, in the other machines).
        """
        count = len(machine)
        if isinstance(ref, int):
            return self._checked_number(machine, ref)
        text = ref.strip()
        if not text:
            raise UsageError("empty transition reference")
        if text.lower() in ("last", "first"):
            return self._checked_number(machine, -1 if text.lower() == "last" else 1)
        numeric = _INT.fullmatch(text) is not None
        if numeric:
            value = int(text)
            # 16 digits out of range may be an id that happens to be all digits
            if len(text) != 16 or (value != 0 and -count <= value <= count):
                return self._checked_number(machine, value)
        tx = machine.transition_by_id(text)
        if tx is not None:
            return tx.number
        if numeric:
            return self._checked_number(machine, int(text))
        other = self.recording.transition_by_id(text)
        if other is not None:
            raise SelectionError(f"transition {text} belongs to machine {other.machine}, "
                                 f"not {machine.key}")
        raise SelectionError(f"machine {machine.key} has no transition {text!r} "
                             f"(give a number 1..{count} or a transition id)")

    def _checked_number(self, machine: RecordedMachine, n: int) -> int:
        count = len(machine)
        if count == 0:
            raise SelectionError(f"machine {machine.key} has no transitions")
        if n < 0:
            n = count + 1 + n
        if not 1 <= n <= count:
            raise SelectionError(f"machine {machine.key} has {count} transitions; "
                                 f"there is no transition {n} (use 1..{count})")
        return n

    def transition(self, machine: RecordedMachine, number: int) -> TransitionRecord:
        """Transition `number` (1-based) of `machine`, decoded."""
        return machine.transition(self._checked_number(machine, number))

    def find_transition(self, tx_id: str) -> Selection | None:
        """Where the transition with this id is, in any machine, or None."""
        tx = self.recording.transition_by_id(tx_id)
        if tx is None:
            return None
        return Selection(self.recording.machine(tx.machine), tx.number, tx_id=tx.id)

    def locate(self, machine: str | None = None, transition: str | int | None = None,
               address: str | MachAddress | None = None) -> Selection:
        """Resolve what `-m`, `-t` and a `mach://` address select, checking they agree.

        Without a machine, a transition id is searched in every machine and a recording with a
        single machine selects it. A transition number needs a machine. Address parameters
        `t` (machine time), `q` (queue tick) and `ht` (wall time) pick a transition when the
        address has no transition part.
        """
        addr = parse_address(address) if isinstance(address, str) else address
        tx_ref: str | int | None = transition
        chosen: RecordedMachine | None = None
        if machine is not None:
            chosen = self.select_machine(machine)
        if addr is not None:
            by_addr = self.select_machine(addr.machine)
            if chosen is not None and chosen is not by_addr:
                raise UsageError(f"-m {machine} and {addr} name different machines "
                                 f"({chosen.key} and {by_addr.key})")
            chosen = by_addr
            if addr.tx:
                if tx_ref is not None and str(tx_ref) != addr.tx:
                    raise UsageError(f"-t {tx_ref} and {addr} name different transitions")
                tx_ref = addr.tx
        if chosen is None:
            if tx_ref is not None and not _looks_numeric(tx_ref):
                found = self.find_transition(str(tx_ref))
                if found is None:
                    raise SelectionError(f"no transition {tx_ref!r} in {self.path}")
                return found
            if len(self.machines) == 1:
                chosen = self.machines[0]
            elif tx_ref is not None:
                raise UsageError(f"transition {tx_ref} needs a machine: add -m MACHINE "
                                 f"({self._machine_hint()})")
            else:
                return Selection(None)
        if tx_ref is not None:
            if not _looks_numeric(tx_ref) and chosen.transition_by_id(str(tx_ref)) is None:
                # ids are not unique across runs: `mach://ID/TX` may mean a namesake (ID#2)
                for other in self.machines:
                    if other.id == chosen.id and other is not chosen:
                        namesake_tx = other.transition_by_id(str(tx_ref))
                        if namesake_tx is not None:
                            return Selection(other, namesake_tx.number, tx_id=namesake_tx.id)
            return Selection(chosen, self.transition_number(chosen, tx_ref))
        if addr is not None:
            return self._by_params(chosen, addr)
        return Selection(chosen)

    def _machine_hint(self) -> str:
        keys = [m.key for m in self.machines]
        shown = ", ".join(keys[:6])
        return f"one of {shown}" + (", ..." if len(keys) > 6 else "")

    def require_machine(self, sel: Selection) -> RecordedMachine:
        """The selection's machine, or a UsageError asking for `-m`."""
        if sel.machine is None:
            raise UsageError(f"choose a machine with -m MACHINE ({self._machine_hint()})")
        return sel.machine

    def _by_params(self, machine: RecordedMachine, addr: MachAddress) -> Selection:
        """Apply `t`, then `ht`, then `q` of an address without a transition part (see
        `amdbg.address.resolve_params`: a value no transition reached is an error)."""
        number, note = resolve_params(machine, addr, self.start_ns)
        return Selection(machine, number, note)

    # ------------------------------------------------------------------ filtering and ranges

    def numbers(self, machine: RecordedMachine, flt: TxFilter | None = None, start: int = 1,
                stop: int | None = None, *, reverse: bool = False) -> Iterator[int]:
        """Numbers of the transitions in `start..stop` (inclusive) that pass `flt`, lazily."""
        count = len(machine)
        stop = count if stop is None else min(stop, count)
        start = max(start, 1)
        seq = range(stop, start - 1, -1) if reverse else range(start, stop + 1)
        if flt is None or not flt.active:
            yield from seq
            return
        for n in seq:
            if not flt.match_summary(machine.summary(n)):
                continue
            if flt.needs_record and not flt.match_states(machine.transition(n)):
                continue
            yield n

    def transitions(self, machine: RecordedMachine, flt: TxFilter | None = None,
                    start: int = 1, stop: int | None = None,
                    limit: int | None = None) -> Iterator[TransitionRecord]:
        """Decoded transitions in `start..stop` passing `flt`, at most `limit` of them."""
        for i, n in enumerate(self.numbers(machine, flt, start, stop)):
            if limit is not None and i >= limit:
                return
            yield machine.transition(n)

    def check_states(self, machine: RecordedMachine, states: list[str]) -> None:
        """SelectionError when one of `states` is in none of the machine's schemas."""
        known: set[str] = set()
        for version in machine.schemas:
            known.update(version.state_names)
        for state in states:
            if state not in known:
                raise SelectionError(f"machine {machine.key} has no state {state!r} "
                                     f"(states: {', '.join(machine.state_names)})")

    def bound(self, machine: RecordedMachine, ref: str, *, upper: bool) -> int:
        """A range bound: a transition number or id, or a time (`+1.5s`, ISO) mapped to the
        first transition ending at or after it (lower bound) or the last one before it."""
        text = ref.strip()
        if text.startswith("+") or (("T" in text or ":" in text) and not _looks_numeric(text)):
            start, end = parse_time_span(text, self.start_ns)
            if upper:
                return self.nearest(machine, end - 1) or 0
            n = self.nearest(machine, start, after=True)
            return n if n is not None else len(machine) + 1
        try:
            return self.transition_number(machine, text)
        except SelectionError as err:
            if _looks_numeric(text):
                raise
            raise SelectionError(f"{err}; a time is written +1.5s, +200ms or as an ISO time "
                                 "like 2026-01-31T12:00:00Z") from None

    # ------------------------------------------------------------------ time

    def nearest(self, machine: RecordedMachine, wall_ns: int, *, after: bool = False
                ) -> int | None:
        """The last transition that ended at or before `wall_ns` (None: none yet), or with
        `after=True` the first that ended at or after it (None: none left)."""
        if after:
            i = bisect_left(machine.end_times, wall_ns)
            return i + 1 if i < len(machine) else None
        n = machine.number_at(wall_ns)
        return n or None

    def state_at(self, wall_ns: int) -> dict[str, list[str]]:
        """Active states of every machine existing at `wall_ns`, by machine key."""
        return {key: st.active for key, st in self.recording.state_at(wall_ns).items()}

    # ------------------------------------------------------------------ causality

    def source(self, tx: TransitionRecord) -> Selection | None:
        """The transition that caused `tx` (from another machine's handler, or its own), if
        it is in this recording; None when `tx` has no source or it was not recorded."""
        src = tx.source
        if src is None:
            return None
        m = self._machine_by_id(src.machine_id)
        if m is not None:
            found = m.transition_by_id(src.tx_id)
            if found is not None:
                return Selection(m, found.number, tx_id=found.id)
        return self.find_transition(src.tx_id)

    def forks(self, tx: TransitionRecord, window_ns: int = FORK_WINDOW_NS,
              max_scan: int = FORK_MAX_SCAN) -> tuple[list[Selection], bool]:
        """Transitions (any machine) whose source is `tx`, ending within `window_ns` after it.

        At most `max_scan` transitions are read; the flag is False when the search stopped
        there before the end of the window (a busy recording), True when it is complete.
        """
        out: list[Selection] = []
        for i, (_, m, n) in enumerate(self.recording.timeline(tx.start_ns,
                                                              tx.end_ns + window_ns)):
            if i >= max_scan:
                return out, False
            if m.key == tx.machine and n == tx.number:
                continue
            other = m.transition(n)
            if other.source is not None and other.source.tx_id == tx.id:
                out.append(Selection(m, n, tx_id=other.id))
        return out, True

    def queued_for(self, tx: TransitionRecord) -> QueuedRecord | None:
        """The queued-mutation record that `tx` executed, when it had to wait in the queue.

        The machine's queued records are decoded once and indexed by queue tick; machines with
        more than `QUEUED_MAX` of them are not searched (None), to keep lookups bounded.
        """
        if not tx.mutation_queue_tick:
            return None
        index = self._queued.get(tx.machine)
        if index is None:
            machine = self.recording.machine(tx.machine)
            if machine.queued_count > QUEUED_MAX:
                return None
            index = {q.queue_tick: q for q in machine.queued() if q.queue_tick}
            self._queued[tx.machine] = index
        return index.get(tx.mutation_queue_tick)

    # ------------------------------------------------------------------ graphs

    def machine_graph(self, machine: RecordedMachine, number: int | None = None, *,
                      tx: TransitionRecord | None = None) -> nx.DiGraph:
        """The machine's relation graph; with `number`, the schema then in effect and that
        transition's active (after), touched (steps, changed ticks) and called states marked.
        `tx` is that transition when the caller has it decoded already."""
        if number is None:
            return graphs.machine_graph(machine.schema, machine.state_names)
        if tx is None or tx.number != number or tx.machine != machine.key:
            tx = self.transition(machine, number)
        version = machine.schema_at(number)
        touched = [*tx.touched, *tx.activated, *tx.deactivated, *tx.called]
        return graphs.machine_graph(version.schema, version.state_names,
                                    active=tx.states_after, touched=touched, called=tx.called)

    def network_graph(self, *, links: bool = True,
                      progress: Callable[[int], None] | None = None) -> nx.DiGraph:
        """Machines as nodes, parent -> child edges and, with `links`, "mutates" edges from a
        machine to every machine its transitions caused transitions in (reads the source of
        every record, nothing else; `progress(done)` is told how many were read)."""
        targets: dict[str, set[str]] = {m.key: set() for m in self.machines}
        if links:
            done = 0
            for m in self.machines:
                seen: set[str] = set()
                for n, src in m.sources():
                    if src is not None and src.machine_id != m.id and \
                            src.machine_id not in seen:
                        seen.add(src.machine_id)
                        origin = self._machine_by_id(src.machine_id)
                        key = origin.key if origin is not None else src.machine_id
                        targets.setdefault(key, set()).add(m.key)
                    if progress is not None and not n & 1023:
                        progress(done + n)
                done += len(m)
        specs: list[dict[str, Any]] = []
        for m in self.machines:
            parent = self.parent(m)
            specs.append({"id": m.key, "tags": m.tags,
                          "parent": parent.key if parent is not None else (m.parent or None),
                          "links": [(t, "mutates") for t in sorted(targets.get(m.key, ()))]})
        for key, dst in targets.items():  # source machines that were not recorded
            if dst and all(s["id"] != key for s in specs):
                specs.append({"id": key, "tags": [], "parent": None, "missing": True,
                              "links": [(t, "mutates") for t in sorted(dst)]})
        g = graphs.network_graph(specs)
        for spec in specs:
            if spec.get("missing"):
                g.nodes[spec["id"]]["missing"] = True
        return g


def _looks_numeric(ref: str | int) -> bool:
    """True for transition references that are positions (N, -N, last, first), not ids."""
    if isinstance(ref, int):
        return True
    text = ref.strip()
    return _INT.fullmatch(text) is not None or text.lower() in ("last", "first")


def resolve_positionals(values: list[str], default_rec: str | None = None
                        ) -> tuple[str, MachAddress | None]:
    """Split command-line positionals into the recording path and an optional address."""
    rec: list[str] = []
    addrs: list[MachAddress] = []
    for value in values:
        (addrs.append(parse_address(value)) if is_address(value) else rec.append(value))
    if len(addrs) > 1:
        raise UsageError("give at most one mach:// address")
    if len(rec) > 1:
        raise UsageError(f"give one recording, not {len(rec)}: {' '.join(rec)}")
    if not rec:
        if not default_rec:
            raise UsageError("give a recording file or directory (or set AMNODE_RECORD)")
        rec.append(default_rec)
    return rec[0], addrs[0] if addrs else None


__all__ = ["FORK_MAX_SCAN", "FORK_WINDOW_NS", "QUEUED_MAX", "MachineNode", "Selection",
           "Session", "resolve_positionals"]
