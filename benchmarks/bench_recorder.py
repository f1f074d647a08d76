"""Recorder overhead and reader scale, in one run.

1. The same workloads with and without a `Recorder` (steps collected, LogLevel.CHANGES lines
   recorded; both runs use that log level and a silent logger), alternated over several rounds
   after one untimed warm-up round, with a `gc.collect()` before every timed run; recorded
   throughput includes creating the recorder, the final flush and close.
   - "messages": every final handler decodes a ~0.5 KB JSON message and encodes a reply, as in
     a network-driven machine;
   - "light handlers": a small JSON encode or decode in some handlers;
   - "empty handlers": handlers that do nothing, the worst case for relative overhead.
   "cost us/tx" is what recording adds per transition (1/recorded - 1/plain). "cpu ratio" is
   the same ratio from the process's CPU time (machine and writer threads), the steadier of the
   two when other work shares the cores.
2. Bytes per recorded transition (file size / transitions) of each workload.
3. A 1,000,000-transition recording written straight through `RecordWriter`, then the time of
   `open_recording()` plus decoding its last transition.

    python benchmarks/bench_recorder.py [--transitions N] [--big N] [--rounds N] [--json]

With --json the last line is a JSON object; "ratio" = recorded / unrecorded throughput of the
workload where recording costs the most (the minimum over the workloads, so "ratio" >= 0.5
means every workload keeps at least half its throughput); "ratio_messages",
"ratio_light_handlers", "ratio_empty_handlers", "cost_us_*" and "bytes_per_transition_*" per
workload; "ratio_cpu" and "ratio_cpu_*" the same from CPU time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import amnode as am  # noqa: E402
from amnode.telemetry import Recorder, RecordWriter, open_recording  # noqa: E402

SCHEMA = {
    "Start": {},
    "Ready": {"auto": True, "require": ["Start"]},
    "Connecting": {"require": ["Start"], "remove": ["Connected"]},
    "Connected": {"require": ["Start"], "remove": ["Connecting"]},
    "Working": {"require": ["Connected"], "remove": ["Idle"]},
    "Idle": {"remove": ["Working"]},
    "Done": {"multi": True},
    "ErrNetwork": {"require": ["Exception"]},
}


MESSAGE = json.dumps({"kind": "job", "items": list(range(40)), "text": "lorem ipsum " * 20,
                      "meta": {"user": "abc", "tags": ["x", "y", "z"], "ts": 1234567.5}})


class Messages:
    """Network-driven machine: every final handler decodes one ~0.5 KB JSON message and encodes a
    reply (~8 us of work), as when each transition handles a message from a peer."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.jobs: dict[int, int] = {}

    def _reply(self, e: am.Event, raw: str) -> None:
        msg = json.loads(raw)
        self.jobs[len(self.sent) % 64] = sum(msg["items"])
        msg["state"] = e.name
        self.sent.append(json.dumps(msg))
        if len(self.sent) > 1000:
            self.sent.clear()

    def ConnectingState(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)

    def ConnectedState(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)

    def WorkingEnter(self, e: am.Event) -> bool:
        return "payload" in e.args

    def WorkingState(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)

    def DoneState(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)

    def IdleState(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)

    def ConnectedEnd(self, e: am.Event) -> None:
        self._reply(e, MESSAGE)


class Light:
    """Handlers doing a little: one small JSON encode or decode in some of them."""

    HANDSHAKE = json.dumps({"server": "bench", "version": 3, "features": ["a", "b", "c"]})

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.jobs: dict[int, int] = {}
        self.peer: dict[str, object] = {}

    def ConnectingState(self, e: am.Event) -> None:
        self.sent.append(json.dumps({"hello": e.machine.id, "attempt": len(self.sent)}))

    def ConnectedState(self, e: am.Event) -> None:
        self.peer = json.loads(self.HANDSHAKE)

    def WorkingEnter(self, e: am.Event) -> bool:
        return "payload" in e.args

    def WorkingState(self, e: am.Event) -> None:
        msg = json.loads(e.args["payload"])
        self.jobs[msg["job"] % 64] = sum(msg["items"])
        self.sent.append(json.dumps({"job": msg["job"], "ok": True, "total": len(self.jobs)}))

    def DoneState(self, e: am.Event) -> None:
        self.sent.append(json.dumps({"done": len(self.jobs), "peer": self.peer.get("server")}))

    def IdleState(self, e: am.Event) -> None:
        if len(self.sent) > 1000:
            self.sent.clear()


