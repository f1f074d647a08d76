"""Convert a Go am-dbg export (decompressed gob) into a native amnode recording file.

Each exported machine becomes a recorded machine (same id, parent, tags, schema, groups);
each `DbgMsgTx` becomes a transition record, numbered from 1 in file order, with its id,
called states, accepted / auto / check flags, mutation type, queue tick and length, clocks
(after; "before" is the previous transition's after), steps (handler names as Go derives
them), log and pre-log lines, args and time; entries with `IsQueued` become queued-mutation
records. A `[source] MACH/TX/TIME` log line becomes the transition's source. Machines are
written one at a time while the stream is read, so memory holds one machine's messages.

What has no place in a recording is listed in docs/go-interop.md (e.g. `MutQueueToken`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from amnode.telemetry import RecordWriter
from amnode.telemetry.format import (
    FLAG_ACCEPTED,
    FLAG_AUTO,
    FLAG_CHECK,
    FLAG_HEALTH,
    FLAG_PREPENDED,
)

from ..gob.decoder import Decoder, GobInterface
from ..gob.errors import GobError
from ..gob.limits import DEFAULT_LIMITS, Limits
from .gotime import time_to_ns
from .layout import Layout, check_layout

#: what a converted file says about itself in its segment header (`argv0`)
ARGV0 = "asyncmachine-go am-dbg export"
#: bounds that keep every converted record readable by the recording reader
MAX_STATES = 100_000
MAX_ARGS = 1_000
MAX_ARG_KEY = 256
MAX_ARG_VALUE = 16 * 1024
#: ids and state names longer than this are cut (the recording reader takes strings of at
#: most 1 MiB; nothing sane comes close)
MAX_NAME = 4096
MAX_WARNINGS = 50
_HEALTH = ("Heartbeat", "Healthcheck")
_SUFFIX = {(False, True): "Enter", (False, False): "Exit", (True, True): "State",
           (True, False): "End"}


@dataclass(slots=True)
class Converted:
    """Counts and problems of one conversion."""

    machines: int = 0
    transitions: int = 0
    queued: int = 0
    #: "old" or "current" (see `Layout.version`)
    layout: str = ""
    #: Exportable.Version values seen (am-dbg's version), in order
    versions: list[str] = field(default_factory=list)
    #: one line each: unknown fields, inconsistent records (capped at MAX_WARNINGS)
    warnings: list[str] = field(default_factory=list)
    #: why reading stopped early ("" when the whole stream was read)
    damage: str = ""

    def warn(self, line: str) -> None:
        """Note a problem once (the list is capped)."""
        if line in self.warnings:
            return
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(line)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("... more warnings not shown")


def _cut(value: Any) -> str:
    """A string field as a name: not a string gives "", a very long one is cut."""
    return value[:MAX_NAME] if isinstance(value, str) else ""


def _strs(value: Any) -> list[str]:
    return [v[:MAX_NAME] for v in value if isinstance(v, str)] if isinstance(value, list) \
        else []


def _source(lines: list[list[Any]]) -> list[Any] | None:
    """`[source] MACHINE/TX/TIME` (the Go tracer's causal-link line) as a record source."""
    for _, text in lines:
        if text.startswith("[source] "):
            parts = text[9:].strip().rsplit("/", 2)
            if len(parts) == 3 and parts[2].isdigit():
                return [parts[0], parts[1], int(parts[2])]
    return None


def _lines(value: Any) -> list[list[Any]]:
    if not isinstance(value, list):
        return []
    return [[e.get("Level", 0), e.get("Text", "")[:MAX_ARG_VALUE]] for e in value
            if isinstance(e, dict)]


def _args(value: Any, out: Converted, where: str) -> dict[str, str] | None:
    if not value:
        return None
    args: dict[str, str] = {}
    for k, v in value.items():
        if len(args) >= MAX_ARGS:
            args["..."] = f"{len(value) - MAX_ARGS} more"
            out.warn(f"{where}: more than {MAX_ARGS} args; the rest are counted under '...'")
            break
        args[str(k)[:MAX_ARG_KEY]] = str(v)[:MAX_ARG_VALUE]
    return args


class _Machine:
    """Converts the records of one exported machine (see the module docstring)."""

    def __init__(self, writer: RecordWriter, layout: Layout, out: Converted) -> None:
        self.w = writer
        self.layout = layout
        self.out = out
        self.step_idx = layout.has("Step", "FromStateIdx")
        self.step_rel = layout.has("Step", "RelType")

    def run(self, number: int, item: Any) -> None:
        out = self.out
        if not isinstance(item, dict):
            return
        ms = item.get("MsgStruct")
        if not isinstance(ms, dict) or not isinstance(ms.get("ID"), str) or not ms["ID"]:
            out.warn(f"machine #{number} has no MsgStruct.ID; skipped")
            return
        mid = _cut(ms["ID"])
        names = _strs(ms.get("StatesIndex"))
        if len(names) > MAX_STATES:
            out.warn(f"machine {mid} has {len(names)} states (limit {MAX_STATES}); skipped")
            return
        version = item.get("Version")
        if isinstance(version, str) and version and version not in out.versions:
            out.versions.append(version)
        index: dict[str, int] = {}
        for i, name in enumerate(names):
            index.setdefault(name, i)
        if len(index) < len(names):
            out.warn(f"machine {mid}: StatesIndex names a state twice")
        n = len(names)
        schema: dict[str, dict[str, Any]] = {}
        for state, props in (ms.get("States") or {}).items():
            if isinstance(props, dict):
                schema[_cut(state)] = {
                    "auto": bool(props.get("Auto")), "multi": bool(props.get("Multi")),
                    "require": _strs(props.get("Require")), "add": _strs(props.get("Add")),
                    "remove": _strs(props.get("Remove")), "after": _strs(props.get("After")),
                    "tags": _strs(props.get("Tags"))}
        groups: dict[str, list[int]] = {}
        outside = []
        for g, idxs in (ms.get("Groups") or {}).items():
            ok = [i for i in idxs if 0 <= i < n] if isinstance(idxs, list) else []
            if isinstance(idxs, list) and len(ok) < len(idxs):
                outside.append(str(g))
            groups[str(g)] = ok
        if outside:
            out.warn(f"machine {mid}: group(s) {', '.join(outside)} refer to states outside "
                     "its StatesIndex (those indexes are left out)")
        order = [g for g in _strs(ms.get("GroupsOrder")) if g in groups] or list(groups)
        txs = item.get("MsgTxs") or []
        if not isinstance(txs, list):
            txs = []
        times = [time_to_ns(t) if isinstance(t, bytes) else None
                 for t in (tx.get("Time") if isinstance(tx, dict) else None for tx in txs)]
        created = next((t for t in times if t is not None), 0)
        parent = _cut(ms.get("Parent"))
        mno = self.w.add_machine(mid, parent, _strs(ms.get("Tags")), names, schema,
                                 groups, order, created)
        out.machines += 1
        self.records(mid, mno, names, index, txs, times, created)

    def records(self, mid: str, mno: int, names: list[str], index: dict[str, int],
                txs: list[Any], times: list[int | None], created: int) -> None:
        out = self.out
        n = len(names)
        zeros = [0] * n
        before: list[int] = zeros
        last_t = created - 1
        seq = 0
        bad_clocks = 0
        ref = self._refs(mid, names, index)
        write_tx, write_queued = self.w.transition, self.w.queued
        for i, tx in enumerate(txs):
            if not isinstance(tx, dict):
                continue
            t = times[i]
            # records of a machine keep their file order in time: equal or earlier times
            # (or none) move 1 ns past the previous record
            t = last_t + 1 if t is None or t <= last_t else t
            last_t = t
            clocks = tx.get("Clocks")
            if not isinstance(clocks, list):
                clocks = zeros
            if len(clocks) != n:
                bad_clocks += 1
                clocks = (clocks + zeros)[:n]
            mtype = tx.get("Type", 0)
            idxs = tx.get("CalledStatesIdxs")
            # state references may be names outside the index (the format allows it)
            called: list[Any] = [ref(c) for c in idxs] if idxs else \
                [ref(c) for c in _strs(tx.get("CalledStates"))]
            flags = 0
            if tx.get("IsAuto"):
                flags |= FLAG_AUTO
            if tx.get("IsCheck"):
                flags |= FLAG_CHECK
            args = _args(tx.get("Args"), out, f"machine {mid}")
            qtick = tx.get("QueueTick", 0)
            if tx.get("IsQueued"):
                txid = _cut(tx.get("ID", ""))
                head, dash, tail = txid.rpartition("-")
                if dash and tail.isdigit():
                    txid = head
                if tx.get("MutQueueToken"):
                    flags |= FLAG_PREPENDED
                write_queued(mno, t, flags, mtype, called, tx.get("MutQueueTick", 0), qtick,
                             tx.get("Queue", 0), txid, args, None)
                out.queued += 1
                before = clocks
                continue
            if tx.get("Accepted"):
                flags |= FLAG_ACCEPTED
            if mtype == 0 and len(called) == 1 and isinstance(called[0], int) and \
                    called[0] >= 0 and names[called[0]] in _HEALTH:
                flags |= FLAG_HEALTH
            log = _lines(tx.get("LogEntries"))
            prelog = _lines(tx.get("PreLogEntries"))
            steps = tx.get("Steps")
            seq += 1
            # the mutation's queue tick: 0 for a prepended one (it carries a token), else the
            # tick it waited for (Go links a queued entry by its MutQueueTick == QueueTick)
            mq = 0 if tx.get("MutQueueToken") else tx.get("MutQueueTick") or qtick
            write_tx(mno, seq, t, t, _cut(tx.get("ID", "")), flags, mtype, called, qtick, mq,
                     tx.get("Queue", 0), clocks, before,
                     self._steps(steps, ref, names) if steps else None, log, prelog, args,
                     _source(prelog) or _source(log))
            out.transitions += 1
            before = clocks
        if bad_clocks:
            out.warn(f"machine {mid}: {bad_clocks} record(s) have a clock of another length "
                     f"than its {n} states (padded or cut)")

    def _refs(self, mid: str, names: list[str], index: dict[str, int]
              ) -> Callable[[Any], int | str]:
        """A state reference from an index (checked) or a name (an index when known)."""
        n = len(names)
        out = self.out

        def ref(value: Any) -> int | str:
            if isinstance(value, str):
                return index.get(value, value[:MAX_NAME])
            if isinstance(value, int) and (0 <= value < n or value == -1):
                return value
            out.warn(f"machine {mid}: state index {value} outside its {n} states")
            return f"#{value}"

        return ref

    def _steps(self, steps: list[Any], ref: Callable[[Any], int | str], names: list[str]
               ) -> list[list[Any]]:
        use_idx, use_rel = self.step_idx, self.step_rel
        out = []
        for s in steps:
            if not isinstance(s, dict):
                continue
            typ = s.get("Type", 0)
            frm: int | str = -1
            to: int | str = -1
            name = s.get("FromState")
            if name:
                frm = ref(name)
            elif use_idx:
                frm = ref(s.get("FromStateIdx", 0))
            name = s.get("ToState")
            if name:
                to = ref(name)
            elif use_idx:
                to = ref(s.get("ToStateIdx", 0))
            data = s.get("Data")
            if typ == 1:
                rel = s.get("RelType", 0) if use_rel else -1
                if isinstance(data, GobInterface) and isinstance(data.value, int) and \
                        "RelType" not in s:
                    rel = data.value
                out.append([typ, frm, to, rel])
            elif typ == 2:
                final, enter, self_ = bool(s.get("IsFinal")), bool(s.get("IsEnter")), \
                    bool(s.get("IsSelf"))
                flags = (1 if final else 0) | (2 if enter else 0) | (4 if self_ else 0)
                if isinstance(data, GobInterface) and isinstance(data.value, str):
                    handler = data.value[:MAX_NAME]
                else:
                    handler = _handler_name(frm, to, names, final, enter, self_)
                out.append([typ, frm, to, -1, flags, handler])
            else:
                out.append([typ, frm, to, -1])
        return out


def _handler_name(frm: int | str, to: int | str, names: list[str], final: bool, enter: bool,
                  self_: bool) -> str:
    """The handler a Go step names (Go derives it: state + Enter/Exit/State/End, FooFoo)."""
    def name(ref: int | str) -> str:
        return ref if isinstance(ref, str) else names[ref] if ref >= 0 else ""

    state = name(frm) or name(to) or "Any"
    if self_:
        return state + (name(to) or state)
    return state + _SUFFIX[(final, enter)]


def convert(data: bytes, dst: str | os.PathLike[str], *, source: str = "",
            limits: Limits = DEFAULT_LIMITS, damage: str = "") -> Converted:
    """Write the recording of export stream `data` (decompressed) to `dst` (replaced).

    A damaged stream is read up to the damage (whole machines, then the damaged machine's
    records that were complete) and the reason is left in `Converted.damage`; `damage`
    passes in an earlier problem (e.g. from decompressing). Raises GobError when nothing
    could be read or the stream is not an export.
    """
    out = Converted(damage=damage)
    dec = Decoder(data, limits)
    items = dec.elements(partial=True)
    first = next(items, None)
    if first is None:
        raise dec.error or GobError("the stream holds no machines")
    try:
        layout = check_layout(dec.types, dec.value_type)
    except GobError as err:
        if dec.error is None:
            raise
        raise GobError(f"{err.reason}; {dec.error}") from None
    out.layout = layout.version
    for line in layout.warnings:
        out.warn(line)
    process = {"host": "", "pid": 0, "argv0": ARGV0, "start_ns": _first_time(first),
               "go_export": {"source": source[:1024], "layout": layout.version}}
    try:
        os.unlink(dst)
    except FileNotFoundError:
        pass
    writer = RecordWriter.create(dst, process)
    try:
        conv = _Machine(writer, layout, out)
        strip = _stripper(layout)
        item: Any = first
        number = 1
        while item is not None:
            conv.run(number, strip(item) if strip else item)
            if writer.pending > 4 * 1024 * 1024:
                writer.flush()
            number += 1
            item = next(items, None)
    finally:
        writer.close()
    if dec.error is not None:
        out.damage = "; ".join(p for p in (damage, str(dec.error)) if p)
    return out


def _first_time(item: Any) -> int:
    """The time of a machine's first record that has one (0 when none has)."""
    txs = item.get("MsgTxs") if isinstance(item, dict) else None
    for tx in txs if isinstance(txs, list) else ():
        t = tx.get("Time") if isinstance(tx, dict) else None
        ns = time_to_ns(t) if isinstance(t, bytes) else None
        if ns is not None:
            return ns
    return 0


def _stripper(layout: Layout) -> Callable[[Any], Any] | None:
    """A function removing ignored fields (unknown or mistyped) from a machine's values, or
    None when the stream has none (the common case costs nothing)."""
    ignored: Mapping[str, frozenset[str]] = {r: f for r, f in layout.ignored.items() if f}
    if not ignored:
        return None

    def drop(value: Any, role: str) -> None:
        if isinstance(value, dict):
            for name in ignored.get(role, ()):
                value.pop(name, None)

    def strip(item: Any) -> Any:
        drop(item, "Exportable")
        if not isinstance(item, dict):
            return item
        ms = item.get("MsgStruct")
        drop(ms, "DbgMsgStruct")
        if isinstance(ms, dict) and isinstance(ms.get("States"), dict):
            for st in ms["States"].values():
                drop(st, "State")
        for tx in item.get("MsgTxs") or ():
            drop(tx, "DbgMsgTx")
            if isinstance(tx, dict):
                for s in tx.get("Steps") or ():
                    drop(s, "Step")
                for key in ("LogEntries", "PreLogEntries"):
                    for e in tx.get(key) or ():
                        drop(e, "LogEntry")
        return item

    return strip


__all__ = ["ARGV0", "Converted", "convert"]
