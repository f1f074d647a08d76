"""Merging a recording directory into one portable file (for a bug report), dropping damage.

Every segment header and every valid frame range found by the reader is copied byte for byte,
so the packed file reads exactly like the directory did, minus torn tails and corrupt frames;
frames salvaged from a damaged block get a new check record, so the packed file is clean.
"""

from __future__ import annotations

import os
from pathlib import Path

from .format import encode_check
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
                        while pos < end:
                            chunk = os.pread(fd, min(end - pos, 1 << 20), pos)
                            if not chunk:
                                raise OSError(f"{file} shrank while packing")
                            out.write(chunk)
                            if salvaged:
                                block += chunk
                            pos += len(chunk)
                            written += len(chunk)
                        if salvaged:
                            # frames kept from a damaged block: close them as a block
                            check = encode_check(bytes(block), salvaged[0], 0)
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


__all__ = ["pack"]
