"""A supervisor process for the tests: N worker processes; prints their PIDs as one JSON line
once the pool is ready, then runs until killed."""

import asyncio
import json
import sys
from pathlib import Path

from amnode import node

sys.path.insert(0, str(Path(__file__).resolve().parent))
from square_worker import SCHEMA


async def main(n: int, grace: float) -> None:
    timeouts = node.NodeTimeouts(supervisor_grace=grace, bootstrap=30.0, connect=10.0)
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "square_worker.py")]
    sup = node.Supervisor("NTW", cmd, SCHEMA, min=n, max=n, warm=0, timeouts=timeouts)
    await sup.start()
    await sup.mach.when("PoolReady", timeout=60)
    pids = [w.pid for w in await sup.workers()]
    print(json.dumps({"pids": pids, "addr": sup.public_addr}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
