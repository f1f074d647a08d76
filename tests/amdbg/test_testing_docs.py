"""docs/testing.md as written: its `shop.py` and `test_shop.py` run under the plugin (installed
from the entry point, in a pytest process of their own) and print the failure report and the
golden difference the doc shows, line for line (transition ids masked: they are random); the
trace export prints what the doc says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amdbg.cli import main as amdbg_main

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
TX_ID = re.compile(r"(mach://[^/\s]+/)[0-9a-f]{16}")
DECLINED = 'DECLINED = {"0000"}'


def blocks(fence: str) -> list[list[str]]:
    """The doc's blocks fenced as ```fence, in order, as lines."""
    found: list[list[str]] = []
    block: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if block is None and line.strip() == f"```{fence}":
            block = []
        elif block is not None and line.strip() == "```":
            found.append(block)
            block = None
        elif block is not None:
            block.append(line)
    return found


def files() -> dict[str, str]:
    """The ```py blocks that start with `# NAME.py`, by name."""
    return {b[0][2:]: "\n".join(b) + "\n" for b in blocks("py")
            if b and b[0].startswith("# ") and b[0].endswith(".py")}


def mask(lines: list[str]) -> list[str]:
    return [TX_ID.sub(r"\1<id>", line.rstrip()) for line in lines]


def assert_shown(expected: list[str], output: list[str]) -> None:
    """`expected` appears in `output` as consecutive lines (ids masked)."""
    want, got = mask(expected), mask(output)
    assert want, "empty block"
    starts = [i for i, line in enumerate(got) if line == want[0]]
    assert starts, f"{want[0]!r} is not in the output:\n" + "\n".join(got)
    best = max((sum(1 for a, b in zip(want, got[i:i + len(want)], strict=False) if a == b), i)
               for i in starts)
    i = best[1]
    assert got[i:i + len(want)] == want, "the doc's text differs from the real output:\n" + \
        "\n".join(got)


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("AMNODE_RECORD", raising=False)
    monkeypatch.setenv("COLUMNS", "80")  # the width the doc's output was made at
    found = files()
    assert set(found) == {"shop.py", "test_shop.py"}
    for name, text in found.items():
        pytester.path.joinpath(name).write_text(text)
    return pytester


def test_the_documented_failure_report_is_the_real_one(shop: pytest.Pytester) -> None:
    report, golden, _ = blocks("text")
    result = shop.runpytest_subprocess("-p", "no:cacheprovider", "--amnode-record",
                                       "--amnode-golden=golden", "test_shop.py")
    result.assert_outcomes(passed=2, failed=1)
    assert_shown(report, result.stdout.lines)
    assert (shop.path / "golden" / "shop.amrec").is_file()
    kept = shop.path / ".amnode-recordings"
    assert [p.name for p in kept.iterdir()] == ["test_shop.py..test_every_order_ships"]

    # the golden difference: the same suite after card 5555 is declined too
    shop_py = shop.path / "shop.py"
    assert DECLINED in shop_py.read_text()
    shop_py.write_text(shop_py.read_text().replace(DECLINED, 'DECLINED = {"0000", "5555"}'))
    result = shop.runpytest_subprocess("-p", "no:cacheprovider", "--amnode-golden=golden",
                                       "test_shop.py")
    result.assert_outcomes(passed=1, failed=2, errors=1)
    assert_shown(golden, result.stdout.lines)
    result.stdout.fnmatch_lines(["*RecordingAssertionError: expected 1 transition(s) in "
                                 "order-* called Paid and canceled, found 2"])


def test_the_documented_export_prints_what_the_doc_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    *_, export = blocks("text")
    (tmp_path / "recordings").symlink_to(ROOT / "recordings")
    monkeypatch.chdir(tmp_path)
    command = next(line for line in DOC.read_text().splitlines()
                   if line.startswith("amdbg export "))
    assert amdbg_main(command.split()[1:]) == 0
    assert capsys.readouterr().out.splitlines() == export
    assert (tmp_path / "pool.json").stat().st_size > 0
