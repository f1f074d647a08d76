"""Access control: a server's `mutable_states` allowlist. Every other remote mutation is refused
with NoAccessError naming the state, logged on the server; nothing else is affected."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers.machines import no_rels_schema
from helpers.rpc import frame, hello, new_source, raw_conn, read_frame, rpc_pair

import amnode.machine as am
from amnode.rpc import Client, Mux, NoAccessError

MUTABLE = ["A", "B"]
# wire method ids (docs/arpc-protocol.md, 4. Methods) and source indexes of the states
ADD, ADD_NS, REMOVE, SET, REMOVE_NS, SET_NS = 3, 4, 5, 6, 11, 12
IDX = {"A": 1, "B": 2, "C": 3, "D": 4}


@pytest.fixture
def rpc_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="amnode.rpc")
    return caplog


def refusals(log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in log.records if "refused" in r.getMessage()]


async def test_the_mirror_refuses_locally_for_every_method() -> None:
    """The Welcome tells the client its mutable states: a mirror refuses the rest at once,
    sending nothing."""
    src = new_source(no_rels_schema(), ["D"])
    async with rpc_pair(src, server_kw={"mutable_states": MUTABLE}) as t:
        nm = t.nm
        assert nm.mutable_states == frozenset(MUTABLE)
        calls = t.client.call_count
        for call in (lambda: nm.add("C"), lambda: nm.add(["A", "C"]), lambda: nm.remove("D"),
                     lambda: nm.set("A"), lambda: nm.toggle("D"), lambda: nm.add_ns("C"),
                     lambda: nm.remove_ns("D"), lambda: nm.set_ns(["A", "B"]),
                     lambda: nm.add_err(ValueError("x"))):
            with pytest.raises(NoAccessError) as info:
                call()
            assert "may not" in str(info.value)
        with pytest.raises(NoAccessError, match="may not add C"):
            nm.add("C")
        assert t.client.call_count == calls, "nothing was sent"
        assert nm.err is None, "a refused add_err keeps nothing"
        assert await nm.add(["A", "B"]) == am.EXECUTED
        assert await nm.remove("A") == am.EXECUTED
        assert nm.add_ns("A") == am.EXECUTED
        await t.client.sync()
        assert src.is_active(["A", "B", "D"])


@pytest.mark.parametrize("method", [ADD, REMOVE, SET])
async def test_calls_outside_the_allowlist_are_refused_over_the_wire(
        method: int, rpc_log: pytest.LogCaptureFixture) -> None:
    """A client that ignores the Welcome (hand-written frames) gets `no_access` (4) naming the
    state; the connection, the source and later allowed mutations are unaffected."""
    src = new_source(no_rels_schema(), ["D"])
    mux = Mux(src, mutable_states=MUTABLE)
    await mux.start()
    try:
        reader, writer = await raw_conn(mux.addr)
        writer.write(frame([0, 1, 1, hello()]))
        welcome = (await read_frame(reader, timeout=30))[3]
        assert welcome["mu"] == MUTABLE
        writer.write(frame([0, 2, 2, None]))
        await read_frame(reader, timeout=30)
        states = ["A"] if method == SET else ["C", "D"][: 1 + (method == REMOVE)]
        writer.write(frame([0, 3, method, [[IDX[s] for s in states], 1]]))
        resp = await read_frame(reader, timeout=30)
        assert resp[:2] == [1, 3] and resp[2][0] == 4, resp
        named = "C" if method != REMOVE else "D"
        assert named in resp[2][1] and "may not" in resp[2][1]
        assert src.is_active("D") and src.is_inactive(["A", "C"]), "nothing ran"
        assert any("rc-raw" in m and named in m for m in refusals(rpc_log)), "logged"
        writer.write(frame([0, 4, ADD, [[IDX["A"]], 2]]))  # the connection still works
        assert (await read_frame(reader, timeout=30))[3][0] == am.EXECUTED
        assert src.is_active("A")
        writer.close()
    finally:
        await mux.stop(dispose=True)


@pytest.mark.parametrize("method", [ADD_NS, REMOVE_NS, SET_NS])
async def test_notifications_outside_the_allowlist_are_dropped_and_logged(
        method: int, rpc_log: pytest.LogCaptureFixture) -> None:
    src = new_source(no_rels_schema(), ["D"])
    mux = Mux(src, mutable_states=MUTABLE)
    await mux.start()
    try:
        reader, writer = await raw_conn(mux.addr)
        writer.write(frame([0, 1, 1, hello()]))
        await read_frame(reader, timeout=30)
        writer.write(frame([0, 2, 2, None]))
        await read_frame(reader, timeout=30)
        states = ["A"] if method == SET_NS else ["C"] if method == ADD_NS else ["D"]
        writer.write(frame([2, method, [[IDX[s] for s in states], 0]]))
        writer.write(frame([0, 3, 7, None]))  # Sync: runs after the notification
        resp = await read_frame(reader, timeout=30)
        assert resp[:2] == [1, 3] and resp[2] is None
        assert src.is_active("D") and src.is_inactive(["A", "C"]), "nothing ran"
        assert len(refusals(rpc_log)) == 1 and "_NS" in refusals(rpc_log)[0]
        writer.close()
    finally:
        await mux.stop(dispose=True)


async def test_a_client_that_skips_the_check_gets_the_servers_error(
        rpc_log: pytest.LogCaptureFixture) -> None:
    """The server enforces the allowlist whatever the client believes: an awaited mutation
    raises the server's NoAccessError, a no-reply one is dropped."""
    src = new_source(no_rels_schema())
    async with rpc_pair(src, server_kw={"mutable_states": MUTABLE}) as t:
        t.nm.mutable_states = None  # as an outdated or hostile client would
        with pytest.raises(NoAccessError, match="may not add C"):
            await t.nm.add("C")
        with pytest.raises(NoAccessError, match="may not remove D"):
            await t.nm.remove("D")
        with pytest.raises(NoAccessError, match="may not set"):
            await t.nm.set("A")
        assert t.nm.add_ns("C") == am.EXECUTED  # sent; the server drops it
        await t.client.sync()
        assert src.is_inactive(["A", "C"])
        assert len(refusals(rpc_log)) == 4
        assert await t.nm.add("A") == am.EXECUTED
        assert t.client.mach.is_active("Ready")


