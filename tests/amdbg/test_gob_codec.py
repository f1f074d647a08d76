"""The gob codec: Go's documented encodings, byte-identical re-encoding of real Go exports, and
hostile streams (truncated, flipped, looping, oversized) that end in one clear GobError."""

from __future__ import annotations

import brotli
import pytest
from helpers.goexports import BIG, PREFIX_MACHINES, SMALL, export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amdbg.gob import Decoder, Encoder, GobError, GobInterface, Limits, WireType, decode, encode
from amdbg.gob.wire import INT, STRING, UINT, put_int, put_uint, read_int, read_uint

# Go's documentation of encoding/gob: type Point struct {X, Y int}; Point{22, 33}
POINT = bytes.fromhex("1fff810301010550 6f696e7401ff8200 0102010158010400 010159010400 0000"
                      "07ff82012c014200".replace(" ", ""))
POINT_TYPE = WireType(65, "struct", "Point", fields=(("X", INT), ("Y", INT)))


def test_the_documented_example_reads_and_writes() -> None:
    assert decode(POINT) == [(65, {"X": 22, "Y": 33})]
    assert encode({65: POINT_TYPE}, 65, {"X": 22, "Y": 33}) == POINT
    # a top-level non-struct value: int 3 is "03 04 00 06"
    assert decode(bytes.fromhex("03040006")) == [(INT, 3)]
    assert encode({}, INT, 3) == bytes.fromhex("03040006")


def test_zero_fields_are_left_out_like_go() -> None:
    data = encode({65: POINT_TYPE}, 65, {"X": 0, "Y": 33})
    assert decode(data) == [(65, {"Y": 33})]


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_unsigned_integers_round_trip(x: int) -> None:
    out = bytearray()
    put_uint(out, x)
    assert read_uint(bytes(out), 0) == (x, len(out))
    assert (len(out) == 1) == (x < 128)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_signed_integers_round_trip(x: int) -> None:
    out = bytearray()
    put_int(out, x)
    assert read_int(bytes(out), 0) == (x, len(out))


@given(st.floats(allow_nan=False), st.text(max_size=50), st.lists(st.integers(0, 2**64 - 1)),
       st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5))
def test_values_round_trip(f: float, s: str, clocks: list[int], args: dict[str, str]) -> None:
    types = {65: WireType(65, "slice", elem=UINT),
             66: WireType(66, "map", key=STRING, elem=STRING),
             67: WireType(67, "struct", "T", fields=(("F", 4), ("S", STRING), ("C", 65),
                                                     ("A", 66)))}
    value = {"F": f, "S": s, "C": clocks, "A": args}
    [(tid, back)] = decode(encode(types, 67, value))
    expected = {k: v for k, v in value.items() if v not in (0, 0.0, "", [])}
    assert tid == 67 and back == expected


@pytest.mark.parametrize("name", SMALL)
def test_real_exports_re_encode_to_the_same_bytes(name: str) -> None:
    data = brotli.decompress(export(name).read_bytes())
    dec = Decoder(data)
    values = list(dec.values())
    enc = Encoder({k: v for k, v in dec.types.items() if k >= 64})
    for tid, value in values:
        enc.encode(tid, value)
    assert enc.getvalue() == data


def re_encode_piecewise(data: bytes, limit: int | None) -> int:
    """Check a stream re-encodes to its bytes piece by piece: the type definitions, the
    top-level slice's framing, then each element against its own bytes, in order; with a
    `limit`, only the first `limit` elements. Returns how many elements were checked."""
    dec = Decoder(data)
    elements = dec.elements()
    first = next(elements)
    tid = dec.value_type
    enc = Encoder({k: v for k, v in dec.types.items() if k >= 64})
    assert enc.types_for(tid) == data[:dec.value_offset]
    size, body = read_uint(data, dec.value_offset)
    assert body + size == len(data), "the value is the stream's last message"
    framing = bytearray()
    put_int(framing, tid)
    framing.append(0)
    put_uint(framing, dec.count)
    assert data[body:dec.span[0]] == framing
    checked, end, item = 0, dec.span[0], first
    while True:
        start, stop = dec.span
        assert start == end, "elements follow each other"
        assert enc.element(tid, item) == data[start:stop], f"element {checked}"
        checked, end = checked + 1, stop
        if checked == limit:
            return checked
        item = next(elements, None)
        if item is None:
            assert checked == dec.count and end == len(data)
            return checked


@pytest.mark.parametrize("name", ["wasm.gob.br", "node-payload.gob.br"])
def test_piecewise_re_encoding_covers_every_byte(name: str) -> None:
    """The piecewise check, run to the end, covers the whole stream, as the check above."""
    data = brotli.decompress(export(name).read_bytes())
    assert re_encode_piecewise(data, None) > 0  # and every element, up to the last byte


@pytest.mark.parametrize("name", BIG)
def test_a_prefix_of_each_big_export_re_encodes_to_the_same_bytes(name: str) -> None:
    """The type definitions, the framing and the first machines, byte for byte: decoding and
    encoding all 18-26 MB costs tens of seconds and proves little more than the small exports
    do (the whole stream is decoded when it is converted, test_go_samples.py)."""
    data = brotli.decompress(export(name).read_bytes())
    assert re_encode_piecewise(data, PREFIX_MACHINES) == PREFIX_MACHINES


