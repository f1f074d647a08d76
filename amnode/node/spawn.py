"""Starting and stopping workers: the `Spawner` protocol, OS processes and in-process workers.

`ProcessSpawner` runs `worker_cmd -a <bootstrap addr>` with `asyncio.create_subprocess_exec` in
its own process group (`start_new_session`), with the supervisor's environment plus
`AMNODE_BOOT_ADDR`. The handle knows the PID from the moment the process exists, keeps the last
lines of its stderr (and stdout) so that an error can show them, reports every exit (zero
included), and `terminate()` sends SIGTERM to the group, SIGKILL after a grace, and always reaps
the process. Processes still alive when the interpreter exits are killed (group SIGKILL) and
reaped by an `atexit` hook, whatever happened to the loop that started them.

`InProcessSpawner` runs workers as objects in this process (the tests' fork and kill hooks, Go's
`TestFork`/`TestKill`): `factory(boot_addr)` returns a started `Worker`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from .logs import LogFile

if TYPE_CHECKING:
    from .worker import Worker

#: the worker's bootstrap address, also passed as `-a ADDR`
BOOT_ADDR_ENV = "AMNODE_BOOT_ADDR"
#: the supervisor's machine id (the parent of the worker's machine in recordings)
PARENT_ENV = "AMNODE_NODE_PARENT"
#: seconds a worker waits without a supervisor before it exits
GRACE_ENV = "AMNODE_NODE_GRACE"
#: the aRPC client id of the supervisor's link, the only one the worker's local port admits
SUPERVISOR_ENV = "AMNODE_NODE_SUPERVISOR"
#: the adoption token of a group of peer supervisors: while orphaned, the worker's local port
#: admits any link id ending in `-<token>` (a peer supervisor adopting it)
ADOPT_ENV = "AMNODE_NODE_ADOPT"

#: lines of stderr / stdout kept per worker
TAIL_LINES = 40
#: a single line is cut to this many characters
LINE_MAX = 1000


class WorkerHandle(Protocol):
    """A started worker, as the supervisor tracks it."""

    @property
    def pid(self) -> int | None:
        """OS process id (None in-process)."""

    @property
    def returncode(self) -> int | None:
        """The exit code once exited (negative: killed by that signal), else None."""

    @property
    def alive(self) -> bool:
        """Still running."""

    def stderr_tail(self) -> list[str]:
        """The last lines written to stderr."""

    async def wait(self) -> int | None:
        """Wait for the exit (reaped); the exit code (None in-process)."""

    async def terminate(self, grace: float) -> None:
        """Ask it to stop, force it after `grace` seconds, and wait until it is gone."""

    def kill_now(self) -> None:
        """Last resort, synchronous: kill it without waiting (e.g. the loop is closing)."""


class Spawner(Protocol):
    """Starts one worker reporting to `boot_addr`; `env` is added to its environment."""

    async def spawn(self, boot_addr: str, env: Mapping[str, str]) -> WorkerHandle: ...


class Tail:
    """A bounded ring of the last lines of a stream (partial lines are kept too)."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=lines)
        self._partial = ""

    def feed(self, data: bytes) -> None:
        """Add a chunk of output."""
        text = self._partial + data.decode("utf-8", "replace")
        parts = text.split("\n")
        self._partial = parts.pop()[-LINE_MAX:]
        for line in parts:
            self.lines.append(line.rstrip("\r")[:LINE_MAX])

    def get(self) -> list[str]:
        """The kept lines, oldest first (with an unfinished last line)."""
        out = list(self.lines)
        if self._partial:
            out.append(self._partial)
        return out


_live: set[ProcessHandle] = set()


