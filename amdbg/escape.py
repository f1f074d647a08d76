"""Text from a recording, made safe to show: the one place amdbg escapes control characters.

Recordings travel in bug reports, so every string in them (machine ids, state and handler
names, args, log lines, transition ids, file names) is untrusted: printed raw, an ESC sequence
in a state name could clear the screen, set the window title (OSC 0), write the clipboard
(OSC 52) or hide output. Before anything reaches a terminal amdbg replaces every C0 and C1
control character, DEL and the Unicode bidi and line/paragraph separators with a visible escape
(`\\x1b`, `\\n`, `\\u202e`), so the text shows literally and cannot act.

Where each helper is used (docs/recording-format.md, "Showing untrusted recordings"):

* `printable()` — every recorded string put into output, at the place it is put there (the
  command-line verbs, graph exports, the TUI panes, error and warning lines);
* `printable_segments()` — the command-line printer's last step: whatever a renderable holds,
  its text segments are escaped again (layout newlines kept), so a forgotten field still
  cannot reach the terminal raw;
* `escape_json()` — JSON output: the same characters as JSON `\\uXXXX` escapes (`json.dumps`
  escapes C0 itself but lets C1 and DEL through);
* in the TUI, recorded text is never parsed as Textual markup: it goes into `Text` objects,
  border titles are set as `Text`, and notifications are sent with `markup=False`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.segment import Segment

#: what is escaped: C0 controls, DEL and C1 controls, the Arabic letter mark, LRM/RLM, the line
#: and paragraph separators, and the bidi embedding/override/isolate controls
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHERS}]")
_CONTROL_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`, ...);
    `newlines=True` keeps line breaks (multi-line log entries shown in full)."""
    if text.isprintable():  # the common case: nothing to escape
        return text
    return (_CONTROL_BUT_NEWLINE if newlines else _CONTROL).sub(_visible, text)


def printable_segments(segments: Iterable[Segment]) -> list[Segment]:
    """Rendered segments with their text escaped (line breaks kept); rich's own control
    segments (cursor moves it makes itself) pass unchanged."""
    out = []
    for seg in segments:
        text = seg.text
        if seg.control or text.isprintable() or text == "\n":
            out.append(seg)
        else:
            out.append(Segment(printable(text, newlines=True), seg.style, seg.control))
    return out


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_json(text: str) -> str:
    """JSON text with every character `printable` escapes written as a `\\uXXXX` escape (the
    same data for a JSON parser; nothing a terminal acts on). Its layout newlines stay: in
    JSON text a raw line break can only be layout (strings hold it escaped)."""
    return _CONTROL_BUT_NEWLINE.sub(_json_escape, text)


__all__ = ["escape_json", "printable", "printable_segments"]
