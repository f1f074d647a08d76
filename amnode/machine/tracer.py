"""The tracer interface: synchronous hooks into every transition (Go Tracer).

Tracers run inside the transition, on the machine's thread: they must be cheap and never block on
I/O (the recorder only appends to a buffer). Set `collect_steps = True` on a tracer to make the
machine record `Transition.steps`; a machine without such a tracer pays nothing for steps.

A machine calls each per-transition hook (`HOT_HOOKS`) only on the tracers that override it,
decided when the tracer is bound (`bind_tracer`, `tracers=`): a hook nobody overrides costs
nothing. Override hooks in the class (or set them on the instance before binding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .machine import Machine
    from .mutation import Mutation
    from .schema import Schema
    from .transition import Transition


class Tracer:
    """Base class with no-op hooks named after Go's; override what you need."""

    #: ask machines to collect `Transition.steps` (relations, handlers, activations)
    collect_steps: bool = False
    #: also collect steps for `can_add`/`can_remove` checks
    collect_check_steps: bool = False
    #: ask machines to stamp `Transition.start_ns` (when a transition started, monotonic ns)
    start_time: bool = False
    #: a hint for helpers that bind a parent's tracers to its submachines
    inheritable: bool = False
    #: also call `mutation_queued` for a mutation that runs at once (nothing queued, no drain
    #: running); False lets the machine skip the queue for such a mutation and this hook with
    #: it (read when the tracer is bound)
    queued_immediate: bool = True

    @property
    def tracer_id(self) -> str:
        """An id for logs; the class name unless overridden."""
        return type(self).__name__

    def machine_init(self, machine: Machine) -> None:
        """A machine created with this tracer in `tracers=` finished its constructor."""

    def machine_dispose(self, machine_id: str) -> None:
        """The machine is being disposed (after its queue drained)."""

    def new_submachine(self, parent: Machine, machine: Machine) -> None:
        """A child machine with `parent=` set was created (called on the parent's tracers)."""

    def transition_init(self, transition: Transition) -> None:
        """Relations are resolved; `accepted` is final for relations; no handler ran yet."""

    def transition_start(self, transition: Transition) -> None:
        """Negotiation is about to start (also for canceled transitions and checks)."""

    def transition_finals(self, transition: Transition) -> None:
        """States are applied and `time_after` is exact; final handlers are about to run."""

    def transition_end(self, transition: Transition) -> None:
        """The transition completed; steps, log entries and `accepted` are final."""

    def mutation_queued(self, machine: Machine, mutation: Mutation) -> None:
        """A mutation was appended to, or prepended to, the queue (not evals)."""

    def handler_start(self, transition: Transition, binding_id: str, handler: str) -> None:
        """A handler method is about to run."""

    def handler_end(self, transition: Transition, binding_id: str, handler: str) -> None:
        """A handler method returned, raised or overran its timeout."""

    def queue_end(self, machine: Machine) -> None:
        """A queue drain finished."""

    def schema_change(self, machine: Machine, old_schema: Schema) -> None:
        """The schema or its groups changed (`set_schema`, `replace_schema`, `set_groups`)."""

    def verify_states(self, machine: Machine) -> None:
        """The state order was (re)fixed: `verify_states`, a schema change or `import_data`."""


#: hooks called per transition, handler call or mutation: a machine keeps, per hook, the list of
#: its tracers that override it and calls only those
HOT_HOOKS = ("transition_init", "transition_start", "transition_finals", "transition_end",
             "mutation_queued", "handler_start", "handler_end", "queue_end")


def overrides(tracer: Tracer, hook: str) -> bool:
    """True when `tracer` has its own `hook` (in its class or on the instance), not the no-op."""
    own = getattr(tracer, "__dict__", None)
    if own and hook in own:
        return True
    return getattr(type(tracer), hook, None) is not getattr(Tracer, hook)


class LastTxTracer(Tracer):
    """Keeps the last completed transition; handy in tests (Go LastTxTracer)."""

    def __init__(self) -> None:
        self.last: Transition | None = None

    def transition_end(self, transition: Transition) -> None:
        self.last = transition


__all__ = ["HOT_HOOKS", "LastTxTracer", "Tracer", "overrides"]
