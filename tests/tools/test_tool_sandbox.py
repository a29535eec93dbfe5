"""PythonSandbox: normal runs and each limit (time, memory, processes, network, writes, output size).

The module's sandbox runs in both isolation modes: what is contained in "process" mode (no
namespaces) must stay contained in "namespaces" mode, and the other way round for what both
promise. The escapes that only the namespaces contain are in test_sandbox_escapes.py.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import textwrap
import time

import pytest

from memento.errors import ValidationError
from memento.tools.sandbox import PythonSandbox, SandboxLimits, detect_isolation, python_tool
from tests.tools.test_sandbox_escapes import processes_mentioning
from tests.tools.listeners import accepting

LIMITS = SandboxLimits(time_s=2.0, memory_mb=256, max_output_chars=1000)


@pytest.fixture(scope="module", params=["auto", "process"])
def sandbox(request) -> PythonSandbox:
    return PythonSandbox(dataclasses.replace(LIMITS, isolation=request.param))


def test_normal_code_runs_in_a_fresh_scratch_directory(sandbox):
    result = sandbox.run(textwrap.dedent("""
        import os, pathlib, sys
        pathlib.Path("notes.txt").write_text("kept inside")
        print(open("notes.txt").read(), os.getcwd().split("/")[-1].startswith("memento-sandbox-"))
        print(sorted(os.environ))
        print("warning", file=sys.stderr)
    """))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "kept inside True"
    assert "PATH" in lines[1] and "OPENAI_API_KEY" not in lines[1]
    assert result.stderr == "warning\n"
    assert not (result.timed_out or result.memory_exceeded or result.truncated)


def test_an_error_gives_its_traceback_with_the_source_line(sandbox):
    result = sandbox.run("x = 1\nx / 0\n")
    assert result.exit_code == 1
    assert 'File "<sandbox>", line 2' in result.stderr and "x / 0" in result.stderr
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "_sandbox_guard" not in result.stderr


def test_an_infinite_loop_is_killed_at_the_time_limit(sandbox):
    result = sandbox.run("while True:\n    pass\n")
    assert result.timed_out
    assert result.exit_code < 0
    assert LIMITS.time_s <= result.duration_s < LIMITS.time_s + 1.5


def test_children_and_grandchildren_in_their_own_sessions_die_with_the_run(sandbox, tmp_path):
    kept = PythonSandbox(sandbox.limits, scratch_dir=tmp_path / "work")
    result = kept.run(textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            if os.fork() == 0:
                os.setsid()
                time.sleep(60)
            time.sleep(60)
        print('parent done')
    """))
    assert result.stdout == "parent done\n" and result.duration_s < LIMITS.time_s
    time.sleep(0.2)
    assert processes_mentioning(str(tmp_path / "work")) == []


def test_a_forked_child_dies_with_the_run(sandbox):
    result = sandbox.run("import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint('parent done')\n")
    assert result.stdout == "parent done\n" and result.duration_s < LIMITS.time_s


FORKS = """
import os, time
children = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as error:
    print("refused", error.errno)
print(len(children))
"""


def test_200_forks_are_capped_and_none_outlives_the_run(sandbox, tmp_path):
    capped = PythonSandbox(sandbox.limits, scratch_dir=tmp_path / "work")
    result = capped.run(FORKS)
    assert result.exit_code == 0, result.stderr
    forked = int(result.stdout.split()[-1])
    if capped.isolation.mode == "namespaces" or os.geteuid() != 0:  # RLIMIT_NPROC does not bind root
        assert forked < LIMITS.max_processes and "refused 11" in result.stdout
    assert result.duration_s < LIMITS.time_s
    time.sleep(0.2)
    assert processes_mentioning(str(tmp_path / "work")) == []


