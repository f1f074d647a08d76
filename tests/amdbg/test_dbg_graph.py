"""Tests for amdbg.graph: schema/network graphs and their DOT, Mermaid, JSON and text exports."""

from __future__ import annotations

import json
import re

import networkx as nx
import pytest

from amdbg.graph import (
    from_json,
    layers,
    machine_graph,
    network_graph,
    to_dot,
    to_json,
    to_mermaid,
    to_text,
)

SCHEMA = {
    "A": {"auto": True, "require": ["C"]},
    "B": {"multi": True, "add": ["C"]},
    "C": {"after": ["D"]},
    "D": {"add": ["C", "B"]},
    "Exception": {"multi": True},
}
NAMES = ["A", "B", "C", "D", "Exception"]
EDGES = {
    ("A", "require", "C"),
    ("B", "add", "C"),
    ("C", "after", "D"),
    ("D", "add", "C"),
    ("D", "add", "B"),
}


@pytest.fixture
def g() -> nx.DiGraph:
    """The reference schema graph with some states marked."""
    return machine_graph(SCHEMA, NAMES, active=["A"], touched=["B", "C"], called=["B"])


def edge_triples(graph: nx.DiGraph) -> set[tuple[str, str, str]]:
    """All (source, relation, target) triples of a graph."""
    return {(u, rel, v) for u, v, d in graph.edges(data=True) for rel in d["relations"]}


# --- machine_graph -----------------------------------------------------------


def test_nodes_and_attributes(g: nx.DiGraph) -> None:
    assert list(g.nodes) == NAMES
    assert g.nodes["A"] == {
        "auto": True,
        "multi": False,
        "tags": [],
        "index": 0,
        "active": True,
        "touched": False,
        "called": False,
    }
    assert g.nodes["B"]["multi"] and g.nodes["B"]["touched"] and g.nodes["B"]["called"]
    assert not g.nodes["B"]["auto"] and not g.nodes["B"]["active"]
    assert g.nodes["C"]["touched"] and not g.nodes["C"]["called"]
    assert g.nodes["Exception"]["multi"]
    assert [g.nodes[n]["index"] for n in NAMES] == list(range(5))


def test_edges_and_attributes(g: nx.DiGraph) -> None:
    assert edge_triples(g) == EDGES
    assert g.number_of_edges() == 5
    assert g.edges["A", "C"] == {"relation": "require", "relations": ["require"]}
    assert g.edges["C", "D"]["relation"] == "after"
    assert g.edges["D", "B"]["relation"] == "add"


def test_node_order_follows_state_names_not_schema_order() -> None:
    reordered = dict(reversed(list(SCHEMA.items())))
    g1 = machine_graph(reordered, NAMES)
    g2 = machine_graph(SCHEMA, NAMES)
    assert list(g1.nodes) == list(g2.nodes) == NAMES
    assert list(g1.edges) == list(g2.edges)
    assert to_text(g1) == to_text(g2)


def test_extra_schema_states_and_missing_schema_entries() -> None:
    g = machine_graph({"Z": {"tags": ["x"]}, "Y": {}, "A": {"require": ["Y"]}}, ["A", "Ready"])
    assert list(g.nodes) == ["A", "Ready", "Y", "Z"]
    assert g.nodes["Ready"]["auto"] is False and g.nodes["Ready"]["tags"] == []
    assert g.nodes["Z"]["tags"] == ["x"]
    assert g.nodes["Z"]["index"] == 3


def test_pair_with_two_relations() -> None:
    g = machine_graph({"A": {"after": ["B"], "require": ["B"]}, "B": {}}, ["A", "B"])
    assert g.number_of_edges() == 1
    assert g.edges["A", "B"]["relations"] == ["require", "after"]
    assert g.edges["A", "B"]["relation"] == "require"
    text = to_text(g)
    assert "A --require--> B" in text and "A --after--> B" in text
    dot = to_dot(g)
    assert dot.count('"A" -> "B"') == 2


def test_unknown_targets_skipped() -> None:
    g = machine_graph({"A": {"require": ["Nope", "B"], "remove": ["Ghost"]}, "B": {}}, ["A", "B"])
    assert set(g.nodes) == {"A", "B"}
    assert edge_triples(g) == {("A", "require", "B")}


def test_remove_relation_and_missing_keys() -> None:
    g = machine_graph({"A": {"remove": ["B"]}, "B": {"auto": None}}, ["A", "B"])
    assert g.edges["A", "B"]["relation"] == "remove"
    assert g.nodes["B"]["auto"] is False


# --- layers / text -------------------------------------------------------------


def test_layers(g: nx.DiGraph) -> None:
    assert layers(g) == [["A", "D"], ["B"], ["C"], ["Exception"]]
    flat = [n for row in layers(g) for n in row]
    assert sorted(flat) == sorted(NAMES)


def test_require_cycle_does_not_crash_layers() -> None:
    schema = {
        "A": {"require": ["B"]},
        "B": {"require": ["C"]},
        "C": {"require": ["A"], "add": ["D"]},
        "D": {"require": ["D"]},
        "E": {},
    }
    g = machine_graph(schema, list(schema))
    rows = layers(g)
    assert rows == [["A", "B", "C"], ["D"], ["E"]]
    text = to_text(g)
    assert "C --require--> A" in text and "D --require--> D" in text


def test_layers_empty_graph() -> None:
    g = machine_graph({}, [])
    assert layers(g) == []
    assert "(no edges)" in to_text(g)


