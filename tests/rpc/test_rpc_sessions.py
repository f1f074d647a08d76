"""Idempotent mutations are keyed by a server-issued session: no other peer can answer (poison)
a client's mutation ids, and a reconnecting client still gets its retries deduplicated."""

from __future__ import annotations

import asyncio

from helpers.machines import no_rels_schema
from helpers.rpc import frame, hello, new_source, raw_conn, read_frame, wait_until

import amnode.machine as am
from amnode.rpc import Client, Mux
from amnode.rpc.dedupe import MutationLog


def test_sessions_resume_only_for_their_owner() -> None:
    log = MutationLog()
    s1 = log.session("rc-a", 7)
    assert len(s1) >= 20
    assert log.session("rc-a", 7, s1) == s1, "resumed"
    assert log.session("rc-b", 7, s1) != s1, "another client id"
    assert log.session("rc-a", 8, s1) != s1, "another client instance"
    assert log.session("rc-a", 7, "made-up") not in (s1, "made-up")
    assert log.sessions == 4


def test_sessions_do_not_share_mutation_ids() -> None:
    log = MutationLog()
    s1, s2 = log.session("rc-a"), log.session("rc-a")
    log.begin((s1, 1))
    log.finish((s1, 1), am.EXECUTED)
    got: list[int] = []
    assert log.lookup((s1, 1), got.append) and got == [am.EXECUTED]
    assert not log.lookup((s2, 1), got.append), "another session's id 1 is a new mutation"
    assert log.replayed == 1


def test_the_log_is_bounded_per_session_and_in_sessions() -> None:
    log = MutationLog(capacity=3, max_sessions=2)
    s1 = log.session("rc-a")
    for mid in range(1, 6):
        log.begin((s1, mid))
        log.finish((s1, mid), am.EXECUTED)
    assert len(log) == 3
    assert not log.lookup((s1, 1), print) and log.lookup((s1, 5), lambda r: None)
    s2, s3 = log.session("rc-b"), log.session("rc-c")
    assert log.sessions == 2
    assert log.session("rc-a", 0, s1) != s1, "the least recently used session was forgotten"
    assert log.session("rc-c", 0, s3) == s3 and s2


def test_a_repeat_of_a_running_mutation_waits_for_it() -> None:
    log = MutationLog()
    s = log.session("rc-a")
    log.begin((s, 4))
    got: list[int] = []
    assert log.lookup((s, 4), got.append) and got == []
    log.finish((s, 4), am.CANCELED)
    assert got == [am.CANCELED]


async def test_a_peer_knowing_id_and_nonce_cannot_answer_for_a_victim() -> None:
    """The client id and nonce travel in clear in the Hello; a peer that learned them used to
    pre-answer the victim's next mutation ids (the victim got EXECUTED for mutations the source
    never ran). Now the log is keyed by the victim's session secret."""
    src = new_source(no_rels_schema())
    mux = Mux(src)
    await mux.start()
    victim = Client(mux.addr, id="victim", schema=src.schema)
    try:
        await victim.start()
        await victim.mach.when("Ready", timeout=30)
        reader, writer = await raw_conn(mux.addr)
        writer.write(frame([0, 1, 1, hello(id=victim.mach.id, n=victim._nonce)]))
        welcome = (await read_frame(reader, timeout=30))[3]
        writer.write(frame([0, 2, 2, None]))
        await read_frame(reader, timeout=30)
        for mid in range(1, 21):  # pre-answer the victim's next 20 ids with "Add A"
            writer.write(frame([0, 2 + mid, 3, [[1], mid]]))
            assert (await read_frame(reader, timeout=30))[3][0] == am.EXECUTED
        src.remove("A")
        mirror = victim.netmach
        assert mirror is not None
        for state in ["B", "C", "D"]:
            assert await mirror.add(state) == am.EXECUTED
        assert src.is_active(["B", "C", "D"]), "the victim's mutations ran"
        assert src.is_inactive("A")
        assert mux.mutation_log.replayed == 0
        assert welcome["sid"] != victim._session, "the attacker got a session of its own"
        writer.close()
    finally:
        await victim.stop(dispose=True)
        await mux.stop(dispose=True)


async def test_a_reconnecting_client_resumes_its_session() -> None:
    src = new_source(no_rels_schema())
    mux = Mux(src)
    await mux.start()
    client = Client(mux.addr, id="resumes", schema=src.schema, conn_retry_delay=0.01)
    try:
        await client.start()
        await client.mach.when("Ready", timeout=30)
        session = client._session
        assert session and mux.mutation_log.sessions == 1
        assert client.netmach is not None and await client.netmach.add("A") == am.EXECUTED
        connected = client.mach.tick("Connected")
        assert client.conn is not None
        client.conn.close("test: reconnect")
        await client.mach.when_time({"Connected": connected + 2}, timeout=30)
        await client.mach.when("Ready", timeout=30)
        assert client._session == session, "the same session after the reconnect"
        assert mux.mutation_log.sessions == 1
        # a retry of id 1 through the new connection is answered from the log, not run again
        runs: list[int] = []

        class Count:
            def AState(self, e: am.Event) -> None:
                runs.append(1)

        src.bind_handlers(Count())
        src.remove("A")
        conn = client.conn
        assert conn is not None
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        conn.call(3, [[1], 1], lambda err, body: done.set_result(body))
        assert (await asyncio.wait_for(done, 30))[0] == am.EXECUTED
        assert runs == [] and src.is_inactive("A")
        await wait_until(lambda: mux.mutation_log.replayed == 1)
    finally:
        await client.stop(dispose=True)
        await mux.stop(dispose=True)
