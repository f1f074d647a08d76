"""An order-processing pipeline: a parent machine and one child machine per order.

What it exercises (and what the sample recording recordings/orders.amrec shows in amdbg):
relations (Require, Remove, Add), an Auto state (ReadyToShip), Multi states (Notify, OrderIn,
...), canceled transitions (a handler's veto, a Require that is not met), a handler raising an
exception, an error state (ErrPayment), recovery, cross-machine mutations (each order reports
to the pipeline, so its transitions become the pipeline's "source"), health checks and log
lines.

    python examples/orders.py                       # run it
    python examples/orders.py --record orders.amrec # and record it (or set AMNODE_RECORD=dir)
    amdbg ls orders.amrec
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import amnode as am

PIPELINE_SCHEMA = {
    "Start": am.State(),
    "Accepting": am.State(auto=True, require=["Start"]),
    "OrderIn": am.State(multi=True, require=["Accepting"]),
    "OrderShipped": am.State(multi=True),
    "OrderFailed": am.State(multi=True),
    "Healthcheck": am.State(),
    "Draining": am.State(remove=["Accepting"]),
}

ORDER_SCHEMA = {
    "Created": am.State(),
    "Validated": am.State(require=["Created"]),
    "PaymentPending": am.State(require=["Validated"], remove=["Paid"]),
    "Paid": am.State(require=["Validated"], remove=["PaymentPending"]),
    "Packed": am.State(require=["Paid"]),
    "ReadyToShip": am.State(auto=True, require=["Paid", "Packed"]),
    "Shipped": am.State(require=["ReadyToShip"], remove=["Cancelled"]),
    "Notify": am.State(multi=True),
    "Cancelled": am.State(remove=["PaymentPending", "Paid", "Packed", "ReadyToShip"]),
    "ErrPayment": am.State(require=["Exception"]),
}


class PaymentError(Exception):
    """The payment provider refused the card."""


@dataclass
class Order:
    """What the shop knows about an order."""

    id: str
    items: list[str]
    cards: list[str]
    address: str
    log: list[str] = field(default_factory=list)


ORDERS = [
    Order("1001", ["book", "lamp"], ["4242-ok"], "1 Main St"),
    Order("1002", ["chair"], ["0000-declined", "1111-declined"], "2 Oak Ave"),
    Order("1003", [], ["4242-ok"], "3 Elm Rd"),
    Order("1004", ["desk"], ["4242-ok"], "??"),
]


class PipelineHandlers:
    """The pipeline counts orders in and out."""

    def __init__(self) -> None:
        self.shipped: list[str] = []
        self.failed: list[str] = []

    def OrderInState(self, e: am.Event) -> None:
        e.machine.log("order %s accepted", e.args["order"])

    def OrderShippedState(self, e: am.Event) -> None:
        self.shipped.append(e.args["order"])

    def OrderFailedState(self, e: am.Event) -> None:
        self.failed.append(e.args["order"])
        e.machine.log("order %s failed: %s", e.args["order"], e.args.get("reason", "?"))


class OrderHandlers:
    """One order's negotiation (may veto) and final handlers."""

    def __init__(self, order: Order, pipeline: am.Machine) -> None:
        self.order = order
        self.pipeline = pipeline

    def ValidatedEnter(self, e: am.Event) -> bool:
        if not self.order.items:
            e.machine.log("order %s has no items", self.order.id)
            return False  # veto: the transition is canceled
        return True

    def PaidEnter(self, e: am.Event) -> bool:
        card = e.args.get("card", "")
        if card.endswith("declined"):
            e.machine.log("card %s declined", card)
            return False
        return True

    def PaidState(self, e: am.Event) -> None:
        e.machine.log("charged card %s", e.args["card"])

    def PackedState(self, e: am.Event) -> None:
        e.machine.log("packed %d items", len(self.order.items))

    def ShippedEnter(self, e: am.Event) -> bool:
        if self.order.address == "??":
            raise ValueError(f"cannot ship order {self.order.id}: no such address")
        return True

    def ShippedState(self, e: am.Event) -> None:
        e.machine.add("Notify", {"message": "your order is on its way"})
        self.pipeline.add("OrderShipped", {"order": self.order.id})

    def ErrPaymentState(self, e: am.Event) -> None:
        self.pipeline.add("OrderFailed", {"order": self.order.id, "reason": "payment"})

    def CancelledState(self, e: am.Event) -> None:
        e.machine.add("Notify", {"message": "your order was cancelled"})


