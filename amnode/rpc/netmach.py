"""The network mirror: a machine whose clock follows a remote state source (Go NetworkMachine).

Reads (`is_active`, `tick`, `clock`, `time`, `when*`, `state_ctx`, `str`, `inspect`, ...) are
local and inherited from `am.Machine`. Mutations (`add`, `remove`, `set`, `toggle`, `add_err*`)
are sent to the source at once and return an awaitable future with the source's result; the
`*_ns` variants return at once without a reply. Received clocks are applied as synthetic
transitions: tracers, final handlers (`FooState`, `FooEnd`, `AnyState`) and waits fire exactly as
on a local machine; relations are never evaluated here.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import amnode as am
from amnode.machine.schema import StatesArg
from amnode.states import rpc as ss

from .protocol import Method

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("amnode.rpc")

PREFIX_NETMACH = "rnm-"
TAG_NETMACH = "rpc-netmach"

_SET = am.MutationType.SET
_CHANGES = int(am.LogLevel.CHANGES)


class NetworkMachine(am.Machine):
    """Client-side mirror of a remote machine; created by `Client` (see `client.netmach`)."""

    def __init__(self, client: Client, schema: am.SchemaLike | None, id: str,
                 parent: am.Machine | str | None = None, tags: Iterable[str] = (),
                 log_level: am.LogLevel | int | None = None) -> None:
        super().__init__(schema or {}, id=id, parent=parent, tags=tags, log_level=log_level)
        self._client = client
        #: id of the source machine (after the first handshake)
        self.remote_id = ""
        #: True when the schema came from the source or the client (not inferred from names)
        self.has_schema = schema is not None
        self._remote_names: list[str] = list(self._names)
        self._remote_index: dict[str, int] = {n: i for i, n in enumerate(self._remote_names)}
        #: mark states required by active ones as active (partial sync with a schema)
        self._infer = False
        #: set while disposing: mutations are not sent anymore
        self._local_only = False

    # --- schema and names from the source ---

    def _set_remote(self, names: Sequence[str], schema: Mapping[str, am.State] | None,
                    infer: bool) -> None:
        """Adopt the source's state names (and schema; None: relations unknown)."""
        names = list(names)
        if schema is None:
            schema = {n: am.State() for n in names}
        else:
            self.has_schema = True
        local = list(names)
        if am.EXCEPTION not in local:
            local.append(am.EXCEPTION)  # local only; never synced
        parsed, _ = am.parse_schema(schema)
        if am.EXCEPTION not in parsed:
            parsed[am.EXCEPTION] = am.State(multi=True)
        current = self.schema
        if parsed == current:
            if local != self.state_names:
                self.verify_states(local)
        elif len(parsed) > len(current) and set(current) <= set(parsed):
            self.set_schema(parsed, local)
        else:
            self.replace_schema(parsed, local)
        # the i-th remote state is the i-th local one (Exception, if local only, comes last)
        self._remote_names = names
        self._remote_index = {n: i for i, n in enumerate(names)}
        self._infer = infer

    def _activate_required(self, active: list[str]) -> list[str]:
        """Active states plus everything they (transitively) require (Go activateRequired)."""
        schema = self._schema
        out = list(active)
        seen = set(active)
        stack = list(active)
        while stack:
            for req in schema[stack.pop()].require:
                if req not in seen and req in schema:
                    seen.add(req)
                    out.append(req)
                    stack.append(req)
        return out

    # --- applying received clocks ---

    def _apply_time(self, time_: Sequence[int], queue_tick: int, machine_tick: int,
                    mtype: am.MutationType = _SET, called: Sequence[int] | None = None) -> None:
        """Make the mirror show `time_` (in the source's index space) as one transition."""
        if self.is_disposed:
            return
        active = None
        if self._infer:
            names = self._names
            odd = [n for n, t in zip(names, time_, strict=False) if t & 1]
            active = self._activate_required(odd)
        called_names = None
        if called is not None:
            remote = self._remote_names
            called_names = [remote[i] for i in called if i < len(remote)]
        self.apply_clock(time_, called=called_names, mutation_type=mtype, active=active,
                         source=am.MutSource(self.remote_id), queue_tick=queue_tick,
                         machine_tick=machine_tick)

    # --- local-only errors (a mirror never reports its own handler errors to the source) ---

    def _local_error(self, err: BaseException) -> None:
        self.err = err
        self.err_internal.append(err)
        self._log(_CHANGES, "[error] %r", err)
        log.warning("%s: %r", self.id, err)

    def _recover_to_err(self, t: am.Transition, name: str, exc: Exception) -> None:
        self._local_error(exc)

    def _handler_timeout(self, t: am.Transition, ev: am.Event, method: str, bid: str,
                         seconds: float) -> None:
        self.err_internal.append(am.HandlerTimeoutError(
            f"handler timeout: {method} from {bid} ({seconds:.3f}s)"))

    def fork(self, coro: Coroutine[Any, Any, Any], state: str | None = None
             ) -> asyncio.Task[Any]:
        """Like `Machine.fork`, but a failing task is recorded locally, not sent to the source."""

        async def guarded() -> Any:
            try:
                return await coro
            except Exception as err:
                self._local_error(err)
                return None

        return super().fork(guarded(), state)

    def bind_handlers(self, obj: object, id: str | None = None,
                      state_prefix: str | None = None) -> str:
        """Bind handler methods; only final handlers (`FooState`, `FooEnd`, `AnyState`) fire."""
        err, self.err = self.err, None  # Machine would re-add a stored error on the first bind
        try:
            return super().bind_handlers(obj, id, state_prefix)
        finally:
            self.err = err

    def dispose(self) -> None:
        """Dispose the mirror locally (the source is not touched)."""
        self._local_only = True  # Machine.dispose removes Start: not on the source
        super().dispose()

    def import_data(self, data: Mapping[str, Any]) -> None:
        """Not supported: a mirror's clock comes from its source."""
        raise NotImplementedError("a network mirror cannot import data")

    # --- remote mutations ---

    def _remote_idxs(self, states: StatesArg) -> list[int]:
        """Indexes of `states` in the source's (wire) order; raises StateUnknownError."""
        index = self._remote_index
        if isinstance(states, str):
            states = [states]
        out = []
        for name in dict.fromkeys(states):
            i = index.get(name)
            if i is None:
                where = "synced from " + self.remote_id if self.has(name) else "defined"
                raise am.StateUnknownError(f"state {name} of {self.id} is not {where}")
            out.append(i)
        return out

    def _canceled(self) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        fut.set_result(am.CANCELED)
        return fut

    def add(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | None = None) -> asyncio.Future[int]:  # type: ignore[override]
        """Activate states on the source; await the future for its Result."""
        if self._local_only:
            return self._canceled()
        return self._client._mutate(Method.ADD, self._remote_idxs(states), args, event)

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None,
               *, event: am.Event | None = None) -> asyncio.Future[int]:  # type: ignore[override]
        """Deactivate states on the source; await the future for its Result."""
        if self._local_only:
            return self._canceled()
        return self._client._mutate(Method.REMOVE, self._remote_idxs(states), args, event)

    def set(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | None = None) -> asyncio.Future[int]:  # type: ignore[override]
        """Set exactly these states on the source; await the future for its Result."""
        if self._local_only:
            return self._canceled()
        return self._client._mutate(Method.SET, self._remote_idxs(states), args, event)

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None,
               *, event: am.Event | None = None) -> asyncio.Future[int]:  # type: ignore[override]
        """Remove if all are active (locally), else add; decided locally like Go (not atomic)."""
        names = [states] if isinstance(states, str) else list(states)
        self._remote_idxs(names)
        if self.is_active(names):
            return self.remove(names, args, event=event)
        return self.add(names, args, event=event)

    add1 = add
    remove1 = remove
    toggle1 = toggle

    def add_err(self, err: BaseException | None, args: dict[str, Any] | None = None, *,
                event: am.Event | None = None) -> asyncio.Future[int]:  # type: ignore[override]
        """Remember `err` locally and add `Exception` (+`ErrOnClient`) on the source."""
        return self.add_err_state(am.EXCEPTION, err, args, event=event)

    def add_err_state(self, state: str, err: BaseException | None,
                      args: dict[str, Any] | None = None, *, event: am.Event | None = None
                      ) -> asyncio.Future[int]:  # type: ignore[override]
        """Remember `err` locally and add `[state, Exception, ErrOnClient]` on the source."""
        if err is None:
            return self._canceled()
        self.err = err
        trace = ""
        if err.__traceback__ is not None:
            trace = "".join(traceback.format_exception(err))
        merged = dict(args) if args else {}
        merged[am.ARG_EXCEPTION] = am.AException(err=err, trace=trace)
        states = [state] if state == am.EXCEPTION else [state, am.EXCEPTION]
        if ss.ERR_ON_CLIENT in self._remote_index:
            states.append(ss.ERR_ON_CLIENT)
        return self.add(states, merged, event=event)

    def add_ns(self, states: StatesArg,
               args: dict[str, Any] | None = None) -> int:
        """Add without waiting for a reply; order with other mutations is kept.

        Returns EXECUTED when sent, CANCELED when not connected. Call `client.sync()` (or wait
        for a push) to see the effect.
        """
        return self._client._notify_mutation(Method.ADD_NS, self._remote_idxs(states), args)

    def remove_ns(self, states: StatesArg,
                  args: dict[str, Any] | None = None) -> int:
        """`remove` without a reply (see `add_ns`)."""
        return self._client._notify_mutation(Method.REMOVE_NS, self._remote_idxs(states), args)

    def set_ns(self, states: StatesArg,
               args: dict[str, Any] | None = None) -> int:
        """`set` without a reply (see `add_ns`)."""
        return self._client._notify_mutation(Method.SET_NS, self._remote_idxs(states), args)

    add1_ns = add_ns

    @property
    def queue_len(self) -> int:
        """Always 0: the queue lives on the source."""
        return 0

    @property
    def client(self) -> Client:
        """The aRPC client feeding this mirror."""
        return self._client

    def __repr__(self) -> str:
        return f"NetworkMachine({self.id} <- {self.remote_id} {self})"


__all__ = ["PREFIX_NETMACH", "TAG_NETMACH", "NetworkMachine"]
