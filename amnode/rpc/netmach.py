"""The network mirror: a machine whose clock follows a remote state source (Go NetworkMachine).

Reads (`is_active`, `tick`, `clock`, `time`, `when*`, `state_ctx`, `str`, `inspect`, ...) are
local and inherited from `am.Machine`. Mutations (`add`, `remove`, `set`, `toggle`, `add_err*`)
are sent to the source at once and return an awaitable future with the source's result; the
`*_ns` variants return at once without a reply. Received clocks are applied as synthetic
transitions: tracers, final handlers (`FooState`, `FooEnd`, `AnyState`) and waits fire exactly as
on a local machine; relations are never evaluated here.

Two narrow seams connect the mirror and its client: the mirror sends through a `MutationSender`
(which `Client` implements), and the client feeds it with `apply_remote_time` and
`set_remote_states`. Neither touches the other's internals.

A mirror is a `Machine` (handlers, tracers and recorders see it as one, and `e.machine` in its
handlers is the mirror), but its mutations return awaitables where `Machine`'s return results:
that is the one deliberate break of substitutability, so the overrides below carry
`type: ignore[override]`. Code that must not confuse the two takes the structural types of
`amnode.machine.protocols`: `RemoteMachine` (which a mirror satisfies) or `LocalMachine` (which it
does not).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import amnode.machine as am
from amnode.machine.schema import SchemaLike, StatesArg
from amnode.states import rpc as ss

from .errors import MirrorUnsupportedError, NoAccessError
from .protocol import Method

if TYPE_CHECKING:
    from amnode.machine.protocols import RemoteMachine

log = logging.getLogger("amnode.rpc")

PREFIX_NETMACH = "rnm-"
TAG_NETMACH = "rpc-netmach"

_SET = am.MutationType.SET
_CHANGES = int(am.LogLevel.CHANGES)
_NO_NAMES: list[str] = []


class MutationSender(Protocol):
    """What a mirror needs from its connection to the source (implemented by `Client`).

    Both methods send at once, so call order is wire order; states are indexes in the source's
    (wire) order; `event` is the mutation's source, recorded by the server.
    """

    def send_mutation(self, method: Method, states: list[int], args: dict[str, Any] | None,
                      event: am.Event | am.MutSource | None) -> asyncio.Future[int] | None:
        """Send Add, Remove or Set; a future with the source's Result (after retries), or None
        when not connected and `Ready` (nothing was sent)."""

    def notify_mutation(self, method: Method, states: list[int], args: dict[str, Any] | None,
                        event: am.Event | am.MutSource | None) -> bool:
        """Send AddNS, RemoveNS or SetNS (no reply); False when not `Ready` (nothing sent)."""


class NetworkMachine(am.Machine):
    """Client-side mirror of a remote machine; created by `Client` (see `client.netmach`).

    Its mutations return awaitables (see the module docstring and `RemoteMachine`).
    """

    def __init__(self, sender: MutationSender, schema: SchemaLike | None, id: str,
                 parent: am.Machine | str | None = None, tags: Iterable[str] = (),
                 log_level: am.LogLevel | int | None = None) -> None:
        super().__init__(schema or {}, id=id, parent=parent, tags=tags, log_level=log_level)
        self._sender = sender
        #: id of the source machine (after the first handshake)
        self.remote_id = ""
        #: the source of the transitions applied from it (frozen, reused)
        self._remote_source: am.MutSource | None = None
        #: True when the schema came from the source or the client (not inferred from names)
        self.has_schema = schema is not None
        self._remote_names: list[str] = list(self._names)
        self._remote_index: dict[str, int] = {n: i for i, n in enumerate(self._remote_names)}
        #: mark states required by active ones as active (partial sync with a schema)
        self._infer = False
        #: the only states the source lets this mirror mutate (None: all)
        self.mutable_states: frozenset[str] | None = None

    # --- schema and names from the source ---

    def set_remote_states(self, names: Sequence[str], schema: Mapping[str, am.State] | None,
                          infer: bool, mutable: Iterable[str] | None = None) -> None:
        """Adopt the source's state names (and schema; None: relations unknown) from a
        handshake or schema change; with `infer`, states required by active ones show active;
        `mutable` are the only states the source lets this mirror mutate (None: all)."""
        self.mutable_states = None if mutable is None else frozenset(mutable)
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

    def apply_remote_time(self, time_: Sequence[int], queue_tick: int, machine_tick: int,
                          mtype: am.MutationType = _SET, called: Sequence[int] | None = None
                          ) -> None:
        """Show the source's clock `time_` (in the source's index space) as one transition;
        `mtype` and `called` (source indexes) describe it when known (SyncMutations)."""
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
        source = self._remote_source
        if source is None or source.mach_id != self.remote_id:
            source = self._remote_source = am.MutSource(self.remote_id)
        self.apply_clock(time_, called=called_names, mutation_type=mtype, active=active,
                         source=source, queue_tick=queue_tick, machine_tick=machine_tick)

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

    def _check_mutable(self, method: Method, states: StatesArg) -> None:
        """Raise NoAccessError, sending nothing, for a mutation the source would refuse: a state
        outside its `mutable_states` (a Set changes every state, so it needs all of them)."""
        allowed = self.mutable_states
        if allowed is None:
            return
        if method in (Method.SET, Method.SET_NS):
            refused = [n for n in self._remote_names if n not in allowed]
        else:
            names = [states] if isinstance(states, str) else list(dict.fromkeys(states))
            refused = [n for n in names if n not in allowed]
        if refused:
            verb = method.name.lower()
            raise NoAccessError(f"{self.remote_id}: {self.id} may not {verb} {', '.join(refused)}"
                                " (not in the source's mutable states)")

    def _resolved(self, result: int) -> asyncio.Future[int]:
        """A future already holding `result`. Needs no running loop: without one it belongs to
        the mirror's loop (awaiting a done future never runs that loop)."""
        loop: asyncio.AbstractEventLoop | None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop
        if loop is None:  # a mirror made outside any loop: any loop object will do
            loop = asyncio.new_event_loop()
            loop.close()
        fut: asyncio.Future[int] = loop.create_future()
        fut.set_result(result)
        return fut

    def _send(self, method: Method, states: StatesArg, args: dict[str, Any] | None,
              event: am.Event | am.MutSource | None) -> asyncio.Future[int]:
        """Send Add, Remove or Set to the source (the only path there is): a future with the
        source's Result. Unknown states raise StateUnknownError and another thread
        WrongThreadError (the machine's guards); a disposed mirror or a client that is not
        `Ready` sends nothing and cancels."""
        idxs = self._remote_idxs(states)
        self._check_mutable(method, states)
        fut = None
        if not self._refused(_NO_NAMES, backoff=False, queue=False):
            fut = self._sender.send_mutation(method, idxs, args, event)
        return self._resolved(am.CANCELED) if fut is None else fut

    def _send_ns(self, method: Method, states: StatesArg, args: dict[str, Any] | None) -> int:
        """Send AddNS, RemoveNS or SetNS: EXECUTED when sent, CANCELED otherwise (as `_send`)."""
        idxs = self._remote_idxs(states)
        self._check_mutable(method, states)
        if self._refused(_NO_NAMES, backoff=False, queue=False):
            return am.CANCELED
        return am.EXECUTED if self._sender.notify_mutation(method, idxs, args, None) \
            else am.CANCELED

    # The mutations below return awaitables where Machine's return results: a deliberate,
    # documented break of substitutability (see the module docstring), hence the ignores.

    def add(  # type: ignore[override]
            self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Activate states on the source; await the future for its Result."""
        return self._send(Method.ADD, states, args, event)

    def remove(  # type: ignore[override]
            self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Deactivate states on the source; await the future for its Result."""
        return self._send(Method.REMOVE, states, args, event)

    def set(  # type: ignore[override]
            self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Set exactly these states on the source; await the future for its Result."""
        return self._send(Method.SET, states, args, event)

    def toggle(  # type: ignore[override]
            self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Remove if all are active (locally), else add; decided locally like Go (not atomic)."""
        names = [states] if isinstance(states, str) else list(states)
        self._remote_idxs(names)
        if self.is_active(names):
            return self.remove(names, args, event=event)
        return self.add(names, args, event=event)

    add1 = add  # type: ignore[assignment]
    remove1 = remove  # type: ignore[assignment]
    toggle1 = toggle  # type: ignore[assignment]

    def add_err(  # type: ignore[override]
            self, err: BaseException | None, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Remember `err` locally and add `Exception` (+`ErrOnClient`) on the source."""
        return self.add_err_state(am.EXCEPTION, err, args, event=event)

    def add_err_state(  # type: ignore[override]
            self, state: str, err: BaseException | None, args: dict[str, Any] | None = None, *,
            event: am.Event | am.MutSource | None = None) -> asyncio.Future[int]:
        """Remember `err` locally and add `[state, Exception, ErrOnClient]` on the source."""
        if (err is None or isinstance(err, asyncio.CancelledError)
                or self._refused(_NO_NAMES, backoff=False, queue=False)):
            return self._resolved(am.CANCELED)
        states = [state] if state == am.EXCEPTION else [state, am.EXCEPTION]
        if ss.ERR_ON_CLIENT in self._remote_index:
            states.append(ss.ERR_ON_CLIENT)
        self._check_mutable(Method.ADD, states)
        self.err = err
        trace = ""
        if err.__traceback__ is not None:
            trace = "".join(traceback.format_exception(err))
        merged = dict(args) if args else {}
        merged[am.ARG_EXCEPTION] = am.AException(err=err, trace=trace)
        return self._send(Method.ADD, states, merged, event)

    def add_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Add without waiting for a reply; order with other mutations is kept.

        Returns EXECUTED when sent, CANCELED when not connected or disposed. Call
        `client.sync()` (or wait for a push) to see the effect.
        """
        return self._send_ns(Method.ADD_NS, states, args)

    def remove_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """`remove` without a reply (see `add_ns`)."""
        return self._send_ns(Method.REMOVE_NS, states, args)

    def set_ns(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """`set` without a reply (see `add_ns`)."""
        return self._send_ns(Method.SET_NS, states, args)

    add1_ns = add_ns

    @property
    def queue_len(self) -> int:
        """Always 0: the queue lives on the source."""
        return 0

    @property
    def client(self) -> MutationSender:
        """The aRPC client feeding this mirror (seen through its `MutationSender` side)."""
        return self._sender

    def __repr__(self) -> str:
        return f"NetworkMachine({self.id} <- {self.remote_id} {self})"


if TYPE_CHECKING:
    def _mirror_is_remote(m: NetworkMachine) -> RemoteMachine:
        """Checked by mypy: a mirror satisfies `RemoteMachine`."""
        return m


__all__ = ["PREFIX_NETMACH", "TAG_NETMACH", "MutationSender", "NetworkMachine"]
