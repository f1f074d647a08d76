"""Real Go am-dbg exports open in amdbg like native recordings: the counts and transitions the
exports' README publishes, consistency of the others, and every verb on every export."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from helpers.goexports import BIG, CACHE, PREFIX_MACHINES, PUBLISHED, SAMPLES, export

from amdbg import cli
from amdbg.gob import Decoder
from amdbg.goexport import open_go_export, sniff
from amdbg.goexport.compress import decompress
from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui.widgets.header import AddressBar
from amdbg.tui.widgets.transition_list import TransitionList

SIZE = (160, 48)
#: transitions decoded at each end of a big export's machines outside its prefix
SAMPLED = 20

# (machine, parent, states, transitions, queued, canceled) as the exports' README lists them
NODE_PAYLOAD = [
    ("nw-TCWP-dev-5551c0", "", 30, 16, 16, 5),
    ("nb-TCWP-dev-201626-08d9bc9", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("nw-TCWP-dev-998626", "", 30, 16, 16, 5),
    ("nw-TCWP-dev-baf171", "", 30, 13, 13, 4),
    ("ns-TCWP-dev-201626-0", "", 38, 101, 102, 4),
    ("rs-nb-TCWP-dev-201626-0775509", "nb-TCWP-dev-201626-0775509", 16, 14, 14, 5),
    ("rs-nb-TCWP-dev-201626-0b2a7e2", "nb-TCWP-dev-201626-0b2a7e2", 16, 14, 14, 5),
    ("nb-TCWP-dev-201626-07109b3", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("rs-nb-TCWP-dev-201626-07109b3", "nb-TCWP-dev-201626-07109b3", 16, 14, 14, 5),
    ("nb-TCWP-dev-201626-05f978b", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("rs-nb-TCWP-dev-201626-05f978b", "nb-TCWP-dev-201626-05f978b", 16, 14, 14, 5),
    ("rs-nb-TCWP-dev-201626-08d9bc9", "nb-TCWP-dev-201626-08d9bc9", 16, 14, 14, 5),
    ("nb-TCWP-dev-201626-0b1e00d", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("nb-TCWP-dev-201626-0b2a7e2", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("nw-TCWP-dev-06abeb", "", 30, 16, 16, 5),
    ("nc-TCWP-cli-201626", "", 21, 26, 26, 11),
    ("rs-nb-TCWP-dev-201626-0a0eccd", "nb-TCWP-dev-201626-0a0eccd", 16, 14, 14, 5),
    ("nb-TCWP-dev-201626-0775509", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("nw-TCWP-dev-dc56e6", "", 30, 31, 31, 12),
    ("nb-TCWP-dev-201626-0a0eccd", "ns-TCWP-dev-201626-0", 11, 2, 2, 0),
    ("nw-TCWP-dev-17d650", "", 30, 16, 16, 5),
    ("rs-nb-TCWP-dev-201626-0b1e00d", "nb-TCWP-dev-201626-0b1e00d", 16, 14, 14, 5),
    ("nw-TCWP-dev-17816f", "", 30, 16, 16, 5),
]
WASM = [
    ("rm-repl-server-foo", "server-foo", 10, 3, 3, 0),
    ("rnm-browser-foo-8e3f", "rc-browser-foo-8e3f", 13, 3, 0, 0),
    ("relay-wasm-demo", "server-foo", 18, 9, 9, 0),
    ("rnm-server-bar", "rc-server-bar", 13, 2, 0, 0),
    ("browser-bar-8e3f", "", 13, 3, 3, 0),
    ("rc-browser-foo-8e3f", "browser-foo-8e3f", 28, 6, 6, 2),
    ("rs-server-foo", "server-foo", 22, 28, 28, 11),
    ("rc-server-bar", "server-foo", 28, 7, 7, 2),
    ("rs-repl-browser-bar-8e3f", "browser-bar-8e3f", 22, 10, 10, 5),
    ("rs-browser-bar-8e3f", "browser-bar-8e3f", 22, 15, 15, 6),
    ("browser-foo-8e3f", "browser-bar-8e3f", 13, 2, 2, 0),
    ("relay-wasm-demo-wtt-1", "relay-wasm-demo", 16, 3, 3, 0),
    ("server-foo", "", 13, 9, 9, 0),
]
SIM_LARGEST = [
    ("ps-4-disc", "", 11, 237, 0, 1),
    ("ps-9-disc", "", 11, 237, 0, 1),
    ("ps-10-disc", "", 11, 230, 0, 0),
    ("sim", "", 15, 219, 0, 67),
    ("ps-23-disc", "", 11, 215, 0, 0),
]
# (machine, [(id, called, accepted, auto, active after)]) for its first 6 transitions
SPOT = {
    "node-payload.gob.br": ("ns-TCWP-dev-201626-0", [
        ("86e5011895018ed7784947e485e93bfd", ["Start"], True, False,
         ["PoolStarting", "NormalizingPool", "Start"]),
        ("45daa67a02d91de636f2f857ec8d6adf", ["ListWorkers"], True, False,
         ["PoolStarting", "NormalizingPool", "ListWorkers", "Start"]),
        ("51130b8a4d1d4c808c854b8c4458ba5b", ["ListWorkers"], True, False,
         ["PoolStarting", "NormalizingPool", "Start"]),
        ("e46abb5518a682fd627ff815b5cdd72f", ["LocalRpcReady"], True, False,
         ["LocalRpcReady", "PoolStarting", "NormalizingPool", "Start"]),
        ("39cf6ed82b017ca768719e4f922555c2", ["ForkWorker"], True, False,
         ["LocalRpcReady", "PoolStarting", "NormalizingPool", "ForkWorker", "Start"]),
        ("83716fd571184563d93cf98cd6d21014", ["ForkWorker"], True, False,
         ["LocalRpcReady", "PoolStarting", "NormalizingPool", "Start"]),
    ]),
    "wasm.gob.br": ("rs-server-foo", [
        ("79119ae5d82e615f8fbc412c5c40444e", ["Start"], True, False, ["RpcStarting", "Start"]),
        ("b7759bd854169cbdc676f39717b45782", ["Ready"], False, True, ["RpcStarting", "Start"]),
        ("de49f182d39ca8e211535173bd8b1ef3", ["RpcAccepting"], True, False,
         ["RpcAccepting", "Start"]),
        ("11ff52543beb9ea05aa2b026abd6d1ac", ["Ready"], False, True,
         ["RpcAccepting", "Start"]),
        ("6002917e2335ebc19d38c78e0d3ae04d", ["RpcReady"], True, False, ["RpcReady", "Start"]),
        ("45d362d643b0ce24d84b42f24c5f0e63", ["Ready"], False, True, ["RpcReady", "Start"]),
    ]),
    "am-dbg-sim-7b90a9e.gob.br": ("ps-4-disc", [
        ("61cc8a950dd4e2f7033f1952e4dc9e6c", ["Start"], True, False, ["Start", "PoolTimer"]),
        ("dd1b44e7c428e2ba672c1310b9e0f253", ["RefreshingDiscoveries"], True, False,
         ["Start", "PoolTimer", "RefreshingDiscoveries"]),
        ("938e46b8ce4df576a243a60a2a30a11a", ["RefreshingDiscoveries"], True, False,
         ["Start", "PoolTimer"]),
        ("4d272cc2835698a0d2265ad815ce945d", ["DiscoveringTopic"], True, False,
         ["Start", "PoolTimer", "DiscoveringTopic"]),
        ("fa29376ae82045203c5a1ffe312b2003", ["AdvertisingTopic"], True, False,
         ["Start", "PoolTimer", "DiscoveringTopic", "AdvertisingTopic"]),
        ("643b65fd7d2bcf1b90e2834d8d02eeb3", ["DiscoveringTopic"], True, False,
         ["Start", "PoolTimer", "AdvertisingTopic"]),
    ]),
}


@pytest.fixture(autouse=True)
def go_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test converts into the run's shared cache (each export converted once)."""
    monkeypatch.setenv("AMDBG_CACHE_DIR", CACHE)


