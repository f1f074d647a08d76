"""The state view: every state of the selected machine at the cursor, with its tick, flags,
relations and what the current transition (or the steps so far) did to it."""

from __future__ import annotations

from rich.text import Text
from textual import events

from ...escape import printable
from .. import palette
from ..frame import Frame, StateRow
from ..messages import StateChosen
from .rows import RowList, cursor_style

_REL_ABBR = {"require": "req", "add": "add", "remove": "rm", "after": "aft"}
_REL_STYLE = {"require": "cyan", "add": "green", "remove": "red", "after": "bright_black"}


class StateView(RowList):
    """One row per state; the cursor row is the selected state (used by `j` / `J`)."""

    header_lines = 1
    repaint_changed = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.frame: Frame | None = None
        self.selected: str | None = None
        #: what is typed after `/` (None: not searching)
        self.query_text: str | None = None

    # ------------------------------------------------------------------ search

    def start_search(self) -> None:
        """Find states by name as you type: printable keys go to the search (not to the
        app's keys) until enter or escape; ↑ ↓ go to the previous / next match."""
        self.query_text = ""
        self._show_search()

    def check_consume_key(self, key: str, character: str | None) -> bool:
        """While searching, printable keys are text (the app's letter keys wait)."""
        return self.query_text is not None and character is not None and \
            character.isprintable()

    def matches(self) -> list[int]:
        """Rows whose state name contains the search text (case-insensitive)."""
        if self.frame is None or not self.query_text:
            return []
        low = self.query_text.lower()
        return [i for i, r in enumerate(self.frame.rows) if low in r.name.lower()]

    def on_key(self, event: events.Key) -> None:
        """Keys of the search (only while searching)."""
        if self.query_text is None:
            return
        key, char = event.key, event.character
        if key in ("escape", "enter"):
            self.query_text = None
        elif key == "backspace":
            self.query_text = self.query_text[:-1]
        elif key in ("down", "up"):
            found = self.matches()
            if found:
                later = [i for i in found if i > self.cursor] if key == "down" else \
                    [i for i in found if i < self.cursor][::-1]
                self._pick((later or (found if key == "down" else found[::-1]))[0])
        elif char is not None and char.isprintable():
            self.query_text += char
            found = self.matches()
            if found:  # a name that starts with the text first, else the first containing it
                assert self.frame is not None
                low = self.query_text.lower()
                self._pick(next((i for i in found
                                 if self.frame.rows[i].name.lower().startswith(low)), found[0]))
        else:
            return
        event.stop()
        event.prevent_default()
        self._show_search()

    def _show_search(self) -> None:
        if self.query_text is None:
            self.border_subtitle = ""
            return
        found = self.matches()
        count = f"{len(found)} match" + ("" if len(found) == 1 else "es") \
            if self.query_text else "type a name"
        self.border_subtitle = Text(f"/{printable(self.query_text)}  {count}  "
                                    "(↑↓ next · enter done)")

    def on_blur(self) -> None:
        """Leaving the pane ends the search; redraw the cursor row unfocused."""
        if self.query_text is not None:
            self.query_text = None
            self._show_search()
        self.refresh()

    def show(self, frame: Frame) -> None:
        """Draw `frame`, keeping the selected state under the cursor."""
        self.frame = frame
        names = [r.name for r in frame.rows]
        if self.selected in names:
            self.cursor = names.index(self.selected)
        else:
            self.cursor = min(self.cursor, max(len(names) - 1, 0))
            self.selected = names[self.cursor] if names else None
        self.rows_changed()  # most rows look the same from one step to the next
        self.set_border(self._title(), keep_subtitle=True)

    def _title(self) -> str:
        f = self.frame
        if f is None or f.tx is None:
            return "States"
        if f.step is None:
            return f"States after #{f.tx.number}"
        if f.step == 0:
            return f"States before #{f.tx.number} (step 0/{f.step_count})"
        return f"States at step {f.step}/{f.step_count} of #{f.tx.number}"

    def select(self, name: str) -> None:
        """Put the cursor on state `name`."""
        self.selected = name
        if self.frame is not None:
            names = [r.name for r in self.frame.rows]
            if name in names:
                self.show_row(names.index(name))

    # ------------------------------------------------------------------ RowList

    def row_count(self) -> int:
        return len(self.frame.rows) if self.frame is not None else 0

    def _name_width(self) -> int:
        return max((len(printable(r.name)) for r in self.frame.rows), default=5) \
            if self.frame else 5

    def render_header(self, line: int, width: int) -> Text:
        w = self._name_width()
        return Text(f"   {'state':<{w}} {'tick':>5} {'fl':<2} {'':<3} relations", style="bold")

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        assert self.frame is not None
        r = self.frame.rows[row]
        text = state_line(r, self._name_width())
        if selected:
            text.stylize(cursor_style(self.has_focus))
        return text

    def row_picked(self, row: int) -> None:
        assert self.frame is not None
        self.selected = self.frame.rows[row].name
        self.post_message(StateChosen(self.selected))

    def on_focus(self) -> None:
        """Redraw the cursor row in the focused colour."""
        self.refresh()



def state_line(r: StateRow, name_width: int) -> Text:
    """` ● Paid          3 M  +*  req Validated · rm PaymentPending`."""
    if r.active:
        colours = palette.current()
        colour = colours.active_error if r.is_error else colours.active
    else:
        colour = "green" if not r.is_error else "red"
    text = Text(" ")
    text.append("●" if r.active else "○", style=colour)
    text.append(" ")
    name_style = colour + (" underline" if r.called else "")
    name = printable(r.name)
    text.append(name, style=name_style)
    text.append(" " * (name_width - len(name)))
    text.append(f" {r.tick:>5} ", style="" if r.active else "dim")
    text.append(("A" if r.auto else " ") + ("M" if r.multi else " "), style="magenta")
    marks = r.marks
    text.append(f" {marks:<3} ", style=_marks_style(r))
    for i, (rel, targets) in enumerate(r.relations()):
        if i:
            text.append(" · ", style="dim")
        text.append(_REL_ABBR[rel] + " ", style=_REL_STYLE[rel])
        text.append(printable(" ".join(targets)), style="dim")
    return text


def _marks_style(r: StateRow) -> str:
    if r.cancel:
        return "bold red"
    if r.removed and not r.added:
        return "bold red"
    return "bold green"


__all__ = ["StateView", "state_line"]
