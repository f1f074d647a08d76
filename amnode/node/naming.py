"""Machine ids of the node system, like the Go reference's, so recordings read the same:

- supervisor `ns-<kind>-<host>-<HHMMSS>-<n>` (its servers `ns-pub-...`, `ns-loc-...`),
- worker `nw-<kind>-<host>-<rand6>` (servers `nw-loc-...`, `nw-pub-...`),
- bootstrap `nb-<supervisor name><rand6>`,
- client `nc-<kind>-<client id>-<HHMMSS>` (aRPC clients `rc-nc-super-...`, `rc-nc-worker-...`).

`<host>` is the host name (at most 15 characters), or `AMNODE_HOSTNAME` when set.
"""

from __future__ import annotations

import os
import re
import socket
import time

from amnode.machine import new_id

HOSTNAME_ENV = "AMNODE_HOSTNAME"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def host_name() -> str:
    """The host part of node ids: `AMNODE_HOSTNAME`, else the host name, cut to 15 chars."""
    name = os.environ.get(HOSTNAME_ENV) or socket.gethostname() or "localhost"
    return _UNSAFE.sub("-", name)[:15] or "localhost"


def safe(part: str) -> str:
    """`part` with every character outside `[A-Za-z0-9_.-]` replaced by `-`."""
    return _UNSAFE.sub("-", part) or "-"


def hhmmss() -> str:
    """The local time as HHMMSS."""
    return time.strftime("%H%M%S")


def rand6() -> str:
    """Six hex digits (reproducible under `am.seed_ids`)."""
    return new_id()[:6]


def supervisor_name(kind: str, instance_num: int = 0) -> str:
    """`<kind>-<host>-<HHMMSS>-<n>`; the supervisor's machine id is `ns-` + this."""
    return f"{safe(kind)}-{host_name()}-{hhmmss()}-{instance_num}"


def worker_name(kind: str) -> str:
    """`<kind>-<host>-<rand6>`; the worker's machine id is `nw-` + this."""
    return f"{safe(kind)}-{host_name()}-{rand6()}"


def bootstrap_name(supervisor: str) -> str:
    """`<supervisor name><rand6>`; the bootstrap's machine id is `nb-` + this."""
    return f"{supervisor}{rand6()}"


def client_name(kind: str, client_id: str) -> str:
    """`<kind>-<client id>-<HHMMSS>`; the client's machine id is `nc-` + this."""
    return f"{safe(kind)}-{safe(client_id)}-{hhmmss()}"


def worker_client_id(client: str, secret: str = "") -> str:
    """The aRPC client id a node client uses towards its worker (`nc-worker-<name>[-<secret>]`);
    the worker sees `rc-` + this in the handshake and admits only its lease holder's id, so the
    client adds a random secret: another local process cannot guess and present it."""
    return f"nc-worker-{client}-{secret}" if secret else f"nc-worker-{client}"


def super_client_id(client: str) -> str:
    """The aRPC client id a node client uses towards its supervisor (`nc-super-<name>`)."""
    return f"nc-super-{client}"


__all__ = [
    "HOSTNAME_ENV", "bootstrap_name", "client_name", "hhmmss", "host_name", "rand6", "safe",
    "super_client_id", "supervisor_name", "worker_client_id", "worker_name",
]
