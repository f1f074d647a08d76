"""Errors raised or recorded by the machine (Go's sentinel errors as exception classes)."""

from __future__ import annotations


class AmnodeError(Exception):
    """Root of every error amnode raises (machine, rpc, telemetry, node)."""


class MachineError(AmnodeError):
    """Base class of every error the machine raises."""


class StateUnknownError(MachineError, KeyError):
    """A state name is not part of the schema (Go ErrStateMissing / ErrStateUnknown)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "state unknown"


class SchemaError(MachineError, ValueError):
    """The schema is inconsistent (Go ErrSchema), e.g. a Require-Remove conflict."""


class RelationError(MachineError):
    """A relation cannot be resolved, e.g. a Require cycle (Go ErrRelation)."""


class HandlerTimeoutError(MachineError, TimeoutError):
    """A handler overran `handler_timeout` (Go ErrHandlerTimeout)."""


class EvalTimeoutError(MachineError, TimeoutError):
    """An eval did not run within its timeout (Go ErrEvalTimeout)."""


class NestedEvalError(MachineError):
    """`eval()` was called while the machine was already draining its queue (Go ErrNestedEval)."""


class DisposedError(MachineError):
    """The machine was disposed while something was waiting on it (Go ErrDisposed)."""


class CanceledError(MachineError):
    """A mutation was canceled (Go ErrCanceled); used by layers that turn results into errors."""


class WrongThreadError(MachineError, RuntimeError):
    """A machine was mutated from a thread that does not own it; use `machine.threadsafe`."""


class HandlerBindError(MachineError, TypeError):
    """A handler object cannot be bound, e.g. an `async def` negotiation handler."""
