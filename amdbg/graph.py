"""Graphs of machine schemas and machine networks, with DOT, Mermaid, JSON and text exports.

Everything here is a pure function over plain data (as found in recordings) or over a
``networkx.DiGraph``; output is deterministic so it can be diffed, snapshotted and drawn by a TUI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # networkx costs half a second to import: only the functions that
    import networkx as nx  # build graphs import it, so `amdbg log` starts without it

from .escape import printable

__all__ = [
    "LAYER_RELATIONS",
    "RELATIONS",
    "from_json",
    "layers",
    "machine_graph",
    "network_graph",
    "steps_mermaid",
    "to_dot",
    "to_json",
    "to_mermaid",
    "to_text",
]

RELATIONS: tuple[str, ...] = ("require", "add", "remove", "after")
"""Schema relations, in the canonical order used for an edge's ``relations`` list."""

LAYER_RELATIONS: frozenset[str] = frozenset({"require", "add", "parent"})
"""Relations that define the layered layout (dependencies / hierarchy, not ordering)."""

_DOT_EDGE_STYLE: dict[str, str] = {
    "require": 'style=solid, color="black"',
    "add": 'style=dashed, color="blue"',
    "remove": 'style=solid, color="red", fontcolor="red"',
    "after": 'style=dotted, color="gray40"',
    "parent": 'style=bold, color="black"',
}
_DOT_EDGE_DEFAULT = 'style=dashed, color="darkgreen"'

_MERMAID_ARROW: dict[str, str] = {
    "require": "-->",
    "add": "==>",
    "remove": "--x",
    "after": "-.->",
    "parent": "-->",
}
_MERMAID_ARROW_DEFAULT = "-.->"

TEXT_LEGEND = "# legend: [Name* flags]  *=active a=auto m=multi t=touched c=called ?=missing"


# ---------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------


def _relation_rank(relation: str) -> tuple[int, str]:
    """Sort key putting schema relations first (canonical order), then others by name."""
    if relation in RELATIONS:
        return (RELATIONS.index(relation), "")
    if relation == "parent":
        return (len(RELATIONS), "")
    return (len(RELATIONS) + 1, relation)


def _add_relation(g: nx.DiGraph, src: str, dst: str, relation: str) -> None:
    """Add ``relation`` to edge src->dst, merging into ``relations`` so a DiGraph suffices."""
    if g.has_edge(src, dst):
        data = g.edges[src, dst]
        rels: list[str] = data["relations"]
        if relation not in rels:
            rels.append(relation)
            rels.sort(key=_relation_rank)
            data["relation"] = rels[0]
    else:
        g.add_edge(src, dst, relation=relation, relations=[relation])


def machine_graph(
    schema: Mapping[str, Mapping[str, Any]],
    state_names: Sequence[str],
    *,
    active: Collection[str] = (),
    touched: Collection[str] = (),
    called: Collection[str] = (),
) -> nx.DiGraph:
    """Build a state graph (nodes=states, edges=relations) from recorded schema data.

    Node order follows ``state_names``; states only present in ``schema`` are appended sorted,
    so the result does not depend on dict ordering. Edges carry ``relations`` (canonical order
    require, add, remove, after) and ``relation`` (the first one). Unknown targets are skipped.
    """
    import networkx as nx

    order = list(dict.fromkeys(state_names))
    known = set(order)
    order.extend(sorted(name for name in schema if name not in known))
    active_set, touched_set, called_set = set(active), set(touched), set(called)

    g = nx.DiGraph(kind="machine")
    for index, name in enumerate(order):
        state = schema.get(name) or {}
        g.add_node(
            name,
            auto=bool(state.get("auto", False)),
            multi=bool(state.get("multi", False)),
            tags=list(state.get("tags") or []),
            index=index,
            active=name in active_set,
            touched=name in touched_set,
            called=name in called_set,
        )
    for name in order:
        state = schema.get(name) or {}
        for relation in RELATIONS:
            for target in state.get(relation) or []:
                if target in g:
                    _add_relation(g, name, target, relation)
    return g


