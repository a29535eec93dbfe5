"""Storage faults, named: a damaged, read-only or full bank file becomes a `BankError` saying what to do.

SQLite reports these as `sqlite3.DatabaseError` / `OperationalError` (and the file system as
`OSError`) with terse texts ("database disk image is malformed", "database or disk is full",
"unable to open database file"). The bank passes every failed open and every failed write
through here, so a caller sees one typed error whose message names the file, what went wrong,
that nothing was written, and the fix.

A failed write is rolled back first; SQLite may already have rolled it back itself (it does on a
full disk), so a second ROLLBACK would only hide the real error behind "no transaction is active".
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from memento.errors import BankError

DAMAGED = ("malformed", "not a database", "file is encrypted", "database corrupt")
FULL = ("database or disk is full", "file too large")
READ_ONLY = ("readonly", "read-only", "unable to open database file", "attempt to write")
DAMAGED_FIX = ("restore the file from a backup, or import an export of it into a new bank "
               "(`memento cases import FILE.jsonl --bank NEW.db`); SQLite's `.recover` command may salvage readable rows")
FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def check_bank_files(path: Path, index_path: Path) -> None:
    """Refuse a path that is not a regular file, and a bank file cut to zero bytes while its index file is not.

    SQLite reads an empty file as a new, empty database, so without this check a truncated bank
    would silently open as an empty one and its saved index would be thrown away.
    """
    if path.exists() and not path.is_file() and not path.is_dir():
        raise BankError(f"cannot open bank '{path}': it is not a regular file (a device, a pipe or a socket); "
                        "give the path of a .db file")
    if path.is_file() and path.stat().st_size == 0 and index_path.is_file() and index_path.stat().st_size > 0:
        raise BankError(
            f"bank '{path}' is empty (0 bytes) but its index file '{index_path}' is not: the bank file was "
            f"truncated; restore '{path}' from a backup, or delete '{index_path}' to start an empty bank there"
        )


def storage_error(path: Path | None, error: BaseException) -> BaseException:
    """The `BankError` for a storage fault on bank `path` (None: not known), or `error` itself when it is not one."""
    problem = _problem(error)
    if problem is None:
        return error
    bank = f"bank '{path}'" if path is not None else "the bank"
    if problem == "damaged":
        message = f"{bank} is damaged ({error}); nothing was changed; {DAMAGED_FIX}"
    elif problem == "io":
        message = (f"writing {bank} failed in the operating system ({error}, {_code(error)}): the disk may be "
                   "full, over a file size limit (ulimit -f) or failing; the write was rolled back and nothing of it "
                   "was stored; free disk space or lift the limit and try again")
    elif problem == "full":
        message = (f"the disk is full (or the file size limit reached) writing {bank} ({error}); the write was "
                   "rolled back and nothing of it was stored; free disk space and try again")
    else:
        name = path.name if path is not None else "BANK"
        message = (f"{bank} cannot be written ({error}): the file or its folder is read-only; make both "
                   f"writable (the bank keeps '{name}-wal', '{name}-shm' and '{name}.lock' beside it), "
                   "or copy the bank into a writable folder")
    failure = BankError(message)
    failure.__cause__ = error
    return failure


def abort(conn: sqlite3.Connection, path: Path, error: BaseException) -> BaseException:
    """Roll back a failed write (if SQLite has not already) and return the error to raise."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable (a damaged file): the error that got us here is the one to report
    return storage_error(path, error)


def _problem(error: BaseException) -> str | None:
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        if error.errno in FULL_ERRNOS:
            return "full"
        if error.errno in READ_ONLY_ERRNOS:
            return "read-only"
        return None
    if not isinstance(error, sqlite3.DatabaseError) or isinstance(error, sqlite3.ProgrammingError):
        return None
    if _code(error).startswith("SQLITE_IOERR"):
        return "io"
    text = str(error).lower()
    for problem, needles in (("full", FULL), ("read-only", READ_ONLY), ("damaged", DAMAGED)):
        if any(needle in text for needle in needles):
            return problem
    return None


def _code(error: BaseException) -> str:
    """SQLite's extended error name (SQLITE_IOERR_WRITE, SQLITE_FULL, ...), or '' when not known."""
    return getattr(error, "sqlite_errorname", None) or ""
