"""The pytest plugin on small sample suites, each run by `pytester` in a pytest process of its
own (the plugin is loaded from the installed entry point, as users get it): failing tests keep
their recording and print the command that opens the first error, passing ones leave nothing,
node worker processes record into the test's directory, golden runs are written, compared and
updated, and with recording off the plugin stays out of the way."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from amdbg.cli import main as amdbg_main
from amnode.telemetry import open_recording

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ROOT / "tests" / "node" / "workers"

SHOP = '''
import os

import amnode as am

SCHEMA = {
    "Created": am.State(),
    "Validated": am.State(require=["Created"]),
    "Paid": am.State(require=["Validated"]),
    "Shipped": am.State(require=["Paid"]),
    "ErrPayment": am.State(require=["Exception"]),
}


class Payments:
    def PaidEnter(self, e):
        return e.args.get("card") != "declined"

    def ShippedState(self, e):
        if e.args.get("address") == "??":
            raise ValueError("no such address")


def order(oid, card, address="1 Main St"):
    m = am.Machine(SCHEMA, id=f"order-{oid}", handlers=Payments())
    m.add("Created")
    m.add("Validated")
    m.add("Paid", {"card": card})
    if not m.is_active("Paid"):
        m.add_err_state("ErrPayment", RuntimeError(f"card {card} refused"))
        return m
    m.add("Shipped", {"address": address})
    return m
'''

SUITE = SHOP + '''

def test_ships():
    assert order(1, "4242").is_active("Shipped")


def test_declined_card_ships():
    m = order(2, "declined")
    assert m.is_active("Shipped"), "order 2 did not ship"
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


@pytest.fixture(autouse=True)
def _no_outer_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample suites record only what the plugin tells them to."""
    monkeypatch.delenv("AMNODE_RECORD", raising=False)


def test_the_plugin_is_an_installed_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("amnode") == "amdbg.pytest_plugin", \
        "the pytest11 entry point is missing: run `pip install -e .` again"


def test_the_entry_point_imports_nothing_heavy() -> None:
    """Installed but off, the plugin costs one small module: no amnode, no recorder, no TUI."""
    code = ("import sys, amdbg.pytest_plugin; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('amnode', 'amdbg', 'textual', 'rich', 'msgpack')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "['amdbg', 'amdbg.pytest_plugin']"


def test_a_failing_test_keeps_its_recording_and_says_where_it_went_wrong(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=SUITE)
    result = _run(pytester, "--amnode-record")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    base = pytester.path / ".amnode-recordings"
    # the passing test left nothing; the failing one its directory
    assert [p.name for p in base.iterdir()] == ["test_shop.py..test_declined_card_ships"]
    kept = base / "test_shop.py..test_declined_card_ships"
    result.stdout.fnmatch_lines([
        "*- amnode recording -*",
        "amnode recording: .amnode-recordings/test_shop.py..test_declined_card_ships "
        "(1 process, 1 machine, 4 transitions)",
        "first error     order-2 #4 add ErrPayment Exception -> accepted, +ErrPayment "
        "+Exception (*RuntimeError('card declined refused')*",
        "first canceled  order-2 #3 add Paid -> canceled: vetoed by PaidEnter*"
        "[[]args card=declined]",
        "open it         amdbg replay .amnode-recordings/test_shop.py..test_declined_card_ships"
        " mach://order-2/*",
        "machines (last transitions)",
        "  order-2  4 transitions, 1 with an error state active",
        "    #2 add Validated -> accepted, +Validated",
        "*recordings of failed tests kept: 1",
    ])
    # the command opens exactly the first error transition
    line = next(x for x in out.splitlines() if x.startswith("open it "))
    cmd = shlex.split(line.removeprefix("open it").strip())
    assert cmd[:2] == ["amdbg", "replay"] and cmd[3].startswith("mach://order-2/")
    assert (pytester.path / cmd[2]).resolve() == kept.resolve()
    with open_recording(kept) as rec:
        tx = rec.machine("order-2").transition(4)
        assert tx.url == cmd[3] and "Exception" in tx.activated
    # and amdbg opens it (show: the same address, without a terminal)
    with pytester.path.joinpath("show.txt").open("w") as f:
        proc = subprocess.run([str(Path(sys.executable).parent / "amdbg"), "show", *cmd[2:]],
                              cwd=pytester.path, stdout=f, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "add ErrPayment Exception" in pytester.path.joinpath("show.txt").read_text()


def test_recording_is_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=SUITE)
    pytester.makeconftest('''
def pytest_sessionfinish(session):
    print("\\nrecording plugin registered:",
          session.config.pluginmanager.has_plugin("amnode-recording"))
''')
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=1, failed=1)
    assert "amnode recording" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*recording plugin registered: False"])
    assert not (pytester.path / ".amnode-recordings").exists()