async def test_mux_clients_get_the_allowlist_and_without_it_all_is_allowed() -> None:
    src = new_source(no_rels_schema())
    restricted = Mux(src, mutable_states=["A"])
    await restricted.start()
    open_mux = Mux(src)
    await open_mux.start()
    clients = [Client(m.addr, id=f"c{i}", schema=src.schema)
               for i, m in enumerate((restricted, open_mux))]
    try:
        for c in clients:
            await c.start()
            await c.mach.when("Ready", timeout=30)
        nm0, nm1 = (c.netmach for c in clients)
        assert nm0 is not None and nm1 is not None
        assert nm0.mutable_states == {"A"} and nm1.mutable_states is None
        with pytest.raises(NoAccessError):
            nm0.add("B")
        assert await nm1.set(["B", "C"]) == am.EXECUTED
        assert await nm0.add("A") == am.EXECUTED
        assert src.is_active(["A", "B", "C"])
    finally:
        for c in clients:
            await c.stop(dispose=True)
        await restricted.stop(dispose=True)
        await open_mux.stop(dispose=True)


async def test_set_is_allowed_when_every_state_is_mutable() -> None:
    src = new_source(no_rels_schema(), ["D"])
    every: list[Any] = src.state_names
    async with rpc_pair(src, server_kw={"mutable_states": every}) as t:
        assert await t.nm.set(["A", "B"]) == am.EXECUTED
        assert set(src.active_states()) == {"A", "B"}
