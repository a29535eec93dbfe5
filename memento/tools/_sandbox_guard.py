"""The bootstrap the sandbox runs in its child process, around the user's code (stdlib only).

Run as `python -I -B _sandbox_guard.py SETTINGS_JSON` with the code on stdin, a clean
environment and a status pipe on the descriptor `settings["status_fd"]`. With
`"isolation": "namespaces"` the processes are:

    parent (memento)
    └── stage 0: unshares the mount, pid, net, ipc and uts namespaces (and, without root, a
        │        user namespace mapping its uid to 0), then waits
        └── supervisor: pid 1 of the new pid namespace; builds the private root (below)
            └── runner: pivots into that root in a mount namespace of its own, drops its
                privileges, sets the resource limits and runs the code

The private root is a read-only tmpfs holding the system directories (/usr, /lib...) and the
interpreter's prefixes bound read-only, a minimal /etc and /dev, a fresh /proc that shows only
the sandbox's processes, and one tmpfs capped at the disk limit for the scratch directory (at
its host path), /tmp and /dev/shm. After pivot_root the host's filesystem is not in the
runner's mount namespace at all, so no open path (`_io`, `posix`, `sqlite3`, ctypes, a
program started with `execv`) reaches it. As root, the runner switches to a uid of its own
that no file on the host belongs to; in a user namespace it drops every capability. Either way
`no_new_privs` is set, so setuid programs gain nothing.

The supervisor waits for the runner until the deadline, then kills every process left in the
namespace (a `setsid()` child included), copies a kept scratch directory back to the host, and
writes one JSON line to the status pipe: the runner's exit status, or the setup error. Stage 0
sets the supervisor's parent-death signal, so the parent killing stage 0 ends the namespace.

With `"isolation": "process"` (no namespaces here) there is no stage 0: the supervisor is a
child subreaper, so orphans (a `setsid()` child too) come back to it and are killed at the
end; files, the network and /proc are then only behind the Python-level guards below.

Those guards (writes outside the scratch, starting programs, non-Unix sockets) run in both
modes, last; they are not the boundary: they turn an LLM's accident into a clear message.
Limits are set here rather than in a `preexec_fn`, because `preexec_fn` can deadlock when the
parent has threads, and LangGraph runs tools in thread pools.
"""

import builtins
import ctypes
import errno
import io
import json
import linecache
import os
import random
import resource
import select
import shutil
import signal
import socket
import stat
import sys
import time
import traceback

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
ALWAYS_WRITABLE = {"/dev/null"}
# (function name, which positional arguments are paths that get changed)
PATH_MUTATORS = [("remove", (0,)), ("unlink", (0,)), ("rmdir", (0,)), ("mkdir", (0,)),
                 ("rename", (0, 1)), ("replace", (0, 1)), ("symlink", (1,)), ("link", (1,)),
                 ("truncate", (0,)), ("chmod", (0,)), ("chown", (0,)), ("lchown", (0,)),
                 ("utime", (0,)), ("mkfifo", (0,)), ("mknod", (0,))]
PROGRAM_STARTERS = ["system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe",
                    "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp",
                    "spawnlpe", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp"]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
# glibc wraps neither pivot_root nor keyctl; the syscalls' numbers by architecture.
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(os.uname().machine, -1)
KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280}.get(os.uname().machine, -1)
KEYCTL_JOIN_SESSION_KEYRING = 1
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER = 1, 4, 24, 36
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
# Mount flags that a remount in a user namespace must keep (they are locked), as statvfs names them.
LOCKED_FLAGS = [(os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)]
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
DEVICES = ["null", "zero", "full", "random", "urandom"]
# From the host's /etc only: the dynamic loader's cache, the time zone, and the symlinks that
# commands such as awk resolve through.
ETC_ENTRIES = ["ld.so.cache", "ld.so.conf", "localtime", "alternatives"]
ROOT_SIZE = "size=8m,nr_inodes=4096,mode=755"

libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """The isolation could not be built; the message says which step failed and why."""


class ScratchError(Exception):
    """A kept scratch directory could not be copied into the sandbox (unreadable, over the disk cap)."""


def _call(result, what):
    if result != 0:
        number = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(number)} (errno {number})")


def _bytes(value):
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype=None, flags=0, data=None):
    _call(libc.mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data)),
          f"mount {target}")


def prctl(option, value=0):
    return libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0))


def report(status_fd, **status):
    os.write(status_fd, (json.dumps(status) + "\n").encode())


# --- stage 0 and the supervisor ---------------------------------------------------------------

