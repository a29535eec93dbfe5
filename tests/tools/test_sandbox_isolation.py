"""How the sandbox picks, reports and builds its isolation: the mode in force, the private root
(no way back to the host's filesystem, even from a nested user namespace), the disk cap shared
by scratch, /tmp and /dev/shm, and a kept scratch directory carried through the run."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memento.errors import ToolError
from memento.tools.sandbox import PythonSandbox, SandboxLimits, detect_isolation

needs_namespaces = pytest.mark.skipif(detect_isolation(sys.executable).mode != "namespaces",
                                      reason=f"no namespaces here: {detect_isolation(sys.executable).reason}")
LIMITS = SandboxLimits(time_s=4.0, memory_mb=512)


@pytest.fixture(scope="module")
def sandbox() -> PythonSandbox:
    return PythonSandbox(dataclasses.replace(LIMITS, isolation="namespaces"))


def test_the_namespaces_are_used_wherever_the_kernel_allows_them():
    """So that a broken probe cannot turn every escape test into a skip: util-linux's `unshare`
    is asked on its own, and where it can make the namespaces the sandbox must use them."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("util-linux's unshare is not installed, so there is nothing to check against")
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    command = [unshare, *user, "--fork", "--pid", "--mount-proc", "--net", "--ipc", "--uts", "true"]
    if subprocess.run(command, capture_output=True, timeout=30).returncode != 0:
        pytest.skip("the kernel refuses the namespaces here; the sandbox runs in process mode")
    assert detect_isolation(sys.executable).mode == "namespaces", detect_isolation(sys.executable).reason


@needs_namespaces
def test_the_mode_in_force_is_logged_and_kept(caplog):
    detect_isolation.cache_clear()
    with caplog.at_level(logging.INFO, logger="memento.tools.sandbox"):
        sandbox = PythonSandbox()
    assert sandbox.isolation.mode == "namespaces" and sandbox.isolation.reason == ""
    assert any("python sandbox isolation: namespaces" in message for message in caplog.messages)
    process = PythonSandbox(SandboxLimits(isolation="process"))
    assert process.isolation.mode == "process" and "process only" in str(process.isolation)


def test_namespaces_asked_for_where_they_cannot_be_made_is_a_tool_error(tmp_path):
    missing = str(tmp_path / "no-python")
    assert PythonSandbox(python=missing).isolation.mode == "process"
    with pytest.raises(ToolError, match="isolation='namespaces' cannot be had here") as caught:
        PythonSandbox(SandboxLimits(isolation="namespaces"), python=missing)
    assert missing in str(caught.value) and "isolation='auto'" in str(caught.value)


@needs_namespaces
def test_the_root_holds_only_the_system_the_interpreter_and_the_scratch(sandbox):
    result = sandbox.run(textwrap.dedent("""
        import os
        print(sorted(os.listdir('/')))
        print(sorted(os.listdir('/etc')))
        print(os.getuid() != 0, os.getpid())
        print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
    """))
    assert result.exit_code == 0, result.stderr
    top, etc, uid_line, capabilities = result.stdout.splitlines()
    assert not {"home", "var", "boot", "opt", "srv"} & set(eval(top))
    assert "shadow" not in etc and "passwd" in etc
    assert uid_line == "True 2"  # pid 2: the supervisor is pid 1 of the run's own pid namespace
    assert int(capabilities, 16) == 0


@needs_namespaces
def test_the_supervisor_does_not_lead_back_to_the_host(sandbox):
    result = sandbox.run(textwrap.dedent("""
        import os
        for path in ('/proc/1/root', '/proc/1/cwd', '/proc/1/fd'):
            try:
                os.listdir(path)
                print('open', path)
            except OSError as error:
                print('closed', path, type(error).__name__)
    """))
    assert "open" not in result.stdout.split(), result.stdout


