"""aRPC errors: one exception class per wire error code (Go's sentinel errors).

Every class derives from `amnode.machine.errors.AmnodeError` through `RpcError`. `CanceledError`
is both an `RpcError` (wire code `canceled`) and the machine's `CanceledError`, so
`except amnode.CanceledError` also catches a request the peer canceled.
"""

from __future__ import annotations

from enum import IntEnum

from amnode.machine.errors import AmnodeError
from amnode.machine.errors import CanceledError as MachineCanceledError


class ErrorCode(IntEnum):
    """Error codes carried in a response envelope `[1, seq, [code, message], nil]`."""

    INVALID_PARAMS = 1
    INVALID_RESPONSE = 2
    RPC = 3
    NO_ACCESS = 4
    NOT_CONNECTED = 5
    WRONG_DESTINATION = 6
    CANCELED = 7
    UNKNOWN_METHOD = 8
    TIMEOUT = 9
    PROTOCOL_VERSION = 10


class RpcError(AmnodeError):
    """Base of every aRPC error; `code` is the wire error code."""

    code: ErrorCode = ErrorCode.RPC


class InvalidParamsError(RpcError):
    """A request (or args to be sent) failed validation or cannot be encoded."""

    code = ErrorCode.INVALID_PARAMS


class InvalidResponseError(RpcError):
    """A response or server message failed validation."""

    code = ErrorCode.INVALID_RESPONSE


class NoAccessError(RpcError):
    """The server refused the client id (`allow_id`) or a mutation of a state outside its
    allowlist (`mutable_states`)."""

    code = ErrorCode.NO_ACCESS


class NotConnectedError(RpcError):
    """No handshaken peer to talk to (Go ErrNoConn)."""

    code = ErrorCode.NOT_CONNECTED


class WrongDestinationError(RpcError):
    """A payload's destination is not the connected client (Go ErrDestination)."""

    code = ErrorCode.WRONG_DESTINATION


class CanceledError(RpcError, MachineCanceledError):
    """The peer is stopping and canceled the request (Go am.ErrCanceled).

    Also an `amnode.CanceledError` (the machine's): one `except` catches both kinds of cancel.
    """

    code = ErrorCode.CANCELED


class UnknownMethodError(RpcError):
    """The peer does not implement the method."""

    code = ErrorCode.UNKNOWN_METHOD


class RpcTimeoutError(RpcError, TimeoutError):
    """A call got no reply within its timeout (Go ErrNetworkTimeout)."""

    code = ErrorCode.TIMEOUT


class ProtocolVersionError(RpcError):
    """The peer speaks another protocol version."""

    code = ErrorCode.PROTOCOL_VERSION


class ConnectionLostError(RpcError, ConnectionError):
    """The connection closed before a reply arrived."""

    code = ErrorCode.NOT_CONNECTED


class ProtocolViolation(RpcError):
    """Hostile or malformed input; the connection that sent it is closed."""

    code = ErrorCode.INVALID_PARAMS


class ListenError(RpcError, ConnectionError):
    """A server or mux could not start listening (address taken or invalid, source gone,
    timeout); a `ConnectionError` too."""


class RpcConfigError(RpcError, ValueError):
    """An aRPC object was given an invalid setting (address, retry policy, binding, limit)."""


class TypedArgsError(RpcError, TypeError):
    """A class cannot be registered as typed args (only dataclasses can)."""


class MirrorUnsupportedError(RpcError, NotImplementedError):
    """An `am.Machine` operation a network mirror cannot do (its clock comes from the source)."""


_BY_CODE: dict[int, type[RpcError]] = {
    ErrorCode.INVALID_PARAMS: InvalidParamsError,
    ErrorCode.INVALID_RESPONSE: InvalidResponseError,
    ErrorCode.RPC: RpcError,
    ErrorCode.NO_ACCESS: NoAccessError,
    ErrorCode.NOT_CONNECTED: NotConnectedError,
    ErrorCode.WRONG_DESTINATION: WrongDestinationError,
    ErrorCode.CANCELED: CanceledError,
    ErrorCode.UNKNOWN_METHOD: UnknownMethodError,
    ErrorCode.TIMEOUT: RpcTimeoutError,
    ErrorCode.PROTOCOL_VERSION: ProtocolVersionError,
}


def error_from_wire(code: int, message: str) -> RpcError:
    """The exception for a received `[code, message]` (unknown codes become `RpcError`)."""
    return _BY_CODE.get(code, RpcError)(message)


__all__ = [
    "CanceledError", "ConnectionLostError", "ErrorCode", "InvalidParamsError",
    "InvalidResponseError", "ListenError", "MirrorUnsupportedError", "NoAccessError",
    "NotConnectedError", "ProtocolVersionError", "ProtocolViolation", "RpcConfigError",
    "RpcError", "RpcTimeoutError", "TypedArgsError", "UnknownMethodError",
    "WrongDestinationError", "error_from_wire",
]
