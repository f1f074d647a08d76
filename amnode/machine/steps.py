"""Transition steps and relation kinds: what the debugger shows inside one transition."""

from __future__ import annotations

from enum import IntEnum


class Relation(IntEnum):
    """Relation kinds between states (Go Relation; the values match Go's)."""

    AFTER = 0
    ADD = 1
    REQUIRE = 2
    REMOVE = 3

    def __str__(self) -> str:
        return self.name.lower()


class StepType(IntEnum):
    """What one step of a transition did (Go StepType; the values match Go's bit flags)."""

    RELATION = 1
    HANDLER = 2
    ACTIVATE = 4
    DEACTIVATE = 8
    DEACTIVATE_PASSIVE = 16
    CALLED = 32
    CANCEL = 64

    def __str__(self) -> str:
        return _STEP_NAMES[self]


_STEP_NAMES = {
    StepType.RELATION: "rel",
    StepType.HANDLER: "handler",
    StepType.ACTIVATE: "activate",
    StepType.DEACTIVATE: "deactivate",
    StepType.DEACTIVATE_PASSIVE: "deactivate-passive",
    StepType.CALLED: "called",
    StepType.CANCEL: "cancel",
}


_new = object.__new__


class Step:
    """One step: a relation checked, a handler run, or a state activated/deactivated/canceled.

    Handler steps also carry the handler's name and how long it ran (all bindings together).
    """

    __slots__ = ("call", "duration", "from_state", "handler", "is_enter", "is_final", "is_self",
                 "memo", "relation", "to_state", "type")

    def __init__(self, type: StepType, from_state: str = "", to_state: str = "",
                 relation: Relation | None = None) -> None:
        self.type = type
        self.from_state = from_state
        self.to_state = to_state
        self.relation = relation
        self.is_final = False
        self.is_self = False
        self.is_enter = False
        self.handler = ""
        self.duration = 0.0
        #: free for a tracer to cache a derived form (e.g. its encoding); relation steps are
        #: shared between transitions with the same resolution, so this is computed once
        self.memo: object = None
        #: a handler step's call in its plan: a tuple shared by every transition replaying the
        #: plan (the same call gives the same step, duration aside), so a tracer can key a
        #: cache on it; None for other steps and for handler calls made outside a plan
        self.call: tuple[object, ...] | None = None

    @classmethod
    def handler_step(cls, from_state: str, to_state: str, name: str, is_final: bool,
                     is_enter: bool, is_self: bool, duration: float,
                     call: tuple[object, ...] | None) -> Step:
        """A handler step, made without `__init__`'s defaults (one is made per handler run)."""
        step = _new(cls)
        step.type = StepType.HANDLER
        step.from_state = from_state
        step.to_state = to_state
        step.relation = None
        step.is_final = is_final
        step.is_enter = is_enter
        step.is_self = is_self
        step.handler = name
        step.duration = duration
        step.memo = None
        step.call = call
        return step

    def __repr__(self) -> str:
        return f"Step({self})"

    def __str__(self) -> str:
        """Markdown-free form of Go Step.StringFromIndex, e.g. `A require B`, `handler AState`."""
        src, dst = self.from_state, self.to_state
        if not src and not dst:
            dst = "Any"
        if src and dst:
            line = f"{src} {self.relation} {dst}" if self.relation is not None else f"{src} {dst}"
        else:
            line = src or dst
        if self.type == StepType.RELATION:
            return line
        if self.type == StepType.HANDLER:
            return f"handler {self.handler or line}"
        return f"{self.type} {line}"

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for recordings."""
        out: dict[str, object] = {"type": str(self.type), "from": self.from_state,
                                  "to": self.to_state}
        if self.relation is not None:
            out["rel"] = str(self.relation)
        if self.type == StepType.HANDLER:
            out.update(handler=self.handler, final=self.is_final, enter=self.is_enter,
                       self=self.is_self, duration=self.duration)
        return out
