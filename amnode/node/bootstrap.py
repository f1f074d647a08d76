"""The bootstrap: one tiny aRPC server per forked worker, where the new worker reports back.

The supervisor cannot know where a worker process will listen, so it listens first: each fork
gets a bootstrap machine exposed on 127.0.0.1:0, whose address is passed to the worker as
`-a ADDR`. The worker adds `WorkerAddr` with its addresses (the only mutation allowed there)
and the bootstrap forwards them to the supervisor as `WorkerConnected`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

import amnode.machine as am
from amnode.states import node as ss

from .access import GuardedServer, Origin, Policy, RemoteGuard
from .args import ARG, WorkerAddrArgs, get_args
from .config import adopt
from .links import later
from .naming import bootstrap_name

if TYPE_CHECKING:
    from .supervisor import Supervisor

TAG_BOOTSTRAP = "node-bootstrap"

#: a worker process may only report its addresses
WORKER_POLICY = Policy("the worker", allow=ss.BOOTSTRAP_CLIENT_STATES)

#: longest address or id a worker may report
MAX_FIELD = 256


class Bootstrap:
    """The report-back endpoint of one fork (Go newBootstrap)."""

    def __init__(self, supervisor: Supervisor, key: str) -> None:
        self.supervisor = supervisor
        self.key = key
        self.name = bootstrap_name(supervisor.name)
        self.guard = RemoteGuard()
        self.mach = am.Machine(ss.BootstrapSchema, id="nb-" + self.name,
                               parent=supervisor.mach,
                               tags=[TAG_BOOTSTRAP, f"kind:{supervisor.kind}"],
                               log_level=supervisor.log_level,
                               handler_timeout=supervisor.mach.handler_timeout)
        self.mach.verify_states(ss.BOOTSTRAP_STATES)
        self.mach.bind_tracer(self.guard)
        self.server = GuardedServer(self.mach, f"{supervisor.host}:0", name=self.mach.id,
                                    parent=self.mach, guard=self.guard,
                                    origin=Origin(WORKER_POLICY),
                                    log_level=supervisor.log_level,
                                    mutable_states=ss.BOOTSTRAP_CLIENT_STATES)
        adopt(self.server.mach, self.mach)
        #: what the worker reported (None until then)
        self.reported: WorkerAddrArgs | None = None
        self.mach.bind_handlers(_BootstrapHandlers(self), id="node-bootstrap")

    @property
    def addr(self) -> str:
        """Where the worker reports (`host:port` once listening)."""
        return self.server.addr

    async def start(self, timeout: float) -> None:
        """Listen; raises ConnectionError if it cannot."""
        self.mach.add(ss.START)
        await self.server.start(timeout)

    async def stop(self) -> None:
        """Close the port and dispose both machines."""
        with contextlib.suppress(Exception):
            await self.server.stop(dispose=True)
        if not self.mach.is_disposed:
            self.mach.dispose()

    def dispose(self) -> None:
        """Dispose at once."""
        if not self.server.mach.is_disposed:
            self.server.dispose()
        if not self.mach.is_disposed:
            self.mach.dispose()


class _BootstrapHandlers:
    def __init__(self, boot: Bootstrap) -> None:
        self.b = boot

    def AnyEnter(self, e: am.Event) -> bool:
        """The worker may only add `WorkerAddr`."""
        return self.b.guard.check(e)

    def WorkerAddrEnter(self, e: am.Event) -> bool:
        """Once, with a worker id and two addresses."""
        b = self.b
        args = get_args(e, WorkerAddrArgs)
        if b.reported is not None or args is None:
            return False
        fields = (args.id, args.local_addr, args.public_addr)
        if not all(isinstance(f, str) and 0 < len(f) <= MAX_FIELD for f in fields):
            b.mach.log("WorkerAddr with invalid fields: %r", args)
            return False
        return isinstance(args.pid, int)

    def WorkerAddrState(self, e: am.Event) -> None:
        """Forward the addresses to the supervisor (`WorkerConnected`)."""
        b = self.b
        args = get_args(e, WorkerAddrArgs)
        assert args is not None
        b.reported = args
        later(b.supervisor.mach, "add", ss.WORKER_CONNECTED,
              {ARG: dataclasses.replace(args, key=b.key)}, e)


__all__ = ["TAG_BOOTSTRAP", "WORKER_POLICY", "Bootstrap"]
