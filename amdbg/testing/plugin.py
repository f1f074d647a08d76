"""The pytest plugin's work: per-test recording, the failure section, golden runs.

`amdbg.pytest_plugin` (the entry point) registers `RecordingPlugin` when every test is
recorded (`--amnode-record`, `amnode_record = true`) or when some collected test opts in (the
`amnode_recording` fixture, the `amnode_record` / `amnode_golden` markers).

Per recorded test, before its fixtures are set up: its directory
`<record dir>/<node id made a file name>` is emptied, `AMNODE_RECORD` is set to it (processes
the test starts inherit it: node workers record there) and the process-wide recorder of
`amnode.telemetry` is switched to it. After its fixtures are torn down (so workers stopped by
them have written their last records) the recorder is closed and the variable restored. Then:
a failing test keeps the directory and its failure report gains the "amnode recording"
section (`report.failure_section`); a passing one loses it (unless `--amnode-keep` or
`amnode_recording.keep = True`); a passing `amnode_golden` test is compared with its golden run
(or writes it), and a difference fails the test at teardown.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from amnode.telemetry import env as telemetry_env
from amnode.telemetry import process_recorder

from ..pytest_plugin import OPT_IN_FIXTURE, OPT_IN_MARKERS, PLUGIN_NAME
from .golden import golden_diffs, golden_message, write_golden
from .recording import RecordingAssertionError, Run, display_path, open_run, replay_command
from .report import failure_section

#: the title of the section a failing test's report gains
SECTION = "amnode recording"
DEFAULT_DIR = ".amnode-recordings"
#: per-test directory names longer than this are cut and end in a hash of the node id
NAME_MAX = 120


def recording_dir_name(nodeid: str) -> str:
    """A file name for a test's node id: `tests/test_a.py::test_b[x]` -> `tests.test_a.py..
    test_b[x]` (unsafe characters become `_`; long ones end in a hash)."""
    name = re.sub(r"[^\w.\-\[\]=,+@]", "_", nodeid.replace("/", ".").replace("::", ".."))
    name = name.lstrip(".") or "test"
    if len(name) > NAME_MAX:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:12]
        name = f"{name[:NAME_MAX - 13]}-{digest}"
    return name


class TestRecording:
    """One test's recording: the directory, and recording into it while the test runs."""

    __test__ = False  # not a test class for pytest

    def __init__(self, nodeid: str, path: Path, cwd: Path) -> None:
        self.nodeid = nodeid
        #: the test's directory (absolute); it exists once a machine was recorded
        self.path = path
        self.cwd = cwd
        #: keep the recording even if the test passes
        self.keep = False
        self._active = False
        self._prev_env: str | None = None

    def __repr__(self) -> str:
        return f"<TestRecording {self.nodeid} -> {self.path}>"

    def start(self) -> None:
        """Empty the directory, point `AMNODE_RECORD` and the in-process recorder at it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._prev_env = os.environ.get(telemetry_env.ENV_VAR)
        os.environ[telemetry_env.ENV_VAR] = str(self.path)
        telemetry_env.install(self.path)
        self._active = True

    def stop(self) -> None:
        """Close the in-process recorder (writing what it holds) and restore the variable."""
        if not self._active:
            return
        self._active = False
        telemetry_env.uninstall()
        if self._prev_env is None:
            os.environ.pop(telemetry_env.ENV_VAR, None)
        else:
            os.environ[telemetry_env.ENV_VAR] = self._prev_env
            telemetry_env.install(self._prev_env)

    @property
    def recorded(self) -> bool:
        """True when something was recorded (a recording file is there)."""
        try:
            return any(p.suffix == ".amrec" for p in self.path.iterdir())
        except OSError:
            return False

    def flush(self) -> None:
        """Write what this process recorded so far (other processes write every 50 ms)."""
        rec = process_recorder()
        if rec is not None:
            rec.flush()

    def open(self) -> Run:
        """The recording so far, for assertions (this process's records flushed first).

        Records of other processes (node workers) reach the directory within their writer's
        interval (50 ms): wait for a state you check before, or open after stopping them.
        """
        self.flush()
        if not self.recorded:
            raise RecordingAssertionError(
                f"nothing was recorded in {display_path(self.path, self.cwd)}: no machine was "
                "created during this test (so far)")
        return open_run(self.path, cwd=self.cwd)

    def replay_command(self, tx: Any) -> str:
        """`amdbg replay DIR mach://...` for one of this test's transitions."""
        return replay_command(self.path, tx, self.cwd)

    def remove(self) -> None:
        """Delete the directory."""
        shutil.rmtree(self.path, ignore_errors=True)


RECORDING = pytest.StashKey[TestRecording]()
FAILED = pytest.StashKey[list[pytest.TestReport]]()