def opened(name: str) -> Session:
    return Session.open(export(name))


def row(s: Session, key: str) -> tuple[str, str, int, int, int, int]:
    m = s.recording.machine(key)
    canceled = sum(not m.summary(n).accepted for n in range(1, len(m) + 1))
    return (m.id, m.parent, len(m.state_names), len(m), m.queued_count, canceled)


# ---------------------------------------------------------------------- published counts


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_the_published_ones(name: str) -> None:
    machines, transitions, queued = PUBLISHED[name]
    with opened(name) as s:
        assert len(s.machines) == machines
        assert s.recording.transition_count == transitions
        assert sum(m.queued_count for m in s.machines) == queued
        assert not s.damaged
        # wasm's REPL machine has groups naming states outside its index: one warning
        assert len(s.warnings) == (1 if name == "wasm.gob.br" else 0)


@pytest.mark.parametrize(("name", "table"), [("node-payload.gob.br", NODE_PAYLOAD),
                                             ("wasm.gob.br", WASM),
                                             ("am-dbg-sim-7b90a9e.gob.br", SIM_LARGEST)])
def test_machine_tables_match_the_published_ones(name: str, table: list[tuple]) -> None:
    with opened(name) as s:
        assert [row(s, r[0]) for r in table] == table
        if name == "am-dbg-sim-7b90a9e.gob.br":  # the five largest, as published
            sizes = sorted((len(m) for m in s.machines), reverse=True)[:5]
            assert sizes == [r[3] for r in SIM_LARGEST]