class ProcessHandle:
    """One worker process started by `ProcessSpawner`."""

    def __init__(self, proc: asyncio.subprocess.Process, tail_lines: int = TAIL_LINES,
                 logs: tuple[LogFile, LogFile] | None = None) -> None:
        self.proc = proc
        self._pid = proc.pid
        self.stderr = Tail(tail_lines)
        self.stdout = Tail(tail_lines)
        out, err = logs if logs is not None else (None, None)
        self._readers = [asyncio.ensure_future(self._read(proc.stderr, self.stderr, err)),
                         asyncio.ensure_future(self._read(proc.stdout, self.stdout, out))]
        self._exited = False
        _live.add(self)

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    @staticmethod
    async def _read(stream: asyncio.StreamReader | None, tail: Tail,
                    log: LogFile | None) -> None:
        if stream is None:
            return
        try:
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                tail.feed(chunk)
                if log is not None:
                    try:
                        await log.write(chunk)
                    except OSError:
                        log = None  # the disk failed: keep draining the pipe, keep the tail
        except Exception:
            pass
        finally:
            if log is not None:
                with contextlib.suppress(Exception):
                    await log.flush()

    def stderr_tail(self) -> list[str]:
        return self.stderr.get()

    async def wait(self) -> int | None:
        code = await self.proc.wait()
        # the pipes close with the process (unless a grandchild holds them): read what is left
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._readers, return_exceptions=True), 0.5)
        self._done()
        return code

    def _done(self) -> None:
        self._exited = True
        _live.discard(self)
        for r in self._readers:
            if not r.done():
                r.cancel()

    def _signal_group(self, sig: int) -> None:
        """Signal the worker's process group (its own session), or just the process."""
        try:
            os.killpg(self._pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                if self.proc.returncode is None:
                    os.kill(self._pid, sig)

    async def terminate(self, grace: float) -> None:
        if self.proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
            # whatever is left of its group (a grandchild) goes too; only right after the
            # process itself was alive, so the group id cannot belong to anyone else yet
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)
        await self.wait()

    def kill_now(self) -> None:
        if self.proc.returncode is None:
            self._signal_group(signal.SIGKILL)

    def disown(self) -> None:
        """Another supervisor holds this worker now: never kill it at exit (it is still read
        and reaped while it lives)."""
        _live.discard(self)

    def __repr__(self) -> str:
        return f"ProcessHandle(pid={self._pid} rc={self.proc.returncode})"


class ProcessSpawner:
    """Workers as OS processes: `cmd + ["-a", boot_addr]`, own process group, inherited env."""

    def __init__(self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, tail_lines: int = TAIL_LINES) -> None:
        if not cmd or not cmd[0]:
            raise ValueError("worker_cmd must name a program")
        self.cmd = list(cmd)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.tail_lines = tail_lines

    async def spawn(self, boot_addr: str, env: Mapping[str, str],
                    logs: tuple[LogFile, LogFile] | None = None) -> ProcessHandle:
        """Start one worker process; its PID is known when this returns. With `logs`
        (stdout, stderr), its output is appended to those files too."""
        base = dict(os.environ) if self.env is None else dict(self.env)
        full = {**base, **env, BOOT_ADDR_ENV: boot_addr}
        for log in logs or ():
            await log.open()
        proc = await asyncio.create_subprocess_exec(
            *self.cmd, "-a", boot_addr, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, env=full, cwd=self.cwd)
        return ProcessHandle(proc, self.tail_lines, logs)


class InProcessHandle:
    """A `Worker` running in this process."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    @property
    def pid(self) -> int | None:
        return None

    @property
    def returncode(self) -> int | None:
        return None

    @property
    def alive(self) -> bool:
        return not self.worker.mach.is_disposed

    def stderr_tail(self) -> list[str]:
        return []

    async def wait(self) -> int | None:
        await self.worker.mach.when_disposed()
        return None

    async def terminate(self, grace: float) -> None:
        await self.worker.stop(dispose=True)

    def kill_now(self) -> None:
        self.worker.dispose()


def proc_state(pid: int) -> str:
    """The state letter of a process from /proc (`Z` zombie), "" if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return ""
    return data.rsplit(")", 1)[1].split()[0]


