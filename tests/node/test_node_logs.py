"""Worker logs: the supervisor writes each worker's stdout/stderr to files under its log
directory and rotates them by size and on `RotateLogs`, with no line lost or split."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from helpers.node import new_supervisor, running, wait_for, worker_cmd

from amnode import node
from amnode.node.logs import LogFile

pytestmark = pytest.mark.timeout(120)


def read_rotated(path: Path) -> list[str]:
    """Every line of a log file and its rotated copies, oldest first (`.N` ... `.1`, then the
    file itself); each file must hold whole lines only."""
    parts = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    lines: list[str] = []
    for part in [*parts, path]:
        if not part.exists():
            continue
        data = part.read_text()
        assert not data or data.endswith("\n"), f"{part.name} ends inside a line"
        lines += data.splitlines()
    return lines


async def test_a_log_file_rotates_between_whole_lines(tmp_path: Path) -> None:
    rng = random.Random(7)
    log = LogFile(tmp_path / "w.out", max_bytes=300, backups=1000)
    expected = [f"line {i} " + "y" * rng.randrange(40) for i in range(500)]
    data = "".join(x + "\n" for x in expected).encode()
    pos = 0
    while pos < len(data):  # chunks cut anywhere, as a pipe delivers them
        step = rng.randrange(1, 200)
        await log.write(data[pos:pos + step])
        pos += step
        if rng.random() < 0.05:
            await log.rotate()  # RotateLogs at any moment
    await log.close()
    assert log.rotations > 10
    assert read_rotated(tmp_path / "w.out") == expected
    # a rotated file passes its limit by at most one write (whole lines, never split)
    for part in tmp_path.glob("w.out.*"):
        assert part.stat().st_size < 300 + 200 + 50  # limit + one chunk + a partial line


async def test_rotating_drops_the_oldest_beyond_the_backups(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "w.err", max_bytes=0, backups=2)
    for i in range(4):
        await log.write(f"gen {i}\n".encode())
        await log.rotate()
    await log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.err", "w.err.1", "w.err.2"]
    assert (tmp_path / "w.err.1").read_text() == "gen 3\n"
    assert (tmp_path / "w.err.2").read_text() == "gen 2\n"
    assert (tmp_path / "w.err").read_text() == ""


async def test_worker_output_is_logged_and_rotated_by_size_and_on_request(
        tmp_path: Path) -> None:
    sup = new_supervisor("LOG", (1, 1, 0, 0), worker_cmd=worker_cmd(), log_dir=str(tmp_path),
                         log_max_bytes=20_000, log_backups=1000)
    n = 4000
    async with running(sup):
        (info,) = await sup.workers()
        entry = sup.pool.by_id(info.id)
        assert entry is not None and entry.mirror is not None
        out = tmp_path / f"LOG-0-slot{info.slot}.out"
        err = tmp_path / f"LOG-0-slot{info.slot}.err"
        assert await entry.mirror.add("Chatter", {"lines": n}) == am_executed()
        rotated = 0
        # RotateLogs while the worker writes (the supervisor machine's state, as SIGHUP does)
        while not written(out, f"out {n - 1:06d}"):
            if sup.rotate_logs():
                rotated += 1
            await asyncio.sleep(0.05)
        await wait_for(lambda: written(err, f"err {n - 1:06d}"),
                       what="stderr complete")
        assert rotated >= 1
        assert sup.logs is not None
        files = {f.path.name: f.rotations for f in sup.logs.files()}
        assert files[out.name] > rotated  # by size as well
    outs = read_rotated(out)
    assert [x.split()[1] for x in outs if x.startswith("out ")] == [f"{i:06d}" for i in range(n)]
    assert all(x == f"out {i:06d} " + "x" * (i % 50) for i, x in
               enumerate(y for y in outs if y.startswith("out ")))
    errs = [x for x in read_rotated(err) if x.startswith("err ")]
    assert errs == [f"err {i:06d}" for i in range(n)]


def text(path: Path) -> str:
    """A file's text, "" while it does not exist (e.g. between a rotation's two renames)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def written(path: Path, line: str) -> bool:
    """`line` is in the log file or one of its rotated copies."""
    return any(line in text(p) for p in path.parent.glob(path.name + "*"))


def am_executed() -> int:
    import amnode as am
    return int(am.EXECUTED)


def test_log_options_need_a_directory() -> None:
    sup = node.Supervisor("LOG", worker_cmd=["x"], worker_schema=new_supervisor("X").worker_schema)
    assert sup.logs is None and not sup.rotate_logs()
