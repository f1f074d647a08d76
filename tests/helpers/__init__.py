"""Shared test helpers (fixtures that are not tests): machines, aRPC peers, recordings."""
