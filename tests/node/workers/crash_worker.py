"""A worker command that crashes at start (a bad configuration)."""

import sys

print("starting the crash worker", flush=True)
print("boom: missing config /etc/worker.conf", file=sys.stderr, flush=True)
sys.exit(3)
