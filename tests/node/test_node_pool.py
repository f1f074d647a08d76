"""Pool bookkeeping without sockets: the normalisation arithmetic, crash-loop backoff per slot,
error budgets over a fake clock, pool sizes and timeouts; ids and the schema checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import amnode as am
from amnode import node
from amnode.node.naming import client_name, host_name, supervisor_name, worker_name
from amnode.node.pool import Pool, PoolEntry
from amnode.rpc import RetryPolicy
from amnode.states import node as ssnode


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Mirror:
    """Stands in for a worker's aRPC mirror and link."""

    def __init__(self, *active: str) -> None:
        self.active = set(active)

    def is_active(self, states: Any) -> bool:
        names = [states] if isinstance(states, str) else states
        return all(n in self.active for n in names)


def linked(entry: PoolEntry, *states: str) -> PoolEntry:
    """Make an entry look connected and showing `states` (default: Ready and Idle)."""
    mirror = Mirror(*(states or (ssnode.READY, ssnode.IDLE)))
    entry.rpc = SimpleNamespace(netmach=mirror, mach=Mirror(ssnode.READY))
    entry.was_ready = True
    return entry


def new_pool(min: int = 2, max: int = 10, warm: int = 5, **kw: Any) -> tuple[Pool, Clock]:
    clock = Clock()
    backoff = kw.pop("backoff", RetryPolicy(first_delay=1.0, factor=2.0, max_delay=8.0,
                                            max_tries=0, timeout=None, jitter=0.0))
    pool = Pool(node.PoolConfig(min, max, warm, **kw), node.ErrorPolicy(), backoff, 10.0,
                clock)
    return pool, clock


def test_pool_config() -> None:
    assert node.PoolConfig().target() == 7  # Go defaults: min 2 + warm 5
    assert node.PoolConfig(2, 5, 2).target() == 4
    assert node.PoolConfig(7, 15, 0).target() == 7
    assert node.PoolConfig(2, 1, 5).min == 1  # min is lowered to max
    assert node.PoolConfig(1, 1, 0, 0).max_client_workers == 1  # 0 means max
    assert node.PoolConfig(2, 10, 2).target(wanted=6) == 8  # warm spares on top of leases
    assert node.PoolConfig(2, 10, 2).target(wanted=20) == 10  # never above max
    with pytest.raises(ValueError):
        node.PoolConfig(max=0)
    with pytest.raises(ValueError):
        node.PoolConfig(warm=-1)


def test_plan_counts_in_flight_forks_and_never_exceeds_max() -> None:
    pool, _ = new_pool(2, 5, 2)
    plan = pool.plan()
    assert plan.fork == [0, 1, 2, 3] and plan.target == 4
    for slot in plan.fork:
        pool.new_entry(slot)  # in flight: nothing connected yet
    assert pool.plan().fork == []  # B9: in-flight forks count
    assert not pool.normalized()
    for e in pool.entries.values():
        linked(e)
    assert pool.normalized() and pool.ready_count() == 4 and len(pool.idle()) == 4
    # leases eat into the spares: the pool grows, up to max
    for e in list(pool.entries.values())[:3]:
        e.lease = ("conn", f"c{e.key}")
    plan = pool.plan()
    assert plan.target == 5 and plan.fork == [4]
    pool.new_entry(4)
    for e in pool.entries.values():
        e.lease = ("conn", f"c{e.key}")
    assert pool.plan().fork == []  # at max


def test_waiting_clients_count_until_served_or_expired() -> None:
    pool, clock = new_pool(1, 3, 0)
    linked(pool.new_entry(0)).lease = ("conn", "c1")
    assert pool.plan().fork == []
    pool.want("c2", clock.now + 10)
    assert pool.target() == 2 and pool.plan().fork == [1]
    pool.served("c2")
    assert pool.target() == 1
    pool.want("c3", clock.now + 10)
    clock.now += 10
    assert pool.demand() == 0 and pool.target() == 1


def test_plan_retires_idle_spares_above_the_target() -> None:
    pool, clock = new_pool(1, 5, 0)
    entries = [linked(pool.new_entry(s)) for s in range(3)]
    entries[0].lease = ("conn", "c")
    clock.now += 1
    plan = pool.plan()
    assert plan.target == 1 and plan.fork == []
    assert sorted(plan.retire) == sorted([entries[1].key, entries[2].key])


