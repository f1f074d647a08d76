"""Recorder with live machines: flushing, submachines, args, steps, logs, queue, schema changes."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

import amnode as am
from amnode.machine import Tracer
from amnode.telemetry import Recorder, open_recording
from amnode.telemetry.format import ARG_VALUE_MAX


def quiet(schema: dict, **kw: object) -> am.Machine:
    """A machine whose log lines go nowhere but into transitions; no test here is about
    handler timeouts, so a stalled scheduler must not trip one (the default is 0.1 s)."""
    kw.setdefault("log_level", am.LogLevel.OPS)
    kw.setdefault("handler_timeout", 60.0)
    return am.Machine(schema, logger=lambda level, line: None, **kw)


class Times(Tracer):
    """Keeps (id, time_before, time_after) of every transition, to compare with the file."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[int], list[int]]] = []

    def transition_end(self, t: am.Transition) -> None:
        self.seen.append((t.id, list(t.time_before), list(t.time_after)))


def test_context_manager_flushes_and_clocks_match(tmp_path: Path) -> None:
    times = Times()
    with Recorder(tmp_path / "r") as rec:
        m = quiet({"A": {}, "B": {"multi": True}, "C": {"remove": ["A"]}}, id="mm",
                  tracers=[times])
        rec.attach(m)
        for i in range(150):
            m.add("A" if i % 3 else "B")
            m.add("C")
            m.remove("C")
        written = rec.file
    assert written.parent == tmp_path / "r" and written.suffix == ".amrec"
    r = open_recording(tmp_path / "r")
    assert r.corruption == []
    recorded = r.machine("mm")
    assert len(recorded) == len(times.seen) == 450
    for tx, (tx_id, before, after) in zip(recorded, times.seen, strict=True):
        assert (tx.id, tx.time_before, tx.time_after) == (tx_id, before, after)
    assert recorded.transition(450).number == 450 and recorded.transition(1).seq == 1


def test_background_writer_flushes_without_close(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "live.amrec")
    written = threading.Condition()
    frames = [0]
    drain = rec._drain

    def counting_drain() -> int:
        n = drain()
        with written:
            frames[0] += n
            written.notify_all()
        return n

    rec._drain = counting_drain  # type: ignore[method-assign]
    try:
        m = quiet({"A": {}}, id="live")
        rec.attach(m)
        m.add("A")
        m.remove("A")
        # the writer thread alone (no flush, no close) writes the schema and both transitions;
        # the timeout only stops a test that would otherwise wait forever
        with written:
            assert written.wait_for(lambda: frames[0] >= 3, timeout=60), frames
        with open_recording(rec.file) as r:  # the file itself has them
            assert [(m.key, len(m)) for m in r.machines] == [("live", 2)]
            assert r.corruption == []
    finally:
        rec.close()


def test_submachines_are_followed_recursively(tmp_path: Path) -> None:
    with Recorder(tmp_path / "r") as rec:
        root = quiet({"A": {}}, id="root")
        rec.attach(root)
        rec.attach(root)  # idempotent
        child = quiet({"B": {}}, id="child", parent=root)
        grandchild = quiet({"C": {}}, id="grandchild", parent=child)
        other = quiet({"D": {}}, id="unrelated")
        for m, s in ((root, "A"), (child, "B"), (grandchild, "C"), (other, "D")):
            m.add(s)
    r = open_recording(tmp_path / "r")
    got = {m.key: (m.parent, len(m)) for m in r.machines}
    assert got == {"root": ("", 1), "child": ("root", 1), "grandchild": ("child", 1)}
    assert [m.key for m in r.children(r.machine("root"))] == ["child"]


