"""Shared pytest configuration and fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A generous default handler timeout (docs/machine.md §4.8), so that a GC pause or a busy CI
# machine never times out a handler by accident; worker processes the tests start inherit it.
# Tests of timeouts pass their own `handler_timeout`.
os.environ.setdefault("AMNODE_HANDLER_TIMEOUT", "30")
# Node processes keep a flight recorder by default (docs/recording-format.md "Live streams"):
# not the test process nor the workers it starts, unless a test asks for one, so that the
# other tests run their machines without a tracer, as a program nobody debugs does.
os.environ.setdefault("AMNODE_DBG_RING", "0")


@pytest.fixture(scope="session")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The order pipeline example, recorded once per test run with seeded ids. AMNODE_DEBUG=1
    turns handler timeouts off: a handler stalled on a loaded machine must not cancel a
    transition (the TUI snapshots and tests rely on what the example does, not how fast)."""
    path = tmp_path_factory.mktemp("rec") / "orders.amrec"
    subprocess.run([sys.executable, str(ROOT / "examples" / "orders.py"), "--record", str(path),
                    "--seed", "1001"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "AMNODE_DEBUG": "1"})
    return path
