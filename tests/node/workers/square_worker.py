"""A node worker process for the tests: Go's test schema, squares `input` on WorkRequested,
and `Hang` blocks its event loop (a hung worker)."""

import asyncio
import sys
import time

import amnode as am
from amnode import node
from amnode.states import node as ssnode

SCHEMA = am.schema_merge(ssnode.WorkerSchema, {
    "A": am.State(auto=True, require=["C"]),
    "B": am.State(multi=True, add=["C"]),
    "C": am.State(after=["D"]),
    "D": am.State(add=["C", "B"]),
    "Hang": am.State(),
    "Chatter": am.State(multi=True),
})


class Handlers:
    def WorkRequestedState(self, e: am.Event) -> None:
        x = e.args["input"]
        e.machine.add("ClientSendPayload", {"name": "square", "data": x * x})
        e.machine.add("WorkReady")  # done: the next WorkRequested is a new job

    async def ChatterState(self, e: am.Event) -> None:
        """Write `lines` numbered lines to stdout and stderr, yielding now and then."""
        for i in range(e.args["lines"]):
            sys.stdout.write(f"out {i:06d} " + "x" * (i % 50) + "\n")
            sys.stderr.write(f"err {i:06d}\n")
            if i % 200 == 0:
                await asyncio.sleep(0)
        sys.stdout.flush()
        sys.stderr.flush()

    async def HangState(self, e: am.Event) -> None:
        await asyncio.sleep(0)
        print("hanging", file=sys.stderr, flush=True)
        time.sleep(3600)  # blocks the loop: no health check can be answered


if __name__ == "__main__":
    node.run_worker("NTW", SCHEMA, Handlers())
