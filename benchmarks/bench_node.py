"""Node benchmark: a supervisor's pool of worker processes vs `ProcessPoolExecutor`, same job.

Measures, in one run, with the worker of examples/node_worker.py (the job: square a number):
  (a) `pool_ready_s`: seconds from `Supervisor.start()` to `PoolReady` with 4 worker processes,
      vs `executor_ready_s`: a fresh executor with 4 processes until each ran a first job;
  (b) `req_worker_*_ms`: `Client.req_worker()` latency (a lease: supervisor -> worker ->
      payload -> direct link to the worker), p50 and p95;
  (c) `roundtrip_*_ms`: one job through a leased worker (`Client.work()`: `WorkRequested` ->
      the payload) vs `executor.submit(...).result()`; `roundtrip_ratio` = ours / executor;
  (d) `jobs_per_s`: 4 workers serving 4 concurrent clients vs the executor with 4 processes
      and 4 jobs in flight (`executor_jobs_per_s`);
  (e) `failover_s`: two `amnode supervisor` processes as peers; a client holds a worker of
      the second; from SIGKILL of that supervisor until the client is connected to the other
      one and holds its worker through it (adopted, leased to the client), median of
      `--failovers` runs; next to `pool_ready_s`, what starting a fresh pool would take.

Usage: python benchmarks/bench_node.py [-n 300] [--failovers 3] [--json]
The --json flag prints a last line with one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import concurrent.futures
import gc
import json
import os
import signal
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from amnode import node
from amnode.node.cli import fetch_status
from amnode.states import node as ssnode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from node_worker import KIND, SCHEMA  # noqa: E402

WORKER_CMD = [sys.executable, str(ROOT / "examples" / "node_worker.py")]
WORKERS = 4


def square(x: int) -> int:
    """The job, for the executor (the node worker does the same)."""
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, in the values' unit."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def executor_ready() -> tuple[float, concurrent.futures.ProcessPoolExecutor]:
    """A fresh 4-process executor until 4 distinct processes ran a first job."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    ex = concurrent.futures.ProcessPoolExecutor(WORKERS)
    pids: set[int] = set()
    while len(pids) < WORKERS:
        got = await asyncio.gather(*(loop.run_in_executor(ex, pid_of, i)
                                     for i in range(WORKERS)))
        pids.update(got)
    return time.perf_counter() - t0, ex