def test_keep_and_ini_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=SUITE)
    pytester.makeini("[pytest]\namnode_record = true\namnode_keep = true\n"
                     "amnode_record_dir = recs\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    assert sorted(p.name for p in (pytester.path / "recs").iterdir()) == [
        "test_shop.py..test_declined_card_ships", "test_shop.py..test_ships"]
    result.stdout.fnmatch_lines(["open it         amdbg replay recs/test_shop.py..*"])


def test_the_fixture_records_one_test_and_asserts_on_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flow=SHOP + '''

def test_payments(amnode_recording):
    order(1, "4242")
    order(2, "declined")
    run = amnode_recording.open()
    run.machine("order-*").transitions(called="Paid", accepted=False).assert_count(1)
    run.machine("order-1").assert_sequence("Created", "Validated", "Paid", "Shipped")
    run.machine("order-2").assert_active("ErrPayment")


def test_a_wrong_expectation(amnode_recording):
    order(3, "declined")
    amnode_recording.open().machine("order-3").assert_sequence("Created", "Paid", "Shipped")


def test_not_recorded():
    order(4, "4242")
''')
    pytester.makeconftest('''
def pytest_sessionfinish(session):
    print("\\nrecording plugin registered:",
          session.config.pluginmanager.has_plugin("amnode-recording"))
''')
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "E*RecordingAssertionError: order-3: activations do not follow "
        "Created -> Paid -> Shipped",
        "E*matched     Created at #1",
        "E*missing     Paid was not activated after #1",
        "E*activations #1 +Created, #2 +Validated, #4 +ErrPayment +Exception",
        "E*open it: amdbg replay .amnode-recordings/test_flow.py..test_a_wrong_expectation"
        " mach://order-3/*",
    ])
    result.stdout.fnmatch_lines(["recording plugin registered: True"])
    assert [p.name for p in (pytester.path / ".amnode-recordings").iterdir()] == [
        "test_flow.py..test_a_wrong_expectation"]


NODE_SUITE = '''
import asyncio
import sys

from amnode import node

sys.path.insert(0, {workers!r})
from square_worker import SCHEMA  # noqa: E402

WORKER = [sys.executable, {worker!r}]
TIMEOUTS = node.NodeTimeouts(connect=30.0, bootstrap=60.0, req_worker=60.0, delivery=30.0)


def test_a_pool_squares():
    async def main():
        sup = node.Supervisor("NTW", worker_cmd=WORKER, worker_schema=SCHEMA, min=1, max=1,
                              warm=0, timeouts=TIMEOUTS)
        await sup.start("127.0.0.1:0")
        try:
            await sup.mach.when("PoolReady", timeout=60)
            client = node.Client("cli", "NTW", worker_schema=SCHEMA, timeouts=TIMEOUTS)
            await client.start([sup.public_addr])
            payload = await client.work({{"input": 3}}, timeout=60)
            await client.stop()
            return payload.data
        finally:
            await sup.stop()

    assert asyncio.run(main()) == 9
    assert False, "failing on purpose, to keep the recording"
'''


