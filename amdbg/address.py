"""`mach://` addresses: one string naming a machine, and optionally a transition and a step.

Grammar (the Go am-dbg's; the forms amdbg reads are listed in docs/amdbg.md):
`mach://MACHINE[/TX[/STEP]][?t=MACHINE_TIME&q=QUEUE_TICK&ht=WALL_TIME&group=G&state=S]`.
`TX` is a transition id or, as an amdbg extension, a 1-based transition number. Parts are
percent-decoded, so any machine id can be written; `str()` gives the canonical form back.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

from amnode.telemetry import RecordedMachine, TransitionRecord
from amnode.telemetry.records import MACH_SCHEME, quote_part

from .errors import SelectionError, UsageError
from .times import parse_time

SCHEME = MACH_SCHEME


def is_address(text: str) -> bool:
    """True when `text` is written as a `mach://` address (scheme matched case-insensitively)."""
    return text[:len(SCHEME)].lower() == SCHEME


@dataclass(frozen=True, slots=True)
class MachAddress:
    """A parsed `mach://` address; empty strings and None mean "not given"."""

    machine: str
    tx: str = ""
    step: int | None = None
    #: query parameters in the order given: t, q, ht, group, state, or others (kept, unused)
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The last value given for query parameter `name`, or None."""
        value = None
        for key, val in self.params:
            if key == name:
                value = val
        return value

    def __str__(self) -> str:
        text = SCHEME + quote_part(self.machine)
        if self.tx:
            text += "/" + quote_part(self.tx)
            if self.step is not None:
                text += f"/{self.step}"
        if self.params:
            text += "?" + "&".join(f"{quote(k, safe='')}={quote_part(v)}"
                                   for k, v in sorted(self.params))
        return text


def parse_address(text: str) -> MachAddress:
    """Parse a `mach://` address; raises UsageError (one line) when it is malformed."""
    if not is_address(text):
        raise UsageError(f"not a mach:// address: {text!r}")
    rest = text[len(SCHEME):]
    rest, _, query = rest.partition("?")
    parts = rest.split("/")
    if parts and parts[-1] == "":  # a trailing slash
        parts.pop()
    if not parts or not parts[0]:
        raise UsageError(f"address {text!r} names no machine (expected mach://MACHINE/TX_ID)")
    if len(parts) > 3:
        raise UsageError(f"address {text!r} has too many parts "
                         "(expected mach://MACHINE[/TX_ID[/STEP]])")
    machine = unquote(parts[0])
    tx = unquote(parts[1]) if len(parts) > 1 else ""
    step: int | None = None
    if len(parts) > 2:
        try:
            step = int(parts[2])
        except ValueError:
            raise UsageError(f"address {text!r}: step {parts[2]!r} is not a number") from None
        if step < 0:
            raise UsageError(f"address {text!r}: step {step} is negative")
    try:
        # `+` is a plus everywhere in an address (`ht=+1.5s`), not form encoding's space
        params = tuple(parse_qsl(query.replace("+", "%2B"), keep_blank_values=True,
                                 strict_parsing=bool(query)))
    except ValueError:
        raise UsageError(f"address {text!r} has a malformed query {query!r}") from None
    return MachAddress(machine, tx, step, params)


def resolve_params(machine: RecordedMachine, addr: MachAddress, start_ns: int | None
                   ) -> tuple[int | None, str]:
    """(transition number, how it was chosen) that the query of an address without a
    transition part picks in `machine`: `t` (machine time) first, then `ht` (wall time), then
    `q` (queue tick); (None, "") when it has none of them.

    `t=N` and `q=N` pick the first transition that reached N; a value no transition reached
    raises SelectionError saying what the machine's range is (never the last one silently).
    `ht` picks the first transition ending at or after that time, else the last before it.
    """
    t, ht, q = addr.param("t"), addr.param("ht"), addr.param("q")
    if t is not None:
        value = _param_int(addr, "t", t)
        return _first_reaching(machine, addr, "machine time", "t", value,
                               lambda tx: tx.time_sum), f"t={value}"
    if ht is not None:
        wall = parse_time(ht, start_ns)
        if not len(machine):
            raise SelectionError(f"{addr}: machine {machine.key} has no transitions")
        i = bisect_left(machine.end_times, wall)
        return (i + 1 if i < len(machine) else len(machine)), f"ht={ht}"
    if q is not None:
        value = _param_int(addr, "q", q)
        return _first_reaching(machine, addr, "queue tick", "q", value,
                               lambda tx: tx.queue_tick), f"q={value}"
    return None, ""


def _first_reaching(machine: RecordedMachine, addr: MachAddress, what: str, name: str,
                    value: int, key: Callable[[TransitionRecord], int]) -> int:
    """Binary search for the first transition whose `key` (non-decreasing) is >= value."""
    count = len(machine)
    if not count:
        raise SelectionError(f"{addr}: machine {machine.key} has no transitions")
    lo, hi = 1, count + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if key(machine.transition(mid)) >= value:
            hi = mid
        else:
            lo = mid + 1
    if lo > count:
        last = key(machine.transition(count))
        raise SelectionError(f"{addr}: no transition of {machine.key} reaches {what} "
                             f"{value}; its last ({count}) is at {name}={last}")
    return lo


def _param_int(addr: MachAddress, name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"address {addr}: {name}={value!r} is not a number") from None


__all__ = ["SCHEME", "MachAddress", "is_address", "parse_address", "resolve_params"]
