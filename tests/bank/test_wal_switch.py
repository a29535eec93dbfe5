"""Opening a new bank waits for a write in progress instead of failing at once."""

import sqlite3
import threading

from memento import CaseBank


def test_a_new_bank_waits_for_another_connections_write_before_switching_to_wal(tmp_path):
    """A connection holding the write lock on a rollback-mode file makes SQLite refuse the WAL switch
    at once, busy timeout or not: processes creating one bank together failed so in CI."""
    path = tmp_path / "new.db"
    writer = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, before any table exists
    release = threading.Timer(0.5, lambda: writer.execute("ROLLBACK"))
    release.start()
    try:
        bank = CaseBank(path, busy_timeout_s=10)
    finally:
        release.join()
        writer.close()
    assert bank.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert bank.count() == 0
    bank.close()