def contain(settings):
    """Become the runner inside fresh namespaces; every other process this forks never returns."""
    status_fd = settings["status_fd"]
    as_root = os.geteuid() == 0
    if not as_root and kernel_version() < (5, 14):
        # Before 5.14 a user namespace shares its RLIMIT_NPROC count with the host user's processes.
        settings["max_processes"] += count_my_tasks()
    try:
        uid, gid = os.geteuid(), os.getegid()
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        _call(libc.unshare(ctypes.c_int(flags | (0 if as_root else CLONE_NEWUSER))), "unshare")
        if not as_root:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as out:
                    out.write(text)
    except (SetupError, OSError) as error:
        report(status_fd, error=f"creating the namespaces: {error}", stage="setup")
        os._exit(0)
    supervisor = os.fork()
    if supervisor:
        for fd in (1, 2, status_fd):  # only the supervisor and the runner hold the parent's pipes
            os.close(fd)
        _, status = os.waitpid(supervisor, 0)
        os._exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
    # Stage 0 only waits, and the parent kills it only past the deadline, so it cannot die before
    # this line (which getppid, 0 outside our pid namespace, could not check anyway).
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)  # so /proc/1/root and /proc/1/fd, which lead to the host, stay closed
    owner = (random.SystemRandom().randrange(1 << 20, 1 << 30),) * 2 if as_root else (0, 0)
    root = settings["root"]
    try:
        build_root(root, settings, owner)
    except ScratchError as error:
        report(status_fd, error=str(error), stage="keep")
        os._exit(0)
    except (SetupError, OSError) as error:
        report(status_fd, error=f"building the private root: {error}", stage="setup")
        os._exit(0)
    supervise(settings, lambda: enter_root(root, settings, owner, as_root), kill_all_in_namespace,
              lambda: keep_scratch(root, settings))


def contain_process(settings):
    """Without namespaces: become the runner under a subreaper that kills what it leaves behind."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    supervise(settings, lambda: None, kill_descendants, lambda: None)


def supervise(settings, prepare_runner, kill_rest, after):
    """Fork the runner (which returns from here), wait for it until the deadline, clean up, report."""
    status_fd = settings["status_fd"]
    deadline = time.monotonic() + settings["time_seconds"]
    runner = os.fork()
    if runner == 0:
        os.close(status_fd)
        prepare_runner()
        return
    exit_code, timed_out = wait_until(runner, deadline)
    if exit_code is None:
        os.kill(runner, signal.SIGKILL)
        exit_code = os.waitstatus_to_exitcode(os.waitpid(runner, 0)[1])
    kill_rest()
    status = {"exit_code": exit_code, "timed_out": timed_out}
    try:
        after()
    except OSError as error:
        status.update(error=f"copying its files back failed ({error}); make it writable by the interpreter's "
                            "user and leave room on its disk", stage="keep")
    report(status_fd, **status)
    os._exit(0)


def wait_until(runner, deadline):
    """(exit code, False) when the runner ends in time, else (None, True); reaps orphans meanwhile."""
    try:
        ready = os.pidfd_open(runner)
    except (AttributeError, OSError):
        ready = None
    while True:
        while True:  # orphans are re-parented to us: reap them so they do not count as processes
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return os.EX_SOFTWARE, False
            if pid == 0:
                break
            if pid == runner:
                return os.waitstatus_to_exitcode(status), False
        left = deadline - time.monotonic()
        if left <= 0:
            return None, True
        if ready is None:
            time.sleep(min(left, 0.01))
        else:
            select.select([ready], [], [], min(left, 0.05))


def kill_all_in_namespace():
    """As pid 1, kill(-1) reaches every other process of the namespace, whatever its session;
    repeated until none is left, for a child forked while the signal went out."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        reap_ready()
        time.sleep(0.001)


def kill_descendants():
    """Kill our children until none is left: each death re-parents its own children to us, the subreaper."""
    me, gives_up = str(os.getpid()), time.monotonic() + 5.0
    while time.monotonic() < gives_up:
        children = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat_file:
                    parent = stat_file.read().rpartition(b")")[2].split()[1].decode()
            except (OSError, IndexError):
                continue
            if parent == me:
                children.append(int(entry))
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_ready()
        time.sleep(0.005)


def reap_ready():
    """Reap every child that has ended, without waiting for the others."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


# --- the private root -------------------------------------------------------------------------

def build_root(root, settings, owner):
    scratch, shown_read_only = settings["scratch"], read_only_paths()
    for path in shown_read_only:
        # Inside one, its mount point would have to be made in the host's own directory, through
        # the bind; around one, it would hide the interpreter and carry it back changed.
        if scratch == path or scratch.startswith(path + "/") or path.startswith(scratch.rstrip("/") + "/"):
            raise ScratchError(f"it overlaps {path}, which the sandbox shows read-only; choose a scratch_dir "
                               f"neither inside nor around {', '.join(shown_read_only)}")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_SIZE)
    for path in shown_read_only:
        bind(path, root + path, read_only=True)
    for name in DEVICES:
        bind(f"/dev/{name}", f"{root}/dev/{name}", read_only=True, devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    build_etc(root + "/etc", settings["scratch"], owner)
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    build_writable(root, settings, owner)
    _call(libc.sethostname(b"sandbox", ctypes.c_size_t(7)), "sethostname")
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, ROOT_SIZE)


def read_only_paths():
    """The system directories and this interpreter's prefixes, outermost first, none inside another."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    paths = []
    for path in [*SYSTEM_DIRS, *sorted(prefixes, key=len)]:
        if os.path.lexists(path) and not any(path == kept or path.startswith(kept + "/") for kept in paths):
            paths.append(path)
    return paths


