"""Errors of the node system; all derive from `amnode.AmnodeError`."""

from __future__ import annotations

from amnode.machine import AmnodeError


class NodeError(AmnodeError):
    """Root of the node system's errors."""


class WorkerUnavailableError(NodeError):
    """The supervisor refused to lease a worker (`reason` says why), or none came in time."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        #: the supervisor's reason of the last refusal ("" if it never answered)
        self.reason = reason


class WorkerRequestTimeout(WorkerUnavailableError, TimeoutError):
    """`req_worker()` ran out of time (the supervisor did not answer, or the worker link did
    not become ready)."""


class SupervisorUnavailableError(NodeError, ConnectionError):
    """No supervisor of the client's list answered."""


class WorkerExitError(NodeError):
    """A worker process exited (or was found dead); carries its exit status and stderr tail."""

    def __init__(self, message: str, *, returncode: int | None = None,
                 stderr: list[str] | None = None) -> None:
        tail = "\n".join(stderr or [])
        super().__init__(f"{message}\n--- stderr (last lines) ---\n{tail}" if tail else message)
        #: the exit code (negative: killed by that signal), None if unknown
        self.returncode = returncode
        #: the last lines the worker wrote to stderr
        self.stderr = list(stderr or [])


class WorkerHealthError(NodeError):
    """A worker did not answer its health checks in time (it hangs)."""


class BootstrapError(NodeError):
    """A worker did not report back to its bootstrap in time, or reported nonsense."""


class PoolError(NodeError):
    """The pool cannot reach its minimum size; the message says why."""


__all__ = [
    "BootstrapError", "NodeError", "PoolError", "SupervisorUnavailableError",
    "WorkerExitError", "WorkerHealthError", "WorkerRequestTimeout", "WorkerUnavailableError",
]
