"""Mutations, results and typed exception args (Go mutation.go and the result constants)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .failure import Failure
from .log import ArgsMapper, format_args


class Result(IntEnum):
    """Outcome of a mutation. A queued mutation returns its queue tick instead (an int >= 2)."""

    EXECUTED = 0
    CANCELED = 1
    QUEUED = 2

    def __str__(self) -> str:
        return self.name.lower()


EXECUTED = Result.EXECUTED
CANCELED = Result.CANCELED
QUEUED = Result.QUEUED


def is_queued(result: int) -> bool:
    """True when a result is a queue tick, i.e. the mutation will run later (Go IsQueued)."""
    return result > 1


def result_str(result: int) -> str:
    """`executed`, `canceled` or `queued` (Go Result.String)."""
    if result == 0:
        return "executed"
    if result == 1:
        return "canceled"
    return "queued"


class MutationType(IntEnum):
    """Kind of mutation (Go MutationType); EVAL is internal."""

    ADD = 0
    REMOVE = 1
    SET = 2
    EVAL = 3

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def short(self) -> str:
        """Two-character form used in compact listings (Go StringShort)."""
        return (" +", "- ", "= ", "e ")[self.value]


@dataclass(slots=True, frozen=True)
class MutSource:
    """Where a mutation came from: another machine's transition, or a remote peer."""

    mach_id: str
    tx_id: str = ""
    mach_time: int = 0


_HEALTH = ("Heartbeat", "Healthcheck")  # schema.HEARTBEAT, schema.HEALTHCHECK

#: Key of the typed exception args inside a mutation's args (Go ArgIndex of AException).
ARG_EXCEPTION = "_am__Exception"


@dataclass(slots=True)
class AException:
    """Typed args carried by an `Exception` mutation (Go AException)."""

    err: BaseException | None = None
    trace: str = ""
    #: for a caught handler exception: the handler's name and the transition it broke
    handler: str = ""
    called_states: list[str] = field(default_factory=list)
    states_before: list[str] = field(default_factory=list)
    target_states: list[str] = field(default_factory=list)
    tx_id: str = ""
    #: the handler's failure as data (amnode.machine.failure), recorded with the transition
    #: that adds `Exception`; the only record of an `async def` handler's failure
    failure: Failure | None = None

    def __repr__(self) -> str:
        return f"AException({self.err!r})"


class Mutation:
    """A requested change of active states, queued and then executed as a transition."""

    __slots__ = (
        "args", "called", "eval_fn", "eval_source", "is_auto", "is_check", "queue_len",
        "queue_tick", "queue_tick_now", "source", "type",
    )

    def __init__(self, type: MutationType, called: list[str], args: dict[str, Any] | None = None,
                 *, is_auto: bool = False, is_check: bool = False,
                 source: MutSource | None = None) -> None:
        self.type = type
        self.called = called
        self.args: dict[str, Any] = {} if args is None else args
        self.is_auto = is_auto
        self.is_check = is_check
        self.source = source
        #: queue tick this mutation runs at; 0 for prepended ones
        self.queue_tick = 0
        #: the machine's queue tick when this mutation was queued
        self.queue_tick_now = 0
        #: queue length right after queueing
        self.queue_len = 0
        self.eval_fn: Callable[[], Any] | None = None
        self.eval_source = ""

    def __repr__(self) -> str:
        return f"Mutation({self.describe()})"

    def describe(self) -> str:
        """`[add] A B`, as in logs (Go StringFromIndex)."""
        return f"[{self.type}] {' '.join(self.called)}"

    def log_args(self, mapper: ArgsMapper | None) -> str:
        """The args a mapper selects, formatted for a log line, or ""."""
        if mapper is None or not self.args:
            return ""
        try:
            return format_args(mapper(self.args))
        except Exception:
            return ""

    @property
    def is_health(self) -> bool:
        """True for an add of exactly `Heartbeat` or `Healthcheck`: no auto states follow it."""
        c = self.called
        return self.type == MutationType.ADD and len(c) == 1 and c[0] in _HEALTH

    def is_called(self, state: str) -> bool:
        """True if `state` was explicitly called by this mutation."""
        return state in self.called
