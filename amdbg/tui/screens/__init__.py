"""Dialogs of `amdbg replay`: help and filters."""
