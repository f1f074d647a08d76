"""amdbg.testing on the shipped samples: assertions on recordings (what they find, and how a
failure reads), the failure section, and golden runs (a fresh run of the orders example equals
the shipped one; a mismatch made on purpose shows its first difference)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amdbg.compare import change_label, machine_runs
from amdbg.testing import RecordingAssertionError, open_run
from amdbg.testing.golden import assert_matches_golden, golden_diffs, golden_message, write_golden
from amdbg.testing.report import failure_section
from amnode.telemetry import Recording, RecordWriter, TransitionRecord, open_recording
from amnode.telemetry.format import FLAG_ACCEPTED, FLAG_AUTO, FLAG_CHECK, FLAG_HEALTH
from amnode.telemetry.records import MUTATION_TYPES

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "recordings" / "orders.amrec"
POOL = ROOT / "recordings" / "node-pool.amrec"
#: ids the shipped samples keep when regenerated (seeded)
DECLINED = "mach://order-1002/e1c29267dcd91c8f"
FIRST_ERROR = "mach://order-1002/e9c2b43197c59b7a"


def _raises(fn: Callable[[], Any]) -> str:
    with pytest.raises(RecordingAssertionError) as info:
        fn()
    return str(info.value)


# ---------------------------------------------------------------------- finding transitions


def test_transitions_by_what_they_did() -> None:
    with open_run(ORDERS, cwd=ROOT) as run:
        declined = run.machine("order-*").transitions(called="Paid", accepted=False)
        assert [(tx.machine, tx.number) for tx in declined] == [("order-1002", 7),
                                                               ("order-1002", 8)]
        assert declined.first.url == DECLINED
        assert declined.first.args == {"card": "0000-declined"}
        assert run.transitions(args={"card": "1111-declined"}).numbers == [8]
        paid = run.machine("order-*").transitions(activated="Paid")
        assert sorted(tx.machine for tx in paid) == ["order-1001", "order-1004"]
        assert paid.where(args={"card": "4242-ok"}).numbers == [7, 7]
        # Auto ReadyToShip tries before it can: canceled, and flagged auto
        auto = run.machine("order-1001").transitions(called="ReadyToShip", accepted=False)
        assert len(auto) > 0 and all(tx.is_auto for tx in auto)
        assert run.machine("order-1001").transitions(auto=False, accepted=False).numbers == []
        shipped = run.machines("order-*").transitions(activated="Shipped")
        shipped.assert_count(2)
        assert run.machine("orders").transitions(type="remove").numbers == [17]


def test_machines_by_pattern() -> None:
    with open_run(ORDERS) as run:
        assert run.machine("order-*").keys == ["order-1001", "order-1002", "order-1003",
                                              "order-1004"]
        assert run.machine("orders").keys == ["orders"]  # exact, not a glob over order-*
        assert len(run.machines("*")) == 5
        assert run.machines("nothing*").keys == []
        message = _raises(lambda: run.machine("nothing*"))
        assert message == ("no machine matches 'nothing*'; recorded: orders, order-1001, "
                           "order-1002, order-1003, order-1004")
        assert "matches 4 machines, expected one" in _raises(lambda: run.machine("order-*").one())
        assert run.machine("order-1004").active() == {
            "Created", "Validated", "Paid", "Packed", "ReadyToShip", "Shipped", "Notify"}


def test_what_caused_what_across_processes() -> None:
    with open_run(POOL) as run:
        provide = run.machine("ns-hash-*").transitions(called="ProvideWorker", type="add")
        provide.assert_count(2)
        cause = run.source_of(provide.first)
        # the client named cli1 (ids end in the time the sample was recorded)
        assert cause is not None and cause.machine_id.startswith("nc-hash-cli1-")
        assert "WorkerRequested" in cause.called
        direct = run.caused_by(provide.first)
        assert [tx.machine for tx in direct if tx.machine.startswith("nw-")] != []
        serve = run.caused_by(provide.first).where(called="ServeClient")
        serve.assert_count(1)
        worker = run.machine(serve.first.machine).one()
        assert worker.process.pid != run.machine("ns-hash-*").one().process.pid
        deep = run.caused_by(provide.first, deep=True)
        assert {tx.url for tx in direct} <= {tx.url for tx in deep}
        assert any("Reserved" in tx.called for tx in deep)


# ---------------------------------------------------------------------- failures read well


def test_a_missing_activation_names_states_numbers_and_the_command() -> None:
    with open_run(ORDERS, cwd=ROOT) as run:
        run.machine("order-1001").assert_sequence("Created", "Validated", "Paid", "Shipped")
        run.machine("order-1001").assert_sequence("Created", ("Paid",), ["Packed"], "ReadyToShip")
        message = _raises(lambda: run.machine("order-*").assert_sequence(
            "Created", "Validated", "Paid", "Shipped"))
    lines = message.splitlines()
    assert lines[0] == "order-1002: activations do not follow Created -> Validated -> Paid -> " \
                       "Shipped"
    assert lines[1] == "  matched     Created at #1, Validated at #3"
    assert lines[2] == "  missing     Paid was not activated after #3"
    assert lines[3] == ("  activations #1 +Created, #3 +Validated, #5 +PaymentPending, "
                        "#9 +ErrPayment +Exception, #11 +Cancelled -PaymentPending, #12 +Notify")
    assert lines[4].startswith("  open it: amdbg replay recordings/orders.amrec "
                               "mach://order-1002/")


def test_an_exact_sequence_points_at_the_unexpected_transition() -> None:
    with open_run(ORDERS, cwd=ROOT) as run:
        order = run.machine("order-1003")
        order.assert_sequence("Created", "Cancelled", "Notify", exact=True)
        message = _raises(lambda: order.assert_sequence("Created", "Validated", exact=True))
        tx5 = order.one().transition(5)
        assert message.splitlines()[2] == (
            "  problem     expected Validated next, got order-1003 #5 add Cancelled -> "
            "accepted, +Cancelled [args reason=empty order]")
        assert message.splitlines()[-1].endswith(tx5.url)
        message = _raises(lambda: order.assert_sequence("Created", "Cancelled", exact=True))
    assert "more activations after the last expected one: order-1003 #6 add Notify" in message


def test_errors_and_counts() -> None:
    with open_run(ORDERS, cwd=ROOT) as run:
        errors = run.errors()
        assert [(tx.machine, tx.number) for tx in errors] == [("order-1002", 9),
                                                             ("order-1004", 12)]
        message = _raises(run.assert_no_errors)
        assert message.splitlines()[0] == ("expected no transition that activated an error "
                                           "state, found 2")
        assert "order-1002 #9 add ErrPayment Exception -> accepted, +ErrPayment +Exception " \
               "(AException(PaymentError('2 cards declined')))" in message
        assert message.splitlines()[-1] == \
            f"  open it: amdbg replay recordings/orders.amrec {FIRST_ERROR}"
        declined = run.machine("order-1002").transitions(called="Paid", accepted=False)
        message = _raises(lambda: declined.assert_count(1, "one retry only"))
        assert message.splitlines() == [
            "expected 1 transition(s) in order-1002 called Paid and canceled, found 2 "
            "(one retry only)",
            "  order-1002 #7 add Paid -> canceled: vetoed by PaidEnter (returned False) "
            "[args card=0000-declined]",
            "  order-1002 #8 add Paid -> canceled: vetoed by PaidEnter (returned False) "
            "[args card=1111-declined]"]
        assert "found none" in _raises(lambda: run.transitions(called="Nope").first)
        message = _raises(lambda: run.machine("order-1003").assert_active("Shipped"))
        assert message.splitlines()[0] == ("order-1003: Shipped not active at the end; active: "
                                           "Cancelled Created Notify")


def test_recorded_strings_are_escaped_in_messages(hostile: Any) -> None:
    with open_run(hostile.path) as run:
        listing = run.transitions().listing()
        message = _raises(lambda: run.transitions().assert_none())
    for text in (listing, message):
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
        assert "\\x1b" in text


# ---------------------------------------------------------------------- the failure section


def test_the_failure_section_of_the_orders_sample() -> None:
    section = failure_section(ORDERS, cwd=ROOT)
    assert section is not None
    lines = section.splitlines()
    assert lines[0] == ("amnode recording: recordings/orders.amrec (1 process, 5 machines, "
                        "64 transitions)")
    assert lines[1] == ("first error     order-1002 #9 add ErrPayment Exception -> accepted, "
                        "+ErrPayment +Exception (AException(PaymentError('2 cards declined'))) "
                        "[args order=1002]")
    assert lines[2].startswith("first canceled  orders #1 add OrderIn -> canceled: not "
                               "accepted by relations: OrderIn requires Accepting (inactive)")
    assert lines[3] == f"open it         amdbg replay recordings/orders.amrec {FIRST_ERROR}"
    assert lines[4] == "machines (last transitions)"
    assert lines[5] == "  order-1002  12 transitions, 4 with an error state active"
    assert failure_section(ROOT / "no-such-dir") is None


# ---------------------------------------------------------------------- golden runs


def test_a_fresh_run_of_the_example_equals_the_shipped_golden(orders: Path,
                                                              tmp_path: Path) -> None:
    """Other ids? No: the same seed. Other times, pid, host: ignored."""
    golden = tmp_path / "golden" / "orders.amrec"
    assert write_golden(ORDERS, golden) > 0
    assert_matches_golden(orders, golden)
    assert [d.status for d in golden_diffs(orders, golden)] == ["same"] * 5


def _copy(src: Recording, dst: Path,
          change: Callable[[TransitionRecord], TransitionRecord | None]) -> Path:
    """`src` written again transition by transition; `change(tx)` may return a replacement
    record (or None to keep it)."""
    p = src.processes[0]
    w = RecordWriter.create(dst, {"host": p.host, "pid": p.pid + 1, "argv0": p.argv0,
                                  "start_ns": p.start_ns})
    for m in src.machines:
        mno = w.add_machine(m.id, m.parent, m.tags, m.state_names, m.schema, m.groups,
                            m.groups_order, m.created_ns)
        for tx in m.transitions():
            tx = change(tx) or tx
            flags = (FLAG_ACCEPTED * tx.accepted) | (FLAG_AUTO * tx.is_auto) | \
                (FLAG_CHECK * tx.is_check) | (FLAG_HEALTH * tx.is_health)
            src_ = [tx.source.machine_id, tx.source.tx_id, tx.source.machine_time] \
                if tx.source else None
            w.transition(mno, tx.seq, tx.start_ns, tx.end_ns, tx.id, flags,
                         MUTATION_TYPES.index(tx.type),
                         [tx.state_names.index(c) for c in tx.called], tx.queue_tick,
                         tx.mutation_queue_tick, tx.queue_len, tx.time_after, tx.time_before,
                         None, None, None, dict(tx.args) or None, src_)
    w.close()
    return dst


def test_a_golden_mismatch_made_on_purpose_shows_the_first_difference(tmp_path: Path) -> None:
    """This run's order 1001 was not shipped: `Shipped` was refused (canceled)."""
    from dataclasses import replace

    def refuse(tx: TransitionRecord) -> TransitionRecord | None:
        if tx.machine == "order-1001" and "Shipped" in tx.called:
            return replace(tx, accepted=False, time_after=list(tx.time_before))
        return None

    with open_recording(ORDERS) as rec:
        run = _copy(rec, tmp_path / "run.amrec", refuse)
    golden = tmp_path / "golden.amrec"
    write_golden(ORDERS, golden)
    diffs = golden_diffs(run, golden)
    assert [d.status for d in diffs] == ["same", "differs", "same", "same", "same"]
    message = golden_message(diffs, run=run, golden=golden, cwd=tmp_path, hint="(hint)")
    assert message is not None
    with open_recording(run) as rec:
        notify = rec.machine("order-1001").transition(12)
    assert message.splitlines() == [
        "golden run differs: 1 of 5 machines",
        "  golden    golden.amrec",
        "  this run  run.amrec",
        "order-1001: differs at change 7 (golden 9 changes, this run 8)",
        "       golden            this run",
        "     5 #9 +Packed        #9 +Packed",
        "     6 #10 +ReadyToShip  #10 +ReadyToShip",
        "  >  7 #11 +Shipped      #12 +Notify",
        f"  open it: amdbg replay run.amrec {notify.url}",
        "(hint)",
    ]
    with pytest.raises(RecordingAssertionError, match="order-1001: differs at change 7"):
        assert_matches_golden(run, golden)
    # the same comparison as `amdbg diff`
    from amdbg.cli import main
    assert main(["diff", str(golden), str(run)]) == 4


