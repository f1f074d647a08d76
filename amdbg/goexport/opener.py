"""Open a Go am-dbg export wherever amdbg takes a recording: detect, convert once, cache.

    go = open_go_export("node-payload.gob.br")   # None for anything that is not one
    rec = open_recording(go.path)                # a native recording, read at native speed

Detection is by content, not by name: a brotli stream whose first bytes decompress to a gob
type definition, or an uncompressed gob stream. (A file named `*.gob.br` / `*.gob` is treated
as an export even when it does not look like one, so its error says what is wrong with it.)
The converted recording is cached under `$AMDBG_CACHE_DIR`, else `$XDG_CACHE_HOME/amdbg/go`,
else `~/.cache/amdbg/go`, keyed by the SHA-256 of the file's bytes, so opening the same export
again costs one hash; the newest `CACHE_KEEP` conversions are kept. When no cache directory
is writable, a temporary file is used and removed at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import brotli

from amnode.telemetry.format import MAGIC

from ..errors import DbgError
from ..gob.errors import GobError
from ..gob.limits import DEFAULT_LIMITS, Limits
from ..gob.wire import FIRST_USER_ID, read_int, read_uint
from . import compress
from .compress import decompress
from .to_amrec import convert

#: names that mark a file as a Go export even when its content does not look like one
SUFFIXES = (".gob.br", ".gob")
#: bump when conversion output changes, so cached conversions are redone
CONVERTER_VERSION = 3
#: how many converted exports the cache keeps (least recently opened ones go first)
CACHE_KEEP = 16
#: the largest export file read (compressed bytes)
MAX_FILE = 512 * 1024 * 1024
_SNIFF = 1 << 16


@dataclass(slots=True)
class GoExport:
    """An opened export: the converted recording's path and what converting it found."""

    source: str
    path: str
    machines: int = 0
    transitions: int = 0
    queued: int = 0
    layout: str = ""
    versions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: why only part of the export could be read ("" when all of it was)
    damage: str = ""
    #: True when the conversion came from the cache
    cached: bool = False


def looks_like_gob(data: bytes) -> bool:
    """True when `data` starts like a gob stream: a message defining a user type."""
    try:
        n, p = read_uint(data, 0)
        tid, p = read_int(data, p)
        return n >= 3 and tid <= -FIRST_USER_ID and 1 <= data[p] <= 7
    except (IndexError, GobError):
        return False


def sniff(path: str | os.PathLike[str]) -> str:
    """What a file holds: "amrec", "gob.br" (brotli gob), "gob" (plain gob) or "" (unknown,
    unreadable, or a directory)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return ""
    if head.startswith(MAGIC):
        return "amrec"
    if looks_like_gob(head):
        return "gob"
    try:
        out = brotli.Decompressor().process(head, output_buffer_limit=4096)
    except brotli.error:
        return ""
    return "gob.br" if looks_like_gob(out) else ""


def is_go_export(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file to open as a Go export (by content, or by its name)."""
    p = Path(path)
    if not p.is_file():
        return False
    kind = sniff(p)
    if kind in ("gob", "gob.br"):
        return True
    return kind == "" and p.name.endswith(SUFFIXES)


def cache_dir() -> Path:
    """Where converted exports are kept (see the module docstring)."""
    env = os.environ.get("AMDBG_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "amdbg" / "go"


def _writable_dir() -> Path:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    tmp = Path(tempfile.mkdtemp(prefix="amdbg-go-"))
    atexit.register(shutil.rmtree, tmp, True)
    return tmp


def open_go_export(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS,
                   max_decompressed: int | None = None) -> GoExport | None:
    """The converted recording of the Go export at `path`, or None when `path` is not one.

    `max_decompressed` caps the gob stream's size (default `compress.MAX_DECOMPRESSED`);
    beyond it the export is read partially. Raises GobError (one line) when the export
    cannot be read at all; a partly readable one converts with `damage` set.
    """
    if not is_go_export(path):
        return None
    if max_decompressed is None:
        max_decompressed = compress.MAX_DECOMPRESSED
    src = Path(path)
    try:
        if src.stat().st_size > MAX_FILE:
            raise DbgError(f"{src}: export of {src.stat().st_size} bytes exceeds the limit of "
                           f"{MAX_FILE}")
        raw = src.read_bytes()
    except OSError as err:
        raise DbgError(f"{src}: cannot read: {err.strerror or err}") from None
    key = hashlib.sha256(raw)
    key.update(f"v{CONVERTER_VERSION} {limits} {max_decompressed}".encode())
    digest = key.hexdigest()[:40]
    where = _writable_dir()
    rec, meta = where / f"{digest}.amrec", where / f"{digest}.json"
    found = _cached(rec, meta, str(src))
    if found is not None:
        return found
    damage = ""
    if looks_like_gob(raw[:_SNIFF]):
        data = raw
    else:
        out = decompress(raw, max_decompressed)
        data, damage = out.data, out.problem
        if not data:
            raise DbgError(f"{src}: not a Go am-dbg export: {damage or 'empty'}")
    del raw
    tmp = where / f"{digest}.{os.getpid()}.tmp"
    try:
        try:
            conv = convert(data, tmp, source=src.name, limits=limits, damage=damage)
        except GobError as err:
            reason = f"{err}; {damage}" if damage else str(err)
            raise DbgError(f"{src}: cannot read the Go am-dbg export: {reason}") from None
        os.replace(tmp, rec)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    result = GoExport(str(src), str(rec), conv.machines, conv.transitions, conv.queued,
                      conv.layout, conv.versions, conv.warnings, conv.damage)
    try:
        tmp_meta = meta.with_suffix(f".{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps(asdict(result)))
        os.replace(tmp_meta, meta)
        _evict(where)
    except OSError:
        pass  # the conversion is there; only the next open is slower
    return result


def _cached(rec: Path, meta: Path, source: str) -> GoExport | None:
    try:
        info = json.loads(meta.read_text())
        if not rec.is_file():
            return None
        os.utime(rec)
        os.utime(meta)
        info.update(source=source, path=str(rec), cached=True)
        return GoExport(**info)
    except (OSError, ValueError, TypeError):
        return None


def _evict(where: Path) -> None:
    """Keep the CACHE_KEEP most recently used conversions."""
    metas = sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in metas[CACHE_KEEP:]:
        for p in (old, old.with_suffix(".amrec")):
            with contextlib.suppress(OSError):
                p.unlink()


__all__ = ["CACHE_KEEP", "CONVERTER_VERSION", "SUFFIXES", "GoExport", "cache_dir",
           "is_go_export", "looks_like_gob", "open_go_export", "sniff"]
