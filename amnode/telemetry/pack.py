"""Merging a recording directory into one portable file (for a bug report), dropping damage.

Every segment header and every valid block found by the reader is copied byte for byte, so the
packed file reads exactly like the directory did, minus the damage itself (partial records,
corrupt frames). A pack named `*.amrec.gz` is gzip-compressed (recordings shrink about 4x):
`open_recording` inflates it into an unlinked temporary file, and a directory listing skips
it, so a pack kept next to its sources does not show their machines twice.

Frames the reader kept *unverified* (a torn tail whose check record was never
written, the readable start of a damaged block) are copied after a SALVAGED note and closed
with a new check record: the packed file is intact, and those frames still read as unverified.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zlib
from pathlib import Path

from .errors import RecordingError
from .format import Kind, encode_check, encode_frame, pack_body
from .reader import Recording, open_recording

#: the suffix of a compressed pack (gzip of a `.amrec` file)
COMPRESSED_SUFFIX = ".amrec.gz"
#: the first bytes of a gzip stream
GZIP_MAGIC = b"\x1f\x8b"
#: the most a compressed pack may inflate to (a hostile file cannot fill the disk)
MAX_INFLATED = 16 << 30


def pack(src: str | os.PathLike[str] | Recording, dst: str | os.PathLike[str], *,
         compress: bool | None = None) -> int:
    """Write the readable part of recording `src` (file or directory) to the file `dst`.

    `src` may also be a `Recording` already opened (it is not indexed again, nor closed).
    `compress` (default: `dst` ends in `.amrec.gz`) writes it gzip-compressed.
    `dst` is replaced atomically; returns the number of bytes written. Raises `RecordingError`
    when `src` is not readable, OSError when `dst` cannot be written.
    """
    target = Path(dst)
    if compress is None:
        compress = target.name.endswith(COMPRESSED_SUFFIX)
    if isinstance(src, Recording):
        return _pack(src, target, compress)
    with open_recording(src) as rec:
        return _pack(rec, target, compress)


def is_compressed(path: str | os.PathLike[str]) -> bool:
    """True when the regular file at `path` starts like a gzip stream (a compressed pack);
    anything else (a FIFO would block an open) is left to the reader, which refuses it."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            return os.pread(fd, 2, 0) == GZIP_MAGIC
        finally:
            os.close(fd)
    except OSError:
        return False


def inflate(path: str | os.PathLike[str], limit: int = MAX_INFLATED) -> Path:
    """Decompress the compressed pack at `path` into a new temporary file and return its path
    (the caller maps it, then unlinks it). RecordingError when it is not valid gzip or
    inflates beyond `limit` bytes."""
    src = Path(path)
    fd, name = tempfile.mkstemp(prefix=f"amrec-{src.name[:40]}-", suffix=".amrec")
    tmp = Path(name)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            inflater = zlib.decompressobj(wbits=31)  # gzip framing
            total = 0
            while chunk := fin.read(1 << 20):
                while chunk:
                    data = inflater.decompress(chunk, 1 << 22)
                    total += len(data)
                    if total > limit:
                        raise RecordingError(f"compressed pack inflates beyond {limit} bytes",
                                             str(src))
                    fout.write(data)
                    chunk = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise RecordingError("compressed pack is truncated", str(src))
    except zlib.error as err:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"compressed pack is corrupt: {err}", str(src)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _pack(rec: Recording, target: Path, compress: bool = False) -> int:
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
        if compress:
            written = _gzip(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def _gzip(path: Path) -> int:
    """Replace the file at `path` by its gzip compression (no name or time stored: the same
    recording packs to the same bytes); returns the compressed size."""
    plain = path.with_name(path.name + ".plain")
    os.replace(path, plain)
    try:
        deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
        size = 0
        with open(plain, "rb") as fin, open(path, "wb") as fout:
            while chunk := fin.read(1 << 20):
                out = deflater.compress(chunk)
                fout.write(out)
                size += len(out)
            out = deflater.flush()
            fout.write(out)
            size += len(out)
    finally:
        plain.unlink(missing_ok=True)
    return size


def salvaged_note(frames: int) -> bytes:
    """The SALVAGED frame that precedes `frames` unverified frames in a packed block."""
    return encode_frame(int(Kind.SALVAGED), 0, 0, 0, 0, 0, pack_body({"frames": frames}))


__all__ = ["COMPRESSED_SUFFIX", "MAX_INFLATED", "inflate", "is_compressed", "pack",
           "salvaged_note"]
