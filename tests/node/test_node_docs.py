"""docs/node.md's worker script and client program, run as written: the two ```py blocks that
start with `# worker.py` and `# main.py` are saved as files and `python main.py` must print the
output the block ends with (worker processes included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.node import env_without_recording

pytestmark = pytest.mark.timeout(120)

DOC = Path(__file__).resolve().parents[2] / "docs" / "node.md"


def py_blocks() -> dict[str, str]:
    """The ```py blocks of the doc by the file name on their first line."""
    out: dict[str, str] = {}
    block: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if block is None and line.strip() == "```py":
            block = []
        elif block is not None and line.strip() == "```":
            if block and block[0].startswith("# ") and block[0].endswith(".py"):
                out[block[0][2:]] = "\n".join(block) + "\n"
            block = None
        elif block is not None:
            block.append(line)
    return out


def test_the_documented_worker_and_client_run(tmp_path: Path) -> None:
    blocks = py_blocks()
    assert set(blocks) >= {"worker.py", "main.py"}
    for name, text in blocks.items():
        (tmp_path / name).write_text(text)
    expected = [line[2:] for line in blocks["main.py"].splitlines()
                if line.startswith("# ") and not line.endswith(".py")]
    proc = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100, env=env_without_recording())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected, proc.stdout
    # the worker script alone, without a supervisor: a clear usage error
    alone = subprocess.run([sys.executable, "worker.py"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, env=env_without_recording())
    assert alone.returncode == 2 and "-a HOST:PORT" in alone.stderr
