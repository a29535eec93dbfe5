"""A full disk, read-only bank files, and damaged index and SQLite files.

Each fault is real: a write over RLIMIT_FSIZE in a child process (SIGXFSZ ignored, so the write
fails with EFBIG as on a full disk), a 2 MiB tmpfs filled up or remounted read-only (root only),
and bytes cut off or overwritten in the files. The rule: a clear `BankError` naming the file and
the fix, nothing half-written, and a damaged index file repaired from SQLite.
"""

import hashlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from memento import Case, CaseBank
from memento.errors import BankError
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder
from tests.faults.conftest import remount

pytestmark = pytest.mark.faults

LIMITED_WRITER = """
import json, resource, signal, sys
import numpy as np
from memento import Case, CaseBank
from memento.errors import MementoError
from tests.fakes import FakeHashEmbedder

path, what = sys.argv[1], sys.argv[2]
bank = CaseBank(path, embedder=FakeHashEmbedder())
if what == "save":  # cases the saved index file lacks, so the save has something to write
    bank.add_many([Case(task=f"more {i}") for i in range(2000)], vectors=np.random.default_rng(1).normal(size=(2000, 64)))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
limit = bank.path.stat().st_size + 64_000 if what == "add" else 100_000  # below the index file's size
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    if what == "add":
        bank.add_many([Case(task=f"big {i}", answer="x" * 4000) for i in range(200)],
                      vectors=np.random.default_rng(1).normal(size=(200, 64)))
    else:
        bank.save_index()
    print(json.dumps({"type": "none"}))
except MementoError as error:
    print(json.dumps({"type": type(error).__name__, "message": str(error)}))
"""


