"""Facts derived from one recorded transition, for any front end (CLI, JSON, the TUI).

Why a transition was canceled is recorded as data since the `fail` element existed
(`TransitionRecord.failure`: veto, raised, timeout or relations, the handler, the exception and
its traceback), at every log level. Older recordings lack it: the reason is then read back from
the log lines the machine wrote (`[cancel] (...) by FooEnter`, `[cancel:reject] ...`,
`[error:...]`) and, when the log level was too low for those, from the steps (the last
negotiation handler, `cancel` steps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from amnode.telemetry import (
    ERROR_ARG,
    FailureRecord,
    LogLine,
    TransitionRecord,
    TransitionSummary,
)

from .filters import is_empty, summary_is_empty

_CANCEL_BY = re.compile(r"^\[cancel(?::self)?\] \((.*?)\) by (\S+)")
_CANCEL_REJECT = re.compile(r"^\[cancel:reject\] (.*)$")
_REJECT = re.compile(r"^\[reject(?::auto)?\] (.*)$")
_ERROR = re.compile(r"^\[error(?::[^\]]*)?\] ?(.*)$", re.S)
_ERROR_DETAIL = re.compile(r"^.*? \((\S+) (.*)\)$")
_TIMEOUT = re.compile(r"^\[handler:timeout\]: (\S+) from ")

#: the flag of a transition whose record no valid check record covered
UNVERIFIED = "unverified"
#: what an unverified record means, in one sentence (show, the TUI's detail pane)
UNVERIFIED_NOTE = ("no check record covers this record (a torn tail or a damaged block): its "
                   "bytes may differ from what was recorded")


@dataclass(frozen=True, slots=True)
class CancelReason:
    """Why a transition was canceled: a `kind`, who did it (`by`) and a sentence (`text`)."""

    #: "veto" (a negotiation handler returned False), "error" (a handler raised), "timeout",
    #: "relations" (states rejected by Require/Remove), "unknown" (nothing recorded says why)
    kind: str
    by: str
    text: str
    #: the recorded traceback of a handler that raised ("" when none was recorded)
    traceback: str = ""

    @property
    def short(self) -> str:
        """A few words for a table cell, e.g. "veto PaidEnter"."""
        return f"{self.kind} {self.by}".strip()


@dataclass(frozen=True, slots=True)
class StateChange:
    """One state's ticks before and after a transition (odd tick = active)."""

    name: str
    before: int
    after: int
    called: bool

    @property
    def active_before(self) -> bool:
        """Active before the transition (odd tick)."""
        return bool(self.before & 1)

    @property
    def active_after(self) -> bool:
        """Active after the transition (odd tick)."""
        return bool(self.after & 1)

    @property
    def mark(self) -> str:
        """`+` activated, `-` deactivated, `+2` re-entered (Multi), `+-` activated and
        deactivated again (a failed final handler), "" unchanged."""
        if self.before == self.after:
            return ""
        if self.active_after and self.active_before:
            return f"+{self.after - self.before}"
        if not self.active_after and not self.active_before:
            return "+-"
        return "+" if self.active_after else "-"


def first_line(text: str) -> str:
    """The first line of a (maybe multi-line) log text."""
    return text.split("\n", 1)[0]


def failure_text(f: FailureRecord) -> str:
    """One sentence for a recorded failure, e.g. "KeyError in JobEnter: 'job-42'", "the final
    handler SlowState timed out (0.250 s)"."""
    role = "final" if f.final else "negotiation"
    if f.kind == "raised":
        where = f"the async handler {f.handler}" if f.is_async else \
            (f"the final handler {f.handler}" if f.final else f.handler or "a handler")
        return f"{f.error_type or 'an exception'} in {where}: {first_line(f.message)}".rstrip()
    if f.kind == "timeout":
        took = f" ({f.seconds:.3f} s)" if f.seconds else ""
        return f"the {role} handler {f.handler} timed out{took}"
    if f.kind == "veto":
        return f"vetoed by {f.handler} (returned False)"
    return f"{f.kind} {f.handler}".strip()


def _recorded_reason(tx: TransitionRecord, f: FailureRecord) -> CancelReason:
    if f.kind == "relations":
        states = " ".join(f.states) or " ".join(tx.called)
        return CancelReason("relations", states, "not accepted by relations: "
                            + _relations_detail(tx, states))
    kind = "error" if f.kind == "raised" else f.kind
    return CancelReason(kind, f.handler, failure_text(f), f.traceback)


