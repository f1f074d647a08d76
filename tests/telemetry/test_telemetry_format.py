"""Record format: round trips through RecordWriter, blocks, torn tails, garbage, versions,
whitelist."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgpack
import pytest

from amnode.telemetry import RecordingError, RecordWriter, open_recording, pack
from amnode.telemetry.format import (
    CHECK,
    CRC,
    FRAME_HEADER,
    FRAME_MARK,
    FRAME_MARK_BYTES,
    MAGIC,
    OUT_ID,
    OUT_K,
    OUT_QT,
    OUT_STEP_TIMES,
    SEGMENT_PREFIX,
    Kind,
    encode_block,
    encode_check,
    encode_frame,
    encode_segment_header,
    id_hash,
)

NAMES = ["A", "B", "C", "ErrX", "Exception"]
STATES = {"A": {"auto": True, "require": ["B"]}, "B": {"multi": True, "tags": ["io"]},
          "C": {"remove": ["A"], "after": ["B"], "add": ["B"]}, "ErrX": {"require": ["Exception"]},
          "Exception": {"multi": True}}
PROCESS = {"host": "h1", "pid": 42, "argv0": "prog", "start_ns": 1000}


def write_sample(path: Path, n: int = 3, machine_id: str = "m1", full_every: int = 64,
                 process: dict | None = None, delta_min_states: int = 16,
                 block_each: bool = False) -> list[list[int]]:
    """A segment with one machine: a schema, `n` transitions, a queued record and a dispose
    (one block, or with `block_each` one block per record)."""
    w = RecordWriter.create(path, process or PROCESS, full_every=full_every,
                            delta_min_states=delta_min_states)
    mno = w.add_machine(machine_id, "parent-1", ["t1", "k:v"], NAMES, STATES,
                        {"g1": [0, 1]}, ["g1"], 5_000)
    clock = [0, 0, 0, 0, 0]
    afters = []
    for i in range(1, n + 1):
        before = list(clock)
        clock[i % 3] += 1
        afters.append(list(clock))
        w.transition(
            mno, i, 10_000 + i * 100, 10_050 + i * 100, f"{i:016x}", 0x01 | (0x02 if i == 2 else 0),
            i % 3, [i % 3], i + 1, i, 0, list(clock), before,
            [[32, -1, i % 3, -1], [1, 0, 1, 2], [2, -1, 0, -1, 0x03, "AState", 1234],
             [2, "Any", "Any", -1, 0x02, "AnyEnter", 7]],
            [[2, f"[state] +{NAMES[i % 3]}"]], [[1, "[exter] before"]] if i == 1 else None,
            {"id": "x", "n": str(i)}, ["other", "abcd", 7] if i == 1 else None)
        if block_each:
            w.flush()
    w.queued(mno, 99_999, 0x02 | 0x40, 0, [1], 0, 7, 2, "0000000000000003", {"q": "1"},
             ["src", "tx", 3])
    w.dispose(mno, 100_000, [[2, "[dispose] m1"]])
    w.close()
    return afters


def frames_of(data: bytes) -> list[tuple[int, int]]:
    """(offset, kind) of every frame and check record after the first segment header."""
    out = []
    off = SEGMENT_PREFIX.size + struct.unpack_from("<I", data, 12)[0] + CRC.size
    while off < len(data):
        kind = data[off + 2]
        out.append((off, kind))
        off += CHECK.size if kind == Kind.CHECK else \
            FRAME_HEADER.size + FRAME_HEADER.unpack_from(data, off)[3]
    return out


def test_round_trip_every_record_kind(tmp_path: Path) -> None:
    f = tmp_path / "one.amrec"
    afters = write_sample(f)
    rec = open_recording(f)
    assert rec.corruption == []
    (proc,) = rec.processes
    assert (proc.host, proc.pid, proc.argv0, proc.start_ns, proc.version) == ("h1", 42, "prog",
                                                                          1000, (2, 0))
    (m,) = rec.machines
    assert (m.key, m.id, m.parent, m.tags) == ("m1", "m1", "parent-1", ["t1", "k:v"])
    assert m.state_names == NAMES
    assert m.schema["A"] == {"auto": True, "multi": False, "require": ["B"], "add": [],
                             "remove": [], "after": [], "tags": []}
    assert m.schema["B"]["multi"] and m.schema["B"]["tags"] == ["io"]
    assert m.schema["C"]["remove"] == ["A"] and m.schema["C"]["after"] == ["B"]
    assert (m.groups, m.groups_order) == ({"g1": [0, 1]}, ["g1"])
    assert m.process is proc and m.created_ns == 5_000
    assert len(m) == m.transition_count == 3 and m.error_count == 0
    assert (m.first_ns, m.last_ns) == (10_150, 10_350)
    assert m.disposed and m.disposed_ns == 100_000
    assert [str(x) for x in m.dispose_log] == ["[dispose] m1"]

    tx = m.transition(1)
    assert (tx.id, tx.number, tx.seq, tx.type, tx.called) == (f"{1:016x}", 1, 1, "remove", ["B"])
    assert (tx.accepted, tx.is_auto, tx.is_check, tx.is_health) == (True, False, False, False)
    assert (tx.queue_tick, tx.mutation_queue_tick, tx.queue_len) == (2, 1, 0)
    assert (tx.start_ns, tx.end_ns, tx.duration_ns) == (10_100, 10_150, 50)
    assert tx.args == {"id": "x", "n": "1"}
    assert tx.time_before == [0, 0, 0, 0, 0] and tx.time_after == afters[0]
    assert tx.states_after == ["B"] and tx.activated == ["B"]
    assert [str(s) for s in tx.steps] == ["called B", "A require B", "handler AState",
                                          "handler AnyEnter"]
    handler = tx.steps[2]
    assert (handler.is_final, handler.is_enter, handler.is_self, handler.duration_ns) == (
        True, True, False, 1234)
    assert tx.steps[3].from_state == "Any" and tx.handlers == [("AState", 1234), ("AnyEnter", 7)]
    assert [(x.level, x.text) for x in tx.log] == [(2, "[state] +B")]
    assert [(x.level, x.text) for x in tx.pre_log] == [(1, "[exter] before")]
    assert str(tx.source) == "other/abcd/t7" and tx.url == f"mach://m1/{1:016x}"
    assert m.transition(2).is_auto and m.transition(2).source is None
    assert m.transition(3).called == ["A"]

    (q,) = m.queued()
    assert (q.type, q.called, q.queue_tick, q.queue_tick_now, q.queue_len) == ("add", ["B"], 0,
                                                                              7, 2)
    assert (q.is_auto, q.prepended, q.is_check, q.tx_id) == (True, True, False,
                                                             "0000000000000003")
    assert q.args == {"q": "1"} and str(q.source) == "src/tx/t3" and q.wall_ns == 99_999


def test_clock_reconstruction_with_deltas_and_full_frames(tmp_path: Path) -> None:
    f = tmp_path / "clocks.amrec"
    for delta_min_states, fulls in ((0, 300 // 16 + 1), (16, 300)):
        afters = write_sample(f, n=300, full_every=16, delta_min_states=delta_min_states)
        m = open_recording(f).machines[-1]
        # deltas with a full clock every 16, or (small machines) full clocks without `kb`
        assert sum(1 for n in range(1, 301) if m.summary(n).full_clock) == fulls
        for n in [*range(300, 0, -7), 1, 2, 17, 16, 33, 300]:  # random-ish access order
            assert m.time_at(n) == afters[n - 1], n
            before = afters[n - 2] if n > 1 else [0] * 5
            assert m.transition(n).time_before == before
        for tx in m.transitions(1, 300):  # sequential: previous clock is before
            expected_before = afters[tx.number - 2] if tx.number > 1 else [0] * 5
            assert tx.time_before == expected_before and tx.time_after == afters[tx.number - 1]
        assert m.clock_at(5) == dict(zip(NAMES, afters[4], strict=True))


def test_lookup_by_id_number_and_wall_time(tmp_path: Path) -> None:
    f = tmp_path / "look.amrec"
    afters = write_sample(f, n=40)
    rec = open_recording(f)
    m = rec.machine("m1")
    assert m.transition_by_id(f"{17:016x}").number == 17
    assert rec.transition_by_id(f"{40:016x}").number == 40
    assert rec.transition_by_id("nope") is None
    assert m.number_at(10_150 + 100 * 4) == 5 and m.number_at(0) == 0
    state = rec.state_at(10_150 + 100 * 4 + 10)["m1"]
    assert state.number == 5 and state.time == afters[4]
    assert state.active == [n for n, t in zip(NAMES, afters[4], strict=True) if t & 1]
    assert rec.state_at(5_001)["m1"].number == 0 and rec.state_at(4_999) == {}
    assert m.summary(2).is_auto and not m.summary(3).is_auto and m.summary(3).seq == 3
    with pytest.raises(IndexError):
        m.transition(41)
    with pytest.raises(IndexError):
        m.transition(0)
    with pytest.raises(KeyError):
        rec.machine("zzz")


def test_id_hash_hint() -> None:
    assert id_hash("00000000000000ff") == 255
    assert id_hash("0x000000000000ff") == zlib.crc32(b"0x000000000000ff")
    assert id_hash("abc-1") == zlib.crc32(b"abc-1")


@pytest.mark.parametrize(("tx_id", "in_body"), [
    ("00000000000000ff", False), ("0123456789abcdef", False),  # amnode's ids: header only
    ("ABCDEF0123456789", True), ("0x00000000000001", True), ("abc-1", True),
    ("0123456789abcde", True), ("0123456789abcdef0", True), ("", True),
    ("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669abcdef", True),  # not ASCII
])
def test_tx_hint_is_id_hash_and_keeps_only_lowercase_hex_ids_out_of_the_body(
        tx_id: str, in_body: bool) -> None:
    from amnode.telemetry.writer import tx_hint

    assert tx_hint(tx_id) == (id_hash(tx_id), tx_id if in_body else None)
    if not in_body:
        assert "%016x" % id_hash(tx_id) == tx_id  # what readers print from the header


def test_abandon_closes_without_writing_what_is_pending(tmp_path: Path) -> None:
    f = tmp_path / "abandoned.amrec"
    w = RecordWriter.create(f, PROCESS)
    mno = w.add_machine("m", "", [], ["A"], {}, {}, [], 1)
    w.flush()
    written = f.read_bytes()
    fd = w.fd
    w.transition(mno, 1, 1, 2, f"{1:016x}", 1, 0, [0], 1, 1, 0, [1], [0], None, None, None,
                 None, None)
    assert w.pending
    w.abandon()
    assert w.fd == -1 and w.pending == 0
    with pytest.raises(OSError):
        os.fstat(fd)
    w.close()  # nothing left to write: a no-op
    assert f.read_bytes() == written
    assert [(m.key, len(m)) for m in open_recording(f).machines] == [("m", 0)]


def test_body_layout_is_mutation_then_outcome(tmp_path: Path) -> None:
    f = tmp_path / "layout.amrec"
    afters = write_sample(f, n=2)
    data = f.read_bytes()
    off = next(o for o, kind in frames_of(data) if kind == Kind.TRANSITION)
    n = FRAME_HEADER.unpack_from(data, off)[3]
    body = msgpack.unpackb(data[off + FRAME_HEADER.size:off + FRAME_HEADER.size + n])
    mutation, outcome = body
    assert mutation[:2] == [1, [1]] and mutation[2][2] == [2, -1, 0, -1, 0x03, "AState"]
    assert outcome[OUT_STEP_TIMES] == [1234 / 1e9, 7 / 1e9]  # the last two steps
    assert outcome[OUT_K] == afters[0] and outcome[OUT_ID] is None  # the id is in the header
    assert outcome[OUT_QT] == 2


def test_blocks_end_with_check_records(tmp_path: Path) -> None:
    f = tmp_path / "blocks.amrec"
    write_sample(f, n=3, block_each=True)
    data = f.read_bytes()
    kinds = [kind for _, kind in frames_of(data)]
    # schema + tx 1 | tx 2 | tx 3 | queued + dispose, each block closed by a check record
    assert kinds == [1, 2, 5, 2, 5, 2, 5, 3, 4, 5]
    start = SEGMENT_PREFIX.size + struct.unpack_from("<I", data, 12)[0] + CRC.size
    for off, kind in frames_of(data):
        if kind == Kind.CHECK:
            rec = CHECK.unpack_from(data, off)
            assert rec[7] == off - start and rec[5] == zlib.crc32(data[start:off])
            assert rec[8] == zlib.crc32(data[off:off + CHECK.size - 4])
            start = off + CHECK.size
    assert encode_block([b"ab", b"cd"]) == b"abcd" + encode_check(b"abcd", 2, 0)


def test_torn_tail_at_every_cut_keeps_earlier_records(tmp_path: Path) -> None:
    f = tmp_path / "full.amrec"
    write_sample(f, n=3)
    data = f.read_bytes()
    (dispose, _), (check, _) = frames_of(data)[-2:]
    cut_file = tmp_path / "cut.amrec"
    for cut in range(dispose, len(data)):
        cut_file.write_bytes(data[:cut])
        rec = open_recording(cut_file)
        m = rec.machines[0]
        # complete frames of the block whose check record was not written are kept
        assert len(m) == 3 and m.queued_count == 1 and m.disposed == (cut >= check)
        assert m.transition(3).called == ["A"]
        (c,) = rec.corruption
        if cut in (dispose, check):  # cut between records: the check record is missing
            assert (c.file, c.offset, c.skipped) == (str(cut_file), cut, 0)
            assert "check record missing" in c.reason
        else:
            torn_at = dispose if cut < check else check
            assert (c.file, c.offset, c.skipped) == (str(cut_file), torn_at, cut - torn_at)
        assert "torn" in c.reason and c.torn_tail
        # no check record covers the block: every record of it is kept, marked unverified
        assert c.reason.endswith("record(s) before it kept unverified")
        assert m.unverified == [1, 2, 3] and m.transition(2).unverified
        assert m.summary(3).unverified and m.queued()[0].unverified
        assert m.schemas[0].unverified and m.dispose_unverified == m.disposed
        rec.close()


def test_truncated_and_garbage_files_give_one_clear_line(tmp_path: Path) -> None:
    good = tmp_path / "good.amrec"
    write_sample(good)
    cases = {
        "garbage.amrec": (b"hello, this is not a recording\n" * 20, "not an amnode recording"),
        "empty.amrec": (b"", "empty file"),
        "short.amrec": (good.read_bytes()[:11], "truncated segment header"),
        "badcrc.amrec": (good.read_bytes()[:20] + b"\x00" + good.read_bytes()[21:],
                         "checksum mismatch"),
    }
    for name, (content, reason) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(RecordingError) as info:
            open_recording(p)
        assert reason in str(info.value) and str(p) in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(RecordingError, match="no such file"):
        open_recording(tmp_path / "missing")
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    with pytest.raises(RecordingError, match="no recording files"):
        open_recording(empty_dir)


def segment_header_only(path: Path, major: int) -> Path:
    """A file holding just a segment header of format `major`.0."""
    body = msgpack.packb({"format": "amnode-recording", "major": major, "minor": 0})
    head = SEGMENT_PREFIX.pack(MAGIC, major, 0, len(body)) + body
    path.write_bytes(head + CRC.pack(zlib.crc32(head)))
    return path


def test_newer_major_version_is_refused(tmp_path: Path) -> None:
    p = segment_header_only(tmp_path / "future.amrec", 3)
    with pytest.raises(RecordingError) as info:
        open_recording(p)
    assert "format 3.0 is newer than this reader (2.x)" in str(info.value)
    # also inside a directory next to a good file: refused, not skipped
    d = tmp_path / "dir"
    d.mkdir()
    write_sample(d / "a.amrec")
    (d / "b.amrec").write_bytes(p.read_bytes())
    with pytest.raises(RecordingError, match="newer"):
        open_recording(d)


def test_older_major_version_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    p = segment_header_only(tmp_path / "old.amrec", 1)
    with pytest.raises(RecordingError) as info:
        open_recording(p)
    assert "format 1.0 is older than this reader (2.x) reads" in str(info.value)
    assert "\n" not in str(info.value)


def test_corrupt_block_is_reported_and_skipped(tmp_path: Path) -> None:
    f = tmp_path / "mid.amrec"
    afters = write_sample(f, n=5, block_each=True)
    data = bytearray(f.read_bytes())
    frames = frames_of(bytes(data))
    txs = [off for off, kind in frames if kind == Kind.TRANSITION]
    checks = [off for off, kind in frames if kind == Kind.CHECK]
    data[txs[2] + FRAME_HEADER.size + 3] ^= 0xFF  # a byte of transition 3's body
    f.write_bytes(bytes(data))
    rec = open_recording(f)
    (c,) = rec.corruption
    # transition 3 is its block: the block and its check record are skipped
    assert (c.offset, c.reason) == (txs[2], "checksum mismatch")
    assert c.skipped == checks[2] + CHECK.size - txs[2]
    m = rec.machines[0]
    assert len(m) == 4 and m.gaps == [3]
    assert [t.seq for t in m] == [1, 2, 4, 5] and m.disposed
    assert m.transition(3).time_after == afters[3]  # small machines: whole clocks
    # verify=False does not check block CRCs: the damaged body is only found when decoded
    fast = open_recording(f, verify=False)
    assert fast.corruption == [] and len(fast.machines[0]) == 5


def test_bad_marker_resyncs_at_the_next_check_record(tmp_path: Path) -> None:
    f = tmp_path / "marker.amrec"
    write_sample(f, n=5, block_each=True)
    data = bytearray(f.read_bytes())
    frames = frames_of(bytes(data))
    txs = [off for off, kind in frames if kind == Kind.TRANSITION]
    checks = [off for off, kind in frames if kind == Kind.CHECK]
    data[txs[1]:txs[1] + 2] = b"\x00\x00"  # transition 2's marker
    data[checks[3]] ^= 0xFF  # and the check record closing transition 4: damaged too
    f.write_bytes(bytes(data))
    rec = open_recording(f)
    first, second = rec.corruption
    assert (first.offset, first.reason) == (txs[1], "bad frame marker")
    assert first.skipped == checks[1] + CHECK.size - txs[1]
    # transition 4 itself is intact: it is kept (unverified), only its check record is lost
    assert second.offset == checks[3] and second.skipped == CHECK.size
    assert second.reason.endswith("1 record(s) before it kept unverified")
    m = rec.machines[0]
    assert [t.seq for t in m] == [1, 3, 4, 5] and m.gaps == [2] and m.disposed


#: a few MB of what makes a reader look for its next check record, in three shapes
HOSTILE_FILLERS = {
    # the 3 bytes a check record starts with, over and over
    "check-marks": FRAME_MARK_BYTES + bytes((int(Kind.CHECK),)),
    # a check record's whole 8-byte prefix (marker, kind, 0, 0): each one must be verified
    "check-prefixes": FRAME_MARK_BYTES + bytes((int(Kind.CHECK), 0, 0, 0, 0, 0)),
    # a bad byte before every (genuine, empty) check record: one resync per 33 bytes
    "damage-everywhere": b"X" + encode_check(b"", 0, 0),
}


def _index_damaged(tmp_path: Path, filler: str, garbage_bytes: int) -> tuple[int, int]:
    """(garbage length, bytes the reader read to resynchronise) for a file holding a good
    segment, `garbage_bytes` of `filler`, then another good segment."""
    f = tmp_path / f"hostile-{garbage_bytes}.amrec"
    write_sample(f, n=3, machine_id="before")
    pattern = HOSTILE_FILLERS[filler]
    garbage = pattern * (garbage_bytes // len(pattern))
    with open(f, "ab") as out:
        out.write(garbage)
    after = tmp_path / f"after-{garbage_bytes}.amrec"
    write_sample(after, n=2, machine_id="after", process={**PROCESS, "pid": 43})
    with open(f, "ab") as out:  # a good segment after the damage is still found
        out.write(after.read_bytes())
    with open_recording(f) as rec:
        assert [(m.key, len(m)) for m in rec.machines] == [("before", 3), ("after", 2)]
        assert [p.pid for p in rec.processes] == [42, 43]
        assert rec.corruption and sum(c.skipped for c in rec.corruption) <= len(garbage)
        return len(garbage), rec.resync_bytes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("filler", sorted(HOSTILE_FILLERS))
def test_damaged_files_index_in_linear_time(tmp_path: Path, filler: str) -> None:
    """Resynchronising reads each damaged byte about once (it used to search for the next
    segment from scratch at each candidate: quadratic). The work is counted, not timed: the
    bytes the reader reads to resynchronise grow like the damage (4 MB vs 1 MB)."""
    small, small_work = _index_damaged(tmp_path, filler, 1_000_000)
    big, big_work = _index_damaged(tmp_path, filler, 4_000_000)
    # each byte is searched about twice (the next segment, the next check record) and every
    # 8-byte check record candidate costs a 28-byte CRC: at most ~6.5 bytes read per byte
    assert small_work <= 8 * small and big_work <= 8 * big, (small_work, big_work)
    assert big_work / small_work <= 1.1 * big / small, (small_work, big_work)


def test_a_check_record_with_flags_is_not_genuine(tmp_path: Path) -> None:
    """docs/recording-format.md §4.1: bytes 3..8 of a genuine check record are 0 (the flags
    byte too)."""
    f = tmp_path / "flags.amrec"
    write_sample(f, n=2, block_each=True)
    data = bytearray(f.read_bytes())
    checks = [off for off, kind in frames_of(bytes(data)) if kind == Kind.CHECK]
    rec = bytearray(data[checks[0]:checks[0] + CHECK.size])
    rec[3] = 1
    rec[28:] = CRC.pack(zlib.crc32(bytes(rec[:28])))  # its own CRC matches
    data[checks[0]:checks[0] + CHECK.size] = rec
    f.write_bytes(bytes(data))
    (c,) = open_recording(f).corruption
    assert c.offset == checks[0] and c.reason.startswith("corrupt check record")


def _frame_with_body(kind: int, mno: int, body: bytes) -> bytes:
    return encode_frame(kind, 1, mno, 1, 1, 0, body)


def test_msgpack_whitelist_refuses_ext_bin_and_int_keys(tmp_path: Path) -> None:
    f = tmp_path / "hostile.amrec"
    write_sample(f, n=1)
    bad_bodies = [
        msgpack.packb({"id": "a", "s": 1, "mt": 0, "c": [], "k": [0, 0, 0, 0, 0],
                       "x": msgpack.Timestamp(1, 2)}),
        msgpack.packb({"id": b"bytes", "s": 1, "mt": 0, "c": []}, use_bin_type=True),
        msgpack.packb({1: 2}),
        msgpack.packb({"id": "a", "mt": 0, "c": [object.__name__], "k": [1, 2, 3],
                       "a": {"k": 5}}),
    ]
    with open(f, "ab") as out:
        for body in bad_bodies:
            out.write(_frame_with_body(int(Kind.TRANSITION), 1, body))
    rec = open_recording(f)
    m = rec.machines[0]
    assert len(m) == 1 + len(bad_bodies)
    for n in range(2, 2 + len(bad_bodies)):
        with pytest.raises(RecordingError) as info:
            m.transition(n)
        assert "corrupt record" in str(info.value) and "\n" not in str(info.value)
    # a hostile schema record is reported at index time, not raised
    with open(f, "ab") as out:
        out.write(_frame_with_body(int(Kind.SCHEMA), 9, msgpack.packb(
            {"id": "z", "x": msgpack.ExtType(1, b"evil")})))
    rec = open_recording(f)
    assert any("max_ext_len" in c.reason for c in rec.corruption)


def test_unknown_kinds_are_skipped_and_segments_concatenate(tmp_path: Path) -> None:
    a, b = tmp_path / "a.amrec", tmp_path / "b.amrec"
    write_sample(a, n=2, machine_id="x")
    write_sample(b, n=4, machine_id="x", process={**PROCESS, "pid": 43})
    with open(a, "ab") as out:  # a future minor version's record kind, in its own block
        out.write(encode_block([encode_frame(77, 0, 1, 0, 0, 0, msgpack.packb({"new": 1}))]))
    cat = tmp_path / "cat.amrec"
    cat.write_bytes(a.read_bytes() + b.read_bytes())
    rec = open_recording(cat)
    assert rec.corruption == []
    assert [p.pid for p in rec.processes] == [42, 43]
    assert [(m.key, len(m)) for m in rec.machines] == [("x", 2), ("x#2", 4)]


def test_pack_drops_damage_and_reads_the_same(tmp_path: Path) -> None:
    d = tmp_path / "rec"
    d.mkdir()
    write_sample(d / "p1.amrec", n=5, machine_id="one")
    write_sample(d / "p2.amrec", n=7, machine_id="two", process={**PROCESS, "pid": 7})
    torn = (d / "p2.amrec").read_bytes()[:-3]
    (d / "p2.amrec").write_bytes(torn)
    src = open_recording(d)
    assert len(src.corruption) == 1
    out = tmp_path / "packed.amrec"
    size = pack(d, out)
    assert size == out.stat().st_size
    packed = open_recording(out)
    assert packed.corruption == []
    assert [(m.key, len(m), m.disposed) for m in packed.machines] == \
        [(m.key, len(m), m.disposed) for m in src.machines]
    assert packed.machine("two").transition(7).time_after == \
        src.machine("two").transition(7).time_after


def test_segment_header_codec() -> None:
    raw = encode_segment_header({"host": "h"})
    magic, major, minor, length = SEGMENT_PREFIX.unpack_from(raw)
    assert (magic, major, minor) == (MAGIC, 2, 0)
    assert msgpack.unpackb(raw[16:16 + length])["format"] == "amnode-recording"
    assert CRC.unpack_from(raw, 16 + length)[0] == zlib.crc32(raw[:16 + length])
    frame = encode_frame(2, 3, 4, 5, 6, 7, b"\x80")
    assert FRAME_HEADER.unpack_from(frame) == (FRAME_MARK, 2, 3, 1, 4, 5, 6, 7)
    assert frame[FRAME_HEADER.size:] == b"\x80"
    check = encode_check(frame, 1, 99)
    assert CHECK.unpack_from(check) == (FRAME_MARK, int(Kind.CHECK), 0, 0, 1,
                                        zlib.crc32(frame), 99, len(frame),
                                        zlib.crc32(check[:CHECK.size - 4]))


def test_odd_ids_log_prefix_and_queue_tick_defaults(tmp_path: Path) -> None:
    f = tmp_path / "odd.amrec"
    w = RecordWriter.create(f, PROCESS)
    mno = w.add_machine("m", "", [], ["A"], {}, {}, [], 1, log_prefix="[m] ")
    ids = ["ABCDEF0123456789", "abc-1", "0x00000000000001", "00000000000000ff"]
    for i, tx_id in enumerate(ids, 1):
        w.transition(mno, i, 10 * i, 10 * i + 5, tx_id, 1, 0, [0], i + 1, i, 0, [i], [i - 1],
                     [[32, -1, 0, -1], [2, -1, 0, -1, 3, "AState", 2_500]],
                     [[2, "[m] [state] +A"], [1, "[other] kept"]], None, None, None)
    w.dispose(mno, 100, [[2, "[m] [dispose] m"]])
    w.close()
    m = open_recording(f).machine("m")
    assert [t.id for t in m] == ids
    assert all(m.transition_by_id(tx_id).id == tx_id for tx_id in ids)
    tx = m.transition(1)
    assert [x.text for x in tx.log] == ["[state] +A", "[other] kept"]
    assert [x.text for x in m.dispose_log] == ["[dispose] m"]
    assert tx.handlers == [("AState", 2_500)] and tx.duration_ns == 5
    assert (tx.queue_tick, tx.mutation_queue_tick) == (2, 1)


def test_truncated_body_keeps_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import amnode.telemetry.writer as writer

    monkeypatch.setattr(writer, "MAX_BODY", 200)
    f = tmp_path / "big.amrec"
    w = RecordWriter.create(f, PROCESS)
    mno = w.add_machine("m", "", [], ["A"], {}, {}, [], 1)
    w.transition(mno, 1, 1, 2, f"{1:016x}", 1, 0, [0], 1, 1, 0, [1], [0],
                 [[32, -1, 0, -1]] * 50, [[2, "x" * 50]] * 3, None, {"a": "b"}, None)
    w.close()
    tx = open_recording(f).machine("m").transition(1)
    assert tx.truncated and tx.steps == [] and tx.log == [] and tx.called == ["A"]
    assert tx.args == {"a": "b"} and tx.time_after == [1]



def test_a_missing_check_record_is_a_torn_tail_and_its_records_stay_unverified(
        tmp_path: Path) -> None:
    """docs/recording-format.md §7: complete frames whose check record was never written are
    kept, unverified: a byte changed in them is not caught by any CRC, so the reader must say
    they are unchecked."""
    f = tmp_path / "torn.amrec"
    write_sample(f, n=3, block_each=True)  # blocks: schema+tx1 | tx2 | tx3 | queued+dispose
    data = f.read_bytes()
    checks = [off for off, kind in frames_of(data) if kind == Kind.CHECK]
    cut = bytearray(data[:checks[2]])  # tx 3's check record (and all after it) never written
    at = cut.rindex(b"\xa13")  # the args value "3" of transition 3
    cut[at + 1] = ord("4")
    f.write_bytes(bytes(cut))
    with open_recording(f) as rec:
        (c,) = rec.corruption
        assert c.torn_tail and (c.offset, c.skipped) == (checks[2], 0)
        assert c.reason == "torn record at end of file (check record missing); 1 record(s) " \
            "before it kept unverified"
        m = rec.machines[0]
        assert len(m) == 3 and m.unverified == [3] and m.unverified_records == 1
        tx = m.transition(3)
        assert tx.args["n"] == "4" and tx.unverified and m.summary(3).unverified
        assert not m.transition(2).unverified and not m.summary(2).unverified
        assert not m.is_unverified(2) and m.is_unverified(3)
        # pack keeps the record and its mark; the packed file itself is intact
        packed = tmp_path / "packed.amrec"
        pack(rec, packed)
    with open_recording(packed) as again:
        assert again.corruption == [] and again.machines[0].unverified == [3]
        assert again.machines[0].transition(3).unverified
        pack(again, tmp_path / "twice.amrec")
    assert (tmp_path / "twice.amrec").read_bytes() == packed.read_bytes()


def test_a_segment_appended_after_a_crash_ends_the_unclosed_block(tmp_path: Path) -> None:
    a, b = tmp_path / "a.amrec", tmp_path / "b.amrec"
    write_sample(a, n=2, machine_id="crashed")
    write_sample(b, n=1, machine_id="next", process={**PROCESS, "pid": 43})
    crashed = a.read_bytes()[:-CHECK.size]
    both = tmp_path / "both.amrec"
    both.write_bytes(crashed + b.read_bytes())
    with open_recording(both) as rec:
        (c,) = rec.corruption
        assert c.torn_tail and c.offset == len(crashed) and c.skipped == 0
        assert c.reason.startswith("torn record at end of segment (check record missing)")
        first, second = rec.machines
        assert first.unverified == [1, 2] and first.dispose_unverified
        assert second.unverified == [] and not second.dispose_unverified


def test_salvaged_frames_of_a_damaged_block_are_unverified(tmp_path: Path) -> None:
    f = tmp_path / "mid.amrec"
    write_sample(f, n=5)  # one block: schema, 5 transitions, queued, dispose
    data = bytearray(f.read_bytes())
    txs = [off for off, kind in frames_of(bytes(data)) if kind == Kind.TRANSITION]
    data[txs[3]:txs[3] + 2] = b"\x00\x00"  # transition 4's marker: the block fails its CRC
    f.write_bytes(bytes(data))
    with open_recording(f) as rec:
        (c,) = rec.corruption
        assert not c.torn_tail and c.reason.endswith("4 record(s) before it kept unverified")
        m = rec.machines[0]
        assert m.unverified == [1, 2, 3] and m.schemas[0].unverified


@pytest.mark.timeout(30)
def test_special_files_are_refused_not_waited_for(tmp_path: Path) -> None:
    """A FIFO would block open(2) until a writer comes; devices and sockets are no files."""
    fifo = tmp_path / "fifo.amrec"
    os.mkfifo(fifo)
    with pytest.raises(RecordingError, match="not a regular file but a FIFO") as info:
        open_recording(fifo)
    assert "\n" not in str(info.value) and str(fifo) in str(info.value)
    with pytest.raises(RecordingError, match="not a regular file but a character device"):
        open_recording(os.devnull)
    d = tmp_path / "dir"
    d.mkdir()
    write_sample(d / "a.amrec")
    os.mkfifo(d / "b.amrec")
    (d / "sub.amrec").mkdir()  # only files of that level are read; a directory is skipped
    with open_recording(d) as rec:
        assert [m.key for m in rec.machines] == ["m1"]
        (c,) = rec.corruption
        assert c.file == str(d / "b.amrec") and "FIFO" in c.reason


def _index_summary(machines: list, corruption: list) -> tuple:
    """Everything the first pass learns, in comparable form."""
    per = [(m.key, list(m._offsets), list(m.end_times), m.errors(), m.gaps, m.unverified,
            m.error_count, m.first_ns, m.last_ns, [m.summary(n) for n in range(1, len(m) + 1)])
           for m in machines]
    return per, [(c.offset, c.reason, c.skipped) for c in corruption]


def _write_two_machines(path: Path) -> None:
    """Two interleaved machines over several multi-frame blocks, with error flags and a
    sequence gap."""
    w = RecordWriter.create(path, PROCESS)
    a = w.add_machine("a", "", [], NAMES, STATES, {}, [], 1_000)
    b = w.add_machine("b", "a", [], NAMES, STATES, {}, [], 1_001)
    clocks = {a: [0, 0, 0, 0, 0], b: [0, 0, 0, 0, 0]}
    seqs = {a: 0, b: 0}
    for i in range(40):
        mno = a if i % 3 else b
        seqs[mno] += 2 if i == 17 else 1  # a lost record before transition 18
        before = list(clocks[mno])
        clocks[mno][i % 5] += 1
        flags = 0x01 | (0x20 if i % 7 == 0 else 0)
        w.transition(mno, seqs[mno], 2_000 + i * 10, 2_005 + i * 10, f"{i + 1:016x}", flags,
                     0, [i % 5], i + 1, i + 1, 0, list(clocks[mno]), before, [], None, None,
                     {"i": str(i)}, None)
        if i % 6 == 5:
            w.flush()  # blocks of six transitions
    w.close()


@pytest.mark.parametrize("damage", ["none", "crc", "marker", "torn"])
def test_the_first_pass_fast_path_indexes_what_the_checked_path_does(
        tmp_path: Path, damage: str) -> None:
    """A final scan indexes a block's transitions as it reads them and takes them back out when
    the block proves damaged; the index (offsets, times, flags, gaps, errors, unverified
    records, damage reports) must equal the one built by the path that waits for each block's
    check record (a growing file's scan, then its final scan)."""
    from amnode.telemetry.reader import RecordedMachine
    from amnode.telemetry.scan import MappedFile, Scanner

    f = tmp_path / f"{damage}.amrec"
    _write_two_machines(f)
    data = bytearray(f.read_bytes())
    frames = frames_of(bytes(data))
    txs = [off for off, kind in frames if kind == Kind.TRANSITION]
    if damage == "crc":
        data[txs[20] + FRAME_HEADER.size + 2] ^= 0xFF  # a body byte in the middle of a block
    elif damage == "marker":
        data[txs[26]:txs[26] + 2] = b"\x00\x00"  # the third frame of a block
    elif damage == "torn":
        data = data[:txs[33] + 10]  # cut inside the fourth frame of the last block
    f.write_bytes(bytes(data))

    with open_recording(f) as rec:
        fast = _index_summary(rec.machines, rec.corruption)
    machines: list = []
    corruption: list = []
    mf = MappedFile(f)
    try:
        scanner = Scanner(mf, verify=True, new_machine=RecordedMachine, machines=machines,
                          segments=[], corruption=corruption)
        scanner.scan(final=False)  # every frame waits for its block's check record
        scanner.scan(final=True)
        checked = _index_summary(machines, corruption)
    finally:
        mf.close()
    assert fast == checked
    assert (fast[1] == []) == (damage == "none")
    (a, b) = fast[0]
    if damage == "none":
        assert [len(a[1]), len(b[1])] == [26, 14]
        assert a[4] == [12] and a[3] and b[3]  # the gap, and error flags in both
    else:
        assert len(a[1]) + len(b[1]) < 40 or a[5] or b[5]  # records lost or unverified
