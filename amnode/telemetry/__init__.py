"""amnode.telemetry: record every transition of every machine to disk and read recordings back.

Recording (see `recorder.py`, `env.py`):

    from amnode.telemetry import Recorder
    with Recorder("rec/") as rec:      # a directory (one file per process) or a .amrec file
        rec.attach(machine)            # follows submachines created later

    AMNODE_RECORD=rec/ python app.py   # every machine of the process and its children

Reading (see `reader.py` for the full API; `records.py` for the value types):

    from amnode.telemetry import open_recording
    rec = open_recording("rec/")
    tx = rec.machine("worker").transition(1)

The byte layout is in `format.py` and docs/recording-format.md; `pack()` merges a recording
directory into one portable file.
"""

from .env import install, process_recorder, uninstall
from .errors import NewerFormatError, RecordingError
from .format import FILE_SUFFIX, VERSION_MAJOR, VERSION_MINOR
from .pack import pack
from .reader import RecordedMachine, Recording, open_recording
from .recorder import Recorder
from .records import (
    Corruption,
    LogLine,
    MachineState,
    ProcessInfo,
    QueuedRecord,
    SchemaVersion,
    Source,
    StepRecord,
    TransitionRecord,
    TransitionSummary,
    mach_url,
)
from .writer import RecordWriter

__all__ = [
    "FILE_SUFFIX", "VERSION_MAJOR", "VERSION_MINOR", "Corruption", "LogLine", "MachineState",
    "NewerFormatError", "ProcessInfo", "QueuedRecord", "RecordWriter", "RecordedMachine",
    "Recorder", "Recording", "RecordingError", "SchemaVersion", "Source", "StepRecord",
    "TransitionRecord", "TransitionSummary", "install", "mach_url", "open_recording", "pack",
    "process_recorder", "uninstall",
]
