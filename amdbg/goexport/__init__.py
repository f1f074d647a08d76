"""asyncmachine-go interop: open Go am-dbg exports (`.gob.br`) as recordings, write them back.

`open_go_export(path)` converts an export into a native recording (cached) so every amdbg
command reads it at native speed; `to_amrec.convert` does the conversion, `from_amrec` the
opposite (`amdbg export`). The export layout is in `layout.py`, the codec in `amdbg.gob`;
docs/go-interop.md describes what is carried and what is not.
"""

from .opener import GoExport, is_go_export, open_go_export, sniff

__all__ = ["GoExport", "is_go_export", "open_go_export", "sniff"]