def _resolve(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return (p if p.is_absolute() else base / p).resolve()


class RecordingPlugin:
    """Records the tests it is asked to, reports failures, compares golden runs."""

    def __init__(self, config: pytest.Config, *, record_all: bool) -> None:
        self.config = config
        self.record_all = record_all
        self.cwd = Path(config.invocation_params.dir)
        root = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
        opt = config.getoption("amnode_record_dir", default=None)
        ini = config.getini("amnode_record_dir")
        self.base = _resolve(opt, self.cwd) if opt else \
            _resolve(ini, root) if ini else (Path(config.rootpath) / DEFAULT_DIR).resolve()
        keep = config.getoption("amnode_keep", default=None)
        self.keep = bool(keep if keep is not None else config.getini("amnode_keep"))
        gopt = config.getoption("amnode_golden", default=None)
        gini = config.getini("amnode_golden_dir")
        self.golden_dir: Path | None = _resolve(gopt, self.cwd) if gopt else \
            _resolve(gini, root) if gini else None
        self.update = bool(config.getoption("amnode_golden_update", default=False))
        self.kept: list[str] = []
        self.golden_written: list[str] = []
        self.golden_same = 0

    # ------------------------------------------------------------------ which tests

    def wants(self, item: pytest.Item) -> bool:
        """Is this test recorded?"""
        return self.record_all or OPT_IN_FIXTURE in getattr(item, "fixturenames", ()) or \
            any(item.get_closest_marker(name) for name in OPT_IN_MARKERS)

    def begin(self, item: pytest.Item) -> TestRecording:
        """Start recording `item` into its directory."""
        rec = TestRecording(item.nodeid, self.base / recording_dir_name(item.nodeid), self.cwd)
        item.stash[RECORDING] = rec
        rec.start()
        return rec

    # ------------------------------------------------------------------ hooks

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Before the test's fixtures: start recording it."""
        if not self.wants(item):
            return
        if item.get_closest_marker("amnode_golden") and self.golden_dir is None:
            pytest.fail("amnode_golden: no golden directory; give --amnode-golden=DIR or set "
                        "amnode_golden_dir in the ini file", pytrace=False)
        self.begin(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None
                                ) -> Any:
        """After the test's fixtures are torn down: stop recording."""
        try:
            return (yield)
        finally:
            rec = item.stash.get(RECORDING, None)
            if rec is not None:
                rec.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Any:
        """Note failed phases; after teardown: the report section, golden runs, clean-up."""
        report = yield
        rec = item.stash.get(RECORDING, None)
        if rec is None:
            return report
        if report.failed:
            item.stash.setdefault(FAILED, []).append(report)
        if report.when == "teardown":
            self._finish(item, rec, report)
        return report

    def _finish(self, item: pytest.Item, rec: TestRecording, teardown: pytest.TestReport
                ) -> None:
        rec.stop()  # in case teardown never ran our wrapper
        failed = item.stash.get(FAILED, [])
        if not failed and item.get_closest_marker("amnode_golden") is not None:
            problem = self._golden(item, rec)
            if problem:
                teardown.outcome = "failed"
                teardown.longrepr = problem
                failed = [teardown]
        if failed:
            try:
                section = failure_section(rec.path, cwd=self.cwd)
            except Exception as err:  # a report must never break the run
                section = f"amnode recording: {display_path(rec.path, self.cwd)} " \
                          f"(could not be read: {type(err).__name__}: {err})"
            if section:
                failed[0].sections.append((SECTION, section))
                self.kept.append(display_path(rec.path, self.cwd))
            return
        if not (self.keep or rec.keep):
            rec.remove()

    def _golden(self, item: pytest.Item, rec: TestRecording) -> str | None:
        """Compare with the golden run (or write it); a message when they differ."""
        assert self.golden_dir is not None
        marker = item.get_closest_marker("amnode_golden")
        name = (marker.args[0] if marker and marker.args else
                marker.kwargs.get("name") if marker else None) or recording_dir_name(item.nodeid)
        golden = self.golden_dir / f"{name}.amrec"
        shown = display_path(golden, self.cwd)
        if not rec.recorded:
            return (f"amnode_golden: nothing was recorded during this test, so there is "
                    f"nothing to compare with {shown}")
        if self.update or not golden.exists():
            write_golden(rec.path, golden)
            self.golden_written.append(shown)
            return None
        message = golden_message(
            golden_diffs(rec.path, golden), run=rec.path, golden=golden, cwd=self.cwd,
            hint="if this run is right, make it the golden one: pytest --amnode-golden-update "
                 f"--amnode-golden={display_path(self.golden_dir, self.cwd)} {item.nodeid}")
        if message is None:
            self.golden_same += 1
        return message

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Where the kept recordings and written golden runs are."""
        if not (self.kept or self.golden_written):
            return
        tr = terminalreporter
        tr.write_sep("-", "amnode")
        if self.kept:
            tr.write_line(f"recordings of failed tests kept: {len(self.kept)}")
            for path in self.kept[:20]:
                tr.write_line(f"  {path}")
            if len(self.kept) > 20:
                tr.write_line(f"  ... and {len(self.kept) - 20} more")
        for path in self.golden_written:
            tr.write_line(f"golden run written: {path}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Remove the recordings directory when nothing is left in it."""
        try:
            self.base.rmdir()
        except OSError:
            pass


def recording_of(item: pytest.Item) -> TestRecording:
    """The `amnode_recording` fixture's value: the test's recording (started now if the
    fixture was requested dynamically, without the plugin having seen it at collection)."""
    rec = item.stash.get(RECORDING, None)
    if rec is not None:
        return rec
    plugin = item.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if not isinstance(plugin, RecordingPlugin):
        plugin = RecordingPlugin(item.config, record_all=False)
        item.config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin.begin(item)


__all__ = ["DEFAULT_DIR", "RECORDING", "SECTION", "RecordingPlugin", "TestRecording",
           "recording_dir_name", "recording_of"]