class Empty:
    """The same handler names, doing nothing: the worst case for relative overhead."""

    def ConnectingState(self, e: am.Event) -> None:
        pass

    def ConnectedState(self, e: am.Event) -> None:
        pass

    def WorkingEnter(self, e: am.Event) -> bool:
        return True

    def WorkingState(self, e: am.Event) -> None:
        pass

    def DoneState(self, e: am.Event) -> None:
        pass

    def IdleState(self, e: am.Event) -> None:
        pass


WORKLOADS = (("messages", Messages), ("light handlers", Light), ("empty handlers", Empty))


def make_machine(handlers: object) -> am.Machine:
    return am.Machine(SCHEMA, id="bench", handlers=handlers, log_level=am.LogLevel.CHANGES,
                      logger=lambda level, line: None)


def workload(m: am.Machine, n: int) -> int:
    """About `n` transitions of a connect / work / idle cycle; returns the exact count."""
    count = 0
    m.add("Start")  # + Ready (auto)
    count += 2
    i = 0
    while count < n:
        m.add("Connecting")
        m.add("Connected")
        m.add("Working", {"payload": json.dumps({"job": i, "items": [1, 2, 3, i % 7]})})
        m.add("Done")
        m.add("Idle")
        m.remove("Connected")
        count += 6
        i += 1
    return count


def run_once(handlers_cls: type, recorded: bool, n: int, tmp: Path
             ) -> tuple[float, int, int, float]:
    """(transitions per second, transitions, bytes written, CPU seconds per transition)."""
    m = make_machine(handlers_cls())
    gc.collect()  # garbage of earlier runs must not be collected during this one
    c0 = time.process_time()
    t0 = time.perf_counter()
    rec = Recorder(tmp / "rec") if recorded else None
    if rec is not None:
        rec.attach(m)
    count = workload(m, n)
    size = 0
    if rec is not None:
        rec.close()
        size = rec.file.stat().st_size
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    m.dispose()
    return count / dt, count, size, cpu / count


