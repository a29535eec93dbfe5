"""kill -9 of writer processes at random points, round after round on one bank: nothing acknowledged is lost.

Two writers (tests/faults/chaos_writer.py) add, update, delete and save the index at random on one
bank, in their own namespaces, and are killed with SIGKILL at random moments, each round. After
every round the bank is reopened and checked against what the writers acknowledged: every
acknowledged add is there (unless a delete of it was in flight), every acknowledged delete is
gone, every acknowledged update holds, the batch in flight is all or nothing, the index agrees
with SQLite, and no temporary file is left behind.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from memento import CaseBank
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROUNDS = 8
WRITERS = ("alpha", "beta")


class Writer:
    """One chaos_writer process and the lines it printed, read on a thread so the kill can land anywhere."""

    def __init__(self, path, namespace, seed):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.faults.chaos_writer", str(path), namespace,
                                         str(seed)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.lines: list[list] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            try:
                fields = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by the kill
            self.lines.append(fields)
            if fields[0] == "ready":
                self.ready.set()

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.reader.join(timeout=10)


class Expected:
    """What one namespace must hold, from the acknowledged changes; the change in flight is left open."""

    def __init__(self):
        self.present: set[str] = set()
        self.answers: dict[str, str] = {}

    def replay(self, lines) -> tuple | None:
        in_flight = None
        for fields in lines:
            phase, *rest = fields
            if phase == "intent":
                in_flight = tuple(rest)
            elif phase == "done":
                op, ids, *extra = rest
                if op == "add":
                    self.present |= set(ids)
                elif op == "del":
                    self.present -= set(ids)
                    self.answers.pop(ids[0], None)
                elif op == "upd":
                    self.answers[ids[0]] = extra[0]
                in_flight = None
        return in_flight

    def check(self, stored: dict[str, str], in_flight) -> None:
        op, ids, *extra = in_flight if in_flight else (None, [], None)
        may_be_missing = set(ids) if op == "del" else set()
        missing = self.present - set(stored) - may_be_missing
        assert not missing, f"acknowledged cases lost: {sorted(missing)[:5]}"
        unexpected = set(stored) - self.present - (set(ids) if op == "add" else set())
        assert not unexpected, f"cases nobody added: {sorted(unexpected)[:5]}"
        if op == "add":
            landed = set(ids) & set(stored)
            assert landed in (set(), set(ids)), "the batch in flight is all or nothing"
            self.present |= landed
        if op == "del" and ids[0] not in stored:
            self.present.discard(ids[0])
        if op == "upd" and ids[0] in stored:  # the update in flight may have landed: the bank says which
            self.answers[ids[0]] = stored[ids[0]]
        for case_id, answer in self.answers.items():
            if case_id in stored and not (op == "upd" and ids[0] == case_id):
                assert stored[case_id] == answer, f"acknowledged update of {case_id} lost"


def test_writers_killed_at_random_points_round_after_round_lose_nothing_acknowledged(tmp_path):
    path = tmp_path / "chaos.db"
    rng = np.random.default_rng(15)
    expected = {name: Expected() for name in WRITERS}
    kills = acknowledged = 0
    for round_number in range(ROUNDS):
        writers = {name: Writer(path, name, seed=round_number * 10 + i) for i, name in enumerate(WRITERS)}
        for writer in writers.values():
            assert writer.ready.wait(60), "a writer did not start"
        time.sleep(float(rng.uniform(0.05, 0.8)))
        for writer in writers.values():
            writer.kill()
            kills += 1
            time.sleep(float(rng.uniform(0.0, 0.1)))
        with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
            for name, writer in writers.items():
                in_flight = expected[name].replay(writer.lines)
                acknowledged += sum(len(f[2]) for f in writer.lines if f[0] == "done" and f[1] == "add")
                stored = {c.id: c.answer for c in bank.iter_cases(namespace=(name,))}
                expected[name].check(stored, in_flight)
                expected[name].answers = {k: v for k, v in expected[name].answers.items() if k in stored}
            stats = bank.stats()
            assert stats["index"]["healthy"], (round_number, stats["index"], stats["cases"])
            sample = [c.id for c in bank.iter_cases(limit=20, order_by="id")]
            for case_id in sample:  # the index holds each case's current vector
                assert bank.search(bank.vectors([case_id])[0], k=1)[0].case.id == case_id
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [], f"round {round_number}"
    assert acknowledged > 0
    print(f"\nkill -9 of writers: {kills} kills over {ROUNDS} rounds, {acknowledged} acknowledged adds, 0 lost")
