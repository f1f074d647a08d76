"""`amdbg replay`: the Textual TUI debugger over `amdbg.session.Session`.

Layout (one module per pane under `widgets/`, dialogs under `screens/`, styles in app.tcss):
address bar; machine list | state view + transition detail (or the graph); transition list;
footer. UI-independent pieces: `frame` (state rows at a cursor), `timeline` (filters over a
machine's transitions), `jump` (`j`/`J`), `canvas` (graph drawing), `keys` (the key table),
`history` (back / forward through jumps), `palette` (the dark and light themes' own colours).
"""

from .app import ReplayApp

__all__ = ["ReplayApp"]
