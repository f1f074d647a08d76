"""Which transitions to show: tri-state flag filters plus a state filter (`amdbg log`
filters and the TUI's, see docs/amdbg.md "Filters").

Every flag is tri-state: None shows both kinds, True shows only that kind, False hides it.
The flags are kept in the recording's index and tested without decoding a record; only the
state filter needs the decoded transition.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from amnode.telemetry import TransitionRecord, TransitionSummary


def is_empty(tx: TransitionRecord) -> bool:
    """An accepted, non-check transition that changed no tick (Go's "empty" transition)."""
    return tx.accepted and not tx.is_check and tx.time_before == tx.time_after


def summary_is_empty(s: TransitionSummary | TransitionRecord) -> bool:
    """`is_empty` from the index alone (a decoded transition answers the same)."""
    return s.accepted and not s.is_check and s.is_empty


def involves(tx: TransitionRecord, state: str) -> bool:
    """True when `tx` called `state` or changed its tick (activated, deactivated, re-entered)."""
    if state in tx.called:
        return True
    try:
        i = tx.state_names.index(state)
    except ValueError:
        return False
    before = tx.time_before[i] if i < len(tx.time_before) else 0
    after = tx.time_after[i] if i < len(tx.time_after) else 0
    return before != after


@dataclass(frozen=True, slots=True)
class TxFilter:
    """A transition filter; the default (all None, no states) lets everything through."""

    canceled: bool | None = None
    auto: bool | None = None
    empty: bool | None = None
    health: bool | None = None
    check: bool | None = None
    error: bool | None = None
    #: keep transitions involving any of these states (see `involves`); empty = no filter
    states: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """True when the filter can reject anything."""
        return bool(self.states) or any(
            getattr(self, f.name) is not None for f in fields(self) if f.name != "states")

    @property
    def needs_record(self) -> bool:
        """True when matching needs the decoded transition, not just its index summary."""
        return bool(self.states)

    def match_summary(self, s: TransitionSummary | TransitionRecord) -> bool:
        """Test the flags only, from the index summary (a decoded transition has the same
        fields); a True still needs `match_states` if `needs_record`."""
        return (_ok(self.canceled, not s.accepted) and _ok(self.auto, s.is_auto)
                and _ok(self.health, s.is_health) and _ok(self.check, s.is_check)
                and _ok(self.error, s.is_error) and _ok(self.empty, summary_is_empty(s)))

    def match_states(self, tx: TransitionRecord) -> bool:
        """Test the state condition only (True without one)."""
        return not self.states or any(involves(tx, s) for s in self.states)

    def match(self, tx: TransitionRecord) -> bool:
        """Test every condition on a decoded transition."""
        return self.match_summary(tx) and self.match_states(tx)

    def describe(self) -> str:
        """A short human description, e.g. "canceled only, no auto, state Ready"; "" if none."""
        parts = []
        for f in fields(self):
            if f.name == "states":
                continue
            value = getattr(self, f.name)
            if value is not None:
                parts.append(f"{f.name} only" if value else f"no {f.name}")
        if self.states:
            parts.append(("state " if len(self.states) == 1 else "states ")
                         + " or ".join(self.states))
        return ", ".join(parts)


def _ok(want: bool | None, value: bool) -> bool:
    return want is None or want == value


__all__ = ["TxFilter", "involves", "is_empty", "summary_is_empty"]
