"""Structural types for code that takes "any machine": a local one or an aRPC mirror.

`ReadOnlyMachine` is what `Machine` and a network mirror (`amnode.rpc.NetworkMachine`) both
offer: reads of the clock and the schema, and waits. They differ in their mutations, and the two
protocols below say how, so code written against them cannot mix the two up:

- `LocalMachine`: `add`/`remove`/`set`/`toggle`/`add_err*` run here and return the `Result` (an
  int: EXECUTED, CANCELED or a queue tick) at once;
- `RemoteMachine`: the same calls are sent to the source and return an *awaitable* of the
  source's `Result`; the `*_ns` variants send without waiting for any reply.

A type checker then rejects `await local.add(...)` and `result: int = mirror.add(...)`, and
refuses a mirror where a `LocalMachine` is expected (and the other way around).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .clock import Time
from .handlers import Event
from .mutation import MutSource
from .schema import Schema, StatesArg
from .subscriptions import StateCtx

#: What a mutation's `event` keyword takes: the event of the handler that mutates, or a source.
EventArg = Event | MutSource | None


@runtime_checkable
class ReadOnlyMachine(Protocol):
    """Reads and waits common to `Machine` and a network mirror; all of them are local."""

    @property
    def id(self) -> str:
        """The machine's id."""

    @property
    def err(self) -> BaseException | None:
        """The last error added or caught."""

    @property
    def state_names(self) -> list[str]:
        """States in the machine's order."""

    @property
    def schema(self) -> Schema:
        """A copy of the schema."""

    @property
    def queue_tick(self) -> int:
        """Executed queued mutations (of the source, for a mirror)."""

    @property
    def is_disposed(self) -> bool:
        """True once disposed."""

    def has(self, states: StatesArg) -> bool:
        """True if every state is defined."""

    def index(self, state: str) -> int:
        """Position of a state in `state_names`, -1 when unknown."""

    def is_active(self, states: StatesArg) -> bool:
        """True if every state is active."""

    def is_inactive(self, states: StatesArg) -> bool:
        """True if none of the states is active."""

    def any_active(self, *groups: StatesArg) -> bool:
        """True if any state (or any whole group) is active."""

    def tick(self, state: str) -> int:
        """The state's tick; odd = active."""

    def clock(self, states: StatesArg | None = None) -> dict[str, int]:
        """Ticks by name."""

    def time(self, states: StatesArg | None = None) -> Time:
        """Ticks in state order."""

    def is_clock(self, clock: Mapping[str, int]) -> bool:
        """True if every listed tick equals the current one."""

    def is_time(self, t: Iterable[int], states: StatesArg | None = None) -> bool:
        """True if the ticks equal `t`."""

    def active_states(self, states: StatesArg | None = None) -> list[str]:
        """Active states, optionally limited to `states`."""

    def switch(self, *groups: StatesArg) -> str:
        """The first active state in argument order, else ""."""

    def is_err(self) -> bool:
        """True while `Exception` is active."""

    def string_all(self) -> str:
        """Active then inactive states with their ticks."""

    def inspect(self, states: StatesArg | None = None) -> str:
        """Multi-line dump of states, ticks, flags and relations."""

    def state_ctx(self, state: str) -> StateCtx:
        """A context cancelled when the state's tick changes."""

    def when(self, states: StatesArg, timeout: float | None = None) -> Awaitable[None]:
        """Wait until every state is active."""

    def when_not(self, states: StatesArg, timeout: float | None = None) -> Awaitable[None]:
        """Wait until every state is inactive."""

    def when_err(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until `Exception` is active."""

    def when_time(self, clock: Mapping[str, int], timeout: float | None = None
                  ) -> Awaitable[None]:
        """Wait until every listed tick is reached."""

    def when_ticks(self, state: str, ticks: int, timeout: float | None = None
                   ) -> Awaitable[None]:
        """Wait until a state ticked `ticks` more times."""

    def when_next_active(self, state: str, timeout: float | None = None) -> Awaitable[None]:
        """Wait for the state's next activation."""

    def when_args(self, state: str, args: Mapping[str, Any],
                  timeout: float | None = None) -> Awaitable[None]:
        """Wait until the state activates with args that include `args`."""

    def when_query(self, fn: Callable[[dict[str, int]], bool],
                   timeout: float | None = None) -> Awaitable[None]:
        """Wait until `fn(clock)` holds."""

    def when_queue(self, tick: int, timeout: float | None = None) -> Awaitable[None]:
        """Wait until the queue tick reaches `tick`."""

    def when_disposed(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until disposed."""


@runtime_checkable
class LocalMachine(ReadOnlyMachine, Protocol):
    """A machine whose mutations run here and return their `Result` (an int) at once."""

    def add(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: EventArg = None) -> int:
        """Activate states; EXECUTED, CANCELED or a queue tick."""

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: EventArg = None) -> int:
        """Deactivate states."""

    def set(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: EventArg = None) -> int:
        """Make exactly these states active."""

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: EventArg = None) -> int:
        """Remove if all are active, else add."""

    def add_err(self, err: BaseException | None, args: dict[str, Any] | None = None, *,
                event: EventArg = None) -> int:
        """Activate `Exception` with `err`."""

    def add_err_state(self, state: str, err: BaseException | None,
                      args: dict[str, Any] | None = None, *, event: EventArg = None) -> int:
        """Activate an error state and `Exception`."""


@runtime_checkable
class RemoteMachine(ReadOnlyMachine, Protocol):
    """A mirror of a machine elsewhere: reads are local, mutations are sent to the source.

    `add`/`remove`/`set`/`toggle`/`add_err*` send at once (call order is wire order) and return
    an awaitable of the source's `Result`; `add_ns`/`remove_ns`/`set_ns` send without a reply
    and return EXECUTED (sent) or CANCELED (not connected) at once.
    """

    def add(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: EventArg = None) -> Awaitable[int]:
        """Activate states on the source."""

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: EventArg = None) -> Awaitable[int]:
        """Deactivate states on the source."""

    def set(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: EventArg = None) -> Awaitable[int]:
        """Make exactly these states active on the source."""

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: EventArg = None) -> Awaitable[int]:
        """Remove if all are active (as seen here), else add, on the source."""

    def add_err(self, err: BaseException | None, args: dict[str, Any] | None = None, *,
                event: EventArg = None) -> Awaitable[int]:
        """Keep `err` here and activate `Exception` on the source."""

    def add_err_state(self, state: str, err: BaseException | None,
                      args: dict[str, Any] | None = None, *,
                      event: EventArg = None) -> Awaitable[int]:
        """Keep `err` here and activate an error state and `Exception` on the source."""

    def add_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Send an Add without waiting for a reply."""

    def remove_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Send a Remove without waiting for a reply."""

    def set_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Send a Set without waiting for a reply."""


if TYPE_CHECKING:
    from .machine import Machine

    def _machine_is_local(m: Machine) -> LocalMachine:
        """Checked by mypy: `Machine` satisfies `LocalMachine` (and so `ReadOnlyMachine`)."""
        return m


__all__ = ["EventArg", "LocalMachine", "ReadOnlyMachine", "RemoteMachine"]
