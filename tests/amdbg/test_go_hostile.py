"""Hostile and odd `.gob.br` files on the command line: one clear line (an error, or a warning
with the readable part shown), bounded memory, never a traceback or a hang."""

from __future__ import annotations

import dataclasses
import os
import struct
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import brotli
import pytest
from helpers.goexports import CACHE, export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amdbg import cli
from amdbg.errors import DbgError
from amdbg.gob import Encoder
from amdbg.gob.wire import STRING, put_int, put_uint
from amdbg.goexport import compress as compress_module
from amdbg.goexport.compress import decompress
from amdbg.goexport.gotime import ns_to_time
from amdbg.goexport.layout import CURRENT_TYPES, EXPORTS, TX
from amdbg.session import Session
from amnode.telemetry import RecordingError


@pytest.fixture(autouse=True)
def go_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMDBG_CACHE_DIR", CACHE)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return status, out, err


def _machine(mid: str, n_tx: int = 3, **tx_extra: Any) -> dict[str, Any]:
    names = ["Start", "Ready"]
    txs = [{"MachineID": mid, "ID": f"{i:016x}", "Clocks": [i % 2 + 1, i], "Type": 0,
            "CalledStatesIdxs": [0], "CalledStates": ["Start"], "Accepted": True,
            "Time": ns_to_time(1_700_000_000_000_000_000 + i * 1000), **tx_extra}
           for i in range(1, n_tx + 1)]
    return {"MsgStruct": {"ID": mid, "StatesIndex": names,
                          "States": {"Start": {}, "Ready": {"Auto": True,
                                                            "Require": ["Start"]}}},
            "MsgTxs": txs}


def _write(path: Path, items: list[dict[str, Any]], types: dict | None = None) -> Path:
    enc = Encoder(types or CURRENT_TYPES)
    enc.encode(EXPORTS, items)
    path.write_bytes(brotli.compress(enc.getvalue()))
    return path


