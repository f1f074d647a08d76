"""The seams between mirrors, clients and local machines, as types: a type checker tells a
mirror (awaitable mutations) from a local machine (results at once)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from helpers.machines import no_rels_schema
from helpers.rpc import new_source, rpc_pair
from mypy import api

import amnode.machine as am
from amnode.machine.protocols import LocalMachine, ReadOnlyMachine, RemoteMachine

SNIPPET = '''
import amnode.machine as am
from amnode.machine.protocols import LocalMachine, ReadOnlyMachine, RemoteMachine
from amnode.rpc import Client, NetworkMachine
from amnode.rpc.netmach import MutationSender


def local_only(m: LocalMachine) -> int:
    return m.add("A")


def remote_only(m: RemoteMachine) -> None:
    pass


def reader(m: ReadOnlyMachine) -> bool:
    return m.is_active("A") and m.tick("A") > 0


async def fine(nm: NetworkMachine, m: am.Machine, c: Client) -> None:
    reader(nm)
    reader(m)
    local_only(m)
    remote_only(nm)
    sender: MutationSender = c
    result: int = await nm.add("A")
    now: int = m.add("A")


async def mixed_up(nm: NetworkMachine, m: am.Machine) -> None:
    local_only(nm)  # error: a mirror is not a LocalMachine
    remote_only(m)  # error: a local machine is not a RemoteMachine
    result: int = nm.add("A")  # error: a mirror returns an awaitable
    await m.add("A")  # error: a local result is not awaitable
'''


def test_a_type_checker_tells_mirrors_from_local_machines(tmp_path: Path) -> None:
    path = tmp_path / "seams.py"
    path.write_text(textwrap.dedent(SNIPPET))
    out, err, _ = api.run([str(path), "--cache-dir", str(tmp_path / "cache"),
                           "--no-error-summary", "--follow-imports=silent",
                           "--python-version", "3.11", "--hide-error-context"])
    errors = {int(m.group(1)) for m in re.finditer(r"seams\.py:(\d+): error", out)}
    lines = path.read_text().splitlines()
    expected = {i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(
        ("not a LocalMachine", "not a RemoteMachine", "returns an awaitable", "not awaitable"))}
    assert len(expected) == 4
    assert errors == expected, out + err


async def test_machines_and_mirrors_satisfy_their_protocols() -> None:
    local = am.Machine({"A": am.State()}, id="local-proto")
    assert isinstance(local, ReadOnlyMachine) and isinstance(local, LocalMachine)
    assert not isinstance(local, RemoteMachine), "no add_ns: a local machine is not remote"
    async with rpc_pair(new_source(no_rels_schema())) as t:
        assert isinstance(t.nm, ReadOnlyMachine) and isinstance(t.nm, RemoteMachine)
        # the seam the mirror sends through (states as source indexes: A=1, B=2)
        calls = t.client.call_count
        fut = t.client.send_mutation(3, [1], None, None)
        assert fut is not None and await fut == am.EXECUTED
        assert t.client.notify_mutation(4, [2], None, None)
        assert t.client.call_count == calls + 2
        await t.client.sync()
        assert t.source.is_active(["A", "B"])
        await t.client.stop()
        assert t.client.send_mutation(3, [1], None, None) is None, "not Ready: nothing sent"
        assert not t.client.notify_mutation(4, [1], None, None)
