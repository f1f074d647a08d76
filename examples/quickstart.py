"""A five-minute tour of amnode.machine: relations, handlers, auto states, waits and errors.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

import amnode as am

# States only declare relations; there are no transition edges.
SCHEMA = {
    "Start": am.State(),
    "Connecting": am.State(require=["Start"], remove=["Connected"]),
    "Connected": am.State(require=["Start"], remove=["Connecting"]),
    "Ready": am.State(auto=True, require=["Connected"]),
    "Request": am.State(multi=True, require=["Ready"]),
}


class Handlers:
    """Handler methods are named after states: negotiation (Enter/Exit) and final (State/End)."""

    def ConnectingEnter(self, e: am.Event) -> bool:
        # negotiation handlers may cancel a transition by returning False
        return "addr" in e.args

    async def ConnectingState(self, e: am.Event) -> None:
        # an async final handler runs as a task; it is cancelled if Connecting changes
        await asyncio.sleep(0.01)
        e.machine.add("Connected")

    def RequestState(self, e: am.Event) -> None:
        print(f"  request #{e.args['n']} handled, Request tick = {e.machine.tick('Request')}")


async def main() -> None:
    m = am.Machine(SCHEMA, id="quickstart", handlers=Handlers())
    print("start:           ", m.string_all())

    print("add Connecting:  ", am.result_str(m.add("Connecting")), "(Require: Start is inactive)")
    m.add("Start")
    print("add Connecting:  ", am.result_str(m.add("Connecting")), "(ConnectingEnter: no addr)")
    print("add Connecting:  ", am.result_str(m.add("Connecting", {"addr": "127.0.0.1:1"})))
    await m.when("Ready", timeout=1)
    print("ready:           ", m)  # Ready is Auto: it activated once Connected did

    for n in range(3):
        m.add("Request", {"n": n})  # Multi: every add is a new instance (+2 ticks)

    m.add_err(RuntimeError("boom"))
    print("after an error:  ", m.string_all())
    print(m.inspect(["Ready", "Request"]))
    m.dispose()
    await m.when_disposed()


if __name__ == "__main__":
    asyncio.run(main())
