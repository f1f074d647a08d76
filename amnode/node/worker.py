"""The node worker: a machine that does work for one client at a time, in its own process.

A worker listens twice on 127.0.0.1 (by default): a local aRPC server for its supervisor and a
public one for the one client it is leased to. Started with a bootstrap address, it reports
both addresses back (`WorkerAddr` on the supervisor's per-fork bootstrap), then waits for the
supervisor to connect. `ServeClient` leases it to one aRPC client id (nobody else can connect to
the public port), `ClientSendPayload` delivers a payload to that client and `SuperSendPayload`
to the supervisor. Without a supervisor connection for `supervisor_grace` seconds it exits.

A worker script ends with `node.run_worker(kind, schema, handlers)`; the supervisor starts it
as `worker_cmd -a <bootstrap addr>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import amnode.machine as am
from amnode.machine.schema import SchemaLike
from amnode.rpc import CALL_RETRY, CONN_RETRY, Client, Server
from amnode.states import node as ss
from amnode.states import rpc as ssrpc

from . import debug
from .access import GuardedServer, Origin, Policy, RemoteGuard, SupervisorPort
from .args import ARG, ServeClientArgs, WorkerAddrArgs, get_args
from .config import DEFAULT_TIMEOUT, NodeTimeouts, adopt, resolve_handler_timeout
from .errors import BootstrapError, NodeError
from .links import pipe
from .naming import host_name, worker_name
from .spawn import ADOPT_ENV, BOOT_ADDR_ENV, GRACE_ENV, PARENT_ENV, SUPERVISOR_ENV

log = logging.getLogger("amnode.node")

TAG_WORKER = "node-worker"

#: what the leased client may not do on the worker's public port
CLIENT_POLICY = Policy("the client", deny=ss.WORKER_CONTROL_STATES)


def check_worker_schema(schema: SchemaLike, what: str = "worker schema") -> None:
    """Raise `am.SchemaError` unless `schema` has every state of `ssnode.WorkerSchema`."""
    missing = ss.missing_states(schema, ss.WORKER_STATES)
    if missing:
        raise am.SchemaError(f"{what} lacks the node worker states {', '.join(missing)}; "
                             "extend it with am.schema_merge(ssnode.WorkerSchema, {...})")


def worker_names(schema: SchemaLike, names: Sequence[str] | None = None) -> list[str]:
    """The state order of a worker: the node worker states first, then the user's."""
    if names is not None:
        return list(names)
    return [*ss.WORKER_STATES, *(n for n in schema if n not in ss.WORKER_STATES)]


def _closed_token() -> str:
    """An `allow_id` no client can present: the public port accepts nobody until leased."""
    return "-unleased-" + secrets.token_hex(16)


