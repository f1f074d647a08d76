"""Regenerate every sample recording under recordings/ (the files amdbg's docs and tests use).

    python examples/record_samples.py

- recordings/orders.amrec: examples/orders.py recorded with `Recorder(path)` (a single file);
- recordings/crawler/: examples/crawler.py recorded through `AMNODE_RECORD` (a directory with
  one file per process: the crawler and the sitemap reader it starts);
- recordings/node-pool.amrec, recordings/node-payload.amrec: examples/node_pool.py (a supervisor,
  its worker processes and clients) recorded through `AMNODE_RECORD`, packed into one file each.

`python examples/record_samples.py node` regenerates only the node recordings (likewise
`orders`, `crawler`); without arguments, all of them.

Transition ids are seeded, so a regenerated sample keeps its ids (and the `mach://` addresses
in the docs keep working); wall times, host names and process ids change on every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "recordings"
ORDERS = OUT / "orders.amrec"
CRAWLER = OUT / "crawler"
NODE_POOL = OUT / "node-pool.amrec"
NODE_PAYLOAD = OUT / "node-payload.amrec"


def run(script: str, *args: str, env: dict[str, str] | None = None) -> None:
    """Run an example in a fresh interpreter (so seeding and AMNODE_RECORD start clean)."""
    cmd = [sys.executable, str(HERE / script), *args]
    base = {k: v for k, v in os.environ.items() if k not in ("AMNODE_RECORD", "AMNODE_LOG")}
    subprocess.run(cmd, check=True, env={**base, **(env or {})}, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def record_node(path: Path, seed: int, *args: str) -> None:
    """examples/node_pool.py with every process recorded, packed into one file (the supervisor
    is `ns-hash-demo-000000-0` with the seed and AMNODE_HOSTNAME=demo)."""
    sys.path.insert(0, str(ROOT))
    from amnode.telemetry import pack

    with tempfile.TemporaryDirectory() as tmp:
        run("node_pool.py", "--seed", str(seed), *args,
            env={"AMNODE_RECORD": tmp, "AMNODE_HOSTNAME": "demo"})
        path.unlink(missing_ok=True)
        pack(tmp, path)


def main(only: list[str] | None = None) -> int:
    """Delete the old samples, record new ones, and check that they read back."""
    names = ("orders", "crawler", "node")
    chosen = set(only or names)
    if chosen - set(names):
        print(f"usage: record_samples.py [{' | '.join(names)} ...]", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    paths = []
    if "orders" in chosen:
        ORDERS.unlink(missing_ok=True)
        run("orders.py", "--record", str(ORDERS), "--seed", "1001")
        paths.append(ORDERS)
    if "crawler" in chosen:
        shutil.rmtree(CRAWLER, ignore_errors=True)
        run("crawler.py", "--seed", "2024", env={"AMNODE_RECORD": str(CRAWLER)})
        paths.append(CRAWLER)
    if "node" in chosen:
        record_node(NODE_POOL, 3001, "--dir", "amnode/node", "--workers", "3")
        record_node(NODE_PAYLOAD, 3002, "--square", "2")
        paths += [NODE_POOL, NODE_PAYLOAD]

    sys.path.insert(0, str(ROOT))
    from amnode.telemetry import open_recording

    for path in paths:
        with open_recording(path) as rec:
            if rec.corruption:
                raise SystemExit(f"{path}: damaged: {rec.corruption[0]}")
            files = [path] if path.is_file() else sorted(path.glob("*.amrec"))
            size = sum(f.stat().st_size for f in files)
            print(f"{path.relative_to(ROOT)}: {len(files)} file(s), {size:,} bytes, "
                  f"{len(rec.machines)} machines, {rec.transition_count} transitions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
