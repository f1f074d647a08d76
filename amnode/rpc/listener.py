"""Listening for `Server` and `Mux`: one listening socket helper and one start-and-wait helper.

Both endpoints listen the same way (an `ErrNetwork` on their machine when the address is taken
or invalid) and `start()` fails the same way: with `ConnectionError`, whether listening failed,
`Start` went away, or the timeout passed first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import amnode.machine as am
from amnode.states import rpc as ss

from .addr import format_addr, parse_addr
from .errors import ListenError

log = logging.getLogger("amnode.rpc")


#: seconds a connection to a port with side protocols has to send its first byte
SNIFF_TIMEOUT = 10.0


class Listener:
    """A listening TCP socket of a server or mux machine; `addr` is the real one once open.

    `side` maps a first byte to the factory of another protocol served on the same port (e.g.
    the live debugger's, whose preface starts with 0x89): an aRPC connection always starts
    with 0x00 (the high byte of its first frame's length), so a connection is handed to the
    protocol its first byte selects. Without side protocols nothing changes.
    """

    __slots__ = ("addr", "server", "side")

    def __init__(self, addr: str) -> None:
        #: `host:port` as given, then as bound (`:0` resolved)
        self.addr = addr
        #: the asyncio server while listening
        self.server: asyncio.AbstractServer | None = None
        #: first byte -> factory of the protocol that takes such a connection instead
        self.side: dict[int, Callable[[], asyncio.Protocol]] = {}

    async def open(self, mach: am.Machine, factory: Callable[[], asyncio.Protocol]) -> bool:
        """Listen on `addr` with `factory` making one protocol per accepted connection.

        False if it failed (logged, `ErrNetwork` added to `mach`) or `Start` of `mach` went away
        meanwhile; the caller moves its machine on either way.
        """
        try:
            host, port = parse_addr(self.addr)
            side = self.side

            def made() -> asyncio.Protocol:
                return _Sniffer(factory, side) if side else factory()

            server = await asyncio.get_running_loop().create_server(made, host, port,
                                                                    reuse_address=True)
        except (OSError, ValueError) as err:
            log.warning("%s: cannot listen on %s: %s", mach.id, self.addr, err)
            mach.add_err_state(ss.ERR_NETWORK, err)
            return False
        if not mach.is_active(ss.START):
            server.close()
            return False
        self.close()
        self.server = server
        self.addr = format_addr(server.sockets[0].getsockname())
        return True

    def close(self) -> None:
        """Stop listening (accepted connections stay)."""
        server, self.server = self.server, None
        if server is not None:
            server.close()


class _Sniffer(asyncio.Protocol):
    """Waits for a connection's first byte, then hands the connection to the aRPC protocol or
    to the side protocol that byte selects (see `Listener`)."""

    def __init__(self, factory: Callable[[], asyncio.Protocol],
                 side: dict[int, Callable[[], asyncio.Protocol]]) -> None:
        self.factory = factory
        self.side = side
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(SNIFF_TIMEOUT, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        transport = self.transport
        assert transport is not None and data
        make = self.side.get(data[0], self.factory)
        proto = make()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if not transport.is_closing():
            proto.data_received(data)

    def eof_received(self) -> bool | None:
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def start_and_wait(mach: am.Machine, start: Callable[[], object], ready: str,
                         addr: Callable[[], str], timeout: float | None) -> None:
    """Call `start` (it adds `Start`) and wait until `ready` is active.

    Raises ConnectionError when that does not happen: `Start` was removed, a new `ErrNetwork`
    was added (e.g. the port is taken) or `timeout` seconds passed.
    """
    errors = mach.tick(ss.ERR_NETWORK)
    start()
    if mach.is_active(ready):
        return
    # the next activation of ErrNetwork, counted from before `start`
    new_error = {ss.ERR_NETWORK: errors + (2 if errors & 1 else 1)}
    waits = [asyncio.ensure_future(w) for w in (
        mach.when(ready), mach.when_not(ss.START), mach.when_time(new_error))]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            if w.done() and not w.cancelled():
                w.exception()  # retrieved (e.g. DisposedError): nothing to log later
            w.cancel()
    if mach.is_active(ready):
        return
    why = f"not {ready} after {timeout}s" if not done else str(mach.err)
    raise ListenError(f"{mach.id}: cannot listen on {addr()}: {why}")


__all__ = ["Listener", "start_and_wait"]