def bind(source, target, *, read_only, devices=False):
    if os.path.islink(source) and os.path.dirname(source) == "/":  # /bin -> usr/bin on merged-/usr systems
        os.symlink(os.readlink(source), target)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "w").close()
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (MS_RDONLY if read_only else 0) | (0 if devices else MS_NODEV)
    mounted = os.statvfs(target).f_flag
    flags |= sum(ms for st, ms in LOCKED_FLAGS if mounted & st)
    mount(None, target, None, flags)


def build_etc(etc, scratch, owner):
    """A minimal /etc: ETC_ENTRIES, and a passwd and group that name only the sandbox's user."""
    os.makedirs(etc)
    for name in ETC_ENTRIES:
        source = "/etc/" + name
        if os.path.islink(source):
            os.symlink(os.readlink(source), f"{etc}/{name}")
        elif os.path.isdir(source):
            bind(source, f"{etc}/{name}", read_only=True)
        elif os.path.isfile(source):
            shutil.copyfile(source, f"{etc}/{name}")
    uid, gid = owner
    for name, line in (("passwd", f"sandbox:x:{uid}:{gid}:sandbox:{scratch}:/bin/sh"),
                       ("group", f"sandbox:x:{gid}:"), ("hostname", "sandbox"),
                       ("hosts", "127.0.0.1 localhost sandbox")):
        with open(f"{etc}/{name}", "w") as out:
            out.write(line + "\n")