def network_graph(machines: Iterable[Mapping[str, Any]]) -> nx.DiGraph:
    """Build a graph of machines (parent->child and link edges) to show a machine network.

    Each machine is a dict with ``id``, ``parent`` (id or None), ``tags`` and optional
    ``links`` ``[(target_id, kind), ...]``. Parents or link targets that are not among the
    machines get a node with ``missing=True`` so dangling references stay visible.
    """
    import networkx as nx

    machines = list(machines)
    g = nx.DiGraph(kind="network")
    for machine in machines:
        g.add_node(
            str(machine["id"]),
            tags=list(machine.get("tags") or []),
            parent=machine.get("parent"),
            missing=False,
        )

    def ensure(node_id: str) -> None:
        """Add a placeholder node for a referenced machine that was not recorded."""
        if node_id not in g:
            g.add_node(node_id, tags=[], parent=None, missing=True)

    for machine in machines:
        child = str(machine["id"])
        parent = machine.get("parent")
        if parent is not None and parent != "":
            ensure(str(parent))
            _add_relation(g, str(parent), child, "parent")
        for target, kind in machine.get("links") or []:
            ensure(str(target))
            _add_relation(g, child, str(target), str(kind))
    return g


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------


def layers(g: nx.DiGraph, *, relations: Collection[str] = LAYER_RELATIONS) -> list[list[str]]:
    """Group nodes into rows for a layered drawing (shared by ``to_text`` and the TUI).

    Layers are the topological generations of the subgraph of ``relations`` edges (require,
    add, parent by default) after condensing cycles, so members of a cycle share a layer.
    Nodes without any edge to another node go in the last layer. Each row keeps graph order.
    """
    import networkx as nx

    position = {node: i for i, node in enumerate(g.nodes)}
    relations = set(relations)

    isolated = [
        node
        for node in g.nodes
        if not any(n != node for n in g.successors(node))
        and not any(n != node for n in g.predecessors(node))
    ]
    isolated_set = set(isolated)

    sub = nx.DiGraph()
    sub.add_nodes_from(node for node in g.nodes if node not in isolated_set)
    sub.add_edges_from(
        (u, v)
        for u, v, data in g.edges(data=True)
        if u != v and relations.intersection(data.get("relations") or [data.get("relation")])
    )

    result: list[list[str]] = []
    if sub.number_of_nodes():
        cond = nx.condensation(sub)
        for generation in nx.topological_generations(cond):
            members = [m for scc in generation for m in cond.nodes[scc]["members"]]
            result.append(sorted(members, key=position.__getitem__))
    if isolated:
        result.append(isolated)
    return result


def _sorted_edges(g: nx.DiGraph) -> list[tuple[str, str, str]]:
    """List (source, relation, target) triples grouped by source in a stable order."""
    position = {node: i for i, node in enumerate(g.nodes)}
    triples: list[tuple[str, str, str]] = []
    for src in g.nodes:
        out = [
            (rel, dst)
            for dst, data in g.adj[src].items()
            for rel in data.get("relations") or [data.get("relation", "")]
        ]
        out.sort(key=lambda item: (_relation_rank(item[0]), position[item[1]]))
        triples.extend((src, rel, dst) for rel, dst in out)
    return triples


def _flags(data: Mapping[str, Any]) -> list[str]:
    """Short flag letters for a node, shared by the text and label renderers."""
    flags = []
    if data.get("auto"):
        flags.append("a")
    if data.get("multi"):
        flags.append("m")
    if data.get("touched"):
        flags.append("t")
    if data.get("called"):
        flags.append("c")
    if data.get("missing"):
        flags.append("?")
    return flags


def _text_box(node: str, data: Mapping[str, Any]) -> str:
    """Render one node as ``[Name* a m t c ?]`` for the text layout."""
    name = printable(str(node)) + ("*" if data.get("active") else "")
    return "[" + " ".join([name, *_flags(data)]) + "]"


# ---------------------------------------------------------------------------
# exports
# ---------------------------------------------------------------------------