def test_text_deterministic_and_lists_every_edge(g: nx.DiGraph) -> None:
    text = to_text(g)
    assert text == to_text(
        machine_graph(SCHEMA, NAMES, active=["A"], touched=["C", "B"], called=["B"])
    )
    lines = text.splitlines()
    assert lines[0].startswith("# legend:")
    assert "[A* a]" in text and "[B m t c]" in text and "[C t]" in text
    assert "[Exception m]" in text
    edge_lines = [line.strip() for line in lines if "--" in line and "-->" in line]
    assert {tuple(re.fullmatch(r"(\S+) --(\w+)--> (\S+)", e).groups()) for e in edge_lines} == (
        EDGES
    )
    # grouped by source, sources in state order
    sources = [e.split()[0] for e in edge_lines]
    assert sources == sorted(sources, key=NAMES.index)
    assert "\x1b" not in text


def test_text_width_wraps_rows() -> None:
    names = [f"State{i}" for i in range(8)]
    g = machine_graph({}, names)
    wide = to_text(g)
    narrow = to_text(g, width=30)
    assert len(wide.splitlines()) < len(narrow.splitlines())
    body = narrow.splitlines()[2:]
    assert all(len(line) <= 30 for line in body)
    for name in names:
        assert f"[{name}]" in narrow


# --- DOT / Mermaid / JSON --------------------------------------------------------


def test_dot(g: nx.DiGraph) -> None:
    dot = to_dot(g, name="my machine")
    assert dot.startswith('digraph "my machine" {')
    assert dot.count("{") == dot.count("}")
    assert dot.rstrip().endswith("}")
    for src, rel, dst in EDGES:
        assert re.search(rf'"{src}" -> "{dst}" \[label="{rel}"', dot), (src, rel, dst)
    assert dot.count("->") == len(EDGES)
    assert "auto" in dot and "multi" in dot
    assert 'fillcolor="yellow"' in dot  # touched C
    assert "style=dashed" in dot and "style=dotted" in dot


def test_dot_quotes_names() -> None:
    g = machine_graph({'Odd "x"': {"remove": ["B"]}, "B": {}}, ['Odd "x"', "B"])
    dot = to_dot(g)
    assert '"Odd \\"x\\"" -> "B"' in dot
    assert 'color="red"' in dot


def test_mermaid(g: nx.DiGraph) -> None:
    mm = to_mermaid(g)
    assert mm.splitlines()[0] == "flowchart LR"
    for src, rel, dst in EDGES:
        assert re.search(rf'\bs_{src} \S+\|"{rel}"\| s_{dst}\b', mm), (src, rel, dst)
    assert "class s_B,s_C touched" in mm


def test_mermaid_sanitises_ids() -> None:
    g = machine_graph({"a-b": {"require": ["a b"]}, "a b": {}, "end": {}}, ["a-b", "a b", "end"])
    mm = to_mermaid(g)
    ids = re.findall(r"^  (\S+)\[", mm, flags=re.M)
    assert len(ids) == len(set(ids)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in ids)
    assert "  end[" not in mm and "s_end[" in mm


def test_json_round_trip(g: nx.DiGraph) -> None:
    text = to_json(g)
    assert text == to_json(g)
    data = json.loads(text)
    assert "links" in data
    back = from_json(text)
    assert isinstance(back, nx.DiGraph) and back.is_directed()
    assert nx.is_isomorphic(g, back, node_match=lambda a, b: a == b, edge_match=lambda a, b: a == b)
    assert dict(back.nodes(data=True)) == dict(g.nodes(data=True))
    assert {(u, v): d for u, v, d in back.edges(data=True)} == {
        (u, v): d for u, v, d in g.edges(data=True)
    }
    assert back.graph == g.graph


def test_json_round_trip_plain_networkx(g: nx.DiGraph) -> None:
    data = json.loads(to_json(g))
    try:
        back = nx.node_link_graph(data, edges="links")
    except TypeError:  # networkx < 3.4
        back = nx.node_link_graph(data)
    assert nx.utils.graphs_equal(g, back)


# --- network_graph ---------------------------------------------------------------


def test_network_graph_parent_child_and_missing_parent() -> None:
    machines = [
        {"id": "root", "parent": None, "tags": ["node"]},
        {"id": "w1", "parent": "root", "tags": ["worker"], "links": [("rpc1", "rpc")]},
        {"id": "rpc1", "parent": "root", "tags": []},
        {"id": "orphan", "parent": "gone", "tags": []},
    ]
    g = network_graph(machines)
    assert list(g.nodes) == ["root", "w1", "rpc1", "orphan", "gone"]
    assert g.nodes["w1"] == {"tags": ["worker"], "parent": "root", "missing": False}
    assert g.nodes["gone"]["missing"] is True
    assert g.edges["root", "w1"]["relation"] == "parent"
    assert g.edges["root", "rpc1"]["relation"] == "parent"
    assert g.edges["gone", "orphan"]["relation"] == "parent"
    assert g.edges["w1", "rpc1"] == {"relation": "rpc", "relations": ["rpc"]}
    # links (rpc) do not define layers, only the parent hierarchy does
    assert layers(g) == [["root", "gone"], ["w1", "rpc1", "orphan"]]
    text = to_text(g)
    assert "[gone ?]" in text and "root --parent--> w1" in text and "w1 --rpc--> rpc1" in text
    assert "->" in to_dot(g) and "s_w1" in to_mermaid(g)
    assert nx.utils.graphs_equal(g, from_json(to_json(g)))