def compare(handlers_cls: type, n: int, rounds: int, tmp: Path) -> dict[str, float]:
    plain, rec, sizes, plain_cpu, rec_cpu = [], [], [], [], []
    # one untimed, shorter round first: imports, the interpreter's caches, the allocator
    run_once(handlers_cls, False, n // 4, tmp)
    run_once(handlers_cls, True, n // 4, tmp)
    shutil.rmtree(tmp / "rec", ignore_errors=True)
    for _ in range(rounds):
        tps, _count, _size, cpu = run_once(handlers_cls, False, n, tmp)
        plain.append(tps)
        plain_cpu.append(cpu)
        tps, count, size, cpu = run_once(handlers_cls, True, n, tmp)
        rec.append(tps)
        rec_cpu.append(cpu)
        sizes.append(size / count)
        shutil.rmtree(tmp / "rec", ignore_errors=True)
    p, r = statistics.median(plain), statistics.median(rec)
    return {"plain_tps": p, "recorded_tps": r, "ratio": r / p,
            "cost_us": 1e6 / r - 1e6 / p, "bytes_per_transition": statistics.median(sizes),
            "ratio_cpu": statistics.median(plain_cpu) / statistics.median(rec_cpu)}


def generate(path: Path, total: int, machines: int = 8) -> float:
    """Write a `total`-transition recording directly through RecordWriter; returns seconds."""
    t0 = time.perf_counter()
    names = [*SCHEMA, "Exception"]
    states = {k: {kk: vv for kk, vv in v.items()} for k, v in SCHEMA.items()}
    w = RecordWriter.create(path, {"host": "bench", "pid": os.getpid(), "argv0": "generate",
                                   "start_ns": time.time_ns()})
    wall = time.time_ns()
    mnos = [w.add_machine(f"gen-{i}", "" if i == 0 else "gen-0", ["bench"], names, states, {},
                          [], wall) for i in range(machines)]
    steps = [[32, -1, 4, -1], [4, -1, 4, -1], [1, 4, 3, 2], [8, -1, 5, -1],
             [2, -1, 4, -1, 2, "WorkingEnter", 1_200], [2, -1, 4, -1, 3, "WorkingState", 5_300]]
    log = [[2, "[state] +Working -Idle"]]
    clocks = [[1, 1, 2, 3, 0, 0, 0, 0, 0] for _ in range(machines)]
    for i in range(total):
        k = i % machines
        clock = clocks[k]
        before = list(clock)
        clock[4] += 1
        clock[5] += 1
        wall += 1_000
        w.transition(mnos[k], i // machines + 1, wall - 700, wall, "%016x" % (i * 2654435761),
                     0x01, 0, [4], i + 2, i + 2, 0, list(clock), before, steps, log, None,
                     {"job": str(i)} if i % 10 == 0 else None, None)
        if w.pending > 1 << 20:
            w.flush()
    w.close()
    return time.perf_counter() - t0


def scale(total: int, tmp: Path) -> dict[str, float]:
    path = tmp / "big.amrec"
    gen_s = generate(path, total)
    out: dict[str, float] = {"big_transitions": total, "big_generate_s": gen_s,
                             "big_bytes_per_transition": path.stat().st_size / total}
    for verify, key in ((True, "open_and_jump_s"), (False, "open_and_jump_noverify_s")):
        t0 = time.perf_counter()
        rec = open_recording(path, verify=verify)
        last_machine = max(rec.machines, key=lambda m: m.last_ns or 0)
        tx = last_machine.transition(len(last_machine))
        out[key] = time.perf_counter() - t0
        assert tx.number == len(last_machine) and not rec.corruption
        assert sum(len(m) for m in rec.machines) == total
        rec.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transitions", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--big", type=int, default=1_000_000, help="0 skips the scale test")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="amnode-bench-rec-"))
    try:
        results = {name: compare(cls, args.transitions, args.rounds, tmp)
                   for name, cls in WORKLOADS}
        big = scale(args.big, tmp) if args.big else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"recorder overhead: {args.transitions} transitions x {args.rounds} rounds (median), "
          f"steps + LogLevel.CHANGES lines recorded")
    print(f"{'workload':<16}{'plain tx/s':>12}{'recorded tx/s':>15}{'ratio':>8}"
          f"{'cost us/tx':>12}{'B/tx':>7}{'cpu ratio':>11}")
    for name, r in results.items():
        print(f"{name:<16}{r['plain_tps']:>12,.0f}{r['recorded_tps']:>15,.0f}"
              f"{r['ratio']:>8.3f}{r['cost_us']:>12.2f}{r['bytes_per_transition']:>7.0f}"
              f"{r['ratio_cpu']:>11.3f}")
    worst = min(results, key=lambda k: results[k]["ratio"])
    print(f"ratio (the minimum, {worst}): {results[worst]['ratio']:.3f}; from CPU time: "
          f"{min(r['ratio_cpu'] for r in results.values()):.3f}")
    if big:
        print(f"\n{int(big['big_transitions']):,}-transition recording: "
              f"{big['big_bytes_per_transition']:.0f} B/tx, generated in "
              f"{big['big_generate_s']:.1f} s")
        print(f"open_recording + jump to last transition: {big['open_and_jump_s']:.2f} s "
              f"(CRC verified), {big['open_and_jump_noverify_s']:.2f} s (verify=False)")
    if args.json:
        head = results[worst]
        per = {}
        for name, r in results.items():
            key = name.replace(" ", "_")
            per[f"ratio_{key}"] = round(r["ratio"], 3)
            per[f"cost_us_{key}"] = round(r["cost_us"], 2)
            per[f"bytes_per_transition_{key}"] = round(r["bytes_per_transition"], 1)
            per[f"ratio_cpu_{key}"] = round(r["ratio_cpu"], 3)
        print(json.dumps({
            "ratio": round(head["ratio"], 3),
            "ratio_workload": worst,
            "ratio_cpu": round(min(r["ratio_cpu"] for r in results.values()), 3),
            "plain_tps": round(head["plain_tps"]),
            "recorded_tps": round(head["recorded_tps"]),
            "bytes_per_transition": round(max(r["bytes_per_transition"]
                                              for r in results.values()), 1),
            **per,
            **{k: round(v, 3) for k, v in big.items()},
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
