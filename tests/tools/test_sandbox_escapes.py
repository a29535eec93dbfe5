"""The sandbox against hostile code: each escape found in issue 15 is one test here.

Every test is written as the attack: the code goes around the Python-level guard on purpose
(`_io`, `posix`, `sqlite3`, `execv`, raw sockets), and the assertion is on the host, never on
an error message: the file outside does not exist, the listener accepted nothing, the secret
did not come back, no process is left. Network tests use only listeners started here, on
loopback or on a Unix socket path in tmp.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from memento.tools.sandbox import PythonSandbox, SandboxLimits, detect_isolation
from tests.tools.listeners import accepting

SECRET = "sk-memento-test-" + uuid.uuid4().hex
NOBODY = 65534


def unprivileged_python(directory: Path) -> str | None:
    """A wrapper that runs the system Python as uid nobody, so the sandbox takes its user-namespace path."""
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or shutil.which("setpriv") is None or system_python is None:
        return None
    wrapper = directory / "python-as-nobody"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
                       f"{system_python} \"$@\"\n")
    wrapper.chmod(0o755)
    directory.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="module", params=["this interpreter", "unprivileged"])
def python(request, tmp_path_factory) -> str:
    """The interpreter runs use: this one (as root here, so the namespaces without a user
    namespace), and the system Python as nobody (a user namespace); both must contain every escape."""
    if request.param == "this interpreter":
        if detect_isolation(sys.executable).mode != "namespaces":
            pytest.skip(f"no namespaces here, so these escapes are not contained (see the README's sandbox "
                        f"section): {detect_isolation(sys.executable).reason}")
        return sys.executable
    wrapper = unprivileged_python(tmp_path_factory.mktemp("unprivileged"))
    if wrapper is None:
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run as another user")
    if detect_isolation(wrapper).mode != "namespaces":
        pytest.skip(f"no user namespaces for an unprivileged user here: {detect_isolation(wrapper).reason}")
    return wrapper


@pytest.fixture(scope="module")
def sandbox(python) -> PythonSandbox:
    return PythonSandbox(SandboxLimits(time_s=4.0, memory_mb=512), python=python)


@pytest.fixture
def work():
    """A scratch directory to keep, reachable and writable by the unprivileged interpreter too
    (pytest's tmp_path lies under a directory only root may enter)."""
    work = Path(tempfile.mkdtemp(prefix="memento-test-work-"))
    if os.geteuid() == 0:
        os.chown(work, NOBODY, NOBODY)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def processes_mentioning(text: str) -> list[int]:
    """Host pids whose command line contains `text` (the sandbox's settings name its scratch)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


SETSID_CHILD = """
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(60)
    os._exit(0)
print('parent done', flush=True)
"""


def test_a_setsid_child_does_not_outlive_the_run(python, work):
    sandbox = PythonSandbox(SandboxLimits(time_s=4.0), python=python, scratch_dir=work)
    result = sandbox.run(SETSID_CHILD)
    assert result.stdout == "parent done\n", result.stderr
    assert result.duration_s < 4.0
    time.sleep(0.2)
    assert processes_mentioning(str(work)) == []


def test_a_setsid_child_holding_the_pipes_cannot_stall_the_time_limit(python, work):
    sandbox = PythonSandbox(SandboxLimits(time_s=2.0), python=python, scratch_dir=work)
    started = time.monotonic()
    result = sandbox.run("import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)\n")
    assert time.monotonic() - started < 2.0 + 3.0
    assert result.timed_out
    time.sleep(0.2)
    assert processes_mentioning(str(work)) == []


def test_a_child_that_exits_the_run_but_keeps_stdout_open_does_not_block(sandbox):
    started = time.monotonic()
    result = sandbox.run(textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(60)
        print('main finished')
    """))
    assert "main finished" in result.stdout
    assert time.monotonic() - started < 4.0


@pytest.fixture
def unix_listener(tmp_path):
    """A Unix-socket server on a path in tmp that records every connection it accepts."""
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    with accepting(server) as accepted:
        yield path, accepted


