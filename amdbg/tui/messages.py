"""Messages the panes post to the app: what the user chose, never how to redraw.

The app owns the cursor (machine, transition, step, state); panes only ask to move it.
Links in the detail pane (source, caused transitions, steps) run app actions instead.
"""

from __future__ import annotations

from textual.message import Message


class MachineChosen(Message):
    """The user chose a machine (machine list, search, network graph)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class TransitionChosen(Message):
    """The user chose a transition of the selected machine (list row, keys, mouse)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number


class StateChosen(Message):
    """The user chose a state (state view, graph); `j`/`J` jump by it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class StepChosen(Message):
    """The user chose a step of the current transition (detail pane)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step


__all__ = ["MachineChosen", "StateChosen", "StepChosen", "TransitionChosen"]
