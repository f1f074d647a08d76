"""Decoded transitions, kept for the rows on screen and the cursor (a small LRU)."""

from __future__ import annotations

from collections import OrderedDict

from amnode.telemetry import RecordedMachine, TransitionRecord


class TxCache:
    """The last `size` decoded transitions; decoding is the expensive part of drawing a row."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], TransitionRecord] = OrderedDict()

    def get(self, machine: RecordedMachine, number: int) -> TransitionRecord:
        """Transition `number` of `machine`, decoded once."""
        key = (machine.key, number)
        tx = self._items.get(key)
        if tx is None:
            tx = machine.transition(number)
            self._items[key] = tx
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return tx

    def __contains__(self, key: object) -> bool:
        """Whether (machine key, number) is decoded already (the LRU order is kept)."""
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["TxCache"]
