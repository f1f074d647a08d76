"""Every key of `amdbg replay` in one table: the app's bindings, the help screen and the docs
are all made from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

#: seconds between transitions while playing (`space`)
PLAY_INTERVAL = 0.5
#: rows (shown transitions) one alt+arrow jumps, as in am-dbg
JUMP_ROWS = 50


@dataclass(frozen=True, slots=True)
class Key:
    """One key: Textual key name(s), what the help shows, the action, and the footer label."""

    keys: str
    shown: str
    action: str
    description: str
    footer: str = ""
    #: handled before the focused pane sees the key (keys typed right after it, already
    #: queued, then go where this key's action put the focus)
    priority: bool = False


KEYS: tuple[Key, ...] = (
    Key("right", "→", "next_tx", "next transition (skips filtered ones)", "next"),
    Key("left", "←", "prev_tx", "previous transition", "prev"),
    Key("right_square_bracket", "]", "next_step",
        "next step inside the transition (the states show the machine as of that step)",
        "step"),
    Key("left_square_bracket", "[", "prev_step", "previous step inside the transition"),
    Key("alt+right", "alt+→", f"skip({JUMP_ROWS})",
        f"{JUMP_ROWS} transitions forward (shown ones)"),
    Key("alt+left", "alt+←", f"skip({-JUMP_ROWS})", f"{JUMP_ROWS} transitions back"),
    Key("home", "home", "first_tx", "first transition"),
    Key("end", "end", "last_tx", "last transition"),
    Key("space", "space", "play", f"play / pause (one transition every {PLAY_INTERVAL:g} s)",
        "play"),
    Key("j", "j", "state_jump(1)", "next transition touching the selected state", "jump"),
    Key("J", "J", "state_jump(-1)", "previous transition touching the selected state"),
    Key("slash", "/", "search", "search machines as you type (in the states pane: search "
        "states); enter selects the first match", "search", priority=True),
    Key("f", "f", "filters", "filters: hide canceled / auto / empty / health transitions",
        "filters"),
    Key("g", "g", "graph", "graph of the machine's relations (g again: back)", "graph"),
    Key("n", "n", "network", "network of machines (n again: back)"),
    Key("s", "s", "source", "go to the transition that caused this one (its source)"),
    Key("c", "c", "caused", "go to a transition this one caused (a list when several)"),
    Key("less_than_sign", "<", "history(-1)",
        "back to where you jumped from (jumps, searches, source and caused links)", "back"),
    Key("greater_than_sign", ">", "history(1)", "forward again (after <)"),
    Key("y", "y", "copy", "copy the mach:// address to the clipboard (OSC 52)"),
    Key("t", "t", "times", "time column: offset from start / wall clock / hidden"),
    Key("T", "T", "theme", "dark / light theme"),
    Key("m", "m", "machines", "show / hide the machine list (hidden below 100 columns)"),
    Key("alt+m", "alt+m", "side('matrix')", "matrix view: called states, tick deltas and "
        "relations of the transition, a column per state (alt+m again: back)"),
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
    ("escape", "stop a j search, close search, a dialog, the graph"),
    ("enter / x", "transition pane (tab to it): expand / fold tracebacks"),
    ("type", "states pane after /: find a state by name (↑ ↓ next match, enter done)"),
    ("1..5  c  x  w", "log pane: level, timestamps, tracebacks, wrap"),
    ("enter", "queue pane: go to the transition that ran the mutation"),
)


#: footer entries that come first, so that a narrow terminal never crops them away
FOOTER_FIRST = ("help", "quit")


def bindings() -> list[BindingType]:
    """The app's bindings: every key of KEYS; footer labels only for the main ones, help and
    quit first."""
    keys = sorted((k for k in KEYS if k.action != "focus_next"),
                  key=lambda k: 0 if k.action in FOOTER_FIRST else 1)
    return [Binding(k.keys, k.action, k.footer or k.description, show=bool(k.footer),
                    key_display=k.shown, priority=k.priority) for k in keys]


__all__ = ["FOOTER_FIRST", "JUMP_ROWS", "KEYS", "PANE_KEYS", "PLAY_INTERVAL", "Key", "bindings"]
