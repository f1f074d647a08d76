"""amnode.machine: the clock-based declarative state machine (a port of asyncmachine-go)."""

from .clock import Time, is_active_tick, next_active, next_inactive
from .errors import (
    CanceledError,
    DisposedError,
    EvalTimeoutError,
    HandlerBindError,
    HandlerTimeoutError,
    AmnodeError,
    MachineError,
    NestedEvalError,
    RelationError,
    SchemaError,
    StateUnknownError,
    WrongThreadError,
)
from .handlers import Event, current_event, is_handler_name
from .log import LOG_ARGS, LogEntry, LogLevel, format_args, new_args_mapper
from .machine import MACHINE_INIT_HOOKS, Machine
from .mutation import (
    ARG_EXCEPTION,
    CANCELED,
    EXECUTED,
    QUEUED,
    AException,
    Mutation,
    MutationType,
    MutSource,
    Result,
    is_queued,
    result_str,
)
from .relations import Resolver
from .schema import (
    ANY,
    DISPOSING,
    EXCEPTION,
    HEALTHCHECK,
    HEARTBEAT,
    MACHINE_RESTORED,
    PREFIX_ERR,
    READY,
    START,
    TAG_ARGS_REQ,
    Schema,
    State,
    adjacent_states,
    filter_by_tag,
    normalize_schema,
    parse_schema,
    s_add,
    s_equal,
    s_rem,
    s_shared,
    schema_hash,
    schema_merge,
    schema_prefix,
    states_by_tag,
)
from .steps import Relation, Step, StepType
from .subscriptions import StateCtx
from .threadsafe import ThreadsafeMachine
from .tracer import LastTxTracer, Tracer
from .transition import Transition, new_id, seed_ids

__all__ = [
    "ANY", "ARG_EXCEPTION", "CANCELED", "DISPOSING", "EXCEPTION", "EXECUTED", "HEALTHCHECK",
    "HEARTBEAT", "LOG_ARGS", "MACHINE_INIT_HOOKS", "MACHINE_RESTORED", "PREFIX_ERR", "QUEUED",
    "READY", "START", "TAG_ARGS_REQ", "AException", "CanceledError", "DisposedError",
    "EvalTimeoutError", "Event", "HandlerBindError", "HandlerTimeoutError", "LastTxTracer",
    "AmnodeError", "LogEntry", "LogLevel", "Machine", "MachineError", "MutSource", "Mutation", "MutationType",
    "NestedEvalError", "Relation", "RelationError", "Resolver", "Result", "Schema", "SchemaError",
    "State", "StateCtx", "StateUnknownError", "Step", "StepType", "ThreadsafeMachine", "Time",
    "Tracer", "Transition", "WrongThreadError", "adjacent_states", "current_event",
    "filter_by_tag", "format_args", "is_active_tick", "is_handler_name", "is_queued",
    "new_args_mapper", "new_id", "next_active", "next_inactive", "normalize_schema", "parse_schema",
    "result_str", "s_add", "s_equal", "s_rem", "s_shared", "schema_hash", "schema_merge",
    "schema_prefix", "seed_ids", "states_by_tag",
]
