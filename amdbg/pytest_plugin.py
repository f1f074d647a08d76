"""The amnode pytest plugin: each test's machines recorded, failures explained, golden runs.

Installed with amnode (entry point `amnode` in the `pytest11` group) and off by default:

    pytest --amnode-record                # record every test (or `amnode_record = true`)
    pytest --amnode-golden=tests/golden   # compare tests marked amnode_golden with their golden

With recording on, every machine created during a test (its fixtures included) and in the
processes it starts (node workers inherit `AMNODE_RECORD`) is recorded into a directory of its
own under `--amnode-record-dir`; a passing test's recording is deleted (unless
`--amnode-keep`), a failing one's is kept and its report gains a section naming the first
error or canceled transition and the `amdbg replay DIR mach://...` command that opens it.
Tests that ask for the `amnode_recording` fixture, or carry the `amnode_record` or
`amnode_golden` marker, are recorded even when recording is off. docs/testing.md has it all.

Every pytest run imports this module, so it only declares options, markers and the fixture:
the work is in `amdbg.testing.plugin`, imported and registered only when something is
recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from amdbg.testing.plugin import TestRecording

#: the name the working plugin is registered under
PLUGIN_NAME = "amnode-recording"
#: what makes a test recorded although recording is off
OPT_IN_FIXTURE = "amnode_recording"
OPT_IN_MARKERS = ("amnode_record", "amnode_golden")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Command-line options and ini keys."""
    group = parser.getgroup("amnode", "amnode: record machines per test (amdbg)")
    group.addoption("--amnode-record", action="store_true", default=None,
                    help="record every machine of each test (and of the processes it starts) "
                         "into a directory per test; kept when the test fails")
    group.addoption("--amnode-keep", action="store_true", default=None,
                    help="keep the recordings of passing tests too")
    group.addoption("--amnode-record-dir", metavar="DIR", default=None,
                    help="where the per-test recordings go (default: .amnode-recordings "
                         "under the rootdir)")
    group.addoption("--amnode-golden", metavar="DIR", default=None,
                    help="golden runs of the tests marked amnode_golden: compared with this "
                         "run, written when missing")
    group.addoption("--amnode-golden-update", action="store_true", default=False,
                    help="write the golden runs again from this run (tests that pass)")
    parser.addini("amnode_record", type="bool", default=False,
                  help="record every test, as --amnode-record")
    parser.addini("amnode_keep", type="bool", default=False,
                  help="keep the recordings of passing tests, as --amnode-keep")
    parser.addini("amnode_record_dir", default="",
                  help="where the per-test recordings go, as --amnode-record-dir")
    parser.addini("amnode_golden_dir", default="",
                  help="the golden runs' directory, as --amnode-golden")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers; register the working plugin when every test is recorded."""
    config.addinivalue_line(
        "markers", "amnode_record: record this test's machines even without --amnode-record")
    config.addinivalue_line(
        "markers", "amnode_golden(name=None): compare this test's recording with its golden "
                   "run (--amnode-golden=DIR or amnode_golden_dir)")
    if _option(config, "amnode_record"):
        _register(config, record_all=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """With recording off, register the working plugin only if some test opts in."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    for item in items:
        if OPT_IN_FIXTURE in getattr(item, "fixturenames", ()) or \
                any(item.get_closest_marker(name) for name in OPT_IN_MARKERS):
            _register(config, record_all=False)
            return


@pytest.fixture
def amnode_recording(request: pytest.FixtureRequest) -> TestRecording:
    """This test's recording: `.path`, `.open()` (a `Run` for assertions), `.keep`."""
    from amdbg.testing.plugin import recording_of

    return recording_of(request.node)


def _option(config: pytest.Config, name: str) -> Any:
    """A command-line option, else its ini key."""
    value = config.getoption(name, default=None)
    return value if value is not None else config.getini(name)


def _register(config: pytest.Config, *, record_all: bool) -> None:
    from amdbg.testing.plugin import RecordingPlugin

    config.pluginmanager.register(RecordingPlugin(config, record_all=record_all), PLUGIN_NAME)


__all__ = ["PLUGIN_NAME", "amnode_recording", "pytest_addoption", "pytest_collection_modifyitems",
           "pytest_configure"]