def to_text(g: nx.DiGraph, *, width: int | None = None) -> str:
    """Render the graph as plain text (layers of boxes, then edges) for colourless terminals.

    Legend (also printed as the first line): each node is ``[Name* flags]`` where ``*`` after
    the name means active and flags are ``a`` auto, ``m`` multi, ``t`` touched, ``c`` called,
    ``?`` missing (referenced but not recorded). Rows are ``layers(g)``; edges follow as
    ``Src --relation--> Dst`` grouped by source. ``width`` wraps long rows; None never wraps.
    """
    lines = [TEXT_LEGEND, "layers:"]
    rows = layers(g)
    label_width = len(str(max(len(rows) - 1, 0)))
    for i, row in enumerate(rows):
        prefix = f"  {i:>{label_width}}: "
        indent = " " * len(prefix)
        line = prefix
        for node in row:
            box = _text_box(node, g.nodes[node])
            if line in (prefix, indent):
                line += box
            elif width is not None and len(line) + 1 + len(box) > width:
                lines.append(line)
                line = indent + box
            else:
                line += " " + box
        lines.append(line)
    if not rows:
        lines.append("  (no nodes)")

    lines.append("edges:")
    triples = _sorted_edges(g)
    lines.extend(f"  {printable(str(src))} --{printable(rel)}--> {printable(str(dst))}"
                 for src, rel, dst in triples)
    if not triples:
        lines.append("  (no edges)")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    """Quote a string as a DOT ID, escaping backslashes and quotes; control characters show
    as escapes (`amdbg.escape.printable`)."""
    escaped = printable(str(text)).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _dot_label(node: str, data: Mapping[str, Any]) -> str:
    """Build a multi-line DOT label: name, auto/multi flags, tags."""
    parts = [printable(str(node)) + (" *" if data.get("active") else "")]
    kinds = [k for k in ("auto", "multi") if data.get(k)]
    if kinds:
        parts.append(" ".join(kinds))
    tags = data.get("tags") or []
    if tags:
        parts.append(printable(" ".join(f"#{t}" for t in tags)))
    escaped = [p.replace("\\", "\\\\").replace('"', '\\"') for p in parts]
    return '"' + "\\n".join(escaped) + '"'


