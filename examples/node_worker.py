"""The worker process of examples/node_pool.py: hashes a file (sha256), or squares a number.

The supervisor runs it as `python examples/node_worker.py -a <bootstrap addr>`; everything else
(listening, reporting back, serving one client, exiting without a supervisor) is done by
`node.run_worker`. The job runs in a thread, inside an async handler of `Working`: handlers only
decide, they never block the worker's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib

import amnode as am
from amnode import node
from amnode.states import node as ssnode

KIND = "hash"
#: the node worker states, nothing else (a worker may add its own)
SCHEMA = am.schema_merge(ssnode.WorkerSchema, {})


def sha256_file(path: str) -> tuple[str, int]:
    """The file's sha256 and size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class Handlers:
    def WorkRequestedState(self, e: am.Event) -> None:
        """A client asked for work: `{"input": n}` is answered at once, `{"path": p}` is
        hashed (WorkRequested -> Working -> WorkReady; each removes the others)."""
        m = e.machine
        if "input" in e.args:
            m.add(ssnode.CLIENT_SEND_PAYLOAD, {"name": "square", "data": e.args["input"] ** 2})
            m.add(ssnode.WORK_READY)  # done; the next WorkRequested is a new job
            return
        m.add(ssnode.WORKING, {"path": e.args.get("path", "")})

    async def WorkingState(self, e: am.Event) -> None:
        """Hash in a thread; the result goes to the client as the payload `sha256`."""
        m = e.machine
        path = e.args["path"]
        try:
            digest, size = await asyncio.to_thread(sha256_file, path)
        except OSError as err:
            m.add_err_state(ssnode.ERR_WORK, err, {"path": path})
            m.add(ssnode.CLIENT_SEND_PAYLOAD, {"name": "error", "data": {
                "path": path, "error": str(err)}})
            m.remove(ssnode.WORKING)
            return
        m.add(ssnode.CLIENT_SEND_PAYLOAD, {"name": "sha256", "data": {
            "path": path, "sha256": digest, "bytes": size}})
        m.add(ssnode.WORK_READY)


if __name__ == "__main__":
    node.run_worker(KIND, SCHEMA, Handlers())
