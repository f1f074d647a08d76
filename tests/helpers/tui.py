"""Shared helpers for the TUI's Pilot tests: wait on the app's state, read the address bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from amdbg.tui import ReplayApp
from amdbg.tui.widgets.header import AddressBar


async def settle(pilot: Any, until: Callable[[], object] | None = None,
                 timeout: float = 60.0) -> None:
    """Let the app process messages (and workers) until `until()` holds (the timeout only
    stops a test that would otherwise wait forever)."""
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while until is not None and not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await pilot.pause(0.02)


def header(app: ReplayApp) -> str:
    """The address bar's text."""
    return app.query_one(AddressBar).text.plain
