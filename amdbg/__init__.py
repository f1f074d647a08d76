"""amdbg: the debugger for amnode recordings.

`amdbg.session.Session` is the UI-independent query layer (machine and transition selection,
filters, time lookups, graphs); `amdbg.cli` is the `amdbg` command line built on it.
"""