@needs_namespaces
def test_a_nested_user_namespace_cannot_climb_out_of_the_root(sandbox):
    """The classic chroot escape, with the capabilities a new user namespace gives back: after
    pivot_root there is no host filesystem above the root to climb to."""
    result = sandbox.run(textwrap.dedent("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        os.mkdir('jail')
        print('unshare', libc.unshare(0x10000000 | 0x00020000), ctypes.get_errno())
        try:
            os.chroot('jail')
            for _ in range(30):
                os.chdir('..')
            os.chroot('.')
        except OSError as error:
            print('chroot refused', error)
        print(sorted(os.listdir('/')))
        try:
            print(open('/etc/passwd').read())
        except OSError as error:
            print(error)
    """))
    host_lines = [line for line in Path("/etc/passwd").read_text().splitlines() if line]
    assert not any(line in result.stdout for line in host_lines), result.stdout
    assert "'boot'" not in result.stdout and "'home'" not in result.stdout


@needs_namespaces
def test_scratch_tmp_and_shm_share_one_disk_cap():
    sandbox = PythonSandbox(dataclasses.replace(LIMITS, max_disk_mb=8, isolation="namespaces"))
    result = sandbox.run(textwrap.dedent("""
        written = 0
        try:
            for path in ('a.bin', '/tmp/b.bin', '/dev/shm/c.bin'):
                with open(path, 'wb') as out:
                    for _ in range(4):
                        out.write(b'x' * 2**20)
                        written += 1
        finally:
            print(written)
    """))
    assert int(result.stdout.split()[-1]) < 9
    assert "No space left on device" in result.stderr


@needs_namespaces
def test_one_file_over_max_file_mb_is_refused():
    sandbox = PythonSandbox(SandboxLimits(time_s=4.0, max_file_mb=2, isolation="namespaces"))
    result = sandbox.run("open('big.bin', 'wb').write(b'x' * 3 * 2**20)")
    assert result.exit_code != 0
    assert "File too large" in result.stderr or result.exit_code == -25  # EFBIG, or SIGXFSZ


@needs_namespaces
def test_a_kept_scratch_dir_mirrors_the_run(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "old.txt").write_text("from before")
    (work / "keep").mkdir()
    (work / "keep" / "nested.txt").write_text("nested")
    sandbox = PythonSandbox(dataclasses.replace(LIMITS, isolation="namespaces"), scratch_dir=work)
    result = sandbox.run(textwrap.dedent("""
        import os
        print(open('keep/nested.txt').read())
        os.remove('old.txt')
        open('new.txt', 'w').write('from the run')
        os.symlink('/etc/passwd', 'link')
        os.mkfifo('pipe')
    """))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "nested\n"
    assert sorted(path.name for path in work.iterdir()) == ["keep", "link", "new.txt"]
    assert (work / "new.txt").read_text() == "from the run"
    assert (work / "link").is_symlink() and os.readlink(work / "link") == "/etc/passwd"  # kept, never followed


@needs_namespaces
def test_a_kept_scratch_dir_over_the_disk_cap_is_a_tool_error(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "big.bin").write_bytes(b"x" * 3 * 2**20)
    sandbox = PythonSandbox(SandboxLimits(time_s=4.0, max_disk_mb=1, isolation="namespaces"), scratch_dir=work)
    with pytest.raises(ToolError, match="max_disk_mb") as caught:
        sandbox.run("print('never runs')")
    assert str(work) in str(caught.value)
    assert (work / "big.bin").stat().st_size == 3 * 2**20


@needs_namespaces
def test_the_environment_is_the_sandboxs_own(sandbox, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-must-not-leak")
    result = sandbox.run("import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())")
    assert "ANTHROPIC_API_KEY" not in result.stdout and "sk-must-not-leak" not in result.stdout


@needs_namespaces
def test_no_keyring_of_the_caller_is_reachable(sandbox):
    result = sandbox.run("import os\nprint(os.getuid())\nprint(open('/proc/keys').read())")
    uid, *keys = result.stdout.strip().splitlines()
    assert keys and all(line.split()[5] == uid for line in keys), keys  # only the run's own session keyring


@needs_namespaces
@pytest.mark.parametrize("where", ["inside", "around"])
def test_a_scratch_dir_overlapping_a_read_only_directory_is_a_tool_error(where):
    scratch = Path(sys.prefix) / "memento-sandbox-scratch-test" if where == "inside" else Path(sys.prefix).parent
    made = not scratch.exists()
    # max_disk_mb=1: were the check to fail, copying the project in would fail too, long before any copy back.
    sandbox = PythonSandbox(dataclasses.replace(LIMITS, isolation="namespaces", max_disk_mb=1), scratch_dir=scratch)
    try:
        with pytest.raises(ToolError, match="shows read-only; choose a scratch_dir neither inside nor around"):
            sandbox.run("print('never runs')")
    finally:
        if made:
            scratch.rmdir()
