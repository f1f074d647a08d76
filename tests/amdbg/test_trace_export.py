"""`amdbg export --format chrome`: trace-event JSON validated against the format's rules on
every shipped sample (several processes included), on hostile and inconsistent recordings, and
the command line around it."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from amdbg.cli import main
from amdbg.trace import FLOW_CAT, FLOW_NAME, TID_BASE, chrome_trace
from amnode.telemetry import RecordWriter, open_recording

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted([p for p in (ROOT / "recordings").iterdir()
                  if p.suffix == ".amrec" or p.is_dir()])
METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def _ns(value: Any, what: str) -> int:
    """A trace time (microseconds, maybe with decimals) as integer nanoseconds."""
    assert isinstance(value, int | float) and not isinstance(value, bool), what
    assert math.isfinite(value), what
    return round(value * 1000)


def validate_trace(data: Any) -> dict[str, Any]:
    """Check a trace against the Trace Event Format's rules; return what it holds.

    JSON Object Format with a `traceEvents` array; only complete slices (`X`, with `ts` and a
    non-negative `dur`), metadata (`M`) and flow events (`s`, `f`); slices properly nested on
    each track (a slice is inside the open one or starts where it ended, never across its
    end); every flow id has exactly one `s` and one `f` with the same `cat` and `name`, each
    inside a slice of its own track (`f` binding to its enclosing slice, `bp: "e"`); every
    (pid, tid) used has a `thread_name`, every pid a `process_name`, a tid belongs to one pid.
    """
    assert isinstance(data, dict) and isinstance(data.get("traceEvents"), list)
    assert data.get("displayTimeUnit", "ms") in ("ms", "ns")
    events = data["traceEvents"]
    slices: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    flows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    process_names: Counter[int] = Counter()
    thread_names: Counter[tuple[int, int]] = Counter()
    pid_of: dict[int, int] = {}
    used: set[tuple[int, int]] = set()
    for i, ev in enumerate(events):
        where = f"event {i}: {ev!r:.200}"
        assert isinstance(ev, dict), where
        ph = ev.get("ph")
        assert ph in ("X", "M", "s", "f"), where
        assert isinstance(ev.get("name"), str) and ev["name"], where
        pid, tid = ev.get("pid"), ev.get("tid")
        assert isinstance(pid, int) and not isinstance(pid, bool), where
        assert isinstance(tid, int) and not isinstance(tid, bool), where
        assert pid_of.setdefault(tid, pid) == pid, f"{where}: tid {tid} in two processes"
        if ph == "M":
            assert ev["name"] in METADATA, where
            args = ev.get("args")
            assert isinstance(args, dict), where
            if ev["name"] == "process_name":
                assert isinstance(args.get("name"), str) and args["name"], where
                process_names[pid] += 1
            elif ev["name"] == "thread_name":
                assert isinstance(args.get("name"), str) and args["name"], where
                thread_names[(pid, tid)] += 1
            else:
                assert isinstance(args.get("sort_index"), int), where
            continue
        used.add((pid, tid))
        assert isinstance(ev.get("cat"), str) and ev["cat"], where
        ts = _ns(ev.get("ts"), where)
        assert ts >= 0, where
        if ph == "X":
            dur = _ns(ev.get("dur"), where)
            assert dur >= 0, f"{where}: negative dur"
            slices[(pid, tid)].append((ts, ts + dur, i))
            if "args" in ev:
                assert isinstance(ev["args"], dict), where
        else:
            assert isinstance(ev.get("id"), int), where
            if ph == "f":
                assert ev.get("bp") == "e", where
            flows[ev["id"]].append(ev)
    # names: every process and thread used is named, once
    for pid in {p for p, _ in used}:
        assert process_names[pid] == 1, f"pid {pid}: {process_names[pid]} process_name events"
    for track in used:
        assert thread_names[track] == 1, f"track {track}: no single thread_name"
    # nesting, per track: sorted by start, longer first
    for track, items in slices.items():
        stack: list[int] = []
        for start, end, i in sorted(items, key=lambda s: (s[0], -s[1], s[2])):
            while stack and (stack[-1] < start or (stack[-1] == start and end > start)):
                stack.pop()
            assert not stack or end <= stack[-1], \
                f"track {track}: event {i} [{start}, {end}] crosses the end {stack[-1]}"
            stack.append(end)
    # flows: paired, same cat and name, each end inside a slice of its track
    for fid, pair in flows.items():
        assert sorted(ev["ph"] for ev in pair) == ["f", "s"], f"flow {fid}: {pair}"
        assert len({(ev["cat"], ev["name"]) for ev in pair}) == 1, f"flow {fid}: {pair}"
        for ev in pair:
            ts = _ns(ev["ts"], "flow")
            assert any(s <= ts <= e for s, e, _ in slices[(ev["pid"], ev["tid"])]), \
                f"flow {fid}: {ev['ph']} at {ts} is inside no slice of its track"
    return {"slices": sum(len(v) for v in slices.values()), "flows": len(flows),
            "tracks": len(used), "processes": len({p for p, _ in used}),
            "cross_process_flows": sum(1 for pair in flows.values()
                                       if len({ev["pid"] for ev in pair}) == 2)}


def _export(path: Path) -> dict[str, Any]:
    with open_recording(path) as rec:
        return chrome_trace(rec, source=str(path))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_exports_a_valid_trace(sample: Path) -> None:
    data = _export(sample)
    seen = validate_trace(data)
    with open_recording(sample) as rec:
        transitions = [tx for m in rec.machines for tx in m.transitions()]
        processes = {(m.process.host, m.process.pid, m.process.start_ns) for m in rec.machines}
        machines = len(rec.machines)
    events = data["traceEvents"]
    tx_slices = [e for e in events if e["ph"] == "X" and e["cat"].startswith("transition")]
    handler_slices = [e for e in events if e["ph"] == "X" and e["cat"] == "handler"]
    # every transition is one slice carrying its address; every handler one nested slice
    assert sorted(e["args"]["url"] for e in tx_slices) == sorted(tx.url for tx in transitions)
    assert len(handler_slices) == sum(len(tx.handlers) for tx in transitions)
    assert seen["tracks"] == machines and seen["processes"] == len(processes)
    # canceled and error transitions are marked, in the name and the category
    canceled = [e for e in tx_slices if not e["args"]["accepted"]]
    assert len(canceled) == sum(not tx.accepted for tx in transitions)
    assert all(e["name"].endswith("[canceled]") or "[canceled] [error]" in e["name"]
               for e in canceled)
    assert all("canceled" in e["cat"].split(",") for e in canceled)
    # one arrow per source the recording holds
    ids = {(tx.machine_id, tx.id) for tx in transitions}
    sourced = [tx for tx in transitions if tx.source is not None
               and (tx.source.machine_id, tx.source.tx_id) in ids]
    assert seen["flows"] == len(sourced) == data["otherData"]["flows"]
    assert all(e["cat"] == FLOW_CAT and e["name"] == FLOW_NAME
               for e in events if e["ph"] in "sf")


def test_a_node_run_has_a_process_per_recorded_process_and_arrows_between_them() -> None:
    data = _export(ROOT / "recordings" / "node-pool.amrec")
    seen = validate_trace(data)
    assert seen["processes"] >= 3
    assert seen["cross_process_flows"] > 0
    events = data["traceEvents"]
    names = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "ns-hash-demo-000000-0" in names
    # the supervisor's ProvideWorker leads to the worker's ServeClient, in another process
    slices = {(e["pid"], e["tid"], e["ts"]): e for e in events if e["ph"] == "X"}
    by_id = {e["id"]: {} for e in events if e["ph"] in "sf"}
    for e in events:
        if e["ph"] in "sf":
            by_id[e["id"]][e["ph"]] = e

    def slice_at(ev: dict[str, Any]) -> dict[str, Any]:
        here = [s for (pid, tid, _), s in slices.items()
                if (pid, tid) == (ev["pid"], ev["tid"]) and s["cat"] != "handler"
                and _ns(s["ts"], "") <= _ns(ev["ts"], "") <= _ns(s["ts"], "") + _ns(s["dur"], "")]
        assert len(here) == 1
        return here[0]

    pairs = [(slice_at(p["s"]), slice_at(p["f"])) for p in by_id.values()]
    assert any("ProvideWorker" in src["args"]["called"] and "ServeClient" in dst["args"]["called"]
               and src["pid"] != dst["pid"] for src, dst in pairs)


def test_handlers_nest_inside_their_transition() -> None:
    data = _export(ROOT / "recordings" / "orders.amrec")
    events = data["traceEvents"]
    current: dict[str, Any] | None = None
    checked = 0
    for e in events:
        if e["ph"] != "X":
            continue
        if e["cat"] != "handler":
            current = e
            continue
        assert current is not None and (current["pid"], current["tid"]) == (e["pid"], e["tid"])
        start, end = _ns(current["ts"], ""), _ns(current["ts"], "") + _ns(current["dur"], "")
        assert start <= _ns(e["ts"], "") and _ns(e["ts"], "") + _ns(e["dur"], "") <= end
        checked += 1
    assert checked > 0
    vetoed = [e for e in events if e["ph"] == "X"
              and e.get("args", {}).get("url") == "mach://order-1002/e1c29267dcd91c8f"]
    assert len(vetoed) == 1
    assert vetoed[0]["name"] == "add Paid [canceled]"
    assert vetoed[0]["args"]["canceled"] == "vetoed by PaidEnter (returned False)"
    assert vetoed[0]["args"]["args"] == {"card": "0000-declined"}
    errors = [e for e in events if e["ph"] == "X" and "error" in e["cat"].split(",")]
    assert errors and all("[error]" in e["name"] for e in errors)


def _inconsistent(path: Path) -> Path:
    """A machine whose second transition starts before its first ended and whose handlers
    took longer than their transition; a source naming a transition nobody recorded."""
    w = RecordWriter.create(path, {"host": "h", "pid": 4242, "argv0": "prog", "start_ns": 0})
    mno = w.add_machine("m", "", [], ["A", "B"], {"A": {}, "B": {}}, {}, [], 1_000)
    steps = [[32, -1, 0, -1], [2, -1, 0, -1, 0x01, "AState", 5_000],
             [2, -1, 0, -1, 0x01, "AnyState", 7_000]]
    w.transition(mno, 1, 2_000, 6_000, f"{1:016x}", 0x01, 0, [0], 1, 1, 0, [1, 0], [0, 0],
                 steps, None, None, None, None)
    w.transition(mno, 2, 4_000, 9_000, f"{2:016x}", 0x01, 0, [1], 2, 2, 0, [1, 1], [1, 0],
                 None, None, None, None, ["ghost", "0" * 16, 3])
    w.transition(mno, 3, 9_500, 9_500, f"{3:016x}", 0x00, 0, [1], 3, 3, 0, [1, 1], [1, 1],
                 None, None, None, None, ["m", f"{1:016x}", 1])
    w.close()
    return path


def test_overlapping_records_are_laid_out_without_crossing(tmp_path: Path) -> None:
    path = _inconsistent(tmp_path / "odd.amrec")
    data = _export(path)
    validate_trace(data)
    other = data["otherData"]
    assert other["clamped_transitions"] == 1
    assert other["scaled_handlers"] == 1
    assert other["unresolved_sources"] == 1
    assert other["flows"] == 1
    handlers = [e for e in data["traceEvents"] if e.get("cat") == "handler"]
    assert [e["args"]["measured_us"] for e in handlers] == [5, 7]


def test_hostile_strings_stay_data(hostile: Any, tmp_path: Path) -> None:
    out = tmp_path / "hostile.json"
    assert main(["export", str(hostile.path), str(out), "--format", "chrome"]) == 0
    text = out.read_text(encoding="ascii")  # ASCII only: every recorded string is escaped
    assert not any(ord(c) < 0x20 and c != "\n" for c in text)
    data = json.loads(text)
    validate_trace(data)
    names = {e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    assert hostile.machine_id in names  # exact, once decoded


def test_odd_pids_get_numbers_of_their_own(tmp_path: Path) -> None:
    paths = []
    for i, pid in enumerate((7, 7, -1, 1 << 40)):
        p = tmp_path / f"p{i}.amrec"
        w = RecordWriter.create(p, {"host": "h", "pid": pid, "argv0": "x", "start_ns": i})
        mno = w.add_machine(f"m{i}", "", [], ["A"], {"A": {}}, {}, [], 1_000 + i)
        w.transition(mno, 1, 2_000, 3_000, f"{i + 1:016x}", 0x01, 0, [0], 1, 1, 0, [1], [0],
                     None, None, None, None, None)
        w.close()
        paths.append(p)
    data = _export(tmp_path)
    validate_trace(data)
    pids = {e["pid"] for e in data["traceEvents"] if e["name"] == "process_name"}
    assert len(pids) == 4 and 7 in pids and all(0 < p < TID_BASE for p in pids)


def test_the_command_writes_what_viewers_read(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pool.json"
    sample = ROOT / "recordings" / "node-pool.amrec"
    assert main(["export", str(sample), str(out), "--format", "chrome"]) == 0
    line = capsys.readouterr().out
    assert "3 processes" in line and "flow arrows" in line and str(out) in line
    data = json.loads(out.read_text())
    validate_trace(data)
    assert data["otherData"]["source"] == str(sample)
    assert not list(tmp_path.glob("*.tmp"))


def test_the_command_refuses_a_wrong_name_and_keeps_gob_the_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(ROOT / "recordings" / "orders.amrec")
    assert main(["export", sample, str(tmp_path / "t.gob.br"), "--format", "chrome"]) == 2
    assert "name the export *.json" in capsys.readouterr().err
    assert main(["export", sample, str(tmp_path / "t.json")]) == 2
    assert "--format chrome" in capsys.readouterr().err
    assert main(["export", sample, str(tmp_path / "t.trace"), "--format", "chrome",
                 "--force"]) == 0
    validate_trace(json.loads((tmp_path / "t.trace").read_text()))
    assert main(["export", sample, str(tmp_path / "o.gob.br")]) == 0
    assert (tmp_path / "o.gob.br").read_bytes()[:1] != b"{"


def test_the_validator_catches_what_viewers_reject() -> None:
    base = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "p"}},
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2, "args": {"name": "t"}}]

    def x(ts: float, dur: float) -> dict[str, Any]:
        return {"name": "a", "cat": "c", "ph": "X", "ts": ts, "dur": dur, "pid": 1, "tid": 2}

    validate_trace({"traceEvents": [*base, x(0, 10), x(2, 3), x(10, 1)]})
    bad = [
        [*base, x(0, 10), x(5, 10)],                       # crosses the open slice's end
        [*base, x(0, -1)],                                 # negative duration
        [base[0], x(0, 1)],                                # unnamed thread
        [*base, x(0, 10), {"name": "f", "cat": "c", "ph": "s", "id": 1, "ts": 1, "pid": 1,
                           "tid": 2}],                     # a flow without its end
        [*base, x(0, 1), {"name": "f", "cat": "c", "ph": "s", "id": 1, "ts": 5, "pid": 1,
                          "tid": 2},
         {"name": "f", "cat": "c", "ph": "f", "bp": "e", "id": 1, "ts": 0, "pid": 1,
          "tid": 2}],                                      # a flow point outside any slice
    ]
    for events in bad:
        with pytest.raises(AssertionError):
            validate_trace({"traceEvents": events})