def test_a_unix_socket_does_not_reach_a_listener_on_the_host(sandbox, unix_listener):
    path, accepted = unix_listener
    result = sandbox.run(f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(path)!r})\nprint('connected')")
    assert "connected" not in result.stdout
    assert result.exit_code == 1
    time.sleep(0.3)
    assert accepted == []


def test_an_abstract_unix_socket_does_not_reach_the_host(sandbox):
    name = "\0memento-test-" + uuid.uuid4().hex
    server = socket.socket(socket.AF_UNIX)
    server.bind(name)
    server.listen()
    server.settimeout(0.2)
    try:
        result = sandbox.run(f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({name!r})\nprint('connected')")
        assert "connected" not in result.stdout
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_the_parents_environment_does_not_leak_through_proc(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    result = sandbox.run(textwrap.dedent(f"""
        import os
        found = []
        for pid in [{os.getpid()}, os.getppid()] + [p for p in os.listdir('/proc') if p.isdigit()]:
            for name in ('environ', 'cmdline'):
                try:
                    found.append(open(f'/proc/{{pid}}/{{name}}', 'rb').read().decode(errors='replace'))
                except OSError:
                    pass
        print('\\n'.join(found))
        print('PARENT', os.path.exists('/proc/{os.getpid()}'))
    """))
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "PARENT False" in result.stdout


BYPASSES = {
    "_io.open": "import _io\n_io.open({target!r}, 'w').write('escaped')",
    "posix.open": "import posix\nposix.write(posix.open({target!r}, posix.O_WRONLY | posix.O_CREAT), b'escaped')",
    "io.FileIO": "import io\nio.FileIO({target!r}, 'w').write(b'escaped')",
    "sqlite3.connect": "import sqlite3\nsqlite3.connect({target!r}).execute('create table escaped (x)')",
    "posix.execv": "import posix\nposix.execv('/bin/sh', ['sh', '-c', 'echo escaped > {target}'])",
}


@pytest.fixture
def outside_targets(tmp_path):
    """A path in the host's tmp and one next to the interpreter, removed after the test if written."""
    targets = [tmp_path / "outside.txt", Path(sys.prefix) / f"memento-escape-{uuid.uuid4().hex}.txt"]
    yield targets
    for target in targets:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("bypass", sorted(BYPASSES))
def test_the_alternative_open_and_exec_paths_write_nothing_outside(sandbox, outside_targets, bypass):
    for target in outside_targets:
        sandbox.run(BYPASSES[bypass].format(target=str(target)))
        assert not target.exists(), f"{bypass} wrote {target}"


def test_the_hosts_etc_passwd_is_not_readable(sandbox):
    result = sandbox.run("import posix\nfd = posix.open('/etc/passwd', posix.O_RDONLY)\nprint(posix.read(fd, 100000).decode())")
    host_lines = [line for line in Path("/etc/passwd").read_text().splitlines() if line]
    assert not any(line in result.stdout for line in host_lines)


def test_an_exec_cannot_read_the_hosts_etc(sandbox):
    result = sandbox.run("import posix\nposix.execv('/bin/cat', ['cat', '/etc/passwd', '/etc/hostname'])")
    assert "root:x:0:0" not in result.stdout
    assert socket.gethostname() not in result.stdout.splitlines()


def test_writing_300_mb_hits_the_disk_cap(python, work):
    sandbox = PythonSandbox(SandboxLimits(time_s=20.0), python=python, scratch_dir=work)
    result = sandbox.run(textwrap.dedent("""
        written = 0
        try:
            for i in range(6):
                with open(f'part{i}.bin', 'wb') as out:
                    for _ in range(50):
                        out.write(b'x' * 2**20)
                        written += 2**20
        finally:
            print(written // 2**20)
    """))
    written_mb = int(result.stdout.split()[-1])
    assert written_mb < 300
    assert "No space left on device" in result.stderr or "File too large" in result.stderr
