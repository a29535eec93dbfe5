"""The bootstrap the sandbox runs in its child process, around the user's code (stdlib only).

Run as `python -I -B _sandbox_guard.py SETTINGS_JSON` with the code on stdin. Before the code
runs it sets the resource limits, then replaces the Python functions that write files, start
programs or open network sockets with ones that refuse. The limits are set here rather than in
a `preexec_fn`, because `preexec_fn` can deadlock when the parent has threads, and LangGraph
runs tools in thread pools.

This is a guard against an LLM's accidents, not a wall against a hostile program: code that
calls `_io`, `_socket`, `posix` or ctypes directly goes around it. The network namespace that
the parent adds when `unshare` works is a real boundary; the resource limits are real too.
"""

import builtins
import errno
import io
import json
import linecache
import os
import resource
import socket
import sys
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


def set_limits(memory_bytes, cpu_seconds, file_bytes):
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def guard_writes(scratch):
    def inside(path, dir_fd=None):
        if isinstance(path, int):  # an open descriptor was checked when it was opened
            return True
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        real = os.path.realpath(path)
        return real == scratch or real.startswith(scratch + os.sep) or real in ALWAYS_WRITABLE

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
    sys.stdin = open(os.devnull)
    # Lets tracebacks show the lines of the user's code.
    linecache.cache["<sandbox>"] = (len(code), None, code.splitlines(True), "<sandbox>")
    set_limits(settings["memory_bytes"], settings["cpu_seconds"], settings["file_bytes"])
    guard_writes(os.path.realpath(settings["scratch"]))
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