def test_a_write_error_stops_recording_and_closes_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno
    import os

    import amnode.telemetry.writer as writer

    rec = Recorder(tmp_path / "full.amrec")
    try:
        m = quiet({"A": {"multi": True}}, id="full")
        rec.attach(m)
        rec.flush()
        fd = rec._writer.fd

        def disk_full(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(writer.os, "write", disk_full)
        m.add("A")
        rec.flush()
        monkeypatch.undo()
        assert isinstance(rec.last_error, OSError) and rec._writer.fd == -1
        with pytest.raises(OSError):
            os.fstat(fd)
        assert rec._writer.pending == 0 and not rec._queue
        m.add("A")  # inert now: nothing is buffered
        assert not rec._queue
        assert "recording to" in capsys.readouterr().err
    finally:
        rec.close()
    assert len(open_recording(tmp_path / "full.amrec").machine("full")) == 0


def test_attach_from_another_thread_records_nothing(tmp_path: Path) -> None:
    """attach() checks the thread before writing: a refused attach used to leave a schema
    frame (a phantom machine) and use up a machine number."""
    import threading

    box: dict[str, am.Machine] = {}
    t = threading.Thread(target=lambda: box.setdefault("m", quiet({"A": {}}, id="foreign")))
    t.start()
    t.join()
    with Recorder(tmp_path / "r.amrec") as rec:
        with pytest.raises(am.WrongThreadError):
            rec.attach(box["m"])
        assert not box["m"].tracers
        mine = quiet({"A": {}}, id="mine")
        rec.attach(mine)
        mine.add("A")
    r = open_recording(tmp_path / "r.amrec")
    assert [(m.key, m.mno, len(m)) for m in r.machines] == [("mine", 1, 1)]
    assert r.corruption == []


def test_args_are_bounded_strings_even_with_hostile_repr(tmp_path: Path) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    class Huge:
        def __repr__(self) -> str:
            return "x" * 10_000

    class BadKey:
        def __hash__(self) -> int:
            return 1

        def __repr__(self) -> str:
            raise ValueError("no key for you")

    args: dict = {"hostile": Hostile(), "huge": Huge(), "lines": "a\nb", "num": 3,
                  "long_str": "y" * 500, BadKey(): 1}
    many = {f"k{i}": i for i in range(100)}
    with Recorder(tmp_path / "r", args_max_len=ARG_VALUE_MAX) as rec:
        m = quiet({"A": {}, "B": {}}, id="args")
        rec.attach(m)
        m.add("A", args)
        m.add("B", many)
    a = open_recording(tmp_path / "r").machine("args")
    got = a.transition(1).args
    assert got["hostile"].startswith("<unrepresentable Hostile: RuntimeError('boom')")
    assert got["huge"] == "x" * (ARG_VALUE_MAX - 3) + "..."
    assert got["long_str"] == "y" * (ARG_VALUE_MAX - 3) + "..."
    assert got["lines"] == "a b" and got["num"] == "3"
    assert any(k.startswith("<unrepresentable BadKey") for k in got)
    assert all(isinstance(v, str) and len(v) <= ARG_VALUE_MAX for v in got.values())
    big = a.transition(2).args
    assert len(big) == 65 and big["..."] == "36 more" and big["k0"] == "0"


def test_steps_handlers_durations_and_logs(tmp_path: Path) -> None:
    class Handlers:
        def AEnter(self, e: am.Event) -> bool:
            e.machine.log("entering %s", "A")
            return True

        def AState(self, e: am.Event) -> None:
            time.sleep(0.003)

        def CEnter(self, e: am.Event) -> bool:
            return False

    with Recorder(tmp_path / "r") as rec:
        m = quiet({"A": {"require": ["B"]}, "B": {}, "C": {}}, id="steps", handlers=Handlers())
        rec.attach(m)
        m.log("between transitions")
        m.add(["A", "B"])
        m.add("C")
    r = open_recording(tmp_path / "r")
    tx = r.machine("steps").transition(1)
    kinds = {(s.type, s.from_state, s.to_state, s.relation) for s in tx.steps}
    assert ("called", "", "A", None) in kinds and ("rel", "A", "B", "require") in kinds
    assert ("activate", "", "A", None) in kinds
    handlers = dict(tx.handlers)
    assert list(handlers) == ["AEnter", "AState"]
    assert handlers["AState"] >= 3_000_000 and tx.duration_ns >= 3_000_000
    assert "[exter] entering A" in [x.text for x in tx.log]
    assert any(x.text.startswith("[state] +") and "+A" in x.text and "+B" in x.text
               and x.level == am.LogLevel.CHANGES for x in tx.log)
    assert "[exter] between transitions" in [x.text for x in tx.pre_log]
    assert not any(x.text.startswith("[steps") for x in tx.log)  # id prefix stripped
    canceled = r.machine("steps").transition(2)
    assert not canceled.accepted and canceled.is_empty
    assert r.machine("steps").summary(2).is_empty and not r.machine("steps").summary(1).is_empty
    assert not r.machine("steps").summary(2).accepted
    assert [name for name, _ in canceled.handlers] == ["CEnter"]


def test_queued_mutations_source_and_dispose(tmp_path: Path) -> None:
    class Handlers:
        def __init__(self, other: am.Machine) -> None:
            self.other = other

        def AState(self, e: am.Event) -> None:
            e.machine.add("B", {"why": "queued"})
            self.other.add("X")

    with Recorder(tmp_path / "r") as rec:
        other = quiet({"X": {}}, id="other")
        m = quiet({"A": {}, "B": {}}, id="main", handlers=Handlers(other))
        rec.attach(m)
        rec.attach(other)
        m.add("A")
        m.dispose()
    r = open_recording(tmp_path / "r")
    main = r.machine("main")
    (q,) = main.queued()
    assert (q.type, q.called, q.args, q.prepended) == ("add", ["B"], {"why": "queued"}, False)
    a, b = main.transition(1), main.transition(2)
    assert q.tx_id == a.id and b.called == ["B"] and b.mutation_queue_tick == q.queue_tick
    x = r.machine("other").transition(1)
    assert x.source is not None and (x.source.machine_id, x.source.tx_id) == ("main", a.id)
    assert main.disposed and "[dispose] main" in [x.text for x in main.dispose_log]
    assert not r.machine("other").disposed


def test_only_deferred_mutations_are_queued_records_unless_all_queued(tmp_path: Path) -> None:
    """Mutations that run at once skip the queue under a recorder (it does not want them), and
    are recorded only as their transitions; with all_queued=True each is a queued record too."""

    class Handlers:
        def AState(self, e: am.Event) -> None:
            e.machine.add("B")  # deferred: a transition is running

    for all_queued, want in ((False, [["B"]]), (True, [["A"], ["B"], ["C"]])):
        path = tmp_path / f"q{int(all_queued)}"
        with Recorder(path, all_queued=all_queued) as rec:
            m = quiet({"A": {}, "B": {}, "C": {}}, id="main", handlers=Handlers())
            rec.attach(m)
            m.add("A")
            m.add("C")
        main = open_recording(path).machine("main")
        assert [q.called for q in main.queued()] == want
        assert [main.transition(i).called for i in (1, 2, 3)] == [["A"], ["B"], ["C"]]
        assert [main.transition(i).mutation_queue_tick for i in (1, 2, 3)] == [2, 3, 4]


def test_schema_changes_order_and_groups(tmp_path: Path) -> None:
    with Recorder(tmp_path / "r") as rec:
        m = quiet({"B": {}, "A": {}}, id="sch")
        rec.attach(m)
        m.verify_states(["B", "A", "Exception"])
        m.set_groups({"first": ["B"]})
        m.add("A")
        rec.flush()
        m.set_schema({"B": {}, "A": {}, "C": {"auto": True}}, ["C", "B", "A", "Exception"])
        m.add("C")
        m.add("B")
    r = open_recording(tmp_path / "r")
    s = r.machine("sch")
    assert [v.state_names for v in s.schemas] == [["B", "A", "Exception"],
                                                  ["C", "B", "A", "Exception"]]
    assert s.schema_at(1).state_names == ["B", "A", "Exception"]
    assert s.groups == m.groups()[0] and s.groups_order == ["first"]  # set_groups has no hook
    assert s.transition(1).clock_after == {"B": 0, "A": 1, "Exception": 0}
    assert s.transition(2).clock_after == {"C": 1, "B": 0, "A": 1, "Exception": 0}
    assert s.transition(3).states_after == ["C", "B", "A"]
    assert s.schema["C"]["auto"] is True


def test_errors_and_state_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import amnode.telemetry.recorder as recorder_module

    ticks = itertools.count(1_000_000_000, 1_000_000)  # a fake monotonic clock: +1 ms a call
    monkeypatch.setattr(recorder_module, "_mono", lambda: next(ticks))
    with Recorder(tmp_path / "r") as rec:
        m = quiet({"A": {}, "ErrBad": {"require": ["Exception"]}}, id="err")
        rec.attach(m)
        m.add("A")
        m.add_err_state("ErrBad", ValueError("bad"))
        m.remove("A")
    r = open_recording(tmp_path / "r")
    e = r.machine("err")
    assert e.error_count == 2 and e.errors() == [2, 3]
    assert e.transition(2).is_error and not e.transition(1).is_error
    first, second, last = e.end_times
    assert first < second < last
    mid = (first + second) // 2  # after transition 1 ended, before transition 2 did
    state = r.state_at(mid)["err"]
    assert state.number == 1 and state.active == ["A"]
    assert r.state_at(first)["err"].number == 1 and r.state_at(first - 1)["err"].number == 0
    assert r.state_at(last)["err"].active == ["ErrBad", "Exception"]
    assert [m.key for _, m, _ in r.timeline()] == ["err"] * 3


def test_single_file_recorder_appends_segments(tmp_path: Path) -> None:
    f = tmp_path / "one.amrec"
    for _ in range(2):
        with Recorder(f) as rec:
            m = quiet({"A": {}}, id="same")
            rec.attach(m)
            m.add("A")
            assert rec.file == f
    r = open_recording(f)
    assert len(r.processes) == 2 and [m.key for m in r.machines] == ["same", "same#2"]


def test_close_detaches_and_refuses_new_machines(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r")
    m = quiet({"A": {}}, id="detach")
    rec.attach(m)
    rec.close()
    assert not [t for t in m.tracers if t.tracer_id == "amnode.telemetry"]
    m.add("A")  # not recorded, no error
    with pytest.raises(RuntimeError):
        rec.attach(m)
    assert len(open_recording(tmp_path / "r").machine("detach")) == 0


def test_full_buffer_drops_records_and_the_gap_shows(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r", buffer_limit=3)
    m = quiet({"A": {}}, id="drops")
    with rec._lock:  # the writer thread cannot drain while we hold its lock
        rec.attach(m)
        for _ in range(5):  # the schema and 2 of these 10 transitions fit, 8 are dropped
            m.add("A")
            m.remove("A")
        assert rec.dropped == 8
    rec.flush()
    m.add("A")
    rec.close()
    d = open_recording(tmp_path / "r").machine("drops")
    assert [t.seq for t in d] == [1, 2, 11] and d.gaps == [3]
    assert d.transition(3).time_after == [11, 0]  # a full clock after the gap


def test_install_records_every_new_machine(tmp_path: Path) -> None:
    from amnode.telemetry import install, process_recorder, uninstall

    assert install(tmp_path / "env")
    try:
        a = quiet({"A": {}}, id="env-a")
        b = quiet({"B": {}}, id="env-b")
        a.add("A")
        b.add("B")
        rec = process_recorder()
        assert rec is not None and rec.file.parent == tmp_path / "env"
    finally:
        uninstall()
    quiet({"C": {}}, id="after-uninstall").add("C")
    r = open_recording(tmp_path / "env")
    assert [(m.key, len(m)) for m in r.machines] == [("env-a", 1), ("env-b", 1)]


def test_machines_on_several_threads_share_one_recorder(tmp_path: Path) -> None:
    import threading

    def work(rec: Recorder, name: str) -> None:
        m = quiet({"A": {}, "B": {"require": ["A"]}}, id=name)
        rec.attach(m)
        for _ in range(500):
            m.add(["A", "B"])
            m.remove("A")

    with Recorder(tmp_path / "r") as rec:
        threads = [threading.Thread(target=work, args=(rec, f"t{i}")) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    r = open_recording(tmp_path / "r")
    assert r.corruption == [] and rec.encode_errors == 0
    assert sorted((m.key, len(m)) for m in r.machines) == [(f"t{i}", 1000) for i in range(4)]
    for m in r.machines:
        assert [t.seq for t in m] == list(range(1, 1001))
        assert m.transition(1000).states_after == []


def test_close_from_another_thread_detaches_through_the_machines_loop(tmp_path: Path) -> None:
    import asyncio

    rec = Recorder(tmp_path / "r")
    ready = threading.Event()
    box: dict[str, object] = {}

    async def owner() -> None:
        m = quiet({"A": {}}, id="looped")
        rec.attach(m)
        m.add("A")
        ready.set()
        deadline = time.monotonic() + 60  # only stops a test that would wait forever
        while any(t.tracer_id == "amnode.telemetry" for t in m.tracers):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        box["detached"] = True

    thread = threading.Thread(target=lambda: asyncio.run(owner()))
    thread.start()
    assert ready.wait(60)
    rec.close()  # not the owner thread: the detach is scheduled on the owner's loop
    thread.join(60)
    assert box.get("detached") is True
    assert len(open_recording(tmp_path / "r").machine("looped")) == 1


class Reference(Tracer):
    """Everything a transition record should hold, taken from the live transition."""

    collect_steps = True
    collect_check_steps = True

    def __init__(self, machine: am.Machine) -> None:
        self.machine = machine
        self.prefix = f"[{machine.id[:5]}] "
        self.seen: list[dict[str, object]] = []

    def _text(self, entries: list[am.LogEntry]) -> list[tuple[int, str]]:
        n = len(self.prefix)
        return [(e.level, e.text[n:] if e.text.startswith(self.prefix) else e.text)
                for e in entries]

    def transition_end(self, t: am.Transition) -> None:
        from amnode.telemetry.capture import render_args

        mut = t.mutation
        src = mut.source
        self.seen.append({
            "id": t.id, "type": str(mut.type), "called": list(mut.called),
            "accepted": t.accepted, "is_auto": mut.is_auto, "is_check": mut.is_check,
            "is_health": t.is_health,
            "steps": [(str(s.type), s.from_state, s.to_state,
                       None if s.relation is None else str(s.relation),
                       s.handler, s.is_final, s.is_enter, s.is_self, round(s.duration * 1e9))
                      for s in t.steps],
            "step_text": [str(s) for s in t.steps],
            "log": self._text(t.log_entries), "pre_log": self._text(t.pre_log_entries),
            "args": render_args(mut.args) if mut.args else {},
            "queue_tick": self.machine.queue_tick, "mutation_queue_tick": mut.queue_tick,
            "queue_len": t.queue_len, "time_before": list(t.time_before),
            "time_after": list(t.time_after),
            "source": None if src is None else (src.mach_id, src.tx_id, src.mach_time),
        })


def test_record_names_are_the_machines() -> None:
    """Mutation types, step types and relations read back with the machine's own names, and
    a recorded step prints like the live one (unknown step types as their number)."""
    from amnode.machine.steps import Relation, Step, StepType
    from amnode.telemetry.records import MUTATION_TYPES, RELATIONS, STEP_TYPES, StepRecord

    assert tuple(str(am.MutationType(i)) for i in range(4)) == MUTATION_TYPES
    assert tuple(str(r) for r in sorted(Relation)) == RELATIONS
    assert {int(t): str(t) for t in StepType} == STEP_TYPES
    for kind in StepType:
        for rel in (None, *Relation):
            for src, dst, handler in (("A", "B", ""), ("", "B", ""), ("A", "", "AState"),
                                      ("", "", "")):
                live = Step(kind, src, dst, rel)
                live.handler = handler
                rec = StepRecord(str(kind), src, dst, None if rel is None else str(rel),
                                 handler)
                assert str(rec) == str(live)
    assert str(StepRecord("128", "A", "B", "add")) == "128 A add B"


def test_health_flag_is_the_machines_rule(tmp_path: Path) -> None:
    m = quiet({"Heartbeat": {"multi": True}, "Healthcheck": {"multi": True}, "A": {}},
              id="health")
    ref = Reference(m)
    m.bind_tracer(ref)
    with Recorder(tmp_path / "h.amrec") as rec:
        rec.attach(m)
        m.add("Heartbeat")
        m.add("Healthcheck")
        m.add(["Heartbeat", "A"])
        m.remove("Heartbeat")
        m.set("Healthcheck")
        m.can_add("Heartbeat")
    recorded = open_recording(tmp_path / "h.amrec").machine("health")
    flags = [tx.is_health for tx in recorded]
    assert flags == [t["is_health"] for t in ref.seen]
    assert flags == [True, True, False, False, False, True]


def recorded_view(tx: object) -> dict[str, object]:
    src = tx.source
    return {
        "id": tx.id, "type": tx.type, "called": tx.called, "accepted": tx.accepted,
        "is_auto": tx.is_auto, "is_check": tx.is_check, "is_health": tx.is_health,
        "steps": [(s.type, s.from_state, s.to_state, s.relation, s.handler, s.is_final,
                   s.is_enter, s.is_self, s.duration_ns) for s in tx.steps],
        "step_text": [str(s) for s in tx.steps],
        "log": [(x.level, x.text) for x in tx.log],
        "pre_log": [(x.level, x.text) for x in tx.pre_log], "args": tx.args,
        "queue_tick": tx.queue_tick, "mutation_queue_tick": tx.mutation_queue_tick,
        "queue_len": tx.queue_len, "time_before": tx.time_before, "time_after": tx.time_after,
        "source": None if src is None else (src.machine_id, src.tx_id, src.machine_time),
    }


@pytest.mark.parametrize("extra_states", [0, 20])  # small (whole clocks) and delta clocks
def test_every_field_matches_the_live_transition(tmp_path: Path, extra_states: int) -> None:
    class Handlers:
        def __init__(self) -> None:
            self.n = 0

        def AEnter(self, e: am.Event) -> bool:
            self.n += 1
            return self.n % 3 != 0  # every third add of A is canceled

        def AState(self, e: am.Event) -> None:
            e.machine.log("in A %d", self.n)
            e.machine.add("M", {"from": "AState", "n": self.n})  # deferred (queued)

        def BExit(self, e: am.Event) -> bool:
            return True

        def MState(self, e: am.Event) -> None:
            other.add("X")  # a mutation with a source (this transition)

        def AnyEnter(self, e: am.Event) -> bool:
            return True

    schema: dict[str, dict] = {
        "A": {"require": ["B"]}, "B": {}, "C": {"auto": True, "require": ["B"]},
        "M": {"multi": True}, "D": {"add": ["B"], "after": ["B"]},
        "ErrX": {"require": ["Exception"]},
        **{f"S{i}": {} for i in range(extra_states)},
    }
    other = quiet({"X": {}}, id="other")
    m = quiet(schema, id="live", handlers=Handlers())
    ref = Reference(m)
    m.bind_tracer(ref)
    with Recorder(tmp_path / "r") as rec:
        rec.attach(m)
        rec.attach(other)
        for i in range(60):
            m.log("round %d", i)
            m.add(["A", "B"], {"i": i, "obj": object()} if i % 4 == 0 else None)
            m.can_add("D")
            m.add("D")
            m.remove("B")
            m.set(["B", "M"])
            m.add("M")
            if i % 7 == 0:
                m.add_err_state("ErrX", ValueError(f"bad {i}"))
                m.remove(["ErrX", "Exception"])
            if extra_states and i % 5 == 0:
                m.add([f"S{i % extra_states}"])
            m.remove(["A", "C", "D"])
        assert rec.encode_errors == 0, rec.last_error
    r = open_recording(tmp_path / "r")
    assert r.corruption == []
    recorded = [recorded_view(tx) for tx in r.machine("live")]
    assert len(recorded) == len(ref.seen) > 500
    for n, (got, want) in enumerate(zip(recorded, ref.seen, strict=True), 1):
        assert got == want, f"transition {n}"
    kinds = {(tx.accepted, tx.is_auto, tx.is_check) for tx in r.machine("live")}
    assert {(True, False, False), (False, False, False), (True, True, False),
            (True, False, True)} <= kinds
    assert r.machine("live").queued() and r.machine("live").error_count > 0
    assert any(tx.source for tx in r.machine("other"))


def test_two_recorders_share_the_step_memos_correctly(tmp_path: Path) -> None:
    m = quiet({"A": {"require": ["B"]}, "B": {}}, id="twice")
    with Recorder(tmp_path / "one") as one, Recorder(tmp_path / "two") as two:
        one.attach(m)
        two.attach(m)
        for _ in range(50):
            m.add(["A", "B"])
            m.remove("B")
    a = [(t.called, [str(s) for s in t.steps]) for t in open_recording(tmp_path / "one")
         .machine("twice")]
    b = [(t.called, [str(s) for s in t.steps]) for t in open_recording(tmp_path / "two")
         .machine("twice")]
    assert a == b and len(a) == 100 and "A require B" in a[0][1]


def test_encoding_errors_never_reach_the_machine(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import amnode.telemetry.recorder as recorder_mod

    def boom(value: object) -> bytes:
        raise RuntimeError("encoder broke")

    with Recorder(tmp_path / "r") as rec:
        m = quiet({"A": {}}, id="sturdy")
        rec.attach(m)
        m.add("A")
        monkeypatch.setattr(recorder_mod, "packb", boom)
        m.remove("A")
        m.add("A")
        monkeypatch.undo()
        m.remove("A")
    assert rec.encode_errors == 2 and "encoder broke" in str(rec.last_error)
    assert m.is_active("A") is False
    assert [t.seq for t in open_recording(tmp_path / "r").machine("sturdy")] == [1, 4]


def test_long_and_many_log_lines_are_bounded(tmp_path: Path) -> None:
    from amnode.telemetry.format import LOG_LINE_MAX, LOG_LINES_MAX

    class Handlers:
        def AState(self, e: am.Event) -> None:
            e.machine.log("%s", "y" * (LOG_LINE_MAX + 100))
            for i in range(LOG_LINES_MAX + 5):
                e.machine.log("%d", i)

    with Recorder(tmp_path / "r") as rec:
        m = quiet({"A": {}}, id="chatty", handlers=Handlers(), log_level=am.LogLevel.EXTERNAL)
        rec.attach(m)
        m.add("A")
    tx = open_recording(tmp_path / "r").machine("chatty").transition(1)
    assert len(tx.log) == LOG_LINES_MAX + 1 and tx.log[-1].text.endswith("more lines not recorded")
    # the limit applies to the line as logged, with its "[chatt] " prefix
    assert tx.log[0].text.startswith("[exter] yyy") and len(tx.log[0].text) == LOG_LINE_MAX - 8