def test_crash_backoff_is_per_slot_and_never_skips_to_another_slot() -> None:
    pool, clock = new_pool(1, 4, 0)
    e = pool.new_entry(pool.plan().fork[0])
    assert e.slot == 0
    pool.remove(e.key)  # crashed before it was ready
    assert pool.backoff_tries(0) == 1 and pool.slot_delay(0) == 1.0
    plan = pool.plan()
    assert plan.fork == [] and plan.wake_at == clock.now + 1.0  # waits; slot 1 is not used
    clock.now += 1.0
    e = pool.new_entry(pool.plan().fork[0])
    assert e.slot == 0
    pool.remove(e.key)
    assert pool.slot_delay(0) == 2.0  # doubled
    clock.now += 2.0
    e = pool.new_entry(pool.plan().fork[0])
    e.was_ready = True
    clock.now += 60  # a worker that lived past the crash window resets the slot
    pool.remove(e.key)
    assert pool.backoff_tries(0) == 0 and pool.slot_delay(0) == 0
    e = pool.new_entry(0)
    e.deliberate = True  # killed on purpose (shrink, operator): no backoff
    pool.remove(e.key)
    assert pool.slot_delay(0) == 0


def test_error_budget_and_recent_errors() -> None:
    pool, clock = new_pool()
    e = linked(pool.new_entry(0))
    assert e.is_idle()
    for _ in range(3):
        e.errors.add()
    assert not e.errors.over_budget
    assert not e.is_ready()  # a recent error hides it
    clock.now += 61
    assert e.is_ready() and e.errors.count() == 3
    e.errors.add()
    assert e.errors.over_budget  # the 4th within the TTL
    clock.now += 601
    assert e.errors.count() == 0


def test_filters() -> None:
    pool, _ = new_pool()
    idle = linked(pool.new_entry(0))
    busy = linked(pool.new_entry(1), ssnode.READY, ssnode.WORKING)
    leased = linked(pool.new_entry(2))
    leased.lease = ("conn", "rc-x")
    initing = pool.new_entry(3)
    assert [e.key for e in pool.select("idle")] == [idle.key]
    assert {e.key for e in pool.select("busy")} == {busy.key, leased.key}
    assert [e.key for e in pool.select("leased")] == [leased.key]
    assert [e.key for e in pool.select("initing")] == [initing.key]
    assert len(pool.select("")) == 4 and pool.ready_count() == 3
    assert [idle.state(), busy.state(), leased.state(), initing.state()] == [
        "idle", "busy", "leased", "initing"]
    with pytest.raises(ValueError):
        pool.select("nope")


def test_timeouts_debug_multiplier_applies_once(monkeypatch: pytest.MonkeyPatch) -> None:
    t = node.NodeTimeouts()
    assert t.resolve() is t
    monkeypatch.setenv("AMNODE_DEBUG", "1")
    once = t.resolve()
    assert once.connect == t.connect * 10 and once.multiplier == 10
    assert once.crash_backoff.first_delay == t.crash_backoff.first_delay * 10
    assert once.resolve() is once  # never twice


def test_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMNODE_HOSTNAME", "box/with space and a long name")
    assert host_name() == "box-with-space-"
    assert supervisor_name("sq", 3).startswith("sq-box-with-space--")
    assert supervisor_name("sq", 3).endswith("-3")
    assert worker_name("sq").startswith("sq-box-with-space--")
    assert client_name("sq", "cli").startswith("sq-cli-")


def test_schemas_are_checked() -> None:
    bad = am.schema_merge(ssnode.WorkerSchema)
    del bad[ssnode.SERVE_CLIENT]
    with pytest.raises(am.SchemaError, match="ServeClient"):
        node.Worker("k", bad)
    with pytest.raises(am.SchemaError, match="ServeClient"):
        node.Supervisor("k", ["true"], bad)
    with pytest.raises(am.SchemaError, match="ServeClient"):
        node.Client("c", "k", bad)
    with pytest.raises(am.SchemaError, match="SuperReady"):
        node.Client("c", "k", ssnode.WorkerSchema, schema={"Foo": am.State()})
    with pytest.raises(ValueError, match="worker_cmd"):
        node.Supervisor("k", [], ssnode.WorkerSchema)
    # a user schema extending the node schemas works, user states after the node ones
    w = node.Worker("k", am.schema_merge(ssnode.WorkerSchema, {"Foo": am.State()}))
    assert w.mach.state_names[-1] == "Foo"
    assert w.mach.tags[:2] == ["node-worker", "kind:k"]
    w.dispose()


def test_one_args_type_per_message_on_the_wire() -> None:
    """B1: the args a peer receives are the very type the sender passed."""
    from amnode.rpc import Codec

    codec = Codec()
    for value in (node.ProvideWorkerArgs("rc-x", 3), node.WorkerLease("nw-1", "h:1", 3, "k"),
                  node.LeaseRefused("no", False, 3), node.ServeClientArgs("rc-x"),
                  node.WorkerAddrArgs("nw-1", "h:1", "h:2", 7), node.WorkerGone("nw-1", "x")):
        back = codec.unpack(codec.pack({node.ARG: value}))
        assert back == {node.ARG: value} and type(back[node.ARG]) is type(value)
