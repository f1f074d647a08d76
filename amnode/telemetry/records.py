"""Decoded record values returned by the reader (immutable, plain data, cheap to build).

These are what `amdbg` and other consumers see; none of them holds a file handle or a live
machine. Times are wall-clock nanoseconds as taken by the recorded process; state names are
resolved against the schema that was in effect when the record was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from amnode.machine.mutation import MutationType
from amnode.machine.steps import Relation, Step, StepType

#: mutation type names by value, as the machine names them ("add", "remove", "set", "eval")
MUTATION_TYPES = tuple(str(MutationType(i)) for i in range(len(MutationType)))
#: step type names by value ("rel", "handler", "activate", ...)
STEP_TYPES = {int(t): str(t) for t in StepType}
#: relation names by value ("after", "add", "require", "remove")
RELATIONS = tuple(str(Relation(i)) for i in range(len(Relation)))
_STEP_TYPE_OF = {str(t): t for t in StepType}
_RELATION_OF = {str(r): r for r in Relation}

#: the scheme of the addresses amdbg reads (`mach://MACHINE[/TX[/STEP]][?...]`)
MACH_SCHEME = "mach://"
#: characters a `mach://` address part keeps as they are; every other one is percent-encoded
MACH_SAFE = "-_.~#:@+!$*,;="


def quote_part(text: str) -> str:
    """One part of a `mach://` address (a machine id, a transition id, a parameter value),
    percent-encoded, so that any id can be written in an address and read back exactly."""
    return quote(text, safe=MACH_SAFE)


def mach_url(machine_id: str, tx_id: str = "") -> str:
    """`mach://MACHINE_ID` or `mach://MACHINE_ID/TX_ID`, both parts percent-encoded."""
    url = MACH_SCHEME + quote_part(machine_id)
    return f"{url}/{quote_part(tx_id)}" if tx_id else url


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """The process that wrote one segment (from its segment header)."""

    host: str
    pid: int
    argv0: str
    start_ns: int
    file: str
    offset: int
    version: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.argv0})"


#: how a reader words an incomplete record (or a missing check record) at the end of a file
TORN_TAIL = "torn record at end of file"
#: ... and at the end of a segment that another segment header follows (appended after a crash)
TORN_SEGMENT = "torn record at end of segment"


@dataclass(frozen=True, slots=True)
class Corruption:
    """A part of a file that could not be read: where, why, and how many bytes were skipped."""

    file: str
    offset: int
    reason: str
    skipped: int = 0

    @property
    def torn_tail(self) -> bool:
        """True for an incomplete last record: what a killed writer leaves, not data damage."""
        return self.reason.startswith((TORN_TAIL, TORN_SEGMENT))

    def __str__(self) -> str:
        extra = f" ({self.skipped} bytes skipped)" if self.skipped and not self.torn_tail else ""
        return f"{self.file} @{self.offset}: {self.reason}{extra}"


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One schema record of a machine; it applies from transition `first` (1-based) on."""

    first: int
    wall_ns: int
    parent: str
    tags: list[str]
    state_names: list[str]
    schema: dict[str, dict[str, Any]]
    groups: dict[str, list[int]]
    groups_order: list[str]
    #: the machine's log-line prefix (e.g. "[abcde] "), removed from its recorded lines
    log_prefix: str = ""
    #: True when no valid check record covered this record (see `TransitionRecord.unverified`)
    unverified: bool = False


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line (machine-id prefix removed) and its level (1 external ... 5 everything)."""

    level: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Source:
    """Where a mutation came from: a transition of (maybe) another machine, and its time sum."""

    machine_id: str
    tx_id: str
    machine_time: int

    def __str__(self) -> str:
        return f"{self.machine_id}/{self.tx_id}/t{self.machine_time}"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a transition (Go am.Step); `relation` is None unless it is a relation step."""

    type: str
    from_state: str
    to_state: str
    relation: str | None
    handler: str = ""
    is_final: bool = False
    is_enter: bool = False
    is_self: bool = False
    duration_ns: int = 0

    def __str__(self) -> str:
        """As the machine's `Step` prints it, e.g. `A require B`, `handler AState`."""
        # a step type this version does not know is printed as recorded (its number)
        kind: Any = _STEP_TYPE_OF.get(self.type, self.type)
        step = Step(kind, self.from_state, self.to_state, _RELATION_OF.get(self.relation or ""))
        step.handler = self.handler
        return str(step)


@dataclass(frozen=True, slots=True)
class TransitionSummary:
    """What the index knows about a transition without decoding it."""

    number: int
    seq: int
    end_ns: int
    accepted: bool
    is_auto: bool
    is_check: bool
    is_health: bool
    is_error: bool
    full_clock: bool
    #: the clock did not change (canceled transitions, checks, no-op mutations)
    is_empty: bool

    @property
    def unverified(self) -> bool:
        """True when no valid check record covered the record (see
        `TransitionRecord.unverified`); such a summary is an `UnverifiedSummary`."""
        return False


