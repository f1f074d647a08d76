"""amnode.node: supervisor, worker and client of a worker pool (planned; see api.md "Node").

Nothing is implemented here yet; the package holds the place the architecture gives it.
"""
