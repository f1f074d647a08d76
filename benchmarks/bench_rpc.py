"""aRPC benchmark: sequential remote mutations vs a raw framed-msgpack echo, on one event loop.

Measures, in one run and one process:
  - raw echo round trips/s: asyncio protocol + the aRPC framing (4-byte length + msgpack) echoing
    a mutation-sized request, one at a time;
  - aRPC `await mirror.add(...)` round trips/s (the source runs the transition, the reply carries
    the clock diff, the mirror applies it before the caller resumes);
  - `add_ns` throughput (no-reply mutations followed by one `sync()`);
  - bytes on the wire per mutation (both directions, framing included);
  - `idle_clients_cost_ratio`: the cost of one `await mirror.add(...)` through a `Mux` while 200
    other clients are connected and idle, divided by its cost with no other client (goal <= 1.2).
    The idle clients run on the same loop, so their own handling of the pushes they receive is
    included: the ratio is an upper bound of what they cost the server.

Echo and aRPC round trips are measured in alternating rounds (`--rounds`, 5 by default) on the
same loop, and the ratio is taken from their medians, so a change in the machine's load hits
both peers alike. CPU time (`time.process_time`, both ends are in this process) is reported
next to wall time: on a machine shared with other work it is the steadier of the two.

Usage: python benchmarks/bench_rpc.py [-n 5000] [--rounds 5] [--idle-clients 200] [--json]
The --json flag prints a last line with a JSON object; `ratio` = aRPC mutations/s / echo RT/s
(medians of the rounds), `ratio_cpu` the same from CPU time per round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from typing import Any

import msgpack

import amnode as am
from amnode.rpc import Client, Mux, Server
from amnode.rpc.frames import Codec, FrameReader
from amnode.states import StateSourceSchema

SCHEMA = am.schema_merge(StateSourceSchema, {
    "Start": am.State(),
    "Tick": am.State(multi=True, require=["Start"]),
    "Value1": am.State(remove=["Value2", "Value3"]),
    "Value2": am.State(remove=["Value1", "Value3"]),
    "Value3": am.State(remove=["Value1", "Value2"]),
})
NAMES = ["Exception", "ErrOnClient", "Start", "Tick", "Value1", "Value2", "Value3"]


class _EchoServer(asyncio.Protocol):
    """Decodes each frame and sends it back re-encoded (the work a server must do at least)."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.codec = Codec()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for payload in self.reader.feed(data):
            msg = self.codec.unpack(payload)
            self.transport.write(self.codec.frame([1, msg[1], None, [0]]))


class _EchoClient(asyncio.Protocol):
    """Sends one request and resolves a future with its reply."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.codec = Codec()
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[Any] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for payload in self.reader.feed(data):
            msg = self.codec.unpack(payload)
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_result(msg)

    def request(self, seq: int) -> asyncio.Future[Any]:
        assert self.transport is not None
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(self.codec.frame([0, seq, 3, [[3], seq]]))
        return self.waiting


class _Timed:
    """Wall and CPU seconds of one measured stretch."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def stop(self, n: int) -> tuple[float, float]:
        """(wall, cpu) seconds per operation."""
        return ((time.perf_counter() - self.wall0) / n, (time.process_time() - self.cpu0) / n)


async def bench_round_trips(n: int, rounds: int) -> dict[str, Any]:
    """Raw echo and aRPC `await mirror.add()` round trips in alternating rounds; medians."""
    loop = asyncio.get_running_loop()
    echo_server = await loop.create_server(_EchoServer, "127.0.0.1", 0)
    port = echo_server.sockets[0].getsockname()[1]
    _, echo = await loop.create_connection(_EchoClient, "127.0.0.1", port)
    source = am.Machine(SCHEMA, id="bench-source")
    source.verify_states(NAMES)
    source.add("Start")
    server = Server(source, push_interval=0.25)
    await server.start()
    client = Client(server.addr, id="bench", schema=source.schema)
    await client.start()
    await client.mach.when("Ready", timeout=5)
    mirror = client.netmach
    assert mirror is not None
    conn = client.conn
    assert conn is not None
    for i in range(200):  # warm up
        await echo.request(i + 1)
        await mirror.add("Tick")
    echo_wall, echo_cpu, add_wall, add_cpu, add_bytes = [], [], [], [], []
    for _ in range(rounds):
        gc.collect()
        timed = _Timed()
        for i in range(n):
            await echo.request(i + 1)
        w, c = timed.stop(n)
        echo_wall.append(w)
        echo_cpu.append(c)
        gc.collect()
        bytes0 = conn.bytes_in + conn.bytes_out
        timed = _Timed()
        for _ in range(n):
            await mirror.add("Tick")
        w, c = timed.stop(n)
        add_wall.append(w)
        add_cpu.append(c)
        add_bytes.append((conn.bytes_in + conn.bytes_out - bytes0) / n)
    assert mirror.tick("Tick") == source.tick("Tick"), "mirror out of sync"

    bytes1 = conn.bytes_in + conn.bytes_out
    t1 = time.perf_counter()
    for _ in range(n):
        mirror.add_ns("Tick")
    await client.sync()
    elapsed_ns = time.perf_counter() - t1
    bytes_ns = (conn.bytes_in + conn.bytes_out - bytes1) / n
    assert mirror.tick("Tick") == source.tick("Tick"), "mirror out of sync after add_ns"

    await client.stop(dispose=True)
    await server.stop(dispose=True)
    assert echo.transport is not None
    echo.transport.close()
    echo_server.close()
    med = statistics.median
    return {"echo_rps": 1 / med(echo_wall), "arpc_rps": 1 / med(add_wall),
            "echo_cpu_us": med(echo_cpu) * 1e6, "arpc_cpu_us": med(add_cpu) * 1e6,
            "ratio": med(echo_wall) / med(add_wall), "ratio_cpu": med(echo_cpu) / med(add_cpu),
            "add_ns_rps": n / elapsed_ns, "bytes_per_mutation": med(add_bytes),
            "bytes_per_add_ns": bytes_ns}


