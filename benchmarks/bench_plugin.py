"""What the amnode pytest plugin costs a test suite that records nothing, in one run.

The same part of this project's own suite runs in a fresh pytest process per run, alternately
with the plugin disabled (`-p no:amnode`) and enabled as installed but recording nothing (no
`--amnode-record`, no test opting in), over several rounds after one untimed warm-up run of
each; the order alternates every round (ABBA) so that drift in the machine's load cancels out.
Medians of the wall time of each run (interpreter start, collection, the tests) are compared;
the CPU time of the pytest process (user + system) is compared too, being less sensitive to
other processes on the machine.

The default part is tests/machine and tests/rpc: 403 tests, in-process machines (including the
property tests, seeded here with `--hypothesis-seed=0` so that every run runs the same examples)
and real aRPC servers and clients on 127.0.0.1. They record nothing, so the plugin's work is
what every such suite pays: declaring its options, and one look at each collected test for the
`amnode_recording` fixture and the `amnode_*` markers.

    python benchmarks/bench_plugin.py [--rounds N] [--json] [PATH ...]

The issue's target: "ratio" (enabled / disabled median wall time) < 1.10. With --json the last
line is a JSON object: "ratio", "cpu_ratio", "disabled_s", "enabled_s", "disabled_cpu_s",
"enabled_cpu_s", "tests", "rounds", "paths".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ["tests/machine", "tests/rpc"]
TARGET = 1.10
VARIANTS = {
    "disabled": ["-p", "no:amnode"],
    "enabled": [],
}
PASSED = re.compile(r"(\d+) passed")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AMNODE_RECORD", None)          # nothing records, in either variant
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin loads as installed
    return env


def _command(paths: list[str], variant: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
            "--hypothesis-seed=0", *VARIANTS[variant], *paths]


def _run(paths: list[str], variant: str) -> tuple[float, float, int]:
    """One pytest process: (wall s, CPU s of that process, tests passed); exits when a test
    fails (the runs would not be comparable)."""

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(_command(paths, variant), cwd=ROOT, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = proc.stdout.decode(errors="replace")
    found = PASSED.findall(text)
    if proc.returncode != 0 or not found:
        sys.exit(f"bench_plugin: the {variant} run failed "
                 f"({' '.join(_command(paths, variant))}):\n{text[-3000:]}")
    return wall, cpu, int(found[-1])


def plugin_installed() -> bool:
    """The entry point is there and pytest loads it (its options are offered)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=False).stdout
    return "--amnode-record" in out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=DEFAULT_PATHS,
                    help=f"the tests to run (default: {' '.join(DEFAULT_PATHS)})")
    ap.add_argument("--rounds", type=int, default=3,
                    help="timed runs of each variant (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)
    if not plugin_installed():
        sys.exit("bench_plugin: pytest does not load the amnode plugin: pip install -e . first")

    print(f"plugin overhead: {' '.join(args.paths)}, 1 warm-up + {args.rounds} rounds per "
          "variant, alternating", flush=True)
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpus: dict[str, list[float]] = {v: [] for v in VARIANTS}
    tests: dict[str, set[int]] = {v: set() for v in VARIANTS}
    for variant in VARIANTS:  # warm-up: bytecode and file caches
        _run(args.paths, variant)
    for r in range(args.rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            wall, cpu, passed = _run(args.paths, variant)
            walls[variant].append(wall)
            cpus[variant].append(cpu)
            tests[variant].add(passed)
            print(f"  round {r + 1} {variant:<9} {wall:7.2f} s wall  {cpu:7.2f} s CPU  "
                  f"{passed} passed", flush=True)
    counts = set().union(*tests.values())
    if len(counts) != 1:
        sys.exit(f"bench_plugin: the runs passed different numbers of tests: {sorted(counts)}")

    med_wall = {v: statistics.median(walls[v]) for v in VARIANTS}
    med_cpu = {v: statistics.median(cpus[v]) for v in VARIANTS}
    ratio = med_wall["enabled"] / med_wall["disabled"]
    cpu_ratio = med_cpu["enabled"] / med_cpu["disabled"]
    print(f"\n{'variant':<34}{'wall s (median)':>16}{'CPU s (median)':>16}")
    for variant, label in (("disabled", "disabled (-p no:amnode)"),
                           ("enabled", "enabled, recording nothing")):
        print(f"{label:<34}{med_wall[variant]:>16.2f}{med_cpu[variant]:>16.2f}")
    n_tests = counts.pop()
    print(f"ratio enabled / disabled: wall {ratio:.3f}, CPU {cpu_ratio:.3f} "
          f"(target < {TARGET:.2f}; {n_tests} tests per run)")
    if args.json:
        print(json.dumps({
            "paths": args.paths, "rounds": args.rounds, "tests": n_tests,
            "disabled_s": round(med_wall["disabled"], 3),
            "enabled_s": round(med_wall["enabled"], 3),
            "disabled_cpu_s": round(med_cpu["disabled"], 3),
            "enabled_cpu_s": round(med_cpu["enabled"], 3),
            "ratio": round(ratio, 4), "cpu_ratio": round(cpu_ratio, 4), "target": TARGET,
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