def build_writable(root, settings, owner):
    """One tmpfs capped at the disk limit, shown as the scratch directory, /tmp and /dev/shm."""
    writable = root + "/.writable"
    os.makedirs(writable)
    disk_bytes = settings["disk_bytes"]
    mount("tmpfs", writable, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={disk_bytes},nr_inodes={max(1024, disk_bytes // 4096)},mode=755")
    # The scratch last: it may lie under /tmp, which would cover it.
    for name, inside, mode in (("tmp", "/tmp", 0o1777), ("shm", "/dev/shm", 0o1777),
                               ("scratch", settings["scratch"], 0o700)):
        os.mkdir(f"{writable}/{name}")
        os.chmod(f"{writable}/{name}", mode)
        if name == "scratch" and settings["keep_scratch"]:
            try:
                copy_tree(settings["scratch"], f"{writable}/{name}", owner)
            except OSError as error:
                raise ScratchError(f"copying its files into the run's tmpfs failed ({error}); keep them under "
                                   f"max_disk_mb={disk_bytes // 2**20} (or raise it) and readable by the "
                                   "interpreter's user") from error
        os.lchown(f"{writable}/{name}", *owner)
        os.makedirs(root + inside, exist_ok=True)
        mount(f"{writable}/{name}", root + inside, None, MS_BIND)
    _call(libc.umount2(_bytes(writable), ctypes.c_int(MNT_DETACH)), "umount the writable tmpfs")
    os.rmdir(writable)


def copy_tree(source, target, owner=None):
    """Copy directories, regular files and symlinks (never followed); skip fifos, sockets, devices."""
    for entry in os.scandir(source):
        destination = os.path.join(target, entry.name)
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(entry.path), destination)
        elif stat.S_ISDIR(mode):
            os.mkdir(destination)
            copy_tree(entry.path, destination, owner)
        elif stat.S_ISREG(mode):
            shutil.copyfile(entry.path, destination, follow_symlinks=False)
        else:
            continue
        if not stat.S_ISLNK(mode):
            os.chmod(destination, stat.S_IMODE(mode))
        if owner is not None:
            os.lchown(destination, *owner)


def keep_scratch(root, settings):
    """Replace the host's scratch directory's contents with what the run left in the sandbox's.

    The copy goes to a staging directory inside the host's scratch first, so a failed copy
    (a full disk) leaves the files of the run before in place.
    """
    if not settings["keep_scratch"]:
        return
    host = settings["scratch"]
    staging_name = f".memento-sandbox-incoming-{os.getpid()}-{random.SystemRandom().getrandbits(48):x}"
    staging = os.path.join(host, staging_name)
    os.mkdir(staging, 0o700)
    try:
        copy_tree(root + host, staging)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for entry in os.scandir(host):
        if entry.name == staging_name:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    for entry in os.scandir(staging):
        os.rename(entry.path, os.path.join(host, entry.name))
    os.rmdir(staging)


# --- the runner -------------------------------------------------------------------------------

def enter_root(root, settings, owner, as_root):
    """Pivot into the private root in a mount namespace of our own, then give up every privilege."""
    os.closerange(3, 1 << 16)
    _call(libc.unshare(ctypes.c_int(CLONE_NEWNS)), "unshare the runner's mount namespace")
    os.chdir(root)
    _call(libc.syscall(ctypes.c_long(PIVOT_ROOT), b".", b"."), "pivot_root")
    _call(libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "detach the host's root")
    os.chdir(settings["scratch"])
    for capability in range(64):
        prctl(PR_CAPBSET_DROP, capability)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if as_root:
        uid, gid = owner
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    else:
        drop_capabilities()
    # A session keyring of our own, so that none joined by the caller's login (and held across
    # setuid) is possessed here; refused under some seccomp profiles, where there is none to leave.
    libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)
    _call(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    prctl(PR_SET_DUMPABLE, 1)


def drop_capabilities():
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _call(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def set_limits(settings):
    memory, cpu, files = settings["memory_bytes"], settings["cpu_seconds"], settings["file_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    processes = settings["max_processes"]
    if settings["isolation"] == "process" and os.geteuid() != 0:
        processes += count_my_tasks()  # without a user namespace of its own the count is the host user's
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def kernel_version():
    release = os.uname().release.split("-")[0].split(".")
    return tuple(int(part) for part in release[:2] if part.isdigit())


def count_my_tasks():
    uid, total = str(os.getuid()), 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [uid]:
            total += int(fields.get("Threads", "1"))
    return total


# --- the Python-level guards ------------------------------------------------------------------

def guard_writes(scratch, also_writable=()):
    writable = [scratch, *also_writable]

    def inside(path, dir_fd=None):
        if isinstance(path, int):  # an open descriptor was checked when it was opened
            return True
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        real = os.path.realpath(path)
        return real in ALWAYS_WRITABLE or any(real == top or real.startswith(top + os.sep) for top in writable)

    def refuse(path):
        raise PermissionError(errno.EACCES, "the sandbox can write only inside its scratch directory "
                              f"{scratch}; use a relative path", os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_guarded(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and not inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open_guarded(path, flags, mode=0o777, *, dir_fd=None):
        if flags & WRITE_FLAGS and not inside(path, dir_fd):
            refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def mutator(function, positions):
        def guarded(*args, **kwargs):
            for position in positions:
                if position < len(args) and not inside(args[position], kwargs.get("dir_fd")):
                    refuse(args[position])
            return function(*args, **kwargs)
        return guarded

    builtins.open = io.open = open_guarded
    os.open = os_open_guarded
    for name, positions in PATH_MUTATORS:
        if hasattr(os, name):
            setattr(os, name, mutator(getattr(os, name), positions))


def guard_programs():
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "starting other programs is disabled in the sandbox")

    for name in PROGRAM_STARTERS:
        if hasattr(os, name):
            setattr(os, name, refuse)
    import _posixsubprocess  # subprocess.Popen starts every program through this function

    _posixsubprocess.fork_exec = refuse


def guard_network():
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "network access is disabled in the sandbox")

    class LocalSocket(socket.socket):
        """Unix-domain sockets only: asyncio's self-pipe needs them, and they reach no network."""

        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family != socket.AF_UNIX:
                refuse()
            super().__init__(family, type, proto, fileno)

    socket.socket = LocalSocket
    for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
                 "gethostbyname_ex", "gethostbyaddr"):
        setattr(socket, name, refuse)


def main():
    settings = json.loads(sys.argv[1])
    code = sys.stdin.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if settings["isolation"] == "namespaces":
        contain(settings)
    else:
        contain_process(settings)
    # From here on this is the runner.
    set_limits(settings)
    # Lets tracebacks show the lines of the user's code.
    linecache.cache["<sandbox>"] = (len(code), None, code.splitlines(True), "<sandbox>")
    # In the namespaces, /tmp and /dev/shm are the run's own tmpfs, under the same disk cap.
    guard_writes(os.path.realpath(settings["scratch"]),
                 ("/tmp", "/dev/shm") if settings["isolation"] == "namespaces" else ())
    guard_programs()
    guard_network()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(code, "<sandbox>", "exec"), namespace)
    except MemoryError:
        namespace.clear()  # frees what the code held, so the message below can be written
        sys.stderr.write(f"MemoryError: the sandbox's memory limit of "
                         f"{settings['memory_bytes'] // 2**20} MB was reached\n")
        sys.exit(1)
    except SystemExit:
        raise
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        sys.exit(1)


if __name__ == "__main__":
    main()