async def _add_cost(mirror: Any, n: int) -> float:
    """Seconds per `await mirror.add("Tick")`, the best of three rounds of `n // 3`."""
    best = float("inf")
    for _ in range(3):
        k = max(1, n // 3)
        t0 = time.perf_counter()
        for _ in range(k):
            await mirror.add("Tick")
        best = min(best, (time.perf_counter() - t0) / k)
    return best


async def bench_idle_clients(n: int, idle: int) -> dict[str, float]:
    """Cost of one add with `idle` other clients connected to the same Mux, vs none."""
    source = am.Machine(SCHEMA, id="bench-idle-source")
    source.verify_states(NAMES)
    source.add("Start")
    mux = Mux(source, push_interval=0.25)
    await mux.start()
    client = Client(mux.addr, id="bench-idle", schema=source.schema)
    await client.start()
    await client.mach.when("Ready", timeout=30)
    mirror = client.netmach
    assert mirror is not None
    for _ in range(200):  # warm up
        await mirror.add("Tick")
    alone = await _add_cost(mirror, n)
    others = [Client(mux.addr, id=f"bench-idle-{i}", schema=source.schema) for i in range(idle)]
    for c in others:
        await c.start()
    for c in others:
        await c.mach.when("Ready", timeout=60)
    for _ in range(200):
        await mirror.add("Tick")
    crowded = await _add_cost(mirror, n)
    assert len(mux.servers) == idle + 1
    for c in [client, *others]:
        await c.stop(dispose=True)
    await mux.stop(dispose=True)
    return {"add_s_alone": alone, "add_s_idle": crowded, "idle_ratio": crowded / alone}


async def main(n: int, as_json: bool, idle: int = 200, rounds: int = 5) -> None:
    gc.collect()
    res = await bench_round_trips(max(1, n // rounds), rounds)
    echo = res["echo_rps"]
    ratio = res["ratio"]
    gc.collect()
    idle_res = await bench_idle_clients(min(n, 3000), idle)
    rows = [
        ("raw echo (framing + msgpack)", f"{echo:,.0f} round trips/s"),
        ("aRPC await mirror.add()", f"{res['arpc_rps']:,.0f} mutations/s"),
        ("ratio aRPC / echo", f"{ratio:.3f}"),
        ("CPU per round trip: echo / aRPC",
         f"{res['echo_cpu_us']:,.1f} us / {res['arpc_cpu_us']:,.1f} us"),
        ("ratio from CPU time", f"{res['ratio_cpu']:.3f}"),
        ("aRPC mirror.add_ns() + sync()", f"{res['add_ns_rps']:,.0f} mutations/s"),
        ("bytes per add round trip", f"{res['bytes_per_mutation']:.1f} B"),
        ("bytes per add_ns", f"{res['bytes_per_add_ns']:.1f} B"),
        ("add via a Mux, no other client", f"{idle_res['add_s_alone'] * 1e6:,.0f} us"),
        (f"add via a Mux, {idle} idle clients", f"{idle_res['add_s_idle'] * 1e6:,.0f} us"),
        ("idle_clients_cost_ratio (goal <= 1.2)", f"{idle_res['idle_ratio']:.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"aRPC benchmark, {n} sequential operations each ({rounds} alternating rounds of "
          f"echo and aRPC, medians), msgpack {msgpack.version}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    if as_json:
        print(json.dumps({"n": n, "echo_rps": round(echo, 1),
                          "arpc_rps": round(res["arpc_rps"], 1),
                          "ratio": round(ratio, 4), "rounds": rounds,
                          "echo_cpu_us": round(res["echo_cpu_us"], 2),
                          "arpc_cpu_us": round(res["arpc_cpu_us"], 2),
                          "ratio_cpu": round(res["ratio_cpu"], 4),
                          "add_ns_rps": round(res["add_ns_rps"], 1),
                          "bytes_per_mutation": round(res["bytes_per_mutation"], 2),
                          "bytes_per_add_ns": round(res["bytes_per_add_ns"], 2),
                          "idle_clients": idle,
                          "add_us_alone": round(idle_res["add_s_alone"] * 1e6, 1),
                          "add_us_idle": round(idle_res["add_s_idle"] * 1e6, 1),
                          "idle_clients_cost_ratio": round(idle_res["idle_ratio"], 3)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds of echo and aRPC (medians)")
    parser.add_argument("--idle-clients", type=int, default=200,
                        help="idle clients for idle_clients_cost_ratio")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    ns = parser.parse_args()
    asyncio.run(main(ns.n, ns.json, ns.idle_clients, ns.rounds))
