"""`host:port` addresses of aRPC servers and clients; an empty host means 127.0.0.1."""

from __future__ import annotations

from .errors import RpcConfigError

DEFAULT_HOST = "127.0.0.1"


def parse_addr(addr: str) -> tuple[str, int]:
    """Split `host:port`, `[v6]:port` or `:port` into (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise RpcConfigError(f"address {addr!r} has no port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        num = int(port)
    except ValueError:
        raise RpcConfigError(f"address {addr!r} has an invalid port") from None
    if not 0 <= num <= 65535:
        raise RpcConfigError(f"address {addr!r} has an invalid port")
    return host or DEFAULT_HOST, num


def format_addr(sockname: tuple) -> str:
    """`host:port` (or `[v6]:port`) of a socket name."""
    host, port = sockname[0], sockname[1]
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


__all__ = ["DEFAULT_HOST", "format_addr", "parse_addr"]
