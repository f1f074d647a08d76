"""Where the Go am-dbg exports used as test data are, and one conversion cache per test run.

The exports live next to the repository (`<repo>/../shared/go-exports`, as in CI); they are
not copied into the project. `AMDBG_GO_EXPORTS` overrides the folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: one cache directory for the whole run: each export is converted once, whoever opens it
CACHE = tempfile.mkdtemp(prefix="amdbg-test-go-cache-")
atexit.register(shutil.rmtree, CACHE, True)

#: every export of the folder, and the counts its README gives (machines, transitions, queued)
SAMPLES = ("am-dbg-sim-7b90a9e.gob.br", "am-dbg-sim-d05a3da.gob.br", "am-dbg.gob.br",
           "flood.gob.br", "node-payload.gob.br", "secai-cook.gob.br", "wasm-workflow.gob.br",
           "wasm.gob.br")
PUBLISHED = {"node-payload.gob.br": (23, 363, 364), "wasm.gob.br": (13, 100, 95),
             "am-dbg-sim-7b90a9e.gob.br": (107, 7605, 0)}
#: the small ones (up to 255 KB, 7,605 transitions): every check runs on all of each
SMALL = ("am-dbg-sim-7b90a9e.gob.br", "am-dbg.gob.br", "node-payload.gob.br",
         "secai-cook.gob.br", "wasm-workflow.gob.br", "wasm.gob.br")
#: the big ones (18 and 26 MB of gob, 26 and 120 machines): checks that decode a stream
#: themselves read its first `PREFIX_MACHINES` machines; the conversion every verb opens reads
#: all of it, once per run (the shared `CACHE`)
BIG = ("am-dbg-sim-d05a3da.gob.br", "flood.gob.br")
#: the machines (top-level slice elements) of a big export's prefix: 0.6 MB of flood's stream
#: (its 17 MB `root` machine is the 14th) and 1.6 MB of am-dbg-sim-d05a3da's
PREFIX_MACHINES = 8
assert sorted(SMALL + BIG) == sorted(SAMPLES)


def exports_dir() -> Path:
    """The exports folder; fails the test with a clear message when it is missing."""
    d = Path(os.environ.get("AMDBG_GO_EXPORTS") or ROOT.parent / "shared" / "go-exports")
    if not d.is_dir():
        pytest.fail(f"the Go am-dbg exports used as test data are missing: expected them in "
                    f"{d} (the 'shared' folder next to the repository, or set "
                    "AMDBG_GO_EXPORTS)", pytrace=False)
    return d


def export(name: str) -> Path:
    """The path of one export; fails clearly when it is missing."""
    p = exports_dir() / name
    if not p.is_file():
        pytest.fail(f"Go am-dbg export {name} is missing from {p.parent}", pytrace=False)
    return p
