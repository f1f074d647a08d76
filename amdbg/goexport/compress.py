"""Brotli in bounded steps: a decompression bomb stops at a size cap instead of filling memory.

`decompress(data, max_size)` feeds the compressed bytes in chunks and asks the decoder for at
most one chunk of output at a time, so the memory used is the output kept (at most `max_size`)
plus one chunk. What a damaged or truncated stream yielded before the damage is returned with
the reason, so callers can read a partial session and say why it is partial.
"""

from __future__ import annotations

from dataclasses import dataclass

import brotli

from ..gob.errors import GobError

#: compressed bytes fed to the decoder per step, and decompressed bytes asked for per step
CHUNK = 1 << 16
OUT_CHUNK = 1 << 20
#: default cap on the decompressed size (the largest real export is 26 MB)
MAX_DECOMPRESSED = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Decompressed:
    """What came out, and why it stopped early ("" when the stream was complete)."""

    data: bytes
    problem: str = ""


def decompress(data: bytes, max_size: int = MAX_DECOMPRESSED) -> Decompressed:
    """Decompress a brotli stream, keeping at most `max_size` bytes of output.

    Exceeding the cap, a corrupt stream and a truncated stream are reported in `problem`
    with what was decompressed up to there.
    """
    dec = brotli.Decompressor()
    out = bytearray()
    view = memoryview(data)
    pos = 0
    try:
        while not dec.is_finished():
            if dec.can_accept_more_data() and pos < len(view):
                chunk = view[pos:pos + CHUNK]
                pos += len(chunk)
            else:
                chunk = view[0:0]
            got = dec.process(chunk, output_buffer_limit=OUT_CHUNK)
            out += got
            if len(out) > max_size:
                del out[max_size:]
                return Decompressed(bytes(out), f"decompressed size exceeds the limit of "
                                    f"{max_size} bytes (a decompression bomb?)")
            if not got and not chunk:
                break  # no input left and nothing more comes out: truncated
    except brotli.error as err:
        return Decompressed(bytes(out), f"corrupt brotli data after {len(out)} bytes "
                            f"({' '.join(str(err).split()) or 'decoder error'})")
    if not dec.is_finished():
        return Decompressed(bytes(out), f"brotli stream is truncated after {len(out)} bytes")
    if pos < len(view):
        return Decompressed(bytes(out), f"{len(view) - pos} bytes after the end of the "
                            "brotli stream")
    return Decompressed(bytes(out))


def compress(data: bytes, quality: int = 9) -> bytes:
    """Brotli-compress `data` (quality 0-11; 9 is near the best ratio at a fraction of 11's
    time)."""
    try:
        return bytes(brotli.compress(data, quality=quality))
    except brotli.error as err:  # only for invalid arguments
        raise GobError(f"brotli compression failed: {err}") from None


__all__ = ["CHUNK", "MAX_DECOMPRESSED", "Decompressed", "compress", "decompress"]
