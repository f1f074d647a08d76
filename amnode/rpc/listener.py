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


class Listener:
    """A listening TCP socket of a server or mux machine; `addr` is the real one once open."""

    __slots__ = ("addr", "server")

    def __init__(self, addr: str) -> None:
        #: `host:port` as given, then as bound (`:0` resolved)
        self.addr = addr
        #: the asyncio server while listening
        self.server: asyncio.AbstractServer | None = None

    async def open(self, mach: am.Machine, factory: Callable[[], asyncio.Protocol]) -> bool:
        """Listen on `addr` with `factory` making one protocol per accepted connection.

        False if it failed (logged, `ErrNetwork` added to `mach`) or `Start` of `mach` went away
        meanwhile; the caller moves its machine on either way.
        """
        try:
            host, port = parse_addr(self.addr)
            server = await asyncio.get_running_loop().create_server(factory, host, port,
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
