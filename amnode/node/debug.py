"""Live debugging of node processes: `amdbg attach` on a supervisor shows its whole pool.

* Every node process keeps a flight recorder (`amnode.telemetry.flight`, the last 64 to 127
  records of each machine) unless `AMNODE_DBG_RING` says otherwise, and tracks its machines
  from the moment `amnode.node` is imported.
* A supervisor's public and local aRPC ports also accept live stream connections (the
  telemetry's preface starts with a byte no aRPC frame starts with): `amdbg attach
  SUPERVISOR_ADDR` gets the supervisor process's stream and, relayed, each worker process's
  (`WorkerRelay`): for every attached debugger the supervisor opens a live connection to each
  worker's local port (the address of its existing link, with that link's id, which is the
  only id the worker's port admits), forwards the worker's stream, and does the same for
  workers that become ready later. A worker that dies ends its stream (the debugger marks its
  machines disconnected and keeps their data).
* A worker's local port accepts those relay connections from its supervisor only.

Attaching reads only: nothing a debugger sends reaches a machine. A slow debugger makes the
relay stop reading from the workers (flow control), so the workers' own bounded buffers drop
and count transitions (`STATS`) instead of anything growing in the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from typing import TYPE_CHECKING, Any

import amnode.machine as am
from amnode.telemetry import flight, process
from amnode.telemetry.endpoint import LiveSource
from amnode.telemetry.live_protocol import (
    HELLO_TIMEOUT,
    PREFACE,
    VERSION,
    LiveProtocolError,
    MessageReader,
    Msg,
    check_hello,
    control,
    read_control,
)

if TYPE_CHECKING:
    from .pool import PoolEntry
    from .supervisor import Supervisor
    from .worker import Worker

#: the first byte of a live connection (what the aRPC ports look for)
LIVE_BYTE = PREFACE[0]
#: seconds a relay waits for a worker's HELLO
RELAY_CONNECT_TIMEOUT = HELLO_TIMEOUT

_flight_enabled = False
#: the relays of each supervisor's attached debuggers
_relays: weakref.WeakKeyDictionary[Supervisor, set[WorkerRelay]] = \
    weakref.WeakKeyDictionary()

# a debugger attaching later gets every machine made from now on
process.track()


def enable_flight_recorder() -> None:
    """Keep a flight recorder in this node process (once; `AMNODE_DBG_RING` decides its size,
    `AMNODE_DBG_RING=0` turns it off)."""
    global _flight_enabled
    if _flight_enabled:
        return
    _flight_enabled = True
    if os.environ.get("AMNODE_DBG_RING", "").strip():
        return  # installed from the environment at import, with its size
    flight.enable(flight.DEFAULT_RING)


# ---------------------------------------------------------------------- supervisor


def serve_supervisor(sup: Supervisor) -> None:
    """Accept debuggers on both of `sup`'s ports (call before they listen)."""

    def made() -> LiveSource:
        return LiveSource(relay=lambda source: WorkerRelay(sup, source))

    for endpoint in (sup.mux, sup.local):
        if endpoint is not None:
            endpoint.side_protocols[LIVE_BYTE] = made
    sup.mach.bind_handlers(_WorkerWatch(sup), id="node-debug")


class _WorkerWatch:
    """On the supervisor: a worker became ready, relay it to every attached debugger."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def WorkerReadyState(self, e: am.Event) -> None:
        for relay in list(_relays.get(self.sup, ())):
            relay.sync()


def _relayable(entry: PoolEntry) -> bool:
    """A ready worker in another process (an in-process worker is in the supervisor's own
    stream already)."""
    return (entry.was_ready and bool(entry.local_addr) and not entry.gone
            and not entry.killing and entry.pid is not None and entry.pid != os.getpid())


class WorkerRelay:
    """One attached debugger's relay: a live connection to each worker, forwarded into the
    debugger's connection (`source`) as streams of their own."""

    def __init__(self, sup: Supervisor, source: LiveSource) -> None:
        self.sup = sup
        self.source = source
        self.history = bool((source.hello or {}).get("history", True))
        self.links: dict[str, _RelayLink] = {}
        self.closed = False
        _relays.setdefault(sup, set()).add(self)
        self.sync()

    def sync(self) -> None:
        """Connect to every ready worker not relayed yet."""
        if self.closed or self.source.closed:
            return
        for entry in list(self.sup.pool.entries.values()):
            if entry.key in self.links or not _relayable(entry):
                continue
            link = _RelayLink(self, entry, "rc-" + self.sup._link_id(entry))
            self.links[entry.key] = link
            self.source.expect_part()
            task = asyncio.get_running_loop().create_task(link.connect(entry.local_addr))
            link.task = task

    def close(self) -> None:
        """The debugger went: close every worker connection."""
        self.closed = True
        relays = _relays.get(self.sup)
        if relays is not None:
            relays.discard(self)
        for link in list(self.links.values()):
            link.close("the debugger detached")


