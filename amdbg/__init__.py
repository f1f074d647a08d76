"""amdbg: the debugger for amnode recordings.

`amdbg.session.Session` is the UI-independent query layer (machine and transition selection,
filters, time lookups, graphs); `amdbg.cli` is the `amdbg` command line built on it and
`amdbg.tui` the interactive debugger. Recordings are untrusted input: whatever of them is
shown goes through `amdbg.escape`. amdbg is not amnode: its errors (`amdbg.errors`) are its own.
"""

__all__: list[str] = []