def cancel_reason(tx: TransitionRecord) -> CancelReason | None:
    """Why `tx` was canceled, or None when it was accepted."""
    if tx.accepted:
        return None
    if tx.failure is not None:
        return _recorded_reason(tx, tx.failure)
    by_lines = [m for line in tx.log if (m := _CANCEL_BY.match(line.text))]
    errors = [first_line(m.group(1)) for line in tx.log if (m := _ERROR.match(line.text))]
    whos = [m.group(2) for m in by_lines]
    if "recover" in whos or errors:
        handler = next((w for w in whos if w not in ("recover", "timeout")), "")
        detail = errors[0] if errors else "an exception"
        m = _ERROR_DETAIL.match(detail)
        if m:  # "Called (Handler message)"
            handler, detail = handler or m.group(1), m.group(2)
        return CancelReason("error", handler, f"{handler or 'a handler'} raised: {detail}")
    for who in whos:
        if who == "timeout":
            # logged as "[handler:timeout]: Method from binding" at log level 4 only
            name = next((m.group(1) for line in tx.log if (m := _TIMEOUT.match(line.text))), "")
            if not name:
                return CancelReason("timeout", "", "a handler timed out")
            role = "final" if name.endswith(("State", "End")) else "negotiation"
            return CancelReason("timeout", name, f"the {role} handler {name} timed out")
        return CancelReason("veto", who, f"vetoed by {who} (returned False)")
    for line in tx.log:
        m = _CANCEL_REJECT.match(line.text)
        if m:
            return CancelReason("relations", m.group(1), "not accepted by relations: "
                                + _relations_detail(tx, m.group(1)))
    # no log lines (low log level): read the steps
    handlers = [s for s in tx.steps if s.type == "handler"]
    canceled = [s.to_state or s.from_state for s in tx.steps if s.type == "cancel"]
    if canceled:
        states = " ".join(s for s in dict.fromkeys(canceled) if s in tx.called) or \
            " ".join(dict.fromkeys(canceled))
        return CancelReason("relations", states, "not accepted by relations: "
                            + _relations_detail(tx, states))
    if handlers and not handlers[-1].is_final:
        name = handlers[-1].handler
        return CancelReason("veto", name, f"vetoed by {name} (the last negotiation handler)")
    return CancelReason("unknown", "", "no reason recorded (record with log level 3 to see it)")


def _relations_detail(tx: TransitionRecord, rejected: str) -> str:
    """Which relations rejected the called states, read from the relation steps."""
    after = set(tx.states_after)
    before = set(tx.states_before)
    called = set(tx.called)
    reasons: dict[str, list[str]] = {}
    for step in tx.steps:
        if step.type != "rel" or not step.from_state or not step.to_state:
            continue
        src, dst = step.from_state, step.to_state
        if step.relation == "require" and dst not in after:
            text = f"{src} requires {dst} (inactive)"
        elif step.relation == "remove" and dst in called and src in before | called:
            text = f"{dst} is removed by {src}"
        else:
            continue
        reasons.setdefault(text, [])
    if reasons:
        return "; ".join(reasons)
    rejects = [m.group(1) for line in tx.log if (m := _REJECT.match(line.text))]
    return "; ".join(rejects) if rejects else rejected


def result_label(tx: TransitionRecord | TransitionSummary) -> str:
    """"accepted" or "canceled"; checks say "check: would be accepted/canceled"."""
    word = "accepted" if tx.accepted else "canceled"
    return f"check: would be {word}" if tx.is_check else word


def flag_names(tx: TransitionRecord | TransitionSummary) -> list[str]:
    """The transition's flags in a fixed order: auto, check, health, error, (empty), and
    `unverified` when no check record covered its record (its bytes were never checked)."""
    names = [name for name, on in (("auto", tx.is_auto), ("check", tx.is_check),
                                   ("health", tx.is_health), ("error", tx.is_error)) if on]
    if is_empty(tx) if isinstance(tx, TransitionRecord) else summary_is_empty(tx):
        names.append("empty")
    if tx.unverified:
        names.append(UNVERIFIED)
    return names


def mutation_label(tx: TransitionRecord) -> str:
    """`add A B`, `remove C`, `set D`."""
    return " ".join([tx.type, *tx.called])


def state_changes(tx: TransitionRecord, *, everything: bool = False) -> list[StateChange]:
    """States active before or after, changed or called (every state with `everything`)."""
    called = set(tx.called)
    out = []
    for i, name in enumerate(tx.state_names):
        before = tx.time_before[i] if i < len(tx.time_before) else 0
        after = tx.time_after[i] if i < len(tx.time_after) else 0
        if everything or before & 1 or after & 1 or before != after or name in called:
            out.append(StateChange(name, before, after, name in called))
    return out


