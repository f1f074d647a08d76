"""`amnode`: run and inspect a pool of workers from a shell.

    amnode supervisor --kind K --worker-cmd "python worker.py" --addr 127.0.0.1:7000 \\
        [--local-addr HOST:PORT] [--min N --max N --warm N] [--peers HOST:PORT ...] \\
        [--instance N] [--log-dir DIR]
    amnode status ADDR [--json]
    amnode workers ADDR [--json] [--kill ID]

`amnode supervisor` runs a supervisor in the foreground: SIGINT/SIGTERM stop it cleanly (every
worker is killed and reaped), SIGHUP rotates the worker logs. It prints one line with its
addresses once it listens: `ADDR` of `status` is either of them; `workers --kill` needs the
control (local) address. Peers share a secret, read from `AMNODE_NODE_SECRET`.

Every error is one line on stderr (`amnode: error: ...`); exit status 0 ok, 1 error, 2 bad
command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import amnode.machine as am
from amnode.rpc import CALL_RETRY, CONN_RETRY, NoAccessError, Payload
from amnode.rpc import Client as RpcClient
from amnode.states import node as ss
from amnode.states.rpc import ConsumerSchema

from .args import ARG, ListWorkersArgs, PoolStatus, WorkerRef
from .config import NodeTimeouts, PoolConfig
from .peers import PAYLOAD_LIST

#: the group secret of peer supervisors (never on the command line: `ps` shows that)
SECRET_ENV = "AMNODE_NODE_SECRET"

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A one-line error of the command line tool."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not usage text
        raise CliError(message, EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="amnode", description="Run and inspect amnode worker pools.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("supervisor", help="run a supervisor in the foreground")
    s.add_argument("--kind", required=True, help="the worker kind")
    s.add_argument("--worker-cmd", required=True,
                   help='the worker command, e.g. "python worker.py" (gets -a ADDR appended)')
    s.add_argument("--addr", default="127.0.0.1:0", help="public address (clients)")
    s.add_argument("--local-addr", default=None,
                   help="control address (peers, operators; default 127.0.0.1:0)")
    s.add_argument("--min", type=int, default=None)
    s.add_argument("--max", type=int, default=None)
    s.add_argument("--warm", type=int, default=None)
    s.add_argument("--max-client-workers", type=int, default=None)
    s.add_argument("--max-jobs", type=int, default=0,
                   help="replace a worker after this many jobs (0: never)")
    s.add_argument("--instance", type=int, default=0, help="instance number among its peers")
    s.add_argument("--peers", nargs="*", default=[], metavar="HOST:PORT",
                   help=f"control addresses of peer supervisors (needs ${SECRET_ENV})")
    s.add_argument("--schema", default=None, metavar="MODULE:NAME",
                   help="the worker schema (default: the node worker states)")
    s.add_argument("--log-dir", default=None, help="write worker stdout/stderr here")
    s.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024)
    s.add_argument("--log-backups", type=int, default=3)
    s.add_argument("--grace", type=float, default=None,
                   help="seconds a worker outlives a lost supervisor (default 5)")
    s.add_argument("--json", action="store_true", help="print the start line as JSON")

    st = sub.add_parser("status", help="show a supervisor's pool")
    st.add_argument("addr", metavar="ADDR", help="public or control address")
    st.add_argument("--json", action="store_true", help="one JSON object")
    st.add_argument("--timeout", type=float, default=5.0)

    w = sub.add_parser("workers", help="list a supervisor's workers, or kill one")
    w.add_argument("addr", metavar="ADDR", help="control address (public: list only)")
    w.add_argument("--kill", metavar="ID", default=None, help="kill (and replace) this worker")
    w.add_argument("--json", action="store_true")
    w.add_argument("--timeout", type=float, default=5.0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run `amnode` with `argv` (default: sys.argv[1:]); the exit status."""
    parser = build_parser()
    # library warnings would add lines to an error; the supervisor turns them on once it runs
    quiet = logging.getLogger("amnode")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    try:
        try:
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        except SystemExit as exit_:  # --help
            return int(exit_.code or 0)
        if args.cmd is None:
            raise CliError("a command is needed: supervisor, status or workers", EXIT_USAGE)
        if args.cmd == "supervisor":
            return asyncio.run(run_supervisor(args))
        if args.cmd == "status":
            return asyncio.run(show_status(args))
        return asyncio.run(workers(args))
    except CliError as err:
        print(f"amnode: error: {_one_line(str(err))}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`amnode status --json | head`): stop quietly, like other tools
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:  # anything else is still one line
        print(f"amnode: error: {_one_line(f'{type(err).__name__}: {err}')}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(text: str) -> str:
    """`text` on one line, control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))


# --- supervisor ---

def _load_schema(spec: str | None) -> dict[str, am.State]:
    if not spec:
        return dict(ss.WorkerSchema)
    module, _, name = spec.partition(":")
    if not module or not name:
        raise CliError(f"--schema must be MODULE:NAME, not {spec!r}", EXIT_USAGE)
    sys.path.insert(0, os.getcwd())
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise CliError(f"cannot load the schema {spec}: {err}") from None
    return dict(value)


async def run_supervisor(args: argparse.Namespace) -> int:
    """`amnode supervisor`: run until SIGINT/SIGTERM; SIGHUP rotates the logs."""
    from .supervisor import Supervisor

    cmd = shlex.split(args.worker_cmd)
    if not cmd:
        raise CliError("--worker-cmd is empty", EXIT_USAGE)
    secret = os.environ.get(SECRET_ENV) or None
    if any(args.peers) and not secret:
        raise CliError(f"--peers needs the group's secret in ${SECRET_ENV}", EXIT_USAGE)
    base = PoolConfig()
    try:
        pool = PoolConfig(min=base.min if args.min is None else args.min,
                          max=base.max if args.max is None else args.max,
                          warm=base.warm if args.warm is None else args.warm,
                          max_client_workers=(base.max_client_workers
                                              if args.max_client_workers is None
                                              else args.max_client_workers),
                          max_jobs=args.max_jobs)
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    timeouts = NodeTimeouts()
    if args.grace is not None:
        from dataclasses import replace
        timeouts = replace(timeouts, supervisor_grace=args.grace)
    peers = [a for arg in args.peers for a in arg.split(",") if a]
    sup = Supervisor(args.kind, cmd, _load_schema(args.schema), pool=pool, timeouts=timeouts,
                     instance_num=args.instance, peers=peers, secret=secret,
                     log_dir=args.log_dir, log_max_bytes=args.log_max_bytes,
                     log_backups=args.log_backups)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    loop.add_signal_handler(signal.SIGHUP, sup.rotate_logs)
    try:
        try:
            await sup.start(args.addr, local_addr=args.local_addr)
        except (ConnectionError, am.AmnodeError, OSError) as err:
            raise CliError(f"cannot start: {err}") from None
        info = {"id": sup.mach.id, "public": sup.public_addr, "control": sup.local_addr,
                "pid": os.getpid()}
        _log_warnings()
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"supervisor {info['id']} public {info['public']} control {info['control']} "
                  f"pid {info['pid']}", flush=True)
        await done.wait()
    finally:
        await sup.stop()
    return EXIT_OK


def _log_warnings() -> None:
    """A running supervisor reports library warnings, one line each, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("amnode: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger("amnode")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


# --- status and workers ---

class _Answer:
    """The consumer of the CLI's link: keeps the `ListWorkers` payloads."""

    def __init__(self) -> None:
        self.status: asyncio.Future[PoolStatus] = asyncio.get_running_loop().create_future()
        self.request = 0

    def ServerPayloadState(self, e: am.Event) -> None:
        p = e.args.get("payload")
        if isinstance(p, Payload) and p.name == PAYLOAD_LIST and isinstance(p.data, PoolStatus) \
                and p.data.request == self.request and not self.status.done():
            self.status.set_result(p.data)


async def _connect(addr: str, timeout: float) -> tuple[RpcClient, am.Machine, _Answer]:
    answer = _Answer()
    consumer = am.Machine(ConsumerSchema, id="amnode-cli-" + secrets.token_hex(3))
    consumer.bind_handlers(answer)
    rpc = RpcClient(addr, id=consumer.id, schema=ss.SupervisorSchema, consumer=consumer,
                    conn_timeout=timeout, conn_retry=CONN_RETRY.with_(timeout=0.0),
                    call_timeout=timeout, call_retry=CALL_RETRY.with_(timeout=0.0))
    await rpc.start()
    ready = asyncio.ensure_future(rpc.mach.when(ss.READY))
    gone = asyncio.ensure_future(rpc.mach.when_not(ss.START))  # the dial failed for good
    try:
        await asyncio.wait({ready, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in (ready, gone):
            w.cancel()
    if rpc.mach.is_disposed or not rpc.mach.is_active(ss.READY):
        why = rpc.mach.err if not rpc.mach.is_disposed else None
        rpc.dispose()
        consumer.dispose()
        raise CliError(f"cannot reach a supervisor at {addr}"
                       + (f": {why}" if why else "")) from None
    return rpc, consumer, answer


async def fetch_status(addr: str, timeout: float = 5.0) -> PoolStatus:
    """The `PoolStatus` of the supervisor at `addr` (its public or control address)."""
    rpc, consumer, answer = await _connect(addr, timeout)
    try:
        nm = rpc.netmach
        assert nm is not None
        answer.request = 1
        res = await nm.add(ss.LIST_WORKERS, {ARG: ListWorkersArgs(1)})
        if res != am.EXECUTED:
            raise CliError(f"{addr} refused ListWorkers (not an amnode supervisor?)")
        try:
            return await asyncio.wait_for(answer.status, timeout)
        except TimeoutError:
            raise CliError(f"no status from {addr} within {timeout}s") from None
    finally:
        await rpc.stop(dispose=True)
        consumer.dispose()


async def kill(addr: str, worker: str, timeout: float = 5.0) -> str:
    """Kill one worker through the supervisor's control address; its id."""
    rpc, consumer, _ = await _connect(addr, timeout)
    try:
        nm = rpc.netmach
        assert nm is not None
        try:
            res = await nm.add(ss.KILL_WORKER, {ARG: WorkerRef(worker, "operator (amnode)")})
        except NoAccessError:
            raise CliError(f"{addr} does not take operator actions: use the supervisor's "
                           "control address (printed at start, --local-addr)") from None
        if res != am.EXECUTED:
            raise CliError(f"no worker {worker} at {addr}")
        return worker
    finally:
        await rpc.stop(dispose=True)
        consumer.dispose()


def _uptime(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def print_status(status: PoolStatus, workers_only: bool = False) -> None:
    """The pool as a rich table (and a summary line)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    if not workers_only:
        states = " ".join(status.states) or "-"
        console.print(f"[bold]{status.id}[/] kind {status.kind} instance {status.instance_num} "
                      f"public {status.public_addr} control {status.local_addr}", markup=True)
        console.print(f"pool min {status.min} max {status.max} warm {status.warm} target "
                      f"{status.target}: {len(status.workers)} workers, {status.ready} ready, "
                      f"{status.leased} leased | {states}", markup=False)
        if status.peers:
            console.print("peers: " + ", ".join(status.peers), markup=False)
        if status.error:
            console.print(f"error: {_one_line(status.error)}", markup=False)
    table = Table(box=None, pad_edge=False)
    for col in ("worker", "id", "pid", "state", "leased to", "jobs", "errors", "uptime"):
        table.add_column(col, justify="right" if col in ("pid", "jobs", "errors") else "left")
    for w in status.workers:
        table.add_row(w.key + (" (adopted)" if w.adopted else ""), w.id or "-",
                      str(w.pid or "-"), w.state, w.leased_to or "-", str(w.jobs),
                      str(w.errors), _uptime(w.uptime))
    console.print(table)


async def show_status(args: argparse.Namespace) -> int:
    status = await fetch_status(args.addr, args.timeout)
    if args.json:
        print(json.dumps(asdict(status)))
    else:
        print_status(status)
    return EXIT_OK


async def workers(args: argparse.Namespace) -> int:
    if args.kill:
        killed = await kill(args.addr, args.kill, args.timeout)
        print(json.dumps({"killed": killed}) if args.json else f"killed {killed}")
        return EXIT_OK
    status = await fetch_status(args.addr, args.timeout)
    if args.json:
        print(json.dumps([asdict(w) for w in status.workers]))
    else:
        print_status(status, workers_only=True)
    return EXIT_OK


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
