"""Regenerate every sample recording under recordings/ (the files amdbg's docs and tests use).

    python examples/record_samples.py

- recordings/orders.amrec: examples/orders.py recorded with `Recorder(path)` (a single file);
- recordings/crawler/: examples/crawler.py recorded through `AMNODE_RECORD` (a directory with
  one file per process: the crawler and the sitemap reader it starts).

Transition ids are seeded, so a regenerated sample keeps its ids (and the `mach://` addresses
in the docs keep working); wall times, host names and process ids change on every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "recordings"
ORDERS = OUT / "orders.amrec"
CRAWLER = OUT / "crawler"


def run(script: str, *args: str, env: dict[str, str] | None = None) -> None:
    """Run an example in a fresh interpreter (so seeding and AMNODE_RECORD start clean)."""
    cmd = [sys.executable, str(HERE / script), *args]
    base = {k: v for k, v in os.environ.items() if k not in ("AMNODE_RECORD", "AMNODE_LOG")}
    subprocess.run(cmd, check=True, env={**base, **(env or {})}, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def main() -> int:
    """Delete the old samples, record new ones, and check that they read back."""
    OUT.mkdir(exist_ok=True)
    ORDERS.unlink(missing_ok=True)
    shutil.rmtree(CRAWLER, ignore_errors=True)
    run("orders.py", "--record", str(ORDERS), "--seed", "1001")
    run("crawler.py", "--seed", "2024", env={"AMNODE_RECORD": str(CRAWLER)})

    sys.path.insert(0, str(ROOT))
    from amnode.telemetry import open_recording

    for path in (ORDERS, CRAWLER):
        with open_recording(path) as rec:
            if rec.corruption:
                raise SystemExit(f"{path}: damaged: {rec.corruption[0]}")
            files = [path] if path.is_file() else sorted(path.glob("*.amrec"))
            size = sum(f.stat().st_size for f in files)
            print(f"{path.relative_to(ROOT)}: {len(files)} file(s), {size:,} bytes, "
                  f"{len(rec.machines)} machines, {rec.transition_count} transitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
