"""The matrix view (`m`): the current transition as numbers, one column per state — a "called"
row, a tick-delta row and the state-by-state relation matrix (see `amdbg.tui.matrix`).

Rows are drawn on demand (a virtual list), so stepping through a million transitions costs one
matrix per key. Moving the cursor onto a state's row selects that state (`j` / `J` jump by it).
"""

from __future__ import annotations

from rich.text import Text

from amnode.telemetry import TransitionRecord

from ...escape import printable
from ..matrix import Matrix, build_matrix
from ..messages import StateChosen
from .rows import RowList, cursor_style

#: characters per column
CELL = 3
#: widest state-name label on the left
LABEL_MAX = 24
#: the first rows: called, tick deltas
FIXED_ROWS = ("called", "Δ tick")
_SELECTED_COLUMN = "on #3a3a1a"


class MatrixView(RowList):
    """Rows: called, tick deltas, then one per state (relations into it, by source column)."""

    header_lines = 1

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.matrix: Matrix | None = None
        self.tx: TransitionRecord | None = None
        self.step: int | None = None
        self.selected: str | None = None

    def show(self, tx: TransitionRecord | None, cols: list[int], step: int | None = None,
             selected: str | None = None) -> None:
        """Draw the matrix of `tx` over the states `cols` (as of `step`), highlighting the
        state `selected`."""
        self.tx, self.step, self.selected = tx, step, selected
        self.matrix = build_matrix(tx, cols, step) if tx is not None else None
        m = self.matrix
        if m is not None and selected in m.names:
            self.cursor = len(FIXED_ROWS) + m.names.index(selected)
        self.reset()
        self.border_title = self._title()

    def _title(self) -> Text:
        m, tx = self.matrix, self.tx
        if m is None or tx is None:
            return Text("Matrix")
        at = f"#{tx.number}" + (f" step {self.step}" if self.step is not None else "")
        return Text(f"Matrix {at}: Δ{m.delta_sum} t{tx.time_sum}")

    # ------------------------------------------------------------------ RowList

    def row_count(self) -> int:
        return len(FIXED_ROWS) + len(self.matrix.cols) if self.matrix is not None else 0

    def _label_width(self) -> int:
        m = self.matrix
        if m is None:
            return 8
        idx = len(str(max(m.cols, default=0)))
        names = max((len(printable(n)) for n in m.names), default=0)
        return min(max(idx + 1 + names, *(len(r) for r in FIXED_ROWS)), LABEL_MAX)

    def _selected_col(self) -> int | None:
        m = self.matrix
        return m.names.index(self.selected) if m is not None and self.selected in m.names \
            else None

    def render_header(self, line: int, width: int) -> Text:
        m = self.matrix
        text = Text(" " * (self._label_width() + 1), style="bold")
        if m is None:
            return text
        sel = self._selected_col()
        for k, i in enumerate(m.cols):
            text.append(f"{i:>{CELL}}", style="bold " + (_SELECTED_COLUMN if k == sel else ""))
        return text

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        m = self.matrix
        assert m is not None
        lw = self._label_width()
        sel = self._selected_col()
        if row < len(FIXED_ROWS):
            text = Text(f"{FIXED_ROWS[row]:<{lw}} ", style="bold")
            values = m.called if row == 0 else m.deltas
        else:
            k = row - len(FIXED_ROWS)
            label = f"{m.cols[k]} {printable(m.names[k])}"
            if len(label) > lw:
                label = label[:lw - 1] + "…"
            style = "bold yellow" if k == sel else ""
            text = Text(f"{label:<{lw}} ", style=style)
            values = m.relations[k]
        for k, v in enumerate(values):
            style = "dim" if not v else ("bold underline" if row == 0 else "bold")
            if k == sel:
                style += " " + _SELECTED_COLUMN
            text.append(f"{v if v else '.':>{CELL}}", style=style)
        if selected:
            text.stylize(cursor_style(self.has_focus))
        return text

    def row_picked(self, row: int) -> None:
        m = self.matrix
        if m is None or row < len(FIXED_ROWS):
            return
        self.selected = m.names[row - len(FIXED_ROWS)]
        self.post_message(StateChosen(self.selected))

    def on_focus(self) -> None:
        """Redraw the cursor row in the focused colour."""
        self.refresh()

    def on_blur(self) -> None:
        """Redraw the cursor row in the unfocused colour."""
        self.refresh()


__all__ = ["CELL", "FIXED_ROWS", "MatrixView"]