def to_dot(g: nx.DiGraph, name: str = "machine") -> str:
    """Export as Graphviz DOT: one edge per relation, styled by relation, touched nodes filled.

    Styles: require solid, add dashed blue, remove red, after dotted, parent bold. Active nodes
    are bold, touched nodes filled yellow, called nodes filled orange, missing nodes dashed.
    """
    lines = [
        f"digraph {_dot_quote(name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="monospace"];',
        '  edge [fontname="monospace", fontsize=10];',
    ]
    for node, data in g.nodes(data=True):
        attrs = [f"label={_dot_label(node, data)}"]
        styles = []
        if data.get("active"):
            styles.append("bold")
        if data.get("missing"):
            styles.append("dashed")
        if data.get("called"):
            styles.append("filled")
            attrs.append('fillcolor="orange"')
        elif data.get("touched"):
            styles.append("filled")
            attrs.append('fillcolor="yellow"')
        if styles:
            attrs.append(f"style={_dot_quote(','.join(styles))}")
        lines.append(f"  {_dot_quote(node)} [{', '.join(attrs)}];")
    for src, rel, dst in _sorted_edges(g):
        style = _DOT_EDGE_STYLE.get(rel, _DOT_EDGE_DEFAULT)
        lines.append(
            f"  {_dot_quote(src)} -> {_dot_quote(dst)} [label={_dot_quote(rel)}, {style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_ids(g: nx.DiGraph) -> dict[str, str]:
    """Map node names to unique Mermaid-safe ids (prefixed so keywords like 'end' are safe)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in g.nodes:
        base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", str(node))
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        ids[node] = candidate
    return ids


def _mermaid_text(text: str) -> str:
    """Escape text for a quoted Mermaid label (control characters show as escapes)."""
    return printable(str(text)).replace('"', "#quot;")


def to_mermaid(g: nx.DiGraph) -> str:
    """Export as a Mermaid ``flowchart LR`` with labelled edges, for Markdown docs and issues.

    Arrows: require ``-->``, add ``==>``, remove ``--x`` (red), after ``-.->``. Active, touched
    and called nodes get the classes ``active``, ``touched`` and ``called``.
    """
    ids = _mermaid_ids(g)
    lines = ["flowchart LR"]
    for node, data in g.nodes(data=True):
        label = str(node) + ("*" if data.get("active") else "")
        flags = _flags(data)
        if flags:
            label += " " + " ".join(flags)
        lines.append(f'  {ids[node]}["{_mermaid_text(label)}"]')
    red: list[int] = []
    for i, (src, rel, dst) in enumerate(_sorted_edges(g)):
        arrow = _MERMAID_ARROW.get(rel, _MERMAID_ARROW_DEFAULT)
        lines.append(f'  {ids[src]} {arrow}|"{_mermaid_text(rel)}"| {ids[dst]}')
        if rel == "remove":
            red.append(i)
    if red:
        lines.append(f"  linkStyle {','.join(map(str, red))} stroke:red,color:red")
    classes = {
        "active": "stroke-width:3px",
        "touched": "fill:#ffff99",
        "called": "fill:#ffcc66",
    }
    for cls, style in classes.items():
        members = [ids[n] for n, d in g.nodes(data=True) if d.get(cls)]
        if members:
            lines.append(f"  classDef {cls} {style}")
            lines.append(f"  class {','.join(members)} {cls}")
    return "\n".join(lines) + "\n"


def _sequence_text(text: str) -> str:
    """Escape text for a Mermaid sequence diagram (participant labels, messages): `#` and `;`
    as entity codes (`#` starts one, `;` may end a statement), control characters as escapes."""
    return printable(str(text)).replace("#", "#35;").replace(";", "#59;")


def steps_mermaid(steps: Sequence[Any], *, title: Sequence[str] = ()) -> str:
    """A transition's steps as a Mermaid ``sequenceDiagram``: states are participants (in the
    order the steps touch them); relation steps are arrows labelled `require`, `add`,
    `remove` or `after`; activate, deactivate, cancel and handler steps are self-messages
    (handlers with their duration); called steps are notes. `steps` are
    `amnode.telemetry.StepRecord`s; `title` lines go first, as `%%` comments.
    """
    from .times import format_duration

    order: dict[str, str] = {}
    used: set[str] = set()

    def pid(state: str) -> str:
        """The participant id of `state` (registered on first use)."""
        if state not in order:
            base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", state)
            candidate, n = base, 1
            while candidate in used:
                n += 1
                candidate = f"{base}_{n}"
            used.add(candidate)
            order[state] = candidate
        return order[state]

    body: list[str] = []
    for step in steps:
        src, dst = step.from_state, step.to_state
        if step.type == "rel" and src and dst:
            body.append(f"  {pid(src)} ->> {pid(dst)}: {_sequence_text(step.relation or 'rel')}")
            continue
        state = dst or src
        if not state:
            continue
        if step.type == "called":
            body.append(f"  Note over {pid(state)}: called")
        elif step.type == "handler":
            took = f" {format_duration(step.duration_ns)}" if step.duration_ns else ""
            body.append(f"  {pid(state)} ->> {pid(state)}: "
                        f"{_sequence_text(step.handler or 'handler')}{took}")
        else:
            body.append(f"  {pid(state)} ->> {pid(state)}: {_sequence_text(step.type)}")
    lines = ["sequenceDiagram", *(f"  %% {printable(line)}" for line in title)]
    lines += [f"  participant {ident} as {_sequence_text(state)}"
              for state, ident in order.items()]
    if not body:
        lines += ["  participant none as (no steps)", "  Note over none: no steps recorded"]
    return "\n".join(lines + body) + "\n"


def _jsonable(value: Any) -> Any:
    """Fallback for json.dumps: sets become sorted lists, tuples lists, others strings."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def to_json(g: nx.DiGraph) -> str:
    """Export as node-link JSON (``links`` key, sorted keys) for tools and round-tripping."""
    import networkx as nx

    try:
        data = nx.node_link_data(g, edges="links")
    except TypeError:  # networkx < 3.4 has no ``edges`` keyword and uses "links" already
        data = nx.node_link_data(g)
    return json.dumps(data, sort_keys=True, indent=2, default=_jsonable)


def from_json(text: str) -> nx.DiGraph:
    """Load a graph written by ``to_json`` (inverse, for tests and offline viewers)."""
    import networkx as nx

    data = json.loads(text)
    try:
        return nx.node_link_graph(data, edges="links")
    except TypeError:  # networkx < 3.4
        return nx.node_link_graph(data)
