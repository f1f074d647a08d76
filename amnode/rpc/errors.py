"""aRPC errors: one exception class per wire error code (Go's sentinel errors)."""

from __future__ import annotations

from enum import IntEnum


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


class RpcError(Exception):
    """Base of every aRPC error; `code` is the wire error code."""

    code: ErrorCode = ErrorCode.RPC


class InvalidParamsError(RpcError):
    """A request (or args to be sent) failed validation or cannot be encoded."""

    code = ErrorCode.INVALID_PARAMS


class InvalidResponseError(RpcError):
    """A response or server message failed validation."""

    code = ErrorCode.INVALID_RESPONSE


class NoAccessError(RpcError):
    """The server refused the client id (`allow_id`)."""

    code = ErrorCode.NO_ACCESS


class NotConnectedError(RpcError):
    """No handshaken peer to talk to (Go ErrNoConn)."""

    code = ErrorCode.NOT_CONNECTED


class WrongDestinationError(RpcError):
    """A payload's destination is not the connected client (Go ErrDestination)."""

    code = ErrorCode.WRONG_DESTINATION


class CanceledError(RpcError):
    """The peer is stopping and canceled the request (Go am.ErrCanceled)."""

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
    "InvalidResponseError", "NoAccessError", "NotConnectedError", "ProtocolVersionError",
    "ProtocolViolation", "RpcError", "RpcTimeoutError", "UnknownMethodError",
    "WrongDestinationError", "error_from_wire",
]
