"""Typed args on the wire: a registry of dataclasses (the `gob.Register` of aRPC) and remote errors.

Only msgpack-native values and registered dataclasses cross the wire; nothing is ever unpickled.
A registered dataclass travels as msgpack ext type 1 `[name, {field: value}]`, an exception as
ext type 2 `[type_name, message]` and arrives as `RemoteError`.

Decoding an ext type decodes its data with another msgpack call, one level of C stack each, so
typed values nest at most `max_depth` deep (`MAX_TYPED_DEPTH`); deeper ones are refused with
`DecodeLimitError` before they can exhaust the stack (docs/arpc-protocol.md "Limits").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from amnode.machine import AException
from amnode.machine.errors import AmnodeError

from .errors import ProtocolViolation, TypedArgsError

#: msgpack ext code of a registered dataclass.
EXT_TYPED = 1
#: msgpack ext code of an exception.
EXT_ERROR = 2
#: How deep typed values may nest in one another (a typed value in a field of a typed value
#: is depth 2); real args need a few levels, a hostile frame needs hundreds to crash a decoder.
MAX_TYPED_DEPTH = 8

T = TypeVar("T")


class RemoteError(AmnodeError):
    """An exception that happened (or was passed as args) on the other side of a connection."""

    def __init__(self, message: str = "", type_name: str = "Exception") -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"RemoteError({self.type_name}: {self.args[0] if self.args else ''})"


class DecodeError(ProtocolViolation):
    """A frame holds something that is not allowed on the wire (unknown ext, bad typed args)."""


class DecodeLimitError(DecodeError):
    """A frame goes past a decoding limit (too many values, typed values nested too deep): it is
    hostile, and the connection that sent it is closed."""


class DecodeBudget:
    """Counts the values one frame decodes into and stops past `limit`; its hooks are given to
    msgpack (`list_hook`, `object_hook`), which calls them as each container completes."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def _spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise DecodeLimitError(f"frame decodes into more than {self.limit} values")

    def list_hook(self, v: list[Any]) -> list[Any]:
        """A decoded array: itself and its elements."""
        self._spend(len(v) + 1)
        return v

    def object_hook(self, v: dict[str, Any]) -> dict[str, Any]:
        """A decoded map: itself, its keys and its values."""
        self._spend(2 * len(v) + 1)
        return v

    def options(self) -> dict[str, Any]:
        """msgpack `unpackb` keyword arguments applying this budget."""
        return {"list_hook": self.list_hook, "object_hook": self.object_hook,
                "max_array_len": self.limit, "max_map_len": self.limit}