class AdoptedHandle:
    """A worker process adopted from a lost peer supervisor: not our child, so no exit code and
    no pipes; its exit is watched through a pidfd (polled through /proc where there is none)
    and it is signalled through its process group."""

    def __init__(self, pid: int, poll: float = 0.1) -> None:
        self._pid = pid
        self._poll = poll
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return None

    @property
    def alive(self) -> bool:
        return proc_state(self._pid) not in ("", "Z", "X")

    def stderr_tail(self) -> list[str]:
        return []

    async def wait(self) -> int | None:
        fd = self._fd
        if fd is not None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not done.done():
                    done.set_result(None)

            loop.add_reader(fd, readable)
            try:
                if self.alive:
                    await done
            finally:
                loop.remove_reader(fd)
                os.close(fd)
                self._fd = None
            return None
        while self.alive:
            await asyncio.sleep(self._poll)
        return None

    def _signal(self, sig: int) -> None:
        if not self.alive:
            return
        try:
            os.killpg(self._pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._pid, sig)

    async def terminate(self, grace: float) -> None:
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._gone()), grace)
        except TimeoutError:
            self._signal(signal.SIGKILL)
        await self._gone()

    async def _gone(self) -> None:
        while self.alive:
            await asyncio.sleep(self._poll)

    def kill_now(self) -> None:
        self._signal(signal.SIGKILL)

    def __repr__(self) -> str:
        return f"AdoptedHandle(pid={self._pid})"


#: in-process workers by machine id (for adoption by another supervisor in this process)
_IN_PROCESS: weakref.WeakValueDictionary[str, Worker] = weakref.WeakValueDictionary()


def adopted_handle(pid: int | None, worker_id: str) -> WorkerHandle | None:
    """A handle for a worker adopted from a lost peer: its process (by PID), or the in-process
    worker with that machine id; None if neither exists."""
    if pid:
        handle = AdoptedHandle(pid)
        return handle if handle.alive else None
    worker = _IN_PROCESS.get(worker_id)
    if worker is None or worker.mach.is_disposed:
        return None
    return InProcessHandle(worker)


class InProcessSpawner:
    """Workers as objects in this process: `factory(boot_addr)` returns a started `Worker`.
    `workers` lists every worker it made (for tests to find one, e.g. by public address)."""

    def __init__(self, factory: Callable[[str], Awaitable[Worker]]) -> None:
        self.factory = factory
        self.workers: list[Worker] = []

    async def spawn(self, boot_addr: str, env: Mapping[str, str]) -> InProcessHandle:
        """Create and start one in-process worker."""
        worker = await self.factory(boot_addr)
        self.workers.append(worker)
        _IN_PROCESS[worker.mach.id] = worker
        return InProcessHandle(worker)

    def find(self, addr: str) -> Worker | None:
        """The live worker listening on `addr` (public or local), or with that machine id."""
        for w in self.workers:
            if not w.mach.is_disposed and addr in (w.public_addr, w.local_addr, w.mach.id):
                return w
        return None


def kill_all() -> None:
    """Kill (group SIGKILL) and reap every worker process still alive; for interpreter exit."""
    for handle in list(_live):
        handle.kill_now()
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(handle._pid, 0)
        _live.discard(handle)


def live_pids() -> list[int]:
    """PIDs of worker processes started in this process and not yet reaped."""
    return sorted(h._pid for h in _live)


atexit.register(kill_all)

__all__ = [
    "ADOPT_ENV", "BOOT_ADDR_ENV", "GRACE_ENV", "PARENT_ENV", "SUPERVISOR_ENV", "AdoptedHandle",
    "InProcessHandle", "InProcessSpawner", "ProcessHandle", "ProcessSpawner", "Spawner", "Tail",
    "WorkerHandle", "adopted_handle", "kill_all", "live_pids", "proc_state",
]
