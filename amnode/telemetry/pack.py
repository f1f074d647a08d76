"""Merging a recording directory into one portable file (for a bug report), dropping damage.

Every segment header and every valid block found by the reader is copied byte for byte, so the
packed file reads exactly like the directory did, minus the damage itself (partial records,
corrupt frames). Frames the reader kept *unverified* (a torn tail whose check record was never
written, the readable start of a damaged block) are copied after a SALVAGED note and closed
with a new check record: the packed file is intact, and those frames still read as unverified.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RecordingError
from .format import Kind, encode_check, encode_frame, pack_body
from .reader import Recording, open_recording


def pack(src: str | os.PathLike[str] | Recording, dst: str | os.PathLike[str]) -> int:
    """Write the readable part of recording `src` (file or directory) to the file `dst`.

    `src` may also be a `Recording` already opened (it is not indexed again, nor closed).
    `dst` is replaced atomically; returns the number of bytes written. Raises `RecordingError`
    when `src` is not readable, OSError when `dst` cannot be written.
    """
    if isinstance(src, Recording):
        return _pack(src, Path(dst))
    with open_recording(src) as rec:
        return _pack(rec, Path(dst))


def _pack(rec: Recording, target: Path) -> int:
    """Copy `rec`'s segment headers and valid frame ranges, byte for byte, into `target`."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    written = 0
    segments = rec.segments()
    try:
        with open(tmp, "wb") as out:
            handles: dict[str, int] = {}
            try:
                for file, offset, header_end, ranges in segments:
                    fd = handles.get(file)
                    if fd is None:
                        fd = handles[file] = os.open(file, os.O_RDONLY)
                    for start, end, *salvaged in [(offset, header_end), *ranges]:
                        pos = start
                        block = bytearray()
                        if salvaged:  # unverified frames: say so in the copy
                            note = salvaged_note(salvaged[0])
                            out.write(note)
                            block += note
                            written += len(note)
                        while pos < end:
                            chunk = os.pread(fd, min(end - pos, 1 << 20), pos)
                            if not chunk:
                                raise RecordingError("shrank while packing", file)
                            out.write(chunk)
                            if salvaged:
                                block += chunk
                            pos += len(chunk)
                            written += len(chunk)
                        if salvaged:  # the note and the frames, closed as one block
                            check = encode_check(bytes(block), salvaged[0] + 1, 0)
                            out.write(check)
                            written += len(check)
            finally:
                for fd in handles.values():
                    os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def salvaged_note(frames: int) -> bytes:
    """The SALVAGED frame that precedes `frames` unverified frames in a packed block."""
    return encode_frame(int(Kind.SALVAGED), 0, 0, 0, 0, 0, pack_body({"frames": frames}))


__all__ = ["pack", "salvaged_note"]
