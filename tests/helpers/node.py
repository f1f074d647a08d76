"""Shared helpers for the node tests: the Go test schema, in-process worker factories (Go
newTestFork / newTestKill), supervisors and connected clients, worker scripts for real
processes, and process checks by PID (alive, zombie, reaped)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import amnode as am
from amnode import node
from amnode.states import node as ssnode
from helpers.machines import rels_schema

#: generous failure bound for waits on state (never a duration assertion)
T = 20.0
WORKERS = Path(__file__).resolve().parent.parent / "node" / "workers"


def rels_worker_schema() -> dict[str, am.State]:
    """Go's RelsNodeWorkerSchema: WorkerSchema + `A{Auto, Require C}, B{Multi, Add C},
    C{After D}, D{Add C, B}`."""
    return am.schema_merge(ssnode.WorkerSchema, rels_schema())


def fast_timeouts(**changes: Any) -> node.NodeTimeouts:
    """Short periods (heartbeat, backoffs, grace) so that failures are noticed quickly; every
    *deadline* stays generous for a loaded machine."""
    base = node.NodeTimeouts(
        connect=10.0, bootstrap=30.0, delivery=10.0, heartbeat=0.5, healthcheck=5.0,
        kill_grace=1.0, supervisor_grace=1.0, req_worker=T,
        crash_backoff=am_retry(0.1, 2.0, 2.0),
        healthcheck_retry=am_retry(0.2, 1.0, 0.2, tries=1),
        super_retry=am_retry(0.1, 2.0, 1.0), req_retry=am_retry(0.05, 2.0, 0.5))
    return replace(base, **changes)


def am_retry(first: float, factor: float, cap: float, tries: int = 0) -> Any:
    from amnode.rpc import RetryPolicy
    return RetryPolicy(first_delay=first, factor=factor, max_delay=cap, max_tries=tries,
                       timeout=None, jitter=0.0)


class Square:
    """Go's test WorkRequestedState: square `input`, send it to the client as `name`."""

    def __init__(self, name: str = "square") -> None:
        self.name = name

    def WorkRequestedState(self, e: am.Event) -> None:
        x = e.args["input"]
        e.machine.add("ClientSendPayload", {"name": self.name, "data": x * x})


def in_process(kind: str, schema: dict[str, am.State] | None = None,
               handlers: Callable[[], object] | None = None,
               timeouts: node.NodeTimeouts | None = None) -> node.InProcessSpawner:
    """Go's newTestFork: workers in this process, started and ready before they report."""
    schema = schema or rels_worker_schema()
    make = handlers or Square

    async def factory(boot_addr: str) -> node.Worker:
        w = node.Worker(kind, schema, make(), timeouts=timeouts)
        await w.start(boot_addr)
        return w

    return node.InProcessSpawner(factory)


async def crash(spawner: node.InProcessSpawner, addr: str) -> node.Worker:
    """Go's newTestKill: stop an in-process worker abruptly (by address or id)."""
    w = spawner.find(addr)
    assert w is not None, f"no live in-process worker {addr}"
    await w.stop()
    return w


def new_supervisor(kind: str, pool: tuple[int, int, int, int] | None = None, *,
                   spawner: node.Spawner | None = None,
                   timeouts: node.NodeTimeouts | None = None,
                   worker_cmd: list[str] | None = None, **kw: Any) -> node.Supervisor:
    """A supervisor over the Go test schema; in-process workers unless `worker_cmd`."""
    schema = kw.pop("worker_schema", None) or rels_worker_schema()
    if spawner is None and worker_cmd is None:
        spawner = in_process(kind, schema, timeouts=timeouts)
    sup = node.Supervisor(kind, worker_cmd, schema, spawner=spawner,
                          timeouts=timeouts or fast_timeouts(), **kw)
    if pool is not None:
        sup.set_pool(*pool)
    return sup


@contextlib.asynccontextmanager
async def running(sup: node.Supervisor, ready: bool = True) -> AsyncIterator[node.Supervisor]:
    """Start a supervisor (optionally until `PoolReady`), always stop it."""
    try:
        await sup.start()
        if ready:
            await sup.mach.when(ssnode.POOL_READY, timeout=T)
        yield sup
    finally:
        await sup.stop()


async def connected_client(sup: node.Supervisor, id: str = "cli",
                           **kw: Any) -> node.Client:
    """Go's newConnectedClient: a node client with `SuperReady`."""
    c = node.Client(id, sup.kind, kw.pop("worker_schema", None) or rels_worker_schema(),
                    timeouts=kw.pop("timeouts", None) or fast_timeouts(), **kw)
    await c.start([sup.public_addr])
    await c.mach.when(ssnode.SUPER_READY, timeout=T)
    return c


def worker_cmd(script: str = "square_worker.py", *args: str) -> list[str]:
    """A worker script of tests/node/workers run by this interpreter."""
    return [sys.executable, str(WORKERS / script), *args]


def dead_addr() -> str:
    """A localhost address nobody listens on (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


def proc_state(pid: int) -> str:
    """The process state letter from /proc (`Z` zombie), or "" when the PID does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return data.rsplit(")", 1)[1].split()[0]


def reaped(pid: int) -> bool:
    """Gone for good: no such process (not even a zombie)."""
    return proc_state(pid) == ""


def exited(pid: int) -> bool:
    """Not running any more: gone, or a zombie its (other) parent has not reaped yet."""
    return proc_state(pid) in ("", "Z", "X")


async def wait_for(cond: Callable[[], bool], timeout: float = T, what: str = "") -> None:
    """Poll `cond` until it holds (a failure bound, never a duration)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)
    assert cond(), what


def no_error(mach: am.Machine) -> None:
    """No `Exception` active; shows the machine's last error otherwise."""
    assert not mach.is_active(am.EXCEPTION), f"{mach.id}: {mach.err!r}"


def env_without_recording() -> dict[str, str]:
    """This process's environment without AMNODE_RECORD (for helper processes)."""
    return {k: v for k, v in os.environ.items() if k != "AMNODE_RECORD"}


SECRET = "the-group-secret"


async def peer_group(kind: str, pools: list[tuple[int, int, int, int]], *,
                     timeouts: node.NodeTimeouts | None = None,
                     links: dict[int, list[int]] | None = None,
                     secret: str = SECRET) -> list[node.Supervisor]:
    """Started supervisors of one kind (instance numbers 0..n-1, one pool each) linked as
    peers: every one to every other, or as `links` says (instance -> the instances it dials).
    Returns once every link is up and has brought a summary."""
    t = timeouts or fast_timeouts(supervisor_grace=30.0)
    sups = [new_supervisor(kind, pool, timeouts=t, instance_num=i, secret=secret)
            for i, pool in enumerate(pools)]
    for sup in sups:
        await sup.start()
    n = len(sups)
    plan = links if links is not None else {i: [j for j in range(n) if j != i]
                                            for i in range(n)}
    for i, targets in plan.items():
        await sups[i].add_peers([sups[j].local_addr for j in targets])
    for i, targets in plan.items():
        await wait_for(lambda i=i, targets=targets: len(
            [x for x in sups[i].peers.live_peers() if x.summary is not None]) == len(targets),
            what=f"supervisor {i} linked to its peers")
    return sups


async def stop_all(sups: list[node.Supervisor]) -> None:
    """Stop supervisors (and any in-process worker they left behind)."""
    for sup in sups:
        await sup.stop()
        spawner = sup.spawner
        if isinstance(spawner, node.InProcessSpawner):
            for w in spawner.workers:
                if not w.mach.is_disposed:
                    await w.stop()


def amnode_cmd() -> list[str]:
    """The `amnode` console script of this environment."""
    script = Path(sys.executable).parent / "amnode"
    assert script.exists(), f"{script} missing: pip install -e ."
    return [str(script)]


async def start_cli_supervisor(*args: str, env: dict[str, str] | None = None
                               ) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """`amnode supervisor ARGS --json` in a subprocess; its start line (id, public, control,
    pid)."""
    proc = await asyncio.create_subprocess_exec(
        *amnode_cmd(), "supervisor", *args, "--json", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env if env is not None else env_without_recording())
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line:
        err = await proc.stderr.read() if proc.stderr is not None else b""
        raise AssertionError(f"amnode supervisor did not start: {err.decode()}")
    import json
    return proc, json.loads(line)


async def amnode_run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run `amnode ARGS`; (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *amnode_cmd(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_without_recording())
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_status(addr: str) -> dict[str, Any]:
    """`amnode status ADDR --json`, parsed."""
    import json
    code, out, err = await amnode_run("status", addr, "--json")
    assert code == 0, err
    return dict(json.loads(out))


async def wait_status(addr: str, cond: Callable[[dict[str, Any]], bool], what: str = "",
                      timeout: float = 60) -> dict[str, Any]:
    """Poll `amnode status --json` until `cond(status)` (a failure bound, not a duration)."""
    async with asyncio.timeout(timeout):
        while True:
            status = await cli_status(addr)
            if cond(status):
                return status
            await asyncio.sleep(0.1)
