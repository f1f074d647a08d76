"""A virtual list (Textual Line API): renders only the rows on screen, so a list of a million
transitions costs what the visible forty cost. Subclasses say how many rows there are and how
one row looks; the base class does the cursor, scrolling, keys and mouse."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...escape import printable_segments
from .. import palette
from .repaint import LineRepaint


class RowList(LineRepaint, ScrollView, can_focus=True, inherit_bindings=False):
    """A scrollable list of rows with a cursor and an optional header line. A cursor move
    (`show_row`) or new content (`rows_changed`) repaints only the lines that changed when
    the subclass sets `repaint_changed`."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "up", show=False),
        Binding("down", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
    ]

    #: lines at the top that do not scroll (column titles)
    header_lines = 0
    #: keep drawn rows until `reset`/`forget_rows` (only for lists whose rows depend on no
    #: more than the row, the cursor and `row_key`)
    cache_rows = False
    #: a cursor move or new content repaints only the lines that changed (`LineRepaint`);
    #: only for lists whose every drawn line goes through `RowList.render_line` (a subclass
    #: that returns lines of its own would be compared against lines it never drew)
    repaint_changed = False

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.cursor = 0
        #: drawn rows by (row, selected, focused, width, row_key): a scroll redraws every
        #: line, but only the rows that came into view are rendered again
        self._drawn: dict[tuple[object, ...], Strip] = {}
        self._base_style: Style | None = None

    # ------------------------------------------------------------------ to implement

    def row_count(self) -> int:
        """How many rows the list has."""
        return 0

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        """One row as text (it is cropped to `width`)."""
        return Text()

    def render_header(self, line: int, width: int) -> Text:
        """Header line `line` (0-based)."""
        return Text()

    def row_picked(self, row: int) -> None:
        """The user moved the cursor to `row` (keys or mouse); subclasses post a message."""

    def row_key(self, row: int) -> object:
        """What, besides the cursor and the width, `render_row(row)` depends on (the cache
        key of the drawn row); subclasses whose rows change without `reset` extend it."""
        return None

    def forget_rows(self) -> None:
        """Drop the drawn rows (their look changed: time mode, styles, data) and redraw."""
        self._drawn.clear()
        self._base_style = None
        self.refresh()

    def notify_style_update(self) -> None:
        """CSS (focus, theme) changed: drawn rows may have another background."""
        super().notify_style_update()
        self._drawn.clear()
        self._base_style = None
        self.forget_painted()

    # ------------------------------------------------------------------ model changes

    def reset(self) -> None:
        """The rows changed: recompute the scroll size and redraw."""
        self._fit_rows()
        self.forget_rows()

    def rows_changed(self) -> None:
        """The rows' content changed (not their look otherwise): recompute the scroll size
        and repaint the lines that now differ (`reset` repaints them all)."""
        self._fit_rows()
        self._drawn.clear()
        self.repaint()

    def _fit_rows(self) -> None:
        """The scroll size for the current row count, and the cursor kept inside it."""
        count = self.row_count()
        size = Size(self.size.width, count + self.header_lines)
        if self.virtual_size != size:
            self.virtual_size = size
        self.cursor = min(self.cursor, max(count - 1, 0))

    @property
    def page(self) -> int:
        """Rows that fit on screen."""
        return max(self.scrollable_content_region.height - self.header_lines, 1)

    def show_row(self, row: int) -> None:
        """Put the cursor on `row` and scroll it into view (centred when it jumped far)."""
        self.cursor = row
        top = int(self.scroll_y)
        page = self.page
        if row < top or row >= top + page:
            far = row < top - page or row >= top + 2 * page
            target = row - page // 2 if far else (row if row < top else row - page + 1)
            self.scroll_to(y=max(target, 0), animate=False, immediate=True)
        self.repaint()  # the old and the new cursor row (after a scroll: all)

    def repaint(self) -> None:
        """Repaint the lines that changed (every line unless `repaint_changed`)."""
        if self.repaint_changed:
            self.repaint_lines(self._line)
        else:
            self.refresh()

    # ------------------------------------------------------------------ input

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by `delta` rows."""
        self._pick(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        """Move the cursor by a page."""
        self._pick(self.cursor + delta * self.page)

    def _pick(self, row: int) -> None:
        count = self.row_count()
        if not count:
            return
        row = max(0, min(row, count - 1))
        self.show_row(row)
        self.row_picked(row)

    def on_click(self, event: events.Click) -> None:
        """Clicking a row picks it."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < self.header_lines:
            return
        row = int(self.scroll_y) + offset.y - self.header_lines
        if 0 <= row < self.row_count():
            event.stop()
            self.focus()
            self._pick(row)

    # ------------------------------------------------------------------ Line API

    def on_resize(self) -> None:
        """Keep the scroll size in step with the size, and the cursor row in view (the
        first resize is when the list learns how many rows fit)."""
        self.virtual_size = Size(self.size.width, self.row_count() + self.header_lines)
        self.call_after_refresh(self._keep_cursor_in_view)

    def _keep_cursor_in_view(self) -> None:
        if self.row_count():
            self.show_row(min(self.cursor, self.row_count() - 1))

    def render_line(self, y: int) -> Strip:
        """Draw line `y` of the widget: a header line or a row."""
        return self.remember(y, self._line(y, self.scrollable_content_region.width))

    def _line(self, y: int, width: int) -> Strip:
        """Line `y` as it is drawn now (rows are cached when `cache_rows`)."""
        if self._base_style is None:
            self._base_style = self.rich_style
        base = self._base_style
        key: tuple[object, ...] | None = None
        if y < self.header_lines:
            text = self.render_header(y, width)
        else:
            row = int(self.scroll_y) + y - self.header_lines
            if row >= self.row_count():
                return Strip.blank(width, base)
            if self.cache_rows:
                key = (row, row == self.cursor, self.has_focus, width, palette.current(),
                       self.row_key(row))
                cached = self._drawn.get(key)
                if cached is not None:
                    return cached
            text = self.render_row(row, width, row == self.cursor)
        text.no_wrap = True
        text.overflow = "crop"
        text.truncate(width, pad=True)
        segments = printable_segments(text.render(self.app.console))  # a safety net
        strip = Strip([Segment(s.text, base + s.style if s.style else base, s.control)
                       for s in segments if s.text != "\n"], width)
        strip = strip.crop_extend(0, width, base)
        if key is not None:
            if len(self._drawn) > 4096:  # rows scrolled past: keep the memory bounded
                self._drawn.clear()
            self._drawn[key] = strip
        return strip


def cursor_style(focused: bool) -> Style:
    """Background of the cursor row (stronger when the list has the focus)."""
    colours = palette.current()
    return Style(bgcolor=colours.cursor_focus if focused else colours.cursor_blur, bold=focused)


__all__ = ["RowList", "cursor_style"]
