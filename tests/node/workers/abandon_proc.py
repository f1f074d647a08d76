"""A supervisor process that never calls stop(): its loop ends (or is cancelled) with worker
processes running. Prints their PIDs as one JSON line first. Their grace is long (60 s), so
only the supervisor's own cleanup can end them quickly."""

import asyncio
import json
import sys
from pathlib import Path

from amnode import node

sys.path.insert(0, str(Path(__file__).resolve().parent))
from square_worker import SCHEMA


async def main(how: str) -> None:
    timeouts = node.NodeTimeouts(supervisor_grace=60.0, bootstrap=30.0, connect=10.0)
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "square_worker.py")]
    sup = node.Supervisor("NTW", cmd, SCHEMA, min=2, max=2, warm=0, timeouts=timeouts)
    await sup.start()
    await sup.mach.when("PoolReady", timeout=60)
    print(json.dumps({"pids": [w.pid for w in await sup.workers()]}), flush=True)
    if how == "cancel":
        raise asyncio.CancelledError  # the main task is cancelled; asyncio.run closes the loop
    # "return": the loop closes with everything still running


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except asyncio.CancelledError:
        pass
