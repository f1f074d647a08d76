"""aRPC test configuration: machines made during a test get a generous handler timeout.

The machine's default `handler_timeout` (0.1 s) is for production; in tests a GC pause or a
loaded machine could trip it in any handler of a server, client or mirror and cancel a
transition the test does not look at. Tests of handler timeouts set their own value.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import amnode.machine as am

#: handler timeout of machines made in aRPC tests (unless a test sets its own)
TEST_HANDLER_TIMEOUT = 30.0
_DEFAULT = 0.1


def _generous(m: am.Machine) -> None:
    if m.handler_timeout == _DEFAULT:
        m.handler_timeout = TEST_HANDLER_TIMEOUT


@pytest.fixture(autouse=True)
def generous_handler_timeout() -> Iterator[None]:
    am.MACHINE_INIT_HOOKS.append(_generous)
    try:
        yield
    finally:
        am.MACHINE_INIT_HOOKS.remove(_generous)