def test_node_worker_processes_record_into_the_tests_directory(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pool=NODE_SUITE.format(
        workers=str(WORKERS), worker=str(WORKERS / "square_worker.py")))
    result = _run(pytester, "--amnode-record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*failing on purpose*", "*- amnode recording -*",
                                 "amnode recording: .amnode-recordings/test_pool.py..test_a_pool"
                                 "_squares (2 processes, *"])
    kept = pytester.path / ".amnode-recordings" / "test_pool.py..test_a_pool_squares"
    assert len(list(kept.glob("*.amrec"))) == 2
    with open_recording(kept) as rec:
        assert not [c for c in rec.corruption if not c.torn_tail]
        sup = next(m for m in rec.machines if m.id.startswith("ns-NTW-"))
        worker = next(m for m in rec.machines if m.id.startswith("nw-NTW-"))
        assert worker.process.pid != sup.process.pid
        assert rec.parent(worker) is sup
        jobs = [tx for tx in worker.transitions() if "WorkRequested" in tx.called]
        assert jobs and jobs[0].args.get("input") == "3"


GOLDEN_SUITE = SHOP + '''
import pytest


@pytest.mark.amnode_golden("shop")
def test_shop():
    card = os.environ.get("SHOP_CARD", "4242")
    order(1, "4242")
    order(2, card)
    am.Machine({"Idle": am.State()}).add("Idle")   # a random id: masked by the comparison
'''


def test_golden_runs_are_written_compared_and_updated(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_golden=GOLDEN_SUITE)
    golden = pytester.path / "golden" / "shop.amrec"
    # 1: no golden yet: written from this run
    result = _run(pytester, "--amnode-golden=golden")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["golden run written: golden/shop.amrec"])
    written = golden.read_bytes()
    # 2: the same workflow again (other ids, times, pid): the same
    result = _run(pytester, "--amnode-golden=golden")
    result.assert_outcomes(passed=1)
    assert "golden run written" not in result.stdout.str()
    assert golden.read_bytes() == written
    # 3: a mismatch on purpose: order 2's card is declined this time
    monkeypatch.setenv("SHOP_CARD", "declined")
    result = _run(pytester, "--amnode-golden=golden")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_shop*",
        "golden run differs: 1 of 3 machines",
        "  golden    golden/shop.amrec",
        "  this run  .amnode-recordings/test_golden.py..test_shop",
        "order-2: differs at change 3 (golden 4 changes, this run 3)",
        "       golden         this run",
        "     1 #1 +Created    #1 +Created",
        "     2 #2 +Validated  #2 +Validated",
        "  >  3 #3 +Paid       #4 +ErrPayment +Exception",
        "  open it: amdbg replay .amnode-recordings/test_golden.py..test_shop mach://order-2/*",
        "if this run is right, make it the golden one: pytest --amnode-golden-update "
        "--amnode-golden=golden test_golden.py::test_shop",
        "*- amnode recording -*",
        "first error     order-2 #4 add ErrPayment Exception*",
    ])
    assert golden.read_bytes() == written  # a failing run never writes the golden
    # 4: accepted as the new golden, then compared equal
    result = _run(pytester, "--amnode-golden=golden", "--amnode-golden-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["golden run written: golden/shop.amrec"])
    result = _run(pytester, "--amnode-golden=golden")
    result.assert_outcomes(passed=1)


def test_a_golden_test_without_a_golden_directory_says_how_to_give_one(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_golden=GOLDEN_SUITE)
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*amnode_golden: no golden directory; give "
                                 "--amnode-golden=DIR or set amnode_golden_dir*"])


def test_the_recorded_command_opens_in_amdbg(pytester: pytest.Pytester,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The section's command, run as printed (from the pytest run's directory)."""
    pytester.makepyfile(test_shop=SUITE)
    result = _run(pytester, "--amnode-record")
    line = next(x for x in result.stdout.lines if x.startswith("open it "))
    _, _, path, url = shlex.split(line.removeprefix("open it").strip())
    assert re.fullmatch(r"mach://order-2/[0-9a-f]{16}", url)
    assert amdbg_main(["show", str(pytester.path / path), url, "--json"]) == 0
    assert '"called": [\n    "ErrPayment",\n    "Exception"\n  ]' in capsys.readouterr().out