def machine_time_label(tx: TransitionRecord) -> str:
    """Machine time before -> after: `t1 -> t3 (+2)`. A canceled transition changed no tick
    (`t3, unchanged (canceled)`) unless it was canceled after its states were applied (a
    final handler failed and the states were removed again): then the ticks that did move
    are shown as such."""
    before, after = sum(tx.time_before), tx.time_sum
    if tx.accepted or tx.is_check:
        return f"t{before} -> t{after} (+{after - before})"
    if before == after:
        return f"t{before}, unchanged (canceled)"
    return f"t{before} -> t{after} (+{after - before}, ticks moved before it was canceled)"


def changes_label(tx: TransitionRecord) -> str:
    """`+A -B +C` (re-entered Multi states count as `+`); "" when nothing changed."""
    return " ".join([*(f"+{s}" for s in tx.activated), *(f"-{s}" for s in tx.deactivated)])


def error_text(tx: TransitionRecord) -> str:
    """The exception this transition carried or logged (first line), or ""."""
    f = tx.failure
    if f is not None and f.kind == "raised":
        return failure_text(f)
    exc = tx.args.get(ERROR_ARG)
    if exc:
        return exc
    for line in tx.log:
        m = _ERROR.match(line.text)
        if m:
            return first_line(m.group(1))
    return ""


def failure_dict(f: FailureRecord) -> dict[str, Any]:
    """A recorded failure as JSON-ready data."""
    return {"kind": f.kind, "handler": f.handler, "final": f.final, "async": f.is_async,
            "error_type": f.error_type, "message": f.message, "traceback": f.traceback,
            "seconds": f.seconds, "states": list(f.states), "text": failure_text(f)}


def log_dict(line: LogLine) -> dict[str, Any]:
    """A log line as JSON-ready data."""
    return {"level": line.level, "text": line.text}


def transition_dict(tx: TransitionRecord) -> dict[str, Any]:
    """Everything about one transition as JSON-ready data (the `show --json` core)."""
    reason = cancel_reason(tx)
    return {
        "url": tx.url, "machine": tx.machine, "machine_id": tx.machine_id, "number": tx.number,
        "seq": tx.seq, "id": tx.id, "type": tx.type, "called": list(tx.called),
        "accepted": tx.accepted, "result": result_label(tx),
        "cancel_reason": None if reason is None else {
            "kind": reason.kind, "by": reason.by, "text": reason.text,
            "traceback": reason.traceback},
        "failure": None if tx.failure is None else failure_dict(tx.failure),
        "auto": tx.is_auto, "check": tx.is_check, "health": tx.is_health,
        "error": tx.is_error, "empty": is_empty(tx), "error_text": error_text(tx),
        "start_ns": tx.start_ns, "end_ns": tx.end_ns, "duration_ns": tx.duration_ns,
        "queue_tick": tx.queue_tick, "mutation_queue_tick": tx.mutation_queue_tick,
        "queue_len": tx.queue_len,
        "time_sum_before": sum(tx.time_before), "time_sum_after": tx.time_sum,
        "states_before": tx.states_before, "states_after": tx.states_after,
        "activated": tx.activated, "deactivated": tx.deactivated,
        "clock_before": tx.clock_before, "clock_after": tx.clock_after,
        "steps": [{"type": s.type, "from": s.from_state, "to": s.to_state,
                   "relation": s.relation, "handler": s.handler, "final": s.is_final,
                   "enter": s.is_enter, "self": s.is_self, "duration_ns": s.duration_ns,
                   "text": str(s)} for s in tx.steps],
        "handlers": [{"name": name, "duration_ns": ns} for name, ns in tx.handlers],
        "args": dict(tx.args),
        "log": [log_dict(x) for x in tx.log], "pre_log": [log_dict(x) for x in tx.pre_log],
        "source": None if tx.source is None else {
            "machine_id": tx.source.machine_id, "tx_id": tx.source.tx_id,
            "machine_time": tx.source.machine_time},
        "truncated": tx.truncated, "unverified": tx.unverified,
    }


__all__ = [
    "UNVERIFIED", "UNVERIFIED_NOTE", "CancelReason", "StateChange", "cancel_reason",
    "changes_label", "error_text", "failure_dict", "failure_text", "first_line", "flag_names",
    "log_dict", "machine_time_label", "mutation_label",
    "result_label", "state_changes", "transition_dict",
]
