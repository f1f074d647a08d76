"""Worker processes: killed, stopped, orphaned, crashing at start, hung. Every test checks the
PIDs it recorded for survivors and zombies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest
from helpers.node import (
    WORKERS,
    T,
    am_retry,
    connected_client,
    env_without_recording,
    exited,
    fast_timeouts,
    new_supervisor,
    reaped,
    running,
    wait_for,
    worker_cmd,
)

import amnode as am
from amnode import node
from amnode.node.spawn import live_pids
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(120)


class Errors:
    """Collects the errors of `ErrWorker` (and the reasons of `WorkerKilled`) on a machine."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.killed: list[str] = []

    def ErrWorkerState(self, e: am.Event) -> None:
        exc = e.args.get(am.ARG_EXCEPTION)
        if exc is not None and exc.err is not None:
            self.errors.append(exc.err)

    def WorkerKilledState(self, e: am.Event) -> None:
        ref = node.get_args(e, node.WorkerRef)
        if ref is not None:
            self.killed.append(ref.reason)


class FakeClock:
    """A clock that moves only when told (the pool's backoff reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sigkill_worker_is_replaced_and_its_client_told() -> None:
    sup = new_supervisor("NTW", (2, 3, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        pids = {w.pid for w in await sup.workers()}
        told = Errors()
        client = await connected_client(sup, handlers=told)
        try:
            worker = await client.req_worker(timeout=T)
            victim = next(w for w in await sup.workers() if w.id == worker.remote_id)
            assert victim.pid in pids and victim.state == "leased"
            os.kill(victim.pid, signal.SIGKILL)
            # the client hears it from the supervisor (and loses the worker)
            await wait_for(lambda: client.lease is None and client.worker is None,
                           what="the client drops the dead worker")
            assert any("SIGKILL" in str(err) and victim.id in str(err) for err in told.errors)
            # the supervisor reaped it and replaced it
            await wait_for(lambda: reaped(victim.pid), what=f"{victim.pid} reaped")
            await wait_for(lambda: sup.mach.is_active(ssnode.POOL_NORMALIZED)
                           and len(sup.pool.idle()) >= 2, what="pool back at 2 idle")
            now = await sup.workers()
            assert victim.pid not in {w.pid for w in now} and len(now) == 2
            pids |= {w.pid for w in now}
            # and the client gets another worker that works
            again = await client.req_worker(timeout=T)
            assert again.remote_id != victim.id
            assert (await client.work({"input": 6}, timeout=T)).data == 36
        finally:
            await client.stop()
    assert all(reaped(p) for p in pids), {p: os.path.exists(f"/proc/{p}") for p in pids}
    assert not live_pids()


class LinkTrouble:
    """Bound on a supervisor's link to a worker: what went wrong with it, in order."""

    def __init__(self) -> None:
        self.states: list[str] = []

    def RetryingConnState(self, e: am.Event) -> None:
        self.states.append(f"{e.machine.id} RetryingConn")

    def ExceptionState(self, e: am.Event) -> None:
        self.states.append(f"{e.machine.id} Exception")


