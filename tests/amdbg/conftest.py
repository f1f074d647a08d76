"""Recordings made for the amdbg tests: a hostile one (control characters and markup in every
string a recording holds) and one whose last records no check record covers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from amdbg.session import Session
from amnode.telemetry import RecordWriter

#: what a hostile recording puts in its strings: clear screen, window title (OSC 0),
#: clipboard write (OSC 52), a C1 CSI, DEL, a bell, a carriage return, a bidi override
ESC_CLEAR = "\x1b[2J"
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
C1_CSI = "\x9b31m"
HOSTILE = ESC_CLEAR + OSC_TITLE + OSC_CLIPBOARD + C1_CSI + "\x7f\r\u202e"
#: Textual / rich markup that must show literally
MARKUP_STATE = "[red]x"
MARKUP_LOG = "[link=https://example.com/x]click[/link] [@click=app.quit]quit[/]"

MACHINE_ID = f"evil{OSC_TITLE}[reverse]m"
STATE = f"S{ESC_CLEAR}t"
NAMES = [STATE, MARKUP_STATE, "Exception"]
STATES = {STATE: {"require": [MARKUP_STATE]}, MARKUP_STATE: {"tags": [f"t{OSC_CLIPBOARD}"]},
          "Exception": {"multi": True}}


def write_hostile(path: Path) -> Path:
    """A recording whose every string holds control sequences or markup (as a peer that
    crafts records, not amnode, would write it)."""
    w = RecordWriter.create(path, {"host": f"h{ESC_CLEAR}", "pid": 1,
                                   "argv0": f"prog{OSC_TITLE}", "start_ns": 1_000})
    parent = w.add_machine(f"root{C1_CSI}", "", [f"tag{HOSTILE}"], ["A"], {"A": {}}, {}, [],
                           1_000)
    mno = w.add_machine(MACHINE_ID, f"root{C1_CSI}", [f"k:{HOSTILE}"], NAMES, STATES, {}, [],
                        2_000, log_prefix="[evil] ")
    w.transition(parent, 1, 2_500, 2_600, f"p{HOSTILE}", 0x01, 0, [0], 1, 1, 0, [1], [0],
                 None, None, None, None, None)
    steps = [[32, -1, 0, -1], [1, 0, 1, 2], [2, -1, 0, -1, 0x02, f"H{OSC_CLIPBOARD}Enter", 10],
             [2, -1, f"Any{ESC_CLEAR}", -1, 0x01, f"{MARKUP_STATE}State", 5]]
    w.transition(mno, 1, 3_000, 4_000, f"tx{OSC_TITLE}", 0x01, 0, [0, 1], 2, 1, 0,
                 [1, 1, 0], [0, 0, 0], steps,
                 [[2, f"[evil] [state] +{STATE}"], [2, f"[evil] {MARKUP_LOG}{HOSTILE}"],
                  [1, f"[error] boom{ESC_CLEAR}\ntrace{OSC_TITLE}\nmore"]],
                 [[1, f"[exter] {OSC_CLIPBOARD}"]],
                 {f"k{ESC_CLEAR}": f"v{HOSTILE}", "markup": MARKUP_LOG},
                 [f"root{C1_CSI}", f"p{HOSTILE}", 1])
    w.transition(mno, 2, 5_000, 6_000, "0000000000000002", 0x00, 0, [1], 3, 2, 0,
                 [1, 1, 0], [1, 1, 0], [[32, -1, 1, -1], [64, -1, 1, -1]],
                 [[2, f"[evil] [cancel] ({MARKUP_STATE}) by {STATE}Enter{OSC_TITLE}"]], None,
                 None, None)
    w.queued(mno, 4_500, 0, 0, [1], 3, 2, 1, f"tx{OSC_TITLE}", {"q": HOSTILE}, None)
    w.dispose(mno, 7_000, [[2, f"[evil] [dispose] {HOSTILE}"]])
    w.close()
    return path


@dataclass(frozen=True)
class Hostile:
    """A hostile recording and what is in it (the raw strings the tests look for)."""

    path: Path
    machine_id: str = MACHINE_ID
    state: str = STATE
    markup_state: str = MARKUP_STATE
    markup_log: str = MARKUP_LOG


@pytest.fixture
def hostile(tmp_path: Path) -> Hostile:
    """A hostile recording file (see `write_hostile`)."""
    return Hostile(write_hostile(tmp_path / "hostile.amrec"))


def write_unverified(path: Path) -> tuple[Path, int]:
    """A recording whose last block lost its check record (the writer was killed before it
    went out) and then had one byte of transition 3's args changed: arg "9" now reads "8".
    Returns the path and the number of the changed transition."""
    w = RecordWriter.create(path, {"host": "h", "pid": 7, "argv0": "prog", "start_ns": 1_000})
    mno = w.add_machine("worker", "", [], ["A", "B"], {"A": {}, "B": {}}, {}, [], 1_000)
    for i in range(1, 3):
        w.transition(mno, i, 1_000 * i, 1_000 * i + 10, f"{i:016x}", 0x01, 0, [i % 2], i + 1,
                     i, 0, [i, 0], [i - 1, 0], None, None, None, {"n": str(i)}, None)
    w.flush()  # a complete block, closed by its check record
    w.transition(mno, 3, 3_000, 3_010, f"{3:016x}", 0x01, 0, [1], 4, 3, 0, [2, 1], [2, 0],
                 None, None, None, {"n": "9"}, None)
    w.close()
    data = bytearray(path.read_bytes()[:-32])  # the last check record never made it
    at = data.rindex(b"\xa19")  # msgpack: the 1-character string "9"
    data[at + 1] = ord("8")
    path.write_bytes(bytes(data))
    return path, 3


@pytest.fixture
def unverified(tmp_path: Path) -> tuple[Path, int]:
    """A torn recording with a changed byte in an unverified record (see `write_unverified`)."""
    return write_unverified(tmp_path / "torn.amrec")


@pytest.fixture
def session(orders: Path) -> Iterator[Session]:
    """The orders sample, opened as the TUI opens it."""
    with Session.open(orders) as s:
        yield s
