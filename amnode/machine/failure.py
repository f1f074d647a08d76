"""Why a transition was canceled, as data the machine records on it at every log level.

A debugger reads it from recordings instead of parsing log lines, which only exist at log level
OPS and above. The traceback and message are bounded, so one failure cannot blow up a record.
"""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass

#: a negotiation handler returned False
VETO = "veto"
#: a handler raised (`Transition.failed` is set; `Exception` is added next)
RAISED = "raised"
#: a handler ran longer than `handler_timeout`
TIMEOUT = "timeout"
#: the resolver rejected the called states (Require, Remove); `states` names them
RELATIONS = "relations"

#: characters kept of an exception's message, and of its traceback (the end is kept: the frame
#: that raised is last)
MESSAGE_MAX = 1000
TRACEBACK_MAX = 8000


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a transition was canceled: its `kind` (VETO, RAISED, TIMEOUT, RELATIONS), the handler
    involved (`final`: a `State`/`End`/`AnyState` handler, else a negotiation one), and for a
    raise the exception's type, message and traceback. `is_async`: an `async def` final
    handler's task raised after its transition; this failure is then carried by the
    transition that adds `Exception` for it."""

    kind: str
    handler: str = ""
    final: bool = False
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    #: TIMEOUT: how long the handler ran
    seconds: float = 0.0
    #: RELATIONS: the called states the resolver rejected
    states: tuple[str, ...] = ()
    is_async: bool = False


def bounded(text: str, limit: int) -> str:
    """`text` cut to its last `limit` characters, marked with "..." when cut."""
    return text if len(text) <= limit else "..." + text[len(text) - limit + 3:]


def raised(handler: str, final: bool, exc: BaseException, *, is_async: bool = False) -> Failure:
    """The failure of a handler that raised `exc`; never raises itself."""
    try:
        message = str(exc)
    except Exception as err:  # a hostile __str__ must not break the transition
        message = f"<unprintable {type(exc).__name__}: {type(err).__name__}>"
    try:
        trace = "".join(_traceback.format_exception(exc))
    except Exception:
        trace = ""
    return Failure(RAISED, handler, final, type(exc).__qualname__,
                   message[:MESSAGE_MAX], bounded(trace, TRACEBACK_MAX), is_async=is_async)


__all__ = ["MESSAGE_MAX", "RAISED", "RELATIONS", "TIMEOUT", "TRACEBACK_MAX", "VETO", "Failure",
           "bounded", "raised"]
