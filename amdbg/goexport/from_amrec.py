"""Write a recording as a Go am-dbg export (`.gob.br`) that Go's `am-dbg --import-data` reads.

The export uses the current Go layout (`layout.CURRENT_TYPES`): per machine its schema
(`DbgMsgStruct`) and its transitions and queued mutations (`DbgMsgTx`, in time order), with
ids, called states (indexes and names), flags, mutation type, queue ticks and length, clocks,
steps (state indexes, relation type, handler flags), log and pre-log lines, args and time.
Clocks follow the machine's latest schema (Go keeps one per machine), so transitions
recorded under an older state order are re-indexed by state name. Queued mutations get
Go's ids, `<transition id>-<n>`. See docs/go-interop.md for what is not carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from amnode.telemetry import QueuedRecord, RecordedMachine, Recording, TransitionRecord
from amnode.telemetry.records import MUTATION_TYPES, RELATIONS, STEP_TYPES

from ..gob.encoder import Encoder
from .compress import compress
from .gotime import ns_to_time
from .layout import CURRENT_TYPES, EXPORTS

_STEP_TYPE = {name: value for value, name in STEP_TYPES.items()}
_RELATION = {name: i for i, name in enumerate(RELATIONS)}
_MUTATION = {name: i for i, name in enumerate(MUTATION_TYPES)}


def _number(table: dict[str, int], name: str) -> int:
    """A name's Go number (unknown names are the numbers they were written from)."""
    found = table.get(name)
    if found is not None:
        return found
    try:
        return int(name)
    except ValueError:
        return 0


def _called(names: list[str], index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"CalledStates": list(names)}
    if all(n in index for n in names):
        out["CalledStatesIdxs"] = [index[n] for n in names]
    return out


def _log(lines: Any) -> list[dict[str, Any]]:
    return [{"Level": line.level, "Text": line.text} for line in lines]