async def executor_roundtrips(ex: concurrent.futures.Executor, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        assert ex.submit(square, i).result() == i * i
        out.append(time.perf_counter() - t0)
    return out


async def executor_throughput(ex: concurrent.futures.Executor, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    done = 0
    stop = time.perf_counter() + seconds

    async def lane(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop:
            assert await loop.run_in_executor(ex, square, i) == i * i
            done += 1
            i += WORKERS

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(k) for k in range(WORKERS)))
    return done / (time.perf_counter() - t0)


async def pool_ready() -> tuple[float, node.Supervisor]:
    t0 = time.perf_counter()
    sup = node.Supervisor(KIND, WORKER_CMD, SCHEMA, min=WORKERS, max=WORKERS, warm=0)
    await sup.start()
    await sup.mach.when(ssnode.POOL_READY, timeout=60)
    return time.perf_counter() - t0, sup


async def new_client(sup: node.Supervisor, i: int) -> node.Client:
    c = node.Client(f"bench{i}", KIND, SCHEMA)
    await c.start([sup.public_addr])
    await c.mach.when(ssnode.SUPER_READY, timeout=30)
    return c


async def req_worker_latency(sup: node.Supervisor, n: int) -> list[float]:
    """A new client per lease (the lease ends with the client); only `req_worker()` is timed."""
    out = []
    for i in range(n):
        c = await new_client(sup, i)
        try:
            t0 = time.perf_counter()
            await c.req_worker(timeout=30)
            out.append(time.perf_counter() - t0)
        finally:
            await c.stop()
        async with asyncio.timeout(30):  # the lease is back before the next one
            while len(sup.pool.idle()) < WORKERS:
                await asyncio.sleep(0.002)
    return out


async def node_roundtrips(sup: node.Supervisor, n: int) -> list[float]:
    c = await new_client(sup, 1000)
    try:
        await c.req_worker(timeout=30)
        for i in range(20):  # warm up
            await c.work({"input": i}, timeout=30)
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            p = await c.work({"input": i}, timeout=30)
            out.append(time.perf_counter() - t0)
            assert p.data == i * i
        return out
    finally:
        await c.stop()


async def node_throughput(sup: node.Supervisor, seconds: float) -> float:
    clients = [await new_client(sup, 2000 + k) for k in range(WORKERS)]
    try:
        await asyncio.gather(*(c.req_worker(timeout=30) for c in clients))
        done = 0
        stop = time.perf_counter() + seconds

        async def lane(c: node.Client, k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < stop:
                p = await c.work({"input": i}, timeout=30)
                assert p.data == i * i
                done += 1
                i += WORKERS

        t0 = time.perf_counter()
        await asyncio.gather(*(lane(c, k) for k, c in enumerate(clients)))
        return done / (time.perf_counter() - t0)
    finally:
        await asyncio.gather(*(c.stop() for c in clients))


def free_addr() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def cli_supervisor(instance: int, control: str, peer: str,
                         env: dict[str, str]) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amnode.node.cli", "supervisor", "--kind", KIND, "--worker-cmd",
        " ".join(WORKER_CMD), "--min", "2", "--max", "4", "--warm", "0", "--instance",
        str(instance), "--local-addr", control, "--peers", peer, "--json", "--grace", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    return proc, json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))


async def failover_once() -> float:
    """(e): SIGKILL of the supervisor serving a client -> the client holds its worker through
    the other supervisor (connected to it, the worker adopted and leased to the client)."""
    env = {k: v for k, v in os.environ.items() if k != "AMNODE_RECORD"}
    env["AMNODE_NODE_SECRET"] = "bench"
    ctl = [free_addr(), free_addr()]
    procs = []
    infos = []
    client = None
    try:
        for i in (0, 1):
            proc, info = await cli_supervisor(i, ctl[i], ctl[1 - i], env)
            procs.append(proc)
            infos.append(info)
        for info, other in ((infos[0], infos[1]), (infos[1], infos[0])):
            while True:
                st = await fetch_status(info["public"])
                if "PoolReady" in st.states and other["id"] in st.peers:
                    break
                await asyncio.sleep(0.05)
        client = node.Client("fo", KIND, SCHEMA, rotation="ordered")
        await client.start([infos[1]["public"], infos[0]["public"]])
        worker = await client.req_worker(timeout=30)
        await client.work({"input": 2}, timeout=30)
        while True:  # the survivor knows the lease (summaries are pushed at once)
            st = await fetch_status(infos[1]["public"])
            if any(w.id == worker.remote_id and w.state == "leased" for w in st.workers):
                break
        t0 = time.perf_counter()
        procs[1].send_signal(signal.SIGKILL)
        survivor = infos[0]["public"]
        while True:
            rpc = client.super_rpc
            if rpc is not None and rpc.addr == survivor and \
                    client.mach.is_active(ssnode.SUPER_READY):
                st = await fetch_status(survivor)
                if any(w.id == worker.remote_id and w.adopted and w.state == "leased"
                       for w in st.workers):
                    break
            await asyncio.sleep(0.005)
        took = time.perf_counter() - t0
        assert (await client.work({"input": 3}, timeout=30)).data == 9
        return took
    finally:
        if client is not None:
            await client.stop()
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await proc.wait()


def compile_bytecode() -> None:
    """Like an installed package: bytecode caches exist (PYTHONDONTWRITEBYTECODE would make
    every worker process compile amnode from source, several times its start-up cost)."""
    for d in (ROOT / "amnode", ROOT / "examples"):
        compileall.compile_dir(str(d), quiet=1)