def test_a_missing_golden_and_a_missing_machine(tmp_path: Path) -> None:
    with pytest.raises(RecordingAssertionError, match="no golden run at"):
        assert_matches_golden(ORDERS, tmp_path / "none.amrec")

    # the pool sample as this run, the orders sample as the golden one: no machine in common
    message = golden_message(golden_diffs(POOL, ORDERS), run=POOL, golden=ORDERS, cwd=ROOT)
    assert message is not None
    lines = message.splitlines()
    assert lines[0] == "golden run differs: 38 of 38 machines"
    assert "orders: only in the golden run (13 changes), missing in this run" in lines
    with open_recording(POOL) as rec:  # a change: an accepted transition that (de)activated
        changes = sum(1 for t in rec.machine("ns-hash-demo-000000-0")
                      if t.accepted and (t.activated or t.deactivated))
    assert changes > 40
    line = f"ns-hash-demo-000000-0: only in this run ({changes} changes)"
    assert line in lines
    at = lines.index(line)
    assert lines[at + 1].startswith("  open it: amdbg replay recordings/node-pool.amrec "
                                    "mach://ns-hash-demo-000000-0/")
    assert lines[-1] == ("... and 30 more machines differ (amdbg diff recordings/orders.amrec "
                         "recordings/node-pool.amrec)")


def test_runs_carry_the_ids_of_their_changes() -> None:
    with open_recording(ORDERS) as rec:
        runs = machine_runs(rec)
        run = runs["order-<hex>#2"]  # 1002: four hex digits, masked like a random suffix
        assert run.machine_id == "order-1002"
        for n, tx_id in zip(run.numbers, run.ids, strict=True):
            assert rec.machine("order-1002").transition(n).id == tx_id
        assert change_label(run.changes[0]) == "+Created"
        assert change_label(((), ())) == "(no change)"