def _step(s: Any, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": _number(_STEP_TYPE, s.type)}
    if s.relation is not None:
        out["RelType"] = _number(_RELATION, s.relation)
    if s.type == "handler":
        out.update(IsFinal=s.is_final, IsSelf=s.is_self, IsEnter=s.is_enter)
    for state, name_key, idx_key in ((s.from_state, "FromState", "FromStateIdx"),
                                     (s.to_state, "ToState", "ToStateIdx")):
        i = index.get(state, -1) if state else -1
        out[idx_key] = i
        if state and i < 0:
            out[name_key] = state  # a name outside the index (e.g. "Any")
    return out


class _MachineExport:
    """One machine's `Exportable` value."""

    def __init__(self, m: RecordedMachine, machine_id: str) -> None:
        self.m = m
        self.id = machine_id
        self.names = list(m.state_names)
        self.index = {n: i for i, n in reversed(list(enumerate(self.names)))}

    def schema(self) -> dict[str, Any]:
        m = self.m
        states = {}
        for name in self.names:
            props = m.schema.get(name, {})
            states[name] = {"Auto": bool(props.get("auto")), "Multi": bool(props.get("multi")),
                            **{k.capitalize(): list(props.get(k) or [])
                               for k in ("require", "add", "remove", "after", "tags")}}
        return {"ID": self.id, "StatesIndex": self.names, "States": states,
                "Groups": {k: list(v) for k, v in m.groups.items()},
                "GroupsOrder": list(m.groups_order), "Parent": m.parent, "Tags": list(m.tags)}

    def clocks(self, tx: TransitionRecord) -> list[int]:
        if tx.state_names == self.names:
            return list(tx.time_after)
        ticks = dict(zip(tx.state_names, tx.time_after, strict=False))
        return [ticks.get(n, 0) for n in self.names]

    def entries(self) -> Iterator[tuple[int, int, Any]]:
        """(time, kind, record) in time order; queued (0) before transitions (1) on ties."""
        m = self.m
        txs = ((m.end_times[i], 1, i + 1) for i in range(len(m)))
        queued = sorted(((q.wall_ns, 0, q) for q in m.queued()), key=lambda e: e[0])
        qi = 0
        for entry in txs:
            while qi < len(queued) and queued[qi][0] <= entry[0]:
                yield queued[qi]
                qi += 1
            yield entry
        yield from queued[qi:]

    def value(self, version: str) -> dict[str, Any]:
        txs: list[dict[str, Any]] = []
        clocks = [0] * len(self.names)
        since_tx = 0
        token = 0
        for _, kind, rec in self.entries():
            if kind == 1:
                tx = self.m.transition(rec)
                clocks = self.clocks(tx)
                if tx.mutation_queue_tick == 0 and tx.queue_tick != 0:
                    token += 1
                txs.append(self.transition(tx, clocks, token))
                since_tx = 0
            else:
                q: QueuedRecord = rec
                if q.prepended:
                    token += 1
                txs.append(self.queued(q, clocks, since_tx, token if q.prepended else 0))
                since_tx += 1
        return {"MsgStruct": self.schema(), "MsgTxs": txs, "Version": version}

    def transition(self, tx: TransitionRecord, clocks: list[int], token: int
                   ) -> dict[str, Any]:
        qt, mq = tx.queue_tick, tx.mutation_queue_tick
        out: dict[str, Any] = {
            "MachineID": self.id, "ID": tx.id, "Clocks": clocks, "QueueTick": qt,
            # a prepended mutation (queue tick 0) carries a token, as in Go
            "MutQueueToken": token if mq == 0 and qt != 0 else 0,
            "MutQueueTick": 0 if mq in (0, qt) else mq,
            "Type": _number(_MUTATION, tx.type), **_called(tx.called, self.index),
            "Steps": [_step(s, self.index) for s in tx.steps], "LogEntries": _log(tx.log),
            "PreLogEntries": _log(tx.pre_log), "Queue": tx.queue_len,
            "Time": ns_to_time(tx.end_ns), "IsAuto": tx.is_auto, "Accepted": tx.accepted,
            "IsCheck": tx.is_check}
        if tx.args:
            out["Args"] = dict(tx.args)
        return out

    def queued(self, q: QueuedRecord, clocks: list[int], n: int, token: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "MachineID": self.id, "ID": f"{q.tx_id}-{n}", "Clocks": list(clocks),
            "QueueTick": q.queue_tick_now, "MutQueueToken": token,
            "MutQueueTick": q.queue_tick, "Type": _number(_MUTATION, q.type),
            **_called(q.called, self.index), "Queue": q.queue_len,
            "Time": ns_to_time(q.wall_ns), "IsAuto": q.is_auto, "Accepted": True,
            "IsCheck": q.is_check, "IsQueued": True}
        if q.args:
            out["Args"] = dict(q.args)
        return out


def export_values(rec: Recording, version: str) -> list[dict[str, Any]]:
    """The `[]*Exportable` value of a recording: one entry per machine, in creation order.
    Machines sharing an id (several runs) are written under their unique keys (`id#2`)."""
    ids: dict[str, int] = {}
    for m in rec.machines:
        ids[m.id] = ids.get(m.id, 0) + 1
    return [_MachineExport(m, m.key if ids[m.id] > 1 else m.id).value(version)
            for m in rec.machines]


def export_gob(rec: Recording, version: str) -> bytes:
    """The gob stream (uncompressed) of `export_values`, encoded one machine at a time."""
    ids: dict[str, int] = {}
    for m in rec.machines:
        ids[m.id] = ids.get(m.id, 0) + 1
    enc = Encoder(CURRENT_TYPES)
    enc.encode_elements(EXPORTS, len(rec.machines),
                        (_MachineExport(m, m.key if ids[m.id] > 1 else m.id).value(version)
                         for m in rec.machines))
    return enc.getvalue()


def export_gob_br(rec: Recording, version: str, quality: int = 9) -> bytes:
    """The `.gob.br` bytes Go's am-dbg imports."""
    return compress(export_gob(rec, version), quality)


__all__ = ["export_gob", "export_gob_br", "export_values"]
