"""On every backend: a writer killed with SIGKILL loses no acknowledged case; several writer processes share one bank."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from memento import CaseBank
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.slow


def start_writer(path, namespace, batches, batch_size):
    return subprocess.Popen([sys.executable, "-m", "tests.bank.writer_process", str(path), namespace,
                             str(batches), str(batch_size)], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def assert_consistent(bank: CaseBank) -> None:
    stats = bank.stats()
    assert stats["index"]["healthy"], stats
    assert stats["index"]["vectors"] == bank.count()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13])
def test_kill_9_mid_batch_loses_no_acknowledged_case(bank_location, delay):
    path = bank_location("crash")
    writer = start_writer(path, "w", batches=10_000, batch_size=50)
    acknowledged = []
    for _ in range(3):  # let a few batches land before the kill
        acknowledged += writer.stdout.readline().split()
    time.sleep(delay)
    os.kill(writer.pid, signal.SIGKILL)
    acknowledged += writer.stdout.read().split()
    writer.wait()
    with CaseBank.open(path, embedder=FakeHashEmbedder()) as bank:
        stored = {c.id for c in bank.iter_cases()}
        assert set(acknowledged) <= stored
        assert len(stored) % 50 == 0  # a batch is all or nothing
        assert_consistent(bank)
        probe = bank.get(acknowledged[-1])
        assert bank.search(bank.vectors([probe.id])[0], k=1)[0].case.id == probe.id


def test_several_writer_processes_share_one_bank(bank_location):
    path = bank_location("shared")
    watcher = CaseBank.open(path, embedder=FakeHashEmbedder())  # open before, must see the others' writes
    writers = [start_writer(path, f"w{i}", batches=6, batch_size=20) for i in range(3)]
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert all(w.returncode == 0 for w in writers)
    ids = [line.split() for out in outputs for line in out.splitlines()]
    assert sum(len(batch) for batch in ids) == 360
    assert watcher.count() == 360
    for i in range(3):
        hits = watcher.search(np.ones(64), k=500, namespace=(f"w{i}",))
        assert len(hits) == 120 and {h.case.namespace for h in hits} == {(f"w{i}",)}
    assert_consistent(watcher)
    watcher.close()
    with CaseBank.open(path, embedder=FakeHashEmbedder()) as reopened:
        assert_consistent(reopened)


def test_writer_processes_that_create_one_new_bank_at_once_lose_nothing(tmp_path):
    """The first creates the bank and writes; the others, which saw no tables, must not initialise it again.

    Before the fix a second creator reset `next_vid` and `generation` under the first one's writes:
    UNIQUE failures on cases.vid, and an index that disagreed with SQLite rounds later.
    """
    for attempt in range(6):
        path = tmp_path / f"new-{attempt}.db"
        writers = [start_writer(path, f"w{i}", batches=4, batch_size=10) for i in range(4)]
        outputs = [w.communicate(timeout=120)[0] for w in writers]
        assert [w.returncode for w in writers] == [0] * 4, f"attempt {attempt}: a writer failed"
        assert sum(len(line.split()) for out in outputs for line in out.splitlines()) == 160
        with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
            assert bank.count() == 160
            assert_consistent(bank)