@pytest.mark.parametrize("bomb", [
    "x = bytearray(20 * 1024**3)",
    "x = bytearray(4 * 1024**3)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(10 * 1024**2))",
])
def test_a_memory_bomb_hits_the_memory_limit(sandbox, bomb):
    result = sandbox.run(bomb)
    assert result.memory_exceeded, result.stderr
    assert result.exit_code != 0 and not result.timed_out
    assert "256 MB" in result.stderr


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    with accepting(server) as accepted:
        yield server.getsockname()[1], accepted


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_a_network_call_fails_and_reaches_nothing(listener, isolation):
    port, accepted = listener
    sandbox = PythonSandbox(SandboxLimits(time_s=5.0, isolation=isolation))
    result = sandbox.run(f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)")
    assert result.exit_code == 1
    assert "network access is disabled" in result.stderr
    assert accepted == []


def test_the_network_namespace_stops_code_that_goes_around_the_guard(listener):
    if detect_isolation(sys.executable).mode != "namespaces":
        pytest.skip(f"no namespaces here: {detect_isolation(sys.executable).reason}")
    port, accepted = listener
    sandbox = PythonSandbox(SandboxLimits(time_s=5.0, isolation="namespaces"))
    assert sandbox.isolation.mode == "namespaces"
    result = sandbox.run(f"import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))")
    assert result.exit_code == 1
    assert "OSError" in result.stderr or "ConnectionRefusedError" in result.stderr
    assert accepted == []


@pytest.mark.parametrize("write", [
    "open({target!r}, 'w').write('escaped')",
    "import os\nos.close(os.open({target!r}, os.O_WRONLY | os.O_CREAT))",
    "import pathlib\npathlib.Path({target!r}).write_text('escaped')",
    "import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('escaped')",
    "import shutil\nopen('here.txt', 'w').write('escaped')\nshutil.move('here.txt', {target!r})",
    "import subprocess\nsubprocess.run(['touch', {target!r}])",
])
def test_a_write_outside_the_scratch_directory_fails(sandbox, tmp_path, write):
    target = tmp_path / "outside.txt"
    result = sandbox.run(write.format(target=str(target)))
    assert result.exit_code == 1
    assert refused(sandbox, result.stderr)
    assert not target.exists()


def refused(sandbox: PythonSandbox, stderr: str) -> bool:
    """The guard refuses with a PermissionError; in the namespaces a path under /tmp is in the
    run's own /tmp instead, where the host's directory does not exist."""
    return "PermissionError" in stderr or (sandbox.isolation.mode == "namespaces" and "FileNotFoundError" in stderr)


def test_a_file_outside_cannot_be_deleted(sandbox, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    result = sandbox.run(f"import os\nos.remove({str(precious)!r})")
    assert refused(sandbox, result.stderr)
    assert precious.read_text() == "keep me"


def test_long_output_keeps_head_and_tail(sandbox):
    result = sandbox.run("for i in range(10000):\n    print(f'line {i}')")
    assert result.truncated and result.exit_code == 0
    assert result.stdout.startswith("line 0\nline 1\n")
    assert result.stdout.rstrip().endswith("line 9999")
    assert "[truncated:" in result.stdout
    assert len(result.stdout) < LIMITS.max_output_chars + 100


def test_a_given_scratch_dir_keeps_files_between_runs(tmp_path):
    sandbox = PythonSandbox(LIMITS, scratch_dir=tmp_path / "work")
    assert sandbox.run("open('state.txt', 'w').write('42')").exit_code == 0
    assert sandbox.run("print(open('state.txt').read())").stdout == "42\n"
    assert (tmp_path / "work" / "state.txt").read_text() == "42"


def test_python_tool_reports_exit_code_and_output():
    tool = python_tool(PythonSandbox(SandboxLimits(time_s=0.5)))
    assert tool.name == "python"
    text = tool.invoke({"code": "print(6 * 7)"})
    assert text.startswith("exit code 0 after ") and text.endswith("stdout:\n42\n")
    assert "killed at the time limit of 0.5 s" in tool.invoke({"code": "while True: pass"})


@pytest.mark.parametrize("field, value", [("max_disk_mb", 0), ("time_s", -1), ("max_processes", 0),
                                          ("memory_mb", True), ("cpu_s", 0), ("isolation", "guard")])
def test_limits_that_would_mean_no_limit_are_refused(field, value):
    with pytest.raises(ValidationError, match=f"SandboxLimits.{field} is {value!r}"):
        SandboxLimits(**{field: value})
