"""amdbg.testing: assertions on recordings, golden runs and the pytest plugin's machinery.

    from amdbg.testing import open_run
    with open_run("rec/") as run:
        run.machine("order-*").transitions(called="Paid", accepted=False).assert_count(2)

`recording.py` is the assertion API (`Run`, `Machines`, `Transitions`), `golden.py` compares a
run with a golden one (through `amdbg.compare`, like `amdbg diff`), `report.py` writes the
section a failing test's report gains, and `plugin.py` is the pytest plugin's work (enabled by
`amdbg.pytest_plugin`, the entry point). docs/testing.md has the workflow.
"""

from .recording import (
    Machines,
    RecordingAssertionError,
    Run,
    Transitions,
    describe,
    is_error_transition,
    open_run,
    replay_command,
)

__all__ = ["Machines", "RecordingAssertionError", "Run", "Transitions", "describe",
           "is_error_transition", "open_run", "replay_command"]
