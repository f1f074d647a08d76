"""Why a transition was canceled does not depend on the log level: recorded with only
AMNODE_RECORD set (no AMNODE_LOG), every failure shows its reason, its handler (final or
negotiation) and the exception's traceback through the session and describe API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from amdbg.describe import cancel_reason, error_text, transition_dict
from amdbg.session import Session
from amnode.telemetry import RecordedMachine, TransitionRecord

ROOT = Path(__file__).resolve().parents[2]

# Handlers that fail in every way; a fake clock (the machine's test seam, docs/machine.md §4.8)
# makes the slow ones overrun handler_timeout without sleeping.
SCRIPT = """
import asyncio
import amnode as am
from amnode.machine import handlers

now = [0.0]
handlers.perf_counter = lambda: now[0]


class H:
    def JobEnter(self, e):
        raise KeyError("job-42")

    def BrokenState(self, e):
        raise ValueError("bad final")

    def SlowEnter(self, e):
        now[0] += 5.0  # overruns handler_timeout (1 s)

    def SlowStateState(self, e):
        now[0] += 5.0

    async def AsyncWorkState(self, e):
        await asyncio.sleep(0)
        raise RuntimeError("async boom")

    def VetoedEnter(self, e):
        return False


async def main():
    schema = {"Job": {}, "Broken": {}, "Slow": {}, "SlowState": {}, "AsyncWork": {},
              "Vetoed": {}, "Needs": {"require": ["Vetoed"]}}
    m = am.Machine(schema, id="fails", handlers=H(), handler_timeout=1.0,
                   handler_deadline=None)
    for state in ("Job", "Broken", "Slow", "SlowState", "Vetoed", "Needs"):
        m.add(state)
        m.remove("Exception")
    m.add("AsyncWork")
    await m.when("Exception", timeout=30)
    m.dispose()


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def fails(tmp_path_factory: pytest.TempPathFactory) -> RecordedMachine:
    tmp = tmp_path_factory.mktemp("fails")
    (tmp / "fails.py").write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if k not in ("AMNODE_LOG", "AMNODE_RECORD")}
    env.update(AMNODE_RECORD=str(tmp / "rec"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(tmp / "fails.py")], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    session = Session.open(tmp / "rec")
    return session.select_machine("fails")


def canceled(m: RecordedMachine, state: str) -> TransitionRecord:
    return next(t for t in m.transitions() if t.called == [state] and not t.accepted)


def test_nothing_was_logged(fails: RecordedMachine) -> None:
    assert not any(t.log for t in fails.transitions())


def test_a_negotiation_handler_that_raised(fails: RecordedMachine) -> None:
    tx = canceled(fails, "Job")
    reason = cancel_reason(tx)
    assert reason is not None
    assert (reason.kind, reason.by) == ("error", "JobEnter")
    assert reason.text == "KeyError in JobEnter: 'job-42'"
    assert "Traceback" in reason.traceback and 'raise KeyError("job-42")' in reason.traceback
    failure = transition_dict(tx)["failure"]
    assert failure["final"] is False and failure["error_type"] == "KeyError"


def test_a_final_handler_that_raised(fails: RecordedMachine) -> None:
    reason = cancel_reason(canceled(fails, "Broken"))
    assert reason is not None and (reason.kind, reason.by) == ("error", "BrokenState")
    assert reason.text == "ValueError in the final handler BrokenState: bad final"
    assert 'raise ValueError("bad final")' in reason.traceback
    # the Exception added for it says the same
    exc = next(t for t in fails.transitions()
               if t.called == ["Exception"] and t.failure and t.failure.handler == "BrokenState")
    assert error_text(exc) == reason.text


def test_timeouts_of_a_negotiation_and_of_a_final_handler(fails: RecordedMachine) -> None:
    slow = cancel_reason(canceled(fails, "Slow"))
    assert slow is not None and (slow.kind, slow.by) == ("timeout", "SlowEnter")
    assert slow.text == "the negotiation handler SlowEnter timed out (5.000 s)"
    final = cancel_reason(canceled(fails, "SlowState"))
    assert final is not None and (final.kind, final.by) == ("timeout", "SlowStateState")
    assert final.text == "the final handler SlowStateState timed out (5.000 s)"


def test_a_veto_and_relations(fails: RecordedMachine) -> None:
    vetoed = cancel_reason(canceled(fails, "Vetoed"))
    assert vetoed is not None and vetoed.text == "vetoed by VetoedEnter (returned False)"
    needs = cancel_reason(canceled(fails, "Needs"))
    assert needs is not None and needs.kind == "relations" and needs.by == "Needs"


def test_an_async_handler_that_raised(fails: RecordedMachine) -> None:
    exc = next(t for t in fails.transitions() if t.called == ["Exception"] and t.failure
               and t.failure.is_async)
    assert exc.failure is not None and exc.failure.handler == "AsyncWorkState"
    assert error_text(exc) == "RuntimeError in the async handler AsyncWorkState: async boom"
    assert 'raise RuntimeError("async boom")' in exc.failure.traceback


def test_no_canceled_transition_lacks_a_reason(fails: RecordedMachine) -> None:
    for tx in fails.transitions():
        if not tx.accepted:
            reason = cancel_reason(tx)
            assert reason is not None and reason.kind != "unknown", tx.called