class _RelayLink(asyncio.Protocol):
    """The supervisor's live connection to one worker, on behalf of one debugger."""

    def __init__(self, relay: WorkerRelay, entry: PoolEntry, link_id: str) -> None:
        self.relay = relay
        self.source = relay.source
        self.key = entry.key
        self.worker = entry.id
        self.link_id = link_id
        self.reader = MessageReader(preface=False)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[Any] | None = None
        self.streams: dict[int, int] = {}
        self.closed = False
        self._hello = False
        self._ready = False
        self._paused = False

    async def connect(self, addr: str) -> None:
        host, _, port = addr.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(
                lambda: self, host.strip("[]") or "127.0.0.1", int(port)),
                RELAY_CONNECT_TIMEOUT)
        except (OSError, ValueError, TimeoutError):
            self._finish("cannot connect to the worker")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.closed:
            transport.close()
            return
        transport.write(PREFACE + control(Msg.HELLO, 0, {
            "v": VERSION, "role": "relay", "id": self.link_id, "history": self.relay.history}))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.reader.deliver(data, self._message, lambda: self.closed)
        except LiveProtocolError as err:
            self.close(f"protocol error: {err}")
            return
        if not self.source.writable and not self._paused and self.transport is not None:
            # the debugger is slow: stop reading; the worker drops (and counts) meanwhile
            self._paused = True
            self.transport.pause_reading()
            self.source.on_writable.append(self._resume)

    def _resume(self) -> None:
        with contextlib.suppress(ValueError):
            self.source.on_writable.remove(self._resume)
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def _message(self, kind: int, stream: int, payload: bytes) -> None:
        source = self.source
        if not self._hello:
            if kind == Msg.BYE:
                self.close(f"refused: {read_control(kind, payload).get('reason', '')}")
                return
            if kind != Msg.HELLO:
                raise LiveProtocolError(f"expected HELLO, got {Msg(kind).name}")
            if check_hello(read_control(kind, payload), ("source", "refused")) == "refused":
                return  # its BYE says why
            self._hello = True
            return
        if kind == Msg.DATA:
            ours = self.streams.get(stream)
            if ours is None:
                raise LiveProtocolError(f"DATA for stream {stream}, which is not open")
            source.send(ours, payload)
        elif kind == Msg.OPEN:
            body = read_control(kind, payload)
            if stream in self.streams or len(self.streams) >= 16:
                raise LiveProtocolError(f"stream {stream} opened twice (or too many)")
            via = body.get("via")
            body["via"] = [*(via if isinstance(via, list) else []), self.relay.sup.mach.id]
            self.streams[stream] = source.open_stream(body)
        elif kind in (Msg.CLOSE, Msg.STATS):
            ours = self.streams.get(stream)
            if ours is None:
                raise LiveProtocolError(f"{Msg(kind).name} of stream {stream}, not open")
            source.send_control(Msg(kind), ours, read_control(kind, payload))
            if kind == Msg.CLOSE:
                del self.streams[stream]
        elif kind == Msg.READY:
            self._part_done()
        elif kind == Msg.BYE:
            self.close("the worker said goodbye")
        else:
            raise LiveProtocolError(f"unexpected {Msg(kind).name}")

    def _part_done(self) -> None:
        if not self._ready:
            self._ready = True
            self.source.part_ready()

    def eof_received(self) -> bool | None:
        self._finish("the worker closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(f"the worker's connection was lost: {exc}" if exc
                     else "the worker's connection closed")

    def close(self, reason: str) -> None:
        """Close the connection to the worker; its streams end."""
        transport = self.transport
        self._finish(reason)
        if transport is not None:
            transport.close()

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._resume_remove()
        source = self.source
        if not source.closed:
            for ours in self.streams.values():
                source.send_control(Msg.CLOSE, ours, {"reason": f"worker {self.worker}: {reason}"})
        self.streams.clear()
        self._part_done()
        links = self.relay.links
        if links.get(self.key) is self:
            del links[self.key]

    def _resume_remove(self) -> None:
        with contextlib.suppress(ValueError):
            self.source.on_writable.remove(self._resume)


# ---------------------------------------------------------------------- worker


def serve_worker(worker: Worker) -> None:
    """Accept relay connections from `worker`'s supervisor on its local port (call before it
    listens): the only id admitted is the supervisor link's the port admits."""
    local = worker.local

    def admit(hello: dict[str, Any]) -> str:
        hid = hello.get("id")
        allowed = {local.allow_id, local.client_id} - {None, ""}
        if not allowed or hid in allowed:
            return ""
        return "only this worker's supervisor may attach here"

    def made() -> LiveSource:
        return LiveSource(admit=admit, roles=("relay",))

    local.side_protocols[LIVE_BYTE] = made


__all__ = ["LIVE_BYTE", "WorkerRelay", "enable_flight_recorder", "serve_supervisor",
           "serve_worker"]
