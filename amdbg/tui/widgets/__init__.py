"""The panes of `amdbg replay`, one module each."""