def test_interfaces_read_and_write() -> None:
    types = {65: WireType(65, "struct", "S", fields=(("Data", 8),))}
    rel = GobInterface("github.com/pancsta/asyncmachine-go/pkg/machine.Relation", INT, 2)
    for value in (rel, GobInterface("string", STRING, "FooState")):
        data = encode(types, 65, {"Data": value})
        assert decode(data) == [(65, {"Data": value})]


# ---------------------------------------------------------------------- hostile streams


def _msg(body: bytes) -> bytes:
    out = bytearray()
    put_uint(out, len(body))
    return bytes(out) + body


def _typedef(tid: int, wire: dict) -> bytes:
    """A type definition message, written with the encoder's own wireType writer."""
    enc = Encoder()
    body = bytearray()
    put_int(body, -tid)
    enc._compile(16)(body, wire)
    return _msg(bytes(body))


def _fails(data: bytes, fragment: str, limits: Limits | None = None) -> str:
    with pytest.raises(GobError) as info:
        decode(data, limits or Limits())
    message = str(info.value)
    assert "\n" not in message and message.startswith("gob: ")
    assert fragment in message, message
    return message


def test_truncated_streams_fail_clearly_at_every_cut() -> None:
    data = brotli.decompress(export("wasm.gob.br").read_bytes())
    for cut in range(1, len(data), 97):
        try:
            values = list(Decoder(data[:cut]).values())
        except GobError as err:
            assert "\n" not in str(err)
        else:  # cut between type definitions: a valid stream without a value
            assert values == []
    _fails(b"\x05", "stream ends")


def test_a_truncated_export_is_read_partially() -> None:
    data = brotli.decompress(export("am-dbg.gob.br").read_bytes())
    dec = Decoder(data[:len(data) // 2])
    items = list(dec.elements(partial=True))
    assert len(items) == 1 and 0 < len(items[0]["MsgTxs"]) < 1384
    assert dec.error is not None and "MsgTxs[" in str(dec.error)


def test_a_type_definition_loop_is_bounded() -> None:
    # type 65 = []65: a value nested without end, written by a hostile encoder
    loop = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": 65}})
    body = bytearray()
    put_int(body, 65)
    body.append(0)
    body += b"\x01" * 200 + b"\x00"
    _fails(loop + _msg(bytes(body)), "nested deeper than 64")


def test_a_struct_referring_to_itself_is_bounded() -> None:
    node = _typedef(65, {"StructT": {"CommonType": {"Name": "Node", "Id": 65},
                                     "Field": [{"Name": "Next", "Id": 65}]}})
    body = bytearray()
    put_int(body, 65)
    body += b"\x01" * 100 + b"\x00" * 100
    message = _fails(node + _msg(bytes(body)), "nested deeper than 64")
    assert ".Next.Next" in message


def test_a_long_chain_of_type_definitions_is_bounded() -> None:
    chain = b"".join(_typedef(65 + i, {"SliceT": {"CommonType": {"Id": 65 + i},
                                                  "Elem": 66 + i}}) for i in range(3000))
    chain += _typedef(3065, {"SliceT": {"CommonType": {"Id": 3065}, "Elem": INT}})
    body = bytearray()
    put_int(body, 65)
    body += b"\x00\x00"
    _fails(chain + _msg(bytes(body)), "type definitions nested deeper than 64")


def test_undefined_and_duplicate_types_fail() -> None:
    uses_undefined = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": 99}})
    body = bytearray()
    put_int(body, 65)
    body += b"\x00\x01\x00"
    _fails(uses_undefined + _msg(bytes(body)), "99")
    twice = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": INT}})
    _fails(twice + twice, "defined again")
    _fails(_typedef(6, {"SliceT": {"CommonType": {"Id": 6}, "Elem": INT}}), "defined again")
    _fails(_typedef(65, {}), "exactly one kind")


def test_huge_lengths_cost_nothing() -> None:
    _fails(bytes.fromhex("f8") + (2**60).to_bytes(8, "big"), "exceeds the limit")
    ints = _typedef(65, {"SliceT": {"CommonType": {"Id": 65}, "Elem": INT}})
    body = bytearray()
    put_int(body, 65)
    body.append(0)
    put_uint(body, 2**40)  # claims a trillion elements in a few bytes
    _fails(ints + _msg(bytes(body)), "elements")
    text = bytearray()
    put_int(text, STRING)
    text.append(0)
    put_uint(text, 2**33)
    _fails(_msg(bytes(text)), "string of")
    _fails(_msg(bytes(text)), "limit", Limits(max_string=10))
    many = b"".join(_typedef(65 + i, {"SliceT": {"CommonType": {"Id": 65 + i}, "Elem": INT}})
                    for i in range(20))
    _fails(many, "type definitions", Limits(max_types=10))


VALID = brotli.decompress(export("node-payload.gob.br").read_bytes())[:6000]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_gob_errors(data: bytes) -> None:
    try:
        list(Decoder(data).values())
    except GobError as err:
        assert "\n" not in str(err)
    dec = Decoder(data)
    for _ in dec.elements(partial=True):
        pass


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_flipped_bytes_only_raise_gob_errors(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for pos, byte in flips:
        data[pos] = byte
    try:
        list(Decoder(bytes(data)).values())
    except GobError as err:
        assert "\n" not in str(err)
    dec = Decoder(bytes(data), Limits(max_items=100_000))
    items = list(dec.elements(partial=True))
    assert dec.error is not None or items