def process(order: Order, pipeline: am.Machine, log_level: int,
            logger: Callable[[int, str], None] | None) -> am.Machine:
    """Run one order through the pipeline; returns its (child) machine."""
    m = am.Machine(ORDER_SCHEMA, id=f"order-{order.id}", parent=pipeline, tags=["order"],
                   handlers=OrderHandlers(order, pipeline), log_level=log_level,
                   args_mapper=am.new_args_mapper(names=None), logger=logger)
    pipeline.add("OrderIn", {"order": order.id})
    m.add("Created", {"items": len(order.items)})
    if m.add("Validated") == am.CANCELED:
        m.add("Packed")  # Require Paid is not met: canceled by relations
        m.add("Cancelled", {"reason": "empty order"})
        pipeline.add("OrderFailed", {"order": order.id, "reason": "empty"})
        return m
    m.add("PaymentPending")
    paid = False
    for card in order.cards:
        if m.add("Paid", {"card": card}) == am.EXECUTED:
            paid = True
            break
    if not paid:
        m.add_err_state("ErrPayment", PaymentError(f"{len(order.cards)} cards declined"),
                        {"order": order.id})
        m.add("Cancelled", {"reason": "payment"})
        return m
    m.add("Packed")  # ReadyToShip (Auto) follows: it requires Paid and Packed
    if m.add("Shipped") != am.EXECUTED:
        # ShippedEnter raised: Exception is active; fix the address, clear it and retry
        order.address = "4 Corrected Rd"
        m.log("address corrected to %s", order.address)
        m.remove("Exception")
        m.add("Shipped")
    m.add("Notify", {"message": "delivered"})
    return m


def main(argv: list[str] | None = None) -> int:
    """Run every order; print a one-line summary per order."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", metavar="PATH",
                        help="record to PATH (a .amrec file or a directory)")
    parser.add_argument("--log-level", type=int, default=int(am.LogLevel.OPS),
                        help="machine log level 0-5 (default 3; log lines are recorded)")
    parser.add_argument("--verbose", action="store_true", help="print the machine log")
    parser.add_argument("--seed", type=int, help="make machine and transition ids reproducible")
    args = parser.parse_args(argv)
    if args.seed is not None:
        am.seed_ids(args.seed)

    recorder = None
    if args.record:
        from amnode.telemetry import Recorder
        recorder = Recorder(args.record)
    logger = None if args.verbose else (lambda level, line: None)
    try:
        handlers = PipelineHandlers()
        pipeline = am.Machine(PIPELINE_SCHEMA, id="orders", tags=["pipeline", "shop:demo"],
                              handlers=handlers, log_level=args.log_level,
                              args_mapper=am.new_args_mapper(names=None), logger=logger)
        if recorder is not None:
            recorder.attach(pipeline)  # and every order machine created with parent=pipeline
        pipeline.add("OrderIn", {"order": "0"})  # canceled: Accepting is not active yet
        pipeline.add("Start")
        machines = []
        for order in ORDERS:
            machines.append(process(order, pipeline, args.log_level, logger))
            pipeline.add("Healthcheck")
        pipeline.add("Draining")
        for m in machines:
            print(f"{m.id}: {m}")
        print(f"shipped: {', '.join(handlers.shipped)}; failed: {', '.join(handlers.failed)}")
        for m in machines:
            m.dispose()
        pipeline.dispose()
    finally:
        if recorder is not None:
            recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
