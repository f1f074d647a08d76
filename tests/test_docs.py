"""Every ```python block in the README and docs/ runs, and prints what the docs say it prints.

A line `print(x)  # expected` must print exactly `expected`; trailing `# line` comments at the end
of a block must equal the last lines the block printed. Blocks fenced as ```py are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRINT = re.compile(r"^(\s*)print\((.*)\)\s+#\s(.*)$")
PRELUDE = '''
def __checked_print(*args, _expected, _line):
    out = " ".join(str(a) for a in args)
    print(out)
    if out != _expected:
        raise AssertionError(f"doc line {_line}: printed {out!r}, the doc says {_expected!r}")
'''


def _blocks() -> list[tuple[Path, int, list[tuple[int, str]]]]:
    found = []
    for path in DOCS:
        if not path.exists():
            continue
        current: list[tuple[int, str]] | None = None
        start = 0
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if current is None and line.strip() == "```python":
                current, start = [], i
            elif current is not None and line.strip() == "```":
                found.append((path, start, current))
                current = None
            elif current is not None:
                current.append((i, line))
    return found


BLOCKS = _blocks()


@pytest.mark.parametrize(("path", "start", "lines"), BLOCKS,
                         ids=[f"{p.name}:{s}" for p, s, _ in BLOCKS])
def test_doc_block_runs_as_documented(path: Path, start: int, lines: list[tuple[int, str]],
                                      tmp_path: Path) -> None:
    code = []
    for i, line in lines:
        m = PRINT.match(line)
        if m and not m.group(3).startswith(("e.g.", "...")):
            code.append(f"{m.group(1)}__checked_print({m.group(2)}, _expected={m.group(3)!r}, "
                        f"_line={i})")
        else:
            code.append(line)
    trailing: list[str] = []
    for _, line in reversed(lines):
        if line.startswith("# ") and not line.startswith("# (also"):
            trailing.insert(0, line[2:])
        elif not line.strip() or line.startswith("# (also"):
            continue
        else:
            break
    script = tmp_path / "block.py"
    script.write_text(PRELUDE + "\n".join(code) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AMNODE_RECORD", None)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, f"{path.name}:{start} failed:\n{proc.stdout}\n{proc.stderr}"
    if trailing:
        got = proc.stdout.rstrip("\n").split("\n")
        assert got[-len(trailing):] == trailing, f"{path.name}:{start} printed:\n{proc.stdout}"
