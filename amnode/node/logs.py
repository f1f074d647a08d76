"""Worker log files: the supervisor owns each worker's stdout and stderr under a log directory.

A worker process writes into pipes; the supervisor reads them (keeping the last lines for error
messages) and appends whole lines to one file per slot and stream,
`<dir>/<kind>-<instance>-slot<S>.out` / `.err` (a replacement worker in the same slot appends to
the same file). A file is rotated when it grows past `max_bytes`, on `RotateLogs` and on SIGHUP
to `amnode supervisor`: `x.out` becomes `x.out.1` (`.1` becomes `.2`, ... up to `backups`) and a
new `x.out` is started. Writes and rotations of one file are serialised and a rotation happens
only between whole lines, so no line is lost or split by a rotation.

File I/O runs through `aiofiles` (the event loop never blocks on the disk). A worker's pipe is
drained only as fast as its log is written, so a slow disk slows the worker down instead of
growing the supervisor's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os

#: a line longer than this is written without waiting for its end
MAX_LINE = 64 * 1024


class LogFile:
    """One stream's log file: whole lines appended, rotated by size or on request."""

    def __init__(self, path: Path | str, max_bytes: int = 0, backups: int = 3) -> None:
        self.path = Path(path)
        #: rotate once the file reaches this size (0 = only on request)
        self.max_bytes = max_bytes
        #: rotated files kept (`.1` is the newest)
        self.backups = max(0, backups)
        #: bytes in the current file
        self.size = 0
        #: rotations done
        self.rotations = 0
        self._file: Any = None
        self._partial = b""
        self._lock = asyncio.Lock()

    async def write(self, chunk: bytes) -> None:
        """Append the complete lines of `chunk` (an unfinished last line waits for the rest)."""
        async with self._lock:
            data = self._partial + chunk
            cut = data.rfind(b"\n") + 1
            if not cut and len(data) > MAX_LINE:
                cut = len(data)
            self._partial = data[cut:]
            if cut:
                await self._append(data[:cut])

    async def open(self) -> None:
        """Create (or reopen) the file now, before anything is written."""
        async with self._lock:
            if self._file is None:
                await self._open()

    async def rotate(self) -> None:
        """Start a new file now (between two lines)."""
        async with self._lock:
            await self._rotate()

    async def flush(self) -> None:
        """Write an unfinished last line as it is (the stream ended)."""
        async with self._lock:
            if self._partial:
                data, self._partial = self._partial, b""
                await self._append(data)

    async def close(self) -> None:
        """Flush and close the file (it is reopened by the next write)."""
        await self.flush()
        async with self._lock:
            await self._close()

    async def _open(self) -> None:
        await aiofiles.os.makedirs(self.path.parent, exist_ok=True)
        self._file = await aiofiles.open(self.path, "ab", buffering=0)
        try:
            self.size = await aiofiles.os.path.getsize(self.path)
        except OSError:
            self.size = 0

    async def _close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                await f.close()

    async def _append(self, data: bytes) -> None:
        if self._file is None:
            await self._open()
        assert self._file is not None
        await self._file.write(data)
        self.size += len(data)
        if self.max_bytes and self.size >= self.max_bytes:
            await self._rotate()

    async def _rotate(self) -> None:
        await self._close()
        path = self.path
        prefix = path.name + "."
        kept = sorted((int(n[len(prefix):]) for n in await aiofiles.os.listdir(path.parent)
                       if n.startswith(prefix) and n[len(prefix):].isdigit()), reverse=True)
        for n in kept:  # .N -> .N+1, the oldest first; beyond `backups` they go
            older = path.with_name(f"{prefix}{n}")
            if n >= self.backups:
                await aiofiles.os.remove(older)
            else:
                await aiofiles.os.replace(older, path.with_name(f"{prefix}{n + 1}"))
        if await aiofiles.os.path.exists(path):
            if self.backups:
                await aiofiles.os.replace(path, path.with_name(f"{prefix}1"))
            else:
                await aiofiles.os.remove(path)
        self.rotations += 1
        await self._open()

    def __repr__(self) -> str:
        return f"LogFile({self.path} {self.size}B)"


class WorkerLogs:
    """The log files of a supervisor's workers, one pair per slot."""

    def __init__(self, directory: Path | str, prefix: str, max_bytes: int = 10 * 1024 * 1024,
                 backups: int = 3) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[int, tuple[LogFile, LogFile]] = {}

    def for_slot(self, slot: int) -> tuple[LogFile, LogFile]:
        """(stdout, stderr) of a slot."""
        pair = self._files.get(slot)
        if pair is None:
            base = self.directory / f"{self.prefix}-slot{slot}"
            pair = (LogFile(base.with_name(base.name + ".out"), self.max_bytes, self.backups),
                    LogFile(base.with_name(base.name + ".err"), self.max_bytes, self.backups))
            self._files[slot] = pair
        return pair

    def files(self) -> list[LogFile]:
        """Every log file opened so far."""
        return [f for pair in self._files.values() for f in pair]

    async def rotate(self) -> int:
        """Rotate every file now; returns how many."""
        files = self.files()
        await asyncio.gather(*(f.rotate() for f in files))
        return len(files)

    async def close(self) -> None:
        """Flush and close every file."""
        await asyncio.gather(*(f.close() for f in self.files()), return_exceptions=True)


__all__ = ["MAX_LINE", "LogFile", "WorkerLogs"]