class Worker:
    """A node worker (Go NewWorker): `await w.start(boot_addr)`, `await w.stop()`.

    `handlers` (any object with `FooState`-style methods) are bound after the node's own, so
    argument checks of node states run first. Slow work belongs in `async` handlers or
    threads: handlers run on the machine's loop under its handler timeout.
    """

    def __init__(self, kind: str, schema: SchemaLike, handlers: object | None = None, *,
                 names: Sequence[str] | None = None, host: str = "127.0.0.1",
                 timeouts: NodeTimeouts | None = None, parent: am.Machine | str | None = None,
                 tags: Sequence[str] = (), name: str | None = None,
                 log_level: am.LogLevel | int | None = None,
                 handler_timeout: float | None = DEFAULT_TIMEOUT,
                 supervisor_id: str | None = None, adopt_token: str | None = None,
                 on_exit: Callable[[str], None] | None = None) -> None:
        if not kind:
            raise ValueError("a worker needs a kind")
        check_worker_schema(schema)
        self.kind = kind
        self.host = host
        self.timeouts = (timeouts or NodeTimeouts()).resolve()
        grace = os.environ.get(GRACE_ENV)
        #: seconds without a supervisor connection before the worker exits
        self.supervisor_grace = self.timeouts.supervisor_grace
        if grace:
            with contextlib.suppress(ValueError):
                self.supervisor_grace = max(0.0, float(grace))
        self.name = name or worker_name(kind)
        #: called with a reason when the worker decides to exit (default: `stop()`)
        self.on_exit = on_exit
        #: why the worker exited by itself ("" while running)
        self.exit_reason = ""
        #: the aRPC client id the worker is leased to ("" if none)
        self.lease_client = ""
        self.boot_addr = ""
        self.local_addr = ""
        self.public_addr = ""
        self.guard = RemoteGuard()
        if parent is None:
            parent = os.environ.get(PARENT_ENV) or None
        debug.enable_flight_recorder()
        self.mach = am.Machine(schema, id="nw-" + self.name, parent=parent,
                               tags=[TAG_WORKER, f"kind:{kind}", f"host:{host_name()}", *tags],
                               log_level=log_level,
                               handler_timeout=resolve_handler_timeout(handler_timeout))
        self.mach.verify_states(worker_names(schema, names))
        self.mach.set_groups({"WorkStatus": ss.WORK_STATUS_GROUP})
        self.mach.bind_tracer(self.guard)
        #: the supervisor's aRPC id, the only one the local port admits (None: anyone)
        self.supervisor_id = supervisor_id or os.environ.get(SUPERVISOR_ENV) or None
        self.local = SupervisorPort(
            self.mach, f"{host}:0", name="nw-loc-" + self.name, parent=self.mach,
            delivery_timeout=self.timeouts.delivery, allow_id=self.supervisor_id,
            adopt_token=adopt_token or os.environ.get(ADOPT_ENV) or None)
        debug.serve_worker(self)  # its supervisor relays it to attached debuggers
        self.public = GuardedServer(
            self.mach, f"{host}:0", name="nw-pub-" + self.name, parent=self.mach,
            allow_id=_closed_token(), delivery_timeout=self.timeouts.delivery, guard=self.guard,
            origin=Origin(CLIENT_POLICY),
            mutable_states=ss.worker_client_states(self.mach.state_names))
        adopt(self.local.mach, self.mach)
        adopt(self.public.mach, self.mach)
        pipe(self.local.mach, self.mach, ssrpc.RPC_READY, ss.LOCAL_RPC_READY)
        pipe(self.local.mach, self.mach, ssrpc.HANDSHAKE_DONE, ss.SUPER_CONNECTED)
        pipe(self.public.mach, self.mach, ssrpc.RPC_READY, ss.PUBLIC_RPC_READY)
        pipe(self.public.mach, self.mach, ssrpc.HANDSHAKE_DONE, ss.CLIENT_CONNECTED)
        self.boot_rpc: Client | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped = False
        self._parent_pid = os.getppid()
        self.mach.bind_handlers(_WorkerHandlers(self), id="node-worker")
        if handlers is not None:
            self.mach.bind_handlers(handlers)

    # --- public API ---

    async def start(self, boot_addr: str | None = None, timeout: float | None = None) -> None:
        """Listen on both ports and, with `boot_addr`, report to the supervisor's bootstrap.

        Returns once the worker is `Ready` (and reported); raises `NodeError` otherwise.
        """
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self.boot_addr = boot_addr or ""
        res = self.mach.add(ss.START, {"boot_addr": self.boot_addr} if boot_addr else None)
        if res == am.CANCELED:
            raise NodeError(f"{self.mach.id}: Start canceled")
        limit = timeout if timeout is not None else self.timeouts.connect * 2
        try:
            await asyncio.wait_for(asyncio.shield(self._started), limit)
        except TimeoutError:
            raise NodeError(f"{self.mach.id}: not ready after {limit}s") from None
        except asyncio.CancelledError:
            self.dispose()  # nobody will stop a worker whose start was cancelled
            raise

    async def stop(self, dispose: bool = True) -> None:
        """Close both ports (peers get a goodbye), stop, and dispose the machine."""
        if self._stopped:
            if dispose:
                self.dispose()
            return
        self._stopped = True
        for srv in (self.public, self.local):
            with contextlib.suppress(Exception):
                await srv.stop(dispose=dispose)
        boot = self.boot_rpc
        if boot is not None:
            with contextlib.suppress(Exception):
                await boot.stop(dispose=True)
        if not self.mach.is_disposed:
            self.mach.remove(ss.START)
        if dispose:
            self.dispose()

    def dispose(self) -> None:
        """Dispose the machine and its servers at once (no goodbye)."""
        self._stopped = True
        for srv in (self.public, self.local):
            if not srv.mach.is_disposed:
                srv.dispose()
        if self.boot_rpc is not None and not self.boot_rpc.mach.is_disposed:
            self.boot_rpc.dispose()
        if not self.mach.is_disposed:
            self.mach.dispose()

    # --- internals ---

    def _resolve_started(self, err: BaseException | None = None) -> None:
        fut = self._started
        if fut is None or fut.done():
            return
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)

    async def _listen(self) -> None:
        """Both servers listen (bound to `Start`)."""
        try:
            await asyncio.gather(self.local.start(self.timeouts.connect),
                                 self.public.start(self.timeouts.connect))
        except ConnectionError as err:
            self.mach.add_err_state(ss.ERR_NETWORK, err)
            self._resolve_started(NodeError(f"{self.mach.id}: cannot listen: {err}"))

    async def _report(self) -> None:
        """Tell the bootstrap where this worker listens (bound to `RpcReady`)."""
        mach = self.mach
        args = WorkerAddrArgs(mach.id, self.local_addr, self.public_addr, os.getpid())
        client = Client(self.boot_addr, id=mach.id, schema=ss.BootstrapSchema, parent=mach,
                        conn_timeout=self.timeouts.connect,
                        conn_retry=CONN_RETRY.with_(max_tries=2, first_delay=0.1),
                        call_timeout=self.timeouts.connect,
                        call_retry=CALL_RETRY.with_(max_tries=2))
        self.boot_rpc = client
        adopt(client.mach, mach)
        err: BaseException | None = None
        try:
            await client.start()
            ready = asyncio.ensure_future(client.mach.when(ss.READY))
            gone = asyncio.ensure_future(client.mach.when_not(ss.START))
            try:
                await asyncio.wait({ready, gone}, timeout=self.timeouts.connect * 2,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in (ready, gone):
                    w.cancel()
            if not client.mach.is_active(ss.READY):
                raise BootstrapError(f"cannot reach the bootstrap at {self.boot_addr}")
            assert client.netmach is not None
            res = await client.netmach.add(ss.WORKER_ADDR, {ARG: args})
            if res != am.EXECUTED:
                raise BootstrapError(f"the bootstrap at {self.boot_addr} refused WorkerAddr")
        except Exception as exc:
            err = exc
        finally:
            with contextlib.suppress(Exception):
                await client.stop(dispose=True)
            self.boot_rpc = None
        if err is not None:
            mach.add_err_state(ss.ERR_SUPERVISOR, err)
            self._resolve_started(err if isinstance(err, NodeError) else BootstrapError(str(err)))
            self._exit(f"cannot report to the supervisor: {err}")
            return
        mach.log("reported to %s", self.boot_addr)
        self._resolve_started()
        if not mach.is_active(ss.SUPER_CONNECTED):
            mach.fork(self._grace("no supervisor connected"), ss.SUPER_CONNECTED)

    async def _grace(self, why: str) -> None:
        """Exit unless a supervisor connects within the grace period (bound to the inactive
        `SuperConnected`: its next activation cancels this)."""
        await asyncio.sleep(self.supervisor_grace)
        if not self.mach.is_active(ss.SUPER_CONNECTED):
            self._exit(f"{why} for {self.supervisor_grace}s")

    async def watch_parent(self, interval: float = 0.5) -> None:
        """Notice the death of the parent process; without a supervisor connection the
        grace period then starts (for a worker process, see `run_worker`)."""
        while not self._stopped:
            await asyncio.sleep(interval)
            if os.getppid() != self._parent_pid:
                self.mach.log("parent process %d is gone", self._parent_pid)
                if not self.mach.is_active(ss.SUPER_CONNECTED):
                    self.mach.fork(self._grace("parent process gone, no supervisor"),
                                   ss.SUPER_CONNECTED)
                return

    def _exit(self, why: str) -> None:
        if self.exit_reason or self._stopped:
            return
        self.exit_reason = why
        self.mach.log("exiting: %s", why)
        log.info("%s: exiting: %s", self.mach.id, why)
        if self.on_exit is not None:
            self.on_exit(why)
        else:
            asyncio.get_running_loop().create_task(self.stop())

    async def _deliver(self, server: Server, name: str, data: Any, dest: str | None,
                       err_state: str, event: am.Event) -> None:
        """Send one payload; a failure becomes `err_state` (ErrClient or ErrSupervisor)."""
        try:
            await server.send_payload(name, data, dest, event=event,
                                      timeout=self.timeouts.delivery)
        except Exception as err:
            if not self.mach.is_disposed:
                self.mach.log("payload %s not delivered: %s", name, err)
                self.mach.add_err_state(err_state, err, {"name": name})

    def __repr__(self) -> str:
        return f"Worker({self.mach.id} local={self.local_addr} public={self.public_addr})"


class _WorkerHandlers:
    """The node worker's own handlers (bound before the user's)."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker

    def AnyEnter(self, e: am.Event) -> bool:
        """The leased client may not touch node control states."""
        return self.w.guard.check(e)

    def StartState(self, e: am.Event) -> None:
        """Listen on both ports (in a task bound to `Start`)."""
        self.w.mach.fork(self.w._listen(), ss.START)

    def StartEnd(self, e: am.Event) -> None:
        """Stop both servers unless `stop()` does it already."""
        w = self.w
        if not w._stopped:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(w.stop(dispose=False))

    def LocalRpcReadyState(self, e: am.Event) -> None:
        """The supervisor's port listens."""
        self.w.local_addr = self.w.local.addr

    def PublicRpcReadyState(self, e: am.Event) -> None:
        """The client's port listens."""
        self.w.public_addr = self.w.public.addr

    def RpcReadyState(self, e: am.Event) -> None:
        """Both ports listen: `Ready`, then report back to the bootstrap (if started by one)."""
        w = self.w
        w.mach.add(ss.READY)
        if w.boot_addr:
            w.mach.fork(w._report(), ss.RPC_READY)
        else:
            w._resolve_started()

    def SuperConnectedEnd(self, e: am.Event) -> None:
        """The supervisor is gone: exit after the grace period unless one connects again."""
        w = self.w
        if not w._stopped and w.mach.is_active(ss.START):
            w.mach.fork(w._grace("supervisor connection lost"), ss.SUPER_CONNECTED)

    def ServeClientEnter(self, e: am.Event) -> bool:
        """Needs a client id; a worker leased to another client refuses."""
        w = self.w
        args = get_args(e, ServeClientArgs)
        if args is None or not isinstance(args.client_id, str) or not args.client_id:
            w.mach.log("ServeClient without a client id")
            return False
        if w.mach.is_active(ss.RESERVED) and w.lease_client != args.client_id:
            w.mach.log("ServeClient %s refused: leased to %s", args.client_id, w.lease_client)
            return False
        return True

    def ServeClientState(self, e: am.Event) -> None:
        """Accept exactly this client on the public port, and mark the lease (`Reserved`)."""
        w = self.w
        args = get_args(e, ServeClientArgs)
        assert args is not None
        w.lease_client = args.client_id
        w.public.allow_id = args.client_id
        w.mach.add(ss.RESERVED, {ARG: args})
        w.mach.remove(ss.SERVE_CLIENT)

    def ReservedEnd(self, e: am.Event) -> None:
        """The lease ended: nobody may connect, the client is dropped, work states reset."""
        w = self.w
        w.lease_client = ""
        w.public.allow_id = _closed_token()
        pub = w.public.mach
        if not pub.is_disposed and pub.is_active(ss.CLIENT_CONNECTED):
            pub.remove(ss.CLIENT_CONNECTED)
        if w.mach.is_active(ss.START):
            w.mach.remove([ss.WORK_REQUESTED, ss.WORKING, ss.WORK_READY])

    def ClientSendPayloadEnter(self, e: am.Event) -> bool:
        """Needs `name` (a non-empty string); `data` is any aRPC value."""
        name = e.args.get("name")
        return isinstance(name, str) and bool(name)

    def ClientSendPayloadState(self, e: am.Event) -> None:
        """Deliver to the leased client (failures: `ErrClient`); a Multi state, each add is one
        payload (it stays active: no extra transition per payload)."""
        w = self.w
        w.mach.fork(w._deliver(w.public, e.args["name"], e.args.get("data"),
                               w.lease_client or None, ss.ERR_CLIENT, e))

    def SuperSendPayloadEnter(self, e: am.Event) -> bool:
        """Needs `name` (a non-empty string)."""
        name = e.args.get("name")
        return isinstance(name, str) and bool(name)

    def SuperSendPayloadState(self, e: am.Event) -> None:
        """Deliver to the supervisor (failures: `ErrSupervisor`)."""
        w = self.w
        w.mach.fork(w._deliver(w.local, e.args["name"], e.args.get("data"), None,
                               ss.ERR_SUPERVISOR, e))

    def HealthcheckState(self, e: am.Event) -> None:
        """Alive: self-removing (the tick proves it)."""
        self.w.mach.remove(ss.HEALTHCHECK)


class _OrphanSafeStream:
    """stdout/stderr of a worker process: once its supervisor (the pipe's reader) is gone, a
    write raises BrokenPipeError; the output is then dropped instead of failing the handler
    that printed (an adopted worker's output has no reader any more)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._broken = False

    def _break(self) -> None:
        self._broken = True
        with contextlib.suppress(OSError, ValueError):
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)  # C-level writes to the fd are dropped too
            os.close(null)

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                return int(self._stream.write(text))
            except (BrokenPipeError, ConnectionResetError):
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except (BrokenPipeError, ConnectionResetError):
                self._break()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def parse_boot_addr(argv: Sequence[str] | None = None) -> str:
    """The bootstrap address from `-a ADDR` (or `AMNODE_BOOT_ADDR`); exits 2 without one."""
    parser = argparse.ArgumentParser(description="an amnode worker process",
                                     add_help=True)
    parser.add_argument("-a", "--addr", dest="addr", default=os.environ.get(BOOT_ADDR_ENV, ""),
                        help="the supervisor's bootstrap address (host:port)")
    args, _ = parser.parse_known_args(argv)
    if not args.addr:
        parser.error("no bootstrap address: pass -a HOST:PORT (the supervisor does)")
    return str(args.addr)


def run_worker(kind: str, schema: SchemaLike, handlers: object | None = None, *,
               names: Sequence[str] | None = None, argv: Sequence[str] | None = None,
               timeouts: NodeTimeouts | None = None, host: str = "127.0.0.1",
               handler_timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Run a worker process until its supervisor is gone or it gets SIGTERM/SIGINT.

    The blocking entry point of a worker script: reads `-a ADDR` from the command line (or
    `AMNODE_BOOT_ADDR`), starts, reports back and serves. Raises SystemExit(1) if it cannot
    start or report.
    """
    boot_addr = parse_boot_addr(argv)
    if not isinstance(sys.stdout, _OrphanSafeStream):
        sys.stdout = _OrphanSafeStream(sys.stdout)
        sys.stderr = _OrphanSafeStream(sys.stderr)
    code = asyncio.run(_run(kind, schema, handlers, names, boot_addr, timeouts, host,
                            handler_timeout))
    if code:
        raise SystemExit(code)


async def _run(kind: str, schema: SchemaLike, handlers: object | None,
               names: Sequence[str] | None, boot_addr: str, timeouts: NodeTimeouts | None,
               host: str, handler_timeout: float | None) -> int:
    done = asyncio.Event()
    worker = Worker(kind, schema, handlers, names=names, timeouts=timeouts, host=host,
                    handler_timeout=handler_timeout, on_exit=lambda _why: done.set())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    try:
        await worker.start(boot_addr)
    except NodeError as err:
        print(f"{worker.mach.id}: {err}", file=sys.stderr)
        await worker.stop()
        return 1
    watch = loop.create_task(worker.watch_parent())
    try:
        await done.wait()
    finally:
        watch.cancel()
        await worker.stop()
    return 0


__all__ = ["CLIENT_POLICY", "TAG_WORKER", "Worker", "check_worker_schema", "parse_boot_addr",
           "run_worker", "worker_names"]
