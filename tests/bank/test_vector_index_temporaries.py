"""A writer killed during an index save leaves its temporary file; the next open removes it.

The writer is a real process, killed with SIGKILL while its save is stuck between writing the
temporary file and renaming it (its fsync is made to hang), so the kill lands mid-save every time.
"""

import os
import signal
import subprocess
import sys

import numpy as np

from memento import CaseBank
from memento.bank.vector_index import remove_stale_temporaries, temporary_path
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

WRITER = """
import os, sys, time
import numpy as np
from memento import Case, CaseBank
from tests.fakes import FakeHashEmbedder

bank = CaseBank(sys.argv[1], embedder=FakeHashEmbedder())
bank.add_many([Case(task=f"task {i}") for i in range(20)], vectors=np.eye(64)[:20])

def hang(fd):  # the save has written the temporary file and is about to rename it
    print("saving", flush=True)
    time.sleep(60)

os.fsync = hang
bank.save_index()
"""


def kill_a_writer_mid_save(path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "saving"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()  # reaped: a zombie still counts as alive
    return temporary_path(path.with_name(path.name + ".faiss"), writer.pid)


def test_opening_a_bank_removes_the_temporary_file_of_a_writer_killed_mid_save(tmp_path):
    path = tmp_path / "cases.db"
    left_behind = kill_a_writer_mid_save(path)
    assert left_behind.exists()
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        assert not left_behind.exists()
        assert bank.count() == 20 and bank.stats()["index"]["healthy"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    index_path = tmp_path / "cases.db.faiss"
    mine = temporary_path(index_path, os.getpid())  # this process is alive, as a writer mid-save would be
    mine.write_bytes(b"half an index")
    other_bank = tmp_path / ".other.db.faiss.999999999.tmp"  # not this index's file, whatever its pid
    other_bank.write_bytes(b"x")
    dead = temporary_path(index_path, 999_999_999)  # above any pid_max: no such process
    dead.write_bytes(b"y")
    assert remove_stale_temporaries(index_path) == [dead]
    assert mine.exists() and other_bank.exists() and not dead.exists()


def test_a_save_still_works_after_the_cleanup(tmp_path):
    path = tmp_path / "cases.db"
    kill_a_writer_mid_save(path)
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        bank.add(dict(task="one more"), vector=np.ones(64))
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        assert bank.count() == 21 and bank.stats()["index"]["healthy"]
