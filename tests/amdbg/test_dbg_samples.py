"""The example workflows, the shipped sample recordings they produce, and the README's commands.

The examples are re-run into a temporary directory and must record exactly what is shipped
under recordings/ (same machines, transition ids, called states, results); when this fails
after a change to the machine or the recorder, regenerate with
`python examples/record_samples.py`. Every command of the README section "Recording and
replaying a session" (and the README's first command) is run as written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from amnode.telemetry import open_recording

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
SECTION = "## Recording and replaying a session"
REGENERATE = "the samples are stale: run `python examples/record_samples.py`"


def env_without_recording(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AMNODE_RECORD", "AMNODE_LOG", "AMDBG_DEBUG", "AMNODE_DEBUG")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return {**env, **extra}


def example_env(**extra: str) -> dict[str, str]:
    """For the seeded example runs: AMNODE_DEBUG=1 turns handler timeouts off, so a handler
    stalled on a loaded machine cannot cancel a transition (and change `accepted`)."""
    return env_without_recording(AMNODE_DEBUG="1", **extra)


def fingerprint(path: Path) -> list[tuple]:
    """What must not change between two recordings of the same seeded workflow."""
    with open_recording(path) as rec:
        out = []
        for m in rec.machines:
            out.append((m.key, m.parent, tuple(m.tags), tuple(m.state_names), len(m)))
            out.extend((m.key, tx.number, tx.id, tx.type, tuple(tx.called), tx.accepted,
                        tx.is_auto, tuple(tx.time_after), tx.source and tx.source.tx_id)
                       for tx in m.transitions())
        return out


def test_orders_example_records_the_shipped_sample(tmp_path: Path) -> None:
    out = tmp_path / "orders.amrec"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "orders.py"), "--record", str(out),
                           "--seed", "1001"], capture_output=True, text=True, timeout=60,
                          env=example_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "shipped: 1001, 1004; failed: 1002, 1003" in proc.stdout
    assert fingerprint(out) == fingerprint(ROOT / "recordings" / "orders.amrec"), REGENERATE


def test_crawler_example_records_the_shipped_sample_via_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "crawler"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "crawler.py"), "--seed", "2024"],
                          capture_output=True, text=True, timeout=60,
                          env=example_env(AMNODE_RECORD=str(out)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("visited 8 URLs")
    assert len(list(out.glob("*.amrec"))) == 2  # the crawler and its sitemap process
    assert fingerprint(out) == fingerprint(ROOT / "recordings" / "crawler"), REGENERATE


def test_example_runs_have_no_handler_timeouts() -> None:
    """The fingerprint includes `accepted`: a handler timeout (0.1 s by default) hit on a
    loaded CI machine would cancel a transition and report the samples as stale."""
    proc = subprocess.run([sys.executable, "-c", "import amnode as am; "
                           "print(am.Machine({'A': {}}).handler_timeout)"],
                          capture_output=True, text=True, timeout=60, env=example_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"


def readme_commands() -> list[str]:
    """The shell commands of the README section, and the amdbg part of the first command."""
    text = README.read_text()
    assert SECTION in text, "the README lost its recording section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        commands.extend(line.strip() for line in block.splitlines() if line.strip())
    first = re.search(r"```\n(python3 -m venv .*?)\n```", text).group(1)
    assert "pip install -e ." in first
    first = first.split("pip install -e . && ", 1)[1]
    # `replay` needs a terminal; `show` resolves the very same recording and selection
    commands.insert(0, re.sub(r"^amdbg replay ", "amdbg show ", first))
    return commands


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    commands = readme_commands()
    assert any(c.startswith("amdbg ls") for c in commands)
    assert any(re.match(r"amdbg show \S+ -m \S+ -t 1$", c) for c in commands)
    assert any("AMNODE_RECORD=" in c for c in commands)
    for sub in ("log", "graph", "pack"):
        assert any(c.startswith(f"amdbg {sub} ") for c in commands), sub
    demo = str(tmp_path / "amdbg-demo")
    for command in commands:
        # the README writes to /tmp; the test keeps those files in its own directory
        command = command.replace("/tmp/amdbg-demo", demo).replace("/tmp/", f"{tmp_path}/")
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, env=env_without_recording())
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        assert proc.stderr == "", f"{command}\n{proc.stderr}"
        assert proc.stdout, command


@pytest.mark.parametrize("script", ["orders.py", "crawler.py", "record_samples.py"])
def test_example_help(script: str) -> None:
    if script == "record_samples.py":  # no options: it just regenerates; check it imports
        proc = subprocess.run([sys.executable, "-c", "import record_samples"], cwd=EXAMPLES,
                              capture_output=True, text=True, timeout=60)
    else:
        proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