@pytest.mark.parametrize("name", sorted(SPOT))
def test_spot_checked_transitions(name: str) -> None:
    machine, expected = SPOT[name]
    with opened(name) as s:
        m = s.select_machine(machine)
        got = []
        for n in range(1, 7):
            tx = m.transition(n)
            got.append((tx.id, tx.called, tx.accepted, tx.is_auto, tx.states_after))
            assert tx.url == f"mach://{machine}/{tx.id}"
        # active after = odd ticks, in StatesIndex order: compare as sets, order by index
        assert [(i, c, a, au, sorted(act)) for i, c, a, au, act in got] == \
            [(i, c, a, au, sorted(act)) for i, c, a, au, act in expected]


def test_a_go_users_selection_opens_where_they_expect(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    started = []
    monkeypatch.setenv("AMDBG_FORCE_TUI", "1")
    monkeypatch.setattr(ReplayApp, "run", lambda self: started.append(self._startup))
    status = cli.main(["replay", str(export("node-payload.gob.br")), "--select-machine",
                       "ns-TCWP-dev-201626-0", "--select-transition", "1"])
    assert status == 0, capsys.readouterr().err
    assert started == [("ns-TCWP-dev-201626-0", 1, None)]
    status = cli.main(["show", str(export("node-payload.gob.br")),
                       "mach://ns-TCWP-dev-201626-0/45daa67a02d91de636f2f857ec8d6adf", "--json"])
    out = capsys.readouterr().out
    assert status == 0 and json.loads(out)["number"] == 2


# ---------------------------------------------------------------------- every export


def stream_summary(name: str) -> tuple[int, dict[str, tuple[int, int, list[str]]]]:
    """Read from the export's stream itself: how many machines it holds, and (states, queued
    count, ids of the other transitions) per machine, for every machine of a small export and
    the first `PREFIX_MACHINES` of a big one (decoding all of one costs tens of seconds, and
    its conversion, opened below, reads all of it anyway)."""
    data = decompress(export(name).read_bytes())
    assert data.problem == ""
    dec = Decoder(data.data)
    limit = PREFIX_MACHINES if name in BIG else None
    expected = {}
    for item in itertools.islice(dec.elements(), limit):
        txs = item.get("MsgTxs", [])
        queued = [tx for tx in txs if tx.get("IsQueued")]
        done = [tx for tx in txs if not tx.get("IsQueued")]
        expected[item["MsgStruct"]["ID"]] = (
            len(item["MsgStruct"].get("StatesIndex", [])), len(queued),
            [tx.get("ID", "") for tx in done])
    if limit is None:
        assert len(expected) == dec.count
    return dec.count, expected


@pytest.mark.parametrize("name", SAMPLES)
def test_every_export_converts_consistently(name: str) -> None:
    """Records match the stream, clocks index the schema, parents exist, ids are kept: every
    transition of every machine the stream was read for (all of a small export, a big one's
    prefix); the first and last `SAMPLED` of the other machines of a big one."""
    assert sniff(export(name)) == "gob.br"
    count, expected = stream_summary(name)
    with opened(name) as s:
        assert not s.damaged
        assert len(s.machines) == count
        # parents the stream names (beyond a big export's prefix: those the session holds)
        parents = set(expected) | ({m.id for m in s.machines} if name in BIG else set())
        got = {}
        for m in s.machines:
            n = len(m)
            read = m.id in expected  # the index holds every record, numbered in file order
            numbers = range(1, n + 1) if read else \
                sorted({*range(1, min(n, SAMPLED) + 1), *range(max(1, n - SAMPLED + 1), n + 1)})
            txs = [m.transition(i) for i in numbers]
            if read:
                got[m.id] = (len(m.state_names), m.queued_count, [tx.id for tx in txs])
            assert all(len(tx.time_after) == len(tx.time_before) == len(m.state_names)
                       for tx in txs)
            if m.parent in parents:
                assert s.parent(m) is not None
        assert got == expected


@pytest.mark.parametrize("name", SAMPLES)
def test_every_verb_opens_every_export(name: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = str(export(name))
    with opened(name) as s:
        m = max(s.machines, key=len)
        key = m.key
        machines, transitions = len(s.machines), s.recording.transition_count
    verbs = [["ls", path], ["ls", path, "--json"], ["show", path, "-m", key, "-t", "1"],
             ["show", path, "-m", key, "-t", "-1", "--json"], ["log", path, "-m", key],
             ["log", path, "-m", key, "--canceled", "--json"],
             ["graph", path, "-m", key, "-t", "1"], ["graph", path, "--network"]]
    if name in BIG:
        # the network decodes every record for its links: on am-dbg-sim-d05a3da's 84,577 that
        # is most of this test's time, and proves nothing am-dbg-sim-7b90a9e's 107 machines
        # and 7,605 records do not (a linear scan; `--network` is run on every small export)
        verbs.remove(["graph", path, "--network"])
    for argv in verbs:
        status = cli.main(argv)
        out, err = capsys.readouterr()
        assert status == 0, (argv, err)
        assert out and "error" not in err
    packed = tmp_path / "out.amrec"
    assert cli.main(["pack", path, str(packed)]) == 0
    assert f"{machines} machines, {transitions} transitions" in capsys.readouterr().out
    with Session.open(packed) as p:
        assert (len(p.machines), p.recording.transition_count) == (machines, transitions)


@pytest.mark.parametrize("name", SAMPLES)
async def test_replay_shows_an_export(name: str) -> None:
    with opened(name) as s:
        m = max(s.machines, key=len)
        app = ReplayApp(s, machine=m.key, number=2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            tl = app.query_one(TransitionList)
            while tl.current != 2:
                await pilot.pause(0.02)
            assert m.transition(2).url in app.query_one(AddressBar).text.plain
            await pilot.press("right")
            while app.number != 3:
                await pilot.pause(0.02)
            assert m.transition(3).url in app.query_one(AddressBar).text.plain


def test_a_second_open_uses_the_cached_conversion() -> None:
    first = open_go_export(export("wasm.gob.br"))
    again = open_go_export(export("wasm.gob.br"))
    assert first is not None and again is not None
    assert again.cached and again.path == first.path
    assert (again.machines, again.transitions, again.queued) == (13, 100, 95)
