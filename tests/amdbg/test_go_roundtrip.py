"""Round trips between Go am-dbg exports and recordings keep every field both formats have:
gob -> amrec -> gob (real Go exports) and amrec -> gob -> amrec (our recordings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.goexports import CACHE, export

from amdbg import cli
from amdbg.gob import Decoder, GobInterface
from amdbg.goexport.compress import decompress
from amdbg.goexport.from_amrec import export_gob_br
from amdbg.goexport.gotime import time_to_ns
from amdbg.session import Session
from amnode.telemetry import QueuedRecord, TransitionRecord, open_recording
from amnode.telemetry.format import LOG_LINES_MAX

ROOT = Path(__file__).resolve().parents[2]
GO_ROUND_TRIP = ("node-payload.gob.br", "wasm.gob.br", "secai-cook.gob.br",
                 "wasm-workflow.gob.br", "am-dbg.gob.br", "am-dbg-sim-7b90a9e.gob.br")


@pytest.fixture(autouse=True)
def go_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMDBG_CACHE_DIR", CACHE)


# ---------------------------------------------------------------------- gob -> amrec -> gob


def _items(data: bytes) -> list[dict[str, Any]]:
    out = decompress(data)
    assert out.problem == ""
    return list(Decoder(out.data).elements())


def _step(s: dict[str, Any], names: list[str]) -> tuple[Any, ...]:
    def state(name_key: str, idx_key: str) -> str:
        if s.get(name_key):
            return s[name_key]
        if idx_key in s or "FromStateIdx" in s or "ToStateIdx" in s:
            i = s.get(idx_key, 0)
            return names[i] if 0 <= i < len(names) else ""
        return ""

    typ = s.get("Type", 0)
    data = s.get("Data")
    rel = None
    if typ == 1:
        rel = data.value if isinstance(data, GobInterface) else s.get("RelType", 0)
    flags = (bool(s.get("IsFinal")), bool(s.get("IsEnter")), bool(s.get("IsSelf"))) \
        if typ == 2 else None
    return typ, state("FromState", "FromStateIdx"), state("ToState", "ToStateIdx"), rel, flags


def _log(entries: list[dict[str, Any]], cap: bool) -> list[tuple[int, str]]:
    """Log lines as a recording keeps them: at most LOG_LINES_MAX per list, then a note (the
    recording format's limit; docs/recording-format.md section 9)."""
    lines = [(e.get("Level", 0), e.get("Text", "")) for e in entries]
    if cap and len(lines) > LOG_LINES_MAX:
        more = len(lines) - LOG_LINES_MAX
        lines = [*lines[:LOG_LINES_MAX], (0, f"... {more} more lines not recorded")]
    return lines


def go_view(items: list[dict[str, Any]], cap: bool = False) -> dict[str, Any]:
    """What both formats carry, per machine, from decoded export values (`cap`: log lists as
    a recording keeps them)."""
    out = {}
    for item in items:
        ms = item["MsgStruct"]
        names = ms.get("StatesIndex", [])
        n = len(names)
        groups = {g: [i for i in v if 0 <= i < n] for g, v in ms.get("Groups", {}).items()}
        states = {k: tuple(tuple(v.get(f, ())) if f not in ("Auto", "Multi") else
                           bool(v.get(f)) for f in ("Auto", "Multi", "Require", "Add",
                                                     "Remove", "After", "Tags"))
                  for k, v in ms.get("States", {}).items()}
        records = []
        for tx in item.get("MsgTxs", []):
            idxs = tx.get("CalledStatesIdxs")
            called = [names[i] for i in idxs] if idxs else list(tx.get("CalledStates", []))
            common = (tx.get("IsQueued", False), tx.get("Type", 0), called,
                      bool(tx.get("IsAuto")), bool(tx.get("IsCheck")), tx.get("Args") or {},
                      time_to_ns(tx["Time"]), tx.get("QueueTick", 0), tx.get("Queue", 0))
            if tx.get("IsQueued"):  # its Clocks are rebuilt from the previous transition
                records.append((*common, tx.get("ID", ""), tx.get("MutQueueTick", 0),
                                bool(tx.get("MutQueueToken"))))
                continue
            clocks = (list(tx.get("Clocks", [])) + [0] * n)[:n]
            mqt = tx.get("MutQueueTick", 0)
            records.append((*common, clocks, tx.get("ID", ""),
                            0 if mqt == tx.get("QueueTick", 0) else mqt,
                            bool(tx.get("MutQueueToken")) and tx.get("QueueTick", 0) != 0,
                            bool(tx.get("Accepted")),
                            [_step(s, names) for s in tx.get("Steps", [])],
                            _log(tx.get("LogEntries", []), cap),
                            _log(tx.get("PreLogEntries", []), cap)))
        out[ms["ID"]] = {"schema": (names, states, groups, ms.get("Parent", ""),
                                    list(ms.get("Tags", []))),
                         "order": [g for g in ms.get("GroupsOrder", []) if g in groups]
                         or list(groups), "records": records}
    return out


@pytest.mark.parametrize("name", GO_ROUND_TRIP)
def test_go_export_to_recording_to_go_export_keeps_shared_fields(name: str) -> None:
    original = export(name).read_bytes()
    with Session.open(export(name)) as s:
        again = export_gob_br(s.recording, "amdbg test")
    a, b = go_view(_items(original), cap=True), go_view(_items(again))
    assert sorted(a) == sorted(b)  # Go writes its machines in map order
    for machine in a:
        assert a[machine]["schema"] == b[machine]["schema"], machine
        assert a[machine]["order"] == b[machine]["order"], machine
        ra, rb = a[machine]["records"], b[machine]["records"]
        assert len(ra) == len(rb), machine
        for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
            assert x == y, (machine, i)


# ---------------------------------------------------------------------- amrec -> gob -> amrec


def _tx(tx: TransitionRecord) -> tuple[Any, ...]:
    """A transition without what the Go format has no field for (durations, source, seq of
    lost records) and without file positions."""
    steps = [(s.type, s.from_state, s.to_state, s.relation, s.is_final, s.is_enter, s.is_self)
             for s in tx.steps]
    return (tx.id, tx.type, tx.called, tx.args, tx.accepted, tx.is_auto, tx.is_check,
            tx.is_health, tx.is_error, tx.queue_tick, tx.mutation_queue_tick, tx.queue_len,
            tx.end_ns, tx.state_names, tx.time_before, tx.time_after, steps,
            [(x.level, x.text) for x in tx.log], [(x.level, x.text) for x in tx.pre_log])


def _queued(q: QueuedRecord) -> tuple[Any, ...]:
    return (q.type, q.called, q.args, q.queue_tick, q.queue_tick_now, q.queue_len, q.is_auto,
            q.is_check, q.prepended, q.tx_id, q.wall_ns)


@pytest.mark.parametrize("rec", ["recordings/orders.amrec", "recordings/crawler"])
def test_recording_to_go_export_to_recording_keeps_shared_fields(rec: str, tmp_path: Path
                                                                 ) -> None:
    out = tmp_path / "session.gob.br"
    with open_recording(ROOT / rec) as original:
        out.write_bytes(export_gob_br(original, "amdbg test"))
        with Session.open(out) as s:
            back = s.recording
            # machines come back ordered by their first record (Go keeps no creation time)
            assert sorted(m.id for m in back.machines) == sorted(m.id for m in original.machines)
            for m in original.machines:
                n = back.machine(m.id)
                assert (n.parent, n.tags, n.state_names, n.schema, n.groups) == \
                    (m.parent, m.tags, m.state_names, m.schema, m.groups)
                assert [_tx(t) for t in n.transitions()] == [_tx(t) for t in m.transitions()]
                assert [_queued(q) for q in n.queued()] == [_queued(q) for q in m.queued()]
                # handler names are derived the way Go derives them
                assert [h for t in n.transitions() for h, _ in t.handlers] == \
                    [h for t in m.transitions() for h, _ in t.handlers]


def test_export_command_writes_what_go_imports(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "orders.gob.br"
    assert cli.main(["export", str(ROOT / "recordings/orders.amrec"), str(out)]) == 0
    assert "5 machines, 64 transitions, 21 queued mutations" in capsys.readouterr().out
    items = _items(out.read_bytes())
    dec = Decoder(decompress(out.read_bytes()).data)
    list(dec.elements())
    tx_type = next(t for t in dec.types.values() if t.name == "DbgMsgTx")
    # the current Go layout: indexes, queue ticks, args, and the Exportable's version
    assert {"CalledStatesIdxs", "QueueTick", "MutQueueTick", "Args", "StackTrace"} <= \
        {f for f, _ in tx_type.fields}
    assert all(i["Version"].startswith("amdbg") for i in items)
    assert cli.main(["export", str(ROOT / "recordings/orders.amrec"),
                     str(tmp_path / "x.amrec")]) == 2
    assert "name the export *.gob.br" in capsys.readouterr().err