async def main(n: int, seconds: float, as_json: bool, failovers: int = 3) -> None:
    compile_bytecode()
    gc.collect()
    ex_ready, ex = await executor_ready()
    try:
        ex_rt = await executor_roundtrips(ex, n)
        ex_jobs = await executor_throughput(ex, seconds)
    finally:
        ex.shutdown()
    ready, sup = await pool_ready()
    try:
        req = await req_worker_latency(sup, max(10, n // 10))
        rt = await node_roundtrips(sup, n)
        jobs = await node_throughput(sup, seconds)
    finally:
        await sup.stop()
    fo = [await failover_once() for _ in range(failovers)]
    res: dict[str, Any] = {
        "workers": WORKERS, "n": n,
        "pool_ready_s": round(ready, 3), "executor_ready_s": round(ex_ready, 3),
        "req_worker_p50_ms": round(statistics.median(req) * 1e3, 3),
        "req_worker_p95_ms": round(pct(req, 0.95) * 1e3, 3),
        "roundtrip_p50_ms": round(statistics.median(rt) * 1e3, 3),
        "roundtrip_p95_ms": round(pct(rt, 0.95) * 1e3, 3),
        "executor_roundtrip_p50_ms": round(statistics.median(ex_rt) * 1e3, 3),
        "executor_roundtrip_p95_ms": round(pct(ex_rt, 0.95) * 1e3, 3),
        "jobs_per_s": round(jobs, 1), "executor_jobs_per_s": round(ex_jobs, 1),
        "failover_s": round(statistics.median(fo), 3), "failover_max_s": round(max(fo), 3),
    }
    res["failover_vs_fresh_pool"] = round(res["failover_s"] / res["pool_ready_s"], 3)
    res["roundtrip_ratio"] = round(res["roundtrip_p50_ms"] / res["executor_roundtrip_p50_ms"], 3)
    rows = [
        ("pool ready, 4 worker processes", f"{ready:.3f} s",
         "executor, 4 processes ran a job", f"{ex_ready:.3f} s"),
        ("req_worker() p50 / p95", f"{res['req_worker_p50_ms']:.2f} / "
         f"{res['req_worker_p95_ms']:.2f} ms", "", ""),
        ("job round trip p50 / p95", f"{res['roundtrip_p50_ms']:.3f} / "
         f"{res['roundtrip_p95_ms']:.3f} ms", "submit().result() p50 / p95",
         f"{res['executor_roundtrip_p50_ms']:.3f} / {res['executor_roundtrip_p95_ms']:.3f} ms"),
        ("jobs/s, 4 clients x 4 workers", f"{jobs:,.0f}", "jobs/s, 4 in flight",
         f"{ex_jobs:,.0f}"),
        ("round trip ratio (ours / executor)", f"{res['roundtrip_ratio']:.2f}", "", ""),
        (f"failover, median of {failovers} (max)", f"{res['failover_s']:.3f} s "
         f"({res['failover_max_s']:.3f})", "a fresh pool (pool ready)", f"{ready:.3f} s"),
    ]
    print(f"node benchmark: {WORKERS} workers, {n} round trips, {seconds:.0f} s of throughput, "
          f"{os.cpu_count()} CPUs")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    print(f"  {'amnode.node':<{w0}}  {'':<{w1}}  {'ProcessPoolExecutor':<{w2}}")
    for a, b, c, d in rows:
        print(f"  {a:<{w0}}  {b:<{w1}}  {c:<{w2}}  {d}")
    if as_json:
        print(json.dumps(res))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="sequential round trips")
    parser.add_argument("--seconds", type=float, default=2.0, help="throughput duration")
    parser.add_argument("--failovers", type=int, default=3, help="failover runs (e)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    ns = parser.parse_args()
    asyncio.run(main(ns.n, ns.seconds, ns.json, max(1, ns.failovers)))