async def test_stop_leaves_no_process() -> None:
    sup = new_supervisor("NTW", (3, 3, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        pids = [w.pid for w in await sup.workers()]
        assert len(pids) == 3 and all(p is not None for p in pids)
        assert all(not exited(p) for p in pids if p is not None)
        seen = LinkTrouble()
        for e in sup.pool.entries.values():
            assert e.rpc is not None
            e.rpc.mach.bind_handlers(seen, id="test-trouble")
    # stop() returned: every worker is reaped (no process, no zombie)
    assert all(p is not None and reaped(p) for p in pids)
    assert not live_pids()
    # the links were closed before their workers went: none of them retried and failed
    assert seen.states == []


async def test_a_worker_killed_on_purpose_leaves_its_link_without_errors() -> None:
    sup = new_supervisor("NTW", (2, 2, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        entry = next(iter(sup.pool.entries.values()))
        assert entry.rpc is not None and entry.pid is not None
        seen, pid = LinkTrouble(), entry.pid
        entry.rpc.mach.bind_handlers(seen, id="test-trouble")
        assert sup.kill_worker(entry.id)
        await wait_for(lambda: reaped(pid) and entry.key not in sup.pool.entries,
                       what="the killed worker reaped and dropped")
        assert seen.states == []
        assert not sup.mach.is_active("ErrWorker")


async def test_workers_exit_when_their_supervisor_is_sigkilled() -> None:
    grace = 1.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKERS / "supervisor_proc.py"), "2", str(grace),
        stdout=asyncio.subprocess.PIPE, env=env_without_recording())
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        pids = json.loads(line)["pids"]
        assert len(pids) == 2 and all(not exited(p) for p in pids)
        proc.kill()
        await proc.wait()
        # orphans: nobody kills them, they notice the lost supervisor and exit by themselves
        await wait_for(lambda: all(exited(p) for p in pids), timeout=grace + T,
                       what=f"workers {pids} still running")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for p in pids:  # never leave a stray process behind, whatever failed above
            if not exited(p):
                os.kill(p, signal.SIGKILL)


async def test_worker_crashing_at_start_backs_off_and_says_why() -> None:
    clock = FakeClock()
    policy = am_retry(0.5, 2.0, 8.0)
    errors = Errors()
    sup = new_supervisor("NTW", (1, 1, 0, 0), worker_cmd=worker_cmd("crash_worker.py"),
                         timeouts=fast_timeouts(crash_backoff=policy, heartbeat=0.1),
                         clock=clock)
    sup.mach.bind_handlers(errors)
    async with running(sup, ready=False):
        # the first crash: ErrWorker with the stderr, ErrPool says why the pool is not ready
        await sup.mach.when(ssnode.ERR_POOL, timeout=T)
        assert errors.errors and isinstance(errors.errors[0], node.WorkerExitError)
        first = errors.errors[0]
        assert isinstance(first, node.WorkerExitError)
        assert first.returncode == 3
        assert any("boom: missing config" in line for line in first.stderr)
        assert "code 3" in sup.pool_error and "boom: missing config" in sup.pool_error
        assert not sup.mach.is_active(ssnode.POOL_READY)
        # no fork storm: while the (fake) clock stands still, nothing is forked again, however
        # often the pool is checked (the heartbeat ticker normalises every 0.1 s)
        forks = sup.mach.tick(ssnode.FORK_WORKER)
        beats = sup.mach.tick(ssnode.HEARTBEAT)
        await wait_for(lambda: sup.mach.tick(ssnode.HEARTBEAT) >= beats + 6,
                       what="heartbeats")
        assert sup.mach.tick(ssnode.FORK_WORKER) == forks
        assert not sup.pool.entries
        # the backoff doubles per crash: 0.5 s, then 1 s, then 2 s
        for n, delay in enumerate([0.5, 1.0, 2.0], start=1):
            assert sup.pool.backoff_tries(0) == n
            assert sup.pool.slot_delay(0) == pytest.approx(delay)
            clock.now += delay * 0.9  # not yet
            beats = sup.mach.tick(ssnode.HEARTBEAT)
            await wait_for(lambda b=beats: sup.mach.tick(ssnode.HEARTBEAT) >= b + 6,
                           what="heartbeats")
            assert sup.mach.tick(ssnode.FORK_WORKER) == forks
            clock.now += delay * 0.2  # now: one more fork, one more crash
            await wait_for(lambda n=n: len(errors.errors) > n, what=f"crash {n + 1}")
            forks += 2  # ForkWorker is an event: added and removed
            await wait_for(lambda: not sup.pool.entries, what="slot freed")
            assert sup.mach.tick(ssnode.FORK_WORKER) == forks
        assert sup.mach.is_active(ssnode.ERR_POOL)
    assert not live_pids()


async def test_hung_worker_is_killed_and_replaced() -> None:
    errors = Errors()
    sup = new_supervisor("NTW", (1, 1, 0, 0), worker_cmd=worker_cmd(),
                         timeouts=fast_timeouts(heartbeat=0.3, healthcheck=1.0, kill_grace=0.5))
    sup.mach.bind_handlers(errors)
    async with running(sup):
        (hung,) = await sup.workers("ready")
        entry = sup.pool.by_id(hung.id)
        assert entry is not None and entry.mirror is not None and hung.pid is not None
        assert await entry.mirror.add("Hang") == am.EXECUTED
        await wait_for(lambda: reaped(hung.pid), what="the hung worker is killed and reaped")
        await wait_for(lambda: any(w.pid != hung.pid for w in sup.pool.select("ready")),
                       what="a replacement")
        assert any(isinstance(err, node.WorkerHealthError) for err in errors.errors)
        # it ignored SIGTERM (its loop was blocked): SIGKILL after the grace
        assert any("SIGKILL" in reason for reason in errors.killed), errors.killed
    assert not live_pids()


async def test_cancelled_stop_still_leaves_no_process() -> None:
    sup = new_supervisor("NTW", (2, 2, 0, 0), worker_cmd=worker_cmd())
    await sup.start()
    await sup.mach.when(ssnode.POOL_READY, timeout=T)
    pids = [w.pid for w in await sup.workers()]
    stopping = asyncio.ensure_future(sup.stop())
    await asyncio.sleep(0)
    stopping.cancel()  # stop() is cancelled half-way: its finally kills what is left
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await wait_for(lambda: all(p is not None and reaped(p) for p in pids), what=str(pids))


@pytest.mark.parametrize("how", ["return", "cancel"])
async def test_supervisor_loop_ending_without_stop_kills_its_workers(how: str) -> None:
    """The supervisor's loop ends (or its main task is cancelled) without `stop()`: the workers
    are killed at interpreter exit, long before their own 60 s grace would end them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKERS / "abandon_proc.py"), how, stdout=asyncio.subprocess.PIPE,
        env=env_without_recording())
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        pids = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["pids"]
        assert await asyncio.wait_for(proc.wait(), T) == 0
        await wait_for(lambda: all(exited(p) for p in pids), what=f"workers {pids} left")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for p in pids:
            if not exited(p):
                os.kill(p, signal.SIGKILL)
