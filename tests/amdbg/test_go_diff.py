"""`amdbg diff` and its core (`amdbg.compare`): machines lined up by role, state activations
compared in order, the first divergence per machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import brotli
import pytest
from helpers.goexports import CACHE, export

import amnode as am
from amdbg import cli
from amdbg.compare import compare, mask_id, roles
from amdbg.gob import Decoder, Encoder
from amdbg.goexport.compress import decompress
from amnode.telemetry import Recorder, open_recording

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def go_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMDBG_CACHE_DIR", CACHE)


@pytest.mark.parametrize(("machine_id", "role"), [
    ("ns-TCWP-dev-201626-0", "ns-<kind>-<host>-<time>-0"),
    ("ns-orders-box-093011-0", "ns-<kind>-<host>-<time>-0"),
    ("nw-TCWP-dev-5551c0", "nw-<kind>-<host>-<hex>"),
    ("nw-TCWP-dev-998626", "nw-<kind>-<host>-<hex>"),
    ("nb-TCWP-dev-201626-08d9bc9", "nb-<kind>-<host>-<time>-<hex>"),
    ("nb-TCWP-dev-201626-0775509", "nb-<kind>-<host>-<time>-<hex>"),
    ("rs-nb-TCWP-dev-201626-0b2a7e2", "rs-nb-<kind>-<host>-<time>-<hex>"),
    ("nc-TCWP-cli-201626", "nc-<kind>-<host>-<time>"),
    ("rnm-browser-foo-8e3f", "rnm-browser-foo-<hex>"),
    ("ps-4-disc", "ps-4-disc"),
    ("sim-p11", "sim-p11"),
    ("orders", "orders"),
])
def test_masking_rules(machine_id: str, role: str) -> None:
    assert mask_id(machine_id) == role


def test_machines_of_one_role_pair_in_creation_order() -> None:
    with open_recording(ROOT / "recordings/orders.amrec") as rec:
        by_role = roles(rec.machines)
    assert list(by_role)[:3] == ["orders", "order-<hex>", "order-<hex>#2"]
    assert by_role["order-<hex>#2"].id == "order-1002"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_a_session_and_its_go_export_are_the_same(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    gob = tmp_path / "orders.gob.br"
    assert cli.main(["export", str(ROOT / "recordings/orders.amrec"), str(gob)]) == 0
    capsys.readouterr()
    status, out, err = _run(capsys, "diff", str(ROOT / "recordings/orders.amrec"), str(gob))
    assert status == 0, err
    assert "5 roles, 5 the same, 0 different" in out


def _drop_transition(src: Path, dst: Path, machine: str, number: int) -> None:
    """A copy of a Go export without transition `number` (1-based, queued records skipped)
    of one machine."""
    dec = Decoder(decompress(src.read_bytes()).data)
    items: list[dict[str, Any]] = list(dec.elements())
    for item in items:
        if item["MsgStruct"]["ID"] == machine:
            txs = item["MsgTxs"]
            done = [i for i, tx in enumerate(txs) if not tx.get("IsQueued")]
            del txs[done[number - 1]]
    enc = Encoder({k: v for k, v in dec.types.items() if k >= 64})
    enc.encode(dec.value_type, items)
    dst.write_bytes(brotli.compress(enc.getvalue()))


def test_the_first_divergence_is_found(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    src = export("node-payload.gob.br")
    changed = tmp_path / "changed.gob.br"
    _drop_transition(src, changed, "ns-TCWP-dev-201626-0", 2)
    status, out, _ = _run(capsys, "diff", str(src), str(changed), "--json")
    assert status == 4
    report = json.loads(out)
    by_role = {m["role"]: m for m in report["machines"]}
    ns = by_role["ns-<kind>-<host>-<time>-0"]
    assert ns["status"] == "differs" and ns["first_divergence"] == 2
    assert ns["a"]["changes"][1] == {"transition": 2, "activated": ["ListWorkers"],
                                     "deactivated": []}
    assert ns["b"]["changes"][1]["transition"] == 2
    assert ns["b"]["changes"][1]["activated"] != ["ListWorkers"]
    assert sum(m["status"] == "same" for m in report["machines"]) == len(report["machines"]) - 1
    status, out, _ = _run(capsys, "diff", str(src), str(changed), "-m", "ns-")
    assert status == 4 and "differs at change 2" in out and "+ListWorkers" in out


def _run_machine(path: Path, steps: list[str]) -> None:
    m = am.Machine({"A": am.State(), "B": am.State(), "C": am.State(remove=["A"])},
                   id="worker-1a2b3c")
    with Recorder(path) as rec:
        rec.attach(m)
        for s in steps:
            m.add(s)
    m.dispose()


def test_golden_runs_compare_by_role_not_by_id(tmp_path: Path) -> None:
    """What a golden-run test does: same role, different ids and times, one changed step."""
    golden, now = tmp_path / "golden.amrec", tmp_path / "now.amrec"
    _run_machine(golden, ["A", "B", "C"])
    _run_machine(now, ["A", "C", "B"])
    with open_recording(golden) as a, open_recording(now) as b:
        [d] = compare(a, b)
    assert d.role == "worker-<hex>" and d.status == "differs"
    assert d.first_divergence == 2
    assert d.a is not None and d.a.activations == [["A"], ["B"], ["C"]]
    assert d.b is not None and d.b.activations == [["A"], ["C"], ["B"]]
    assert d.b.changes[1] == (("C",), ("A",))
