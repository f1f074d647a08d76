"""Every key of `amdbg replay` in one table: the app's bindings, the help screen and the docs
are all made from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

#: seconds between transitions while playing (`space`)
PLAY_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class Key:
    """One key: Textual key name(s), what the help shows, the action, and the footer label."""

    keys: str
    shown: str
    action: str
    description: str
    footer: str = ""


KEYS: tuple[Key, ...] = (
    Key("right", "→", "next_tx", "next transition (skips filtered ones)", "next"),
    Key("left", "←", "prev_tx", "previous transition", "prev"),
    Key("right_square_bracket", "]", "next_step",
        "next step inside the transition (the states show the machine as of that step)",
        "step"),
    Key("left_square_bracket", "[", "prev_step", "previous step inside the transition"),
    Key("home", "home", "first_tx", "first transition"),
    Key("end", "end", "last_tx", "last transition"),
    Key("space", "space", "play", f"play / pause (one transition every {PLAY_INTERVAL:g} s)",
        "play"),
    Key("j", "j", "state_jump(1)", "next transition touching the selected state", "jump"),
    Key("J", "J", "state_jump(-1)", "previous transition touching the selected state"),
    Key("slash", "/", "search", "search machines as you type; enter selects the first match",
        "search"),
    Key("f", "f", "filters", "filters: hide canceled / auto / empty / health transitions",
        "filters"),
    Key("g", "g", "graph", "graph of the machine's relations (g again: back)", "graph"),
    Key("n", "n", "network", "network of machines (n again: back)"),
    Key("s", "s", "source", "go to the transition that caused this one (its source)"),
    Key("t", "t", "times", "time column: offset from start / wall clock / hidden"),
    Key("m", "m", "side('matrix')", "matrix view: called states, tick deltas and relations of "
        "the transition, a column per state (m again: back)"),
    Key("r", "r", "side('rain')", "rain view: a row per transition, a character per state "
        "(r again: back)"),
    Key("l", "l", "side('log')", "log pane: the machine's log lines around the transition "
        "(l again: back)"),
    Key("u", "u", "side('queue')", "queued mutations, pending at the cursor, with a filter "
        "(u again: back)"),
    Key("number_sign", "#", "tags", "tags bar: the machine's tags and its ancestors' (and the "
        "state group)"),
    Key("G", "G", "group", "state group: show only its states (state view, matrix, rain, "
        "graph); cycles"),
    Key("tab", "tab", "focus_next", "next pane (shift+tab: previous)"),
    Key("question_mark", "?", "help", "this help", "help"),
    Key("q", "q", "quit", "quit", "quit"),
)

#: keys handled by the focused pane, listed in the help but not bound by the app
PANE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ pgup pgdn", "move in the focused list (transitions: selects the transition)"),
    ("enter", "machine list: select the machine"),
    ("click", "select a machine, state, transition, step, source or caused transition"),
    ("escape", "close search, a dialog, the graph"),
    ("1..5  c  x  w", "log pane: level, timestamps, tracebacks, wrap"),
    ("enter", "queue pane: go to the transition that ran the mutation"),
)


def bindings() -> list[BindingType]:
    """The app's bindings: every key of KEYS; footer labels only for the main ones."""
    return [Binding(k.keys, k.action, k.footer or k.description, show=bool(k.footer),
                    key_display=k.shown) for k in KEYS if k.action != "focus_next"]


__all__ = ["KEYS", "PANE_KEYS", "PLAY_INTERVAL", "Key", "bindings"]
