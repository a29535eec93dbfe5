"""Run Python code in a child process with limits: wall-clock and CPU time, memory, output size,
no network, and a fresh scratch directory as the only place it may write.

What is a real boundary and what is a guard:
- time, CPU, memory and file-size limits are kernel resource limits plus a kill of the child's
  process group at the wall-clock limit: real;
- no network is real when `unshare --net` works here (the child gets an empty network namespace,
  not even loopback); otherwise, and in any case as a clearer error, a bootstrap replaces
  Python's socket functions with ones that refuse;
- "nothing outside the scratch directory is writable" is the bootstrap's guard on `open`,
  `os.open` and the `os` functions that change paths, and it refuses to start other programs.
  It stops an LLM's accidents, not a hostile program (see `_sandbox_guard.py`).
"""

from __future__ import annotations

import json
import math
import os
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

from memento.errors import ToolError
from memento.tools._common import make_tool

GUARD_SCRIPT = Path(__file__).with_name("_sandbox_guard.py")
NetworkIsolation = Literal["auto", "namespace", "guard"]


@dataclass(frozen=True)
class SandboxLimits:
    """What one run of code may use."""

    time_s: float = 30.0
    """Wall-clock seconds before the child and everything it forked is killed."""
    cpu_s: int | None = None
    """CPU seconds (RLIMIT_CPU); defaults to the wall-clock limit rounded up."""
    memory_mb: int = 2048
    """Address space in MiB (RLIMIT_AS); numpy and friends reserve a few hundred on import."""
    max_file_mb: int = 64
    """Largest file the code may write, in MiB (RLIMIT_FSIZE)."""
    max_output_chars: int = 8000
    """Characters kept of stdout and of stderr each: the head and the tail, the middle cut."""
    network_isolation: NetworkIsolation = "auto"
    """'namespace' needs `unshare --net`; 'guard' uses only the bootstrap; 'auto' picks the first that works."""


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


@lru_cache(maxsize=1)
def network_namespace_command() -> tuple[str, ...] | None:
    """The `unshare` prefix that gives a child an empty network namespace here, or None.

    Tried once per process: plain `unshare --net` works as root; elsewhere a user namespace
    may allow it without privileges.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ((unshare, "--net"), (unshare, "--user", "--map-root-user", "--net")):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return None


class PythonSandbox:
    """Runs code in a fresh child Python with `limits`; `scratch_dir` keeps files between runs."""

    def __init__(self, limits: SandboxLimits | None = None, *, python: str | None = None,
                 scratch_dir: str | os.PathLike | None = None):
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self.scratch_dir = Path(scratch_dir) if scratch_dir else None
        self._namespace_prefix = self._pick_isolation(self.limits.network_isolation)
        self.network_isolation = "namespace" if self._namespace_prefix else "guard"
        """Which kind of network isolation runs use: 'namespace' or 'guard'."""

    def run(self, code: str) -> ExecutionResult:
        """Run `code` as a `__main__` module in the scratch directory and return what happened."""
        scratch = self.scratch_dir or Path(tempfile.mkdtemp(prefix="memento-sandbox-"))
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            return self._run_in(code, scratch.resolve())
        finally:
            if self.scratch_dir is None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _run_in(self, code: str, scratch: Path) -> ExecutionResult:
        limits = self.limits
        settings = {"scratch": str(scratch), "memory_bytes": limits.memory_mb * 2**20,
                    "file_bytes": limits.max_file_mb * 2**20,
                    "cpu_seconds": limits.cpu_s or max(1, math.ceil(limits.time_s))}
        command = [*self._namespace_prefix, self.python, "-I", "-B", "-X", "utf8",
                   str(GUARD_SCRIPT), json.dumps(settings)]
        started = time.monotonic()
        try:
            child = subprocess.Popen(command, cwd=scratch, env=_minimal_env(scratch), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:
            raise ToolError(f"the sandbox could not start {self.python!r} ({error}); "
                            "pass python= the path of a working interpreter") from error
        readers = [_CappedReader(child.stdout, limits.max_output_chars),
                   _CappedReader(child.stderr, limits.max_output_chars)]
        try:
            child.stdin.write(code.encode("utf-8", errors="surrogateescape"))
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died before reading its code; its stderr says why
        try:
            child.wait(timeout=limits.time_s)
            killed_at_deadline = False
        except subprocess.TimeoutExpired:
            killed_at_deadline = True
        _kill_group(child.pid)  # also ends anything the code forked and left running
        child.wait()
        for reader in readers:
            reader.join()
        stdout, stderr = (reader.text() for reader in readers)
        last_line = stderr.rstrip().rpartition("\n")[2]
        return ExecutionResult(
            stdout=stdout, stderr=stderr, exit_code=child.returncode,
            timed_out=killed_at_deadline or child.returncode == -signal.SIGXCPU,
            memory_exceeded=last_line.startswith("MemoryError"),
            duration_s=time.monotonic() - started,
            truncated=any(reader.truncated for reader in readers))

    @staticmethod
    def _pick_isolation(choice: NetworkIsolation) -> tuple[str, ...]:
        if choice == "guard":
            return ()
        prefix = network_namespace_command()
        if prefix is None and choice == "namespace":
            raise ToolError("network_isolation='namespace' needs `unshare --net`, which does not work here; "
                            "use 'auto' or 'guard'")
        return prefix or ()


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


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping its first and last `max_chars // 2` bytes, so a flood cannot fill memory."""

    def __init__(self, stream: IO[bytes], max_chars: int):
        super().__init__(daemon=True)
        self.stream, self.half = stream, max(1, max_chars // 2)
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.start()

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            self.total += len(chunk)
            room = self.half - len(self.head)
            self.head += chunk[:room]
            self.tail += chunk[max(room, 0):]
            if len(self.tail) > 2 * self.half:
                del self.tail[:-self.half]
        self.stream.close()

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
