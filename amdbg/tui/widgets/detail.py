"""The current transition in detail: what was called, the result and why, time, source and
caused transitions (click or `s` to go there), steps with the step cursor, handlers with their
durations, args and log lines."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from amnode.telemetry import TransitionRecord

from ...describe import (
    UNVERIFIED_NOTE,
    cancel_reason,
    changes_label,
    error_text,
    first_line,
    flag_names,
)
from ...escape import printable, printable_segments
from ...session import Selection
from .. import palette
from ..frame import MARK_REMOVED, step_text
from ..timefmt import took, when
from .repaint import LineRepaint


def _link(text: str, action: str, style: str = "underline cyan") -> Text:
    return Text(text, style=Style.parse(style) + Style.from_meta({"@click": action}))


def _heading(text: str) -> Text:
    return Text(text, style="bold underline")


class TransitionDetail(LineRepaint, ScrollView, can_focus=True, inherit_bindings=False):
    """A scrollable page about one transition, drawn with the Line API: the page is rendered
    to lines once per cursor move, and its scroll height changes only when it outgrows the
    pane, so stepping never costs a screen re-layout. Focusable (tab): arrows scroll, enter
    or x expands the tracebacks and other multi-line log entries (kept while stepping)."""

    BINDINGS = [
        Binding("up", "scroll_up", "scroll up", show=False),
        Binding("down", "scroll_down", "scroll down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("enter", "toggle_expand", "expand", show=False),
        Binding("x", "toggle_expand", "expand", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.page: RenderableType = Text()
        self._lines: list[Strip] = []
        self._width = 0
        #: multi-line log entries (tracebacks) shown in full
        self.expanded = False
        self._args: dict[str, Any] | None = None
        self._base_style: Style | None = None

    def show(self, tx: TransitionRecord | None, *, step: int | None, base_ns: int | None,
             mode: str, total: int, source: Selection | None,
             forks: list[Selection] | None, forks_note: str = "") -> None:
        """Draw `tx` (None: the machine has no transitions)."""
        self._args = None
        if tx is None:
            self.set_border("Transition", keep_subtitle=True)
            self.page = Text("no transitions recorded for this machine", style="dim")
        else:
            self._args = {"tx": tx, "step": step, "base_ns": base_ns, "mode": mode,
                          "total": total, "source": source, "forks": forks,
                          "forks_note": forks_note}
            self.set_border(f"Transition #{tx.number} of {total}", keep_subtitle=True)
            self.page = render_detail(tx, step=step, base_ns=base_ns, mode=mode,
                                      source=source, forks=forks, forks_note=forks_note,
                                      expand=self.expanded)
        self._layout_page()

    def action_toggle_expand(self) -> None:
        """Show multi-line log entries (tracebacks) in full, or one line each again."""
        self.expanded = not self.expanded
        if self._args is not None:
            self.show(**self._args)

    def on_focus(self) -> None:
        """Say how to expand what is folded (the border's subtitle)."""
        self.border_subtitle = "↑↓ scroll · enter/x " + ("folds" if self.expanded
                                                          else "expands tracebacks")

    def on_blur(self) -> None:
        """Clear the hint."""
        self.border_subtitle = ""

    def show_error(self, number: int | None, error: str) -> None:
        """Say that transition `number` could not be read (a damaged record)."""
        self.set_border(f"Transition #{number}", keep_subtitle=True)
        self.page = Text(f"cannot read this transition: {printable(error)}", style="bold red")
        self._layout_page()

    def _layout_page(self) -> None:
        width = max(self.scrollable_content_region.width, 10)
        console = self.app.console
        rendered = console.render_lines(self.page, console.options.update_width(width),
                                        pad=False)
        self._lines = [Strip(printable_segments(line)) for line in rendered]  # a safety net
        self._width = width
        height = max(len(self._lines), self.scrollable_content_region.height)
        if self.virtual_size != Size(width, height):
            self.virtual_size = Size(width, height)
            self.refresh()
        else:  # most lines of the page read the same from one step to the next
            self.repaint_lines(self._line)

    def notify_style_update(self) -> None:
        """CSS (focus, theme) changed: the lines' background may have changed."""
        super().notify_style_update()
        self._base_style = None
        self.forget_painted()

    def on_resize(self) -> None:
        """Re-wrap the page for the new width."""
        if self.is_mounted:
            self._layout_page()

    def lines(self, width: int = 70) -> list[str]:
        """The page as plain lines (what is on screen, without styles)."""
        console = self.app.console
        rendered = console.render_lines(self.page, console.options.update_width(width))
        return ["".join(seg.text for seg in line).rstrip() for line in rendered]

    def render_line(self, y: int) -> Strip:
        """Line `y` of the visible part of the page."""
        return self.remember(y, self._line(y, self.scrollable_content_region.width))

    def _line(self, y: int, width: int) -> Strip:
        """Line `y` of the visible part of the page as it is drawn now."""
        n = int(self.scroll_y) + y
        if self._base_style is None:  # rich_style walks the ancestors: once, not per line
            self._base_style = self.rich_style
        base = self._base_style
        if n >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[n]
        strip = Strip([Segment(s.text, base + s.style if s.style else base, s.control)
                       for s in line])
        return strip.crop_extend(0, width, base)


def render_detail(tx: TransitionRecord, *, step: int | None, base_ns: int | None, mode: str,
                  source: Selection | None, forks: list[Selection] | None,
                  forks_note: str = "", expand: bool = False) -> RenderableType:
    """The page as a rich renderable (links run app actions when clicked); `expand` shows
    multi-line log entries (tracebacks) in full instead of their first line."""
    parts: list[RenderableType] = [Text(printable(tx.url), style="bold")]
    head = Text()
    head.append(f"{printable(tx.type)} ", style="bold")
    head.append(printable(" ".join(tx.called)), style="bold underline")
    if tx.args:
        head.append("  " + printable(" ".join(f"{k}={v}" for k, v in tx.args.items())),
                    style="dim")
    parts.append(head)
    if tx.unverified:
        parts.append(Text(f"UNVERIFIED: {UNVERIFIED_NOTE}", style="bold yellow"))
    result = Text()
    reason = cancel_reason(tx)
    if tx.is_check:
        result.append("CHECK ", style="bold blue")
    if tx.accepted:
        result.append("✓ ACCEPTED", style="bold green")
    else:
        result.append("✗ CANCELED", style="bold red")
    if reason is not None:
        result.append(f"  {printable(reason.text)}")
    changes = printable(changes_label(tx)).replace(" -", " " + MARK_REMOVED)
    if changes.startswith("-"):
        changes = MARK_REMOVED + changes[1:]
    if changes:
        result.append(f"  {changes}", style="dim")
    parts.append(result)
    facts = Text(style="dim")
    flags = flag_names(tx)
    if flags:
        facts.append(" ".join(flags) + " · ", style="magenta")
    at = when(tx.end_ns, base_ns, mode)
    if at:
        facts.append(f"{at} · took {took(tx.duration_ns, mode)} · ")
    before = sum(tx.time_before)
    facts.append(f"t{before} → t{tx.time_sum} · queue {tx.queue_len} (tick {tx.queue_tick})")
    parts.append(facts)
    err = error_text(tx)
    if err:
        parts.append(Text(f"error: {printable(err)}", style="bold red"))

    src = Text("source  ", style="bold")
    if tx.source is None:
        src.append("-", style="dim")
    elif source is not None and source.machine is not None:
        src.append_text(_link(f"{printable(source.machine.key)} #{source.number}",
                              "app.source"))
        src.append(f"  {printable(tx.source.tx_id)}  (s)", style="dim")
    else:
        src.append(f"{printable(str(tx.source))} (not in this recording)", style="dim")
    parts.append(src)
    caused = Text("caused  ", style="bold")
    if forks is None:
        caused.append("looking...", style="dim")
    elif not forks:
        caused.append("-", style="dim")
    for i, f in enumerate(forks or ()):
        if f.machine is None:
            continue
        if i:
            caused.append("  ")
        caused.append_text(_link(f"{printable(f.machine.key)} #{f.number}",
                                 f"app.goto({f.machine.key!r}, {f.number})"))
    if forks_note:
        caused.append(f"  {forks_note}", style="dim")
    parts.append(caused)

    parts.append(Text())
    steps_title = f"Steps ({len(tx.steps)})"
    if step is not None:
        steps_title += f"  · at step {step}/{len(tx.steps)}  ([ ])"
    parts.append(_heading(steps_title))
    if not tx.steps:
        parts.append(Text("  none recorded", style="dim"))
    for i, s in enumerate(tx.steps, 1):
        line = Text()
        here = step is not None and i == step
        done = step is None or i <= step
        line.append("▶" if here else " ", style="bold yellow")
        line.append_text(_link(f"{i:>3} ", f"app.goto_step({i})", "dim"))
        style = _step_style(s.type) if done else "dim"
        line.append(printable(step_text(s)), style=style)
        if s.type == "handler" and s.duration_ns and mode != "off":
            line.append(f"  {took(s.duration_ns, mode)}", style="dim")
        if here:
            line.stylize("on " + palette.current().step_here)
        parts.append(line)

    handlers = tx.handlers
    parts.append(Text())
    parts.append(_heading(f"Handlers ({len(handlers)})"))
    if not handlers:
        parts.append(Text("  none ran", style="dim"))
    for name, ns in handlers:
        line = Text(f"  {printable(name) or '?'}")
        if mode != "off":
            line.append(f"  {took(ns, mode)}", style="dim")
        parts.append(line)
    if tx.args:
        parts.append(Text())
        parts.append(_heading(f"Args ({len(tx.args)})"))
        for key, value in tx.args.items():
            line = Text(f"  {printable(key)} ", style="bold")
            line.append(printable(value))
            parts.append(line)
    for title, lines in (("Log", tx.log), ("Log before", tx.pre_log)):
        if not lines:
            continue
        parts.append(Text())
        parts.append(_heading(f"{title} ({len(lines)})"))
        for entry in lines:
            text = printable(first_line(entry.text))
            extra = entry.text.count("\n")
            line = Text(f"  {entry.level} ", style="dim")
            line.append(text, style="red" if text.startswith("[error") else (
                "dim" if entry.level >= 4 else ""))
            if extra and not expand:
                line.append(f"  (+{extra} lines: enter expands)", style="dim")
            parts.append(line)
            if extra and expand:
                for rest in entry.text.split("\n")[1:]:
                    parts.append(Text("      " + printable(rest),
                                      style="red" if text.startswith("[error") else "dim"))
    if tx.truncated:
        parts.append(Text("record truncated at the recorder's size limits", style="dim"))
    return Group(*parts)


def _step_style(kind: str) -> str:
    return {"activate": "green", "deactivate": "red", "deactivate-passive": "red",
            "handler": "yellow", "cancel": "bold red", "called": "bold"}.get(kind, "")


__all__ = ["TransitionDetail", "render_detail"]
