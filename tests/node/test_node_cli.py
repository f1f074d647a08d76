"""The `amnode` console script: a supervisor in a subprocess, queried with `amnode status`,
operated with `amnode workers --kill`, its logs rotated by SIGHUP, stopped with SIGTERM; no
process is left behind. Errors are one line."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from helpers.node import (
    amnode_run,
    cli_status,
    exited,
    start_cli_supervisor,
    wait_for,
    wait_status,
    worker_cmd,
)

pytestmark = pytest.mark.timeout(180)


async def test_cli_supervisor_status_kill_sighup_and_sigterm(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    proc, info = await start_cli_supervisor(
        "--kind", "NTW", "--worker-cmd", " ".join(worker_cmd()), "--min", "2", "--max", "2",
        "--warm", "0", "--log-dir", str(logs))
    pids: set[int] = set()
    try:
        assert info["id"].startswith("ns-NTW-") and info["pid"] == proc.pid
        status = await wait_status(info["public"], lambda s: "PoolReady" in s["states"]
                                   and len(s["workers"]) == 2, "pool ready")
        assert status["public_addr"] == info["public"] and status["local_addr"] == info["control"]
        pids |= {w["pid"] for w in status["workers"]}
        assert all(w["state"] == "idle" and not exited(w["pid"]) for w in status["workers"])
        # the table, on the control port too
        code, out, err = await amnode_run("status", info["control"])
        assert code == 0, err
        assert info["id"] in out and "PoolReady" in out and "leased to" in out
        assert all(w["id"] in out for w in status["workers"])
        # an operator kills a worker: it is replaced
        victim = status["workers"][0]
        code, out, err = await amnode_run("workers", info["public"], "--kill", victim["id"])
        assert code == 1 and err.count("\n") == 1 and "control address" in err
        code, out, err = await amnode_run("workers", info["control"], "--kill", victim["id"])
        assert code == 0 and out.strip() == f"killed {victim['id']}", err
        status = await wait_status(info["public"], lambda s: len(s["workers"]) == 2 and all(
            w["id"] != victim["id"] and w["state"] == "idle" for w in s["workers"]), "replaced")
        pids |= {w["pid"] for w in status["workers"]}
        await wait_for(lambda: exited(victim["pid"]), what="the killed worker exited")
        code, out, err = await amnode_run("workers", info["control"], "--kill", "nw-nobody")
        assert code == 1 and "no worker nw-nobody" in err
        # SIGHUP rotates the worker logs (RotateLogs)
        files = sorted(p.name for p in logs.iterdir())
        assert files and all(f.endswith((".out", ".err")) for f in files)
        os.kill(proc.pid, signal.SIGHUP)
        await wait_for(lambda: any(p.name.endswith(".out.1") for p in logs.iterdir()),
                       what="rotated by SIGHUP")
        assert proc.returncode is None  # SIGHUP did not stop it
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0
    # SIGTERM stopped it cleanly: every worker it ever had is gone
    await wait_for(lambda: all(exited(p) for p in pids), what=f"workers {pids} left behind")


async def test_cli_errors_are_one_line() -> None:
    cases = [
        (["status", "127.0.0.1:1"], 1, "cannot reach a supervisor at 127.0.0.1:1"),
        (["status"], 2, "the following arguments are required"),
        (["supervisor", "--kind", "K"], 2, "--worker-cmd"),
        (["supervisor", "--kind", "K", "--worker-cmd", "x", "--peers", "127.0.0.1:9"], 2,
         "AMNODE_NODE_SECRET"),
        (["supervisor", "--kind", "K", "--worker-cmd", "x", "--min", "-1"], 2, "negative"),
        (["supervisor", "--kind", "K", "--worker-cmd", "x", "--addr", "nonsense"], 1,
         "cannot start"),
        ([], 2, "a command is needed"),
    ]
    results = await asyncio.gather(*(amnode_run(*args) for args, _, _ in cases))
    for (args, code, text), (got, _, err) in zip(cases, results, strict=True):
        assert got == code, (args, err)
        assert err.startswith("amnode: error: ") and err.count("\n") == 1, (args, err)
        assert text in err, (args, err)


async def test_cli_status_of_a_stopped_supervisor_fails_cleanly() -> None:
    proc, info = await start_cli_supervisor("--kind", "NTW", "--worker-cmd",
                                            " ".join(worker_cmd()), "--min", "0", "--max", "1",
                                            "--warm", "0")
    try:
        status = await cli_status(info["public"])
        assert status["id"] == info["id"]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it cleanly too
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    code, _, err = await amnode_run("status", info["public"])
    assert code == 1 and "cannot reach" in err and err.count("\n") == 1