class ArgsRegistry:
    """Dataclasses allowed inside args and payloads, by wire name."""

    def __init__(self) -> None:
        self._by_name: dict[str, type] = {}
        self._by_type: dict[type, tuple[str, tuple[str, ...]]] = {}

    def register(self, cls: type[T], name: str | None = None) -> type[T]:
        """Allow `cls` (a dataclass) on the wire under `name` (default: its qualified name).

        Usable as a class decorator. Both peers must register the same name.
        """
        if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
            raise TypedArgsError(f"only dataclasses can be registered as typed args, got {cls!r}")
        wire = name or f"{cls.__module__}.{cls.__qualname__}"
        fields = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        self._by_name[wire] = cls
        self._by_type[cls] = (wire, fields)
        return cls

    def names(self) -> list[str]:
        """Registered wire names, sorted."""
        return sorted(self._by_name)

    def default(self, obj: Any) -> Any:
        """msgpack `default` hook: encode registered dataclasses and exceptions, reject the rest."""
        entry = self._by_type.get(type(obj))
        if entry is not None:
            wire, fields = entry
            body = {f: getattr(obj, f) for f in fields}
            return msgpack.ExtType(EXT_TYPED, msgpack.packb([wire, body], default=self.default,
                                                            use_bin_type=True))
        if isinstance(obj, BaseException):
            type_name = obj.type_name if isinstance(obj, RemoteError) else type(obj).__name__
            return msgpack.ExtType(EXT_ERROR, msgpack.packb([type_name, str(obj)]))
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        raise TypeError(f"{type(obj).__name__} cannot be sent over aRPC: use msgpack-native "
                        "values or register the dataclass with amnode.rpc.register_args")

    def ext_hook(self, code: int, data: bytes) -> Any:
        """msgpack `ext_hook`: decode ext types 1 and 2 (typed values nested at most
        `MAX_TYPED_DEPTH` deep), refuse every other one."""
        return self.decode_ext(code, data)

    def decode_ext(self, code: int, data: bytes, *, depth: int = 1,
                   max_depth: int = MAX_TYPED_DEPTH, budget: DecodeBudget | None = None) -> Any:
        """Decode one ext value found at nesting `depth` (1 = not inside another ext value);
        nested values count against `budget` too. Raises DecodeError (DecodeLimitError past
        `max_depth` or the budget)."""
        if code == EXT_TYPED:
            if depth > max_depth:
                raise DecodeLimitError(f"typed values nested deeper than {max_depth}")

            def nested(c: int, d: bytes) -> Any:
                return self.decode_ext(c, d, depth=depth + 1, max_depth=max_depth,
                                       budget=budget)

            opts = budget.options() if budget is not None else {}
            try:
                wire, body = msgpack.unpackb(data, ext_hook=nested, raw=False,
                                             strict_map_key=True, **opts)
            except (ValueError, TypeError, msgpack.UnpackException) as err:
                raise _decode_error("malformed typed args", err, budget) from None
            cls = self._by_name.get(wire) if isinstance(wire, str) else None
            if cls is None or not isinstance(body, dict):
                raise DecodeError(f"unknown typed args {wire!r}")
            fields = self._by_type[cls][1]
            unknown = [k for k in body if k not in fields]
            if unknown:
                raise DecodeError(f"typed args {wire} has unknown fields {unknown}")
            try:
                return cls(**body)
            except Exception as err:
                raise DecodeError(f"typed args {wire} rejected its fields: {err}") from None
        if code == EXT_ERROR:
            opts = budget.options() if budget is not None else {}
            try:
                type_name, message = msgpack.unpackb(data, raw=False, **opts)
            except (ValueError, TypeError, msgpack.UnpackException) as err:
                raise _decode_error("malformed error", err, budget) from None
            if not isinstance(type_name, str) or not isinstance(message, str):
                raise DecodeError("malformed error")
            return RemoteError(message, type_name)
        raise DecodeError(f"ext type {code} is not allowed")


def _decode_error(what: str, err: Exception, budget: DecodeBudget | None) -> DecodeError:
    """msgpack's per-container limit (set by a budget) is a limit error, the rest malformed."""
    if budget is not None and isinstance(err, ValueError) and "exceeds max_" in str(err):
        return DecodeLimitError(f"frame decodes into more than {budget.limit} values ({err})")
    return DecodeError(f"{what}: {err}")


#: The process-wide registry used by servers and clients unless given their own.
DEFAULT_REGISTRY = ArgsRegistry()
DEFAULT_REGISTRY.register(AException, "am.AException")


def register_args(cls: type[T] | None = None, *, name: str | None = None
                  ) -> type[T] | Callable[[type[T]], type[T]]:
    """Register a dataclass in the default registry; works as `@register_args` or a call."""
    if cls is None:
        return lambda c: DEFAULT_REGISTRY.register(c, name)
    return DEFAULT_REGISTRY.register(cls, name)


__all__ = ["DEFAULT_REGISTRY", "EXT_ERROR", "EXT_TYPED", "MAX_TYPED_DEPTH", "ArgsRegistry",
           "DecodeBudget", "DecodeError", "DecodeLimitError", "RemoteError", "register_args"]