def unit_vectors(n, dim=64, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_bank(path, n=300):
    vectors = unit_vectors(n)
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        bank.add_many([Case(task=f"task {i}", answer="a" * 100) for i in range(n)], vectors=vectors)
    return vectors


def export(path) -> str:
    """Everything the bank holds, vectors included: equal exports mean nothing changed."""
    out = io.StringIO()
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        bank.export_jsonl(out, with_vectors=True)
    return out.getvalue()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def run_limited(path, what):
    result = subprocess.run([sys.executable, "-c", LIMITED_WRITER, str(path), what], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- a full disk

def test_a_write_past_the_file_size_limit_is_a_bank_error_and_stores_none_of_it(tmp_path):
    path = tmp_path / "cases.db"
    make_bank(path)
    before = export(path)

    outcome = run_limited(path, "add")

    assert outcome["type"] == "BankError", outcome
    assert str(path) in outcome["message"] and "nothing of it was stored" in outcome["message"]
    assert "no transaction is active" not in outcome["message"], "the real error must not be hidden by a second ROLLBACK"
    assert export(path) == before
    assert temporaries(tmp_path) == []


def test_an_index_save_past_the_limit_removes_its_half_file_and_loses_no_case(tmp_path):
    path = tmp_path / "cases.db"
    make_bank(path)

    outcome = run_limited(path, "save")

    assert outcome["type"] == "BankError", outcome
    assert "cannot save the index file" in outcome["message"] and "safe in SQLite" in outcome["message"]
    assert temporaries(tmp_path) == [], "a failed save must not leave its half-written temporary file"
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:  # the old index file plus the change log
        assert bank.count() == 2300 and bank.stats()["index"]["healthy"]


def test_filling_a_real_tmpfs_stops_with_a_bank_error_and_keeps_every_acknowledged_case(small_tmpfs):
    path = small_tmpfs / "cases.db"
    bank = CaseBank(path, embedder=FakeHashEmbedder())
    acknowledged, failure = [], None
    for batch in range(200):
        cases = [Case(task=f"fill {batch}-{i}", answer="y" * 2000) for i in range(20)]
        try:
            bank.add_many(cases, vectors=unit_vectors(20, seed=batch))
        except BankError as error:
            failure = error
            break
        acknowledged += [c.id for c in cases]
    assert failure is not None, "a 2 MiB tmpfs must fill up"
    assert "disk is full" in str(failure) or "failed in the operating system" in str(failure), failure
    assert acknowledged, "some batches fit before the disk filled"
    with pytest.raises(BankError, match="cannot save the index file|disk"):
        bank.close()  # the index file does not fit either: said so, the cases are in SQLite
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)
    with CaseBank(path, embedder=FakeHashEmbedder()) as reopened:
        stored = {c.id for c in reopened.iter_cases()}
        assert set(acknowledged) <= stored and len(stored) % 20 == 0
        assert reopened.stats()["index"]["healthy"]
    assert temporaries(small_tmpfs) == []


# ------------------------------------------------------------------------- read-only files

def test_a_bank_on_a_read_only_mount_is_refused_with_the_fix(small_tmpfs):
    path = small_tmpfs / "cases.db"
    make_bank(path, n=50)
    before = digest(path)
    remount(small_tmpfs, "ro")
    try:
        with pytest.raises(BankError, match="read-only") as raised:
            CaseBank(path, embedder=FakeHashEmbedder())
        assert str(path) in str(raised.value) and "writable" in str(raised.value)
        assert digest(path) == before
    finally:
        remount(small_tmpfs, "rw")
    assert len(export(path).splitlines()) == 50


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes; the read-only mount test covers root")
def test_a_read_only_bank_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "cases.db"
    make_bank(path, n=50)
    before = digest(path)
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(BankError, match="read-only"):
            bank = CaseBank(path, embedder=FakeHashEmbedder())
            bank.add(Case(task="one more"), vector=unit_vectors(1)[0])
        assert digest(path) == before
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


# ------------------------------------------------------------------------ a damaged index

def cut(path, keep):
    with open(path, "r+b") as handle:
        handle.truncate(keep)


def overwrite(path, offset, length, seed=7):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(np.random.default_rng(seed).bytes(length))


INDEX_DAMAGE = {
    "truncated to half": lambda p: cut(p, p.stat().st_size // 2),
    "emptied": lambda p: cut(p, 0),
    "header overwritten": lambda p: overwrite(p, 0, 64),
    # Same length, other bytes inside the stored vectors: only the CRC in the trailer can tell.
    "vectors overwritten in place": lambda p: overwrite(p, p.stat().st_size // 2, 512),
    "trailer overwritten": lambda p: overwrite(p, p.stat().st_size - 40, 40),
}


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_a_damaged_index_file_is_detected_and_rebuilt_from_sqlite(tmp_path, caplog, damage):
    path = tmp_path / "cases.db"
    vectors = make_bank(path, n=2000)
    INDEX_DAMAGE[damage](path.with_name("cases.db.faiss"))

    with caplog.at_level(logging.WARNING, logger="memento.bank"):
        with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
            assert bank.stats()["index"]["healthy"]
            for probe in (7, 1000, 1999):  # every stored vector finds its own case again
                assert bank.search(vectors[probe], k=1)[0].case.task == f"task {probe}"
    assert any("rebuilding the FAISS index" in r.getMessage() for r in caplog.records), damage

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="memento.bank"):
        CaseBank(path, embedder=FakeHashEmbedder()).close()
    assert not [r for r in caplog.records if "rebuilding" in r.getMessage()], "the repaired file loads as it is"


# ----------------------------------------------------------------------- a damaged SQLite file

SQLITE_DAMAGE = {
    "truncated to half": lambda p: cut(p, p.stat().st_size // 2),
    "header cut off": lambda p: cut(p, 50),
    "schema page overwritten": lambda p: overwrite(p, 100, 300),
    "emptied beside its index": lambda p: cut(p, 0),
}


@pytest.mark.parametrize("damage", list(SQLITE_DAMAGE))
def test_a_damaged_sqlite_file_is_refused_with_the_fix_and_left_as_it_was(tmp_path, damage):
    path = tmp_path / "cases.db"
    make_bank(path, n=2000)
    SQLITE_DAMAGE[damage](path)
    before = digest(path)

    with pytest.raises(BankError) as raised:
        CaseBank(path, embedder=FakeHashEmbedder())

    message = str(raised.value)
    assert str(path) in message and "backup" in message, message
    assert ("damaged" in message) or ("truncated" in message), message
    assert digest(path) == before, "a refused open changes nothing"


def test_damage_met_after_opening_is_an_error_line_in_the_cli(cli):
    path = cli.folder / "cases.db"
    make_bank(path, n=2000)
    _damage_a_leaf_page(path)

    line = cli.fails("cases", "ls", "--bank", path)

    assert "damaged" in line and "backup" in line, line


def test_bank_check_reads_every_page_and_finds_what_a_listing_may_not(cli):
    path = cli.folder / "cases.db"
    make_bank(path, n=2000)
    healthy = cli.ok("bank", "check", "--bank", path)
    assert healthy["ok"] and healthy["sqlite"] == "ok" and healthy["index"] == {"healthy": True, "vectors": 2000,
                                                                                 "cases": 2000}
    _damage_a_leaf_page(path)
    before = digest(path)
    line = cli.fails("bank", "check", "--bank", path)
    assert "is damaged" in line and "restore a backup" in line and "memento cases export" in line, line
    assert digest(path) == before, "a check changes nothing"


def _damage_a_leaf_page(path):
    # A leaf page of the cases table in the middle of them, its page-type byte made invalid: the bank
    # opens (schema and metadata are intact), and listing the cases reads that page. Random bytes at a
    # fixed offset, as before, sometimes hit a page that SQLite reads as valid garbage (a scan that
    # silently returned 1 row of 2000): SQLite detects a malformed page, not every damaged one.
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        leaves = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'cases' AND pagetype = 'leaf' "
                                           "ORDER BY pageno")]
    with open(path, "r+b") as handle:
        handle.seek((leaves[len(leaves) // 2] - 1) * page_size)  # pages count from 1; no file header past page 1
        handle.write(b"\xff" * 16)
