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

Reading is three layers: `scan.py` walks a file's frames and blocks once and indexes them
(damage, torn tails and unverified records are found there), `decode.py` validates and decodes
record bodies, and `reader.py` is the public model (`Recording`, `RecordedMachine`). The byte
layout is in `format.py` and docs/recording-format.md; `pack()` merges a recording directory
into one portable file. Errors derive from `amnode.AmnodeError` (`errors.py`).
"""

from . import endpoint, flight, process, push, receiver
from .env import install, process_recorder, uninstall
from .errors import (
    NewerFormatError,
    RecorderClosedError,
    RecorderError,
    RecordingError,
    RecordingFileError,
    TransitionRangeError,
    UnknownMachineError,
)
from .format import ERROR_ARG, FILE_SUFFIX, VERSION_MAJOR, VERSION_MINOR
from .pack import pack
from .reader import Growth, RecordedMachine, Recording, open_recording
from .recorder import Recorder
from .records import (
    Corruption,
    FailureRecord,
    LogLine,
    MachineState,
    ProcessInfo,
    QueuedRecord,
    SchemaVersion,
    Source,
    StepRecord,
    TransitionRecord,
    TransitionSummary,
    UnverifiedSummary,
    mach_url,
)
from .writer import RecordWriter

__all__ = [
    "ERROR_ARG",
    "FILE_SUFFIX",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "Corruption",
    "FailureRecord",
    "Growth",
    "LogLine",
    "MachineState",
    "NewerFormatError",
    "ProcessInfo",
    "QueuedRecord",
    "RecordWriter",
    "RecordedMachine",
    "Recorder",
    "RecorderClosedError",
    "RecorderError",
    "Recording",
    "RecordingError",
    "RecordingFileError",
    "SchemaVersion",
    "Source",
    "StepRecord",
    "TransitionRangeError",
    "TransitionRecord",
    "TransitionSummary",
    "UnknownMachineError",
    "UnverifiedSummary",
    "endpoint",
    "flight",
    "install",
    "mach_url",
    "open_recording",
    "pack",
    "process",
    "process_recorder",
    "push",
    "receiver",
    "uninstall",
]
