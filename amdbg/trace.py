"""A recording as Chrome / Perfetto trace-event JSON: every machine's transitions on a timeline.

    with open_recording("rec/") as rec, open("out.json", "w") as out:
        stats = write_chrome_trace(rec, out)

The output is the JSON Object Format of the Trace Event Format (the one `chrome://tracing`,
the catapult trace viewer and ui.perfetto.dev read): one *process* per recorded process, one
*thread* (track) per machine, named with `process_name` / `thread_name` metadata events and
ordered by creation. Each transition is a complete event (`ph: "X"`, `dur` >= 0) named like
`add Paid`; canceled ones end in ` [canceled]`, those that activated Exception or an Err*
state in ` [error]` (also in `cat` and as the catapult colours `bad` / `terrible`). Its
handlers are `X` events nested in it with their measured durations. Called states, args, the
states it (de)activated, why it was canceled, its `mach://` address and its source are the
slice's args. A transition caused by another one (its recorded source, in any machine or
process) gets a flow arrow: an `s` event inside the source slice and an `f` event (`bp: "e"`)
inside the caused one, sharing an id.

What the recording does not hold is laid out, never invented: handlers' start times are not
recorded, so a transition's handlers are drawn back to back ending where it ended (after the
relations were resolved, which is when handlers run). Slices on one track never overlap:
a transition that starts before the previous one of its machine ended (clocks of a damaged or
foreign recording) starts at that end, and handlers whose durations add up to more than their
transition are shortened in proportion (the measured value stays in the args); both are
counted in `TraceStats`. Times are microseconds from the recording's first machine, with
nanosecond decimals. Every recorded string is written with JSON escapes only (ASCII output),
so nothing in it can act on a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TextIO

from amnode.telemetry import ProcessInfo, RecordedMachine, Recording, TransitionRecord

from .describe import cancel_reason, error_text, flag_names

#: the trace's own pid/tid numbers start above every real Linux pid (pid_max <= 2**22), so a
#: machine's track never shares its number with a process (viewers treat tid == pid as the
#: process's main thread)
TID_BASE = 1 << 22
#: flow arrows from a transition's source: the `cat` and `name` both of its events carry
FLOW_CAT = "source"
FLOW_NAME = "caused"
#: catapult's reserved colour names (Perfetto colours by name and ignores them)
COLOR_CANCELED = "bad"
COLOR_ERROR = "terrible"


@dataclass
class TraceStats:
    """What a trace holds, and what had to be adjusted to keep it well formed."""

    processes: int = 0
    machines: int = 0
    transitions: int = 0
    handlers: int = 0
    flows: int = 0
    #: sources naming a transition the recording does not hold (no arrow drawn)
    unresolved_sources: int = 0
    #: transitions moved to start where the previous one of their machine ended
    clamped_transitions: int = 0
    #: transitions whose handlers were shortened to fit inside them
    scaled_handlers: int = 0


def _us(ns: int) -> float | int:
    """Nanoseconds as trace microseconds (exact decimals: ns / 1000 rounds to 3 places)."""
    return ns // 1000 if ns % 1000 == 0 else ns / 1000


def _dump(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


@dataclass
class _Track:
    pid: int
    tid: int
    machine: RecordedMachine
    #: where the last slice of this track ended (ns from the trace start)
    end: int = 0


def _process_key(p: ProcessInfo) -> tuple[str, int, int]:
    return (p.host, p.pid, p.start_ns)


def _process_name(p: ProcessInfo) -> str:
    prog = PurePath(p.argv0).name if p.argv0 else ""
    return f"{prog or 'process'} @{p.host}" if p.host else (prog or "process")


def _is_error_transition(tx: TransitionRecord) -> bool:
    """It activated Exception or an Err* state (the moment an error happened)."""
    return any(s == "Exception" or s.startswith("Err") for s in tx.activated)


class _Builder:
    """Turns one recording into trace events (see the module docstring)."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.stats = TraceStats()
        starts = [m.created_ns for m in rec.machines]
        self.base = min(starts) if starts else 0
        self.tracks: list[_Track] = []
        self.process_names: dict[int, str] = {}
        self.process_order: dict[int, int] = {}
        pids: dict[tuple[str, int, int], int] = {}
        used: set[int] = set()
        synthetic = TID_BASE - 1
        for i, m in enumerate(rec.machines):
            key = _process_key(m.process)
            pid = pids.get(key)
            if pid is None:
                pid = m.process.pid
                if not 0 < pid < TID_BASE or pid in used:  # odd or repeated: a number of ours
                    while synthetic in used:
                        synthetic -= 1
                    pid = synthetic
                used.add(pid)
                pids[key] = pid
                self.process_names[pid] = _process_name(m.process)
                self.process_order[pid] = len(self.process_order)
            self.tracks.append(_Track(pid, TID_BASE + 1 + i, m))
        self.stats.processes = len(pids)
        self.stats.machines = len(self.tracks)
        #: (machine id, tx id) -> (pid, tid, flow point in ns)
        self.points: dict[tuple[str, str], tuple[int, int, int]] = {}
        #: caused transitions: (source machine id, source tx id, pid, tid, point)
        self.caused: list[tuple[str, str, int, int, int]] = []

    # ------------------------------------------------------------------ metadata

    def metadata(self) -> Iterator[dict[str, Any]]:
        """process_name / thread_name and their sort indexes."""
        for pid, name in self.process_names.items():
            yield {"name": "process_name", "ph": "M", "pid": pid, "tid": pid,
                   "args": {"name": name}}
            yield {"name": "process_sort_index", "ph": "M", "pid": pid, "tid": pid,
                   "args": {"sort_index": self.process_order[pid]}}
        for i, t in enumerate(self.tracks):
            yield {"name": "thread_name", "ph": "M", "pid": t.pid, "tid": t.tid,
                   "args": {"name": t.machine.key}}
            yield {"name": "thread_sort_index", "ph": "M", "pid": t.pid, "tid": t.tid,
                   "args": {"sort_index": i}}

    # ------------------------------------------------------------------ slices

    def slices(self) -> Iterator[dict[str, Any]]:
        """Every transition of every machine (with its handlers), machine by machine."""
        for t in self.tracks:
            for tx in t.machine.transitions():
                yield from self._transition(t, tx)

    def _transition(self, t: _Track, tx: TransitionRecord) -> Iterator[dict[str, Any]]:
        self.stats.transitions += 1
        start = max(tx.start_ns - self.base, 0)
        end = max(tx.end_ns - self.base, 0)
        if start < t.end:
            start = t.end
            self.stats.clamped_transitions += 1
        end = max(end, start)
        t.end = end
        dur = end - start
        handlers = [(name, max(ns, 0)) for name, ns in tx.handlers]
        total = sum(ns for _, ns in handlers)
        scaled = total > dur
        if scaled:
            self.stats.scaled_handlers += 1
            handlers = [(name, ns * dur // total) for name, ns in handlers]
            total = sum(ns for _, ns in handlers)
        # the flow point: inside the transition, before its handlers (where nothing else is)
        point = start + (dur - total) // 2
        self.points[(tx.machine_id, tx.id)] = (t.pid, t.tid, point)
        if tx.source is not None:
            self.caused.append((tx.source.machine_id, tx.source.tx_id, t.pid, t.tid, point))
        yield self._slice(t, tx, start, dur)
        at = end - total
        for (name, ns), (_, measured) in zip(handlers, tx.handlers, strict=True):
            self.stats.handlers += 1
            ev: dict[str, Any] = {"name": name or "handler", "cat": "handler", "ph": "X",
                                  "ts": _us(at), "dur": _us(ns), "pid": t.pid, "tid": t.tid}
            if scaled:
                ev["args"] = {"measured_us": _us(max(measured, 0))}
            yield ev
            at += ns

    def _slice(self, t: _Track, tx: TransitionRecord, start: int, dur: int) -> dict[str, Any]:
        name = " ".join([tx.type, *tx.called])
        cats = ["transition"]
        color = ""
        if not tx.accepted:
            name += " [canceled]"
            cats.append("canceled")
            color = COLOR_CANCELED
        if _is_error_transition(tx):
            name += " [error]"
            cats.append("error")
            color = COLOR_ERROR
        if tx.is_auto:
            cats.append("auto")
        args: dict[str, Any] = {
            "n": tx.number, "url": tx.url, "called": list(tx.called),
            "accepted": tx.accepted,
        }
        if tx.args:
            args["args"] = dict(tx.args)
        if tx.activated:
            args["activated"] = tx.activated
        if tx.deactivated:
            args["deactivated"] = tx.deactivated
        flags = flag_names(tx)
        if flags:
            args["flags"] = flags
        reason = cancel_reason(tx)
        if reason is not None:
            args["canceled"] = reason.text
        err = error_text(tx)
        if err:
            args["error"] = err
        if tx.source is not None:
            args["source"] = f"{tx.source.machine_id}/{tx.source.tx_id}"
        args["duration_us"] = _us(max(tx.duration_ns, 0))
        ev: dict[str, Any] = {"name": name, "cat": ",".join(cats), "ph": "X",
                              "ts": _us(start), "dur": _us(dur), "pid": t.pid, "tid": t.tid,
                              "args": args}
        if color:
            ev["cname"] = color
        return ev

    # ------------------------------------------------------------------ flows

    def flows(self) -> Iterator[dict[str, Any]]:
        """One `s` / `f` pair per transition whose source is in the recording."""
        flow_id = 0
        for src_machine, src_tx, pid, tid, point in self.caused:
            found = self.points.get((src_machine, src_tx))
            if found is None:
                self.stats.unresolved_sources += 1
                continue
            flow_id += 1
            spid, stid, spoint = found
            yield {"name": FLOW_NAME, "cat": FLOW_CAT, "ph": "s", "id": flow_id,
                   "ts": _us(spoint), "pid": spid, "tid": stid}
            yield {"name": FLOW_NAME, "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": flow_id,
                   "ts": _us(point), "pid": pid, "tid": tid}
        self.stats.flows = flow_id


def write_chrome_trace(rec: Recording, out: TextIO, *, source: str = "",
                       producer: str = "amdbg") -> TraceStats:
    """Write `rec` to `out` as trace-event JSON (one event per line, streamed: a large
    recording is never held in memory as events). Returns what was written."""
    b = _Builder(rec)
    out.write('{"traceEvents":[\n')
    first = True

    def emit(events: Iterator[dict[str, Any]]) -> None:
        nonlocal first
        for ev in events:
            out.write(_dump(ev) if first else ",\n" + _dump(ev))
            first = False

    emit(b.metadata())
    emit(b.slices())
    emit(b.flows())
    other = {"producer": producer, "source": source, "start_wall_ns": b.base,
             "time_origin": "the recording's first machine", **vars(b.stats)}
    out.write('\n],"displayTimeUnit":"ms","otherData":' + _dump(other) + "}\n")
    return b.stats


def chrome_trace(rec: Recording, *, source: str = "") -> dict[str, Any]:
    """The trace as a dict (small recordings; tests). Same content as `write_chrome_trace`."""
    import io

    buf = io.StringIO()
    write_chrome_trace(rec, buf, source=source)
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data


__all__ = ["FLOW_CAT", "FLOW_NAME", "TID_BASE", "TraceStats", "chrome_trace",
           "write_chrome_trace"]
