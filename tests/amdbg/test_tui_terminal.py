"""`amdbg replay` in a real terminal (tmux, 80x24): keys arrive as one burst from the
terminal, as when a user types fast, and the narrow layout is what the user sees. Pilot posts
keys one by one; these tests cover the path from the terminal's bytes to the app.

Every wait polls the screen until the expected text shows (the deadline only stops a test
that would otherwise hang).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """One tmux server with one window running a command."""

    def __init__(self, command: str, size: tuple[int, int]) -> None:
        self.socket = f"amdbg-test-{os.getpid()}-{time.monotonic_ns()}"
        self.run("new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "-s", "t",
                 command)

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "t", *(["-l"] if literal else []), *keys)

    def wait(self, until: Callable[[str], bool], timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if until(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched:\n{text}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(orders: Path) -> Iterator[Callable[[], Terminal]]:
    made: list[Terminal] = []

    def start() -> Terminal:
        cmd = " ".join(shlex.quote(a) for a in (
            sys.executable, "-c", "import sys; from amdbg.cli import main; sys.exit(main())",
            "replay", str(orders), "-m", "order-1002", "-t", "3"))
        term = Terminal(f"cd {shlex.quote(str(ROOT))} && {cmd}; echo AMDBG-EXITED $?; "
                        "sleep 600", (80, 24))
        made.append(term)
        return term

    yield start
    for term in made:
        term.close()


def test_a_fast_search_in_a_real_terminal_keeps_its_keys(terminal) -> None:
    term = terminal()
    term.wait(lambda s: "Transitions 3 / 12" in s)
    term.keys("/sitemapq", literal=True)  # one write: the app gets all keys at once
    screen = term.wait(lambda s: "sitemapq" in s)
    assert "Transitions 3 / 12" in screen  # `s` did not jump to a source
    assert "time UTC" not in screen  # `t` did not switch the time column
    assert "AMDBG-EXITED" not in screen  # `q` did not quit
    term.keys("Escape")
    term.wait(lambda s: "sitemapq" not in s)
    term.keys("q")
    assert "AMDBG-EXITED 0" in term.wait(lambda s: "AMDBG-EXITED" in s)


def test_80x24_leaving_the_graph_and_help_then_q_quits(terminal) -> None:
    term = terminal()
    # the footer keeps help and quit at 80 columns
    screen = term.wait(lambda s: "Transitions 3 / 12" in s and "? help" in s and "q quit" in s)
    assert "Machines" not in screen  # narrow: no machine list
    term.keys("Tab")
    term.keys("Tab")
    term.keys("g")
    term.wait(lambda s: "Relations of order-1002" in s)
    term.keys("g")
    term.wait(lambda s: "States after #3" in s)
    term.keys("?")
    term.wait(lambda s: "amdbg replay: keys" in s)
    term.keys("Escape")
    term.wait(lambda s: "amdbg replay: keys" not in s)
    term.keys("End")
    term.wait(lambda s: "Transitions 12 / 12" in s)
    term.keys("q")
    assert "AMDBG-EXITED 0" in term.wait(lambda s: "AMDBG-EXITED" in s)
