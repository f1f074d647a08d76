"""Recording a node run: every machine of every process in one directory, as one tree, with the
aRPC source links that show which client mutation caused which supervisor and worker
transition; and the README's node session opens in amdbg where it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.node import env_without_recording

from amdbg.session import Session
from amdbg.tui import ReplayApp
from amnode.telemetry import open_recording

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def test_a_node_run_is_recorded_as_one_tree(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    env = {**env_without_recording(), "AMNODE_RECORD": str(rec_dir), "AMNODE_HOSTNAME": "t"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "node_pool.py"),
                           "--square", "2", "--seed", "5"], capture_output=True, text=True,
                          timeout=90, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "sent 4 for input 2" in proc.stdout
    with open_recording(rec_dir) as rec:
        assert not rec.corruption
        by_id = {m.id: m for m in rec.machines}
        sup = by_id["ns-hash-t-000000-0"]
        assert {"node-supervisor", "kind:hash"} <= set(sup.tags)
        workers = [m for m in rec.machines if m.id.startswith("nw-")]
        boots = [m for m in rec.machines if m.id.startswith("nb-")]
        clients = [m for m in rec.machines if m.id.startswith("nc-")]
        assert len(workers) == 2 and len(boots) == 2 and len(clients) == 1
        # one tree across the processes: workers (own processes) under the supervisor
        assert len({m.process.pid for m in workers} | {sup.process.pid}) == 3
        for m in [*workers, *boots]:
            assert rec.parent(m) is sup, m.id
            assert "kind:hash" in m.tags
        assert "kind:hash" in clients[0].tags
        # the aRPC machines are children of the node machines
        for m in rec.machines:
            if m.id.startswith(("rs-nw-", "rc-nw-")):
                assert rec.parent(m) is not None and rec.parent(m).id.startswith("nw-")
            if m.id.startswith("rc-nc-"):
                assert rec.parent(m) is clients[0]
        # source links: client WorkerRequested -> supervisor ProvideWorker -> worker ServeClient
        provide = [tx for tx in sup.transitions()
                   if "ProvideWorker" in tx.called and tx.type == "add"]
        assert len(provide) == 1 and provide[0].source is not None
        cause = rec.transition_by_id(provide[0].source.tx_id)
        assert cause is not None and "WorkerRequested" in cause.called
        serve = [(w, tx) for w in workers for tx in w.transitions()
                 if "ServeClient" in tx.called and tx.type == "add"]
        assert len(serve) == 1 and serve[0][1].source is not None
        assert serve[0][1].source.tx_id == provide[0].id
        leased = serve[0][0]
        # the client's WorkRequested reached that worker (its source: the client's aRPC link)
        work = [tx for tx in leased.transitions() if "WorkRequested" in tx.called]
        assert work and work[0].source is not None
        assert work[0].source.machine_id.startswith("rc-nc-worker-")


def test_the_readme_node_session_opens_where_it_says() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```\n(python3 -m venv .*?)\n```", readme)
    assert first is not None
    m = re.search(r"amdbg replay (\S+) --select-machine (\S+) --select-transition (\d+)$",
                  first.group(1))
    assert m is not None, first.group(1)
    path, machine, number = ROOT / m.group(1), m.group(2), int(m.group(3))
    assert path.is_file(), f"{path} missing: python examples/record_samples.py node"
    return_value = _open(path, machine, number)
    assert return_value == (machine, number)


def _open(path: Path, machine: str, number: int) -> tuple[str, int]:
    import asyncio

    async def run() -> tuple[str, int]:
        with Session.open(path) as session:
            app = ReplayApp(session, machine=machine, number=number)
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.pause()
                tx = session.transition(app.machine, app.number)
                assert "Start" in tx.called
                return app.machine.key, app.number

    return asyncio.run(run())
