"""The `amdbg` command line on a big recording: `log`, `graph --network`, `ls`.

1. A recording of N transitions (default 400,000) over a few machines is recorded from real
   machines through `Recorder` in a child process: a dispatcher whose handler mutates workers
   (so the network has causal "mutates" edges), every 50th job vetoed, log level 2.
2. Each command runs as a subprocess with stdout piped (what `amdbg log ... | less` sees):
   the time to the first output byte of `log --limit 20000`, the whole of `log --limit 0`
   (every transition of the biggest machine), `graph --network`, `ls`; the peer is decoding
   the same transitions with the reader alone (`RecordedMachine.transitions()`, CPU time),
   in a subprocess too, so the ratio is what formatting rows costs on top of reading them.

    python benchmarks/bench_cli.py [--transitions N] [--keep PATH] [--json]

Targets (issue 14): the first row < 1 s at any size; `log --limit 0` in reasonable time.
With --json the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GENERATOR = """
import sys
import amnode as am
from amnode.telemetry import Recorder

WORKER = {
    "Start": am.State(),
    "Job": am.State(multi=True, require=["Start"]),
    "Working": am.State(require=["Start"], remove=["Idle"]),
    "Idle": am.State(remove=["Working"]),
    "Done": am.State(multi=True),
}
DISPATCHER = {
    "Start": am.State(),
    "Dispatch": am.State(multi=True, require=["Start"]),
}


class WorkerHandlers:
    def WorkingEnter(self, e):
        return e.args.get("job", 0) % 50 != 0      # every 50th job is vetoed


class DispatcherHandlers:
    def __init__(self, workers):
        self.workers = workers

    def DispatchState(self, e):
        job = e.args["job"]
        w = self.workers[job % len(self.workers)]
        w.add("Job", {"job": job})                 # a cross-machine "mutates" link


path, total, nworkers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Recorder(path) as rec:
    workers = []
    handlers = DispatcherHandlers(workers)
    boss = am.Machine(DISPATCHER, id="dispatcher", handlers=handlers, log_level=2)
    rec.attach(boss)
    for k in range(nworkers):
        w = am.Machine(WORKER, id=f"worker-{k}", handlers=WorkerHandlers(), parent=boss,
                       log_level=2)
        workers.append(w)
    boss.add("Start")
    for w in workers:
        w.add("Start")
    # per job: dispatch (1) + job (1) in the worker + working, done, idle (3)
    for i in range(max(1, total // 5)):
        boss.add("Dispatch", {"job": i})
        w = workers[i % nworkers]
        w.add("Working", {"job": i})
        w.add("Done")
        w.add("Idle")
"""

PEER = """
import sys, time
from amnode.telemetry import open_recording
rec = open_recording(sys.argv[1])
m = max(rec.machines, key=len)
t0 = time.process_time()
n = sum(1 for _ in m.transitions())
print(n, time.process_time() - t0)
"""


def generate(path: Path, total: int, workers: int) -> float:
    """Record about `total` transitions in a child process; returns seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", GENERATOR, str(path), str(total), str(workers)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0


def amdbg(*args: str) -> list[str]:
    """The command line running amdbg from this checkout."""
    return [sys.executable, "-c", "import sys; from amdbg.cli import main; sys.exit(main())",
            *args]


def first_byte(cmd: list[str]) -> tuple[float, float, float]:
    """(seconds to the first byte on stdout, seconds to the end, CPU seconds used) of `cmd`,
    stdout piped. CPU time is what to compare on a busy machine; wall time is what a user
    waits."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.read(1)
    first = time.perf_counter() - t0
    while proc.stdout.read(1 << 16):
        pass
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{cmd} exited with {proc.returncode}")
    return first, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def biggest_machine(path: Path) -> tuple[str, int]:
    """Key and length of the machine with the most transitions."""
    from amnode.telemetry import open_recording
    with open_recording(path) as rec:
        m = max(rec.machines, key=len)
        return m.key, len(m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transitions", type=int, default=400_000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--keep", metavar="PATH", help="reuse (or create) the recording here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "big.amrec"
        gen = 0.0
        if not path.exists():
            gen = generate(path, args.transitions, args.workers)
        key, count = biggest_machine(path)
        peer = subprocess.run([sys.executable, "-c", PEER, str(path)], check=True,
                              capture_output=True, text=True, cwd=ROOT)
        decode_s = float(peer.stdout.split()[1])
        rows: dict[str, tuple[float, float, float]] = {
            "log --limit 20000": first_byte(amdbg("log", str(path), "-m", key,
                                                  "--limit", "20000")),
            "log --limit 0": first_byte(amdbg("log", str(path), "-m", key, "--limit", "0")),
            "graph --network": first_byte(amdbg("graph", str(path), "--network")),
            "ls": first_byte(amdbg("ls", str(path))),
        }
    print(f"recording: {count:,} transitions in {key} (generated in {gen:.1f} s)"
          if gen else f"recording: {count:,} transitions in {key}")
    print(f"{'command':<22} {'first byte':>11} {'total':>9} {'CPU':>9}")
    for name, (first, total, cpu) in rows.items():
        print(f"{name:<22} {first:>10.2f}s {total:>8.2f}s {cpu:>8.2f}s")
    print(f"{'peer: reader decode':<22} {'':>11} {'':>9} {decode_s:>8.2f}s")
    cpu_log = rows["log --limit 0"][2]
    ratio = cpu_log / decode_s if decode_s else float("inf")
    print(f"log --limit 0 CPU / reader decode: {ratio:.2f}x "
          f"({cpu_log / count * 1e6:.1f} µs of CPU a row, process start included)")
    if args.json:
        print(json.dumps({"transitions": count, "machine": key,
                          **{name: {"first_s": round(f, 3), "total_s": round(t, 3),
                                    "cpu_s": round(c, 3)}
                             for name, (f, t, c) in rows.items()},
                          "peer_decode_s": round(decode_s, 3),
                          "ratio_log_to_decode": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
