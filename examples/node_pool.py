"""A supervisor with a pool of worker processes and two clients hashing files (amnode.node).

The supervisor (this process) keeps a pool of `examples/node_worker.py` processes; two clients
(also in this process, as they could be in any other) each lease one worker and send it files
to hash, one request at a time, through states (`WorkRequested` -> payload `sha256`). The
result is the same as `sha256sum`, computed by the pool.

    python examples/node_pool.py                     # hash amnode/node/*.py
    python examples/node_pool.py --dir docs --glob '*.md'
    python examples/node_pool.py --square 2          # the seed's flow: one client, payload 4
    python examples/node_pool.py --forever           # hash again every 2 s; `amdbg attach` it
    AMNODE_RECORD=rec python examples/node_pool.py   # record every process; then `amdbg ls rec`

`--seed N` makes machine and transition ids of this process reproducible and fixes the
supervisor's id to `ns-hash-<host>-000000-0` (examples/record_samples.py uses it with
`AMNODE_HOSTNAME=demo`, so the README's `amdbg replay` command keeps working).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import amnode as am
from amnode import node
from amnode.node.naming import host_name
from amnode.states import node as ssnode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from node_worker import KIND, SCHEMA  # noqa: E402

WORKER_CMD = [sys.executable, str(HERE / "node_worker.py")]


async def hash_files(client: node.Client, paths: list[Path]) -> list[tuple[str, dict]]:
    """Hash `paths` one by one on the client's leased worker."""
    out = []
    for path in paths:
        payload = await client.work({"path": os.path.relpath(path)}, timeout=30)
        out.append((payload.source, payload.data))
    return out


async def pool_demo(sup: node.Supervisor, files: list[Path], *, brief: bool = False) -> int:
    """Two clients, a worker each, half of the files each (`brief`: one summary line)."""
    clients = [node.Client(f"cli{i}", KIND, SCHEMA) for i in (1, 2)]
    try:
        for c in clients:
            await c.start([sup.public_addr])
        halves = [files[0::2], files[1::2]]
        results = await asyncio.gather(*(hash_files(c, h) for c, h in zip(clients, halves,
                                                                          strict=True)))
        workers = {}
        for res in results:
            for source, data in res:
                workers.setdefault(source, 0)
                workers[source] += 1
                if not brief:
                    print(f"{data['sha256']}  {data['path']}  ({data['bytes']} bytes)")
        print(f"{len(files)} files hashed by {len(workers)} worker processes: "
              + ", ".join(f"{w} ({n})" for w, n in sorted(workers.items())), flush=True)
        if not brief:
            infos = {w.id: w for w in await sup.workers()}
            print("pool:", ", ".join(f"{i.id} pid {i.pid} {i.state}" for i in infos.values()))
    finally:
        for c in clients:
            await c.stop()
    return 0


class ShowPayload:
    """The client's handler for worker payloads (the seed's `ServerPayload`)."""

    def __init__(self) -> None:
        self.got: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def ServerPayloadState(self, e: am.Event) -> None:
        if e.args["name"] != ssnode.PROVIDE_WORKER and not self.got.done():
            self.got.set_result(e.args["data"])


async def square_demo(sup: node.Supervisor, n: int) -> int:
    """The seed's flow: request a worker, add WorkRequested{input}, get the payload."""
    handlers = ShowPayload()
    client = node.Client("cli", KIND, SCHEMA, handlers=handlers)
    try:
        await client.start([sup.public_addr])
        await client.mach.when(ssnode.SUPER_READY, timeout=30)
        worker = await client.req_worker(timeout=30)
        await worker.add(ssnode.WORK_REQUESTED, {"input": n})
        data = await asyncio.wait_for(handlers.got, 30)
        print(f"worker {worker.remote_id} sent {data} for input {n}")
    finally:
        await client.stop()
    return 0


async def main(args: argparse.Namespace) -> int:
    name = f"{KIND}-{host_name()}-000000-0" if args.seed is not None else None
    sup = node.Supervisor(KIND, WORKER_CMD, SCHEMA, min=2, max=args.workers, warm=0,
                          name=name)
    started = time.monotonic()
    try:
        await sup.start()
        await sup.mach.when(ssnode.POOL_READY, timeout=60)
        print(f"supervisor {sup.mach.id} on {sup.public_addr}: pool ready in "
              f"{time.monotonic() - started:.2f}s")
        if args.square is not None:
            return await square_demo(sup, args.square)
        files = sorted(p for p in Path(args.dir).glob(args.glob) if p.is_file())
        if not files:
            print(f"no file matches {args.dir}/{args.glob}", file=sys.stderr)
            return 1
        if args.forever:
            print(f"watch it live: amdbg attach {sup.public_addr}   (Ctrl-C stops)", flush=True)
            while True:
                await pool_demo(sup, files, brief=True)
                await asyncio.sleep(2)
        return await pool_demo(sup, files)
    finally:
        await sup.stop()


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=str(HERE.parent / "amnode" / "node"))
    parser.add_argument("--glob", default="*.py")
    parser.add_argument("--workers", type=int, default=3, help="max worker processes")
    parser.add_argument("--square", type=int, help="run the seed's flow with this input")
    parser.add_argument("--seed", type=int, help="reproducible ids (sample recordings)")
    parser.add_argument("--forever", action="store_true",
                        help="hash the files again every 2 s until Ctrl-C (attach amdbg to it)")
    args = parser.parse_args()
    if args.seed is not None:
        am.seed_ids(args.seed)
    try:
        return asyncio.run(main(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(cli())
