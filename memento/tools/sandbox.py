"""Run Python code in a child process, contained by the kernel: wall-clock and CPU time, memory,
processes, disk, output size, no network, and nothing of the host's filesystem but the
interpreter and the system libraries, read-only.

What contains a run (the child builds it, see `_sandbox_guard.py`):
- namespaces (`isolation.mode == "namespaces"`): new pid, mount, net, ipc and uts namespaces,
  and a user namespace when not root. The code sees a private root: /usr, /lib and the
  interpreter's prefixes bound read-only, a minimal /etc (no host passwd), a fresh /proc with
  only its own processes, an empty network namespace (no loopback, no abstract Unix sockets),
  and one tmpfs capped at `max_disk_mb` as its scratch directory, /tmp and /dev/shm. It runs
  as a uid of its own (or, in a user namespace, with no capabilities) with `no_new_privs`, so
  `_io.open`, `posix.open`, `sqlite3`, ctypes or a program started with `execv` reach no more
  than `open` does. At the deadline, or when the code ends, every process in the namespace
  dies, a `setsid()` child included;
- resource limits in both modes: RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NPROC, no core;
- a clean environment in both modes: a fixed PATH, HOME and thread counts, nothing inherited;
- the output pipes are read with a deadline, so a process that holds them cannot stall a run;
- `isolation.mode == "process"` where namespaces cannot be made (no root and no unprivileged
  user namespaces, or a seccomp profile that refuses them): the limits and the environment
  above, a subreaper that kills orphans at the end, and the Python-level guards (writes outside
  the scratch, starting programs, sockets) that stop an LLM's accidents but not a hostile
  program. Which mode is in force is logged once and kept in `PythonSandbox.isolation`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, Field

from memento.errors import ToolError, ValidationError
from memento.tools._common import make_tool

GUARD_SCRIPT = Path(__file__).with_name("_sandbox_guard.py")
IsolationChoice = Literal["auto", "namespaces", "process"]
BACKSTOP_S = 10.0
"""Seconds past the time limit before the parent kills a child whose supervisor did not report."""
PIPE_GRACE_S = 1.0
"""Seconds the output pipes may stay open after the child ended; then what was read is kept."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    """What one run of code may use."""

    time_s: float = 30.0
    """Wall-clock seconds before the child and everything it forked is killed."""
    cpu_s: int | None = None
    """CPU seconds (RLIMIT_CPU); defaults to the wall-clock limit rounded up."""
    memory_mb: int = 2048
    """Address space of each process in MiB (RLIMIT_AS); numpy and friends reserve a few hundred on import."""
    max_file_mb: int = 64
    """Largest file the code may write, in MiB (RLIMIT_FSIZE)."""
    max_disk_mb: int = 256
    """All files together, scratch, /tmp and /dev/shm, in MiB: the size of the run's tmpfs (namespaces only)."""
    max_processes: int = 64
    """Processes and threads the code may have at once (RLIMIT_NPROC, which binds root only in the namespaces)."""
    max_output_chars: int = 8000
    """Characters kept of stdout and of stderr each: the head and the tail, the middle cut."""
    isolation: IsolationChoice = "auto"
    """'namespaces' refuses to run without them; 'process' never uses them; 'auto' uses them where they work."""

    def __post_init__(self):
        # A tmpfs of size 0 has no cap at all, and a zero rlimit stops the interpreter itself.
        for name in ("time_s", "memory_mb", "max_file_mb", "max_disk_mb", "max_processes", "max_output_chars"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise ValidationError(f"SandboxLimits.{name} is {value!r} but must be a positive number; "
                                      f"pass e.g. {name}={getattr(SandboxLimits, name)!r}")
        if self.cpu_s is not None and not (isinstance(self.cpu_s, int) and self.cpu_s > 0):
            raise ValidationError(f"SandboxLimits.cpu_s is {self.cpu_s!r} but must be a positive whole number of "
                                  "seconds or None (the wall-clock limit rounded up)")
        if self.isolation not in ("auto", "namespaces", "process"):
            raise ValidationError(f"SandboxLimits.isolation is {self.isolation!r} but must be 'auto', "
                                  "'namespaces' or 'process'")


@dataclass(frozen=True)
class Isolation:
    """What contains the runs of a sandbox on this machine."""

    mode: Literal["namespaces", "process"]
    reason: str = ""
    """Why namespaces are not in force; empty when they are."""

    def __str__(self) -> str:
        if self.mode == "namespaces":
            return ("namespaces: pid, mount, net, ipc, uts (and user when not root); a private read-only root, "
                    "a fresh /proc, a capped tmpfs scratch; rlimits; a clean environment")
        return (f"process only ({self.reason}): rlimits, a clean environment and Python-level guards; "
                "the host's files, /proc and Unix sockets are reachable by code that goes around the guards")


@dataclass(frozen=True)
class ExecutionResult:
    """What a run printed and how it ended; `exit_code` is negative when a signal ended it."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    memory_exceeded: bool
    duration_s: float
    truncated: bool


@lru_cache(maxsize=None)
def detect_isolation(python: str) -> Isolation:
    """Whether `python` can be run in namespaces here: tried once per interpreter and process."""
    try:
        result = _execute("print('contained')", python=python, limits=SandboxLimits(time_s=10.0, max_disk_mb=1),
                          mode="namespaces", scratch_dir=None)
    except ToolError as error:
        isolation = Isolation("process", reason=str(error))
    else:
        if result.stdout == "contained\n":
            isolation = Isolation("namespaces")
        else:
            last = (result.stderr.strip().splitlines() or [f"exit code {result.exit_code}"])[-1]
            isolation = Isolation("process", reason=f"the probe run failed: {last}")
    if isolation.mode == "namespaces":
        log.info("python sandbox isolation: %s", isolation)
    else:
        log.warning("python sandbox isolation: %s", isolation)
    return isolation


class PythonSandbox:
    """Runs code in a fresh child Python with `limits`; `scratch_dir` keeps files between runs."""

    def __init__(self, limits: SandboxLimits | None = None, *, python: str | None = None,
                 scratch_dir: str | os.PathLike | None = None):
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self.scratch_dir = Path(scratch_dir) if scratch_dir else None
        self.isolation = self._pick_isolation(self.limits.isolation)
        """Which isolation the runs get here, and why when it is not the namespaces."""

    def run(self, code: str) -> ExecutionResult:
        """Run `code` as a `__main__` module in the scratch directory and return what happened."""
        return _execute(code, python=self.python, limits=self.limits, mode=self.isolation.mode,
                        scratch_dir=self.scratch_dir)

    def _pick_isolation(self, choice: IsolationChoice) -> Isolation:
        if choice == "process":
            return Isolation("process", reason="isolation='process' was asked for")
        found = detect_isolation(self.python)
        if found.mode != "namespaces" and choice == "namespaces":
            raise ToolError(f"isolation='namespaces' cannot be had here: {found.reason}; "
                            "run as root or enable unprivileged user namespaces "
                            "(sysctl kernel.unprivileged_userns_clone=1), or use isolation='auto'")
        return found


def _execute(code: str, *, python: str, limits: SandboxLimits, mode: str,
             scratch_dir: Path | None) -> ExecutionResult:
    """One run in a scratch directory (a fresh one unless `scratch_dir` is kept) and an empty root."""
    scratch = scratch_dir or Path(tempfile.mkdtemp(prefix="memento-sandbox-"))
    scratch.mkdir(parents=True, exist_ok=True)
    # Where the child mounts its private root: an empty directory, mounted on only inside its namespace.
    root = Path(tempfile.mkdtemp(prefix="memento-sandbox-root-"))
    try:
        return _run_in(code, scratch.resolve(), root, python=python, limits=limits, mode=mode,
                       keep_scratch=scratch_dir is not None)
    finally:
        root.rmdir()
        if scratch_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_in(code: str, scratch: Path, root: Path, *, python: str, limits: SandboxLimits, mode: str,
            keep_scratch: bool) -> ExecutionResult:
    status_read, status_write = os.pipe()
    settings = {"scratch": str(scratch), "root": str(root), "isolation": mode,
                "keep_scratch": keep_scratch, "status_fd": status_write,
                "time_seconds": limits.time_s, "memory_bytes": limits.memory_mb * 2**20,
                "file_bytes": limits.max_file_mb * 2**20, "disk_bytes": limits.max_disk_mb * 2**20,
                "max_processes": limits.max_processes,
                "cpu_seconds": limits.cpu_s or max(1, math.ceil(limits.time_s))}
    command = [python, "-I", "-B", "-X", "utf8", str(GUARD_SCRIPT), json.dumps(settings)]
    started = time.monotonic()
    try:
        child = subprocess.Popen(command, cwd=scratch, env=_minimal_env(scratch), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_write,),
                                 start_new_session=True)
    except OSError as error:
        os.close(status_read)
        raise ToolError(f"the sandbox could not start {python!r} ({error}); "
                        "pass python= the path of a working interpreter") from error
    finally:
        os.close(status_write)
    readers = [_CappedReader(child.stdout, limits.max_output_chars),
               _CappedReader(child.stderr, limits.max_output_chars),
               _CappedReader(os.fdopen(status_read, "rb"), 4096)]
    try:
        child.stdin.write(code.encode("utf-8", errors="surrogateescape"))
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died before reading its code; its stderr says why
    try:
        child.wait(timeout=limits.time_s + BACKSTOP_S)
        backstop = False
    except subprocess.TimeoutExpired:
        backstop = True
    _kill_group(child.pid)  # in "process" mode, also what the code forked in its own group
    child.wait()
    ends_by = time.monotonic() + PIPE_GRACE_S
    for reader in readers:
        reader.stop_at(ends_by)
    stdout, stderr, status_text = (reader.text() for reader in readers)
    status = _parse_status(status_text)
    if status.get("stage") == "keep":
        raise ToolError(f"scratch_dir {str(scratch)!r} cannot be used: {status['error']}")
    if "error" in status:
        raise ToolError(f"the sandbox could not contain the run in {mode} mode ({status['error']}); "
                        "run as root or enable unprivileged user namespaces, or pass "
                        "SandboxLimits(isolation='process') to run without namespaces")
    exit_code = status.get("exit_code", child.returncode)
    timed_out = backstop or status.get("timed_out", False) or exit_code == -signal.SIGXCPU
    last_line = stderr.rstrip().rpartition("\n")[2]
    return ExecutionResult(
        stdout=stdout, stderr=stderr, exit_code=exit_code, timed_out=timed_out,
        memory_exceeded=last_line.startswith("MemoryError"),
        duration_s=time.monotonic() - started,
        truncated=any(reader.truncated for reader in readers[:2]))


def python_tool(sandbox: PythonSandbox | None = None):
    """The `python` LangChain tool: runs code in `sandbox` and reports exit code, stdout and stderr."""
    sandbox = sandbox or PythonSandbox()

    class PythonArgs(BaseModel):
        code: str = Field(description="A complete Python program; print() what you want to see.")

    def run(code: str) -> str:
        return format_result(sandbox.run(code), sandbox.limits)

    return make_tool(run, name="python", args_schema=PythonArgs,
                     description="Run Python code in a sandbox without network; returns what it printed.")


def format_result(result: ExecutionResult, limits: SandboxLimits) -> str:
    """A compact text report of a run for an LLM."""
    status = f"exit code {result.exit_code} after {result.duration_s:.2f} s"
    if result.timed_out:
        status += f"; killed at the time limit of {limits.time_s:g} s"
    if result.memory_exceeded:
        status += f"; hit the memory limit of {limits.memory_mb} MB"
    parts = [status]
    if result.stdout:
        parts.append(f"stdout:\n{result.stdout}")
    if result.stderr:
        parts.append(f"stderr:\n{result.stderr}")
    return "\n".join(parts)


def _minimal_env(scratch: Path) -> dict[str, str]:
    home = str(scratch)
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(scratch / ".matplotlib"),
            # One thread each: BLAS pools reserve address space per thread and would eat the memory limit.
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_status(text: str) -> dict:
    """The supervisor's one JSON line; {} when it died before writing it."""
    try:
        status = json.loads(text.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping its first and last `max_chars // 2` bytes, so a flood cannot fill memory.

    It polls rather than blocking in read, so that `stop_at` can end it while a process that
    outlived the run still holds the pipe open.
    """

    def __init__(self, stream: IO[bytes], max_chars: int):
        super().__init__(daemon=True)
        self.stream, self.half = stream, max(1, max_chars // 2)
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.deadline: float | None = None
        self.start()

    def run(self) -> None:
        fd = self.stream.fileno()
        try:
            while self.deadline is None or time.monotonic() < self.deadline:
                if not select.select([fd], [], [], 0.05)[0]:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._keep(chunk)
        finally:
            self.stream.close()

    def _keep(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        self.head += chunk[:room]
        self.tail += chunk[max(room, 0):]
        if len(self.tail) > 2 * self.half:
            del self.tail[:-self.half]

    def stop_at(self, deadline: float) -> None:
        """Stop reading at `deadline` (a `time.monotonic()` value) and wait until the reader ends."""
        self.deadline = deadline
        self.join()

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + min(len(self.tail), self.half)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + self.tail.decode("utf-8", errors="replace")
        kept_tail = bytes(self.tail[-self.half:])
        omitted = self.total - len(self.head) - len(kept_tail)
        return (f"{head}\n[truncated: {omitted} bytes omitted of {self.total}]\n"
                f"{kept_tail.decode('utf-8', errors='replace')}")