@dataclass(frozen=True, slots=True)
class UnverifiedSummary(TransitionSummary):
    """The summary of an unverified transition. A subclass rather than a field: filters make
    summaries a million at a time, and every field costs each of them."""

    @property
    def unverified(self) -> bool:
        """Always True."""
        return True


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Why a recorded transition was canceled (the machine's `Transition.failure`), or, on a
    transition that adds `Exception`, the handler failure it reports (always so for an
    `async def` handler, `is_async`). Absent from records written before it existed."""

    #: "veto", "raised", "timeout", "relations" (readers keep unknown kinds as they are)
    kind: str
    #: the handler that vetoed, raised or timed out, e.g. "JobEnter"
    handler: str = ""
    #: a final handler (`State`, `End`, `AnyState`), else a negotiation one
    final: bool = False
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    #: timeout: how long the handler ran
    seconds: float = 0.0
    #: relations: the called states the resolver rejected
    states: tuple[str, ...] = ()
    is_async: bool = False


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One recorded transition, decoded; `number` is 1-based within its machine."""

    machine: str
    machine_id: str
    number: int
    seq: int
    id: str
    type: str
    called: list[str]
    args: dict[str, str]
    accepted: bool
    is_auto: bool
    is_check: bool
    is_health: bool
    is_error: bool
    queue_tick: int
    mutation_queue_tick: int
    queue_len: int
    start_ns: int
    end_ns: int
    state_names: list[str]
    time_before: list[int]
    time_after: list[int]
    steps: list[StepRecord]
    log: list[LogLine]
    pre_log: list[LogLine]
    source: Source | None
    truncated: bool
    file: str
    offset: int
    #: True when no valid check record covered this record: it was in a torn tail (its block's
    #: check record was never written) or kept from a damaged block, so its bytes were never
    #: checked and may differ from what was recorded (docs/recording-format.md §7)
    unverified: bool = False
    #: why it was canceled, as recorded (None: accepted, or recorded before this existed)
    failure: FailureRecord | None = None

    @property
    def url(self) -> str:
        """`mach://MACHINE_ID/TX_ID` (percent-encoded: see `mach_url`), as amdbg reads it."""
        return mach_url(self.machine_id, self.id)

    @property
    def duration_ns(self) -> int:
        """Wall time the transition took."""
        return self.end_ns - self.start_ns

    @property
    def clock_before(self) -> dict[str, int]:
        """Ticks by state name before the transition."""
        return dict(zip(self.state_names, self.time_before, strict=False))

    @property
    def clock_after(self) -> dict[str, int]:
        """Ticks by state name after the transition."""
        return dict(zip(self.state_names, self.time_after, strict=False))

    @property
    def states_before(self) -> list[str]:
        """Active states before (odd ticks)."""
        return [n for n, t in zip(self.state_names, self.time_before, strict=False) if t & 1]

    @property
    def states_after(self) -> list[str]:
        """Active states after."""
        return [n for n, t in zip(self.state_names, self.time_after, strict=False) if t & 1]

    @property
    def activated(self) -> list[str]:
        """States whose tick changed and that are active after (multi re-activation included)."""
        return [n for n, b, a in zip(self.state_names, self.time_before, self.time_after,
                                     strict=False) if a != b and a & 1]

    @property
    def deactivated(self) -> list[str]:
        """States active before and inactive after."""
        return [n for n, b, a in zip(self.state_names, self.time_before, self.time_after,
                                     strict=False) if b & 1 and not a & 1]

    @property
    def time_sum(self) -> int:
        """Machine time after the transition (sum of ticks, Go TimeSum)."""
        return sum(self.time_after)

    @property
    def is_empty(self) -> bool:
        """True when the clock did not change."""
        return self.time_before == self.time_after

    @property
    def touched(self) -> list[str]:
        """Every state named by a step, in order of first appearance."""
        seen: dict[str, None] = {}
        for s in self.steps:
            if s.from_state:
                seen.setdefault(s.from_state)
            if s.to_state:
                seen.setdefault(s.to_state)
        return list(seen)

    @property
    def handlers(self) -> list[tuple[str, int]]:
        """Handlers that ran, with their durations in ns, in order."""
        return [(s.handler, s.duration_ns) for s in self.steps if s.type == "handler"]


@dataclass(frozen=True, slots=True)
class QueuedRecord:
    """A mutation that was queued behind others (or prepended) rather than run at once."""

    machine: str
    machine_id: str
    wall_ns: int
    type: str
    called: list[str]
    args: dict[str, str]
    queue_tick: int
    queue_tick_now: int
    queue_len: int
    is_auto: bool
    is_check: bool
    prepended: bool
    tx_id: str
    source: Source | None
    file: str
    offset: int
    #: True when no valid check record covered this record (see `TransitionRecord.unverified`)
    unverified: bool = False


@dataclass(frozen=True, slots=True)
class MachineState:
    """A machine's state at some wall time: after transition `number` (0 = none yet)."""

    machine: str
    number: int
    wall_ns: int
    state_names: list[str]
    time: list[int]
    disposed: bool

    @property
    def clock(self) -> dict[str, int]:
        """Ticks by state name."""
        return dict(zip(self.state_names, self.time, strict=False))

    @property
    def active(self) -> list[str]:
        """Active state names."""
        return [n for n, t in zip(self.state_names, self.time, strict=False) if t & 1]


__all__ = [
    "MACH_SAFE", "MACH_SCHEME", "MUTATION_TYPES", "RELATIONS", "STEP_TYPES", "TORN_SEGMENT",
    "TORN_TAIL", "Corruption", "FailureRecord", "LogLine", "MachineState", "ProcessInfo",
    "QueuedRecord", "SchemaVersion", "Source", "StepRecord", "TransitionRecord",
    "TransitionSummary",
    "UnverifiedSummary", "mach_url", "quote_part",
]