def test_a_truncated_export_shows_what_is_readable(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = export("node-payload.gob.br").read_bytes()
    cut = tmp_path / "cut.gob.br"
    cut.write_bytes(data[:len(data) * 2 // 3])
    status, out, err = _run(capsys, "ls", str(cut))
    assert status == 3
    assert "nw-TCWP-dev-5551c0" in out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("amdbg: warning: recording is damaged")
    assert "truncated" in lines[0]


@pytest.mark.parametrize("where", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_bit_flips_give_one_line(where: float, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(export("wasm.gob.br").read_bytes())
    pos = int(len(data) * where)
    data[pos] ^= 0x5A
    bad = tmp_path / "flipped.gob.br"
    bad.write_bytes(bytes(data))
    status, _, err = _run(capsys, "ls", str(bad))
    lines = [line for line in err.splitlines() if "refer to states outside" not in line]
    if status == 0:
        assert lines == []
    else:
        assert status in (1, 3) and len(lines) == 1
        assert lines[0].startswith(("amdbg: error: ", "amdbg: warning: recording is damaged"))


def _raw_gob_br(path: Path, body: bytes) -> Path:
    path.write_bytes(brotli.compress(body))
    return path


def _typedef(tid: int, wire: dict[str, Any]) -> bytes:
    enc = Encoder()
    body = bytearray()
    put_int(body, -tid)
    enc._compile(16)(body, wire)
    out = bytearray()
    put_uint(out, len(body))
    return bytes(out + body)


def test_a_type_definition_loop_is_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    loop = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": 65}})
    value = bytearray()
    put_int(value, 65)
    value += b"\x00" + b"\x01" * 500 + b"\x00"
    msg = bytearray()
    put_uint(msg, len(value))
    path = _raw_gob_br(tmp_path / "loop.gob.br", loop + bytes(msg + value))
    status, _, err = _run(capsys, "show", str(path))
    assert status == 1 and len(err.splitlines()) == 1
    assert "nested deeper than" in err


def test_huge_lengths_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = bytearray()
    put_int(body, 65)
    body += b"\x00"
    put_uint(body, 2**50)
    head = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": STRING}})
    msg = bytearray()
    put_uint(msg, 2**40)  # a message length far beyond the data and the limit
    path = _raw_gob_br(tmp_path / "huge.gob.br", head + bytes(msg) + bytes(body))
    status, _, err = _run(capsys, "ls", str(path))
    assert status == 1 and len(err.splitlines()) == 1 and "exceeds the limit" in err


def test_a_brotli_bomb_stops_at_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = brotli.compress(b"\0" * (64 << 20), quality=1)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        out = decompress(bomb, max_size=4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out.data) == 4 << 20 and "decompression bomb" in out.problem
    assert peak < 16 << 20  # the output kept plus a chunk, never the 64 MB
    monkeypatch.setattr(compress_module, "MAX_DECOMPRESSED", 4 << 20)
    path = tmp_path / "bomb.gob.br"
    path.write_bytes(bomb)
    status, _, err = _run(capsys, "ls", str(path))
    assert status == 1 and len(err.splitlines()) == 1
    assert "decompression bomb" in err


def test_a_bomb_inside_a_real_export_reads_partially(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compress_module, "MAX_DECOMPRESSED", 100_000)  # wasm: 66 KB is fine
    status, _, err = _run(capsys, "ls", str(export("node-payload.gob.br")))  # 240 KB is not
    assert status == 3 and "exceeds the limit of 100000 bytes" in err


@pytest.mark.parametrize("content", [b"", b"hello, not an export", bytes(range(256)) * 40])
def test_files_named_like_exports_that_are_not(content: bytes, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.gob.br"
    path.write_bytes(content)
    status, out, err = _run(capsys, "ls", str(path))
    assert status == 1 and out == "" and len(err.splitlines()) == 1
    assert "not" in err


def test_a_gob_stream_that_is_not_an_export(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    enc = Encoder()
    enc.encode(STRING, "just a string")
    path = _raw_gob_br(tmp_path / "s.gob.br", enc.getvalue())
    status, _, err = _run(capsys, "ls", str(path))
    assert status == 1 and "not" in err and len(err.splitlines()) == 1


def test_unknown_and_mistyped_fields_are_named_and_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    types = dict(CURRENT_TYPES)
    tx = types[TX]
    # a newer Go version with a field we do not know, and Queue sent as a string
    fields = tuple((n, STRING if n == "Queue" else t) for n, t in tx.fields)
    types[TX] = dataclasses.replace(tx, fields=(*fields, ("HandlerTimes", STRING)))
    path = _write(tmp_path / "newer.gob.br",
                  [_machine("m1", HandlerTimes="1ms", Queue="three")], types)
    status, out, err = _run(capsys, "show", str(path), "-m", "m1", "-t", "2")
    assert status == 0, err
    assert "unknown field DbgMsgTx.HandlerTimes (string) ignored" in err
    assert "field DbgMsgTx.Queue is a string, expected int; ignored" in err
    assert "m1 · transition 2 of 3" in out


def test_content_decides_not_the_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    path = _write(tmp_path / "session.bin", [_machine("alpha"), _machine("beta", 5)])
    status, out, _ = _run(capsys, "log", str(path), "-m", "beta")
    assert status == 0 and out.count("Start") >= 5
    plain = tmp_path / "plain"
    plain.write_bytes(brotli.decompress(path.read_bytes()))  # an uncompressed gob stream
    with Session.open(plain) as s:
        assert [m.id for m in s.machines] == ["alpha", "beta"]


def test_records_out_of_range_are_kept_and_reported(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    m = _machine("odd", 2)
    m["MsgTxs"][0]["CalledStatesIdxs"] = [7]  # no such state
    m["MsgTxs"][1]["Clocks"] = [1, 2, 3, 4]  # longer than the schema
    m["MsgStruct"]["Groups"] = {"G": [0, 9]}
    path = _write(tmp_path / "odd.gob.br", [m])
    status, out, err = _run(capsys, "show", str(path), "-m", "odd", "-t", "1")
    assert status == 0
    assert "state index 7 outside its 2 states" in err
    assert "clock of another length" in err and "group(s) G" in err
    assert "#7" in out


WASM_GOB = brotli.decompress(export("wasm.gob.br").read_bytes())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(WASM_GOB) - 1), st.integers(0, 255)),
                min_size=1, max_size=6), st.booleans())
def test_mutated_exports_open_or_fail_clearly(flips: list[tuple[int, int]], cut: bool
                                              ) -> None:
    """Through the whole pipeline (decompress, decode, convert, read every record): only
    one-line errors, or a session to read."""
    data = bytearray(WASM_GOB)
    for pos, byte in flips:
        data[pos] = byte
    if cut:
        data = data[:flips[0][0]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.gob.br"
        path.write_bytes(brotli.compress(bytes(data), quality=1))
        old = os.environ.get("AMDBG_CACHE_DIR")
        os.environ["AMDBG_CACHE_DIR"] = tmp
        try:
            with Session.open(path) as s:
                for m in s.machines:
                    for tx in m.transitions():
                        assert len(tx.time_after) == len(tx.state_names)
                    m.queued()
        except (DbgError, RecordingError) as err:
            assert "\n" not in str(err)
        finally:
            if old is None:
                os.environ.pop("AMDBG_CACHE_DIR", None)
            else:
                os.environ["AMDBG_CACHE_DIR"] = old


def test_a_time_outside_int64_nanoseconds_is_no_time() -> None:
    """A mutated `Time` far in the future (found by the fuzzer: bytes 1646 of wasm set to 1)
    must not reach the recording writer as an int it cannot encode."""
    from amdbg.goexport.gotime import UNIX_TO_INTERNAL, time_to_ns
    far = struct.pack(">BqiH", 1, UNIX_TO_INTERNAL + (1 << 40), 0, 0xFFFF)
    assert time_to_ns(far) is None
    ok = struct.pack(">BqiH", 1, UNIX_TO_INTERNAL + 1_700_000_000, 5, 0xFFFF)
    assert time_to_ns(ok) == 1_700_000_000_000_000_005
