"""Repaint only what changed: a mixin for the panes drawn with Textual's Line API.

A cursor move changes a few lines of a pane and its border title, but `refresh()` and
setting `border_title` repaint every line of the widget (Textual re-renders each line with
its border and background, then the screen composes them). Panes that remember the lines
they drew can instead compare the new lines with them and mark only the differing ones
dirty, and change a border title by repainting that border line alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.geometry import Region
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    _Base = ScrollView
else:  # a plain mixin: Textual takes a widget's default CSS from its first widget base
    _Base = object


class LineRepaint(_Base):
    """Remembers the strip drawn at each content line (`remember`, called by `render_line`)
    and repaints only the lines that differ (`repaint_lines`); `set_border` changes the
    border title and subtitle repainting the border lines only."""

    #: True while `set_border` assigns the titles (their setters ask for a full repaint)
    _quiet = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: content line -> the strip last drawn there (what the screen shows there unless
        #: the line is dirty already: a scroll or a resize repaints every line anyway)
        self._painted: dict[int, Strip] = {}

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Any:
        """Textual's refresh; a whole-widget repaint asked for by a title setter inside
        `set_border` is dropped (`set_border` repaints the border line instead)."""
        if self._quiet and not regions and not layout and not recompose:
            return self
        if not regions and repaint:
            self._painted.clear()  # everything is drawn again
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def forget_painted(self) -> None:
        """The painted lines no longer tell what is on screen (styles changed)."""
        self._painted.clear()

    def remember(self, y: int, strip: Strip) -> Strip:
        """Note that `strip` is drawn at content line `y` (now); returns it."""
        self._painted[y] = strip
        return strip

    def repaint_lines(self, line: Callable[[int, int], Strip]) -> None:
        """The content changed: repaint the content lines whose strip (`line(y, width)`)
        differs from the one drawn there (lines not drawn yet are repainted)."""
        region = self.scrollable_content_region
        width = region.width
        painted = self._painted
        dirty = [y for y in range(region.height) if painted.get(y) != line(y, width)]
        if len(dirty) == region.height:
            self.refresh(self.size.region)  # every content line, not the border
            return
        start = 0
        for i, y in enumerate(dirty):  # one region per run of adjacent lines
            painted.pop(y, None)
            if i + 1 == len(dirty) or dirty[i + 1] != y + 1:
                self.refresh(Region(0, dirty[start], width, y + 1 - dirty[start]))
                start = i + 1

    def set_border(self, title: str | Text | None, subtitle: str | Text | None = None,
                   *, keep_subtitle: bool = False) -> None:
        """Set the border title (and the subtitle unless `keep_subtitle`), repainting only
        the border lines whose text changed."""
        top = str(title or "") != str(self.border_title or "")
        bottom = not keep_subtitle and str(subtitle or "") != str(self.border_subtitle or "")
        if not top and not bottom:
            return
        self._quiet = True
        try:
            if top:
                self.border_title = title
            if bottom:
                self.border_subtitle = subtitle
        finally:
            self._quiet = False
        if not self.is_mounted or not self.size:
            super().refresh()
            return
        gutter = self.content_offset
        width = self.outer_size.width
        if top:
            super().refresh(Region(-gutter.x, -gutter.y, width, 1))
        if bottom:
            super().refresh(Region(-gutter.x, self.outer_size.height - 1 - gutter.y, width, 1))


__all__ = ["LineRepaint"]
