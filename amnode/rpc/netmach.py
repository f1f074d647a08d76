"""The network mirror: a machine whose clock follows a remote state source (Go NetworkMachine).

Reads (`is_active`, `tick`, `clock`, `time`, `when*`, `state_ctx`, `str`, `inspect`, ...) are
local and inherited from `am.Machine`. Mutations (`add`, `remove`, `set`, `toggle`, `add_err*`)
are sent to the source at once and return an awaitable future with the source's result; the
`*_ns` variants return at once without a reply. Received clocks are applied as synthetic
transitions: tracers, final handlers (`FooState`, `FooEnd`, `AnyState`) and waits fire exactly as
on a local machine; relations are never evaluated here.

The mirror overrides the public mutations (all through `_send`) and two machine hooks: errors
the machine catches itself go to `_report_error`, which keeps them local, and `_dispose_start`
does nothing, so disposing never stops the source. Everything else is `am.Machine`.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import amnode.machine as am
from amnode.machine.schema import SchemaLike, StatesArg
from amnode.states import rpc as ss

from .errors import MirrorUnsupportedError
from .protocol import Method

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("amnode.rpc")

PREFIX_NETMACH = "rnm-"
TAG_NETMACH = "rpc-netmach"

_SET = am.MutationType.SET
_CHANGES = int(am.LogLevel.CHANGES)
_NS = frozenset({Method.ADD_NS, Method.REMOVE_NS, Method.SET_NS})
_NO_NAMES: list[str] = []


class NetworkMachine(am.Machine):
    """Client-side mirror of a remote machine; created by `Client` (see `client.netmach`)."""

    def __init__(self, client: Client, schema: SchemaLike | None, id: str,
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

    # --- the machine's hooks: errors stay local, disposal never touches the source ---

    def _report_error(self, err: BaseException, args: dict[str, Any] | None = None, *,
                      event: am.Event | am.MutSource | None = None) -> None:
        """An error the mirror caught itself (a failing handler, eval or forked task, a handler
        past its deadline) stays local: kept in `err` and `err_internal` and logged, never sent
        to the source, whose clock is the only thing a mirror shows. The error a first
        `bind_handlers` re-reports is already the mirror's `err`: it is not recorded twice."""
        if err is self.err:
            return
        self.err = err
        internal = self.err_internal
        if not internal or internal[-1] is not err:  # a timeout is already there
            internal.append(err)
        self._log(_CHANGES, "[error] %r", err)
        log.warning("%s: %r", self.id, err)

    def _recover_to_err(self, t: am.Transition, name: str, exc: Exception) -> None:
        """A final handler raised: report it locally (Machine would queue a local `Exception`
        transition, which the source's next clock would contradict)."""
        if not self._disposing:
            self._report_error(exc)

    def _dispose_start(self) -> None:
        """Disposing a mirror never removes `Start`: that would stop the source."""

    def import_data(self, data: Mapping[str, Any]) -> None:
        """Not supported: a mirror's clock comes from its source."""
        raise MirrorUnsupportedError("a network mirror cannot import data")

    # --- remote mutations ---

    def _remote_idxs(self, states: StatesArg) -> list[int]:
        """Indexes of `states` in the source's (wire) order; raises StateUnknownError."""
        index = self._remote_index
        if type(states) is str:
            i = index.get(states)
            if i is not None:
                return [i]
            states = [states]
        out = []
        for name in dict.fromkeys(states):
            i = index.get(name)
            if i is None:
                where = "synced from " + self.remote_id if self.has(name) else "defined"
                raise am.StateUnknownError(f"state {name} of {self.id} is not {where}")
            out.append(i)
        return out

    def _resolved(self, result: int) -> asyncio.Future[int]:
        """A future already holding `result`. Needs no running loop: without one it belongs to
        the mirror's loop (awaiting a done future never runs that loop)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop
            if loop is None:  # a mirror made outside any loop: any loop object will do
                loop = asyncio.new_event_loop()
                loop.close()
        fut: asyncio.Future[int] = loop.create_future()
        fut.set_result(result)
        return fut

    def _send(self, method: Method, states: StatesArg, args: dict[str, Any] | None,
              event: am.Event | am.MutSource | None) -> Any:
        """Send one mutation to the source (the only path there is).

        Add/Remove/Set return a future with the source's Result, the NS notifications EXECUTED
        (sent) or CANCELED at once. Unknown states raise StateUnknownError and another thread
        WrongThreadError (the machine's guards); a disposed mirror or a client that is not
        `Ready` sends nothing and cancels.
        """
        idxs = self._remote_idxs(states)
        ns = method in _NS
        client = self._client
        conn = None if self._refused(_NO_NAMES, backoff=False, queue=False) else \
            client._ready_conn(method)
        if conn is None:
            return am.CANCELED if ns else self._resolved(am.CANCELED)
        if ns:
            client._notify_mutation(conn, method, idxs, args, event)
            return am.EXECUTED
        return client._mutate(conn, method, idxs, args, event)

    def add(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None
            ) -> asyncio.Future[int]:  # type: ignore[override]
        """Activate states on the source; await the future for its Result."""
        return self._send(Method.ADD, states, args, event)

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: am.Event | am.MutSource | None = None
               ) -> asyncio.Future[int]:  # type: ignore[override]
        """Deactivate states on the source; await the future for its Result."""
        return self._send(Method.REMOVE, states, args, event)

    def set(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None
            ) -> asyncio.Future[int]:  # type: ignore[override]
        """Set exactly these states on the source; await the future for its Result."""
        return self._send(Method.SET, states, args, event)

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: am.Event | am.MutSource | None = None
               ) -> asyncio.Future[int]:  # type: ignore[override]
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
                event: am.Event | am.MutSource | None = None
                ) -> asyncio.Future[int]:  # type: ignore[override]
        """Remember `err` locally and add `Exception` (+`ErrOnClient`) on the source."""
        return self.add_err_state(am.EXCEPTION, err, args, event=event)

    def add_err_state(self, state: str, err: BaseException | None,
                      args: dict[str, Any] | None = None, *,
                      event: am.Event | am.MutSource | None = None
                      ) -> asyncio.Future[int]:  # type: ignore[override]
        """Remember `err` locally and add `[state, Exception, ErrOnClient]` on the source."""
        if (err is None or isinstance(err, asyncio.CancelledError)
                or self._refused(_NO_NAMES, backoff=False, queue=False)):
            return self._resolved(am.CANCELED)
        self.err = err
        trace = ""
        if err.__traceback__ is not None:
            trace = "".join(traceback.format_exception(err))
        merged = dict(args) if args else {}
        merged[am.ARG_EXCEPTION] = am.AException(err=err, trace=trace)
        states = [state] if state == am.EXCEPTION else [state, am.EXCEPTION]
        if ss.ERR_ON_CLIENT in self._remote_index:
            states.append(ss.ERR_ON_CLIENT)
        return self._send(Method.ADD, states, merged, event)

    def add_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Add without waiting for a reply; order with other mutations is kept.

        Returns EXECUTED when sent, CANCELED when not connected or disposed. Call
        `client.sync()` (or wait for a push) to see the effect.
        """
        return self._send(Method.ADD_NS, states, args, None)

    def remove_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """`remove` without a reply (see `add_ns`)."""
        return self._send(Method.REMOVE_NS, states, args, None)

    def set_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """`set` without a reply (see `add_ns`)."""
        return self._send(Method.SET_NS, states, args, None)

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
